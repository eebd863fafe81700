//! The child side: what runs inside the new namespaces, one function per step, then PID 1.
//!
//! The child is a copy of the parent made by clone (no exec), so it already holds everything it
//! needs in memory: the mount plan, the resolved command, the environment. It waits for the
//! parent's go, sets up, starts the payload, and then stays as the container's init: it reaps
//! every zombie, forwards signals to the payload, and exits with the payload's status (which
//! also tears the PID namespace down: the kernel kills whatever is left in it).

use crate::caps;
use crate::channel::{Channel, Msg};
use crate::error::{Error, Result, EXIT_BOX, EXIT_CANNOT_RUN, EXIT_NOT_FOUND};
use crate::mounts::{self, Op};
use crate::sys::process::SpawnError;
use crate::sys::{fs as sysfs, process, signal, sock, tty};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Signals the init passes on to the payload.
pub const FORWARDED: &[libc::c_int] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Everything the child needs, prepared by the parent before clone.
pub struct Config<'a> {
    pub hostname: &'a str,
    pub workdir: &'a Path,
    pub plan: &'a [Op],
    /// Absolute path of the executable inside the rootfs.
    pub exec_path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Give the payload a pseudo-terminal (the master goes to the parent).
    pub tty: bool,
    /// The container's address and route; `None`: only `lo`.
    pub net: Option<crate::net::Inside>,
    /// The cgroup v1 `tasks` files to join (empty on v2: clone3 placed us).
    pub join: &'a [PathBuf],
}

/// The child's whole life. Never returns.
pub fn run(cfg: &Config<'_>, chan: Channel) -> ! {
    let payload = match setup(cfg, &chan) {
        Ok(Some(pid)) => pid,
        Ok(None) => process::exit_now(EXIT_BOX), // the parent is gone: nothing to do
        Err(e) => {
            let code = e.code();
            let _ = chan.send(&Msg::Failed(e), None);
            process::exit_now(code)
        }
    };
    // Our copy of the channel closes now; the payload's closes at its execve, and then the
    // parent reads EOF: the container is running.
    drop(chan);
    quiet_stdio();
    process::exit_now(be_pid1(payload))
}

fn setup(cfg: &Config<'_>, chan: &Channel) -> Result<Option<process::pid_t>> {
    // If the box process dies (even by SIGKILL), so does the container: init's death takes the
    // whole PID namespace with it. Set before waiting for "go", so a parent that died before
    // this point shows up as EOF below.
    process::set_parent_death_signal(libc::SIGKILL)
        .map_err(|e| Error::io("set parent death signal", e))?;
    // Into our cgroups (v1), while the parent attaches the network; the limits hold from
    // here on, before anything of the container's own runs.
    for tasks in cfg.join {
        crate::cgroups::join(tasks)?;
    }
    // Nothing in the container may ptrace its init or open /proc/1/fd (which still holds the
    // host's stdio until quiet_stdio). The payload's execve makes it dumpable again.
    process::set_dumpable(false).map_err(|e| Error::io("make init non-dumpable", e))?;
    // `ps` inside shows PID 1 as box-init rather than the host's command line, which names
    // host paths. Cosmetic: a failure is only narrated.
    if let Err(e) = process::set_process_title("box-init") {
        crate::debug!("child: set process title: {e}");
    }
    match chan.recv() {
        Ok(Some((Msg::Go, _))) => {}
        Ok(None) => return Ok(None),
        Ok(Some((other, _))) => {
            return Err(Error::msg(
                "wait for the parent",
                format!("unexpected {other:?}"),
            ))
        }
        Err(e) => return Err(Error::io("wait for the parent", e)),
    }
    crate::debug!("child: go");
    // We are in our cgroups (clone3 put us there on v2, we joined them above on v1), so a
    // cgroup namespace made now is rooted there: /proc/self/cgroup inside shows `/`, and no
    // host cgroup path is visible.
    crate::debug!("child: enter a new cgroup namespace");
    process::unshare(process::CLONE_NEWCGROUP)
        .map_err(|e| Error::io("enter a new cgroup namespace", e))?;
    crate::net::setup_inside(cfg.net.as_ref())?;
    process::sethostname(cfg.hostname)
        .map_err(|e| Error::io(format!("set hostname {}", cfg.hostname), e))?;
    mounts::apply(cfg.plan)?;
    sysfs::chdir(cfg.workdir)
        .map_err(|e| Error::io(format!("chdir to workdir {}", cfg.workdir.display()), e))?;
    let pty = if cfg.tty { Some(open_pty(chan)?) } else { None };
    caps::restrict(caps::default_mask())?;
    process::set_no_new_privs().map_err(|e| Error::io("set no_new_privs", e))?;
    crate::debug!("child: start {}", cfg.exec_path.to_string_lossy());
    let tty = pty.as_ref().map(|p| p.as_fd());
    match process::spawn(&cfg.exec_path, &cfg.argv, &cfg.envp, tty) {
        Ok(pid) => Ok(Some(pid)),
        Err(SpawnError::Clone(e)) => Err(Error::io("start the payload", e)),
        Err(SpawnError::Tty(e)) => Err(Error::io("attach the pty", e)),
        Err(SpawnError::Exec(e)) => {
            let code = match e.raw_os_error() {
                Some(libc::ENOENT) => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_RUN,
            };
            let what = format!("exec {}", cfg.exec_path.to_string_lossy());
            Err(Error::io(what, e).with_code(code))
        }
    }
}

/// Make a pseudo-terminal in the container's devpts, hand the master to the parent, keep the
/// slave for the payload.
fn open_pty(chan: &Channel) -> Result<OwnedFd> {
    let master =
        tty::open_master(Path::new("/dev/ptmx")).map_err(|e| Error::io("open /dev/ptmx", e))?;
    let slave = tty::open_peer(master.as_fd()).map_err(|e| Error::io("open the pty slave", e))?;
    chan.send(&Msg::Tty, Some(master.as_fd()))
        .map_err(|e| Error::io("pass the pty to the parent", e))?;
    Ok(slave)
}

/// Point init's stdio at /dev/null: it needs none, and the host's descriptors (a terminal,
/// pipes) must not stay reachable inside the container through it.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            let _ = sock::dup2(null.as_fd(), fd);
        }
    }
}

/// PID 1's loop: reap every child, forward signals to the payload, exit with its status.
fn be_pid1(payload: process::pid_t) -> i32 {
    let mut set: Vec<libc::c_int> = FORWARDED.to_vec();
    set.push(libc::SIGCHLD);
    // The parent blocked these before clone, so none was lost in between; they stay blocked
    // and are taken synchronously here.
    let set = signal::SigSet::of(&set);
    loop {
        let info = match signal::wait(&set, None) {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(_) => return EXIT_BOX,
        };
        if info.signo == libc::SIGCHLD {
            while let Ok(Some((pid, exit))) = process::waitpid(-1, true) {
                if pid == payload {
                    return exit.status();
                }
            }
        } else if !info.from_terminal() {
            // A terminal's Ctrl-C already reached the payload in its own process group; only
            // signals sent on purpose (kill, or forwarded by box) are passed on.
            let _ = process::kill(payload, info.signo);
        }
    }
}
