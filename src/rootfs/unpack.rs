//! Safe unpacking of untrusted tarballs into an empty directory (the root).
//!
//! The guarantee: nothing is ever created, changed or removed outside the root, whatever the
//! archive says, and an entry that tries is refused with an error naming it. It rests on the
//! kernel, not on string checks alone:
//!
//! 1. Names are checked first: an absolute name or one with a `..` component is refused.
//! 2. The entry's parent directory is opened with openat2(RESOLVE_BENEATH |
//!    RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV): the kernel refuses any path that leaves the root
//!    or goes through a symlink, so an archive cannot plant `evil -> /` and then write
//!    `evil/etc/passwd` (this is bsdtar's default "secure symlinks" rule).
//! 3. The last component is created relative to that open directory with calls that never
//!    follow it (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`, `linkat` without
//!    `AT_SYMLINK_FOLLOW`); whatever was there before is unlinked first, never written through.
//! 4. Symlinks are created only when their target, read from the link's directory (an absolute
//!    target from the root, as the container will see it), stays inside the root. Absolute
//!    targets are normal in a rootfs (`/bin/sh -> /bin/busybox`); box never follows links
//!    inside the tree from the host (rule 2 here, openat2(RESOLVE_IN_ROOT) in the self-install).
//! 5. Hard links must name a file already unpacked inside the root, through real directories.
//!
//! Modes (setuid bits included), owners (when running as root), symlinks, hard links and
//! modification times are kept. Device nodes and FIFOs are skipped: a container gets its /dev
//! at run time. Directory modes and times are applied at the end, deepest first, so a
//! read-only directory can still be filled and a parent's time is not disturbed by its children.

use super::cancel::Cancel;
use crate::error::{Error, Result};
use crate::sys::dirfd::{
    self, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};
use crate::sys::process;
use std::fs::{File, FileTimes, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How every path inside the root is resolved: no escape, no symlink, no mount crossing.
const SAFE: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
const CHUNK: usize = 64 * 1024;

/// What was unpacked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Device nodes and FIFOs left out.
    pub skipped: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Unpack the tarball at `path` (plain or gzip) into the empty directory `root`; errors say
/// `unpack LABEL: ...`.
pub fn unpack_file(path: &Path, label: &str, root: &Path, cancel: &Cancel) -> Result<Stats> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    unpack(f, root, cancel).map_err(|e| e.context(format!("unpack {label}")))
}

/// Unpack a tar stream (plain or gzip, told by its first bytes) into the empty directory
/// `root`. Every change happens under `cancel`'s gate, reads never do.
pub fn unpack(input: impl Read, root: &Path, cancel: &Cancel) -> Result<Stats> {
    let mut input = BufReader::with_capacity(CHUNK, input);
    let mut head = Vec::with_capacity(6);
    (&mut input)
        .take(6)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("read", e))?;
    let stream = io::Cursor::new(head.clone()).chain(input);
    match compression(&head) {
        Some("gzip") => {
            crate::debug!("gzip-compressed tar");
            unpack_tar(flate2::read::MultiGzDecoder::new(stream), root, cancel)
        }
        Some(other) => Err(Error::msg(
            format!("compressed with {other}"),
            "not supported (use a .tar or .tar.gz)",
        )),
        None => unpack_tar(stream, root, cancel),
    }
}

fn compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    }
}

fn unpack_tar(input: impl Read, root: &Path, cancel: &Cancel) -> Result<Stats> {
    let root_fd: OwnedFd = File::open(root)
        .map_err(|e| Error::io(format!("open {}", root.display()), e))?
        .into();
    let mut u = Unpacker {
        root: root_fd,
        cancel,
        chown: process::geteuid() == 0,
        dirs: Vec::new(),
        root_meta: None,
        stats: Stats::default(),
    };
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| Error::io("read tar archive", e))?;
    for entry in entries {
        cancel.check()?;
        let mut entry = entry.map_err(|e| Error::io("read tar entry", e))?;
        let raw = entry
            .path()
            .map_err(|e| Error::io("read tar entry name", e))?
            .into_owned();
        u.entry(&mut entry, &raw)
            .map_err(|e| e.context(format!("entry {}", raw.display())))?;
    }
    u.finish()?;
    let s = &u.stats;
    crate::debug!(
        "unpacked {} files ({} bytes), {} directories, {} symlinks, {} hard links; skipped {} \
         device nodes and fifos",
        s.files,
        s.bytes,
        s.dirs,
        s.symlinks,
        s.hardlinks,
        s.skipped
    );
    Ok(u.stats)
}

