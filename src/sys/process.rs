//! Processes: clone into namespaces, fork, exec, wait, kill, prctl and capabilities.

use super::{cvt, cvt_long, retry, str_cstr};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub use libc::pid_t;
pub use libc::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS,
};

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to the `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a fork-like clone we are on.
pub enum Forked {
    Parent { pid: pid_t, pidfd: OwnedFd },
    Child,
}

/// clone3(2) without a new stack, so it returns twice like fork(2): in the parent with the
/// child's pid and a pidfd, in the child with `Forked::Child`. `namespaces` is a mask of
/// `CLONE_NEW*` flags; `cgroup` (a cgroup v2 directory) places the child there atomically.
///
/// The caller must be single-threaded: like after fork, only this thread exists in the child,
/// and it must not rely on locks another thread might have held. No `atfork` handlers run, so
/// libc's cached thread id in the child is stale; box's code never depends on it.
pub fn clone_fork(namespaces: libc::c_int, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: namespaces as u32 as u64 | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: args lives across the call and its size is passed; with stack == 0 the child
    // continues on a copy of this stack, as fork(2) does.
    let ret = cvt_long(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if ret == 0 {
        Ok(Forked::Child)
    } else {
        // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor that we now own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        Ok(Forked::Parent {
            pid: ret as pid_t,
            pidfd,
        })
    }
}

/// fork(2). `Ok(None)` in the child.
pub fn fork() -> io::Result<Option<pid_t>> {
    // SAFETY: box forks only while single-threaded.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { None } else { Some(pid) })
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes flags only.
    cvt(unsafe { libc::unshare(flags) })?;
    Ok(())
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    cvt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

pub fn gethostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length.
    cvt(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) })?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// execve(2). Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point at strings alive for the call.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// Where [`spawn`] failed.
#[derive(Debug)]
pub enum SpawnError {
    /// The clone itself.
    Clone(io::Error),
    /// Making the terminal the child's (setsid, TIOCSCTTY, dup2 onto 0, 1, 2).
    Tty(io::Error),
    /// The execve.
    Exec(io::Error),
}

/// Everything the child of [`spawn`] reads, prepared by the parent, and where it leaves the
/// step and errno of a failure for the parent to read.
#[repr(C)]
struct SpawnArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// The terminal to attach, or -1.
    tty: RawFd,
    sigrtmax: libc::c_int,
    /// 0: none, 1: the terminal, 2: execve.
    failed: libc::c_int,
    errno: libc::c_int,
}

const SPAWN_STACK: usize = 32 * 1024;

/// Start `path` with `argv` and `envp` in a new process, signal dispositions back to their
/// defaults, no signal blocked, and with `tty` (if any) as its controlling terminal and stdio.
/// Returns its pid once its execve has succeeded.
///
/// The child shares this process's memory until its execve (clone with CLONE_VM and
/// CLONE_VFORK, as posix_spawn does; this process waits meanwhile), so nothing of this
/// process's address space is copied only to be thrown away by the execve: a fork of box's
/// init costs its page tables, the copy-on-write faults of both sides and their unmapping.
/// The child runs [`spawn_child`] on a stack of its own and makes system calls only: no
/// allocation, no lock, nothing of this process's state is touched except the failure slot.
/// Every signal is blocked around the clone, so no handler of this process can run in the
/// child before it has reset the dispositions.
pub fn spawn(
    path: &CStr,
    argv: &[CString],
    envp: &[CString],
    tty: Option<BorrowedFd<'_>>,
) -> Result<pid_t, SpawnError> {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let mut args = SpawnArgs {
        path: path.as_ptr(),
        argv: argv_p.as_ptr(),
        envp: envp_p.as_ptr(),
        tty: tty.map_or(-1, |t| t.as_raw_fd()),
        sigrtmax: libc::SIGRTMAX(),
        failed: 0,
        errno: 0,
    };
    let mut stack = vec![0u8; SPAWN_STACK];
    // The stack grows down from its end, 16-byte aligned as the ABI wants.
    let top = (stack.as_mut_ptr() as usize + SPAWN_STACK) & !15;
    // SAFETY: the sets are plain data initialised by sigfillset; the masks are this
    // thread's own.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
    }
    // SAFETY: `stack` and `args` (and the strings and arrays it points at) outlive the child's
    // use of them: with CLONE_VFORK this call returns only after the child's execve or exit.
    // The child runs spawn_child alone on `stack` and touches nothing else of ours but
    // `args.failed` and `args.errno`.
    let pid = unsafe {
        libc::clone(
            spawn_child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut args as *mut SpawnArgs as *mut libc::c_void,
        )
    };
    let clone_err = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    if pid == -1 {
        return Err(SpawnError::Clone(clone_err));
    }
    if args.failed == 0 {
        return Ok(pid);
    }
    // The child has exited already; reap it.
    let _ = waitpid(pid, false);
    let err = io::Error::from_raw_os_error(args.errno);
    Err(if args.failed == 1 {
        SpawnError::Tty(err)
    } else {
        SpawnError::Exec(err)
    })
}

/// The child of [`spawn`], until its execve.
extern "C" fn spawn_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's SpawnArgs, alive and not touched by the (suspended)
    // parent until this process execs or exits. Everything below is a system call on values
    // the parent prepared; errno is read right after the call that set it.
    unsafe {
        let args = &mut *(arg as *mut SpawnArgs);
        let fail = |args: &mut SpawnArgs, step| -> ! {
            args.failed = step;
            args.errno = *libc::__errno_location();
            libc::_exit(127)
        };
        // Dispositions set to "ignore" survive execve (Rust ignores SIGPIPE, for one).
        for sig in 1..args.sigrtmax {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if args.tty >= 0 {
            if libc::setsid() == -1 || libc::ioctl(args.tty, libc::TIOCSCTTY, 0) == -1 {
                fail(args, 1);
            }
            for fd in 0..=2 {
                if libc::dup2(args.tty, fd) == -1 {
                    fail(args, 1);
                }
            }
        }
        libc::execve(args.path, args.argv, args.envp);
        fail(args, 2)
    }
}

/// _exit(2): leave now, without running destructors or flushing anything.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell's convention: the exit code, or 128 + the signal that killed it.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// waitpid(2). `Ok(None)` when `nohang` and no child changed state (or there is none left).
pub fn waitpid(pid: pid_t, nohang: bool) -> io::Result<Option<(pid_t, Exit)>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: status is a live int.
    let r = retry(|| cvt(unsafe { libc::waitpid(pid, &mut status, flags) }));
    match r {
        Ok(0) => Ok(None),
        Ok(p) => Ok(Some((p, decode_status(status)))),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        Err(e) => Err(e),
    }
}

fn decode_status(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

pub fn kill(pid: pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// pidfd_send_signal(2): signal the process behind a pidfd, immune to pid reuse.
pub fn pidfd_kill(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: a NULL siginfo means "as kill(2) would"; flags must be 0.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

pub fn getpid() -> pid_t {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() })?;
    Ok(())
}

/// Ask the kernel to send `sig` to this process when its parent thread exits.
pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// PR_SET_NO_NEW_PRIVS: execve can never grant more privileges (setuid bits, file caps).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// PR_SET_DUMPABLE: a non-dumpable process cannot be ptraced, and its /proc files are
/// root-owned, without CAP_SYS_PTRACE. execve of an ordinary binary makes it dumpable again.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Overwrite this process's command line in place, so /proc/self/cmdline (what `ps` shows)
/// reads `text` (cut to fit), and set the short name (`comm`) to its first 15 bytes. The
/// argument area's bounds come from /proc/self/stat (fields 48 and 49).
pub fn set_process_title(text: &str) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised comm start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    if end <= start {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let len = end - start;
    let n = text.len().min(len - 1);
    // SAFETY: [start, end) is this process's own argument area on its initial stack, as the
    // kernel reports it: mapped and writable for the life of the process. The process is
    // single-threaded here, and Rust's std only reads that area when env::args() is called,
    // which box's child never does. The final byte stays NUL, as the kernel expects.
    unsafe {
        std::ptr::write_bytes(start as *mut u8, 0, len);
        std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, n);
    }
    let mut comm = [0u8; 16];
    let c = text.len().min(15);
    comm[..c].copy_from_slice(&text.as_bytes()[..c]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes.
    cvt(unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Drop one capability from the bounding set.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Clear the ambient capability set.
pub fn clear_ambient_caps() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) for this thread, with 64-bit masks (bit N = capability N).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: version 3 takes a header and two data words, both alive for the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) })?;
    Ok(())
}

/// capget(2) for this thread: (effective, permitted, inheritable).
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 fills two data words, both alive for the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    let join = |lo: u32, hi: u32| (hi as u64) << 32 | lo as u64;
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Resolve a name to an executable path the way execvp does is the caller's job; this only
/// converts an argv for [`execve`].
pub fn cstrings(items: &[String]) -> io::Result<Vec<CString>> {
    items.iter().map(|s| str_cstr(s)).collect()
}
