"""flock: shared/exclusive/non-blocking, ownership by open file description (dup and
spawn share, a second open does not), release on last close, FIFO wake-up; the
ownership rules are checked against Linux ``fcntl.flock``."""

from __future__ import annotations

import fcntl
import os

import pytest
import trio

from kernel.errors import KernelError
from kernel.flock import LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, FlockTable

from .ksupport import register, run_program


def linux_story(path: str) -> list:
    """Ownership rules on the host: who conflicts with whom."""
    out = []

    def attempt(fd, op):
        try:
            fcntl.flock(fd, op)
            out.append("ok")
        except BlockingIOError:
            out.append("EAGAIN")

    a = os.open(path, os.O_RDWR | os.O_CREAT)
    b = os.open(path, os.O_RDWR)
    a2 = os.dup(a)
    attempt(a, LOCK_EX | LOCK_NB)
    attempt(b, LOCK_SH | LOCK_NB)       # other description: conflict
    attempt(a2, LOCK_EX | LOCK_NB)      # same description: fine
    attempt(a2, LOCK_SH | LOCK_NB)      # downgrade through the dup
    attempt(b, LOCK_SH | LOCK_NB)       # now shared with shared: fine
    attempt(b, LOCK_EX | LOCK_NB)       # upgrade blocked by a's shared lock
    os.close(a)                          # a2 still holds the description: lock stays
    attempt(b, LOCK_EX | LOCK_NB)
    os.close(a2)                         # last close releases
    attempt(b, LOCK_EX | LOCK_NB)
    attempt(b, LOCK_UN)
    attempt(b, LOCK_UN)                  # unlocking nothing is fine
    os.close(b)
    return out


async def test_ownership_rules_match_linux(kernel, tmp_path):
    expected = linux_story(str(tmp_path / "lockfile"))
    got = []

    async def prog(ctx):
        async def attempt(fd, op):
            try:
                await ctx.flock(fd, op)
                got.append("ok")
            except KernelError as e:
                got.append(e.code)

        a = await ctx.open("/tmp/lockfile", os.O_RDWR | os.O_CREAT)
        b = await ctx.open("/tmp/lockfile", os.O_RDWR)
        a2 = await ctx.dup(a)
        await attempt(a, LOCK_EX | LOCK_NB)
        await attempt(b, LOCK_SH | LOCK_NB)
        await attempt(a2, LOCK_EX | LOCK_NB)
        await attempt(a2, LOCK_SH | LOCK_NB)
        await attempt(b, LOCK_SH | LOCK_NB)
        await attempt(b, LOCK_EX | LOCK_NB)
        await ctx.close(a)
        await attempt(b, LOCK_EX | LOCK_NB)
        await ctx.close(a2)
        await attempt(b, LOCK_EX | LOCK_NB)
        await attempt(b, LOCK_UN)
        await attempt(b, LOCK_UN)
        await ctx.close(b)
        return 0

    await run_program(kernel, prog)
    assert got == expected


async def test_blocking_lock_waits_for_release_by_other_process(kernel):
    events = []

    async def holder(ctx):
        fd = await ctx.open("/tmp/l2", os.O_RDWR | os.O_CREAT)
        await ctx.flock(fd, LOCK_EX)
        events.append("held")
        await ctx.sleep(0.1)
        events.append("release")
        return 0  # exit closes the fd and releases

    async def waiter(ctx):
        await ctx.sleep(0.02)
        fd = await ctx.open("/tmp/l2", os.O_RDWR)
        await ctx.flock(fd, LOCK_EX)
        events.append("acquired")
        return 0

    hname, wname = register(kernel, holder), register(kernel, waiter)

    async def prog(ctx):
        a = await ctx.spawn([hname])
        b = await ctx.spawn([wname])
        await ctx.waitpid(a)
        await ctx.waitpid(b)
        return 0

    with trio.fail_after(30):
        await run_program(kernel, prog)
    assert events == ["held", "release", "acquired"]


async def test_lock_shared_with_spawned_child_via_inherited_fd(kernel):
    seen = {}

    async def child(ctx):
        fd = await ctx.open("/tmp/l3", os.O_RDWR)
        try:
            await ctx.flock(fd, LOCK_EX | LOCK_NB)
            seen["own_open"] = "ok"
        except KernelError as e:
            seen["own_open"] = e.code
        await ctx.flock(3, LOCK_EX | LOCK_NB)   # inherited description: already ours
        seen["inherited"] = "ok"
        return 0

    cname = register(kernel, child)

    async def prog(ctx):
        fd = await ctx.open("/tmp/l3", os.O_RDWR | os.O_CREAT)
        assert fd == 3
        await ctx.flock(fd, LOCK_EX)
        await ctx.waitpid(await ctx.spawn([cname]))
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"own_open": "EAGAIN", "inherited": "ok"}


async def test_flock_wait_is_interrupted_by_signal(kernel):
    from kernel.signals import SIGUSR1
    seen = []

    async def prog(ctx):
        a = await ctx.open("/tmp/l4", os.O_RDWR | os.O_CREAT)
        b = await ctx.open("/tmp/l4", os.O_RDWR)
        await ctx.flock(a, LOCK_EX)
        await ctx.signal(SIGUSR1, lambda s: seen.append("h"), flags=0)
        try:
            await ctx.flock(b, LOCK_EX)
        except KernelError as e:
            seen.append(e.code)
        return 0

    name = register(kernel, prog)
    h = await kernel.spawn([name])
    await trio.sleep(0.05)
    h.kill(SIGUSR1)
    with trio.fail_after(2):
        assert await h.wait() == 0
    assert seen == ["h", "EINTR"]


async def test_fifo_order_of_waiters():
    t = FlockTable()
    order = []
    assert t.try_lock(1, owner=100, op=LOCK_EX)

    async def want(owner, op):
        await t.lock(1, owner, op)
        order.append(owner)
        await trio.sleep(0.01)
        t.unlock(1, owner)

    async with trio.open_nursery() as n:
        for owner, op in ((1, LOCK_EX), (2, LOCK_SH), (3, LOCK_SH), (4, LOCK_EX)):
            n.start_soon(want, owner, op)
            await trio.sleep(0.001)
        t.unlock(1, 100)
    assert order[0] == 1 and set(order[1:3]) == {2, 3} and order[3] == 4  # 2 and 3 share
    assert not t.holds(1) and t.mode(1, 4) is None


def test_invalid_operation():
    with pytest.raises(KernelError) as e:
        FlockTable().try_lock(1, 1, 0)
    assert e.value.code == "EINVAL"
