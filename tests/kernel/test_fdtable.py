"""File descriptors: differential tests against Linux (the same open/lseek/pread/pwrite/
O_APPEND/dup sequences on a host temp dir with ``os`` and in the sandbox with ``ctx``),
plus fd-table rules: lowest fd, CLOEXEC across spawn, shared offsets, EMFILE, getdents,
ENXIO for device nodes made with mknod."""

from __future__ import annotations

import os
import random
import stat

import pytest

from kernel.errors import KernelError
from kernel.fdtable import FdTable, OpenFileDescription
from kernel.limits import Limits
from kernel.syscalls import (
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)

from .ksupport import boot_kernel, register, run_program

FLAG_CHOICES = [
    os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    os.O_RDWR | os.O_CREAT | os.O_EXCL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, os.O_RDWR | os.O_APPEND,
    os.O_RDONLY | os.O_NOFOLLOW, os.O_RDONLY | os.O_DIRECTORY, os.O_RDWR | os.O_NOFOLLOW | os.O_CREAT,
    os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_CREAT | os.O_DIRECTORY, os.O_RDWR | os.O_TRUNC,
]
NAMES = ["a", "b", "d", "l", "dl", "nothere", "d/x", "a/x", "l/"]
GETFL_MASK = os.O_ACCMODE | os.O_APPEND | os.O_NONBLOCK


class HostDriver:
    """The operations on the real Linux kernel (paths relative to a temp dir)."""

    def __init__(self, root: str) -> None:
        self.dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self.fds: list[int | None] = []

    async def setup(self) -> None:
        os.mkdir("d", dir_fd=self.dirfd)
        os.symlink("a", "l", dir_fd=self.dirfd)
        os.symlink("nothere", "dl", dir_fd=self.dirfd)
        fd = os.open("a", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=self.dirfd)
        os.write(fd, b"0123456789")
        os.close(fd)

    def _fd(self, h: int) -> int:
        return self.fds[h] if 0 <= h < len(self.fds) and self.fds[h] is not None else 10_000 + h

    def _new(self, fd: int) -> int:
        self.fds.append(fd)
        return len(self.fds) - 1

    async def open(self, name, flags):
        return self._new(os.open(name, flags, 0o644, dir_fd=self.dirfd))

    async def read(self, h, n):
        return os.read(self._fd(h), n)

    async def write(self, h, data):
        return os.write(self._fd(h), data)

    async def pread(self, h, n, off):
        return os.pread(self._fd(h), n, off)

    async def pwrite(self, h, data, off):
        return os.pwrite(self._fd(h), data, off)

    async def lseek(self, h, off, whence):
        return os.lseek(self._fd(h), off, whence)

    async def dup(self, h):
        return self._new(os.dup(self._fd(h)))

    async def close(self, h):
        os.close(self._fd(h))
        self.fds[h] = None

    async def ftruncate(self, h, n):
        os.ftruncate(self._fd(h), n)

    async def fsize(self, h):
        st = os.fstat(self._fd(h))
        return st.st_size if stat.S_ISREG(st.st_mode) else "dir"

    async def getfl(self, h):
        import fcntl
        return fcntl.fcntl(self._fd(h), fcntl.F_GETFL) & GETFL_MASK

    async def content(self, name):
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=self.dirfd)
        except OSError as e:
            return ("err", e.errno)
        try:
            return os.read(fd, 1 << 20)
        finally:
            os.close(fd)

    def cleanup(self) -> None:
        for fd in self.fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.close(self.dirfd)


