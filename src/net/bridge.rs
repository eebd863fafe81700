//! The host bridge `box0`: created on first use, reused after.

use super::ipam::Subnet;
use super::netlink::{Netlink, Request};
use crate::error::Result;
use std::net::Ipv4Addr;

/// The bridge every container's host end is attached to.
pub const NAME: &str = "box0";

/// The MAC address box gives the interface that owns `ip`: locally administered (0x0e, the
/// 0x02 bit set, the multicast bit clear), then the four bytes of the address. Deriving it
/// from the address means that when an address passes to a new container, the neighbour
/// entries the host and other containers still hold for it stay right, instead of pointing
/// at the old container's MAC until they expire.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0e, 0xb0, a, b, c, d]
}

/// Make sure the bridge exists, is up and holds the subnet's gateway address; returns its
/// index. Two round trips when it is already there (look up; address and up in one batch),
/// and safe against another box process doing the same at the same time: creation tolerates
/// EEXIST and the address request is idempotent (NLM_F_REPLACE).
pub fn ensure(nl: &mut Netlink, subnet: &Subnet) -> Result<u32> {
    let gateway = subnet.gateway();
    let link = match nl.link(NAME)? {
        Some(link) => link,
        None => {
            crate::debug!("create bridge {NAME}");
            match nl.apply(&[Request::add_bridge(NAME, mac_for(gateway))]) {
                Err(e) if e.errno() == Some(libc::EEXIST) => {} // another box was first
                other => other?,
            }
            nl.link(NAME)?.ok_or_else(|| {
                crate::error::Error::msg(format!("create bridge {NAME}"), "gone right after")
            })?
        }
    };
    let mut reqs = vec![Request::add_address(
        link.index,
        NAME,
        gateway,
        subnet.prefix(),
        true,
    )];
    if !link.up {
        reqs.push(Request::set_up(link.index, NAME));
    }
    nl.apply(&reqs)?;
    crate::debug!(
        "bridge {NAME} (index {}) up with {gateway}/{}",
        link.index,
        subnet.prefix()
    );
    Ok(link.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_local_unicast_and_carry_the_address() {
        let mac = mac_for(Ipv4Addr::new(10, 88, 1, 2));
        assert_eq!(mac, [0x0e, 0xb0, 10, 88, 1, 2]);
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
}
