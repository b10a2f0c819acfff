"""Keep idle CPUs quick to wake while FUSE requests are flowing.

Why: a caller blocked in a FUSE request sleeps until the daemon answers, and its
CPU goes idle.  When the CPU's idle state is a real halt, the answer has to wake
it: on a virtual machine that is an inter-processor interrupt and a VM exit, on
bare metal a C-state exit.  Measured here (Firecracker, haltpoll cpuidle with
guest halt-polling off) that wake-up is most of a round trip: untar of the Python
standard library 3.1 -> 1.5 s, ``git add+commit+fsck`` 7.9 -> 3.9 s and ``rm -rf``
1.6 -> 1.1 s once idle CPUs poll instead of halting.

Linux offers exactly this to user space as a PM QoS request: a process that holds
``/dev/cpu_dma_latency`` open with a 32-bit value asks every CPU to use only idle
states that wake within that many microseconds (0: poll).  The request lives as
long as the descriptor, so a daemon killed with ``kill -9`` leaves nothing behind.

The cost is CPU power, and on a virtual machine more: a vCPU that polls keeps a
host CPU busy, and the host thread that emulates the disk then waits for one (cold
reads of big files ran at half speed with the request held).  So the request is
made only while the mount is answering many small requests, where the wake-up is
the cost: in each window of ``window_ms`` it is taken once ``busy_requests``
requests have come, and lifted after a window with fewer.  Big reads and writes
(a few hundred requests a second, each waiting on the disk) and an idle mount
keep no CPU awake.  Without permission to open the device (it is root-only) the
hint is simply off.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trio

log = logging.getLogger("vfsfuse.daemon.tuning.cpu_wake")

DEVICE = "/dev/cpu_dma_latency"
# PM_QOS_CPU_LATENCY_DEFAULT_VALUE in the kernel: a request of this value constrains nothing.
NO_CONSTRAINT_US = 2_000_000_000


class CpuWakeLatency:
    """A PM QoS CPU-latency request that follows the rate of FUSE requests.

    ``note_request()`` is called for every request (cheap: a counter and a
    comparison); ``run()`` is a trio task that judges each window and sleeps while
    the mount is idle.
    """

    def __init__(self, window_ms: float = 20.0, busy_requests: int = 40, device: str = DEVICE) -> None:
        self.window_s = window_ms / 1000
        self.busy_requests = busy_requests
        self.device = device
        self.held = False
        self.holds = 0  # busy spells that asked for fast wake-ups (for tests and logs)
        self._fd: int | None = None
        self._unavailable = False
        self._recent = 0  # requests in the current window
        self._idle = False  # run() is waiting for the first request of a busy spell
        self._activity: trio.Event | None = None  # wakes run()

    def note_request(self) -> None:
        self._recent += 1
        if self._idle and self._activity is not None:
            self._idle = False
            self._activity.set()
        if self._recent >= self.busy_requests and not self.held and not self._unavailable:
            self._hold()

    def _hold(self) -> None:
        if self._fd is None:
            try:
                self._fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as err:
                self._unavailable = True
                log.info("no fast CPU wake-ups: cannot open %s (%s)", self.device, err.strerror)
                return
        if self._write(0):
            self.held = True
            self.holds += 1

    def release(self) -> None:
        if self.held:
            self._write(NO_CONSTRAINT_US)
            self.held = False

    def _write(self, microseconds: int) -> bool:
        if self._fd is None:
            return False
        try:
            os.write(self._fd, struct.pack("=i", microseconds))
            return True
        except OSError as err:
            self._unavailable = True
            log.warning("fast CPU wake-ups off: writing %s failed (%s)", self.device, err.strerror)
            return False

    def close(self) -> None:
        """Drop the request for good (closing the descriptor removes it in the kernel)."""
        self.held = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def run(self) -> None:
        """Judge each window: lift the request after a quiet one, sleep while idle."""
        import trio

        try:
            while True:
                if self._recent == 0:
                    activity = self._activity = trio.Event()
                    self._idle = True
                    await activity.wait()
                self._recent = 0
                await trio.sleep(self.window_s)
                if self._recent < self.busy_requests:
                    self.release()
        finally:
            self.close()
