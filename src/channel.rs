//! The parent-child channel: a SOCK_SEQPACKET pair made before clone.
//!
//! parent -> child: [`Msg::Go`] once the parent has placed the child (cgroup, veth).
//! child -> parent: [`Msg::Failed`] with the step that failed, or [`Msg::Tty`] carrying the
//! pseudo-terminal master. The payload inherits the child's end close-on-exec, so the parent
//! reads EOF exactly when the payload's execve succeeded (or every holder died): no extra round
//! trip is needed to learn that the container started.

use crate::error::{Cause, Error};
use crate::sys::sock;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

#[derive(Debug)]
pub enum Msg {
    Go,
    /// A step failed: the error with its exit code.
    Failed(Error),
    /// The pseudo-terminal master follows as a passed descriptor.
    Tty,
}

const GO: u8 = b'G';
const FAILED: u8 = b'E';
const TTY: u8 = b'T';
/// Large enough for any message box sends; a longer error text is cut.
pub const MAX_MSG: usize = 4096;

pub fn encode(msg: &Msg) -> Vec<u8> {
    match msg {
        Msg::Go => vec![GO],
        Msg::Tty => vec![TTY],
        Msg::Failed(e) => {
            let mut out = vec![FAILED, e.code().clamp(0, 255) as u8];
            let (errno, text) = match e.cause() {
                Cause::Os(n) => (*n, ""),
                Cause::Msg(m) => (0, m.as_str()),
            };
            out.extend_from_slice(&errno.to_le_bytes());
            let what = e.what().as_bytes();
            let what = &what[..what.len().min(MAX_MSG / 2)];
            out.extend_from_slice(&(what.len() as u16).to_le_bytes());
            out.extend_from_slice(what);
            out.extend_from_slice(&text.as_bytes()[..text.len().min(MAX_MSG / 2 - 16)]);
            out
        }
    }
}

pub fn decode(b: &[u8]) -> Option<Msg> {
    match *b.first()? {
        GO if b.len() == 1 => Some(Msg::Go),
        TTY if b.len() == 1 => Some(Msg::Tty),
        FAILED if b.len() >= 8 => {
            let code = b[1] as i32;
            let errno = i32::from_le_bytes(b[2..6].try_into().ok()?);
            let wlen = u16::from_le_bytes(b[6..8].try_into().ok()?) as usize;
            let what = String::from_utf8_lossy(b.get(8..8 + wlen)?).into_owned();
            let text = String::from_utf8_lossy(&b[8 + wlen..]).into_owned();
            let e = if errno != 0 {
                Error::os(what, errno)
            } else {
                Error::msg(what, text)
            };
            Some(Msg::Failed(e.with_code(code)))
        }
        _ => None,
    }
}

pub struct Channel(OwnedFd);

impl Channel {
    pub fn new(fd: OwnedFd) -> Channel {
        Channel(fd)
    }

    pub fn send(&self, msg: &Msg, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        sock::send(self.0.as_fd(), &encode(msg), fd)
    }

    /// The next message and any descriptor passed with it; `None` at EOF.
    pub fn recv(&self) -> io::Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = [0u8; MAX_MSG];
        let (n, fd) = sock::recv(self.0.as_fd(), &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        match decode(&buf[..n]) {
            Some(m) => Ok(Some((m, fd))),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "garbled message from the container",
            )),
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_round_trip_with_errno_or_text_and_code() {
        let e = Error::os("pivot_root into ./r", libc::EINVAL);
        match decode(&encode(&Msg::Failed(e))).unwrap() {
            Msg::Failed(d) => {
                assert_eq!(d.to_string(), "pivot_root into ./r: invalid argument");
                assert_eq!(d.code(), 125);
            }
            other => panic!("{other:?}"),
        }
        let e = Error::msg("exec nope", "not found").with_code(127);
        match decode(&encode(&Msg::Failed(e))).unwrap() {
            Msg::Failed(d) => {
                assert_eq!(d.to_string(), "exec nope: not found");
                assert_eq!(d.code(), 127);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn small_messages_and_garbage() {
        assert!(matches!(decode(&encode(&Msg::Go)), Some(Msg::Go)));
        assert!(matches!(decode(&encode(&Msg::Tty)), Some(Msg::Tty)));
        assert!(decode(b"").is_none());
        assert!(decode(b"Gx").is_none());
        assert!(decode(b"E\x01").is_none());
        assert!(decode(b"E\x01\0\0\0\0\xff\xff").is_none());
    }

    #[test]
    fn eof_after_the_other_end_closes() {
        let (a, b) = sock::seqpacket_pair().unwrap();
        let (a, b) = (Channel::new(a), Channel::new(b));
        a.send(&Msg::Go, None).unwrap();
        drop(a);
        assert!(matches!(b.recv().unwrap(), Some((Msg::Go, None))));
        assert!(b.recv().unwrap().is_none());
    }
}
