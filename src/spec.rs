//! What the user asked for: `box container ROOTFS NAME [options] [-- CMD...]`, parsed and
//! checked for shape (names, values) without touching the system.

use crate::cgroups::{Cpus, Limits};
use crate::cli::{self, Arg, Parser};
use crate::error::{Error, Result};
use crate::net::ipam::{parse_wanted, Wanted};
use std::path::PathBuf;

/// The default command when none is given.
pub const DEFAULT_CMD: &str = "/bin/sh";
/// PATH inside the container unless `-e PATH=...` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Seconds between a forwarded SIGTERM and the SIGKILL that follows if the container lingers.
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// A veth pair to the host bridge `box0`, an address of the container subnet, a default
    /// route via the bridge (see [`crate::net`]).
    Bridge,
    /// A network namespace with only `lo`, up.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyMode {
    /// A pseudo-terminal when stdin and stdout are both terminals, else plain inheritance.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub hostname: String,
    /// The rootfs as the user wrote it (for messages).
    pub rootfs: PathBuf,
    /// argv of the payload.
    pub cmd: Vec<String>,
    /// `-e` settings in order: `KEY=VALUE`, or `KEY` alone to pass the host's value through.
    pub env: Vec<String>,
    pub workdir: PathBuf,
    pub net: NetMode,
    /// `--ip`: the address asked for, checked against the subnet later.
    pub ip: Option<Wanted>,
    pub tty: TtyMode,
    pub stop_timeout: u64,
    pub verbose: bool,
    /// `--memory`, `--cpus`, `--pids`.
    pub limits: Limits,
}

pub const CONTAINER_USAGE: &str = "\
usage: box container ROOTFS NAME [options] [-- CMD [ARGS...]]

Run CMD (default /bin/sh) in new mount, PID, UTS, network and IPC namespaces, with ROOTFS as
its root file system (pivot_root), NAME as its hostname, its own /proc, a minimal /dev, and a
box init as PID 1. Exits with CMD's status (128+N when signal N killed it).

