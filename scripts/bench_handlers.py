"""Daemon-side cost of each FUSE request, in process, through the daemon's real stack.

Builds what ``vfsfuse mount`` serves (FuseAdapter -> MountTable -> HostCacheInvalidator ->
ChunkedVFS on a SQLite store in a temporary directory, with the kernel's /dev, /proc and
/.vfs mounted) and calls the adapter's handlers the way pyfuse3 does, without a mount.  Each
line is microseconds per request: the part of a FUSE round trip that is ours to optimise.
The sequences follow what the host kernel sends for ``tar x`` (per file) and ``rm -rf``.

    scripts/bench-handlers [--files 2000] [--profile]
    scripts/bench-handlers --instructions   # CPU instructions per file (valgrind): steady on a busy machine
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyfuse3  # noqa: E402
import trio  # noqa: E402

from vfsfuse.daemon.config import MountConfig  # noqa: E402
from vfsfuse.daemon.fuse_adapter import FROM_FUSE, FuseAdapter  # noqa: E402
from vfsfuse.daemon.serve import Daemon  # noqa: E402
from vfsfuse.storage.store import create_store  # noqa: E402


@dataclass
class Ctx:
    """What pyfuse3 passes as the request context."""

    uid: int = 0
    gid: int = 0
    pid: int = 4242
    umask: int = 0o022


@dataclass
class Fields:
    update_mode: bool = False
    update_uid: bool = False
    update_gid: bool = False
    update_size: bool = False
    update_atime: bool = False
    update_mtime: bool = False
    update_ctime: bool = False


class Timer:
    """Microseconds per request; with ``cpu=True`` this process's CPU time, which a busy
    machine (other jobs on the same cores) disturbs far less than wall-clock time."""

    def __init__(self, cpu: bool = False) -> None:
        self.table: dict[str, list[float]] = {}
        self.clock = time.process_time if cpu else time.perf_counter

    async def __call__(self, op: str, coro):
        clock = self.clock
        t = clock()
        try:
            return await coro
        finally:
            row = self.table.setdefault(op, [0, 0.0])
            row[0] += 1
            row[1] += clock() - t


async def expect_error(coro) -> None:
    """A request that must fail (or, for lookup, answer with a negative entry)."""
    try:
        result = await coro
    except pyfuse3.FUSEError:
        return
    if getattr(result, "st_ino", None) != 0:
        raise AssertionError("expected a FUSE error")


async def workload(adapter: FuseAdapter, files: int, timer: Timer) -> None:
    ctx = Ctx()
    root = pyfuse3.ROOT_INODE
    payload = os.urandom(20_000)
    d = await timer("mkdir", adapter.mkdir(root, b"tree", 0o755, ctx))
    inodes = []
    for i in range(files):
        name = b"file%05d.py" % i
        await timer("lookup (miss)", expect_error(adapter.lookup(d.st_ino, name, ctx)))
        fi, e = await timer("create", adapter.create(d.st_ino, name, 0o644, os.O_WRONLY | os.O_CREAT, ctx))
        await timer("getxattr (miss)", expect_error(adapter.getxattr(e.st_ino, b"security.capability", ctx)))
        await timer("write 20 KB", adapter.write(fi.fh, 0, payload))
        a = pyfuse3.EntryAttributes()
        a.st_mtime_ns = a.st_ctime_ns = time.time_ns()
        await timer("setattr (times)", adapter.setattr(e.st_ino, a, Fields(update_mtime=True, update_ctime=True),
                                                       fi.fh, ctx))
        a.st_mode = 0o100600
        await timer("setattr (mode)", adapter.setattr(e.st_ino, a, Fields(update_mode=True), None, ctx))
        await timer("getattr (dir)", adapter.getattr(d.st_ino, ctx))
        await timer("release", adapter.release(fi.fh))
        inodes.append((name, e.st_ino))
    for name, ino in inodes:
        await timer("lookup (hit)", adapter.lookup(d.st_ino, name, ctx))
        await timer("forget", adapter.forget([(ino, 1)]))
    for name, ino in inodes:
        await timer("unlink", adapter.unlink(d.st_ino, name, ctx))
        a = pyfuse3.EntryAttributes()
        a.st_ctime_ns = time.time_ns()
        await timer("setattr (ctime, unlinked)", adapter.setattr(ino, a, Fields(update_ctime=True), None, ctx))
        await timer("forget (destroys)", adapter.forget([(ino, 1)]))


async def main_async(args: argparse.Namespace) -> Timer:
    base = Path(tempfile.mkdtemp(prefix="vfsfuse-bench-handlers-"))
    try:
        store = base / "store"
        create_store(str(store))
        daemon = Daemon(MountConfig(mountpoint=str(base / "mnt"), store=str(store)))
        daemon.store = daemon._open_store()
        vfs = daemon.store.vfs
        timer = Timer(cpu=args.cpu)
        try:
            async with trio.open_nursery() as nursery:
                async with vfs.running():
                    fs = await daemon._build_fs(vfs, nursery)
                    adapter = FuseAdapter(fs, entry_timeout=10, attr_timeout=10, writeback_cache=True,
                                         root=None if args.no_direct else vfs)
                    FROM_FUSE.set(True)
                    if args.profile:
                        from pyinstrument import Profiler

                        with Profiler(interval=0.0001) as prof:
                            await workload(adapter, args.files, timer)
                        prof.print(show_all=False)
                    else:
                        await workload(adapter, args.files, timer)
                    if daemon.kernel is not None:
                        await daemon.kernel.shutdown()
                    nursery.cancel_scope.cancel()
        finally:
            daemon.store.close()
        return timer
    finally:
        shutil.rmtree(base, ignore_errors=True)


def count_instructions(files: int, no_direct: bool) -> int:
    """Instructions this script executes for *files* files, counted by callgrind."""
    with tempfile.TemporaryDirectory(prefix="vfsfuse-callgrind-") as tmp:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable,
               __file__, "--files", str(files)] + (["--no-direct"] if no_direct else [])
        done = subprocess.run(cmd, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not found:
        sys.exit(f"bench-handlers: valgrind failed: {done.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1))


def instructions_per_file(args: argparse.Namespace) -> None:
    """Two runs (few and more files); the difference per file leaves out start-up and boot,
    and an instruction count does not move with the machine's load as time does."""
    if shutil.which("valgrind") is None:
        sys.exit("bench-handlers: --instructions needs valgrind (apt-get install valgrind)")
    small, large = 100, 100 + max(args.files // 5, 100)
    print(f"bench-handlers: counting instructions under callgrind ({small} and {large} files)...",
          file=sys.stderr)
    a, b = count_instructions(small, args.no_direct), count_instructions(large, args.no_direct)
    per_file = (b - a) / (large - small)
    print(f"{'instructions per untarred file':30} {per_file / 1e6:11.3f} M")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--profile", action="store_true", help="print a pyinstrument profile (pip install pyinstrument)")
    ap.add_argument("--cpu", action="store_true", help="count CPU time instead of wall-clock time")
    ap.add_argument("--no-direct", action="store_true",
                    help="route every request through the mount table (the path before the direct route)")
    ap.add_argument("--instructions", action="store_true",
                    help="count CPU instructions per file under valgrind instead of timing")
    args = ap.parse_args()
    if args.instructions:
        instructions_per_file(args)
        return
    if args.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            sys.exit("bench-handlers: --profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    timer = trio.run(main_async, args)
    print(f"{'request':30} {'count':>7} {'us/request':>11}")
    total = 0.0
    for op, (n, secs) in timer.table.items():
        total += secs
        print(f"{op:30} {n:7d} {secs / n * 1e6:11.1f}")
    print(f"{'per file (all requests above)':30} {'':7} {total / args.files * 1e6:11.1f}")


if __name__ == "__main__":
    main()
