"""CpuWakeLatency: a PM QoS request held only while many small requests flow."""

from __future__ import annotations

import struct

import trio
import trio.testing

from vfsfuse.daemon.tuning.cpu_wake import NO_CONSTRAINT_US, CpuWakeLatency


def _written(device) -> list[int]:
    """Every value written to the stand-in device, in order (a regular file appends them)."""
    data = device.read_bytes()
    return [v for (v,) in struct.iter_unpack("=i", data)]


async def _requests(hint: CpuWakeLatency, count: int, every_s: float) -> None:
    for _ in range(count):
        hint.note_request()
        await trio.sleep(every_s)


async def test_a_fast_pace_holds_the_request_and_a_slow_one_lifts_it(tmp_path, autojump_clock):
    device = tmp_path / "cpu_dma_latency"
    device.touch()
    hint = CpuWakeLatency(window_ms=20, busy_requests=10, device=str(device))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hint.run)
        await _requests(hint, 5, 0.001)  # 5 requests: not busy
        assert not hint.held and _written(device) == []
        await _requests(hint, 200, 0.0005)  # 2,000 a second for 0.1 s: busy
        assert hint.held and _written(device) == [0]
        await _requests(hint, 10, 0.01)  # 2 requests per window: the pace dropped
        assert not hint.held and _written(device) == [0, NO_CONSTRAINT_US]
        await trio.sleep(1)  # idle: nothing more is written, run() sleeps
        assert _written(device) == [0, NO_CONSTRAINT_US]
        await _requests(hint, 100, 0.0001)  # a new busy spell asks again
        assert hint.held and hint.holds == 2
        nursery.cancel_scope.cancel()
    assert not hint.held  # run() closes the descriptor, which lifts the request in the kernel


async def test_without_the_device_the_hint_is_simply_off(tmp_path, autojump_clock):
    hint = CpuWakeLatency(window_ms=20, busy_requests=1, device=str(tmp_path / "missing"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hint.run)
        await _requests(hint, 50, 0.0001)
        assert not hint.held and hint.holds == 0
        nursery.cancel_scope.cancel()


async def test_the_idle_task_sleeps_until_the_first_request(tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.touch()
    hint = CpuWakeLatency(window_ms=5, busy_requests=3, device=str(device))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hint.run)
        await trio.testing.wait_all_tasks_blocked()
        assert hint._idle  # waiting on an event, not polling on a timer
        for _ in range(3):
            hint.note_request()
        assert hint.held and not hint._idle
        nursery.cancel_scope.cancel()
