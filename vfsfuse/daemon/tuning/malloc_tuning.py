"""Keep the daemon's big buffers in the heap instead of fresh pages from the kernel.

A mount moves data in multi-megabyte buffers: 1 MiB per FUSE write, a chunk being filled,
a 4 MiB block read from the store.  glibc serves allocations above its mmap threshold with
a fresh ``mmap`` and gives them back with ``munmap`` when freed, so every such buffer is
page-faulted and zeroed by the kernel again (256 faults per MiB, a TLB shootdown at every
unmap).  Measured on a 256 MiB sequential write through the mount: the daemon's write
handlers took 93-172 ms with the defaults and 49-65 ms with the buffers recycled.

Raising the mmap threshold above the largest buffer we allocate makes them come from the
heap, and raising the trim threshold keeps freed ones there for the next request.  The
cost is memory the daemon keeps after a burst.  One arena bounds it: a thread arena keeps
the top of each of its 64 MiB heaps whatever ``malloc_trim`` says (100-200 MiB were seen
kept with two arenas after eight threads held 32 MiB each), while the main heap gives back
everything above the trim threshold on each free and all of it on ``malloc_trim``.  Python
allocates under the GIL, so threads hardly contend for the one arena.
``KeptMemoryTrimmer`` gives the rest back once the mount is quiet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 16 << 20  # above a 4 MiB block, a 1 MiB request and chunks of up to 16 MiB
TRIM_THRESHOLD = 64 << 20  # freed memory a heap keeps before giving it back
ARENA_MAX = 1  # one heap: Python allocates under the GIL, so threads hardly contend, and one heap trims fully


def recycle_big_buffers() -> bool:
    """Tell glibc to serve and keep big buffers from its heaps; False where that is not
    possible (not glibc): the daemon then works as before, only slower."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))
    if not done:
        log.debug("mallopt refused the thresholds; big buffers stay mmap-backed")
    return done


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and newer): byte counts as size_t."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


class KeptMemoryTrimmer:
    """Give the heap's free pages back to the kernel once a burst is over.

    Recycling big buffers (above) means a burst of writes leaves up to the trim threshold
    in the heap.  While requests flow that memory is the point; once the mount
    is quiet it is waste.  ``run()`` samples the free bytes glibc holds every ``interval_s``;
    when they stay the same between two samples (nothing is allocating: the burst is over)
    and exceed ``slack_bytes``, ``malloc_trim(0)`` returns the free pages of every arena.
    A busy mount is never trimmed, so recycling keeps working while it matters.
    """

    def __init__(self, interval_s: float = 2.0, slack_bytes: int = 16 << 20) -> None:
        self.interval_s = interval_s
        self.slack_bytes = slack_bytes
        self._libc = _glibc()
        self._last_free: int | None = None
        self._trimmed_free: int | None = None  # the free bytes at the last trim: nothing new since

    def free_bytes(self) -> int:
        """Bytes glibc keeps free in its heaps (0 where that cannot be asked)."""
        if self._libc is None:
            return 0
        info = self._libc.mallinfo2()
        return int(info.fordblks)

    def check(self) -> bool:
        """One sample: trim when the free bytes are big and have not moved since the last.

        glibc still counts trimmed pages as free (they are only given back to the kernel),
        so a heap that has not changed since the last trim is left alone."""
        free = self.free_bytes()
        quiet = free == self._last_free
        self._last_free = free
        if self._libc is None or not quiet or free <= self.slack_bytes or free == self._trimmed_free:
            return False
        self._libc.malloc_trim(0)
        self._trimmed_free = self._last_free = self.free_bytes()
        log.debug("gave up to %d MiB of free heap back to the kernel", free >> 20)
        return True

    async def run(self) -> None:
        import trio

        if self._libc is None:
            return
        while True:
            await trio.sleep(self.interval_s)
            self.check()


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.mallinfo2.restype = _MallInfo2
        libc.mallinfo2.argtypes = ()
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc
