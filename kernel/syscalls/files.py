"""File-descriptor calls: open/close, read/write, seek, stat, directories, dup, fcntl, pipes, poll, flock."""

from __future__ import annotations

import os
import stat as _stat
from typing import TYPE_CHECKING, Any, Iterable

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import (
    O_ACCMODE,
    O_APPEND,
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    SETFL_MASK,
    OpenFileDescription,
    PipeBothEnds,
    PipeReadEnd,
    PipeWriteEnd,
    PtyMasterEnd,
    PtySlaveEnd,
)
from kernel.flock import LOCK_UN
from kernel.fs import Attr, SetAttr
from kernel.pathvfs import seconds_ns
from kernel.pipes import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, Pipe
from kernel.procfs import fd_reference
from kernel.pty import PTMX_RDEV, PTS_MAJOR

if TYPE_CHECKING:
    from kernel.pty import Pty

from kernel.syscalls._base import (
    _DT,
    _OPEN_ONLY,
    DT_UNKNOWN,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOFOLLOW,
    O_TRUNC,
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
    CtxBase,
    Dirent,
    _wait_until,
)


class FileCalls(CtxBase):
    """file system calls (mixed into ``Ctx``)."""

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
            create_mode = _stat.S_IFREG | (mode & 0o7777 & ~self.proc.umask)
            create_error: KernelError | None = None
            if flags & O_EXCL:
                # The name must be new: try creating it first (one call instead of a lookup
                # that fails and a create; tar x and `set -C` open this way).  Only on
                # failure is the name looked up, so the error is the one Linux gives.
                try:
                    fh, created = await fs.create(parent, name, create_mode, flags & ~O_CLOEXEC, caller)
                    return OpenFileDescription("file", apath, keep, fs=fs, fh=fh, ino=created.ino)
                except KernelError as e:
                    create_error = e
            try:
                attr = await fs.lookup(parent, name, caller)
            except KernelError as e:
                if e.code != "ENOENT":
                    raise
                if create_error is not None:
                    raise create_error from None
                fh, created = await fs.create(parent, name, create_mode, flags & ~O_CLOEXEC, caller)
                return OpenFileDescription("file", apath, keep, fs=fs, fh=fh, ino=created.ino)
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
            term = kernel.ptys.get(index)
            if term is None or term.masters == 0:
                raise KernelError("EIO", f"terminal is gone: {apath}")
            self._maybe_acquire_ctty(term, flags)
            return OpenFileDescription("pty", term.path, keep, endpoint=PtySlaveEnd(term),
                                       object_id=term.index, ino=attr.ino)
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
        await self._enter()
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
        fs, fh = ofd.handle()
        data = await fs.read(fh, ofd.pos, n)
        ofd.pos += len(data)
        return data

    async def write(self, fd: int, data: bytes | bytearray | memoryview | str) -> int:
        """Write *data*; returns the count (a pipe write interrupted by a signal may be short)."""
        await self._enter()
        ofd = self.fds.get(fd)
        if isinstance(data, str):
            data = data.encode()
        if not ofd.writable:
            raise KernelError("EBADF", f"fd {fd} is not open for writing")
        ep = ofd.endpoint
        if ep is not None:
            if ep.kind == "pty" and not ep.is_master and ep.pty.termios.tostop:
                await self._job_control(ep.pty, S.SIGTTOU)
            if self._watched:
                self._charge_write(ofd, len(data), None)
            return await self._write_stream(ofd, ep, data)
        if ofd.kind == "dir":
            raise KernelError("EISDIR", "is a directory")
        fs = ofd.mounted()
        total = len(data)
        if not total:
            return 0  # Linux returns before O_APPEND moves the offset
        if type(data) is not bytes:
            data = bytes(data)  # the inode level takes bytes; the caller may reuse its buffer
        if ofd.flags & O_APPEND:
            ofd.pos = (await fs.getattr(ofd.ino)).size
        self._charge_write(ofd, total, ofd.pos + total)
        done = await fs.write(ofd.handle()[1], ofd.pos, data)
        while done < total:
            k = await fs.write(ofd.handle()[1], ofd.pos + done, data[done:])
            if k <= 0:
                break
            done += k
        ofd.pos += done
        return done

    async def _write_stream(self, ofd: OpenFileDescription, ep: Any, data) -> int:
        total = len(data)
        done = 0
        view: memoryview | None = None
        try_write = ep.try_write
        while True:
            try:
                k = try_write(data if done == 0 or view is None else view[done:])  # view is set once done > 0
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
        parts: list[bytes] = []
        while True:
            data = await self.read(fd, chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)

    async def pread(self, fd: int, n: int, offset: int) -> bytes:
        ofd = await self._positional(fd, offset, writing=False)
        fs, fh = ofd.handle()
        return await fs.read(fh, offset, n)

    async def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        """Positional write; like Linux, O_APPEND makes it append anyway."""
        ofd = await self._positional(fd, offset, writing=True)
        fs = ofd.mounted()
        if ofd.flags & O_APPEND:
            offset = (await fs.getattr(ofd.ino)).size
        self._charge_write(ofd, len(data), offset + len(data))
        return await fs.write(ofd.handle()[1], offset, bytes(data) if not isinstance(data, bytes) else data)

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
            size = (await ofd.mounted().getattr(ofd.ino)).size
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
        await ofd.mounted().setattr(ofd.ino, SetAttr(size=length), self._caller)

    async def futimes(self, fd: int, atime_s: float | None, mtime_s: float | None) -> None:
        """futimens(2) in (fractional) seconds, None meaning now, on an open file: no path is
        walked (``tar x`` sets a member's times so before closing it)."""
        await self._enter()
        ofd = self.fds.get(fd)
        if ofd.fs is None or not ofd.ino:
            raise KernelError("EINVAL", "fd is not a file")
        await ofd.mounted().setattr(ofd.ino, SetAttr(atime_ns=seconds_ns(atime_s), mtime_ns=seconds_ns(mtime_s)),
                                         self._caller)

    async def fsync(self, fd: int) -> None:
        await self._enter()
        ofd = self.fds.get(fd)
        if ofd.fh is None:
            raise KernelError("EINVAL", "fd does not support fsync")
        fs, fh = ofd.handle()
        if ofd.kind == "dir":
            await fs.fsyncdir(fh)
        else:
            await fs.fsync(fh)

    async def fstat(self, fd: int) -> Attr:
        await self._enter()
        ofd = self.fds.get(fd)
        ep = ofd.endpoint
        if ep is not None and (ofd.fs is None or not ofd.ino):
            return self._synthetic_attr(ep)
        return await ofd.mounted().getattr(ofd.ino)

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
                fs, fh = ofd.handle()
                batch = await fs.readdir(fh, ofd.pos)
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

