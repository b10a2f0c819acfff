"""ChunkedVFS: the inode-level filesystem over a metadata store and a block store.

Small files live inline in their inode row; larger ones are cut into fixed-size
chunks, each stored as a content-addressed block shared by refcount.  Writes go
to a bounded write-back buffer (``writeback.py``) and become blocks on flush;
metadata changes ride in one open transaction that ``BlockManager.commit``
makes durable (group commit).  See ARCHITECTURE.md "Storage".

Concurrency: metadata calls are synchronous, so any run of them without an
``await`` is atomic.  Operations that await in the middle of a read-modify-write
of file data (write, truncate, flush, version changes) hold a per-inode
``trio.Lock``.
"""

from __future__ import annotations

import logging
import os
import stat as _stat
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

import trio

from blockstores.base import BlockStore
from blockstores.host import metadata_reserve
from kernel.errors import KernelError, unwrap_group
from kernel.fs import (
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    ROOT_CALLER,
    ROOT_INO,
    UTIME_NOW,
    XATTR_CREATE,
    XATTR_REPLACE,
    Attr,
    Caller,
    DirEntry,
    SetAttr,
    StatFs,
    check_name,
    may_access,
)
from vfsfuse.storage.blocks import BlockManager, block_key
from vfsfuse.storage.metadata.base import CHUNKED, INLINE, InodeRecord, MetadataStore, _NotLoaded
from vfsfuse.storage.metadata_room import MetadataRoom
from vfsfuse.storage.writeback import DirtyChunk, WriteBackBuffer

log = logging.getLogger("vfsfuse.storage.chunked")

DEFAULT_CHUNK_SIZE = 4 << 20
DEFAULT_INLINE_THRESHOLD = 64 << 10
DIR_SIZE = 4096
READDIR_BATCH = 512
FLUSH_PARALLEL = 4  # block writes in flight per flush (page cache and disks like a few)
DESTROY_BATCH_DELAY = 0.005  # seconds forgotten inodes wait to be destroyed together
READ_AHEAD_CHUNKS = 3  # chunks loaded ahead of a sequential reader (bounded by the clean cache)
RELATIME_WINDOW_NS = 24 * 3600 * 10**9
CHUNKS_XATTR = b"user.vfs.chunks"

R_OK, W_OK, X_OK = 4, 2, 1


@dataclass(slots=True)
class OpenHandle:
    ino: int
    flags: int
    caller: Caller
    is_dir: bool = False
    next_read: int = 0  # where a sequential reader's next read starts (read-ahead trigger)
    next_write: int = 0  # where a sequential writer's next write starts (write-behind trigger)


@dataclass(slots=True)
class GcReport:
    removed_blocks: int
    removed_bytes: int


def _now() -> int:
    return time.time_ns()


@dataclass(slots=True)
class _FlushJob:
    """One dirty chunk being stored as a block."""

    idx: int
    chunk: DirtyChunk
    generation: int  # the chunk's generation when it was frozen
    key: str
    payload: memoryview  # a view of the frozen chunk's bytes (its valid part)


@dataclass(slots=True, eq=False)
class _PendingFlushes:
    """Background work on one inode; ``done`` fires when none is left."""

    count: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class _InFlight:
    """Background tasks per inode (flushes after close, write-behind), so others can wait."""

    def __init__(self) -> None:
        self._by_ino: dict[int, _PendingFlushes] = {}

    def begin(self, ino: int) -> _PendingFlushes:
        pending = self._by_ino.get(ino)
        if pending is None:
            pending = self._by_ino[ino] = _PendingFlushes()
        pending.count += 1
        return pending

    def end(self, ino: int, pending: _PendingFlushes) -> None:
        pending.count -= 1
        if not pending.count:
            if self._by_ino.get(ino) is pending:
                del self._by_ino[ino]
            pending.done.set()

    async def wait(self, ino: int | None = None) -> None:
        """Until nothing is in flight for *ino* (None: for any inode)."""
        while True:
            if ino is not None:
                pending = self._by_ino.get(ino)
            else:
                pending = next(iter(self._by_ino.values()), None)
            if pending is None:
                return
            await pending.done.wait()


