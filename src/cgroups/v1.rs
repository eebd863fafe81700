//! cgroup v1 (and the v1 half of a hybrid layout): one hierarchy per controller, so one group
//! per controller, `ROOT/<controller>/box/NAME`, each with its own files and its own
//! `cgroup.procs`.
//!
//! The files:
//! - memory: `memory.limit_in_bytes`, then `memory.memsw.limit_in_bytes` set to the same value
//!   when the kernel accounts swap (memory+swap = memory means no swap). The kernel refuses a
//!   memsw limit below the memory limit, hence the order. Without swap accounting the file is
//!   missing and `memory.swappiness` 0 keeps the group's pages out of swap instead.
//! - cpu: `cpu.cfs_period_us` and `cpu.cfs_quota_us` (CFS bandwidth: quota per period).
//! - pids: `pids.max`.
//! - freezer: no limit; its group lets cleanup freeze the container before killing it.

use super::{Cpus, Limits};
use crate::error::{Error, Result};
use crate::sys::process::pid_t;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The v1 controllers box makes a group in, when they are mounted.
pub const CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "freezer"];

/// One write of the plan: `value` into `file` of the group in `controller`'s hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

/// The hierarchies under `root` that box uses, as (controller, mount point), in
/// [`CONTROLLERS`] order. Co-mounted controllers (`cpu` a symlink to `cpu,cpuacct`) share one
/// hierarchy and so one group: a hierarchy is listed once. The root's `cgroup.procs` names its
/// hierarchy: two paths reach the same file (device and inode) only through the same mount,
/// symlinks followed. One stat per controller; resolving the paths would cost a readlink per
/// component.
pub fn hierarchies(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for c in CONTROLLERS {
        let dir = root.join(c);
        let Ok(procs) = fs::metadata(dir.join("cgroup.procs")) else {
            continue;
        };
        let id = (procs.dev(), procs.ino());
        if !seen.contains(&id) {
            seen.push(id);
            out.push((c, dir));
        }
    }
    out
}

/// What to write for `limits`, in order. `memsw`: the kernel accounts swap.
pub fn settings(limits: &Limits, memsw: bool) -> Vec<Setting> {
    let set = |controller, file, value: u64| Setting {
        controller,
        file,
        value: value.to_string(),
    };
    let mut out = Vec::new();
    if let Some(m) = limits.memory {
        out.push(set("memory", "memory.limit_in_bytes", m));
        if memsw {
            out.push(set("memory", "memory.memsw.limit_in_bytes", m));
        } else {
            out.push(set("memory", "memory.swappiness", 0));
        }
    }
    if let Some(c) = limits.cpus {
        out.push(set("cpu", "cpu.cfs_period_us", Cpus::PERIOD_US));
        out.push(set("cpu", "cpu.cfs_quota_us", c.quota_us()));
    }
    if let Some(p) = limits.pids {
        out.push(set("pids", "pids.max", p));
    }
    out
}

/// Make the container's group in every hierarchy box uses and write `limits`. Each group is
/// pushed onto `dirs` as soon as it exists, so the caller's handle removes it on any error.
pub fn create(
    layout: &super::Layout,
    name: &str,
    limits: &Limits,
    dirs: &mut Vec<PathBuf>,
) -> Result<()> {
    let hier = layout.bases();
    let root = layout.root();
    for (controller, option) in limits.needs() {
        if !hier.iter().any(|(c, _)| *c == controller) {
            return Err(Error::msg(
                format!("{option} needs the {controller} controller"),
                format!(
                    "no cgroup v1 hierarchy of it is mounted at {}",
                    root.join(controller).display()
                ),
            ));
        }
    }
    let mut groups: Vec<(&str, PathBuf)> = Vec::new();
    for (controller, mount) in hier {
        let dir = super::make_group(mount, name, |_| Ok(()))?;
        dirs.push(dir.clone());
        groups.push((controller, dir));
    }
    let group = |controller: &str| {
        groups
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    };
    let memsw = group("memory").is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
    for s in settings(limits, memsw) {
        // needs() checked above that every controller with a setting has a group.
        if let Some(dir) = group(s.controller) {
            super::write(&dir.join(s.file), &s.value)?;
        }
    }
    Ok(())
}

