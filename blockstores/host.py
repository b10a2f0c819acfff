"""Host-directory block store: one plain file per block, sharded by key prefix.

Layout: key ``abcdef…`` lives at ``<base>/ab/cd/abcdef…`` and the file holds
exactly the block's bytes (no header), so for content keys ``xxhsum -H128``
of the file equals its name and host tools (``ls``, ``cmp``, ``xxd``) just work.
Keys shorter than four characters are padded with ``_`` (``x`` ->
``x_/__/x``) and a ``.`` inside the first four characters becomes ``_`` in
the shard names, so no shard directory is ever called ``.``/``..`` or hidden.

Blocks are immutable on disk: a write goes to a temp file in the shard
directory and is renamed over the block, so readers and a crash only ever see
a whole old block or a whole new one. Every call makes one hop to a worker
thread that does all of its syscalls (open, stat, read, close) in one go.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import mmap
import os
import threading
import time
from typing import AsyncIterator, Callable, Generator, Iterable, Iterator

import trio

from blockstores.keys import check_key
from kernel.errors import KernelError

TEMP_PREFIX = ".tmp."
# Blocks are the files' bytes: private to the store's owner whatever the umask (the store
# directory is 0700 too, see vfsfuse/storage/store.py).  The owner's xxhsum/cmp still work.
BLOCK_FILE_MODE = 0o600
SHARD_DIR_MODE = 0o700
_LIST_BATCH = 1024  # keys fetched per thread hop while listing
_DELETE_BATCH = 512  # unlinks per thread hop in delete_many
_O_READ = os.O_RDONLY | os.O_CLOEXEC
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# link(2) failures that mean "this filesystem cannot hard-link here": copy the bytes instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
_run = trio.to_thread.run_sync
# From this many blocks on, sync() uses one syncfs(2) instead of an fsync per file and directory.
SYNCFS_MIN_KEYS = 16


def _libc_function(name: str, *argtypes):
    """A libc function Python's ``os`` module does not wrap, or None where libc lacks it."""
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


_syncfs = _libc_function("syncfs", ctypes.c_int)


def shard_names(key: str) -> tuple[str, str]:
    """The two shard directory names for *key* (``abcd…`` -> ``("ab", "cd")``)."""
    head = key[:4].replace(".", "_").ljust(4, "_")
    return head[:2], head[2:]


def _missing(key: str) -> KernelError:
    return KernelError("ENOENT", f"block not found: {key}")


def _read_error(err: OSError, key: str, what: str) -> KernelError:
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        return _missing(key)
    return KernelError.from_os_error(err, f"{what} block {key}")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_all(fd: int, data: memoryview) -> None:
    done = os.write(fd, data) if len(data) else 0
    while done < len(data):
        done += os.write(fd, data[done:])


