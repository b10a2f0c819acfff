"""pyfuse3 operations over any inode-level ``FileSystem`` (ChunkedVFS or the kernel's mount table).

The adapter is deliberately thin: the Linux kernel already walks paths, checks
permissions (``default_permissions``) and caches entries and attributes; the
filesystem below owns the semantics.  What lives here is only what FUSE itself
requires:

* lookup counting (``forget``): the filesystem sees ``retain`` on 0 -> 1 and
  ``forget`` on -> 0, so open-but-unlinked inodes live exactly as long as the
  host kernel can still name them;
* the translation of errors (``KernelError`` -> errno; anything else is logged and
  becomes EIO so one bug never takes the daemon down);
* the request context -> ``Caller`` (host pids never reach the sandbox: pid 0);
* page-cache policy (``keep_cache`` for files unchanged since the previous open,
  ``direct_io`` for files whose size is not known in advance, e.g. procfs).

Hot paths (lookup, getattr, read, write) avoid helper layers: each is one
``try`` around one awaited call.
"""

from __future__ import annotations

import contextvars
import errno
import logging
import os
import stat as _stat
import time
from typing import Any, Callable

import pyfuse3
import trio
from pyfuse3 import FUSEError

from kernel.errors import KernelError, unwrap_group
from kernel.fs import (
    ROOT_CALLER,
    ROOT_INO,
    UTIME_NOW,
    Attr,
    Caller,
    FileSystem,
    SetAttr,
    may_access,
)
from kernel.mounts import ROOT_MOUNT_SPAN
from kernel.readonly import MUTATING_OPS, STORE_MUTATING_OPS, opens_for_writing, refusal

log = logging.getLogger("vfsfuse.fuse")

_EntryAttributes = pyfuse3.EntryAttributes
_FileInfo = pyfuse3.FileInfo
_readdir_reply = pyfuse3.readdir_reply

_PRIV_BITS = _stat.S_ISUID | _stat.S_ISGID
_ACL_PREFIX = b"system.posix_acl_"
# Supplementary groups of a host pid are read from /proc; remember them briefly.
_GROUPS_TTL = 2.0


def _error(exc: BaseException, op: str) -> FUSEError:
    """Turn any exception raised below into the errno the caller sees."""
    if isinstance(exc, BaseExceptionGroup):  # trio nurseries below wrap their errors
        leaf = _first_kernel_error(exc)
        if leaf is not None:
            return FUSEError(leaf.errno)
    if isinstance(exc, KernelError):
        return FUSEError(exc.errno)
    if isinstance(exc, FUSEError):
        return exc
    if isinstance(exc, OSError) and exc.errno:
        log.warning("%s: host error %s", op, exc)
        return FUSEError(exc.errno)
    log.exception("%s: unexpected error, answering EIO", op)
    return FUSEError(errno.EIO)


def _first_kernel_error(group: BaseExceptionGroup) -> KernelError | None:
    found = unwrap_group(group)
    return found if isinstance(found, KernelError) else None


# Cache lifetime of entries and attributes of generated filesystems (/proc, /dev, /.vfs): short
# enough that a dead process's /proc/<pid> or a changed /.vfs file is stale for at most this long,
# long enough that `cat /proc/<pid>/status` in a loop does not pay ~10 FUSE round trips each time.
VOLATILE_TIMEOUT = 0.1


