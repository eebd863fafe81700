#!/bin/sh
# Run every check of box, as root: formatting, lints, the release build (which must be fully
# static), unit tests and the root integration tests. BOX_REQUIRE_ROOT=1 makes a root test
# that cannot run a failure instead of a skip (CI sets it).
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
if ! command -v cargo >/dev/null 2>&1; then . "$HOME/.cargo/env"; fi

cargo fmt --check
cargo clippy --all-targets -q -- -D warnings
cargo build --release -q
bin=target/x86_64-unknown-linux-musl/release/box
file "$bin" | grep -q 'statically linked' || { echo "run: $bin is not statically linked"; exit 1; }
echo "run: $bin: $(stat -c %s "$bin") bytes, statically linked"
cargo test -q
