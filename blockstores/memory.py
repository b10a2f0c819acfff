"""In-memory block store: a dict of immutable ``bytes``.

Used by tests and by throw-away filesystems. Storing ``bytes`` (never the
caller's buffer) gives the "store keeps its own copy" rule for free, and lets
``read`` and ``copy`` share the stored object without copying it.
"""

from __future__ import annotations

from typing import AsyncIterator, Iterable

from blockstores.keys import check_key
from kernel.errors import KernelError


def _missing(key: str) -> KernelError:
    return KernelError("ENOENT", f"block not found: {key}")


class MemoryBlockStore:
    """A ``BlockStore`` kept in a dict; nothing survives the process.

    *capacity* (bytes, None = unbounded) makes it a disk of that size: a write that
    would store more gives ENOSPC, as tmpfs does at its ``size=``.  Filesystems that
    untrusted processes can fill (``/dev/shm``) need one, or they fill the daemon's
    memory instead."""

    def __init__(self, capacity: int | None = None) -> None:
        self._blocks: dict[str, bytes] = {}
        self.capacity = capacity
        self.used_bytes = 0

    def _store(self, key: str, data: bytes) -> None:
        old = self._blocks.get(key)
        grow = len(data) - (len(old) if old is not None else 0)
        if self.capacity is not None and grow > 0 and self.used_bytes + grow > self.capacity:
            raise KernelError("ENOSPC", f"memory block store full ({self.capacity} bytes)")
        self._blocks[key] = data
        self.used_bytes += grow

    def _drop(self, key: str) -> None:
        old = self._blocks.pop(key, None)
        if old is not None:
            self.used_bytes -= len(old)

    async def read(self, key: str) -> bytes:
        try:
            return self._blocks[key]
        except KeyError:
            check_key(key)
            raise _missing(key) from None

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise KernelError("EINVAL", "negative offset or length")
        block = await self.read(key)
        if length == 0 or offset >= len(block):
            return b""
        if offset == 0 and length >= len(block):
            return block
        return block[offset : offset + length]

    async def write(self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        check_key(key)
        # bytes(x) is a no-op for bytes and a copy for bytearray/memoryview.
        self._store(key, bytes(data))

    async def delete(self, key: str) -> None:
        check_key(key)
        self._drop(key)

    async def delete_many(self, keys: Iterable[str]) -> None:
        keys = [check_key(k) for k in keys]
        for key in keys:
            self._drop(key)

    async def copy(self, src: str, dst: str) -> None:
        check_key(dst)
        self._store(dst, await self.read(src))

    async def exists(self, key: str) -> bool:
        return check_key(key) in self._blocks

    async def size(self, key: str) -> int:
        return len(await self.read(key))

    async def list_keys(self) -> AsyncIterator[str]:
        # Snapshot so callers may write or delete while iterating.
        for key in list(self._blocks):
            yield key

    async def sync(self, keys: Iterable[str]) -> None:
        for key in keys:
            check_key(key)

    def __len__(self) -> int:
        return len(self._blocks)
