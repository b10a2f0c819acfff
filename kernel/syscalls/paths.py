"""Calls on paths: stat, access, mkdir, unlink, rename, links, modes, owners, times, cwd."""

from __future__ import annotations

import os
import stat as _stat

from kernel.errors import KernelError
from kernel.fs import Attr, StatFs, may_access
from kernel.syscalls._base import (
    F_OK,
    CtxBase,
)


class PathCalls(CtxBase):
    """path system calls (mixed into ``Ctx``)."""

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
        if not may_access(self._caller, attr.mode, attr.uid, attr.gid, mode & 7):
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

    async def statfs(self, path: str) -> StatFs:
        """statfs(2): the figures of the filesystem (mount) that *path* lives on."""
        apath = await self._enter_path("stat", path)
        ino, _ = await self._vfs.resolve(apath, follow=True)
        owner, _ = self._fs.fs_of(ino)
        return await owner.statfs()
