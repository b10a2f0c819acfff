"""A small base for read-only *generated* filesystems: /dev, /proc, /.vfs.

Why a base: devfs, procfs and the FUSE inspection tree all serve files whose bytes
are computed when they are opened, directories whose listing is computed when they
are opened, and symlinks whose target may depend on who asks (``/proc/self``).  The
inode bookkeeping, handles, readdir cookies and the "everything else is refused"
part are identical, so they live here once.

How to use it
-------------
Build a tree of ``Node`` objects and hand its root to ``SyntheticFS``::

    root = StaticDir()
    root.add(b"version", File(lambda caller: b"1.0\\n"))
    root.add(b"link", Symlink(b"version"))
    fs = SyntheticFS(root)

* ``File(gen)`` - ``gen(caller) -> bytes`` runs once per ``open``; the handle keeps
  that snapshot, so a reader sees one consistent version even across many reads
  (like Linux seq_files).  ``st_size`` is 0 (as in Linux /proc) unless
  ``size=`` is given: a FUSE adapter must open such files with ``direct_io`` so
  that the host reads until EOF instead of trusting ``st_size``; ask
  ``fs.wants_direct_io(ino)``.
* ``Symlink(target)`` - ``target`` is bytes or ``callable(caller) -> bytes``.
* ``StaticDir`` - a fixed set of children, added with ``add(name, node)``.
* ``DynamicDir(list_fn, lookup_fn)`` - children computed on demand.  Nodes created
  on demand must be *interned* (``fs.intern(key, factory)``) so that the same
  object always has the same inode number; ``fs.drop_keys(pred)`` forgets them.
* ``Device(name, rdev)`` - a character device; subclasses of ``SyntheticFS``
  implement ``device_open/device_read/device_write``.
* Any node can be given ``live=callable() -> bool``; when it returns False the node
  answers ENOENT everywhere (a /proc/<pid> entry of a reaped process).

Inode numbers are local and small (root = 1); the mount table shifts them.
Every ``Attr`` returned is a fresh object (``fresh_attrs = True``), so callers may
modify it in place.
"""

from __future__ import annotations

import os
import stat as _stat
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .errors import KernelError
from .fs import ROOT_CALLER, Attr, Caller, DirEntry, SetAttr, StatFs
from .fs import may_access as _may_access

Gen = Callable[[Caller], bytes]

N = TypeVar("N", bound="Node")

_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
READDIR_BATCH = 256


def wants_write(flags: int) -> bool:
    """True if open(2) flags ask for write access."""
    return (flags & _ACCMODE) != os.O_RDONLY


class Node:
    """One inode of a synthetic tree.  ``mode`` carries the S_IF* type bits."""

    __slots__ = ("ino", "mode", "uid", "gid", "rdev", "size", "time_ns", "parent", "live")

    def __init__(self, mode: int, *, uid: int = 0, gid: int = 0, rdev: int = 0, size: int = 0,
                 time_ns: int = 0, live: Callable[[], bool] | None = None) -> None:
        self.ino = 0  # assigned when registered with a SyntheticFS
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.size = size
        self.time_ns = time_ns  # 0 = the filesystem's creation time
        self.parent: Dir | None = None
        self.live = live

    def nlink(self) -> int:
        return 1


class Dir(Node):
    """A directory.  Subclasses answer ``child`` (one name) and ``entries`` (all)."""

    __slots__ = ()

    def __init__(self, perm: int = 0o555, **kw) -> None:
        super().__init__(_stat.S_IFDIR | perm, **kw)

    def nlink(self) -> int:
        return 2

    def child(self, fs: "SyntheticFS", name: bytes, caller: Caller) -> Node | None:
        raise NotImplementedError

    def entries(self, fs: "SyntheticFS", caller: Caller) -> Iterable[tuple[bytes, Node]]:
        raise NotImplementedError


class StaticDir(Dir):
    """A directory with a fixed, ordered set of children."""

    __slots__ = ("children",)

    def __init__(self, perm: int = 0o555, **kw) -> None:
        super().__init__(perm, **kw)
        self.children: dict[bytes, Node] = {}

    def add(self, name: bytes, node: N) -> N:
        self.children[name] = node
        node.parent = self
        return node

    def child(self, fs, name, caller):
        return self.children.get(name)

    def entries(self, fs, caller):
        return self.children.items()


