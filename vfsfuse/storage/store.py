"""A store on disk: the directory that holds one filesystem.

Layout (``vfsfuse mkfs STORE``)::

    STORE/meta.db     SQLite metadata (WAL; readable with ``sqlite3 -readonly``)
    STORE/blocks/     content-addressed blocks, sharded ``ab/cd/<xxh3-128 hex>``
    STORE/run/        lock file of the mounting daemon and its control socket

Chunk size, inline threshold and a filesystem UUID are fixed at mkfs and stored
in the metadata's config table.

Only ``create_store`` (mkfs) ever writes a schema.  Every other opener calls
``check_store`` first, which reads ``meta.db`` without writing anything (not even
SQLite's ``-wal``/``-shm`` files when there are none) and refuses, in one line that
says how to recover, a meta.db that is missing, empty, truncated, not SQLite, not
vfsfuse, or of a newer schema.  The store is private to its owner: mkfs makes the
directory 0700 and its files 0600 whatever the umask, and ``check_private`` (used by
``mount``) refuses a store other users could read.
"""

from __future__ import annotations

import os
import shutil
import stat as _stat
import time
import uuid
from dataclasses import dataclass

import apsw

from blockstores import HostBlockStore, MemoryBlockStore
from blockstores.base import BlockStore
from blockstores.host import TEMP_PREFIX
from kernel.errors import KernelError
from vfsfuse.storage.chunked import DEFAULT_CHUNK_SIZE, DEFAULT_INLINE_THRESHOLD, ChunkedVFS
from vfsfuse.storage.metadata import MemoryMetadataStore, SqliteMetadataStore
from vfsfuse.storage.metadata.base import MetadataStore

META_NAME = "meta.db"
BLOCKS_NAME = "blocks"
RUN_NAME = "run"
META_FILES = (META_NAME, META_NAME + "-wal", META_NAME + "-shm")
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class Store:
    path: str | None
    metadata: MetadataStore
    blocks: BlockStore
    vfs: ChunkedVFS

    def close(self) -> None:
        """Close the metadata database (call after ``await vfs.close()``)."""
        closer = getattr(self.metadata, "close", None)
        if closer is not None:
            closer()


def is_store(path: str) -> bool:
    """True if *path* is (or was) a store: it holds a meta.db, or blocks left without one.
    Sound or not: commands that find a store this way open it through ``check_store``,
    which says what is wrong with it and how to recover (instead of "not a store")."""
    return os.path.lexists(os.path.join(path, META_NAME)) or os.path.isdir(os.path.join(path, BLOCKS_NAME))


