#!/bin/sh
# Build box, make a root filesystem from the host's busybox in images/busybox with
# `box fetch-rootfs busybox`, and start a shell in a container named "demo" on it. Extra
# arguments go to `box container`.
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
if ! command -v cargo >/dev/null 2>&1; then . "$HOME/.cargo/env"; fi
cargo build --release -q
box=target/x86_64-unknown-linux-musl/release/box
root=images/busybox
if [ -x "$root/bin/busybox" ]; then
    "$box" fetch-rootfs --self-only "$root"       # refresh box inside after a rebuild
else
    "$box" fetch-rootfs busybox --dest "$root"    # offline: the host's static busybox
fi
exec "$box" container "$root" demo "$@"
