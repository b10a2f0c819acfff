"""``/.vfs``: a generated tree that lets ordinary tools look inside a mounted store.

Layout (all generated at open, with real ``st_size``)::

    /.vfs/stats            store totals, one "key value" per line
    /.vfs/version          program, schema and store settings
    /.vfs/control          write a command, read its reply (see CONTROL_HELP)
    /.vfs/chunks/<path>    the chunk map of every regular file, mirroring the tree
    /.vfs/blocks/<key>     every block file, readable (``xxd``, ``xxhsum -H128``)

Who may read what (the same for host users through FUSE, where ``default_permissions``
checks these attributes, and for sandbox processes, checked here against their
``Caller``): ``chunks/`` mirrors the owner, group and read/search bits of every
directory and file, so a chunk map is readable exactly by whoever may read the file
(as the ``user.vfs.chunks`` xattr is); ``blocks/`` (0500) and each block (0400)
belong to the mount's owner, so only the owner and root read raw blocks (see
docs/DECISIONS.md, "Store safety"); ``stats``, ``version`` stay public.

Why a separate filesystem: the store's own tree stays pure POSIX, and the
mount table keeps ``/.vfs`` out of ``readdir`` of the root.  The mount must not
be read-only at the mount-table level, because ``control`` accepts writes;
everything else here refuses changes itself.

The text helpers (``chunk_map_text``, ``chunks_xattr``, ``stats_text``) are
shared with the CLI (``vfsfuse info`` / ``stat``) and the ``user.vfs.chunks``
xattr, so every view of a chunk map reads the same.
"""

from __future__ import annotations

import os
import shlex
import stat as _stat
from collections.abc import Callable
from importlib import metadata as _pkg_metadata

import trio

from blockstores.keys import check_key
from kernel.errors import KernelError
from kernel.fs import ROOT_CALLER, ROOT_INO, Attr, Caller
from kernel.synthetic import DirHandle, DynamicDir, File, Handle, Node, StaticDir, SyntheticFS, may_access

XATTR_LIMIT = 65536  # Linux refuses larger xattr values (E2BIG)

CONTROL_HELP = """\
commands (one per line, written to /.vfs/control; the reply is read back from it):
  gc                                  flush, then delete every unreferenced block
  sync                                flush dirty chunks and commit the metadata
  stats                               the same text as /.vfs/stats
  version list PATH                   versions of PATH (newest first)
  version create PATH                 save the current content of PATH as a version
  version restore PATH N              make version N the current content of PATH
  version prune PATH keep=N|max_age=SECONDS   drop old versions
  help                                this text
PATH is relative to the mount root.  A failed command fails the write with its
errno and the reply starts with "error: CODE: message".
"""

_STAT_ORDER = ("inodes", "files", "directories", "logical_bytes", "stored_bytes", "dedup_ratio",
               "blocks", "dirty_bytes", "versions", "chunk_size", "inline_threshold")


# -- text shared by /.vfs, the xattr and the CLI ----------------------------------------------


def _block_path(vfs, key: str, host_paths: bool = False) -> str:
    """Where block *key* lives.  Inside the mount (xattr, /.vfs) the path is relative to the
    store directory (``blocks/ab/cd/<key>``): sandbox processes can read these files too, and
    must never learn a host path.  The CLI, on the host, asks for the absolute path."""
    path_for = getattr(vfs.blocks, "path_for", None)
    if path_for is None:
        return "-"
    path = path_for(key)
    if host_paths:
        return path
    return os.path.relpath(path, os.path.dirname(vfs.blocks.base_dir))


def chunk_map_text(vfs, ino: int, *, path: str | None = None, with_block_paths: bool = True,
                   host_paths: bool = False) -> str:
    """The chunk map of regular file *ino*: a "key value" header, then one line per chunk
    ``index offset length hash refcount block_file`` (hash ``dirty`` = not stored yet;
    missing indexes are holes, read as zeros)."""
    node = vfs.metadata.get_inode(ino)
    if node is None:
        raise KernelError("ENOENT", f"no inode {ino}")
    lines = []
    if path is not None:
        lines.append(f"path {path}")
    lines += [f"inode {ino}", f"type {_type_name(node.mode)}", f"size {node.size}",
              f"storage {node.storage_mode}", f"chunk_size {vfs.chunk_size}"]
    if not _stat.S_ISREG(node.mode):
        return "\n".join(lines) + "\n"
    if node.storage_mode == "inline":
        lines.append(f"inline_bytes {len(node.inline_content or b'')}")
    cmap = vfs.chunk_map(ino)
    lines.append(f"chunks {len(cmap)}")
    lines.append("# index offset length hash refcount" + (" block_file" if with_block_paths else ""))
    refcount = vfs.metadata.block_refcount
    for idx, off, length, key in cmap:
        if key is None:
            row = f"{idx} {off} {length} dirty 0"
            if with_block_paths:
                row += " -"
        else:
            row = f"{idx} {off} {length} {key} {refcount(key)}"
            if with_block_paths:
                row += " " + _block_path(vfs, key, host_paths)
        lines.append(row)
    return "\n".join(lines) + "\n"