def count_blocks(blocks_dir: str) -> tuple[int, int]:
    """``(block files, bytes)`` under *blocks_dir* (the ``ab/cd/<key>`` shards; temp files
    left by a crash are not blocks).  ``(0, 0)`` if the directory does not exist."""
    count = size = 0
    for top in _subdirs(blocks_dir):
        for shard in _subdirs(top):
            try:
                with os.scandir(shard) as it:
                    for entry in it:
                        if entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                            continue
                        count += 1
                        try:
                            size += entry.stat(follow_symlinks=False).st_size
                        except FileNotFoundError:
                            pass
            except (FileNotFoundError, NotADirectoryError):
                pass
    return count, size


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _human(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _recovery(path: str, missing: bool = False) -> str:
    """How to get a store with a damaged meta.db back, naming the blocks that are kept."""
    n, size = count_blocks(os.path.join(path, BLOCKS_NAME))
    kept = f"its {n} blocks ({_human(size)}) in {os.path.join(path, BLOCKS_NAME)} are intact" if n \
        else "it holds no blocks"
    aside = "" if missing else " move it aside and"
    return (f"restore {os.path.join(path, META_NAME)} from a backup, or{aside} "
            f"'vfsfuse load {path} < DUMP.json'; {kept}; nothing was changed")


def check_store(path: str) -> None:
    """Refuse (KernelError, one line: what is wrong and how to recover) anything but a store
    with a readable vfsfuse meta.db this program understands.  Writes nothing at all: SQLite
    reads the file as immutable when there is no WAL, read-only otherwise.  Every opener but
    mkfs (mount, gc, fsck, info, stat, versions, dump, load, shell, exec) calls this first."""
    from vfsfuse.storage.metadata import schema

    if not os.path.exists(path):
        raise KernelError("ENOENT", f"no such store: {path} (create one with 'vfsfuse mkfs {path}')")
    if not os.path.isdir(path):
        raise KernelError("ENOTDIR", f"{path} is not a directory, so not a vfsfuse store")
    db = os.path.join(path, META_NAME)
    try:
        st = os.stat(db)
    except FileNotFoundError:
        if os.path.isdir(os.path.join(path, BLOCKS_NAME)):
            raise KernelError("ENOENT", f"{db} is missing: {_recovery(path, missing=True)}") from None
        raise KernelError("ENOENT", f"{path} is not a vfsfuse store (no {META_NAME}; create one "
                                    f"with 'vfsfuse mkfs {path}')") from None
    except OSError as err:
        raise KernelError.from_os_error(err, f"cannot stat {db}") from None
    if not _stat.S_ISREG(st.st_mode):
        raise KernelError("EINVAL", f"{db} is not a regular file: {_recovery(path)}")
    if st.st_size == 0:
        raise KernelError("EINVAL", f"{db} is empty (0 bytes), so it holds no filesystem: "
                                    f"{_recovery(path)}")
    try:
        with open(db, "rb") as f:
            header = f.read(100)
    except OSError as err:
        raise KernelError.from_os_error(err, f"cannot read {db}") from None
    if header[:16] != _SQLITE_MAGIC[:len(header[:16])]:
        raise KernelError("EINVAL", f"{db} is not an SQLite database (bad header): {_recovery(path)}")
    if len(header) < 100:
        raise KernelError("EIO", f"{db} is truncated ({st.st_size} bytes, less than its header): "
                                 f"{_recovery(path)}")
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    wal = os.path.join(path, META_NAME + "-wal")
    wal_size = os.path.getsize(wal) if os.path.isfile(wal) else -1
    if wal_size <= 0:  # without a WAL to replay, the file must hold every page its header names
        pages = int.from_bytes(header[28:32], "big")
        valid = header[92:96] == header[24:28]
        if page < 512 or page & (page - 1) or st.st_size % page or \
                (valid and pages and st.st_size < pages * page):
            want = f" of {pages * page}" if valid and pages else ""
            raise KernelError("EIO", f"{db} is truncated ({st.st_size}{want} bytes): {_recovery(path)}")
    version = _schema_version(db, wal_size >= 0, path)
    target = schema.current_version()
    if version > target:
        raise KernelError("EINVAL", f"{db} has schema version {version}, newer than this vfsfuse "
                                    f"understands ({target}): use a newer vfsfuse; nothing was changed")


def _schema_version(db: str, has_wal: bool, path: str) -> int:
    """The schema version recorded in *db*, read without writing anything."""
    from urllib.parse import quote

    uri = "file:" + quote(os.path.abspath(db)) + ("?mode=ro" if has_wal else "?immutable=1")
    try:
        conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    except apsw.Error as err:
        raise KernelError("EIO", f"cannot open {db} ({err}): {_recovery(path)}") from None
    try:
        conn.set_busy_timeout(10_000)
        try:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'")}
            if not {"schema_version", "inodes", "dentries", "config"} <= tables:
                raise KernelError("EINVAL", f"{db} is an SQLite database without a vfsfuse schema: "
                                            f"{_recovery(path)}")
            version = conn.execute("SELECT max(version) FROM schema_version").get
        except apsw.NotADBError:
            raise KernelError("EINVAL", f"{db} is not an SQLite database: {_recovery(path)}") from None
        except (apsw.CorruptError, apsw.IOError) as err:
            raise KernelError("EIO", f"{db} is damaged ({err}): {_recovery(path)}") from None
        except (apsw.BusyError, apsw.LockedError) as err:
            raise KernelError("EBUSY", f"{db} is locked by another process ({err})") from None
        except apsw.Error as err:
            raise KernelError("EIO", f"cannot read {db} ({err}): {_recovery(path)}") from None
        if not isinstance(version, int):
            raise KernelError("EINVAL", f"{db} records no schema version: {_recovery(path)}")
        return version
    finally:
        conn.close()


def shared_paths(path: str) -> list[tuple[str, int]]:
    """``(path, mode)`` of the store's parts that other users may read or change: the
    directory, meta.db and its WAL files, ``blocks/`` and its first-level shards (cheap:
    at most 256 of those; ``fsck`` looks at every file)."""
    blocks = os.path.join(path, BLOCKS_NAME)
    candidates = [path, *(os.path.join(path, n) for n in META_FILES), blocks, *_subdirs(blocks)]
    out = []
    for p in candidates:
        try:
            mode = os.lstat(p).st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            out.append((p, _stat.S_IMODE(mode)))
    return out


def check_private(path: str) -> None:
    """Refuse (EPERM) a store that other users can read or change, the way ssh refuses a
    readable private key: its blocks are the files' bytes, its meta.db every name."""
    found = shared_paths(path)
    if found:
        where, mode = found[0]
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise KernelError("EPERM", f"store {path} is open to other users ({where} is "
                                   f"{mode:04o}{more}): run 'vfsfuse fsck --repair {path}' (or "
                                   f"'chmod -R go= {path}'), or mount with --allow-shared-store")


def validate_sizes(chunk_size: int, inline_threshold: int) -> None:
    if chunk_size < 4096 or chunk_size > (64 << 20) or chunk_size & (chunk_size - 1):
        raise KernelError("EINVAL", "chunk size must be a power of two between 4 KiB and 64 MiB")
    if inline_threshold < 0 or inline_threshold >= chunk_size:
        raise KernelError("EINVAL", "inline threshold must be below the chunk size")


def create_store(path: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 inline_threshold: int = DEFAULT_INLINE_THRESHOLD, force: bool = False) -> None:
    """mkfs: create an empty store in directory *path* (0700, its files 0600, whatever the
    umask).  The only function that writes a schema.  Without *force* it refuses a
    directory holding a meta.db or blocks (a new meta.db would orphan them)."""
    validate_sizes(chunk_size, inline_threshold)
    blocks_dir = os.path.join(path, BLOCKS_NAME)
    meta_path = os.path.join(path, META_NAME)
    n, size = count_blocks(blocks_dir)
    has_meta = any(os.path.lexists(os.path.join(path, name)) for name in META_FILES)
    if not force and n:
        also = " and a meta.db" if has_meta else ""
        raise KernelError("EEXIST", f"{path} holds {n} blocks ({_human(size)}){also}: a new store "
                                    f"would orphan them; restore its meta.db instead, or use --force "
                                    "to delete them and make an empty store")
    if not force and has_meta:
        raise KernelError("EEXIST", f"{path} already holds a store (use --force to overwrite it; "
                                    "its data is lost)")
    if force:
        for name in META_FILES:
            try:
                os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass
        shutil.rmtree(blocks_dir, ignore_errors=True)
    try:
        os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.chmod(path, PRIVATE_DIR_MODE)
        for sub in (BLOCKS_NAME, RUN_NAME):
            os.makedirs(os.path.join(path, sub), mode=PRIVATE_DIR_MODE, exist_ok=True)
            os.chmod(os.path.join(path, sub), PRIVATE_DIR_MODE)
        # SQLite would create meta.db 0644 (less the umask); its -wal and -shm files take
        # the database file's mode, so a 0600 meta.db keeps all three private.
        fd = os.open(meta_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        finally:
            os.close(fd)
    except OSError as err:
        raise KernelError.from_os_error(err, "create store") from None
    meta = SqliteMetadataStore(meta_path, create=True)
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
    """Open an existing store (mkfs first; ``check_store`` refuses anything else)."""
    check_store(path)
    os.makedirs(os.path.join(path, RUN_NAME), mode=PRIVATE_DIR_MODE, exist_ok=True)
    meta = SqliteMetadataStore(os.path.join(path, META_NAME), versioning=versioning, create=False)
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
