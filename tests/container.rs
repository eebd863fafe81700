//! `box container`: namespaces, rootfs, hostname, /proc, PID 1, exit codes, signals, errors,
//! cleanup. Runs as root against a busybox rootfs; see tests/common.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Start `box container ROOTFS NAME -- sh -c SCRIPT` in the background, stdout piped.
fn spawn(name: &str, script: &str) -> Child {
    let root = rootfs().to_str().unwrap().to_string();
    Command::new(box_bin())
        .args(["container", &root, name, "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Read stdout lines until one equals `want`; panics at EOF.
fn wait_line(child: &mut Child, want: &str) -> BufReader<std::process::ChildStdout> {
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("container ended before printing {want:?}; stderr: {err}");
        }
        if line.trim_end() == want {
            return r;
        }
    }
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn finish(mut child: Child) -> i32 {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("container did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hostname_is_the_name_and_the_host_keeps_its_own() {
    if !require_root() {
        return;
    }
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let n = name("host");
    let (code, out, err) = sh(&n, "hostname");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), n);
    let root = rootfs().to_str().unwrap().to_string();
    let out = run_box(
        &[
            "container",
            &root,
            &n,
            "--hostname",
            "web",
            "--",
            "hostname",
        ],
        LIMIT,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
    assert_clean(&n);
}

#[test]
fn root_is_the_rootfs_and_the_shell_starts_there() {
    if !require_root() {
        return;
    }
    let n = name("ls");
    let (code, out, err) = sh(&n, "pwd; ls /");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("/"));
    let mut inside: Vec<&str> = lines.collect();
    inside.sort();
    let mut expected: Vec<String> = std::fs::read_dir(rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(inside, expected);
    // Nothing of the host is reachable: the test's own directory does not exist inside.
    let here = std::env::current_dir().unwrap();
    let (code, _, _) = sh(&n, &format!("test -e {}", here.display()));
    assert_eq!(code, 1);
    assert_clean(&n);
}

#[test]
fn ps_shows_only_the_container_with_init_as_pid_1() {
    if !require_root() {
        return;
    }
    let n = name("ps");
    let (code, out, err) = sh(&n, "ps -o pid,comm");
    assert_eq!(code, 0, "{err}");
    let rows: Vec<(u32, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    // init, the shell, ps: a handful of low pids, not the host's hundreds.
    assert!(rows.len() <= 4, "{out}");
    assert_eq!(rows[0], (1, "box-init".to_string()), "{out}");
    assert!(rows.iter().all(|(pid, _)| *pid < 10), "{out}");
    assert_clean(&n);
}

#[test]
fn every_namespace_is_new_and_lo_is_up() {
    if !require_root() {
        return;
    }
    let n = name("ns");
    let root = rootfs().to_str().unwrap().to_string();
    let script = "for ns in mnt pid uts net ipc; do readlink /proc/self/ns/$ns; done; \
                  ls /sys/class/net; cat /sys/class/net/lo/flags";
    let out = run_box(
        &[
            "container",
            &root,
            &n,
            "--net",
            "none",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    for (i, ns) in ["mnt", "pid", "uts", "net", "ipc"].iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert!(lines[i].starts_with(&format!("{ns}:[")), "{out}");
        assert_ne!(
            lines[i],
            host.to_str().unwrap(),
            "{ns} namespace is the host's"
        );
    }
    // With --net none: only lo, and it is up (IFF_UP | IFF_LOOPBACK = 0x9).
    assert_eq!(&lines[5..], &["lo", "0x9"], "{out}");
    assert_clean(&n);
}

#[test]
fn exit_status_is_the_payloads() {
    if !require_root() {
        return;
    }
    let n = name("exit");
    assert_eq!(sh(&n, "exit 0").0, 0);
    assert_eq!(sh(&n, "exit 3").0, 3);
    assert_eq!(sh(&n, "kill -9 $$").0, 128 + 9);
    assert_eq!(sh(&n, "kill -TERM $$").0, 128 + 15);
    assert_clean(&n);
}

#[test]
fn signals_sent_to_box_reach_the_payload() {
    if !require_root() {
        return;
    }
    let n = name("sig");
    let mut child = spawn(
        &n,
        "trap 'echo got USR1' USR1; trap 'echo got TERM; exit 7' TERM; echo ready; \
         while :; do sleep 0.05; done",
    );
    let mut out = wait_line(&mut child, "ready");
    kill(child.id(), "USR1");
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "got USR1");
    kill(child.id(), "TERM");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "got TERM");
    assert_eq!(finish(child), 7);
    assert_clean(&n);
}

#[test]
fn a_payload_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    if !require_root() {
        return;
    }
    let n = name("stop");
    let root = rootfs().to_str().unwrap().to_string();
    let mut child = Command::new(box_bin())
        .args([
            "container",
            &root,
            &n,
            "--stop-timeout",
            "1",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg("trap '' TERM; echo ready; while :; do sleep 0.05; done")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _out = wait_line(&mut child, "ready");
    kill(child.id(), "TERM");
    assert_eq!(finish(child), 128 + 9);
    assert_clean(&n);
}

#[test]
fn no_host_mount_is_visible_inside() {
    if !require_root() {
        return;
    }
    let n = name("mnt");
    let (code, out, err) = sh(&n, "cat /proc/self/mountinfo");
    assert_eq!(code, 0, "{err}");
    let allowed_prefixes = ["/proc", "/sys", "/dev"];
    for line in out.lines() {
        let point = line.split_whitespace().nth(4).unwrap();
        assert!(
            point == "/"
                || allowed_prefixes
                    .iter()
                    .any(|p| point == *p || point.starts_with(&format!("{p}/"))),
            "unexpected mount point {point} in:\n{out}"
        );
    }
    let points: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    for want in ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"] {
        assert!(points.contains(&want), "{want} missing:\n{out}");
    }
    assert_clean(&n);
}

#[test]
fn dev_proc_and_sys_are_set_up_and_hardened() {
    if !require_root() {
        return;
    }
    let n = name("dev");
    let script = "\
        for d in null zero full random urandom tty; do test -c /dev/$d || echo missing $d; done; \
        test -c /dev/pts/ptmx || echo missing ptmx; test -L /dev/ptmx || echo missing ptmx link; \
        echo hi > /dev/null || echo null broken; \
        head -c 4 /dev/zero | wc -c; \
        touch /sys/x 2>/dev/null && echo sys writable; \
        echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys writable; \
        test -s /proc/keys && echo keys visible; \
        grep CapBnd /proc/self/status; grep NoNewPrivs /proc/self/status; \
        echo done";
    let (code, out, err) = sh(&n, script);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("missing"), "{out}");
    assert!(!out.contains("broken"), "{out}");
    assert!(!out.contains("writable"), "{out}");
    assert!(!out.contains("keys visible"), "{out}");
    assert!(out.contains("\n4\n") || out.starts_with("4\n"), "{out}");
    // Docker's default set: 0x00000000a80425fb.
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert_clean(&n);
}

#[test]
fn environment_and_workdir() {
    if !require_root() {
        return;
    }
    let n = name("env");
    let root = rootfs().to_str().unwrap().to_string();
    let out = run_box(
        &[
            "container",
            &root,
            &n,
            "-e",
            "GREETING=hello there",
            "-w",
            "/tmp",
            "--",
            "/bin/sh",
            "-c",
            "echo \"$GREETING\"; pwd; echo $HOME; echo $PATH",
        ],
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![
            "hello there",
            "/tmp",
            "/root",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    );
    assert_clean(&n);
}

#[test]
fn a_shell_reads_commands_from_a_pipe() {
    if !require_root() {
        return;
    }
    let n = name("pipe");
    let root = rootfs().to_str().unwrap().to_string();
    let out = run_with_stdin(
        &["container", &root, &n],
        Some("hostname\necho from-pipe\nexit 5\n"),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![n.as_str(), "from-pipe"]
    );
    assert_clean(&n);
}

#[test]
fn a_live_name_is_refused_and_the_first_container_is_untouched() {
    if !require_root() {
        return;
    }
    let n = name("dup");
    let mut first = spawn(&n, "echo ready; while :; do sleep 0.05; done");
    let mut out = wait_line(&mut first, "ready");
    let (code, _, err) = sh(&n, "true");
    assert_eq!(code, 125);
    assert!(
        err.contains(&format!(
            "box: container {n}: name {n}: a container of that name is already running"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(std::path::Path::new("/run/box").join(&n).exists());
    // The first one still works: end it with a signal and collect its status.
    kill(first.id(), "TERM");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(finish(first), 128 + 15);
    assert_clean(&n);
}

#[test]
fn two_containers_do_not_see_each_other() {
    if !require_root() {
        return;
    }
    let (a, b) = (name("iso-a"), name("iso-b"));
    let marker_a = "sleep 3141";
    let mut ca = spawn(&a, &format!("echo ready; {marker_a}"));
    let _keep = wait_line(&mut ca, "ready");
    let (code, out, err) = sh(&b, "ps -o args");
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(marker_a),
        "container b sees a's process:\n{out}"
    );
    assert!(
        !pids_with(marker_a).is_empty(),
        "a's process should be visible from the host"
    );
    kill(ca.id(), "TERM");
    finish(ca);
    assert!(wait_until(LIMIT, || pids_with(marker_a).is_empty()));
    assert_clean(&a);
    assert_clean(&b);
}

#[test]
fn bad_input_gives_one_line_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let root = rootfs().to_str().unwrap().to_string();
    let n = name("bad");
    let file = std::env::temp_dir().join(format!("box-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap().to_string();
    let long = "x".repeat(64);
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["container", "./images/nope", &n],
            125,
            format!("box: container {n}: rootfs ./images/nope: no such directory"),
        ),
        (
            vec!["container", &file, &n],
            125,
            format!("box: container {n}: rootfs {file}: not a directory"),
        ),
        (
            vec!["container", &root, &n, "--", "nope"],
            127,
            format!("box: container {n}: command nope: not found in rootfs"),
        ),
        (
            vec!["container", &root, &n, "--", "/etc/passwd"],
            126,
            format!("box: container {n}: command /etc/passwd: permission denied"),
        ),
        (
            vec!["container", &root, "bad_name"],
            125,
            "box: container: name \"bad_name\": may hold only letters, digits and '-'".into(),
        ),
        (
            vec!["container", &root, &long],
            125,
            "longer than 63 bytes".into(),
        ),
        (
            vec!["container", &root, &n, "--frobnicate"],
            125,
            "box: container: unknown option --frobnicate".into(),
        ),
        (
            vec!["container", &root],
            125,
            "box: container: missing ROOTFS or NAME".into(),
        ),
        (
            vec![
                "container",
                &root,
                &n,
                "-w",
                "/no/such/dir",
                "--",
                "/bin/true",
            ],
            125,
            format!("box: container {n}: chdir to workdir /no/such/dir: no such file or directory"),
        ),
        (
            vec!["frobnicate"],
            127,
            "box: frobnicate: no such applet".into(),
        ),
    ];
    for (args, code, msg) in cases {
        let out = run_box(&args, LIMIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(&msg), "{args:?}: expected {msg:?} in {err:?}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: one line expected: {err:?}"
        );
        assert_clean(&n);
    }
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn non_root_is_refused_clearly() {
    if !require_root() {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let root = rootfs().to_str().unwrap().to_string();
    let n = name("user");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(box_bin())
        .args(["container", &root, &n])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.starts_with(&format!("box: container {n}: needs root")),
        "{err}"
    );
    assert_clean(&n);
}

#[test]
fn killing_box_with_sigterm_cleans_up() {
    if !require_root() {
        return;
    }
    let n = name("term");
    let marker = "sleep 2718";
    let mut child = spawn(&n, &format!("echo ready; {marker}"));
    let _out = wait_line(&mut child, "ready");
    assert!(!pids_with(marker).is_empty());
    kill(child.id(), "TERM");
    assert_eq!(finish(child), 128 + 15);
    assert!(
        wait_until(LIMIT, || pids_with(marker).is_empty()),
        "container processes outlived box"
    );
    assert_clean(&n);
}

#[test]
fn killing_box_with_sigkill_leaves_no_orphans_and_the_next_command_cleans_up() {
    if !require_root() {
        return;
    }
    let n = name("kill9");
    let marker = "sleep 1618";
    let mut child = spawn(&n, &format!("echo ready; {marker}"));
    let _out = wait_line(&mut child, "ready");
    kill(child.id(), "KILL");
    let _ = child.wait();
    assert!(
        wait_until(LIMIT, || pids_with(marker).is_empty()),
        "orphans after SIGKILL of box"
    );
    // The state directory is left (nobody could remove it), but it is stale: the next box
    // command reclaims it.
    let state = std::path::Path::new("/run/box").join(&n);
    assert!(
        state.exists(),
        "expected stale state to exist before the next command"
    );
    let (code, _, err) = sh(&name("kill9-next"), "true");
    assert_eq!(code, 0, "{err}");
    assert!(
        !state.exists(),
        "stale state not reclaimed by the next command"
    );
    assert_clean(&n);
}

/// A minimal rootfs of our own for failure cases: busybox as /bin/sh, plus `tweak`.
fn odd_rootfs(tag: &str, tweak: impl FnOnce(&std::path::Path)) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("odd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(host_busybox(), dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    tweak(&dir);
    dir
}

#[test]
fn a_failing_setup_step_inside_is_reported_by_name() {
    if !require_root() {
        return;
    }
    // /proc is a file in this rootfs, so mounting proc there fails inside the child.
    let dir = odd_rootfs("proc", |d| {
        std::fs::write(d.join("proc"), "not a dir").unwrap()
    });
    let n = name("step");
    let out = run_box(
        &[
            "container",
            dir.to_str().unwrap(),
            &n,
            "--",
            "/bin/sh",
            "-c",
            "true",
        ],
        LIMIT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(
        err,
        format!("box: container {n}: mount proc on /proc: not a directory\n")
    );
    assert!(!std::path::Path::new("/run/box").join(&n).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()), "mount left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exec_failure_inside_is_127_with_the_reason() {
    if !require_root() {
        return;
    }
    // Executable, so the host-side check passes, but its interpreter does not exist.
    let dir = odd_rootfs("exec", |d| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(d.join("bin/script"), "#!/no/such/interpreter\n").unwrap();
        std::fs::set_permissions(d.join("bin/script"), PermissionsExt::from_mode(0o755)).unwrap();
    });
    let n = name("exec");
    let out = run_box(
        &["container", dir.to_str().unwrap(), &n, "--", "/bin/script"],
        LIMIT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert_eq!(
        err,
        format!("box: container {n}: exec /bin/script: no such file or directory\n")
    );
    assert!(!std::path::Path::new("/run/box").join(&n).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
