"""Counting bytes of big buffers, for ``wc``.

``bytes.count`` of one byte walks the buffer a byte at a time (~1.8 GB/s here), which made
``wc -l`` of 256 MiB three times GNU's (whose count is vectorised).  numpy's compare and
``count_nonzero`` are vectorised too (~7 GB/s).  Small buffers keep ``bytes.count``: numpy's
per-call cost only pays off past ~64 KiB.

Importing numpy takes 70-120 ms, too long to hold the event loop that also serves FUSE: it runs
in a thread (which gives the GIL back every switch interval), started when the userland is
assembled (``start_loading``, from ``kernel.userland``) so that the first ``wc`` of a session
already has it; a buffer that comes before the import is done is counted with ``bytes.count``.
"""

from __future__ import annotations

import threading
from types import ModuleType

#: Buffers at least this big are counted by numpy.
NUMPY_FROM = 1 << 16
#: numpy compares this much at a time into one reused mask, which stays in the CPU's cache
#: (a mask of the whole 4 MiB read costs a third more).
_STEP = 1 << 18

_numpy: ModuleType | None = None
_loading = threading.Lock()
_loader: threading.Thread | None = None


def _load() -> None:
    global _numpy
    import numpy

    _numpy = numpy


def start_loading() -> None:
    """Start numpy's import in the background, once per process (later calls do nothing)."""
    _np()


def _np() -> ModuleType | None:
    """numpy once it is imported; None until then (the first call starts the import)."""
    global _loader
    if _numpy is None and _loader is None:
        with _loading:
            if _loader is None:
                _loader = threading.Thread(target=_load, name="numpy-import", daemon=True)
                _loader.start()
    return _numpy


def wait_for_numpy(timeout: float = 30.0) -> bool:
    """Start numpy's import and wait for it (for tests and benchmarks): True once loaded."""
    _np()
    if _loader is not None:
        _loader.join(timeout)
    return _numpy is not None


def count_byte(data: bytes, byte: int) -> int:
    """How many times *byte* occurs in *data* (``data.count(bytes([byte]))``, faster when big)."""
    np = _np() if len(data) >= NUMPY_FROM else None
    if np is None:
        return data.count(byte)
    values = np.frombuffer(data, np.uint8)
    mask = np.empty(min(len(data), _STEP), np.bool_)
    n = 0
    for at in range(0, len(data), _STEP):
        part = values[at:at + _STEP]
        np.equal(part, byte, out=mask[: len(part)])
        n += int(np.count_nonzero(mask[: len(part)]))
    return n


def count_utf8_starts(data: bytes) -> int:
    """How many bytes of *data* are not UTF-8 continuation bytes (0x80-0xBF): the number of
    characters, where *data* is valid UTF-8 (``wc -m``)."""
    np = _np() if len(data) >= NUMPY_FROM else None
    if np is None:
        return len(data) - sum(data.count(b) for b in range(0x80, 0xC0))
    return int(np.count_nonzero((np.frombuffer(data, np.uint8) & 0xC0) != 0x80))
