"""File descriptor tables and open file descriptions.

An ``OpenFileDescription`` is what open(2) creates: the cursor, the status flags
and the backend (a handle of the mount table, a pipe end, a PTY end, ...).  Fds
in one or several tables point at it (dup, dup2, spawn inheritance), so they
share the offset, O_APPEND/O_NONBLOCK and flock locks; the backend is released
on the *last* close.  ``close-on-exec`` belongs to the fd, not the description.

Stream-like backends (pipes, PTYs, later sockets) implement ``Endpoint``: a
non-blocking ``try_read``/``try_write`` returning ``None`` for "would block",
``poll()`` and a ``Waitable`` to park on.  The syscall layer adds blocking,
O_NONBLOCK and signal interruption once for all of them.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat as _stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import KernelError
from .pipes import Pipe, Waitable

if TYPE_CHECKING:
    from .flock import FlockTable
    from .fs import DirEntry, FileSystem
    from .pty import Pty

O_ACCMODE = os.O_ACCMODE
O_RDONLY = os.O_RDONLY
O_WRONLY = os.O_WRONLY
O_RDWR = os.O_RDWR
O_APPEND = os.O_APPEND
O_NONBLOCK = os.O_NONBLOCK
O_CLOEXEC = os.O_CLOEXEC
# fcntl(F_SETFL) may change only these (Linux also allows O_ASYNC, O_DIRECT, O_NOATIME)
SETFL_MASK = (O_APPEND | O_NONBLOCK | getattr(os, "O_ASYNC", 0) | getattr(os, "O_DIRECT", 0)
              | getattr(os, "O_NOATIME", 0))

_ofd_ids = itertools.count(1)
log = logging.getLogger("vfsfuse.kernel.fd")


class Endpoint(Protocol):
    """A stream backend: pipe end, PTY end, socket."""

    kind: str
    object_id: int
    waitable: Waitable

    def try_read(self, n: int) -> bytes | None: ...
    def try_write(self, data: bytes | bytearray | memoryview) -> int | None: ...
    def poll(self) -> int: ...
    def close(self) -> None: ...


class _PipeEnd:
    """Shared part of the pipe ends: the pipe's own methods are bound once, so a read or
    write through an end costs no extra call; the direction an end lacks fails with EBADF."""

    __slots__ = ("pipe", "waitable", "try_read", "try_write")
    kind = "pipe"
    mode = _stat.S_IFIFO | 0o600
    reads = writes = True

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.waitable = pipe
        self.try_read = pipe.try_read if self.reads else _not_open_for_reading
        self.try_write = pipe.try_write if self.writes else _not_open_for_writing

    @property
    def object_id(self) -> int:
        return self.pipe.object_id


def _not_open_for_reading(n: int) -> bytes | None:
    raise KernelError("EBADF", "pipe write end is not open for reading")


def _not_open_for_writing(data) -> int | None:
    raise KernelError("EBADF", "pipe read end is not open for writing")


class PipeReadEnd(_PipeEnd):
    __slots__ = ()
    writes = False

    def poll(self) -> int:
        return self.pipe.poll_read_end()

    def close(self) -> None:
        self.pipe.close_read()


class PipeWriteEnd(_PipeEnd):
    __slots__ = ()
    reads = False

    def poll(self) -> int:
        return self.pipe.poll_write_end()

    def close(self) -> None:
        self.pipe.close_write()


class PipeBothEnds(_PipeEnd):
    """A FIFO opened O_RDWR: one description that reads and writes (never blocks on open)."""

    __slots__ = ()

    def poll(self) -> int:
        return self.pipe.poll_read_end() | self.pipe.poll_write_end()

    def close(self) -> None:
        self.pipe.writers -= 1
        self.pipe.close_read()


class _PtyEnd:
    """One end of a PTY; the two subclasses differ only in which side of ``Pty`` they use."""

    __slots__ = ("pty", "waitable", "try_read", "try_write", "poll", "close")
    kind = "pty"
    mode = _stat.S_IFCHR | 0o620
    is_master: bool

    def __init__(self, pty: "Pty") -> None:
        self.pty = pty
        self.waitable = pty
        if self.is_master:
            pty.masters += 1
            self.try_read, self.try_write = pty.master_read, pty.master_write
            self.poll, self.close = pty.poll_master, pty.close_master
        else:
            pty.slaves += 1
            self.try_read, self.try_write = pty.slave_read, pty.slave_write
            self.poll, self.close = pty.poll_slave, pty.close_slave

    @property
    def object_id(self) -> int:
        return self.pty.index


class PtyMasterEnd(_PtyEnd):
    """The terminal emulator's side: writes are keyboard input, reads are screen output."""

    __slots__ = ()
    is_master = True


class PtySlaveEnd(_PtyEnd):
    """The program's side (``/dev/pts/N``)."""

    __slots__ = ()
    is_master = False