class SandboxDriver(HostDriver):
    """The same operations through the syscall context (cwd is the test directory)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.fds = []

    async def setup(self) -> None:
        c = self.ctx
        await c.mkdir("d")
        await c.symlink("a", "l")
        await c.symlink("nothere", "dl")
        fd = await c.open("a", os.O_WRONLY | os.O_CREAT, 0o644)
        await c.write(fd, b"0123456789")
        await c.close(fd)

    async def open(self, name, flags):
        return self._new(await self.ctx.open(name, flags, 0o644))

    async def read(self, h, n):
        return await self.ctx.read(self._fd(h), n)

    async def write(self, h, data):
        return await self.ctx.write(self._fd(h), data)

    async def pread(self, h, n, off):
        return await self.ctx.pread(self._fd(h), n, off)

    async def pwrite(self, h, data, off):
        return await self.ctx.pwrite(self._fd(h), data, off)

    async def lseek(self, h, off, whence):
        return await self.ctx.lseek(self._fd(h), off, whence)

    async def dup(self, h):
        return self._new(await self.ctx.dup(self._fd(h)))

    async def close(self, h):
        await self.ctx.close(self._fd(h))
        self.fds[h] = None

    async def ftruncate(self, h, n):
        await self.ctx.ftruncate(self._fd(h), n)

    async def fsize(self, h):
        a = await self.ctx.fstat(self._fd(h))
        return a.size if stat.S_ISREG(a.mode) else "dir"

    async def getfl(self, h):
        return await self.ctx.fcntl(self._fd(h), F_GETFL) & GETFL_MASK

    async def content(self, name):
        try:
            fd = await self.ctx.open(name)
        except KernelError as e:
            return ("err", e.errno)
        try:
            return await self.ctx.read(fd, 1 << 20)
        finally:
            await self.ctx.close(fd)

    def cleanup(self) -> None:
        pass


def make_ops(seed: int, n: int = 60) -> list[tuple]:
    rnd = random.Random(seed)
    ops: list[tuple] = []
    handles = 0
    for _ in range(n):
        kind = rnd.choice(["open", "open", "open", "read", "write", "write", "pread", "pwrite", "lseek",
                           "dup", "close", "ftruncate", "fsize", "getfl"])
        h = rnd.randrange(handles + 1) if handles else 0
        if kind == "open":
            ops.append(("open", rnd.choice(NAMES), rnd.choice(FLAG_CHOICES)))
            handles += 1
        elif kind == "read":
            ops.append(("read", h, rnd.choice([0, 1, 3, 100])))
        elif kind == "write":
            ops.append(("write", h, rnd.choice([b"", b"x", b"hello", b"Z" * 300])))
        elif kind == "pread":
            ops.append(("pread", h, rnd.choice([1, 5, 50]), rnd.choice([0, 3, 9, 500, -1])))
        elif kind == "pwrite":
            ops.append(("pwrite", h, rnd.choice([b"P", b"pwrite!"]), rnd.choice([0, 4, 20, 5000, -2])))
        elif kind == "lseek":
            ops.append(("lseek", h, rnd.choice([0, 2, -1, -20, 100]), rnd.choice([SEEK_SET, SEEK_CUR, SEEK_END, 7])))
        elif kind == "dup":
            ops.append(("dup", h))
            handles += 1
        elif kind == "ftruncate":
            ops.append(("ftruncate", h, rnd.choice([0, 3, 64, -1])))
        else:
            ops.append((kind, h))
    return ops


async def play(driver, ops) -> list:
    out = []
    for op in ops:
        if op[0] == "lseek" and op[3] != SEEK_SET:
            try:
                is_dir = await driver.fsize(op[1]) == "dir"
            except (OSError, KernelError):
                is_dir = False
            if is_dir:  # directory offsets are filesystem-specific cookies (ext4 hashes)
                out.append((op, "dir-seek"))
                continue
        try:
            res = await getattr(driver, op[0])(*op[1:])
            if op[0] in ("open", "dup"):
                res = "fd"
        except OSError as e:
            res = ("err", e.errno)
            if op[0] in ("open", "dup"):
                driver.fds.append(None)
        except KernelError as e:
            res = ("err", e.errno)
            if op[0] in ("open", "dup"):
                driver.fds.append(None)
        out.append((op, res))
    for name in ("a", "b", "nothere"):
        out.append((("content", name), await driver.content(name)))
    return out


SEQUENCES = {
    "append-and-shared-offset": [
        ("open", "a", os.O_RDWR), ("dup", 0), ("read", 0, 4), ("read", 1, 2), ("lseek", 1, 0, SEEK_CUR),
        ("open", "a", os.O_WRONLY | os.O_APPEND), ("write", 2, b"END"), ("lseek", 2, 0, SEEK_CUR),
        ("pwrite", 2, b"Q", 0), ("pread", 0, 20, 0), ("lseek", 0, -3, SEEK_END), ("read", 0, 10),
        ("lseek", 0, 100, SEEK_SET), ("write", 0, b"far"), ("fsize", 0), ("pread", 0, 3, 50),
        ("close", 1), ("read", 1, 1), ("read", 0, 5), ("ftruncate", 0, 2), ("fsize", 1),
    ],
    "open-flags": [
        ("open", "b", os.O_RDONLY), ("open", "b", os.O_RDWR | os.O_CREAT | os.O_EXCL),
        ("open", "b", os.O_RDWR | os.O_CREAT | os.O_EXCL), ("open", "l", os.O_RDONLY | os.O_NOFOLLOW),
        ("open", "l", os.O_CREAT | os.O_EXCL | os.O_WRONLY), ("open", "dl", os.O_CREAT | os.O_WRONLY),
        ("open", "d", os.O_WRONLY), ("open", "d", os.O_RDONLY), ("read", 7, 1), ("open", "a", os.O_DIRECTORY),
        ("open", "a/x", os.O_RDONLY), ("open", "d/", os.O_CREAT | os.O_WRONLY), ("open", "a", os.O_RDONLY | os.O_TRUNC),
        ("write", 0, b"x"), ("read", 1, 5), ("getfl", 1), ("open", "nothere", os.O_RDONLY | os.O_NOFOLLOW),
    ],
    # O_CREAT|O_EXCL is tried as a create first (one call); its errors must still be Linux's.
    "create-exclusive": [
        ("open", "a", os.O_WRONLY | os.O_CREAT | os.O_EXCL), ("open", "d", os.O_WRONLY | os.O_CREAT | os.O_EXCL),
        ("open", "dl", os.O_WRONLY | os.O_CREAT | os.O_EXCL), ("open", "l", os.O_RDWR | os.O_CREAT | os.O_EXCL),
        ("open", "nothere/x", os.O_WRONLY | os.O_CREAT | os.O_EXCL),
        ("open", "a/x", os.O_WRONLY | os.O_CREAT | os.O_EXCL), ("open", "d/", os.O_WRONLY | os.O_CREAT | os.O_EXCL),
        ("open", "nothere", os.O_WRONLY | os.O_CREAT | os.O_EXCL), ("write", 7, b"new"),
        ("open", "nothere", os.O_RDWR | os.O_CREAT | os.O_EXCL), ("open", "nothere", os.O_RDWR | os.O_CREAT),
        ("read", 10, 5), ("open", "d/x", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_TRUNC), ("fsize", 12),
    ],
}


async def _compare(kernel, tmp_path, ops):
    host = HostDriver(str(tmp_path))
    try:
        await host.setup()
        expected = await play(host, ops)
    finally:
        host.cleanup()
    got = {}

    async def prog(ctx):
        await ctx.mkdir("/w")
        await ctx.chdir("/w")
        d = SandboxDriver(ctx)
        await d.setup()
        got["r"] = await play(d, ops)
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    for (op, want), (_, have) in zip(expected, got["r"]):
        assert have == want, f"{op}: linux {want!r}, sandbox {have!r}"


@pytest.mark.parametrize("name", sorted(SEQUENCES))
async def test_sequences_match_linux(kernel, tmp_path, name):
    await _compare(kernel, tmp_path, SEQUENCES[name])


@pytest.mark.parametrize("seed", range(40))
async def test_random_sequences_match_linux(kernel, tmp_path, seed):
    await _compare(kernel, tmp_path, make_ops(seed))


# ---------------------------------------------------------------- fd table rules
def test_fdtable_lowest_free_and_emfile():
    t = FdTable(max_fds=4)
    ofds = [OpenFileDescription("file", f"/{i}", os.O_RDONLY) for i in range(5)]
    assert [t.install(o) for o in ofds[:3]] == [0, 1, 2]
    t.remove(1)
    assert t.install(ofds[3]) == 1
    assert t.install(ofds[4], min_fd=2) == 3
    with pytest.raises(KernelError) as e:
        t.install(ofds[0])
    assert e.value.code == "EMFILE"
    assert [fd for fd, _ in t.items()] == [0, 1, 2, 3]


def test_fork_skips_cloexec_and_counts_refs():
    t = FdTable()
    a = OpenFileDescription("file", "/a", os.O_RDONLY)
    b = OpenFileDescription("file", "/b", os.O_RDONLY)
    t.install(a)
    t.install(b, cloexec=True)
    c = t.fork()
    assert c.fds() == [0] and a.refs == 2 and b.refs == 1
    assert t.get_cloexec(1) and not t.get_cloexec(0)


async def test_fcntl_and_cloexec_inheritance(kernel):
    seen = {}

    async def child(ctx):
        seen["child_fds"] = ctx.fds.fds()
        return 0

    cname = register(kernel, child)

    async def prog(ctx):
        fd = await ctx.open("/tmp/f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        seen["fd"] = fd
        seen["getfd"] = await ctx.fcntl(fd, F_GETFD)
        seen["getfl"] = await ctx.fcntl(fd, F_GETFL) & GETFL_MASK
        keep = await ctx.fcntl(fd, F_DUPFD, 10)
        seen["dupfd"] = (keep, await ctx.fcntl(keep, F_GETFD))
        cl = await ctx.fcntl(fd, F_DUPFD_CLOEXEC, 20)
        seen["dupfd_cloexec"] = (cl, await ctx.fcntl(cl, F_GETFD))
        await ctx.fcntl(keep, F_SETFL, os.O_APPEND | os.O_NONBLOCK | os.O_RDONLY)
        seen["setfl"] = await ctx.fcntl(fd, F_GETFL) & GETFL_MASK  # shared description
        d2 = await ctx.dup2(fd, 30)
        seen["dup2"] = (d2, await ctx.fcntl(30, F_GETFD))
        await ctx.fcntl(30, F_SETFD, FD_CLOEXEC)
        pid = await ctx.spawn([cname])
        await ctx.waitpid(pid)
        seen["parent_fds"] = ctx.fds.fds()
        with pytest.raises(KernelError) as e:
            await ctx.fcntl(99, F_GETFD)
        seen["badf"] = e.value.code
        with pytest.raises(KernelError) as e:
            await ctx.dup3(fd, fd)
        seen["dup3"] = e.value.code
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    fd = seen["fd"]
    assert seen["getfd"] == FD_CLOEXEC and seen["getfl"] == os.O_RDWR
    assert seen["dupfd"] == (10, 0) and seen["dupfd_cloexec"] == (20, FD_CLOEXEC)
    assert seen["setfl"] == os.O_RDWR | os.O_APPEND | os.O_NONBLOCK  # access mode unchanged
    assert seen["dup2"] == (30, 0)
    assert seen["child_fds"] == [0, 1, 2, 10]  # 3, 20 and 30 are close-on-exec
    assert fd == 3 and seen["badf"] == "EBADF" and seen["dup3"] == "EINVAL"


async def test_spawned_child_shares_offset(kernel):
    seen = {}

    async def child(ctx):
        await ctx.write(5, b"child;")
        return 0

    cname = register(kernel, child)

    async def prog(ctx):
        fd = await ctx.open("/tmp/shared", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        await ctx.write(fd, b"parent;")
        pid = await ctx.spawn([cname], fds={5: fd})
        await ctx.waitpid(pid)
        await ctx.write(fd, b"again")
        seen["pos"] = await ctx.lseek(fd, 0, SEEK_CUR)
        await ctx.close(fd)
        fd = await ctx.open("/tmp/shared")
        seen["data"] = await ctx.read(fd, 100)
        return 0

    await run_program(kernel, prog)
    assert seen["data"] == b"parent;child;again" and seen["pos"] == 18


async def test_emfile_per_process(nursery):
    k = await boot_kernel(nursery, limits=Limits(max_fds=8))
    seen = {}

    async def prog(ctx):
        fds = []
        try:
            while True:
                fds.append(await ctx.open("/dev/null"))
        except KernelError as e:
            seen["code"] = e.code
        seen["n"] = len(ctx.fds)
        with pytest.raises(KernelError) as e:
            await ctx.pipe()
        seen["pipe"] = e.value.code
        await ctx.close(fds[-1])
        seen["again"] = await ctx.open("/dev/null")
        return 0

    r = await k.run([register(k, prog)])
    assert r.status == 0, r.stderr
    assert seen["code"] == "EMFILE" and seen["n"] == 8 and seen["pipe"] == "EMFILE"
    await k.shutdown(grace=0.1)


async def test_getdents_lists_everything_in_batches(kernel):
    seen = {}

    async def prog(ctx):
        await ctx.mkdir("/big")
        for i in range(300):
            fd = await ctx.open(f"/big/f{i:03}", os.O_CREAT | os.O_WRONLY)
            await ctx.close(fd)
        await ctx.mkdir("/big/sub")
        await ctx.symlink("f000", "/big/ln")
        fd = await ctx.open("/big", os.O_RDONLY | os.O_DIRECTORY)
        ents = []
        while True:
            batch = await ctx.getdents(fd, 64)
            if not batch:
                break
            assert len(batch) <= 64
            ents.extend(batch)
        seen["ents"] = {e.name: e.type for e in ents}
        seen["count"] = len(ents)
        await ctx.lseek(fd, 0, SEEK_SET)   # rewinddir
        seen["again"] = len(await ctx.getdents(fd, 1000))
        with pytest.raises(KernelError) as e:
            await ctx.read(fd, 10)
        seen["read"] = e.value.code
        seen["listdir"] = len(await ctx.listdir("/big"))
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen["count"] == 302 == seen["again"] == seen["listdir"]
    assert seen["ents"]["f123"] == 8 and seen["ents"]["sub"] == 4 and seen["ents"]["ln"] == 10
    assert seen["read"] == "EISDIR"


async def test_mknod_device_in_store_gives_enxio_and_devfs_works(kernel):
    seen = {}
    parent, name = await kernel.vfs.resolve_parent("/tmp/fakenull")
    await kernel.mount_table.mknod(parent, b"fakenull", stat.S_IFCHR | 0o666, os.makedev(1, 3))

    async def prog(ctx):
        with pytest.raises(KernelError) as e:
            await ctx.open("/tmp/fakenull", os.O_RDWR)
        seen["fake"] = e.value.code
        fd = await ctx.open("/dev/null", os.O_RDWR)
        seen["null"] = (await ctx.write(fd, b"abc"), await ctx.read(fd, 10))
        fd = await ctx.open("/dev/zero")
        seen["zero"] = await ctx.read(fd, 5)
        fd = await ctx.open("/dev/full", os.O_WRONLY)
        with pytest.raises(KernelError) as e:
            await ctx.write(fd, b"x")
        seen["full"] = e.value.code
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"fake": "ENXIO", "null": (3, b""), "zero": bytes(5), "full": "ENOSPC"}


async def test_fstat_of_pipe_and_espipe(kernel):
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe()
        a = await ctx.fstat(r)
        seen["fifo"] = stat.S_ISFIFO(a.mode)
        for call in (ctx.lseek(r, 0, SEEK_SET), ctx.pread(r, 1, 0), ctx.pwrite(w, b"x", 0)):
            with pytest.raises(KernelError) as e:
                await call
            seen.setdefault("espipe", []).append(e.value.code)
        return 0

    await run_program(kernel, prog)
    assert seen == {"fifo": True, "espipe": ["ESPIPE"] * 3}
