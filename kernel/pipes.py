"""Pipes: a bounded queue of byte chunks between read and write ends.

Hot path design: a write stores the caller's ``bytes`` object as one chunk (no
copy), a read that asks for at least a whole chunk gets that very object back,
and waiting is a trio ``ParkingLot`` woken on every state change: no polling
loops and no per-byte work.  Methods here never block: they return ``None``
("would block") and the syscall layer parks on ``wait()`` with signal
interruption (``kernel/syscalls.py``).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

import trio

from .errors import KernelError

# poll(2) event bits (Linux values)
POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020

PIPE_BUF = 4096  # writes up to this size are atomic

_pipe_ids = itertools.count(1)


class Waitable:
    """Something tasks wait on: one parking lot plus the events of poll() calls watching it."""

    __slots__ = ("lot", "watchers")

    def __init__(self) -> None:
        self.lot = trio.lowlevel.ParkingLot()
        self.watchers: set[trio.Event] = set()

    def changed(self) -> None:
        if len(self.lot):
            self.lot.unpark_all()
        if self.watchers:
            for ev in self.watchers:
                ev.set()

    async def wait(self) -> None:
        await self.lot.park()


class Pipe(Waitable):
    """One pipe; ``readers``/``writers`` count the open file descriptions of each end."""

    __slots__ = ("capacity", "object_id", "chunks", "size", "head", "readers", "writers",
                 "r_opens", "w_opens", "on_idle")

    def __init__(self, capacity: int = 65536, object_id: int | None = None) -> None:
        super().__init__()
        self.capacity = capacity
        self.object_id = next(_pipe_ids) if object_id is None else object_id
        self.chunks: deque[bytes] = deque()
        self.size = 0          # bytes buffered
        self.head = 0          # bytes already consumed from chunks[0]
        self.readers = 1
        self.writers = 1
        self.r_opens = 0       # FIFO opens so far, so a blocked open notices a brief partner
        self.w_opens = 0
        self.on_idle: Callable[[Pipe], None] | None = None  # FIFOs: called when the last end closes

    # -- data ------------------------------------------------------------------------
    def try_read(self, n: int) -> bytes | None:
        """Up to *n* bytes; ``b""`` at EOF (no writers left); ``None`` if it would block."""
        if self.size == 0:
            return b"" if self.writers == 0 else None
        if n <= 0:
            return b""
        chunks = self.chunks
        first = chunks[0]
        head = self.head
        avail = len(first) - head
        if n >= avail and head == 0 and (n == avail or len(chunks) == 1):
            chunks.popleft()
            self.size -= avail
            self.changed()
            return first
        parts: list[bytes] = []
        want = n
        while want and chunks:
            first = chunks[0]
            avail = len(first) - self.head
            if avail <= want:
                parts.append(first[self.head:] if self.head else first)
                chunks.popleft()
                self.head = 0
                want -= avail
            else:
                parts.append(first[self.head:self.head + want])
                self.head += want
                want = 0
        got = n - want
        self.size -= got
        self.changed()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def try_write(self, data: bytes | bytearray | memoryview) -> int | None:
        """Bytes accepted (maybe partial), ``None`` if it would block; EPIPE without readers.

        Writes of at most PIPE_BUF bytes are atomic: they wait until all of it fits.
        """
        if self.readers == 0:
            raise KernelError("EPIPE", "broken pipe")
        n = len(data)
        if n == 0:
            return 0
        space = self.capacity - self.size
        if space <= 0 or (n <= PIPE_BUF and n > space):
            return None
        k = n if n <= space else space
        if k == n and type(data) is bytes:
            chunk = data
        else:
            chunk = bytes(data[:k])
        self.chunks.append(chunk)
        self.size += k
        self.changed()
        return k

    # -- ends --------------------------------------------------------------------------
    def close_read(self) -> None:
        self.readers -= 1
        if self.readers == 0:
            self.chunks.clear()
            self.size = self.head = 0
        self.changed()
        self._idle_check()

    def close_write(self) -> None:
        self.writers -= 1
        self.changed()
        self._idle_check()

    def _idle_check(self) -> None:
        if self.readers <= 0 and self.writers <= 0 and self.on_idle is not None:
            self.on_idle(self)

    def poll_read_end(self) -> int:
        mask = POLLIN if self.size else 0
        if self.writers == 0:
            mask |= POLLHUP
        return mask

    def poll_write_end(self) -> int:
        if self.readers == 0:
            return POLLERR | POLLOUT
        return POLLOUT if self.size < self.capacity else 0


class FifoTable:
    """Named pipes (mkfifo nodes): one ``Pipe`` per inode while any end is open.

    Like Linux, the data lives only while the FIFO is open; the last close drops it.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._pipes: dict[int, Pipe] = {}

    def get(self, key: int) -> Pipe:
        pipe = self._pipes.get(key)
        if pipe is None:
            pipe = Pipe(self.capacity)
            pipe.readers = pipe.writers = 0
            pipe.on_idle = lambda p: self._idle(key, p)
            self._pipes[key] = pipe
        return pipe

    def _idle(self, key: int, pipe: Pipe) -> None:
        if self._pipes.get(key) is pipe:
            del self._pipes[key]

    def __len__(self) -> int:
        return len(self._pipes)
