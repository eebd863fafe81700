//! `box fetch-rootfs`: the alpine source against a mirror served from this test on 127.0.0.1,
//! download failures, malicious tarballs, file and URL sources, the busybox source, --force,
//! Ctrl-C and SIGTERM. Every failure must leave neither DEST nor the staging directory.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
const VERSION: &str = "3.21.3";

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server: one request per connection, replies chosen per path.

#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// Announce `claimed` bytes, send `body`, close cleanly.
    Truncated {
        body: Vec<u8>,
        claimed: usize,
    },
    /// Chunked; send `body` as one chunk, then reset the connection mid-body.
    HangUp(Vec<u8>),
    /// Announce `total` bytes and trickle them until the client leaves (at most 60 s).
    Slow {
        total: usize,
    },
}

struct Server {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, l, s) = (routes.clone(), log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: stops when the test drops the server, or after LIMIT at the latest.
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) && start.elapsed() < LIMIT {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (r, l, s) = (r.clone(), l.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, &r, &l, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            addr,
            routes,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    routes: &Mutex<HashMap<String, Reply>>,
    log: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(path.clone());
    let reply = routes.lock().unwrap().get(&path).cloned();
    let head = |len: &str| format!("HTTP/1.1 200 OK\r\n{len}\r\nConnection: close\r\n\r\n");
    match reply {
        None => {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        }
        Some(Reply::Ok(body)) => {
            let _ = conn.write_all(head(&format!("Content-Length: {}", body.len())).as_bytes());
            let _ = conn.write_all(&body);
        }
        Some(Reply::Truncated { body, claimed }) => {
            let _ = conn.write_all(head(&format!("Content-Length: {claimed}")).as_bytes());
            let _ = conn.write_all(&body);
        }
        Some(Reply::HangUp(body)) => {
            let _ = conn.write_all(head("Transfer-Encoding: chunked").as_bytes());
            let _ = conn.write_all(format!("{:x}\r\n", body.len() * 4).as_bytes());
            let _ = conn.write_all(&body);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(100));
            reset(conn);
        }
        Some(Reply::Slow { total }) => {
            let _ = conn.write_all(head(&format!("Content-Length: {total}")).as_bytes());
            let start = Instant::now();
            let chunk = [0x1fu8; 4096];
            let mut sent = 0;
            while sent + chunk.len() < total
                && start.elapsed() < Duration::from_secs(60)
                && !stop.load(Ordering::Relaxed)
            {
                if conn.write_all(&chunk).is_err() {
                    return;
                }
                sent += chunk.len();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Close with a TCP reset (SO_LINGER 0), the way a crashed server or a middlebox hangs up.
fn reset(conn: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a live linger struct of the size passed.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tarballs, built here from the host's static busybox.

/// A tar builder that writes names raw, so malicious ones survive (the tar crate's own
/// setters refuse `..` and absolute names).
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn add(&mut self, name: &str, kind: tar::EntryType, mode: u32, link: &str, data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_739_487_959);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0
            .extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
    }
    fn dir(mut self, name: &str) -> Self {
        self.add(name, tar::EntryType::Directory, 0o755, "", b"");
        self
    }
    fn file(mut self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.add(name, tar::EntryType::Regular, mode, "", data);
        self
    }
    fn symlink(mut self, name: &str, target: &str) -> Self {
        self.add(name, tar::EntryType::Symlink, 0o777, target, b"");
        self
    }
    fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.add(name, tar::EntryType::Link, 0o644, target, b"");
        self
    }
    /// The archive with its end-of-archive blocks.
    fn finish(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Alpine-like minirootfs (`./` prefixes, `/bin/sh -> /bin/busybox` absolute like
/// Alpine's) made of the host's busybox, as a plain tar. No box in it: fetch-rootfs adds it.
fn minirootfs_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let busybox = std::fs::read(host_busybox()).unwrap();
        let mut t = Tar::default()
            .dir("./")
            .dir("./bin/")
            .file("./bin/busybox", 0o755, &busybox)
            .symlink("./bin/sh", "/bin/busybox")
            .symlink("./bin/ls", "/bin/busybox")
            .symlink("./bin/cat", "/bin/busybox")
            .dir("./etc/")
            .file(
                "./etc/alpine-release",
                0o644,
                format!("{VERSION}\n").as_bytes(),
            )
            .file("./etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
            .file("./etc/group", 0o644, b"root:x:0:root\ntty:x:5:\n");
        // Alpine ships /tmp sticky and world-writable.
        t.add("./tmp/", tar::EntryType::Directory, 0o1777, "", b"");
        t.finish()
    })
}

fn minirootfs_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| gzip(minirootfs_tar()))
}

fn arch() -> &'static str {
    std::env::consts::ARCH
}

