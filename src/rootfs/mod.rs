//! `box fetch-rootfs`: get a root filesystem, verify it, unpack it safely, install box into it.
//!
//! The life of a fetch (`box fetch-rootfs alpine`):
//! 1. [`source_for`] turns the command line into a [`Source`] (alpine mirror, local file, URL,
//!    host busybox) and refuses options that do not apply to it.
//! 2. [`Staging`] checks DEST (an existing one is refused without `--force`) and makes a work
//!    directory beside it, `.DEST.partial-PID/`, holding the download and `rootfs/`. Its `Drop`
//!    removes it, so every failure path leaves nothing behind.
//! 3. SIGINT, SIGTERM and SIGHUP are blocked ([`cancel::Interruptible`]); the source fills
//!    `rootfs/` on a worker thread: download with the digest computed while streaming, verify,
//!    then [`unpack`] (verify before parse: the gzip and tar parsers only ever see bytes whose
//!    digest matched). Then [`install::self_install`] copies box in. A signal stops the worker
//!    between two changes and the work directory is removed.
//! 4. Commit: `rootfs/` is renamed to DEST (RENAME_NOREPLACE), or with `--force` exchanged with
//!    the old DEST in one atomic RENAME_EXCHANGE; the old tree, now in the work directory, goes
//!    with it. At no moment does DEST exist half-filled.
//!
//! A new source is one module implementing [`Source`] and one arm in [`source_for`].

pub mod alpine;
pub mod busybox;
pub mod cancel;
pub mod digest;
pub mod download;
pub mod file;
pub mod install;
pub mod unpack;
pub mod url;

use crate::error::{Error, Result};
use crate::sys::dirfd;
use cancel::{Cancel, Interruptible};
use std::fmt;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where root filesystems land by default: `images/<source name>`.
pub const IMAGES: &str = "images";

/// What the worker may use while filling a rootfs.
pub struct Ctx<'a> {
    pub cancel: &'a Cancel,
    /// Draw a progress line (stderr is a terminal).
    pub progress: bool,
    /// A scratch directory beside the rootfs, removed with it.
    pub work: PathBuf,
}

impl Ctx<'_> {
    /// A new file in the scratch directory for a download.
    pub fn download_file(&self) -> Result<(File, PathBuf)> {
        let _change = self.cancel.enter()?;
        let path = self.work.join("download");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok((f, path))
    }
}

/// A kind of root filesystem.
pub trait Source: Send {
    /// The default directory name under `images/`.
    fn name(&self) -> String;
    /// Fill the empty directory `rootfs`. Every change goes through `ctx.cancel.enter()`.
    fn fill(&self, ctx: &Ctx<'_>, rootfs: &Path) -> Result<Fetched>;
}

/// What a source did, for the summary line.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// `fetched`, `unpacked`, `built`.
    pub verb: &'static str,
    /// `alpine 3.21.3`, a URL, a file name.
    pub what: String,
    /// `3.4 MiB, sha256 ok`.
    pub detail: String,
}

/// The outcome of a fetch.
#[derive(Debug)]
pub struct Summary {
    pub fetched: Fetched,
    pub dest: PathBuf,
    pub installed: install::Installed,
}

impl fmt::Display for Summary {
    /// `fetched alpine 3.21.3 (3.4 MiB, sha256 ok) into images/alpine`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}) into {}",
            self.fetched.verb,
            self.fetched.what,
            self.fetched.detail,
            self.dest.display()
        )
    }
}

/// A `box fetch-rootfs` command line, parsed.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// `alpine`, `busybox`, an http(s) URL or a file path.
    pub source: String,
    pub dest: Option<PathBuf>,
    pub force: bool,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// The alpine mirror (`--mirror`, else `BOX_MIRROR`, else Alpine's CDN).
    pub mirror: Option<String>,
    pub sha256: Option<String>,
    pub insecure_no_verify: bool,
    pub progress: bool,
}

