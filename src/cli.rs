//! A small command-line parser shared by the applets: long options (`--memory 64M`,
//! `--memory=64M`), short options (`-e K=V`, `-eK=V`), positionals, and `--` to end options.
//! It is deliberately tiny: box starts fast, and every applet's options fit this shape.

use crate::error::{Error, Result};
use std::collections::VecDeque;

#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// An option as written (`--memory`, `-e`); its value, if any, comes from [`Parser::value`].
    Opt(String),
    /// A positional argument.
    Pos(String),
    /// `--`: everything after it is positional and comes from [`Parser::rest`].
    DashDash,
}

pub struct Parser {
    args: VecDeque<String>,
    inline: Option<String>,
}

impl Parser {
    pub fn new(args: impl IntoIterator<Item = String>) -> Parser {
        Parser {
            args: args.into_iter().collect(),
            inline: None,
        }
    }

    /// The next argument. An inline value left unread by the previous option is an error.
    pub fn next_arg(&mut self) -> Result<Option<Arg>> {
        if let Some(v) = self.inline.take() {
            return Err(Error::msg(
                format!("value {v:?}"),
                "given to an option that takes none",
            ));
        }
        let Some(a) = self.args.pop_front() else {
            return Ok(None);
        };
        if a == "--" {
            return Ok(Some(Arg::DashDash));
        }
        if let Some(long) = a.strip_prefix("--") {
            if let Some((name, value)) = long.split_once('=') {
                self.inline = Some(value.to_string());
                return Ok(Some(Arg::Opt(format!("--{name}"))));
            }
            return Ok(Some(Arg::Opt(a)));
        }
        if a.len() > 1 && a.starts_with('-') {
            let mut chars = a.chars();
            chars.next();
            let flag = chars.next().unwrap_or('-');
            let rest: String = chars.collect();
            if !rest.is_empty() {
                self.inline = Some(rest);
            }
            return Ok(Some(Arg::Opt(format!("-{flag}"))));
        }
        Ok(Some(Arg::Pos(a)))
    }

    /// The value of option `opt`: inline (`--x=v`, `-xv`) or the next argument.
    pub fn value(&mut self, opt: &str) -> Result<String> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        self.args
            .pop_front()
            .ok_or_else(|| Error::msg(format!("option {opt}"), "needs a value"))
    }

    /// Everything not parsed yet, verbatim.
    pub fn rest(&mut self) -> Vec<String> {
        self.args.drain(..).collect()
    }
}

/// The error for an option an applet does not know.
pub fn unknown(opt: &str) -> Error {
    Error::msg(format!("unknown option {opt}"), "see --help")
}

/// A duration in seconds as given to option `opt`: `5`, `0.5`, `2.25`.
pub fn seconds(opt: &str, v: &str) -> Result<std::time::Duration> {
    let what = || format!("{opt} {v}");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(Error::msg(
            what(),
            "not a number of seconds (like 5 or 0.5)",
        ));
    }
    let secs: f64 = v
        .parse()
        .map_err(|_| Error::msg(what(), "not a number of seconds (like 5 or 0.5)"))?;
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| Error::msg(what(), "too long"))
}

/// True when `--help` or `-h` appears before any `--`.
pub fn wants_help(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(a: &[&str]) -> Parser {
        Parser::new(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn long_short_inline_and_positionals() {
        let mut p = parser(&[
            "r",
            "--memory=64M",
            "-e",
            "A=1",
            "-eB=2",
            "--cpus",
            "0.5",
            "n",
        ]);
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Pos("r".into())));
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Opt("--memory".into())));
        assert_eq!(p.value("--memory").unwrap(), "64M");
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Opt("-e".into())));
        assert_eq!(p.value("-e").unwrap(), "A=1");
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Opt("-e".into())));
        assert_eq!(p.value("-e").unwrap(), "B=2");
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Opt("--cpus".into())));
        assert_eq!(p.value("--cpus").unwrap(), "0.5");
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Pos("n".into())));
        assert_eq!(p.next_arg().unwrap(), None);
    }

    #[test]
    fn dashdash_leaves_the_rest_verbatim() {
        let mut p = parser(&["--", "ls", "-l", "--", "x"]);
        assert_eq!(p.next_arg().unwrap(), Some(Arg::DashDash));
        assert_eq!(p.rest(), vec!["ls", "-l", "--", "x"]);
    }

    #[test]
    fn missing_and_unwanted_values_are_errors() {
        let mut p = parser(&["--memory"]);
        p.next_arg().unwrap();
        assert_eq!(
            p.value("--memory").unwrap_err().to_string(),
            "option --memory: needs a value"
        );
        let mut p = parser(&["--force=yes", "x"]);
        p.next_arg().unwrap();
        assert!(p.next_arg().is_err());
    }

    #[test]
    fn seconds_are_plain_decimals() {
        use std::time::Duration;
        assert_eq!(seconds("--hold", "5").unwrap(), Duration::from_secs(5));
        assert_eq!(
            seconds("--hold", "0.5").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(seconds("--hold", "0").unwrap(), Duration::ZERO);
        for bad in ["", "-1", "soon", "1e3", "inf", "NaN", "1.2.3", "."] {
            assert_eq!(
                seconds("--hold", bad).unwrap_err().to_string(),
                format!("--hold {bad}: not a number of seconds (like 5 or 0.5)")
            );
        }
    }

    #[test]
    fn help_is_seen_only_before_dashdash() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_help(&v(&["r", "--help"])));
        assert!(wants_help(&v(&["-h"])));
        assert!(!wants_help(&v(&["r", "n", "--", "ls", "--help"])));
    }
}