fn tarball_name(version: &str) -> String {
    format!("alpine-minirootfs-{version}-{}.tar.gz", arch())
}

/// `latest-releases.yaml` as Alpine writes it, with a netboot entry before the minirootfs.
fn index_yaml(version: &str, branch: &str, size: usize, sha: &str) -> String {
    let a = arch();
    format!(
        "---\n\
         -\n  title: \"Netboot\"\n  desc: |\n    Kernel, initramfs and modloop for\n    netboot.\n\
         \x20 branch: {branch}\n  arch: {a}\n  version: {version}\n  flavor: alpine-netboot\n\
         \x20 file: alpine-netboot-{version}-{a}.tar.gz\n  size: 1\n  sha256: {zero}\n\
         -\n  title: \"Mini root filesystem\"\n  desc: |\n    Minimal root filesystem.\n\
         \x20   For use in containers\n    and minimal chroots.\n  profile: minirootfs\n\
         \x20 image_class: rootfs\n  branch: {branch}\n  arch: {a}\n  version: {version}\n\
         \x20 flavor: alpine-minirootfs\n  file: alpine-minirootfs-{version}-{a}.tar.gz\n\
         \x20 iso: alpine-minirootfs-{version}-{a}.tar.gz\n  date: 2025-02-13\n\
         \x20 time: 23:05:59\n  size: {size}\n  sha256: {sha}\n  sha512: 00\n",
        zero = "0".repeat(64)
    )
}

/// Serve the Alpine layout for `VERSION` under /alpine, in latest-stable and v3.21, with
/// `tarball` as the minirootfs and `index_sha` as the digest the index announces.
fn serve_alpine(server: &Server, tarball: Reply, index_sha: &str, size: usize) {
    for branch in ["latest-stable", "v3.21"] {
        let dir = format!("/alpine/{branch}/releases/{}", arch());
        server.route(
            &format!("{dir}/latest-releases.yaml"),
            Reply::Ok(index_yaml(VERSION, "v3.21", size, index_sha).into_bytes()),
        );
        let file = tarball_name(VERSION);
        server.route(&format!("{dir}/{file}"), tarball.clone());
        server.route(
            &format!("{dir}/{file}.sha256"),
            Reply::Ok(format!("{index_sha}  {file}\n").into_bytes()),
        );
    }
}

fn good_mirror(server: &Server) {
    let gz = minirootfs_gz();
    serve_alpine(server, Reply::Ok(gz.to_vec()), &sha256(gz), gz.len());
}

// ---------------------------------------------------------------------------------------------
// Running box and checking what it left.

