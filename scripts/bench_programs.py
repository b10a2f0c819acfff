"""The sandbox's programs against the host's GNU tools on the same data in the same run.

Each row runs one command line in the sandbox (an in-process kernel over a memory store, the
programs of ``kernel.userland``, the input files written into the store first) and the same
command with the GNU tool in a tmpfs directory, and prints seconds and the ratio.  Targets
(issue 14): within 5x of GNU; wc, sha256sum and gzip within 2x.

    scripts/bench-programs [--quick] [--only WORD ...] [--repeat N]

``--only`` keeps the rows whose command line contains one of the words (and writes only the
input files those rows name), for a quick before/after of one kind of work; ``--repeat``
runs each side N times and keeps the fastest (the machine is shared: one run is noise).
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402

from kernel.kernel import Kernel  # noqa: E402
from kernel.userland import standard_registry  # noqa: E402
from vfsfuse.storage.store import memory_vfs  # noqa: E402

MIB = 1 << 20


def make_data(quick: bool, wanted: set[str] | None = None) -> dict[str, bytes]:
    """The input files; with *wanted*, only the top-level names in it (the stdlib tree alone
    is cheap to make, the rest costs seconds)."""
    if wanted is not None and wanted <= {"stdlib"}:
        return stdlib_tree(quick) if wanted else {}
    rnd = random.Random(7)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(5000)]
    lines = (100_000 if quick else 1_000_000)
    text = b"\n".join(b" ".join(rnd.choice(words) for _ in range(8)) for _ in range(lines)) + b"\n"
    nums = b"\n".join(b"%d %d" % (rnd.randint(0, 10**6), i) for i in range(lines)) + b"\n"
    big = (text * (1 + (16 if quick else 256) * MIB // len(text)))[: (16 if quick else 256) * MIB]
    files = {"text.txt": text, "nums.txt": nums, "big.txt": big}
    files.update(archive_data(rnd, big, quick))
    files.update(stdlib_tree(quick))
    return files


def stdlib_tree(quick: bool) -> dict[str, bytes]:
    """The host Python's standard library (.py files only), as issue 14's grep -r, find | xargs
    and tar rows ask: thousands of real source files in a real directory layout."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "site-packages" in rel.parts or "test" in rel.parts[:1] or "__pycache__" in rel.parts:
            continue
        out[f"stdlib/{rel}"] = path.read_bytes()
        if quick and len(out) >= 300:
            break
    return out


