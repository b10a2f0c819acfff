"""RequestPoller: answers from polling when a request is waiting, but never starves other trio tasks."""

from __future__ import annotations

import os
import types

import trio

from vfsfuse.daemon.tuning.request_polling import RequestPoller, fuse_device_fds


def _fake_pyfuse3(fd: int) -> types.SimpleNamespace:
    """Stands in for the pyfuse3 module: its original wait sleeps in trio until ``fd`` is readable."""
    module = types.SimpleNamespace(slept=0)

    async def _wait_fuse_readable() -> bool:
        module.slept += 1
        await trio.lowlevel.wait_readable(fd)
        return True

    module._wait_fuse_readable = _wait_fuse_readable
    return module


async def test_a_waiting_request_is_found_without_sleeping_and_others_still_run():
    r, w = os.pipe()
    try:
        os.write(w, b"request")  # always readable: a caller that never pauses
        module = _fake_pyfuse3(r)
        poller = RequestPoller(module, r, spin_us=50)
        poller.install()
        ticks = 0

        async def other_task() -> None:
            nonlocal ticks
            while True:
                await trio.sleep(0.001)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            end = trio.current_time() + 0.5
            served = 0
            while trio.current_time() < end:
                assert await module._wait_fuse_readable() is True
                served += 1
            nursery.cancel_scope.cancel()
        assert poller.fast_hits > served // 2  # most waits ended by polling
        assert module.slept >= 1
        assert ticks >= 20  # the timer task ran all along (it would be 0 if polling never yielded)
        poller.uninstall()
        assert module._wait_fuse_readable is not poller._wait
    finally:
        os.close(r)
        os.close(w)


async def test_an_idle_device_falls_back_to_sleeping():
    r, w = os.pipe()
    try:
        module = _fake_pyfuse3(r)
        poller = RequestPoller(module, r, spin_us=50)
        poller.install()
        with trio.move_on_after(0.2) as scope:
            await module._wait_fuse_readable()
        assert scope.cancelled_caught  # nothing arrived: it went to sleep in trio, cancellable
        assert poller.fast_hits == 0 and module.slept == 1
    finally:
        os.close(r)
        os.close(w)


def test_fuse_device_fds_finds_only_dev_fuse():
    other = os.open("/dev/null", os.O_RDONLY)
    fuse = os.open("/dev/fuse", os.O_RDWR)
    try:
        found = fuse_device_fds()
        assert fuse in found and other not in found
    finally:
        os.close(fuse)
        os.close(other)
