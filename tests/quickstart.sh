#!/bin/sh
# Build box, make a root filesystem from the host's busybox in images/busybox, and start a
# shell in a container named "demo" on it. Extra arguments go to `box container`.
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
if ! command -v cargo >/dev/null 2>&1; then . "$HOME/.cargo/env"; fi
cargo build --release -q
box=target/x86_64-unknown-linux-musl/release/box
root=images/busybox
if [ ! -x "$root/bin/busybox" ]; then
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/usr/local/bin"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
    printf 'root:x:0:\ntty:x:5:\n' > "$root/etc/group"
fi
cp "$box" "$root/usr/local/bin/box"
"$root/usr/local/bin/box" --install "$root/usr/local/bin" >/dev/null
exec "$box" container "$root" demo "$@"
