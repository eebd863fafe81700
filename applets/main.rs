//! The `box` binary: the applet table and dispatch. Each applet is a thin file: parse the
//! arguments, make one library call, map the result to an exit status.

mod container;
mod cpuburn;
mod echo_client;
mod echo_server;
mod fetch_rootfs;
mod ls;
mod memhog;

use boxrt::error::EXIT_BOX;
use boxrt::multicall::{self, Dispatch};

pub struct Applet {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(Vec<String>) -> i32,
    /// Whether `box --install` makes a link for it.
    pub link: bool,
}

const APPLETS: &[Applet] = &[
    Applet {
        name: "container",
        summary: "run a command in new namespaces on a root filesystem",
        run: container::main,
        link: true,
    },
    // No link: one named `ls` would shadow the rootfs's own ls. Reached as `box ls`.
    Applet {
        name: "ls",
        summary: "list the running containers",
        run: ls::main,
        link: false,
    },
    Applet {
        name: "fetch-rootfs",
        summary: "download, verify and safely unpack a root filesystem; install box into it",
        run: fetch_rootfs::main,
        link: true,
    },
    Applet {
        name: "echo-server",
        summary: "TCP server that greets with its hostname and echoes lines",
        run: echo_server::main,
        link: true,
    },
    Applet {
        name: "echo-client",
        summary: "talk to an echo-server: check the echo, measure latency or throughput",
        run: echo_client::main,
        link: true,
    },
    Applet {
        name: "memhog",
        summary: "allocate and touch memory step by step",
        run: memhog::main,
        link: true,
    },
    Applet {
        name: "cpuburn",
        summary: "spin threads and report the CPU time they got",
        run: cpuburn::main,
        link: true,
    },
];

fn main() {
    boxrt::log::init();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
    let code = match multicall::resolve(&argv, &names) {
        Dispatch::Applet { name, args } => {
            let applet = APPLETS
                .iter()
                .find(|a| a.name == name)
                .expect("resolved applet");
            (applet.run)(args)
        }
        Dispatch::List => {
            for a in APPLETS {
                println!("{}", a.name);
            }
            0
        }
        Dispatch::Help => {
            println!("{}", help());
            0
        }
        Dispatch::Version => {
            println!("box {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Dispatch::Install(dir) => install(&dir),
        Dispatch::Unknown(name) => fail(&multicall::unknown_applet(&name).to_string(), 127),
        Dispatch::Usage(msg) => fail(&format!("{msg} (see box --help)"), EXIT_BOX),
    };
    std::process::exit(code);
}

fn install(dir: &std::path::Path) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(&format!("install: find the box binary: {e}"), EXIT_BOX),
    };
    let names: Vec<&str> = APPLETS.iter().filter(|a| a.link).map(|a| a.name).collect();
    match multicall::install(dir, &exe, &names) {
        Ok(made) => {
            for link in made {
                println!("{}", link.display());
            }
            0
        }
        Err(e) => fail(&e.to_string(), e.code()),
    }
}

/// Print `box: MSG` on stderr and return `code`.
pub fn fail(msg: &str, code: i32) -> i32 {
    eprintln!("box: {msg}");
    code
}

fn help() -> String {
    let mut s = String::from(
        "box: a small Linux container runtime in one static binary\n\n\
         usage: box APPLET [ARGS...]    or    APPLET [ARGS...] (through a link named APPLET)\n\
         \x20      box --list | --install DIR | --help | --version\n\napplets:\n",
    );
    for a in APPLETS {
        s.push_str(&format!("  {:<14}{}\n", a.name, a.summary));
    }
    s.push_str(
        "\n`box APPLET --help` explains one applet. `box --install DIR` makes a symlink per\n\
         applet in DIR. Set BOX_LOG=debug to narrate every step with timings.",
    );
    s
}