@dataclass(eq=False, slots=True)
class OpenFileDescription:
    """One open file (the kernel contract names kind, path, object_id, pos, flags)."""

    kind: str                      # "file", "dir", "pipe", "socket", "pty", "device"
    path: str | None               # sandbox path it was opened with (pipes: None)
    flags: int                     # O_* flags as opened, minus O_CLOEXEC/O_CREAT/O_EXCL/O_TRUNC
    object_id: int = 0
    pos: int = 0
    fs: "FileSystem | None" = None  # the mount table, for kind file/dir/device
    fh: int | None = None
    ino: int = 0
    endpoint: Any = None           # Endpoint for pipes, PTYs, sockets
    refs: int = 0                  # fd slots (in all tables) pointing here
    id: int = 0
    locks: "FlockTable | None" = None
    dir_cache: "list[DirEntry] | None" = None  # readdir batch being consumed by getdents
    dir_eof: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            self.id = next(_ofd_ids)

    def mounted(self) -> "FileSystem":
        """``fs`` of a description that has one (file, dir, device: set at open, never reset)."""
        assert self.fs is not None
        return self.fs

    def handle(self) -> tuple["FileSystem", int]:
        """``(fs, fh)`` of an open file or directory (both set at open; fh is reset only by release)."""
        assert self.fs is not None and self.fh is not None
        return self.fs, self.fh

    @property
    def readable(self) -> bool:
        return self.flags & O_ACCMODE != O_WRONLY

    @property
    def writable(self) -> bool:
        return self.flags & O_ACCMODE != O_RDONLY

    async def release(self) -> None:
        """Last close: drop flock locks, close the endpoint or release the fs handle."""
        if self.locks is not None:
            self.locks.release_owner(self.id)
            self.locks = None
        if self.endpoint is not None:
            self.endpoint.close()
            return
        if self.fh is not None and self.fs is not None:
            fh, self.fh = self.fh, None
            if self.kind == "dir":
                await self.fs.releasedir(fh)
            else:
                try:
                    await self.fs.flush(fh)
                finally:
                    await self.fs.release(fh)


class FdTable:
    """fd -> open file description, per process; at most ``max_fds`` entries (EMFILE)."""

    __slots__ = ("_fds", "_cloexec", "max_fds")

    def __init__(self, max_fds: int = 1024) -> None:
        self._fds: dict[int, OpenFileDescription] = {}
        self._cloexec: set[int] = set()
        self.max_fds = max_fds

    def __len__(self) -> int:
        return len(self._fds)

    def __contains__(self, fd: int) -> bool:
        return fd in self._fds

    def items(self) -> list[tuple[int, OpenFileDescription]]:
        return sorted(self._fds.items())

    def fds(self) -> list[int]:
        return sorted(self._fds)

    def get(self, fd: int) -> OpenFileDescription:
        ofd = self._fds.get(fd)
        if ofd is None:
            raise KernelError("EBADF", f"bad file descriptor {fd}")
        return ofd

    def lookup(self, fd: int) -> OpenFileDescription | None:
        return self._fds.get(fd)

    def get_cloexec(self, fd: int) -> bool:
        self.get(fd)
        return fd in self._cloexec

    def set_cloexec(self, fd: int, on: bool) -> None:
        self.get(fd)
        if on:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    def reserve(self, n: int) -> None:
        """EMFILE unless *n* more fds fit (checked before making what they will hold)."""
        if len(self._fds) + n > self.max_fds:
            raise self._emfile()

    def _emfile(self) -> KernelError:
        return KernelError("EMFILE", f"too many open files (limit {self.max_fds} per process)")

    def install(self, ofd: OpenFileDescription, cloexec: bool = False, min_fd: int = 0) -> int:
        """Put *ofd* at the lowest free fd >= *min_fd* (EMFILE when full, EINVAL out of range)."""
        if min_fd < 0 or min_fd >= self.max_fds:
            raise KernelError("EINVAL", f"fd {min_fd} out of range")
        fds = self._fds
        if len(fds) >= self.max_fds:
            raise self._emfile()
        fd = min_fd
        while fd in fds:
            fd += 1
        if fd >= self.max_fds:
            raise self._emfile()
        fds[fd] = ofd
        ofd.refs += 1
        if cloexec:
            self._cloexec.add(fd)
        return fd

    def install_at(self, fd: int, ofd: OpenFileDescription, cloexec: bool = False) -> OpenFileDescription | None:
        """dup2-style: place *ofd* at *fd*, returning the description it displaced (caller closes it)."""
        if fd < 0 or fd >= self.max_fds:
            raise KernelError("EBADF", f"fd {fd} out of range")
        old = self._fds.get(fd)
        self._fds[fd] = ofd
        ofd.refs += 1
        if cloexec:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)
        if old is not None:
            old.refs -= 1
        return old

    def remove(self, fd: int) -> OpenFileDescription:
        """Drop fd; the caller releases the description when ``refs`` reached 0."""
        ofd = self._fds.pop(fd, None)
        if ofd is None:
            raise KernelError("EBADF", f"bad file descriptor {fd}")
        self._cloexec.discard(fd)
        ofd.refs -= 1
        return ofd

    def fork(self, keep_cloexec: bool = False) -> "FdTable":
        """The table a spawned child starts with: every fd not marked close-on-exec."""
        child = FdTable(self.max_fds)
        cloexec = self._cloexec
        for fd, ofd in self._fds.items():
            if fd in cloexec and not keep_cloexec:
                continue
            child._fds[fd] = ofd
            ofd.refs += 1
        return child

    def clear(self) -> list[OpenFileDescription]:
        """Remove every fd; returns the descriptions whose last reference went away."""
        dead = []
        for ofd in self._fds.values():
            ofd.refs -= 1
            if ofd.refs == 0:
                dead.append(ofd)
        self._fds.clear()
        self._cloexec.clear()
        return dead


async def close_descriptions(ofds: list[OpenFileDescription]) -> None:
    """Release descriptions, continuing past errors (used at process exit)."""
    for ofd in ofds:
        try:
            await ofd.release()
        except Exception as e:  # one bad backend must not keep the others open
            log.debug("release of %s %s failed: %s", ofd.kind, ofd.path, e)
