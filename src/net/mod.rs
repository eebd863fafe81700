//! Container networking: a host bridge, a veth pair per container, an address per container,
//! all over netlink (no `ip` binary on the host or in the rootfs).
//!
//! `--net bridge` (the default), in the order the container's life runs it:
//! 1. Parent, before clone ([`Plan::prepare`]): pick the container's address under the run
//!    directory's lock and record it ([`ipam`]); make sure the bridge `box0` exists, is up and
//!    holds the gateway address, the subnet's first host address ([`bridge`]).
//! 2. Parent, after clone ([`Prepared::attach`]): create the veth pair with the host end on
//!    the bridge and the peer made directly in the child's network namespace as `eth0`, both
//!    up, in one netlink request ([`veth`]).
//! 3. Child, after "go" ([`setup_inside`]): `lo` up, the address on `eth0`, the default route
//!    via the gateway, in one netlink batch from inside its own namespace.
//! 4. Exit, on every path: the host end is deleted (`Drop`; the peer goes with it), then the
//!    state record that holds the address is removed, in that order, so an address is never
//!    handed out while a link still carries it. The leftovers of a box process that died are
//!    reclaimed the same way by the next box command ([`reclaim`]).
//!
//! The network is host-only: box never turns on IP forwarding or NAT. Containers reach the
//! host and each other across the bridge, nothing else.
//!
//! `--net none` keeps today's behaviour: a network namespace with only `lo`, up.

pub mod bridge;
pub mod ipam;
pub mod netlink;
pub mod veth;

use crate::error::{Error, Result};
use crate::spec::NetMode;
use crate::state::{Claim, Record};
use crate::sys::net as sysnet;
use ipam::{Subnet, Wanted};
use netlink::{Netlink, Request};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;

/// The container's end of its veth pair, as seen inside.
pub const INSIDE_LINK: &str = "eth0";
/// `lo` is the first device of every network namespace: its index is always 1.
const LOOPBACK_INDEX: u32 = 1;

/// The network a container gets, checked before anything is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    None,
    Bridge {
        subnet: Subnet,
        wanted: Option<Wanted>,
    },
}

/// The container's side, computed by the parent and applied by the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inside {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// A bridge-mode container between allocation and attachment.
pub struct Prepared {
    inside: Option<Inside>,
    veth: String,
    bridge: u32,
}

impl Plan {
    /// `box_subnet` is the value of `BOX_SUBNET`, if set.
    pub fn new(mode: NetMode, wanted: Option<Wanted>, box_subnet: Option<&str>) -> Result<Plan> {
        match mode {
            NetMode::None => match wanted {
                Some(w) => Err(Error::msg(
                    format!("--ip {}", w.addr),
                    "needs --net bridge (the default)",
                )),
                None => Ok(Plan::None),
            },
            NetMode::Bridge => {
                let subnet = Subnet::from_env(box_subnet)?;
                if let Some(w) = &wanted {
                    subnet.check(w)?;
                }
                Ok(Plan::Bridge { subnet, wanted })
            }
        }
    }

    /// Parent, before clone: record the mode in `rec`; for a bridge, pick the address and
    /// write `rec` with it (and the host veth's name, so a dead box's link can be found)
    /// through `claim` under the allocation lock, then make sure the bridge is up.
    pub fn prepare(
        &self,
        name: &str,
        run_root: &Path,
        claim: &Claim,
        rec: &mut Record,
    ) -> Result<Prepared> {
        let (subnet, wanted) = match self {
            Plan::None => {
                rec.set("net", "none");
                return Ok(Prepared {
                    inside: None,
                    veth: String::new(),
                    bridge: 0,
                });
            }
            Plan::Bridge { subnet, wanted } => (subnet, wanted),
        };
        let veth = veth::host_name(name, rec.box_pid);
        let ip = ipam::allocate(run_root, subnet, wanted.as_ref(), |ip| {
            rec.set("net", "bridge");
            rec.set("ip", format!("{ip}/{}", subnet.prefix()));
            rec.set("veth", &veth);
            claim.write(rec)
        })?;
        let bridge = bridge::ensure(&mut Netlink::open()?, subnet)?;
        Ok(Prepared {
            inside: Some(Inside {
                ip,
                prefix: subnet.prefix(),
                gateway: subnet.gateway(),
            }),
            veth,
            bridge,
        })
    }
}

impl Prepared {
    pub fn inside(&self) -> Option<Inside> {
        self.inside
    }

    /// Parent, after clone and before "go": the veth pair into the child's namespace. The
    /// returned guard deletes the host end when dropped.
    pub fn attach(&self, pid: i32) -> Result<Option<veth::HostVeth>> {
        let Some(inside) = self.inside else {
            return Ok(None);
        };
        let host = veth::create(
            Netlink::open()?,
            &self.veth,
            self.bridge,
            INSIDE_LINK,
            bridge::mac_for(inside.ip),
            pid,
        )?;
        Ok(Some(host))
    }
}

/// Child, inside its network namespace: `lo` up; with a bridge, also the address on `eth0`,
/// `eth0` up and the default route, in one batch.
pub fn setup_inside(inside: Option<&Inside>) -> Result<()> {
    let Some(i) = inside else {
        // No netlink socket needed for this one flag.
        return sysnet::link_up("lo").map_err(|e| Error::io("bring up lo", e));
    };
    let mut nl = Netlink::open()?;
    let eth0 = sysnet::ifindex(nl.as_fd(), INSIDE_LINK)
        .map_err(|e| Error::io(format!("find {INSIDE_LINK}"), e))?;
    nl.apply(&[
        Request::set_up(LOOPBACK_INDEX, "lo"),
        Request::add_address(eth0, INSIDE_LINK, i.ip, i.prefix, false),
        Request::set_up(eth0, INSIDE_LINK),
        Request::add_default_route(i.gateway, eth0),
    ])?;
    crate::debug!(
        "child: lo up, {INSIDE_LINK} {}/{} up, default via {}",
        i.ip,
        i.prefix,
        i.gateway
    );
    Ok(())
}

/// Release what a dead container's record names on the network side: its host veth. (Its
/// address is the record's `ip` key, released when the record goes.)
pub fn reclaim(rec: &Record) {
    if let Some(name) = rec.get("veth") {
        if let Err(e) = veth::delete(name) {
            crate::debug!("reclaim {}: {e}", rec.name);
        }
    }
}
