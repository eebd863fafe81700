//! The parent side of `box container`, written as a recipe: validate, claim the name, clone the
//! child into its namespaces, place it, let it go, supervise, clean up.
//!
//! Cleanup is carried by ownership: every resource is a value whose `Drop` releases it (the
//! child is killed and reaped, the state directory removed), so an early `?` return anywhere
//! below leaves nothing behind, and the order of release is the reverse of acquisition.

use crate::cgroups::{self, Cgroup};
use crate::channel::{Channel, Msg};
use crate::command;
use crate::error::{Error, Result};
use crate::init;
use crate::log;
use crate::mounts;
use crate::net;
use crate::spec::{Spec, TtyMode, DEFAULT_PATH};
use crate::state::{self, Record};
use crate::supervisor::{Child, Supervisor};
use crate::sys::{process, signal, sock, tty};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The namespaces every container gets.
pub const NAMESPACES: libc::c_int = process::CLONE_NEWNS
    | process::CLONE_NEWPID
    | process::CLONE_NEWUTS
    | process::CLONE_NEWNET
    | process::CLONE_NEWIPC;

/// Run a container to completion; returns the payload's exit status (128+N if signal N killed
/// it). Errors carry their exit code (125 box, 126 cannot run, 127 not found).
pub fn run(spec: &Spec) -> Result<i32> {
    run_in(spec, Path::new(state::RUN_DIR))
}

/// [`run`] with the state directory as a parameter.
pub fn run_in(spec: &Spec, run_root: &Path) -> Result<i32> {
    if spec.verbose {
        log::set_debug();
    }
    // 1. Validate everything before touching the system.
    let prep = preflight(spec)?;
    crate::debug!(
        "preflight ok: {} in {}",
        prep.exec_path.display(),
        prep.rootfs.display()
    );

    // 2. Claim the name; reclaim what dead box processes left behind. The cgroup layout is
    //    looked at once, for the sweep and for the container's own groups.
    let layout = cgroups::Layout::detect(&cgroup_root());
    let live = running(run_root).unwrap_or_else(|e| {
        crate::debug!("sweep {}: {e}", run_root.display());
        Vec::new()
    });
    if let (true, Ok(layout)) = (run_root == Path::new(state::RUN_DIR), &layout) {
        sweep_groups(run_root, layout, &live);
    }
    let (claim, leftover) = state::claim(run_root, &spec.name)?;
    if let Some(rec) = leftover {
        reclaim(&rec);
    }
    crate::debug!("claimed {}", claim.dir().display());
    let mut rec = record(spec, &prep);
    // The address is recorded before clone, so a box killed from here on leaves a record
    // that names everything to reclaim.
    let network = prep.net.prepare(&spec.name, run_root, &claim, &mut rec)?;

    // 3. The cgroup, limits written, before the child exists. The record names it from now
    //    on, so even a SIGKILL of box leaves the next box command enough to remove it.
    let cgroup = Cgroup::create(&layout?, &spec.name, &spec.limits)?;
    cgroup.describe(&mut rec);
    claim.write(&rec)?;
    // On v2 the child is born in its group (CLONE_INTO_CGROUP); on v1 it joins its groups
    // itself, first thing after clone (a move by pid from here would take a global lock that
    // can wait for an RCU grace period).
    let into_cgroup = cgroup.clone_target()?;
    let join = cgroup.join_files();

    // The child's configuration, computed here so the child only executes it.
    let plan = mounts::plan(&prep.rootfs);
    let cstr =
        |what: &str, v: &[String]| process::cstrings(v).map_err(|e| Error::io(what.to_string(), e));
    let cfg = init::Config {
        hostname: &spec.hostname,
        workdir: &spec.workdir,
        plan: &plan,
        exec_path: cstr(
            "command path",
            &[prep.exec_path.to_string_lossy().into_owned()],
        )?
        .remove(0),
        argv: cstr("command arguments", &spec.cmd)?,
        envp: cstr("environment", &prep.env)?,
        tty: prep.tty,
        net: network.inside(),
        join: &join,
    };

    // 4. Clone the child into its namespaces. Signals are blocked first so none is lost
    //    between now and the moment the supervisor (parent) or init (child) waits for them.
    let mut blocked = init::FORWARDED.to_vec();
    blocked.extend([libc::SIGCHLD, libc::SIGWINCH]);
    signal::block(&signal::SigSet::of(&blocked)).map_err(|e| Error::io("block signals", e))?;
    let mut watched = init::FORWARDED.to_vec();
    watched.push(libc::SIGWINCH);
    let sigfd = signal::signalfd(&signal::SigSet::of(&watched))
        .map_err(|e| Error::io("create signalfd", e))?;
    let (ours, theirs) = sock::seqpacket_pair().map_err(|e| Error::io("create socketpair", e))?;
    crate::debug!("clone into new mount, pid, uts, net, ipc namespaces");
    let mut child = match process::clone_fork(NAMESPACES, into_cgroup.as_ref().map(|f| f.as_fd())) {
        Err(e) => return Err(Error::io("clone into new namespaces", e)),
        Ok(process::Forked::Child) => {
            drop(ours);
            init::run(&cfg, Channel::new(theirs))
        }
        Ok(process::Forked::Parent { pid, pidfd }) => Child::new(pid, pidfd),
    };
    drop(theirs);
    let chan = Channel::new(ours);
    crate::debug!("child is pid {}", child.pid());

    // 5. Attach it, record it, let it go. The child joins its groups before it waits for
    //    "go" and enters its cgroup namespace after. A child that already failed (joining
    //    included) shows up as a message and an exit in the supervisor, so a failed send is
    //    not an error here. The host veth is dropped (deleted) before `claim`, whose record
    //    holds the address.
    let _veth = network.attach(child.pid())?;
    rec.init_pid = child.pid();
    claim.write(&rec)?;
    if let Err(e) = chan.send(&Msg::Go, None) {
        crate::debug!("send go: {e}");
    }

    // 6. Supervise until the container's init exits.
    let outcome = Supervisor::new(&mut child, chan, sigfd, spec.stop_timeout).run()?;
    crate::debug!("container exited: {:?}", outcome.exit);

    // 7. Report, from the kernel's own OOM counter whether the OOM killer acted. Cleanup:
    //    `child` is reaped; `cgroup` kills leftovers and removes the groups, `claim` the state
    //    directory, when dropped.
    if let Some(e) = outcome.failure {
        return Err(e);
    }
    let status = outcome.exit.status();
    match cgroup.oom_report(status) {
        Some(e) => Err(e),
        None => Ok(status),
    }
}