/// A scratch directory for one test; DEST goes in its `images/`.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fetch-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("images")).unwrap();
        Scratch(d)
    }
    fn dest(&self, name: &str) -> PathBuf {
        self.0.join("images").join(name)
    }
    fn s(&self, name: &str) -> String {
        self.dest(name).to_str().unwrap().to_string()
    }
    /// What is in images/: DEST and any staging directory would show here.
    fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    fn assert_nothing_left(&self) {
        assert_eq!(
            self.images(),
            Vec::<String>::new(),
            "DEST or staging left behind"
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fetch_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(box_bin());
    cmd.arg("fetch-rootfs")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only loopback: no proxy may take the requests elsewhere, no mirror from the caller.
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "BOX_MIRROR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `box fetch-rootfs ARGS...` with `env` set, killed if it runs past LIMIT.
fn fetch_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = fetch_cmd(args);
    cmd.envs(env.iter().copied());
    let child = cmd.spawn().expect("spawn box");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    out
}

fn fetch(args: &[&str]) -> Output {
    fetch_env(args, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    let err = stderr(o);
    assert!(o.status.success(), "fetch-rootfs failed: {err}");
    err
}

/// Fails with exit status 125 and a message containing every one of `want`.
fn fails(o: &Output, want: &[&str]) -> String {
    let err = stderr(o);
    eprintln!("expected failure: {}", err.trim_end());
    assert_eq!(o.status.code(), Some(125), "stderr: {err}");
    for w in want {
        assert!(err.contains(w), "stderr {err:?} lacks {w:?}");
    }
    assert_eq!(err.lines().count(), 1, "one line of error: {err:?}");
    err
}

/// The self-install's work, seen from the host.
fn assert_box_installed(root: &Path) {
    let bin = root.join("usr/local/bin");
    let meta = std::fs::metadata(bin.join("box")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o755);
    assert_eq!(meta.len(), std::fs::metadata(box_bin()).unwrap().len());
    for l in ["echo-server", "echo-client", "memhog", "cpuburn"] {
        assert_eq!(
            std::fs::read_link(bin.join(l)).unwrap(),
            Path::new("box"),
            "{l}"
        );
    }
    assert!(root.join("etc/resolv.conf").exists());
    for d in ["proc", "sys", "dev", "root"] {
        assert!(root.join(d).is_dir(), "/{d}");
    }
    assert_eq!(
        std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
}

/// Run box inside a container on `root` and check the self-install from the inside.
fn assert_runs_in_a_container(root: &Path, tag: &str) {
    let n = name(tag);
    let r = root.to_str().unwrap();
    let out = run_box(
        &["container", r, &n, "--", "/usr/local/bin/box", "--help"],
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "box --help in the container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fetch-rootfs"));
    let script = "test -x /usr/local/bin/box || exit 2; \
                  for l in echo-server echo-client memhog cpuburn; do \
                  [ \"$(readlink /usr/local/bin/$l)\" = box ] || exit 3; done; \
                  box --list >/dev/null || exit 4; \
                  for a in echo-server echo-client memhog cpuburn; do \
                  $a --help | grep -q \"^usage: $a\" || exit 5; done; echo inside-ok";
    let out = run_box(&["container", r, &n, "--", "/bin/sh", "-c", script], LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "inside-ok");
    assert!(!Path::new("/run/box").join(&n).exists());
}

// ---------------------------------------------------------------------------------------------
// The alpine source.

#[test]
fn alpine_from_a_mirror_runs_in_a_container() {
    if !require_root() {
        return;
    }
    let server = Server::start();
    good_mirror(&server);
    let t = Scratch::new("alpine");
    let mirror = format!("{}/alpine", server.url());
    let out = fetch(&["alpine", "--mirror", &mirror, "--dest", &t.s("alpine")]);
    let err = ok(&out);
    let size = boxrt::rootfs::download::human_size(minirootfs_gz().len() as u64);
    assert_eq!(
        err.trim(),
        format!(
            "fetched alpine {VERSION} ({size}, sha256 ok) into {}",
            t.s("alpine")
        )
    );
    assert_eq!(
        server.requests(),
        [
            format!(
                "/alpine/latest-stable/releases/{}/latest-releases.yaml",
                arch()
            ),
            format!(
                "/alpine/latest-stable/releases/{}/{}",
                arch(),
                tarball_name(VERSION)
            ),
        ]
    );
    assert_eq!(t.images(), ["alpine"]);
    let root = t.dest("alpine");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/alpine-release")).unwrap(),
        format!("{VERSION}\n")
    );
    assert_box_installed(&root);
    assert_runs_in_a_container(&root, "alp");
}

#[test]
fn versions_pick_the_branch_and_an_older_release_uses_its_sha256_file() {
    let server = Server::start();
    good_mirror(&server);
    // 3.21.2 is not in the index (which lists 3.21.3): fetched by name, checked by .sha256.
    let gz = gzip(
        &Tar::default()
            .dir("./")
            .file("./old", 0o644, b"3.21.2")
            .finish(),
    );
    let dir = format!("/alpine/v3.21/releases/{}", arch());
    let file = tarball_name("3.21.2");
    server.route(&format!("{dir}/{file}"), Reply::Ok(gz.clone()));
    server.route(
        &format!("{dir}/{file}.sha256"),
        Reply::Ok(format!("{}  {file}\n", sha256(&gz)).into_bytes()),
    );
    let t = Scratch::new("versions");
    let mirror = format!("{}/alpine", server.url());
    let out = fetch_env(
        &["alpine", "--version", "3.21", "--dest", &t.s("branch")],
        &[("BOX_MIRROR", &mirror)],
    );
    assert!(ok(&out).contains(&format!("fetched alpine {VERSION} (")));
    let out = fetch(&[
        "alpine",
        "--mirror",
        &mirror,
        "--version",
        "3.21.2",
        "--dest",
        &t.s("old"),
    ]);
    assert!(ok(&out).contains("fetched alpine 3.21.2 ("));
    assert_eq!(
        std::fs::read_to_string(t.dest("old").join("old")).unwrap(),
        "3.21.2"
    );
    let index = format!("{dir}/latest-releases.yaml");
    assert_eq!(
        server.requests(),
        [
            index.clone(),
            format!("{dir}/{}", tarball_name(VERSION)),
            index,
            format!("{dir}/{file}.sha256"),
            format!("{dir}/{file}"),
        ]
    );
    // A version the mirror does not have: its .sha256 is a 404, and the message says so.
    let out = fetch(&[
        "alpine",
        "--mirror",
        &mirror,
        "--version",
        "3.21.9",
        "--dest",
        &t.s("none"),
    ]);
    fails(
        &out,
        &[
            "alpine-minirootfs-3.21.9-",
            ".sha256: server answered 404 not found",
        ],
    );
    assert_eq!(t.images(), ["branch", "old"]);
}

#[test]
fn a_wrong_digest_fails_naming_both_and_leaves_nothing() {
    let server = Server::start();
    let gz = minirootfs_gz();
    let wrong = "ab".repeat(32);
    serve_alpine(&server, Reply::Ok(gz.to_vec()), &wrong, gz.len());
    let t = Scratch::new("digest");
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ]);
    fails(
        &out,
        &[
            "sha256 mismatch",
            &format!("expected {wrong}"),
            &format!("got {}", sha256(gz)),
        ],
    );
    t.assert_nothing_left();
}

