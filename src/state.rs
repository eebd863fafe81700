//! Container state under `/run/box/<NAME>`: one directory per container, held under an
//! exclusive flock by the box process that runs it.
//!
//! The lock is the truth: a directory whose lock can be taken belongs to a box process that is
//! gone (killed with SIGKILL, say), and its leftovers are reclaimed by the next box command.
//! The record inside (`state`, `key=value` lines, replaced atomically) says what to reclaim.
//! The root is a parameter, so tests use a temp dir.

use crate::error::{Error, Result};
use crate::sys::fs as sysfs;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const RUN_DIR: &str = "/run/box";
const RECORD: &str = "state";

/// What a running container holds; enough to show it and to clean up after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    /// The supervising box process.
    pub box_pid: i32,
    /// The container's init, as the host sees it.
    pub init_pid: i32,
    /// Seconds since the epoch.
    pub started: u64,
    pub rootfs: String,
    pub command: String,
    /// Other facts, owned by the modules that set them (cgroup paths, address, veth name).
    pub extra: Vec<(String, String)>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.extra.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.extra.push((key.to_string(), value)),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "name={}\nbox_pid={}\ninit_pid={}\nstarted={}\nrootfs={}\ncommand={}\n",
            self.name,
            self.box_pid,
            self.init_pid,
            self.started,
            one_line(&self.rootfs),
            one_line(&self.command)
        );
        for (k, v) in &self.extra {
            out.push_str(&format!("{k}={}\n", one_line(v)));
        }
        out
    }

    pub fn parse(text: &str) -> Record {
        let mut r = Record::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "name" => r.name = v.to_string(),
                "box_pid" => r.box_pid = v.parse().unwrap_or(0),
                "init_pid" => r.init_pid = v.parse().unwrap_or(0),
                "started" => r.started = v.parse().unwrap_or(0),
                "rootfs" => r.rootfs = v.to_string(),
                "command" => r.command = v.to_string(),
                _ => r.extra.push((k.to_string(), v.to_string())),
            }
        }
        r
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A container name held by this process. Dropping it removes the state directory (while the
/// lock is still held), then releases the lock.
pub struct Claim {
    dir: PathBuf,
    lock: File,
}

/// Prefix of a claim being made: a locked directory not yet moved to its name.
const NEW_PREFIX: &str = ".new-";

/// Take `name` under `root`. A live holder is an error naming its pid; leftovers of a dead
/// holder are returned so the caller can reclaim what they name.
///
/// A new name never appears unlocked: the directory is made and locked under a temporary
/// name, then renamed into place (RENAME_NOREPLACE). Were it made in place and locked after,
/// a concurrent [`scan`] could lock it in between, take it for a dead box's leftovers and
/// make this claim fail as "already running".
pub fn claim(root: &Path, name: &str) -> Result<(Claim, Option<Record>)> {
    make_root(root)?;
    let dir = root.join(name);
    loop {
        if let Some(claim) = claim_new(root, &dir, name)? {
            return Ok((claim, None));
        }
        // The name exists: a live container, or leftovers to take over.
        match try_lock(&dir)? {
            Lock::Gone => continue, // removed between mkdir and open: start over
            Lock::Held => {
                let pid = read_record(&dir).map(|r| r.box_pid).unwrap_or(0);
                let who = if pid > 0 {
                    format!(" (box pid {pid})")
                } else {
                    String::new()
                };
                return Err(Error::msg(
                    format!("name {name}"),
                    format!("a container of that name is already running{who}"),
                ));
            }
            Lock::Taken(lock) => {
                let leftover = read_record(&dir);
                return Ok((Claim { dir, lock }, leftover));
            }
        }
    }
}

/// Make `dir` already locked; `None` when something is at that name.
fn claim_new(root: &Path, dir: &Path, name: &str) -> Result<Option<Claim>> {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = root.join(format!("{NEW_PREFIX}{name}-{}-{n}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    let lock = match File::open(&tmp) {
        Ok(f) => f,
        Err(e) => {
            let _ = fs::remove_dir(&tmp);
            return Err(Error::io(format!("open {}", tmp.display()), e));
        }
    };
    // Nobody else knows this directory yet, so the lock is ours at once.
    let locked = sysfs::flock(lock.as_fd(), true, true);
    let moved = locked.and_then(|_| sysfs::rename_noreplace(&tmp, dir));
    match moved {
        Ok(()) => Ok(Some(Claim {
            dir: dir.to_path_buf(),
            lock,
        })),
        Err(e) => {
            let _ = fs::remove_dir(&tmp);
            match e.raw_os_error() {
                Some(libc::EEXIST) => Ok(None),
                _ => Err(Error::io(format!("create {}", dir.display()), e)),
            }
        }
    }
}

impl Claim {
    /// Write the record (atomically: readers see the old or the new one, never half).
    ///
    /// The new record is written beside the old one and the two names are exchanged, then the
    /// old one is removed. A rename over the old record would do the same in one call, but on
    /// ext4 (where /run lives on some machines) replacing a file by rename makes the kernel
    /// flush the new file's data first (auto_da_alloc): 160 us against 36 us measured here.
    pub fn write(&self, rec: &Record) -> Result<()> {
        let tmp = self.dir.join(".state.tmp");
        let path = self.dir.join(RECORD);
        fs::write(&tmp, rec.to_text())
            .and_then(|()| match sysfs::rename_exchange(&tmp, &path) {
                Ok(()) => fs::remove_file(&tmp),
                // No old record yet, or a file system without exchange.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) => {
                    fs::rename(&tmp, &path)
                }
                Err(e) => Err(e),
            })
            .map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.dir.join(".state.tmp"));
        let _ = fs::remove_file(self.dir.join(RECORD));
        let _ = fs::remove_dir(&self.dir);
        crate::debug!("released {}", self.dir.display());
        // The lock goes with the descriptor, after the directory is gone.
        let _ = &self.lock;
    }
}