class DynamicDir(Dir):
    """A directory whose children are computed: ``list_fn(fs, caller)`` yields
    ``(name, node)`` pairs and ``lookup_fn(fs, name, caller)`` returns one node or None.
    Both must return interned nodes (``fs.intern``)."""

    __slots__ = ("list_fn", "lookup_fn")

    def __init__(self, list_fn, lookup_fn, perm: int = 0o555, **kw) -> None:
        super().__init__(perm, **kw)
        self.list_fn = list_fn
        self.lookup_fn = lookup_fn

    def child(self, fs, name, caller):
        return self.lookup_fn(fs, name, caller)

    def entries(self, fs, caller):
        return self.list_fn(fs, caller)


class File(Node):
    """A regular file generated at open: ``gen(caller) -> bytes``."""

    __slots__ = ("gen",)

    def __init__(self, gen: Gen, perm: int = 0o444, **kw) -> None:
        super().__init__(_stat.S_IFREG | perm, **kw)
        self.gen = gen


class Symlink(Node):
    """A symlink; the target is fixed bytes or ``callable(caller) -> bytes``.

    A fixed target reports its length as ``st_size`` (like a real symlink); a computed
    one reports 0, as Linux /proc does."""

    __slots__ = ("target",)

    def __init__(self, target: bytes | Gen, perm: int = 0o777, **kw) -> None:
        size = len(target) if isinstance(target, bytes) else 0
        super().__init__(_stat.S_IFLNK | perm, size=size, **kw)
        self.target = target

    def resolve(self, caller: Caller) -> bytes:
        t = self.target
        return t if isinstance(t, bytes) else t(caller)


class Device(Node):
    """A character device node; behaviour is up to the SyntheticFS subclass."""

    __slots__ = ("name",)

    def __init__(self, name: str, rdev: int, perm: int = 0o666, **kw) -> None:
        super().__init__(_stat.S_IFCHR | perm, rdev=rdev, **kw)
        self.name = name


@dataclass(slots=True)
class Handle:
    """An open file: the node, the open flags, who opened it and the content snapshot."""

    node: Node
    flags: int
    caller: Caller
    data: bytes = b""


@dataclass(slots=True)
class DirHandle:
    node: Dir
    entries: list[tuple[bytes, Node]]


def may_access(node: Node, caller: Caller, want: int) -> bool:
    """``kernel.fs.may_access`` for a synthetic node."""
    return _may_access(caller, node.mode, node.uid, node.gid, want)


