//! Network-device ioctls: the two small calls that need no netlink.

use super::cvt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A zeroed `struct ifreq` naming `name`.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Set IFF_UP on the interface `name` in the current network namespace (SIOCSIFFLAGS).
pub fn link_up(name: &str) -> io::Result<()> {
    // SAFETY: a new descriptor that nothing else owns.
    let sock = unsafe {
        OwnedFd::from_raw_fd(cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    let mut req = ifreq(name)?;
    // SAFETY: req is alive for both ioctls and its union holds the flags.
    unsafe {
        cvt(libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as _,
            &mut req,
        ))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        cvt(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req))?;
    }
    Ok(())
}

/// The index of interface `name` in the network namespace of the socket `sock`
/// (SIOCGIFINDEX; any socket family works, the kernel falls back to the device ioctls).
pub fn ifindex(sock: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    // SAFETY: req is alive for the call; the kernel writes the index into its union.
    unsafe {
        cvt(libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFINDEX as _,
            &mut req,
        ))?;
        Ok(req.ifr_ifru.ifru_ifindex as u32)
    }
}
