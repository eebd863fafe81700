#!/bin/sh
# Install what building and testing box needs on Debian/Ubuntu (as root). Idempotent: a
# second run installs nothing.
#   busybox-static  the third-party userland of the test root filesystems
#   gcc, musl-tools the linker driver, and a musl C compiler for crates with C parts
#   util-linux      setpriv and script, used by the tests; procps: kill, ps
#   file            the static-binary check
#   openssl         a local TLS server for the fetch-rootfs HTTPS test
set -eu
need=""
for pkg in busybox-static gcc musl-tools util-linux procps file iproute2 curl ca-certificates openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "setup: installing$need"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need
fi
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
fi
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
for comp in rustfmt clippy; do
    rustup component list --installed | grep -q "^$comp" || rustup component add "$comp"
done
