//! Multicall dispatch: which applet a command line asks for.
//!
//! `box APPLET ARGS...` and a link named after an applet (`memhog 200M`) both reach the applet.
//! Any other program name (`box`, `box-debug`, a renamed copy) is the `box` front end itself,
//! which also answers `--list`, `--install DIR`, `--help` and `--version`.

use crate::error::{Error, Result, EXIT_NOT_FOUND};
use std::path::{Path, PathBuf};

/// What a command line asks box to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Run applet `name` with `args` (the arguments after the applet name).
    Applet {
        name: String,
        args: Vec<String>,
    },
    List,
    Install(PathBuf),
    Help,
    Version,
    /// A word that is no applet (exit 127, like a shell's "command not found").
    Unknown(String),
    /// A front-end option that is wrong (missing `--install` directory, unknown flag).
    Usage(String),
}

/// Decide from `argv` (argv[0] included) and the applet names.
pub fn resolve(argv: &[String], applets: &[&str]) -> Dispatch {
    let prog = argv.first().map(|a| base_name(a)).unwrap_or("box");
    if applets.contains(&prog) {
        return Dispatch::Applet {
            name: prog.to_string(),
            args: argv[1..].to_vec(),
        };
    }
    let Some(first) = argv.get(1) else {
        return Dispatch::Help;
    };
    match first.as_str() {
        "--list" | "-l" => Dispatch::List,
        "--help" | "-h" | "help" => Dispatch::Help,
        "--version" | "-V" => Dispatch::Version,
        "--install" => match argv.get(2) {
            Some(dir) => Dispatch::Install(PathBuf::from(dir)),
            None => Dispatch::Usage("--install needs a directory".into()),
        },
        opt if opt.starts_with('-') => Dispatch::Usage(format!("unknown option {opt}")),
        name if applets.contains(&name) => Dispatch::Applet {
            name: name.to_string(),
            args: argv[2..].to_vec(),
        },
        other => Dispatch::Unknown(other.to_string()),
    }
}

/// The error for an unknown applet (exit 127).
pub fn unknown_applet(name: &str) -> Error {
    Error::msg(name.to_string(), "no such applet (box --list shows them)").with_code(EXIT_NOT_FOUND)
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Make one symlink per applet in `dir`, pointing at `exe`. When `exe` sits in `dir` itself the
/// link is relative (`memhog -> box`), so the directory can move, or be a container's
/// `/usr/local/bin` seen from the host. An existing symlink is replaced; any other file of that
/// name is left alone and reported.
pub fn install(dir: &Path, exe: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("install into {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::msg(
            format!("install into {}", dir.display()),
            "not a directory",
        ));
    }
    let same_dir = exe.parent().and_then(|p| p.canonicalize().ok()) == dir.canonicalize().ok();
    let target: PathBuf = match (same_dir, exe.file_name()) {
        (true, Some(file)) => PathBuf::from(file),
        _ => exe.to_path_buf(),
    };
    let mut made = Vec::new();
    for name in names {
        let link = dir.join(name);
        if target == Path::new(name) {
            continue; // the binary itself is called like an applet
        }
        match std::fs::symlink_metadata(&link) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::remove_file(&link)
                    .map_err(|e| Error::io(format!("replace {}", link.display()), e))?;
            }
            Ok(_) => {
                return Err(Error::msg(
                    format!("install {}", link.display()),
                    "a file of that name exists and is not a symlink",
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &link)
            .map_err(|e| Error::io(format!("symlink {}", link.display()), e))?;
        made.push(link);
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLETS: &[&str] = &["container", "memhog", "echo-server"];

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn applet_by_program_name() {
        assert_eq!(
            resolve(&argv(&["/usr/local/bin/memhog", "200M"]), APPLETS),
            Dispatch::Applet {
                name: "memhog".into(),
                args: argv(&["200M"])
            }
        );
    }

    #[test]
    fn applet_as_first_argument() {
        assert_eq!(
            resolve(&argv(&["./box", "container", "r", "c1"]), APPLETS),
            Dispatch::Applet {
                name: "container".into(),
                args: argv(&["r", "c1"])
            }
        );
        // A renamed copy still works as the front end.
        assert_eq!(
            resolve(&argv(&["box-dev", "memhog"]), APPLETS),
            Dispatch::Applet {
                name: "memhog".into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn front_end_options() {
        assert_eq!(resolve(&argv(&["box"]), APPLETS), Dispatch::Help);
        assert_eq!(resolve(&argv(&["box", "--help"]), APPLETS), Dispatch::Help);
        assert_eq!(resolve(&argv(&["box", "--list"]), APPLETS), Dispatch::List);
        assert_eq!(
            resolve(&argv(&["box", "--version"]), APPLETS),
            Dispatch::Version
        );
        assert_eq!(
            resolve(&argv(&["box", "--install", "/x"]), APPLETS),
            Dispatch::Install("/x".into())
        );
        assert!(matches!(
            resolve(&argv(&["box", "--install"]), APPLETS),
            Dispatch::Usage(_)
        ));
        assert!(matches!(
            resolve(&argv(&["box", "--bogus"]), APPLETS),
            Dispatch::Usage(_)
        ));
    }

    #[test]
    fn unknown_applet_is_127() {
        assert_eq!(
            resolve(&argv(&["box", "frobnicate"]), APPLETS),
            Dispatch::Unknown("frobnicate".into())
        );
        assert_eq!(unknown_applet("frobnicate").code(), 127);
    }

    #[test]
    fn install_makes_relative_links_beside_the_binary() {
        let dir = std::env::temp_dir().join(format!("box-install-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("box");
        std::fs::write(&exe, b"").unwrap();
        std::fs::write(dir.join("echo-server"), b"not a link").unwrap();
        std::os::unix::fs::symlink("old", dir.join("memhog")).unwrap();
        // A regular file in the way is reported, not clobbered.
        assert!(install(&dir, &exe, APPLETS).is_err());
        std::fs::remove_file(dir.join("echo-server")).unwrap();
        let made = install(&dir, &exe, APPLETS).unwrap();
        assert_eq!(made.len(), 3);
        for name in APPLETS {
            assert_eq!(
                std::fs::read_link(dir.join(name)).unwrap(),
                Path::new("box")
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