/// The source a request names, with its options checked.
pub fn source_for(req: &Request) -> Result<Box<dyn Source>> {
    let not_for = |opt: &str, given: bool, src: &str| {
        if given {
            Err(Error::msg(
                format!("option {opt}"),
                format!("does not apply to {src}"),
            ))
        } else {
            Ok(())
        }
    };
    let sha = || {
        req.sha256
            .as_deref()
            .map(digest::Sha256Sum::parse)
            .transpose()
    };
    let src = req.source.as_str();
    let alpine_opts = [
        ("--version", req.version.is_some()),
        ("--arch", req.arch.is_some()),
        ("--mirror", req.mirror.is_some()),
    ];
    match src {
        "alpine" => {
            not_for(
                "--sha256",
                req.sha256.is_some(),
                "alpine (the index has it)",
            )?;
            not_for("--insecure-no-verify", req.insecure_no_verify, src)?;
            Ok(Box::new(alpine::Alpine::new(
                req.mirror.as_deref(),
                req.version.as_deref(),
                req.arch.as_deref(),
            )?))
        }
        "busybox" => {
            for (opt, given) in alpine_opts {
                not_for(opt, given, src)?;
            }
            not_for("--sha256", req.sha256.is_some(), src)?;
            not_for("--insecure-no-verify", req.insecure_no_verify, src)?;
            Ok(Box::new(busybox::Busybox::find()?))
        }
        _ if src.starts_with("http://") || src.starts_with("https://") => {
            for (opt, given) in alpine_opts {
                not_for(opt, given, "a URL")?;
            }
            Ok(Box::new(url::Url::new(
                src,
                sha()?,
                req.insecure_no_verify,
            )?))
        }
        "" => Err(Error::msg(
            "source",
            "missing (alpine, busybox, a file or a URL)",
        )),
        _ => {
            for (opt, given) in alpine_opts {
                not_for(opt, given, "a file")?;
            }
            not_for("--insecure-no-verify", req.insecure_no_verify, "a file")?;
            Ok(Box::new(file::LocalFile::new(Path::new(src), sha()?)?))
        }
    }
}

/// Fetch, verify, unpack, self-install, commit. See the module comment.
pub fn fetch(req: &Request) -> Result<Summary> {
    let source = source_for(req)?;
    let dest = req
        .dest
        .clone()
        .unwrap_or_else(|| Path::new(IMAGES).join(source.name()));
    // Blocked before the work directory exists, so no signal can come between its creation
    // and the worker's start; dropped last, after the work directory is gone.
    let signals = Interruptible::new()?;
    let mut staging = Staging::prepare(&dest, req.force)?;
    let cancel = Cancel::new();
    let job = {
        let cancel = cancel.clone();
        let work = staging.work.clone();
        let rootfs = staging.rootfs();
        let progress = req.progress;
        move || -> Result<(Fetched, install::Installed)> {
            let ctx = Ctx {
                cancel: &cancel,
                progress,
                work,
            };
            let fetched = source.fill(&ctx, &rootfs)?;
            let _change = cancel.enter()?;
            let installed = install::self_install(&rootfs, Path::new("/proc/self/exe"))?;
            Ok((fetched, installed))
        }
    };
    let (fetched, installed) = signals.run(&cancel, job)?;
    if let Some(sig) = signals.pending() {
        return Err(cancel::interrupted(sig));
    }
    staging.commit(&dest, req.force)?;
    Ok(Summary {
        fetched,
        dest,
        installed,
    })
}

/// `--self-only DIR`: refresh box and its links in an existing rootfs.
pub fn self_only(dir: &Path) -> Result<install::Installed> {
    let meta =
        std::fs::metadata(dir).map_err(|e| Error::io(format!("rootfs {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::msg(
            format!("rootfs {}", dir.display()),
            "not a directory",
        ));
    }
    install::self_install(dir, Path::new("/proc/self/exe"))
}

/// The work directory `.NAME.partial-PID` beside DEST: `rootfs/` and the download. Removed
/// when dropped, whatever happened; after a commit it holds at most the replaced tree.
pub struct Staging {
    work: PathBuf,
}

impl Staging {
    /// Check DEST and make the work directory beside it (and DEST's parent if missing).
    pub fn prepare(dest: &Path, force: bool) -> Result<Staging> {
        let what = || format!("dest {}", dest.display());
        let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Err(Error::msg(what(), "not a directory name"));
        };
        match std::fs::symlink_metadata(dest) {
            Ok(_) if !force => {
                return Err(Error::msg(what(), "exists (use --force to replace it)"));
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::msg(
                    what(),
                    "exists and is not a directory (not replacing it)",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(what(), e)),
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        sweep_stale(&parent, &name);
        let work = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&work)
            .map_err(|e| Error::io(format!("create {}", work.display()), e))?;
        let staging = Staging { work };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(staging.rootfs())
            .map_err(|e| Error::io(format!("create {}", staging.rootfs().display()), e))?;
        crate::debug!("staging in {}", staging.work.display());
        Ok(staging)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.work.join("rootfs")
    }

