//! The URL source: an `http://` or `https://` tarball, checked against `--sha256` (required
//! unless `--insecure-no-verify` says to take it unverified).

use super::digest::Sha256Sum;
use super::download::{human_size, Http, Progress};
use super::file::stem;
use super::{unpack, Ctx, Fetched, Source};
use crate::error::{Error, Result};
use std::path::Path;

pub struct Url {
    url: String,
    /// `None` only with `--insecure-no-verify`.
    sha256: Option<Sha256Sum>,
}

impl Url {
    pub fn new(url: &str, sha256: Option<Sha256Sum>, insecure_no_verify: bool) -> Result<Url> {
        match (&sha256, insecure_no_verify) {
            (None, false) => Err(Error::msg(
                "",
                "a URL needs --sha256 HEX (or --insecure-no-verify to use it unverified)",
            )),
            (Some(_), true) => Err(Error::msg(
                "options --sha256 and --insecure-no-verify",
                "give one, not both",
            )),
            _ => Ok(Url {
                url: url.to_string(),
                sha256,
            }),
        }
    }

    /// The last path segment: `https://h/x/r.tar.gz?a=b` -> `r.tar.gz`.
    fn file_name(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or("");
        path.rsplit('/').next().unwrap_or("")
    }
}

impl Source for Url {
    fn name(&self) -> String {
        stem(self.file_name())
    }

    fn fill(&self, ctx: &Ctx<'_>, rootfs: &Path) -> Result<Fetched> {
        let http = Http::new();
        let label = match self.file_name() {
            "" => self.url.clone(),
            f => f.to_string(),
        };
        let mut progress = Progress::new(ctx.progress, label.clone());
        let (mut file, path) = ctx.download_file()?;
        let got = http.download(&self.url, &mut file, ctx.cancel, &mut progress, None)?;
        let check = match &self.sha256 {
            Some(want) => {
                want.verify(&got.sha256, &label)?;
                "sha256 ok".to_string()
            }
            None => format!("sha256 NOT checked: {}", got.sha256),
        };
        unpack::unpack_file(&path, &label, rootfs, ctx.cancel)?;
        Ok(Fetched {
            verb: "fetched",
            what: self.url.clone(),
            detail: format!("{}, {check}", human_size(got.bytes)),
        })
    }
}
