"""The time slice: a busy sandbox process leaves the loop to other tasks (the FUSE server's)
often enough that one of their requests, a few checkpoints long, is not held for long."""

from __future__ import annotations

import statistics
import time

import trio

from kernel.syscalls import _base

from .ksupport import run_program


async def _busy(ctx) -> int:
    """Pure computation with a preempt point every ~50 us, as sort's steps or a shell loop."""
    end = time.perf_counter() + 0.6
    while time.perf_counter() < end:
        x = 0
        for i in range(300):
            x += i
        await ctx.preempt_point()
    return 0


async def _checkpoints_while_busy(kernel) -> list[float]:
    """ms per checkpoint of a host-side task while the busy program runs."""
    waits: list[float] = []

    async def other() -> None:
        await trio.sleep(0.05)  # the program is running by then
        for _ in range(200):
            t = time.perf_counter()
            await trio.lowlevel.checkpoint()
            waits.append((time.perf_counter() - t) * 1000)

    async with trio.open_nursery() as n:
        n.start_soon(other)
        r = await run_program(kernel, _busy)
        assert r.status == 0
    return waits


async def test_a_task_waits_under_a_millisecond_per_checkpoint(kernel) -> None:
    waits = await _checkpoints_while_busy(kernel)
    assert len(waits) == 200
    # about half a slice on average: it runs after the busy process in every other batch
    assert statistics.median(waits) < 1.0, statistics.median(waits)
    assert max(waits) < 50


async def test_the_soft_slice_yields_early_to_a_ready_task(kernel) -> None:
    """A task that became ready while the busy process runs gets the loop after
    ``SOFT_SLICE_S``, not a whole slice: the mean wait is shorter than with it off."""
    on = _trimmed_mean(await _checkpoints_while_busy(kernel))
    soft = _base.SOFT_SLICE_S
    _base.SOFT_SLICE_S = 10.0
    try:
        off = _trimmed_mean(await _checkpoints_while_busy(kernel))
    finally:
        _base.SOFT_SLICE_S = soft
    print(f"mean wait {on:.3f} ms with the soft slice, {off:.3f} ms without")
    assert on < off * 0.9, (on, off)


def _trimmed_mean(waits: list[float]) -> float:
    """The mean without the slowest tenth (the host's own scheduling hiccups)."""
    w = sorted(waits)
    return statistics.mean(w[: len(w) * 9 // 10])
