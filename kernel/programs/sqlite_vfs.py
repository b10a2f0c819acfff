"""SQLite's file layer on kernel syscalls, so ``sqlite3 FILE`` pages its database through the VFS.

apsw calls a VFS synchronously, from whatever thread runs the statement, and the kernel's calls
are async.  So every use of a connection that can touch its files runs in a worker thread
(``ctx.compute``), and the file methods below reach the kernel from there with
``ctx.call_from_thread``: the event loop (and the FUSE server on it) keeps running while SQLite
works, and two sqlite3 processes on one database lock each other as on Linux.

Locking is SQLite's "unix-flock" scheme on the kernel's flock(2): SHARED is a shared lock,
RESERVED and above an exclusive one; a conflict is SQLITE_BUSY.  Shared memory (xShm) is not
offered, so a database in WAL mode is opened with ``locking_mode=EXCLUSIVE`` (SQLite keeps the
WAL index in its own memory then), as SQLite documents for VFSes without shared memory.
Nothing of the host is reachable: names are kernel paths, temporary files stay in memory
(``temp_store=MEMORY``) and an unnamed file is refused.

Once the process is killed its files are closed, so nothing SQLite still does can reach them:
the file methods then answer without doing anything (``EINTR`` from ``call_from_thread``), and
the files are left as a crash leaves them, a hot journal included, for the next opener to roll
back.  Raising instead would print tracebacks from the connection's destructor.
"""

from __future__ import annotations

import itertools
from typing import Any

import apsw

from kernel.errors import KernelError
from kernel.syscalls import O_CREAT, O_EXCL, O_RDONLY, O_RDWR

LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
_names = itertools.count(1)


def _io_error(err: KernelError, code: int = apsw.SQLITE_IOERR) -> Exception:
    """A kernel error as the SQLite error apsw hands back to SQLite."""
    exc = apsw.exception_for(code)
    exc.args = (f"{err.code}: {err}",)
    return exc


class KernelFile:
    """One open database, journal or WAL file: a kernel fd in the sqlite3 process."""

    def __init__(self, ctx: Any, path: str, fd: int, delete_on_close: bool) -> None:
        self.ctx, self.path, self.fd = ctx, path, fd
        self.delete_on_close = delete_on_close
        self.level = apsw.SQLITE_LOCK_NONE
        self.size = 0  # the last size seen: what a file of a dead process answers
        self.gone = False

    def _call(self, afn: Any, *args: Any, code: int = apsw.SQLITE_IOERR) -> Any:
        """The syscall's result; None once the process is gone (see the module docstring)."""
        if self.gone:
            return None
        try:
            return self.ctx.call_from_thread(afn, *args)
        except KernelError as err:
            if err.code == "EINTR":
                self.gone = True
                return None
            raise _io_error(err, code) from None

    def xRead(self, amount: int, offset: int) -> bytes:  # noqa: N802 - apsw's names
        parts: list[bytes] = []
        while amount > 0:
            data = self._call(self.ctx.pread, self.fd, amount, offset, code=apsw.SQLITE_IOERR_READ)
            if not data:  # (None: the process is gone)
                break  # past the end: apsw fills the rest with zeros and says "short read"
            parts.append(data)
            amount -= len(data)
            offset += len(data)
        return b"".join(parts)

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        view = memoryview(data)
        while view:
            n = self._call(self.ctx.pwrite, self.fd, view, offset, code=apsw.SQLITE_IOERR_WRITE)
            if n is None:
                return
            view, offset = view[n:], offset + n

    def xTruncate(self, size: int) -> None:  # noqa: N802
        self._call(self.ctx.ftruncate, self.fd, size, code=apsw.SQLITE_IOERR_TRUNCATE)

    def xSync(self, flags: int) -> None:  # noqa: N802
        self._call(self.ctx.fsync, self.fd, code=apsw.SQLITE_IOERR_FSYNC)

    def xFileSize(self) -> int:  # noqa: N802
        attr = self._call(self.ctx.fstat, self.fd, code=apsw.SQLITE_IOERR_FSTAT)
        if attr is not None:
            self.size = int(attr.size)
        return self.size

    def _flock(self, op: int) -> bool:
        """True if the lock was taken; False on a conflict (LOCK_NB)."""
        if self.gone:
            return True
        try:
            self.ctx.call_from_thread(self.ctx.flock, self.fd, op)
        except KernelError as err:
            if err.code in ("EAGAIN", "EWOULDBLOCK"):
                return False
            if err.code == "EINTR":
                self.gone = True
                return True
            raise _io_error(err, apsw.SQLITE_IOERR_LOCK) from None
        return True

    def xLock(self, level: int) -> None:  # noqa: N802
        if level <= self.level:
            return
        if level == apsw.SQLITE_LOCK_SHARED:
            ok = self._flock(LOCK_SH | LOCK_NB)
        else:  # RESERVED, PENDING, EXCLUSIVE: one writer at a time
            ok = self.level >= apsw.SQLITE_LOCK_RESERVED or self._flock(LOCK_EX | LOCK_NB)
            if not ok and self.level == apsw.SQLITE_LOCK_SHARED:
                self._flock(LOCK_SH | LOCK_NB)  # keep what we had if the upgrade dropped it
        if not ok:
            raise apsw.BusyError("database is locked")
        self.level = level

    def xUnlock(self, level: int) -> None:  # noqa: N802
        if level >= self.level:
            return
        if level == apsw.SQLITE_LOCK_NONE:
            self._flock(LOCK_UN)
        elif self.level >= apsw.SQLITE_LOCK_RESERVED:
            self._flock(LOCK_SH)  # back to SHARED: a downgrade never conflicts
        self.level = level

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        """Does anyone hold RESERVED?  flock cannot tell shared from exclusive holders, so
        any other holder counts (SQLite then never takes a live journal for a hot one)."""
        if self.level >= apsw.SQLITE_LOCK_RESERVED:
            return True
        if not self._flock(LOCK_EX | LOCK_NB):
            if self.level == apsw.SQLITE_LOCK_SHARED:
                self._flock(LOCK_SH | LOCK_NB)
            return True
        self._flock(LOCK_SH if self.level == apsw.SQLITE_LOCK_SHARED else LOCK_UN)
        return False

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        return False

    def xSectorSize(self) -> int:  # noqa: N802
        return 4096

    def xDeviceCharacteristics(self) -> int:  # noqa: N802
        return 0

    def xClose(self) -> None:  # noqa: N802
        fd, self.fd = self.fd, -1
        if fd < 0 or self.gone:
            return
        try:
            self.ctx.call_from_thread(self.ctx.close, fd)
            if self.delete_on_close:
                self.ctx.call_from_thread(self.ctx.unlink, self.path)
        except KernelError:
            pass  # closing cannot fail in a way SQLite could act on