    /// Move the finished rootfs to DEST in one rename.
    pub fn commit(&mut self, dest: &Path, force: bool) -> Result<()> {
        let rootfs = self.rootfs();
        let what = || format!("move {} to {}", rootfs.display(), dest.display());
        let exists = std::fs::symlink_metadata(dest).is_ok();
        if force && exists {
            match dirfd::rename_paths(&rootfs, dest, dirfd::RENAME_EXCHANGE) {
                Ok(()) => {
                    crate::debug!("exchanged {} with the new rootfs", dest.display());
                    return Ok(());
                }
                // A file system without RENAME_EXCHANGE: two renames, DEST briefly absent.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    let old = self.work.join("old");
                    std::fs::rename(dest, &old).map_err(|e| Error::io(what(), e))?;
                    crate::debug!("moved the old {} aside", dest.display());
                }
                Err(e) => return Err(Error::io(what(), e)),
            }
        }
        match dirfd::rename_paths(&rootfs, dest, dirfd::RENAME_NOREPLACE) {
            Ok(()) => {
                crate::debug!("renamed the new rootfs to {}", dest.display());
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Err(Error::msg(
                format!("dest {}", dest.display()),
                "appeared meanwhile (use --force to replace it)",
            )),
            Err(e) => Err(Error::io(what(), e)),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.work) {
            Ok(()) => crate::debug!("removed {}", self.work.display()),
            Err(e) => crate::debug!("remove {}: {e}", self.work.display()),
        }
    }
}

/// Remove `.NAME.partial-PID` directories whose process is gone (a fetch killed with SIGKILL,
/// which no cleanup can catch).
fn sweep_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for ent in entries.flatten() {
        let file = ent.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            crate::debug!("removing {} left by a killed fetch", ent.path().display());
            let _ = std::fs::remove_dir_all(ent.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(source: &str) -> Request {
        Request {
            source: source.into(),
            ..Default::default()
        }
    }

    #[test]
    fn options_must_fit_the_source() {
        let mut r = req("busybox");
        r.version = Some("3.21".into());
        assert_eq!(
            source_for(&r).err().unwrap().to_string(),
            "option --version: does not apply to busybox"
        );
        let mut r = req("alpine");
        r.sha256 = Some("00".into());
        assert!(source_for(&r).is_err());
        let mut r = req("/tmp/x.tar");
        r.mirror = Some("http://m".into());
        assert!(source_for(&r).is_err());
        assert!(source_for(&req("")).is_err());
    }

    #[test]
    fn urls_need_a_digest_unless_told_otherwise() {
        let e = source_for(&req("https://example.org/r.tar.gz"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "a URL needs --sha256 HEX (or --insecure-no-verify to use it unverified)"
        );
        let mut r = req("https://example.org/r.tar.gz");
        r.insecure_no_verify = true;
        assert_eq!(source_for(&r).unwrap().name(), "r");
        let mut r = req("https://example.org/r.tar.gz");
        r.sha256 = Some("ab".repeat(32));
        assert_eq!(source_for(&r).unwrap().name(), "r");
    }

    #[test]
    fn staging_refuses_an_existing_dest_and_cleans_up() {
        let d = std::env::temp_dir().join(format!("box-staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let dest = d.join("images/r");
        {
            let s = Staging::prepare(&dest, false).unwrap();
            assert!(s.rootfs().is_dir());
            std::fs::write(s.rootfs().join("f"), "x").unwrap();
        }
        // Dropped without a commit: nothing left, the parent was created.
        assert_eq!(std::fs::read_dir(d.join("images")).unwrap().count(), 0);
        let mut s = Staging::prepare(&dest, false).unwrap();
        std::fs::write(s.rootfs().join("f"), "new").unwrap();
        s.commit(&dest, false).unwrap();
        drop(s);
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(d.join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r"]);
        let e = Staging::prepare(&dest, false).err().unwrap().to_string();
        assert!(e.ends_with("r: exists (use --force to replace it)"), "{e}");
        // --force exchanges, and the old tree goes with the work directory.
        let mut s = Staging::prepare(&dest, true).unwrap();
        std::fs::write(s.rootfs().join("g"), "newer").unwrap();
        s.commit(&dest, true).unwrap();
        drop(s);
        assert!(!dest.join("f").exists());
        assert_eq!(std::fs::read_to_string(dest.join("g")).unwrap(), "newer");
        assert_eq!(std::fs::read_dir(d.join("images")).unwrap().count(), 1);
        // A file in the way is never replaced.
        std::fs::write(d.join("images/file"), "").unwrap();
        assert!(Staging::prepare(&d.join("images/file"), true).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_work_directories_of_dead_processes_are_swept() {
        let d = std::env::temp_dir().join(format!("box-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        // pid_max is at most 2^22, so this pid cannot be alive.
        let dead = d.join(".r.partial-99999999");
        let alive = d.join(format!(".r.partial-{}", std::process::id()));
        let other = d.join(".s.partial-99999999");
        for p in [&dead, &alive, &other] {
            std::fs::create_dir_all(p.join("rootfs")).unwrap();
        }
        sweep_stale(&d, "r");
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(other.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