def chunks_xattr(vfs, ino: int, limit: int = XATTR_LIMIT) -> bytes:
    """The value of ``user.vfs.chunks``: the chunk map, shortened to fit an xattr.

    Over *limit* bytes the block paths are dropped first, then trailing chunk
    lines are replaced by a ``... N more chunks`` line (the full map is in
    ``/.vfs/chunks/<path>``)."""
    text = chunk_map_text(vfs, ino).encode()
    if len(text) <= limit:
        return text
    text = chunk_map_text(vfs, ino, with_block_paths=False).encode()
    if len(text) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    out: list[bytes] = []
    used = 64  # room for the trailer
    for i, line in enumerate(lines):
        if used + len(line) > limit:
            out.append(b"... %d more chunks (see /.vfs/chunks)\n" % (len(lines) - i))
            break
        out.append(line)
        used += len(line)
    return b"".join(out)


def stats_text(stats: dict) -> str:
    """``vfs.stats()`` as "key value" lines (known keys first, in a fixed order)."""
    keys = [k for k in _STAT_ORDER if k in stats] + sorted(k for k in stats if k not in _STAT_ORDER)
    lines = []
    for k in keys:
        v = stats[k]
        lines.append(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}")
    return "\n".join(lines) + "\n"


def parse_kv(text: str) -> dict[str, str]:
    """Inverse of the "key value" formats above (comment lines and table rows skipped)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line[0].isdigit():
            continue
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def version_text(vfs) -> str:
    try:
        program = _pkg_metadata.version("vfsfuse")
    except _pkg_metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        program = "unknown"
    meta = vfs.metadata
    lines = [f"vfsfuse {program}"]
    schema = getattr(meta, "schema_version", None)
    if schema is not None:
        lines.append(f"schema {schema}")
    for key in ("uuid", "chunk_size", "inline_threshold", "created_ns"):
        value = meta.get_config(key)
        if value is not None:
            lines.append(f"{key} {value}")
    return "\n".join(lines) + "\n"


def _type_name(mode: int) -> str:
    return {_stat.S_IFREG: "file", _stat.S_IFDIR: "directory", _stat.S_IFLNK: "symlink",
            _stat.S_IFIFO: "fifo", _stat.S_IFSOCK: "socket", _stat.S_IFCHR: "char-device",
            _stat.S_IFBLK: "block-device"}.get(_stat.S_IFMT(mode), "unknown")


# -- control commands ---------------------------------------------------------------------------


async def run_control(vfs, line: str) -> str:
    """Run one control command against *vfs*; return its reply text."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise KernelError("EINVAL", f"cannot parse command: {exc}") from None
    if not words:
        return ""
    cmd, args = words[0], words[1:]
    if cmd == "help":
        return CONTROL_HELP
    if cmd == "gc" and not args:
        report = await vfs.gc()
        return f"removed_blocks {report.removed_blocks}\nremoved_bytes {report.removed_bytes}\n"
    if cmd == "sync" and not args:
        await vfs.sync()
        return "ok\n"
    if cmd == "stats" and not args:
        return stats_text(vfs.stats())
    if cmd in ("version", "versions") and len(args) >= 2:
        return await _version_command(vfs, args[0], args[1], args[2:])
    raise KernelError("EINVAL", f"unknown control command {line.strip()!r} (write 'help')")


async def _version_command(vfs, sub: str, path: str, rest: list[str]) -> str:
    ino = vfs.metadata.resolve_path(path)
    if sub == "list" and not rest:
        rows = await vfs.list_versions(ino)
        return "".join(f"{v.version} {v.size} {v.created_at_ns} {v.storage_mode}\n" for v in rows)
    if sub == "create" and not rest:
        return f"version {await vfs.create_version(ino)}\n"
    if sub == "restore" and len(rest) == 1 and rest[0].isdigit():
        await vfs.restore_version(ino, int(rest[0]))
        return f"restored {int(rest[0])}\n"
    if sub == "prune" and len(rest) == 1:
        return f"pruned {await vfs.prune_versions(ino, parse_policy(rest[0]))}\n"
    raise KernelError("EINVAL", f"bad version command: {sub} {' '.join(rest)} (write 'help')")


