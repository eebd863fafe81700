//! The `alpine` source: Alpine's mini root filesystem from a mirror.
//!
//! A mirror publishes, per branch and architecture, `MIRROR/<branch>/releases/<arch>/`
//! `latest-releases.yaml` (the release index), the tarballs beside it, and `<file>.sha256`
//! beside each tarball. The branch is `latest-stable`, `vX.Y` or `edge`. The index is a YAML
//! list written by aports' `mkimage-yaml.sh`, one entry per image:
//!
//! ```yaml
//! ---
//! -
//!   title: "Mini root filesystem"
//!   desc: |
//!     Minimal root filesystem.
//!     For use in containers
//!     and minimal chroots.
//!   branch: v3.21
//!   arch: x86_64
//!   version: 3.21.3
//!   flavor: alpine-minirootfs
//!   file: alpine-minirootfs-3.21.3-x86_64.tar.gz
//!   iso: alpine-minirootfs-3.21.3-x86_64.tar.gz
//!   date: 2025-02-13
//!   time: 23:05:59
//!   size: 3652270
//!   sha256: 1a694899e406ce55d32334c47ac0b2efb6c06d7e878102d1840892ad44cd5239
//!   sha512: ...
//! -
//!   title: "Netboot"
//!   ...
//! ```
//!
//! [`parse_index`] reads exactly that shape (a list of flat `key: value` maps, with quoted
//! values and multi-line `desc` text skipped), which keeps a YAML library out of the binary.

use super::digest::Sha256Sum;
use super::download::human_size;
use super::download::{Http, Progress};
use super::{unpack, Ctx, Fetched, Source};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

pub const DEFAULT_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";
const INDEX: &str = "latest-releases.yaml";
const FLAVOR: &str = "alpine-minirootfs";

/// Which release the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The newest stable release (`latest`).
    Latest,
    /// The development branch (`edge`).
    Edge,
    /// The newest release of a branch (`3.21`).
    Branch(u32, u32),
    /// One exact release (`3.21.3`).
    Exact(u32, u32, u32),
}

impl Wanted {
    /// `latest`, `edge`, `X.Y` or `X.Y.Z` (a leading `v` is accepted).
    pub fn parse(s: &str) -> Result<Wanted> {
        let bad = || Error::msg(format!("version {s:?}"), "want latest, edge, X.Y or X.Y.Z");
        match s {
            "latest" | "latest-stable" => return Ok(Wanted::Latest),
            "edge" => return Ok(Wanted::Edge),
            _ => {}
        }
        let nums: Vec<u32> = s
            .strip_prefix('v')
            .unwrap_or(s)
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                p.parse().map_err(|_| bad())
            })
            .collect::<Result<_>>()?;
        match nums[..] {
            [x, y] => Ok(Wanted::Branch(x, y)),
            [x, y, z] => Ok(Wanted::Exact(x, y, z)),
            _ => Err(bad()),
        }
    }

    /// The mirror directory that holds it.
    pub fn branch(&self) -> String {
        match self {
            Wanted::Latest => "latest-stable".into(),
            Wanted::Edge => "edge".into(),
            Wanted::Branch(x, y) | Wanted::Exact(x, y, _) => format!("v{x}.{y}"),
        }
    }
}

/// One entry of the release index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Release {
    pub fields: HashMap<String, String>,
}

