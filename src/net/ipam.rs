//! Address allocation: which address of the subnet a container gets.
//!
//! There is no allocation table to keep in step: the state records under the run directory
//! are the table. A container's address is the `ip` key of its record, so the address is
//! held exactly as long as the record exists: released when the box process removes its state
//! directory on exit, reclaimed when the next box command sweeps the directory of a box process
//! that died. To make "pick a free address, record it" atomic across concurrent box processes,
//! it runs under an exclusive flock on the run directory itself, which needs no file of its own
//! and so leaves nothing behind.

use crate::error::{Error, Result};
use crate::state::{self, Record};
use crate::sys::fs as sysfs;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;

/// The default container subnet; `BOX_SUBNET` changes it.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// An IPv4 subnet; its first host address is the gateway (the bridge's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    net: u32,
    prefix: u8,
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.net), self.prefix)
    }
}

/// An address asked for with `--ip A.B.C.D[/N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub addr: Ipv4Addr,
    pub prefix: Option<u8>,
}

/// Parse `A.B.C.D` or `A.B.C.D/N` (shape only; [`Subnet::check`] judges it).
pub fn parse_wanted(s: &str) -> Result<Wanted> {
    let bad = || {
        Error::msg(
            format!("--ip {s}"),
            "expected an IPv4 address like 10.88.0.5/16",
        )
    };
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
        None => (s, None),
    };
    Ok(Wanted {
        addr: addr.parse().map_err(|_| bad())?,
        prefix,
    })
}

impl Subnet {
    /// Parse `A.B.C.D/N` with 8 <= N <= 30 and no host bits set.
    pub fn parse(s: &str) -> Result<Subnet> {
        let what = || format!("subnet {s}");
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| Error::msg(what(), "expected A.B.C.D/N, like 10.88.0.0/16"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| Error::msg(what(), "expected A.B.C.D/N, like 10.88.0.0/16"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| Error::msg(what(), "the prefix length is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(Error::msg(
                what(),
                "the prefix length must be between 8 and 30",
            ));
        }
        let net = u32::from(addr);
        let sub = Subnet { net, prefix };
        if net & !sub.mask() != 0 {
            return Err(Error::msg(
                what(),
                format!(
                    "host bits are set (the network is {})",
                    Ipv4Addr::from(net & sub.mask())
                ),
            ));
        }
        Ok(sub)
    }

    /// The subnet named by `BOX_SUBNET` (its value, if set), else the default.
    pub fn from_env(value: Option<&str>) -> Result<Subnet> {
        match value {
            Some(v) if !v.is_empty() => Subnet::parse(v).map_err(|e| e.context("BOX_SUBNET")),
            _ => Subnet::parse(DEFAULT_SUBNET),
        }
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.net + 1)
    }

    fn broadcast(&self) -> u32 {
        self.net | !self.mask()
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.net
    }

    /// Container addresses, lowest first: every host address but the gateway.
    fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (self.net + 2..self.broadcast()).map(Ipv4Addr::from)
    }

    /// Why `w` cannot be a container's address in this subnet, if it cannot.
    pub fn check(&self, w: &Wanted) -> Result<()> {
        let what = || match w.prefix {
            Some(p) => format!("--ip {}/{p}", w.addr),
            None => format!("--ip {}", w.addr),
        };
        let a = u32::from(w.addr);
        let why = if !self.contains(w.addr) {
            format!("outside the container subnet {self} (BOX_SUBNET)")
        } else if w.prefix.is_some_and(|p| p != self.prefix) {
            format!("the prefix length must be the subnet's, /{}", self.prefix)
        } else if a == self.net {
            "is the network address".to_string()
        } else if a == self.broadcast() {
            "is the broadcast address".to_string()
        } else if w.addr == self.gateway() {
            "is the gateway (the bridge's own address)".to_string()
        } else {
            return Ok(());
        };
        Err(Error::msg(what(), why))
    }
}

/// Choose an address: `wanted` if it is free, else the lowest free one. `taken` holds the
/// addresses in use with the container using each.
pub fn pick(
    subnet: &Subnet,
    taken: &[(Ipv4Addr, String)],
    wanted: Option<&Wanted>,
) -> Result<Ipv4Addr> {
    let holder = |ip: Ipv4Addr| taken.iter().find(|(t, _)| *t == ip).map(|(_, n)| n);
    if let Some(w) = wanted {
        subnet.check(w)?;
        return match holder(w.addr) {
            Some(name) => Err(Error::msg(
                format!("--ip {}", w.addr),
                format!("already in use by container {name}"),
            )),
            None => Ok(w.addr),
        };
    }
    subnet
        .hosts()
        .find(|ip| holder(*ip).is_none())
        .ok_or_else(|| {
            Error::msg(
                format!("allocate an address in {subnet}"),
                "every address is in use",
            )
        })
}

