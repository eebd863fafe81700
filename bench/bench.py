#!/usr/bin/env python3
"""Benchmarks of box against crun, runc and bubblewrap, side by side in one run.

Run through `just bench` (bench/run.sh), as root. Every figure in docs/benchmarks.md is
written by this script from the run it just made; the raw data goes to docs/bench-data/.
Nothing here is a test: there are no thresholds that fail, only figures and the targets
they are compared with.

Two measures of start-up, because they answer different questions:
- full run: hyperfine over the whole command, from launch until it exits, as issue 7 words
  it. It includes what each runtime does after the payload ended (teardown, cleanup).
- start-up proper: from launch until the payload runs. Every runtime runs the same payload,
  busybox `echo ready`, with its stdout a pipe to this script; the time is taken when the
  line can be read. Runtimes are interleaved in a random order each round, so a noisy
  neighbour on the machine hits all of them alike. The same runs also give the time to
  exit, measured the same way for everyone.
"""

import argparse
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/box")
WORK = os.path.join(ROOT, "bench/work")
DOCS = os.path.join(ROOT, "docs")
DATA = os.path.join(DOCS, "bench-data")
ROOTFS = os.path.join(WORK, "rootfs")
PREFIX = "bench-"  # every container, link and group this script makes is named bench-*

# Capabilities box keeps (Docker's default set); the OCI bundles get the same.
CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
    "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
]
MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# box's namespaces: mount, PID, UTS, IPC, network, cgroup. Every peer gets the same.
NAMESPACES = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
PAYLOAD = ["/bin/echo", "ready"]
TRUE = ["/bin/true"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def first_line(cmd):
    try:
        out = sh(cmd, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "not installed"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cgroup_layout():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "v2 (unified)"
    if os.path.ismount("/sys/fs/cgroup/unified"):
        return "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
    return "v1"


def kernel_config(keys):
    """CONFIG_ lines that explain the RCU costs, when the kernel exposes its config."""
    text = ""
    for path in ["/proc/config.gz", f"/boot/config-{platform.release()}"]:
        try:
            if path.endswith(".gz"):
                import gzip
                with gzip.open(path, "rt") as f:
                    text = f.read()
            else:
                with open(path) as f:
                    text = f.read()
            break
        except OSError:
            continue
    found = []
    for k in keys:
        m = re.search(rf"^{k}=(\S+)$", text, re.M)
        found.append(f"{k}={m.group(1)}" if m else f"{k} not set" if text else f"{k} unknown")
    return ", ".join(found)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
               check=False).stdout.strip()
    run_fs = sh(["findmnt", "-n", "-o", "FSTYPE", "-T", "/run"], check=False).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{mem_kb / 1048576:.1f} GiB",
        "kernel": platform.release(),
        "kernel config": kernel_config(["CONFIG_HZ", "CONFIG_PREEMPT_RCU", "CONFIG_RCU_LAZY"]),
        "cgroups": cgroup_layout(),
        "/run file system": run_fs or "unknown",
        "box": f"{first_line([BOX, '--version'])} (commit {commit or '?'}{', modified' if dirty else ''})",
        "crun": first_line(["crun", "--version"]),
        "runc": first_line(["runc", "--version"]),
        "bwrap": first_line(["bwrap", "--version"]),
        "unshare": first_line(["unshare", "--version"]),
        "hyperfine": first_line(["hyperfine", "--version"]),
        "busybox": first_line([os.path.join(ROOTFS, "bin/busybox")]).split(" multi-call")[0],
        "load average at start": loadavg(),
    }


# ---------------------------------------------------------------- preparation


def prepare_rootfs():
    """The busybox rootfs every runtime runs: made by box itself, refreshed each run."""
    log(f"rootfs: {ROOTFS}")
    sh([BOX, "fetch-rootfs", "busybox", "--dest", ROOTFS, "--force"])


def oci_config(args, hooks=None):
    cfg = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/root"],
            "cwd": "/",
            "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": ROOTFS, "readonly": False},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in NAMESPACES],
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    }
    if hooks:
        cfg["hooks"] = hooks
    return cfg


def bundle(name, args, hooks=None):
    path = os.path.join(WORK, f"bundle-{name}")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(oci_config(args, hooks), f, indent=2)
    return path


# An OCI createRuntime hook: what a crun user without CNI does by hand with ip(8). The
# container's address comes from the number at the end of its id (bench-...-N: 10.88.250.N),
# its MAC from the address, as box makes them, so a reused address never meets a stale
# neighbour entry.
NET_HOOK = r"""#!/bin/sh
set -e
state=$(cat)
pid=$(printf '%s' "$state" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
n=$(printf '%s' "$state" | sed -n 's/.*"id": *"[^"]*-\([0-9]*\)".*/\1/p')
host=bxc$pid
mac=$(printf '0e:b0:0a:58:fa:%02x' "$n")
ip link add "$host" type veth peer name eth0 address "$mac" netns "$pid"
ip link set "$host" master box0 up
nsenter -t "$pid" -n ip addr add "10.88.250.$n/16" dev eth0
nsenter -t "$pid" -n ip link set eth0 up
nsenter -t "$pid" -n ip link set lo up
nsenter -t "$pid" -n ip route add default via 10.88.0.1
"""


def net_hook():
    hook = os.path.join(WORK, "net-hook.sh")
    with open(hook, "w") as f:
        f.write(NET_HOOK)
    os.chmod(hook, 0o755)
    return {"createRuntime": [{"path": hook}]}


def crun_blocking_controllers():
    """crun 1.8 refuses a hybrid layout whose cgroup2 still offers controllers (it cannot
    place them). Those controllers (hugetlb, here) are bound to a v1 hierarchy for the run."""
    path = "/sys/fs/cgroup/unified/cgroup.controllers"
    if cgroup_layout().startswith("hybrid") and os.path.exists(path):
        with open(path) as f:
            return f.read().split()
    return []