class FuseAdapter(pyfuse3.Operations):
    """Serve ``fs`` (anything implementing ``kernel.fs.FileSystem``) through pyfuse3."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, fs: FileSystem, *, entry_timeout: float = 1.0, attr_timeout: float = 1.0,
                 read_only: bool = False, writeback_cache: bool = False,
                 volatile_timeout: float = VOLATILE_TIMEOUT, root: FileSystem | None = None) -> None:
        """*fs* serves every request; *root*, when given, is the filesystem that *fs* (a mount
        table) mounts at ``/``: inode- and handle-level requests for its inodes (numbered below
        ``ROOT_MOUNT_SPAN`` by the kernel's contract) go to it directly, skipping the mount
        table.  Name operations still go through *fs*, which knows the mount points."""
        super().__init__()
        # Write-back caching: the host kernel gathers small writes in its page cache and
        # owns size/mtime of open files (pyfuse3 reads this attribute at INIT).
        self.enable_writeback_cache = writeback_cache
        # With it the host kernel places O_APPEND writes itself; the filesystem must not.
        self._flag_mask = ~os.O_APPEND if writeback_cache else -1
        if fs.root_ino != ROOT_INO:
            raise ValueError(f"root inode must be {ROOT_INO}, not {fs.root_ino}")
        self.fs = fs
        self._root = root if root is not None else fs
        self._root_read = getattr(self._root, "read_buffer", None) or self._root.read
        # pyfuse3 replies from any buffer: take views of cached blocks where the filesystem offers them.
        self._read = getattr(fs, "read_buffer", None) or fs.read
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout
        self.volatile_timeout = volatile_timeout
        self.read_only = read_only
        if read_only:  # the host's view of the store: every handler that changes it refuses
            for name in MUTATING_OPS:
                setattr(self, name, _refuse_host)
        self.lookups: dict[int, int] = {}  # ino -> lookup count held by the host kernel
        self._opened_version: dict[int, tuple[int, int]] = {}  # ino -> (mtime_ns, size) at last open
        self._dir_ino: dict[int, int] = {}  # dir fh -> ino (for the "." entry)
        self._parent: dict[int, int] = {}  # dir ino -> parent ino, as last seen (for "..")
        self._groups: dict[int, tuple[float, tuple[int, ...]]] = {}
        self._root_caller = Caller(0, 0, 0, 0o022)
        wants = getattr(fs, "wants_direct_io", None)
        if callable(wants) and callable(getattr(fs, "is_volatile", None)):
            table_wants = wants  # the mount table: the root mount (ino < ROOT_MOUNT_SPAN) is a plain store
            wants = lambda ino: ino >= _SPAN and table_wants(ino)  # noqa: E731
        self._wants_direct_io: Callable[[int], bool] | None = wants if callable(wants) else None
        # Inodes of filesystems that change on their own (/proc) get no caching at all.
        vol = getattr(fs, "is_volatile", None)
        if callable(vol):
            # The mount table numbers the root mount's inodes below ROOT_MOUNT_SPAN (kernel
            # contract) and that mount is never volatile: skip the call for them.
            table_vol = vol
            vol = lambda ino: ino >= _SPAN and table_vol(ino)  # noqa: E731
        elif getattr(fs, "volatile", False):
            vol = _always
        else:
            vol = None
        self._volatile: Callable[[int], bool] | None = vol
        # A filesystem whose flush does nothing spares every close() a round trip:
        # answering ENOSYS once makes the host kernel stop sending FLUSH.
        self._flush_needed = bool(getattr(fs, "needs_flush", False))
        self.max_write_seen = 0  # largest write request, for tests of big writes

    # ----------------------------------------------------------------- helpers

    def _entry(self, a: Attr) -> pyfuse3.EntryAttributes:
        e = _EntryAttributes()
        e.st_ino = a.ino
        e.generation = 0
        if self._volatile is not None and self._volatile(a.ino):
            e.entry_timeout = self.volatile_timeout
            e.attr_timeout = self.volatile_timeout
        else:
            e.entry_timeout = self.entry_timeout
            e.attr_timeout = self.attr_timeout
        e.st_mode = a.mode
        e.st_nlink = a.nlink
        e.st_uid = a.uid
        e.st_gid = a.gid
        e.st_rdev = a.rdev
        e.st_size = a.size
        e.st_blksize = a.blksize
        e.st_blocks = a.blocks
        e.st_atime_ns = a.atime_ns
        e.st_mtime_ns = a.mtime_ns
        e.st_ctime_ns = a.ctime_ns
        return e

    def _on(self, ino_or_fh: int) -> FileSystem:
        """Who serves an inode- or handle-level request: the root filesystem directly for its
        own inodes and handles (the mount table numbers the root mount's below ROOT_MOUNT_SPAN)."""
        return self._root if ino_or_fh < _SPAN else self.fs

    def _ref(self, ino: int) -> None:
        """The host kernel now holds one more reference to ``ino``."""
        n = self.lookups.get(ino, 0)
        if not n:
            self._on(ino).retain(ino)
        self.lookups[ino] = n + 1

    def _caller(self, ctx: Any) -> Caller:
        uid = ctx.uid
        if uid == 0 and ctx.gid == 0:
            if ctx.umask == 0o022:
                return self._root_caller
            return Caller(0, 0, 0, ctx.umask)
        return Caller(uid, ctx.gid, 0, ctx.umask, self._sup_groups(ctx.pid) if uid else ())

    def _sup_groups(self, pid: int) -> tuple[int, ...]:
        """Supplementary groups of the host process (the host kernel checked permissions with them)."""
        now = time.monotonic()
        hit = self._groups.get(pid)
        if hit is not None and now - hit[0] < _GROUPS_TTL:
            return hit[1]
        try:
            groups = tuple(sorted(pyfuse3.get_sup_groups(pid))) if pid else ()
        except Exception:  # the process may already be gone
            groups = ()
        if len(self._groups) > 4096:
            self._groups.clear()
        self._groups[pid] = (now, groups)
        return groups

    # ------------------------------------------------------------------ names

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            a = await self.fs.lookup(parent_inode, name, self._caller(ctx))
        except KernelError as exc:
            if exc.errno == errno.ENOENT and self.entry_timeout and not (
                    self._volatile is not None and self._volatile(parent_inode)):
                # A negative entry: the host caches "no such name" like a positive one
                # (git, compilers and shells stat many names that do not exist).
                e = _EntryAttributes()
                e.st_ino = 0
                e.entry_timeout = self.entry_timeout
                return e
            raise FUSEError(exc.errno) from None
        except Exception as exc:
            raise _error(exc, "lookup") from None
        self._ref(a.ino)
        if a.mode & 0o170000 == 0o040000:
            self._parent[a.ino] = parent_inode
        return self._entry(a)

    async def forget(self, inode_list: Any) -> None:
        lookups = self.lookups
        for ino, n in inode_list:
            left = lookups.get(ino, 0) - n
            if left > 0:
                lookups[ino] = left
                continue
            lookups.pop(ino, None)
            self._opened_version.pop(ino, None)
            self._parent.pop(ino, None)
            try:
                await self._on(ino).forget(ino)
            except Exception as exc:  # forget has no reply: log only
                _error(exc, "forget")

    async def forget_all(self) -> None:
        """Drop every reference the (now gone) host kernel held; used at unmount."""
        items = list(self.lookups.items())
        await self.forget(items)

    async def getattr(self, inode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            return self._entry(await self._on(inode).getattr(inode))
        except Exception as exc:
            raise _error(exc, "getattr") from None

    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        ch = SetAttr()
        if fields.update_mode:
            ch.mode = attr.st_mode & 0o7777
        if fields.update_uid:
            ch.uid = attr.st_uid
        if fields.update_gid:
            ch.gid = attr.st_gid
        if fields.update_size:
            ch.size = attr.st_size
        if fields.update_atime:
            ch.atime_ns = attr.st_atime_ns
        if fields.update_mtime:
            ch.mtime_ns = attr.st_mtime_ns
        if fields.update_ctime:
            ch.ctime_ns = attr.st_ctime_ns
            if fields.update_mtime and self.enable_writeback_cache:
                # The host sends ctime only for files whose c/mtime it keeps itself (write-back
                # cache, regular files); the mtime with it is then the host's own record: the
                # flush after a write, a truncate (with a "kill priv" mode when the file had
                # set-user-ID), a rename/link/unlink it permitted (sent with the credentials of
                # whoever did that, e.g. a non-owner in a writable directory), or a utimensat
                # it already judged (default_permissions), with "now" resolved by the host.
                # Judging it as the caller's utimensat made later fsync/syncfs fail (issue 12).
                # A user's atime, if any, is still judged below.
                ch.host_times = True
        if ch.mode is None and ch.uid is None and ch.gid is None and ch.size is None \
                and self._volatile is not None and self._volatile(inode):
            # Only times, on a generated file (/proc, /.vfs/control): with write-back
            # caching the host sends these after every write; they mean nothing here.
            try:
                return self._entry(await self._on(inode).getattr(inode))
            except Exception as exc:
                raise _error(exc, "setattr") from None
        caller = self._caller(ctx)
        try:
            if caller.uid != 0 and _is_empty(ch) and self.enable_writeback_cache:
                return self._entry(await self._kill_sgid(inode, caller))
            if caller.uid != 0 and (ch.mode is not None or ch.atime_ns is not None
                                    or (ch.mtime_ns is not None and not ch.host_times)):
                cur = await self._on(inode).getattr(inode)
                if cur.uid != caller.uid and (ch.atime_ns is not None or ch.mtime_ns is not None):
                    # pyfuse3 hands us UTIME_NOW already resolved to the current time; the
                    # host kernel lets a non-owner set times only that way (it checked
                    # write access), so say so to the filesystem.
                    if ch.atime_ns is not None:
                        ch.atime_ns = UTIME_NOW
                    if ch.mtime_ns is not None and not ch.host_times:
                        ch.mtime_ns = UTIME_NOW
                if ch.mode is not None and cur.mode & _PRIV_BITS \
                        and cur.mode & 0o7777 & ~_PRIV_BITS == ch.mode & ~_PRIV_BITS \
                        and not ch.mode & ~cur.mode & _PRIV_BITS:
                    # The host kernel drops setuid/setgid itself ("kill priv") after a
                    # write or truncate by a non-owner and sends that as a chmod on the
                    # writer's behalf (it has checked the permissions): only that narrow
                    # change runs with authority, the rest of the request with the caller's.
                    a = await self._on(inode).setattr(inode, SetAttr(mode=ch.mode), self._root_caller)
                    ch.mode = None
                    if _is_empty(ch):
                        return self._entry(a)
            a = await self._on(inode).setattr(inode, ch, caller)
        except Exception as exc:
            raise _error(exc, "setattr") from None
        return self._entry(a)

    async def _kill_sgid(self, inode: int, caller: Caller) -> Attr:
        """A SETATTR with no fields from a non-root caller, on a write-back mount, is what is
        left of a write's "kill priv" (file_remove_privs) once the host's FUSE client has
        applied its own, older rule: it clears set-group-ID only with group execute, where
        Linux (6.2+, tmpfs, ext4) also clears it when the writer is not in the file's group.
        Apply that rest with authority, as the mode narrowing below; anything else: no-op."""
        fs = self._on(inode)
        cur = await fs.getattr(inode)
        if cur.is_reg and cur.mode & _stat.S_ISGID and not cur.mode & _stat.S_IXGRP \
                and not caller.in_group(cur.gid):
            return await fs.setattr(inode, SetAttr(mode=cur.mode & 0o7777 & ~_stat.S_ISGID),
                                    self._root_caller)
        return cur

    async def readlink(self, inode: int, ctx: Any) -> bytes:
        try:
            return await self._on(inode).readlink(inode, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "readlink") from None

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            a = await self.fs.mknod(parent_inode, name, mode, rdev, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "mknod") from None
        self._ref(a.ino)
        return self._entry(a)

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            a = await self.fs.mkdir(parent_inode, name, mode, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "mkdir") from None
        self._ref(a.ino)
        self._parent[a.ino] = parent_inode
        return self._entry(a)

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        try:
            await self.fs.unlink(parent_inode, name, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "unlink") from None

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        try:
            await self.fs.rmdir(parent_inode, name, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "rmdir") from None

    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            a = await self.fs.symlink(parent_inode, name, target, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "symlink") from None
        self._ref(a.ino)
        return self._entry(a)

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:
        try:
            await self.fs.rename(parent_inode_old, name_old, parent_inode_new, name_new,
                                 flags, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "rename") from None

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            a = await self.fs.link(inode, new_parent_inode, new_name, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "link") from None
        self._ref(a.ino)
        return self._entry(a)

    # ------------------------------------------------------------------ files

    async def _file_info(self, ino: int, fh: int, attr: Attr | None) -> pyfuse3.FileInfo:
        """Keep the host page cache only when the file is unchanged since it was last opened."""
        if self._wants_direct_io is not None and self._wants_direct_io(ino):
            return _FileInfo(fh=fh, direct_io=True)
        if attr is None:
            attr = await self._on(ino).getattr(ino)
        version = (attr.mtime_ns, attr.size)
        keep = self._opened_version.get(ino) == version
        self._opened_version[ino] = version
        return _FileInfo(fh=fh, keep_cache=keep)

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        if self.read_only and opens_for_writing(flags):
            raise FUSEError(errno.EROFS)
        try:
            fh = await self._on(inode).open(inode, flags & self._flag_mask, self._caller(ctx))
            try:
                return await self._file_info(inode, fh, None)
            except BaseException:
                await self._on(fh).release(fh)
                raise
        except Exception as exc:
            raise _error(exc, "open") from None

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        try:
            fh, a = await self.fs.create(parent_inode, name, mode, flags & self._flag_mask, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "create") from None
        self._ref(a.ino)
        self._opened_version[a.ino] = (a.mtime_ns, a.size)
        if self._wants_direct_io is not None and self._wants_direct_io(a.ino):
            return _FileInfo(fh=fh, direct_io=True), self._entry(a)
        return _FileInfo(fh=fh), self._entry(a)

    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:  # type: ignore[override]
        # pyfuse3's stub says bytes; it sends any buffer, so a cached block goes out uncopied.
        try:
            return await (self._root_read if fh < _SPAN else self._read)(fh, off, size)
        except Exception as exc:
            raise _error(exc, "read") from None

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        n = len(buf)
        if n > self.max_write_seen:
            self.max_write_seen = n
        try:
            return await self._on(fh).write(fh, off, buf)
        except Exception as exc:
            raise _error(exc, "write") from None

    async def flush(self, fh: int) -> None:
        if not self._flush_needed:
            raise FUSEError(errno.ENOSYS)
        try:
            await self._on(fh).flush(fh)
        except Exception as exc:
            raise _error(exc, "flush") from None

    async def release(self, fh: int) -> None:
        try:
            await self._on(fh).release(fh)
        except Exception as exc:
            raise _error(exc, "release") from None

    async def fsync(self, fh: int, datasync: bool) -> None:
        try:
            await self._on(fh).fsync(fh, bool(datasync))
        except Exception as exc:
            raise _error(exc, "fsync") from None

    # ------------------------------------------------------------ directories

    async def opendir(self, inode: int, ctx: Any) -> int:
        try:
            fh = await self.fs.opendir(inode, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "opendir") from None
        self._dir_ino[fh] = inode
        return fh

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        # Cookies: 1 = after ".", 2 = after "..", filesystem cookie c -> c + 2.
        if start_id < 2:
            ino = self._dir_ino.get(fh, ROOT_INO)
            if start_id < 1:
                if not _readdir_reply(token, b".", _dot_entry(ino), 1):
                    return
            if not _readdir_reply(token, b"..", _dot_entry(self._parent.get(ino, ROOT_INO)), 2):
                return
            start = 0
        else:
            start = start_id - 2
        try:
            entries = await self.fs.readdir(fh, start)
        except Exception as exc:
            raise _error(exc, "readdir") from None
        entry = self._entry
        ref = self._ref
        for d in entries:
            a = d.attr
            if not _readdir_reply(token, d.name, entry(a), d.offset + 2):
                return
            ref(a.ino)

    async def releasedir(self, fh: int) -> None:
        self._dir_ino.pop(fh, None)
        try:
            await self.fs.releasedir(fh)
        except Exception as exc:
            raise _error(exc, "releasedir") from None

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        try:
            await self.fs.fsyncdir(fh, bool(datasync))
        except Exception as exc:
            raise _error(exc, "fsyncdir") from None

    # ------------------------------------------------------------------ misc

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        try:
            s = await self.fs.statfs()
        except Exception as exc:
            raise _error(exc, "statfs") from None
        d = pyfuse3.StatvfsData()
        d.f_bsize = s.block_size
        d.f_frsize = s.fragment_size
        d.f_blocks = s.blocks
        d.f_bfree = s.blocks_free
        d.f_bavail = s.blocks_avail
        d.f_files = s.files
        d.f_ffree = s.files_free
        d.f_favail = s.files_free
        d.f_namemax = s.namemax
        return d

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        if name.startswith(_ACL_PREFIX):
            raise FUSEError(errno.EOPNOTSUPP)
        try:
            return await self._on(inode).getxattr(inode, name)
        except Exception as exc:
            raise _error(exc, "getxattr") from None

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        if name.startswith(_ACL_PREFIX):
            # No POSIX ACLs: storing them as opaque bytes would let "cp -a" believe the
            # mode was set through an ACL while the inode keeps its creation mode.
            raise FUSEError(errno.EOPNOTSUPP)
        try:
            await self._on(inode).setxattr(inode, name, value, 0, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "setxattr") from None

    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        try:
            return await self._on(inode).listxattr(inode)
        except Exception as exc:
            raise _error(exc, "listxattr") from None

    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        try:
            await self._on(inode).removexattr(inode, name, self._caller(ctx))
        except Exception as exc:
            raise _error(exc, "removexattr") from None

    async def access(self, inode: int, mode: int, ctx: Any) -> bool:
        """Only reached without ``default_permissions``: the classic owner/group/other check."""
        try:
            a = await self._on(inode).getattr(inode)
        except Exception as exc:
            raise _error(exc, "access") from None
        if mode & os.W_OK and self.read_only:
            return False
        caller = self._caller(ctx)
        return _may(a, caller, mode)


_COUNTED_OPS = ("lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir",
                "symlink", "rename", "link", "open", "create", "read", "write", "flush", "release",
                "fsync", "opendir", "readdir", "releasedir", "fsyncdir", "statfs", "getxattr",
                "setxattr", "listxattr", "removexattr", "access")


def _setattr_fields(fields: Any) -> str:
    """Which attributes a setattr request changes, as letters (``tc``: mtime and ctime)."""
    letters = (("update_mode", "m"), ("update_uid", "u"), ("update_gid", "g"), ("update_size", "s"),
               ("update_atime", "a"), ("update_mtime", "t"), ("update_ctime", "c"))
    return "".join(letter for name, letter in letters if getattr(fields, name, False)) or "-"


def count_requests(adapter: FuseAdapter) -> dict[str, list[float]]:
    """Count FUSE requests and the daemon time spent in each (a debugging aid, off by default).

    Wraps the adapter's handlers on the instance; returns the live table
    ``op -> [requests, seconds, failures]`` (``getxattr:<name>`` per attribute name,
    ``setattr:<letters>`` per set of changed attributes: mode uid gid size atime mtime ctime)."""
    table: dict[str, list[float]] = {}
    clock = time.perf_counter

    def wrap(op: str, fn: Callable) -> Callable:
        async def counted(*args: Any) -> Any:
            key = op
            if op == "getxattr":
                key = "getxattr:" + args[1].decode(errors="replace")
            elif op == "setattr":
                key = "setattr:" + _setattr_fields(args[2])
            row = table.get(key)
            if row is None:
                row = table[key] = [0, 0.0, 0]
            t = clock()
            try:
                return await fn(*args)
            except BaseException:
                row[2] += 1
                raise
            finally:
                row[0] += 1
                row[1] += clock() - t
        return counted

    for op in _COUNTED_OPS:
        setattr(adapter, op, wrap(op, getattr(adapter, op)))
    return table


def _always(ino: int) -> bool:
    return True


def _is_empty(ch: SetAttr) -> bool:
    return ch.mode is None and ch.uid is None and ch.gid is None and ch.size is None \
        and ch.atime_ns is None and ch.mtime_ns is None and ch.ctime_ns is None


def _dot_entry(ino: int) -> pyfuse3.EntryAttributes:
    """Attributes for "." and "..": the kernel uses only the inode number and type."""
    e = _EntryAttributes()
    e.st_ino = ino
    e.st_mode = _stat.S_IFDIR | 0o755
    return e


def _may(a: Attr, caller: Caller, mode: int) -> bool:
    """``access(2)``: the one permission check of ``kernel.fs``."""
    return may_access(caller, a.mode, a.uid, a.gid, mode)


# ------------------------------------------------------------------ host cache coherence

_SPAN = ROOT_MOUNT_SPAN  # inode and handle numbers below this belong to the root mount

FROM_FUSE: contextvars.ContextVar[bool] = contextvars.ContextVar("vfsfuse_from_fuse", default=False)
"""True in the tasks that serve FUSE requests (set once where ``pyfuse3.main`` runs; worker
tasks inherit it), so a filesystem wrapper can tell host requests from sandbox ones for free."""

_PASS_THROUGH = ("lookup", "getattr", "readlink", "read", "flush", "fsync", "opendir", "readdir",
                 "releasedir", "fsyncdir", "statfs", "getxattr", "listxattr", "setxattr", "removexattr",
                 "retain", "forget")


class HostCacheInvalidator:
    """Wraps the store's filesystem so changes made *around* FUSE reach the host's caches.

    Host requests keep the host kernel's caches right by themselves.  Sandbox processes
    running inside the daemon change the same store directly, and the host kernel would
    keep serving old names, attributes and pages (with write-back caching even old sizes,
    forever).  Every such change queues the affected names; a background task drops them
    from the host's dentry cache (so the inode is looked up afresh) and invalidates the
    inode's pages, batched every ``interval`` seconds.  Reads and host requests cost
    nothing extra: their methods are the wrapped filesystem's own bound methods.
    """

    def __init__(self, fs: FileSystem, parents_of: Callable[[int], list[tuple[int, bytes]]],
                 interval: float = 0.05, read_only: bool = False) -> None:
        self._fs = fs
        self.root_ino = fs.root_ino
        self.volatile = getattr(fs, "volatile", False)
        self.fresh_attrs = getattr(fs, "fresh_attrs", False)
        self.wants_direct_io = getattr(fs, "wants_direct_io", None)
        self._parents_of = parents_of
        self.interval = interval
        for name in _PASS_THROUGH:
            setattr(self, name, getattr(fs, name))
        if hasattr(fs, "read_buffer"):
            self.read_buffer = fs.read_buffer
        self._fh_ino: dict[int, int] = {}  # handles opened by the sandbox
        self._entries: set[tuple[int, bytes]] = set()
        self._inodes: set[int] = set()
        self._wakeup = trio.Event()
        self.active = False  # set once the FUSE mount exists
        if read_only:  # --read-only: the sandbox (and the kernel's boot) may not change the store
            for name in STORE_MUTATING_OPS:
                setattr(self, name, _refuse)
            setattr(self, "open", self._open_read_only)  # noqa: B010 - replaces the bound method

    def __getattr__(self, name: str) -> Any:  # stats, gc, chunk_map, versions ...
        return getattr(self._fs, name)

    # -- bookkeeping ---------------------------------------------------------------

    def _entry(self, parent: int, name: bytes) -> None:
        if self.active and not FROM_FUSE.get():
            self._entries.add((parent, name))
            self._wakeup.set()

    def _inode(self, ino: int, always: bool = False) -> None:
        if self.active and (always or not FROM_FUSE.get()):
            self._inodes.add(ino)
            self._wakeup.set()

    async def run(self) -> None:
        """Deliver queued invalidations (runs for the life of the mount)."""
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            await trio.sleep(self.interval)  # coalesce bursts (a process writing a log)
            entries, self._entries = self._entries, set()
            inodes, self._inodes = self._inodes, set()
            for ino in inodes:
                try:
                    entries.update(self._parents_of(ino))
                except Exception:  # the inode may be gone already
                    pass
            for parent, name in entries:
                pyfuse3.invalidate_entry_async(parent, name, ignore_enoent=True)
            if inodes:
                # May wait for the host to write back dirty pages (which it sends to us):
                # never on the event loop.
                await trio.to_thread.run_sync(_invalidate_inodes, list(inodes))

    # -- wrapped operations ------------------------------------------------------------

    async def setattr(self, ino, changes, caller=ROOT_CALLER):
        a = await self._fs.setattr(ino, changes, caller)
        self._inode(ino)
        return a

    async def mknod(self, parent, name, mode, rdev, caller=ROOT_CALLER):
        a = await self._fs.mknod(parent, name, mode, rdev, caller)
        self._entry(parent, name)
        return a

    async def mkdir(self, parent, name, mode, caller=ROOT_CALLER):
        a = await self._fs.mkdir(parent, name, mode, caller)
        self._entry(parent, name)
        return a

    async def symlink(self, parent, name, target, caller=ROOT_CALLER):
        a = await self._fs.symlink(parent, name, target, caller)
        self._entry(parent, name)
        return a

    async def link(self, ino, new_parent, new_name, caller=ROOT_CALLER):
        a = await self._fs.link(ino, new_parent, new_name, caller)
        self._entry(new_parent, new_name)
        self._inode(ino)
        return a

    async def unlink(self, parent, name, caller=ROOT_CALLER):
        await self._fs.unlink(parent, name, caller)
        self._entry(parent, name)

    async def rmdir(self, parent, name, caller=ROOT_CALLER):
        await self._fs.rmdir(parent, name, caller)
        self._entry(parent, name)

    async def rename(self, old_parent, old_name, new_parent, new_name, flags=0, caller=ROOT_CALLER):
        await self._fs.rename(old_parent, old_name, new_parent, new_name, flags, caller)
        self._entry(old_parent, old_name)
        self._entry(new_parent, new_name)

    async def create(self, parent, name, mode, flags, caller=ROOT_CALLER):
        fh, a = await self._fs.create(parent, name, mode, flags, caller)
        if not FROM_FUSE.get():
            self._fh_ino[fh] = a.ino
            self._entry(parent, name)
        return fh, a

    async def open(self, ino, flags, caller=ROOT_CALLER):
        fh = await self._fs.open(ino, flags, caller)
        if not FROM_FUSE.get():
            self._fh_ino[fh] = ino
            if flags & os.O_TRUNC:
                self._inode(ino)
        return fh

    async def write(self, fh, offset, data):
        n = await self._fs.write(fh, offset, data)
        ino = self._fh_ino.get(fh)
        if ino is not None:
            self._inode(ino)
        return n

    async def release(self, fh):
        self._fh_ino.pop(fh, None)
        await self._fs.release(fh)

    async def _open_read_only(self, ino, flags, caller=ROOT_CALLER):
        if opens_for_writing(flags):
            raise refusal()
        return await self._fs.open(ino, flags, caller)

    async def restore_version(self, ino, version):
        """Replaces a file's bytes behind every cache, even when asked through /.vfs/control."""
        await getattr(self._fs, "restore_version")(ino, version)  # noqa: B009 - ChunkedVFS only
        self._inode(ino, always=True)


async def _refuse(*args, **kwargs):
    raise refusal()


async def _refuse_host(*args, **kwargs):
    raise FUSEError(errno.EROFS)


def _invalidate_inodes(inodes: list[int]) -> None:
    for ino in inodes:
        try:
            pyfuse3.invalidate_inode(ino)
        except OSError:  # ENOENT: the host kernel does not know this inode
            pass
