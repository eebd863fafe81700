//! Finding the payload's executable inside a rootfs, from the host, before anything starts.
//!
//! Lookups go through openat2(RESOLVE_IN_ROOT): `/bin/sh -> /bin/busybox` resolves to the
//! rootfs' busybox, never to the host's, and `..` cannot climb out. The result is the path the
//! child will execve after pivot_root, where it names the same file.

use crate::error::{Error, Result, EXIT_CANNOT_RUN, EXIT_NOT_FOUND};
use crate::sys::fs as sysfs;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Resolve `cmd` in the rootfs at `root`: a name with a '/' is taken as a path (relative ones
/// from `workdir`), a bare name is searched in `path_var` like execvp does.
pub fn find(root: &Path, cmd: &str, path_var: &str, workdir: &Path) -> Result<PathBuf> {
    let dir =
        File::open(root).map_err(|e| Error::io(format!("open rootfs {}", root.display()), e))?;
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![workdir.join(cmd)]
    } else {
        path_var
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    let mut refusal: Option<&str> = None;
    for cand in &candidates {
        let fd = match sysfs::openat2(
            dir.as_fd(),
            cand,
            libc::O_PATH,
            sysfs::RESOLVE_IN_ROOT | sysfs::RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                refusal = Some("permission denied");
                continue;
            }
            Err(_) => continue,
        };
        let (mode, _, _) = sysfs::fstat(fd.as_fd())
            .map_err(|e| Error::io(format!("stat {}", cand.display()), e))?;
        match mode & libc::S_IFMT {
            libc::S_IFREG if mode & 0o111 != 0 => return Ok(cand.clone()),
            libc::S_IFREG => refusal = refusal.or(Some("permission denied (not executable)")),
            libc::S_IFDIR => refusal = refusal.or(Some("is a directory")),
            _ => refusal = refusal.or(Some("not a regular file")),
        }
    }
    match refusal {
        Some(why) => Err(Error::msg(format!("command {cmd}"), why).with_code(EXIT_CANNOT_RUN)),
        None if cmd.contains('/') => Err(Error::msg(
            format!("command {cmd}"),
            format!("not found in rootfs {}", root.display()),
        )
        .with_code(EXIT_NOT_FOUND)),
        None => Err(Error::msg(
            format!("command {cmd}"),
            format!("not found in rootfs {} (PATH={path_var})", root.display()),
        )
        .with_code(EXIT_NOT_FOUND)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn rootfs(tag: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("box-cmd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        for d in ["bin", "usr/bin", "data"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("bin/busybox"), b"#!").unwrap();
        std::fs::set_permissions(r.join("bin/busybox"), PermissionsExt::from_mode(0o755)).unwrap();
        // Absolute symlink: must resolve inside the rootfs, not on the host.
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        std::fs::write(r.join("data/notes"), b"x").unwrap();
        std::fs::set_permissions(r.join("data/notes"), PermissionsExt::from_mode(0o644)).unwrap();
        // Escapes that must stay inside: .. and an absolute link to a host path.
        symlink("../../../../../../usr/bin/env", r.join("usr/bin/escape")).unwrap();
        r
    }

    #[test]
    fn finds_by_path_and_by_name_inside_the_root() {
        let r = rootfs("find");
        let path = "/usr/bin:/bin";
        assert_eq!(
            find(&r, "sh", path, Path::new("/")).unwrap(),
            Path::new("/bin/sh")
        );
        assert_eq!(
            find(&r, "/bin/sh", path, Path::new("/")).unwrap(),
            Path::new("/bin/sh")
        );
        assert_eq!(
            find(&r, "./busybox", path, Path::new("/bin")).unwrap(),
            Path::new("/bin/./busybox")
        );
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn not_found_is_127_and_not_runnable_is_126() {
        let r = rootfs("codes");
        let path = "/usr/bin:/bin";
        let e = find(&r, "nope", path, Path::new("/")).unwrap_err();
        assert_eq!(e.code(), 127);
        assert!(
            e.to_string()
                .starts_with("command nope: not found in rootfs"),
            "{e}"
        );
        // The host has /usr/bin/env; the rootfs does not, and the lookup must not escape.
        let e = find(&r, "escape", path, Path::new("/")).unwrap_err();
        assert_eq!(e.code(), 127, "{e}");
        let e = find(&r, "/data/notes", path, Path::new("/")).unwrap_err();
        assert_eq!(e.code(), 126);
        assert_eq!(
            e.to_string(),
            "command /data/notes: permission denied (not executable)"
        );
        let e = find(&r, "/data", path, Path::new("/")).unwrap_err();
        assert_eq!(e.to_string(), "command /data: is a directory");
        std::fs::remove_dir_all(&r).unwrap();
    }
}
