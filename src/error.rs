//! Typed errors that carry the verb and the object.
//!
//! An [`Error`] reads as one line: `what: cause`, e.g.
//! `pivot_root into ./images/alpine: invalid argument`. The library says what it was doing;
//! applets add the outer context (`container c1`) and print `box: ...`. Messages are lowercase
//! with no trailing period. The exit code travels with the error, so the applet does not have to
//! guess: 125 for box's own failures, 126 for a command that cannot be run, 127 for one that is
//! not there (the convention of docker, podman and the shell).

use std::fmt;
use std::io;

pub type Result<T> = std::result::Result<T, Error>;

/// Exit status for box's own failures (bad input, a setup step that failed).
pub const EXIT_BOX: i32 = 125;
/// Exit status when the command exists but cannot be executed.
pub const EXIT_CANNOT_RUN: i32 = 126;
/// Exit status when the command does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug)]
pub struct Error {
    what: String,
    cause: Cause,
    code: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An errno from the kernel.
    Os(i32),
    /// A reason in words ("no such directory", "already running (pid 42)").
    Msg(String),
}

impl Error {
    /// `what` failed with the kernel's errno.
    pub fn os(what: impl Into<String>, errno: i32) -> Error {
        Error {
            what: what.into(),
            cause: Cause::Os(errno),
            code: EXIT_BOX,
        }
    }

    /// `what` failed with an I/O error; an errno is kept as such.
    pub fn io(what: impl Into<String>, err: io::Error) -> Error {
        let cause = match err.raw_os_error() {
            Some(errno) => Cause::Os(errno),
            None => Cause::Msg(lower_first(&err.to_string())),
        };
        Error {
            what: what.into(),
            cause,
            code: EXIT_BOX,
        }
    }

    /// `what` is wrong for the reason `why`.
    pub fn msg(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error {
            what: what.into(),
            cause: Cause::Msg(why.into()),
            code: EXIT_BOX,
        }
    }

    /// Set the exit status this error maps to.
    pub fn with_code(mut self, code: i32) -> Error {
        self.code = code;
        self
    }

    /// Prefix the error with an outer context: `ctx: what: cause`.
    pub fn context(mut self, ctx: impl fmt::Display) -> Error {
        self.what = if self.what.is_empty() {
            ctx.to_string()
        } else {
            format!("{ctx}: {}", self.what)
        };
        self
    }

    pub fn code(&self) -> i32 {
        self.code
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The errno, when the cause is one.
    pub fn errno(&self) -> Option<i32> {
        match self.cause {
            Cause::Os(e) => Some(e),
            Cause::Msg(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = match &self.cause {
            Cause::Os(errno) => errno_str(*errno),
            Cause::Msg(m) => m.clone(),
        };
        if self.what.is_empty() {
            write!(f, "{cause}")
        } else {
            write!(f, "{}: {cause}", self.what)
        }
    }
}

impl std::error::Error for Error {}

/// The kernel's description of an errno, lowercased the way box prints everything
/// (`no such file or directory`, not `No such file or directory (os error 2)`).
pub fn errno_str(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; the number is noise in a one-line message.
    let text = match text.rfind(" (os error") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    lower_first(text)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    let first_word = s.split(' ').next().unwrap_or("");
    match chars.next() {
        // Keep acronyms ("I/O error") as they are; lower a plain capitalised word.
        Some(c) if c.is_uppercase() && !first_word.chars().skip(1).any(char::is_uppercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_is_lowercase_without_number() {
        assert_eq!(errno_str(libc::ENOENT), "no such file or directory");
        assert_eq!(errno_str(libc::EINVAL), "invalid argument");
    }

    #[test]
    fn display_joins_context_what_and_cause() {
        let e = Error::msg("rootfs ./images/nope", "no such directory").context("container c1");
        assert_eq!(
            e.to_string(),
            "container c1: rootfs ./images/nope: no such directory"
        );
        assert_eq!(e.code(), EXIT_BOX);
        let e = Error::os("pivot_root into /r", libc::EINVAL).with_code(EXIT_CANNOT_RUN);
        assert_eq!(e.to_string(), "pivot_root into /r: invalid argument");
        assert_eq!(e.code(), 126);
        assert_eq!(e.errno(), Some(libc::EINVAL));
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let e = Error::io("open x", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert_eq!(e.to_string(), "open x: permission denied");
        let e = Error::io("read x", io::Error::other("Bad thing"));
        assert_eq!(e.to_string(), "read x: bad thing");
        let e = Error::io("read x", io::Error::other("I/O trouble"));
        assert_eq!(e.to_string(), "read x: I/O trouble");
    }
}
