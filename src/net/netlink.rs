//! rtnetlink requests: built with netlink-packet-route, sent with netlink-sys.
//!
//! A [`Request`] is one message plus the words for what it does (`create veth bxc1`), so a
//! kernel refusal reads as `create veth bxc1: file exists`. [`Netlink::apply`] sends a whole
//! batch in one datagram and then collects one acknowledgement per request: the kernel runs
//! the messages of a datagram in order, each on its own (a failure does not stop the next
//! one), so a batch costs one round trip however long it is, and the first failure is the one
//! reported. Every request asks for an acknowledgement (NLM_F_ACK); a success ack is only a
//! header, so the replies stay small.
//!
//! The socket is bound to the network namespace of the thread that opened it, which is how
//! the same code configures the host (parent) and the container (child).

use crate::error::{Error, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};

/// One rtnetlink request and what it does, in words.
#[derive(Debug, Clone)]
pub struct Request {
    pub what: String,
    msg: RouteNetlinkMessage,
    flags: u16,
}

/// The host end and the container end of a veth pair, as [`Request::add_veth`] creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethPair<'a> {
    /// Name of the end that stays on the host.
    pub host: &'a str,
    /// Index of the bridge the host end is attached to.
    pub master: u32,
    /// Name of the other end, in the target namespace.
    pub peer: &'a str,
    pub peer_mac: [u8; 6],
    /// A process (host pid) whose network namespace receives the peer.
    pub peer_netns_pid: u32,
    /// The MTU of both ends.
    pub mtu: u32,
}

fn up_header(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

impl Request {
    /// RTM_NEWLINK: a bridge `name` with a fixed MAC, up. A bridge otherwise takes the lowest
    /// MAC of its ports, which changes as containers come and go and would leave stale
    /// gateway entries in the containers' neighbour tables; a MAC set by hand stays.
    pub fn add_bridge(name: &str, mac: [u8; 6]) -> Request {
        let mut m = up_header(0);
        m.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Address(mac.to_vec()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        Request {
            what: format!("create bridge {name}"),
            msg: RouteNetlinkMessage::NewLink(m),
            flags: CREATE,
        }
    }

    /// RTM_GETLINK by name.
    pub fn get_link(name: &str) -> Request {
        let mut m = LinkMessage::default();
        m.attributes = vec![LinkAttribute::IfName(name.to_string())];
        Request {
            what: format!("look up link {name}"),
            msg: RouteNetlinkMessage::GetLink(m),
            flags: NLM_F_REQUEST,
        }
    }

    /// RTM_NEWLINK on an existing link: set IFF_UP. `name` is for messages only.
    pub fn set_up(index: u32, name: &str) -> Request {
        Request {
            what: format!("bring up {name}"),
            msg: RouteNetlinkMessage::NewLink(up_header(index)),
            flags: NLM_F_REQUEST | NLM_F_ACK,
        }
    }

    /// RTM_NEWADDR: `ip/prefix` on link `index`. With `replace`, an address already there is
    /// not an error (NLM_F_REPLACE), which makes the request idempotent.
    pub fn add_address(index: u32, name: &str, ip: Ipv4Addr, prefix: u8, replace: bool) -> Request {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        // IFA_LOCAL is the address of the interface; IFA_ADDRESS the peer's on point-to-point
        // links and the same on broadcast ones (what `ip addr add` sends). The broadcast
        // address is left for the kernel to derive.
        m.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(ip)),
            AddressAttribute::Address(IpAddr::V4(ip)),
        ];
        let flags = if replace {
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        } else {
            CREATE
        };
        Request {
            what: format!("add address {ip}/{prefix} to {name}"),
            msg: RouteNetlinkMessage::NewAddress(m),
            flags,
        }
    }

    /// RTM_NEWLINK: a veth pair whose host end is attached to a bridge and up, and whose peer
    /// is created directly in another network namespace, named there. Creating the peer in
    /// place (rather than moving it) means it never exists under its final name in the host's
    /// namespace, so `eth0` cannot clash with the host's own. The peer cannot be asked up
    /// here: the kernel configures it before the two ends are linked, and opening a veth
    /// without its peer fails with ENOTCONN. The container brings it up from inside.
    pub fn add_veth(v: &VethPair<'_>) -> Request {
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(v.peer.to_string()),
            LinkAttribute::Address(v.peer_mac.to_vec()),
            LinkAttribute::Mtu(v.mtu),
            LinkAttribute::NetNsPid(v.peer_netns_pid),
        ];
        let mut m = up_header(0);
        m.attributes = vec![
            LinkAttribute::IfName(v.host.to_string()),
            LinkAttribute::Mtu(v.mtu),
            LinkAttribute::Controller(v.master),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ];
        Request {
            what: format!("create veth {}", v.host),
            msg: RouteNetlinkMessage::NewLink(m),
            flags: CREATE,
        }
    }

    /// RTM_DELLINK by name. Deleting either end of a veth deletes the pair.
    pub fn del_link(name: &str) -> Request {
        let mut m = LinkMessage::default();
        m.attributes = vec![LinkAttribute::IfName(name.to_string())];
        Request {
            what: format!("delete link {name}"),
            msg: RouteNetlinkMessage::DelLink(m),
            flags: NLM_F_REQUEST | NLM_F_ACK,
        }
    }

    /// RTM_NEWROUTE: the default route (0.0.0.0/0) via `gateway` out of link `oif`, in the
    /// main table.
    pub fn add_default_route(gateway: Ipv4Addr, oif: u32) -> Request {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet(gateway)),
            RouteAttribute::Oif(oif),
        ];
        Request {
            what: format!("add default route via {gateway}"),
            msg: RouteNetlinkMessage::NewRoute(m),
            flags: CREATE,
        }
    }

    /// Append the request's bytes, with sequence number `seq`, to `out`.
    pub fn encode(&self, seq: u32, out: &mut Vec<u8>) {
        let mut header = NetlinkHeader::default();
        header.flags = self.flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(self.msg.clone()));
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut out[start..]);
        // Messages in one datagram start on 4-byte boundaries (NLMSG_ALIGN).
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