/// Owner, mode and time of an entry, from its header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    root: OwnedFd,
    cancel: &'a Cancel,
    /// Keep owners: only root may give files away.
    chown: bool,
    /// Directories whose mode and time are set at the end.
    dirs: Vec<(PathBuf, Meta)>,
    /// The archive's own `./` entry, applied to the root at the end.
    root_meta: Option<Meta>,
    stats: Stats,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, raw: &Path) -> Result<()> {
        let rel = clean(raw)?;
        let h = e.header();
        let bad_header = |e: io::Error| Error::io("read header", e);
        let meta = Meta {
            mode: h.mode().map_err(bad_header)? & 0o7777,
            uid: h.uid().map_err(bad_header)? as u32,
            gid: h.gid().map_err(bad_header)? as u32,
            mtime: h.mtime().map_err(bad_header)? as i64,
        };
        let kind = h.entry_type();
        if rel.as_os_str().is_empty() {
            if !kind.is_dir() {
                return Err(Error::msg("", "the root of the archive is not a directory"));
            }
            self.root_meta = Some(meta);
            return Ok(());
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let name = Path::new(rel.file_name().unwrap_or_default());
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => self.file(e, parent, name, meta),
            T::Directory => self.dir(&rel, parent, name, meta),
            T::Symlink => {
                let target = link_target(e)?;
                self.symlink(parent, name, &target, meta)
            }
            T::Link => {
                let target = link_target(e)?;
                self.hardlink(&rel, parent, name, &target)
            }
            T::Char | T::Block | T::Fifo => {
                crate::debug!(
                    "skip {} {}: device nodes and fifos are not unpacked (the container gets \
                     its /dev at run time)",
                    match kind {
                        T::Char => "character device",
                        T::Block => "block device",
                        _ => "fifo",
                    },
                    rel.display()
                );
                self.stats.skipped += 1;
                Ok(())
            }
            T::XGlobalHeader => Ok(()),
            other => Err(Error::msg(
                "",
                format!("unsupported entry type {:?}", other.as_byte() as char),
            )),
        }
    }

    fn file<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        parent: &Path,
        name: &Path,
        meta: Meta,
    ) -> Result<()> {
        let mut f = {
            let _change = self.cancel.enter()?;
            let dir = self.open_parent(parent)?;
            make_room(dir.as_fd(), name, false)?;
            let fd = dirfd::open_beneath(
                dir.as_fd(),
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
                SAFE,
            )
            .map_err(|e| Error::io("create", e))?;
            File::from(fd)
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            self.cancel.check()?;
            let n = match e.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Error::io("read data", err)),
            };
            let _change = self.cancel.enter()?;
            f.write_all(&buf[..n]).map_err(|e| Error::io("write", e))?;
            self.stats.bytes += n as u64;
        }
        let _change = self.cancel.enter()?;
        self.set_meta(&f, meta)?;
        self.stats.files += 1;
        Ok(())
    }

    fn dir(&mut self, rel: &Path, parent: &Path, name: &Path, meta: Meta) -> Result<()> {
        let _change = self.cancel.enter()?;
        let dir = self.open_parent(parent)?;
        if !make_room(dir.as_fd(), name, true)? {
            // Owner-only until the end, when its real mode is set.
            dirfd::mkdirat(dir.as_fd(), name, 0o700).map_err(|e| Error::io("mkdir", e))?;
        }
        self.dirs.push((rel.to_path_buf(), meta));
        self.stats.dirs += 1;
        Ok(())
    }

    fn symlink(&mut self, parent: &Path, name: &Path, target: &Path, meta: Meta) -> Result<()> {
        if !stays_inside(parent, target) {
            return Err(Error::msg(
                format!("symlink to {}", target.display()),
                "points outside the root",
            ));
        }
        let _change = self.cancel.enter()?;
        let dir = self.open_parent(parent)?;
        make_room(dir.as_fd(), name, false)?;
        dirfd::symlinkat(target, dir.as_fd(), name).map_err(|e| Error::io("symlink", e))?;
        if self.chown {
            dirfd::lchownat(dir.as_fd(), name, meta.uid, meta.gid)
                .map_err(|e| Error::io("chown", e))?;
        }
        dirfd::lutimesat(dir.as_fd(), name, meta.mtime.max(0))
            .map_err(|e| Error::io("set time", e))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hardlink(&mut self, rel: &Path, parent: &Path, name: &Path, target: &Path) -> Result<()> {
        let outside = || {
            Error::msg(
                format!("hard link to {}", target.display()),
                "points outside the root",
            )
        };
        let t = clean(target).map_err(|_| outside())?;
        let Some(t_name) = t.file_name().map(Path::new) else {
            return Err(outside());
        };
        if t == rel {
            return Ok(()); // a link to itself: nothing to do
        }
        let _change = self.cancel.enter()?;
        let t_dir = match dirfd::open_beneath(
            self.root.as_fd(),
            &dot(t.parent().unwrap_or(Path::new(""))),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            SAFE,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                let ctx = format!("hard link to {}", target.display());
                return Err(self.resolve_error(&t, e).context(ctx));
            }
        };
        match dirfd::lstatat(t_dir.as_fd(), t_name).map_err(|e| Error::io("stat target", e))? {
            None => {
                return Err(Error::msg(
                    format!("hard link to {}", target.display()),
                    "no such file in the archive before it",
                ))
            }
            Some(st) if st.is_dir() => {
                return Err(Error::msg(
                    format!("hard link to {}", target.display()),
                    "is a directory",
                ))
            }
            Some(_) => {}
        }
        let dir = self.open_parent(parent)?;
        make_room(dir.as_fd(), name, false)?;
        dirfd::linkat(t_dir.as_fd(), t_name, dir.as_fd(), name)
            .map_err(|e| Error::io(format!("hard link to {}", target.display()), e))?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// Open the directory `rel` inside the root, creating missing components (0755) as tar
    /// does for archives that list files before, or without, their directories.
    fn open_parent(&self, rel: &Path) -> Result<OwnedFd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        match dirfd::open_beneath(self.root.as_fd(), &dot(rel), flags, 0, SAFE) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(self.resolve_error(rel, e)),
        }
        let mut cur = dirfd::open_beneath(self.root.as_fd(), Path::new("."), flags, 0, SAFE)
            .map_err(|e| Error::io("open the root", e))?;
        for comp in rel.components() {
            let comp = Path::new(comp.as_os_str());
            let next = match dirfd::open_beneath(cur.as_fd(), comp, flags, 0, SAFE) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let mkdir = |e| Error::io(format!("mkdir {}", comp.display()), e);
                    dirfd::mkdirat(cur.as_fd(), comp, 0o700).map_err(mkdir)?;
                    // 0755 whatever the umask; an entry for it later sets its own mode.
                    let made = dirfd::open_beneath(
                        cur.as_fd(),
                        comp,
                        libc::O_RDONLY | libc::O_DIRECTORY,
                        0,
                        SAFE,
                    )
                    .map_err(|e| self.resolve_error(rel, e))?;
                    let made = File::from(made);
                    made.set_permissions(Permissions::from_mode(0o755))
                        .map_err(mkdir)?;
                    OwnedFd::from(made)
                }
                Err(e) => return Err(self.resolve_error(rel, e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Why a path inside the root could not be opened, naming the symlink in the way.
    fn resolve_error(&self, rel: &Path, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ELOOP) => {
                let link = self
                    .first_symlink(rel)
                    .map_or_else(|| rel.display().to_string(), |l| l.display().to_string());
                Error::msg(
                    format!("path goes through symlink {link}"),
                    "refusing to write through links",
                )
            }
            Some(libc::ENOTDIR) => Error::msg(
                format!("path {}", rel.display()),
                "a component is not a directory",
            ),
            Some(libc::EXDEV) => Error::msg(format!("path {}", rel.display()), "leaves the root"),
            _ => Error::io(format!("open {}", rel.display()), e),
        }
    }

    fn first_symlink(&self, rel: &Path) -> Option<PathBuf> {
        let mut prefix = PathBuf::new();
        for comp in rel.components() {
            let parent = dirfd::open_beneath(
                self.root.as_fd(),
                &dot(&prefix),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                SAFE,
            )
            .ok()?;
            prefix.push(comp);
            let st = dirfd::lstatat(parent.as_fd(), Path::new(comp.as_os_str())).ok()??;
            if st.is_symlink() {
                return Some(prefix);
            }
        }
        None
    }

    fn set_meta(&self, f: &File, meta: Meta) -> Result<()> {
        if self.chown {
            // Before chmod: chown clears setuid and setgid bits.
            std::os::unix::fs::fchown(f, Some(meta.uid), Some(meta.gid))
                .map_err(|e| Error::io("chown", e))?;
        }
        f.set_permissions(Permissions::from_mode(meta.mode))
            .map_err(|e| Error::io("chmod", e))?;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(meta.mtime.max(0) as u64);
        f.set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(|e| Error::io("set time", e))?;
        Ok(())
    }

    /// Directory modes and times, deepest first; then the root's own.
    fn finish(&mut self) -> Result<()> {
        let _change = self.cancel.enter()?;
        let mut dirs = std::mem::take(&mut self.dirs);
        // Stable: of two entries for one directory, the later is applied last and wins.
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, meta) in dirs {
            let fd = match dirfd::open_beneath(
                self.root.as_fd(),
                &rel,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                SAFE,
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    // A later entry replaced it (with a file or a link): nothing to set.
                    crate::debug!("directory {} gone ({e}): mode not set", rel.display());
                    continue;
                }
            };
            self.set_meta(&File::from(fd), meta)
                .map_err(|e| e.context(format!("directory {}", rel.display())))?;
        }
        let root = File::from(
            self.root
                .try_clone()
                .map_err(|e| Error::io("dup the root", e))?,
        );
        let meta = self.root_meta.unwrap_or(Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
        });
        match self.root_meta {
            Some(_) => self.set_meta(&root, meta),
            None => root
                .set_permissions(Permissions::from_mode(0o755))
                .map_err(|e| Error::io("chmod", e)),
        }
        .map_err(|e| e.context("the root"))
    }
}