/// An entry of the run directory.
pub enum Entry {
    /// A container whose box process is alive.
    Live(Record),
    /// Leftovers of a dead box process, now held by us: reclaim, then drop the claim.
    Stale(Claim, Option<Record>),
}

/// Every container directory under `root`, live or stale. Never waits for a lock.
pub fn scan(root: &Path) -> Result<Vec<Entry>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let dir = ent.path();
        if !ent.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let file_name = ent.file_name().to_string_lossy().into_owned();
        if let Some(rest) = file_name.strip_prefix(NEW_PREFIX) {
            // A claim being made (left alone: it is not locked yet for a moment), or one
            // whose box process died before moving it into place (removed).
            let pid = rest.rsplit('-').nth(1).and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| !process_alive(p)) {
                let _ = fs::remove_dir(&dir);
            }
            continue;
        }
        match try_lock(&dir)? {
            Lock::Gone => {}
            Lock::Held => {
                if let Some(rec) = read_record(&dir) {
                    out.push(Entry::Live(rec));
                }
            }
            Lock::Taken(lock) => {
                let rec = read_record(&dir);
                out.push(Entry::Stale(Claim { dir, lock }, rec));
            }
        }
    }
    out.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    Ok(out)
}

/// Every record under `root`, read without taking any lock: live ones and those of dead box
/// processes not swept yet alike.
pub fn records(root: &Path) -> Vec<Record> {
    match fs::read_dir(root) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| read_record(&e.path()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn process_alive(pid: i32) -> bool {
    !matches!(crate::sys::process::kill(pid, 0), Err(e) if e.raw_os_error() == Some(libc::ESRCH))
}

fn name_of(e: &Entry) -> &str {
    match e {
        Entry::Live(r) => &r.name,
        Entry::Stale(c, _) => c.dir.file_name().and_then(|n| n.to_str()).unwrap_or(""),
    }
}

enum Lock {
    Taken(File),
    Held,
    Gone,
}

fn try_lock(dir: &Path) -> Result<Lock> {
    let f = match File::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lock::Gone),
        Err(e) => return Err(Error::io(format!("open {}", dir.display()), e)),
    };
    let got = sysfs::flock(f.as_fd(), true, true)
        .map_err(|e| Error::io(format!("lock {}", dir.display()), e))?;
    if !got {
        return Ok(Lock::Held);
    }
    // The holder before us may have removed the directory after we opened it; a lock on an
    // unlinked directory guards nothing. Only the directory still at the path counts.
    let here = f
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", dir.display()), e))?;
    match fs::metadata(dir) {
        Ok(m) if m.ino() == here.ino() && m.dev() == here.dev() => Ok(Lock::Taken(f)),
        _ => Ok(Lock::Gone),
    }
}