def archive_data(rnd: random.Random, big: bytes, quick: bool) -> dict[str, bytes]:
    """gzip's 20 MB file, jq's 20 MB JSON and a tree of small files for tar c | tar x."""
    size = (4 if quick else 20) * MIB
    out = {"gz20.bin": (big * (1 + size // len(big)))[:size]}
    rows, n = [], 0
    while n < size:
        row = b'{"id":%d,"name":"user%d","tags":["a","b"],"v":%d.5,"ok":true}' % (n, rnd.randint(0, 999), n % 97)
        rows.append(row)
        n += len(row) + 1
    out["data.json"] = b"[" + b",".join(rows) + b"]\n"
    for d in range(20 if quick else 100):
        for f in range(20):
            out[f"tree/d{d}/f{f}.txt"] = big[(d * 20 + f) * 9000:(d * 20 + f) * 9000 + rnd.randint(100, 20000)]
    return out


COMMANDS = [
    ("wc -l big.txt", 2),
    ("sha256sum big.txt", 2),
    ("grep -c foo text.txt", 5),
    ("sort text.txt -o sorted.txt", 5),
    ("sort -n nums.txt -o sortedn.txt", 5),
    ("sed s/a/b/g text.txt -o /dev/null", 5),
    ("cut -d' ' -f2 text.txt -o /dev/null", 5),
    ("tr a-z A-Z < text.txt", 5),
    ("uniq -c sorted-in.txt", 5),
    ("awk '{s+=$1} END{print s}' nums.txt", 5),
    ("awk '{print $2, $1}' text.txt", 5),
    ("gzip -c gz20.bin", 2),
    ("jq -c 'map(.v) | add' data.json", 5),
    ("jq -c '.[] | .name' data.json", 5),
    ("sh -c 'mkdir -p out && tar cf - tree | tar xf - -C out'", 5),
    ("grep -rw socket stdlib", 5),
    ("sh -c \"find stdlib -name '*.py' | xargs wc -l\"", 5),
    ("sh -c 'mkdir -p out2 && tar cf - stdlib | tar xf - -C out2'", 5),
]


async def run_ours(kernel: Kernel, cmd: str, cwd: str) -> float:
    argv = shlex.split(cmd)
    stdin = None
    if "<" in argv:
        i = argv.index("<")
        stdin = await kernel.vfs.read_file(f"{cwd}/{argv[i + 1]}")
        argv = argv[:i]
    if "-o" in argv and argv[0] in ("sed", "cut"):
        i = argv.index("-o")
        argv = argv[:i] + argv[i + 2:]
    t = time.perf_counter()
    r = await kernel.run(argv, input=stdin, cwd=cwd, timeout=900)
    dt = time.perf_counter() - t
    if r.status not in (0, 256):
        raise SystemExit(f"{cmd}: status {r.status}: {r.stderr[:200]!r}")
    return dt


def run_host(cmd: str, cwd: str) -> float:
    argv = shlex.split(cmd)
    stdin = None
    if "<" in argv:
        i = argv.index("<")
        stdin = open(os.path.join(cwd, argv[i + 1]), "rb")
        argv = argv[:i]
    if "-o" in argv and argv[0] in ("sed", "cut"):
        i = argv.index("-o")
        argv = argv[:i] + argv[i + 2:]
    if argv[0] == "awk":
        argv[0] = "gawk"  # the host's awk may be mawk
    t = time.perf_counter()
    # Output to a pipe, as ours goes to one: GNU grep stops at the first match when its stdout
    # is /dev/null (it cannot be seen), which made `grep -c` look 40x faster than it is.
    subprocess.run(argv, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t


def _top(name: str) -> str:
    return name.split("/", 1)[0]


async def main_async(args: argparse.Namespace) -> None:
    commands = [(c, t) for c, t in COMMANDS if not args.only or any(w in c for w in args.only)]
    wanted = None
    if args.only:
        names = {"text.txt", "nums.txt", "big.txt", "gz20.bin", "data.json", "tree", "stdlib", "sorted-in.txt"}
        wanted = {n for n in names if any(n in c for c, _ in commands)}
    data = make_data(args.quick, wanted)
    if wanted is None or "sorted-in.txt" in wanted:
        data["sorted-in.txt"] = b"\n".join(sorted(data["text.txt"].split(b"\n"))) + b"\n"
    if wanted is not None:
        data = {k: v for k, v in data.items() if _top(k) in wanted}
    async with trio.open_nursery() as nursery:
        kernel = Kernel(memory_vfs(), programs=standard_registry())
        await kernel.boot(nursery)
        try:
            cwd = "/tmp/bench"
            await kernel.vfs.mkdir(cwd, recursive=True)
            with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
                for name, blob in data.items():
                    if "/" in name:
                        await kernel.vfs.mkdir(f"{cwd}/{name.rsplit('/', 1)[0]}", recursive=True)
                        Path(tmp, name).parent.mkdir(parents=True, exist_ok=True)
                    await kernel.vfs.write_file(f"{cwd}/{name}", blob)
                    Path(tmp, name).write_bytes(blob)
                print(f"{'command':40} {'ours s':>8} {'GNU s':>8} {'ratio':>7}  target")
                names = set(standard_registry().names())
                for cmd, target in commands:
                    if shlex.split(cmd)[0] not in names:
                        print(f"{cmd:40} (not in the sandbox yet)")
                        continue
                    a = min([await run_ours(kernel, cmd, cwd) for _ in range(args.repeat)])
                    b = min(run_host(cmd, tmp) for _ in range(args.repeat))
                    ok = "ok" if a / b <= target else "MISSED"
                    print(f"{cmd:40} {a:8.3f} {b:8.3f} {a / b:7.1f}  <= {target}x {ok}")
        finally:
            await kernel.shutdown()
            nursery.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    ap.add_argument("--only", nargs="+", metavar="WORD", help="only the rows whose command contains a WORD")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="run each side N times, keep the fastest")
    trio.run(main_async, ap.parse_args())


if __name__ == "__main__":
    main()
