#!/bin/sh
# Benchmarks of box against crun, runc and bubblewrap, side by side in one run (issue 7), as
# root: install the peers from Debian, build box's release binary, run bench/bench.py, which
# writes docs/benchmarks.md and docs/bench-data/. Arguments go to bench.py (--help lists them).
#   crun runc bubblewrap  the runtimes box is measured against
#   hyperfine             full-run timings with warm-up, medians, min/max, JSON export
#   python3               the bench itself; jq, for reading docs/bench-data/*.json by hand
#   iproute2 util-linux   ip (the crun + ip network hook), nsenter, unshare
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench: run as root (namespaces, cgroups, veth pairs)" >&2
    exit 1
fi
sh tests/setup.sh
need=""
for pkg in crun runc bubblewrap hyperfine python3 jq iproute2 util-linux; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "bench: installing$need"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need
fi
if ! command -v cargo >/dev/null 2>&1; then . "$HOME/.cargo/env"; fi
cargo build --release -q
exec /usr/bin/python3 bench/bench.py "$@"
