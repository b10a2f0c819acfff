"""Moving chunk bytes in and out of the block store safely.

Blocks are content addressed (key = hex xxh3-128 of the bytes) and shared by
refcount, which the metadata store keeps.  Three rules make this crash safe:

1. A block is written (atomically, by the block store) *before* any metadata
   that references it is committed.
2. Before a commit, every block written since the previous commit is made
   durable (``BlockStore.sync``), so committed metadata never names a block that
   a power cut could lose.
3. A block is deleted only after the commit in which its refcount reached zero,
   and only if nobody revived it meanwhile.

Rule 3 needs coordination between a writer that is about to reference a key
whose refcount is zero (it must write the block again) and a deleter that is
removing that same key: ``_writing`` and ``_deleting`` make the two exclusive.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import trio
import xxhash

from blockstores.base import BlockStore
from kernel.errors import KernelError
from vfsfuse.storage.metadata.base import MetadataStore
from vfsfuse.storage.metadata_room import MetadataRoom

log = logging.getLogger("vfsfuse.storage.blocks")


def block_key(data: bytes | bytearray | memoryview) -> str:
    """The content address of a chunk."""
    return xxhash.xxh3_128_hexdigest(data)


class BlockManager:
    """Writes, reads (verified) and deletes blocks on behalf of the ChunkedVFS."""

    def __init__(self, metadata: MetadataStore, blocks: BlockStore, clean_cache_bytes: int) -> None:
        self.metadata = metadata
        self.blocks = blocks
        self._writing: dict[str, int] = {}  # key -> writers currently (re)creating it
        self._deleting: dict[str, trio.Event] = {}
        self._unsynced: set[str] = set()  # written since the last durable commit
        self._unwanted: set[str] = set()  # stored, then not referenced after all (a race)
        self._cache: dict[str, bytes] = {}  # verified clean blocks, insertion = LRU order
        self._reading: dict[str, trio.Event] = {}  # block reads in flight
        self._cache_bytes = 0
        self._cache_limit = clean_cache_bytes
        # Set by the VFS: keeps metadata growth out of the disk's last bytes (stores on disk).
        self.room: MetadataRoom | None = None
        # Set by the VFS: frees what it can (files waiting to be destroyed) before a retry.
        self.reclaim: Callable[[], Awaitable[None]] | None = None

    # -- writing -------------------------------------------------------------------

    def begin_reference(self, key: str) -> None:
        """Mark *key* as about to be referenced, so no deleter removes it meanwhile."""
        self._writing[key] = self._writing.get(key, 0) + 1

    def discard_if_unused(self, key: str) -> None:
        """*key* was stored for a chunk that changed meanwhile: delete it at the next commit
        unless something references it by then."""
        self._unwanted.add(key)

    def end_reference(self, key: str) -> None:
        n = self._writing[key] - 1
        if n:
            self._writing[key] = n
        else:
            del self._writing[key]

    async def ensure_stored(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Make sure block *key* exists in the block store.  Call between
        ``begin_reference`` and the metadata update that references it."""
        while key in self._deleting:
            await self._deleting[key].wait()
        if self.metadata.block_refcount(key) > 0:
            return  # dedup: somebody already references (so stored) these bytes
        try:
            await self.blocks.write(key, data)
        except KernelError as err:
            if err.code != "ENOSPC":
                raise
            # Blocks of deleted files are removed only at a commit: make that happen now,
            # so space freed by rm is there for this write (then give up for real).
            if self.reclaim is not None:
                await self.reclaim()
            await self.commit()
            while key in self._deleting:
                await self._deleting[key].wait()
            await self.blocks.write(key, data)
        self._unsynced.add(key)

    # -- reading -------------------------------------------------------------------

    async def read_verified(self, key: str) -> bytes:
        """The whole block, checked against its content address.

        A missing or corrupt block raises EIO (and logs), never returns wrong bytes.
        Concurrent readers of one key (e.g. a read racing its own read-ahead) share
        a single block read.
        """
        while True:
            data = self._cache.get(key)
            if data is not None:
                self._cache[key] = self._cache.pop(key)  # refresh LRU position
                return data
            pending = self._reading.get(key)
            if pending is None:
                break
            await pending.wait()
            if key not in self._cache:  # the other reader failed: try ourselves
                break
        done = self._reading[key] = trio.Event()
        try:
            return await self._load(key)
        finally:
            del self._reading[key]
            done.set()

    async def _load(self, key: str) -> bytes:
        try:
            data = await self.blocks.read(key)
        except KernelError as err:
            log.error("block %s unreadable: %s", key, err)
            raise KernelError("EIO", f"block {key} is missing or unreadable") from None
        if block_key(data) != key:
            log.error("block %s is corrupt (content hash mismatch)", key)
            raise KernelError("EIO", f"block {key} is corrupt")
        self._remember(key, data)
        return data

    def read_ahead(self, nursery: trio.Nursery, key: str) -> None:
        """Start loading *key* into the clean cache in the background (sequential reads)."""
        if key in self._cache or key in self._reading:
            return
        nursery.start_soon(self._read_ahead, key)

    async def _read_ahead(self, key: str) -> None:
        try:
            await self.read_verified(key)
        except KernelError:
            pass  # the real read will report it

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self._cache_limit:
            return
        self._cache[key] = data
        self._cache_bytes += len(data)
        while self._cache_bytes > self._cache_limit:
            old_key = next(iter(self._cache))
            self._cache_bytes -= len(self._cache.pop(old_key))

    @property
    def cache_limit(self) -> int:
        return self._cache_limit

    def forget_cached(self, key: str) -> None:
        data = self._cache.pop(key, None)
        if data is not None:
            self._cache_bytes -= len(data)

    # -- durability and deletion ---------------------------------------------------

    async def commit(self, extra_candidates=(), measure: bool = False) -> tuple[int, int]:
        """Durable group commit: sync new blocks, commit metadata, delete dead blocks.

        *extra_candidates* (from GC) are deleted too if no committed metadata
        references them.  Returns (blocks removed, bytes removed); the bytes only with
        *measure* (a stat per block, i.e. a thread hop each: GC reports them, the
        per-second commit does not need them)."""
        while self._unsynced:
            pending, self._unsynced = self._unsynced, set()
            await self.blocks.sync(pending)
        # No await from the last sync to the claim below: the committed metadata only
        # references durable blocks, and refcount 0 now means "dead in committed state".
        dead = self.metadata.commit()
        if self.room is not None:
            self.room.committed()
        unwanted, self._unwanted = self._unwanted, set()
        claimed = self._claim([*dead, *unwanted, *extra_candidates])
        if not claimed:
            return 0, 0
        return await self._remove(claimed, measure)

    def _claim(self, keys) -> list[str]:
        victims = []
        for k in keys:
            if k in self._writing or k in self._deleting or self.metadata.block_refcount(k) != 0:
                continue
            self._deleting[k] = trio.Event()
            self.forget_cached(k)
            victims.append(k)
        return victims

    async def _remove(self, victims: list[str], measure: bool) -> tuple[int, int]:
        removed_bytes = 0
        try:
            for k in victims if measure else ():
                try:
                    removed_bytes += await self.blocks.size(k)
                except KernelError:
                    pass
            await self.blocks.delete_many(victims)
        finally:
            for k in victims:
                self._deleting.pop(k).set()
        return len(victims), removed_bytes

    async def collect_garbage(self) -> tuple[int, int]:
        """Remove every stored block that no committed metadata references."""
        candidates = []
        async for key in self.blocks.list_keys():
            if self.metadata.block_refcount(key) == 0:
                candidates.append(key)
        return await self.commit(candidates, measure=True)

    @property
    def unsynced_count(self) -> int:
        return len(self._unsynced)
