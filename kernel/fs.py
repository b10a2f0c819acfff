"""The inode-level filesystem protocol: what FUSE, the mount table and the path walker speak.

pyfuse3 is inode based, and so is everything below the path-level VFS: a path
is walked once (``kernel/pathvfs.py``) into inode numbers, then every operation
names inodes.  This avoids PATH_MAX limits and rename races that path-based
servers suffer from.

Conventions
-----------
* Names are ``bytes`` (Linux names are byte strings).  ``check_name`` rejects the
  invalid ones with EINVAL / ENAMETOOLONG.
* Times are integer nanoseconds since the epoch.
* Every operation that creates, checks ownership or depends on *who* asks takes
  a ``Caller`` (uid, gid, pid, umask).  ``Caller.root()`` is the default.
* Errors are ``KernelError`` with a POSIX code.
* Lookup counting (FUSE's ``forget``) lives in the FUSE adapter; a filesystem only
  sees ``retain(ino)`` when the host kernel starts to reference an inode and
  ``forget(ino)`` when it stops.  An inode whose link count reached zero is
  destroyed once nothing retains it and no handle is open.
"""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import KernelError

NAME_MAX = 255
ROOT_INO = 1
SYMLOOP_MAX = 40

# renameat2(2) flags
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

# setxattr(2) flags
XATTR_CREATE = 1
XATTR_REPLACE = 2


@dataclass(slots=True)
class Caller:
    """Who performs an operation (the FUSE request context, or a sandbox process)."""

    uid: int = 0
    gid: int = 0
    pid: int = 0
    umask: int = 0o022
    groups: tuple[int, ...] = ()

    @staticmethod
    def root() -> "Caller":
        return ROOT_CALLER

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups


ROOT_CALLER = Caller()


def may_access(caller: Caller, mode: int, uid: int, gid: int, want: int) -> bool:
    """The one owner/group/other permission check (*want*: a mask of 4 read, 2 write, 1 execute).

    Root passes (CAP_DAC_OVERRIDE) except for executing a non-directory that has no execute
    bit at all, as on Linux."""
    if caller.uid == 0:
        return not (want & 1) or mode & 0o170000 == 0o040000 or bool(mode & 0o111)
    if caller.uid == uid:
        bits = mode >> 6
    elif caller.in_group(gid):
        bits = mode >> 3
    else:
        bits = mode
    return bits & want == want


class FileTypeMixin:
    """``is_dir``/``is_reg``/``is_symlink`` for any record with a ``mode`` (type bits included)."""

    __slots__ = ()
    mode: int

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return _stat.S_ISLNK(self.mode)


@dataclass(slots=True)
class Attr(FileTypeMixin):
    """stat(2) fields of one inode, as the FUSE adapter returns them."""

    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    birthtime_ns: int = 0
    rdev: int = 0
    blksize: int = 4096
    blocks: int = 0  # 512-byte units actually stored


@dataclass(slots=True)
class SetAttr:
    """Fields to change in ``setattr``; ``None`` leaves a field alone.

    ``atime_ns``/``mtime_ns`` may be ``UTIME_NOW`` to mean "the current time".
    ``host_times``: ``mtime_ns``/``ctime_ns`` are not a ``utimensat`` but a record of changes
    that already happened and were permitted (a FUSE host kernel with write-back caching keeps
    those times itself and flushes them later, on behalf of whoever caused them): store them
    without judging them as the caller's request.
    """

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime_ns: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    host_times: bool = False


UTIME_NOW = -1


@dataclass(slots=True)
class DirEntry:
    """One readdir entry; ``offset`` is the cookie to pass back to continue after it."""

    name: bytes
    attr: Attr
    offset: int


@dataclass(slots=True)
class StatFs:
    block_size: int
    fragment_size: int
    blocks: int
    blocks_free: int
    blocks_avail: int
    files: int
    files_free: int
    namemax: int = NAME_MAX


def check_name(name: bytes) -> None:
    """Reject names Linux would never accept as one path component."""
    if not name or b"/" in name or b"\0" in name:
        raise KernelError("EINVAL", f"invalid file name {name!r}")
    if len(name) > NAME_MAX:
        raise KernelError("ENAMETOOLONG", f"file name longer than {NAME_MAX} bytes")


@runtime_checkable
class FileSystem(Protocol):
    """An inode-level filesystem (ChunkedVFS, devfs, procfs, the mount table itself).

    File handles (``fh``) are small integers private to the filesystem.

    Optional: ``async read_buffer(fh, offset, size)`` behaves like ``read`` but may return
    a read-only ``memoryview`` instead of ``bytes``; the FUSE adapter uses it when present
    so a large read is not copied once more on its way to the host kernel.
    """

    root_ino: int

    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def getattr(self, ino: int) -> Attr: ...
    async def setattr(self, ino: int, changes: SetAttr, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def readlink(self, ino: int, caller: Caller = ROOT_CALLER) -> bytes: ...

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def mkdir(self, parent: int, name: bytes, mode: int, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def symlink(self, parent: int, name: bytes, target: bytes, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def link(self, ino: int, new_parent: int, new_name: bytes, caller: Caller = ROOT_CALLER) -> Attr: ...
    async def unlink(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None: ...
    async def rmdir(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None: ...
    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int = 0, caller: Caller = ROOT_CALLER) -> None: ...

    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     caller: Caller = ROOT_CALLER) -> tuple[int, Attr]: ...
    async def open(self, ino: int, flags: int, caller: Caller = ROOT_CALLER) -> int: ...
    async def read(self, fh: int, offset: int, size: int) -> bytes: ...
    async def write(self, fh: int, offset: int, data: bytes) -> int: ...
    async def flush(self, fh: int) -> None: ...
    async def fsync(self, fh: int, datasync: bool = False) -> None: ...
    async def release(self, fh: int) -> None: ...

    async def opendir(self, ino: int, caller: Caller = ROOT_CALLER) -> int: ...
    async def readdir(self, fh: int, offset: int) -> list[DirEntry]:
        """The next batch of entries after cookie *offset* (0 = from the start), without
        ``.`` and ``..``.  A batch may be partial: call again with the last entry's
        ``offset`` until an empty list comes back."""
        ...
    async def releasedir(self, fh: int) -> None: ...
    async def fsyncdir(self, fh: int, datasync: bool = False) -> None: ...

    async def statfs(self) -> StatFs: ...

    async def getxattr(self, ino: int, name: bytes) -> bytes: ...
    async def setxattr(self, ino: int, name: bytes, value: bytes, flags: int = 0,
                       caller: Caller = ROOT_CALLER) -> None: ...
    async def listxattr(self, ino: int) -> list[bytes]: ...
    async def removexattr(self, ino: int, name: bytes, caller: Caller = ROOT_CALLER) -> None: ...

    def retain(self, ino: int) -> None: ...
    async def forget(self, ino: int) -> None: ...
