"""The entry conventions every system call shares, written once: signal delivery at entry,
the time slice, interruptible blocking (``_block``/``_wait``), path resolution against the
cwd, terminal job control; plus the records (``Dirent``) and exceptions the calls use."""


from __future__ import annotations

import inspect
import os
import stat as _stat
from typing import TYPE_CHECKING, Any

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import (
    O_CLOEXEC,
)
from kernel.fs import Caller
from kernel.pathvfs import PathVFS
from kernel.process import Process

if TYPE_CHECKING:
    from kernel.kernel import Kernel
    from kernel.pty import Pty


O_CREAT = os.O_CREAT
O_EXCL = os.O_EXCL
O_TRUNC = os.O_TRUNC
O_NOFOLLOW = os.O_NOFOLLOW
O_DIRECTORY = os.O_DIRECTORY
O_PATH = getattr(os, "O_PATH", 0o10000000)
_OPEN_ONLY = O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | getattr(os, "O_NOCTTY", 0)

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
SEEK_DATA, SEEK_HOLE = 3, 4

F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1

F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4

DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12
_DT = {_stat.S_IFIFO: DT_FIFO, _stat.S_IFCHR: DT_CHR, _stat.S_IFDIR: DT_DIR, _stat.S_IFBLK: DT_BLK,
       _stat.S_IFREG: DT_REG, _stat.S_IFLNK: DT_LNK, _stat.S_IFSOCK: DT_SOCK}

_EINTR_MSG = "interrupted system call"

# Syscalls a process makes before it yields to the other tasks.  trio cannot preempt, and a
# call that never blocks (a write to /dev/null, fstat, a cached read) need not checkpoint, so
# without this a busy loop would starve every other process and the FUSE server, and a
# SIGKILL (a trio cancellation) would never be delivered.
SLICE = 64


