//! Ctrl-C and SIGTERM during a fetch: stop, and leave nothing behind.
//!
//! The work (download, unpack, self-install) runs on a worker thread; the calling thread only
//! waits for it and for a signal. SIGINT, SIGTERM and SIGHUP are blocked in every thread while
//! [`Interruptible`] lives, so no handler ever runs: the waiting thread takes them with
//! sigtimedwait.
//!
//! The worker may be stuck in a read from a stalled server or a pipe at any moment, so the
//! waiting thread cannot wait for it to notice. Instead every change the worker makes to the
//! staging directory happens inside [`Cancel::enter`], which holds the `gate` lock, and never
//! while waiting for input. On a signal the waiting thread raises the flag and takes the gate
//! once: from then on the worker is outside any change and can never start another (it checks
//! the flag under the gate). The caller can then remove the staging directory without racing
//! the worker, which is abandoned where it blocks and ends with the process.

use crate::error::{Error, Result};
use crate::sys::signal::{self, SigSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The signals that interrupt a fetch.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Shared between the waiting thread and the worker.
#[derive(Default)]
pub struct Cancel {
    /// 0, or the signal that interrupted the work.
    signal: AtomicI32,
    gate: Mutex<()>,
}

impl Cancel {
    pub fn new() -> Arc<Cancel> {
        Arc::new(Cancel::default())
    }

    /// Start a change to the staging directory; fails once interrupted. Hold the guard for the
    /// change and no longer: never across a read from the network or a pipe.
    pub fn enter(&self) -> Result<MutexGuard<'_, ()>> {
        let guard = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.check()?;
        Ok(guard)
    }

    /// Fail if interrupted (between reads, where no change is under way).
    pub fn check(&self) -> Result<()> {
        match self.signal.load(Ordering::SeqCst) {
            0 => Ok(()),
            sig => Err(interrupted(sig)),
        }
    }

    /// Raise the flag and wait until the worker is outside any change.
    pub(crate) fn stop(&self, sig: libc::c_int) {
        self.signal.store(sig, Ordering::SeqCst);
        drop(self.gate.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The error for an interrupted fetch; exits 128+N like a shell's report of signal N.
pub fn interrupted(sig: libc::c_int) -> Error {
    Error::msg("", format!("interrupted by {}", signal_name(sig))).with_code(128 + sig)
}

fn signal_name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// While alive, SIGINT, SIGTERM and SIGHUP are blocked for this thread and every thread it
/// starts. Dropping it discards any that arrived since (the work is finished or cleaned up by
/// then) and restores the previous mask.
pub struct Interruptible {
    set: SigSet,
    old: SigSet,
}

impl Interruptible {
    pub fn new() -> Result<Interruptible> {
        let set = SigSet::of(&SIGNALS);
        let old = signal::block(&set).map_err(|e| Error::io("block SIGINT and SIGTERM", e))?;
        Ok(Interruptible { set, old })
    }

    /// A signal that arrived and is waiting, taken off the queue.
    pub fn pending(&self) -> Option<libc::c_int> {
        signal::wait(&self.set, Some(0))
            .ok()
            .flatten()
            .map(|i| i.signo)
    }

    /// Run `job` on a worker thread and wait for it or for a signal. On a signal the worker is
    /// stopped as described in the module comment and the error is [`interrupted`].
    pub fn run<T: Send + 'static>(
        &self,
        cancel: &Arc<Cancel>,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fetch-rootfs".into())
            .spawn(move || {
                let _ = tx.send(job());
            })
            .map_err(|e| Error::io("start the fetch worker thread", e))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::msg("fetch worker thread", "ended without a result"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(sig) = self.pending() {
                crate::debug!("{}: stopping the worker", signal_name(sig));
                cancel.stop(sig);
                return Err(interrupted(sig));
            }
        }
    }
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        while self.pending().is_some() {}
        let _ = signal::set_mask(&self.old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_fails_once_stopped() {
        let c = Cancel::new();
        assert!(c.enter().is_ok());
        c.stop(libc::SIGINT);
        let e = c.enter().unwrap_err();
        assert_eq!(e.to_string(), "interrupted by SIGINT");
        assert_eq!(e.code(), 130);
        assert_eq!(c.check().unwrap_err().code(), 130);
        assert_eq!(interrupted(libc::SIGTERM).code(), 143);
    }

    #[test]
    fn stop_waits_for_a_change_under_way() {
        let c = Cancel::new();
        let guard = c.enter().unwrap();
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.stop(libc::SIGTERM));
        // The stopper cannot finish while the change holds the gate.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished());
        drop(guard);
        t.join().unwrap();
        assert!(c.enter().is_err());
    }
}
