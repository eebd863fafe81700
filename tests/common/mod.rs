//! Shared helpers for the integration tests: the built binary, a busybox rootfs, root checks,
//! a watchdog so no test can hang CI, and leftover checks.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `box` binary cargo built for this test run.
pub fn box_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_box"))
}

/// True when the test may go on. Not root: print why and skip, unless `BOX_REQUIRE_ROOT=1`
/// (CI), where skipping would hide a failure, so panic instead.
pub fn require_root() -> bool {
    // SAFETY-free check: /proc/self/status is enough and keeps tests free of unsafe.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid_zero = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if euid_zero {
        return true;
    }
    if std::env::var_os("BOX_REQUIRE_ROOT").is_some_and(|v| v == "1") {
        panic!("this test needs root and BOX_REQUIRE_ROOT=1 forbids skipping it");
    }
    eprintln!("SKIPPED: this test needs root (set BOX_REQUIRE_ROOT=1 to make that a failure)");
    false
}

/// A container name unique to this test process and tag (a valid hostname label).
pub fn name(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

/// Where the host's busybox-static lives (Debian: /usr/bin/busybox, or /bin/busybox).
pub fn host_busybox() -> PathBuf {
    for p in ["/usr/bin/busybox", "/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox not found: install busybox-static (tests/setup.sh does)");
}

/// A rootfs made of the host's static busybox plus this build of box with its applet links
/// in /usr/local/bin. Built once per test process, in its own directory, so concurrent test
/// binaries never race on it.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        build_rootfs(&dir);
        dir
    })
}

/// Run a binary this process has just written. Another test thread that forks while the copy
/// is open for writing holds that descriptor until its own exec, and meanwhile executing the
/// new file fails with ETXTBSY ("text file busy"): wait that out.
fn output_of_fresh_binary(cmd: &mut Command) -> Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other.expect("run a binary of the test rootfs"),
        }
    }
    panic!("{cmd:?}: text file busy for 2 s");
}

pub fn build_rootfs(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "root",
        "tmp",
        "proc",
        "sys",
        "dev",
        "usr/local/bin",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(host_busybox(), dir.join("bin/busybox")).unwrap();
    let list = output_of_fresh_binary(Command::new(dir.join("bin/busybox")).arg("--list"));
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\n").unwrap();
    std::fs::copy(box_bin(), dir.join("usr/local/bin/box")).unwrap();
    let out = output_of_fresh_binary(
        Command::new(dir.join("usr/local/bin/box"))
            .arg("--install")
            .arg(dir.join("usr/local/bin")),
    );
    assert!(
        out.status.success(),
        "box --install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run box with `args`, stdin from /dev/null, killed if it runs past `limit`.
pub fn run_box(args: &[&str], limit: Duration) -> Output {
    run_with_stdin(args, None, limit)
}

/// Run box with `args` and `input` piped to its stdin.
pub fn run_with_stdin(args: &[&str], input: Option<&str>, limit: Duration) -> Output {
    run_box_with(args, input, &[], limit)
}

/// Run box with `args`, `input` (if any) on its stdin and `env` added to its environment,
/// killed if it runs past `limit`.
pub fn run_box_with(
    args: &[&str],
    input: Option<&str>,
    env: &[(&str, &str)],
    limit: Duration,
) -> Output {
    let mut cmd = Command::new(box_bin());
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn box");
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let pid = child.id();
    let start = Instant::now();
    // Watchdog: a hung container must fail the test, not hang CI.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        while start.elapsed() < limit {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("wait for box");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        start.elapsed() < limit,
        "box {args:?} hung and was killed after {limit:?}"
    );
    out
}

/// `box container ROOTFS NAME -- sh -c SCRIPT`, returning (status, stdout, stderr).
pub fn sh(name: &str, script: &str) -> (i32, String, String) {
    let root = rootfs().to_str().unwrap().to_string();
    let out = run_box(
        &["container", &root, name, "--", "/bin/sh", "-c", script],
        Duration::from_secs(60),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Assert that nothing of container `name` is left on the host: no state directory, no
/// mount under the test rootfs, no process still running in a rootfs of ours.
pub fn assert_clean(name: &str) {
    assert!(
        !Path::new("/run/box").join(name).exists(),
        "state /run/box/{name} left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = rootfs().to_str().unwrap().to_string();
    let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(
        leaked.is_empty(),
        "host mounts left under the rootfs: {leaked:?}"
    );
}

/// Host pids of processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(ent.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Poll `f` until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// `box fetch-rootfs busybox --dest DIR --force`: the host's busybox plus this build of box,
/// built by box itself (the way users make their offline rootfs). Panics with box's message on
/// failure.
pub fn fetch_busybox_rootfs(dir: &Path) {
    let out = Command::new(box_bin())
        .args(["fetch-rootfs", "busybox", "--force", "--dest"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("spawn box fetch-rootfs");
    assert!(
        out.status.success(),
        "box fetch-rootfs busybox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
