//! The `*at` family: operations on one name inside a directory held open by descriptor.
//!
//! The safe unpacker and the self-install never hand the kernel a long path to re-resolve from
//! the top. They open a parent directory once (with [`open_beneath`], which refuses to leave it)
//! and then create, replace or inspect a single name in it. None of these calls follows a
//! symlink in the last component: `mkdirat`, `symlinkat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`, `unlinkat` and `renameat2` never do, and the others are passed
//! `AT_SYMLINK_NOFOLLOW` or `O_NOFOLLOW`.

use super::{cvt, cvt_long, path_cstr, retry};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Fail instead of crossing a mount point.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
/// Fail on any `/proc/PID/fd`-style magic link.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// Fail on any symlink in the path, the last component included.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// Fail if resolution would leave the starting directory (`..`, absolute paths or symlinks).
pub const RESOLVE_BENEATH: u64 = 0x08;
/// Resolve as if the starting directory were `/` (`..` and absolute symlinks stay inside).
pub const RESOLVE_IN_ROOT: u64 = 0x10;

pub use libc::{RENAME_EXCHANGE, RENAME_NOREPLACE};

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) with a creation mode: open (or with `O_CREAT`, create) `path` under `dir`
/// with the `resolve` restrictions. `O_CLOEXEC` is always added.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = path_cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let fd = retry(|| {
        // SAFETY: c and how are alive for the call; the size matches the struct passed.
        cvt_long(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        })
    })?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What `fstatat(AT_SYMLINK_NOFOLLOW)` says about a name: its type and permission bits.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub mode: u32,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// lstat of `name` in `dir`; `Ok(None)` when there is no such name.
pub fn lstatat(dir: BorrowedFd<'_>, name: &Path) -> io::Result<Option<Stat>> {
    let c = path_cstr(name)?;
    // SAFETY: stat is plain data filled by the kernel; c is alive for the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    });
    match r {
        Ok(_) => Ok(Some(Stat { mode: st.st_mode })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &Path, mode: u32) -> io::Result<()> {
    let c = path_cstr(name)?;
    // SAFETY: c is alive for the call.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })?;
    Ok(())
}

/// Create the symlink `name` in `dir` with the contents `target` (never resolved here).
pub fn symlinkat(target: &Path, dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let t = path_cstr(target)?;
    let c = path_cstr(name)?;
    // SAFETY: both strings are alive for the call.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) })?;
    Ok(())
}

/// Hard-link `old_name` in `old_dir` as `new_name` in `new_dir`. Without `AT_SYMLINK_FOLLOW`
/// a symlink is linked as itself, never followed.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &Path,
    new_dir: BorrowedFd<'_>,
    new_name: &Path,
) -> io::Result<()> {
    let o = path_cstr(old_name)?;
    let n = path_cstr(new_name)?;
    // SAFETY: both strings are alive for the call.
    cvt(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            o.as_ptr(),
            new_dir.as_raw_fd(),
            n.as_ptr(),
            0,
        )
    })?;
    Ok(())
}

/// Remove `name` from `dir`: an empty directory when `is_dir`, otherwise a non-directory.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &Path, is_dir: bool) -> io::Result<()> {
    let c = path_cstr(name)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: c is alive for the call.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    Ok(())
}

/// renameat2(2) with `RENAME_NOREPLACE`, `RENAME_EXCHANGE` or 0. Called through syscall(2):
/// older musl has no wrapper.
pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old_name: &Path,
    new_dir: BorrowedFd<'_>,
    new_name: &Path,
    flags: libc::c_uint,
) -> io::Result<()> {
    let o = path_cstr(old_name)?;
    let n = path_cstr(new_name)?;
    // SAFETY: both strings are alive for the call.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            o.as_ptr(),
            new_dir.as_raw_fd(),
            n.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// [`renameat2`] on paths resolved from the current directory.
pub fn rename_paths(old: &Path, new: &Path, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: AT_FDCWD is a valid "directory" for every *at call; the borrow is never closed.
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    renameat2(cwd, old, cwd, new, flags)
}

/// Change the owner of `name` itself (a symlink is not followed).
pub fn lchownat(dir: BorrowedFd<'_>, name: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = path_cstr(name)?;
    // SAFETY: c is alive for the call.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// Set the access and modification time of `name` itself (a symlink is not followed).
pub fn lutimesat(dir: BorrowedFd<'_>, name: &Path, secs: i64) -> io::Result<()> {
    let c = path_cstr(name)?;
    let ts = libc::timespec {
        tv_sec: secs as _,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: c and times are alive for the call; times has the two entries utimensat reads.
    cvt(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}
