"""In-process benchmark of ChunkedVFS (SQLite metadata file + host block store) with the
same file workloads run on tmpfs through ``os`` in the same run, for ratios.

Run through ``scripts/bench-vfs [--quick] [--dir DIR]``.  One line per workload: our figure,
the target (issue §6), whether it is met, the tmpfs figure and ours/tmpfs.  Large sequential
I/O uses the inode level (open/write/read on a handle, like FUSE does); the small-file
workloads use the path level (PathVFS), like the sandbox kernel does.  MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat as S
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from blockstores import HostBlockStore  # noqa: E402
from kernel.fs import ROOT_INO  # noqa: E402
from kernel.pathvfs import PathVFS  # noqa: E402
from vfsfuse.storage.chunked import ChunkedVFS  # noqa: E402
from vfsfuse.storage.metadata import SqliteMetadataStore  # noqa: E402

MiB = 1 << 20
MB = 1_000_000

FULL = dict(write_mib=256, files=5000, dirs=50, rss_mib=2048)
QUICK = dict(write_mib=16, files=500, dirs=10, rss_mib=64)


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    ours: float
    target: float
    higher_is_better: bool = True
    tmpfs: float | None = None

    def line(self) -> str:
        met = self.ours >= self.target if self.higher_is_better else self.ours < self.target
        cmp = ">=" if self.higher_is_better else "<"
        text = (f"{self.key:<10} {self.label:<34} {self.ours:>10,.1f} {self.unit:<8}"
                f" target {cmp} {self.target:>8,.0f}  {'ok  ' if met else 'MISS'}")
        if self.tmpfs:
            text += f"  tmpfs {self.tmpfs:>10,.1f} {self.unit:<8} ours/tmpfs {self.ours / self.tmpfs:5.2f}"
        return text


class Payload:
    """1 MiB pieces whose first 8 bytes carry a counter, so no two 4 MiB chunks are equal
    (content addressing would otherwise dedup the benchmark away)."""

    def __init__(self) -> None:
        self.tail = os.urandom(MiB - 8)

    def piece(self, i: int) -> bytes:
        return i.to_bytes(8, "little") + self.tail


# -- ours --------------------------------------------------------------------------------


def _open_store(base: Path) -> tuple[SqliteMetadataStore, ChunkedVFS]:
    meta = SqliteMetadataStore(str(base / "meta.db"))
    return meta, ChunkedVFS(meta, HostBlockStore(base / "blocks"))


async def _write_big(fs: ChunkedVFS, name: bytes, mib: int, payload: Payload) -> int:
    fh, attr = await fs.create(ROOT_INO, name, S.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT)
    for i in range(mib):
        await fs.write(fh, i * MiB, payload.piece(i))
    await fs.fsync(fh)
    await fs.release(fh)
    return attr.ino


async def run_ours(base: Path, sizes: dict, payload: Payload) -> dict[str, float]:
    out: dict[str, float] = {}
    meta, fs = _open_store(base)
    try:
        async with fs.running():
            v = PathVFS(fs)
            mib = sizes["write_mib"]
            t = time.perf_counter()
            ino = await _write_big(fs, b"big", mib, payload)
            out["write"] = mib * MiB / MB / (time.perf_counter() - t)

            t = time.perf_counter()
            fh = await fs.open(ino, os.O_RDONLY)
            total = 0
            for i in range(mib):
                total += len(await fs.read(fh, i * MiB, MiB))
            await fs.release(fh)
            out["read"] = total / MB / (time.perf_counter() - t)
            assert total == mib * MiB

            files, dirs = sizes["files"], sizes["dirs"]
            kib = os.urandom(1024)
            t = time.perf_counter()
            for d in range(dirs):
                await v.mkdir(f"/d{d}")
            for i in range(files):
                await v.write_file(f"/d{i % dirs}/f{i}", kib)
            await fs.sync()
            out["create"] = files / (time.perf_counter() - t)

            t = time.perf_counter()
            seen = 0
            for d in range(dirs):
                for name in await v.read_dir(f"/d{d}"):
                    await v.stat(f"/d{d}/{name}")
                    seen += 1
            out["list"] = seen / (time.perf_counter() - t)
            assert seen == files

            t = time.perf_counter()
            for i in range(files):
                await v.remove_file(f"/d{i % dirs}/f{i}")
            await fs.sync()
            out["unlink"] = files / (time.perf_counter() - t)
    finally:
        meta.close()
    return out


def rss_child(base: str, mib: int) -> None:
    """Write *mib* MiB through the inode level; report the peak resident set (VmHWM, KiB)."""
    async def main() -> None:
        meta, fs = _open_store(Path(base))
        try:
            async with fs.running():
                await _write_big(fs, b"rss", mib, Payload())
        finally:
            meta.close()

    trio.run(main)
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                sys.stdout.write(line.split()[1] + "\n")
                return
    sys.stdout.write("0\n")


def measure_rss(base: Path, mib: int) -> float:
    base.mkdir()
    proc = subprocess.run([sys.executable, __file__, "--rss-child", str(base), str(mib)],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


# -- tmpfs -------------------------------------------------------------------------------


def run_tmpfs(base: Path, sizes: dict, payload: Payload) -> dict[str, float]:
    out: dict[str, float] = {}
    mib = sizes["write_mib"]
    big = str(base / "big")
    t = time.perf_counter()
    fd = os.open(big, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(mib):
        os.pwrite(fd, payload.piece(i), i * MiB)
    os.fsync(fd)
    os.close(fd)
    out["write"] = mib * MiB / MB / (time.perf_counter() - t)

    t = time.perf_counter()
    fd = os.open(big, os.O_RDONLY)
    total = 0
    for i in range(mib):
        total += len(os.pread(fd, MiB, i * MiB))
    os.close(fd)
    out["read"] = total / MB / (time.perf_counter() - t)
    os.unlink(big)

    files, dirs = sizes["files"], sizes["dirs"]
    kib = os.urandom(1024)
    root = str(base)
    t = time.perf_counter()
    for d in range(dirs):
        os.mkdir(f"{root}/d{d}")
    for i in range(files):
        fd = os.open(f"{root}/d{i % dirs}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, kib)
        os.close(fd)
    out["create"] = files / (time.perf_counter() - t)

    t = time.perf_counter()
    seen = 0
    for d in range(dirs):
        for name in os.listdir(f"{root}/d{d}"):
            os.stat(f"{root}/d{d}/{name}")
            seen += 1
    out["list"] = seen / (time.perf_counter() - t)

    t = time.perf_counter()
    for i in range(files):
        os.unlink(f"{root}/d{i % dirs}/f{i}")
    out["unlink"] = files / (time.perf_counter() - t)
    return out


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--dir", help="where to put the store (default: a temp dir under /tmp)")
    ap.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0

    sizes = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="bench-vfs-", dir=args.dir or "/tmp"))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmpfs = Path(tempfile.mkdtemp(prefix="bench-vfs-", dir=shm))
    payload = Payload()
    try:
        (work / "store").mkdir()
        ours = trio.run(run_ours, work / "store", sizes, payload)
        theirs = run_tmpfs(tmpfs, sizes, payload)
        rss = measure_rss(work / "rss", sizes["rss_mib"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmpfs, ignore_errors=True)

    files, dirs, mib = sizes["files"], sizes["dirs"], sizes["write_mib"]
    print(f"bench-vfs: ChunkedVFS in-process, SQLite metadata file + host block store in {args.dir or '/tmp'};"
          f" tmpfs = {shm or tempfile.gettempdir()} via os; 4 MiB chunks, 64 KiB inline")
    figures = [
        Figure("seq-write", f"{mib} MiB in 1 MiB pwrites + fsync", "MB/s", ours["write"], 450, tmpfs=theirs["write"]),
        Figure("seq-read", f"{mib} MiB in 1 MiB reads", "MB/s", ours["read"], 1500, tmpfs=theirs["read"]),
        Figure("create", f"{files} x 1 KiB files in {dirs} dirs", "files/s", ours["create"], 9000,
               tmpfs=theirs["create"]),
        Figure("list+stat", f"readdir + stat of {files} files", "files/s", ours["list"], 20000, tmpfs=theirs["list"]),
        Figure("unlink", f"unlink {files} files", "files/s", ours["unlink"], 11000, tmpfs=theirs["unlink"]),
        Figure("peak-rss", f"VmHWM while writing {sizes['rss_mib']} MiB", "MiB", rss, 300, higher_is_better=False),
    ]
    for f in figures:
        print(f.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
