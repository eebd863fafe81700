//! Signal masks, signalfd and sigwaitinfo: box handles signals synchronously, never in
//! handlers, so no code runs in signal context.

use super::{cvt, retry};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn empty() -> SigSet {
        // SAFETY: sigemptyset initialises the set fully.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe { libc::sigemptyset(&mut set) };
        SigSet(set)
    }

    pub fn of(signals: &[libc::c_int]) -> SigSet {
        let mut s = SigSet::empty();
        for &sig in signals {
            // SAFETY: the set is initialised; an invalid number is ignored by the kernel ABI.
            unsafe { libc::sigaddset(&mut s.0, sig) };
        }
        s
    }

    pub fn contains(&self, sig: libc::c_int) -> bool {
        // SAFETY: the set is initialised.
        unsafe { libc::sigismember(&self.0, sig) == 1 }
    }
}

/// Block `set` for this thread; returns the previous mask.
pub fn block(set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both sets are initialised and alive.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, &mut old.0) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(old)
}

/// Replace this thread's signal mask.
pub fn set_mask(set: &SigSet) -> io::Result<()> {
    // SAFETY: the set is initialised and alive.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set.0, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Put every catchable signal back to its default action. Dispositions set to "ignore" survive
/// execve (Rust's runtime ignores SIGPIPE, for one), and a payload must start clean.
pub fn reset_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; failures (reserved signals) are fine.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// A received signal: its number, `si_code` and the sender's pid (0 when from the kernel or
/// from outside our PID namespace).
#[derive(Debug, Clone, Copy)]
pub struct SigInfo {
    pub signo: libc::c_int,
    pub code: libc::c_int,
    pub pid: libc::pid_t,
}

impl SigInfo {
    /// True when the kernel itself raised the signal for a process group: a terminal's Ctrl-C,
    /// Ctrl-\ or hangup. Every process of the foreground group got its own copy already.
    pub fn from_terminal(&self) -> bool {
        self.code == libc::SI_KERNEL
    }
}

/// sigtimedwait(2) on `set` (which must be blocked). `None` on timeout.
pub fn wait(set: &SigSet, timeout_ms: Option<u64>) -> io::Result<Option<SigInfo>> {
    // SAFETY: siginfo_t is plain data filled by the kernel.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let ts = timeout_ms.map(|ms| libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: set, info and the timespec (or NULL) are alive for the call.
    let r = retry(|| cvt(unsafe { libc::sigtimedwait(&set.0, &mut info, tsp) }));
    match r {
        Ok(signo) => Ok(Some(SigInfo {
            signo,
            code: info.si_code,
            // SAFETY: si_pid is valid for the user- and kernel-sent signals waited on here.
            pid: unsafe { info.si_pid() },
        })),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A signalfd for `set` (which must be blocked), non-blocking and close-on-exec.
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: set is alive; -1 asks for a new descriptor.
    let fd = cvt(unsafe { libc::signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Read one pending signal from a signalfd; `None` when none is pending.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<SigInfo>> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is writable for `size` bytes.
    let r = retry(|| {
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    });
    match r {
        Ok(n) if n == size => Ok(Some(SigInfo {
            signo: info.ssi_signo as libc::c_int,
            code: info.ssi_code,
            pid: info.ssi_pid as libc::pid_t,
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}
