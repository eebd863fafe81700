//! Capabilities: what root inside the container keeps.
//!
//! The kept set is Docker's default. Everything else leaves the bounding set, so no later
//! execve (setuid binary, file capabilities) can bring it back; with no_new_privs on top, the
//! payload's privileges can only shrink.

use crate::error::{Error, Result};
use crate::sys::process;

/// (number, name) of every capability the container keeps.
pub const DEFAULT: &[(u32, &str)] = &[
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

pub fn default_mask() -> u64 {
    DEFAULT.iter().fold(0, |m, (n, _)| m | 1 << n)
}

/// Reduce this process to `keep`: bounding set, then effective and permitted, inheritable and
/// ambient emptied. Dropping from the bounding set needs CAP_SETPCAP, so it comes first.
pub fn restrict(keep: u64) -> Result<()> {
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match process::capbset_drop(cap) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(Error::io(format!("drop capability {cap}"), e)),
        }
    }
    match process::clear_ambient_caps() {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {} // kernel without ambient caps
        Err(e) => return Err(Error::io("clear ambient capabilities", e)),
    }
    process::capset(keep, keep, 0).map_err(|e| Error::io("set capabilities", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_dockers() {
        let m = default_mask();
        assert_eq!(m.count_ones(), 14);
        assert!(m & 1 << 21 == 0, "CAP_SYS_ADMIN must not be kept");
        assert!(m & 1 << 19 == 0, "CAP_SYS_PTRACE must not be kept");
        assert!(m & 1 << 12 == 0, "CAP_NET_ADMIN must not be kept");
        assert!(m & 1 << 16 == 0, "CAP_SYS_MODULE must not be kept");
        assert!(m & 1 << 10 != 0);
    }
}
