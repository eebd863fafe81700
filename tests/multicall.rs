//! The multicall front end: `box APPLET`, links named after applets, --list, --install, --help.
//! No root needed.

mod common;

use common::*;
use std::process::Command;

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_help_and_version() {
    let (code, out, _) = run(Command::new(box_bin()).arg("--list"));
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "container"), "{out}");
    let (code, out, _) = run(Command::new(box_bin()).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("usage: box APPLET"), "{out}");
    assert!(out.contains("container"), "{out}");
    let (code, out, _) = run(Command::new(box_bin()).args(["container", "--help"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: box container ROOTFS NAME"), "{out}");
    let (code, out, _) = run(Command::new(box_bin()).arg("--version"));
    assert_eq!(code, 0);
    assert!(out.starts_with("box "), "{out}");
}

#[test]
fn unknown_applets_and_options_fail_in_one_line() {
    let (code, _, err) = run(Command::new(box_bin()).arg("frobnicate"));
    assert_eq!(code, 127);
    assert_eq!(
        err,
        "box: frobnicate: no such applet (box --list shows them)\n"
    );
    let (code, _, err) = run(Command::new(box_bin()).arg("--frobnicate"));
    assert_eq!(code, 125);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = run(Command::new(box_bin()).arg("--install"));
    assert_eq!(code, 125);
    assert!(err.contains("--install needs a directory"), "{err}");
}

#[test]
fn install_makes_links_that_dispatch_by_name() {
    let dir = std::env::temp_dir().join(format!("box-multicall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out, err) = run(Command::new(box_bin()).arg("--install").arg(&dir));
    assert_eq!(code, 0, "{err}");
    let link = dir.join("container");
    assert!(out.lines().any(|l| l == link.to_str().unwrap()), "{out}");
    let (_, list, _) = run(Command::new(box_bin()).arg("--list"));
    assert_eq!(
        out.lines().count(),
        list.lines().filter(|l| *l != "ls").count(),
        "{out}"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), box_bin());
    // Called through the link, the applet runs with no `box` word in front.
    let (code, out, _) = run(Command::new(&link).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: box container"), "{out}");
    // Installing again replaces the links instead of failing.
    let (code, _, err) = run(Command::new(box_bin()).arg("--install").arg(&dir));
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
