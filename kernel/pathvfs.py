"""The path-level VFS (the seed's ``VirtualFileSystem``), written once over any inode-level
``FileSystem``: ChunkedVFS, devfs, procfs or the kernel's mount table.

Why one implementation: path walking is where the seed's backends disagreed (``.``/``..``,
symlinks, ENOTDIR); doing it once, with Linux's rules, makes every backend behave alike.

The walker resolves an absolute path component by component with ``lookup``:

* ``.`` stays, ``..`` goes to the directory the walk came from (clamped at ``/``);
* symlinks are followed in every intermediate component, and in the last one unless the
  operation works on the link itself (lstat, readlink, unlink, rename, ...); more than 40
  followed links give ELOOP; a relative target is resolved from the link's directory;
* a component that is not a directory gives ENOTDIR, one longer than 255 bytes ENAMETOOLONG,
  a path of 4096 bytes or more ENAMETOOLONG, an empty path ENOENT;
* a trailing ``/`` requires the result to be a directory (following a final symlink);
* relative paths are taken from ``/`` (this layer has no working directory).

Components the walk goes *through* (every one but the last) are looked up with the
filesystem's ``lookup_dir`` where it has one (the mount table's exact directory cache,
kernel/mounts.py), the search permission on their parent checked here; the last
component always gets a real ``lookup``, so what a call returns is never cached.

The checks Linux makes in its own VFS (not in filesystems) are made here, in Linux's order,
because the sandbox kernel reaches filesystems through this layer: search permission while
walking, may_delete for unlink/rmdir/rename (write+search, sticky bit, then types), rename's
ancestry rules, write permission for truncate, protected hard links.  Root passes the
permission-bit checks (CAP_DAC_OVERRIDE).

Each operation then maps onto inode operations (``write_file`` = lookup or create + open with
O_TRUNC + write + release, ``pread`` = open + read + release, ...).  Where the seed differs
from Linux (spec §12) we do what Linux does; see docs/DECISIONS.md, "Path-level VFS".
"""

from __future__ import annotations

import os
import stat as _stat
from typing import cast

from .errors import KernelError
from .fs import (
    NAME_MAX,
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    SYMLOOP_MAX,
    UTIME_NOW,
    Attr,
    Caller,
    FileSystem,
    SetAttr,
    may_access,
)
from .vstat import VirtualDirEntry, VirtualDirStatEntry, VirtualStat

PATH_MAX = 4096

_S_IFMT = 0o170000
_S_IFDIR = _stat.S_IFDIR
_S_IFREG = _stat.S_IFREG
_S_IFLNK = _stat.S_IFLNK

_O_RDONLY = os.O_RDONLY
_O_WRONLY = os.O_WRONLY
_O_CREAT = os.O_CREAT
_O_TRUNC = os.O_TRUNC
_O_EXCL = os.O_EXCL

_TRAIL = b"/"  # marks a trailing slash in a walk (no real component can be "/")
_NO_CACHE: dict[tuple[int, bytes], Attr] = {}  # the directory cache of a filesystem without one

# How the last component of a path looks (Linux: LAST_NORM / LAST_ROOT / LAST_DOT / LAST_DOTDOT).
NORM, ROOT, DOT, DOTDOT = "norm", "root", "dot", "dotdot"

_MISSING = ("ENOENT", "ELOOP", "ENOTDIR", "ENAMETOOLONG")
_NOT_VISIBLE = _MISSING + ("EACCES",)  # exists() is False for these, like test -e
_READ_PIECE = 1 << 20  # read_file growth step when a file is longer than its stat said
_COPY_PIECE = 4 << 20


def _err(code: str, what: str, path: str | bytes) -> KernelError:
    return KernelError(code, f"{what} {os.fsdecode(path)!r}")


def _split(path: str | bytes) -> tuple[list[bytes], bool]:
    """Components of *path*, next component last (a stack), and whether it ends in '/'."""
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else bytes(path)
    if not raw:
        raise KernelError("ENOENT", "empty path")
    if len(raw) >= PATH_MAX:
        raise KernelError("ENAMETOOLONG", "path longer than PATH_MAX")
    if b"\0" in raw:
        raise KernelError("EINVAL", "path contains a NUL byte")
    comps = [c for c in raw.split(b"/") if c]
    trailing = raw.endswith(b"/") and bool(comps)
    comps.reverse()
    return comps, trailing


