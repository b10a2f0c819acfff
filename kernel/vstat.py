"""Records the path-level VFS returns: the seed's ``VirtualStat`` and directory entries.

They are plain dataclasses built from the inode level's ``Attr`` so callers (the
kernel, the shell, tests) never see inode-level types unless they ask for them.
"""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass

from .fs import Attr


@dataclass(slots=True)
class VirtualStat:
    """stat(2) of one file: the seed's millisecond fields plus the exact nanosecond ones."""

    mode: int
    size: int
    is_directory: bool
    is_symbolic_link: bool
    atime_ms: float
    mtime_ms: float
    ctime_ms: float
    birthtime_ms: float
    ino: int
    nlink: int
    uid: int
    gid: int
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    birthtime_ns: int = 0
    rdev: int = 0
    blocks: int = 0
    blksize: int = 4096

    @classmethod
    def from_attr(cls, a: Attr) -> "VirtualStat":
        mode = a.mode
        return cls(
            mode, a.size, _stat.S_ISDIR(mode), _stat.S_ISLNK(mode),
            a.atime_ns / 1e6, a.mtime_ns / 1e6, a.ctime_ns / 1e6, a.birthtime_ns / 1e6,
            a.ino, a.nlink, a.uid, a.gid,
            a.atime_ns, a.mtime_ns, a.ctime_ns, a.birthtime_ns,
            a.rdev, a.blocks, a.blksize,
        )

    @property
    def is_file(self) -> bool:
        return _stat.S_ISREG(self.mode)


@dataclass(slots=True)
class VirtualDirEntry:
    """One name in a directory listing (never ``.`` or ``..``)."""

    name: str | bytes
    is_directory: bool
    is_symbolic_link: bool
    ino: int


@dataclass(slots=True)
class VirtualDirStatEntry:
    """A listing entry together with the stat of the entry itself (not followed)."""

    name: str | bytes
    is_directory: bool
    is_symbolic_link: bool
    ino: int
    stat: VirtualStat
