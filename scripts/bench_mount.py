"""Benchmark a real vfsfuse mount against tmpfs with the same workloads, in one run.

Run through ``scripts/bench-mount [--quick] [--repeat N] [--keep] [--json FILE]`` (as root: it mounts a tmpfs and
drops the page cache).  Prints one line per workload: tmpfs figure, vfsfuse figure, relative
speed (vfsfuse / tmpfs, 1.00 = as fast as tmpfs) and the target from issue 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))
MiB = 1 << 20


@dataclass
class Result:
    name: str
    unit: str
    higher_is_better: bool
    tmpfs: float
    ours: float
    target: float | None

    @property
    def relative_speed(self) -> float:
        if not self.tmpfs or not self.ours:
            return 0.0
        return self.ours / self.tmpfs if self.higher_is_better else self.tmpfs / self.ours

    @property
    def meets(self) -> bool | None:
        if self.target is None:
            return None
        return self.ours >= self.target if self.higher_is_better else self.ours <= self.target


def drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError as err:
        print(f"  (cannot drop caches: {err})", file=sys.stderr)


class OurMount:
    """A vfsfuse mount made with the CLI (daemon mode) that can be remounted cold."""

    def __init__(self, base: Path, cache_size: str, extra: tuple[str, ...] = ()) -> None:
        self.store = base / "store"
        self.path = base / "mnt"
        self.path.mkdir()
        self.env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(base / "runtime"))
        self.cache_size = cache_size
        self.extra = extra  # more `vfsfuse mount` options
        from vfsfuse.storage.store import create_store

        self.store.mkdir()
        create_store(str(self.store))
        self.pid = 0
        self.peak_rss = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    def mount(self) -> None:
        p = subprocess.run([VFSFUSE, "mount", "--cache-size", self.cache_size, *self.extra, str(self.store),
                            str(self.path)],
                           env=self.env, capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"bench-mount: mount failed: {p.stderr.strip()}")
        with open(self.store / "run" / "lock") as f:
            self.pid = int(f.read().split()[0])
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()

    def _sample_rss(self) -> None:
        while not self._stop.wait(0.05):
            self._read_rss()

    def _read_rss(self) -> None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(("VmHWM:", "VmRSS:")):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass

    def umount(self) -> None:
        self._read_rss()
        self._stop.set()
        if self._sampler:
            self._sampler.join()
        p = subprocess.run([VFSFUSE, "umount", str(self.path)], env=self.env, capture_output=True, text=True)
        if p.returncode:
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
            raise SystemExit(f"bench-mount: umount failed: {p.stderr.strip()}")

    def remount_cold(self) -> None:
        self.umount()
        drop_caches()
        self.mount()

    def cleanup(self) -> None:
        self._stop.set()
        if self.pid:
            with open("/proc/self/mountinfo") as f:
                mounted = any(line.split()[4] == str(self.path) for line in f)
            if mounted:
                subprocess.run([VFSFUSE, "umount", str(self.path)], env=self.env, capture_output=True)
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------ workloads

def seq_write(d: Path, total: int, payload: bytes) -> float:
    path = d / "seq.bin"
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    mv = memoryview(payload)
    for off in range(0, total, MiB):
        os.write(fd, mv[off:off + MiB])
    os.fsync(fd)
    os.close(fd)
    return total / MiB / (time.perf_counter() - t)


def seq_read(d: Path, total: int) -> float:
    path = d / "seq.bin"
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    got = 0
    while True:
        b = os.read(fd, MiB)
        if not b:
            break
        got += len(b)
    os.close(fd)
    assert got == total, (got, total)
    return total / MiB / (time.perf_counter() - t)


BLOCK_READERS = 3  # the mount keeps this many block reads in flight ahead of a sequential reader


def read_block_files(blocks: Path) -> float:
    """Read every block file of the store (only the cold-read file's blocks exist then), a few
    at a time, without FUSE: the ceiling the disk puts on the mount's cold read.  A contiguous
    file reads faster than the same bytes in separate 4 MiB files, each with its own lookups."""
    paths = [os.path.join(top, n) for top, _, names in os.walk(blocks) for n in names]

    def read(path: str) -> int:
        with open(path, "rb", buffering=0) as f:
            return len(f.read())

    t = time.perf_counter()
    with ThreadPoolExecutor(BLOCK_READERS) as pool:
        total = sum(pool.map(read, paths))
    return total / MiB / (time.perf_counter() - t)


def random_rw(d: Path, size: int, seconds: float) -> float:
    path = d / "rand.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    block = os.urandom(MiB)
    for off in range(0, size, MiB):
        os.pwrite(fd, block, off)
    os.fsync(fd)
    rng = random.Random(42)
    pages = size // 4096
    buf = os.urandom(4096)
    ops = 0
    pread, pwrite = os.pread, os.pwrite
    end = time.perf_counter() + seconds
    t = time.perf_counter()
    while True:
        for _ in range(256):
            off = rng.randrange(pages) * 4096
            if ops & 1:
                pwrite(fd, buf, off)
            else:
                pread(fd, 4096, off)
            ops += 1
        now = time.perf_counter()
        if now >= end:
            break
    os.close(fd)
    return ops / (now - t)


def make_files(d: Path, dirs: int, files: int) -> float:
    per = files // dirs
    data = b"x" * 1024
    t = time.perf_counter()
    for i in range(dirs):
        sub = d / f"d{i:02d}"
        os.mkdir(sub)
        for j in range(per):
            fd = os.open(f"{sub}/f{j:04d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
    return files / (time.perf_counter() - t)


def walk_stat(d: Path, expect: int) -> float:
    t = time.perf_counter()
    n = 0
    for top, _dirnames, filenames in os.walk(d):
        for name in filenames:
            os.lstat(os.path.join(top, name))
            n += 1
    dt = time.perf_counter() - t
    assert n == expect, (n, expect)
    return n / dt


def unlink_files(d: Path, dirs: int, files: int) -> float:
    per = files // dirs
    t = time.perf_counter()
    for i in range(dirs):
        sub = f"{d}/d{i:02d}"
        for j in range(per):
            os.unlink(f"{sub}/f{j:04d}")
        os.rmdir(sub)
    return files / (time.perf_counter() - t)


def timed_shell(script: str, cwd: Path) -> float:
    t = time.perf_counter()
    p = subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x",
                                GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x", HOME=str(cwd)))
    dt = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"bench-mount: '{script}' failed in {cwd}: {p.stderr.strip()[-500:]}")
    return dt


def tree_digest(d: Path) -> str:
    h = hashlib.md5()
    for top, dirnames, filenames in os.walk(d):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(top, name)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(os.path.relpath(p, d).encode() + b"\0" + hashlib.md5(f.read()).digest())
    return h.hexdigest()


def make_stdlib_tar(path: Path, quick: bool) -> tuple[int, int]:
    src = Path(sysconfig.get_paths()["stdlib"])
    files = size = 0
    skip = {"site-packages", "__pycache__", "dist-packages"}  # and config-* (a static libpython)
    with tarfile.open(path, "w") as tar:
        for top, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(n for n in dirnames if n not in skip and not n.startswith("config-"))
            rel = os.path.relpath(top, src)
            if quick and rel != "." and rel.split(os.sep)[0] not in ("json", "email", "asyncio"):
                continue
            for name in sorted(filenames):
                p = os.path.join(top, name)
                tar.add(p, arcname=os.path.join("stdlib", os.path.relpath(p, src)), recursive=False)
                files += 1
                if not os.path.islink(p):
                    size += os.path.getsize(p)
    return files, size


# ------------------------------------------------------------------------ main

def run(args: argparse.Namespace) -> list[Result]:
    quick = args.quick
    base = Path(tempfile.mkdtemp(prefix="vfsfuse-bench-", dir=args.dir))
    tmpfs = base / "tmpfs"
    tmpfs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", str(tmpfs)], check=True)
    ours = OurMount(base, args.cache_size, ("--direct-io",) if args.direct_io else ())
    results: list[Result] = []
    seq_total = (16 if quick else 256) * MiB
    rand_size = (8 if quick else 64) * MiB
    rand_secs = 1.0 if quick else 5.0
    ndirs, nfiles = (10, 500) if quick else (50, 5000)
    try:
        ours.mount()
        tar_path = base / "stdlib.tar"
        ntar, tar_bytes = make_stdlib_tar(tar_path, quick)
        print(f"vfsfuse bench-mount: store on {args.dir or tempfile.gettempdir()}, tmpfs for comparison; "
              f"stdlib tar: {ntar} files, {tar_bytes / MiB:.0f} MiB{' (quick)' if quick else ''}", flush=True)
        payload = os.urandom(seq_total)
        targets = {"write": 400, "read": 1000, "rand": 15000, "create": 2000, "walk": 12000, "unlink": 2500,
                   "untar": 2.0, "git": 3.5, "rm": 0.9}
        # The store's own disk with the same pattern, no FUSE: what the two big-file figures can
        # hope for on this machine today (virtual disks vary from run to run).
        disk = base / "disk"
        disk.mkdir()
        disk_write = seq_write(disk, seq_total, payload)
        drop_caches()
        disk_read = seq_read(disk, seq_total)
        os.unlink(disk / "seq.bin")
        figures: dict[str, dict[str, float]] = {}
        for label, top in (("tmpfs", tmpfs), ("ours", ours.path)):
            f = figures[label] = {}
            work = top / "work"
            work.mkdir()
            f["write"] = seq_write(work, seq_total, payload)
            if label == "ours":
                ours.remount_cold()
            else:
                drop_caches()
            f["read"] = seq_read(work, seq_total)
            if label == "ours":
                drop_caches()
                blocks_read = read_block_files(ours.store / "blocks")
            os.unlink(work / "seq.bin")
            f["rand"] = random_rw(work, rand_size, rand_secs)
            os.unlink(work / "rand.bin")
            many = work / "many"
            many.mkdir()
            f["create"] = make_files(many, ndirs, nfiles)
            drop_caches()
            f["walk"] = walk_stat(many, nfiles)
            f["unlink"] = unlink_files(many, ndirs, nfiles)
            tree = work / "tree"
            tree.mkdir()
            f["untar"] = timed_shell(f"tar xf {tar_path}", tree)
            drop_caches()
            f["md5"] = timed_shell("find . -type f -print0 | xargs -0 md5sum > /dev/null", tree)
            f["digest"] = tree_digest(tree)  # type: ignore[assignment]
            git = "git init -q && git add -A && git commit -q -m bench && git fsck --no-progress 2>&1"
            f["git"] = timed_shell(git, tree)
            f["rm"] = timed_shell("rm -rf tree", work)
            print(f"  {label}: done", file=sys.stderr, flush=True)
        if figures["tmpfs"]["digest"] != figures["ours"]["digest"]:
            raise SystemExit("bench-mount: the extracted tree differs between tmpfs and vfsfuse!")
        t, o = figures["tmpfs"], figures["ours"]
        results = [
            Result(f"seq write {seq_total // MiB} MiB (1 MiB writes + fsync)", "MB/s", True,
                   t["write"], o["write"], targets["write"]),
            Result("cold read (drop caches, remount)", "MB/s", True, t["read"], o["read"], targets["read"]),
            Result(f"random 4 KiB r/w, {rand_secs:.0f} s in {rand_size // MiB} MiB", "ops/s", True,
                   t["rand"], o["rand"], targets["rand"]),
            Result(f"create {nfiles} x 1 KiB in {ndirs} dirs", "files/s", True,
                   t["create"], o["create"], targets["create"]),
            Result("walk + lstat (cold dentry cache)", "files/s", True, t["walk"], o["walk"], targets["walk"]),
            Result("unlink", "files/s", True, t["unlink"], o["unlink"], targets["unlink"]),
            Result(f"untar stdlib ({ntar} files)", "s", False, t["untar"], o["untar"], targets["untar"]),
            Result("md5sum of the tree (cold)", "s", False, t["md5"], o["md5"], None),
            Result("git init + add -A + commit + fsck", "s", False, t["git"], o["git"], targets["git"]),
            Result("rm -rf of the tree", "s", False, t["rm"], o["rm"], targets["rm"]),
        ]
        ours.umount()
        ours.pid = 0
        results.append(Result("daemon peak RSS", "MiB", False, 0.0, ours.peak_rss / MiB, 300.0))
        results.append(Result("(store's disk itself, no FUSE) seq write", "MB/s", True, 0.0, disk_write, None))
        results.append(Result("(store's disk itself, no FUSE) cold read", "MB/s", True, 0.0, disk_read, None))
        results.append(Result(f"(the file's block files, {BLOCK_READERS} at a time, no FUSE)", "MB/s", True, 0.0,
                              blocks_read, None))
    finally:
        ours.cleanup()
        subprocess.run(["umount", "-l", str(tmpfs)], capture_output=True)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return results


def median_results(runs: list[list[Result]]) -> list[Result]:
    """One Result per workload: the median tmpfs figure and the median vfsfuse figure (for the
    daemon's peak RSS, the highest: a peak is a maximum)."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for rows in zip(*runs):
        combine = max if rows[0].name.startswith("daemon peak") else statistics.median
        out.append(Result(rows[0].name, rows[0].unit, rows[0].higher_is_better,
                          combine(r.tmpfs for r in rows), combine(r.ours for r in rows), rows[0].target))
    return out


def report(results: list[Result], quick: bool, runs: list[list[Result]] | None = None) -> None:
    if runs:
        print(f"\nmedians of {len(runs)} runs; 'vfsfuse range' is the lowest and highest run")
    print(f"\n{'workload':48} {'tmpfs':>10} {'vfsfuse':>10} {'unit':8} {'vs tmpfs':>8}  target")
    for i, r in enumerate(results):
        tmp = f"{r.tmpfs:10.2f}" if r.tmpfs else f"{'-':>10}"
        rel = f"{r.relative_speed:7.2f}x" if r.tmpfs else f"{'':>8}"
        if r.target is None:
            tgt = ""
        else:
            op = ">=" if r.higher_is_better else "<="
            ok = "ok" if r.meets else "MISSED"
            tgt = f"{op} {r.target:g} {r.unit}  {ok}" + (" (quick: not comparable)" if quick else "")
        spread = ""
        if runs:
            values = [run[i].ours for run in runs]
            spread = f"  [vfsfuse range {min(values):.2f} - {max(values):.2f}]"
        print(f"{r.name:48} {tmp} {r.ours:10.2f} {r.unit:8} {rel}  {tgt}{spread}")
    print("\n'vs tmpfs' is vfsfuse speed / tmpfs speed (1.00x = as fast as tmpfs).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (store, tar) afterwards")
    ap.add_argument("--dir", default=None, help="where the store lives (default: $TMPDIR or /tmp)")
    ap.add_argument("--cache-size", default="64M", help="vfsfuse --cache-size")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--direct-io", action="store_true", help="mount with --direct-io (O_DIRECT block writes)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run everything N times and report the median of each figure, with the range "
                         "(figures on a shared virtual machine vary by 10-20%% from run to run)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-mount: run as root (it mounts a tmpfs and drops the page cache)")
    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"run {i + 1} of {args.repeat}", file=sys.stderr, flush=True)
        runs.append(run(args))
    results = median_results(runs)
    report(results, args.quick, runs if args.repeat > 1 else None)
    if args.json:
        with open(args.json, "w") as f:
            rows = [{**r.__dict__, "relative_speed": r.relative_speed, "meets": r.meets} for r in results]
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