class _InodeLock:
    """A ``trio.Lock`` whose uncontended acquire does not yield to the scheduler.

    ``trio.Lock.acquire`` always passes through the run loop (a checkpoint); every write
    takes an inode lock, so that cost one extra scheduler round (with an epoll poll) per
    FUSE write.  Waiters still queue fairly: ``acquire_nowait`` fails while anyone waits."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


class ChunkedVFS:
    """An inode-level ``FileSystem`` (kernel/fs.py) storing files as chunks."""

    root_ino = ROOT_INO

    def __init__(
        self,
        metadata: MetadataStore,
        blocks: BlockStore,
        *,
        chunk_size: int | None = None,
        inline_threshold: int | None = None,
        cache_bytes: int = 64 << 20,
        flush_interval: float = 1.0,
        versioning: bool = False,
        statfs_path: str | None = None,
    ) -> None:
        self.metadata = metadata
        self.blocks = blocks
        self.chunk_size = self._config_int("chunk_size", chunk_size, DEFAULT_CHUNK_SIZE)
        self.inline_threshold = self._config_int("inline_threshold", inline_threshold, DEFAULT_INLINE_THRESHOLD)
        if self.inline_threshold >= self.chunk_size * 16:
            raise KernelError("EINVAL", "inline threshold must be far below the chunk size")
        self.versioning = versioning
        self.flush_interval = flush_interval
        self.statfs_path = statfs_path or getattr(blocks, "base_dir", None)
        self.buffer = WriteBackBuffer(cache_bytes)
        self.bm = BlockManager(metadata, blocks,
                               clean_cache_bytes=max(self.chunk_size, min(cache_bytes // 2, 32 << 20)))
        # A full block store first destroys the files whose last reference went, then commits.
        self.bm.reclaim = lambda: self._destroy_doomed(wait=False)
        if self.statfs_path:
            db = getattr(metadata, "path", None)
            self.bm.room = MetadataRoom(self.statfs_path, f"{db}-wal" if db else None)
            if hasattr(blocks, "also_keep_free"):
                blocks.also_keep_free = self.bm.room.wal_size
        self._zero_chunk = bytes(self.chunk_size)
        self._handles: dict[int, OpenHandle] = {}
        self._next_fh = 1
        self._open_count: dict[int, int] = {}
        self._retained: dict[int, int] = {}
        self._locks: dict[int, _InodeLock] = {}
        # Inodes whose last reference went (FUSE forget) while running: destroyed together a
        # moment later, in one metadata batch, instead of one by one between requests.
        self._doomed: list[int] = []
        self._bg_flushes = _InFlight()  # flushes started by close()
        self._behind = _InFlight()  # write-behind in flight
        self._behind_limiter = trio.CapacityLimiter(FLUSH_PARALLEL)
        self._pressure_lock = trio.Lock()
        self._closed = False
        self._nursery: trio.Nursery | None = None  # set while running(): read-ahead tasks
        self.update_atime = True  # off on read-only mounts: reading must not write
        self._statfs_cache: tuple[float, StatFs] | None = None
        self._reap_orphans()

    def _config_int(self, key: str, given: int | None, default: int) -> int:
        stored = self.metadata.get_config(key)
        if stored is not None:
            if given is not None and int(stored) != given:
                raise KernelError("EINVAL", f"store was created with {key}={stored}, not {given}")
            return int(stored)
        value = given if given is not None else default
        self.metadata.set_config(key, str(value))
        return value

    def _reap_orphans(self) -> None:
        """Destroy inodes left with no name by a crash while they were open."""
        for ino in self.metadata.orphan_inodes():
            self._destroy_now(ino)

    # -- lifecycle -------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator["ChunkedVFS"]:
        """Run the background flusher; flush and commit everything on exit."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flusher)
            self._nursery = nursery
            try:
                yield self
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await self.sync()

    async def _flusher(self) -> None:
        while True:
            await trio.sleep(self.flush_interval)
            try:
                await self.sync()
            except KernelError as err:  # e.g. ENOSPC: keep data buffered, retry next tick
                log.error("background flush failed: %s", err)

    def _flush_in_background(self, ino: int) -> None:
        assert self._nursery is not None  # callers check: only while running()
        self._nursery.start_soon(self._background_flush, ino, self._bg_flushes.begin(ino))

    async def _background_flush(self, ino: int, pending: "_PendingFlushes") -> None:
        try:
            await self._flush_inode(ino)
        except KernelError as err:  # e.g. ENOSPC: the data stays buffered for the next try
            log.error("flush of inode %d after close failed: %s", ino, err)
        finally:
            self._bg_flushes.end(ino, pending)

    async def settle(self, ino: int | None = None) -> None:
        """Wait for the flushes that closing *ino* (None: any file) started in the background,
        so inspection (chunk maps, /.vfs) shows what a closed file's blocks really are.
        Inodes waiting to be destroyed are destroyed first."""
        await self._destroy_doomed()
        await self._bg_flushes.wait(ino)

    async def sync(self) -> None:
        """Flush every dirty chunk and make all metadata durable."""
        await self._destroy_doomed()
        for ino in list(self.buffer.files):
            await self._flush_inode(ino)
        await self.bm.commit()

    async def close(self) -> None:
        if not self._closed:
            await self.sync()
            self._closed = True

    # -- attributes ------------------------------------------------------------------

    def _attr(self, node: InodeRecord) -> Attr:
        mode = node.mode
        size = DIR_SIZE if _stat.S_ISDIR(mode) else node.size
        return Attr(
            ino=node.ino, mode=mode, nlink=node.nlink, uid=node.uid, gid=node.gid, size=size,
            atime_ns=node.atime_ns, mtime_ns=node.mtime_ns, ctime_ns=node.ctime_ns,
            birthtime_ns=node.birthtime_ns, rdev=node.rdev, blksize=131072,
            blocks=self._blocks_512(node, size),
        )

    def _blocks_512(self, node: InodeRecord, size: int) -> int:
        """st_blocks: what the file really occupies, so ``du`` of a sparse file is small."""
        if node.storage_mode != CHUNKED:
            return (size + 511) // 512
        stored = self.metadata.stored_bytes(node.ino)
        dirty = self.buffer.files.get(node.ino)
        if dirty is not None:
            stored += sum(len(c.data) for c in dirty.chunks.values())
        return (min(stored, size) + 511) // 512

    def _node(self, ino: int) -> InodeRecord:
        """The inode's attributes; its inline bytes are read only where needed (``_inline``)."""
        node = self.metadata.get_inode_attrs(ino)
        if node is None:
            raise KernelError("ENOENT", f"no inode {ino}")
        return node

    def _inline(self, node: InodeRecord) -> bytes:
        """The inline bytes of *node*, read from the store if the record came without them."""
        content = node.inline_content
        if isinstance(content, _NotLoaded):  # i.e. NOT_LOADED
            content = node.inline_content = self.metadata.get_inline_content(node.ino)
        return content or b""

    def _dir(self, ino: int) -> InodeRecord:
        node = self._node(ino)
        if not node.is_dir:
            raise KernelError("ENOTDIR", "not a directory")
        return node

    @staticmethod
    def _may(node: InodeRecord, caller: Caller, want: int) -> bool:
        return may_access(caller, node.mode, node.uid, node.gid, want)

    def _check(self, node: InodeRecord, caller: Caller, want: int) -> None:
        if not self._may(node, caller, want):
            raise KernelError("EACCES", "permission denied")

    def _check_sticky(self, parent: InodeRecord, child: InodeRecord, caller: Caller) -> None:
        if parent.mode & _stat.S_ISVTX and caller.uid not in (0, parent.uid, child.uid):
            raise KernelError("EPERM", "sticky directory: not the owner")

    async def getattr(self, ino: int) -> Attr:
        return self._attr(self._node(ino))

    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        pnode = self._dir(parent)
        if caller.uid:
            self._check(pnode, caller, X_OK)
        if len(name) > 255:
            raise KernelError("ENAMETOOLONG", "file name too long")
        if name == b".":
            return self._attr(pnode)
        if name == b"..":
            parents = self.metadata.parents_of(parent) if parent != ROOT_INO else []
            return self._attr(self._node(parents[0][0] if parents else ROOT_INO))
        ino = self.metadata.lookup(parent, name)
        if ino is None:
            raise KernelError("ENOENT", "no such file or directory")
        return self._attr(self._node(ino))

    async def setattr(self, ino: int, changes: SetAttr, caller: Caller = ROOT_CALLER) -> Attr:
        node = self._node(ino)
        now = _now()
        upd: dict = {}
        owner = caller.uid == 0 or caller.uid == node.uid
        if changes.mode is not None:
            if not owner:
                raise KernelError("EPERM", "only the owner may change the mode")
            mode = _stat.S_IFMT(node.mode) | (changes.mode & 0o7777)
            if caller.uid != 0 and not caller.in_group(node.gid):
                mode &= ~_stat.S_ISGID
            upd["mode"] = mode
        if changes.uid is not None or changes.gid is not None:
            new_uid = node.uid if changes.uid is None else changes.uid
            new_gid = node.gid if changes.gid is None else changes.gid
            if caller.uid != 0:
                if new_uid != node.uid or not owner or (new_gid != node.gid and not caller.in_group(new_gid)):
                    raise KernelError("EPERM", "operation not permitted")
            upd["uid"], upd["gid"] = new_uid, new_gid
            if not node.is_dir and (new_uid != node.uid or new_gid != node.gid or caller.uid != 0):
                upd["mode"] = _without_setid(upd.get("mode", node.mode))
        for time_field in ("atime_ns", "mtime_ns"):
            value = getattr(changes, time_field)
            if value is None:
                continue
            if changes.host_times and time_field == "mtime_ns":
                # The host kernel's record of a write, truncate or name change it already
                # permitted (FUSE write-back cache), not a utimensat: nothing to judge.
                if value == UTIME_NOW:
                    value = now
            elif value == UTIME_NOW:
                if not owner and not self._may(node, caller, W_OK):
                    raise KernelError("EACCES", "permission denied")
                value = now
            elif not owner:
                raise KernelError("EPERM", "only the owner may set explicit times")
            upd[time_field] = value
        if changes.size is not None:
            if node.is_dir:
                raise KernelError("EISDIR", "is a directory")
            if not _stat.S_ISREG(node.mode):
                raise KernelError("EINVAL", "not a regular file")
            await self._truncate(ino, changes.size, now)
            if caller.uid != 0 and node.mode & (_stat.S_ISUID | _stat.S_ISGID):
                upd["mode"] = _killpriv(upd.get("mode", node.mode), node.gid, caller)  # do_truncate()
        upd["ctime_ns"] = changes.ctime_ns if changes.ctime_ns is not None else now
        self.metadata.update_inode(ino, **upd)
        if changes.size is not None:  # truncate changed size, storage and content: read back
            return self._attr(self._node(ino))
        for name, value in upd.items():  # the record as stored, without reading it back
            setattr(node, name, value)
        return self._attr(node)

    # -- names -----------------------------------------------------------------------

    def _new_inode(self, parent: InodeRecord, mode: int, caller: Caller, rdev: int = 0,
                   target: bytes | None = None, nlink: int = 0) -> InodeRecord:
        """The inode of a new name: created with its final link count and (for a symlink) size,
        so linking it (``_link_new``) writes only the parent."""
        now = _now()
        gid = caller.gid
        if parent.mode & _stat.S_ISGID:
            gid = parent.gid
            if _stat.S_ISDIR(mode):
                mode |= _stat.S_ISGID
        if not _stat.S_ISLNK(mode):
            mode = _stat.S_IFMT(mode) | (mode & 0o7777 & ~caller.umask)
        size = len(target) if target is not None else 0
        ino = self.metadata.create_inode(mode, caller.uid, gid, now, rdev=rdev, symlink_target=target,
                                         nlink=nlink, size=size)
        # What create_inode stores (both stores: inline, no content).
        return InodeRecord(ino, mode, caller.uid, gid, size, nlink, rdev, now, now, now, now, INLINE, None)

    def _prepare_create(self, parent: int, name: bytes, caller: Caller, absent: bool = False) -> InodeRecord:
        """Checks before a new name; *absent*: the caller just saw the name free (no await since)."""
        check_name(name)
        pnode = self._dir(parent)
        if pnode.nlink == 0:
            raise KernelError("ENOENT", "directory was removed")
        if caller.uid:
            self._check(pnode, caller, X_OK)  # search first: without it the name is unknowable
        if not absent and self.metadata.lookup(parent, name) is not None:
            raise KernelError("EEXIST", "file exists")  # before EACCES for write, as Linux
        if caller.uid:
            self._check(pnode, caller, W_OK)
        self._charge_metadata(len(name))
        return pnode

    def _charge_metadata(self, nbytes: int) -> None:
        """ENOSPC before the metadata database could take the disk's last bytes (see
        vfsfuse/metadata_room.py); nothing to do for stores not on a host disk."""
        if self.bm.room is not None:
            self.bm.room.charge(nbytes)

    def _link_new(self, pnode: InodeRecord, name: bytes, node: InodeRecord, nlink: int) -> Attr:
        self.metadata.create_dentry(pnode.ino, name, node.ino)
        now = node.ctime_ns
        upd = {"mtime_ns": now, "ctime_ns": now}
        if nlink == 2:
            upd["nlink"] = pnode.nlink + 1
        self.metadata.update_inode(pnode.ino, **upd)
        if node.nlink != nlink:
            self.metadata.update_inode(node.ino, nlink=nlink)
            node.nlink = nlink
        return self._attr(node)

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int = 0,
                    caller: Caller = ROOT_CALLER) -> Attr:
        kind = _stat.S_IFMT(mode) or _stat.S_IFREG
        if kind not in (_stat.S_IFREG, _stat.S_IFIFO, _stat.S_IFSOCK, _stat.S_IFCHR, _stat.S_IFBLK):
            raise KernelError("EINVAL", "bad file type for mknod")
        if kind in (_stat.S_IFCHR, _stat.S_IFBLK) and caller.uid != 0:
            raise KernelError("EPERM", "only root may create device nodes")
        return self._mknod_now(parent, name, kind | (mode & 0o7777),
                               rdev if kind in (_stat.S_IFCHR, _stat.S_IFBLK) else 0, caller)

    def _mknod_now(self, parent: int, name: bytes, mode: int, rdev: int, caller: Caller,
                   absent: bool = False) -> Attr:
        with self.metadata.transaction():
            pnode = self._prepare_create(parent, name, caller, absent)
            node = self._new_inode(pnode, mode, caller, rdev=rdev, nlink=1)
            return self._link_new(pnode, name, node, 1)

    async def mkdir(self, parent: int, name: bytes, mode: int, caller: Caller = ROOT_CALLER) -> Attr:
        with self.metadata.transaction():
            pnode = self._prepare_create(parent, name, caller)
            node = self._new_inode(pnode, _stat.S_IFDIR | (mode & 0o7777), caller, nlink=2)
            return self._link_new(pnode, name, node, 2)

    async def symlink(self, parent: int, name: bytes, target: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        if not target or b"\0" in target:
            raise KernelError("ENOENT" if not target else "EINVAL", "invalid symlink target")
        if len(target) > 4095:
            raise KernelError("ENAMETOOLONG", "symlink target too long")
        with self.metadata.transaction():
            pnode = self._prepare_create(parent, name, caller)
            self._charge_metadata(len(target))
            node = self._new_inode(pnode, _stat.S_IFLNK | 0o777, caller, target=target, nlink=1)
            return self._link_new(pnode, name, node, 1)

    async def readlink(self, ino: int, caller: Caller = ROOT_CALLER) -> bytes:
        node = self._node(ino)
        if not node.is_symlink:
            raise KernelError("EINVAL", "not a symbolic link")
        return self.metadata.read_symlink(ino)

    async def link(self, ino: int, new_parent: int, new_name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        with self.metadata.transaction():
            node = self._node(ino)
            self._prepare_create(new_parent, new_name, caller)  # EEXIST before EPERM, as Linux
            if node.is_dir:
                raise KernelError("EPERM", "hard links to directories are not allowed")
            if node.nlink == 0:
                raise KernelError("ENOENT", "file was removed")
            now = _now()
            self.metadata.create_dentry(new_parent, new_name, ino)
            self.metadata.update_inode(ino, nlink=node.nlink + 1, ctime_ns=now)
            self.metadata.update_inode(new_parent, mtime_ns=now, ctime_ns=now)
            node.nlink += 1
            node.ctime_ns = now
            return self._attr(node)

    def _child(self, parent: int, name: bytes) -> InodeRecord:
        ino = self.metadata.lookup(parent, name)
        if ino is None:
            raise KernelError("ENOENT", "no such file or directory")
        return self._node(ino)

    async def unlink(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        with self.metadata.transaction():
            pnode = self._dir(parent)
            if caller.uid:
                self._check(pnode, caller, W_OK | X_OK)
            node = self._child(parent, name)
            self._check_sticky(pnode, node, caller)  # may_delete order: permission, sticky, type
            if node.is_dir:
                raise KernelError("EISDIR", "is a directory")
            now = _now()
            self.metadata.remove_dentry(parent, name)
            self.metadata.update_inode(parent, mtime_ns=now, ctime_ns=now)
            self._drop_link(node, now)

    def _drop_link(self, node: InodeRecord, now: int) -> None:
        nlink = node.nlink - 1 if not node.is_dir else 0
        if nlink <= 0 and not self._in_use(node.ino):
            self._destroy_now(node.ino)  # gone: no point updating its row first
            return
        self.metadata.update_inode(node.ino, nlink=max(nlink, 0), ctime_ns=now)

    def _in_use(self, ino: int) -> bool:
        return bool(self._open_count.get(ino) or self._retained.get(ino))

    def _destroy_now(self, ino: int) -> None:
        self.buffer.drop_file(ino)
        self.metadata.delete_inode(ino)
        self._locks.pop(ino, None)

    async def rmdir(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        if name == b".":
            raise KernelError("EINVAL", "cannot remove '.'")
        if name == b"..":
            raise KernelError("ENOTEMPTY", "cannot remove '..'")
        with self.metadata.transaction():
            pnode = self._dir(parent)
            if caller.uid:
                self._check(pnode, caller, W_OK | X_OK)
            node = self._child(parent, name)
            self._check_sticky(pnode, node, caller)
            if not node.is_dir:
                raise KernelError("ENOTDIR", "not a directory")
            if self.metadata.has_children(node.ino):
                raise KernelError("ENOTEMPTY", "directory not empty")
            now = _now()
            self.metadata.remove_dentry(parent, name)
            self.metadata.update_inode(parent, nlink=pnode.nlink - 1, mtime_ns=now, ctime_ns=now)
            self._drop_link(node, now)

    def _is_ancestor(self, maybe_ancestor: int, ino: int) -> bool:
        """True if directory *maybe_ancestor* is *ino* or one of its ancestors."""
        seen = 0
        while True:
            if ino == maybe_ancestor:
                return True
            if ino == ROOT_INO or seen > 4096:
                return False
            parents = self.metadata.parents_of(ino)
            if not parents:
                return False
            ino = parents[0][0]
            seen += 1

    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int = 0, caller: Caller = ROOT_CALLER) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == RENAME_NOREPLACE | RENAME_EXCHANGE:
            raise KernelError("EINVAL", "invalid rename flags")
        check_name(new_name)
        if old_name in (b".", b"..") or new_name in (b".", b".."):
            raise KernelError("EBUSY" if old_name in (b".", b"..") else "EINVAL", "cannot rename . or ..")
        with self.metadata.transaction():
            sp = self._dir(old_parent)
            dp = self._dir(new_parent)
            if caller.uid:
                self._check(sp, caller, W_OK | X_OK)
                self._check(dp, caller, W_OK | X_OK)
            src = self._child(old_parent, old_name)
            self._check_sticky(sp, src, caller)
            dst_ino = self.metadata.lookup(new_parent, new_name)
            dst = self._node(dst_ino) if dst_ino is not None else None
            now = _now()
            if flags & RENAME_EXCHANGE:
                if dst is None:
                    raise KernelError("ENOENT", "no such file or directory")
                self._check_sticky(dp, dst, caller)
                if src.is_dir and self._is_ancestor(src.ino, new_parent) and src.ino != dst.ino:
                    raise KernelError("EINVAL", "cannot move a directory into itself")
                if dst.is_dir and self._is_ancestor(dst.ino, old_parent) and src.ino != dst.ino:
                    raise KernelError("EINVAL", "cannot move a directory into itself")
                self.metadata.exchange_dentries(old_parent, old_name, new_parent, new_name)
                if old_parent != new_parent and src.is_dir != dst.is_dir:
                    delta = 1 if src.is_dir else -1
                    self.metadata.update_inode(old_parent, nlink=sp.nlink - delta)
                    self.metadata.update_inode(new_parent, nlink=dp.nlink + delta)
                for ino in {old_parent, new_parent}:
                    self.metadata.update_inode(ino, mtime_ns=now, ctime_ns=now)
                self.metadata.update_inode(src.ino, ctime_ns=now)
                self.metadata.update_inode(dst.ino, ctime_ns=now)
                return
            if dst is not None:
                if flags & RENAME_NOREPLACE:
                    raise KernelError("EEXIST", "file exists")
                if dst.ino == src.ino:
                    return  # same file (or hard links to it): POSIX says do nothing
                self._check_sticky(dp, dst, caller)
                if src.is_dir and not dst.is_dir:
                    raise KernelError("ENOTDIR", "not a directory")
                if not src.is_dir and dst.is_dir:
                    raise KernelError("EISDIR", "is a directory")
                if dst.is_dir and self.metadata.has_children(dst.ino):
                    raise KernelError("ENOTEMPTY", "directory not empty")
            if src.is_dir and self._is_ancestor(src.ino, new_parent):
                raise KernelError("EINVAL", "cannot move a directory into itself")
            nlink_delta = {old_parent: 0, new_parent: 0}
            if dst is not None:
                self.metadata.remove_dentry(new_parent, new_name)
                if dst.is_dir:
                    nlink_delta[new_parent] -= 1
                self._drop_link(dst, now)
            self.metadata.rename_dentry(old_parent, old_name, new_parent, new_name)
            if src.is_dir and old_parent != new_parent:
                nlink_delta[old_parent] -= 1
                nlink_delta[new_parent] += 1
            for p, pnode in ((old_parent, sp), (new_parent, dp)):
                self.metadata.update_inode(p, nlink=pnode.nlink + nlink_delta[p], mtime_ns=now, ctime_ns=now)
                if old_parent == new_parent:
                    break
            self.metadata.update_inode(src.ino, ctime_ns=now)

    # -- open files ------------------------------------------------------------------

    def _new_handle(self, ino: int, flags: int, caller: Caller, is_dir: bool = False) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = OpenHandle(ino, flags, caller, is_dir)
        self._open_count[ino] = self._open_count.get(ino, 0) + 1
        return fh

    def _handle(self, fh: int) -> OpenHandle:
        h = self._handles.get(fh)
        if h is None:
            raise KernelError("EBADF", "bad file handle")
        return h

    async def open(self, ino: int, flags: int, caller: Caller = ROOT_CALLER) -> int:
        node = self._node(ino)
        acc = flags & os.O_ACCMODE
        if node.is_dir and acc != os.O_RDONLY:
            raise KernelError("EISDIR", "is a directory")
        if node.is_symlink:
            raise KernelError("ELOOP", "is a symbolic link")
        if caller.uid:
            want = {os.O_RDONLY: R_OK, os.O_WRONLY: W_OK}.get(acc, R_OK | W_OK)
            self._check(node, caller, want)
        fh = self._new_handle(ino, flags, caller, node.is_dir)
        if flags & os.O_TRUNC and acc != os.O_RDONLY and node.is_reg:
            try:
                await self._open_truncate(node, caller)
            except BaseException:
                await self.release(fh)
                raise
        return fh

    async def _open_truncate(self, node: InodeRecord, caller: Caller) -> None:
        """O_TRUNC as Linux's handle_truncate(): size 0 and new times even when the file is
        already empty, and without CAP_FSETID (not root) set-user-ID goes, set-group-ID too
        as ``_killpriv`` says.  (Through FUSE the host kernel leaves all of this to OPEN
        when O_TRUNC is atomic.)"""
        now = _now()
        if node.size:
            await self._truncate(node.ino, 0, now)
        upd: dict = {"mtime_ns": now, "ctime_ns": now}
        if caller.uid != 0 and node.mode & (_stat.S_ISUID | _stat.S_ISGID):
            upd["mode"] = _killpriv(node.mode, node.gid, caller)
        self.metadata.update_inode(node.ino, **upd)

    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     caller: Caller = ROOT_CALLER) -> tuple[int, Attr]:
        existing = self.metadata.lookup(parent, name) if len(name) <= 255 else None
        if existing is not None:
            if flags & os.O_EXCL:
                raise KernelError("EEXIST", "file exists")
            fh = await self.open(existing, flags, caller)
            return fh, self._attr(self._node(existing))
        attr = self._mknod_now(parent, name, _stat.S_IFREG | (mode & 0o7777), 0, caller, absent=len(name) <= 255)
        fh = self._new_handle(attr.ino, flags, caller)
        return fh, attr

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        data = await self._read_fh(fh, offset, size, False)
        assert isinstance(data, bytes)  # without view=True, reads always copy
        return data

    async def read_buffer(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        """``read`` for callers that only need a buffer (the FUSE adapter): a read inside one
        stored block is a view of the cached block, which saves copying up to 1 MiB per request."""
        return await self._read_fh(fh, offset, size, True)

    async def _read_fh(self, fh: int, offset: int, size: int, view: bool) -> bytes | memoryview:
        h = self._handle(fh)
        if h.is_dir:
            raise KernelError("EISDIR", "is a directory")
        node = self._node(h.ino)
        if self.update_atime:
            self._touch_atime(node)
        if offset == h.next_read and self._nursery is not None and node.storage_mode == CHUNKED:
            # A sequential reader: keep the next chunks loading while it consumes this one,
            # so disk reads overlap with serving requests (random readers get none).
            cs = self.chunk_size
            end = min(node.size, offset + size)
            if end > offset and (offset % cs < size or offset == 0):  # once per chunk reached
                last = (end - 1) // cs
                ahead = min(READ_AHEAD_CHUNKS, self.bm.cache_limit // cs - 1)
                for idx in range(last + 1, min(last + 1 + ahead, (node.size + cs - 1) // cs)):
                    self._read_ahead(node.ino, idx)
        h.next_read = offset + size
        return await self._read(node, offset, size, view)

    def _touch_atime(self, node: InodeRecord) -> None:
        """relatime: update atime only if it is older than mtime/ctime or a day old."""
        a = node.atime_ns
        if a <= node.mtime_ns or a <= node.ctime_ns:
            self.metadata.update_inode(node.ino, atime_ns=_now())
        else:
            now = _now()
            if now - a > RELATIME_WINDOW_NS:
                self.metadata.update_inode(node.ino, atime_ns=now)

    async def _read(self, node: InodeRecord, offset: int, size: int, view: bool = False) -> bytes | memoryview:
        if offset < 0:
            raise KernelError("EINVAL", "negative offset")
        end = min(node.size, offset + size)
        if offset >= end:
            return b""
        if node.storage_mode == INLINE:
            content = self._inline(node)
            out = content[offset:end]
            if len(out) < end - offset:  # defensive: size ahead of content
                out += bytes(end - offset - len(out))
            return out
        cs = self.chunk_size
        first, last = offset // cs, (end - 1) // cs
        if first == last:
            return await self._read_in_chunk(node.ino, first, offset - first * cs, end - offset, view)
        parts = []
        pos = offset
        for idx in range(first, last + 1):
            base = idx * cs
            stop = min(end, base + cs)
            parts.append(await self._read_in_chunk(node.ino, idx, pos - base, stop - pos))
            pos = stop
        return b"".join(parts)

    def _read_ahead(self, ino: int, idx: int) -> None:
        if self.buffer.get(ino, idx) is None:
            key = self.metadata.get_chunk_key(ino, idx)
            if key is not None:
                assert self._nursery is not None  # _read_fh checks before reading ahead
                self.bm.read_ahead(self._nursery, key)

    async def _read_in_chunk(self, ino: int, idx: int, start: int, length: int,
                             view: bool = False) -> bytes | memoryview:
        """*length* bytes of chunk *idx* from *start*, zero-filled past the block's end.

        With *view*, a range inside a stored block comes back as a view of it (blocks are
        immutable ``bytes``); dirty data is always copied, since later writes change it."""
        dirty = self.buffer.get(ino, idx)
        data: bytes | bytearray
        if dirty is not None:
            data = dirty.data
        else:
            key = self.metadata.get_chunk_key(ino, idx)
            if key is None:
                return bytes(length)
            data = await self.bm.read_verified(key)
            if start == 0 and length == len(data):
                return data  # a whole verified block: no copy
            if view and start + length <= len(data):
                return memoryview(data)[start:start + length]
        out = bytes(memoryview(data)[start:start + length])
        if len(out) < length:
            out += bytes(length - len(out))
        return out

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self._handle(fh)
        if h.flags & os.O_ACCMODE == os.O_RDONLY:
            raise KernelError("EBADF", "file not open for writing")
        if h.is_dir:
            raise KernelError("EISDIR", "is a directory")
        n = len(data)
        if n == 0:
            return 0
        if self.buffer.over_limit:
            # Make room first: if the store is full (ENOSPC) this write fails having changed
            # nothing, and dirty data stays bounded by the buffer's limit plus one write.
            await self._relieve_pressure()
        async with self._lock(h.ino):
            node = self._node(h.ino)
            if h.flags & os.O_APPEND:
                offset = node.size
            if offset < 0:
                raise KernelError("EINVAL", "negative offset")
            end = offset + n
            now = _now()
            upd: dict = {"mtime_ns": now, "ctime_ns": now}
            if node.mode & (_stat.S_ISUID | _stat.S_ISGID) and h.caller.uid != 0:
                upd["mode"] = _killpriv(node.mode, node.gid, h.caller)
            new_size = max(node.size, end)
            if node.storage_mode == INLINE and new_size <= self.inline_threshold:
                if new_size > node.size:
                    self._charge_metadata(new_size - node.size)
                content = bytearray(self._inline(node))
                if len(content) < node.size:
                    content.extend(bytes(node.size - len(content)))
                if offset > len(content):
                    content.extend(bytes(offset - len(content)))
                content[offset:end] = data
                upd.update(inline_content=bytes(content), size=new_size)
                self.metadata.update_inode(h.ino, **upd)
                h.next_write = end
                return n
            if node.storage_mode == INLINE:
                self._promote(node)
            await self._write_chunks(h.ino, offset, memoryview(data))
            upd["size"] = new_size
            self.metadata.update_inode(h.ino, **upd)
            cs = self.chunk_size
            if offset == h.next_write and end >= (offset // cs + 1) * cs and self._nursery is not None:
                self._start_write_behind(h.ino, offset // cs, end // cs - 1)
            h.next_write = end
        if self.buffer.over_limit:
            try:
                await self._relieve_pressure()
            except KernelError as err:  # this write is taken (buffered); the next one reports it
                log.warning("flush under memory pressure failed: %s", err)
        return n

    def _promote(self, node: InodeRecord) -> None:
        """Move inline content into the write-back buffer as chunks (no block I/O yet)."""
        content = self._inline(node)
        cs = self.chunk_size
        for idx in range(0, (len(content) + cs - 1) // cs):
            self.buffer.put(node.ino, idx, bytearray(content[idx * cs:(idx + 1) * cs]))
        self.metadata.update_inode(node.ino, storage_mode=CHUNKED, inline_content=None)
        node.storage_mode = CHUNKED
        node.inline_content = None

    async def _write_chunks(self, ino: int, offset: int, data: memoryview) -> None:
        cs = self.chunk_size
        pos = 0
        while pos < len(data):
            abs_off = offset + pos
            idx, start = divmod(abs_off, cs)
            take = min(cs - start, len(data) - pos)
            chunk = self.buffer.get(ino, idx)
            if chunk is None:
                if start == 0 and take == cs:
                    base = bytearray()
                else:
                    base = await self._chunk_base(ino, idx)
                chunk = self.buffer.put(ino, idx, base)
            self.buffer.write_into(chunk, start, data[pos:pos + take])
            pos += take

    async def _chunk_base(self, ino: int, idx: int) -> bytearray:
        key = self.metadata.get_chunk_key(ino, idx)
        if key is None:
            return bytearray()
        return bytearray(await self.bm.read_verified(key))

    def _lock(self, ino: int) -> _InodeLock:
        lock = self._locks.get(ino)
        if lock is None:
            lock = self._locks[ino] = _InodeLock()
        return lock

    # -- flushing --------------------------------------------------------------------

    async def _flush_inode(self, ino: int) -> None:
        async with self._lock(ino):
            await self._flush_locked(ino, self.buffer.dirty_indices(ino))

    async def _flush_locked(self, ino: int, indices: list[int]) -> None:
        """Store dirty chunks *indices* of *ino* as blocks (up to FLUSH_PARALLEL block writes
        at once) and point the chunk map at them.  Caller holds the inode lock."""
        await self._behind.wait(ino)
        jobs = self._begin_flush(ino, indices)
        stored: set[str] = set()
        try:
            await self._store_jobs(jobs, stored)
        finally:
            self._end_flush(ino, jobs, stored)

    def _begin_flush(self, ino: int, indices: list[int]) -> list[_FlushJob]:
        """Name the dirty chunks *indices* of *ino* by their content and freeze them.

        No await: the caller holds the inode lock or is a write holding it.  Frozen chunks
        are stored from views, without a copy; a write meanwhile copies the chunk first."""
        node = self.metadata.get_inode_attrs(ino)
        if node is None or node.storage_mode != CHUNKED:
            for idx in indices:
                self.buffer.drop(ino, idx)
            return []
        cs = self.chunk_size
        jobs: list[_FlushJob] = []
        for idx in indices:
            chunk = self.buffer.get(ino, idx)
            if chunk is None:
                continue
            valid = max(0, min(chunk.length, node.size - idx * cs))
            payload = memoryview(chunk.data)[:valid]
            if self._all_zero(payload):  # a hole costs nothing
                self.metadata.delete_chunk(ino, idx)
                self.buffer.drop(ino, idx, chunk.generation)
                continue
            key = block_key(payload)
            self.bm.begin_reference(key)
            chunk.frozen = True
            jobs.append(_FlushJob(idx, chunk, chunk.generation, key, payload))
        return jobs

    async def _store_jobs(self, jobs: list[_FlushJob], stored: set[str],
                          limiter: trio.CapacityLimiter | None = None) -> None:
        """Make sure every job's block is stored; *stored* collects the keys that made it."""

        async def store(key: str, payload: memoryview) -> None:
            if limiter is None:
                await self.bm.ensure_stored(key, payload)
            else:
                async with limiter:
                    await self.bm.ensure_stored(key, payload)
            stored.add(key)

        if len(jobs) == 1:
            await store(jobs[0].key, jobs[0].payload)
        elif jobs:
            limiter = limiter or trio.CapacityLimiter(FLUSH_PARALLEL)
            try:
                async with trio.open_nursery() as nursery:
                    for job in jobs:
                        nursery.start_soon(store, job.key, job.payload)
            except BaseExceptionGroup as group:  # report ENOSPC as ENOSPC, not a group
                raise _first_kernel_error(group) from None

    def _end_flush(self, ino: int, jobs: list[_FlushJob], stored: set[str]) -> None:
        """Point the chunk map at every stored block whose chunk did not change meanwhile,
        even when another failed (a full disk): stored blocks are then neither orphans nor
        written twice.  No await, so no inode lock is needed."""
        alive = self.metadata.get_inode_attrs(ino) is not None
        for job in jobs:
            chunk = job.chunk
            current = self.buffer.get(ino, job.idx) is chunk and chunk.generation == job.generation
            if current:
                chunk.frozen = False
            if current and alive and job.key in stored:
                self.metadata.set_chunk_key(ino, job.idx, job.key, len(job.payload))
                self.buffer.drop(ino, job.idx, job.generation)
            elif job.key in stored:
                # Rewritten, truncated or removed while it was stored: nothing points at
                # this block; the next commit deletes it unless someone else uses it.
                self.bm.discard_if_unused(job.key)
            self.bm.end_reference(job.key)

    # -- write-behind ----------------------------------------------------------------

    def _start_write_behind(self, ino: int, first: int, last: int) -> None:
        """Store the chunks *first*..*last* that a sequential writer has just filled, in the
        background: the disk then works while the writer sends the next chunk, instead of
        the whole buffer waiting for fsync or memory pressure.  Caller holds the inode lock."""
        cs = self.chunk_size
        ready = []
        for idx in range(first, last + 1):
            chunk = self.buffer.get(ino, idx)
            if chunk is not None and chunk.length == cs and not chunk.frozen:
                ready.append(idx)
        jobs = self._begin_flush(ino, ready)
        if not jobs:
            return
        assert self._nursery is not None  # the caller (write) checks: only while running()
        self._nursery.start_soon(self._write_behind, ino, jobs, self._behind.begin(ino))

    async def _write_behind(self, ino: int, jobs: list[_FlushJob], pending: _PendingFlushes) -> None:
        stored: set[str] = set()
        try:
            await self._store_jobs(jobs, stored, self._behind_limiter)
        except KernelError as err:  # the chunks stay dirty: fsync or the flusher retries and reports
            log.debug("write-behind of inode %d: %s", ino, err)
        finally:
            self._end_flush(ino, jobs, stored)
            self._behind.end(ino, pending)

    def _all_zero(self, data: memoryview) -> bool:
        n = len(data)
        if n == 0:
            return True
        if data[0] or data[n - 1] or data[n // 2]:
            return False  # the common case, decided without scanning
        return bytes(data) == (self._zero_chunk if n == self.chunk_size else self._zero_chunk[:n])

    async def _relieve_pressure(self) -> None:
        """Flush the oldest dirty chunks until the buffer is back under 3/4 of its limit."""
        if self._pressure_lock.locked():
            if self.buffer.total < self.buffer.limit * 1.25:
                return
        async with self._pressure_lock:
            target = self.buffer.limit * 3 // 4
            while self.buffer.total > target and self.buffer.files:
                ino = next(iter(self.buffer.files))
                oldest = list(self.buffer.files[ino].chunks)[:FLUSH_PARALLEL]
                async with self._lock(ino):
                    await self._flush_locked(ino, oldest)

    # -- truncate --------------------------------------------------------------------

    async def _truncate(self, ino: int, length: int, now: int) -> None:
        if length < 0:
            raise KernelError("EINVAL", "negative length")
        async with self._lock(ino):
            node = self._node(ino)
            if length == node.size:
                self.metadata.update_inode(ino, mtime_ns=now, ctime_ns=now)
                return
            cs = self.chunk_size
            upd: dict[str, object] = {"size": length, "mtime_ns": now, "ctime_ns": now}
            if node.storage_mode == INLINE:
                if length <= self.inline_threshold:
                    if length > node.size:
                        self._charge_metadata(length - node.size)
                    content = self._inline(node)[:length]
                    upd["inline_content"] = content + bytes(length - len(content))
                else:
                    self._promote(node)
                self.metadata.update_inode(ino, **upd)
                return
            if length < node.size:
                last = (length - 1) // cs if length else -1
                self.buffer.drop_from(ino, last + 1)
                self.metadata.delete_chunks_from(ino, last + 1)
                tail = length - last * cs if length else 0
                if length and tail < cs:
                    chunk = self.buffer.get(ino, last)
                    if chunk is None:
                        key = self.metadata.get_chunk_key(ino, last)
                        if key is not None and (self.metadata.block_length(key) or 0) > tail:
                            base = await self._chunk_base(ino, last)
                            chunk = self.buffer.put(ino, last, base)
                    if chunk is not None:
                        self.buffer.truncate_chunk(chunk, tail)
                if length <= self.inline_threshold:
                    node.size = length
                    content = bytes(await self._read(node, 0, length))
                    self.buffer.drop_file(ino)
                    self.metadata.delete_all_chunks(ino)
                    upd.update(storage_mode=INLINE, inline_content=content)
            self.metadata.update_inode(ino, **upd)

    async def flush(self, fh: int) -> None:
        self._handle(fh)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        h = self._handle(fh)
        await self._flush_inode(h.ino)
        await self.bm.commit()

    async def release(self, fh: int) -> None:
        h = self._handles.pop(fh, None)
        if h is None:
            return
        left = self._open_count.get(h.ino, 1) - 1
        if left:
            self._open_count[h.ino] = left
            return
        del self._open_count[h.ino]
        node = self.metadata.get_inode_attrs(h.ino)
        if node is None:
            return
        if node.nlink == 0 and not self._retained.get(h.ino):
            async with self._lock(h.ino):
                self._destroy_now(h.ino)
        elif self.buffer.files.get(h.ino):
            if self._nursery is not None:
                # The host does not wait for RELEASE; neither should the requests behind it.
                self._flush_in_background(h.ino)
            else:
                await self._flush_inode(h.ino)

    # -- directories -----------------------------------------------------------------

    async def opendir(self, ino: int, caller: Caller = ROOT_CALLER) -> int:
        node = self._dir(ino)
        if caller.uid:
            self._check(node, caller, R_OK)
        return self._new_handle(ino, os.O_RDONLY, caller, is_dir=True)

    async def readdir(self, fh: int, offset: int) -> list[DirEntry]:
        h = self._handle(fh)
        rows = self.metadata.list_dir_with_stats(h.ino, after_seq=offset, limit=READDIR_BATCH)
        return [DirEntry(d.name, self._attr(n), d.seq) for d, n in rows]

    async def releasedir(self, fh: int) -> None:
        await self.release(fh)

    async def fsyncdir(self, fh: int, datasync: bool = False) -> None:
        self._handle(fh)
        await self.bm.commit()

    async def statfs(self) -> StatFs:
        now = time.monotonic()
        if self._statfs_cache is not None and now - self._statfs_cache[0] < 1.0:
            return self._statfs_cache[1]
        result = await self._statfs()
        self._statfs_cache = (now, result)
        return result

    async def _statfs(self) -> StatFs:
        stats = self.metadata.stats()  # scans every inode: callers cache for a second
        if self.statfs_path:
            st = await trio.to_thread.run_sync(os.statvfs, self.statfs_path)
            bsize = st.f_frsize or 4096
            # Like ext4's reserved blocks: what is kept for metadata is free, not available.
            avail = max(0, st.f_bavail - metadata_reserve(st) // bsize)
            return StatFs(bsize, bsize, st.f_blocks, st.f_bfree, avail,
                          stats.inodes + st.f_ffree, st.f_ffree)
        capacity = getattr(self.blocks, "capacity", None)  # a size-limited memory store
        total = capacity if capacity is not None else 1 << 40
        used = stats.stored_bytes + self.buffer.total
        free = max(0, total - used) // 4096
        max_inodes = getattr(self.metadata, "max_inodes", None)
        if max_inodes is not None:
            return StatFs(4096, 4096, total // 4096, free, free, max_inodes, max(0, max_inodes - stats.inodes))
        return StatFs(4096, 4096, total // 4096, free, free, stats.inodes + (1 << 32), 1 << 32)

    # -- xattrs ----------------------------------------------------------------------

    async def getxattr(self, ino: int, name: bytes) -> bytes:
        node = self._node(ino)
        if name == CHUNKS_XATTR and node.is_reg:
            await self.settle(ino)
            from vfsfuse.inspect.inspectfs import chunks_xattr  # the same text as `vfsfuse info` and /.vfs/chunks

            return chunks_xattr(self, ino)
        value = self.metadata.get_xattr(ino, name)
        if value is None:
            raise KernelError("ENODATA", "no such attribute")
        return value

    async def setxattr(self, ino: int, name: bytes, value: bytes, flags: int = 0,
                       caller: Caller = ROOT_CALLER) -> None:
        node = self._node(ino)
        if name.startswith(b"user.vfs."):
            raise KernelError("EPERM", "user.vfs.* attributes are read-only")
        if not name or len(name) > 255:
            raise KernelError("ERANGE" if name else "EINVAL", "bad attribute name")
        if len(value) > 65536:
            raise KernelError("E2BIG", "attribute value too large")
        if caller.uid not in (0, node.uid) and name.startswith(b"user.") and not self._may(node, caller, W_OK):
            raise KernelError("EACCES", "permission denied")
        exists = self.metadata.get_xattr(ino, name) is not None
        if flags & XATTR_CREATE and exists:
            raise KernelError("EEXIST", "attribute exists")
        if flags & XATTR_REPLACE and not exists:
            raise KernelError("ENODATA", "no such attribute")
        self._charge_metadata(len(name) + len(value))
        self.metadata.set_xattr(ino, name, value)
        self.metadata.update_inode(ino, ctime_ns=_now())

    async def listxattr(self, ino: int) -> list[bytes]:
        self._node(ino)
        return self.metadata.list_xattrs(ino)

    async def removexattr(self, ino: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        self._node(ino)
        if not self.metadata.remove_xattr(ino, name):
            raise KernelError("ENODATA", "no such attribute")
        self.metadata.update_inode(ino, ctime_ns=_now())

    # -- lookup references (FUSE forget) ------------------------------------------------

    def retain(self, ino: int) -> None:
        self._retained[ino] = self._retained.get(ino, 0) + 1

    async def forget(self, ino: int) -> None:
        left = self._retained.get(ino, 0) - 1
        if left > 0:
            self._retained[ino] = left
            return
        self._retained.pop(ino, None)
        node = self.metadata.get_inode_attrs(ino)
        if node is not None and node.nlink == 0 and ino != ROOT_INO and not self._open_count.get(ino):
            if self._nursery is None:
                async with self._lock(ino):
                    self._destroy_now(ino)
                return
            # `rm -rf` sends one forget per file; destroying each on its own costs half a
            # dozen statements between the requests the caller waits for.  Gather them.
            self._doomed.append(ino)
            if len(self._doomed) == 1:
                self._nursery.start_soon(self._destroy_doomed_soon)

    async def _destroy_doomed_soon(self) -> None:
        await trio.sleep(DESTROY_BATCH_DELAY)
        await self._destroy_doomed()

    async def _destroy_doomed(self, wait: bool = True) -> None:
        """Destroy the gathered inodes that are still unreferenced, all in one batch.
        Without *wait*, one being flushed stays gathered instead of being waited for
        (the caller may be that flush: the block store is full and wants space back)."""
        doomed, self._doomed = self._doomed, []
        batch = []
        for ino in doomed:
            if ino in self._retained or self._open_count.get(ino):
                continue  # referenced again meanwhile (the sandbox kernel opened it)
            lock = self._locks.get(ino)
            if lock is not None and lock.locked():  # a flush of it is running: wait for it
                if not wait:
                    self._doomed.append(ino)
                    continue
                async with lock:
                    node = self.metadata.get_inode_attrs(ino)
                    if node is not None and node.nlink == 0 and not self._in_use(ino):
                        self._destroy_now(ino)
                continue
            batch.append(ino)
        # No await from here on: the checks above and the deletes below are one atomic step.
        batch = [ino for ino in batch if not self._in_use(ino)]
        for ino in batch:
            self.buffer.drop_file(ino)
            self._locks.pop(ino, None)
        if batch:
            self.metadata.delete_inodes(batch)

    # -- inspection --------------------------------------------------------------------

    def chunk_map(self, ino: int) -> list[tuple[int, int, int, str | None]]:
        """(index, offset, length, key) for each stored chunk; key None = dirty, not yet stored."""
        node = self._node(ino)
        cs = self.chunk_size
        out: list[tuple[int, int, int, str | None]] = []
        for ref in self.metadata.get_all_chunk_keys(ino):
            if self.buffer.get(ino, ref.chunk_index) is None:
                out.append((ref.chunk_index, ref.chunk_index * cs,
                            self.metadata.block_length(ref.key) or 0, ref.key))
        for idx in self.buffer.dirty_indices(ino):
            chunk = self.buffer.get(ino, idx)
            assert chunk is not None  # dirty_indices lists only buffered chunks
            out.append((idx, idx * cs, min(chunk.length, max(0, node.size - idx * cs)), None))
        out.sort()
        return out

    def stats(self) -> dict:
        s = self.metadata.stats()
        return {
            "inodes": s.inodes, "files": s.files, "directories": s.directories,
            "logical_bytes": s.logical_bytes, "stored_bytes": s.stored_bytes,
            "dedup_ratio": (s.logical_bytes / s.stored_bytes) if s.stored_bytes else 1.0,
            "blocks": s.blocks, "dirty_bytes": self.buffer.total, "versions": s.versions,
            "chunk_size": self.chunk_size, "inline_threshold": self.inline_threshold,
        }

    async def gc(self) -> GcReport:
        """Flush, commit, then delete every block nothing references."""
        for ino in list(self.buffer.files):
            await self._flush_inode(ino)
        n, b = await self.bm.collect_garbage()
        return GcReport(n, b)

    # -- versions ----------------------------------------------------------------------

    async def create_version(self, ino: int) -> int:
        async with self._lock(ino):
            await self._flush_locked(ino, self.buffer.dirty_indices(ino))
            return self.metadata.create_version(ino, _now())

    async def list_versions(self, ino: int):
        self._node(ino)
        return self.metadata.list_versions(ino)

    async def restore_version(self, ino: int, version: int) -> None:
        async with self._lock(ino):
            self.buffer.drop_file(ino)
            self.metadata.restore_version(ino, version, _now())

    async def prune_versions(self, ino: int, policy: dict) -> int:
        async with self._lock(ino):
            versions = self.metadata.list_versions(ino)
            kind = policy.get("type")
            if kind == "count":
                doomed = [v.version for v in versions[int(policy["keep"]):]]
            elif kind == "age":
                max_age_ns = int(float(policy.get("max_age_s", policy.get("maxAgeMs", 0) / 1000)) * 1e9)
                cutoff = _now() - max_age_ns
                doomed = [v.version for v in versions if v.created_at_ns < cutoff]
            elif kind == "deferred":
                doomed = [v.version for v in versions]
            else:
                raise KernelError("EINVAL", f"unknown retention policy {kind!r}")
            if doomed:
                self.metadata.delete_versions(ino, doomed)
            return len(doomed)


def _killpriv(mode: int, gid: int, caller: Caller) -> int:
    """*mode* after a write or truncate by *caller* without CAP_FSETID (not root), as Linux's
    setattr_should_drop_suidgid() since 6.2: set-user-ID goes; set-group-ID goes when the
    group may execute, or when the writer is not in the file's group (tmpfs and ext4 do so;
    a FUSE host kernel alone would keep it, see the FUSE adapter)."""
    mode &= ~_stat.S_ISUID
    if mode & 0o010 or not caller.in_group(gid):
        mode &= ~_stat.S_ISGID
    return mode


def _without_setid(mode: int) -> int:
    """*mode* after a change by someone without CAP_FSETID (write, truncate, chown): Linux
    drops set-user-ID, and set-group-ID when the group may execute (otherwise that bit
    means mandatory locking and stays)."""
    mode &= ~_stat.S_ISUID
    return mode & ~_stat.S_ISGID if mode & 0o010 else mode


def _first_kernel_error(group: BaseExceptionGroup) -> BaseException:
    """The first KernelError inside *group* (or the group itself if it holds none)."""
    found = unwrap_group(group)
    return found if isinstance(found, KernelError) else group
