//! Mounts, pivot_root, device nodes, file locks and path resolution confined to a root.

use super::{cvt, cvt_long, path_cstr, retry, str_cstr};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr;

pub use libc::{
    MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT,
    MS_SLAVE, MS_STRICTATIME,
};

/// mount(2). `None` for the source, type or data passes NULL, as the kernel expects for
/// propagation changes and remounts.
pub fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(str_cstr).transpose()?;
    let target = path_cstr(target)?;
    let fstype = fstype.map(str_cstr).transpose()?;
    let data = data.map(str_cstr).transpose()?;
    let opt = |c: &Option<CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a NUL-terminated string alive for the call.
    cvt(unsafe {
        libc::mount(
            opt(&source),
            target.as_ptr(),
            opt(&fstype),
            flags,
            opt(&data).cast(),
        )
    })?;
    Ok(())
}

/// Bind-mount `source` onto `target` (recursive when `recursive`).
pub fn bind(source: &Path, target: &Path, recursive: bool) -> io::Result<()> {
    let source = path_cstr(source)?;
    let target = path_cstr(target)?;
    let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
    // SAFETY: both strings are alive for the call; fstype and data may be NULL for a bind.
    cvt(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            ptr::null(),
            flags,
            ptr::null(),
        )
    })?;
    Ok(())
}

pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = path_cstr(target)?;
    // SAFETY: target is a live C string.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) })?;
    Ok(())
}

pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let new_root = path_cstr(new_root)?;
    let put_old = path_cstr(put_old)?;
    // SAFETY: both strings are alive for the call; pivot_root has no libc wrapper.
    cvt_long(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })?;
    Ok(())
}

/// Create a character device node.
pub fn mknod_char(path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let path = path_cstr(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: path is a live C string.
    cvt(unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | mode, dev) })?;
    Ok(())
}

pub fn chdir(path: &Path) -> io::Result<()> {
    let path = path_cstr(path)?;
    // SAFETY: path is a live C string.
    cvt(unsafe { libc::chdir(path.as_ptr()) })?;
    Ok(())
}

/// Mount flags of the file system that holds `path` (MS_RDONLY, MS_NOSUID, ...), as statvfs(3)
/// reports them. A read-only remount of a bind mount must repeat them or the kernel refuses.
pub fn mount_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c = path_cstr(path)?;
    // SAFETY: statvfs is plain data; zeroed is a valid value; c is alive.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

pub use super::dirfd::{RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// openat2(2): open `path` under the directory `dir` with `resolve` restrictions. With
/// [`RESOLVE_IN_ROOT`] every `..` and absolute symlink is resolved as if `dir` were `/`, which
/// is how a path inside a container's rootfs must be looked up from the host.
pub fn openat2(dir: BorrowedFd<'_>, path: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    super::dirfd::open_beneath(dir, path, flags, 0, resolve)
}

/// fstat(2) of an open descriptor: (st_mode, st_dev, st_ino).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<(u32, u64, u64)> {
    // SAFETY: stat is plain data; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok((st.st_mode, st.st_dev, st.st_ino))
}

/// flock(2). With `nonblock`, a lock held elsewhere is `Ok(false)` instead of a wait.
pub fn flock(fd: BorrowedFd<'_>, exclusive: bool, nonblock: bool) -> io::Result<bool> {
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if nonblock {
        op |= libc::LOCK_NB;
    }
    // SAFETY: flock only reads the descriptor number.
    match retry(|| cvt(unsafe { libc::flock(fd.as_raw_fd(), op) })) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// renameat2(2) with RENAME_NOREPLACE: move `from` to `to` atomically, failing with EEXIST
/// instead of replacing whatever is at `to` (a plain rename would replace an empty directory).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// renameat2(2) with RENAME_EXCHANGE: swap `a` and `b` atomically; both must exist (ENOENT
/// otherwise).
pub fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (f, t) = (path_cstr(from)?, path_cstr(to)?);
    // SAFETY: both strings are alive for the call; AT_FDCWD makes the paths as given.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}
