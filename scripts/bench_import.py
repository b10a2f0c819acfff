"""Benchmark ``vfsfuse import`` against host ``tar -x`` into tmpfs, in one run.

Run through ``scripts/bench-import [--src DIR] [--repeat N] [--gzip] [--mount]``.  The tarball is
made once with host tar (``--xattrs``, POSIX format) from *--src* (default: the host's
``/usr/lib/python3.11``).  Each figure is the best of *--repeat* runs, measured as wall time of
the whole command (so ours includes Python's start-up), and printed as files/s and MB/s of
file data (MB = 10^6 bytes), with ours/tar:

* ``tar -x`` into a fresh directory on tmpfs (``/dev/shm``), the reference;
* ``vfsfuse import STORE`` into a fresh store (on --dir, the host disk by default), and the time
  the command reports itself (without the interpreter's start-up; the store is made durable,
  fsync included, which tar into tmpfs never pays);
* with ``--mount``: ``vfsfuse import MOUNT`` (over the daemon's control socket) and
  ``tar -x`` into a directory of the same kind of mount, through FUSE.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))
MB = 1_000_000


@dataclass
class Figure:
    label: str
    seconds: float
    files: int
    data: int

    def line(self, ref: "Figure | None") -> str:
        rate = self.files / self.seconds
        mbs = self.data / MB / self.seconds
        vs = f"  {ref.seconds / self.seconds:5.2f}x tar's speed" if ref is not None else ""
        return f"{self.label:<38} {self.seconds:7.3f} s {rate:9,.0f} files/s {mbs:8.1f} MB/s{vs}"


def run(argv: list[str], env: dict[str, str] | None = None) -> float:
    return run_reported(argv, env)[0]


def run_reported(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, the seconds the command reports: vfsfuse's "... in T s", else the wall)."""
    start = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    words = p.stdout.split()
    reported = float(words[-2]) if len(words) > 2 and words[-1] == "s" and words[-3] == "in" else took
    return took, reported


def tree_counts(tarball: str) -> tuple[int, int, int]:
    """(members, regular files, bytes of file data) of the tarball."""
    members = files = data = 0
    with tarfile.open(tarball) as tar:
        for m in tar:
            members += 1
            if m.isreg():
                files += 1
                data += m.size
    return members, files, data


def best(times: list[float]) -> float:
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}")
    ap.add_argument("--tarball", default=None,
                    help="an existing tarball instead (e.g. scripts/make-rootfs's Debian root)")
    ap.add_argument("--exclude", action="append", default=[],
                    help="passed to both tar -x and vfsfuse import (e.g. ./dev for a root filesystem)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="a .tar.gz instead of a plain tar")
    ap.add_argument("--mount", action="store_true", help="also import into a running mount")
    ap.add_argument("--dir", default=None, help="where stores live (default: a temp dir on the host disk)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="vfsfuse-bench-import-", dir=args.dir)
    shm = tempfile.mkdtemp(prefix="vfsfuse-bench-import-", dir="/dev/shm")
    env = dict(os.environ, VFSFUSE_RUNTIME_DIR=os.path.join(work, "runtime"))
    os.makedirs(env["VFSFUSE_RUNTIME_DIR"])
    mounts: list[str] = []
    try:
        if args.tarball:
            tarball = src = os.path.abspath(args.tarball)
        else:
            tarball = os.path.join(work, "tree.tar.gz" if args.gzip else "tree.tar")
            src = os.path.abspath(args.src)
            subprocess.run(["tar", "--xattrs", "--format=posix", "-C", os.path.dirname(src),
                            "-czf" if args.gzip else "-cf", tarball, os.path.basename(src)],
                           check=True, capture_output=True)
        members, files, data = tree_counts(tarball)
        excl = [f"--exclude={p}" for p in args.exclude]
        print(f"tarball: {src} -> {os.path.getsize(tarball) / MB:.1f} MB"
              f"{' gzip' if args.gzip else ''}, {members} members, {files} files, {data / MB:.1f} MB of data")
        tar_times, ours_times, mnt_times, tar_mnt_times = [], [], [], []
        own_times, own_mnt_times, start_times = [], [], []
        for i in range(args.repeat):
            dest = os.path.join(shm, f"x{i}")
            os.mkdir(dest)
            tar_times.append(run(["tar", "-x", "--numeric-owner", *excl, "-f", tarball, "-C", dest]))
            shutil.rmtree(dest)
            store = os.path.join(work, f"store{i}")
            run([VFSFUSE, "mkfs", store], env)
            wall, own = run_reported([VFSFUSE, "import", store, tarball, *excl], env)
            ours_times.append(wall)
            own_times.append(own)
            start_times.append(run([VFSFUSE, "--version"], env))
            run([VFSFUSE, "fsck", store], env)  # clean, or this run stops here
            if args.mount:
                for kind in ("import", "tar"):
                    mstore = os.path.join(work, f"m{kind}{i}")
                    mnt = os.path.join(work, f"mnt-{kind}{i}")
                    os.mkdir(mnt)
                    run([VFSFUSE, "mkfs", mstore], env)
                    run([VFSFUSE, "mount", mstore, mnt], env)
                    mounts.append(mnt)
                    if kind == "import":
                        wall, own = run_reported([VFSFUSE, "import", mnt, tarball, "--at", "/x", *excl], env)
                        mnt_times.append(wall)
                        own_mnt_times.append(own)
                    else:
                        os.mkdir(os.path.join(mnt, "x"))
                        tar_mnt_times.append(run(["tar", "-x", "--numeric-owner", *excl, "-f", tarball,
                                                  "-C", os.path.join(mnt, "x")]))
                    run([VFSFUSE, "umount", mnt], env)
                    mounts.remove(mnt)
        ref = Figure("tar -x into tmpfs", best(tar_times), files, data)
        print(ref.line(None))
        print(Figure("vfsfuse import STORE", best(ours_times), files, data).line(ref))
        print(Figure("  the import itself (as it reports)", best(own_times), files, data).line(ref))
        if args.mount:
            print(Figure("vfsfuse import MOUNT (control socket)", best(mnt_times), files, data).line(ref))
            print(Figure("  the import itself (as it reports)", best(own_mnt_times), files, data).line(ref))
            print(Figure("tar -x into MOUNT (through FUSE)", best(tar_mnt_times), files, data).line(ref))
        print(f"(best of {args.repeat}; wall time of each whole command; vfsfuse's own start-up, "
              f"'vfsfuse --version', took {best(start_times):.3f} s)")
    finally:
        for mnt in mounts:
            subprocess.run([VFSFUSE, "umount", mnt], capture_output=True, env=env)
            subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
