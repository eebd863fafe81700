//! The box process while a container runs: one poll loop over the child's pidfd, a signalfd,
//! the channel from the child and, with a terminal, the pseudo-terminal proxy.
//!
//! Signals: SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to box are forwarded to
//! the container's init (which forwards them to the payload). Without a pseudo-terminal, the
//! payload shares box's process group, so a terminal's Ctrl-C reaches it directly; such
//! kernel-sent copies are not forwarded a second time. A forwarded SIGTERM starts the stop
//! timeout, after which the container is killed.
//!
//! Terminal: the host terminal is put in raw mode and bytes are copied both ways, so line
//! editing, job control and Ctrl-C all happen inside the container's own pty.

use crate::channel::{Channel, Msg};
use crate::error::{Error, Result};
use crate::sys::process::{self, pid_t, Exit};
use crate::sys::{signal, sock, tty};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// The cloned child (the container's init). Dropping it before it was reaped kills and reaps
/// it, so no error path leaves a container running.
pub struct Child {
    pid: pid_t,
    pidfd: OwnedFd,
    exit: Option<Exit>,
}

impl Child {
    pub fn new(pid: pid_t, pidfd: OwnedFd) -> Child {
        Child {
            pid,
            pidfd,
            exit: None,
        }
    }

    pub fn pid(&self) -> pid_t {
        self.pid
    }

    pub fn signal(&self, sig: libc::c_int) {
        if self.exit.is_none() {
            let _ = process::pidfd_kill(self.pidfd.as_fd(), sig);
        }
    }

    /// Reap the child (blocking) and return how it ended.
    pub fn wait(&mut self) -> Result<Exit> {
        if let Some(e) = self.exit {
            return Ok(e);
        }
        match process::waitpid(self.pid, false) {
            Ok(Some((_, e))) => {
                self.exit = Some(e);
                Ok(e)
            }
            Ok(None) => Err(Error::msg("wait for the container", "no such child")),
            Err(e) => Err(Error::io("wait for the container", e)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// How the container ended: init's exit, and a failure the child reported, if any.
pub struct Outcome {
    pub exit: Exit,
    pub failure: Option<Error>,
}

pub struct Supervisor<'a> {
    child: &'a mut Child,
    chan: Option<Channel>,
    sigfd: OwnedFd,
    stop_timeout: Duration,
    stop_deadline: Option<Instant>,
    failure: Option<Error>,
    pty: Option<Pty>,
}

/// The pseudo-terminal proxy between the host's stdin/stdout and the container's pty master.
struct Pty {
    master: OwnedFd,
    /// Bytes read from stdin not yet written to the master.
    pending: Vec<u8>,
    stdin_open: bool,
    master_open: bool,
    /// The host terminal's settings, restored when the proxy ends.
    saved: Option<tty::Termios>,
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tty::set_attr(sock::stdio(0), t);
        }
    }
}

const BUF: usize = 16 * 1024;

impl<'a> Supervisor<'a> {
    pub fn new(child: &'a mut Child, chan: Channel, sigfd: OwnedFd, stop_timeout: u64) -> Self {
        Supervisor {
            child,
            chan: Some(chan),
            sigfd,
            stop_timeout: Duration::from_secs(stop_timeout),
            stop_deadline: None,
            failure: None,
            pty: None,
        }
    }