impl Release {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// Parse `latest-releases.yaml`: a list of entries, each a map of `key: value` lines indented
/// under a `-` line (or starting on it: `- key: value`). Quoted values are unquoted; block
/// (`|`, `>`) and multi-line quoted values are skipped, as is anything indented deeper than
/// the entry's keys. Anything else is an error naming the line.
pub fn parse_index(text: &str) -> Result<Vec<Release>> {
    let mut entries: Vec<Release> = Vec::new();
    let mut key_indent: Option<usize> = None;
    // Inside a value that spans lines: a block scalar (ends at a line indented no deeper than
    // the keys) or a quoted scalar (ends at its closing quote).
    let mut in_block = false;
    let mut open_quote: Option<char> = None;
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let bad = |why: &str| Error::msg(format!("release index line {}", no + 1), why.to_string());
        if let Some(q) = open_quote {
            if line.trim_end().ends_with(q) {
                open_quote = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if in_block {
            if key_indent.is_some_and(|k| indent > k) {
                continue;
            }
            in_block = false;
        }
        if indent == 0 && (line == "---" || line == "...") {
            continue;
        }
        let rest = if indent == 0 && (trimmed == "-" || trimmed.starts_with("- ")) {
            entries.push(Release::default());
            key_indent = None;
            let rest = trimmed[1..].trim_start();
            if rest.is_empty() {
                continue;
            }
            key_indent = Some(line.len() - rest.len());
            rest
        } else {
            let Some(entry_keys) = key_indent.or(Some(indent).filter(|_| !entries.is_empty()))
            else {
                return Err(bad("expected a list entry (\"-\")"));
            };
            if indent > entry_keys {
                continue; // a continuation of a plain multi-line value
            }
            if indent < entry_keys || indent == 0 {
                return Err(bad("unexpected indentation"));
            }
            key_indent = Some(entry_keys);
            trimmed
        };
        let Some((key, value)) = rest.split_once(':') else {
            return Err(bad("expected \"key: value\""));
        };
        let key = key.trim();
        let value = value.trim();
        let value = match value.chars().next() {
            Some('|') | Some('>') => {
                in_block = true;
                String::new()
            }
            Some(q @ ('"' | '\'')) => {
                if value.len() >= 2 && value.ends_with(q) {
                    value[1..value.len() - 1].to_string()
                } else {
                    open_quote = Some(q);
                    String::new()
                }
            }
            _ => value.to_string(),
        };
        if let Some(entry) = entries.last_mut() {
            entry.fields.insert(key.to_string(), value);
        }
    }
    Ok(entries)
}

/// What to download and how to check it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub version: String,
    pub file: String,
    pub size: Option<u64>,
    /// From the index; `None`: read `<file>.sha256` beside the tarball.
    pub sha256: Option<Sha256Sum>,
}

/// Pick the minirootfs for `arch` from the index according to `wanted`. An exact version the
/// index does not list (an older point release) is fetched by its file name and checked
/// against the `.sha256` file beside it.
pub fn choose(wanted: &Wanted, arch: &str, index: &[Release]) -> Result<Plan> {
    let entry = index
        .iter()
        .find(|r| r.get("flavor") == Some(FLAVOR) && r.get("arch").is_none_or(|a| a == arch));
    let from_index = |e: &Release| -> Result<Plan> {
        let field = |k: &str| {
            e.get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::msg("release index", format!("{FLAVOR} entry has no {k}")))
        };
        let file = field("file")?;
        check_file_name(file)?;
        Ok(Plan {
            version: field("version")?.to_string(),
            file: file.to_string(),
            size: e.get("size").and_then(|s| s.parse().ok()),
            sha256: Some(
                Sha256Sum::parse(field("sha256")?).map_err(|e| e.context("release index"))?,
            ),
        })
    };
    match wanted {
        Wanted::Exact(x, y, z) => {
            let version = format!("{x}.{y}.{z}");
            match entry {
                Some(e) if e.get("version") == Some(version.as_str()) => from_index(e),
                _ => Ok(Plan {
                    file: format!("{FLAVOR}-{version}-{arch}.tar.gz"),
                    version,
                    size: None,
                    sha256: None,
                }),
            }
        }
        _ => {
            let e = entry.ok_or_else(|| {
                Error::msg(
                    "release index",
                    format!("no {FLAVOR} entry for {arch} in {}", wanted.branch()),
                )
            })?;
            let plan = from_index(e)?;
            if let Wanted::Branch(x, y) = wanted {
                if !plan.version.starts_with(&format!("{x}.{y}.")) {
                    return Err(Error::msg(
                        "release index",
                        format!("v{x}.{y} lists version {}", plan.version),
                    ));
                }
            }
            Ok(plan)
        }
    }
}

/// A file name from the index goes into a URL: a plain name, nothing else.
fn check_file_name(file: &str) -> Result<()> {
    let ok = !file.is_empty()
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::msg(
            format!("release index file {file:?}"),
            "not a plain file name",
        ))
    }
}

/// Alpine's name for this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "x86",
        "arm" => "armv7",
        "powerpc64" => "ppc64le",
        other => other, // x86_64, aarch64, riscv64, s390x, loongarch64
    }
}

pub struct Alpine {
    pub mirror: String,
    pub wanted: Wanted,
    pub arch: String,
}

impl Alpine {
    pub fn new(mirror: Option<&str>, version: Option<&str>, arch: Option<&str>) -> Result<Alpine> {
        let mirror = mirror.unwrap_or(DEFAULT_MIRROR).trim_end_matches('/');
        if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
            return Err(Error::msg(
                format!("mirror {mirror}"),
                "want an http:// or https:// URL",
            ));
        }
        let arch = arch.unwrap_or(host_arch());
        if arch.is_empty() || !arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::msg(
                format!("arch {arch:?}"),
                "not an architecture name",
            ));
        }
        Ok(Alpine {
            mirror: mirror.to_string(),
            wanted: Wanted::parse(version.unwrap_or("latest"))?,
            arch: arch.to_string(),
        })
    }

    fn dir_url(&self) -> String {
        format!(
            "{}/{}/releases/{}",
            self.mirror,
            self.wanted.branch(),
            self.arch
        )
    }
}