/// Make way for a new entry called `name` in `dir`: anything there is unlinked (never written
/// through). With `keep_dir` an existing directory stays; returns whether one did.
fn make_room(dir: BorrowedFd<'_>, name: &Path, keep_dir: bool) -> Result<bool> {
    let Some(st) = dirfd::lstatat(dir, name).map_err(|e| Error::io("stat", e))? else {
        return Ok(false);
    };
    if st.is_dir() && keep_dir {
        return Ok(true);
    }
    match dirfd::unlinkat(dir, name, st.is_dir()) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            Err(Error::msg("", "replaces a directory that is not empty"))
        }
        Err(e) => Err(Error::io("remove the earlier entry", e)),
    }
}

/// An entry name as a relative path: `.` components dropped; absolute names and `..`
/// refused. The empty path is the root itself.
pub fn clean(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::msg(
                    "",
                    "name has a .. component (refusing anything outside the root)",
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::msg(
                    "",
                    "name is absolute (refusing anything outside the root)",
                ))
            }
        }
    }
    Ok(out)
}

/// Whether a symlink in directory `parent` (relative to the root) with contents `target`
/// stays inside the root when read as the container will: relative targets from `parent`,
/// absolute ones from the root. `..` above the root is "outside".
pub fn stays_inside(parent: &Path, target: &Path) -> bool {
    let mut depth: usize = if target.is_absolute() {
        0
    } else {
        parent.components().count()
    };
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    true
}

