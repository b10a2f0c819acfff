"""The syscall surface: the one object (``ctx``) a sandbox program receives.

A program is ``async def main(ctx) -> int``.  Everything it can do to the world
goes through ``ctx``: files (paths are sandbox paths resolved against the
process's cwd through ``PathVFS`` over the mount table, never host paths), fds,
pipes, PTYs, processes and signals.  Errors are ``KernelError`` with a POSIX code.

Signals: a syscall first runs pending signal handlers (and waits while the
process is stopped).  A syscall that blocks (read/write on pipes and PTYs,
waitpid, flock, poll, sleep, pause) parks in an interruptible scope; when a
signal arrives its handler runs, and the call either restarts (handler installed
with ``SA_RESTART``, the default of ``ctx.signal``) or fails with EINTR (poll,
sleep and pause always do, as on Linux).  Default actions that terminate end the
process through trio cancellation, so SIGKILL always works.

Calls (all ``async`` unless noted):

* files: ``open(path, flags=O_RDONLY, mode=0o666)``, ``close``, ``read(fd, n)``,
  ``write(fd, data)``, ``write_all``, ``read_all``, ``pread(fd, n, off)``,
  ``pwrite(fd, data, off)``, ``lseek(fd, off, whence)``, ``dup``, ``dup2``, ``dup3``,
  ``fcntl(fd, cmd, arg)``, ``fstat``, ``ftruncate``, ``fsync``, ``getdents(fd)``, ``flock``,
  ``poll([(fd, events)], timeout)``, ``pipe(flags)``;
* paths: ``stat``, ``lstat``, ``access``, ``mkdir``, ``mknod``, ``mkfifo``, ``rmdir``, ``unlink``, ``rename``,
  ``symlink``, ``readlink``, ``link``, ``chmod``, ``chown``, ``truncate``, ``utimes``,
  ``realpath``, ``listdir``, ``chdir``, ``getcwd`` (sync), ``umask`` (sync);
* processes: ``spawn(argv, ...)``, ``execve(argv, env)``, ``waitpid(pid, options)``, ``exit(code)`` (raises),
  ``kill(pid, sig)``, ``getpid``/``getppid``/``getpgid``/``getsid``/``getuid``/``getgid`` (sync),
  ``setpgid``, ``setsid``, ``sleep``, ``pause``, ``sched_yield``, ``alarm``, ``gethostname`` (sync),
  ``sethostname``;
* signals: ``signal(sig, handler, flags=SA_RESTART)``, ``sigaction``, ``sigprocmask``;
* terminals: ``openpty``, ``isatty`` (sync), ``ttyname``, ``tcgetattr``, ``tcsetattr``,
  ``tcgetpgrp``, ``tcsetpgrp``, ``get_winsize``, ``set_winsize``, ``tiocsctty``;
* environment: ``environ`` (the live dict), ``argv``, ``getenv``, ``setenv``, ``unsetenv``.
"""

from __future__ import annotations

import inspect
import os
import stat as _stat
from typing import TYPE_CHECKING, Any, Iterable

import trio

from . import signals as S
from .errors import KernelError
from .fdtable import (
    O_ACCMODE, O_APPEND, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, SETFL_MASK,
    OpenFileDescription, PipeBothEnds, PipeReadEnd, PipeWriteEnd, PtyMasterEnd, PtySlaveEnd,
)
from .flock import LOCK_UN
from .fs import Attr, Caller, SetAttr
from .pathvfs import PathVFS
from .pipes import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, Pipe
from .process import WNOHANG, Process
from .pty import PTMX_RDEV, PTS_MAJOR
from .procfs import fd_reference

if TYPE_CHECKING:
    from .kernel import Kernel
    from .pty import Pty, Termios

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


