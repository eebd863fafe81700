//! Interactive use: box run on a real pseudo-terminal, driven like a person at a keyboard.
//! The shell inside must get a prompt, line editing and its own Ctrl-C; box must survive the
//! Ctrl-C and give the terminal back as it found it.

mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    seen: String,
}

impl Pty {
    fn open() -> Pty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; the winsize is read only.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty failed");
        // SAFETY: fresh descriptors owned by nobody else.
        unsafe {
            Pty {
                master: OwnedFd::from_raw_fd(m),
                slave: OwnedFd::from_raw_fd(s),
                seen: String::new(),
            }
        }
    }

    fn write(&self, s: &str) {
        // SAFETY: writing a live buffer to a live descriptor.
        let n = unsafe { libc::write(self.master.as_raw_fd(), s.as_ptr().cast(), s.len()) };
        assert_eq!(n as usize, s.len());
    }

    /// Read until the output seen so far contains `want` (after what was already consumed).
    fn expect(&mut self, want: &str) {
        let start = Instant::now();
        loop {
            if let Some(i) = self.seen.find(want) {
                self.seen.drain(..i + want.len());
                return;
            }
            assert!(
                start.elapsed() < LIMIT,
                "never saw {want:?}; got {:?}",
                self.seen
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            let r = unsafe { libc::poll(&mut p, 1, 200) };
            if r <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            // SAFETY: reading into a live buffer.
            let n =
                unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                panic!("pty closed before {want:?}; got {:?}", self.seen);
            }
            self.seen
                .push_str(&String::from_utf8_lossy(&buf[..n as usize]));
        }
    }

    /// Start `cmd` in a new session whose controlling terminal and stdio are our slave, as a
    /// terminal emulator starts a shell.
    fn spawn(&self, cmd: &mut Command) -> std::process::Child {
        let slave = self.slave.as_raw_fd();
        cmd.stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn termios(&self) -> libc::termios {
        // SAFETY: termios is plain data filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) },
            0
        );
        t
    }
}

#[test]
fn interactive_shell_gets_a_terminal_line_editing_and_its_own_ctrl_c() {
    if !require_root() {
        return;
    }
    let mut pty = Pty::open();
    let before = pty.termios();
    let n = name("tty");
    let root = rootfs().to_str().unwrap().to_string();
    let mut cmd = Command::new(box_bin());
    cmd.args(["container", &root, &n]).env("TERM", "xterm");
    let mut child = pty.spawn(&mut cmd);

    pty.expect("# ");
    // The shell's terminal is the container's own pty, sized like ours.
    pty.write("hostname; tty; stty size; ls /dev/pts | tr '\\n' ' '; echo\r");
    pty.expect(&n);
    pty.expect("/dev/pts/0");
    pty.expect("40 100");
    // Its devpts instance holds just that one terminal: it is not one of the host's.
    pty.expect("0 ptmx \r\n");
    pty.expect("# ");
    // Meanwhile our terminal is raw: keys go to the container's pty untouched.
    assert_eq!(
        pty.termios().c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG),
        0
    );

    // Line editing: type "echo abc", move left twice, delete 'a', insert 'X'.
    pty.write("echo abc\x1b[D\x1b[D\x7fX\r");
    pty.expect("Xbc");
    pty.expect("# ");

    // Ctrl-C interrupts the foreground command inside, and box keeps running.
    let marker = "sleep 4321";
    pty.write(&format!("{marker}\r"));
    assert!(
        wait_until(LIMIT, || !pids_with(marker).is_empty()),
        "sleep never started"
    );
    pty.write("\x03");
    pty.expect("# ");
    pty.write("echo rc=$?\r");
    pty.expect("rc=130");
    assert!(child.try_wait().unwrap().is_none(), "box died on Ctrl-C");

    pty.write("exit 4\r");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < LIMIT, "box did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(4));

    // The terminal is handed back as it was: echo and canonical mode on again.
    let after = pty.termios();
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
    assert_eq!(after.c_oflag, before.c_oflag);
    assert_clean(&n);
}

/// SIGKILLs every process of session `sid` when dropped, so a failed test leaves no stopped
/// box behind (its container dies with it: init has a parent-death signal).
struct KillSession(u32);

impl Drop for KillSession {
    fn drop(&mut self) {
        for ent in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = ent.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(ent.path().join("stat")).unwrap_or_default();
            // After the command's ")": state, ppid, pgrp, session.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if rest.split_whitespace().nth(3) == Some(&self.0.to_string()) {
                // SAFETY: kill takes plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn started_in_the_background_from_a_terminal_box_runs_like_any_background_job() {
    if !require_root() {
        return;
    }
    // `box container ... &` typed into an interactive shell: box's stdin and stdout are the
    // terminal, but its process group is not the terminal's foreground one. Putting the
    // terminal in raw mode for a pseudo-terminal would stop it (SIGTTOU): a stopped job that
    // holds its container. It must run without one, like any background job.
    let mut pty = Pty::open();
    let before = pty.termios();
    let n = name("bg");
    let root = rootfs().to_str().unwrap().to_string();
    let script = format!(
        "set -m; {} container {root} {n} -- sh -c 'echo hello from $(hostname)' & wait $!; echo rc=$?",
        box_bin().display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let mut shell = pty.spawn(&mut cmd);
    let _kill = KillSession(shell.id());
    pty.expect(&format!("hello from {n}"));
    pty.expect("rc=0");
    assert!(shell.wait().unwrap().success());
    let after = pty.termios();
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
    assert_clean(&n);
}
