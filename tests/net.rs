//! Container networking: the bridge, veth pairs, addresses, `box ls`, echo-server and
//! echo-client. Runs as root against a busybox rootfs with box installed in /usr/local/bin
//! (so echo-server and echo-client are on the container's PATH); see tests/common.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A container running in the background; killed if the test panics.
struct Running {
    name: String,
    child: Option<Child>,
}

/// Start `box container ROOTFS NAME [opts] -- CMD...` in the background.
fn start(name: &str, opts: &[&str], cmd: &[&str]) -> Running {
    start_env(name, opts, cmd, &[])
}

fn start_env(name: &str, opts: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> Running {
    let root = rootfs().to_str().unwrap().to_string();
    let mut args = vec!["container", &root, name];
    args.extend(opts);
    args.push("--");
    args.extend(cmd);
    let child = Command::new(box_bin())
        .args(&args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running {
        name: name.to_string(),
        child: Some(child),
    }
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM the box process (forwarded to the payload), wait; returns (status, stdout).
    fn stop(self) -> (i32, String) {
        signal(self.pid(), "TERM");
        self.wait()
    }

    /// Wait for the box process to exit; returns (status, stdout).
    fn wait(mut self) -> (i32, String) {
        let mut child = self.child.take().unwrap();
        let status = wait_exit(&mut child);
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    }

    /// The container's stderr so far, for failure messages (only once it has exited).
    fn failure(&mut self) -> String {
        let child = self.child.as_mut().unwrap();
        match child.try_wait().unwrap() {
            Some(st) => {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                format!("{} exited ({st}): {err}", self.name)
            }
            None => format!("{} still running", self.name),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

fn wait_exit(child: &mut Child) -> i32 {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < LIMIT, "container did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One entry of `box ls --json`.
#[derive(Debug, Clone)]
struct Listed {
    name: String,
    init_pid: u32,
    box_pid: u32,
    ip: Option<Ipv4Addr>,
    veth: Option<String>,
}

/// The value of `"key":` in one flat JSON object written by box ls (strings without quotes
/// inside, numbers, null).
fn field<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let at = obj.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &obj[at..];
    if let Some(s) = rest.strip_prefix('"') {
        return Some(&s[..s.find('"')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    match &rest[..end] {
        "null" => None,
        v => Some(v),
    }
}

fn ls_json() -> Vec<Listed> {
    let out = run_box(&["ls", "--json"], LIMIT);
    assert!(
        out.status.success(),
        "box ls --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let text = text.trim();
    assert!(text.starts_with('[') && text.ends_with(']'), "{text}");
    let body = &text[1..text.len() - 1];
    if body.is_empty() {
        return Vec::new();
    }
    body.split("},{")
        .map(|o| Listed {
            name: field(o, "name").unwrap().to_string(),
            init_pid: field(o, "init_pid").unwrap().parse().unwrap(),
            box_pid: field(o, "box_pid").unwrap().parse().unwrap(),
            ip: field(o, "ip").map(|s| s.parse().unwrap()),
            veth: field(o, "veth").map(str::to_string),
        })
        .collect()
}

/// Wait until `box ls` lists `c` with an address and its echo-server accepts connections.
fn wait_serving(c: &mut Running) -> Listed {
    let mut found = None;
    let ok = wait_until(LIMIT, || {
        found = ls_json()
            .into_iter()
            .find(|l| l.name == c.name && l.ip.is_some() && l.init_pid > 0);
        match &found {
            Some(l) => connects(l.ip.unwrap(), 7000),
            None => false,
        }
    });
    if !ok {
        panic!("echo-server never answered: {}", c.failure());
    }
    found.unwrap()
}

fn connects(ip: Ipv4Addr, port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::new(ip.into(), port), Duration::from_secs(1)).is_ok()
}

/// `box container ROOTFS NAME [opts] -- CMD...` to completion; its stdout, after checking
/// that it succeeded.
fn run_ok(name: &str, opts: &[&str], cmd: &[&str]) -> String {
    let root = rootfs().to_str().unwrap().to_string();
    let mut args = vec!["container", &root, name];
    args.extend(opts);
    args.push("--");
    args.extend(cmd);
    let out = run_box(&args, LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "box {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `box echo-client ARGS...` on the host: (status, stdout, stderr).
fn echo_client(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["echo-client"];
    a.extend(args);
    let out = run_box(&a, LIMIT);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first line a fresh connection to `ip:7000` reads.
fn greeting(ip: Ipv4Addr) -> String {
    let s = TcpStream::connect_timeout(&SocketAddr::new(ip.into(), 7000), Duration::from_secs(5))
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// After a container exited: no state, not listed, and its host veth gone.
fn assert_net_clean(l: &Listed) {
    assert_clean(&l.name);
    assert!(
        !ls_json().iter().any(|x| x.name == l.name),
        "{} still listed",
        l.name
    );
    let veth = l.veth.as_deref().unwrap();
    assert!(
        !link_exists(veth),
        "host veth {veth} of {} left behind",
        l.name
    );
}

#[test]
fn echo_server_in_a_container_answers_the_host() {
    if !require_root() {
        return;
    }
    let n = name("echo");
    let mut c = start(&n, &[], &["echo-server"]);
    let l = wait_serving(&mut c);
    let ip = l.ip.unwrap();

    let (code, out, err) = echo_client(&[&ip.to_string(), "hello", "from", "the", "host"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("hello from {n} ({ip}:7000)\nhello from the host\n")
    );

    // The container's address is its own: the host holds no such address (binding to it
    // fails), and box ls shows it in the container's row.
    let err = TcpListener::bind((ip, 0)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
    let table = String::from_utf8(run_box(&["ls"], LIMIT).stdout).unwrap();
    assert!(table.starts_with("NAME "), "{table}");
    let row: Vec<&str> = table
        .lines()
        .find(|r| r.starts_with(&format!("{n} ")))
        .unwrap_or_else(|| panic!("{n} not in box ls:\n{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], l.init_pid.to_string());
    assert_eq!(row[2], ip.to_string());
    assert_eq!(row[3], "-"); // no limits given

    // The link is one end of a veth pair attached to box0; the other end is eth0 inside.
    let veth = l.veth.clone().unwrap();
    assert!(veth.starts_with("bx") && veth.len() <= 15, "{veth}");
    let master = std::fs::read_link(format!("/sys/class/net/{veth}/master")).unwrap();
    assert_eq!(master.file_name().unwrap(), "box0");
    let (code, out, err) = sh(
        &name("echo-peer"),
        "cat /sys/class/net/eth0/type; ls /sys/class/net | sort | tr '\\n' ' '",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\neth0 lo "); // ARPHRD_ETHER; nothing but eth0 and lo

    // A wrong echo is a failure, and so is an address nobody listens on.
    let (code, _, err) = echo_client(&["--timeout", "2", &format!("{ip}:7001")]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "box: echo-client: connect to {ip}:7001: connection refused"
        )),
        "{err}"
    );

    let (status, log) = c.stop();
    assert_eq!(
        status,
        128 + 15,
        "echo-server dies by the forwarded SIGTERM"
    );
    assert!(
        log.starts_with("echo-server: listening on 0.0.0.0:7000\n"),
        "{log}"
    );
    assert!(log.contains("connection from 10.88.0.1:"), "{log}");
    assert_net_clean(&l);
}

#[test]
fn two_containers_on_port_7000_reach_the_host_and_each_other() {
    if !require_root() {
        return;
    }
    let (na, nb) = (name("twin-a"), name("twin-b"));
    let mut a = start(&na, &[], &["echo-server", "--port", "7000"]);
    let la = wait_serving(&mut a);
    // b lists its processes before it starts serving: a's echo-server is not among them.
    let mut b = start(&nb, &[], &["sh", "-c", "ps -o comm; exec echo-server"]);
    let lb = wait_serving(&mut b);
    let (ipa, ipb) = (la.ip.unwrap(), lb.ip.unwrap());
    assert_ne!(ipa, ipb);
    assert_eq!(greeting(ipa), format!("hello from {na} ({ipa}:7000)"));
    assert_eq!(greeting(ipb), format!("hello from {nb} ({ipb}:7000)"));
    // Both servers are running (the host sees two), yet neither container sees the other's.
    assert!(pids_with("echo-server").len() >= 2);

    // Container to container, across the bridge, both ways round.
    for (from, to, to_name) in [(&na, ipb, &nb), (&nb, ipa, &na)] {
        let to_s = to.to_string();
        let cmd = ["echo-client", &to_s, "across", "the", "bridge"];
        assert_eq!(
            run_ok(&format!("{from}-cli"), &[], &cmd),
            format!("hello from {to_name} ({to}:7000)\nacross the bridge\n")
        );
    }

    let (_, out_a) = a.stop();
    let (_, out_b) = b.stop();
    let ps: Vec<&str> = out_b
        .lines()
        .take_while(|l| !l.starts_with("echo-server:"))
        .collect();
    assert_eq!(ps.first(), Some(&"COMMAND"), "{out_b}");
    assert!(ps.contains(&"ps"), "{out_b}");
    assert!(
        !ps.contains(&"echo-server"),
        "b saw a's echo-server: {out_b}"
    );
    // a's log shows the client container's own address, not the host's: the connection
    // went across the bridge, from one namespace to the other.
    let peers: Vec<&str> = out_a
        .lines()
        .filter_map(|l| l.strip_prefix("connection from "))
        .collect();
    assert!(
        peers
            .iter()
            .any(|p| p.starts_with("10.88.") && !p.starts_with("10.88.0.1:")),
        "{out_a}"
    );
    assert_net_clean(&la);
    assert_net_clean(&lb);
}

#[test]
fn twenty_containers_started_at_once_get_distinct_reachable_addresses() {
    if !require_root() {
        return;
    }
    let mut all: Vec<Running> = (0..20)
        .map(|i| start(&name(&format!("many{i}")), &[], &["echo-server"]))
        .collect();
    let listed: Vec<Listed> = all.iter_mut().map(wait_serving).collect();
    let mut ips: Vec<Ipv4Addr> = listed.iter().map(|l| l.ip.unwrap()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "duplicate addresses: {listed:?}");
    let mut veths: Vec<&str> = listed.iter().map(|l| l.veth.as_deref().unwrap()).collect();
    veths.sort();
    veths.dedup();
    assert_eq!(veths.len(), 20);
    for l in &listed {
        let ip = l.ip.unwrap();
        assert_eq!(greeting(ip), format!("hello from {} ({ip}:7000)", l.name));
    }
    // Stop them all at once, too.
    for c in &all {
        signal(c.pid(), "TERM");
    }
    for c in all {
        let (status, _) = c.wait();
        assert_eq!(status, 128 + 15);
    }
    for l in &listed {
        assert_net_clean(l);
    }
}

#[test]
fn a_killed_box_is_reclaimed_by_the_next_box_command() {
    if !require_root() {
        return;
    }
    let n = name("killed");
    // An address that the lowest-first allocations of parallel tests will not take the
    // moment it is free, so that asking for it again below shows it was released.
    let pid = std::process::id();
    let ip = Ipv4Addr::new(10, 88, 150 + (pid % 50) as u8, 2 + (pid % 250) as u8);
    let mut c = start(&n, &["--ip", &ip.to_string()], &["echo-server"]);
    let l = wait_serving(&mut c);
    assert_eq!(l.ip, Some(ip));
    signal(l.box_pid, "KILL");
    let mut child = c.child.take().unwrap();
    assert_eq!(wait_exit(&mut child), -1, "killed by a signal");
    // The container dies with its box process (init's parent-death signal).
    assert!(
        wait_until(LIMIT, || !Path::new(&format!("/proc/{}", l.init_pid))
            .exists()),
        "init {} outlived its box process",
        l.init_pid
    );
    // Its state is still there for the next box command to reclaim, unless a test running
    // in parallel made that command first; either way, what follows must hold.
    if !Path::new("/run/box").join(&n).exists() {
        eprintln!("note: {n} was reclaimed by a box command of a parallel test");
    }

    // Any box command reclaims: box ls does not list it and leaves nothing of it.
    assert!(!ls_json().iter().any(|x| x.name == n));
    assert!(!Path::new("/run/box").join(&n).exists());
    assert!(!link_exists(l.veth.as_deref().unwrap()));
    // Its address is free again: a new container may ask for exactly that one.
    let ip_s = ip.to_string();
    let out = run_ok(
        &n,
        &["--ip", &ip_s],
        &["ip", "-4", "-o", "addr", "show", "eth0"],
    );
    assert!(out.contains(&format!("inet {ip}/16 ")), "{out}");
    assert_clean(&n);
}

#[test]
fn address_requests_are_checked() {
    if !require_root() {
        return;
    }
    // An address unlikely to be picked by the lowest-first allocation of concurrent tests.
    let pid = std::process::id();
    let ip = Ipv4Addr::new(10, 88, 200 + (pid % 50) as u8, 2 + (pid % 250) as u8);
    let ip_s = ip.to_string();
    let n = name("wanted");
    let mut c = start(&n, &["--ip", &format!("{ip_s}/16")], &["echo-server"]);
    let l = wait_serving(&mut c);
    assert_eq!(l.ip, Some(ip));

    let root = rootfs().to_str().unwrap().to_string();
    let n2 = name("wanted2");
    let refused = |args: &[&str]| {
        let mut a = vec!["container", &root, &n2];
        a.extend(args);
        a.extend(["--", "true"]);
        let out = run_box(&a, LIMIT);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    assert_eq!(
        refused(&["--ip", &ip_s]),
        format!("box: container {n2}: --ip {ip_s}: already in use by container {n}\n")
    );
    assert_eq!(
        refused(&["--ip", "10.88.0.1"]),
        format!("box: container {n2}: --ip 10.88.0.1: is the gateway (the bridge's own address)\n")
    );
    assert_eq!(
        refused(&["--ip", "10.99.0.5"]),
        format!(
            "box: container {n2}: --ip 10.99.0.5: outside the container subnet \
             10.88.0.0/16 (BOX_SUBNET)\n"
        )
    );
    assert_eq!(
        refused(&["--ip", "10.88.255.255"]),
        format!("box: container {n2}: --ip 10.88.255.255: is the broadcast address\n")
    );
    assert_eq!(
        refused(&["--net", "none", "--ip", "10.88.0.9"]),
        format!("box: container {n2}: --ip 10.88.0.9: needs --net bridge (the default)\n")
    );
    assert!(!Path::new("/run/box").join(&n2).exists());
    c.stop();
    assert_net_clean(&l);
}

#[test]
fn net_none_keeps_only_lo_and_bridge_adds_eth0_with_a_default_route() {
    if !require_root() {
        return;
    }
    let n = name("none");
    let root = rootfs().to_str().unwrap().to_string();
    let out = run_box(
        &[
            "container",
            &root,
            &n,
            "--net",
            "none",
            "--",
            "sh",
            "-c",
            "ls /sys/class/net; cat /sys/class/net/lo/flags; wc -l < /proc/net/route",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    // Only lo, up (IFF_UP | IFF_LOOPBACK), and no route (/proc/net/route is its header).
    assert_eq!(String::from_utf8_lossy(&out.stdout), "lo\n0x9\n1\n");
    assert_clean(&n);

    let (code, out, err) = sh(&n, "ip route; ip -o link show lo | grep -c LOWER_UP");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("default via 10.88.0.1 dev eth0 "));
    assert!(lines.next().unwrap().starts_with("10.88.0.0/16 dev eth0 "));
    assert_eq!(lines.next(), Some("1"));
    assert_clean(&n);
}

#[test]
fn box_subnet_moves_the_containers_and_the_gateway() {
    if !require_root() {
        return;
    }
    let n = name("subnet");
    let mut c = start_env(&n, &[], &["echo-server"], &[("BOX_SUBNET", "10.89.0.0/24")]);
    let l = wait_serving(&mut c);
    let ip = l.ip.unwrap();
    assert_eq!(ip.octets()[..3], [10, 89, 0]);
    assert_eq!(greeting(ip), format!("hello from {n} ({ip}:7000)"));
    c.stop();
    assert_net_clean(&l);
    // The bridge keeps the gateway address; take it off again so this test leaves nothing,
    // where the host has an ip binary to do it with (box itself never removes it).
    let _ = Command::new("ip")
        .args(["addr", "del", "10.89.0.1/24", "dev", "box0"])
        .stderr(Stdio::null())
        .status();

    let root = rootfs().to_str().unwrap().to_string();
    let out = Command::new(box_bin())
        .args(["container", &root, &n, "--", "true"])
        .env("BOX_SUBNET", "10.89.0.1/24")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "box: container {n}: BOX_SUBNET: subnet 10.89.0.1/24: host bits are set \
             (the network is 10.89.0.0)\n"
        )
    );
}

#[test]
fn the_network_is_host_only() {
    if !require_root() {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let (code, _, err) = sh(&name("fwd"), "true");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        before,
        "box changed IP forwarding"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/box0/forwarding").unwrap(),
        before,
        "box0 forwards unlike the host"
    );
}
