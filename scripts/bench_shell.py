"""The sandbox shell against bash and dash doing the same work in the same run.

Each row runs one script in our shell (a fresh ``sh -c`` in an in-process kernel over a memory
store, the programs of ``kernel.userland``) and in the host's bash and dash (in a tmpfs
directory), and prints seconds and the ratio to bash.  Targets (issue 13): the builtin loop within
5x of bash, spawns >= 5,000/s, the pipeline >= 500 MB/s, a short script <= 1 ms median.

    scripts/bench-shell [--quick] [--fuse-only | --no-fuse]

Last, the mount: a real ``vfsfuse mount``, the host's open/read/lookup latency (p99) idle and
while a CPU-heavy job runs in the daemon's kernel (target p99 <= 20 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402

from kernel.kernel import Kernel  # noqa: E402
from kernel.userland import standard_registry  # noqa: E402
from vfsfuse.storage.store import memory_vfs  # noqa: E402

MIB = 1 << 20


def cases(quick: bool) -> list[tuple[str, str, str]]:
    n = 20_000 if quick else 100_000
    spawns = 500 if quick else 2_000
    size = (32 if quick else 256) * MIB
    return [
        (f"builtin loop ({n:,} iterations)", f"x=0; for i in $(seq {n}); do x=$((x+i)); done; echo $x", "loop"),
        (f"{spawns:,} spawns of true", f"for i in $(seq {spawns}); do true_cmd; done", "spawn"),
        (f"4-stage pipeline, {size // MIB} MiB", f"head -c {size} /dev/zero | cat | cat | wc -c", "pipe"),
    ]


SHORT_SCRIPTS = [
    "echo hello",
    "x=3; y=4; echo $((x*y))",
    "for f in a b c; do echo $f; done | wc -l",
    "printf '%s\\n' one two three | grep t",
    "mkdir -p /tmp/w && echo data > /tmp/w/f && cat /tmp/w/f",
    "a=(1 2 3); echo ${#a[@]} ${a[1]}",
    "case abc in a*) echo yes;; esac",
    "[[ foo == f* ]] && echo match",
    "f() { echo $1; }; f arg",
    "echo $(( $(echo 2) + 3 ))",
]


async def ours(script: str, kernel: Kernel, spawn_exe: str) -> float:
    script = script.replace("true_cmd", spawn_exe)
    t = time.perf_counter()
    r = await kernel.run(["sh", "-c", script], timeout=600)
    dt = time.perf_counter() - t
    if r.status != 0:
        raise SystemExit(f"our shell failed ({r.status}) on {script!r}: {r.stderr[:300]!r}")
    return dt


def host(shell: str, script: str, cwd: str) -> float:
    script = script.replace("true_cmd", "/bin/true")
    t = time.perf_counter()
    subprocess.run([shell, "-c", script], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


async def main_async(args: argparse.Namespace) -> None:
    async with trio.open_nursery() as nursery:
        registry = standard_registry()
        if "true" not in registry.names():  # the coreutils `true` program, if the programs lack it
            from kernel.programs.testprogs import prog_true

            registry.register("true", prog_true)
        kernel = Kernel(memory_vfs(), programs=registry)
        await kernel.boot(nursery)
        try:
            with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
                print(f"{'work':40} {'ours s':>9} {'bash s':>9} {'dash s':>9} {'ours/bash':>10}")
                for name, script, kind in cases(args.quick):
                    a = await ours(script, kernel, "/bin/true")
                    b = host("bash", script, tmp)
                    d = host("dash", script, tmp) if kind != "loop" else float("nan")
                    extra = ""
                    if kind == "spawn":
                        n = int(name.split()[0].replace(",", ""))
                        extra = f"   {n / a:,.0f} spawns/s (target >= 5,000)"
                    elif kind == "pipe":
                        mb = int(name.split(",")[1].split()[0])
                        extra = f"   {mb * MIB / a / 1e6:,.0f} MB/s (target >= 500)"
                    elif kind == "loop":
                        extra = "   target: within 5x of bash"
                    print(f"{name:40} {a:9.3f} {b:9.3f} {d:9.3f} {a / b:10.1f}{extra}")
                times = []
                for _ in range(10 if args.quick else 20):
                    for script in SHORT_SCRIPTS:
                        times.append(await ours(script, kernel, "/bin/true") * 1000)
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"{'short scripts (' + str(len(times)) + ' runs), ms':40} median {statistics.median(times):.2f}"
                      f"  p99 {p99:.2f}   (Kernel.run; target <= 1 ms median)")
        finally:
            await kernel.shutdown()
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- the mount under sandbox load
VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))

#: CPU-heavy jobs run in the mount daemon's kernel (``vfsfuse exec``) while the host probes the
#: mount: (name, set-up, job).  The set-up (building the input inside the sandbox) runs first,
#: unprobed; making a big input is a row of its own (seq).
FUSE_LOADS = [
    ("seq of 50 MB into a file", "", "seq 6000000 > /tmp/n"),
    ("sort of 50 MB", "test -s /tmp/n || seq 6000000 > /tmp/n", "sort -r /tmp/n > /tmp/s"),
    ("grep -r over a tree", "mkdir -p /tmp/t; for d in 1 2 3 4 5 6 7 8; do mkdir -p /tmp/t/$d; "
     "for f in 1 2 3 4 5 6 7 8 9 10; do seq 20000 > /tmp/t/$d/$f; done; done",
     "for i in $(seq 30); do grep -r 1234 /tmp/t | wc -l; done"),
    ("awk loop", "", "awk 'BEGIN { for (i = 0; i < 3000000; i++) s += i % 7; print s }'"),
    ("shell loop", "", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"),
]
_QUICK = {"6000000": "600000", "200000": "30000", "3000000": "300000", "seq 30)": "seq 5)"}


def _p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def _probe(mnt: Path, stop: threading.Event, out: list[float], n: int | None = None) -> None:
    """Host-side requests that each reach the daemon: open+read+close of a file (FUSE sends
    every open) and a lookup of a name never asked before (no cached entry)."""
    target = str(mnt / "probe.txt")
    i = 0
    while not stop.is_set() and (n is None or i < n):
        i += 1
        t = time.perf_counter()
        fd = os.open(target, os.O_RDONLY)
        os.read(fd, 4096)
        os.close(fd)
        try:
            os.stat(str(mnt / f"absent-{os.getpid()}-{i}"))
        except FileNotFoundError:
            pass
        out.append((time.perf_counter() - t) * 1000)
        time.sleep(0.003)


def fuse_latency(quick: bool) -> None:
    """p99 of host requests on a real mount, idle and while each sandbox load runs."""
    if not os.path.exists("/dev/fuse"):
        print("mount latency: skipped (no /dev/fuse)")
        return
    from vfsfuse.storage.store import create_store

    with tempfile.TemporaryDirectory() as base_s:
        base = Path(base_s)
        store, mnt = base / "store", base / "mnt"
        store.mkdir()
        mnt.mkdir()
        create_store(str(store))
        env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(base / "runtime"))
        p = subprocess.run([VFSFUSE, "mount", str(store), str(mnt)], env=env, capture_output=True, text=True)
        if p.returncode:
            print(f"mount latency: mount failed: {p.stderr.strip()}")
            return
        try:
            (mnt / "probe.txt").write_bytes(b"probe\n" * 100)
            idle: list[float] = []
            _probe(mnt, threading.Event(), idle, n=100 if quick else 300)
            print(f"{'host open+read+lookup on the mount, idle':52} p99 {_p99(idle):6.2f} ms"
                  f"  median {statistics.median(idle):5.2f} ms")
            for name, setup, script in FUSE_LOADS:
                if quick:
                    for big, small in _QUICK.items():
                        setup, script = setup.replace(big, small), script.replace(big, small)
                if setup:
                    subprocess.run([VFSFUSE, "exec", str(mnt), "--", setup], env=env, check=True,
                                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                lat: list[float] = []
                stop = threading.Event()
                th = threading.Thread(target=_probe, args=(mnt, stop, lat), daemon=True)
                t = time.perf_counter()
                job = subprocess.Popen([VFSFUSE, "exec", str(mnt), "--", script], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
                th.start()
                _, err = job.communicate()
                stop.set()
                th.join()
                dt = time.perf_counter() - t
                ok = "" if job.returncode == 0 else f"  (job failed {job.returncode}: {err.decode()[-200:]!r})"
                print(f"{'  while ' + name + f' ({dt:.1f} s)':52} p99 {_p99(lat):6.2f} ms"
                      f"  median {statistics.median(lat):5.2f} ms  max {max(lat):7.2f} ms"
                      f"  ({len(lat)} probes; target p99 <= 20 ms){ok}")
        finally:
            subprocess.run([VFSFUSE, "umount", str(mnt)], env=env, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller figures, for a smoke run")
    ap.add_argument("--fuse-only", action="store_true", help="only the mount latency under sandbox load")
    ap.add_argument("--no-fuse", action="store_true", help="leave out the mount latency")
    args = ap.parse_args()
    if not args.fuse_only:
        trio.run(main_async, args)
    if not args.no_fuse:
        fuse_latency(args.quick)


if __name__ == "__main__":
    main()