def parse_policy(text: str) -> dict:
    """``keep=N`` or ``max_age=SECONDS`` -> a prune policy for ``vfs.prune_versions``."""
    key, _, value = text.partition("=")
    try:
        if key == "keep" and int(value) >= 0:
            return {"type": "count", "keep": int(value)}
        if key == "max_age" and float(value) >= 0:
            return {"type": "age", "max_age_s": float(value)}
    except ValueError:
        pass
    raise KernelError("EINVAL", f"bad prune policy {text!r} (keep=N or max_age=SECONDS)")


# -- the filesystem -----------------------------------------------------------------------------


def _sizes(paths: list[str]) -> list[int | None]:
    out: list[int | None] = []
    for path in paths:
        try:
            out.append(os.stat(path).st_size)
        except OSError:
            out.append(None)
    return out


class _ChunksFile(File):
    __slots__ = ("target",)
    target: int  # the store inode whose chunk map this file shows


def _mirror_perm(node: Node, rec) -> None:
    """Give a chunks/ node the owner, group and read/search bits of store inode *rec*."""
    keep = 0o555 if _stat.S_ISDIR(rec.mode) else 0o444
    node.mode = _stat.S_IFMT(node.mode) | (rec.mode & keep)
    node.uid = rec.uid
    node.gid = rec.gid


class _BlockFile(File):
    __slots__ = ("key",)
    key: str  # the block this file reads


class _ControlFile(File):
    __slots__ = ()


