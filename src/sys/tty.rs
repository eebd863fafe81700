//! Terminals: pseudo-terminal pairs, raw mode, window size, controlling terminal.

use super::{cvt, path_cstr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// True when `fd` is this process's controlling terminal and our process group is not its
/// foreground one (started with `&` from a shell): changing its modes would stop us with
/// SIGTTOU, reading it with SIGTTIN. Not our controlling terminal: no job control applies.
pub fn in_background(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: tcgetpgrp only inspects the descriptor.
    let fg = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
    // SAFETY: getpgrp takes nothing and cannot fail.
    fg > 0 && fg != unsafe { libc::getpgrp() }
}

/// Open a new pseudo-terminal master from the `ptmx` at `ptmx` and unlock its slave.
pub fn open_master(ptmx: &Path) -> io::Result<OwnedFd> {
    let c = path_cstr(ptmx)?;
    // SAFETY: c is alive; a new descriptor is returned.
    let fd =
        cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: a new descriptor that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    Ok(master)
}

/// Open the slave side of `master` through the master itself (TIOCGPTPEER), so no path lookup
/// in /dev/pts can be raced or redirected.
pub fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let fd = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make `fd` (a terminal) the controlling terminal of this session (after setsid).
pub fn set_controlling(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Saved terminal attributes.
#[derive(Clone, Copy)]
pub struct Termios(libc::termios);

pub fn get_attr(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    // SAFETY: termios is plain data filled by the kernel.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(Termios(t))
}

pub fn set_attr(fd: BorrowedFd<'_>, t: &Termios) -> io::Result<()> {
    // SAFETY: t is alive; TCSADRAIN lets pending output finish first.
    cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &t.0) })?;
    Ok(())
}

impl Termios {
    /// The same attributes in raw mode: no echo, no line discipline, no signals from keys.
    pub fn raw(&self) -> Termios {
        let mut t = self.0;
        // SAFETY: cfmakeraw edits the struct in place.
        unsafe { libc::cfmakeraw(&mut t) };
        Termios(t)
    }
}

/// Window size (rows, cols) of a terminal.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    // SAFETY: winsize is plain data filled by the kernel.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: ws is alive for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) })?;
    Ok(())
}
