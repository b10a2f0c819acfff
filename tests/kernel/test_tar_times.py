"""``tar x`` sets a regular member's times through its open fd (``ctx.futimes``) before the
close: the times must survive the close (which flushes buffered data) and match what GNU tar
gives the same archive on the host, for a small (inline) file, a big (chunked) one, a FIFO and
a directory.  ``futimes`` itself: None means now, a pipe is EINVAL."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import time

import pytest

from kernel.errors import KernelError
from kernel.kernel import Kernel
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs

MEMBERS = [("d", tarfile.DIRTYPE, 0, 1_000_000_000), ("d/small", tarfile.REGTYPE, 10, 1_100_000_000),
           ("d/big", tarfile.REGTYPE, 3_000_000, 1_200_000_000), ("d/fifo", tarfile.FIFOTYPE, 0, 1_300_000_000)]


def _archive(path: str) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, size, mtime in MEMBERS:
            ti = tarfile.TarInfo(name)
            ti.type, ti.size, ti.mtime, ti.mode = kind, size, mtime, 0o755 if kind == tarfile.DIRTYPE else 0o644
            tf.addfile(ti, _Zeros(size) if size else None)


class _Zeros:
    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"z" * n


@pytest.fixture
async def kernel(nursery):
    k = Kernel(memory_vfs(), programs=standard_registry())
    await k.boot(nursery)
    yield k
    await k.shutdown(grace=0.2)


async def test_extracted_times_match_gnu_tar(kernel):
    with tempfile.TemporaryDirectory() as tmp:
        arc = os.path.join(tmp, "a.tar")
        _archive(arc)
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run(["tar", "xf", arc, "-C", out], check=True)
        gnu = {name: os.lstat(os.path.join(out, name)).st_mtime_ns for name, *_ in MEMBERS}
        with open(arc, "rb") as f:
            await kernel.vfs.write_file("/w/a.tar", f.read())
    r = await kernel.run(["sh", "-c", "mkdir -p /w/out && tar xf /w/a.tar -C /w/out"])
    assert r.status == 0, r.stderr
    ours = {name: (await kernel.vfs.lstat(f"/w/out/{name}")).mtime_ns for name, *_ in MEMBERS}
    assert ours == gnu
    assert (await kernel.vfs.stat("/w/out/d/big")).size == 3_000_000


async def test_futimes_on_an_fd(kernel):
    await kernel.vfs.write_file("/f", b"x")
    got: dict[str, object] = {}

    async def prog(ctx) -> int:
        fd = await ctx.open("/f", os.O_WRONLY)
        await ctx.futimes(fd, 5.25, 7.5)
        got["set"] = (await ctx.fstat(fd)).mtime_ns, (await ctx.fstat(fd)).atime_ns
        before = time.time_ns()
        await ctx.futimes(fd, None, None)
        got["now"] = (await ctx.fstat(fd)).mtime_ns >= before - 1_000_000_000
        await ctx.close(fd)
        r, w = await ctx.pipe()
        try:
            await ctx.futimes(r, 1.0, 1.0)
        except KernelError as e:
            got["pipe"] = e.code
        return 0

    kernel.programs.register("futimes-test", prog)
    r = await kernel.run(["futimes-test"])
    assert r.status == 0, r.stderr
    assert got == {"set": (7_500_000_000, 5_250_000_000), "now": True, "pipe": "EINVAL"}
