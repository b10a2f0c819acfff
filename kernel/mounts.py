"""The mount table: several inode-level filesystems presented as one.

``MountTable`` is itself a ``FileSystem`` (kernel/fs.py), so the FUSE adapter and the
path walker use it unchanged.  Design:

* **Inode numbers.**  The root mount keeps its own numbers (``ls -i`` shows store
  inode numbers); mount ``k > 0`` maps local inode ``i`` to ``(k << 48) | i``.  So
  finding the filesystem of any inode is a shift, never a table search.  File
  handles are mapped the same way, and mount ids are never reused, so a stale inode
  of an unmounted filesystem answers ENOENT instead of reaching a newer mount.
* **Mount points** are ``(parent directory inode, name)`` pairs, resolved once at
  mount time ("longest prefix" falls out: a lookup that crosses a mount point
  continues inside the mounted filesystem, whose own mount points are checked in
  turn).  ``lookup`` of a mount point returns the mounted root's attributes;
  ``readdir`` of its parent lists it with them (hidden mounts are left out).
* ``..`` is the path walker's business (a stack of inodes); as a convenience,
  ``lookup(mounted_root, b"..")`` answers the directory holding the mount point.
* **Errors.**  EROFS for every mutating operation on a read-only mount, EXDEV for
  rename/link across mounts (checked first, like Linux), EBUSY for removing or
  renaming a mount point and for unmounting a filesystem with open handles or
  nested mounts.

Listeners registered with ``add_listener(cb)`` are called as ``cb(parent_ino, name)``
after every mount/unmount, so the FUSE adapter can invalidate the host's cached
dentry for that name.

**The directory cache** (``lookup_dir``): the path walker resolves every intermediate
component of every path, so ``open("/home/user/src/pkg/mod.py")`` costs four directory
lookups in the store before the one that matters.  ``lookup_dir`` remembers
``(parent, name) -> Attr`` for directories of the root mount, and the walker uses it for
components that are not the last (whose size and times nobody reads: only the inode,
type, mode and owner, for the search-permission check the walker then makes itself).
It is kept exact, not timed: every change that can make an entry wrong passes through a
``MountTable`` — unlink, rmdir and rename drop the names they touch, setattr of a
directory its entry, mount and unmount everything — and the FUSE adapter's view
(``with_root``) shares the one cache, so changes made from the host through the mount
drop entries exactly as the sandbox's own do.  Only positive entries are kept (a
creation can make none wrong), only for directories (no hard links: one entry each),
and only in the root mount (other mounts, /proc above all, change on their own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .errors import KernelError
from .fs import ROOT_CALLER, Attr, Caller, DirEntry, FileSystem, SetAttr, StatFs
from .readonly import opens_for_writing, refusal

SHIFT = 48
LOCAL_MASK = (1 << SHIFT) - 1
ROOT_MOUNT_SPAN = 1 << SHIFT  # the root mount's inodes and handles are the numbers below this
MAX_MOUNT_ID = (1 << 15) - 1
EXTRA_COOKIE = 1 << 62  # readdir cookies >= this are mount points appended by the table
DIR_CACHE_MAX = 1 << 16  # directory-cache entries; past this the cache starts again empty
_ROOT_KEY = (-1, b"")  # the directory cache's entry for the root directory's attributes
_S_IFMT = 0o170000
_S_IFDIR = 0o040000


def normalize(path: str) -> str:
    """Lexical normalisation: drop empty parts and ``.``, pop on ``..`` (never above /)."""
    parts: list[str] = []
    for p in path.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if parts:
                parts.pop()
        else:
            parts.append(p)
    return "/" + "/".join(parts)


def _escape(s: str) -> str:
    """Octal escapes /proc/mounts uses for characters that would break its fields."""
    return (s.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")
            .replace("\n", "\\012"))


@dataclass(slots=True)
class MountInfo:
    """Public description of one mount (``mnt_id`` is the id /proc shows)."""

    path: str
    fstype: str
    source: str
    read_only: bool
    hidden: bool
    mnt_id: int
    parent_id: int


@dataclass(slots=True, eq=False)
class _Mount:
    id: int
    path: str
    fs: FileSystem
    read_only: bool
    hidden: bool
    fstype: str
    source: str
    parent: "_Mount | None" = None
    point: tuple[int, bytes] | None = None  # (global parent dir ino, name)
    base: int = 0
    fresh: bool = False
    handles: int = 0
    children: int = 0
    # optional capabilities, resolved once at mount time rather than probed per request
    volatile: bool = False
    direct_io: Callable[[int], bool] | None = None
    read_buffer: Callable[[int, int, int], Awaitable[bytes | memoryview]] | None = None

    def __post_init__(self) -> None:
        fs = self.fs
        self.volatile = bool(getattr(fs, "volatile", False))
        self.direct_io = getattr(fs, "wants_direct_io", None)
        self.read_buffer = getattr(fs, "read_buffer", None) or fs.read

    def info(self) -> MountInfo:
        return MountInfo(self.path, self.fstype, self.source, self.read_only, self.hidden,
                         self.id + 1, self.parent.id + 1 if self.parent else 0)


@dataclass(slots=True)
class _DirState:
    """Readdir bookkeeping for a directory that holds mount points."""

    points: dict[bytes, _Mount]
    seen: set[bytes] = field(default_factory=set)
    extras: list[DirEntry] | None = None


class MountTable:
    """A ``FileSystem`` that dispatches to mounted filesystems (see module docstring)."""

    def __init__(self, root_fs: FileSystem, *, fstype: str = "vfsfuse", source: str = "vfsfuse",
                 read_only: bool = False) -> None:
        root = _Mount(0, "/", root_fs, read_only, False, fstype, source,
                      fresh=getattr(root_fs, "fresh_attrs", False))
        self.root_ino: int = root_fs.root_ino
        self._root = root
        self._by_id: dict[int, _Mount] = {0: root}
        self._order: list[_Mount] = [root]
        self._points: dict[tuple[int, bytes], _Mount] = {}
        self._dir_points: dict[int, dict[bytes, _Mount]] = {}
        self._dir_state: dict[int, _DirState] = {}
        self._next_id = 1
        self._listeners: list[Callable[[int, bytes], None]] = []
        self._dirs: dict[tuple[int, bytes], Attr] = {}  # the directory cache (module docstring)
        self._dir_key: dict[int, tuple[int, bytes]] = {}  # cached directory ino -> its entry
        self._dir_gen = [0]  # bumped by every drop: a lookup that raced one keeps nothing

    # ---- mapping helpers -----------------------------------------------------------------
    def _split(self, ino: int) -> tuple[_Mount, int]:
        k = ino >> SHIFT
        if k == 0:
            return self._root, ino
        m = self._by_id.get(k)
        if m is None:
            raise KernelError("ENOENT", f"inode {ino} belongs to no mounted filesystem")
        return m, ino & LOCAL_MASK

    def _split_fh(self, fh: int) -> tuple[_Mount, int]:
        k = fh >> SHIFT
        m = self._root if k == 0 else self._by_id.get(k)
        if m is None:
            raise KernelError("EBADF", "handle of an unmounted filesystem")
        return m, fh & LOCAL_MASK

    def _mount_of(self, ino: int) -> _Mount | None:
        k = ino >> SHIFT
        return self._root if k == 0 else self._by_id.get(k)

    def with_root(self, fs: FileSystem) -> "MountTable":
        """A view of this table (the same mounts, live) whose root mount is served by *fs*.

        The daemon gives the FUSE adapter a view over the bare store while the sandbox's
        processes use the table whose root is the host cache invalidator: the invalidation
        work then happens where sandbox-side changes start, and host requests never pass
        through it."""
        view = object.__new__(MountTable)
        # not _next_id: mounts are made through the table, never a view; the directory cache
        # is shared, so the host's changes (made through the view) drop entries too
        for name in ("root_ino", "_by_id", "_order", "_points", "_dir_points", "_dir_state",
                     "_listeners", "_dirs", "_dir_key", "_dir_gen"):
            setattr(view, name, getattr(self, name))
        r = self._root
        view._root = _Mount(r.id, r.path, fs, r.read_only, r.hidden, r.fstype, r.source,
                            fresh=getattr(fs, "fresh_attrs", False))
        return view

    @staticmethod
    def _out(m: _Mount, a: Attr) -> Attr:
        if not m.base:
            return a
        if m.fresh:
            a.ino |= m.base
            return a
        return Attr(a.ino | m.base, a.mode, a.nlink, a.uid, a.gid, a.size, a.atime_ns, a.mtime_ns,
                    a.ctime_ns, a.birthtime_ns, a.rdev, a.blksize, a.blocks)

    async def _root_attr(self, m: _Mount) -> Attr:
        return self._out(m, await m.fs.getattr(m.fs.root_ino))

    @staticmethod
    def _writable(m: _Mount) -> None:
        if m.read_only:
            raise refusal(m.path)

    def fs_of(self, ino: int) -> tuple[FileSystem, int]:
        """The filesystem an inode belongs to and its local inode number (for the fd
        layer: e.g. ``devfs.device_for(local)``)."""
        m, local = self._split(ino)
        return m.fs, local

    def add_listener(self, cb: Callable[[int, bytes], None]) -> None:
        self._listeners.append(cb)

    # ---- mount management ----------------------------------------------------------------
    async def mount(self, path: str, fs: FileSystem, *, read_only: bool = False, hidden: bool = False,
                    fstype: str = "vfsfuse", source: str = "none") -> MountInfo:
        """Mount *fs* at *path*, creating the mount-point directory in the parent if missing.

        Mounting over a directory that holds data shadows it until unmount."""
        path = normalize(path)
        if path == "/":
            raise KernelError("EINVAL", "cannot mount over root")
        if any(m.path == path for m in self._order):
            raise KernelError("EEXIST", f"already mounted: {path}")
        if self._next_id > MAX_MOUNT_ID:
            raise KernelError("ENOSPC", "too many mounts")
        if fs.root_ino > LOCAL_MASK:
            raise KernelError("EINVAL", "root inode number too large")
        parent_ino, name = await self._make_point(path)
        parent_mount = self._split(parent_ino)[0]
        k = self._next_id
        self._next_id += 1
        m = _Mount(k, path, fs, read_only, hidden, fstype, source, parent_mount, (parent_ino, name),
                   k << SHIFT, getattr(fs, "fresh_attrs", False))
        self._by_id[k] = m
        self._order.append(m)
        self._points[(parent_ino, name)] = m
        self._dir_points.setdefault(parent_ino, {})[name] = m
        parent_mount.children += 1
        self._forget_dirs()
        self._notify(parent_ino, name)
        return m.info()

    async def _make_point(self, path: str) -> tuple[int, bytes]:
        parts = [p.encode() for p in path.strip("/").split("/")]
        cur = self.root_ino
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                a = await self.lookup(cur, name)
            except KernelError as e:
                if e.code != "ENOENT":
                    raise
                try:
                    a = await self.mkdir(cur, name, 0o755)
                except KernelError:
                    if last:  # the point works without a directory under it
                        return cur, name
                    raise
            if not a.is_dir:
                raise KernelError("ENOTDIR", f"mount point component is not a directory: {path}")
            if last:
                return cur, name
            cur = a.ino
        raise AssertionError("unreachable")

    async def unmount(self, path: str) -> None:
        """Remove the mount at *path*; EBUSY while it has open handles or nested mounts."""
        path = normalize(path)
        if path == "/":
            raise KernelError("EINVAL", "cannot unmount root")
        m = next((m for m in self._order if m.path == path), None)
        if m is None:
            raise KernelError("EINVAL", f"not a mount point: {path}")
        if m.handles or m.children:
            raise KernelError("EBUSY", f"target is busy: {path}")
        assert m.point is not None and m.parent is not None
        del self._by_id[m.id]
        self._order.remove(m)
        del self._points[m.point]
        d = self._dir_points[m.point[0]]
        del d[m.point[1]]
        if not d:
            del self._dir_points[m.point[0]]
        m.parent.children -= 1
        self._forget_dirs()
        self._notify(*m.point)

    # ---- the directory cache ---------------------------------------------------------------
    @property
    def dir_cache(self) -> Mapping[tuple[int, bytes], Attr]:
        """The cache itself, read-only, for the walker's hot path (one dict lookup per step);
        the same object for the table's life and shared with its views."""
        return self._dirs

    async def lookup_dir(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        """``lookup`` for a component a path walk goes *through*: a directory's attributes may
        come from the cache (inode, type, mode and owner exact; size and times possibly old).
        A hit makes no permission check: the caller checks search permission on *parent*."""
        a = self._dirs.get((parent, name))
        if a is not None:
            return a
        gen = self._dir_gen[0]
        a = await self.lookup(parent, name, caller)
        if (a.mode & _S_IFMT == _S_IFDIR and parent < ROOT_MOUNT_SPAN and a.ino < ROOT_MOUNT_SPAN
                and gen == self._dir_gen[0]):
            dirs = self._dirs
            if len(dirs) >= DIR_CACHE_MAX:
                self._forget_dirs()
            old = self._dir_key.get(a.ino)
            if old is not None:  # cannot happen (one name per directory), but never keep two
                dirs.pop(old, None)
            dirs[(parent, name)] = a
            self._dir_key[a.ino] = (parent, name)
        return a

    async def dir_attr(self, ino: int) -> Attr:
        """``getattr`` of a directory a walk stands in, for its search-permission check: the
        root directory's comes from the cache (mode and owner exact, dropped by setattr)."""
        if ino != self.root_ino:
            return await self.getattr(ino)
        a = self._dirs.get(_ROOT_KEY)
        if a is None:
            gen = self._dir_gen[0]
            a = await self.getattr(ino)
            if gen == self._dir_gen[0]:
                self._dirs[_ROOT_KEY] = a
                self._dir_key[ino] = _ROOT_KEY
        return a

    def _forget_dir(self, parent: int, name: bytes) -> None:
        self._dir_gen[0] += 1
        a = self._dirs.pop((parent, name), None)
        if a is not None:
            self._dir_key.pop(a.ino, None)

    def _forget_ino(self, ino: int) -> None:
        self._dir_gen[0] += 1
        key = self._dir_key.pop(ino, None)
        if key is not None:
            self._dirs.pop(key, None)

    def _forget_dirs(self) -> None:
        self._dir_gen[0] += 1
        self._dirs.clear()
        self._dir_key.clear()

    def _notify(self, parent_ino: int, name: bytes) -> None:
        for cb in self._listeners:
            cb(parent_ino, name)

    def mounts(self) -> list[MountInfo]:
        """Every mount, root first, in mount order."""
        return [m.info() for m in self._order]

    def mount_for_path(self, path: str) -> MountInfo:
        """The mount a (normalised, lexical) sandbox path lives in: longest prefix wins."""
        path = normalize(path)
        best = self._root
        for m in self._order[1:]:
            if (path == m.path or path.startswith(m.path + "/")) and len(m.path) > len(best.path):
                best = m
        return best.info()

    def mounts_text(self, for_pid: int = 0) -> str:
        """``/proc/mounts``: ``source mountpoint fstype options 0 0`` (hidden mounts omitted)."""
        out = []
        for m in self._order:
            if m.hidden:
                continue
            opts = "ro,relatime" if m.read_only else "rw,relatime"
            out.append(f"{_escape(m.source)} {_escape(m.path)} {_escape(m.fstype)} {opts} 0 0\n")
        return "".join(out)

    def mountinfo_text(self, for_pid: int = 0) -> str:
        """``/proc/<pid>/mountinfo``: ``id parent major:minor root mountpoint options -
        fstype source superoptions`` (see proc(5))."""
        out = []
        for m in self._order:
            if m.hidden:
                continue
            i = m.info()
            opt = "ro" if m.read_only else "rw"
            out.append(f"{i.mnt_id} {i.parent_id} 0:{20 + m.id} / {_escape(m.path)} {opt},relatime"
                       f" - {_escape(m.fstype)} {_escape(m.source)} {opt}\n")
        return "".join(out)

    # ---- lookups and attributes ----------------------------------------------------------
    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        if self._points:
            m = self._points.get((parent, name))
            if m is not None:
                return await self._root_attr(m)
        pm, local = self._split(parent)
        if name == b".." and pm.point is not None and local == pm.fs.root_ino:
            return await self.getattr(pm.point[0])
        return self._out(pm, await pm.fs.lookup(local, name, caller))

    async def getattr(self, ino: int) -> Attr:
        m, local = self._split(ino)
        return self._out(m, await m.fs.getattr(local))

    async def setattr(self, ino: int, changes: SetAttr, caller: Caller = ROOT_CALLER) -> Attr:
        m, local = self._split(ino)
        self._writable(m)
        try:
            return self._out(m, await m.fs.setattr(local, changes, caller))
        finally:  # even a failed call may have changed something: drop the entry either way
            if changes.mode is not None or changes.uid is not None or changes.gid is not None:
                self._forget_ino(ino)

    async def readlink(self, ino: int, caller: Caller = ROOT_CALLER) -> bytes:
        m, local = self._split(ino)
        return await m.fs.readlink(local, caller)

    # ---- namespace changes ---------------------------------------------------------------
    async def _new_entry(self, parent: int, name: bytes, caller: Caller) -> tuple[_Mount, int]:
        m, local = self._split(parent)
        if (parent, name) in self._points:
            raise KernelError("EEXIST", "a filesystem is mounted there")
        if m.read_only:  # Linux: an existing name is EEXIST even on a read-only mount
            try:
                await m.fs.lookup(local, name, caller)
            except KernelError:
                self._writable(m)
            raise KernelError("EEXIST", "file exists")
        return m, local

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int,
                    caller: Caller = ROOT_CALLER) -> Attr:
        m, local = await self._new_entry(parent, name, caller)
        return self._out(m, await m.fs.mknod(local, name, mode, rdev, caller))

    async def mkdir(self, parent: int, name: bytes, mode: int, caller: Caller = ROOT_CALLER) -> Attr:
        m, local = await self._new_entry(parent, name, caller)
        return self._out(m, await m.fs.mkdir(local, name, mode, caller))

    async def symlink(self, parent: int, name: bytes, target: bytes,
                      caller: Caller = ROOT_CALLER) -> Attr:
        m, local = await self._new_entry(parent, name, caller)
        return self._out(m, await m.fs.symlink(local, name, target, caller))

    async def link(self, ino: int, new_parent: int, new_name: bytes,
                   caller: Caller = ROOT_CALLER) -> Attr:
        m, local = self._split(ino)
        pm, plocal = await self._new_entry(new_parent, new_name, caller)  # EEXIST, EROFS first
        if m is not pm:
            try:  # Linux: an existing new name is EEXIST before EXDEV
                await pm.fs.lookup(plocal, new_name, caller)
            except KernelError:
                raise KernelError("EXDEV", f"link across mounts: {m.path} -> {pm.path}") from None
            raise KernelError("EEXIST", "file exists")
        return self._out(m, await m.fs.link(local, plocal, new_name, caller))

    async def unlink(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        m, local = self._split(parent)
        self._writable(m)
        if (parent, name) in self._points:
            raise KernelError("EISDIR", "is a mount point (a directory)")
        try:
            await m.fs.unlink(local, name, caller)
        finally:  # after the change (a walk during it may have cached the old name)
            self._forget_dir(parent, name)

    async def rmdir(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        m, local = self._split(parent)
        self._writable(m)
        if (parent, name) in self._points:
            raise KernelError("EBUSY", "is a mount point")
        try:
            await m.fs.rmdir(local, name, caller)
        finally:
            self._forget_dir(parent, name)

    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int = 0, caller: Caller = ROOT_CALLER) -> None:
        m, olocal = self._split(old_parent)
        nm, nlocal = self._split(new_parent)
        if m is not nm:
            raise KernelError("EXDEV", f"rename across mounts: {m.path} -> {nm.path}")
        self._writable(m)
        if (old_parent, old_name) in self._points or (new_parent, new_name) in self._points:
            await self._rename_busy(old_parent, old_name, new_parent, new_name, flags, caller)
        try:
            await m.fs.rename(olocal, old_name, nlocal, new_name, flags, caller)
        finally:
            self._forget_dir(old_parent, old_name)
            self._forget_dir(new_parent, new_name)

    async def _rename_busy(self, old_parent: int, old_name: bytes, new_parent: int,
                           new_name: bytes, flags: int, caller: Caller) -> None:
        """A mount point takes part in a rename: Linux reports type errors first, then EBUSY."""
        if (old_parent, old_name) == (new_parent, new_name):
            return  # renaming onto itself does nothing
        src = await self.lookup(old_parent, old_name, caller)
        try:
            dst = await self.lookup(new_parent, new_name, caller)
        except KernelError as e:
            if e.code != "ENOENT":
                raise
            dst = None
        if dst is not None:
            if flags & 1:  # RENAME_NOREPLACE
                raise KernelError("EEXIST", "file exists")
            if src.is_dir and not dst.is_dir:
                raise KernelError("ENOTDIR", "not a directory")
            if not src.is_dir and dst.is_dir:
                raise KernelError("EISDIR", "is a directory")
        raise KernelError("EBUSY", "is a mount point")

    # ---- files ---------------------------------------------------------------------------
    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     caller: Caller = ROOT_CALLER) -> tuple[int, Attr]:
        m, local = await self._new_entry(parent, name, caller)
        fh, a = await m.fs.create(local, name, mode, flags, caller)
        m.handles += 1
        return m.base | fh, self._out(m, a)

    async def open(self, ino: int, flags: int, caller: Caller = ROOT_CALLER) -> int:
        m, local = self._split(ino)
        if m.read_only and opens_for_writing(flags):
            raise refusal(m.path)
        fh = await m.fs.open(local, flags, caller)
        m.handles += 1
        return m.base | fh

    def wants_direct_io(self, ino: int) -> bool:
        """Whether the host must read this file until EOF, ignoring st_size (/proc files)."""
        m, local = self._split(ino)
        f = m.direct_io
        return bool(f and f(local))

    def is_volatile(self, ino: int) -> bool:
        """Whether the inode's filesystem changes on its own (/proc, /dev/pts), so the FUSE
        adapter should give its entries and attributes a zero cache timeout."""
        m = self._mount_of(ino)
        return m is not None and m.volatile

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        m, local = self._split_fh(fh)
        return await m.fs.read(local, offset, size)

    async def read_buffer(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        """``read`` that may return a view (see ``FileSystem.read_buffer``)."""
        m, local = self._split_fh(fh)
        assert m.read_buffer is not None
        return await m.read_buffer(local, offset, size)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        m, local = self._split_fh(fh)
        self._writable(m)
        return await m.fs.write(local, offset, data)

    async def flush(self, fh: int) -> None:
        m, local = self._split_fh(fh)
        await m.fs.flush(local)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        m, local = self._split_fh(fh)
        await m.fs.fsync(local, datasync)

    async def release(self, fh: int) -> None:
        m, local = self._split_fh(fh)
        try:
            await m.fs.release(local)
        finally:
            m.handles -= 1

    # ---- directories ---------------------------------------------------------------------
    async def opendir(self, ino: int, caller: Caller = ROOT_CALLER) -> int:
        m, local = self._split(ino)
        fh = m.base | await m.fs.opendir(local, caller)
        m.handles += 1
        points = self._dir_points.get(ino)
        if points:
            self._dir_state[fh] = _DirState(dict(points))
        return fh

    async def readdir(self, fh: int, offset: int) -> list[DirEntry]:
        m, local = self._split_fh(fh)
        st = self._dir_state.get(fh)
        if st is not None and offset >= EXTRA_COOKIE:
            return (st.extras or [])[offset - EXTRA_COOKIE:]
        while True:
            entries = await m.fs.readdir(local, offset)
            if m.base:
                for e in entries:
                    e.attr = self._out(m, e.attr)
            if st is None:
                return entries
            if not entries:
                return await self._extras(st)
            out = []
            for e in entries:
                pm = st.points.get(e.name)
                if pm is not None:
                    st.seen.add(e.name)
                    if pm.hidden:
                        continue
                    e.attr = await self._root_attr(pm)
                out.append(e)
            if out:
                return out
            offset = entries[-1].offset  # every entry of this batch was hidden: go on

    async def _extras(self, st: _DirState) -> list[DirEntry]:
        """Mount points whose directory is missing from the parent's own listing."""
        if st.extras is None:
            st.extras = []
            for name, pm in st.points.items():
                if name in st.seen or pm.hidden or pm.id not in self._by_id:
                    continue
                st.extras.append(DirEntry(name, await self._root_attr(pm),
                                          EXTRA_COOKIE + len(st.extras) + 1))
        return st.extras

    async def releasedir(self, fh: int) -> None:
        m, local = self._split_fh(fh)
        self._dir_state.pop(fh, None)
        try:
            await m.fs.releasedir(local)
        finally:
            m.handles -= 1

    async def fsyncdir(self, fh: int, datasync: bool = False) -> None:
        m, local = self._split_fh(fh)
        await m.fs.fsyncdir(local, datasync)

    async def statfs(self) -> StatFs:
        return await self._root.fs.statfs()

    # ---- xattrs and references -----------------------------------------------------------
    async def getxattr(self, ino: int, name: bytes) -> bytes:
        m, local = self._split(ino)
        return await m.fs.getxattr(local, name)

    async def setxattr(self, ino: int, name: bytes, value: bytes, flags: int = 0,
                       caller: Caller = ROOT_CALLER) -> None:
        m, local = self._split(ino)
        self._writable(m)
        await m.fs.setxattr(local, name, value, flags, caller)

    async def listxattr(self, ino: int) -> list[bytes]:
        m, local = self._split(ino)
        return await m.fs.listxattr(local)

    async def removexattr(self, ino: int, name: bytes, caller: Caller = ROOT_CALLER) -> None:
        m, local = self._split(ino)
        self._writable(m)
        await m.fs.removexattr(local, name, caller)

    def retain(self, ino: int) -> None:
        m = self._mount_of(ino)
        if m is not None:
            m.fs.retain(ino & LOCAL_MASK if m.base else ino)

    async def forget(self, ino: int) -> None:
        m = self._mount_of(ino)
        if m is not None:
            await m.fs.forget(ino & LOCAL_MASK if m.base else ino)
