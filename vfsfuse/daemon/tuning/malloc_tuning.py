"""Keep the daemon's big buffers in the heap instead of fresh pages from the kernel.

A mount moves data in multi-megabyte buffers: 1 MiB per FUSE write, a chunk being filled,
a 4 MiB block read from the store.  glibc serves allocations above its mmap threshold with
a fresh ``mmap`` and gives them back with ``munmap`` when freed, so every such buffer is
page-faulted and zeroed by the kernel again (256 faults per MiB, a TLB shootdown at every
unmap).  Measured on a 256 MiB sequential write through the mount: the daemon's write
handlers took 93-172 ms with the defaults and 49-65 ms with the buffers recycled.

Raising the mmap threshold above the largest buffer we allocate makes them come from the
heap, and raising the trim threshold keeps freed ones there for the next request.  The
cost is memory the daemon keeps after a burst: up to the trim threshold per malloc arena,
and two arenas at most (the main thread's and one shared by the I/O threads; glibc would
otherwise give up to 8 per CPU, each keeping its own).
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
ARENA_MAX = 2  # heaps for the main thread and the block I/O threads: bounds what is kept


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
