//! The container's file system view, as a plan of typed operations and one executor.
//!
//! [`plan`] turns the rootfs into a list of [`Op`]s (unit-tested without root); [`apply`] runs
//! them in order inside the child's new mount namespace and names the step that failed.
//!
//! Order matters, and the plan encodes it:
//! 1. Make every mount private first, so nothing below propagates back to the host.
//! 2. Bind the rootfs onto itself: pivot_root needs the new root to be a mount point.
//! 3. pivot_root, then detach the old root: from here on no host path is reachable.
//! 4. Only then mount /proc, /sys, /dev and the rest, by paths inside the new root. Doing it
//!    after the pivot means a hostile rootfs (say, `/proc` a symlink to `/etc`) can only
//!    redirect a mount to somewhere inside itself, never onto a host path.
//! 5. Mask and write-protect the sensitive parts of /proc and /sys last, once they exist.

use crate::error::{Error, Result};
use crate::sys::fs as sysfs;
use std::path::{Path, PathBuf};

/// One step of the file system setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `mount --make-rprivate /`.
    PrivateRoot,
    /// Bind a directory onto itself (recursive), making it a mount point.
    BindSelf(PathBuf),
    /// pivot_root into the directory and lazily detach the old root.
    PivotRoot(PathBuf),
    /// Mount a fresh file system (creating the mount point if missing).
    Mount {
        fstype: &'static str,
        target: &'static str,
        flags: libc::c_ulong,
        data: Option<&'static str>,
    },
    Mkdir(&'static str),
    /// A character device node with mode 0666.
    Device {
        path: &'static str,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: &'static str,
        link: &'static str,
    },
    /// Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory.
    /// Paths that do not exist on this kernel are skipped.
    Mask(&'static str),
    /// Make a path read-only (bind onto itself, remount read-only); skipped if missing.
    ReadOnly(&'static str),
}

use libc::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME};

/// The device nodes of the container's /dev, as (name, major, minor).
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Paths hidden from the container (Docker's default list).
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths the container may read but not write.
pub const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The whole setup for a rootfs at the absolute host path `rootfs`.
pub fn plan(rootfs: &Path) -> Vec<Op> {
    let mut ops = vec![
        Op::PrivateRoot,
        Op::BindSelf(rootfs.to_path_buf()),
        Op::PivotRoot(rootfs.to_path_buf()),
        Op::Mount {
            fstype: "proc",
            target: "/proc",
            flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: None,
        },
        Op::Mount {
            fstype: "sysfs",
            target: "/sys",
            flags: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: None,
        },
        Op::Mount {
            fstype: "tmpfs",
            target: "/dev",
            flags: MS_NOSUID | MS_STRICTATIME,
            data: Some("mode=755,size=65536k"),
        },
    ];
    ops.extend(
        DEVICES
            .iter()
            .map(|&(path, major, minor)| Op::Device { path, major, minor }),
    );
    ops.extend(
        [
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
            ("pts/ptmx", "/dev/ptmx"),
        ]
        .map(|(target, link)| Op::Symlink { target, link }),
    );
    ops.extend([
        Op::Mkdir("/dev/pts"),
        Op::Mount {
            fstype: "devpts",
            target: "/dev/pts",
            flags: MS_NOSUID | MS_NOEXEC,
            // Its own instance, so the container's ptys are not the host's.
            data: Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        },
        Op::Mkdir("/dev/shm"),
        Op::Mount {
            fstype: "tmpfs",
            target: "/dev/shm",
            flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: Some("mode=1777,size=65536k"),
        },
        Op::Mkdir("/dev/mqueue"),
        Op::Mount {
            fstype: "mqueue",
            target: "/dev/mqueue",
            flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: None,
        },
    ]);
    ops.extend(MASKED.iter().map(|p| Op::Mask(p)));
    ops.extend(READ_ONLY.iter().map(|p| Op::ReadOnly(p)));
    ops
}

impl Op {
    /// The step's name in an error message (`mount proc on /proc`).
    pub fn describe(&self) -> String {
        match self {
            Op::PrivateRoot => "make / private".into(),
            Op::BindSelf(p) => format!("bind {} onto itself", p.display()),
            Op::PivotRoot(p) => format!("pivot_root into {}", p.display()),
            Op::Mount { fstype, target, .. } => format!("mount {fstype} on {target}"),
            Op::Mkdir(p) => format!("mkdir {p}"),
            Op::Device { path, .. } => format!("mknod {path}"),
            Op::Symlink { link, .. } => format!("symlink {link}"),
            Op::Mask(p) => format!("mask {p}"),
            Op::ReadOnly(p) => format!("make {p} read-only"),
        }
    }
}

/// Run the plan, stopping at the first failure with the step's name.
pub fn apply(ops: &[Op]) -> Result<()> {
    for op in ops {
        crate::debug!("{}", op.describe());
        run(op).map_err(|e| Error::io(op.describe(), e))?;
    }
    Ok(())
}

fn run(op: &Op) -> std::io::Result<()> {
    match op {
        Op::PrivateRoot => sysfs::mount(
            None,
            Path::new("/"),
            None,
            sysfs::MS_REC | sysfs::MS_PRIVATE,
            None,
        ),
        Op::BindSelf(p) => sysfs::bind(p, p, true),
        Op::PivotRoot(p) => {
            // pivot_root(".", ".") stacks the old root on top of the new one at "/"; the
            // detach below then removes exactly that top mount. No put_old directory is
            // needed in the rootfs, and nothing of it stays visible.
            sysfs::chdir(p)?;
            sysfs::pivot_root(Path::new("."), Path::new("."))?;
            // Keep unmount events from propagating anywhere, whatever the host's settings.
            sysfs::mount(
                None,
                Path::new("."),
                None,
                sysfs::MS_SLAVE | sysfs::MS_REC,
                None,
            )?;
            sysfs::umount2(Path::new("."), sysfs::MNT_DETACH)?;
            sysfs::chdir(Path::new("/"))
        }
        Op::Mount {
            fstype,
            target,
            flags,
            data,
        } => {
            let target = Path::new(target);
            ensure_dir(target)?;
            sysfs::mount(Some(fstype), target, Some(fstype), *flags, *data)
        }
        Op::Mkdir(p) => ensure_dir(Path::new(p)),
        Op::Device { path, major, minor } => {
            sysfs::mknod_char(Path::new(path), 0o666, *major, *minor)?;
            // mknod applies the umask; the nodes must be usable by every user.
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        }
        Op::Symlink { target, link } => std::os::unix::fs::symlink(target, link),
        Op::Mask(p) => {
            let p = Path::new(p);
            match std::fs::symlink_metadata(p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
                Ok(m) if m.is_dir() => sysfs::mount(
                    Some("tmpfs"),
                    p,
                    Some("tmpfs"),
                    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    Some("size=0"),
                ),
                Ok(_) => sysfs::bind(Path::new("/dev/null"), p, false),
            }
        }
        Op::ReadOnly(p) => {
            let p = Path::new(p);
            if !p.exists() {
                return Ok(());
            }
            sysfs::bind(p, p, true)?;
            // A bind mount takes the source's flags; a read-only remount must repeat the ones
            // it keeps (nosuid, nodev, noexec) or the kernel may refuse it.
            let keep = sysfs::mount_flags(p)?;
            sysfs::mount(
                None,
                p,
                None,
                sysfs::MS_BIND | sysfs::MS_REMOUNT | MS_RDONLY | keep,
                None,
            )
        }
    }
}

fn ensure_dir(p: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(p) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(ops: &[Op], want: impl Fn(&Op) -> bool) -> usize {
        ops.iter().position(want).expect("op missing from plan")
    }

    #[test]
    fn pivot_comes_before_every_fresh_mount() {
        let ops = plan(Path::new("/images/alpine"));
        assert_eq!(ops[0], Op::PrivateRoot);
        assert_eq!(ops[1], Op::BindSelf("/images/alpine".into()));
        assert_eq!(ops[2], Op::PivotRoot("/images/alpine".into()));
        let first_mount = position(&ops, |o| matches!(o, Op::Mount { .. }));
        assert!(first_mount > 2);
    }

    #[test]
    fn dev_has_the_standard_nodes_and_its_own_devpts() {
        let ops = plan(Path::new("/r"));
        for name in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
        ] {
            let dev = position(
                &ops,
                |o| matches!(o, Op::Device { path, .. } if *path == name),
            );
            let tmpfs = position(&ops, |o| matches!(o, Op::Mount { target: "/dev", .. }));
            assert!(dev > tmpfs, "{name} must be made inside the /dev tmpfs");
        }
        let devpts = ops
            .iter()
            .find(|o| {
                matches!(
                    o,
                    Op::Mount {
                        fstype: "devpts",
                        ..
                    }
                )
            })
            .unwrap();
        match devpts {
            Op::Mount { data, .. } => assert!(data.unwrap().contains("newinstance")),
            _ => unreachable!(),
        }
        assert!(ops.contains(&Op::Symlink {
            target: "pts/ptmx",
            link: "/dev/ptmx"
        }));
        assert!(ops.iter().any(|o| matches!(
            o,
            Op::Mount {
                target: "/dev/shm",
                ..
            }
        )));
    }

    #[test]
    fn sys_is_read_only_and_proc_is_hardened_after_it_is_mounted() {
        let ops = plan(Path::new("/r"));
        match &ops[position(&ops, |o| {
            matches!(
                o,
                Op::Mount {
                    fstype: "sysfs",
                    ..
                }
            )
        })] {
            Op::Mount { flags, .. } => assert!(flags & MS_RDONLY != 0),
            _ => unreachable!(),
        }
        let proc_at = position(&ops, |o| matches!(o, Op::Mount { fstype: "proc", .. }));
        for p in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
            assert!(position(&ops, |o| *o == Op::Mask(p)) > proc_at);
        }
        for p in ["/proc/sys", "/proc/sysrq-trigger"] {
            assert!(position(&ops, |o| *o == Op::ReadOnly(p)) > proc_at);
        }
    }

    #[test]
    fn steps_are_named_for_errors() {
        assert_eq!(
            Op::PivotRoot("./images/alpine".into()).describe(),
            "pivot_root into ./images/alpine"
        );
        let ops = plan(Path::new("/r"));
        assert_eq!(ops[3].describe(), "mount proc on /proc");
    }
}