#[test]
fn a_truncated_body_fails_and_leaves_nothing() {
    let server = Server::start();
    let gz = minirootfs_gz();
    let half = gz[..gz.len() / 2].to_vec();
    serve_alpine(
        &server,
        Reply::Truncated {
            body: half.clone(),
            claimed: gz.len(),
        },
        &sha256(gz),
        gz.len(),
    );
    let t = Scratch::new("trunc");
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ]);
    let err = fails(
        &out,
        &["download http://", &format!("of {} bytes", gz.len())],
    );
    assert!(err.contains(&format!("{} of", half.len())), "{err}");
    t.assert_nothing_left();
}

#[test]
fn a_404_fails_and_leaves_nothing() {
    let server = Server::start();
    let t = Scratch::new("404");
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ]);
    fails(
        &out,
        &["latest-releases.yaml: server answered 404 not found"],
    );
    t.assert_nothing_left();
    // The index is there but the tarball is not.
    good_mirror(&server);
    let dir = format!("/alpine/latest-stable/releases/{}", arch());
    server
        .routes
        .lock()
        .unwrap()
        .remove(&format!("{dir}/{}", tarball_name(VERSION)));
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ]);
    fails(
        &out,
        &[&format!("{}: server answered 404", tarball_name(VERSION))],
    );
    t.assert_nothing_left();
}

