"""In-memory metadata store: plain dicts, same semantics and ordering as the SQLite store.

Used by tests and by throw-away sandboxes.  Nothing is durable, and
``transaction()`` is a no-op context manager: there is no rollback, partial
effects of a failed section stay (callers check preconditions before mutating,
which the VFS does anyway).  ``commit()`` only hands back the dead block keys.

Records handed out are copies, so callers can never alias the store's state.
"""

from __future__ import annotations

import stat as _stat
from bisect import bisect_right
from contextlib import nullcontext
from typing import Iterator

from kernel.errors import KernelError
from kernel.fs import ROOT_INO
from vfsfuse.storage.metadata.base import (
    CHUNKED,
    INLINE,
    INODE_FIELDS,
    NOT_LOADED,
    ChunkRef,
    DentryRecord,
    InodeRecord,
    MetadataStore,
    StoreStats,
    VersionMeta,
    _NotLoaded,
)

_ROOT_MODE = _stat.S_IFDIR | 0o755
_NULL_CTX = nullcontext()
_INODE_FIELD_SET = frozenset(INODE_FIELDS)


def _content(r: InodeRecord) -> bytes | None:
    """The inline bytes of a stored record (stored records always carry them)."""
    content = r.inline_content
    assert not isinstance(content, _NotLoaded)
    return content


def _copy(r: InodeRecord, with_content: bool = True) -> InodeRecord:
    return InodeRecord(
        r.ino, r.mode, r.uid, r.gid, r.size, r.nlink, r.rdev, r.atime_ns, r.mtime_ns,
        r.ctime_ns, r.birthtime_ns, r.storage_mode, _content(r) if with_content else NOT_LOADED,
    )


def _frozen(value):
    """bytes-like values are stored as immutable bytes so callers cannot mutate them later."""
    if value is not None and not isinstance(value, bytes):
        return bytes(value)
    return value


class _Dir:
    """Entries of one directory.

    ``names`` maps name -> entry ``[ino, seq, name]``; ``by_seq`` maps seq -> the same
    entry and, being a dict, iterates in insertion order, which is seq order because
    seqs only grow.
    ``seqs`` is the sorted list of seqs ever inserted (with tombstones) so a
    listing can start after a cookie by bisection.
    """

    __slots__ = ("names", "by_seq", "seqs")

    def __init__(self) -> None:
        self.names: dict[bytes, list] = {}
        self.by_seq: dict[int, list] = {}
        self.seqs: list[int] = []

    def add(self, name: bytes, ino: int, seq: int) -> None:
        entry = [ino, seq, name]
        self.names[name] = entry
        self.by_seq[seq] = entry
        self.seqs.append(seq)

    def remove(self, name: bytes) -> int | None:
        entry = self.names.pop(name, None)
        if entry is None:
            return None
        del self.by_seq[entry[1]]
        if len(self.seqs) > 32 and len(self.seqs) > 2 * len(self.by_seq):
            self.seqs = list(self.by_seq)  # drop tombstones
        return entry[0]

    def iter_after(self, after_seq: int) -> Iterator[list]:
        """Entries ``[ino, seq, name]`` with seq > after_seq, in seq order."""
        by_seq = self.by_seq
        if after_seq <= 0:
            yield from by_seq.values()
            return
        seqs = self.seqs
        for i in range(bisect_right(seqs, after_seq), len(seqs)):
            entry = by_seq.get(seqs[i])
            if entry is not None:
                yield entry