/// The addresses recorded under `run_root`, with their containers. Stale records count until
/// they are swept: an address is reused only once its old holder is cleaned up.
pub fn taken(run_root: &Path) -> Vec<(Ipv4Addr, String)> {
    state::records(run_root)
        .into_iter()
        .filter_map(|r| Some((address_of(&r)?, r.name)))
        .collect()
}

/// The address a record holds (`ip=A.B.C.D/N`).
pub fn address_of(rec: &Record) -> Option<Ipv4Addr> {
    let ip = rec.get("ip")?;
    ip.split('/').next()?.parse().ok()
}

/// Pick an address and hand it to `record` (which must write it into the caller's state
/// record), both under the run directory's lock, so no other box process can pick the same
/// one in between.
pub fn allocate(
    run_root: &Path,
    subnet: &Subnet,
    wanted: Option<&Wanted>,
    record: impl FnOnce(Ipv4Addr) -> Result<()>,
) -> Result<Ipv4Addr> {
    let shown = run_root.display();
    let dir = File::open(run_root).map_err(|e| Error::io(format!("open {shown}"), e))?;
    sysfs::flock(dir.as_fd(), true, false).map_err(|e| Error::io(format!("lock {shown}"), e))?;
    let ip = pick(subnet, &taken(run_root), wanted)?;
    record(ip)?;
    crate::debug!("allocated {ip}/{} in {subnet}", subnet.prefix);
    Ok(ip) // the lock goes with `dir`
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn net() -> Subnet {
        Subnet::parse("10.88.0.0/16").unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn want(s: &str) -> Wanted {
        parse_wanted(s).unwrap()
    }

    #[test]
    fn subnets_parse_with_their_gateway_and_refuse_nonsense() {
        let s = net();
        assert_eq!(s.gateway(), ip("10.88.0.1"));
        assert_eq!(s.prefix(), 16);
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(
            Subnet::from_env(Some("10.89.0.0/24")).unwrap().gateway(),
            ip("10.89.0.1")
        );
        assert_eq!(Subnet::from_env(None).unwrap(), s);
        assert_eq!(Subnet::from_env(Some("")).unwrap(), s);
        let err = |v: &str| Subnet::from_env(Some(v)).unwrap_err().to_string();
        assert_eq!(
            err("10.88.0.1/16"),
            "BOX_SUBNET: subnet 10.88.0.1/16: host bits are set (the network is 10.88.0.0)"
        );
        assert_eq!(
            err("10.88.0.0/31"),
            "BOX_SUBNET: subnet 10.88.0.0/31: the prefix length must be between 8 and 30"
        );
        assert_eq!(
            err("10.88.0.0"),
            "BOX_SUBNET: subnet 10.88.0.0: expected A.B.C.D/N, like 10.88.0.0/16"
        );
        assert!(Subnet::parse("10.88.0.0/x").is_err());
        assert!(Subnet::parse("300.1.0.0/16").is_err());
    }

    #[test]
    fn the_lowest_free_address_after_the_gateway_is_picked() {
        let s = net();
        assert_eq!(pick(&s, &[], None).unwrap(), ip("10.88.0.2"));
        let taken = vec![(ip("10.88.0.2"), "a".into()), (ip("10.88.0.4"), "b".into())];
        assert_eq!(pick(&s, &taken, None).unwrap(), ip("10.88.0.3"));
        // Across an octet boundary.
        let taken: Vec<_> = (2..=255)
            .map(|i| (Ipv4Addr::new(10, 88, 0, i), format!("c{i}")))
            .collect();
        assert_eq!(pick(&s, &taken, None).unwrap(), ip("10.88.1.0"));
    }

    #[test]
    fn a_full_subnet_is_an_error() {
        let s = Subnet::parse("10.9.0.0/30").unwrap(); // .1 gateway, .2 the only host
        assert_eq!(pick(&s, &[], None).unwrap(), ip("10.9.0.2"));
        let err = pick(&s, &[(ip("10.9.0.2"), "a".into())], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "allocate an address in 10.9.0.0/30: every address is in use"
        );
    }

    #[test]
    fn a_wanted_address_is_given_only_when_free_and_a_host_of_the_subnet() {
        let s = net();
        let taken = vec![(ip("10.88.0.7"), "web".into())];
        assert_eq!(
            pick(&s, &taken, Some(&want("10.88.3.4/16"))).unwrap(),
            ip("10.88.3.4")
        );
        assert_eq!(
            pick(&s, &taken, Some(&want("10.88.3.4"))).unwrap(),
            ip("10.88.3.4")
        );
        let err = |w: &str| pick(&s, &taken, Some(&want(w))).unwrap_err().to_string();
        assert_eq!(
            err("10.88.0.7"),
            "--ip 10.88.0.7: already in use by container web"
        );
        assert_eq!(
            err("10.89.0.7/16"),
            "--ip 10.89.0.7/16: outside the container subnet 10.88.0.0/16 (BOX_SUBNET)"
        );
        assert_eq!(
            err("10.88.0.9/24"),
            "--ip 10.88.0.9/24: the prefix length must be the subnet's, /16"
        );
        assert_eq!(err("10.88.0.0"), "--ip 10.88.0.0: is the network address");
        assert_eq!(
            err("10.88.255.255"),
            "--ip 10.88.255.255: is the broadcast address"
        );
        assert_eq!(
            err("10.88.0.1"),
            "--ip 10.88.0.1: is the gateway (the bridge's own address)"
        );
        assert!(parse_wanted("10.88.0").is_err());
        assert!(parse_wanted("10.88.0.5/").is_err());
        assert_eq!(
            parse_wanted("nope").unwrap_err().to_string(),
            "--ip nope: expected an IPv4 address like 10.88.0.5/16"
        );
    }

    fn root(tag: &str) -> std::path::PathBuf {
        let r = std::env::temp_dir().join(format!("box-ipam-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        r
    }

    #[test]
    fn records_are_the_allocation_table() {
        let root = root("records");
        let (c1, _) = state::claim(&root, "c1").unwrap();
        let mut rec = Record {
            name: "c1".into(),
            ..Default::default()
        };
        let got = allocate(&root, &net(), None, |ip| {
            rec.set("ip", format!("{ip}/16"));
            c1.write(&rec)
        })
        .unwrap();
        assert_eq!(got, ip("10.88.0.2"));
        assert_eq!(taken(&root), vec![(ip("10.88.0.2"), "c1".to_string())]);
        // A record of another subnet does not block this one's addresses.
        let (c2, _) = state::claim(&root, "c2").unwrap();
        let other = Subnet::parse("10.89.0.0/16").unwrap();
        let got = allocate(&root, &other, None, |ip| {
            let mut r = Record {
                name: "c2".into(),
                ..Default::default()
            };
            r.set("ip", format!("{ip}/16"));
            c2.write(&r)
        })
        .unwrap();
        assert_eq!(got, ip("10.89.0.2"));
        assert_eq!(pick(&net(), &taken(&root), None).unwrap(), ip("10.88.0.3"));
        // Released with the record: the lowest address is free again.
        drop(c1);
        assert_eq!(pick(&net(), &taken(&root), None).unwrap(), ip("10.88.0.2"));
        drop(c2);
        assert!(taken(&root).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn concurrent_allocations_get_distinct_addresses() {
        // flock locks belong to open files, so threads of one process contend like processes.
        let root = root("race");
        std::fs::create_dir_all(&root).unwrap();
        let n = 20;
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (root, barrier) = (root.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let name = format!("c{i}");
                    let (claim, _) = state::claim(&root, &name).unwrap();
                    barrier.wait();
                    let ip = allocate(&root, &net(), None, |ip| {
                        let mut r = Record {
                            name: name.clone(),
                            ..Default::default()
                        };
                        r.set("ip", format!("{ip}/16"));
                        claim.write(&r)
                    })
                    .unwrap();
                    (ip, claim)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut ips: Vec<Ipv4Addr> = results.iter().map(|(ip, _)| *ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n, "duplicate addresses: {ips:?}");
        assert_eq!(ips[0], ip("10.88.0.2"));
        assert_eq!(ips[n - 1], Ipv4Addr::new(10, 88, 0, 21));
        drop(results);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
