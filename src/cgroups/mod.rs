//! Resource limits with cgroups: one group per container, its limits written before the
//! container starts, the OOM killer's verdict read back from the kernel's counters after it
//! ends, and everything removed again on every path.
//!
//! # Layouts
//! [`detect`] tells the three layouts apart by their marker files under the root. crun's
//! `detect_cgroup_mode` asks statfs(2) for the file system type instead; files work the same on
//! a real machine and let a temp dir stand in for the root in unit tests.
//! - **v2** (unified): `ROOT/cgroup.controllers` exists. One group, `ROOT/box/NAME`. The
//!   controllers are switched on for children through `cgroup.subtree_control` of `ROOT` and of
//!   `ROOT/box`, and the child is born inside the group (clone3 with CLONE_INTO_CGROUP), so not
//!   one instruction of it runs unlimited.
//! - **hybrid**: v1 controller hierarchies plus a cgroup2 at `ROOT/unified` that holds no
//!   controllers (systemd's compromise; this project's CI machine). The limits live in v1.
//! - **v1** (legacy): one hierarchy per controller (`ROOT/memory`, `ROOT/cpu`, ...). Box makes
//!   `ROOT/<controller>/box/NAME` in each hierarchy it uses ([`v1::CONTROLLERS`]); the child
//!   joins every one of them itself ([`join`]) as its first step after clone, before it
//!   waits for the parent's go.
//!
//! # Lifetime
//! A [`Cgroup`] owns the groups it made. Dropping it kills whatever still runs in them
//! (`cgroup.kill` on v2; freeze, SIGKILL, thaw on v1), removes them, and removes the shared
//! `box` parent once it is empty. The paths also go into the container's state record, so
//! [`Cgroup::from_record`] can do the same for a box process that was killed outright.

pub mod v1;
pub mod v2;

use crate::error::{Error, Result};
use crate::size::{self, MIB};
use crate::state::Record;
use crate::sys::process::{self, pid_t};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup file systems are mounted on every Linux distribution.
pub const ROOT: &str = "/sys/fs/cgroup";
/// The group under which every container's group lives, in each hierarchy.
pub const PARENT: &str = "box";
/// The smallest `--memory`: box's init, a shell and the kernel's per-group overhead do not
/// fit in less, so a lower limit would only produce a container that dies at birth.
pub const MIN_MEMORY: u64 = 4 * MIB;
/// The smallest `--pids`: the container's init and its command.
pub const MIN_PIDS: u64 = 2;
/// How long cleanup waits for killed processes to leave their groups.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);

