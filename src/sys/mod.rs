//! The one door to the kernel.
//!
//! Every `unsafe` block and every raw syscall of box lives under this module; the rest of the
//! crate is compiled with `#![deny(unsafe_code)]`. Each wrapper is small, returns
//! `std::io::Result`, and turns the kernel's `-1`/errno convention into an `io::Error` that keeps
//! the raw errno (the library's [`crate::error::Error`] keeps it too, for the message).
//!
//! Safety arguments are written next to each block. The common ones:
//! - pointers handed to the kernel come from live Rust values (`CString`, slices, structs on the
//!   stack) that outlive the call;
//! - file descriptors returned by the kernel are wrapped in `OwnedFd` exactly once.

pub mod dirfd;
pub mod fs;
pub mod net;
pub mod process;
pub mod resource;
pub mod signal;
pub mod sock;
pub mod tty;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turn a `-1` return into the thread's errno.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`cvt`] for `syscall(2)`'s `long` result.
fn cvt_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retry a call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn path_cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn str_cstr(s: &str) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"))
}
