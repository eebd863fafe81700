//! The veth pair of a container: the host end on the bridge, the peer as `eth0` inside.

use super::netlink::{Netlink, Request, VethPair};
use crate::error::Result;

/// Interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// The host end's name for container `name` run by box process `box_pid`: `bx`, the name's
/// first four bytes (so `ip link` shows whose it is) and 36 bits of an FNV-1a hash of the
/// name and the pid, at most 15 bytes. The hash covers the whole name, so names of up to 63
/// bytes sharing a long prefix still get distinct links. The pid makes the name new for each
/// run, so a new container never trips over a pair of an earlier run of the same name that
/// the kernel has not finished deleting. The `bx` prefix marks the links as box's.
pub fn host_name(name: &str, box_pid: i32) -> String {
    let hash = name
        .bytes()
        .chain([0])
        .chain(box_pid.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let head: String = name.chars().take(4).collect();
    let link = format!("bx{head}{:09x}", hash & 0xf_ffff_ffff);
    debug_assert!(link.len() <= IFNAME_MAX);
    link
}

/// The MTU of both ends of every veth pair, the largest a veth takes. The network is
/// host-only (no forwarding, no NAT), so no packet of it ever meets a 1500-byte link; with
/// Ethernet's 1500, a TCP stream between the host and a container is cut into 1448-byte
/// segments and moves about 0.83x the bytes of the same stream over loopback (MTU 65536),
/// with 65535 as much as over loopback (docs/benchmarks.md). The bridge takes the smallest
/// MTU of its ports by itself (box never sets it), so a pair made by a box that used 1500
/// lowers it again for everyone: mixed versions stay correct.
pub const MTU: u32 = 65535;

/// The host end of a live veth pair. Dropping it deletes the pair (the peer goes with it).
pub struct HostVeth {
    name: String,
    nl: Netlink,
}

/// Create the pair for the process `pid`'s network namespace; the host end attached to the
/// bridge `master` and up, the peer named `peer` with MAC `peer_mac`, up, in that namespace.
/// One round trip.
pub fn create(
    mut nl: Netlink,
    host: &str,
    master: u32,
    peer: &str,
    peer_mac: [u8; 6],
    pid: i32,
) -> Result<HostVeth> {
    nl.apply(&[Request::add_veth(&VethPair {
        host,
        master,
        peer,
        peer_mac,
        peer_netns_pid: pid as u32,
        mtu: MTU,
    })])?;
    crate::debug!("veth {host} on the bridge, {peer} in pid {pid}'s network namespace");
    Ok(HostVeth {
        name: host.to_string(),
        nl,
    })
}

impl HostVeth {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Deleting the host end deletes the pair, so nothing of the container is left on the bridge
/// or the host when box exits. The kernel would delete the pair with the container's network
/// namespace too, but not reliably soon: a TCP connection still closing keeps the namespace
/// alive after its last process, for minutes when the peer vanished mid-close. Deleting costs
/// the RCU grace periods of a device unregistration (15 to 40 ms on the machine measured),
/// paid at exit.
impl Drop for HostVeth {
    fn drop(&mut self) {
        if let Err(e) = delete_with(&mut self.nl, &self.name) {
            crate::debug!("{e}");
        }
    }
}

/// Delete the link `name`; one that is already gone (it also vanishes with its network
/// namespace) is not an error.
pub fn delete(name: &str) -> Result<()> {
    delete_with(&mut Netlink::open()?, name)
}

fn delete_with(nl: &mut Netlink, name: &str) -> Result<()> {
    match nl.apply(&[Request::del_link(name)]) {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(e),
        Ok(()) => {
            crate::debug!("deleted veth {name}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_start_with_bx_and_differ_by_name_and_run() {
        assert_eq!(host_name("c1", 42), host_name("c1", 42), "stable");
        assert!(host_name("c1", 42).starts_with("bxc1"));
        assert_eq!(host_name("c1", 42).len(), 13);
        assert_ne!(host_name("c1", 42), host_name("c1", 43));
        let long = "a".repeat(63);
        assert_eq!(host_name(&long, 1).len(), IFNAME_MAX);
        assert!(host_name(&long, 1).starts_with("bxaaaa"));
        // A long common prefix does not make a common name.
        let mut names: Vec<String> = (0..2000)
            .map(|i| host_name(&format!("{}-{i}", "web-frontend-replica".repeat(3)), 7))
            .collect();
        assert!(names
            .iter()
            .all(|n| n.len() <= IFNAME_MAX && n.starts_with("bx")));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 2000);
    }
}