/// Where the cgroup file systems are: /sys/fs/cgroup, unless `BOX_CGROUP_ROOT` says otherwise
/// (the tests point it at a hybrid machine's cgroup2 mount, /sys/fs/cgroup/unified, to run
/// the v2 path against the real kernel).
fn cgroup_root() -> PathBuf {
    std::env::var_os("BOX_CGROUP_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(cgroups::ROOT), PathBuf::from)
}

/// Facts checked and computed before anything is created.
struct Prepared {
    /// Canonical absolute path of the rootfs.
    rootfs: PathBuf,
    /// The command's path inside the rootfs.
    exec_path: PathBuf,
    env: Vec<String>,
    tty: bool,
    net: net::Plan,
}

fn preflight(spec: &Spec) -> Result<Prepared> {
    if process::geteuid() != 0 {
        return Err(Error::msg(
            "needs root",
            "namespaces, mounts and cgroups are privileged (run box as root)",
        ));
    }
    let shown = format!("rootfs {}", spec.rootfs.display());
    let meta = std::fs::metadata(&spec.rootfs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::msg(&shown, "no such directory"),
        _ => Error::io(&shown, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::msg(shown, "not a directory"));
    }
    let rootfs = std::fs::canonicalize(&spec.rootfs).map_err(|e| Error::io(&shown, e))?;
    if rootfs == Path::new("/") {
        return Err(Error::msg(
            shown,
            "is the host's own root; give a separate directory",
        ));
    }
    let tty = match spec.tty {
        TtyMode::Always => true,
        TtyMode::Never => false,
        TtyMode::Auto => {
            let terminal = tty::isatty(sock::stdio(0)) && tty::isatty(sock::stdio(1));
            // Started with `&`: a pseudo-terminal needs the terminal in raw mode, and setting
            // that from the background would stop box (SIGTTOU), holding its container. Run
            // like any background job instead.
            if terminal && tty::in_background(sock::stdio(0)) {
                crate::debug!("in the background of the terminal: no pseudo-terminal");
                false
            } else {
                terminal
            }
        }
    };
    let env = spec.environment(tty, |k| std::env::var(k).ok());
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let exec_path = command::find(&rootfs, &spec.cmd[0], path_var, &spec.workdir)?;
    let box_subnet = std::env::var("BOX_SUBNET").ok();
    let net = net::Plan::new(spec.net, spec.ip, box_subnet.as_deref())?;
    Ok(Prepared {
        rootfs,
        exec_path,
        env,
        tty,
        net,
    })
}

/// The state record, without the init's pid (not known before clone).
fn record(spec: &Spec, prep: &Prepared) -> Record {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rec = Record {
        name: spec.name.clone(),
        box_pid: process::getpid(),
        init_pid: 0,
        started,
        rootfs: prep.rootfs.display().to_string(),
        command: spec.cmd.join(" "),
        extra: Vec::new(),
    };
    rec.set("hostname", &spec.hostname);
    if let Some(limits) = spec.limits.compact() {
        rec.set("limits", limits);
    }
    rec
}

/// Reclaim the leftovers of every container whose box process is gone.
pub fn sweep(run_root: &Path) {
    if let Err(e) = running(run_root) {
        crate::debug!("sweep {}: {e}", run_root.display());
    }
}

/// The records of the running containers, after reclaiming the leftovers of dead ones.
pub fn running(run_root: &Path) -> Result<Vec<Record>> {
    let mut live = Vec::new();
    for entry in state::scan(run_root)? {
        match entry {
            state::Entry::Live(rec) => live.push(rec),
            state::Entry::Stale(claim, rec) => {
                if let Some(rec) = rec {
                    reclaim(&rec);
                }
                drop(claim); // removes the state directory
            }
        }
    }
    Ok(live)
}

/// Remove container groups in `layout` that no live container in `run_root` owns: their
/// record was lost (box killed before it wrote one, or swept by a box that knew nothing of
/// cgroups). Holding the name's claim while removing them keeps a container of that name from
/// starting meanwhile; a live container holds its claim, and its groups are skipped.
///
/// `live` are the records a scan of `run_root` just found live: their names are skipped
/// without trying to claim them (a claim attempt makes and removes a directory in
/// `run_root`, per running container, on every start). A container that started after the
/// scan is not in `live`, and its held claim keeps its groups; one that died after the scan
/// left a record, which the next sweep reclaims.
///
/// Only meaningful for the state root that goes with `layout`: judged against another one
/// (a test's private state root), every group would look orphaned.
pub fn sweep_groups(run_root: &Path, layout: &cgroups::Layout, live: &[Record]) {
    for name in cgroups::group_names(layout) {
        if crate::spec::check_name(&name).is_err() || live.iter().any(|r| r.name == name) {
            continue;
        }
        if let Ok((claim, rec)) = state::claim(run_root, &name) {
            crate::debug!("remove the orphaned cgroups of {name}");
            if let Some(rec) = rec {
                reclaim(&rec);
            }
            drop(cgroups::leftover(layout, &name));
            drop(claim);
        }
    }
}

/// Release what a dead container's record names. Its processes are gone or going (the init
/// died with its box process, the PID namespace with the init); its mounts lived in its own
/// mount namespace and went with it. Its cgroups remain: dropping the handle kills whatever
/// is still in them and removes them.
pub fn reclaim(rec: &Record) {
    crate::debug!(
        "reclaim leftovers of {} (box pid {})",
        rec.name,
        rec.box_pid
    );
    net::reclaim(rec);
    drop(Cgroup::from_record(rec));
}