/// The cgroup layout of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V2,
    Hybrid,
    V1,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::V2 => "v2",
            Mode::Hybrid => "hybrid",
            Mode::V1 => "v1",
        }
    }

    fn from_name(s: &str) -> Option<Mode> {
        [Mode::V2, Mode::Hybrid, Mode::V1]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which layout the cgroup file systems under `root` form.
pub fn detect(root: &Path) -> Result<Mode> {
    Layout::detect(root).map(|l| l.mode)
}

/// The cgroup file systems under a root, looked at once per box command: the layout and the
/// hierarchies box makes groups in (the root itself on v2, one per v1 controller box uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    mode: Mode,
    /// (controller, mount point) in [`v1::CONTROLLERS`] order on v1 and hybrid; on v2 the
    /// root alone, under the name `""`.
    bases: Vec<(&'static str, PathBuf)>,
}

impl Layout {
    pub fn detect(root: &Path) -> Result<Layout> {
        let layout = |mode, bases| Layout {
            root: root.to_path_buf(),
            mode,
            bases,
        };
        if root.join("cgroup.controllers").exists() {
            return Ok(layout(Mode::V2, vec![("", root.to_path_buf())]));
        }
        let hier = v1::hierarchies(root);
        match (
            !hier.is_empty(),
            root.join("unified/cgroup.controllers").exists(),
        ) {
            (true, true) => Ok(layout(Mode::Hybrid, hier)),
            (true, false) => Ok(layout(Mode::V1, hier)),
            (false, _) => Err(Error::msg(
                format!("find cgroups under {}", root.display()),
                "neither a cgroup v2 hierarchy nor a v1 memory, cpu, pids or freezer hierarchy \
                 is mounted there",
            )),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The hierarchies box makes groups in, as (controller, mount point).
    pub fn bases(&self) -> &[(&'static str, PathBuf)] {
        &self.bases
    }
}

/// The limits of one container; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory; swap is off for the container when set.
    pub memory: Option<u64>,
    pub cpus: Option<Cpus>,
    /// Tasks (processes and threads).
    pub pids: Option<u64>,
}

impl Limits {
    /// Parse a `--memory` value (a size, at least [`MIN_MEMORY`]).
    pub fn parse_memory(v: &str) -> Result<u64> {
        let what = || format!("--memory {v}");
        let bytes = size::parse(v).map_err(|why| Error::msg(what(), why))?;
        if bytes < MIN_MEMORY {
            return Err(Error::msg(
                what(),
                format!(
                    "below the minimum of {}: a container's init and shell need more",
                    size::format(MIN_MEMORY)
                ),
            ));
        }
        Ok(bytes)
    }

    /// Parse a `--pids` value (a count, at least [`MIN_PIDS`]).
    pub fn parse_pids(v: &str) -> Result<u64> {
        let what = || format!("--pids {v}");
        let n: u64 = v
            .parse()
            .map_err(|_| Error::msg(what(), "not a whole number of tasks"))?;
        if n < MIN_PIDS {
            return Err(Error::msg(
                what(),
                format!("below the minimum of {MIN_PIDS}: the container's init and its command"),
            ));
        }
        Ok(n)
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The controllers these limits need, with the option that asked for each.
    pub fn needs(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.memory.is_some() {
            out.push(("memory", "--memory"));
        }
        if self.cpus.is_some() {
            out.push(("cpu", "--cpus"));
        }
        if self.pids.is_some() {
            out.push(("pids", "--pids"));
        }
        out
    }
}

/// `memory 64 MiB, cpus 0.5, pids 20`, or `none`.
impl Limits {
    /// One token for tables and records (`memory=64MiB,cpus=0.5,pids=20`); `None` without
    /// limits.
    pub fn compact(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(m) = self.memory {
            parts.push(format!("memory={}", size::format(m).replace(' ', "")));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("cpus={c}"));
        }
        if let Some(p) = self.pids {
            parts.push(format!("pids={p}"));
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = self.memory {
            parts.push(format!("memory {}", size::format(m)));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("cpus {c}"));
        }
        if let Some(p) = self.pids {
            parts.push(format!("pids {p}"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A CPU limit, as CFS bandwidth: `quota_us` of CPU time per [`Cpus::PERIOD_US`]. `0.5` is
/// 50 ms per 100 ms; `2` is 200 ms per 100 ms, two CPUs' worth, spread over any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus {
    quota_us: u64,
}

impl Cpus {
    /// The CFS period box uses, the kernel's default: 100 ms.
    pub const PERIOD_US: u64 = 100_000;
    /// The kernel refuses quotas below 1 ms.
    pub const MIN_QUOTA_US: u64 = 1_000;
    /// Decimal places a value may have: one step is one microsecond of quota per period.
    const DECIMALS: usize = 5;

    /// Parse a `--cpus` value: a decimal number of CPUs (`0.5`, `1`, `2.25`).
    pub fn parse(v: &str) -> Result<Cpus> {
        let what = || format!("--cpus {v}");
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return Err(Error::msg(
                what(),
                "not a number of CPUs (like 0.5, 1 or 2.25)",
            ));
        }
        if frac.len() > Self::DECIMALS {
            return Err(Error::msg(
                what(),
                "finer than the kernel's step of 0.00001 CPUs",
            ));
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| Error::msg(what(), "too many CPUs"))?
        };
        let frac_us: u64 = format!("{frac:0<5}").parse().unwrap_or(0);
        let quota_us = int
            .checked_mul(Self::PERIOD_US)
            .and_then(|q| q.checked_add(frac_us))
            .ok_or_else(|| Error::msg(what(), "too many CPUs"))?;
        if quota_us < Self::MIN_QUOTA_US {
            return Err(Error::msg(
                what(),
                "below the minimum of 0.01: the kernel's smallest quota is 1 ms per 100 ms",
            ));
        }
        Ok(Cpus { quota_us })
    }

    /// Microseconds of CPU time per period.
    pub fn quota_us(&self) -> u64 {
        self.quota_us
    }
}

/// `0.5`, `2`, `1.25`: the value as the user would write it.
impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.quota_us / Self::PERIOD_US;
        let frac = self.quota_us % Self::PERIOD_US;
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let frac = format!("{frac:05}");
            write!(f, "{int}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// The container's cgroups. Dropping it kills what is left in them and removes them.
pub struct Cgroup {
    mode: Mode,
    /// The container's groups, in creation order: one per v1 hierarchy, or the one v2 group.
    dirs: Vec<PathBuf>,
    memory_limit: Option<u64>,
    /// The OOM kill count when the group was taken, so only this container's kills count.
    oom_base: u64,
}

/// State record keys.
const KEY_MODE: &str = "cgroup_mode";
const KEY_DIRS: &str = "cgroups";

impl Cgroup {
    /// Make the container's group(s) in `layout` and write `limits` into them. On error,
    /// whatever was made is removed again.
    pub fn create(layout: &Layout, name: &str, limits: &Limits) -> Result<Cgroup> {
        let mode = layout.mode;
        crate::debug!("cgroups: {mode} layout under {}", layout.root.display());
        let mut cg = Cgroup {
            mode,
            dirs: Vec::new(),
            memory_limit: limits.memory,
            oom_base: 0,
        };
        match mode {
            Mode::V2 => v2::create(&layout.root, name, limits, &mut cg.dirs)?,
            Mode::V1 | Mode::Hybrid => v1::create(layout, name, limits, &mut cg.dirs)?,
        }
        cg.oom_base = cg.oom_kills_total();
        Ok(cg)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// On v2, the group opened for clone3's CLONE_INTO_CGROUP; `None` on v1, where the child
    /// joins its groups itself after clone ([`Cgroup::join_files`]).
    pub fn clone_target(&self) -> Result<Option<File>> {
        match (self.mode, self.dirs.first()) {
            (Mode::V2, Some(dir)) => File::open(dir)
                .map(Some)
                .map_err(|e| Error::io(format!("open cgroup {}", dir.display()), e)),
            _ => Ok(None),
        }
    }

    /// The files the child passes to [`join`], first thing after clone, to enter every one of
    /// its groups: the `tasks` file of each v1 group; none on v2, where clone3 puts the child
    /// in its group.
    pub fn join_files(&self) -> Vec<PathBuf> {
        match self.mode {
            Mode::V2 => Vec::new(),
            Mode::V1 | Mode::Hybrid => self.dirs.iter().map(|d| d.join("tasks")).collect(),
        }
    }

    /// Put the layout and the paths into the state record, for [`Cgroup::from_record`].
    pub fn describe(&self, rec: &mut Record) {
        rec.set(KEY_MODE, self.mode.name());
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        rec.set(KEY_DIRS, dirs.join(" "));
    }

    /// The groups a dead container's record names, to be removed by dropping the result. Only
    /// paths shaped like box's own (absolute, no `..`, ending in `box/NAME`) are taken.
    pub fn from_record(rec: &Record) -> Option<Cgroup> {
        let mode = Mode::from_name(rec.get(KEY_MODE)?)?;
        let dirs: Vec<PathBuf> = rec
            .get(KEY_DIRS)?
            .split_whitespace()
            .map(PathBuf::from)
            .filter(|d| owned(d, &rec.name))
            .collect();
        Some(Cgroup {
            mode,
            dirs,
            memory_limit: None,
            oom_base: 0,
        })
    }

    /// How many processes of this container the OOM killer has killed, by the kernel's count.
    pub fn oom_kills(&self) -> u64 {
        self.oom_kills_total().saturating_sub(self.oom_base)
    }

    fn oom_kills_total(&self) -> u64 {
        self.dirs
            .iter()
            .find_map(|d| match self.mode {
                Mode::V2 => v2::oom_kills(d),
                Mode::V1 | Mode::Hybrid => v1::oom_kills(d),
            })
            .unwrap_or(0)
    }

    /// The report for a container that ended with `status`, when the OOM killer acted in it.
    pub fn oom_report(&self, status: i32) -> Option<Error> {
        oom_report(self.oom_kills(), self.memory_limit, status)
    }

    /// Remove the groups, then the `box` parents that became empty; kill what is left in a
    /// group that is still in use, wait for it to leave, and remove that group too. Returns
    /// the first error after trying everything.
    ///
    /// Usually every group is empty by now (the container's init has exited, and its PID
    /// namespace with it), so each rmdir succeeds at once and no `cgroup.procs` is read. A
    /// group with processes refuses (EBUSY): those are killed (v1 freezes first when its
    /// freezer group is among them, v2 uses cgroup.kill) before the group is removed.
    fn remove(&mut self) -> Result<()> {
        if self.dirs.is_empty() {
            return Ok(());
        }
        let mut busy = Vec::new();
        let mut first_err = None;
        for dir in self.dirs.iter().rev() {
            match fs::remove_dir(dir) {
                Ok(()) => {
                    crate::debug!("removed cgroup {}", dir.display());
                    remove_parent(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => remove_parent(dir),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => busy.push(dir.clone()),
                Err(e) => {
                    first_err
                        .get_or_insert(Error::io(format!("remove cgroup {}", dir.display()), e));
                }
            }
        }
        if !busy.is_empty() {
            let deadline = Instant::now() + CLEANUP_WAIT;
            busy.reverse(); // creation order again, as kill_all expects
            let killed = match self.mode {
                Mode::V2 => v2::kill_all(&busy),
                Mode::V1 | Mode::Hybrid => v1::kill_all(&busy),
            };
            if killed > 0 {
                crate::debug!("killed {killed} leftover process(es) in the container's cgroups");
                wait_until(deadline, || pids_in(&busy).is_empty());
            }
            for dir in busy.iter().rev() {
                match rmdir(dir, deadline) {
                    Ok(()) => crate::debug!("removed cgroup {}", dir.display()),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
                remove_parent(dir);
            }
        }
        self.dirs.clear();
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            // Drop cannot return the error, and a group left on the machine must not go
            // unmentioned.
            eprintln!("box: {e}");
        }
    }
}

/// The names of the container groups in `layout` (`box/NAME` in any hierarchy box uses), for
/// a sweep to hold against the live containers. A group whose record is lost shows up here:
/// its box process was killed before it wrote one, or an older box that knew nothing of
/// cgroups swept the record.
pub fn group_names(layout: &Layout) -> Vec<String> {
    let mut names: Vec<String> = layout
        .bases
        .iter()
        .filter_map(|(_, b)| fs::read_dir(b.join(PARENT)).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A handle on whatever groups of container `name` exist in `layout`, to be removed by
/// dropping it. The caller must hold the name (its state claim), so no live container owns
/// them.
pub fn leftover(layout: &Layout, name: &str) -> Cgroup {
    let dirs: Vec<PathBuf> = layout
        .bases
        .iter()
        .map(|(_, b)| b.join(PARENT).join(name))
        .filter(|d| d.is_dir())
        .collect();
    Cgroup {
        mode: layout.mode,
        dirs,
        memory_limit: None,
        oom_base: 0,
    }
}

/// The OOM report for a container that ended with `status` after `kills` OOM kills in it:
/// `killed by the OOM killer: memory limit 64 MiB reached` when the payload died of it (exit
/// status 137, SIGKILL), a note naming the count when only some other process did. The
/// error's exit code is the payload's status either way.
pub fn oom_report(kills: u64, limit: Option<u64>, status: i32) -> Option<Error> {
    if kills == 0 {
        return None;
    }
    let why = match limit {
        Some(l) => format!("memory limit {} reached", size::format(l)),
        None => "the host ran out of memory".to_string(),
    };
    let what = if status == 128 + libc::SIGKILL {
        "killed by the OOM killer".to_string()
    } else {
        let s = if kills == 1 { "" } else { "es" };
        format!("the OOM killer killed {kills} process{s} in the container")
    };
    Some(Error::msg(what, why).with_code(status))
}

/// True when `dir` looks like a group box made for container `name`.
fn owned(dir: &Path, name: &str) -> bool {
    dir.is_absolute()
        && dir
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && dir.file_name().is_some_and(|n| n == name)
        && dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == PARENT)
}

/// Make `base/box/NAME` (and `base/box` first) and return its path. `prepare` runs on
/// `base/box` in between (v2 switches controllers on there).
///
/// Another box process removes `box` when its last container ends, possibly right between our
/// two mkdirs: ENOENT from the second one (or from `prepare`) means "start over", a bounded
/// number of times. An existing `box/NAME` is a dead container's leftover of the same name,
/// which our claim on the name makes ours: it is reused.
fn make_group(
    base: &Path,
    name: &str,
    mut prepare: impl FnMut(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let parent = base.join(PARENT);
    let dir = parent.join(name);
    let mut attempt = 1;
    loop {
        let made = mkdir(&parent)
            .and_then(|_| prepare(&parent))
            .and_then(|()| mkdir(&dir));
        match made {
            Ok(true) => crate::debug!("created cgroup {}", dir.display()),
            Ok(false) => crate::debug!("reuse leftover cgroup {}", dir.display()),
            Err(e) if e.errno() == Some(libc::ENOENT) && attempt < 5 => {
                crate::debug!("{} vanished under us, again: {e}", parent.display());
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        return Ok(dir);
    }
}

/// mkdir; `Ok(false)` when it existed.
fn mkdir(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(format!("create cgroup {}", dir.display()), e)),
    }
}

/// rmdir a group, retrying while the kernel still counts exiting tasks in it.
fn rmdir(dir: &Path, deadline: Instant) -> Result<()> {
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io(format!("remove cgroup {}", dir.display()), e)),
        }
    }
}

/// Remove the shared `box` group above the container's group `dir` if it is empty now. Busy
/// means another container still uses it, gone means another box process removed it first:
/// both are fine.
fn remove_parent(dir: &Path) {
    let Some(parent) = dir.parent() else {
        return;
    };
    if parent.file_name().is_none_or(|n| n != PARENT) {
        return;
    }
    match fs::remove_dir(parent) {
        Ok(()) => crate::debug!("removed cgroup {}", parent.display()),
        Err(e) => crate::debug!("keep cgroup {}: {e}", parent.display()),
    }
}

/// Move the calling process into the v1 group of `tasks`, a group's `tasks` file, by writing
/// 0 (the caller) to it. A task that moves itself, one thread, is moved without the global
/// lock that any move by pid takes for writing (a write of the pid to `cgroup.procs`, from
/// the parent, say): the first writer of that lock after a quiet spell waits for an RCU grace
/// period, 9 ms (median) measured on the machine of docs/benchmarks.md. The caller must be
/// single-threaded, so that its one thread is all of it: box's init is.
pub fn join(tasks: &Path) -> Result<()> {
    write(tasks, "0")
}

/// Write `value` to a cgroup interface file. The file must exist (the kernel makes them);
/// creating one would hide a typo or a missing controller.
pub(crate) fn write(file: &Path, value: &str) -> Result<()> {
    crate::debug!("write {value} to {}", file.display());
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::io(format!("write {value} to {}", file.display()), e))
}

/// The pids listed in the `cgroup.procs` of `dirs` (a missing file lists none).
pub(crate) fn pids_in(dirs: &[PathBuf]) -> Vec<pid_t> {
    let mut pids: Vec<pid_t> = dirs
        .iter()
        .flat_map(|d| {
            fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<pid_t>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILL every pid; returns how many there were.
pub(crate) fn kill_pids(pids: &[pid_t]) -> usize {
    for &pid in pids {
        if let Err(e) = process::kill(pid, libc::SIGKILL) {
            crate::debug!("kill leftover pid {pid}: {e}");
        }
    }
    pids.len()
}

/// The number after `key` in a flat keyed file (`oom_kill 3` in memory.events).
pub(crate) fn read_key(file: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Poll `done` every few milliseconds until it holds or `deadline` passes.
pub(crate) fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh temp dir standing in for /sys/fs/cgroup.
    pub fn fixture(tag: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("box-cg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&r);
        fs::create_dir_all(&r).unwrap();
        r
    }

    /// Create `files` (with contents) under `dir`, as the kernel would for a new group.
    pub fn files(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            fs::write(dir.join(f), v).unwrap();
        }
    }

    pub fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    /// The layout of a fixture root.
    pub fn layout(root: &Path) -> Layout {
        Layout::detect(root).unwrap()
    }

    /// Forget the groups of a fixture-backed handle (a temp dir full of files is no cgroup:
    /// rmdir would fail) and remove the fixture.
    pub fn discard(mut cg: Cgroup, root: &Path) {
        cg.dirs.clear();
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn detects_all_three_layouts() {
        let r = fixture("detect");
        assert!(detect(&r)
            .unwrap_err()
            .to_string()
            .ends_with("neither a cgroup v2 hierarchy nor a v1 memory, cpu, pids or freezer hierarchy is mounted there"));
        // v1: controller hierarchies only.
        for c in ["memory", "cpu", "pids", "freezer", "devices"] {
            files(&r.join(c), &[("cgroup.procs", "")]);
        }
        assert_eq!(detect(&r).unwrap(), Mode::V1);
        // hybrid: plus an empty cgroup2 at unified/.
        files(&r.join("unified"), &[("cgroup.controllers", "")]);
        assert_eq!(detect(&r).unwrap(), Mode::Hybrid);
        fs::remove_dir_all(&r).unwrap();
        // v2: cgroup.controllers at the root itself.
        let r = fixture("detect2");
        files(&r, &[("cgroup.controllers", "cpu memory pids")]);
        assert_eq!(detect(&r).unwrap(), Mode::V2);
        // An empty unified/ alone (no v1 controllers, no v2 root) is no usable layout.
        let r3 = fixture("detect3");
        files(&r3.join("unified"), &[("cgroup.controllers", "")]);
        assert!(detect(&r3).is_err());
        fs::remove_dir_all(&r).unwrap();
        fs::remove_dir_all(&r3).unwrap();
    }

    #[test]
    fn memory_and_pids_values_are_checked() {
        assert_eq!(Limits::parse_memory("64M").unwrap(), 64 * MIB);
        assert_eq!(Limits::parse_memory("4M").unwrap(), 4 * MIB);
        assert_eq!(Limits::parse_memory("1g").unwrap(), 1 << 30);
        let err = |r: Result<u64>| r.unwrap_err().to_string();
        assert_eq!(
            err(Limits::parse_memory("2M")),
            "--memory 2M: below the minimum of 4 MiB: a container's init and shell need more"
        );
        assert_eq!(
            err(Limits::parse_memory("4194303")),
            "--memory 4194303: below the minimum of 4 MiB: a container's init and shell need more"
        );
        assert!(err(Limits::parse_memory("lots")).starts_with("--memory lots: not a size"));
        assert!(err(Limits::parse_memory("64X")).starts_with("--memory 64X: unknown unit"));
        assert_eq!(Limits::parse_pids("20").unwrap(), 20);
        assert_eq!(
            err(Limits::parse_pids("1")),
            "--pids 1: below the minimum of 2: the container's init and its command"
        );
        assert_eq!(
            err(Limits::parse_pids("-5")),
            "--pids -5: not a whole number of tasks"
        );
    }

    #[test]
    fn cpus_are_exact_decimals() {
        let q = |v: &str| Cpus::parse(v).unwrap().quota_us();
        assert_eq!(q("0.5"), 50_000);
        assert_eq!(q(".5"), 50_000);
        assert_eq!(q("1"), 100_000);
        assert_eq!(q("2.25"), 225_000);
        assert_eq!(q("0.01"), 1_000);
        for (v, shown) in [
            ("0.5", "0.5"),
            ("2", "2"),
            ("1.250", "1.25"),
            ("0.01", "0.01"),
        ] {
            assert_eq!(Cpus::parse(v).unwrap().to_string(), shown);
        }
        let err = |v: &str| Cpus::parse(v).unwrap_err().to_string();
        assert_eq!(
            err("0.005"),
            "--cpus 0.005: below the minimum of 0.01: the kernel's smallest quota is 1 ms per \
             100 ms"
        );
        assert_eq!(
            err("0"),
            "--cpus 0: below the minimum of 0.01: the kernel's smallest quota is 1 ms per 100 ms"
        );
        for bad in ["", ".", "half", "1/2", "-1", "1e3", "0,5", "1.2.3"] {
            assert!(
                err(bad).ends_with("not a number of CPUs (like 0.5, 1 or 2.25)"),
                "{bad:?}: {}",
                err(bad)
            );
        }
        assert!(err("0.00001").contains("below the minimum of 0.01"));
        assert!(err("0.123456").ends_with("finer than the kernel's step of 0.00001 CPUs"));
        assert!(err("99999999999999999999").ends_with("too many CPUs"));
    }

    #[test]
    fn limits_read_as_a_line() {
        assert_eq!(Limits::default().to_string(), "none");
        let l = Limits {
            memory: Some(64 * MIB),
            cpus: Some(Cpus::parse("0.5").unwrap()),
            pids: Some(20),
        };
        assert_eq!(l.to_string(), "memory 64 MiB, cpus 0.5, pids 20");
        assert_eq!(
            l.compact().as_deref(),
            Some("memory=64MiB,cpus=0.5,pids=20")
        );
        assert_eq!(Limits::default().compact(), None);
        assert_eq!(
            l.needs(),
            vec![
                ("memory", "--memory"),
                ("cpu", "--cpus"),
                ("pids", "--pids")
            ]
        );
        assert!(Limits::default().is_empty() && !l.is_empty());
    }

    #[test]
    fn oom_reports_name_the_limit_and_keep_the_status() {
        assert!(oom_report(0, Some(64 * MIB), 137).is_none());
        let e = oom_report(1, Some(64 * MIB), 137).unwrap();
        assert_eq!(
            e.to_string(),
            "killed by the OOM killer: memory limit 64 MiB reached"
        );
        assert_eq!(e.code(), 137);
        let e = oom_report(2, Some(64 * MIB), 0).unwrap();
        assert_eq!(
            e.to_string(),
            "the OOM killer killed 2 processes in the container: memory limit 64 MiB reached"
        );
        assert_eq!(e.code(), 0);
        let e = oom_report(1, None, 137).unwrap();
        assert_eq!(
            e.to_string(),
            "killed by the OOM killer: the host ran out of memory"
        );
    }

    #[test]
    fn groups_are_made_under_a_shared_parent_and_removed_with_it() {
        let r = fixture("parent");
        for c in v1::CONTROLLERS {
            files(&r.join(c), &[("cgroup.procs", "")]);
        }
        let a = Cgroup::create(&layout(&r), "c1", &Limits::default()).unwrap();
        let b = Cgroup::create(&layout(&r), "c2", &Limits::default()).unwrap();
        assert_eq!(a.dirs().len(), 4);
        for c in v1::CONTROLLERS {
            assert!(r.join(c).join("box/c1").is_dir());
            assert!(r.join(c).join("box/c2").is_dir());
        }
        let mut rec = Record {
            name: "c1".into(),
            ..Default::default()
        };
        a.describe(&mut rec);
        assert_eq!(rec.get("cgroup_mode"), Some("v1"));
        assert_eq!(
            rec.get("cgroups").unwrap(),
            v1::CONTROLLERS
                .iter()
                .map(|c| r.join(c).join("box/c1").display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        drop(a);
        // c2 still uses the parent: it stays.
        for c in v1::CONTROLLERS {
            assert!(!r.join(c).join("box/c1").exists());
            assert!(r.join(c).join("box/c2").is_dir());
        }
        drop(b);
        for c in v1::CONTROLLERS {
            assert!(!r.join(c).join("box").exists(), "{c}/box left behind");
        }
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn groups_without_a_record_are_found_by_name() {
        let r = fixture("orphans");
        for c in ["memory", "cpu", "pids"] {
            files(&r.join(c), &[("cgroup.procs", "")]);
        }
        assert!(group_names(&layout(&r)).is_empty());
        for d in [
            "memory/box/c1",
            "pids/box/c1",
            "cpu/box/c2",
            "memory/other/c3",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("cpu/box/not-a-group"), "").unwrap();
        assert_eq!(group_names(&layout(&r)), vec!["c1", "c2"]);
        let cg = leftover(&layout(&r), "c1");
        assert_eq!(cg.dirs(), &[r.join("memory/box/c1"), r.join("pids/box/c1")]);
        drop(cg);
        assert_eq!(group_names(&layout(&r)), vec!["c2"]);
        assert!(!r.join("memory/box").exists() && r.join("cpu/box/c2").is_dir());
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_parent_removed_under_us_is_made_again() {
        // Another box process removes the empty `box` between our two mkdirs.
        let r = fixture("vanish");
        let mut calls = 0;
        let dir = make_group(&r, "c1", |parent| {
            calls += 1;
            if calls == 1 {
                fs::remove_dir(parent).unwrap();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert!(dir.is_dir() && dir == r.join("box/c1"));
        // One that keeps vanishing is reported, not retried forever.
        let e = make_group(&r, "c2", |parent| {
            fs::remove_dir_all(parent).unwrap();
            Ok(())
        })
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "create cgroup {}: no such file or directory",
                r.join("box/c2").display()
            )
        );
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_record_reclaims_only_paths_shaped_like_ours() {
        let r = fixture("record");
        for c in ["memory", "pids"] {
            fs::create_dir_all(r.join(c).join("box/c9")).unwrap();
        }
        fs::create_dir_all(r.join("memory/other/c9")).unwrap();
        fs::create_dir_all(r.join("memory/box/c8")).unwrap();
        let mut rec = Record {
            name: "c9".into(),
            ..Default::default()
        };
        rec.set("cgroup_mode", "v1");
        rec.set(
            "cgroups",
            format!(
                "{0}/memory/box/c9 {0}/pids/box/c9 {0}/memory/other/c9 {0}/memory/box/c8 \
                 {0}/memory/box/../box/c9 memory/box/c9",
                r.display()
            ),
        );
        let cg = Cgroup::from_record(&rec).unwrap();
        assert_eq!(cg.dirs(), &[r.join("memory/box/c9"), r.join("pids/box/c9")]);
        drop(cg);
        assert!(!r.join("memory/box/c9").exists() && !r.join("pids/box").exists());
        // Not ours: untouched.
        assert!(r.join("memory/other/c9").is_dir() && r.join("memory/box/c8").is_dir());
        // A record without cgroups (or an unknown mode) names nothing.
        rec.set("cgroup_mode", "v3");
        assert!(Cgroup::from_record(&rec).is_none());
        fs::remove_dir_all(&r).unwrap();
    }
}