fn read_record(dir: &Path) -> Option<Record> {
    fs::read_to_string(dir.join(RECORD))
        .ok()
        .map(|t| Record::parse(&t))
}

fn make_root(root: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(root)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::io(format!("create {}", root.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(tag: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("box-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&r);
        r
    }

    #[test]
    fn record_round_trips_and_stays_one_line_per_key() {
        let mut r = Record {
            name: "c1".into(),
            box_pid: 10,
            init_pid: 11,
            started: 1700000000,
            rootfs: "/images/alpine".into(),
            command: "sh -c 'echo\nhi'".into(),
            extra: vec![],
        };
        r.set("ip", "10.88.0.2");
        r.set("ip", "10.88.0.3");
        let back = Record::parse(&r.to_text());
        assert_eq!(back.command, "sh -c 'echo hi'");
        assert_eq!(back.get("ip"), Some("10.88.0.3"));
        assert_eq!(back.box_pid, 10);
        assert_eq!(back.name, "c1");
    }

    #[test]
    fn a_live_name_is_refused_and_a_released_one_is_free() {
        let root = root("claim");
        let (c, leftover) = claim(&root, "c1").unwrap();
        assert!(leftover.is_none());
        c.write(&Record {
            name: "c1".into(),
            box_pid: 4242,
            ..Default::default()
        })
        .unwrap();
        let err = claim(&root, "c1").err().unwrap().to_string();
        assert_eq!(
            err,
            "name c1: a container of that name is already running (box pid 4242)"
        );
        assert!(matches!(scan(&root).unwrap()[..], [Entry::Live(ref r)] if r.box_pid == 4242));
        drop(c);
        assert!(!root.join("c1").exists());
        let (c, leftover) = claim(&root, "c1").unwrap();
        assert!(leftover.is_none());
        drop(c);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_scan_never_takes_a_claim_being_made_for_leftovers() {
        // Sweeps run by every box command; claims must not fail while one runs.
        let root = root("race");
        make_root(&root).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sweeper = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    drop(scan(&root).unwrap());
                }
            })
        };
        for i in 0..2000 {
            let (c, leftover) = claim(&root, &format!("c{}", i % 7)).unwrap();
            assert!(leftover.is_none());
            drop(c);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sweeper.join().unwrap();
        // A claim abandoned half-way (its box died) is removed by the next scan; one whose
        // process lives is left alone.
        let dead = i32::MAX; // above pid_max: no such process
        fs::create_dir(root.join(format!(".new-c9-{dead}-1"))).unwrap();
        let alive = root.join(format!(".new-c9-{}-1", std::process::id()));
        fs::create_dir(&alive).unwrap();
        assert!(scan(&root).unwrap().is_empty());
        let left: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(left, vec![alive]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn leftovers_of_a_dead_holder_are_handed_over() {
        let root = root("stale");
        fs::create_dir_all(root.join("c2")).unwrap();
        fs::write(root.join("c2/state"), "name=c2\nbox_pid=99\nip=10.88.0.9\n").unwrap();
        match &scan(&root).unwrap()[..] {
            [Entry::Stale(_, Some(rec))] => assert_eq!(rec.get("ip"), Some("10.88.0.9")),
            _ => panic!("expected one stale entry"),
        }
        // scan's claim was dropped, which removed the leftovers.
        assert!(!root.join("c2").exists());
        fs::create_dir_all(root.join("c3")).unwrap();
        fs::write(root.join("c3/state"), "name=c3\nbox_pid=98\n").unwrap();
        let (c, leftover) = claim(&root, "c3").unwrap();
        assert_eq!(leftover.unwrap().box_pid, 98);
        drop(c);
        fs::remove_dir_all(&root).unwrap();
    }
}
