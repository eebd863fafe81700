//! SHA-256 digests: parsing the hex a user or an index gives, the `.sha256` files mirrors
//! publish, hashing while copying, and the comparison whose failure names both values.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Sum(pub [u8; 32]);

impl Sha256Sum {
    /// 64 hex digits, either case.
    pub fn parse(hex: &str) -> Result<Sha256Sum> {
        let bad = || Error::msg(format!("sha256 {hex:?}"), "want 64 hex digits");
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16).ok_or_else(bad);
            out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(Sha256Sum(out))
    }

    /// The digest in a `sha256sum`-style file: `HEX  NAME` lines (or a lone `HEX`). With
    /// several lines, the one for `file` is taken.
    pub fn from_sum_file(text: &str, file: &str) -> Result<Sha256Sum> {
        let mut lone = None;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(hex) = words.next() else { continue };
            match words.next() {
                // `sha256sum -b` marks binary mode with a leading '*'.
                Some(name) if name.trim_start_matches('*') == file => return Sha256Sum::parse(hex),
                Some(_) => {}
                None => lone = Some(hex),
            }
        }
        match lone {
            Some(hex) => Sha256Sum::parse(hex),
            None => Err(Error::msg(
                format!("checksum file for {file}"),
                "no sha256 for that file in it",
            )),
        }
    }

    /// Ok when `actual` is this digest; otherwise the error names both.
    pub fn verify(&self, actual: &Sha256Sum, what: &str) -> Result<()> {
        if self == actual {
            Ok(())
        } else {
            Err(Error::msg(
                format!("verify {what}"),
                format!("sha256 mismatch: expected {self}, got {actual}"),
            ))
        }
    }
}

impl fmt::Display for Sha256Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Sum({self})")
    }
}

/// A running SHA-256 and byte count.
#[derive(Default)]
pub struct Hasher {
    h: Sha256,
    bytes: u64,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.h.update(data);
        self.bytes += data.len() as u64;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> Sha256Sum {
        Sha256Sum(self.h.finalize().into())
    }
}

/// SHA-256 of everything `r` yields.
pub fn hash_reader(r: &mut impl std::io::Read) -> std::io::Result<(Sha256Sum, u64)> {
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let bytes = h.bytes();
    Ok((h.finish(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_the_standard_vectors() {
        let mut h = Hasher::default();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.bytes(), 3);
        assert_eq!(h.finish().to_string(), ABC);
        let (empty, n) = hash_reader(&mut &b""[..]).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            empty.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_hex_of_either_case_and_refuses_the_rest() {
        let upper = ABC.to_uppercase();
        assert_eq!(Sha256Sum::parse(&upper).unwrap().to_string(), ABC);
        assert!(Sha256Sum::parse("abc").is_err());
        let bad = format!("{}zz", &ABC[..62]);
        assert_eq!(
            Sha256Sum::parse(&bad).unwrap_err().to_string(),
            format!("sha256 \"{bad}\": want 64 hex digits")
        );
    }

    #[test]
    fn reads_sha256sum_files() {
        let f = "alpine-minirootfs-3.21.3-x86_64.tar.gz";
        let one = format!("{ABC}  {f}\n");
        assert_eq!(Sha256Sum::from_sum_file(&one, f).unwrap().to_string(), ABC);
        let zeros = "0".repeat(64);
        let several = format!("{zeros}  other.tar.gz\n{ABC} *{f}\n");
        assert_eq!(
            Sha256Sum::from_sum_file(&several, f).unwrap().to_string(),
            ABC
        );
        assert_eq!(
            Sha256Sum::from_sum_file(&format!("{ABC}\n"), f)
                .unwrap()
                .to_string(),
            ABC
        );
        assert!(Sha256Sum::from_sum_file(&format!("{zeros}  other\n"), f).is_err());
        assert!(Sha256Sum::from_sum_file("", f).is_err());
    }

    #[test]
    fn a_mismatch_names_expected_and_actual() {
        let want = Sha256Sum::parse(ABC).unwrap();
        let got = Sha256Sum([0; 32]);
        assert!(want.verify(&want, "x").is_ok());
        let e = want.verify(&got, "alpine.tar.gz").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "verify alpine.tar.gz: sha256 mismatch: expected {ABC}, got {}",
                "0".repeat(64)
            )
        );
    }
}