/// The OOM kills the kernel counted in a memory group: `oom_kill` of `memory.oom_control`
/// (Linux 4.13+). Older kernels lack it; there `memory.failcnt` above zero (the limit was
/// hit) stands in as one. `None` when `dir` is no memory group.
pub fn oom_kills(dir: &Path) -> Option<u64> {
    let control = dir.join("memory.oom_control");
    if !control.exists() {
        return None;
    }
    super::read_key(&control, "oom_kill").or_else(|| {
        let failcnt: u64 = fs::read_to_string(dir.join("memory.failcnt"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(failcnt.min(1))
    })
}

/// Kill every process in the container's groups; returns how many were signalled.
///
/// With a freezer group: freeze, read the list, SIGKILL each, thaw. Frozen tasks cannot fork
/// or exit, so the list read while frozen is complete and none of its pids can be reused by
/// another process before the kill lands; the kills take effect at the thaw. Without a
/// freezer, kill in rounds until the groups are empty (a fork bomb may add pids between the
/// read and the kill).
pub fn kill_all(dirs: &[PathBuf]) -> usize {
    if super::pids_in(dirs).is_empty() {
        return 0;
    }
    let Some(freezer) = dirs.iter().find(|d| d.join("freezer.state").exists()) else {
        let mut n = 0;
        for _ in 0..20 {
            let pids = super::pids_in(dirs);
            if pids.is_empty() {
                break;
            }
            n += super::kill_pids(&pids);
            std::thread::sleep(Duration::from_millis(5));
        }
        return n;
    };
    let state = freezer.join("freezer.state");
    if let Err(e) = super::write(&state, "FROZEN") {
        crate::debug!("freeze: {e}");
    }
    let frozen = super::wait_until(Instant::now() + Duration::from_secs(1), || {
        fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN")
    });
    if !frozen {
        crate::debug!("{} did not reach FROZEN; killing anyway", freezer.display());
    }
    let pids: Vec<pid_t> = super::pids_in(dirs);
    let n = super::kill_pids(&pids);
    if let Err(e) = super::write(&state, "THAWED") {
        crate::debug!("thaw: {e}");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::tests::{discard, files, fixture, layout, read};
    use super::super::{Cgroup, Cpus, Limits, Mode};
    use super::*;
    use crate::size::MIB;

    fn limits() -> Limits {
        Limits {
            memory: Some(64 * MIB),
            cpus: Some(Cpus::parse("0.5").unwrap()),
            pids: Some(20),
        }
    }

    /// A hybrid root as on this project's CI machine, with the files the kernel would give a
    /// new group `box/NAME` in each hierarchy (`memsw`: swap accounting on).
    fn hybrid(tag: &str, name: &str, memsw: bool) -> PathBuf {
        let r = fixture(tag);
        files(&r.join("unified"), &[("cgroup.controllers", "")]);
        for c in ["memory", "cpu", "pids", "freezer", "devices", "systemd"] {
            files(&r.join(c), &[("cgroup.procs", "1\n")]);
        }
        let g = |c: &str| r.join(c).join("box").join(name);
        let mut mem = vec![
            ("cgroup.procs", ""),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.swappiness", "60\n"),
            ("memory.failcnt", "0\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
        ];
        if memsw {
            mem.push(("memory.memsw.limit_in_bytes", "9223372036854771712\n"));
        }
        files(&g("memory"), &mem);
        files(
            &g("cpu"),
            &[
                ("cgroup.procs", ""),
                ("cpu.cfs_period_us", "100000\n"),
                ("cpu.cfs_quota_us", "-1\n"),
            ],
        );
        files(&g("pids"), &[("cgroup.procs", ""), ("pids.max", "max\n")]);
        files(
            &g("freezer"),
            &[("cgroup.procs", ""), ("freezer.state", "THAWED\n")],
        );
        r
    }

    #[test]
    fn the_plan_orders_memsw_after_memory() {
        let plan = settings(&limits(), true);
        let files: Vec<(&str, &str, &str)> = plan
            .iter()
            .map(|s| (s.controller, s.file, s.value.as_str()))
            .collect();
        assert_eq!(
            files,
            vec![
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.memsw.limit_in_bytes", "67108864"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("pids", "pids.max", "20"),
            ]
        );
        let no_swap_accounting = settings(&limits(), false);
        assert_eq!(no_swap_accounting[1].file, "memory.swappiness");
        assert_eq!(no_swap_accounting[1].value, "0");
        assert!(settings(&Limits::default(), true).is_empty());
    }

    #[test]
    fn writes_limits_into_every_hierarchy() {
        let r = hybrid("v1-write", "c1", true);
        let cg = Cgroup::create(&layout(&r), "c1", &limits()).unwrap();
        assert_eq!(cg.mode(), Mode::Hybrid);
        let g = |c: &str, f: &str| read(&r.join(c).join("box/c1").join(f));
        assert_eq!(g("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(g("memory", "memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(
            g("memory", "memory.swappiness"),
            "60\n",
            "untouched with memsw"
        );
        assert_eq!(g("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(g("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(g("pids", "pids.max"), "20");
        // Only the hierarchies box uses get a group; unified/ is left alone in hybrid mode.
        assert_eq!(
            cg.dirs(),
            &CONTROLLERS.map(|c| r.join(c).join("box/c1"))[..]
        );
        assert!(!r.join("devices/box").exists() && !r.join("unified/box").exists());
        // v1 has no CLONE_INTO_CGROUP: the child joins each group's tasks after clone.
        assert!(cg.clone_target().unwrap().is_none());
        assert_eq!(
            cg.join_files(),
            CONTROLLERS.map(|c| r.join(c).join("box/c1/tasks"))
        );
        discard(cg, &r);
    }

    #[test]
    fn co_mounted_controllers_share_one_hierarchy() {
        // `cpu` a link to `cpu,cpuacct` (as systemd mounts them) is listed under its own name;
        // `pids` a link to the memory hierarchy (co-mounted) is the memory hierarchy again.
        let r = fixture("v1-comount");
        files(&r.join("cpu,cpuacct"), &[("cgroup.procs", "")]);
        files(&r.join("memory"), &[("cgroup.procs", "")]);
        std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpu")).unwrap();
        std::os::unix::fs::symlink("memory", r.join("pids")).unwrap();
        std::os::unix::fs::symlink("nowhere", r.join("freezer")).unwrap();
        assert_eq!(
            hierarchies(&r),
            vec![("memory", r.join("memory")), ("cpu", r.join("cpu"))]
        );
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn without_swap_accounting_swappiness_is_zero() {
        let r = hybrid("v1-noswap", "c1", false);
        let only_memory = Limits {
            memory: Some(64 * MIB),
            ..Default::default()
        };
        let cg = Cgroup::create(&layout(&r), "c1", &only_memory).unwrap();
        assert_eq!(read(&r.join("memory/box/c1/memory.swappiness")), "0");
        assert_eq!(read(&r.join("cpu/box/c1/cpu.cfs_quota_us")), "-1\n");
        discard(cg, &r);
    }

    #[test]
    fn a_limit_without_its_controller_is_an_error() {
        let r = fixture("v1-missing");
        files(&r.join("memory"), &[("cgroup.procs", "")]);
        files(&r.join("freezer"), &[("cgroup.procs", "")]);
        let e = Cgroup::create(
            &layout(&r),
            "c1",
            &Limits {
                pids: Some(10),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "--pids needs the pids controller: no cgroup v1 hierarchy of it is mounted at {}",
                r.join("pids").display()
            )
        );
        // Nothing was made.
        assert!(!r.join("memory/box").exists());
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_failed_write_removes_what_was_made() {
        // A kernel that lacks a file (here: pids.max) fails the write; the groups go again.
        let r = fixture("v1-fail");
        for c in ["memory", "pids"] {
            files(&r.join(c), &[("cgroup.procs", "")]);
        }
        let e = Cgroup::create(
            &layout(&r),
            "c1",
            &Limits {
                pids: Some(10),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "write 10 to {}: no such file or directory",
                r.join("pids/box/c1/pids.max").display()
            )
        );
        assert!(!r.join("memory/box").exists() && !r.join("pids/box").exists());
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn oom_kills_are_counted_from_creation() {
        let r = hybrid("v1-oom", "c1", true);
        let control = r.join("memory/box/c1/memory.oom_control");
        fs::write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        let cg = Cgroup::create(&layout(&r), "c1", &limits()).unwrap();
        assert_eq!(cg.oom_kills(), 0, "a reused group's old kills do not count");
        fs::write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        assert_eq!(cg.oom_kills(), 1);
        assert_eq!(
            cg.oom_report(137).unwrap().to_string(),
            "killed by the OOM killer: memory limit 64 MiB reached"
        );
        discard(cg, &r);
        // Kernels before 4.13 have no oom_kill line: a failed charge stands in.
        let d = fixture("v1-oom-old");
        files(
            &d,
            &[
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
                ("memory.failcnt", "17\n"),
            ],
        );
        assert_eq!(oom_kills(&d), Some(1));
        assert_eq!(oom_kills(&d.join("nope")), None);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn kill_all_freezes_kills_and_thaws() {
        let r = hybrid("v1-kill", "c1", true);
        let mut victim = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let dirs: Vec<PathBuf> = CONTROLLERS.map(|c| r.join(c).join("box/c1")).to_vec();
        fs::write(dirs[0].join("cgroup.procs"), format!("{}\n", victim.id())).unwrap();
        fs::write(dirs[3].join("cgroup.procs"), format!("{}\n", victim.id())).unwrap();
        assert_eq!(kill_all(&dirs), 1);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(victim.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(read(&dirs[3].join("freezer.state")), "THAWED");
        // Empty groups: nothing to do, the freezer is not touched.
        fs::write(dirs[3].join("freezer.state"), "THAWED\n").unwrap();
        for d in &dirs {
            fs::write(d.join("cgroup.procs"), "").unwrap();
        }
        assert_eq!(kill_all(&dirs), 0);
        assert_eq!(read(&dirs[3].join("freezer.state")), "THAWED\n");
        fs::remove_dir_all(&r).unwrap();
    }
}
