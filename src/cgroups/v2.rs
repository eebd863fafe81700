//! cgroup v2 (unified): one hierarchy, one group per container, `ROOT/box/NAME`.
//!
//! A v2 group only has a controller's files when its parent lists that controller in
//! `cgroup.subtree_control`, so box switches memory, cpu and pids on in `ROOT` and in
//! `ROOT/box` before making `ROOT/box/NAME`. The kernel allows that only for groups without
//! processes of their own (the root excepted): the "no internal processes" rule. `ROOT/box`
//! never holds processes; a `ROOT` that is not the real root (box run inside another
//! container's cgroup namespace, say) may, and then the write fails with EBUSY, which box
//! explains instead of passing on.
//!
//! The files: `memory.max`, `memory.swap.max` = 0 (when the kernel accounts swap), `cpu.max`
//! (`QUOTA PERIOD`), `pids.max`. OOM kills are counted in `memory.events`.

use super::Limits;
use crate::error::{Error, Result};
use crate::sys::process::pid_t;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The controllers box switches on for its groups, when the kernel offers them.
pub const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// What to write into the container's group for `limits`, in order, as (file, value).
/// `swap`: the kernel accounts swap (`memory.swap.max` exists).
pub fn settings(limits: &Limits, swap: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(m) = limits.memory {
        out.push(("memory.max", m.to_string()));
        if swap {
            out.push(("memory.swap.max", "0".to_string()));
        }
    }
    if let Some(c) = limits.cpus {
        out.push((
            "cpu.max",
            format!("{} {}", c.quota_us(), super::Cpus::PERIOD_US),
        ));
    }
    if let Some(p) = limits.pids {
        out.push(("pids.max", p.to_string()));
    }
    out
}

/// Make `root/box/NAME` with its controllers on and write `limits`. The group is pushed onto
/// `dirs` as soon as it exists, so the caller's handle removes it on any error.
pub fn create(root: &Path, name: &str, limits: &Limits, dirs: &mut Vec<PathBuf>) -> Result<()> {
    let list = root.join("cgroup.controllers");
    let offered =
        fs::read_to_string(&list).map_err(|e| Error::io(format!("read {}", list.display()), e))?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    for (controller, option) in limits.needs() {
        if !offered.contains(&controller) {
            return Err(Error::msg(
                format!("{option} needs the {controller} controller"),
                format!("{} does not offer it", list.display()),
            ));
        }
    }
    let wanted: Vec<&str> = CONTROLLERS
        .into_iter()
        .filter(|c| offered.contains(c))
        .collect();
    enable(root, &wanted, true)?;
    let dir = super::make_group(root, name, |parent| enable(parent, &wanted, false))?;
    dirs.push(dir.clone());
    let swap = dir.join("memory.swap.max").exists();
    for (file, value) in settings(limits, swap) {
        super::write(&dir.join(file), &value)?;
    }
    Ok(())
}

/// Switch the `wanted` controllers on for the children of `dir`. Only the missing ones are
/// written: the kernel treats re-enabling as a no-op, but any write fails when `dir` has
/// processes, and a root that already delegates them should not be refused for that.
fn enable(dir: &Path, wanted: &[&str], is_root: bool) -> Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let on =
        fs::read_to_string(&file).map_err(|e| Error::io(format!("read {}", file.display()), e))?;
    let on: Vec<&str> = on.split_whitespace().collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !on.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Say it before the kernel says EBUSY, naming the processes. The true root is exempt.
    if !is_root {
        let pids = super::pids_in(&[dir.to_path_buf()]);
        if !pids.is_empty() {
            return Err(no_internal_processes(&file, &pids));
        }
    }
    super::write(&file, &missing.join(" ")).map_err(|e| {
        if e.errno() == Some(libc::EBUSY) {
            no_internal_processes(&file, &super::pids_in(&[dir.to_path_buf()]))
        } else {
            e
        }
    })
}

/// The error for v2's "no internal processes" rule, naming the file and the processes.
pub fn no_internal_processes(file: &Path, pids: &[pid_t]) -> Error {
    let who = match pids {
        [] => String::new(),
        [p] => format!(" (pid {p})"),
        _ => {
            let shown: Vec<String> = pids.iter().take(5).map(|p| p.to_string()).collect();
            let more = if pids.len() > 5 { ", ..." } else { "" };
            format!(" (pids {}{more})", shown.join(", "))
        }
    };
    Error::msg(
        format!("enable controllers in {}", file.display()),
        format!(
            "the group has processes of its own{who}, and cgroup v2 gives controllers only to \
             groups without any (the \"no internal processes\" rule); move them into a child \
             group first"
        ),
    )
}

