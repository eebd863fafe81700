//! `box fetch-rootfs SOURCE [options]` and `box fetch-rootfs --self-only DIR`

use boxrt::cli::{self, Arg, Parser};
use boxrt::error::{Error, Result};
use boxrt::rootfs::{self, Request};
use boxrt::sys::{sock, tty};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: box fetch-rootfs SOURCE [--dest DIR] [--force] [options]
       box fetch-rootfs --self-only DIR

Get a root filesystem, verify it, unpack it safely into DIR (default images/<name>) and
install box into it: /usr/local/bin/box with links echo-server, echo-client, memhog, cpuburn.

sources:
  alpine        Alpine's minirootfs from a mirror; sha256 from the release index
  busybox       a small rootfs built offline from the host's static busybox
  PATH          a local .tar, .tar.gz or .tgz file
  URL           an http:// or https:// tarball; needs --sha256 (or --insecure-no-verify)

options:
  --dest DIR            where the rootfs goes (default images/<name>)
  --force               replace an existing DIR (in one atomic rename)
  --version V           alpine: latest (default), edge, X.Y or X.Y.Z
  --arch A              alpine: architecture (default: this machine's)
  --mirror URL          alpine: mirror (default $BOX_MIRROR, else
                        https://dl-cdn.alpinelinux.org/alpine)
  --sha256 HEX          expected digest of a URL or file
  --insecure-no-verify  use a URL without checking any digest
  --self-only DIR       only (re)install box and its links into the rootfs DIR
  -v, --verbose         narrate each step

Nothing is left behind on failure or Ctrl-C: the rootfs is built in .DIR.partial-PID beside
DIR and renamed into place only when complete. Archive entries that would land outside DIR
(.., absolute names, links out, writes through links) are refused.";

enum Mode {
    Fetch(Request),
    SelfOnly(PathBuf),
}

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{USAGE}");
        return 0;
    }
    let mode = match parse(args) {
        Ok(m) => m,
        Err(e) => return crate::fail(&format!("fetch-rootfs: {e}"), e.code()),
    };
    match mode {
        Mode::SelfOnly(dir) => match rootfs::self_only(&dir) {
            Ok(i) => {
                eprintln!(
                    "installed box ({}) with {} into {}",
                    rootfs::download::human_size(i.bytes),
                    i.links.join(", "),
                    dir.display()
                );
                0
            }
            Err(e) => crate::fail(&format!("fetch-rootfs: {e}"), e.code()),
        },
        Mode::Fetch(req) => match rootfs::fetch(&req) {
            Ok(summary) => {
                eprintln!("{summary}");
                0
            }
            Err(e) => {
                if req.progress {
                    // An interrupted download leaves its progress line (and the terminal's
                    // "^C") behind: the error replaces it.
                    eprint!("\r\x1b[K");
                }
                crate::fail(&format!("fetch-rootfs {}: {e}", req.source), e.code())
            }
        },
    }
}

fn parse(args: Vec<String>) -> Result<Mode> {
    let mut req = Request {
        progress: tty::isatty(sock::stdio(2)),
        ..Request::default()
    };
    let mut self_only = None;
    let mut positional = Vec::new();
    let mut p = Parser::new(args);
    while let Some(arg) = p.next_arg()? {
        match arg {
            Arg::Opt(o) => match o.as_str() {
                "--dest" => req.dest = Some(PathBuf::from(p.value(&o)?)),
                "--force" | "-f" => req.force = true,
                "--version" => req.version = Some(p.value(&o)?),
                "--arch" => req.arch = Some(p.value(&o)?),
                "--mirror" => req.mirror = Some(p.value(&o)?),
                "--sha256" => req.sha256 = Some(p.value(&o)?),
                "--insecure-no-verify" => req.insecure_no_verify = true,
                "--self-only" => self_only = Some(PathBuf::from(p.value(&o)?)),
                "-v" | "--verbose" => boxrt::log::set_debug(),
                _ => return Err(cli::unknown(&o)),
            },
            Arg::Pos(s) => positional.push(s),
            Arg::DashDash => positional.extend(p.rest()),
        }
    }
    if let Some(dir) = self_only {
        let others = !positional.is_empty()
            || req.dest.is_some()
            || req.force
            || req.version.is_some()
            || req.arch.is_some()
            || req.mirror.is_some()
            || req.sha256.is_some()
            || req.insecure_no_verify;
        if others {
            return Err(Error::msg(
                "--self-only DIR",
                "takes no source or other options",
            ));
        }
        return Ok(Mode::SelfOnly(dir));
    }
    match positional.len() {
        0 => {
            return Err(Error::msg(
                "source",
                "missing: alpine, busybox, a file or a URL (see --help)",
            ))
        }
        1 => req.source = positional.remove(0),
        _ => {
            return Err(Error::msg(
                format!("argument {}", positional[1]),
                "one source only (the destination is --dest DIR)",
            ))
        }
    }
    if req.source == "alpine" && req.mirror.is_none() {
        req.mirror = std::env::var("BOX_MIRROR").ok().filter(|m| !m.is_empty());
    }
    Ok(Mode::Fetch(req))
}
