"""The metadata store protocol: inodes, directory entries, symlinks, chunk maps, block
refcounts, xattrs and versions.

The API is **synchronous** on purpose.  Under trio a run of synchronous calls can
never be interleaved with another task, so a group of metadata changes is atomic
without locks as long as nobody ``await``s in the middle (S3QL's rule).

Durability is *group commit*: changes accumulate in one open transaction and
``commit()`` makes everything so far durable at once (the VFS calls it on fsync,
every second and at unmount).  ``transaction()`` is a nested atomic section
inside that group (a SAVEPOINT in SQLite).

Block lifecycle: a chunk row references a block by its key (the hex xxh3-128 of
its bytes); the store keeps a refcount per block that counts chunk rows and
version rows.  When a refcount reaches zero the key becomes *dead*; ``commit()``
returns the keys that are dead in the committed state, and only then may the
caller delete those blocks from the block store.  A dead key that is referenced
again before the commit is revived and not returned.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Iterator, Protocol

from kernel.errors import KernelError
from kernel.fs import ROOT_INO, SYMLOOP_MAX, FileTypeMixin

INLINE = "inline"
CHUNKED = "chunked"


class _NotLoaded:
    """Stands for inline bytes that ``get_inode_attrs`` did not read.  Any use of it
    as content fails loudly, so a path that needs the bytes but fetched only the
    attributes is a crash in the tests, never an empty file."""

    __slots__ = ()

    def _refuse(self, *args):
        raise TypeError("inline content not loaded: use get_inode or get_inline_content")

    __bool__ = __len__ = __iter__ = __getitem__ = __bytes__ = _refuse

    def __repr__(self) -> str:
        return "NOT_LOADED"


NOT_LOADED = _NotLoaded()


@dataclass(slots=True)
class InodeRecord(FileTypeMixin):
    """One row of the inode table.  ``mode`` carries the S_IF* type bits."""

    ino: int
    mode: int
    uid: int
    gid: int
    size: int = 0
    nlink: int = 0
    rdev: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    birthtime_ns: int = 0
    storage_mode: str = INLINE
    inline_content: bytes | _NotLoaded | None = None  # NOT_LOADED: from get_inode_attrs


# Fields update_inode accepts.
INODE_FIELDS = (
    "mode", "uid", "gid", "size", "nlink", "rdev", "atime_ns", "mtime_ns", "ctime_ns",
    "birthtime_ns", "storage_mode", "inline_content",
)


@dataclass(slots=True)
class DentryRecord:
    """A directory entry.  ``seq`` orders a listing and is the readdir cookie: it is
    assigned from a store-wide counter on insert (and on rename), so a cookie stays
    valid while other entries come and go."""

    name: bytes
    ino: int
    seq: int
    mode: int = 0  # the child's mode (type bits), so listings need no extra lookup


@dataclass(slots=True)
class ChunkRef:
    chunk_index: int
    key: str


@dataclass(slots=True)
class VersionMeta:
    version: int
    size: int
    created_at_ns: int
    storage_mode: str
    inline_content: bytes | None


@dataclass(slots=True)
class StoreStats:
    inodes: int
    files: int
    directories: int
    logical_bytes: int  # sum of regular file sizes
    blocks: int  # distinct referenced blocks
    stored_bytes: int  # sum of their sizes
    references: int  # chunk + version references to blocks
    versions: int


class MetadataStore(Protocol):
    """The metadata store contract, typed: ``memory.py`` and ``sqlite.py`` implement it (and inherit
    the shared path resolution written here once).  Method contracts:

    Inodes
      create_inode(mode, uid, gid, now_ns, rdev=0, symlink_target=None, *, nlink=0, size=0) -> ino
          size 0, nlink 0, all four times = now_ns, inline with content None.
          Numbers start at 2 and are never reused.
      get_inode(ino) -> InodeRecord | None           (a copy)
      get_inode_attrs(ino) -> InodeRecord | None     the same without the inline bytes
          (inline_content is NOT_LOADED): most requests need attributes only, and
          reading up to inline_threshold bytes of content each time is a copy per call
      get_inline_content(ino) -> bytes | None        just the inline bytes
      update_inode(ino, **fields)                    (unknown ino: no-op)
      delete_inode(ino)                              drops its chunk rows (decref), its
          symlink target, xattrs, version rows (decref) and the dentries *inside* it.
          Unknown ino: no-op.  EBUSY for the root or while a dentry still names it
          (remove those first).
      delete_inodes([ino])                           delete_inode of each, as one step: EBUSY
          (and nothing deleted) if any is the root or still named

    Directory entries (names are bytes)
      lookup(parent, name) -> ino | None
      create_dentry(parent, name, child)             EEXIST if taken; ENOENT unknown
          parent or child; ENOTDIR parent not a directory.  nlink is the caller's job.
      remove_dentry(parent, name)                    missing: no-op
      rename_dentry(sp, sn, dp, dn) -> replaced ino | None
          moves, replacing dp/dn (its inode is left alone); new seq.  ENOENT if the
          source is missing (destination untouched); ENOENT/ENOTDIR for a bad dp.
          Same parent and name: no-op.
      exchange_dentries(p1, n1, p2, n2)              RENAME_EXCHANGE: swap the targets
          (names keep their seq); ENOENT unless both exist
      list_dir(parent, after_seq=0, limit=None) -> [DentryRecord] in seq order,
          only entries with seq > after_seq (the readdir cookie); unknown parent: []
      list_dir_with_stats(parent, after_seq=0, limit=None) -> [(DentryRecord, InodeRecord)]
          (records as from get_inode_attrs)
      has_children(parent) -> bool
      parents_of(ino) -> [(parent, name)]            for fsck and /proc-style lookups

    Symlinks
      read_symlink(ino) -> bytes                     EINVAL if not a symlink

    Chunks and blocks
      get_chunk_key(ino, idx) -> str | None
      set_chunk_key(ino, idx, key, length=0)         insert or replace; incref new, decref old
          (ENOENT unknown ino)
      get_all_chunk_keys(ino) -> [ChunkRef] by index
      delete_all_chunks(ino) -> [key]                removed keys (decref each)
      delete_chunks_from(ino, start) -> [key]
      delete_chunk(ino, idx) -> key | None           unmap one chunk (decref); a hole remains
      stored_bytes(ino) -> int                       sum of the lengths of the blocks it maps
      orphan_inodes() -> [ino]                       nlink 0 and no name (left by a crash while open)
      block_refcount(key) -> int
      block_length(key) -> int | None
      iter_blocks() -> Iterator[(key, refcount, length)]
      check_refcounts() -> [(key, stored, actual)]  mismatches between the blocks
          table and the chunk + version rows (empty when consistent; for fsck/tests)

    Transactions / durability
      transaction() -> context manager               nested atomic section
      commit() -> [dead keys]                        durable group commit
      close()                                        commit and close

    Xattrs
      get_xattr(ino, name) -> bytes | None; set_xattr(ino, name, value);
      list_xattrs(ino) -> [bytes] sorted; remove_xattr(ino, name) -> bool (False if absent)
      set_xattr on an unknown ino: ENOENT

    Config (written at mkfs): get_config(key) -> str | None; set_config(key, value)

    Versioning (only with versioning=True; otherwise KernelError ENOTSUP)
      create_version(ino, now_ns) -> n    1 + highest existing; ENOENT unknown ino
      get_version(ino, n) -> VersionMeta | None
      list_versions(ino) -> [VersionMeta] newest first
      get_version_chunk_map(ino, n) -> [ChunkRef]
      delete_versions(ino, [n]) -> [orphaned keys]   keys no longer referenced anywhere
          (they are dead keys like any other: delete the blocks only once commit()
          has returned them)
      restore_version(ino, n, now_ns)                ENOENT if missing

    stats() -> StoreStats
    """

    versioning: bool = False

    # -- shared path resolution (Linux rules: '.', '..', symlinks, ELOOP after 40) -----

    def resolve_path(self, path: str | bytes, follow: bool = True) -> int:
        """Inode of *path*.  A trailing slash (``"/link/"``) follows a final symlink and
        requires a directory (ENOTDIR otherwise), as on Linux."""
        if isinstance(path, str):
            path = path.encode("utf-8", "surrogateescape")
        if path.endswith(b"/") and path.strip(b"/"):
            ino, _ = self._walk(path, follow_last=True)
            node = self.get_inode_attrs(ino)
            if node is not None and not node.is_dir:
                raise KernelError("ENOTDIR", "not a directory")
            return ino
        parent, name = self._walk(path, follow_last=follow)
        return parent if name is None else self._final(parent, name)

    def resolve_parent_path(self, path: str | bytes) -> tuple[int, bytes]:
        parent, name = self._walk(path, follow_last=False, want_parent=True)
        if name is None:
            raise KernelError("ENOENT", "cannot resolve parent of root")
        return parent, name

    def _final(self, parent: int, name: bytes) -> int:
        ino = self.lookup(parent, name)
        if ino is None:
            raise KernelError("ENOENT", "no such file or directory")
        return ino

    def _walk(self, path: str | bytes, follow_last: bool, want_parent: bool = False):
        """Walk *path* from the root.  Returns (ino, None) when the walk ends on an inode,
        or (parent, last_name) when ``want_parent`` and the last name is a real name."""
        if isinstance(path, str):
            path = path.encode("utf-8", "surrogateescape")
        todo = [c for c in path.split(b"/") if c][::-1]  # stack, next component last
        stack = [ROOT_INO]  # inode chain from the root, for '..'
        hops = 0
        while todo:
            comp = todo.pop()
            cur = stack[-1]
            node = self.get_inode_attrs(cur)
            if node is None or not node.is_dir:
                raise KernelError("ENOTDIR" if node else "ENOENT", "not a directory")
            if comp == b".":
                continue
            if comp == b"..":
                if len(stack) > 1:
                    stack.pop()
                continue
            last = not todo
            if last and want_parent:
                return cur, comp
            child = self.lookup(cur, comp)
            if child is None:
                raise KernelError("ENOENT", "no such file or directory")
            cnode = self.get_inode_attrs(child)
            if cnode is not None and cnode.is_symlink and (follow_last or not last):
                hops += 1
                if hops > SYMLOOP_MAX:
                    raise KernelError("ELOOP", "too many levels of symbolic links")
                target = self.read_symlink(child)
                if not target:
                    raise KernelError("ENOENT", "empty symlink target")
                if target.startswith(b"/"):
                    stack = [ROOT_INO]
                todo.extend([c for c in target.split(b"/") if c][::-1])
                continue
            stack.append(child)
        return stack[-1], None

    # -- the contract (implemented by each store) ----------------------------------

    def transaction(self) -> AbstractContextManager: ...

    def commit(self) -> list[str]: ...

    def close(self) -> None: ...

    def create_inode(self, mode: int, uid: int, gid: int, now_ns: int, rdev: int = 0,
                     symlink_target: bytes | None = None, *, nlink: int = 0, size: int = 0) -> int: ...

    def get_inode(self, ino: int) -> InodeRecord | None: ...

    def get_inode_attrs(self, ino: int) -> InodeRecord | None: ...

    def get_inline_content(self, ino: int) -> bytes | None: ...

    def update_inode(self, ino: int, **fields) -> None: ...

    def delete_inode(self, ino: int) -> None: ...

    def lookup(self, parent: int, name: bytes) -> int | None: ...

    def create_dentry(self, parent: int, name: bytes, child: int) -> None: ...

    def remove_dentry(self, parent: int, name: bytes) -> None: ...

    def rename_dentry(self, src_parent: int, src_name: bytes, dst_parent: int,
                      dst_name: bytes) -> int | None: ...

    def exchange_dentries(self, p1: int, n1: bytes, p2: int, n2: bytes) -> None: ...

    def list_dir(self, parent: int, after_seq: int = 0,
                 limit: int | None = None) -> list[DentryRecord]: ...

    def list_dir_with_stats(self, parent: int, after_seq: int = 0,
                            limit: int | None = None) -> list[tuple[DentryRecord, InodeRecord]]: ...

    def has_children(self, parent: int) -> bool: ...

    def parents_of(self, ino: int) -> list[tuple[int, bytes]]: ...

    def read_symlink(self, ino: int) -> bytes: ...

    def get_chunk_key(self, ino: int, idx: int) -> str | None: ...

    def set_chunk_key(self, ino: int, idx: int, key: str, length: int = 0) -> None: ...

    def get_all_chunk_keys(self, ino: int) -> list[ChunkRef]: ...

    def delete_all_chunks(self, ino: int) -> list[str]: ...

    def delete_chunks_from(self, ino: int, start: int) -> list[str]: ...

    def delete_chunk(self, ino: int, idx: int) -> str | None: ...

    def orphan_inodes(self) -> list[int]: ...

    def stored_bytes(self, ino: int) -> int: ...

    def block_refcount(self, key: str) -> int: ...

    def block_length(self, key: str) -> int | None: ...

    def iter_blocks(self) -> Iterator[tuple[str, int, int]]: ...

    def check_refcounts(self) -> list[tuple[str, int, int]]: ...

    def get_xattr(self, ino: int, name: bytes) -> bytes | None: ...

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None: ...

    def list_xattrs(self, ino: int) -> list[bytes]: ...

    def remove_xattr(self, ino: int, name: bytes) -> bool: ...

    def get_config(self, key: str) -> str | None: ...

    def set_config(self, key: str, value: str) -> None: ...

    def create_version(self, ino: int, now_ns: int) -> int: ...

    def get_version(self, ino: int, n: int) -> VersionMeta | None: ...

    def list_versions(self, ino: int) -> list[VersionMeta]: ...

    def get_version_chunk_map(self, ino: int, n: int) -> list[ChunkRef]: ...

    def delete_versions(self, ino: int, versions: list[int]) -> list[str]: ...

    def restore_version(self, ino: int, n: int, now_ns: int) -> None: ...

    def stats(self) -> StoreStats: ...

    # -- helpers shared by both implementations ------------------------------------

    def _require_versioning(self) -> None:
        if not self.versioning:
            raise KernelError("ENOTSUP", "versioning is not enabled")





    def delete_inodes(self, inos: list[int]) -> None:
        """Delete several inodes (see the contract above); stores batch it where that is cheaper."""
        with self.transaction():
            self._check_deletable(inos)
            for ino in inos:
                self.delete_inode(ino)

    def _check_deletable(self, inos: list[int]) -> None:
        if ROOT_INO in inos:
            raise KernelError("EBUSY", "cannot delete the root inode")
        for ino in inos:
            if self.parents_of(ino):
                raise KernelError("EBUSY", f"inode {ino} is still linked")



