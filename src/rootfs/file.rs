//! The file source: a local `.tar`, `.tar.gz` or `.tgz` (the compression is told by the
//! content, not the name), optionally checked against `--sha256` before it is unpacked.

use super::digest::{self, Sha256Sum};
use super::download::human_size;
use super::{unpack, Ctx, Fetched, Source};
use crate::error::{Error, Result};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub struct LocalFile {
    path: PathBuf,
    sha256: Option<Sha256Sum>,
}

impl LocalFile {
    pub fn new(path: &Path, sha256: Option<Sha256Sum>) -> Result<LocalFile> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("tarball {}", path.display()), e))?;
        if meta.is_dir() {
            return Err(Error::msg(
                format!("tarball {}", path.display()),
                "is a directory (want a .tar, .tar.gz or .tgz file)",
            ));
        }
        Ok(LocalFile {
            path: path.to_path_buf(),
            sha256,
        })
    }
}

/// `alpine-minirootfs-3.21.3-x86_64.tar.gz` -> `alpine-minirootfs-3.21.3-x86_64`.
pub fn stem(file_name: &str) -> String {
    let mut s = file_name;
    for ext in [".tar.gz", ".tgz", ".tar", ".gz"] {
        if let Some(base) = s.strip_suffix(ext) {
            s = base;
            break;
        }
    }
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-+".contains(*c))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "rootfs".to_string()
    } else {
        clean
    }
}

impl Source for LocalFile {
    fn name(&self) -> String {
        stem(&self.path.file_name().unwrap_or_default().to_string_lossy())
    }

    fn fill(&self, ctx: &Ctx<'_>, rootfs: &Path) -> Result<Fetched> {
        let shown = self.path.display().to_string();
        let label = self
            .path
            .file_name()
            .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
        let mut f =
            std::fs::File::open(&self.path).map_err(|e| Error::io(format!("open {shown}"), e))?;
        let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        let check = match &self.sha256 {
            Some(want) => {
                // Verify before parse; the same open file is then read again from the start.
                let (got, _) = digest::hash_reader(&mut f)
                    .map_err(|e| Error::io(format!("read {shown}"), e))?;
                want.verify(&got, &label)?;
                f.seek(SeekFrom::Start(0)).map_err(|e| {
                    Error::io(format!("rewind {shown} (--sha256 needs a regular file)"), e)
                })?;
                "sha256 ok"
            }
            None => "no --sha256 given",
        };
        let stats = unpack::unpack(f, rootfs, ctx.cancel)
            .map_err(|e| e.context(format!("unpack {label}")))?;
        Ok(Fetched {
            verb: "unpacked",
            what: shown,
            detail: format!("{}, {check}", human_size(size.unwrap_or(stats.bytes))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_tar_extensions() {
        assert_eq!(
            stem("alpine-minirootfs-3.21.3-x86_64.tar.gz"),
            "alpine-minirootfs-3.21.3-x86_64"
        );
        assert_eq!(stem("r.tgz"), "r");
        assert_eq!(stem("r.tar"), "r");
        assert_eq!(stem("weird name?.tar"), "weirdname");
        assert_eq!(stem(".tar"), "rootfs");
        assert_eq!(stem(".hidden.tar"), "rootfs");
    }
}