class Machine:
    """What the run changes on the host, undone on every exit path: the crun workaround's
    mounts, and any container, link or state the peers left behind."""

    def __init__(self):
        self.mounted = []
        self.notes = []

    def __enter__(self):
        for ctl in crun_blocking_controllers():
            target = f"/sys/fs/cgroup/{ctl}"
            if os.path.ismount(target):
                continue
            made = not os.path.exists(target)
            os.makedirs(target, exist_ok=True)
            r = sh(["mount", "-t", "cgroup", "-o", ctl, "cgroup", target], check=False)
            if r.returncode == 0:
                self.mounted.append((target, made))
                note = (f"crun workaround: the unified hierarchy offered {ctl}, which crun "
                        f"1.8 refuses on a hybrid layout; {ctl} was bound to a v1 hierarchy "
                        f"at {target} for the run and unmounted after")
                self.notes.append(note)
                log(note)
            elif made:
                os.rmdir(target)
        return self

    def __exit__(self, *exc):
        for rt in ("crun", "runc"):
            out = sh([rt, "list", "-q"], check=False).stdout.split()
            for cid in out:
                if cid.startswith(PREFIX):
                    sh([rt, "delete", "-f", cid], check=False)
        for target, made in self.mounted:
            sh(["umount", target], check=False)
            if made:
                try:
                    os.rmdir(target)
                except OSError:
                    pass


# ---------------------------------------------------------------- measurement


def stats(samples):
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "n": len(samples),
    }


def hyperfine(name, commands, runs, warmup, blocks):
    """hyperfine over [(label, command)], `runs` runs of each in all, as `blocks` hyperfine
    invocations each running every command in turn (rotating which goes first), so a busy
    minute on the machine falls on every runtime rather than on one. Returns {label: stats}
    in ms over all runs; each invocation's JSON export goes to DATA/name-N.json."""
    log(f"{name}: hyperfine, {runs} runs of each of {', '.join(l for l, _ in commands)}, "
        f"in {blocks} blocks")
    times = {label: [] for label, _ in commands}
    for b in range(blocks):
        out = os.path.join(DATA, f"{name}-{b + 1}.json")
        cmd = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs",
               str(max(1, runs // blocks)), "--export-json", out]
        for label, command in commands[b % len(commands):] + commands[:b % len(commands)]:
            cmd += ["-n", label, command]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            for r in json.load(f)["results"]:
                times[r["command"]] += [t * 1000 for t in r["times"]]
    return {label: stats(t) for label, t in times.items()}


class Launch:
    """One run of a command whose payload writes a line to its stdout: the time until the
    line can be read (the payload runs) and until the command exits, in ms."""

    def __init__(self):
        self.null = os.open("/dev/null", os.O_RDWR)
        self.err = os.open(os.path.join(WORK, "launch.stderr"),
                           os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def once(self, argv, timeout=10.0):
        os.ftruncate(self.err, 0)
        os.lseek(self.err, 0, os.SEEK_SET)
        r, w = os.pipe()
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.null, 0), (os.POSIX_SPAWN_DUP2, w, 1),
            (os.POSIX_SPAWN_DUP2, self.err, 2)])
        os.close(w)
        p = select.poll()
        p.register(r, select.POLLIN)
        ready = p.poll(timeout * 1000)
        t1 = time.perf_counter_ns()
        line = os.read(r, 64) if ready else b""
        if not line:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        t2 = time.perf_counter_ns()
        os.close(r)
        if line != b"ready\n" or status != 0:
            os.lseek(self.err, 0, os.SEEK_SET)
            err = os.read(self.err, 4096).decode(errors="replace").strip()
            raise RuntimeError(f"{' '.join(argv)}: payload said {line!r}, status {status}: {err}")
        return (t1 - t0) / 1e6, (t2 - t0) / 1e6


def interleaved(name, commands, rounds, pause=0.0):
    """Start-up proper: every command once per round, in a new random order each round.

    Back to back (pause 0), each measured run directly follows an unmeasured run of the same
    command, as in a hyperfine loop: what one run leaves warm for the next (caches, and on
    cgroup v1 the lock behind moving a task by pid, see the isolated starts) is warm for
    every runtime alike, whatever ran before it in the round. With a pause, each run is
    measured after that much quiet instead.
    Returns {label: {"running": stats, "exited": stats}}; raw samples go to DATA/name.json."""
    log(f"{name}: {rounds} interleaved rounds of {', '.join(l for l, _ in commands)}"
        + (f", {pause * 1000:.0f} ms apart" if pause else ", each run after one of its own"))
    launch = Launch()
    for _, argv in commands:  # warm-up: caches, the bridge
        launch.once(argv)
        launch.once(argv)
    raw = {label: {"running": [], "exited": []} for label, _ in commands}
    for _ in range(rounds):
        order = list(commands)
        random.shuffle(order)
        for label, argv in order:
            if pause:
                time.sleep(pause)
            else:
                launch.once(argv)
            a, b = launch.once(argv)
            raw[label]["running"].append(a)
            raw[label]["exited"].append(b)
    with open(os.path.join(DATA, f"{name}.json"), "w") as f:
        json.dump(raw, f)
    return {label: {k: stats(v) for k, v in d.items()} for label, d in raw.items()}


def which(cmd):
    path = shutil.which(cmd)
    if not path:
        sys.exit(f"bench: {cmd} not found (bench/run.sh installs it)")
    return path


def box_argv(name, args, payload):
    return [BOX, "container", ROOTFS, name] + args + ["--"] + payload