class MemoryMetadataStore(MetadataStore):
    """Dict-backed ``MetadataStore`` (see base.py for the method contracts).

    Limits, for memory filesystems that untrusted processes can fill (tmpfs's
    ``nr_inodes=`` and the space its inodes take): *max_inodes* bounds the inodes and,
    separately, the names (hard links cost a name each); *max_bytes* bounds the bytes
    kept per inode (inline content, symlink targets, xattr names and values).  Past
    either, the call gives ENOSPC and changes nothing.  Version snapshots are not
    counted (memory filesystems run without versioning)."""

    def __init__(self, versioning: bool = False, now_ns: int = 0, *,
                 max_inodes: int | None = None, max_bytes: int | None = None) -> None:
        import time

        self.max_inodes = max_inodes
        self.max_bytes = max_bytes
        self.names = 0  # directory entries
        self.payload_bytes = 0  # inline content + symlink targets + xattrs
        self.versioning = versioning
        now = now_ns or time.time_ns()
        self._inodes: dict[int, InodeRecord] = {
            ROOT_INO: InodeRecord(ROOT_INO, _ROOT_MODE, 0, 0, 0, 2, 0, now, now, now, now)
        }
        self._next_ino = ROOT_INO + 1
        self._dirs: dict[int, _Dir] = {ROOT_INO: _Dir()}
        self._links: dict[int, dict[tuple[int, bytes], None]] = {}  # child -> {(parent, name)}
        self._symlinks: dict[int, bytes] = {}
        self._chunks: dict[int, dict[int, str]] = {}
        self._blocks: dict[str, list[int]] = {}  # key -> [refcount, length]
        self._pending_dead: dict[str, int] = {}  # key -> length, dead since the last commit
        self._xattrs: dict[int, dict[bytes, bytes]] = {}
        self._config: dict[str, str] = {}
        # ino -> {version: (VersionMeta, {chunk_index: key})}
        self._versions: dict[int, dict[int, tuple[VersionMeta, dict[int, str]]]] = {}
        self._seq = 0
        self._closed = False

    # -- inodes ----------------------------------------------------------------------

    def _charge(self, grow: int) -> None:
        """Account *grow* more payload bytes (negative: fewer); ENOSPC past max_bytes."""
        if grow > 0 and self.max_bytes is not None and self.payload_bytes + grow > self.max_bytes:
            raise KernelError("ENOSPC", f"no space left for inode data ({self.max_bytes} bytes)")
        self.payload_bytes += grow

    def create_inode(self, mode: int, uid: int, gid: int, now_ns: int, rdev: int = 0,
                     symlink_target: bytes | None = None, *, nlink: int = 0, size: int = 0) -> int:
        if self.max_inodes is not None and len(self._inodes) >= self.max_inodes:
            raise KernelError("ENOSPC", f"no free inodes ({self.max_inodes})")
        if symlink_target is not None:
            self._charge(len(symlink_target))
        ino = self._next_ino
        self._next_ino = ino + 1
        self._inodes[ino] = InodeRecord(ino, mode, uid, gid, size, nlink, rdev, now_ns, now_ns, now_ns,
                                        now_ns)
        if _stat.S_ISDIR(mode):
            self._dirs[ino] = _Dir()
        if symlink_target is not None:
            self._symlinks[ino] = _frozen(symlink_target)
        return ino

    def get_inode(self, ino: int) -> InodeRecord | None:
        r = self._inodes.get(ino)
        return None if r is None else _copy(r)

    def get_inode_attrs(self, ino: int) -> InodeRecord | None:
        r = self._inodes.get(ino)
        return None if r is None else _copy(r, with_content=False)

    def get_inline_content(self, ino: int) -> bytes | None:
        r = self._inodes.get(ino)
        return None if r is None else _content(r)

    def update_inode(self, ino: int, **fields) -> None:
        if not _INODE_FIELD_SET.issuperset(fields):
            raise TypeError(f"unknown inode fields: {sorted(set(fields) - _INODE_FIELD_SET)}")
        r = self._inodes.get(ino)
        if r is None:
            return
        if "inline_content" in fields:
            value = fields["inline_content"] = _frozen(fields["inline_content"])
            self._charge(len(value or b"") - len(r.inline_content or b""))
        for name, value in fields.items():
            setattr(r, name, value)
        if "mode" in fields and _stat.S_ISDIR(r.mode) and ino not in self._dirs:
            self._dirs[ino] = _Dir()

    def delete_inode(self, ino: int) -> None:
        if ino == ROOT_INO:
            raise KernelError("EBUSY", "cannot delete the root inode")
        if ino not in self._inodes:
            return
        if self._links.get(ino):
            raise KernelError("EBUSY", f"inode {ino} is still linked")
        for version in list(self._versions.get(ino, ())):
            self._drop_version(ino, version)
        self._versions.pop(ino, None)
        xattrs = self._xattrs.pop(ino, None)
        if xattrs:
            self.payload_bytes -= sum(len(k) + len(v) for k, v in xattrs.items())
        self.payload_bytes -= len(self._symlinks.pop(ino, b"")) + len(self._inodes[ino].inline_content or b"")
        self.delete_all_chunks(ino)
        d = self._dirs.pop(ino, None)
        if d is not None:
            for name, (child, _seq, _name) in d.names.items():
                self._unlink(child, ino, name)
        del self._inodes[ino]

    # -- directory entries -----------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _link(self, child: int, parent: int, name: bytes) -> None:
        links = self._links.get(child)
        if links is None:
            self._links[child] = {(parent, name): None}
        elif (parent, name) not in links:
            links[(parent, name)] = None
        else:
            return
        self.names += 1

    def _unlink(self, child: int, parent: int, name: bytes) -> None:
        links = self._links.get(child)
        if links is not None and (parent, name) in links:
            del links[(parent, name)]
            self.names -= 1
            if not links:
                del self._links[child]

    def _dir_for_write(self, parent: int) -> _Dir:
        d = self._dirs.get(parent)
        if d is None:
            if parent in self._inodes:
                raise KernelError("ENOTDIR", f"inode {parent} is not a directory")
            raise KernelError("ENOENT", f"no directory inode {parent}")
        return d

    def lookup(self, parent: int, name: bytes) -> int | None:
        d = self._dirs.get(parent)
        if d is None:
            return None
        entry = d.names.get(name)
        return None if entry is None else entry[0]

    def create_dentry(self, parent: int, name: bytes, child: int) -> None:
        d = self._dir_for_write(parent)
        if name in d.names:
            raise KernelError("EEXIST", "file exists")
        if child not in self._inodes:
            raise KernelError("ENOENT", f"no inode {child}")
        if self.max_inodes is not None and self.names >= self.max_inodes:
            raise KernelError("ENOSPC", f"no room for more names ({self.max_inodes})")
        name = _frozen(name)
        d.add(name, child, self._next_seq())
        self._link(child, parent, name)

    def remove_dentry(self, parent: int, name: bytes) -> None:
        d = self._dirs.get(parent)
        if d is None:
            return
        child = d.remove(name)
        if child is not None:
            self._unlink(child, parent, name)

    def rename_dentry(self, src_parent: int, src_name: bytes, dst_parent: int,
                      dst_name: bytes) -> int | None:
        sd = self._dirs.get(src_parent)
        entry = None if sd is None else sd.names.get(src_name)
        if entry is None:
            raise KernelError("ENOENT", "rename source does not exist")
        assert sd is not None  # else entry is None
        dd = self._dir_for_write(dst_parent)
        if src_parent == dst_parent and src_name == dst_name:
            return None
        child = entry[0]
        replaced = dd.remove(dst_name)
        if replaced is not None:
            self._unlink(replaced, dst_parent, dst_name)
        sd.remove(src_name)
        self._unlink(child, src_parent, src_name)
        dst_name = _frozen(dst_name)
        dd.add(dst_name, child, self._next_seq())
        self._link(child, dst_parent, dst_name)
        return replaced

    def exchange_dentries(self, p1: int, n1: bytes, p2: int, n2: bytes) -> None:
        d1, d2 = self._dirs.get(p1), self._dirs.get(p2)
        e1 = None if d1 is None else d1.names.get(n1)
        e2 = None if d2 is None else d2.names.get(n2)
        if e1 is None or e2 is None:
            raise KernelError("ENOENT", "exchange: both names must exist")
        if e1 is e2:
            return
        c1, c2 = e1[0], e2[0]
        self._unlink(c1, p1, n1)
        self._unlink(c2, p2, n2)
        e1[0], e2[0] = c2, c1
        self._link(c2, p1, n1)
        self._link(c1, p2, n2)

    def list_dir(self, parent: int, after_seq: int = 0,
                 limit: int | None = None) -> list[DentryRecord]:
        d = self._dirs.get(parent)
        if d is None:
            return []
        out: list[DentryRecord] = []
        inodes = self._inodes
        for ino, seq, name in d.iter_after(after_seq):
            if limit is not None and len(out) >= limit:
                break
            out.append(DentryRecord(name, ino, seq, inodes[ino].mode))
        return out

    def list_dir_with_stats(self, parent: int, after_seq: int = 0,
                            limit: int | None = None) -> list[tuple[DentryRecord, InodeRecord]]:
        out = []
        for entry in self.list_dir(parent, after_seq, limit):
            r = self._inodes.get(entry.ino)
            if r is not None:
                out.append((entry, _copy(r, with_content=False)))
        return out

    def has_children(self, parent: int) -> bool:
        d = self._dirs.get(parent)
        return bool(d and d.names)

    def parents_of(self, ino: int) -> list[tuple[int, bytes]]:
        return list(self._links.get(ino, ()))

    # -- symlinks --------------------------------------------------------------------

    def read_symlink(self, ino: int) -> bytes:
        target = self._symlinks.get(ino)
        if target is None:
            raise KernelError("EINVAL", f"inode {ino} is not a symlink")
        return target

    # -- chunks and blocks -----------------------------------------------------------

    def _incref(self, key: str, length: int = 0) -> None:
        b = self._blocks.get(key)
        if b is None:
            old_len = self._pending_dead.pop(key, 0)
            self._blocks[key] = [1, length or old_len]
        else:
            b[0] += 1
            if length and not b[1]:
                b[1] = length

    def _decref(self, key: str) -> bool:
        """Drop one reference; True if the key died."""
        b = self._blocks.get(key)
        if b is None:
            return False
        b[0] -= 1
        if b[0] > 0:
            return False
        del self._blocks[key]
        self._pending_dead[key] = b[1]
        return True

    def get_chunk_key(self, ino: int, idx: int) -> str | None:
        m = self._chunks.get(ino)
        return None if m is None else m.get(idx)

    def set_chunk_key(self, ino: int, idx: int, key: str, length: int = 0) -> None:
        if ino not in self._inodes:
            raise KernelError("ENOENT", f"no inode {ino}")
        m = self._chunks.get(ino)
        if m is None:
            m = self._chunks[ino] = {}
        old = m.get(idx)
        self._incref(key, length)
        m[idx] = key
        if old is not None:
            self._decref(old)

    def get_all_chunk_keys(self, ino: int) -> list[ChunkRef]:
        m = self._chunks.get(ino)
        if not m:
            return []
        return [ChunkRef(i, m[i]) for i in sorted(m)]

    def delete_all_chunks(self, ino: int) -> list[str]:
        m = self._chunks.pop(ino, None)
        if not m:
            return []
        keys = list(m.values())
        for key in keys:
            self._decref(key)
        return keys

    def delete_chunks_from(self, ino: int, start: int) -> list[str]:
        m = self._chunks.get(ino)
        if not m:
            return []
        doomed = [i for i in m if i >= start]
        keys = [m.pop(i) for i in doomed]
        for key in keys:
            self._decref(key)
        return keys

    def delete_chunk(self, ino: int, idx: int) -> str | None:
        m = self._chunks.get(ino)
        key = m.pop(idx, None) if m else None
        if key is not None:
            self._decref(key)
        return key

    def stored_bytes(self, ino: int) -> int:
        return sum(self._blocks[k][1] for k in self._chunks.get(ino, {}).values() if k in self._blocks)

    def orphan_inodes(self) -> list[int]:
        return sorted(ino for ino, r in self._inodes.items()
                      if r.nlink == 0 and ino != 1 and not self._links.get(ino))

    def block_refcount(self, key: str) -> int:
        b = self._blocks.get(key)
        return 0 if b is None else b[0]

    def block_length(self, key: str) -> int | None:
        b = self._blocks.get(key)
        return None if b is None else b[1]

    def iter_blocks(self) -> Iterator[tuple[str, int, int]]:
        return iter([(k, b[0], b[1]) for k, b in self._blocks.items()])

    def check_refcounts(self) -> list[tuple[str, int, int]]:
        actual: dict[str, int] = {}
        for m in self._chunks.values():
            for key in m.values():
                actual[key] = actual.get(key, 0) + 1
        for vs in self._versions.values():
            for _meta, cmap in vs.values():
                for key in cmap.values():
                    actual[key] = actual.get(key, 0) + 1
        bad = []
        for key in sorted(set(actual) | set(self._blocks)):
            stored = self.block_refcount(key)
            if stored != actual.get(key, 0):
                bad.append((key, stored, actual.get(key, 0)))
        return bad

    # -- transactions / durability ---------------------------------------------------

    def transaction(self):
        """No-op: the memory store has no rollback (documented in the module docstring)."""
        return _NULL_CTX

    def commit(self) -> list[str]:
        dead = list(self._pending_dead)
        self._pending_dead = {}
        return dead

    def close(self) -> None:
        self._closed = True

    # -- xattrs ----------------------------------------------------------------------

    def get_xattr(self, ino: int, name: bytes) -> bytes | None:
        x = self._xattrs.get(ino)
        return None if x is None else x.get(name)

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        if ino not in self._inodes:
            raise KernelError("ENOENT", f"no inode {ino}")
        x = self._xattrs.get(ino)
        old = None if x is None else x.get(name)
        self._charge(len(value) - (len(old) if old is not None else -len(name)))
        if x is None:
            x = self._xattrs[ino] = {}
        x[_frozen(name)] = _frozen(value)

    def list_xattrs(self, ino: int) -> list[bytes]:
        return sorted(self._xattrs.get(ino, ()))

    def remove_xattr(self, ino: int, name: bytes) -> bool:
        x = self._xattrs.get(ino)
        if x is None or name not in x:
            return False
        self.payload_bytes -= len(name) + len(x.pop(name))
        return True

    # -- config ----------------------------------------------------------------------

    def get_config(self, key: str) -> str | None:
        return self._config.get(key)

    def set_config(self, key: str, value: str) -> None:
        self._config[key] = str(value)

    # -- versioning ------------------------------------------------------------------

    def create_version(self, ino: int, now_ns: int) -> int:
        self._require_versioning()
        r = self._inodes.get(ino)
        if r is None:
            raise KernelError("ENOENT", f"no inode {ino}")
        vs = self._versions.setdefault(ino, {})
        n = max(vs, default=0) + 1
        cmap = dict(sorted(self._chunks.get(ino, {}).items()))
        for key in cmap.values():
            self._incref(key)
        vs[n] = (VersionMeta(n, r.size, now_ns, r.storage_mode, _content(r)), cmap)
        return n

    def get_version(self, ino: int, n: int) -> VersionMeta | None:
        self._require_versioning()
        v = self._versions.get(ino, {}).get(n)
        if v is None:
            return None
        m = v[0]
        return VersionMeta(m.version, m.size, m.created_at_ns, m.storage_mode, m.inline_content)

    def list_versions(self, ino: int) -> list[VersionMeta]:
        self._require_versioning()
        vs = self._versions.get(ino, {})
        out: list[VersionMeta] = []
        for n in sorted(vs, reverse=True):
            meta = self.get_version(ino, n)
            assert meta is not None  # n is one of vs
            out.append(meta)
        return out

    def get_version_chunk_map(self, ino: int, n: int) -> list[ChunkRef]:
        self._require_versioning()
        v = self._versions.get(ino, {}).get(n)
        if v is None:
            return []
        return [ChunkRef(i, k) for i, k in sorted(v[1].items())]

    def _drop_version(self, ino: int, n: int) -> list[str]:
        vs = self._versions.get(ino)
        v = None if vs is None else vs.pop(n, None)
        if v is None:
            return []
        return [key for key in v[1].values() if self._decref(key)]

    def delete_versions(self, ino: int, versions: list[int]) -> list[str]:
        self._require_versioning()
        dead: list[str] = []
        for n in versions:
            dead.extend(self._drop_version(ino, n))
        if not self._versions.get(ino, True):
            del self._versions[ino]
        return dead

    def restore_version(self, ino: int, n: int, now_ns: int) -> None:
        self._require_versioning()
        v = self._versions.get(ino, {}).get(n)
        r = self._inodes.get(ino)
        if v is None or r is None:
            raise KernelError("ENOENT", f"no version {n} of inode {ino}")
        meta, cmap = v
        self._charge(len(meta.inline_content or b"") - len(r.inline_content or b""))
        for key in cmap.values():
            self._incref(key)
        old = self._chunks.pop(ino, {})
        if cmap:
            self._chunks[ino] = dict(cmap)
        for key in old.values():
            self._decref(key)
        r.size = meta.size
        r.storage_mode = meta.storage_mode
        r.inline_content = meta.inline_content
        r.mtime_ns = r.ctime_ns = now_ns

    # -- stats -----------------------------------------------------------------------

    def stats(self) -> StoreStats:
        files = dirs = logical = 0
        for r in self._inodes.values():
            fmt = r.mode & 0o170000
            if fmt == _stat.S_IFREG:
                files += 1
                logical += r.size
            elif fmt == _stat.S_IFDIR:
                dirs += 1
        refs = sum(b[0] for b in self._blocks.values())
        stored = sum(b[1] for b in self._blocks.values())
        nversions = sum(len(vs) for vs in self._versions.values())
        return StoreStats(len(self._inodes), files, dirs, logical, len(self._blocks), stored,
                          refs, nversions)


__all__ = ["MemoryMetadataStore", "INLINE", "CHUNKED"]
