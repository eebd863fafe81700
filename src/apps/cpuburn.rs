//! `cpuburn [--threads N] [--seconds S]`: keep N threads busy for S seconds, then say how much
//! CPU they actually got, from the process's own rusage (the kernel's accounting, not a
//! guess). Without a limit, N threads on N free CPUs get about N CPUs; under `--cpus 0.5` the
//! whole container gets half of one, however many threads it runs.

use crate::cli::{self, Arg, Parser};
use crate::error::{Error, Result};
use crate::sys::resource;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
usage: cpuburn [--threads N] [--seconds S]

Spin N threads (default: one per CPU this process may run on) for S seconds (default 5),
then print the CPU time they got, measured from the process's own rusage:
cpuburn: 2 threads for 5.0 s used 0.50 CPUs";

pub const DEFAULT_SECONDS: u64 = 5;
pub const MAX_THREADS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub threads: usize,
    pub duration: Duration,
}

/// Parse the arguments; without `--threads`, one thread per CPU in the affinity mask.
pub fn parse(args: Vec<String>) -> Result<Config> {
    let mut p = Parser::new(args);
    let mut threads = None;
    let mut duration = Duration::from_secs(DEFAULT_SECONDS);
    while let Some(arg) = p.next_arg()? {
        match arg {
            Arg::Opt(o) => match o.as_str() {
                "--threads" => {
                    let v = p.value(&o)?;
                    threads = match v.parse::<usize>() {
                        Ok(n) if (1..=MAX_THREADS).contains(&n) => Some(n),
                        _ => {
                            return Err(Error::msg(
                                format!("--threads {v}"),
                                format!("expected a number from 1 to {MAX_THREADS}"),
                            ))
                        }
                    };
                }
                "--seconds" => {
                    let v = p.value(&o)?;
                    duration = cli::seconds(&o, &v)?;
                    if duration.is_zero() {
                        return Err(Error::msg(format!("--seconds {v}"), "must be more than 0"));
                    }
                }
                _ => return Err(cli::unknown(&o)),
            },
            Arg::Pos(v) => {
                return Err(Error::msg(format!("unexpected argument {v}"), "see --help"))
            }
            Arg::DashDash => {
                if let Some(v) = p.rest().first() {
                    return Err(Error::msg(format!("unexpected argument {v}"), "see --help"));
                }
            }
        }
    }
    let threads = match threads {
        Some(n) => n,
        None => resource::cpus_allowed()
            .map_err(|e| Error::io("count the CPUs (sched_getaffinity)", e))?
            .clamp(1, MAX_THREADS),
    };
    Ok(Config { threads, duration })
}

/// What a run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub threads: usize,
    /// Wall-clock time from the first thread's start to the last one's end.
    pub wall: Duration,
    /// CPU time (user + system) the process used meanwhile, all threads together.
    pub cpu: Duration,
}

impl Report {
    /// CPUs' worth of time received: CPU time over wall time.
    pub fn cpus(&self) -> f64 {
        if self.wall.is_zero() {
            0.0
        } else {
            self.cpu.as_secs_f64() / self.wall.as_secs_f64()
        }
    }
}

/// `cpuburn: 2 threads for 5.0 s used 0.50 CPUs`
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.threads == 1 { "" } else { "s" };
        write!(
            f,
            "cpuburn: {} thread{s} for {:.1} s used {:.2} CPUs",
            self.threads,
            self.wall.as_secs_f64(),
            self.cpus()
        )
    }
}

/// Spin `cfg.threads` threads for `cfg.duration` and measure what they got.
pub fn run(cfg: &Config) -> Result<Report> {
    let cpu_time = || {
        resource::self_cpu_time()
            .map(|(user, sys)| user + sys)
            .map_err(|e| Error::io("read rusage", e))
    };
    let before = cpu_time()?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    // Set when a thread cannot be started (a pids limit, say), so the others stop early.
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(cfg.threads);
    let mut failure = None;
    for i in 0..cfg.threads {
        let flag = stop.clone();
        match std::thread::Builder::new()
            .name(format!("burn{i}"))
            .spawn(move || spin(deadline, &flag))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                failure = Some(Error::io(
                    format!("start thread {} of {}", i + 1, cfg.threads),
                    e,
                ));
                break;
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let wall = start.elapsed();
    let cpu = cpu_time()?.saturating_sub(before);
    Ok(Report {
        threads: cfg.threads,
        wall,
        cpu,
    })
}

/// Busy work until the deadline: arithmetic the optimiser cannot drop, a clock check (a vDSO
/// call, no syscall) every few thousand rounds.
fn spin(deadline: Instant, stop: &AtomicBool) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        for _ in 0..4096 {
            x = std::hint::black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
    }
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
            parse_args(&["--threads", "3", "--seconds", "0.5"]).unwrap(),
            Config {
                threads: 3,
                duration: Duration::from_millis(500)
            }
        );
        let d = parse_args(&[]).unwrap();
        assert_eq!(d.duration, Duration::from_secs(5));
        assert_eq!(d.threads, resource::cpus_allowed().unwrap());
        let err = |a: &[&str]| parse_args(a).unwrap_err().to_string();
        assert_eq!(
            err(&["--threads", "0"]),
            "--threads 0: expected a number from 1 to 1024"
        );
        assert_eq!(
            err(&["--threads", "many"]),
            "--threads many: expected a number from 1 to 1024"
        );
        assert_eq!(err(&["--seconds", "0"]), "--seconds 0: must be more than 0");
        assert!(err(&["--seconds", "-1"]).starts_with("--seconds -1: not a number"));
        assert_eq!(err(&["7"]), "unexpected argument 7: see --help");
        assert_eq!(err(&["--fast"]), "unknown option --fast: see --help");
    }

    #[test]
    fn the_report_line() {
        let r = Report {
            threads: 2,
            wall: Duration::from_millis(5012),
            cpu: Duration::from_millis(2506),
        };
        assert_eq!(r.to_string(), "cpuburn: 2 threads for 5.0 s used 0.50 CPUs");
        let one = Report {
            threads: 1,
            wall: Duration::from_secs(3),
            cpu: Duration::from_secs(3),
        };
        assert_eq!(
            one.to_string(),
            "cpuburn: 1 thread for 3.0 s used 1.00 CPUs"
        );
    }

    #[test]
    fn a_short_run_measures_its_own_cpu_time() {
        let r = run(&Config {
            threads: 1,
            duration: Duration::from_millis(200),
        })
        .unwrap();
        assert_eq!(r.threads, 1);
        // It ran until its deadline and the kernel charged it some CPU time: the figure is
        // measured, not assumed. (How much it got depends on the machine's load, so no
        // threshold is asserted.)
        assert!(r.wall >= Duration::from_millis(200));
        assert!(r.cpu > Duration::ZERO);
    }
}