class _Cursor:
    """Where a walk stands: the chain of directories from ``/`` (for ``..``), their names
    (for ``realpath``), the attrs the lookups returned, and the symlinks followed so far."""

    __slots__ = ("inos", "names", "attrs", "hops", "exact")

    def __init__(self, root: int) -> None:
        self.inos: list[int] = [root]
        self.names: list[bytes] = []
        self.attrs: list[Attr | None] = [None]  # None: not looked up (the root)
        self.hops = 0
        self.exact = True  # attrs[-1] came from a real lookup (not the directory cache)

    def to_root(self) -> None:
        del self.inos[1:], self.names[:], self.attrs[1:]


class PathVFS:
    """Path-level operations over one inode-level ``FileSystem``, on behalf of ``caller``."""

    def __init__(self, fs: FileSystem, caller: Caller | None = None, *,
                 protected_hardlinks: bool = True) -> None:
        self.fs = fs
        self.caller = caller if caller is not None else Caller.root()
        self.protected_hardlinks = protected_hardlinks
        self._lookup_dir = getattr(fs, "lookup_dir", None) or fs.lookup
        self._dir_attr = getattr(fs, "dir_attr", None) or fs.getattr
        cache = getattr(fs, "dir_cache", None)  # read here without a call: the hot path
        self._dir_get = (cache if cache is not None else _NO_CACHE).get

    def with_caller(self, caller: Caller) -> "PathVFS":
        """The same filesystem seen by another user (a sandbox process)."""
        return PathVFS(self.fs, caller, protected_hardlinks=self.protected_hardlinks)

    # -- the walker ------------------------------------------------------------------

    async def _walk(self, cur: _Cursor, todo: list[bytes], follow_last: bool,
                    mkdirs: bool = False) -> None:
        """Consume *todo* (next component last), moving *cur* to the final inode.

        With *mkdirs*, missing components are created as directories (``mkdir -p``).
        """
        fs = self.fs
        lookup_dir = self._lookup_dir
        dir_get = self._dir_get
        caller = self.caller
        search = caller.uid != 0  # root may search any directory
        inos, names, attrs = cur.inos, cur.names, cur.attrs
        while todo:
            comp = todo.pop()
            if comp == _TRAIL:
                continue  # the component before it had to be a directory: checked below
            if comp == b"." or comp == b"..":
                if search:
                    await self._search_ok(cur)
                if comp == b".." and len(inos) > 1:
                    inos.pop()
                    names.pop()
                    attrs.pop()
                    cur.exact = False  # the directory below may have come from the cache
                continue
            if len(comp) > NAME_MAX:
                raise KernelError("ENAMETOOLONG", "file name longer than 255 bytes")
            through = bool(todo) and todo[-1] != _TRAIL  # a component the walk goes through
            try:
                if through:
                    if search:  # a cached entry is found without the filesystem's check
                        pattr = attrs[-1]
                        if pattr is None:
                            pattr = attrs[-1] = await self._dir_attr(inos[-1])
                        if not _may(pattr, caller, 1):
                            raise KernelError("EACCES", "permission denied")
                    attr = dir_get((inos[-1], comp))
                    if attr is not None:  # a cached directory: a valid step, nothing to check
                        inos.append(attr.ino)
                        names.append(comp)
                        attrs.append(attr)
                        cur.exact = False
                        continue
                    attr = await lookup_dir(inos[-1], comp, caller)
                else:
                    attr = await fs.lookup(inos[-1], comp, caller)
            except KernelError as e:
                if not (mkdirs and e.code == "ENOENT"):
                    raise
                attr = await self._mkdir_in(inos[-1], comp)
            mode = attr.mode & _S_IFMT
            last = not todo
            if mode == _S_IFLNK and (follow_last or not last):
                tcomps, ttrail = await self._follow(cur, attr.ino)
                if ttrail:
                    todo.append(_TRAIL)
                todo.extend(tcomps)
                continue
            if not last and mode != _S_IFDIR:
                raise KernelError("ENOTDIR", "not a directory")
            inos.append(attr.ino)
            names.append(comp)
            attrs.append(attr)
            cur.exact = not through

    async def _follow(self, cur: _Cursor, link_ino: int) -> tuple[list[bytes], bool]:
        """Count one more followed symlink (ELOOP past 40) and return its target's components
        (next one last) and trailing-slash flag; an absolute target moves *cur* to ``/``."""
        cur.hops += 1
        if cur.hops > SYMLOOP_MAX:
            raise KernelError("ELOOP", "too many levels of symbolic links")
        target = await self.fs.readlink(link_ino, self.caller)
        if not target:
            raise KernelError("ENOENT", "empty symbolic link")
        comps, trailing = _split(target)
        if target[:1] == b"/":
            cur.to_root()
        return comps, trailing

    async def _search_ok(self, cur: _Cursor) -> None:
        """EACCES unless the caller may search the directory the walk stands in."""
        attr = cur.attrs[-1]
        if attr is None:
            attr = cur.attrs[-1] = await self._dir_attr(cur.inos[-1])
        if not _may(attr, self.caller, 1):
            raise KernelError("EACCES", "permission denied")

    async def _mkdir_in(self, parent: int, name: bytes) -> Attr:
        try:
            return await self.fs.mkdir(parent, name, _S_IFDIR | (0o777 & ~self.caller.umask), self.caller)
        except KernelError as e:  # lost a race with another creator
            if e.code != "EEXIST":
                raise
            return await self.fs.lookup(parent, name, self.caller)

    async def _resolve(self, path: str | bytes, follow: bool) -> tuple[_Cursor, Attr]:
        todo, trailing = _split(path)
        if trailing:
            todo.insert(0, _TRAIL)  # "x/" means x must be (or lead to) a directory
        cur = _Cursor(self.fs.root_ino)
        await self._walk(cur, todo, follow)
        attr = cur.attrs[-1]
        if attr is None or not cur.exact:  # "/", or "dir/." / "a/b/..": fresh attributes
            attr = await self.fs.getattr(cur.inos[-1])
            cur.attrs[-1] = attr
        return cur, attr

    async def _parent(self, path: str | bytes, mkdirs: bool = False) -> tuple[_Cursor, bytes, str, bool]:
        """Walk all but the last component; returns (cursor at parent, last name, kind, trailing '/')."""
        todo, trailing = _split(path)
        cur = _Cursor(self.fs.root_ino)
        if not todo:
            return cur, b"", ROOT, False
        last = todo[0]
        del todo[0]
        await self._walk(cur, todo, True, mkdirs)
        pattr = cur.attrs[-1]
        if pattr is not None and not pattr.is_dir:
            raise KernelError("ENOTDIR", "not a directory")
        if self.caller.uid:
            await self._search_ok(cur)  # Linux needs search permission on the parent too
        if last == b".":
            return cur, last, DOT, trailing
        if last == b"..":
            return cur, last, DOTDOT, trailing
        if len(last) > NAME_MAX:
            raise KernelError("ENAMETOOLONG", "file name longer than 255 bytes")
        return cur, last, NORM, trailing

    async def _lookup_opt(self, parent: int, name: bytes) -> Attr | None:
        try:
            return await self.fs.lookup(parent, name, self.caller)
        except KernelError as e:
            if e.code == "ENOENT":
                return None
            raise

    # -- kernel-facing helpers -------------------------------------------------------

    async def resolve(self, path: str | bytes, follow: bool = True) -> tuple[int, Attr]:
        """The inode *path* names and its attributes (following a final symlink if *follow*)."""
        cur, attr = await self._resolve(path, follow)
        return cur.inos[-1], attr

    async def resolve_parent(self, path: str | bytes, special: str = "EEXIST") -> tuple[int, bytes]:
        """The directory that holds *path*'s last component, and that name.

        A path whose last component is ``/``, ``.`` or ``..`` names no entry to create
        or remove; that raises *special* (EEXIST suits creation, Linux's mkdir/symlink).
        """
        cur, name, kind, _ = await self._parent(path)
        if kind != NORM:
            raise _err(special, "not a plain name:", path)
        return cur.inos[-1], name

    # -- reading ---------------------------------------------------------------------

    async def read_file(self, path: str | bytes) -> bytes:
        _, attr = await self._resolve(path, True)
        if attr.is_dir:
            raise self._read_dir_error(attr, path)
        fs = self.fs
        fh = await fs.open(attr.ino, _O_RDONLY, self.caller)
        try:
            want = attr.size + 1  # one extra byte: a short read proves we reached EOF
            data = await fs.read(fh, 0, want)
            if len(data) < want:
                return data
            parts = [data]
            offset = len(data)
            while True:  # the file grew since stat, or reports no size (/proc)
                piece = await fs.read(fh, offset, _READ_PIECE)
                if piece:
                    parts.append(piece)
                    offset += len(piece)
                if len(piece) < _READ_PIECE:
                    return b"".join(parts)
        finally:
            await fs.release(fh)

    def _read_dir_error(self, attr: Attr, path: str | bytes) -> KernelError:
        """Reading a directory: open(O_RDONLY) checks read permission first (EACCES),
        then read(2) says EISDIR."""
        if not _may(attr, self.caller, 4):
            return _err("EACCES", "permission denied:", path)
        return _err("EISDIR", "is a directory:", path)

    async def read_text_file(self, path: str | bytes) -> str:
        return (await self.read_file(path)).decode("utf-8")

    async def pread(self, path: str | bytes, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise KernelError("EINVAL", "negative offset or length")
        _, attr = await self._resolve(path, True)
        if attr.is_dir:
            raise self._read_dir_error(attr, path)
        fs = self.fs
        fh = await fs.open(attr.ino, _O_RDONLY, self.caller)
        try:
            return await fs.read(fh, offset, length) if length else b""
        finally:
            await fs.release(fh)

    async def exists(self, path: str | bytes) -> bool:
        try:
            await self._resolve(path, True)
        except KernelError as e:
            if e.code in _NOT_VISIBLE:
                return False
            raise
        return True

    async def stat(self, path: str | bytes) -> VirtualStat:
        _, attr = await self._resolve(path, True)
        return VirtualStat.from_attr(attr)

    async def lstat(self, path: str | bytes) -> VirtualStat:
        _, attr = await self._resolve(path, False)
        return VirtualStat.from_attr(attr)

    async def readlink(self, path: str | bytes) -> str | bytes:
        _, attr = await self._resolve(path, False)
        if not attr.is_symlink:
            raise _err("EINVAL", "not a symbolic link:", path)
        target = await self.fs.readlink(attr.ino, self.caller)
        return os.fsdecode(target) if isinstance(path, str) else target

    async def realpath(self, path: str | bytes) -> str | bytes:
        cur, _ = await self._resolve(path, True)
        out = b"/" + b"/".join(cur.names)
        return os.fsdecode(out) if isinstance(path, str) else out

    # -- directories -----------------------------------------------------------------

    async def _entries(self, path: str | bytes):
        _, attr = await self._resolve(path, True)
        if not attr.is_dir:
            raise _err("ENOTDIR", "not a directory:", path)
        fs = self.fs
        fh = await fs.opendir(attr.ino, self.caller)
        out = []
        try:
            offset = 0
            while True:
                batch = await fs.readdir(fh, offset)
                if not batch:
                    break
                for ent in batch:
                    if ent.name != b"." and ent.name != b"..":
                        out.append(ent)
                offset = batch[-1].offset
        finally:
            await fs.releasedir(fh)
        return out

    async def read_dir(self, path: str | bytes) -> list[str] | list[bytes]:
        ents = await self._entries(path)
        if isinstance(path, str):
            return [os.fsdecode(e.name) for e in ents]
        return [e.name for e in ents]

    async def read_dir_with_types(self, path: str | bytes) -> list[VirtualDirEntry]:
        dec = os.fsdecode if isinstance(path, str) else bytes
        return [
            VirtualDirEntry(dec(e.name), e.attr.is_dir, e.attr.is_symlink, e.attr.ino)
            for e in await self._entries(path)
        ]

    async def read_dir_stat(self, path: str | bytes) -> list[VirtualDirStatEntry]:
        dec = os.fsdecode if isinstance(path, str) else bytes
        return [
            VirtualDirStatEntry(dec(e.name), e.attr.is_dir, e.attr.is_symlink, e.attr.ino,
                                VirtualStat.from_attr(e.attr))
            for e in await self._entries(path)
        ]

    async def create_dir(self, path: str | bytes) -> None:
        """mkdir(2): the parent must exist; an existing name is EEXIST."""
        await self.mkdir(path)

    async def mkdir(self, path: str | bytes, recursive: bool = False, mode: int = 0o777) -> None:
        """mkdir(2), or ``mkdir -p`` with *recursive* (existing directories are fine,
        an existing non-directory is EEXIST, a file in the way is ENOTDIR)."""
        cur, name, kind, _ = await self._parent(path, mkdirs=recursive)
        if kind != NORM:
            if recursive and kind != DOTDOT:
                return  # "/" or "x/." exist and are directories
            raise _err("EEXIST", "file exists:", path)
        parent = cur.inos[-1]
        caller = self.caller
        try:
            await self._creating(parent, name, path, self.fs.mkdir(
                parent, name, _S_IFDIR | (mode & 0o7777 & ~caller.umask), caller))
        except KernelError as e:
            if not (recursive and e.code == "EEXIST"):
                raise
            _, attr = await self._resolve(path, True)
            if not attr.is_dir:
                raise
        return None

    async def remove_dir(self, path: str | bytes) -> None:
        """rmdir(2).  ``/`` is EBUSY, ``x/.`` EINVAL, ``x/..`` ENOTEMPTY (Linux's answers)."""
        cur, name, kind, _ = await self._parent(path)
        if kind != NORM:
            code = {ROOT: "EBUSY", DOT: "EINVAL", DOTDOT: "ENOTEMPTY"}[kind]
            raise _err(code, "cannot remove", path)
        parent = cur.inos[-1]
        attr = await self.fs.lookup(parent, name, self.caller)
        await self._may_delete(cur, attr, True, path)
        await self.fs.rmdir(parent, name, self.caller)

    async def _may_delete(self, cur: _Cursor, victim: Attr, isdir: bool, path: str | bytes) -> None:
        """Linux's may_delete(), in its order: write+search on the directory (EACCES), the
        sticky bit (EPERM), then the victim's type (ENOTDIR / EISDIR)."""
        caller = self.caller
        if caller.uid:
            pattr = cur.attrs[-1]
            if pattr is None:
                pattr = cur.attrs[-1] = await self.fs.getattr(cur.inos[-1])
            if not _may(pattr, caller, 3):
                raise _err("EACCES", "permission denied:", path)
            if pattr.mode & _stat.S_ISVTX and caller.uid != victim.uid and caller.uid != pattr.uid:
                raise _err("EPERM", "sticky directory, not the owner:", path)
        if isdir:
            if not victim.is_dir:
                raise _err("ENOTDIR", "not a directory:", path)
        elif victim.is_dir:
            raise _err("EISDIR", "is a directory:", path)

    # -- creating, writing -----------------------------------------------------------

    async def open_create(self, path: str | bytes, flags: int, mkdirs: bool = False,
                          mode: int = 0o666) -> tuple[int, Attr, bool]:
        """open(2) with O_CREAT: returns (fh, attr, created).  Follows a final symlink,
        creating its target when it dangles (as Linux does without O_EXCL); O_EXCL refuses
        any existing name.  *mkdirs* creates missing parent directories first."""
        cur, name, kind, trailing = await self._parent(path, mkdirs=mkdirs)
        if kind != NORM or trailing:
            raise _err("EISDIR", "is a directory:", path)
        fs = self.fs
        caller = self.caller
        while True:
            parent = cur.inos[-1]
            attr = await self._lookup_opt(parent, name)
            if attr is None:
                fh, attr = await fs.create(parent, name, _S_IFREG | (mode & 0o7777 & ~caller.umask),
                                           flags | _O_CREAT, caller)
                return fh, attr, True
            if flags & _O_EXCL:
                raise _err("EEXIST", "file exists:", path)
            if attr.is_symlink:
                todo, ttrail = await self._follow(cur, attr.ino)
                if not todo:
                    raise _err("EISDIR", "is a directory:", path)
                name = todo[0]
                del todo[0]
                await self._walk(cur, todo, True)
                pattr = cur.attrs[-1]
                if pattr is not None and not pattr.is_dir:
                    raise KernelError("ENOTDIR", "not a directory")
                if caller.uid:
                    await self._search_ok(cur)
                if ttrail or name in (b".", b".."):
                    raise _err("EISDIR", "is a directory:", path)
                continue
            if attr.is_dir:
                raise _err("EISDIR", "is a directory:", path)
            fh = await fs.open(attr.ino, flags, caller)
            return fh, attr, False

    _open_create = open_create  # the name kernel/syscalls.py first used

    async def _write_all(self, fh: int, offset: int, data: bytes | bytearray | memoryview) -> int:
        write = self.fs.write
        total = len(data)
        # The file systems take any bytes-like object (they slice, hash and copy it), so a
        # caller's bytearray or memoryview goes down without a copy.
        done = await write(fh, offset, cast(bytes, data))
        if done < total:
            view = memoryview(data)
            while done < total:
                n = await write(fh, offset + done, bytes(view[done:]))
                if n <= 0:
                    raise KernelError("EIO", "short write")
                done += n
        return total

    async def write_file(self, path: str | bytes, content: str | bytes | bytearray | memoryview,
                         mode: int = 0o666) -> None:
        """Replace a file's content, creating it (and missing parents, like the seed) if needed."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        fh, _, _ = await self.open_create(path, _O_WRONLY | _O_TRUNC, True, mode)
        try:
            if len(data):
                await self._write_all(fh, 0, data)
        finally:
            await self.fs.release(fh)

    async def pwrite(self, path: str | bytes, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write *data* at *offset* of an existing file; returns the bytes written."""
        if offset < 0:
            raise KernelError("EINVAL", "negative offset")
        _, attr = await self._resolve(path, True)
        if attr.is_dir:
            raise _err("EISDIR", "is a directory:", path)
        fs = self.fs
        fh = await fs.open(attr.ino, _O_WRONLY, self.caller)
        try:
            return await self._write_all(fh, offset, data) if len(data) else 0
        finally:
            await fs.release(fh)

    async def truncate(self, path: str | bytes, length: int) -> None:
        if length < 0:
            raise KernelError("EINVAL", "negative length")
        _, attr = await self._resolve(path, True)
        if attr.is_dir:
            raise _err("EISDIR", "is a directory:", path)
        caller = self.caller
        if not _may(attr, caller, 2):  # truncate(2) needs write permission (Linux's VFS checks it)
            raise _err("EACCES", "permission denied:", path)
        changes = SetAttr(size=length)
        if caller.uid and caller.uid == attr.uid:
            # like any write by a user without CAP_FSETID, truncate drops set-user-ID (and a
            # real set-group-ID); a non-owner cannot express Linux's ATTR_FORCE through setattr
            kill = _kill_privs(attr.mode)
            if kill:
                changes.mode = attr.mode & ~kill
        await self.fs.setattr(attr.ino, changes, caller)

    async def fsync(self, path: str | bytes) -> None:
        """Make a file durable.  A path that does not resolve is silently ignored (seed V67)."""
        try:
            _, attr = await self._resolve(path, True)
        except KernelError as e:
            if e.code in _MISSING:
                return
            raise
        fs = self.fs
        if attr.is_dir:
            fh = await fs.opendir(attr.ino, self.caller)
            try:
                await fs.fsyncdir(fh)
            finally:
                await fs.releasedir(fh)
            return
        fh = await fs.open(attr.ino, _O_RDONLY, self.caller)
        try:
            await fs.fsync(fh)
        finally:
            await fs.release(fh)

    async def copy(self, src: str | bytes, dst: str | bytes) -> None:
        """Copy a file's content, mode and owner to a new name.  An existing *dst* is EEXIST
        (the seed's rule: copy never overwrites); missing parents of *dst* are created.
        All-zero pieces are skipped, so holes stay holes."""
        _, sattr = await self._resolve(src, True)
        if sattr.is_dir:
            raise _err("EISDIR", "is a directory:", src)
        fs = self.fs
        caller = self.caller
        dfh, dattr, _ = await self.open_create(dst, _O_WRONLY | _O_EXCL, True, sattr.mode & 0o7777)
        try:
            sfh = await fs.open(sattr.ino, _O_RDONLY, caller)
            try:
                piece = max(sattr.blksize, _COPY_PIECE)
                zeros = bytes(piece)
                offset = 0
                while True:
                    data = await fs.read(sfh, offset, piece)
                    if not data:
                        break
                    n = len(data)
                    if data != (zeros if n == piece else bytes(n)):
                        await self._write_all(dfh, offset, data)
                    offset += n
            finally:
                await fs.release(sfh)
            changes = SetAttr()
            if offset:
                changes.size = offset  # a trailing hole was skipped
            if dattr.mode & 0o7777 != sattr.mode & 0o7777:
                changes.mode = _S_IFREG | (sattr.mode & 0o7777)
            if (sattr.uid, sattr.gid) != (dattr.uid, dattr.gid) and caller.uid == 0:
                changes.uid, changes.gid = sattr.uid, sattr.gid
            if changes.size is not None or changes.mode is not None or changes.uid is not None:
                await fs.setattr(dattr.ino, changes, caller)
        finally:
            await fs.release(dfh)

    # -- names -----------------------------------------------------------------------

    async def remove_file(self, path: str | bytes) -> None:
        """unlink(2): removes a symlink itself, never its target; a directory is EISDIR."""
        cur, name, kind, trailing = await self._parent(path)
        if kind != NORM:
            raise _err("EISDIR", "is a directory:", path)
        parent = cur.inos[-1]
        attr = await self.fs.lookup(parent, name, self.caller)
        if trailing:
            raise _err("EISDIR" if attr.is_dir else "ENOTDIR", "trailing slash:", path)
        await self._may_delete(cur, attr, False, path)
        await self.fs.unlink(parent, name, self.caller)

    async def rename(self, old: str | bytes, new: str | bytes, flags: int = 0) -> None:
        """rename(2)/renameat2(2), with Linux's checks in Linux's order (do_renameat2 and
        vfs_rename); the inode level re-checks and does the emptiness test."""
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == RENAME_NOREPLACE | RENAME_EXCHANGE:
            raise KernelError("EINVAL", "invalid rename flags")
        ocur, oname, okind, otrail = await self._parent(old)
        ncur, nname, nkind, ntrail = await self._parent(new)
        if okind != NORM or nkind != NORM:
            raise _err("EBUSY", "cannot rename", old if okind != NORM else new)
        oparent, nparent = ocur.inos[-1], ncur.inos[-1]
        caller = self.caller
        src = await self.fs.lookup(oparent, oname, caller)
        dst = await self._lookup_opt(nparent, nname)
        exchange = flags & RENAME_EXCHANGE
        if flags & RENAME_NOREPLACE and dst is not None:
            raise _err("EEXIST", "file exists:", new)
        if exchange:
            if dst is None:
                raise _err("ENOENT", "no such file or directory:", new)
            if ntrail and not dst.is_dir:
                raise _err("ENOTDIR", "not a directory:", new)
        if not src.is_dir and (otrail or (ntrail and not exchange)):
            raise _err("ENOTDIR", "not a directory:", old if otrail else new)
        # ancestry: the source above the destination is EINVAL, the destination above the
        # source ENOTEMPTY (EINVAL when exchanging), before any type or permission check
        if src.is_dir and src.ino in ncur.inos:
            raise _err("EINVAL", "cannot move a directory into itself:", new)
        if dst is not None and dst.ino in ocur.inos:
            raise _err("EINVAL" if exchange else "ENOTEMPTY", "destination contains the source:", new)
        if dst is not None and dst.ino == src.ino:
            return  # two names of one file: POSIX says do nothing
        await self._may_delete(ocur, src, src.is_dir, old)
        if dst is None:
            if caller.uid:
                pattr = ncur.attrs[-1]
                if pattr is None:
                    pattr = ncur.attrs[-1] = await self.fs.getattr(nparent)
                if not _may(pattr, caller, 3):
                    raise _err("EACCES", "permission denied:", new)
        else:
            await self._may_delete(ncur, dst, dst.is_dir if exchange else src.is_dir, new)
        if caller.uid and oparent != nparent:  # a moved directory's ".." changes: write on it
            if src.is_dir and not _may(src, caller, 2):
                raise _err("EACCES", "permission denied:", old)
            if exchange and dst is not None and dst.is_dir and not _may(dst, caller, 2):
                raise _err("EACCES", "permission denied:", new)
        await self.fs.rename(oparent, oname, nparent, nname, flags, caller)

    async def symlink(self, target: str | bytes, link_path: str | bytes) -> None:
        cur, name, kind, trailing = await self._parent(link_path)
        if kind != NORM:
            raise _err("EEXIST", "file exists:", link_path)
        parent = cur.inos[-1]
        if trailing:
            await self._refuse_trailing(parent, name, link_path)
        raw = target.encode("utf-8", "surrogateescape") if isinstance(target, str) else bytes(target)
        if not raw:
            raise KernelError("ENOENT", "empty symlink target")
        await self._creating(parent, name, link_path, self.fs.symlink(parent, name, raw, self.caller))

    async def link(self, old: str | bytes, new: str | bytes, follow_symlinks: bool = False) -> None:
        """link(2): a new name for *old*.  Like Linux (and unlike the seed) a final symlink in
        *old* is linked itself unless *follow_symlinks* (linkat's AT_SYMLINK_FOLLOW)."""
        _, attr = await self._resolve(old, follow_symlinks)
        cur, name, kind, trailing = await self._parent(new)
        if kind != NORM:
            raise _err("EEXIST", "file exists:", new)
        parent = cur.inos[-1]
        if trailing:
            await self._refuse_trailing(parent, name, new)
        # Linux's order: a taken name (EEXIST), a protected source (EPERM), no write
        # permission on the directory (EACCES), then a directory source (EPERM)
        if await self._lookup_opt(parent, name) is not None:
            raise _err("EEXIST", "file exists:", new)
        if not self._safe_hardlink_source(attr):
            raise _err("EPERM", "protected hard link (not the owner):", old)
        if self.caller.uid:
            pattr = cur.attrs[-1]
            if pattr is None:
                pattr = cur.attrs[-1] = await self.fs.getattr(parent)
            if not _may(pattr, self.caller, 3):
                raise _err("EACCES", "permission denied:", new)
        if attr.is_dir:
            raise _err("EPERM", "cannot hard-link a directory:", old)
        await self._creating(parent, name, new, self.fs.link(attr.ino, parent, name, self.caller))

    def _safe_hardlink_source(self, attr: Attr) -> bool:
        """fs.protected_hardlinks=1 (every modern distribution): only the owner may link a
        file it cannot both read and write, or a setuid/setgid-executable/special file."""
        caller = self.caller
        if not self.protected_hardlinks or caller.uid == 0 or caller.uid == attr.uid:
            return True
        mode = attr.mode
        if not _stat.S_ISREG(mode) or mode & _stat.S_ISUID:
            return False
        if mode & (_stat.S_ISGID | 0o010) == (_stat.S_ISGID | 0o010):
            return False
        return _may(attr, caller, 6)

    async def _creating(self, parent: int, name: bytes, path: str | bytes, call):
        """Await a create-type call; a refusal (EACCES, EPERM, EROFS) for a name that already
        exists is reported as EEXIST, which Linux checks first."""
        try:
            return await call
        except KernelError as e:
            if e.code in ("EACCES", "EPERM", "EROFS") and await self._lookup_opt(parent, name) is not None:
                raise _err("EEXIST", "file exists:", path) from None
            raise

    async def _refuse_trailing(self, parent: int, name: bytes, path: str | bytes) -> None:
        """Creating a non-directory under "name/": EEXIST if taken, else ENOENT (Linux)."""
        if await self._lookup_opt(parent, name) is not None:
            raise _err("EEXIST", "file exists:", path)
        raise _err("ENOENT", "trailing slash on a non-directory:", path)

    # -- attributes ------------------------------------------------------------------

    async def chmod(self, path: str | bytes, mode: int, follow_symlinks: bool = True) -> None:
        """chmod(2): only the permission bits change (type bits in *mode* are ignored).
        Without *follow_symlinks* a symlink's mode cannot change: EOPNOTSUPP, as Linux says."""
        _, attr = await self._resolve(path, follow_symlinks)
        if attr.is_symlink:
            raise _err("EOPNOTSUPP", "cannot change the mode of a symbolic link:", path)
        new = (attr.mode & _S_IFMT) | (mode & 0o7777)
        await self.fs.setattr(attr.ino, SetAttr(mode=new), self.caller)

    async def chown(self, path: str | bytes, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """chown(2) (lchown(2) without *follow_symlinks*); -1 leaves that id unchanged.  Like
        Linux, any chown of a non-directory clears set-user-ID, and set-group-ID when
        group-execute is set (even as root)."""
        _, attr = await self._resolve(path, follow_symlinks)
        changes = SetAttr(uid=None if uid == -1 else uid, gid=None if gid == -1 else gid)
        if not attr.is_dir:
            kill = _kill_privs(attr.mode)
            if kill:
                changes.mode = attr.mode & ~kill
        await self.fs.setattr(attr.ino, changes, self.caller)

    async def utimes(self, path: str | bytes, atime_s: float | None, mtime_s: float | None) -> None:
        """Set access and modification times, in (fractional) seconds; None means now."""
        _, attr = await self._resolve(path, True)
        changes = SetAttr(atime_ns=seconds_ns(atime_s), mtime_ns=seconds_ns(mtime_s))
        await self.fs.setattr(attr.ino, changes, self.caller)

    async def utimens(self, path: str | bytes, atime_ns: int | None, mtime_ns: int | None,
                      follow_symlinks: bool = True) -> None:
        """utimensat(2) with exact nanoseconds: ``UTIME_NOW`` (kernel.fs) means now, None leaves
        that time alone (UTIME_OMIT); without *follow_symlinks* a symlink's own times change."""
        _, attr = await self._resolve(path, follow_symlinks)
        if atime_ns is None and mtime_ns is None:
            return  # both omitted: Linux changes nothing, not even ctime
        await self.fs.setattr(attr.ino, SetAttr(atime_ns=atime_ns, mtime_ns=mtime_ns), self.caller)


def _kill_privs(mode: int) -> int:
    """The bits Linux's should_remove_suid() drops: set-user-ID, and set-group-ID when
    group-execute is set (without it, set-group-ID only marks mandatory locking)."""
    kill = mode & _stat.S_ISUID
    if mode & _stat.S_ISGID and mode & 0o010:
        kill |= _stat.S_ISGID
    return kill


def _may(attr: Attr, caller: Caller, want: int) -> bool:
    return may_access(caller, attr.mode, attr.uid, attr.gid, want)


def seconds_ns(seconds: float | None) -> int:
    """A time in (fractional) seconds as nanoseconds for ``SetAttr``; None is ``UTIME_NOW``."""
    if seconds is None:
        return UTIME_NOW
    if isinstance(seconds, int):
        return seconds * 1_000_000_000
    return round(seconds * 1e9)


__all__ = ["PathVFS", "VirtualStat", "VirtualDirEntry", "VirtualDirStatEntry", "RENAME_NOREPLACE"]
