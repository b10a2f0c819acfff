"""Keep the metadata database's growth out of the last bit of the store's disk.

Block writes stop while a reserve is still free (``blockstores.host.metadata_reserve``),
so that the next SQLite commit fits: a commit that meets SQLITE_FULL may make SQLite roll
the whole group of changes back, and files created since the last commit would vanish
from under the programs that made them.  Data kept inline in the database (small files),
new names, symlink targets and xattrs grow the database too, so they stop at half the
reserve: the other half is for the commits that record what exists.

Changes are counted from the last commit: until then SQLite may hold them in its page
cache (up to 64 MiB), invisible to ``statvfs``, and the commit writes them all to the WAL
(hence twice: the WAL, then the database file).  Committed changes still in the WAL grow
the database file when a checkpoint copies them, so the WAL's size is kept free as well.
``os.statvfs`` is asked at most every ``REFRESH`` seconds, or at every change once the disk
is close to the line, and again after each commit.
"""

from __future__ import annotations

import os
import time

from blockstores.host import metadata_reserve
from kernel.errors import KernelError

REFRESH = 0.1  # seconds an answer from statvfs is trusted while far from the line
OVERHEAD = 1024  # rows, index entries, page slack per change (a 3000-byte row fills a 4 KiB page)
WAL_FACTOR = 2  # a change is written to the WAL first, then to the database file


class MetadataRoom:
    """ENOSPC for metadata growth past half the reserve of the disk at *path*."""

    def __init__(self, path: str, wal_path: str | None = None) -> None:
        self.path = path
        self.wal_path = wal_path
        self._checked_at = float("-inf")
        self._free = 0
        self._floor = 0
        self._pending = 0  # bytes charged since the last commit

    def charge(self, nbytes: int) -> None:
        """Account for about *nbytes* of new metadata; ENOSPC (charging nothing) if the disk
        has no room for it outside the part kept for commits."""
        need = WAL_FACTOR * (nbytes + OVERHEAD)
        now = time.monotonic()
        left = self._free - self._pending - need
        if now - self._checked_at > REFRESH or left < 2 * self._floor:
            st = os.statvfs(self.path)
            self._free = st.f_bavail * st.f_frsize - self.wal_size()
            self._floor = metadata_reserve(st) // 2
            self._checked_at = now
            left = self._free - self._pending - need
        if left < self._floor:
            raise KernelError("ENOSPC", "store disk is full (the rest is kept for metadata commits)")
        self._pending += need

    def committed(self) -> None:
        """The changes charged so far are on disk now, where statvfs sees them."""
        self._pending = 0
        self._checked_at = float("-inf")

    def wal_size(self) -> int:
        """Bytes a checkpoint may add to the database file (thread-safe: one stat)."""
        try:
            return os.stat(self.wal_path).st_size if self.wal_path else 0
        except OSError:
            return 0