class SyntheticFS:
    """The inode-level ``FileSystem`` over a tree of ``Node`` objects (read-only by default).

    Mutations follow Linux /proc: creating a new name gives ``create_error`` (ENOENT
    in /proc), removing or renaming an existing one gives EPERM, xattrs are ENOTSUP.
    ``setattr`` with only a size (O_TRUNC) is accepted and ignored.
    """

    root_ino = 1
    fresh_attrs = True  # every Attr we return is a new object the caller may modify
    volatile = True  # entries and attributes change on their own: hosts should not cache them
    create_error = "ENOENT"
    getxattr_error = "ENODATA"  # Linux /proc says ENOTSUP; /.vfs wants ENODATA

    def __init__(self, root: Dir, *, budget=None) -> None:
        self._budget = budget  # optional MemoryBudget (reserve/release) for snapshots
        self._time_ns = time.time_ns()
        self._nodes: dict[int, Node] = {}
        self._keys: dict[Hashable, Node] = {}
        self._key_of: dict[int, Hashable] = {}
        self._next_ino = 1
        self._handles: dict[int, Handle | DirHandle] = {}
        self._next_fh = 1
        self.root = root
        self.register(root)
        self._register_tree(root)

    # ---- node registry -------------------------------------------------------------------
    def register(self, node: Node) -> Node:
        """Give *node* an inode number (idempotent)."""
        if not node.ino:
            node.ino = self._next_ino
            self._next_ino += 1
            self._nodes[node.ino] = node
            if not node.time_ns:
                node.time_ns = self._time_ns
        return node

    def _register_tree(self, d: Dir) -> None:
        if isinstance(d, StaticDir):
            for n in d.children.values():
                self.register(n)
                if isinstance(n, Dir):
                    self._register_tree(n)

    def intern(self, key: Hashable, factory: Callable[[], N], parent: Dir | None = None) -> N:
        """The node for *key*, created by *factory* (and registered, with its static
        subtree) the first time.  Keeps inode numbers stable for dynamic entries."""
        node = self._keys.get(key)
        if node is None:
            made = factory()
            if parent is not None:
                made.parent = parent
            self.register(made)
            if isinstance(made, Dir):
                self._register_tree(made)
            self._keys[key] = made
            self._key_of[made.ino] = key
            return made
        return cast(N, node)  # a key always holds what its factory made

    def drop_keys(self, pred: Callable[[Any], bool]) -> None:  # Any: the keys the caller interned
        """Forget interned nodes whose key matches (their inodes then give ENOENT)."""
        for key in [k for k in self._keys if pred(k)]:
            node = self._keys.pop(key)
            self._key_of.pop(node.ino, None)
            self._drop_subtree(node)

    def _drop_subtree(self, node: Node) -> None:
        self._nodes.pop(node.ino, None)
        if isinstance(node, StaticDir):
            for n in node.children.values():
                self._drop_subtree(n)

    def node(self, ino: int) -> Node:
        """The live node of *ino*, or ENOENT."""
        node = self._nodes.get(ino)
        if node is None or (node.live is not None and not node.live()):
            raise KernelError("ENOENT", f"no such inode {ino}")
        return node

    def attr_of(self, node: Node) -> Attr:
        t = node.time_ns
        return Attr(node.ino, node.mode, node.nlink(), node.uid, node.gid, node.size,
                    t, t, t, t, node.rdev)

    def wants_direct_io(self, ino: int) -> bool:
        """True for generated files whose ``st_size`` does not tell their length."""
        node = self._nodes.get(ino)
        return node is not None and not isinstance(node, Dir)

    # ---- lookups -------------------------------------------------------------------------
    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        return self.attr_of(self.lookup_node(parent, name, caller))

    def lookup_node(self, parent: int, name: bytes, caller: Caller) -> Node:
        d = self.node(parent)
        if not isinstance(d, Dir):
            raise KernelError("ENOTDIR", "not a directory")
        if name == b".":
            return d
        if name == b"..":
            return d.parent or d
        if not may_access(d, caller, 1):
            raise KernelError("EACCES", "search permission denied")
        child = d.child(self, name, caller)
        if child is None or (child.live is not None and not child.live()):
            raise KernelError("ENOENT", f"no such entry {name!r}")
        return child

    async def getattr(self, ino: int) -> Attr:
        return self.attr_of(self.node(ino))

    async def readlink(self, ino: int, caller: Caller = ROOT_CALLER) -> bytes:
        node = self.node(ino)
        if not isinstance(node, Symlink):
            raise KernelError("EINVAL", "not a symlink")
        return node.resolve(caller)

    async def statfs(self) -> StatFs:
        return StatFs(4096, 4096, 0, 0, 0, 0, 0)

    # ---- files ---------------------------------------------------------------------------
    async def open(self, ino: int, flags: int, caller: Caller = ROOT_CALLER) -> int:
        node = self.node(ino)
        if isinstance(node, Dir):
            if wants_write(flags):
                raise KernelError("EISDIR", "is a directory")
            return self._new_handle(Handle(node, flags, caller))
        want = (4 if (flags & _ACCMODE) != os.O_WRONLY else 0) | (2 if wants_write(flags) else 0)
        if not may_access(node, caller, want):
            raise KernelError("EACCES", "permission denied")
        if isinstance(node, Device):
            h = Handle(node, flags, caller)
            self.device_open(h)
            return self._new_handle(h)
        if isinstance(node, File):
            data = b"" if (flags & _ACCMODE) == os.O_WRONLY else node.gen(caller)
            if self._budget is not None:
                self._budget.reserve(len(data))
            return self._new_handle(Handle(node, flags, caller, data))
        raise KernelError("ELOOP", "cannot open a symlink")

    def _new_handle(self, h: Handle | DirHandle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = h
        return fh

    def _handle(self, fh: int) -> Handle:
        h = self._handles.get(fh)
        if not isinstance(h, Handle):
            raise KernelError("EBADF", "bad file handle")
        return h

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self._handle(fh)
        if (h.flags & _ACCMODE) == os.O_WRONLY:
            raise KernelError("EBADF", "not open for reading")
        if isinstance(h.node, Device):
            return self.device_read(h, offset, size)
        if isinstance(h.node, Dir):
            raise KernelError("EISDIR", "is a directory")
        return h.data[offset:offset + size]

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self._handle(fh)
        if not wants_write(h.flags):
            raise KernelError("EBADF", "not open for writing")
        if isinstance(h.node, Device):
            return self.device_write(h, offset, data)
        raise KernelError("EIO", "file does not accept writes")

    async def flush(self, fh: int) -> None:
        self._handle(fh)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        self._handle(fh)

    async def release(self, fh: int) -> None:
        h = self._handles.pop(fh, None)
        if isinstance(h, Handle):
            if isinstance(h.node, Device):
                self.device_release(h)
            elif self._budget is not None:
                self._budget.release(len(h.data))

    # ---- device hooks (DevFS overrides) --------------------------------------------------
    def device_open(self, h: Handle) -> None:
        raise KernelError("ENXIO", "no such device")

    def device_read(self, h: Handle, offset: int, size: int) -> bytes:
        return b""

    def device_write(self, h: Handle, offset: int, data: bytes) -> int:
        return len(data)

    def device_release(self, h: Handle) -> None:
        pass

    # ---- directories ---------------------------------------------------------------------
    async def opendir(self, ino: int, caller: Caller = ROOT_CALLER) -> int:
        node = self.node(ino)
        if not isinstance(node, Dir):
            raise KernelError("ENOTDIR", "not a directory")
        if not may_access(node, caller, 4):
            raise KernelError("EACCES", "permission denied")
        entries = [(n, c) for n, c in node.entries(self, caller) if c.live is None or c.live()]
        return self._new_handle(DirHandle(node, entries))

    async def readdir(self, fh: int, offset: int) -> list[DirEntry]:
        h = self._handles.get(fh)
        if not isinstance(h, DirHandle):
            raise KernelError("EBADF", "bad directory handle")
        out = []
        attr_of = self.attr_of
        for i in range(offset, min(offset + READDIR_BATCH, len(h.entries))):
            name, node = h.entries[i]
            out.append(DirEntry(name, attr_of(node), i + 1))
        return out

    async def releasedir(self, fh: int) -> None:
        self._handles.pop(fh, None)

    async def fsyncdir(self, fh: int, datasync: bool = False) -> None:
        pass

    # ---- refused mutations ---------------------------------------------------------------
    def _refuse_new(self, parent: int, name: bytes, caller: Caller) -> KernelError:
        try:
            self.lookup_node(parent, name, caller)
        except KernelError as e:
            if e.code == "ENOENT":
                return KernelError(self.create_error, "cannot create entries here")
            return e
        return KernelError("EEXIST", "file exists")

    async def setattr(self, ino: int, changes: SetAttr, caller: Caller = ROOT_CALLER) -> Attr:
        node = self.node(ino)
        others = (changes.mode, changes.uid, changes.gid, changes.atime_ns, changes.mtime_ns,
                  changes.ctime_ns)
        if any(v is not None for v in others):
            raise KernelError("EPERM", "cannot change attributes here")
        if changes.size is not None and isinstance(node, Dir):
            raise KernelError("EISDIR", "is a directory")
        return self.attr_of(node)  # truncation (O_TRUNC) is accepted and ignored

    async def mknod(self, parent, name, mode, rdev, caller=ROOT_CALLER) -> Attr:
        raise self._refuse_new(parent, name, caller)

    async def mkdir(self, parent, name, mode, caller=ROOT_CALLER) -> Attr:
        raise self._refuse_new(parent, name, caller)

    async def symlink(self, parent, name, target, caller=ROOT_CALLER) -> Attr:
        raise self._refuse_new(parent, name, caller)

    async def link(self, ino, new_parent, new_name, caller=ROOT_CALLER) -> Attr:
        raise self._refuse_new(new_parent, new_name, caller)

    async def create(self, parent, name, mode, flags, caller=ROOT_CALLER) -> tuple[int, Attr]:
        raise self._refuse_new(parent, name, caller)

    async def unlink(self, parent, name, caller=ROOT_CALLER) -> None:
        node = self.lookup_node(parent, name, caller)
        if isinstance(node, Dir):
            raise KernelError("EISDIR", "is a directory")
        raise KernelError("EPERM", "cannot remove entries here")

    async def rmdir(self, parent, name, caller=ROOT_CALLER) -> None:
        node = self.lookup_node(parent, name, caller)
        if not isinstance(node, Dir):
            raise KernelError("ENOTDIR", "not a directory")
        raise KernelError("EPERM", "cannot remove entries here")

    async def rename(self, old_parent, old_name, new_parent, new_name, flags=0,
                     caller=ROOT_CALLER) -> None:
        self.lookup_node(old_parent, old_name, caller)
        raise KernelError("EPERM", "cannot rename entries here")

    # ---- xattrs and inode references -----------------------------------------------------
    async def getxattr(self, ino: int, name: bytes) -> bytes:
        self.node(ino)
        raise KernelError(self.getxattr_error, "no such attribute")

    async def setxattr(self, ino, name, value, flags=0, caller=ROOT_CALLER) -> None:
        self.node(ino)
        raise KernelError("ENOTSUP", "extended attributes are not supported here")

    async def listxattr(self, ino: int) -> list[bytes]:
        self.node(ino)
        return []

    async def removexattr(self, ino, name, caller=ROOT_CALLER) -> None:
        self.node(ino)
        raise KernelError("ENOTSUP", "extended attributes are not supported here")

    def retain(self, ino: int) -> None:
        pass

    async def forget(self, ino: int) -> None:
        pass
