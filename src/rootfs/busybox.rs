//! The `busybox` source: a small rootfs built offline from the host's static busybox (Debian's
//! busybox-static), for demos and tests on machines without internet.
//!
//! The tree: `/bin/busybox`, a relative link per applet where busybox itself puts it
//! (`busybox --list-full`: `bin/sh`, `usr/bin/wget`, ...), `/etc/passwd` and `/etc/group`
//! (root, nobody, and the tty group, gid 5, that devpts uses), `/etc/hosts`; the self-install
//! adds box, `/proc`, `/sys`, `/dev`, `/tmp` and `/root`. A dynamically linked busybox is
//! refused: its libraries would not be in the rootfs.

use super::unpack::clean;
use super::{Ctx, Fetched, Source};
use crate::error::{Error, Result};
use std::fs::{File, Permissions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian and others put it.
pub const CANDIDATES: &[&str] = &["/usr/bin/busybox", "/bin/busybox"];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

pub struct Busybox {
    path: PathBuf,
}

impl Busybox {
    /// The host's busybox, which must be statically linked.
    pub fn find() -> Result<Busybox> {
        let path = CANDIDATES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::msg(
                    "busybox",
                    format!(
                        "not found in {} (Debian: apt-get install busybox-static)",
                        CANDIDATES.join(" or ")
                    ),
                )
            })?;
        Busybox::at(path)
    }

    /// `path`, checked to be a static ELF executable.
    pub fn at(path: &Path) -> Result<Busybox> {
        let what = || format!("busybox {}", path.display());
        let mut f = File::open(path).map_err(|e| Error::io(what(), e))?;
        if let Some(interp) = elf_interpreter(&mut f).map_err(|e| e.context(what()))? {
            return Err(Error::msg(
                what(),
                format!(
                    "dynamically linked (needs {interp}); install a static one (Debian: \
                     busybox-static)"
                ),
            ));
        }
        Ok(Busybox {
            path: path.to_path_buf(),
        })
    }

    /// `BusyBox v1.35.0 (Debian ...) multi-call binary.` -> `1.35.0`.
    fn version(&self) -> String {
        let out = Command::new(&self.path).output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.lines()
            .next()
            .and_then(|l| l.strip_prefix("BusyBox v"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("(unknown version)")
            .to_string()
    }

    /// Where each applet goes: `--list-full` when this busybox knows it, else all in /bin.
    fn applets(&self) -> Result<Vec<PathBuf>> {
        let run = |arg: &str| {
            Command::new(&self.path)
                .arg(arg)
                .output()
                .ok()
                .filter(|o| o.status.success() && !o.stdout.is_empty())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let list: Vec<PathBuf> = match run("--list-full") {
            Some(full) => full.lines().map(PathBuf::from).collect(),
            None => run("--list")
                .ok_or_else(|| {
                    Error::msg(
                        format!("run {} --list", self.path.display()),
                        "no applet list",
                    )
                })?
                .lines()
                .map(|a| Path::new("bin").join(a))
                .collect(),
        };
        let mut out = Vec::new();
        for p in list {
            // The list comes from a program: still only plain relative names.
            let rel = clean(&p).map_err(|e| e.context(format!("applet {}", p.display())))?;
            if rel.components().count() >= 2 && rel != Path::new("bin/busybox") {
                out.push(rel);
            }
        }
        Ok(out)
    }
}

/// The link target from the applet's directory to `/bin/busybox`: `busybox` in bin,
/// `../bin/busybox` in sbin, `../../bin/busybox` in usr/bin.
fn link_target(applet: &Path) -> PathBuf {
    let depth = applet.components().count() - 1;
    if applet.parent() == Some(Path::new("bin")) {
        return PathBuf::from("busybox");
    }
    let mut t = PathBuf::new();
    for _ in 0..depth {
        t.push("..");
    }
    t.join("bin/busybox")
}

impl Source for Busybox {
    fn name(&self) -> String {
        "busybox".into()
    }

    fn fill(&self, ctx: &Ctx<'_>, rootfs: &Path) -> Result<Fetched> {
        let version = self.version();
        let applets = self.applets()?;
        let _change = ctx.cancel.enter()?;
        let io = |what: String| move |e| Error::io(what, e);
        // Modes are set explicitly: the tree must not depend on the caller's umask.
        let mkdir = |rel: &str| -> Result<()> {
            let mut path = rootfs.to_path_buf();
            for comp in Path::new(rel).components() {
                path.push(comp);
                if !path.is_dir() {
                    std::fs::create_dir(&path).map_err(io(format!("mkdir /{rel}")))?;
                    std::fs::set_permissions(&path, Permissions::from_mode(0o755))
                        .map_err(io(format!("chmod /{rel}")))?;
                }
            }
            Ok(())
        };
        for dir in ["bin", "sbin", "usr/bin", "usr/sbin", "etc"] {
            mkdir(dir)?;
        }
        let bb = rootfs.join("bin/busybox");
        std::fs::copy(&self.path, &bb).map_err(io(format!("copy {}", self.path.display())))?;
        std::fs::set_permissions(&bb, Permissions::from_mode(0o755))
            .map_err(io("chmod /bin/busybox".into()))?;
        let mut linked = 0;
        for applet in &applets {
            let link = rootfs.join(applet);
            if std::fs::symlink_metadata(&link).is_ok() {
                continue; // listed twice
            }
            if let Some(dir) = applet.parent() {
                mkdir(&dir.to_string_lossy())?;
            }
            symlink(link_target(applet), &link)
                .map_err(io(format!("link /{}", applet.display())))?;
            linked += 1;
        }
        for (file, text) in [
            ("etc/passwd", PASSWD),
            ("etc/group", GROUP),
            ("etc/hosts", HOSTS),
        ] {
            let path = rootfs.join(file);
            std::fs::write(&path, text).map_err(io(format!("write /{file}")))?;
            std::fs::set_permissions(&path, Permissions::from_mode(0o644))
                .map_err(io(format!("chmod /{file}")))?;
        }
        std::fs::set_permissions(rootfs, Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", rootfs.display())))?;
        crate::debug!("busybox {version}: {linked} applet links");
        Ok(Fetched {
            verb: "built",
            what: format!("busybox {version}"),
            detail: format!("{linked} applets, from {}", self.path.display()),
        })
    }
}

/// The program interpreter (PT_INTERP) an ELF file asks for: `None` for a static executable
/// (static-pie included, which has no PT_INTERP either).
pub fn elf_interpreter(f: &mut (impl Read + Seek)) -> Result<Option<String>> {
    let not_elf = || Error::msg("", "not an ELF executable");
    let mut ident = [0u8; 64];
    f.read_exact(&mut ident).map_err(|_| not_elf())?;
    if &ident[..4] != b"\x7fELF" {
        return Err(not_elf());
    }
    let wide = match ident[4] {
        1 => false,
        2 => true,
        _ => return Err(not_elf()),
    };
    let big = match ident[5] {
        1 => false,
        2 => true,
        _ => return Err(not_elf()),
    };
    let num = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        if big {
            for &x in b {
                v = v << 8 | x as u64;
            }
        } else {
            for &x in b.iter().rev() {
                v = v << 8 | x as u64;
            }
        }
        v
    };
    // e_phoff, e_phentsize, e_phnum; in a program header p_type, p_offset, p_filesz.
    let (phoff, phentsize, phnum) = if wide {
        (
            num(&ident[0x20..0x28]),
            num(&ident[0x36..0x38]),
            num(&ident[0x38..0x3a]),
        )
    } else {
        (
            num(&ident[0x1c..0x20]),
            num(&ident[0x2a..0x2c]),
            num(&ident[0x2c..0x2e]),
        )
    };
    let min_entry = if wide { 0x28 } else { 0x14 };
    if phentsize < min_entry || phnum > 4096 {
        return Err(Error::msg("", "malformed ELF program headers"));
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    f.seek(SeekFrom::Start(phoff))
        .and_then(|_| f.read_exact(&mut table))
        .map_err(|_| Error::msg("", "truncated ELF program headers"))?;
    for ph in table.chunks(phentsize as usize) {
        const PT_INTERP: u64 = 3;
        if num(&ph[0..4]) != PT_INTERP {
            continue;
        }
        let (off, size) = if wide {
            (num(&ph[0x08..0x10]), num(&ph[0x20..0x28]))
        } else {
            (num(&ph[0x04..0x08]), num(&ph[0x10..0x14]))
        };
        let mut path = vec![0u8; size.min(4096) as usize];
        f.seek(SeekFrom::Start(off))
            .and_then(|_| f.read_exact(&mut path))
            .map_err(|_| Error::msg("", "truncated ELF interpreter path"))?;
        let path = String::from_utf8_lossy(&path)
            .trim_end_matches('\0')
            .to_string();
        return Ok(Some(path));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal little-endian ELF64 header with one program header of type `p_type`.
    fn elf64(p_type: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 + 32];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little-endian
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = &mut b[64..120];
        ph[0..4].copy_from_slice(&p_type.to_le_bytes());
        ph[0x08..0x10].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        ph[0x20..0x28].copy_from_slice(&28u64.to_le_bytes()); // p_filesz
        b[120..148].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        b
    }

    #[test]
    fn tells_static_from_dynamic() {
        assert_eq!(
            elf_interpreter(&mut Cursor::new(elf64(3)))
                .unwrap()
                .as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(elf_interpreter(&mut Cursor::new(elf64(1))).unwrap(), None);
        assert!(elf_interpreter(&mut Cursor::new(b"#!/bin/sh\n".to_vec())).is_err());
        // This test binary is built static for musl, like box.
        let mut me = File::open("/proc/self/exe").unwrap();
        assert_eq!(elf_interpreter(&mut me).unwrap(), None);
    }

    #[test]
    fn applet_links_point_back_to_bin_busybox() {
        assert_eq!(link_target(Path::new("bin/sh")), Path::new("busybox"));
        assert_eq!(
            link_target(Path::new("sbin/ifconfig")),
            Path::new("../bin/busybox")
        );
        assert_eq!(
            link_target(Path::new("usr/bin/wget")),
            Path::new("../../bin/busybox")
        );
    }
}