    pub fn run(mut self) -> Result<Outcome> {
        loop {
            let mut fds = [
                sock::PollFd::new(self.sigfd.as_fd(), libc::POLLIN),
                sock::PollFd::new(self.child.pidfd.as_fd(), libc::POLLIN),
                match &self.chan {
                    Some(c) => sock::PollFd::new(c.as_fd(), libc::POLLIN),
                    None => sock::PollFd::unused(),
                },
                match &self.pty {
                    Some(p) if p.stdin_open && p.pending.is_empty() => {
                        sock::PollFd::new(sock::stdio(0), libc::POLLIN)
                    }
                    _ => sock::PollFd::unused(),
                },
                match &self.pty {
                    Some(p) if p.master_open => {
                        let ev = if p.pending.is_empty() {
                            libc::POLLIN
                        } else {
                            libc::POLLIN | libc::POLLOUT
                        };
                        sock::PollFd::new(p.master.as_fd(), ev)
                    }
                    _ => sock::PollFd::unused(),
                },
            ];
            let timeout = match self.stop_deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).as_millis() as i32,
                None => -1,
            };
            sock::poll(&mut fds, timeout).map_err(|e| Error::io("poll", e))?;
            let ready = |i: usize| fds[i].revents() != 0;
            if ready(0) {
                self.on_signals()?;
            }
            if ready(2) {
                self.on_message();
            }
            if ready(3) {
                self.on_stdin();
            }
            if ready(4) {
                self.on_master(fds[4].revents());
            }
            if let Some(d) = self.stop_deadline {
                if Instant::now() >= d {
                    crate::debug!("stop timeout: SIGKILL the container");
                    self.child.signal(libc::SIGKILL);
                    self.stop_deadline = None;
                }
            }
            if ready(1) {
                break;
            }
        }
        let exit = self.child.wait()?;
        // Every process of the container is gone now (init's exit waits for the PID namespace
        // to empty), so whatever is left in the pty and the channel is complete: drain both.
        if let Some(p) = &mut self.pty {
            while p.master_open {
                p.copy_out(true);
            }
        }
        while self.chan.is_some() {
            self.on_message();
        }
        Ok(Outcome {
            exit,
            failure: self.failure.take(),
        })
    }

    fn on_signals(&mut self) -> Result<()> {
        while let Some(info) =
            signal::read_signalfd(self.sigfd.as_fd()).map_err(|e| Error::io("read signalfd", e))?
        {
            if info.signo == libc::SIGWINCH {
                if let Some(p) = &self.pty {
                    p.copy_winsize();
                }
                continue;
            }
            // Without a pty the payload already got a terminal's own signal; with one, the host
            // terminal is raw and cannot raise any, so every signal here was meant for us.
            if self.pty.is_none() && info.from_terminal() {
                continue;
            }
            crate::debug!("forward signal {} to the container", info.signo);
            self.child.signal(info.signo);
            if info.signo == libc::SIGTERM && self.stop_deadline.is_none() {
                self.stop_deadline = Some(Instant::now() + self.stop_timeout);
            }
        }
        Ok(())
    }

    fn on_message(&mut self) {
        let Some(chan) = &self.chan else { return };
        match chan.recv() {
            Ok(Some((Msg::Failed(e), _))) => {
                if self.failure.is_none() {
                    self.failure = Some(e);
                }
            }
            Ok(Some((Msg::Tty, Some(master)))) => self.pty = Some(Pty::start(master)),
            Ok(Some((other, _))) => crate::debug!("ignored message {other:?}"),
            Ok(None) => {
                crate::debug!("container started (channel closed)");
                self.chan = None;
            }
            Err(e) => {
                crate::debug!("channel: {e}");
                self.chan = None;
            }
        }
    }

    fn on_stdin(&mut self) {
        let Some(p) = &mut self.pty else { return };
        let mut buf = [0u8; BUF];
        match sock::read(sock::stdio(0), &mut buf) {
            Ok(0) | Err(_) => {
                p.stdin_open = false;
                if tty::isatty(sock::stdio(0)) {
                    // The host terminal hung up: hang up the container's terminal too.
                    self.child.signal(libc::SIGHUP);
                } else {
                    // Piped input ended: the terminal's end-of-file character.
                    p.pending.push(0x04);
                }
            }
            Ok(n) => p.pending.extend_from_slice(&buf[..n]),
        }
    }

    fn on_master(&mut self, revents: libc::c_short) {
        let Some(p) = &mut self.pty else { return };
        if revents & libc::POLLOUT != 0 && !p.pending.is_empty() {
            match sock::write(p.master.as_fd(), &p.pending) {
                Ok(n) => {
                    p.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => p.pending.clear(),
            }
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            p.copy_out(false);
        }
    }
}

impl Pty {
    fn start(master: OwnedFd) -> Pty {
        let _ = sock::set_nonblocking(master.as_fd(), true);
        let stdin = sock::stdio(0);
        let saved = if tty::isatty(stdin) {
            tty::get_attr(stdin).ok()
        } else {
            None
        };
        if let Some(t) = &saved {
            let _ = tty::set_attr(stdin, &t.raw());
        }
        let p = Pty {
            master,
            pending: Vec::new(),
            stdin_open: true,
            master_open: true,
            saved,
        };
        p.copy_winsize();
        p
    }

    fn copy_winsize(&self) {
        for fd in [0, 1] {
            if let Ok(ws) = tty::get_winsize(sock::stdio(fd)) {
                let _ = tty::set_winsize(self.master.as_fd(), &ws);
                return;
            }
        }
    }

    /// Copy what the container wrote to its terminal to our stdout (one read's worth).
    /// `draining`: the container is gone, so "nothing now" means "nothing more".
    fn copy_out(&mut self, draining: bool) {
        let mut buf = [0u8; BUF];
        match sock::read(self.master.as_fd(), &mut buf) {
            Ok(0) => self.master_open = false,
            Ok(n) => {
                let _ = sock::write_all(sock::stdio(1), &buf[..n]);
            }
            // EAGAIN: nothing now. After the container is gone this means drained.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if draining {
                    self.master_open = false;
                }
            }
            // EIO: no process holds the slave any more.
            Err(_) => self.master_open = false,
        }
    }
}