class ProcessExit(BaseException):
    """Raised by ``ctx.exit``; a BaseException so ``except Exception`` in programs cannot eat it."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ExecImage(BaseException):
    """Raised by ``ctx.execve`` once the new program is resolved; the kernel swaps images."""

    def __init__(self, exe: str, program: Any, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(exe)
        self.exe, self.program, self.argv, self.env = exe, program, argv, env


class Dirent:
    """One getdents record: name (str), inode number, DT_* type, and the offset after it."""

    __slots__ = ("name", "ino", "type", "offset")

    def __init__(self, name: str, ino: int, type: int, offset: int) -> None:
        self.name, self.ino, self.type, self.offset = name, ino, type, offset

    def __repr__(self) -> str:
        return f"Dirent({self.name!r}, ino={self.ino}, type={self.type})"


class CtxBase:
    """The state of one process's syscall context and the conventions of every call."""

    def __init__(self, kernel: "Kernel", proc: Process) -> None:
        self.kernel = kernel
        self.proc = proc
        self.fds = proc.fds
        self._table = kernel.processes
        self._perm = kernel.permissions
        self._check_fs = kernel.permissions.check_fs if kernel.permissions.enforce_fs else None
        self._fs = kernel.mount_table
        self._caller = Caller(proc.uid, proc.gid, proc.pid, proc.umask)
        self._vfs = PathVFS(self._fs, self._caller)
        self._slice = SLICE

    # ---------------------------------------------------------------- signals plumbing
    async def _enter(self) -> None:
        """Syscall entry: wait while stopped, run handlers of pending signals, and let the
        other tasks run once every ``SLICE`` calls."""
        p = self.proc
        if p.state == "T" or p.sig.pending:
            await self._signals()
        self._slice -= 1
        if not self._slice:
            await self._preempt()

    async def _preempt(self) -> None:
        self._slice = SLICE
        await trio.lowlevel.checkpoint()  # where a SIGKILL (cancellation) lands

    async def _signals(self) -> tuple[bool, bool]:
        """Deliver what is deliverable; returns (a handler ran, all those handlers restart)."""
        p = self.proc
        table = self._table
        ran = False
        restart = True
        while True:
            if p.state == "T":
                ev = p.cont_event
                if ev is not None:
                    await ev.wait()
                continue
            todo = p.sig.deliverable()
            if not todo:
                return ran, restart
            sig = todo[0]
            p.sig.pending.discard(sig)
            act = p.sig.action(sig)
            handler = act.handler
            if handler == S.SIG_IGN:
                continue
            if handler == S.SIG_DFL:
                what = S.default_action(sig)
                if what == "stop":
                    table.stop(p, sig)
                elif what in ("term", "core"):
                    table.terminate(p, sig, core=what == "core")
                    await trio.lowlevel.checkpoint()  # the cancellation ends the program here
                continue
            assert callable(handler)  # SIG_IGN and SIG_DFL are handled above
            ran = True
            if not act.flags & S.SA_RESTART:
                restart = False
            saved = set(p.sig.blocked)
            p.sig.blocked |= set(act.mask)
            if not act.flags & S.SA_NODEFER:
                p.sig.blocked.add(sig)
            if act.flags & S.SA_RESETHAND:
                p.sig.actions.pop(sig, None)
            try:
                result = handler(sig)
                if inspect.isawaitable(result):
                    await result
            finally:
                p.sig.blocked = saved

    def _needs_attention(self) -> bool:
        p = self.proc
        return p.state == "T" or bool(p.sig.deliverable())

    async def _block(self, wait, *args) -> bool:
        """Run ``await wait(*args)`` interruptibly; True if a signal cut it short."""
        p = self.proc
        with trio.CancelScope() as cs:
            p.blocked_scope = cs
            if p.state == "R":
                p.state = "S"
            try:
                if p.state == "T" or (p.sig.pending and self._needs_attention()):
                    cs.cancel()
                await wait(*args)
            finally:
                p.blocked_scope = None
                if p.state == "S":
                    p.state = "R"
        return cs.cancelled_caught

    async def _wait(self, wait, *args, restartable: bool = True) -> None:
        """Block once; after a signal, raise EINTR unless every handler asked to restart."""
        if await self._block(wait, *args):
            ran, restart = await self._signals()
            if ran and not (restartable and restart):
                raise KernelError("EINTR", _EINTR_MSG)

    # ---------------------------------------------------------------- paths
    def _abs(self, path: str) -> str:
        if not isinstance(path, str):
            path = os.fsdecode(path)
        if not path:
            raise KernelError("ENOENT", "empty path")
        if path[0] == "/":
            return path
        cwd = self.proc.cwd
        return (cwd + path) if cwd.endswith("/") else f"{cwd}/{path}"

    async def _enter_path(self, op: str, path: str) -> str:
        """Syscall entry for a call on one path: the absolute path, checked by the policy."""
        await self._enter()
        apath = self._abs(path)
        self._check(op, apath)
        return apath

    def _check(self, op: str, path: str) -> None:
        if self._check_fs is not None:
            self._check_fs(op, path)


    async def _job_control(self, pty: "Pty", sig: int) -> None:
        """Linux's tty_check_change: a process of a background group using its controlling
        terminal sends *sig* to its group (SIGTTIN: read; SIGTTOU: write with TOSTOP,
        tcsetattr, tcsetpgrp), which stops it by default, and tries again once continued.
        With *sig* ignored or blocked a read fails with EIO and the rest go ahead; an
        orphaned group gets EIO instead of a stop nobody could undo."""
        p = self.proc
        while pty.sid and pty.sid == p.sid and pty.fg_pgid and p.pgid != pty.fg_pgid:
            if p.sig.action(sig).handler == S.SIG_IGN or sig in p.sig.blocked:
                if sig == S.SIGTTIN:
                    raise KernelError("EIO", "background read from the terminal")
                return
            if self._table.is_orphaned_pgrp(p.pgid):
                raise KernelError("EIO", "orphaned background job used the terminal")
            self._table.kill_group(p.pgid, sig)
            ran, restart = await self._signals()
            if ran and not restart:
                raise KernelError("EINTR", _EINTR_MSG)


async def _wait_until(ev: trio.Event, deadline: float) -> None:
    with trio.move_on_at(deadline):
        await ev.wait()