#[test]
fn a_server_hanging_up_mid_body_fails_and_leaves_nothing() {
    let server = Server::start();
    let gz = minirootfs_gz();
    serve_alpine(
        &server,
        Reply::HangUp(gz[..16 * 1024].to_vec()),
        &sha256(gz),
        gz.len(),
    );
    let t = Scratch::new("hangup");
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ]);
    fails(&out, &["download http://", " bytes"]);
    t.assert_nothing_left();
}

#[test]
fn a_refused_connection_fails_clearly() {
    // Bind and drop to get a port that nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Scratch::new("refused");
    let out = fetch(&[
        "alpine",
        "--mirror",
        &format!("http://127.0.0.1:{port}/alpine"),
        "--dest",
        &t.s("alpine"),
    ]);
    fails(&out, &["connection refused"]);
    t.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Malicious tarballs: refused, naming the entry, and nothing written outside DEST.

/// Fetch `tar` as a local file and expect a refusal naming `want`.
fn refuse_tarball(t: &Scratch, tar: Vec<u8>, want: &[&str]) {
    let file = t.0.join("evil.tar");
    std::fs::write(&file, tar).unwrap();
    let out = fetch(&[file.to_str().unwrap(), "--dest", &t.s("evil")]);
    fails(&out, want);
    t.assert_nothing_left();
}

#[test]
fn dotdot_entries_are_refused_and_write_nothing_outside() {
    let t = Scratch::new("dotdot");
    // From the staging rootfs, ../../.. is the scratch directory itself.
    refuse_tarball(
        &t,
        Tar::default()
            .dir("./")
            .file("./ok", 0o644, b"fine")
            .file("../../../evil", 0o644, b"x")
            .finish(),
        &["entry ../../../evil: name has a .. component"],
    );
    assert!(!t.0.join("evil").exists());
    assert!(!t.0.join("images/evil").exists());
}

#[test]
fn absolute_entries_are_refused_and_write_nothing_outside() {
    let t = Scratch::new("abs");
    let target = t.0.join("abs-evil");
    let name = target.to_str().unwrap().to_string();
    refuse_tarball(
        &t,
        Tar::default().dir("./").file(&name, 0o644, b"x").finish(),
        &[&format!("entry {name}: name is absolute")],
    );
    assert!(!target.exists());
}

#[test]
fn a_symlink_to_root_followed_by_a_file_through_it_is_refused() {
    let t = Scratch::new("symroot");
    // `up -> /`, then `up/<scratch>/through-evil`: followed from the host, that is a real
    // path outside DEST.
    let outside = t.0.join("through-evil");
    let through = format!("./up{}", outside.display());
    refuse_tarball(
        &t,
        Tar::default()
            .dir("./")
            .symlink("./up", "/")
            .file(&through, 0o644, b"x")
            .finish(),
        &[&format!(
            "entry {through}: path goes through symlink up: refusing to write through links"
        )],
    );
    assert!(!outside.exists());
    // Same with a directory symlink pointing out relatively.
    refuse_tarball(
        &t,
        Tar::default()
            .dir("./")
            .symlink("./up", "../../..")
            .finish(),
        &["entry ./up: symlink to ../../..: points outside the root"],
    );
}

#[test]
fn a_hardlink_to_etc_passwd_is_refused() {
    let t = Scratch::new("hardlink");
    let before = std::fs::metadata("/etc/passwd").unwrap();
    let content = std::fs::read("/etc/passwd").unwrap();
    refuse_tarball(
        &t,
        Tar::default()
            .dir("./")
            .hardlink("./pw", "/etc/passwd")
            .file("./pw", 0o644, b"owned::0:0::/:/bin/sh\n")
            .finish(),
        &["entry ./pw: hard link to /etc/passwd: points outside the root"],
    );
    refuse_tarball(
        &t,
        Tar::default()
            .dir("./")
            .symlink("./etc", "/etc")
            .hardlink("./pw", "etc/passwd")
            .finish(),
        &["entry ./pw: hard link to etc/passwd: path goes through symlink etc"],
    );
    let after = std::fs::metadata("/etc/passwd").unwrap();
    assert_eq!((before.ino(), before.nlink()), (after.ino(), after.nlink()));
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), content);
}

