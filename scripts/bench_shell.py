"""The sandbox shell against bash and dash doing the same work in the same run.

Each row runs one script in our shell (a fresh ``sh -c`` in an in-process kernel over a memory
store, the programs of ``kernel.userland``) and in the host's bash and dash (in a tmpfs
directory), and prints seconds and the ratio to bash.  Targets (issue 13): the builtin loop within
5x of bash, spawns >= 5,000/s, the pipeline >= 500 MB/s, a short script <= 1 ms median.

    scripts/bench-shell [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller figures, for a smoke run")
    trio.run(main_async, ap.parse_args())


if __name__ == "__main__":
    main()
