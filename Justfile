# Thin wrappers: every recipe is one script or cargo command you can also run by hand.

bin := "target/x86_64-unknown-linux-musl/release/box"

# build the static release binary
build:
    cargo build --release

# every requirement shown live and checked, ending with a PASS/FAIL table (as root);
# `just demo --step` pauses before each part, `just demo --rootfs images/alpine` picks the rootfs
demo *ARGS:
    sh tests/demo.sh {{ARGS}}

# run every check and test (as root), as CI does
test:
    sh tests/run.sh

# formatting and lints
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# a root filesystem in images/: busybox (offline), alpine, a tarball or a URL
rootfs SOURCE="busybox" *ARGS: build
    {{bin}} fetch-rootfs {{SOURCE}} {{ARGS}}

# a shell in a container on a busybox rootfs
shell *ARGS:
    sh tests/quickstart.sh {{ARGS}}

# box against crun, runc and bubblewrap: writes docs/benchmarks.md (as root; installs them)
bench *ARGS:
    sh bench/run.sh {{ARGS}}

# start-up time of a container running /bin/true (needs hyperfine)
startup: build
    hyperfine -N --warmup 10 -r 100 '{{bin}} container images/busybox h1 -- /bin/true'
