//! `memhog SIZE [--step SIZE] [--hold SECONDS]`: take SIZE of memory for real, step by step,
//! saying how far it got, so a memory limit can be seen biting (the OOM killer stops it part
//! way, and the last line printed shows where).
//!
//! "For real" means every byte is written. Memory that is only allocated is address space:
//! the kernel backs a page with RAM, and charges it to the cgroup, at the first write to it.

use crate::cli::{self, Arg, Parser};
use crate::error::{Error, Result};
use crate::size::{self, MIB};
use std::io::Write;
use std::time::Duration;

pub const USAGE: &str = "\
usage: memhog SIZE [--step SIZE] [--hold SECONDS]

Allocate SIZE of memory in steps (default 10M) and write every byte of it, so the kernel
must really provide it; print the total after each step (memhog: 120 MiB touched), then
memhog: holding SIZE, keep it for --hold seconds (default 0) and exit 0. Under a memory
limit the OOM killer ends it part way.

SIZE is a whole number of bytes with an optional binary unit: 512k, 200M, 1G, 200MiB.";

pub const DEFAULT_STEP: u64 = 10 * MIB;
/// What the memory is filled with: not zero, so nothing can mistake it for untouched pages.
const PATTERN: u8 = 0xa5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub size: u64,
    pub step: u64,
    pub hold: Duration,
}

pub fn parse(args: Vec<String>) -> Result<Config> {
    let mut p = Parser::new(args);
    let mut step = DEFAULT_STEP;
    let mut hold = Duration::ZERO;
    let parse_size =
        |what: &str, v: &str| size::parse(v).map_err(|why| Error::msg(format!("{what} {v}"), why));
    let mut positional = Vec::new();
    while let Some(arg) = p.next_arg()? {
        match arg {
            Arg::DashDash => positional.extend(p.rest()),
            Arg::Pos(v) => positional.push(v),
            Arg::Opt(o) => match o.as_str() {
                "--step" => step = parse_size("--step", &p.value(&o)?)?,
                "--hold" => hold = cli::seconds(&o, &p.value(&o)?)?,
                _ => return Err(cli::unknown(&o)),
            },
        }
    }
    let mut positional = positional.into_iter();
    let Some(v) = positional.next() else {
        return Err(Error::msg(
            "missing SIZE",
            "usage: memhog SIZE [--step SIZE] [--hold SECONDS]",
        ));
    };
    if let Some(extra) = positional.next() {
        return Err(Error::msg(
            format!("unexpected argument {extra}"),
            "see --help",
        ));
    }
    if step == 0 {
        return Err(Error::msg("--step 0", "a step must be at least 1 byte"));
    }
    Ok(Config {
        size: parse_size("SIZE", &v)?,
        step,
        hold,
    })
}

/// Memory taken by [`hog`], released when dropped.
pub struct Held {
    chunks: Vec<Vec<u8>>,
    pub bytes: u64,
}

/// Take `cfg.size` in steps, writing every byte, and report each step to `out`.
pub fn hog(cfg: &Config, out: &mut dyn Write) -> Result<Held> {
    let mut held = Held {
        chunks: Vec::new(),
        bytes: 0,
    };
    while held.bytes < cfg.size {
        let n = cfg.step.min(cfg.size - held.bytes);
        let no_room = || {
            Error::msg(
                format!(
                    "allocate {} more after {}",
                    size::format(n),
                    size::format(held.bytes)
                ),
                "out of memory",
            )
        };
        let len = usize::try_from(n).map_err(|_| no_room())?;
        let mut chunk: Vec<u8> = Vec::new();
        chunk.try_reserve_exact(len).map_err(|_| no_room())?;
        // The writes that make the pages real. black_box keeps the optimiser from deciding
        // that memory nobody reads need not be written.
        chunk.resize(len, PATTERN);
        held.chunks.push(std::hint::black_box(chunk));
        held.bytes += n;
        say(
            out,
            &format!("memhog: {} touched", size::format(held.bytes)),
        )?;
    }
    Ok(held)
}

/// The whole program: hog, say so, hold, exit.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<()> {
    let held = hog(cfg, out)?;
    say(
        out,
        &format!("memhog: holding {}", size::format(held.bytes)),
    )?;
    if !cfg.hold.is_zero() {
        std::thread::sleep(cfg.hold);
    }
    drop(std::hint::black_box(held));
    Ok(())
}

/// One line, flushed at once: when the OOM killer strikes, the last line out is the truth.
fn say(out: &mut dyn Write, line: &str) -> Result<()> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(a: &[&str]) -> Result<Config> {
        parse(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&["200M"]).unwrap(),
            Config {
                size: 200 * MIB,
                step: 10 * MIB,
                hold: Duration::ZERO
            }
        );
        assert_eq!(
            parse_args(&["--step", "1m", "1G", "--hold=2.5"]).unwrap(),
            Config {
                size: 1 << 30,
                step: MIB,
                hold: Duration::from_millis(2500)
            }
        );
        let err = |a: &[&str]| parse_args(a).unwrap_err().to_string();
        assert_eq!(
            err(&[]),
            "missing SIZE: usage: memhog SIZE [--step SIZE] [--hold SECONDS]"
        );
        assert!(err(&["lots"]).starts_with("SIZE lots: not a size"));
        assert!(err(&["1M", "--step", "1.5M"]).starts_with("--step 1.5M: not a whole number"));
        assert_eq!(
            err(&["1M", "--step", "0"]),
            "--step 0: a step must be at least 1 byte"
        );
        assert_eq!(err(&["1M", "2M"]), "unexpected argument 2M: see --help");
        assert_eq!(
            err(&["1M", "--bogus"]),
            "unknown option --bogus: see --help"
        );
        assert!(err(&["1M", "--hold", "soon"]).starts_with("--hold soon: not a number"));
    }

    #[test]
    fn reports_every_step_and_the_last_partial_one() {
        let cfg = parse_args(&["2500k", "--step", "1M"]).unwrap();
        let mut out = Vec::new();
        run(&cfg, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "memhog: 1 MiB touched\nmemhog: 2 MiB touched\nmemhog: 2500 KiB touched\n\
             memhog: holding 2500 KiB\n"
        );
    }

    /// Resident memory of this process, from the kernel's own count.
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * crate::sys::resource::page_size() as u64
    }

    #[test]
    fn the_memory_is_really_resident() {
        // Allocated-only memory would leave the resident set where it was; touched memory
        // shows up in full. (Other tests in this process allocate kilobytes, not 64 MiB.)
        let before = resident_bytes();
        let cfg = parse_args(&["64M", "--step", "16M"]).unwrap();
        let held = hog(&cfg, &mut std::io::sink()).unwrap();
        let grown = resident_bytes().saturating_sub(before);
        assert_eq!(held.bytes, 64 * MIB);
        assert!(
            grown >= 60 * MIB,
            "resident set grew by {} only",
            size::format(grown)
        );
        assert!(held
            .chunks
            .iter()
            .all(|c| c.iter().step_by(4096).all(|&b| b == PATTERN)));
    }
}