// ---------------------------------------------------------------------------------------------
// Local files and URLs.

#[test]
fn local_tar_tgz_and_tar_gz_files_unpack() {
    let t = Scratch::new("files");
    for (file, data) in [
        ("r.tar", minirootfs_tar().to_vec()),
        ("r.tgz", minirootfs_gz().to_vec()),
        ("r.tar.gz", minirootfs_gz().to_vec()),
    ] {
        let path = t.0.join(file);
        std::fs::write(&path, &data).unwrap();
        let dest = file.replace('.', "-");
        let out = fetch(&[path.to_str().unwrap(), "--dest", &t.s(&dest)]);
        let err = ok(&out);
        assert!(
            err.starts_with(&format!("unpacked {} (", path.display())),
            "{err}"
        );
        assert!(err.contains("no --sha256 given"), "{err}");
        assert!(t.dest(&dest).join("bin/busybox").is_file());
        assert_box_installed(&t.dest(&dest));
    }
    // With a digest: checked before unpacking.
    let path = t.0.join("r.tgz");
    let good = sha256(minirootfs_gz());
    let out = fetch(&[
        path.to_str().unwrap(),
        "--sha256",
        &good,
        "--dest",
        &t.s("checked"),
    ]);
    assert!(ok(&out).contains("sha256 ok"));
    let out = fetch(&[
        path.to_str().unwrap(),
        "--sha256",
        &"0".repeat(64),
        "--dest",
        &t.s("bad"),
    ]);
    fails(&out, &["sha256 mismatch", &format!("got {good}")]);
    assert_eq!(t.images(), ["checked", "r-tar", "r-tar-gz", "r-tgz"]);
    // The default DEST is images/<name> under the current directory.
    let out = fetch_cmd(&[path.to_str().unwrap()])
        .current_dir(&t.0)
        .output()
        .unwrap();
    assert!(ok(&out).ends_with("into images/r\n"));
    assert!(t.dest("r").join("usr/local/bin/box").is_file());
}

#[test]
fn url_source_needs_a_digest_unless_told_otherwise() {
    let server = Server::start();
    let gz = minirootfs_gz();
    server.route("/x/rootfs.tar.gz", Reply::Ok(gz.to_vec()));
    let url = format!("{}/x/rootfs.tar.gz", server.url());
    let t = Scratch::new("url");
    let out = fetch(&[&url, "--dest", &t.s("refused")]);
    fails(&out, &["needs --sha256 HEX (or --insecure-no-verify"]);
    assert!(server.requests().is_empty(), "no request without a digest");
    let out = fetch(&[&url, "--sha256", &"0".repeat(64), "--dest", &t.s("wrong")]);
    fails(&out, &["verify rootfs.tar.gz: sha256 mismatch"]);
    let out = fetch(&[&url, "--sha256", &sha256(gz), "--dest", &t.s("checked")]);
    assert!(ok(&out).starts_with(&format!("fetched {url} (")));
    let out = fetch(&[&url, "--insecure-no-verify", "--dest", &t.s("unchecked")]);
    assert!(ok(&out).contains(&format!("sha256 NOT checked: {}", sha256(gz))));
    assert_eq!(t.images(), ["checked", "unchecked"]);
    assert_box_installed(&t.dest("checked"));
}

