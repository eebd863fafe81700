//! HTTP(S) downloads with ureq: rustls with Mozilla's roots compiled in (no system TLS library
//! or CA bundle needed, so the static binary works anywhere), no transparent decompression (the
//! bytes hashed are the bytes the server stored), SHA-256 computed while streaming, and a
//! progress line when stderr is a terminal.

use super::cancel::Cancel;
use super::digest::{Hasher, Sha256Sum};
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A stalled server fails the download after this long without a byte.
const STALL: Duration = Duration::from_secs(60);
const CHUNK: usize = 64 * 1024;

/// An HTTP client configured for box.
pub struct Http {
    agent: ureq::Agent,
}

/// What a download produced.
pub struct Downloaded {
    pub bytes: u64,
    pub sha256: Sha256Sum,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let config = ureq::Agent::config_builder()
            .user_agent(concat!("box/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(STALL))
            .build();
        Http {
            agent: config.into(),
        }
    }

    fn get(&self, url: &str) -> Result<ureq::Body> {
        crate::debug!("GET {url}");
        let resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| Error::msg(format!("fetch {url}"), describe(e)))?;
        crate::debug!("{url}: {}", resp.status());
        Ok(resp.into_body())
    }

    /// A small document (an index, a checksum file), at most `limit` bytes.
    pub fn get_small(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        let mut body = self.get(url)?;
        body.with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| Error::msg(format!("fetch {url}"), describe(e)))
    }

    /// Stream `url` into `out`, hashing as the bytes arrive. Every write happens under
    /// `cancel`'s gate; reads never do, so a stalled server cannot delay an interrupt. With
    /// `expected_size` (from an index) a longer body is cut off and refused.
    pub fn download(
        &self,
        url: &str,
        out: &mut std::fs::File,
        cancel: &Cancel,
        progress: &mut Progress,
        expected_size: Option<u64>,
    ) -> Result<Downloaded> {
        let mut body = self.get(url)?;
        let total = body.content_length().or(expected_size);
        progress.start(total);
        let mut reader = body.as_reader();
        let mut hasher = Hasher::default();
        let mut buf = vec![0u8; CHUNK];
        let what = || format!("download {url}");
        loop {
            cancel.check()?;
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    progress.clear();
                    let cause = describe(ureq::Error::from(e));
                    let got = hasher.bytes();
                    return Err(Error::msg(
                        what(),
                        match total {
                            Some(t) => format!("{cause} after {got} of {t} bytes"),
                            None => format!("{cause} after {got} bytes"),
                        },
                    ));
                }
            };
            hasher.update(&buf[..n]);
            if let Some(max) = expected_size {
                if hasher.bytes() > max {
                    progress.clear();
                    return Err(Error::msg(
                        what(),
                        format!("longer than the {max} bytes the index announced"),
                    ));
                }
            }
            let _change = cancel.enter()?;
            out.write_all(&buf[..n])
                .map_err(|e| Error::io(format!("{}: write", what()), e))?;
            progress.update(hasher.bytes());
        }
        progress.clear();
        let bytes = hasher.bytes();
        if let Some(t) = total {
            if bytes != t {
                return Err(Error::msg(
                    what(),
                    format!("truncated: got {bytes} of {t} bytes"),
                ));
            }
        }
        crate::debug!("downloaded {bytes} bytes from {url}");
        Ok(Downloaded {
            bytes,
            sha256: hasher.finish(),
        })
    }
}

/// ureq's error in box's words: lowercase, the cause only.
fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => {
            let reason = ureq::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            format!("server answered {code} {}", reason.to_lowercase())
                .trim_end()
                .to_string()
        }
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "connection closed early".to_string()
        }
        // The errno's text, or the message with its first word lowercased.
        ureq::Error::Io(e) => Error::io("", e).to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::BodyExceedsLimit(n) => format!("longer than {n} bytes"),
        other => other.to_string(),
    }
}

/// The progress line: drawn in place on stderr when it is a terminal, silent otherwise.
pub struct Progress {
    enabled: bool,
    label: String,
    total: Option<u64>,
    start: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    pub fn new(enabled: bool, label: impl Into<String>) -> Progress {
        Progress {
            enabled,
            label: label.into(),
            total: None,
            start: Instant::now(),
            drawn: None,
        }
    }

    fn start(&mut self, total: Option<u64>) {
        self.total = total;
        self.start = Instant::now();
    }

    fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        // Ten redraws a second are plenty for a human and cost nothing.
        if self
            .drawn
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = progress_line(
            &self.label,
            done,
            self.total,
            self.start.elapsed().as_secs_f64(),
        );
        eprint!("\r{line}\x1b[K");
    }

    fn clear(&mut self) {
        if self.enabled && self.drawn.is_some() {
            eprint!("\r\x1b[K");
            self.drawn = None;
        }
    }
}

/// `alpine-minirootfs-3.21.3-x86_64.tar.gz  1.2 MiB / 3.4 MiB  2.0 MiB/s`
fn progress_line(label: &str, done: u64, total: Option<u64>, secs: f64) -> String {
    let rate = if secs > 0.0 {
        (done as f64 / secs) as u64
    } else {
        0
    };
    match total {
        Some(t) => format!(
            "{label}  {} / {}  {}/s",
            human_size(done),
            human_size(t),
            human_size(rate)
        ),
        None => format!("{label}  {}  {}/s", human_size(done), human_size(rate)),
    }
}

/// Bytes for humans: `512 B`, `3.4 KiB`, `3.4 MiB`, `1.2 GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(3_565_158), "3.4 MiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn progress_line_shows_bytes_total_and_rate() {
        assert_eq!(
            progress_line("a.tar.gz", 1 << 20, Some(4 << 20), 0.5),
            "a.tar.gz  1.0 MiB / 4.0 MiB  2.0 MiB/s"
        );
        assert_eq!(progress_line("u", 2048, None, 2.0), "u  2.0 KiB  1.0 KiB/s");
    }

    #[test]
    fn http_errors_read_as_causes() {
        assert_eq!(
            describe(ureq::Error::StatusCode(404)),
            "server answered 404 not found"
        );
        assert_eq!(
            describe(ureq::Error::Io(std::io::Error::from_raw_os_error(
                libc::ECONNREFUSED
            ))),
            "connection refused"
        );
        assert_eq!(
            describe(ureq::Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
            "connection closed early"
        );
    }
}