class KernelVFS(apsw.VFS):
    """The VFS of one sqlite3 process: its files are the process's own kernel files."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.vfs_name = f"vfsfuse-kernel-{next(_names)}"
        super().__init__(self.vfs_name, "")

    # apsw takes any object with the VFSFile methods; its stubs name only VFSFile.
    def xOpen(self, name: Any, flags: list[int]) -> KernelFile:  # type: ignore[override]  # noqa: N802
        path = name if isinstance(name, str) or name is None else name.filename()
        if not path:
            raise apsw.CantOpenError("the sandbox's sqlite3 keeps temporary files in memory")
        want = flags[0]
        oflags = O_RDWR if want & apsw.SQLITE_OPEN_READWRITE else O_RDONLY
        if want & apsw.SQLITE_OPEN_CREATE:
            oflags |= O_CREAT
        if want & apsw.SQLITE_OPEN_EXCLUSIVE:
            oflags |= O_EXCL
        try:
            fd = self.ctx.call_from_thread(self.ctx.open, path, oflags, 0o644)
        except KernelError as err:
            raise _io_error(err, apsw.SQLITE_CANTOPEN) from None
        return KernelFile(self.ctx, path, fd, bool(want & apsw.SQLITE_OPEN_DELETEONCLOSE))

    def xAccess(self, pathname: str, flags: int) -> bool:  # noqa: N802
        try:
            attr = self.ctx.call_from_thread(self.ctx.stat, pathname)
        except KernelError:
            return False
        if flags == apsw.SQLITE_ACCESS_EXISTS:
            return not attr.is_reg or attr.size > 0  # an empty journal is no journal, as on unix
        try:
            self.ctx.call_from_thread(self.ctx.access, pathname, 6)  # R_OK | W_OK
        except KernelError:
            return False
        return True

    def xDelete(self, pathname: str, syncdir: bool) -> None:  # noqa: N802
        try:
            self.ctx.call_from_thread(self.ctx.unlink, pathname)
        except KernelError as err:
            if err.code == "EINTR":
                return  # the process is gone: the file stays, as after a crash
            code = apsw.SQLITE_IOERR_DELETE_NOENT if err.code == "ENOENT" else apsw.SQLITE_IOERR_DELETE
            raise _io_error(err, code) from None

    def xFullPathname(self, name: str) -> str:  # noqa: N802
        return name  # the caller passes absolute kernel paths

    def xDlOpen(self, filename: str) -> int:  # noqa: N802
        return 0  # no extensions, ever