/// `openssl ARGS...` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (tests/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn https_is_verified_with_the_built_in_roots_even_without_a_digest() {
    // A TLS server on 127.0.0.1 with a certificate from a CA of our own: the handshake runs
    // (rustls is in the binary, no system TLS library) and verification refuses the issuer.
    // --insecure-no-verify skips the digest only, never TLS.
    let t = Scratch::new("tls");
    let d = &t.0;
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=box test ca",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "1",
            "-extfile",
            "ext",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "leaf.pem",
            "-key",
            "leaf.key",
            "-www",
            "-naccept",
            "1",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ACCEPT") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut ready, &mut line).unwrap();
        assert!(n > 0, "openssl s_server did not start");
    }
    let url = format!("https://127.0.0.1:{port}/r.tar.gz");
    let out = fetch(&[&url, "--insecure-no-verify", "--dest", &t.s("r")]);
    let _ = server.kill();
    let _ = server.wait();
    fails(
        &out,
        &[&format!(
            "fetch {url}: invalid peer certificate: UnknownIssuer"
        )],
    );
    t.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// busybox, --force, --self-only.

#[test]
fn busybox_source_builds_a_rootfs_that_runs() {
    if !require_root() {
        return;
    }
    let t = Scratch::new("busybox");
    let out = fetch(&["busybox", "--dest", &t.s("busybox")]);
    let err = ok(&out);
    assert!(err.starts_with("built busybox "), "{err}");
    let root = t.dest("busybox");
    assert_box_installed(&root);
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(std::fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .contains("tty:x:5:"));
    assert_runs_in_a_container(&root, "bb");
    let n = name("bbsh");
    let out = run_box(
        &[
            "container",
            root.to_str().unwrap(),
            &n,
            "--",
            "/bin/sh",
            "-c",
            "whoami; wget --help 2>&1 | head -1 | cut -c1-7",
        ],
        LIMIT,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "root\nBusyBox\n");
    // The shared helper rebuilds it in place (--force).
    std::fs::write(root.join("marker"), "").unwrap();
    fetch_busybox_rootfs(&root);
    assert!(!root.join("marker").exists());
    assert_box_installed(&root);
    assert_eq!(t.images(), ["busybox"]);
}

#[test]
fn modes_do_not_depend_on_the_umask() {
    let t = Scratch::new("umask");
    // No entries for ./usr or ./usr/share: they are made on the way, 0755 all the same.
    let tar = Tar::default()
        .dir("./")
        .file("./usr/share/motd", 0o644, b"hi\n")
        .finish();
    let file = t.0.join("r.tar");
    std::fs::write(&file, tar).unwrap();
    let script = format!(
        "umask 077; {} fetch-rootfs {} --dest {} && {} fetch-rootfs busybox --dest {}",
        box_bin().display(),
        file.display(),
        t.s("r"),
        box_bin().display(),
        t.s("bb")
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: PathBuf| std::fs::metadata(&p).unwrap().mode() & 0o7777;
    for d in [
        "usr",
        "usr/share",
        "usr/local",
        "usr/local/bin",
        "dev",
        "etc",
    ] {
        assert_eq!(mode(t.dest("r").join(d)), 0o755, "r/{d}");
    }
    assert_eq!(mode(t.dest("r").join("etc/resolv.conf")), 0o644);
    for d in ["bin", "usr/bin", "etc"] {
        assert_eq!(mode(t.dest("bb").join(d)), 0o755, "bb/{d}");
    }
    assert_eq!(mode(t.dest("bb").join("etc/passwd")), 0o644);
    assert_eq!(mode(t.dest("bb")), 0o755);
}

#[test]
fn an_existing_dest_is_refused_unless_forced() {
    let t = Scratch::new("force");
    let dest = t.dest("r");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("marker"), "old").unwrap();
    let file = t.0.join("r.tgz");
    std::fs::write(&file, minirootfs_gz()).unwrap();
    let out = fetch(&[file.to_str().unwrap(), "--dest", &t.s("r")]);
    fails(&out, &[&format!("dest {}: exists (use --force", t.s("r"))]);
    assert_eq!(std::fs::read_to_string(dest.join("marker")).unwrap(), "old");
    let out = fetch(&[file.to_str().unwrap(), "--dest", &t.s("r"), "--force"]);
    ok(&out);
    assert!(!dest.join("marker").exists());
    assert!(dest.join("bin/busybox").is_file());
    assert_eq!(t.images(), ["r"]);
    // A failed --force leaves the old rootfs as it was.
    std::fs::write(dest.join("marker"), "kept").unwrap();
    let out = fetch(&[
        file.to_str().unwrap(),
        "--dest",
        &t.s("r"),
        "--force",
        "--sha256",
        &"0".repeat(64),
    ]);
    fails(&out, &["sha256 mismatch"]);
    assert_eq!(
        std::fs::read_to_string(dest.join("marker")).unwrap(),
        "kept"
    );
    assert_eq!(t.images(), ["r"]);
}