/// What [`Netlink::link`] reports about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub up: bool,
}

/// A NETLINK_ROUTE socket in the caller's network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// One answer from the kernel to the request with sequence number `seq`.
enum Answer {
    Ack,
    Failed(i32),
    Link(Link),
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        // Unbound: the first send binds it to a port the kernel picks, and an unconnected
        // netlink socket talks to the kernel. Two syscalls saved.
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open a netlink socket", e))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Send every request in one datagram and wait for each one's acknowledgement. The first
    /// refusal is returned as `WHAT: ERRNO`.
    pub fn apply(&mut self, reqs: &[Request]) -> Result<()> {
        let answers = self.exchange(reqs)?;
        for (req, answer) in reqs.iter().zip(answers) {
            if let Answer::Failed(errno) = answer {
                return Err(Error::os(req.what.clone(), errno));
            }
        }
        Ok(())
    }

    /// Look a link up by name; `None` when there is none of that name.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let req = Request::get_link(name);
        match self.exchange(std::slice::from_ref(&req))?.pop() {
            Some(Answer::Link(l)) => Ok(Some(l)),
            Some(Answer::Failed(libc::ENODEV)) => Ok(None),
            Some(Answer::Failed(errno)) => Err(Error::os(req.what, errno)),
            _ => Err(Error::msg(req.what, "no answer from the kernel")),
        }
    }

    fn exchange(&mut self, reqs: &[Request]) -> Result<Vec<Answer>> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::with_capacity(256 * reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            r.encode(first.wrapping_add(i as u32), &mut out);
        }
        self.seq = first.wrapping_add(reqs.len() as u32);
        let what = || {
            reqs.first()
                .map_or("netlink".to_string(), |r| r.what.clone())
        };
        self.sock
            .send(&out, 0)
            .map_err(|e| Error::io(format!("{}: send", what()), e))?;
        let mut answers: Vec<Option<Answer>> = (0..reqs.len()).map(|_| None).collect();
        let mut missing = reqs.len();
        while missing > 0 {
            self.buf.clear();
            let n = self
                .sock
                .recv(&mut self.buf, 0)
                .map_err(|e| Error::io(format!("{}: receive", what()), e))?;
            let mut off = 0;
            while off + 16 <= n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| Error::msg(format!("{}: parse reply", what()), e.to_string()))?;
                let len = (msg.header.length as usize).max(16);
                off += len.next_multiple_of(4);
                let slot = msg.header.sequence_number.wrapping_sub(first) as usize;
                let answer = match msg.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => Answer::Ack,
                        Some(code) => Answer::Failed(code.get().abs()),
                    },
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                        Answer::Link(Link {
                            index: l.header.index,
                            up: l.header.flags.contains(LinkFlags::Up),
                        })
                    }
                    _ => continue,
                };
                if let Some(s @ None) = answers.get_mut(slot) {
                    *s = Some(answer);
                    missing -= 1;
                }
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(r: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(7, &mut out);
        out
    }

    /// struct nlmsghdr: len, type, flags, seq 7, port 0.
    fn nlmsghdr(len: u32, ty: u16, flags: u16) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend(ty.to_le_bytes());
        v.extend(flags.to_le_bytes());
        v.extend(7u32.to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v
    }

    /// struct ifinfomsg: family 0, type 0, index, flags, change.
    fn ifinfomsg(index: u32, flags: u32, change: u32) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0];
        v.extend(index.to_le_bytes());
        v.extend(flags.to_le_bytes());
        v.extend(change.to_le_bytes());
        v
    }

    /// One attribute: struct nlattr { len, type } + payload, padded to 4.
    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_le_bytes().to_vec();
        v.extend(ty.to_le_bytes());
        v.extend(payload);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    const RTM_NEWLINK: u16 = 16;
    const RTM_DELLINK: u16 = 17;
    const RTM_GETLINK: u16 = 18;
    const RTM_NEWADDR: u16 = 20;
    const RTM_NEWROUTE: u16 = 24;
    const IFLA_ADDRESS: u16 = 1;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_NET_NS_PID: u16 = 19;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_INFO_DATA: u16 = 2;
    const VETH_INFO_PEER: u16 = 1;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    const RTA_OIF: u16 = 4;
    const RTA_GATEWAY: u16 = 5;
    const IFF_UP: u32 = 1;

    /// Whole message: header with the right length, then the body.
    fn message(ty: u16, flags: u16, body: Vec<u8>) -> Vec<u8> {
        let mut v = nlmsghdr(16 + body.len() as u32, ty, flags);
        v.extend(body);
        v
    }

    #[test]
    fn bridge_creation_bytes() {
        let mac = [0x0e, 0xb0, 10, 88, 0, 1];
        let mut body = ifinfomsg(0, IFF_UP, IFF_UP);
        body.extend(attr(IFLA_IFNAME, &cstr("box0")));
        body.extend(attr(IFLA_ADDRESS, &mac));
        body.extend(attr(IFLA_LINKINFO, &attr(IFLA_INFO_KIND, &cstr("bridge"))));
        // REQUEST | ACK | EXCL | CREATE
        let want = message(RTM_NEWLINK, 0x1 | 0x4 | 0x200 | 0x400, body);
        assert_eq!(bytes(&Request::add_bridge("box0", mac)), want);
    }

    #[test]
    fn veth_with_peer_in_another_namespace_bytes() {
        let mac = [0x0e, 0xb0, 10, 88, 0, 2];
        let mut peer = ifinfomsg(0, 0, 0);
        peer.extend(attr(IFLA_IFNAME, &cstr("eth0")));
        peer.extend(attr(IFLA_ADDRESS, &mac));
        peer.extend(attr(IFLA_MTU, &65535u32.to_le_bytes()));
        peer.extend(attr(IFLA_NET_NS_PID, &4242u32.to_le_bytes()));
        // The crate NUL-terminates the kind (iproute2 does not); IFLA_INFO_KIND is an
        // NLA_STRING, which the kernel accepts either way.
        let mut info = attr(IFLA_INFO_KIND, &cstr("veth"));
        info.extend(attr(IFLA_INFO_DATA, &attr(VETH_INFO_PEER, &peer)));
        let mut body = ifinfomsg(0, IFF_UP, IFF_UP);
        body.extend(attr(IFLA_IFNAME, &cstr("bxc1")));
        body.extend(attr(IFLA_MTU, &65535u32.to_le_bytes()));
        body.extend(attr(IFLA_MASTER, &5u32.to_le_bytes()));
        body.extend(attr(IFLA_LINKINFO, &info));
        let want = message(RTM_NEWLINK, 0x1 | 0x4 | 0x200 | 0x400, body);
        let got = bytes(&Request::add_veth(&VethPair {
            host: "bxc1",
            master: 5,
            peer: "eth0",
            peer_mac: mac,
            peer_netns_pid: 4242,
            mtu: 65535,
        }));
        assert_eq!(got, want);
    }

    #[test]
    fn address_bytes_with_and_without_replace() {
        // struct ifaddrmsg: family AF_INET, prefixlen 16, flags 0, scope universe, index 3.
        let mut body = vec![libc::AF_INET as u8, 16, 0, 0];
        body.extend(3u32.to_le_bytes());
        body.extend(attr(IFA_LOCAL, &[10, 88, 0, 2]));
        body.extend(attr(IFA_ADDRESS, &[10, 88, 0, 2]));
        let ip = Ipv4Addr::new(10, 88, 0, 2);
        assert_eq!(
            bytes(&Request::add_address(3, "eth0", ip, 16, false)),
            message(RTM_NEWADDR, 0x1 | 0x4 | 0x200 | 0x400, body.clone())
        );
        // REQUEST | ACK | REPLACE | CREATE
        assert_eq!(
            bytes(&Request::add_address(3, "eth0", ip, 16, true)),
            message(RTM_NEWADDR, 0x1 | 0x4 | 0x100 | 0x400, body)
        );
    }

    #[test]
    fn default_route_bytes() {
        // struct rtmsg: family, dst_len 0, src_len 0, tos 0, table main (254),
        // protocol boot (3), scope universe (0), type unicast (1), flags 0.
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0, 254, 3, 0, 1];
        body.extend(0u32.to_le_bytes());
        body.extend(attr(RTA_GATEWAY, &[10, 88, 0, 1]));
        body.extend(attr(RTA_OIF, &2u32.to_le_bytes()));
        assert_eq!(
            bytes(&Request::add_default_route(Ipv4Addr::new(10, 88, 0, 1), 2)),
            message(RTM_NEWROUTE, 0x1 | 0x4 | 0x200 | 0x400, body)
        );
    }

    #[test]
    fn up_lookup_and_delete_bytes() {
        assert_eq!(
            bytes(&Request::set_up(1, "lo")),
            message(RTM_NEWLINK, 0x1 | 0x4, ifinfomsg(1, IFF_UP, IFF_UP))
        );
        let mut body = ifinfomsg(0, 0, 0);
        body.extend(attr(IFLA_IFNAME, &cstr("bxc1")));
        assert_eq!(
            bytes(&Request::del_link("bxc1")),
            message(RTM_DELLINK, 0x1 | 0x4, body.clone())
        );
        assert_eq!(
            bytes(&Request::get_link("bxc1")),
            message(RTM_GETLINK, 0x1, body)
        );
    }

    #[test]
    fn a_batch_is_messages_back_to_back_with_rising_sequence_numbers() {
        let reqs = [Request::set_up(1, "lo"), Request::del_link("x")];
        let mut out = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            r.encode(10 + i as u32, &mut out);
        }
        let first_len = u32::from_le_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(first_len, 32);
        assert_eq!(&out[8..12], &10u32.to_le_bytes());
        assert_eq!(&out[first_len + 8..first_len + 12], &11u32.to_le_bytes());
        assert_eq!(out.len() % 4, 0);
    }
}
