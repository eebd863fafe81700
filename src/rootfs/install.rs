//! Self-install: put this box binary into a rootfs with its applet links, plus the few things
//! every container needs whatever the distribution (`/proc`, `/sys`, `/dev`, `/tmp` and `/root`
//! to mount on or live in, and an `/etc/resolv.conf`).
//!
//! The rootfs may come from an untrusted tarball, and `/usr/local/bin` may be a symlink in it
//! (`/usr/local -> /opt`, or a hostile `-> /usr/local`). Every path is therefore resolved with
//! openat2(RESOLVE_IN_ROOT), the way the container will see it: a link is followed, but `/`
//! and `..` stop at the rootfs, so nothing on the host is ever written. The binary and the
//! links are written under a temporary name and renamed over the old ones, so a refresh
//! (`--self-only`) is atomic and a container running the old binary keeps running it.

use crate::error::{Error, Result};
use crate::sys::dirfd::{self, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV};
use std::fs::{File, Permissions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The applets a container uses; each gets a link to `box` in `/usr/local/bin`.
pub const LINKS: &[&str] = &["echo-server", "echo-client", "memhog", "cpuburn"];
/// Where box goes inside the rootfs.
pub const BIN_DIR: &str = "usr/local/bin";

const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

/// The directories a container needs, with the mode each gets when it is missing.
const DIRS: &[(&str, u32)] = &[
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("etc", 0o755),
    (BIN_DIR, 0o755),
];

/// What [`self_install`] did.
#[derive(Debug)]
pub struct Installed {
    /// The binary's path inside the rootfs, as the container sees it.
    pub binary: PathBuf,
    pub links: Vec<String>,
    pub bytes: u64,
}

/// Copy `exe` (normally /proc/self/exe, the running binary) to `rootfs`/usr/local/bin/box,
/// link [`LINKS`] to it, and make sure the basic directories and /etc/resolv.conf exist.
pub fn self_install(rootfs: &Path, exe: &Path) -> Result<Installed> {
    let ctx = || format!("install box into {}", rootfs.display());
    let root: OwnedFd = File::open(rootfs)
        .map_err(|e| Error::io(format!("open {}", rootfs.display()), e))?
        .into();
    for (dir, mode) in DIRS {
        ensure_dir(root.as_fd(), Path::new(dir), *mode).map_err(|e| e.context(ctx()))?;
    }
    let etc = open_in_root(root.as_fd(), Path::new("etc")).map_err(|e| e.context(ctx()))?;
    if dirfd::lstatat(etc.as_fd(), Path::new("resolv.conf"))
        .map_err(|e| Error::io("stat /etc/resolv.conf", e).context(ctx()))?
        .is_none()
    {
        // Empty is enough: the resolver then asks 127.0.0.1, and whoever sets up the
        // container's network writes the real one.
        let fd = dirfd::open_beneath(
            etc.as_fd(),
            Path::new("resolv.conf"),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600,
            IN_ROOT,
        )
        .map_err(|e| Error::io("create /etc/resolv.conf", e).context(ctx()))?;
        File::from(fd)
            .set_permissions(Permissions::from_mode(0o644))
            .map_err(|e| Error::io("chmod /etc/resolv.conf", e).context(ctx()))?;
        crate::debug!("created an empty /etc/resolv.conf");
    }

    let bin = open_in_root(root.as_fd(), Path::new(BIN_DIR)).map_err(|e| e.context(ctx()))?;
    let bytes = install_binary(bin.as_fd(), exe).map_err(|e| e.context(ctx()))?;
    crate::debug!("copied {} ({bytes} bytes) to /{BIN_DIR}/box", exe.display());
    let mut links = Vec::new();
    for name in LINKS {
        link(bin.as_fd(), name).map_err(|e| e.context(ctx()))?;
        links.push(name.to_string());
    }
    crate::debug!("linked {} to box", links.join(", "));
    Ok(Installed {
        binary: Path::new("/").join(BIN_DIR).join("box"),
        links,
        bytes,
    })
}

/// Open the directory `rel` of the rootfs as the container would resolve it.
fn open_in_root(root: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd> {
    dirfd::open_beneath(root, rel, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT)
        .map_err(|e| Error::io(format!("open /{}", rel.display()), e))
}

/// `mkdir -p` inside the rootfs; a directory created here gets `mode` (the last one) or 0755.
fn ensure_dir(root: BorrowedFd<'_>, rel: &Path, mode: u32) -> Result<()> {
    let mut prefix = PathBuf::new();
    let last = rel.components().count();
    for (i, comp) in rel.components().enumerate() {
        let parent = open_in_root(root, &dot(&prefix))?;
        prefix.push(comp);
        match dirfd::open_beneath(root, &prefix, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(Error::io(format!("open /{}", prefix.display()), e)),
        }
        let name = Path::new(comp.as_os_str());
        let want = if i + 1 == last { mode } else { 0o755 };
        dirfd::mkdirat(parent.as_fd(), name, 0o700)
            .map_err(|e| Error::io(format!("mkdir /{}", prefix.display()), e))?;
        // mkdir's mode passes through the umask; set the exact one (1777 for /tmp).
        let fd = dirfd::open_beneath(
            parent.as_fd(),
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            IN_ROOT,
        )
        .map_err(|e| Error::io(format!("open /{}", prefix.display()), e))?;
        File::from(fd)
            .set_permissions(Permissions::from_mode(want))
            .map_err(|e| Error::io(format!("chmod /{}", prefix.display()), e))?;
        crate::debug!("created /{} ({want:o})", prefix.display());
    }
    Ok(())
}

/// Copy `exe` to `box` in `bin` through a temporary name and rename it into place.
fn install_binary(bin: BorrowedFd<'_>, exe: &Path) -> Result<u64> {
    let mut src = File::open(exe).map_err(|e| Error::io(format!("open {}", exe.display()), e))?;
    let tmp = PathBuf::from(format!(".box.new-{}", std::process::id()));
    let _ = dirfd::unlinkat(bin, &tmp, false);
    let fd = dirfd::open_beneath(
        bin,
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
        IN_ROOT,
    )
    .map_err(|e| Error::io(format!("create /{BIN_DIR}/{}", tmp.display()), e))?;
    let mut dst = File::from(fd);
    let copied = io::copy(&mut src, &mut dst)
        .and_then(|n| {
            dst.set_permissions(Permissions::from_mode(0o755))?;
            Ok(n)
        })
        .and_then(|n| {
            dirfd::renameat2(bin, &tmp, bin, Path::new("box"), 0)?;
            Ok(n)
        });
    match copied {
        Ok(n) => Ok(n),
        Err(e) => {
            let _ = dirfd::unlinkat(bin, &tmp, false);
            Err(Error::io(format!("write /{BIN_DIR}/box"), e))
        }
    }
}

/// `name -> box` in `bin`. An existing symlink is replaced atomically; any other file of that
/// name is left alone and reported.
fn link(bin: BorrowedFd<'_>, name: &str) -> Result<()> {
    let path = Path::new(name);
    match dirfd::lstatat(bin, path).map_err(|e| Error::io(format!("stat {name}"), e))? {
        Some(st) if !st.is_symlink() => {
            return Err(Error::msg(
                format!("link /{BIN_DIR}/{name}"),
                "a file of that name exists and is not a symlink",
            ))
        }
        _ => {}
    }
    let tmp = PathBuf::from(format!(".{name}.new-{}", std::process::id()));
    let _ = dirfd::unlinkat(bin, &tmp, false);
    dirfd::symlinkat(Path::new("box"), bin, &tmp)
        .and_then(|_| dirfd::renameat2(bin, &tmp, bin, path, 0))
        .map_err(|e| {
            let _ = dirfd::unlinkat(bin, &tmp, false);
            Error::io(format!("link /{BIN_DIR}/{name}"), e)
        })
}

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

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("box-install-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn installs_binary_links_and_basics_into_an_empty_tree() {
        let d = tmpdir("empty");
        let exe = d.join("fake-box");
        std::fs::write(&exe, b"\x7fELF fake").unwrap();
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        let got = self_install(&root, &exe).unwrap();
        assert_eq!(got.binary, Path::new("/usr/local/bin/box"));
        assert_eq!(got.bytes, 9);
        let bin = root.join("usr/local/bin");
        assert_eq!(std::fs::read(bin.join("box")).unwrap(), b"\x7fELF fake");
        assert_eq!(
            std::fs::metadata(bin.join("box")).unwrap().mode() & 0o7777,
            0o755
        );
        for l in LINKS {
            assert_eq!(std::fs::read_link(bin.join(l)).unwrap(), Path::new("box"));
        }
        let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("root"), 0o700);
        assert_eq!(mode("proc"), 0o555);
        assert_eq!(mode("usr"), 0o755);
        assert_eq!(std::fs::read(root.join("etc/resolv.conf")).unwrap(), b"");
        // Nothing but the rootfs and the source binary in the temp dir.
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["fake-box", "root"]);
        // A refresh replaces the binary and keeps everything else.
        std::fs::write(&exe, b"\x7fELF newer").unwrap();
        std::fs::write(root.join("etc/resolv.conf"), "nameserver 10.0.0.1\n").unwrap();
        self_install(&root, &exe).unwrap();
        assert_eq!(std::fs::read(bin.join("box")).unwrap(), b"\x7fELF newer");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap(),
            "nameserver 10.0.0.1\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinks_in_the_rootfs_resolve_inside_it() {
        let d = tmpdir("links");
        let exe = d.join("fake-box");
        std::fs::write(&exe, b"box").unwrap();
        let root = d.join("root");
        let outside = d.join("outside");
        std::fs::create_dir_all(root.join("usr")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // A hostile tree: /usr/local points at a host path, /etc at `..`.
        std::os::unix::fs::symlink(&outside, root.join("usr/local")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("etc")).unwrap();
        // The container sees /usr/local -> <outside path> inside the rootfs.
        let inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        self_install(&root, &exe).unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(
            std::fs::read(inside.join("bin/box")).unwrap(),
            b"box",
            "box goes where the container resolves /usr/local/bin"
        );
        // `/etc -> ../../..` is the rootfs itself from inside.
        assert!(root.join("resolv.conf").exists());
        assert!(!d.join("resolv.conf").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_regular_file_in_the_way_of_a_link_is_reported() {
        let d = tmpdir("clash");
        let exe = d.join("fake-box");
        std::fs::write(&exe, b"box").unwrap();
        let root = d.join("root");
        std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
        std::fs::write(root.join("usr/local/bin/memhog"), "mine").unwrap();
        let e = self_install(&root, &exe).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "link /usr/local/bin/memhog: a file of that name exists and is not a symlink"
            ),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("usr/local/bin/memhog")).unwrap(),
            "mine"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
