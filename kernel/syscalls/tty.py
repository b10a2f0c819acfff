"""Terminal calls: openpty, isatty, termios, foreground groups, window size, controlling tty."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import (
    O_CLOEXEC,
    O_RDWR,
    OpenFileDescription,
    PtyMasterEnd,
    PtySlaveEnd,
)

if TYPE_CHECKING:
    from kernel.pty import Pty, Termios

from kernel.syscalls._base import CtxBase


class TtyCalls(CtxBase):
    """tty system calls (mixed into ``Ctx``)."""

    # ---------------------------------------------------------------- terminals
    def _pty(self, fd: int, slave_only: bool = False) -> tuple["Pty", bool]:
        ofd = self.fds.get(fd)
        ep = ofd.endpoint
        if ep is None or ep.kind != "pty" or (slave_only and ep.is_master):
            raise KernelError("ENOTTY", "inappropriate ioctl for device")
        return ep.pty, ep.is_master

    async def openpty(self, flags: int = 0) -> tuple[int, int]:
        """(master fd, slave fd) of a new PTY (the pair /dev/ptmx + /dev/pts/N)."""
        await self._enter()
        self.fds.reserve(2)
        pty = self.kernel.ptys.open_pty()
        cloexec = bool(flags & O_CLOEXEC)
        m = OpenFileDescription("pty", "/dev/ptmx", O_RDWR, object_id=pty.index, endpoint=PtyMasterEnd(pty))
        s = OpenFileDescription("pty", pty.path, O_RDWR, object_id=pty.index, endpoint=PtySlaveEnd(pty))
        return self.fds.install(m, cloexec), self.fds.install(s, cloexec)

    def isatty(self, fd: int) -> bool:
        ofd = self.fds.lookup(fd)
        return ofd is not None and ofd.endpoint is not None and ofd.endpoint.kind == "pty"

    def ttyname(self, fd: int) -> str:
        pty, master = self._pty(fd, slave_only=True)
        return pty.path

    def tcgetattr(self, fd: int) -> "Termios":
        return self._pty(fd)[0].termios.copy()

    async def tcsetattr(self, fd: int, termios: "Termios") -> None:
        pty, master = self._pty(fd)
        if not master:
            await self._job_control(pty, S.SIGTTOU)
        pty.set_termios(termios)

    def tcgetpgrp(self, fd: int) -> int:
        return self._pty(fd)[0].fg_pgid

    async def tcsetpgrp(self, fd: int, pgid: int) -> None:
        pty, master = self._pty(fd)
        if not master:
            await self._job_control(pty, S.SIGTTOU)  # shells block SIGTTOU around this
        if not master and pty.sid not in (0, self.proc.sid):
            raise KernelError("ENOTTY", "not the controlling terminal of this session")
        if pgid <= 0:
            raise KernelError("EINVAL", f"invalid process group {pgid}")
        if not any(p.pgid == pgid and p.state != "Z" and (master or p.sid == self.proc.sid)
                   for p in self._table.processes()):
            raise KernelError("EPERM", f"no such process group in this session: {pgid}")
        pty.fg_pgid = pgid

    def get_winsize(self, fd: int) -> tuple[int, int]:
        ws = self._pty(fd)[0].winsize
        return ws.rows, ws.cols

    async def set_winsize(self, fd: int, rows: int, cols: int) -> None:
        """TIOCSWINSZ; a change sends SIGWINCH to the foreground process group."""
        self._pty(fd)[0].set_winsize(rows, cols)
        await self._enter()

    async def tiocsctty(self, fd: int) -> None:
        """Make the PTY behind *fd* the controlling terminal of this session leader."""
        pty, _ = self._pty(fd)
        p = self.proc
        if p.sid != p.pid:
            raise KernelError("EPERM", "not a session leader")
        if pty.sid not in (0, p.sid):
            raise KernelError("EPERM", "terminal belongs to another session")
        pty.sid = p.sid
        pty.fg_pgid = p.pgid
        p.tty = pty.path