def nonet_commands(payload, ids):
    b = bundle("nonet-" + payload[-1].strip("/").replace("/", "-"), payload)
    return [
        ("box", box_argv(f"{PREFIX}box-{ids}", ["--net", "none"], payload)),
        ("crun", [which("crun"), "run", "--bundle", b, f"{PREFIX}crun-{ids}"]),
        ("runc", [which("runc"), "run", "--bundle", b, f"{PREFIX}runc-{ids}"]),
        ("bwrap", [which("bwrap"), "--unshare-pid", "--unshare-net", "--unshare-ipc",
                   "--unshare-uts", "--unshare-cgroup", "--bind", ROOTFS, "/", "--proc",
                   "/proc", "--dev", "/dev"] + payload),
        ("unshare (floor)", [which("unshare"), "-m", "-p", "-u", "-i", "-n", "-C", "-f",
                             f"--root={ROOTFS}"] + payload),
        ("busybox on the host", [os.path.join(ROOTFS, "bin/busybox"),
                                 os.path.basename(payload[0])] + payload[1:]),
    ]


def net_commands(payload, ids):
    tag = "true" if payload == TRUE else "echo"
    b_net = bundle(f"net-{tag}", payload, net_hook())
    b_plain = bundle(f"nonet-{tag}", payload)
    return [
        ("box (bridge + veth)", box_argv(f"{PREFIX}boxnet-{ids}", [], payload)),
        ("crun + ip (veth)", [which("crun"), "run", "--bundle", b_net,
                              f"{PREFIX}crunnet-{ids}-2"]),
        ("crun (no network)", [which("crun"), "run", "--bundle", b_plain,
                               f"{PREFIX}crun-{ids}"]),
    ]


def as_hyperfine(commands):
    return [(label, " ".join(argv)) for label, argv in commands]


def first_echo(runs):
    """From launching a container running echo-server until echo-client on the host has its
    echo back. The server says it listens on its stdout; the client is started then."""
    client = os.path.join(ROOTFS, "usr/local/bin/echo-client")
    b = bundle("echo-server", ["echo-server", "--port", "7000"], net_hook())
    raw = {"box (bridge + veth)": [], "crun + ip (veth)": []}
    log(f"first-echo: {runs} runs of each, interleaved")
    for i in range(runs):
        n = 10 + i % 200
        cases = [
            ("box (bridge + veth)", f"10.88.251.{n}",
             box_argv(f"{PREFIX}echo-{i}", ["--ip", f"10.88.251.{n}/16"],
                      ["echo-server", "--port", "7000"])),
            ("crun + ip (veth)", f"10.88.250.{n}",
             [which("crun"), "run", "--bundle", b, f"{PREFIX}crunecho-{n}"]),
        ]
        random.shuffle(cases)
        for label, ip, argv in cases:
            cid = argv[-1] if argv[0] != BOX else None
            t0 = time.perf_counter_ns()
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = p.stdout.readline()
                if b"listening" not in line:
                    raise RuntimeError(f"{label}: echo-server did not start: {line!r} "
                                       f"{p.stderr.read(2000)!r}")
                r = subprocess.run([client, f"{ip}:7000", "hello"], capture_output=True)
                t1 = time.perf_counter_ns()
                if r.returncode != 0:
                    raise RuntimeError(f"{label}: echo-client: {r.stderr.decode().strip()}")
            finally:
                # box forwards SIGTERM to the server through its init; in crun's container
                # the server is PID 1, which ignores signals it has no handler for.
                if cid:
                    sh(["crun", "kill", cid, "KILL"], check=False)
                else:
                    p.send_signal(signal.SIGTERM)
                p.communicate(timeout=20)
            raw[label].append((t1 - t0) / 1e6)
    with open(os.path.join(DATA, "first-echo.json"), "w") as f:
        json.dump(raw, f)
    return {k: stats(v) for k, v in raw.items()}