impl Source for Alpine {
    fn name(&self) -> String {
        "alpine".into()
    }

    fn fill(&self, ctx: &Ctx<'_>, rootfs: &Path) -> Result<Fetched> {
        let http = Http::new();
        let dir = self.dir_url();
        let index_url = format!("{dir}/{INDEX}");
        let text = http.get_small(&index_url, 1 << 20)?;
        let index = parse_index(&String::from_utf8_lossy(&text))
            .map_err(|e| e.context(format!("read {index_url}")))?;
        let plan = choose(&self.wanted, &self.arch, &index)
            .map_err(|e| e.context(format!("read {index_url}")))?;
        crate::debug!(
            "alpine {} for {}: {} ({})",
            plan.version,
            self.arch,
            plan.file,
            if plan.sha256.is_some() {
                "sha256 from the index"
            } else {
                "not in the index: sha256 from its .sha256 file"
            }
        );
        let url = format!("{dir}/{}", plan.file);
        let expected = match plan.sha256 {
            Some(s) => s,
            None => {
                let sum_url = format!("{url}.sha256");
                let text = http.get_small(&sum_url, 64 << 10)?;
                Sha256Sum::from_sum_file(&String::from_utf8_lossy(&text), &plan.file)
                    .map_err(|e| e.context(format!("read {sum_url}")))?
            }
        };
        let mut progress = Progress::new(ctx.progress, plan.file.clone());
        let (mut file, path) = ctx.download_file()?;
        let got = http.download(&url, &mut file, ctx.cancel, &mut progress, plan.size)?;
        expected.verify(&got.sha256, &plan.file)?;
        crate::debug!("sha256 ok: {}", got.sha256);
        unpack::unpack_file(&path, &plan.file, rootfs, ctx.cancel)?;
        Ok(Fetched {
            verb: "fetched",
            what: format!("alpine {}", plan.version),
            detail: format!("{}, sha256 ok", human_size(got.bytes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a real `latest-releases.yaml` (v3.21, x86_64) trimmed to three entries,
    /// with both forms of multi-line `desc` seen in the wild. The minirootfs sha256 is the one
    /// published for 3.21.3; sizes, dates and the other digests are placeholders.
    const INDEX_SAMPLE: &str = r#"---
-
  title: "Standard"
  desc: "Alpine as it was intended.
    Just enough to get you started.
    Network connection is required."
  profile: standard
  image_class: iso
  branch: v3.21
  arch: x86_64
  version: 3.21.3
  flavor: alpine-standard
  file: alpine-standard-3.21.3-x86_64.iso
  iso: alpine-standard-3.21.3-x86_64.iso
  date: 2025-02-13
  time: 23:04:47
  size: 217055232
  sha256: 0000000000000000000000000000000000000000000000000000000000000001
  sha512: 00
-
  title: "Mini root filesystem"
  desc: |
    Minimal root filesystem.
    For use in containers
    and minimal chroots.
  profile: minirootfs
  image_class: rootfs
  branch: v3.21
  arch: x86_64
  version: 3.21.3
  flavor: alpine-minirootfs
  file: alpine-minirootfs-3.21.3-x86_64.tar.gz
  iso: alpine-minirootfs-3.21.3-x86_64.tar.gz
  date: 2025-02-13
  time: 23:05:59
  size: 3652270
  sha256: 1a694899e406ce55d32334c47ac0b2efb6c06d7e878102d1840892ad44cd5239
  sha512: 00
-
  title: "Netboot"
  desc: |
    Kernel, initramfs and modloop for
    netboot.
  branch: v3.21
  arch: x86_64
  version: 3.21.3
  flavor: alpine-netboot
  file: alpine-netboot-3.21.3-x86_64.tar.gz
  size: 1
  sha256: 0000000000000000000000000000000000000000000000000000000000000002
"#;

    const MINI_SHA: &str = "1a694899e406ce55d32334c47ac0b2efb6c06d7e878102d1840892ad44cd5239";

    #[test]
    fn parses_the_real_index_shape() {
        let idx = parse_index(INDEX_SAMPLE).unwrap();
        assert_eq!(idx.len(), 3);
        assert_eq!(idx[0].get("title"), Some("Standard"));
        assert_eq!(idx[0].get("flavor"), Some("alpine-standard"));
        let mini = &idx[1];
        assert_eq!(mini.get("title"), Some("Mini root filesystem"));
        assert_eq!(mini.get("flavor"), Some("alpine-minirootfs"));
        assert_eq!(mini.get("version"), Some("3.21.3"));
        assert_eq!(mini.get("size"), Some("3652270"));
        assert_eq!(mini.get("time"), Some("23:05:59"));
        assert_eq!(mini.get("sha256"), Some(MINI_SHA));
        // The description's lines are not mistaken for keys.
        assert_eq!(mini.get("desc"), Some(""));
        assert_eq!(mini.get("For use in containers"), None);
        assert_eq!(idx[2].get("flavor"), Some("alpine-netboot"));
    }

    #[test]
    fn parses_compact_entries_and_rejects_garbage() {
        let idx = parse_index("- flavor: alpine-minirootfs\n  version: '3.20.1'\n").unwrap();
        assert_eq!(idx[0].get("flavor"), Some("alpine-minirootfs"));
        assert_eq!(idx[0].get("version"), Some("3.20.1"));
        assert!(parse_index("").unwrap().is_empty());
        let e = parse_index("<html>404</html>\n").unwrap_err().to_string();
        assert!(e.starts_with("release index line 1: "), "{e}");
        assert!(parse_index("-\n  file x\n").is_err());
    }

    #[test]
    fn versions_map_to_branches() {
        assert_eq!(Wanted::parse("latest").unwrap().branch(), "latest-stable");
        assert_eq!(Wanted::parse("edge").unwrap().branch(), "edge");
        assert_eq!(Wanted::parse("3.21").unwrap(), Wanted::Branch(3, 21));
        assert_eq!(Wanted::parse("3.21").unwrap().branch(), "v3.21");
        assert_eq!(Wanted::parse("v3.21.3").unwrap(), Wanted::Exact(3, 21, 3));
        assert_eq!(Wanted::parse("3.21.3").unwrap().branch(), "v3.21");
        for bad in ["", "3", "3.", "3.x", "3.21.3.1", "-1.2", "stable"] {
            assert!(Wanted::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn latest_and_branch_take_the_index_entry() {
        let idx = parse_index(INDEX_SAMPLE).unwrap();
        let want = Plan {
            version: "3.21.3".into(),
            file: "alpine-minirootfs-3.21.3-x86_64.tar.gz".into(),
            size: Some(3652270),
            sha256: Some(Sha256Sum::parse(MINI_SHA).unwrap()),
        };
        assert_eq!(choose(&Wanted::Latest, "x86_64", &idx).unwrap(), want);
        assert_eq!(
            choose(&Wanted::Branch(3, 21), "x86_64", &idx).unwrap(),
            want
        );
        assert_eq!(
            choose(&Wanted::Exact(3, 21, 3), "x86_64", &idx).unwrap(),
            want
        );
        // The index of v3.21 cannot serve 3.20.
        let e = choose(&Wanted::Branch(3, 20), "x86_64", &idx).unwrap_err();
        assert_eq!(e.to_string(), "release index: v3.20 lists version 3.21.3");
        // No entry for another architecture.
        let e = choose(&Wanted::Latest, "aarch64", &idx).unwrap_err();
        assert!(e
            .to_string()
            .contains("no alpine-minirootfs entry for aarch64"));
    }

    #[test]
    fn an_older_point_release_uses_its_sha256_file() {
        let idx = parse_index(INDEX_SAMPLE).unwrap();
        assert_eq!(
            choose(&Wanted::Exact(3, 21, 2), "x86_64", &idx).unwrap(),
            Plan {
                version: "3.21.2".into(),
                file: "alpine-minirootfs-3.21.2-x86_64.tar.gz".into(),
                size: None,
                sha256: None,
            }
        );
    }

    #[test]
    fn index_values_are_checked() {
        let bad_sha = INDEX_SAMPLE.replace(MINI_SHA, "beef");
        let idx = parse_index(&bad_sha).unwrap();
        assert!(choose(&Wanted::Latest, "x86_64", &idx).is_err());
        let bad_file = INDEX_SAMPLE.replace(
            "file: alpine-minirootfs-3.21.3-x86_64.tar.gz",
            "file: ../../evil.tar.gz",
        );
        let idx = parse_index(&bad_file).unwrap();
        let e = choose(&Wanted::Latest, "x86_64", &idx).unwrap_err();
        assert!(e.to_string().contains("not a plain file name"), "{e}");
    }

    #[test]
    fn options_are_validated() {
        let a = Alpine::new(Some("http://127.0.0.1:8080/alpine/"), Some("3.21"), None).unwrap();
        assert_eq!(
            a.dir_url(),
            format!(
                "http://127.0.0.1:8080/alpine/v3.21/releases/{}",
                host_arch()
            )
        );
        assert!(Alpine::new(Some("ftp://x"), None, None).is_err());
        assert!(Alpine::new(None, None, Some("../x")).is_err());
        assert!(Alpine::new(None, Some("three"), None).is_err());
    }
}
