"""How much of a file the host page cache holds: for tests of write paths that avoid it."""

from __future__ import annotations

import ctypes
import mmap
import os


def cached_pages(path: str) -> int:
    """Pages of *path* in the host page cache (mincore(2) over a private mapping; does not read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        vec = (ctypes.c_ubyte * -(-size // mmap.PAGESIZE))()
        first = ctypes.c_char.from_buffer(mm)
        rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(first)), ctypes.c_size_t(size), vec)
        del first  # release the export before closing the map
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(v & 1 for v in vec)
    finally:
        mm.close()
