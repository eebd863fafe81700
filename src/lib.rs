//! boxrt: the library behind `box`, a small Linux container runtime.
//!
//! # The life of a container (`box container ROOTFS NAME -- CMD`)
//!
//! Parent ([`container`], the box process the user started):
//! 1. [`spec`] parses the command line; [`container`] checks root, the rootfs and the command
//!    ([`command`] resolves it inside the rootfs) before anything is created.
//! 2. [`state`] claims `/run/box/NAME` under a lock; leftovers of dead box processes are
//!    reclaimed.
//! 3. [`cgroups`] detects the cgroup layout (v2, hybrid, v1), makes the container's group(s)
//!    and writes the limits; [`net`] picks the container's address (recorded in its state)
//!    and makes sure the bridge `box0` is up; [`mounts`] plans the child's file system view;
//!    signals are blocked.
//! 4. [`sys::process::clone_fork`] makes the child in new mount, PID, UTS, network and IPC
//!    namespaces (on cgroup v2 straight into its group); it waits on the [`channel`].
//! 5. The parent creates the veth pair into the child's network namespace, records the
//!    container and sends "go"; meanwhile the child joins its groups itself (v1).
//! 6. [`supervisor`] waits: forwards signals, proxies the terminal, collects the exit status
//!    and any failure the child reports by name; the kernel's OOM counter says whether the
//!    OOM killer ended it.
//! 7. Everything is released by `Drop`, on every path.
//!
//! Child ([`init`], inside the namespaces):
//! 1. A cgroup namespace (rooted at its group), `lo` up (and `eth0`, its address and default
//!    route, over netlink), hostname, [`mounts::apply`] (pivot_root, /proc, /sys, /dev, masks).
//! 2. Hardening: [`caps`] cut to Docker's default set, no_new_privs.
//! 3. Start the payload ([`sys::process::spawn`]; with a pty from the container's devpts
//!    when interactive), then stay as PID 1: reap zombies, forward signals, exit with the
//!    payload's status.
//!
//! Before all that, `box fetch-rootfs` ([`rootfs`]) gets a root filesystem: download (alpine
//! mirror, URL) or local source (tarball, the host's busybox), digest check, safe unpack into
//! a staging directory, self-install of box, one atomic rename into place.
//!
//! Every `unsafe` block lives in [`sys`], the one door to the kernel.

#![deny(unsafe_code)]

pub mod apps;
pub mod caps;
pub mod cgroups;
pub mod channel;
pub mod cli;
pub mod command;
pub mod container;
pub mod error;
pub mod init;
pub mod log;
pub mod ls;
pub mod mounts;
pub mod multicall;
pub mod net;
pub mod rootfs;
pub mod size;
pub mod spec;
pub mod state;
pub mod supervisor;
#[allow(unsafe_code)]
pub mod sys;

pub use error::{Error, Result};