#[test]
fn self_only_refreshes_box_and_its_links() {
    let t = Scratch::new("selfonly");
    let root = t.dest("r");
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::fs::write(root.join("usr/local/bin/box"), "stale").unwrap();
    std::os::unix::fs::symlink("elsewhere", root.join("usr/local/bin/memhog")).unwrap();
    let out = fetch(&["--self-only", &t.s("r")]);
    let err = ok(&out);
    assert!(err.starts_with("installed box ("), "{err}");
    assert_box_installed(&root);
    let out = fetch(&["--self-only", &t.s("missing")]);
    fails(&out, &["rootfs ", "missing: no such file or directory"]);
}

// ---------------------------------------------------------------------------------------------
// Signals: Ctrl-C during the download, SIGTERM during the unpack.

fn wait_exit(child: &mut Child) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code(), err);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("box did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn ctrl_c_during_the_download_leaves_nothing() {
    let server = Server::start();
    let total = 50 << 20;
    serve_alpine(&server, Reply::Slow { total }, &"ab".repeat(32), total);
    let t = Scratch::new("sigint");
    let mut child = fetch_cmd(&[
        "alpine",
        "--mirror",
        &format!("{}/alpine", server.url()),
        "--dest",
        &t.s("alpine"),
    ])
    .spawn()
    .unwrap();
    let download =
        t.0.join(format!("images/.alpine.partial-{}/download", child.id()));
    assert!(
        wait_until(LIMIT, || std::fs::metadata(&download)
            .map(|m| m.len() > 0)
            .unwrap_or(false)),
        "the download never started"
    );
    signal(child.id(), "INT");
    let (code, err) = wait_exit(&mut child);
    assert_eq!(code, Some(130), "stderr: {err}");
    assert_eq!(
        err.trim(),
        "box: fetch-rootfs alpine: interrupted by SIGINT"
    );
    t.assert_nothing_left();
}

#[test]
fn sigterm_during_the_unpack_leaves_nothing() {
    let t = Scratch::new("sigterm");
    let fifo = t.0.join("stream.tar");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let mut child = fetch_cmd(&[fifo.to_str().unwrap(), "--dest", &t.s("r")])
        .spawn()
        .unwrap();
    // Blocks until box opens the fifo for reading.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let mut part = Tar::default()
        .dir("./")
        .dir("./a/")
        .file("./a/first", 0o644, b"one")
        .0;
    // Half of the next header: box now waits for the rest, mid-unpack.
    part.extend_from_slice(&[b'x'; 100]);
    w.write_all(&part).unwrap();
    let first =
        t.0.join(format!("images/.r.partial-{}/rootfs/a/first", child.id()));
    assert!(
        wait_until(LIMIT, || first.exists()),
        "the unpack never started"
    );
    signal(child.id(), "TERM");
    let (code, err) = wait_exit(&mut child);
    assert_eq!(code, Some(143), "stderr: {err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    drop(w);
    t.assert_nothing_left();
}