options:
  --hostname H        hostname inside (default: NAME)
  -e, --env KEY=VAL   set an environment variable (KEY alone passes the host's value)
  -w, --workdir DIR   working directory inside (default: /)
  --net MODE          network: bridge (default: a veth pair to the host bridge box0, an
                      address of the container subnet, default route via the bridge) or
                      none (only lo, up)
  --ip ADDR[/N]       the container's address (default: the lowest free one); refused when
                      taken or not a host address of the subnet
  -t, --tty           always give CMD a pseudo-terminal
  -T, --no-tty        never give CMD a pseudo-terminal (default: one when stdin and stdout
                      are terminals)
  --stop-timeout S    after a forwarded SIGTERM, SIGKILL the container if it still runs after S
                      seconds (default 10)
  --memory SIZE       memory limit (like 64M or 1G: binary units, at least 4M); swap is off
                      for the container, and if the OOM killer ends CMD, box says so
  --cpus N            CPU time limit in CPUs, fractional (0.5 = half of one CPU, at least
                      0.01)
  --pids N            at most N tasks (processes and threads) in the container, at least 2
  -v, --verbose       narrate every step with timings (same as BOX_LOG=debug)
  -h, --help          show this help

The container subnet is 10.88.0.0/16 unless BOX_SUBNET says otherwise; its first host
address (10.88.0.1) is the bridge's. The network is host-only: no forwarding, no NAT.
NAME is a hostname label: letters, digits and '-', at most 63 bytes, not starting or ending
with '-'. The running container's state is in /run/box/NAME; its cgroup is box/NAME
under /sys/fs/cgroup (cgroup v2) or under each v1 controller's hierarchy.
exit status: CMD's, or 125 when box itself fails, 126 when CMD cannot be run, 127 when it is
not found in ROOTFS.";

impl Spec {
    /// Parse the arguments after `container`.
    pub fn parse(args: Vec<String>) -> Result<Spec> {
        let mut p = Parser::new(args);
        let mut positional: Vec<String> = Vec::new();
        let mut cmd: Vec<String> = Vec::new();
        let mut hostname = None;
        let mut env = Vec::new();
        let mut workdir = PathBuf::from("/");
        let mut net = NetMode::Bridge;
        let mut ip = None;
        let mut tty = TtyMode::Auto;
        let mut stop_timeout = DEFAULT_STOP_TIMEOUT;
        let mut verbose = false;
        let mut limits = Limits::default();
        while let Some(arg) = p.next_arg()? {
            match arg {
                Arg::DashDash => {
                    cmd = p.rest();
                    break;
                }
                Arg::Pos(v) if positional.len() < 2 => positional.push(v),
                Arg::Pos(v) => {
                    // Past ROOTFS and NAME, the first bare word starts the command.
                    cmd.push(v);
                    cmd.extend(p.rest());
                    break;
                }
                Arg::Opt(o) => match o.as_str() {
                    "--hostname" => hostname = Some(p.value(&o)?),
                    "-e" | "--env" => {
                        let v = p.value(&o)?;
                        check_env(&v)?;
                        env.push(v);
                    }
                    "-w" | "--workdir" => {
                        let v = p.value(&o)?;
                        if !v.starts_with('/') {
                            return Err(Error::msg(
                                format!("workdir {v}"),
                                "must be an absolute path",
                            ));
                        }
                        workdir = PathBuf::from(v);
                    }
                    "--net" => {
                        let v = p.value(&o)?;
                        net = match v.as_str() {
                            "bridge" => NetMode::Bridge,
                            "none" => NetMode::None,
                            _ => {
                                return Err(Error::msg(
                                    format!("--net {v}"),
                                    "unknown mode (bridge, none)",
                                ))
                            }
                        };
                    }
                    "--ip" => ip = Some(parse_wanted(&p.value(&o)?)?),
                    "-t" | "--tty" => tty = TtyMode::Always,
                    "-T" | "--no-tty" => tty = TtyMode::Never,
                    "--stop-timeout" => {
                        let v = p.value(&o)?;
                        stop_timeout = v.parse().map_err(|_| {
                            Error::msg(format!("--stop-timeout {v}"), "not a number of seconds")
                        })?;
                    }
                    "--memory" => limits.memory = Some(Limits::parse_memory(&p.value(&o)?)?),
                    "--cpus" => limits.cpus = Some(Cpus::parse(&p.value(&o)?)?),
                    "--pids" => limits.pids = Some(Limits::parse_pids(&p.value(&o)?)?),
                    "-v" | "--verbose" => verbose = true,
                    _ => return Err(cli::unknown(&o)),
                },
            }
        }
        let mut positional = positional.into_iter();
        let (Some(rootfs), Some(name)) = (positional.next(), positional.next()) else {
            return Err(Error::msg(
                "missing ROOTFS or NAME",
                "usage: box container ROOTFS NAME [options] [-- CMD...]",
            ));
        };
        check_name(&name)?;
        let hostname = hostname.unwrap_or_else(|| name.clone());
        if hostname != name {
            check_hostname(&hostname)?;
        }
        if cmd.is_empty() {
            cmd.push(DEFAULT_CMD.to_string());
        }
        if cmd[0].is_empty() {
            return Err(Error::msg("command", "empty"));
        }
        Ok(Spec {
            name,
            hostname,
            rootfs: PathBuf::from(rootfs),
            cmd,
            env,
            workdir,
            net,
            ip,
            tty,
            stop_timeout,
            verbose,
            limits,
        })
    }

    /// The payload's environment: defaults, then the host's TERM, then `-e` settings in order.
    /// `host` looks up the host's variables (a parameter so tests need not touch the real env).
    pub fn environment(&self, tty: bool, host: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let mut vars: Vec<(String, String)> = vec![
            ("PATH".into(), DEFAULT_PATH.into()),
            ("HOME".into(), "/root".into()),
            ("HOSTNAME".into(), self.hostname.clone()),
        ];
        match host("TERM") {
            Some(term) => vars.push(("TERM".into(), term)),
            None if tty => vars.push(("TERM".into(), "xterm".into())),
            None => {}
        }
        for e in &self.env {
            let (k, v) = match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match host(e) {
                    Some(v) => (e.clone(), v),
                    None => continue,
                },
            };
            match vars.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => vars.push((k, v)),
            }
        }
        vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

fn check_env(v: &str) -> Result<()> {
    let key = v.split_once('=').map_or(v, |(k, _)| k);
    if key.is_empty() || key.contains('\0') || v.contains('\0') {
        return Err(Error::msg(format!("-e {v}"), "expected KEY=VALUE"));
    }
    Ok(())
}

/// A container name: an RFC 1123 hostname label (it becomes the hostname and a path component).
pub fn check_name(name: &str) -> Result<()> {
    label_problem(name).map_or(Ok(()), |why| Err(Error::msg(format!("name {name:?}"), why)))
}

/// A hostname: dot-separated labels, at most 64 bytes in all (the kernel's limit).
pub fn check_hostname(h: &str) -> Result<()> {
    if h.len() > 64 {
        return Err(Error::msg(
            format!("hostname {h:?}"),
            "longer than 64 bytes",
        ));
    }
    for label in h.split('.') {
        if let Some(why) = label_problem(label) {
            return Err(Error::msg(format!("hostname {h:?}"), why));
        }
    }
    Ok(())
}

fn label_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("must not be empty")
    } else if s.len() > 63 {
        Some("longer than 63 bytes")
    } else if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Some("may hold only letters, digits and '-'")
    } else if s.starts_with('-') || s.ends_with('-') {
        Some("must not start or end with '-'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Spec> {
        Spec::parse(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn defaults() {
        let s = parse(&["./r", "c1"]).unwrap();
        assert_eq!(s.name, "c1");
        assert_eq!(s.hostname, "c1");
        assert_eq!(s.rootfs, PathBuf::from("./r"));
        assert_eq!(s.cmd, vec!["/bin/sh"]);
        assert_eq!(s.workdir, PathBuf::from("/"));
        assert_eq!(s.net, NetMode::Bridge);
        assert_eq!(s.ip, None);
        assert_eq!(s.tty, TtyMode::Auto);
        assert_eq!(s.stop_timeout, 10);
        assert!(s.limits.is_empty());
    }

    #[test]
    fn limits() {
        let s = parse(&["r", "c1", "--memory", "64M", "--cpus=0.5", "--pids", "20"]).unwrap();
        assert_eq!(s.limits.memory, Some(64 << 20));
        assert_eq!(s.limits.cpus.unwrap().quota_us(), 50_000);
        assert_eq!(s.limits.pids, Some(20));
        let err = |a: &[&str]| parse(a).unwrap_err().to_string();
        assert!(err(&["r", "c1", "--memory", "64Q"]).starts_with("--memory 64Q: unknown unit"));
        assert!(err(&["r", "c1", "--memory", "1M"]).starts_with("--memory 1M: below the minimum"));
        assert!(err(&["r", "c1", "--cpus", "lots"]).starts_with("--cpus lots: not a number"));
        assert!(err(&["r", "c1", "--pids", "0"]).starts_with("--pids 0: below the minimum"));
        assert_eq!(
            err(&["r", "c1", "--memory"]),
            "option --memory: needs a value"
        );
    }

    #[test]
    fn options_anywhere_before_the_command() {
        let s = parse(&[
            "-e",
            "A=1",
            "./r",
            "--hostname",
            "web",
            "c1",
            "-w",
            "/tmp",
            "--env=B",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert_eq!(s.hostname, "web");
        assert_eq!(s.env, vec!["A=1", "B"]);
        assert_eq!(s.workdir, PathBuf::from("/tmp"));
        assert_eq!(s.cmd, vec!["ls", "-l"]);
    }

    #[test]
    fn a_third_bare_word_starts_the_command() {
        let s = parse(&["r", "c1", "echo", "-n", "--hostname", "x"]).unwrap();
        assert_eq!(s.cmd, vec!["echo", "-n", "--hostname", "x"]);
        assert_eq!(s.hostname, "c1");
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let err = |a: &[&str]| parse(a).unwrap_err().to_string();
        assert_eq!(
            err(&["r"]),
            "missing ROOTFS or NAME: usage: box container ROOTFS NAME [options] [-- CMD...]"
        );
        assert_eq!(
            err(&["r", "c1", "--bogus"]),
            "unknown option --bogus: see --help"
        );
        assert_eq!(
            err(&["r", "bad_name"]),
            "name \"bad_name\": may hold only letters, digits and '-'"
        );
        assert_eq!(err(&["r", "-x"]), "unknown option -x: see --help");
        assert_eq!(
            err(&["r", "c1", "-w", "tmp"]),
            "workdir tmp: must be an absolute path"
        );
        assert_eq!(
            err(&["r", "c1", "--net", "host"]),
            "--net host: unknown mode (bridge, none)"
        );
        assert_eq!(err(&["r", "c1", "-e", "=x"]), "-e =x: expected KEY=VALUE");
        assert_eq!(
            err(&["r", "c1", "--hostname", "a..b"]),
            "hostname \"a..b\": must not be empty"
        );
        assert_eq!(
            err(&["r", "c1", "--stop-timeout", "soon"]),
            "--stop-timeout soon: not a number of seconds"
        );
    }

    #[test]
    fn network_mode_and_address() {
        assert_eq!(
            parse(&["r", "c1", "--net", "none"]).unwrap().net,
            NetMode::None
        );
        assert_eq!(
            parse(&["r", "c1", "--net=bridge"]).unwrap().net,
            NetMode::Bridge
        );
        let s = parse(&["r", "c1", "--ip=10.88.0.9/16"]).unwrap();
        assert_eq!(
            s.ip,
            Some(Wanted {
                addr: std::net::Ipv4Addr::new(10, 88, 0, 9),
                prefix: Some(16)
            })
        );
        assert_eq!(
            parse(&["r", "c1", "--ip", "x"]).unwrap_err().to_string(),
            "--ip x: expected an IPv4 address like 10.88.0.5/16"
        );
    }

    #[test]
    fn names_are_hostname_labels() {
        assert!(check_name("c1").is_ok());
        assert!(check_name("a-b-9").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        assert!(check_name(&"a".repeat(64)).is_err());
        for bad in ["", "-a", "a-", "a.b", "a/b", "..", "a b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_hostname("web.local").is_ok());
        assert!(check_hostname(&"a.".repeat(40)).is_err());
    }

    #[test]
    fn environment_layers_defaults_term_and_settings() {
        let s = parse(&[
            "r",
            "c1",
            "-e",
            "A=1",
            "-e",
            "PATH=/bin",
            "-e",
            "USER",
            "-e",
            "NOPE",
        ])
        .unwrap();
        let host = |k: &str| match k {
            "TERM" => Some("screen".to_string()),
            "USER" => Some("alice".to_string()),
            _ => None,
        };
        assert_eq!(
            s.environment(false, host),
            vec![
                "PATH=/bin",
                "HOME=/root",
                "HOSTNAME=c1",
                "TERM=screen",
                "A=1",
                "USER=alice"
            ]
        );
        // With a pty and no TERM on the host, the shell still gets a usable terminal type.
        let env = s.environment(true, |_| None);
        assert!(env.contains(&"TERM=xterm".to_string()));
        assert!(!s
            .environment(false, |_| None)
            .iter()
            .any(|e| e.starts_with("TERM=")));
    }
}