class InspectFS(SyntheticFS):
    """The read-only (except ``control``) inode-level filesystem mounted at ``/.vfs``."""

    def __init__(self, vfs, net_text: Callable[[], str] | None = None) -> None:
        """*net_text*: the sandbox's network policy as ``net`` shows it (the daemon's kernel)."""
        self.vfs = vfs
        self.last_reply = b""
        root = StaticDir()
        root.add(b"stats", File(lambda c: stats_text(vfs.stats()).encode()))
        if net_text is not None:
            root.add(b"net", File(lambda c: net_text().encode()))
        root.add(b"version", File(lambda c: version_text(vfs).encode()))
        root.add(b"control", _ControlFile(lambda c: self.last_reply, perm=0o644,
                                          uid=os.getuid(), gid=os.getgid()))
        self._chunks_root = root.add(b"chunks", self._mirror_dir(ROOT_INO))
        # raw blocks: the mount owner's (and root's) only; see the module docstring
        self._blocks_dir = root.add(b"blocks", StaticDir(perm=0o500, uid=os.getuid(), gid=os.getgid()))
        self._mirrored: dict[int, int] = {}  # chunks/ node ino -> store ino
        super().__init__(root)
        self._mirrored[self._chunks_root.ino] = ROOT_INO
        self._refresh(self._chunks_root)

    def _refresh(self, node: Node) -> None:
        """Bring a chunks/ node's permissions up to date with its store inode (chmod and
        chown happen at any time; every lookup, getattr and open asks again)."""
        ino = self._mirrored.get(node.ino)
        if ino is None:
            return
        rec = self.vfs.metadata.get_inode(ino)
        if rec is not None:
            _mirror_perm(node, rec)

    # -- chunks/: the tree mirrored, one chunk map per regular file ------------------------

    def _mirror_dir(self, ino: int) -> DynamicDir:
        meta = self.vfs.metadata

        def entries(fs, caller):
            out = []
            for d in meta.list_dir(ino):
                node = self._mirror(d.ino, d.mode)
                if node is not None:
                    out.append((d.name, node))
            return out

        def lookup(fs, name, caller):
            child = meta.lookup(ino, name)
            if child is None:
                return None
            rec = meta.get_inode(child)
            return None if rec is None else self._mirror(child, rec.mode)

        return DynamicDir(entries, lookup, perm=0o555,
                          live=lambda: meta.get_inode(ino) is not None)

    def _mirror(self, ino: int, mode: int) -> Node | None:
        meta = self.vfs.metadata
        if _stat.S_ISDIR(mode):
            node = self.intern(("d", ino), lambda: self._mirror_dir(ino))
            self._mirrored[node.ino] = ino
            self._refresh(node)
            return node
        if not _stat.S_ISREG(mode):
            return None

        def make() -> Node:
            chunks = _ChunksFile(lambda c: chunk_map_text(self.vfs, ino).encode(),
                               live=lambda: meta.get_inode(ino) is not None)
            chunks.target = ino
            return chunks

        file = self.intern(("f", ino), make)
        self._mirrored[file.ino] = ino
        self._refresh(file)
        try:
            file.size = len(chunk_map_text(self.vfs, ino).encode())  # real st_size at lookup
        except KernelError:
            pass
        return file

    # -- blocks/: one read-only file per block, read through the block store ----------------

    async def _block_node(self, key: str, size: int | None = None) -> Node | None:
        if size is None:
            try:
                check_key(key)
                size = await self.vfs.blocks.size(key)
            except KernelError:
                return None

        def make() -> Node:
            block = _BlockFile(lambda c: b"", perm=0o400, uid=self._blocks_dir.uid,
                               gid=self._blocks_dir.gid)
            block.key = key
            return block

        node = self.intern(("b", key), make, parent=self._blocks_dir)
        node.size = size
        return node

    async def _settle(self) -> None:
        """Files closed a moment ago may still be flushing: show their stored blocks."""
        settle = getattr(self.vfs, "settle", None)
        if settle is not None:
            await settle()

    def lookup_node(self, parent: int, name: bytes, caller: Caller) -> Node:
        self._refresh(self.node(parent))  # its search bit decides
        node = super().lookup_node(parent, name, caller)
        self._refresh(node)
        return node

    async def getattr(self, ino: int) -> Attr:
        node = self.node(ino)
        self._refresh(node)
        return self.attr_of(node)

    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        await self._settle()
        if parent == self._blocks_dir.ino and name not in (b".", b".."):
            if not may_access(self._blocks_dir, caller, 1):
                raise KernelError("EACCES", "search permission denied")
            node = await self._block_node(name.decode("ascii", "replace"))
            if node is None:
                raise KernelError("ENOENT", f"no such block {name!r}")
            return self.attr_of(node)
        return await super().lookup(parent, name, caller)

    async def open(self, ino: int, flags: int, caller: Caller = ROOT_CALLER) -> int:
        await self._settle()  # the text is generated at open
        self._refresh(self.node(ino))  # permissions as of now, not as of the last lookup
        return await super().open(ino, flags, caller)

    async def opendir(self, ino: int, caller: Caller = ROOT_CALLER) -> int:
        if ino != self._blocks_dir.ino:
            self._refresh(self.node(ino))
            return await super().opendir(ino, caller)
        if not may_access(self._blocks_dir, caller, 4):
            raise KernelError("EACCES", "permission denied")
        keys = [key async for key in self.vfs.blocks.list_keys()]
        path_for = getattr(self.vfs.blocks, "path_for", None)
        if path_for is not None:  # host store: stat every block file in one thread hop
            sizes = await trio.to_thread.run_sync(_sizes, [path_for(k) for k in keys])
        else:
            sizes = [None] * len(keys)
        entries = []
        for key, size in zip(keys, sizes):
            if path_for is not None and size is None:
                continue  # deleted while listing
            node = await self._block_node(key, size)
            if node is not None:
                entries.append((key.encode(), node))
        entries.sort()
        return self._new_handle(DirHandle(self._blocks_dir, entries))

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self._handle(fh)
        if isinstance(h.node, _BlockFile):
            try:
                return await self.vfs.blocks.read_range(h.node.key, offset, size)
            except KernelError as exc:
                if exc.code == "ENOENT":
                    raise KernelError("EIO", f"block {h.node.key} vanished") from None
                raise
        return await super().read(fh, offset, size)

    # -- control: commands in, replies out -----------------------------------------------------

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h: Handle = self._handle(fh)
        if not isinstance(h.node, _ControlFile):
            return await super().write(fh, offset, data)
        if h.caller.uid not in (0, h.node.uid):
            raise KernelError("EACCES", "only the mount owner may run control commands")
        replies = []
        text = bytes(data).decode("utf-8", "surrogateescape")
        for line in text.splitlines():
            try:
                replies.append(await run_control(self.vfs, line))
            except KernelError as exc:
                h.data = self.last_reply = ("".join(replies) + f"error: {exc}\n").encode()
                raise
        h.data = self.last_reply = "".join(replies).encode()
        return len(data)

    def attr_of(self, node: Node) -> Attr:
        if isinstance(node, _ControlFile):
            node.size = len(self.last_reply)
        return super().attr_of(node)