class Ctx:
    """The syscall context of one process (see the module docstring for the list of calls)."""

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

    # ---------------------------------------------------------------- identity, env
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def argv(self) -> list[str]:
        return self.proc.argv

    @property
    def environ(self) -> dict[str, str]:
        return self.proc.env

    def getenv(self, key: str, default: str | None = None) -> str | None:
        return self.proc.env.get(key, default)

    def setenv(self, key: str, value: str) -> None:
        if not key or "=" in key:
            raise KernelError("EINVAL", f"invalid environment name {key!r}")
        self.proc.env[key] = value

    def unsetenv(self, key: str) -> None:
        self.proc.env.pop(key, None)

    def getpid(self) -> int:
        return self.proc.pid

    def getppid(self) -> int:
        return self.proc.ppid

    def getuid(self) -> int:
        return self.proc.uid

    def getgid(self) -> int:
        return self.proc.gid

    def getpgid(self, pid: int = 0) -> int:
        return (self.proc if pid in (0, self.proc.pid) else self._table.lookup(pid)).pgid

    def getsid(self, pid: int = 0) -> int:
        return (self.proc if pid in (0, self.proc.pid) else self._table.lookup(pid)).sid

    def umask(self, mask: int | None = None) -> int:
        old = self.proc.umask
        if mask is not None:
            self.proc.umask = mask & 0o777
            self._caller.umask = self.proc.umask
        return old

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

    # ---------------------------------------------------------------- open / close
    async def open(self, path: str, flags: int = O_RDONLY, mode: int = 0o666) -> int:
        """open(2) with Linux semantics over the mount table; returns the new fd."""
        await self._enter()
        apath = self._abs(path)
        if self._check_fs is not None:
            self._check("write" if flags & (O_CREAT | O_TRUNC) or flags & O_ACCMODE else "read", apath)
        self.fds.reserve(1)
        if "/dev/" in apath or "/proc/" in apath:
            ref = fd_reference(apath, self.proc.pid)
            if ref is not None and ref[0] == self.proc.pid:
                return await self._reopen_fd(ref[1], flags, mode)
        ofd = await self._open_description(apath, path, flags, mode)
        try:
            return self.fds.install(ofd, cloexec=bool(flags & O_CLOEXEC))
        except BaseException:
            if ofd.refs == 0:
                await ofd.release()
            raise

    async def _reopen_fd(self, fd: int, flags: int, mode: int) -> int:
        """Opening one's own fd through /dev/fd or /proc/self/fd: a pipe, PTY or socket is
        shared (like dup), a file is opened again by its path (its own offset, as Linux)."""
        ofd = self.fds.get(fd) if fd in self.fds else None
        if ofd is None:
            raise KernelError("ENOENT", f"no such file descriptor: {fd}")
        cloexec = bool(flags & O_CLOEXEC)
        if ofd.endpoint is not None or ofd.path is None:
            return self.fds.install(ofd, cloexec=cloexec)
        new = await self._open_description(ofd.path, ofd.path, flags, mode)
        try:
            return self.fds.install(new, cloexec=cloexec)
        except BaseException:
            await new.release()
            raise

    async def _open_description(self, apath: str, path: str, flags: int, mode: int) -> OpenFileDescription:
        fs = self._fs
        vfs = self._vfs
        caller = self._caller
        acc = flags & O_ACCMODE
        if acc == O_ACCMODE:
            raise KernelError("EINVAL", "invalid access mode")
        keep = flags & ~_OPEN_ONLY
        if flags & O_CREAT and flags & O_DIRECTORY:
            raise KernelError("EINVAL", "O_CREAT with O_DIRECTORY")  # Linux >= 6.4
        if flags & O_CREAT:
            if apath.endswith("/"):
                raise KernelError("EISDIR", f"is a directory: {path}")
            parent, name = await vfs.resolve_parent(apath, special="EISDIR")
            try:
                attr = await fs.lookup(parent, name, caller)
            except KernelError as e:
                if e.code != "ENOENT":
                    raise
                attr = None
            if attr is None:
                fh, attr = await fs.create(parent, name, _stat.S_IFREG | (mode & 0o7777 & ~self.proc.umask),
                                           flags & ~O_CLOEXEC, caller)
                return OpenFileDescription("file", apath, keep, fs=fs, fh=fh, ino=attr.ino)
            if flags & O_EXCL:
                raise KernelError("EEXIST", f"file exists: {path}")
            if attr.is_symlink:
                if flags & O_NOFOLLOW:
                    raise KernelError("ELOOP", f"is a symbolic link: {path}")
                try:
                    ino, attr = await vfs.resolve(apath, follow=True)
                except KernelError as e:
                    if e.code != "ENOENT":
                        raise
                    # a dangling symlink: O_CREAT creates its target, as Linux does
                    fh, attr, _ = await vfs._open_create(apath, flags & ~O_CLOEXEC, False, mode)
                    return OpenFileDescription("file", apath, keep, fs=fs, fh=fh, ino=attr.ino)
        else:
            ino, attr = await vfs.resolve(apath, follow=not flags & O_NOFOLLOW)
        mode_t = attr.mode & 0o170000
        if mode_t == _stat.S_IFLNK:
            raise KernelError("ELOOP", f"is a symbolic link: {path}")
        if mode_t == _stat.S_IFDIR:
            if acc != O_RDONLY or flags & (O_CREAT | O_TRUNC):
                raise KernelError("EISDIR", f"is a directory: {path}")
            fh = await fs.opendir(attr.ino, caller)
            return OpenFileDescription("dir", apath, keep, fs=fs, fh=fh, ino=attr.ino)
        if flags & O_DIRECTORY:
            raise KernelError("ENOTDIR", f"not a directory: {path}")
        if mode_t == _stat.S_IFIFO:
            return await self._open_fifo(apath, attr, flags, keep)
        if mode_t in (_stat.S_IFCHR, _stat.S_IFBLK, _stat.S_IFSOCK):
            return await self._open_special(apath, attr, flags, keep)
        fh = await fs.open(attr.ino, flags & ~O_CLOEXEC, caller)
        if flags & O_TRUNC and acc == O_RDONLY and attr.size:
            # Linux truncates even for O_RDONLY (POSIX leaves it unspecified)
            try:
                await fs.setattr(attr.ino, SetAttr(size=0), caller)
            except BaseException:
                await fs.release(fh)
                raise
        return OpenFileDescription("file", apath, keep, fs=fs, fh=fh, ino=attr.ino)

    async def _open_fifo(self, apath: str, attr: Attr, flags: int, keep: int) -> OpenFileDescription:
        """fifo(7): a reader's open waits for a writer and vice versa (O_NONBLOCK: a reader
        returns at once, a writer without reader gets ENXIO); O_RDWR never waits."""
        pipe = self.kernel.fifos.get(attr.ino)
        acc = flags & O_ACCMODE
        nonblock = flags & O_NONBLOCK
        if acc == O_RDWR:
            pipe.readers += 1
            pipe.writers += 1
            pipe.r_opens += 1
            pipe.w_opens += 1
            pipe.changed()
            ep: Any = PipeBothEnds(pipe)
        elif acc == O_RDONLY:
            pipe.readers += 1
            pipe.r_opens += 1
            pipe.changed()
            ep = PipeReadEnd(pipe)
            await self._fifo_wait(pipe, ep, nonblock, lambda: pipe.w_opens, pipe.writers)
        else:
            if pipe.readers == 0 and nonblock:
                pipe._idle_check()
                raise KernelError("ENXIO", f"no reader on fifo: {apath}")
            pipe.writers += 1
            pipe.w_opens += 1
            pipe.changed()
            ep = PipeWriteEnd(pipe)
            await self._fifo_wait(pipe, ep, nonblock, lambda: pipe.r_opens, pipe.readers)
        return OpenFileDescription("pipe", apath, keep, object_id=pipe.object_id, endpoint=ep,
                                   fs=self._fs, ino=attr.ino)

    async def _fifo_wait(self, pipe: Pipe, ep: Any, nonblock: int, partner_opens, partners: int) -> None:
        if nonblock or partners:
            return
        start = partner_opens()
        try:
            while partner_opens() == start:
                await self._wait(pipe.wait)
        except BaseException:
            ep.close()
            raise

    async def _open_special(self, apath: str, attr: Attr, flags: int, keep: int) -> OpenFileDescription:
        """Device nodes: only the kernel's devfs serves devices; a node made with mknod in a
        store is inert (ENXIO), like a device file on a ``nodev`` mount."""
        fs = self._fs
        owner, local = fs.fs_of(attr.ino)
        device_for = getattr(owner, "device_for", None)  # only devfs has devices
        name = device_for(local) if device_for is not None else None
        if name is None:
            raise KernelError("ENXIO", f"no such device or address: {apath}")
        kernel = self.kernel
        if name == "ptmx":
            pty = kernel.ptys.open_pty()
            return OpenFileDescription("pty", "/dev/ptmx", keep, endpoint=PtyMasterEnd(pty),
                                       object_id=pty.index, ino=attr.ino)
        if name.startswith("pts/") or name == "tty":
            if name == "tty":
                tty = self.proc.tty
                if tty is None:
                    raise KernelError("ENXIO", "no controlling terminal")
                index = int(tty.rsplit("/", 1)[1])
            else:
                index = int(name[4:])
            pty = kernel.ptys.get(index)
            if pty is None or pty.masters == 0:
                raise KernelError("EIO", f"terminal is gone: {apath}")
            self._maybe_acquire_ctty(pty, flags)
            return OpenFileDescription("pty", pty.path, keep, endpoint=PtySlaveEnd(pty),
                                       object_id=pty.index, ino=attr.ino)
        fh = await fs.open(attr.ino, flags & ~O_CLOEXEC, self._caller)
        return OpenFileDescription("device", apath, keep, fs=fs, fh=fh, ino=attr.ino)

    def _maybe_acquire_ctty(self, pty: "Pty", flags: int) -> None:
        """A session leader without a terminal that opens a PTY slave acquires it (no O_NOCTTY)."""
        p = self.proc
        if p.sid == p.pid and p.tty is None and pty.sid == 0 and not flags & getattr(os, "O_NOCTTY", 0):
            pty.sid = p.sid
            pty.fg_pgid = p.pgid
            p.tty = pty.path

    async def close(self, fd: int) -> None:
        await self._enter()
        ofd = self.fds.remove(fd)
        if ofd.refs == 0:
            await ofd.release()

    async def _drop(self, ofd: OpenFileDescription | None) -> None:
        if ofd is not None and ofd.refs == 0:
            await ofd.release()

    # ---------------------------------------------------------------- read / write
    async def read(self, fd: int, n: int = 65536) -> bytes:
        """Up to *n* bytes; ``b""`` at end of file."""
        p = self.proc
        if p.state == "T" or p.sig.pending:
            await self._signals()
        self._slice -= 1
        if not self._slice:
            await self._preempt()
        ofd = self.fds.get(fd)
        if n < 0:
            raise KernelError("EINVAL", "negative read size")
        ep = ofd.endpoint
        if ep is not None:
            if not ofd.readable:
                raise KernelError("EBADF", f"fd {fd} is not open for reading")
            if ep.kind == "pty" and not ep.is_master:
                await self._job_control(ep.pty, S.SIGTTIN)
            try_read = ep.try_read
            while True:
                data = try_read(n)
                if data is not None:
                    return data
                if ofd.flags & O_NONBLOCK:
                    raise KernelError("EAGAIN", "resource temporarily unavailable")
                await self._wait(ep.waitable.wait)
        if ofd.kind == "dir":
            raise KernelError("EISDIR", "is a directory")
        if not ofd.readable:
            raise KernelError("EBADF", f"fd {fd} is not open for reading")
        data = await ofd.fs.read(ofd.fh, ofd.pos, n)
        ofd.pos += len(data)
        return data

    async def write(self, fd: int, data: bytes | bytearray | memoryview | str) -> int:
        """Write *data*; returns the count (a pipe write interrupted by a signal may be short)."""
        p = self.proc
        if p.state == "T" or p.sig.pending:
            await self._signals()
        self._slice -= 1
        if not self._slice:
            await self._preempt()
        ofd = self.fds.get(fd)
        if isinstance(data, str):
            data = data.encode()
        if not ofd.writable:
            raise KernelError("EBADF", f"fd {fd} is not open for writing")
        ep = ofd.endpoint
        if ep is not None:
            if ep.kind == "pty" and not ep.is_master and ep.pty.termios.tostop:
                await self._job_control(ep.pty, S.SIGTTOU)
            return await self._write_stream(ofd, ep, data)
        if ofd.kind == "dir":
            raise KernelError("EISDIR", "is a directory")
        fs = ofd.fs
        total = len(data)
        if not total:
            return 0  # Linux returns before O_APPEND moves the offset
        if type(data) is not bytes:
            data = bytes(data)  # the inode level takes bytes; the caller may reuse its buffer
        if ofd.flags & O_APPEND:
            ofd.pos = (await fs.getattr(ofd.ino)).size
        done = await fs.write(ofd.fh, ofd.pos, data)
        while done < total:
            k = await fs.write(ofd.fh, ofd.pos + done, data[done:])
            if k <= 0:
                break
            done += k
        ofd.pos += done
        return done

    async def _write_stream(self, ofd: OpenFileDescription, ep: Any, data) -> int:
        total = len(data)
        done = 0
        view = None
        try_write = ep.try_write
        while True:
            try:
                k = try_write(data if done == 0 else view[done:])
            except KernelError as e:
                if e.code == "EPIPE":
                    self._table.send(self.proc, S.SIGPIPE)
                    if done:
                        return done
                    await self._enter()  # a default SIGPIPE ends the process here
                raise
            if k is not None:
                done += k
                if done >= total:
                    return done
                if view is None:
                    view = memoryview(data)
                continue
            if ofd.flags & O_NONBLOCK:
                if done:
                    return done
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            try:
                await self._wait(ofd.endpoint.waitable.wait)
            except KernelError as e:
                if e.code == "EINTR" and done:
                    return done
                raise

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

    async def write_all(self, fd: int, data: bytes | bytearray | memoryview | str) -> int:
        """Write everything (loops over short writes)."""
        if isinstance(data, str):
            data = data.encode()
        total = len(data)
        done = await self.write(fd, data)
        view = memoryview(data)
        while done < total:
            done += await self.write(fd, view[done:])
        return total

    async def read_all(self, fd: int, chunk: int = 65536) -> bytes:
        """Read until end of file."""
        parts = []
        while True:
            data = await self.read(fd, chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)

    async def pread(self, fd: int, n: int, offset: int) -> bytes:
        ofd = await self._positional(fd, offset, writing=False)
        return await ofd.fs.read(ofd.fh, offset, n)

    async def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        """Positional write; like Linux, O_APPEND makes it append anyway."""
        ofd = await self._positional(fd, offset, writing=True)
        if ofd.flags & O_APPEND:
            offset = (await ofd.fs.getattr(ofd.ino)).size
        return await ofd.fs.write(ofd.fh, offset, bytes(data) if not isinstance(data, bytes) else data)

    async def _positional(self, fd: int, offset: int, *, writing: bool) -> OpenFileDescription:
        """The checks pread and pwrite share, in Linux's order."""
        await self._enter()
        if offset < 0:
            raise KernelError("EINVAL", "negative offset")
        ofd = self._seekable(fd)
        if not (ofd.writable if writing else ofd.readable):
            raise KernelError("EBADF", f"fd {fd} is not open for {'writing' if writing else 'reading'}")
        if ofd.kind == "dir":
            raise KernelError("EISDIR", "is a directory")
        return ofd

    def _seekable(self, fd: int) -> OpenFileDescription:
        ofd = self.fds.get(fd)
        if ofd.endpoint is not None:
            raise KernelError("ESPIPE", "illegal seek")
        return ofd

    async def lseek(self, fd: int, offset: int, whence: int = SEEK_SET) -> int:
        await self._enter()
        ofd = self._seekable(fd)
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = ofd.pos + offset
        elif whence in (SEEK_END, SEEK_DATA, SEEK_HOLE):
            if ofd.kind == "dir":
                raise KernelError("EINVAL", "invalid whence for a directory")
            size = (await ofd.fs.getattr(ofd.ino)).size
            if whence == SEEK_END:
                new = size + offset
            else:
                if offset < 0 or offset >= size:
                    raise KernelError("ENXIO", "offset beyond end of file")
                new = offset if whence == SEEK_DATA else size
        else:
            raise KernelError("EINVAL", f"invalid whence {whence}")
        if new < 0:
            raise KernelError("EINVAL", "negative resulting offset")
        if ofd.kind == "dir":
            ofd.dir_cache = None
            ofd.dir_eof = False
        ofd.pos = new
        return new

    async def ftruncate(self, fd: int, length: int) -> None:
        await self._enter()
        if length < 0:
            raise KernelError("EINVAL", "negative length")
        ofd = self.fds.get(fd)
        if ofd.kind != "file" or not ofd.writable:
            raise KernelError("EINVAL", "fd is not a regular file open for writing")  # as Linux
        await ofd.fs.setattr(ofd.ino, SetAttr(size=length), self._caller)

    async def fsync(self, fd: int) -> None:
        await self._enter()
        ofd = self.fds.get(fd)
        if ofd.fh is None:
            raise KernelError("EINVAL", "fd does not support fsync")
        if ofd.kind == "dir":
            await ofd.fs.fsyncdir(ofd.fh)
        else:
            await ofd.fs.fsync(ofd.fh)

    async def fstat(self, fd: int) -> Attr:
        await self._enter()
        ofd = self.fds.get(fd)
        ep = ofd.endpoint
        if ep is not None and (ofd.fs is None or not ofd.ino):
            return self._synthetic_attr(ep)
        return await ofd.fs.getattr(ofd.ino)

    def _synthetic_attr(self, ep: Any) -> Attr:
        p = self.proc
        now = self._table.boot_time_ns
        rdev = 0
        if ep.kind == "pty":
            rdev = os.makedev(*PTMX_RDEV) if ep.is_master else os.makedev(PTS_MAJOR, ep.object_id)
        return Attr(ino=ep.object_id, mode=ep.mode, nlink=1, uid=p.uid, gid=p.gid, size=0,
                    atime_ns=now, mtime_ns=now, ctime_ns=now, rdev=rdev, blksize=4096)

    async def getdents(self, fd: int, count: int = 1024) -> list[Dirent]:
        """Next directory entries (``.`` and ``..`` are not included); ``[]`` at the end."""
        await self._enter()
        ofd = self.fds.get(fd)
        if ofd.kind != "dir":
            raise KernelError("ENOTDIR", "not a directory")
        out: list[Dirent] = []
        while len(out) < count:
            if not ofd.dir_cache:
                if ofd.dir_eof:
                    break
                batch = await ofd.fs.readdir(ofd.fh, ofd.pos)
                if not batch:
                    ofd.dir_eof = True
                    break
                ofd.dir_cache = batch
            entry = ofd.dir_cache.pop(0)
            ofd.pos = entry.offset
            name = os.fsdecode(entry.name)
            if name in (".", ".."):
                continue
            out.append(Dirent(name, entry.attr.ino, _DT.get(entry.attr.mode & 0o170000, DT_UNKNOWN),
                              entry.offset))
        return out

    async def listdir(self, path: str = ".") -> list[str]:
        """All names in a directory (open + getdents + close)."""
        fd = await self.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try:
            self._check("readdir", self._abs(path))
            names: list[str] = []
            while True:
                batch = await self.getdents(fd)
                if not batch:
                    return names
                names.extend(d.name for d in batch)
        finally:
            await self.close(fd)

    # ---------------------------------------------------------------- dup / fcntl
    async def dup(self, fd: int) -> int:
        await self._enter()
        ofd = self.fds.get(fd)
        return self.fds.install(ofd)

    async def dup2(self, oldfd: int, newfd: int) -> int:
        await self._enter()
        ofd = self.fds.get(oldfd)
        if oldfd == newfd:
            return newfd
        await self._drop(self.fds.install_at(newfd, ofd))
        return newfd

    async def dup3(self, oldfd: int, newfd: int, flags: int = 0) -> int:
        await self._enter()
        if oldfd == newfd:
            raise KernelError("EINVAL", "dup3 with equal fds")
        if flags & ~O_CLOEXEC:
            raise KernelError("EINVAL", "invalid dup3 flags")
        ofd = self.fds.get(oldfd)
        await self._drop(self.fds.install_at(newfd, ofd, cloexec=bool(flags & O_CLOEXEC)))
        return newfd

    async def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        await self._enter()
        ofd = self.fds.get(fd)
        if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
            return self.fds.install(ofd, cloexec=cmd == F_DUPFD_CLOEXEC, min_fd=arg)
        if cmd == F_GETFD:
            return FD_CLOEXEC if self.fds.get_cloexec(fd) else 0
        if cmd == F_SETFD:
            self.fds.set_cloexec(fd, bool(arg & FD_CLOEXEC))
            return 0
        if cmd == F_GETFL:
            return ofd.flags
        if cmd == F_SETFL:
            ofd.flags = (ofd.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
            return 0
        raise KernelError("EINVAL", f"unsupported fcntl command {cmd}")

    # ---------------------------------------------------------------- pipes, poll, flock
    async def pipe(self, flags: int = 0) -> tuple[int, int]:
        """pipe2(2): (read fd, write fd); flags may hold O_CLOEXEC and O_NONBLOCK."""
        await self._enter()
        if flags & ~(O_CLOEXEC | O_NONBLOCK):
            raise KernelError("EINVAL", "invalid pipe flags")
        self.fds.reserve(2)
        pipe = Pipe(self.kernel.limits.pipe_buffer)
        nb = flags & O_NONBLOCK
        cloexec = bool(flags & O_CLOEXEC)
        r = OpenFileDescription("pipe", None, O_RDONLY | nb, object_id=pipe.object_id,
                                endpoint=PipeReadEnd(pipe))
        w = OpenFileDescription("pipe", None, O_WRONLY | nb, object_id=pipe.object_id,
                                endpoint=PipeWriteEnd(pipe))
        return self.fds.install(r, cloexec), self.fds.install(w, cloexec)

    async def poll(self, fds: Iterable[tuple[int, int]], timeout: float | None = None) -> list[tuple[int, int]]:
        """poll(2): [(fd, events)] -> [(fd, revents)] for fds with something to report.

        *timeout* in seconds; None waits forever, 0 only checks.  Regular files are
        always ready; POLLHUP/POLLERR/POLLNVAL are reported even if not asked for.
        """
        await self._enter()
        wanted = list(fds)
        deadline = None if timeout is None or timeout < 0 else trio.current_time() + timeout
        while True:
            ready = []
            waitables = []
            for fd, events in wanted:
                ofd = self.fds.lookup(fd)
                if ofd is None:
                    if fd >= 0:
                        ready.append((fd, POLLNVAL))
                    continue
                ep = ofd.endpoint
                if ep is None:
                    mask = POLLIN | POLLOUT
                else:
                    mask = ep.poll()
                    waitables.append(ep.waitable)
                revents = mask & (events | POLLHUP | POLLERR)
                if revents:
                    ready.append((fd, revents))
            if ready or (deadline is not None and trio.current_time() >= deadline):
                return ready
            ev = trio.Event()
            for w in waitables:
                w.watchers.add(ev)
            try:
                if deadline is None:
                    await self._wait(ev.wait, restartable=False)
                else:
                    await self._wait(_wait_until, ev, deadline, restartable=False)
            finally:
                for w in waitables:
                    w.watchers.discard(ev)

    async def flock(self, fd: int, op: int) -> None:
        """flock(2) on the open file description behind *fd* (EAGAIN with LOCK_NB on conflict)."""
        await self._enter()
        ofd = self.fds.get(fd)
        key = ofd.ino if ofd.endpoint is None else -ofd.object_id
        table = self.kernel.flocks
        if op & LOCK_UN:
            table.unlock(key, ofd.id)
            return
        ofd.locks = table

        async def wait(ev: trio.Event) -> None:
            await self._wait(ev.wait)

        await table.lock(key, ofd.id, op, wait=wait)

    # ---------------------------------------------------------------- path syscalls
    async def stat(self, path: str) -> Attr:
        apath = await self._enter_path("stat", path)
        return (await self._vfs.resolve(apath, follow=True))[1]

    async def lstat(self, path: str) -> Attr:
        apath = await self._enter_path("stat", path)
        return (await self._vfs.resolve(apath, follow=False))[1]

    async def access(self, path: str, mode: int = F_OK) -> None:
        """EACCES/ENOENT unless the caller may access *path* with *mode* (R_OK|W_OK|X_OK)."""
        attr = await self.stat(path)
        p = self.proc
        if p.uid == 0:
            if mode & X_OK and not attr.is_dir and not attr.mode & 0o111:
                raise KernelError("EACCES", f"permission denied: {path}")
            return
        bits = attr.mode >> 6 if attr.uid == p.uid else (attr.mode >> 3 if self._caller.in_group(attr.gid) else attr.mode)
        if mode & ~bits & 7:
            raise KernelError("EACCES", f"permission denied: {path}")

    async def mkdir(self, path: str, mode: int = 0o777) -> None:
        apath = await self._enter_path("mkdir", path)
        parent, name = await self._vfs.resolve_parent(apath)
        await self._fs.mkdir(parent, name, _stat.S_IFDIR | (mode & 0o7777 & ~self.proc.umask), self._caller)

    async def mknod(self, path: str, mode: int, dev: int = 0) -> None:
        """mknod(2): FIFOs work (named pipes); device nodes can be made but open with ENXIO."""
        apath = await self._enter_path("write", path)
        kind = mode & 0o170000 or _stat.S_IFREG
        if kind not in (_stat.S_IFREG, _stat.S_IFIFO, _stat.S_IFCHR, _stat.S_IFBLK, _stat.S_IFSOCK):
            raise KernelError("EINVAL", "invalid file type for mknod")
        parent, name = await self._vfs.resolve_parent(apath)
        await self._fs.mknod(parent, name, kind | (mode & 0o7777 & ~self.proc.umask), dev, self._caller)

    async def mkfifo(self, path: str, mode: int = 0o666) -> None:
        await self.mknod(path, _stat.S_IFIFO | (mode & 0o7777))

    async def rmdir(self, path: str) -> None:
        apath = await self._enter_path("rm", path)
        await self._vfs.remove_dir(apath)

    async def unlink(self, path: str) -> None:
        apath = await self._enter_path("rm", path)
        await self._vfs.remove_file(apath)

    async def rename(self, old: str, new: str, flags: int = 0) -> None:
        await self._enter()
        a, b = self._abs(old), self._abs(new)
        self._check("rename", a)
        self._check("rename", b)
        await self._vfs.rename(a, b, flags)

    async def symlink(self, target: str, path: str) -> None:
        apath = await self._enter_path("symlink", path)
        await self._vfs.symlink(target, apath)

    async def readlink(self, path: str) -> str:
        apath = await self._enter_path("readlink", path)
        target = await self._vfs.readlink(apath)
        return os.fsdecode(target)

    async def link(self, old: str, new: str) -> None:
        await self._enter()
        a, b = self._abs(old), self._abs(new)
        self._check("link", b)
        await self._vfs.link(a, b)

    async def chmod(self, path: str, mode: int) -> None:
        apath = await self._enter_path("chmod", path)
        await self._vfs.chmod(apath, mode)

    async def chown(self, path: str, uid: int, gid: int) -> None:
        apath = await self._enter_path("chown", path)
        await self._vfs.chown(apath, uid, gid)

    async def truncate(self, path: str, length: int) -> None:
        apath = await self._enter_path("truncate", path)
        await self._vfs.truncate(apath, length)

    async def utimes(self, path: str, atime_s: float | None, mtime_s: float | None) -> None:
        apath = await self._enter_path("utimes", path)
        await self._vfs.utimes(apath, atime_s, mtime_s)

    async def realpath(self, path: str) -> str:
        apath = await self._enter_path("read", path)
        return os.fsdecode(await self._vfs.realpath(apath))

    async def chdir(self, path: str) -> None:
        apath = await self._enter_path("stat", path)
        _, attr = await self._vfs.resolve(apath, follow=True)
        if not attr.is_dir:
            raise KernelError("ENOTDIR", f"not a directory: {path}")
        new = os.fsdecode(await self._vfs.realpath(apath))
        self.proc.cwd = new
        self.proc.env["PWD"] = new

    def getcwd(self) -> str:
        return self.proc.cwd

    # ---------------------------------------------------------------- processes
    async def spawn(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                    stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
                    fds: dict[int, int] | None = None, close_fds: bool = False,
                    pgid: int | None = None, setsid: bool = False) -> int:
        """posix_spawn: run program ``argv[0]`` as a child; returns its pid.

        The child inherits every fd not marked close-on-exec (only 0-2 and *fds* with
        *close_fds*); ``stdin``/``stdout``/``stderr`` and ``fds={child_fd: parent_fd}``
        place parent fds in the child.  ``pgid=0`` puts the child in a new group of its
        own, ``pgid=N`` into group N; ``setsid`` makes it a session leader.
        """
        await self._enter()
        mapping = dict(fds or {})
        for child_fd, parent_fd in ((0, stdin), (1, stdout), (2, stderr)):
            if parent_fd is not None:
                mapping[child_fd] = parent_fd
        proc = self.kernel.spawn_process(
            argv, parent=self.proc, env=dict(self.proc.env) if env is None else env,
            cwd=self._abs(cwd) if cwd is not None else self.proc.cwd,
            fd_map=mapping, close_fds=close_fds, pgid=pgid, setsid=setsid)
        return proc.pid

    async def waitpid(self, pid: int = -1, options: int = 0) -> tuple[int, int]:
        """(pid, wait status); (0, 0) with WNOHANG when nothing changed; ECHILD without children."""
        await self._enter()
        table = self._table
        p = self.proc
        while True:
            res = table.try_wait(p, pid, options)
            if res is not None:
                return res
            if options & WNOHANG:
                return 0, 0
            await self._wait(p.wait_lot.park)

    async def execve(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Replace this process's program (same pid, fds minus close-on-exec, caught signals
        reset to default); only returns by raising (ENOENT, EACCES) when *argv* cannot run."""
        await self._enter()
        if not argv:
            raise KernelError("EINVAL", "empty argv")
        exe, program = self.kernel.programs.resolve(argv[0])
        self._perm.check_spawn(argv[0], tuple(argv[1:]), self.proc.cwd)
        raise ExecImage(exe, program, list(argv), dict(self.proc.env if env is None else env))

    def gethostname(self) -> str:
        return self.kernel.hostname

    async def sethostname(self, name: str) -> None:
        if self.proc.uid != 0:
            raise KernelError("EPERM", "only root may set the hostname")
        if not name or len(name.encode()) > 64:
            raise KernelError("EINVAL", "invalid hostname")
        self.kernel.set_hostname(name)

    async def alarm(self, seconds: float) -> int:
        """alarm(2): SIGALRM after *seconds* (0 cancels); returns the old alarm's seconds left."""
        return self.kernel.set_alarm(self.proc, seconds)

    async def wait(self) -> tuple[int, int]:
        return await self.waitpid(-1, 0)

    def exit(self, code: int = 0) -> None:
        """End the process with *code* (raises ProcessExit, which the kernel catches)."""
        raise ProcessExit(code & 0xFF)

    async def kill(self, pid: int, sig: int = S.SIGTERM) -> None:
        self._table.kill(self.proc, pid, sig)
        if self.proc.sig.pending or self.proc.state == "T" or self.proc.term_signal:
            await self._enter()
            if self.proc.term_signal:
                await trio.lowlevel.checkpoint()

    async def setpgid(self, pid: int = 0, pgid: int = 0) -> None:
        self._table.setpgid(self.proc, pid, pgid)

    async def setsid(self) -> int:
        return self._table.setsid(self.proc)

    async def sleep(self, seconds: float) -> None:
        """nanosleep: EINTR when a handled signal arrives (never restarted)."""
        await self._enter()
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            await self._wait(trio.sleep_until, deadline, restartable=False)

    async def pause(self) -> None:
        """Sleep until a signal handler runs; always ends with EINTR (or termination)."""
        await self._enter()
        while True:
            await self._wait(trio.sleep_forever, restartable=False)

    async def sched_yield(self) -> None:
        await self._enter()
        await trio.lowlevel.checkpoint()

    # ---------------------------------------------------------------- signals
    async def signal(self, sig: int, handler: S.Handler, flags: int = S.SA_RESTART) -> S.Handler:
        """Install *handler* (callable ``handler(sig)``, sync or async, or SIG_DFL/SIG_IGN)."""
        old = self._table.sigaction(self.proc, sig, S.SigAction(handler, frozenset(), flags))
        return old.handler

    async def sigaction(self, sig: int, action: S.SigAction | None = None) -> S.SigAction:
        return self._table.sigaction(self.proc, sig, action)

    async def sigprocmask(self, how: int, sigs: Iterable[int] | None = None) -> set[int]:
        old = self._table.sigprocmask(self.proc, how, set(sigs) if sigs is not None else None)
        await self._enter()  # newly unblocked pending signals are delivered now
        return old

    def sigpending(self) -> set[int]:
        return set(self.proc.sig.pending)

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


async def _wait_until(ev: trio.Event, deadline: float) -> None:
    with trio.move_on_at(deadline):
        await ev.wait()
