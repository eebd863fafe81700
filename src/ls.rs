//! `box ls`: the running containers, as a table or as JSON.
//!
//! Listing is also a sweep: the leftovers of containers whose box process died are reclaimed
//! (their veth deleted, their address and state released), not listed.

use crate::container;
use crate::error::Result;
use crate::net::ipam;
use crate::state::Record;
use std::path::Path;

pub const LS_USAGE: &str = "\
usage: box ls [--json]

List the running containers, one per line:
  NAME      the container's name
  INIT_PID  the host pid of the container's init (its PID 1; `nsenter -t PID` enters it)
  IP        its address on the box0 bridge, - with --net none
  LIMITS    its resource limits, - when none
  UPTIME    time since it started
--json prints a JSON array of objects with these facts and a few more (box_pid, veth,
started in seconds since the epoch, command). Containers whose box process died are
cleaned up, not listed.";

/// One running container, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub init_pid: i32,
    pub box_pid: i32,
    pub ip: Option<String>,
    pub veth: Option<String>,
    pub limits: Option<String>,
    pub started: u64,
    pub uptime: u64,
    pub command: String,
}

impl Row {
    pub fn from_record(r: &Record, now: u64) -> Row {
        Row {
            name: r.name.clone(),
            init_pid: r.init_pid,
            box_pid: r.box_pid,
            ip: ipam::address_of(r).map(|ip| ip.to_string()),
            veth: r.get("veth").map(str::to_string),
            limits: r
                .get("limits")
                .filter(|l| !l.is_empty())
                .map(str::to_string),
            started: r.started,
            uptime: now.saturating_sub(r.started),
            command: r.command.clone(),
        }
    }
}

/// The running containers under `run_root`, by name.
pub fn rows(run_root: &Path) -> Result<Vec<Row>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows: Vec<Row> = container::running(run_root)?
        .iter()
        .map(|r| Row::from_record(r, now))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The table: a header, then one line per container, columns padded to line up.
pub fn table(rows: &[Row]) -> String {
    let header = ["NAME", "INIT_PID", "IP", "LIMITS", "UPTIME"].map(str::to_string);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut lines: Vec<[String; 5]> = vec![header];
    for r in rows {
        lines.push([
            r.name.clone(),
            if r.init_pid > 0 {
                r.init_pid.to_string()
            } else {
                "-".into()
            },
            dash(&r.ip),
            dash(&r.limits),
            uptime(r.uptime),
        ]);
    }
    let mut widths = [0usize; 5];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i + 1 == l.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON array, one object per container.
pub fn json(rows: &[Row]) -> String {
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_str);
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"name\":{},\"init_pid\":{},\"box_pid\":{},\"ip\":{},\"veth\":{},\
                 \"limits\":{},\"started\":{},\"uptime_seconds\":{},\"command\":{}}}",
                json_str(&r.name),
                r.init_pid,
                r.box_pid,
                opt(&r.ip),
                opt(&r.veth),
                opt(&r.limits),
                r.started,
                r.uptime,
                json_str(&r.command)
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `42s`, `3m07s`, `2h05m`, `3d04h`.
pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if secs < 60 {
        format!("{s}s")
    } else if secs < 3600 {
        format!("{m}m{s:02}s")
    } else if secs < 86400 {
        format!("{}h{m:02}m", secs / 3600)
    } else {
        format!("{d}d{h:02}h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, ip: Option<&str>, limits: Option<&str>) -> Row {
        Row {
            name: name.into(),
            init_pid: 4242,
            box_pid: 4241,
            ip: ip.map(str::to_string),
            veth: ip.map(|_| format!("bx{name}")),
            limits: limits.map(str::to_string),
            started: 1_700_000_000,
            uptime: 75,
            command: "echo-server --port 7000".into(),
        }
    }

    #[test]
    fn rows_come_from_records() {
        let mut rec = Record {
            name: "web".into(),
            box_pid: 10,
            init_pid: 11,
            started: 100,
            command: "sh".into(),
            ..Default::default()
        };
        rec.set("ip", "10.88.0.2/16");
        rec.set("veth", "bxweb1234");
        let r = Row::from_record(&rec, 130);
        assert_eq!(r.ip.as_deref(), Some("10.88.0.2"));
        assert_eq!(r.veth.as_deref(), Some("bxweb1234"));
        assert_eq!(r.limits, None);
        assert_eq!(r.uptime, 30);
        rec.set("limits", "memory=64M");
        assert_eq!(
            Row::from_record(&rec, 130).limits.as_deref(),
            Some("memory=64M")
        );
    }

    #[test]
    fn table_lines_up_with_dashes_for_missing_facts() {
        let t = table(&[
            row("web", Some("10.88.0.2"), Some("memory=64M cpus=0.5")),
            row("quiet-one", None, None),
        ]);
        assert_eq!(
            t,
            "NAME       INIT_PID  IP         LIMITS               UPTIME\n\
             web        4242      10.88.0.2  memory=64M cpus=0.5  1m15s\n\
             quiet-one  4242      -          -                    1m15s\n"
        );
        assert_eq!(table(&[]), "NAME  INIT_PID  IP  LIMITS  UPTIME\n");
    }

    #[test]
    fn json_is_an_array_with_escaped_strings_and_nulls() {
        let mut r = row("web", Some("10.88.0.2"), None);
        r.command = "sh -c \"echo \\ hi\"\t\u{1}".into();
        assert_eq!(
            json(&[r]),
            "[{\"name\":\"web\",\"init_pid\":4242,\"box_pid\":4241,\"ip\":\"10.88.0.2\",\
             \"veth\":\"bxweb\",\"limits\":null,\"started\":1700000000,\"uptime_seconds\":75,\
             \"command\":\"sh -c \\\"echo \\\\ hi\\\"\\t\\u0001\"}]\n"
        );
        assert_eq!(json(&[]), "[]\n");
    }

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(60), "1m00s");
        assert_eq!(uptime(3599), "59m59s");
        assert_eq!(uptime(3600 * 2 + 5 * 60), "2h05m");
        assert_eq!(uptime(86400 * 3 + 3600 * 4 + 1), "3d04h");
    }
}