def _read_exactly(fd: int, size: int, offset: int | None = None) -> bytes:
    """Read *size* bytes (fewer only at EOF) with one syscall in the normal case."""
    data = os.read(fd, size) if offset is None else os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]  # a huge block (> 2 GiB) or an interrupted read: keep going
    got = len(data)
    base = 0 if offset is None else offset
    while got < size:
        more = os.pread(fd, size - got, base + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait
# Blocks at least this big get their writeback started as soon as they are written, or with
# direct_io bypass the host page cache (O_DIRECT) where the filesystem allows it.
EARLY_WRITEBACK_MIN = 1 << 20
_DIRECT_ALIGN = 4096  # covers 512- and 4096-byte logical blocks; mmap memory is page aligned
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_thread_buffers = threading.local()
# Free space block writes leave for the metadata database on the same filesystem:
# 2% of it, at least 256 KiB and at most 64 MiB.
METADATA_RESERVE_MIN = 256 << 10
METADATA_RESERVE_MAX = 64 << 20


def metadata_reserve(st: os.statvfs_result) -> int:
    """Bytes of a filesystem kept free of blocks for the metadata database (2% of it, within
    METADATA_RESERVE_MIN..METADATA_RESERVE_MAX): see ``HostBlockStore._check_room``."""
    return max(METADATA_RESERVE_MIN, min(METADATA_RESERVE_MAX, st.f_blocks * st.f_frsize // 50))


def _aligned_copy(data: memoryview, padded: int) -> memoryview:
    """*data* copied into this thread's page-aligned buffer, zero-padded to *padded* bytes."""
    buf = getattr(_thread_buffers, "buf", None)
    if buf is None or len(buf) < padded:
        if buf is not None:
            buf.close()
        buf = _thread_buffers.buf = mmap.mmap(-1, padded)
    n = len(data)
    buf[:n] = data
    if padded > n:
        buf[n:padded] = bytes(padded - n)
    return memoryview(buf)[:padded]


def _write_direct(fd: int, data: memoryview) -> bool:
    """Write *data* with O_DIRECT (from an aligned copy); False if the filesystem refuses it.

    Why: a big block written through the page cache is copied into fresh cache pages and
    written to disk only at the next sync; straight to the device it costs one copy into
    memory the thread reuses and leaves nothing for that sync to do.  Measured here,
    64 x 4 MiB blocks from 4 threads: 1.7-1.9 GB/s direct against 0.45-1.6 GB/s buffered
    (the page cache side varies with how fresh the host's pages are)."""
    n = len(data)
    padded = -(-n // _DIRECT_ALIGN) * _DIRECT_ALIGN
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT)
    except OSError:
        return False  # tmpfs and a few others: no direct I/O
    view = _aligned_copy(data, padded)
    try:
        _write_all(fd, view)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        # The device wants a coarser alignment than we assumed: do it the ordinary way.
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, data)
        return True
    finally:
        view.release()
    if padded != n:
        os.ftruncate(fd, n)
    return True


_sync_file_range = _libc_function("sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


def _start_writeback(fd: int) -> None:
    """Let the disk start on a block now instead of at the next ``sync()``.

    Why: a big file is written as many blocks, then fsynced once.  Without this the
    host kernel keeps every block in its page cache until that fsync and the disk
    sits idle while the daemon ingests data; with it, the disk writes block N while
    the daemon hashes block N+1, and the final sync finds little left to do.  Only a
    hint: errors are ignored (the later sync reports real I/O errors)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


_SYNC_FILE_RANGE_WAIT_ALL = 1 | 2 | 4  # WAIT_BEFORE | WRITE | WAIT_AFTER


def _write_back_and_drop(fd: int) -> None:
    """Write a block's pages to disk now and drop them from the host page cache.

    Why: under a FUSE mount the host kernel already caches the file's pages above us,
    so keeping the block's pages too holds every byte twice, and on a virtual machine
    each page the cache takes is fresh memory that costs a fault on the host.  Dropped
    pages go straight back to the allocator and serve the next block: sequential
    writes through the mount +35% here.  Data only (no fsync): durability still comes
    from the later sync; errors are left for it to report."""
    if _sync_file_range is None:
        return
    if _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WAIT_ALL) == 0:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


_RWF_DONTCACHE = 0x80  # <linux/fs.h>, Linux 6.14+: buffered write, pages dropped once written back


def _write_uncached(fd: int, data: memoryview) -> bool:
    """Write *data* at offset 0 with ``RWF_DONTCACHE``; False if the kernel or filesystem
    does not know the flag (nothing was written then).

    Why: the kernel's own drop-behind.  Writeback starts at once and the pages leave the
    cache when it is done, without this thread waiting for the disk as
    ``_write_back_and_drop`` must (measured here, 128 x 4 MiB from 4 threads: 1.5-1.65 GB/s
    against 1.24-1.69 waiting)."""
    done = 0
    n = len(data)
    while done < n:
        try:
            done += os.pwritev(fd, [data[done:]], done, _RWF_DONTCACHE)
        except OSError as err:
            if done == 0 and err.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return False
            raise
    return True


def _fsync_path(path: str, flags: int = _O_READ) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _as_bytes_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class HostBlockStore:
    """A ``BlockStore`` over a host directory (created if missing)."""

    def __init__(self, base_dir: str | os.PathLike[str], *, direct_io: bool = False,
                 drop_behind: bool = False) -> None:
        self._base = os.path.abspath(os.fspath(base_dir))
        os.makedirs(self._base, mode=SHARD_DIR_MODE, exist_ok=True)
        self._tmp_ids = itertools.count()
        # Shard dirs created since the last sync(): their entries in the parent
        # directory are not durable yet, so sync() fsyncs those parents too.
        self._new_dirs: set[str] = set()
        self._new_dirs_lock = threading.Lock()
        # direct_io: blocks >= EARLY_WRITEBACK_MIN go around the page cache (until the filesystem
        # refuses O_DIRECT).  Off by default: the page cache keeps recently written blocks for
        # the reads that often follow (see docs/DECISIONS.md for the measured trade-off).
        self._direct = direct_io
        # drop_behind: blocks >= EARLY_WRITEBACK_MIN are written to disk at once and dropped
        # from the page cache (for mounts, where the host caches the file above us).
        self._drop_behind = drop_behind
        self._writing = 0  # bytes of blocks being written now (see _check_room)
        self._writing_lock = threading.Lock()
        self._uncached = True  # drop-behind with RWF_DONTCACHE, until the kernel refuses it
        # Set by the VFS: more bytes to leave free besides the reserve (the metadata WAL's
        # size: a checkpoint may copy that much into the database file).  Called in threads.
        self.also_keep_free: Callable[[], int] | None = None

    @property
    def base_dir(self) -> str:
        return self._base

    def __repr__(self) -> str:
        return f"HostBlockStore({self._base!r})"

    # -- layout ------------------------------------------------------------------

    def _shard_dir(self, key: str) -> str:
        first, second = shard_names(key)
        return f"{self._base}/{first}/{second}"

    def path_for(self, key: str) -> str:
        """The host path of *key*'s block file (it may not exist)."""
        check_key(key)
        return f"{self._shard_dir(key)}/{key}"

    def _temp_path(self, shard: str, key: str) -> str:
        return f"{shard}/{TEMP_PREFIX}{key}.{os.getpid()}-{next(self._tmp_ids)}"

    def _make_shard(self, shard: str) -> list[str]:
        """Create *shard* and its parent as needed; return the directories created."""
        created = []
        for path in (os.path.dirname(shard), shard):
            try:
                os.mkdir(path, SHARD_DIR_MODE)
            except FileExistsError:
                continue
            created.append(path)
        if created:
            with self._new_dirs_lock:
                self._new_dirs.update(created)
        return created

    def _open_temp(self, shard: str, key: str) -> tuple[str, int, list[str]]:
        tmp = self._temp_path(shard, key)
        try:
            return tmp, os.open(tmp, _O_NEW, BLOCK_FILE_MODE), []
        except FileNotFoundError:
            created = self._make_shard(shard)
            return tmp, os.open(tmp, _O_NEW, BLOCK_FILE_MODE), created

    def _publish(self, tmp: str, final: str, shard: str, created: list[str], durable: bool) -> None:
        """Rename *tmp* over *final*; with *durable*, persist the new directory entries."""
        os.replace(tmp, final)
        if durable:
            _fsync_path(shard, _O_DIR)
            for path in reversed(created):  # a new shard dir lives in its parent's entries
                _fsync_path(os.path.dirname(path), _O_DIR)

    # -- blocking bodies (run in a worker thread) --------------------------------------

    def _read_sync(self, key: str, path: str) -> bytes:
        try:
            fd = os.open(path, _O_READ)
        except OSError as err:
            raise _read_error(err, key, "read") from None
        try:
            return _read_exactly(fd, os.fstat(fd).st_size)
        except OSError as err:
            raise _read_error(err, key, "read") from None
        finally:
            os.close(fd)

    def _read_range_sync(self, key: str, path: str, offset: int, length: int) -> bytes:
        try:
            fd = os.open(path, _O_READ)
        except OSError as err:
            raise _read_error(err, key, "read") from None
        try:
            want = min(length, os.fstat(fd).st_size - offset)
            return _read_exactly(fd, want, offset) if want > 0 else b""
        except OSError as err:
            raise _read_error(err, key, "read") from None
        finally:
            os.close(fd)

    def _check_room(self, key: str, size: int) -> None:
        """ENOSPC if writing *size* bytes would eat into the space kept for metadata.

        Why: the store's SQLite file lives on the same filesystem.  If blocks took the
        last free bytes, the next metadata commit would fail with SQLITE_FULL, and SQLite
        may then roll the whole group of changes back: files created since the last commit
        would vanish.  Like ext4's blocks reserved for root, data stops a little early."""
        st = os.statvfs(self._base)
        free = st.f_bavail * st.f_frsize
        reserve = metadata_reserve(st) + (self.also_keep_free() if self.also_keep_free else 0)
        with self._writing_lock:  # blocks being written by other threads are not in f_bavail yet
            if free - self._writing - size < reserve:
                raise KernelError("ENOSPC", f"write block {key}: block store disk is full (the last "
                                  f"{reserve >> 10} KiB are kept for metadata)")
            self._writing += size

    def _write_sync(self, key: str, data: memoryview, durable: bool) -> None:
        self._check_room(key, len(data))
        try:
            self._write_block(key, data, durable)
        finally:
            with self._writing_lock:
                self._writing -= len(data)

    def _write_block(self, key: str, data: memoryview, durable: bool) -> None:
        shard = self._shard_dir(key)
        tmp = None
        try:
            tmp, fd, created = self._open_temp(shard, key)
            try:
                big = len(data) >= EARLY_WRITEBACK_MIN
                direct = big and self._direct and _O_DIRECT
                if direct and not _write_direct(fd, data):
                    self._direct = direct = False  # remember: this filesystem has no O_DIRECT
                if not direct:
                    uncached = big and not durable and self._drop_behind and self._uncached
                    if uncached and not _write_uncached(fd, data):
                        self._uncached = uncached = False  # remember: no RWF_DONTCACHE here
                    if not uncached:
                        _write_all(fd, data)
                        if big and not durable:
                            if self._drop_behind:
                                _write_back_and_drop(fd)
                            else:
                                _start_writeback(fd)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._publish(tmp, f"{shard}/{key}", shard, created, durable)
        except BaseException as exc:
            if tmp is not None:
                _unlink_quietly(tmp)
            if isinstance(exc, OSError):
                raise KernelError.from_os_error(exc, f"write block {key}") from None
            raise

    def _copy_sync(self, src: str, dst: str) -> None:
        src_path = f"{self._shard_dir(src)}/{src}"
        shard = self._shard_dir(dst)
        tmp = self._temp_path(shard, dst)
        try:
            # Blocks are never modified in place (writes rename a new file over the
            # old one), so a hard link is an independent copy that costs no I/O.
            try:
                os.link(src_path, tmp)
            except FileNotFoundError:
                if not os.path.exists(src_path):
                    raise _missing(src) from None
                self._make_shard(shard)
                os.link(src_path, tmp)
            except OSError as err:
                if err.errno not in _NO_LINK:
                    raise
                self._copy_bytes(src, src_path, tmp)
            os.replace(tmp, f"{shard}/{dst}")
            # rename() between two names of one inode is a no-op that keeps tmp.
            _unlink_quietly(tmp)
        except BaseException as exc:
            _unlink_quietly(tmp)
            if isinstance(exc, OSError):
                raise _read_error(exc, src, "copy") from None
            raise

    def _copy_bytes(self, src: str, src_path: str, tmp: str) -> None:
        try:
            in_fd = os.open(src_path, _O_READ)
        except FileNotFoundError:
            raise _missing(src) from None
        try:
            try:
                out_fd = os.open(tmp, _O_NEW, BLOCK_FILE_MODE)
            except FileNotFoundError:
                self._make_shard(os.path.dirname(tmp))
                out_fd = os.open(tmp, _O_NEW, BLOCK_FILE_MODE)
            try:
                left = os.fstat(in_fd).st_size
                while left > 0:
                    sent = os.copy_file_range(in_fd, out_fd, left)
                    if sent == 0:
                        break
                    left -= sent
            finally:
                os.close(out_fd)
        finally:
            os.close(in_fd)

    def _delete_sync(self, keys: list[str]) -> None:
        for key in keys:
            try:
                os.unlink(f"{self._shard_dir(key)}/{key}")
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as err:
                raise KernelError.from_os_error(err, f"delete block {key}") from None

    def _stat_sync(self, key: str) -> os.stat_result | None:
        try:
            return os.stat(f"{self._shard_dir(key)}/{key}")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise KernelError.from_os_error(err, f"stat block {key}") from None

    def _sync_sync(self, keys: list[str]) -> None:
        if len(keys) >= SYNCFS_MIN_KEYS and _syncfs is not None:
            self._syncfs_all()
            return
        dirs: set[str] = set()
        with self._new_dirs_lock:
            new_dirs, self._new_dirs = self._new_dirs, set()
        try:
            for key in keys:
                shard = self._shard_dir(key)
                try:
                    _fsync_path(f"{shard}/{key}")
                except (FileNotFoundError, NotADirectoryError):
                    continue  # deleted since it was written: nothing left to make durable
                dirs.add(shard)
            dirs.update(os.path.dirname(path) for path in new_dirs)
            for path in sorted(dirs, key=len, reverse=True):  # leaves before their parents
                _fsync_path(path, _O_DIR)
        except OSError as err:
            with self._new_dirs_lock:
                self._new_dirs.update(new_dirs)
            raise KernelError.from_os_error(err, "sync blocks") from None

    def _syncfs_all(self) -> None:
        """One syncfs(2) of the filesystem holding the store: a single journal commit
        instead of one per block file and directory (much faster for large batches)."""
        with self._new_dirs_lock:
            self._new_dirs = set()
        fd = os.open(self._base, _O_DIR)
        try:
            if _syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise KernelError.from_os_error(OSError(err, os.strerror(err)), "sync blocks")
        finally:
            os.close(fd)

    def _iter_shards(self) -> Iterator[tuple[str, str, str]]:
        """Yield ``(first, second, path)`` for every shard directory, lazily."""
        for first in _scan_dirs(self._base):
            for second in _scan_dirs(f"{self._base}/{first}"):
                yield first, second, f"{self._base}/{first}/{second}"

    def _walk_keys(self) -> Generator[str, None, None]:
        for first, second, shard in self._iter_shards():
            try:
                with os.scandir(shard) as entries:
                    for entry in entries:
                        name = entry.name
                        if name[0] == "." or not entry.is_file(follow_symlinks=False):
                            continue
                        try:
                            check_key(name)
                        except KernelError:
                            continue  # a stray host file, not a block
                        if shard_names(name) == (first, second):
                            yield name
            except (FileNotFoundError, NotADirectoryError):
                continue

    def _cleanup_sync(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for _, _, shard in self._iter_shards():
            try:
                with os.scandir(shard) as entries:
                    stale = [e.path for e in entries if e.name.startswith(TEMP_PREFIX)
                             and (older_than <= 0 or e.stat(follow_symlinks=False).st_mtime < cutoff)]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for path in stale:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    # -- the BlockStore protocol -------------------------------------------------------

    async def read(self, key: str) -> bytes:
        return await _run(self._read_sync, key, self.path_for(key))

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        path = self.path_for(key)
        if offset < 0 or length < 0:
            raise KernelError("EINVAL", "negative offset or length")
        return await _run(self._read_range_sync, key, path, offset, length)

    async def write(self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        check_key(key)
        await _run(self._write_sync, key, _as_bytes_view(data), durable)

    async def delete(self, key: str) -> None:
        check_key(key)
        await _run(self._delete_sync, [key])

    async def delete_many(self, keys: Iterable[str]) -> None:
        keys = [check_key(k) for k in keys]
        for start in range(0, len(keys), _DELETE_BATCH):
            await _run(self._delete_sync, keys[start : start + _DELETE_BATCH])

    async def copy(self, src: str, dst: str) -> None:
        check_key(src)
        check_key(dst)
        if src == dst:
            if not await self.exists(src):
                raise _missing(src)
            return
        await _run(self._copy_sync, src, dst)

    async def exists(self, key: str) -> bool:
        check_key(key)
        return await _run(self._stat_sync, key) is not None

    async def size(self, key: str) -> int:
        check_key(key)
        st = await _run(self._stat_sync, key)
        if st is None:
            raise _missing(key)
        return st.st_size

    async def list_keys(self) -> AsyncIterator[str]:
        """Stream every stored key (any order), fetching a batch per thread hop.

        Temp files and stray host files are skipped. Close the iterator (e.g.
        ``async with contextlib.aclosing(...)``) when stopping early.
        """
        walk = self._walk_keys()
        try:
            while True:
                batch = await _run(_take, walk, _LIST_BATCH)
                for key in batch:
                    yield key
                if len(batch) < _LIST_BATCH:
                    return
        finally:
            walk.close()

    async def sync(self, keys: Iterable[str]) -> None:
        """Make already written blocks durable: fsync each file, then each directory once.

        Keys deleted since they were written are skipped: there is nothing to keep.
        """
        unique = list(dict.fromkeys(check_key(k) for k in keys))
        await _run(self._sync_sync, unique)

    async def cleanup_temp_files(self, older_than: float = 0.0) -> int:
        """Remove ``.tmp.*`` files left by a crash; return how many were removed.

        With the default ``older_than=0`` every temp file goes, so only call it
        when no write is in flight (at mount or fsck); pass an age in seconds
        to run it safely next to live writers.
        """
        return await _run(self._cleanup_sync, older_than)


def _scan_dirs(path: str) -> Iterator[str]:
    """Names of the two-character, non-hidden subdirectories of *path*."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                name = entry.name
                if len(name) == 2 and name[0] != "." and entry.is_dir(follow_symlinks=False):
                    yield name
    except (FileNotFoundError, NotADirectoryError):
        return


def _take(walk: Iterator[str], count: int) -> list[str]:
    try:
        return list(itertools.islice(walk, count))
    except OSError as err:
        raise KernelError.from_os_error(err, "list blocks") from None
