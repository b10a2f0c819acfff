"""A store on disk: the directory that holds one filesystem.

Layout (``vfsfuse mkfs STORE``)::

    STORE/meta.db     SQLite metadata (WAL; readable with ``sqlite3 -readonly``)
    STORE/blocks/     content-addressed blocks, sharded ``ab/cd/<xxh3-128 hex>``
    STORE/run/        lock file of the mounting daemon and its control socket

Chunk size, inline threshold and a filesystem UUID are fixed at mkfs and stored
in the metadata's config table.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass

from blockstores import HostBlockStore, MemoryBlockStore
from kernel.errors import KernelError

from vfsfuse.storage.chunked import DEFAULT_CHUNK_SIZE, DEFAULT_INLINE_THRESHOLD, ChunkedVFS
from vfsfuse.storage.metadata import MemoryMetadataStore, SqliteMetadataStore

META_NAME = "meta.db"
BLOCKS_NAME = "blocks"
RUN_NAME = "run"


@dataclass
class Store:
    path: str | None
    metadata: object
    blocks: object
    vfs: ChunkedVFS

    def close(self) -> None:
        """Close the metadata database (call after ``await vfs.close()``)."""
        closer = getattr(self.metadata, "close", None)
        if closer is not None:
            closer()


def is_store(path: str) -> bool:
    return os.path.isfile(os.path.join(path, META_NAME))


def validate_sizes(chunk_size: int, inline_threshold: int) -> None:
    if chunk_size < 4096 or chunk_size > (64 << 20) or chunk_size & (chunk_size - 1):
        raise KernelError("EINVAL", "chunk size must be a power of two between 4 KiB and 64 MiB")
    if inline_threshold < 0 or inline_threshold >= chunk_size:
        raise KernelError("EINVAL", "inline threshold must be below the chunk size")


def create_store(path: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 inline_threshold: int = DEFAULT_INLINE_THRESHOLD, force: bool = False) -> None:
    """mkfs: create an empty store in directory *path*."""
    validate_sizes(chunk_size, inline_threshold)
    if is_store(path) or os.path.isdir(os.path.join(path, BLOCKS_NAME)):
        if not force:
            raise KernelError("EEXIST", f"{path} already holds a store (use --force to overwrite)")
        for name in (META_NAME, META_NAME + "-wal", META_NAME + "-shm"):
            try:
                os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass
        shutil.rmtree(os.path.join(path, BLOCKS_NAME), ignore_errors=True)
    try:
        os.makedirs(os.path.join(path, BLOCKS_NAME), exist_ok=True)
        os.makedirs(os.path.join(path, RUN_NAME), mode=0o700, exist_ok=True)
    except OSError as err:
        raise KernelError.from_os_error(err, "create store") from None
    meta = SqliteMetadataStore(os.path.join(path, META_NAME))
    try:
        meta.set_config("chunk_size", str(chunk_size))
        meta.set_config("inline_threshold", str(inline_threshold))
        meta.set_config("uuid", str(uuid.uuid4()))
        meta.set_config("created_ns", str(time.time_ns()))
        meta.commit()
    finally:
        meta.close()


def open_store(path: str, *, cache_bytes: int = 64 << 20, flush_interval: float = 1.0,
               versioning: bool = True, direct_io: bool = False, drop_behind: bool = False) -> Store:
    """Open an existing store (mkfs first)."""
    if not is_store(path):
        raise KernelError("ENOENT", f"{path} is not a vfsfuse store (run 'vfsfuse mkfs {path}' first)")
    os.makedirs(os.path.join(path, RUN_NAME), mode=0o700, exist_ok=True)
    meta = SqliteMetadataStore(os.path.join(path, META_NAME), versioning=versioning)
    blocks = HostBlockStore(os.path.join(path, BLOCKS_NAME), direct_io=direct_io, drop_behind=drop_behind)
    vfs = ChunkedVFS(meta, blocks, cache_bytes=cache_bytes, flush_interval=flush_interval,
                     versioning=versioning)
    return Store(path, meta, blocks, vfs)


def memory_store(*, chunk_size: int = DEFAULT_CHUNK_SIZE, inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
                 cache_bytes: int = 64 << 20, versioning: bool = True, capacity: int | None = None) -> Store:
    """An ephemeral store entirely in memory (``--memory``).

    *capacity* bounds it the way tmpfs's ``size=`` does: that many bytes of blocks, one
    inode (and one name) per KiB of it, and as many bytes again of inode data (inline
    content, symlinks, xattrs).  Past those, writes and creates give ENOSPC."""
    limits = {} if capacity is None else {"max_inodes": max(1024, capacity // 1024), "max_bytes": capacity}
    meta = MemoryMetadataStore(versioning=versioning, **limits)
    blocks = MemoryBlockStore(capacity)
    vfs = ChunkedVFS(meta, blocks, chunk_size=chunk_size, inline_threshold=inline_threshold,
                     cache_bytes=cache_bytes, versioning=versioning)
    return Store(None, meta, blocks, vfs)


def memory_vfs(chunk_size: int = DEFAULT_CHUNK_SIZE, inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
               versioning: bool = False, cache_bytes: int = 64 << 20, capacity: int | None = None) -> ChunkedVFS:
    """A ChunkedVFS over memory stores (tests, /tmp and /dev/shm mounts)."""
    return memory_store(chunk_size=chunk_size, inline_threshold=inline_threshold,
                        cache_bytes=cache_bytes, versioning=versioning, capacity=capacity).vfs


def shm_vfs(size: int) -> ChunkedVFS:
    """The memory filesystem for the sandbox's ``/dev/shm``: *size* bytes like tmpfs's ``size=``.

    File data is never inline (threshold 0), so all of it is counted against *size* and
    ``df`` shows it.  Chunks are small (64 KiB): a rewritten chunk is a new block that
    briefly coexists with the old one, and that must not cost megabytes of a small
    size.  The write-back buffer is small too, so a full ``/dev/shm`` says ENOSPC to the
    writer within a few MiB."""
    return memory_vfs(chunk_size=64 << 10, inline_threshold=0,
                      cache_bytes=max(1 << 20, min(size // 4, 8 << 20)), capacity=size)