fn link_target<R: Read>(e: &tar::Entry<'_, R>) -> Result<PathBuf> {
    e.link_name()
        .map_err(|e| Error::io("read link target", e))?
        .map(|t| t.into_owned())
        .filter(|t| !t.as_os_str().is_empty())
        .ok_or_else(|| Error::msg("", "link without a target"))
}

/// `""` is the root itself, which openat2 spells `.`.
fn dot(rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory with `root/` (the unpack target) and room beside it, removed at drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new() -> Tmp {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "box-unpack-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("root")).unwrap();
            Tmp(dir)
        }
        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
        /// Everything in the temp dir except the root: must stay as it was.
        fn outside(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "root")
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Build a tar in memory, writing names raw so malicious ones survive (the tar crate's
    /// own path setter refuses `..`).
    #[derive(Default)]
    struct Tar(Vec<u8>);

    impl Tar {
        fn add(&mut self, name: &str, kind: tar::EntryType, mode: u32, link: &str, data: &[u8]) {
            let mut h = tar::Header::new_ustar();
            {
                let raw = h.as_old_mut();
                raw.name[..name.len()].copy_from_slice(name.as_bytes());
                raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.extend(std::iter::repeat_n(0u8, pad));
        }
        fn file(mut self, name: &str, data: &str) -> Self {
            self.add(name, tar::EntryType::Regular, 0o644, "", data.as_bytes());
            self
        }
        fn dir(mut self, name: &str, mode: u32) -> Self {
            self.add(name, tar::EntryType::Directory, mode, "", b"");
            self
        }
        fn symlink(mut self, name: &str, target: &str) -> Self {
            self.add(name, tar::EntryType::Symlink, 0o777, target, b"");
            self
        }
        fn hardlink(mut self, name: &str, target: &str) -> Self {
            self.add(name, tar::EntryType::Link, 0o644, target, b"");
            self
        }
        fn bytes(mut self) -> Vec<u8> {
            self.0.extend(std::iter::repeat_n(0u8, 1024));
            self.0
        }
    }

    fn run(t: &Tmp, tar: Vec<u8>) -> Result<Stats> {
        unpack(&tar[..], &t.root(), &Cancel::default())
    }

    #[test]
    fn unpacks_files_dirs_links_and_modes() {
        let t = Tmp::new();
        let tar = Tar::default()
            .dir("./", 0o755)
            .dir("./bin/", 0o755)
            .file("./bin/busybox", "#!elf")
            .symlink("./bin/sh", "/bin/busybox")
            .symlink("./bin/ash", "busybox")
            .hardlink("./bin/bb2", "./bin/busybox")
            .dir("./etc/", 0o700)
            .file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n")
            .file("./deep/er/file", "implicit parents")
            .dir("./ro/", 0o555)
            .file("./ro/inside", "written before ro applies");
        let mut tar = tar;
        tar.add("./bin/su", tar::EntryType::Regular, 0o4755, "", b"suid");
        tar.add("./dev/null", tar::EntryType::Char, 0o666, "", b"");
        let stats = run(&t, tar.bytes()).unwrap();
        assert_eq!(stats.files, 5);
        assert_eq!(stats.symlinks, 2);
        assert_eq!(stats.hardlinks, 1);
        assert_eq!(stats.skipped, 1);
        let r = t.root();
        assert_eq!(
            std::fs::read_to_string(r.join("bin/busybox")).unwrap(),
            "#!elf"
        );
        assert_eq!(
            std::fs::read_link(r.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            std::fs::read_link(r.join("bin/ash")).unwrap(),
            Path::new("busybox")
        );
        let a = std::fs::metadata(r.join("bin/busybox")).unwrap();
        let b = std::fs::metadata(r.join("bin/bb2")).unwrap();
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        let mode = |p: &str| std::fs::symlink_metadata(r.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("bin/su"), 0o4755);
        assert_eq!(mode("etc"), 0o700);
        assert_eq!(mode("ro"), 0o555);
        assert_eq!(mode("deep"), 0o755);
        assert_eq!(mode("etc/passwd"), 0o644);
        assert_eq!(std::fs::metadata(&r).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(a.mtime(), 1_700_000_000);
        assert_eq!(
            std::fs::metadata(r.join("etc")).unwrap().mtime(),
            1_700_000_000
        );
        assert!(!r.join("dev/null").exists());
    }

    #[test]
    fn gzip_is_recognised_and_others_refused() {
        let t = Tmp::new();
        let tar = Tar::default().file("a", "x").bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        run(&t, gz.finish().unwrap()).unwrap();
        assert!(t.root().join("a").exists());
        let t = Tmp::new();
        let e = run(&t, b"\xfd7zXZ\0rest".to_vec()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compressed with xz: not supported (use a .tar or .tar.gz)"
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones_without_following_them() {
        let t = Tmp::new();
        std::fs::write(t.0.join("target"), "outside").unwrap();
        // A symlink to a file outside would be refused; an inside one is replaced, not
        // written through.
        let tar = Tar::default()
            .file("victim", "inside")
            .symlink("link", "victim")
            .file("link", "new")
            .dir("d/", 0o755)
            .symlink("d", "victim")
            .bytes();
        run(&t, tar).unwrap();
        let r = t.root();
        assert_eq!(std::fs::read_to_string(r.join("victim")).unwrap(), "inside");
        assert_eq!(std::fs::read_to_string(r.join("link")).unwrap(), "new");
        assert!(std::fs::symlink_metadata(r.join("d"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    fn refused(tar: Vec<u8>, want: &str) {
        let t = Tmp::new();
        let before = t.outside();
        let e = run(&t, tar).unwrap_err().to_string();
        assert!(e.contains(want), "error {e:?} lacks {want:?}");
        assert_eq!(t.outside(), before, "something was written beside the root");
    }

    #[test]
    fn dotdot_names_are_refused() {
        refused(
            Tar::default().file("../evil", "x").bytes(),
            "entry ../evil: name has a .. component",
        );
        refused(
            Tar::default().file("a/../../evil", "x").bytes(),
            "entry a/../../evil: name has a .. component",
        );
    }

    #[test]
    fn absolute_names_are_refused() {
        let evil = std::env::temp_dir().join(format!("box-unpack-abs-{}", std::process::id()));
        let name = evil.to_str().unwrap();
        refused(
            Tar::default().file(name, "x").bytes(),
            &format!("entry {name}: name is absolute"),
        );
        assert!(!evil.exists());
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let tmp = std::env::temp_dir();
        let evil = format!("box-unpack-sym-{}", std::process::id());
        // `up -> /` is a legal absolute link; writing through it is not.
        let through = format!("up{}/{evil}", tmp.display());
        refused(
            Tar::default()
                .symlink("up", "/")
                .file(&through, "x")
                .bytes(),
            &format!(
                "entry {through}: path goes through symlink up: refusing to write through links"
            ),
        );
        assert!(!tmp.join(&evil).exists());
        // A link to an inside directory cannot be written through either.
        refused(
            Tar::default()
                .dir("real/", 0o755)
                .symlink("alias", "real")
                .file("alias/f", "x")
                .bytes(),
            "path goes through symlink alias",
        );
        // Nor can a directory entry or a hard link go through one.
        refused(
            Tar::default()
                .symlink("up", "/")
                .dir("up/tmp/x/", 0o755)
                .bytes(),
            "path goes through symlink up",
        );
    }

    #[test]
    fn symlinks_pointing_outside_are_refused() {
        refused(
            Tar::default().symlink("a/b", "../../etc").bytes(),
            "entry a/b: symlink to ../../etc: points outside the root",
        );
        refused(
            Tar::default().symlink("x", "/../etc").bytes(),
            "points outside the root",
        );
        assert!(stays_inside(Path::new("a/b"), Path::new("../../etc")));
        assert!(stays_inside(Path::new(""), Path::new("/")));
        assert!(!stays_inside(Path::new("a"), Path::new("../../x")));
    }

    #[test]
    fn hardlinks_outside_are_refused() {
        let passwd_before = std::fs::metadata("/etc/passwd").unwrap();
        refused(
            Tar::default().hardlink("pw", "/etc/passwd").bytes(),
            "entry pw: hard link to /etc/passwd: points outside the root",
        );
        refused(
            Tar::default()
                .hardlink("pw", "../../../../etc/passwd")
                .bytes(),
            "points outside the root",
        );
        // Through a symlink planted in the archive.
        refused(
            Tar::default()
                .symlink("etc", "/etc")
                .hardlink("pw", "etc/passwd")
                .bytes(),
            "path goes through symlink etc",
        );
        let passwd_after = std::fs::metadata("/etc/passwd").unwrap();
        assert_eq!(passwd_before.nlink(), passwd_after.nlink());
        assert_eq!(passwd_before.ino(), passwd_after.ino());
    }

    #[test]
    fn nothing_is_created_once_cancelled() {
        let t = Tmp::new();
        let c = Cancel::default();
        c.stop(libc::SIGINT);
        let tar = Tar::default().file("a", "x").bytes();
        let e = unpack(&tar[..], &t.root(), &c).unwrap_err();
        assert_eq!(e.code(), 130);
        assert!(!t.root().join("a").exists());
    }
}