def scale(count):
    """`count` containers with networking and a memory limit started all at once, each
    printing its address and then waiting on its stdin until all of them are up (so all hold
    their addresses at the same time), vs the same started one after another."""
    payload = ["/bin/sh", "-c", "ip -4 -o addr show dev eth0; read x; exit 0"]

    def launch(name, stdin):
        return subprocess.Popen(box_argv(name, ["--memory", "64M"], payload), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    log(f"scale: {count} containers at once, then {count} one after another")
    before = leftovers()
    start = time.monotonic()
    procs = [launch(f"{PREFIX}c{i}", subprocess.PIPE) for i in range(count)]
    lines = [p.stdout.readline() for p in procs]  # every container up, holding its address
    up = (time.monotonic() - start) * 1000
    for p in procs:
        p.stdin.close()  # the `read` ends, the container exits: all of them at once
    outs = []
    for p, line in zip(procs, lines):
        p.wait()
        outs.append((line + p.stdout.read(), p.stderr.read(), p.returncode))
    concurrent = (time.monotonic() - start) * 1000
    failures = [(o, e, rc) for o, e, rc in outs if rc != 0 or "inet " not in o]
    ips = [m.group(1) for o, _, rc in outs for m in [re.search(r"inet (\S+)/", o)] if m]
    left_concurrent = leftovers()

    start = time.monotonic()
    seq_fail = []
    for i in range(count):
        p = launch(f"{PREFIX}s{i}", subprocess.DEVNULL)
        o, e = p.communicate()
        if p.returncode != 0 or "inet " not in o:
            seq_fail.append(e.strip())
    sequential = (time.monotonic() - start) * 1000
    res = {
        "count": count,
        "all_up_ms": up,
        "concurrent_ms": concurrent,
        "sequential_ms": sequential,
        "concurrent_failures": len(failures),
        "sequential_failures": len(seq_fail),
        "distinct_ips": len(set(ips)),
        "left_before": before,
        "left_after_concurrent": left_concurrent,
        "left_after": leftovers(),
        "errors": ([e.strip() for _, e, _ in failures] + seq_fail)[:5],
    }
    with open(os.path.join(DATA, "scale.json"), "w") as f:
        json.dump(res, f, indent=2)
    return res


def leftovers():
    """What this script's containers left on the host: state, links, cgroups, mounts. Only
    bench-* names count: other people's containers may run on the machine meanwhile."""
    left = []
    if os.path.isdir("/run/box"):
        left += [f"/run/box/{e}" for e in os.listdir("/run/box") if PREFIX in e]
    links = sh(["ip", "-o", "link", "show"], check=False).stdout
    # box names a host veth bx + the container name's first four bytes + a hash.
    left += [l.split(": ")[1].split("@")[0] for l in links.splitlines()
             if re.match(r"^\d+: bxbenc", l)]
    for base in os.listdir("/sys/fs/cgroup"):
        d = os.path.join("/sys/fs/cgroup", base, "box")
        if os.path.isdir(d):
            left += [os.path.join(d, g) for g in os.listdir(d) if g.startswith(PREFIX)]
    with open("/proc/self/mountinfo") as f:
        left += [l.split()[4] for l in f if ROOTFS in l]
    return left


def throughput(seconds, rounds):
    """echo-client --bench from the host: to a container over the veth, and over loopback,
    alternating, `rounds` times each; the median round counts."""
    log(f"throughput: {rounds} rounds of {seconds} s, veth and loopback alternating")
    client = os.path.join(ROOTFS, "usr/local/bin/echo-client")
    ip = "10.88.252.2"
    ctr = subprocess.Popen(box_argv(f"{PREFIX}tp", ["--ip", f"{ip}/16"],
                                    ["echo-server", "--port", "7000"]),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    host = subprocess.Popen([os.path.join(ROOTFS, "usr/local/bin/echo-server"), "--port",
                             "7001", "--bind", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    res = {}
    try:
        for p in (ctr, host):
            if b"listening" not in p.stdout.readline():
                raise RuntimeError("an echo server did not start")
        # The bridge takes the smallest MTU of its ports: another box's pair (an older box
        # used 1500) lowers it for this test too.
        bridge = sh(["ip", "-o", "link", "show", "box0"]).stdout
        ports = sh(["ip", "-o", "link", "show", "master", "box0"]).stdout
        res["mtu"] = {
            "box0": int(re.search(r"mtu (\d+)", bridge).group(1)),
            "ports": [int(x) for x in re.findall(r"mtu (\d+)", ports)],
        }
        paths = [("veth (host to container)", f"{ip}:7000"), ("loopback (host)", "127.0.0.1:7001")]
        runs = {label: [] for label, _ in paths}
        for _ in range(rounds):
            for label, target in paths:
                out = sh([client, target, "--bench", str(seconds)]).stdout
                runs[label].append(parse_bench(out))
        for label, target in paths:
            res[label] = {
                "MB/s": statistics.median(r["MB/s"] for r in runs[label]),
                "rounds MB/s": [r["MB/s"] for r in runs[label]],
                "raw": [r["raw"] for r in runs[label]],
                "latency": parse_latency(sh([client, target, "--count", "1000"]).stdout),
            }
        # Each veth round next to the loopback round that followed it: a noisy minute on the
        # machine hits both of a pair alike.
        res["ratios"] = [v["MB/s"] / l["MB/s"] for v, l in
                         zip(runs[paths[0][0]], runs[paths[1][0]]) if l["MB/s"]]
    finally:
        for p in (ctr, host):
            p.terminate()
            p.wait()
    with open(os.path.join(DATA, "throughput.json"), "w") as f:
        json.dump(res, f, indent=2)
    return res


def parse_bench(text):
    mb = re.search(r"([\d.]+)\s*MB/s", text)
    msgs = re.search(r"([\d.]+)\s*messages/s", text)
    return {"MB/s": float(mb.group(1)) if mb else 0.0,
            "messages/s": float(msgs.group(1)) if msgs else 0.0, "raw": text.strip()}


def parse_latency(text):
    m = re.search(r"min ([\d.]+ \S+), median ([\d.]+ \S+), max ([\d.]+ \S+)", text)
    return f"{m.group(1)} / {m.group(2)} / {m.group(3)}" if m else text.strip()


def peak_rss_kib(argv, is_supervisor, kill=None):
    """Start argv (a container running `sleep`), find the runtime process that stays to
    supervise it, and read its VmHWM (peak resident set) while the container runs. `kill`
    ends the container when SIGTERM to argv does not (`sleep` as PID 1 ignores it)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        for cand in [p.pid] + descendants(p.pid):
            try:
                with open(f"/proc/{cand}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
                if not is_supervisor(cmdline):
                    continue
                with open(f"/proc/{cand}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            return int(line.split()[1])
            except OSError:
                pass
        return None
    finally:
        if kill:
            sh(kill, check=False)
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def descendants(pid):
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(e))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def footprint():
    log("footprint: binary sizes, peak RSS of each runtime's supervising process")
    sleep = bundle("sleep", ["/bin/sleep", "30"])
    res = {
        "binary size (bytes)": {
            "box": os.path.getsize(BOX),
            "crun": os.path.getsize(which("crun")),
            "runc": os.path.getsize(which("runc")),
            "bwrap": os.path.getsize(which("bwrap")),
        },
        # The process the user started, which stays until the container ends.
        "supervisor peak RSS (KiB)": {
            "box": peak_rss_kib(box_argv(f"{PREFIX}rss", [], ["/bin/sleep", "30"]),
                                lambda c: c[0] == BOX.encode()),
            "crun": peak_rss_kib(["crun", "run", "--bundle", sleep, f"{PREFIX}rss-crun"],
                                 lambda c: c[:2] == [b"crun", b"run"],
                                 ["crun", "kill", f"{PREFIX}rss-crun", "KILL"]),
            "runc": peak_rss_kib(["runc", "run", "--bundle", sleep, f"{PREFIX}rss-runc"],
                                 lambda c: c[:2] == [b"runc", b"run"],
                                 ["runc", "kill", f"{PREFIX}rss-runc", "KILL"]),
            "bwrap": peak_rss_kib([which("bwrap"), "--die-with-parent", "--unshare-pid",
                                   "--unshare-net",
                                   "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
                                   "--bind", ROOTFS, "/", "--proc", "/proc", "--dev", "/dev",
                                   "/bin/sleep", "30"],
                                  lambda c: c[0].endswith(b"bwrap")),
        },
    }
    with open(os.path.join(DATA, "footprint.json"), "w") as f:
        json.dump(res, f, indent=2)
    return res


STEP = re.compile(r"box\[(\d+)\]\s+([\d.]+)ms (.*)")


def breakdown(runs):
    """Per-step timestamps of box starts (BOX_LOG=debug), median over `runs` runs, for
    --net none and for the default bridge. The narration costs about 10 us a line."""
    log(f"breakdown: {runs} narrated runs each of --net none and bridge")
    res = {}
    for mode, args in (("none", ["--net", "none"]), ("bridge", [])):
        steps, order, raw = {}, [], []
        for i in range(runs):
            err = sh(box_argv(f"{PREFIX}steps-{mode}", args, TRUE),
                     env=dict(os.environ, BOX_LOG="debug")).stderr
            raw.append(err)
            seen = {}
            for line in err.splitlines():
                m = STEP.match(line)
                if not m:
                    continue
                side = "child" if m.group(1) == "1" else "box"
                text = re.sub(r"\b\d{3,}\b", "N", m.group(3))
                text = re.sub(rf"{PREFIX}steps-{mode}", "NAME", text)
                text = re.sub(r"bxbenc\w+", "bxNAME", text)
                text = re.sub(r"(allocated |eth0 )\d+\.\d+\.\d+\.\d+", r"\1ADDR", text)
                key = (side, text)
                seen[key] = seen.get(key, 0) + 1
                key = (side, text, seen[key])
                if key not in steps:
                    steps[key] = []
                    order.append(key)
                steps[key].append(float(m.group(2)))
        with open(os.path.join(DATA, f"steps-{mode}.txt"), "w") as f:
            f.write("\n\n".join(raw))
        res[mode] = [(side, text, statistics.median(steps[(side, text, n)]),
                      len(steps[(side, text, n)]))
                     for side, text, n in sorted(order, key=lambda k: statistics.median(steps[k]))]
    return res


def veth_delete(runs):
    """How long the kernel takes to delete an unused veth pair, by `ip link del`, and by
    RTM_DELLINK from box at a container's exit (from its narration)."""
    log(f"veth deletion: {runs} runs of ip link add/del of a bare veth pair")
    samples = []
    for i in range(runs):
        a, b = f"bxbenchdel{i % 10}a", f"bxbenchdel{i % 10}b"
        sh(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        t0 = time.perf_counter_ns()
        sh(["ip", "link", "del", a])
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    # A pair like a container's: the host end on box0, up, the peer in a network namespace
    # of its own (made for this and deleted after).
    attached = []
    ns = "bxbenchdelns"
    sh(["ip", "netns", "add", ns])
    try:
        for i in range(runs):
            a = f"bxbenchdel{i % 10}a"
            sh(["ip", "link", "add", a, "type", "veth", "peer", "name", "eth0", "netns", ns])
            sh(["ip", "link", "set", a, "master", "box0", "up"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            t0 = time.perf_counter_ns()
            sh(["ip", "link", "del", a])
            attached.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        sh(["ip", "netns", "del", ns], check=False)
    # The same for `ip link show`, to know what starting ip(8) costs by itself.
    base = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        sh(["ip", "link", "show", "lo"])
        base.append((time.perf_counter_ns() - t0) / 1e6)
    res = {"ip link del veth": stats(samples), "ip link del attached": stats(attached),
           "ip link show lo": stats(base)}
    with open(os.path.join(DATA, "veth-delete.json"), "w") as f:
        json.dump({"ip link del veth": samples, "ip link del attached": attached,
                   "ip link show lo": base}, f)
    return res


# ---------------------------------------------------------------- report


def ms(s):
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def verdict(ok):
    return "met" if ok else "**missed**"


def report(m, notes, r, args):
    L = []
    w = L.append
    w("# Benchmarks\n")
    w("Generated by `just bench` (bench/run.sh, bench/bench.py) on the machine below: do not "
      "edit by hand, rerun it. Raw data: [`docs/bench-data/`](bench-data/). Times are in "
      "milliseconds, as median (min-max).\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    for k, v in m.items():
        w(f"| {k} | {v} |")
    w(f"| load average at end | {r['load_end']} |")
    w("")
    w("The machine is shared: other people's containers and tests may run during a benchmark. "
      "Runtimes compared in the same table ran in the same minutes; the start-up-proper "
      "figures interleave them run by run.\n")
    for n in notes:
        w(f"Note: {n}.\n")
    targets = []

    # 1. start-up without network
    nh, ni = r.get("nonet_full"), r.get("nonet_proper")
    if nh and ni:
        w("## 1. Start-up without network\n")
        w("`box container ROOTFS NAME --net none -- CMD` against `crun run` and `runc run` "
          "(OCI bundles over the same rootfs: the same namespaces, mount, PID, UTS, IPC, "
          "network and cgroup; box's mounts, masked and read-only paths, capabilities and "
          "no_new_privs; the cgroupfs manager), `bwrap` with the same unshares, `unshare "
          "--root` (the namespace syscalls and nothing else: a floor) and busybox run "
          "directly on the host.\n")
        w(f"**Full run** (hyperfine, {args.runs} runs of each in {args.blocks} blocks of "
          f"{args.runs // args.blocks} after {args.warmup} warm-up, the runtimes' order rotated "
          "from block to block; CMD `/bin/true`; launch until the command exits):\n")
        w("| runtime | full run | ratio to crun |\n|---|---|---|")
        c = nh["crun"]["median"]
        for k, s in nh.items():
            w(f"| {k} | {ms(s)} | {s['median'] / c:.2f} |")
        w("")
        w(f"**Start-up proper** ({args.rounds} interleaved rounds; CMD `/bin/echo ready` into "
          "a pipe to the bench; *running*: launch until the line can be read, *exited*: "
          "until the command exits; in a new random order each round, each measured run "
          "right after an unmeasured one of the same runtime, so every runtime finds what "
          "its previous run left warm, as in a hyperfine loop):\n")
        w("| runtime | running | ratio to crun | exited | ratio to crun |\n|---|---|---|---|---|")
        c1, c2 = ni["crun"]["running"]["median"], ni["crun"]["exited"]["median"]
        for k, s in ni.items():
            w(f"| {k} | {ms(s['running'])} | {s['running']['median'] / c1:.2f} | "
              f"{ms(s['exited'])} | {s['exited']['median'] / c2:.2f} |")
        w("")
        a = nh["box"]["median"] / nh["crun"]["median"]
        b = ni["box"]["running"]["median"] / c1
        targets.append(("start-up without network, full run: box / crun <= 0.5",
                        f"{a:.2f} ({nh['box']['median']:.2f} / {nh['crun']['median']:.2f} ms)",
                        a <= 0.5))
        targets.append(("start-up without network, start-up proper: box / crun <= 0.5",
                        f"{b:.2f} ({ni['box']['running']['median']:.2f} / {c1:.2f} ms)",
                        b <= 0.5))

    cold = r.get("cold")
    if cold:
        w(f"**Isolated starts** ({args.cold_rounds} interleaved rounds, "
          f"{args.cold_pause * 1000:.0f} ms of quiet before each start): the same start-up "
          "proper when nothing ran just before, as when someone types one command:\n")
        w("| runtime | running | exited |\n|---|---|---|")
        for k, s in cold.items():
            w(f"| {k} | {ms(s['running'])} | {ms(s['exited'])} |")
        w("")
        w("On cgroup v1 a runtime that moves a process into a group by pid (a write to "
          "`cgroup.procs`) takes a global lock whose first writer after a quiet spell waits "
          "for an RCU grace period (several ms on this kernel). Back-to-back runs keep it "
          "warm; isolated ones pay it. box's init joins its v1 groups itself (it writes 0 to "
          "each group's `tasks`), which the kernel does without that lock.\n")

    # 2. start-up with networking
    th, ti = r.get("net_full"), r.get("net_proper")
    if th and ti:
        w("## 2. Start-up with networking\n")
        w("box's default mode: a veth pair to the bridge `box0`, an address, a default route, "
          "all over netlink. crun + ip: the same pair, bridge port, address, MAC and route "
          "made by an OCI createRuntime hook running ip(8) and nsenter(1), as someone without "
          "CNI would. crun without network for the ratio the target names.\n")
        w(f"**Full run** (hyperfine, {args.net_runs} runs of each in {args.blocks} blocks, as "
          "above; `/bin/true`):\n")
        w("| runtime | full run | ratio to crun (no network) |\n|---|---|---|")
        base = th["crun (no network)"]["median"]
        for k, s in th.items():
            w(f"| {k} | {ms(s)} | {s['median'] / base:.2f} |")
        w("")
        w(f"**Start-up proper** ({args.net_rounds} interleaved rounds; `/bin/echo ready`):\n")
        w("| runtime | running | ratio to crun (no network) | exited |\n|---|---|---|---|")
        b1 = ti["crun (no network)"]["running"]["median"]
        for k, s in ti.items():
            w(f"| {k} | {ms(s['running'])} | {s['running']['median'] / b1:.2f} | "
              f"{ms(s['exited'])} |")
        w("")
        a = th["box (bridge + veth)"]["median"] / base
        b = ti["box (bridge + veth)"]["running"]["median"] / b1
        targets.append(("start-up with networking, full run: box / crun-without-network <= 1.0",
                        f"{a:.2f} ({th['box (bridge + veth)']['median']:.2f} / {base:.2f} ms)",
                        a <= 1.0))
        targets.append(("start-up with networking, start-up proper: box / crun-without-network "
                        "<= 1.0",
                        f"{b:.2f} ({ti['box (bridge + veth)']['running']['median']:.2f} / "
                        f"{b1:.2f} ms)", b <= 1.0))
        w("The full run of box with networking is dominated by its exit: see *What the exit "
          "costs* below.\n")

    echo = r.get("echo")
    if echo:
        w(f"## 3. Time to first echo ({args.echo_runs} runs each, interleaved)\n")
        w("From launching a container running `echo-server` until `echo-client` on the host "
          "has its echo back: the bench waits for the server's `listening` line on the "
          "container's stdout, then runs the client against the container's address.\n")
        w("| runtime | launch to first echo |\n|---|---|")
        for k, s in echo.items():
            w(f"| {k} | {ms(s)} |")
        w("")

    sc = r.get("scale")
    if sc:
        w(f"## 4. Scale: {sc['count']} containers at once\n")
        w("Each `box container ... --memory 64M -- sh -c 'ip -4 -o addr show dev eth0; read "
          "x; exit 0'`, with networking (the default). All started together: each prints its address, "
          "then waits on its stdin until every one of them is up, so all hold their addresses "
          "at once; then their stdins are closed and they exit. Then the same started one after "
          "another (stdin /dev/null: each exits at once).\n")
        w("| | value |\n|---|---|")
        w(f"| all at once: all {sc['count']} up (address printed) | {sc['all_up_ms']:.0f} ms |")
        w(f"| wall time, all at once | {sc['concurrent_ms']:.0f} ms |")
        w(f"| wall time, one after another | {sc['sequential_ms']:.0f} ms |")
        w(f"| failures (at once / one after another) | {sc['concurrent_failures']} / "
          f"{sc['sequential_failures']} |")
        w(f"| distinct addresses | {sc['distinct_ips']} of {sc['count']} |")
        w(f"| left behind (state, links, cgroups, mounts) | "
          f"{', '.join(sc['left_after']) or 'nothing'} |\n")
        if sc["errors"]:
            w("Errors: " + "; ".join(f"`{e}`" for e in sc["errors"]) + "\n")
        fails = sc["concurrent_failures"] + sc["sequential_failures"]
        ok = (fails == 0 and sc["concurrent_ms"] <= sc["sequential_ms"]
              and sc["distinct_ips"] == sc["count"] and not sc["left_after"])
        targets.append((f"{sc['count']} concurrent starts: 0 failures, wall time <= "
                        f"{sc['count']} sequential",
                        f"{fails} failures, {sc['concurrent_ms']:.0f} ms vs "
                        f"{sc['sequential_ms']:.0f} ms, {sc['distinct_ips']} distinct addresses, "
                        f"{len(sc['left_after'])} left behind", ok))

    tp = r.get("tp")
    if tp:
        w(f"## 5. Network throughput and latency\n")
        w(f"`echo-client --bench {args.seconds}` (1 KiB lines streamed and echoed back) from the "
          f"host to `echo-server` in a box container over the veth, and to one on the host over "
          f"loopback: {args.tp_rounds} rounds of each, alternating. The ratio is taken per "
          "round (veth round / the loopback round right after it), its median counts. Round "
          "trips: `echo-client --count 1000`, one line at a time. Client, server and the "
          "kernel's work share the machine's CPUs, so a busy neighbour moves single rounds a "
          "lot.\n")
        w("| path | MB/s, median | rounds | round trip min / median / max |\n"
          "|---|---|---|---|")
        for k, v in tp.items():
            if k in ("ratios", "mtu"):
                continue
            rounds = ", ".join(f"{x:.0f}" for x in v["rounds MB/s"])
            w(f"| {k} | {v['MB/s']:.0f} | {rounds} | {v['latency']} |")
        w("")
        ratio = statistics.median(tp["ratios"])
        w("Ratios per round: " + ", ".join(f"{x:.2f}" for x in tp["ratios"]) + ".\n")
        mtu = tp["mtu"]
        w(f"MTU during the test: bridge box0 {mtu['box0']}, its ports "
          f"{', '.join(map(str, mtu['ports']))} (box makes its pairs with 65535; the bridge "
          "takes the smallest of its ports', so a pair of another container made with 1500, "
          "by an older box, holds the host's side of every container at 1500; loopback's MTU "
          "is 65536).\n")
        targets.append(("veth throughput >= 0.8 x loopback",
                        f"{ratio:.2f} (median of {len(tp['ratios'])} rounds; "
                        f"{tp['veth (host to container)']['MB/s']:.0f} / "
                        f"{tp['loopback (host)']['MB/s']:.0f} MB/s)", ratio >= 0.8))

    fp = r.get("fp")
    if fp:
        w("## 6. Footprint\n")
        w("| | box | crun | runc | bwrap |\n|---|---|---|---|---|")
        b = fp["binary size (bytes)"]
        w(f"| binary size (bytes) | {b['box']:,} | {b['crun']:,} | {b['runc']:,} | "
          f"{b['bwrap']:,} |")
        rss = fp["supervisor peak RSS (KiB)"]
        w(f"| supervisor peak RSS (KiB) | {rss['box']} | {rss['crun']} | {rss['runc']} | "
          f"{rss['bwrap']} |\n")
        w("box is static (musl) and holds every applet, fetch-rootfs's TLS stack included; "
          "crun and bwrap load shared libraries not counted in their size. Peak RSS is "
          "VmHWM of the process the user started, read while its container runs `sleep`.\n")
        if rss["box"] and rss["crun"]:
            targets.append(("box supervisor peak RSS <= crun's",
                            f"{rss['box']} KiB vs {rss['crun']} KiB", rss["box"] <= rss["crun"]))

    w("## Targets\n")
    w("| target | figure | |\n|---|---|---|")
    for t, fig, ok in targets:
        w(f"| {t} | {fig} | {verdict(ok)} |")
    w("")

    steps = r.get("steps")
    if steps:
        w("## Where box's start-up time goes\n")
        w(f"`BOX_LOG=debug box container ... -- /bin/true`, {args.step_runs} runs per mode: the "
          "median time of each narrated step since box started (the narration itself adds "
          "about 10 us per line). `box` is the parent, `child` the container's init.\n")
        phases = [
            ("start box, check the rootfs and the command", None, "preflight ok"),
            ("sweep leftovers, claim the name", "preflight ok", "claimed"),
            ("address and bridge (netlink)", "claimed", "bridge box0"),
            ("cgroups made, limits written, state recorded", None, "clone into"),
            ("clone into the new namespaces", "clone into", "child is pid"),
            ("child joins its cgroups; box attaches the veth, records, says go", "child is pid",
             "child: go"),
            ("child: cgroup ns, lo/eth0, hostname, mounts, pivot_root, masks, capabilities",
             "child: go", "child: start"),
            ("payload started (vfork-style clone, execve)", "child: start",
             "container started"),
            ("payload runs and exits, init exits, the kernel tears the namespaces down",
             "container started", "container exited"),
            ("cleanup: veth, cgroups, state", "container exited", "released"),
        ]

        def at(rows, prefix, last=False):
            hits = [t for _, x, t, _ in rows if x.startswith(prefix)]
            return (hits[-1] if last else hits[0]) if hits else None

        w("| phase | " + " | ".join(f"--net {m}" for m in steps) + " |")
        w("|---|" + "---|" * len(steps))
        prev = {m: 0.0 for m in steps}
        for label, start, end in phases:
            cells = []
            for mode, rows in steps.items():
                t1 = at(rows, end, last=end == "released")
                if t1 is None:
                    cells.append("-")
                    continue
                t0 = at(rows, start) if start else prev[mode]
                cells.append(f"{t1 - t0:.2f}")
                prev[mode] = t1
            w(f"| {label} | " + " | ".join(cells) + " |")
        w("| total (narrated) | " + " | ".join(f"{prev[m]:.2f}" for m in steps) + " |\n")
        w("Every step, in order:\n")
        for mode, rows in steps.items():
            w(f"<details><summary>--net {mode}</summary>\n")
            w("| ms | side | step |\n|---|---|---|")
            for side, text, t, n in rows:
                w(f"| {t:.3f} | {side} | {text}{'' if n == args.step_runs else f' ({n} runs)'} |")
            w("\n</details>\n")

    vd = r.get("veth")
    if vd and steps:
        bridge = steps.get("bridge", [])
        exited = next((t for s, x, t, _ in bridge if x.startswith("container exited")), None)
        deleted = next((t for s, x, t, _ in bridge if x.startswith("deleted veth")), None)
        released = next((t for s, x, t, _ in reversed(bridge) if x.startswith("released")), None)
        w("## What the exit costs\n")
        w("When `box container` returns, the container's veth pair and its address are gone "
          "and the name is free: box deletes the host end (RTM_DELLINK) before it releases "
          "the address and exits. The kernel's deletion of a network device waits for RCU "
          "grace periods (netdev_run_todo's rcu_barrier), and on this kernel "
          f"({m['kernel config']}) those are slow. The same deletion done by ip(8) on an "
          "unused veth pair, on the same machine:\n")
        w("| | time |\n|---|---|")
        w(f"| `ip link del` of an unused veth pair ({vd['ip link del veth']['n']} runs) | "
          f"{ms(vd['ip link del veth'])} |")
        w(f"| `ip link del` of a pair like a container's (host end up on box0, peer up in a "
          f"network namespace) | {ms(vd['ip link del attached'])} |")
        w(f"| `ip link show lo` (what starting ip(8) costs) | {ms(vd['ip link show lo'])} |")
        if exited is not None and deleted is not None:
            w(f"| box, container exited to veth deleted (narrated runs, medians) | "
              f"{deleted - exited:.2f} |")
        if exited is not None and released is not None:
            w(f"| box, container exited to state released | {released - exited:.2f} |")
        w("")
        w("box's deletion happens right after the container's init exited, while the kernel "
          "tears the container's network namespace down in a worker of its own, which takes the "
          "same rtnl lock and waits for grace periods too; ip(8) above deletes with nothing else "
          "going on.\n")
        w("crun + ip leaves the pair to the kernel, which deletes it with the container's "
          "network namespace, asynchronously, after `crun run` returned; its full run does not "
          "include that cost. The kernel's cleanup of that namespace is not free either: it "
          "runs in a kernel worker (and holds the rtnl lock a while), which the next start may "
          "meet. box deletes synchronously so that nothing of a finished container outlives "
          "the command: a TCP connection still closing can keep a namespace, and so the pair "
          "and its address, alive for minutes.\n")
    return "\n".join(L), targets


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200, help="hyperfine runs, no network")
    ap.add_argument("--net-runs", type=int, default=100, help="hyperfine runs, networking")
    ap.add_argument("--warmup", type=int, default=10, help="hyperfine warm-up runs per block")
    ap.add_argument("--blocks", type=int, default=4, help="hyperfine invocations per table")
    ap.add_argument("--rounds", type=int, default=200, help="interleaved rounds, no network")
    ap.add_argument("--net-rounds", type=int, default=100, help="interleaved rounds, networking")
    ap.add_argument("--cold-rounds", type=int, default=30)
    ap.add_argument("--cold-pause", type=float, default=0.1, help="seconds before each start")
    ap.add_argument("--echo-runs", type=int, default=30)
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=2, help="throughput round length")
    ap.add_argument("--tp-rounds", type=int, default=5)
    ap.add_argument("--step-runs", type=int, default=20)
    ap.add_argument("--only", default="",
                    help="comma list of nonet,cold,net,echo,scale,tp,fp,steps (default: all); "
                         "a partial run still writes docs/benchmarks.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    if not os.access(BOX, os.X_OK):
        sys.exit(f"bench: {BOX} missing: build it first (bench/run.sh does)")
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(DATA, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    want = lambda k: not only or k in only
    if not only:  # a full run: the raw data of an earlier one must not linger beside it
        for f in os.listdir(DATA):
            os.remove(os.path.join(DATA, f))
    prepare_rootfs()
    m = machine()
    r = {}
    t_start = time.monotonic()
    with Machine() as mach:
        # The bridge exists before any peer's hook needs it.
        sh(box_argv(f"{PREFIX}bridge", [], TRUE))
        if want("nonet"):
            r["nonet_full"] = hyperfine("startup-nonet-full", as_hyperfine(
                nonet_commands(TRUE, "h")), args.runs, args.warmup, args.blocks)
            r["nonet_proper"] = interleaved("startup-nonet-proper",
                                            nonet_commands(PAYLOAD, "i"), args.rounds)
        if want("cold"):
            r["cold"] = interleaved("startup-nonet-isolated", nonet_commands(PAYLOAD, "c")[:2],
                                    args.cold_rounds, args.cold_pause)
        if want("net"):
            r["net_full"] = hyperfine("startup-net-full", as_hyperfine(net_commands(TRUE, "h")),
                                      args.net_runs, args.warmup, args.blocks)
            r["net_proper"] = interleaved("startup-net-proper", net_commands(PAYLOAD, "i"),
                                          args.net_rounds)
        if want("echo"):
            r["echo"] = first_echo(args.echo_runs)
        if want("scale"):
            r["scale"] = scale(args.scale)
        if want("tp"):
            r["tp"] = throughput(args.seconds, args.tp_rounds)
        if want("fp"):
            r["fp"] = footprint()
        if want("steps"):
            r["steps"] = breakdown(args.step_runs)
            r["veth"] = veth_delete(20)
    r["load_end"] = loadavg()
    text, targets = report(m, mach.notes, r, args)
    with open(os.path.join(DOCS, "benchmarks.md"), "w") as f:
        f.write(text)
    for t, fig, ok in targets:
        log(f"{'met   ' if ok else 'MISSED'} {t}: {fig}")
    log(f"wrote docs/benchmarks.md in {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
