"""Pipes: EOF/EPIPE/EAGAIN, capacity and poll masks compared with Linux ``os.pipe``,
blocking hand-off between programs, and throughput without per-byte work."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat

import pytest
import trio

from kernel.errors import KernelError
from kernel.pipes import PIPE_BUF, POLLERR, POLLHUP, POLLIN, POLLOUT, Pipe
from kernel.syscalls import O_CLOEXEC, O_NONBLOCK

from .ksupport import register, run_program


class HostPipes:
    async def pipe(self, nonblock=False):
        r, w = os.pipe()
        if nonblock:
            for fd in (r, w):
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.opened = getattr(self, "opened", []) + [r, w]
        return r, w

    async def read(self, fd, n):
        return os.read(fd, n)

    async def write(self, fd, data):
        return os.write(fd, data)

    async def close(self, fd):
        os.close(fd)

    async def poll(self, fds):
        p = select.poll()
        for fd, ev in fds:
            p.register(fd, ev)
        return sorted(p.poll(0))


class SandboxPipes:
    def __init__(self, ctx):
        self.ctx = ctx

    async def pipe(self, nonblock=False):
        return await self.ctx.pipe(O_NONBLOCK if nonblock else 0)

    async def read(self, fd, n):
        return await self.ctx.read(fd, n)

    async def write(self, fd, data):
        return await self.ctx.write(fd, data)

    async def close(self, fd):
        await self.ctx.close(fd)

    async def poll(self, fds):
        return sorted(await self.ctx.poll(fds, 0))


async def record(out: list, label: str, coro) -> None:
    """Append (label, result) or (label, errno name): host and sandbox errors compare equal."""
    try:
        out.append((label, await coro))
    except (OSError, KernelError) as e:
        out.append((label, errno.errorcode[e.errno]))


async def scenario(p) -> list:
    """The same pipe story on Linux and in the sandbox; fds are reported by role, not number."""
    out = []

    def attempt(label, coro):
        return record(out, label, coro)

    r, w = await p.pipe(nonblock=True)
    ev = POLLIN | POLLOUT

    async def poll(label):
        res = await p.poll([(r, ev), (w, ev)])
        out.append((label, [("r" if fd == r else "w", m) for fd, m in res]))

    await poll("empty")
    await attempt("read-empty", p.read(r, 10))
    await attempt("write-small", p.write(w, b"hello"))
    await poll("data")
    await attempt("read-part", p.read(r, 3))
    await attempt("read-rest", p.read(r, 100))
    await attempt("fill", p.write(w, b"x" * 100_000))
    await poll("full")
    await attempt("write-full", p.write(w, b"y"))
    await attempt("drain-page", p.read(r, 4096))
    await attempt("write-page", p.write(w, b"z" * 4096))
    await attempt("write-full-again", p.write(w, b"y"))
    await p.close(w)
    await poll("writer-closed-with-data")
    total = 0
    while True:
        d = await p.read(r, 65536)
        if not d:
            break
        total += len(d)
    out.append(("drained", total))
    await poll("writer-closed-empty")
    await attempt("eof", p.read(r, 10))
    await p.close(r)

    r, w = await p.pipe()
    await p.close(r)
    res = await p.poll([(w, ev)])
    out.append(("reader-closed", [m for _, m in res]))
    await attempt("epipe", p.write(w, b"x"))
    await p.close(w)
    return out


async def test_pipe_semantics_match_linux(kernel):
    expected = await scenario(HostPipes())  # Python ignores SIGPIPE, so the host sees EPIPE
    got = {}

    async def prog(ctx):
        from kernel.signals import SIG_IGN, SIGPIPE
        await ctx.signal(SIGPIPE, SIG_IGN)
        got["r"] = await scenario(SandboxPipes(ctx))
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert got["r"] == expected


def test_pipe_unit_rules():
    p = Pipe(capacity=16)
    assert p.try_read(4) is None                # would block
    assert p.try_write(b"a" * 10) == 10
    assert p.try_write(b"b" * 10) is None        # small writes are atomic: wait for room
    big = Pipe(capacity=PIPE_BUF + 10)
    assert big.try_write(b"c" * (PIPE_BUF + 100)) == PIPE_BUF + 10  # big writes go partial
    data = b"0123456789"
    q = Pipe()
    q.try_write(data)
    assert q.try_read(100) is data             # whole chunk handed over without a copy
    q.try_write(b"ab")
    q.try_write(b"cd")
    assert q.try_read(3) == b"abc" and q.try_read(3) == b"d"
    q.close_write()
    assert q.try_read(5) == b"" and q.poll_read_end() == POLLHUP
    s = Pipe()
    s.close_read()
    assert s.poll_write_end() == POLLOUT | POLLERR
    with pytest.raises(KernelError) as e:
        s.try_write(b"x")
    assert e.value.code == "EPIPE"


async def test_blocking_reader_and_writer_between_programs(kernel):
    total = 3 * 65536 + 123

    async def writer(ctx):
        await ctx.write_all(1, b"q" * total)   # must block: more than the buffer
        return 0

    async def reader(ctx):
        data = await ctx.read_all(0)
        return 0 if len(data) == total and set(data) == {ord("q")} else 1

    wname, rname = register(kernel, writer), register(kernel, reader)
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe(O_CLOEXEC)
        a = await ctx.spawn([wname], stdout=w)
        b = await ctx.spawn([rname], stdin=r)
        await ctx.close(r)
        await ctx.close(w)
        seen["a"] = (await ctx.waitpid(a))[1]
        seen["b"] = (await ctx.waitpid(b))[1]
        return 0

    await run_program(kernel, prog)
    assert seen == {"a": 0, "b": 0}


async def test_inherited_write_end_keeps_pipe_open(kernel):
    """POSIX: EOF only when *every* write end is closed, including ones a child inherited."""
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe()          # not close-on-exec: the child inherits both ends
        pid = await ctx.spawn(["sleep", "0.2"])
        await ctx.close(w)
        t = trio.current_time()
        seen["data"] = await ctx.read(r, 10)
        seen["waited"] = trio.current_time() - t
        await ctx.waitpid(pid)
        return 0

    await run_program(kernel, prog)
    assert seen["data"] == b"" and seen["waited"] >= 0.15


async def test_poll_wakes_on_data_and_times_out(kernel):
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe()
        t = trio.current_time()
        seen["timeout"] = await ctx.poll([(r, POLLIN)], 0.05)
        seen["elapsed"] = trio.current_time() - t
        pid = await ctx.spawn(["echo", "hi"], stdout=w)
        seen["ready"] = await ctx.poll([(r, POLLIN)], 5)
        seen["nval"] = await ctx.poll([(r, POLLIN), (99, POLLIN)], 5)
        await ctx.waitpid(pid)
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen["timeout"] == [] and seen["elapsed"] >= 0.05
    assert seen["ready"] == [(3, POLLIN)]
    assert seen["nval"] == [(3, POLLIN), (99, 0x20)]  # POLLNVAL for the bad fd


async def test_64_mib_through_a_pipe_between_two_programs(kernel):
    """64 MiB in 64 KiB blocks arrive whole (speed: scripts/bench-kernel)."""
    block = b"\0" * 65536
    n = 1024

    async def writer(ctx):
        for _ in range(n):
            await ctx.write(1, block)
        return 0

    async def reader(ctx):
        got = 0
        while True:
            d = await ctx.read(0, 65536)
            if not d:
                return 0 if got == n * len(block) else 1
            got += len(d)

    wname, rname = register(kernel, writer), register(kernel, reader)
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe(O_CLOEXEC)
        a = await ctx.spawn([wname], stdout=w)
        b = await ctx.spawn([rname], stdin=r)
        await ctx.close(r)
        await ctx.close(w)
        await ctx.waitpid(a)
        seen["b"] = (await ctx.waitpid(b))[1]
        return 0

    await run_program(kernel, prog)
    assert seen["b"] == 0  # the reader counted every byte


async def fifo_story(ops, path) -> list:
    out = []

    def attempt(label, coro):
        return record(out, label, coro)

    await ops.mkfifo(path)
    await attempt("writer-no-reader", ops.open(path, os.O_WRONLY | os.O_NONBLOCK))
    r = await ops.open(path, os.O_RDONLY | os.O_NONBLOCK)
    await attempt("read-no-writer", ops.read(r, 10))
    w = await ops.open(path, os.O_WRONLY | os.O_NONBLOCK)
    await attempt("read-empty-with-writer", ops.read(r, 10))
    await attempt("write", ops.write(w, b"abc"))
    await attempt("read", ops.read(r, 10))
    await ops.close(w)
    await attempt("eof", ops.read(r, 10))
    await ops.close(r)
    rw = await ops.open(path, os.O_RDWR)
    await attempt("rw-write", ops.write(rw, b"self"))
    await attempt("rw-read", ops.read(rw, 10))
    await ops.close(rw)
    await attempt("stat-is-fifo", ops.isfifo(path))
    return out


class HostFifo(HostPipes):
    async def mkfifo(self, p):
        os.mkfifo(p)

    async def open(self, p, flags):
        return os.open(p, flags)

    async def isfifo(self, p):
        return stat.S_ISFIFO(os.stat(p).st_mode)


class SandboxFifo(SandboxPipes):
    async def mkfifo(self, p):
        await self.ctx.mkfifo(p)

    async def open(self, p, flags):
        return await self.ctx.open(p, flags)

    async def isfifo(self, p):
        return stat.S_ISFIFO((await self.ctx.stat(p)).mode)


async def test_named_pipes_match_linux(kernel, tmp_path):
    expected = await fifo_story(HostFifo(), str(tmp_path / "fifo"))
    got = {}

    async def prog(ctx):
        got["r"] = await fifo_story(SandboxFifo(ctx), "/tmp/fifo")
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert got["r"] == expected
    assert len(kernel.fifos) == 0   # nothing kept once every end is closed


async def test_blocking_fifo_open_waits_for_the_other_end(kernel):
    seen = []

    async def writer(ctx):
        await ctx.sleep(0.05)
        fd = await ctx.open("/tmp/f2", os.O_WRONLY)
        seen.append("writer-open")
        await ctx.write(fd, b"through the fifo")
        return 0

    wname = register(kernel, writer)

    async def reader(ctx):
        await ctx.mkfifo("/tmp/f2")
        pid = await ctx.spawn([wname])
        fd = await ctx.open("/tmp/f2")           # blocks until the writer opens
        seen.append("reader-open")
        seen.append(await ctx.read_all(fd))
        await ctx.waitpid(pid)
        return 0

    with trio.fail_after(30):
        r = await run_program(kernel, reader)
    assert r.status == 0, r.stderr
    assert set(seen[:2]) == {"writer-open", "reader-open"} and seen[2] == b"through the fifo"