/// The kernel's count of OOM kills in the group (`oom_kill` of `memory.events`); `None` when
/// the memory controller is off for it.
pub fn oom_kills(dir: &Path) -> Option<u64> {
    super::read_key(&dir.join("memory.events"), "oom_kill")
}

/// Kill every process in the groups; returns how many there were.
///
/// `cgroup.kill` (Linux 5.14+) kills the whole group, forks in flight included, in one write.
/// Before that: freeze with `cgroup.freeze`, SIGKILL each listed pid, thaw (see v1::kill_all
/// for why freezing first makes the list complete and the pids safe to signal).
pub fn kill_all(dirs: &[PathBuf]) -> usize {
    let pids = super::pids_in(dirs);
    if pids.is_empty() {
        return 0;
    }
    for dir in dirs {
        let kill = dir.join("cgroup.kill");
        if kill.exists() {
            if let Err(e) = super::write(&kill, "1") {
                crate::debug!("{e}");
            }
            continue;
        }
        let freeze = dir.join("cgroup.freeze");
        if let Err(e) = super::write(&freeze, "1") {
            crate::debug!("{e}");
        }
        let events = dir.join("cgroup.events");
        super::wait_until(Instant::now() + Duration::from_secs(1), || {
            super::read_key(&events, "frozen") == Some(1)
        });
        super::kill_pids(&super::pids_in(std::slice::from_ref(dir)));
        if let Err(e) = super::write(&freeze, "0") {
            crate::debug!("{e}");
        }
    }
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{discard, files, fixture, layout, read};
    use super::super::{Cgroup, Cpus, Limits, Mode};
    use super::*;
    use crate::size::MIB;
    use std::os::fd::AsRawFd;

    fn limits() -> Limits {
        Limits {
            memory: Some(64 * MIB),
            cpus: Some(Cpus::parse("0.5").unwrap()),
            pids: Some(20),
        }
    }

    /// A pure v2 root as most machines have it, with the files the kernel would give `box`
    /// and a new group `box/NAME` once memory, cpu and pids are on.
    fn unified(tag: &str, name: &str) -> PathBuf {
        let r = fixture(tag);
        files(
            &r,
            &[
                (
                    "cgroup.controllers",
                    "cpuset cpu io memory hugetlb pids rdma misc\n",
                ),
                ("cgroup.subtree_control", "\n"),
                ("cgroup.procs", "1\n2\n"),
            ],
        );
        files(
            &r.join("box"),
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("cgroup.subtree_control", "\n"),
                ("cgroup.procs", ""),
            ],
        );
        files(
            &r.join("box").join(name),
            &[
                ("cgroup.procs", ""),
                ("cgroup.kill", ""),
                ("cgroup.freeze", "0\n"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("memory.max", "max\n"),
                ("memory.swap.max", "max\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
                ),
                ("cpu.max", "max 100000\n"),
                ("pids.max", "max\n"),
            ],
        );
        r
    }

    #[test]
    fn the_plan_for_v2() {
        assert_eq!(
            settings(&limits(), true),
            vec![
                ("memory.max", "67108864".to_string()),
                ("memory.swap.max", "0".to_string()),
                ("cpu.max", "50000 100000".to_string()),
                ("pids.max", "20".to_string()),
            ]
        );
        assert_eq!(settings(&limits(), false).len(), 3);
        assert!(settings(&Limits::default(), true).is_empty());
    }

    #[test]
    fn enables_controllers_and_writes_limits() {
        let r = unified("v2-write", "c1");
        let cg = Cgroup::create(&layout(&r), "c1", &limits()).unwrap();
        assert_eq!(cg.mode(), Mode::V2);
        assert_eq!(cg.dirs(), &[r.join("box/c1")]);
        assert_eq!(
            read(&r.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(
            read(&r.join("box/cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        let g = |f: &str| read(&r.join("box/c1").join(f));
        assert_eq!(g("memory.max"), "67108864");
        assert_eq!(g("memory.swap.max"), "0");
        assert_eq!(g("cpu.max"), "50000 100000");
        assert_eq!(g("pids.max"), "20");
        // The child is born in the group: clone3 gets the group's directory.
        let fd = cg
            .clone_target()
            .unwrap()
            .expect("a v2 group to clone into");
        assert!(fd.as_raw_fd() >= 0);
        discard(cg, &r);
    }

    #[test]
    fn only_missing_controllers_are_enabled() {
        let r = unified("v2-already", "c1");
        // Already delegated by whoever set the machine up: no write, so no EBUSY even if the
        // root (not the true root in a nested setup) has processes.
        fs::write(r.join("cgroup.subtree_control"), "cpu memory pids io\n").unwrap();
        fs::write(r.join("box/cgroup.subtree_control"), "memory pids\n").unwrap();
        let cg = Cgroup::create(&layout(&r), "c1", &Limits::default()).unwrap();
        assert_eq!(
            read(&r.join("cgroup.subtree_control")),
            "cpu memory pids io\n"
        );
        assert_eq!(read(&r.join("box/cgroup.subtree_control")), "+cpu");
        // No limits: the controllers are on, but nothing is written into the group.
        assert_eq!(read(&r.join("box/c1/memory.max")), "max\n");
        discard(cg, &r);
    }

    #[test]
    fn no_internal_processes_is_explained() {
        let r = unified("v2-internal", "c1");
        fs::write(r.join("box/cgroup.procs"), "4242\n4243\n").unwrap();
        let e = Cgroup::create(&layout(&r), "c1", &limits()).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "enable controllers in {}: the group has processes of its own (pids 4242, \
                 4243), and cgroup v2 gives controllers only to groups without any (the \"no \
                 internal processes\" rule); move them into a child group first",
                r.join("box/cgroup.subtree_control").display()
            )
        );
        // The same message when the kernel is the one to say EBUSY (for the root).
        let e = no_internal_processes(Path::new("/sys/fs/cgroup/cgroup.subtree_control"), &[7]);
        assert!(e
            .to_string()
            .starts_with("enable controllers in /sys/fs/cgroup/cgroup.subtree_control: the group has processes of its own (pid 7), "));
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_limit_the_kernel_does_not_offer_is_an_error() {
        let r = unified("v2-missing", "c1");
        fs::write(r.join("cgroup.controllers"), "cpu io memory\n").unwrap();
        let e = Cgroup::create(&layout(&r), "c1", &limits()).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "--pids needs the pids controller: {} does not offer it",
                r.join("cgroup.controllers").display()
            )
        );
        // Without --pids the same machine is fine, and pids is not asked for.
        let cg = Cgroup::create(
            &layout(&r),
            "c1",
            &Limits {
                memory: Some(64 * MIB),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(read(&r.join("cgroup.subtree_control")), "+memory +cpu");
        discard(cg, &r);
    }

    #[test]
    fn oom_kills_come_from_memory_events() {
        let r = unified("v2-oom", "c1");
        let cg = Cgroup::create(&layout(&r), "c1", &limits()).unwrap();
        assert_eq!(cg.oom_kills(), 0);
        assert!(cg.oom_report(137).is_none());
        fs::write(
            r.join("box/c1/memory.events"),
            "low 0\nhigh 0\nmax 31\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 1);
        let e = cg.oom_report(137).unwrap();
        assert_eq!(
            e.to_string(),
            "killed by the OOM killer: memory limit 64 MiB reached"
        );
        assert_eq!(e.code(), 137);
        discard(cg, &r);
    }

    #[test]
    fn kill_all_uses_cgroup_kill_or_freezes() {
        let r = unified("v2-kill", "c1");
        let dir = r.join("box/c1");
        fs::write(dir.join("cgroup.procs"), "4242\n").unwrap();
        // cgroup.kill present: one write does it (the fixture cannot kill, so check the write).
        assert_eq!(kill_all(std::slice::from_ref(&dir)), 1);
        assert_eq!(read(&dir.join("cgroup.kill")), "1");
        // Without cgroup.kill (Linux < 5.14): freeze, kill each pid, thaw.
        fs::remove_file(dir.join("cgroup.kill")).unwrap();
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let mut victim = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        fs::write(dir.join("cgroup.procs"), format!("{}\n", victim.id())).unwrap();
        assert_eq!(kill_all(std::slice::from_ref(&dir)), 1);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(victim.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(read(&dir.join("cgroup.freeze")), "0");
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn the_group_and_an_empty_parent_are_removed() {
        // A bare root: mkdir makes empty directories (a temp dir has no interface files),
        // which is enough to see the parent made and removed.
        let r = fixture("v2-remove");
        files(
            &r,
            &[("cgroup.controllers", ""), ("cgroup.subtree_control", "")],
        );
        // `box` appears only through mkdir; give it the file the kernel would.
        let cg = {
            fs::create_dir(r.join("box")).unwrap();
            fs::write(r.join("box/cgroup.subtree_control"), "").unwrap();
            Cgroup::create(&layout(&r), "c1", &Limits::default()).unwrap()
        };
        assert!(r.join("box/c1").is_dir());
        // The parent still has its (fixture) file, so it stays; the group itself goes.
        drop(cg);
        assert!(!r.join("box/c1").exists());
        fs::remove_dir_all(&r).unwrap();
    }
}
