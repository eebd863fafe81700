//! Narration: one debug line per kernel step, on stderr, when `BOX_LOG=debug` or `-v`.
//!
//! Lines carry the pid and the time since box started, so the order and the cost of each step
//! of a container's start can be read straight off a run (`BOX_LOG=debug box container ...`).
//! The clock starts at [`init`]; a child made by clone keeps the parent's start, so parent and
//! child lines share one time line.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static DEBUG: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();

/// Start the clock and read `BOX_LOG` (`debug` turns narration on).
pub fn init() {
    START.get_or_init(Instant::now);
    if std::env::var_os("BOX_LOG").is_some_and(|v| v == "debug") {
        DEBUG.store(true, Ordering::Relaxed);
    }
}

/// Turn narration on (the `-v` option).
pub fn set_debug() {
    START.get_or_init(Instant::now);
    DEBUG.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

#[doc(hidden)]
pub fn emit(args: std::fmt::Arguments<'_>) {
    let elapsed = START.get_or_init(Instant::now).elapsed();
    let line = format!(
        "box[{}] {:>8.3}ms {}\n",
        std::process::id(),
        elapsed.as_secs_f64() * 1000.0,
        args
    );
    // One write per line: box and the container's init narrate into the same stderr at the
    // same time, and eprintln! writes a line in pieces, which the other side can cut.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `debug!("mount proc on {}", path)`: one narration line, formatted only when enabled.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled() {
            $crate::log::emit(format_args!($($arg)*));
        }
    };
}
