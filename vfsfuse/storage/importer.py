"""Filling a store from a root filesystem tarball (``vfsfuse import``, ``mkfs --from``).

Why not ``tar -x`` into a mount: owners and device nodes need root on the host, every member
costs several FUSE round trips, and a half-extracted tree looks like a finished one.  Here
the tarball is read once and written at the storage layer: file data becomes blocks through
the block manager (content addressed, so a file that is already stored costs nothing), and
the metadata of a batch of members is applied in one transaction, each member in a savepoint
of its own, so a member is either wholly in the store or not at all.

Two halves, so the reading can happen in another process than the writing (an import into a
running mount reads the tarball in the CLI and sends members over the daemon's control
socket):

* ``open_tarball`` and ``read_members`` turn a tar stream (plain, gzip, bzip2, xz; zstd where
  this Python's ``tarfile`` reads it) into checked ``Member`` records.  Paths are taken
  relative to the import directory: a leading ``/`` is dropped, ``..`` is refused (as GNU tar
  and tarfile's ``data`` filter do); unlike that filter, owners, set-id bits and device nodes
  are kept, because this is a root filesystem.
* ``Importer`` writes members into a ``ChunkedVFS``: modes, numeric owners, nanosecond
  mtimes, hard links (one inode, counted links), symlinks (their text, never followed),
  devices and fifos (entries only: nothing is ever opened) and xattrs (PAX ``SCHILY.xattr.*``,
  and libarchive's ``LIBARCHIVE.xattr.*``).  Members are never written through a symlink
  already in the tree: such a member is refused.
"""

from __future__ import annotations

import base64
import lzma
import stat as _stat
import sys
import tarfile
import time
import zlib
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator, Mapping
from urllib.parse import unquote_to_bytes

import trio

from kernel.errors import KernelError
from kernel.fs import check_name
from vfsfuse.storage.blocks import block_key
from vfsfuse.storage.chunked import ChunkedVFS
from vfsfuse.storage.dumpload import dec, enc
from vfsfuse.storage.metadata.base import CHUNKED

KINDS = ("file", "dir", "symlink", "hardlink", "chr", "blk", "fifo")
_TYPE_BITS = {"file": _stat.S_IFREG, "dir": _stat.S_IFDIR, "symlink": _stat.S_IFLNK,
              "chr": _stat.S_IFCHR, "blk": _stat.S_IFBLK, "fifo": _stat.S_IFIFO}
_TAR_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
              tarfile.GNUTYPE_SPARSE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
              tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "chr", tarfile.BLKTYPE: "blk",
              tarfile.FIFOTYPE: "fifo"}
WRITES_IN_FLIGHT = 8  # block writes started and not finished (bounds the memory they hold)
BATCH_MEMBERS = 2000  # members per metadata transaction
BATCH_BYTES = 64 << 20  # ... or this much file data, whichever comes first
COMMIT_SECONDS = 2.0  # an offline import is made durable this often (and at the end)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# what reading a damaged or truncated stream raises (bz2 raises OSError)
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError)


@dataclass(slots=True)
class Member:
    """One tar member, checked: what ``Importer.add`` writes."""

    name: str  # as written in the archive (messages only)
    path: tuple[bytes, ...]  # components below the import directory; () is that directory
    kind: str  # one of KINDS
    perm: int = 0o644  # mode & 0o7777
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    size: int = 0  # regular files
    target: bytes | None = None  # a symlink's text
    link: tuple[bytes, ...] | None = None  # a hard link's target, below the import directory
    rdev: int = 0  # devices
    xattrs: list[tuple[bytes, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The member as JSON (the control socket's import frames); bytes as dumpload encodes them."""
        return {"name": self.name, "path": [enc(p) for p in self.path], "kind": self.kind,
                "perm": self.perm, "uid": self.uid, "gid": self.gid, "mtime_ns": self.mtime_ns,
                "atime_ns": self.atime_ns, "size": self.size, "target": enc(self.target),
                "link": None if self.link is None else [enc(p) for p in self.link], "rdev": self.rdev,
                "xattrs": [[enc(n), enc(v)] for n, v in self.xattrs]}

    @classmethod
    def from_json(cls, d: Any) -> "Member":
        """A member received over the control socket, checked again as if read from a tarball."""
        if not isinstance(d, dict) or d.get("kind") not in KINDS:
            raise KernelError("EPROTO", "bad import member")
        try:
            m = cls(str(d["name"]), _checked_path([_bytes(p) for p in d["path"]]), d["kind"],
                    int(d["perm"]) & 0o7777, int(d["uid"]), int(d["gid"]), int(d["mtime_ns"]),
                    int(d["atime_ns"]), int(d["size"]), dec(d.get("target")),
                    None if d.get("link") is None else _checked_path([_bytes(p) for p in d["link"]]),
                    int(d.get("rdev") or 0), [(_bytes(n), _bytes(v)) for n, v in d.get("xattrs", [])])
        except (KeyError, TypeError, ValueError) as err:
            raise KernelError("EPROTO", f"bad import member: {err}") from None
        _check_member(m)
        return m


def _bytes(value: Any) -> bytes:
    out = dec(value)
    if out is None:
        raise KernelError("EPROTO", "bad import member: a null byte string")
    return out


@dataclass
class Summary:
    """What an import has put in the store so far (members applied, not merely read)."""

    members: int = 0
    files: int = 0
    dirs: int = 0  # directories made or updated, those a path needed included
    symlinks: int = 0
    hardlinks: int = 0
    special: int = 0  # devices and fifos
    bytes: int = 0  # regular file data
    excluded: int = 0  # members left out by --exclude

    def add(self, other: "Summary") -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> "Summary":
        if not isinstance(d, dict):
            return cls()
        return cls(**{k: int(d.get(k, 0)) for k in asdict(cls())})

    def counts(self) -> str:
        special = f", {self.special} devices/fifos" if self.special else ""
        left_out = f", {self.excluded} members excluded" if self.excluded else ""
        return (f"{self.files} files, {self.dirs} dirs, {self.symlinks + self.hardlinks} links"
                f"{special}, {self.bytes} bytes{left_out}")

    def line(self, seconds: float) -> str:
        """The one-line report of a finished import."""
        return f"imported {self.counts()} in {seconds:.2f} s"

    def how_far(self) -> str:
        """What a stopped import left in the store, for its error line."""
        if not self.members and not self.dirs:
            return "nothing was imported"
        return (f"the first {self.members} members are in the store ({self.counts()}); "
                "nothing after them was imported")


class ImportStopped(KernelError):
    """An import that stopped: *where* (member number and name) and why; ``how_far`` follows
    once the complete members before it are applied (``Importer.abort``)."""

    def __init__(self, code: str, reason: str, where: str) -> None:
        super().__init__(code, f"{where}: {reason}")
        self.reason = reason
        self.where = where


# -- reading a tarball ---------------------------------------------------------------------------


class CountingReader:
    """A read-only stream that counts what was read from it (the progress of a pipe); seeks
    pass through when the stream can seek (a file: tarfile then reads it in place)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def peek(self, n: int = 1) -> bytes:
        return _peek(self.raw, n)

    def seekable(self) -> bool:
        try:
            return bool(self.raw.seekable())
        except (AttributeError, OSError, ValueError):
            return False

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def position(self) -> int:
        """Bytes of the tarball behind us: where a file is, what a pipe gave."""
        return self.raw.tell() if self.seekable() else self.count


def _peek(raw: BinaryIO, n: int) -> bytes:
    peek = getattr(raw, "peek", None)
    if peek is None:
        return b""
    try:
        return bytes(peek(n)[:n])
    except (OSError, ValueError):
        return b""


def open_tarball(raw: CountingReader, what: str) -> tarfile.TarFile:
    """Open *raw* as a tar archive, compressed or not, reading its first header, so a file that
    is no tarball is refused before anything.  A file is read in place ("r:*": headers and data
    straight from the file, compressed ones through a forward-seeking decompressor); a pipe
    as a stream ("r|*")."""
    seekable = raw.seekable()
    mode = "r:*" if seekable else "r|*"
    head = raw.peek(4)[:4]
    if not head and hasattr(raw.raw, "peek"):
        raise KernelError("EINVAL", f"{what} is not a tar archive (it is empty)")
    if head == ZSTD_MAGIC:
        if sys.version_info < (3, 14):
            raise KernelError("ENOTSUP", f"{what} is zstd-compressed and this Python's tarfile "
                                         f"(3.{sys.version_info[1]}) cannot read zstd; decompress it "
                                         "first: zstd -dc TARBALL | vfsfuse import TARGET -")
        mode = "r:zst" if seekable else "r|zst"
    try:
        return tarfile.open(fileobj=raw, mode=mode, encoding="utf-8",  # type: ignore[call-overload]
                            errors="surrogateescape")
    except _TAR_ERRORS as err:
        raise KernelError("EINVAL", f"{what} is not a tar archive ({_tar_reason(err)})") from None


def _tar_reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, EOFError) or "unexpected end" in text:
        return "it ends in the middle: truncated"
    if text == "empty file":
        return "it is empty"
    if text.startswith("file could not be opened successfully"):  # r:* tried every method
        return "nor a gzip, bzip2 or xz compressed one"
    return " ".join(text.split())


def read_members(tar: tarfile.TarFile, after: Callable[[], int]) -> Iterator[tuple[Member, tarfile.TarInfo]]:
    """Every member of *tar*, checked, with its TarInfo (for ``tar.extractfile``).  A damaged
    header raises ImportStopped "after member N" (*after*: members handed on so far)."""
    it = iter(tar)
    while True:
        try:
            info = next(it)
        except StopIteration:
            return
        except _TAR_ERRORS as err:
            raise ImportStopped("EIO", f"the tarball is damaged ({_tar_reason(err)})",
                                f"after member {after()}") from None
        try:
            member = member_of(info)
        except KernelError as err:
            raise ImportStopped(err.code, err.message, f"member {after() + 1} ({info.name})") from None
        yield member, info


def member_of(info: tarfile.TarInfo) -> Member:
    """The checked Member for one TarInfo (KernelError if it must be refused)."""
    kind = _TAR_KINDS.get(info.type)
    if kind is None:
        raise KernelError("ENOTSUP", f"unsupported member type {info.type!r}")
    path = member_path(info.name)
    mtime = _pax_time(info, "mtime", info.mtime)
    m = Member(info.name, path, kind, info.mode & 0o7777, int(info.uid), int(info.gid), mtime,
               _pax_time(info, "atime", None) if "atime" in info.pax_headers else mtime)
    if kind == "file":
        m.size = int(info.size)
    elif kind == "symlink":
        m.target = info.linkname.encode("utf-8", "surrogateescape")
    elif kind == "hardlink":
        m.link = member_path(info.linkname)
    elif kind in ("chr", "blk"):
        m.rdev = _makedev(int(info.devmajor), int(info.devminor))
    m.xattrs = _xattrs(info.pax_headers)
    _check_member(m)
    return m


def member_path(name: str) -> tuple[bytes, ...]:
    """The components of a member name below the import directory: "/" and "." dropped,
    ".." refused (it could leave the directory)."""
    raw = name.encode("utf-8", "surrogateescape")
    return _checked_path([p for p in raw.split(b"/") if p not in (b"", b".")])


def _checked_path(parts: list[bytes]) -> tuple[bytes, ...]:
    for p in parts:
        if p == b"..":
            raise KernelError("EPERM", "the path contains '..', which could leave the import directory")
        if p == b".":
            raise KernelError("EINVAL", "the path contains '.'")
        check_name(p)
    return tuple(parts)


def exclusion(patterns: list[str] | tuple[str, ...]) -> Callable[[tuple[bytes, ...]], bool]:
    """``--exclude PATTERN``: a shell pattern (fnmatch, where ``*`` also matches ``/``) matched
    against a member's path below the import directory and against each of its leading
    directories, anchored there: ``./dev`` and ``dev`` leave out the top ``dev`` and all below
    it, ``*.pyc`` every ``.pyc``.  (GNU tar matches unanchored by default; anchored is what a
    root filesystem wants: ``--exclude ./dev`` must not drop ``usr/share/dev``.)"""
    from fnmatch import fnmatchcase

    pats = [b"/".join(member_path(p)) if p.strip("./") else b"" for p in patterns]
    pats = [p for p in pats if p]

    def excluded(path: tuple[bytes, ...]) -> bool:
        return any(fnmatchcase(b"/".join(path[:i]), p) for p in pats for i in range(1, len(path) + 1))

    return excluded


def _check_member(m: Member) -> None:
    if m.kind == "symlink" and (not m.target or b"\0" in m.target or len(m.target) > 4095):
        raise KernelError("EINVAL", "bad symlink target (empty, too long or with a NUL byte)")
    if m.kind == "hardlink" and not m.link:
        raise KernelError("EPERM", "a hard link to the import directory itself")
    if m.size < 0 or m.uid < 0 or m.gid < 0:
        raise KernelError("EINVAL", "negative size or owner")
    for name, value in m.xattrs:
        if not name or len(name) > 255 or b"\0" in name:
            raise KernelError("EINVAL", f"bad xattr name {name!r:.40}")
        if name.startswith(b"user.vfs."):
            raise KernelError("EPERM", "user.vfs.* xattrs are the store's own, not importable")
        if len(value) > 65536:
            raise KernelError("E2BIG", f"xattr {name!r:.40} is larger than 64 KiB")


def _makedev(major: int, minor: int) -> int:
    import os

    return os.makedev(major, minor)


def _pax_time(info: tarfile.TarInfo, key: str, fallback: float | None) -> int:
    """A PAX time in nanoseconds, exactly (tarfile keeps only a float)."""
    text = info.pax_headers.get(key)
    if text is not None:
        try:
            return int((Decimal(text) * 10**9).to_integral_value(rounding=ROUND_FLOOR))
        except (InvalidOperation, ValueError):
            pass
    return int((fallback or 0) * 10**9)


def _xattrs(pax: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    out: dict[bytes, bytes] = {}
    for key, value in pax.items():
        if key.startswith("SCHILY.xattr."):
            out[key[13:].encode("utf-8", "surrogateescape")] = value.encode("utf-8", "surrogateescape")
    for key, value in pax.items():  # bsdtar: URL-encoded name, base64 value (SCHILY wins)
        if key.startswith("LIBARCHIVE.xattr."):
            name = unquote_to_bytes(key[17:])
            if name not in out:
                try:
                    out[name] = base64.b64decode(value)
                except ValueError:
                    raise KernelError("EINVAL", f"bad LIBARCHIVE.xattr value for {name!r:.40}") from None
    return sorted(out.items())


def tar_data(tar: tarfile.TarFile, info: tarfile.TarInfo, piece: int) -> Iterator[bytes]:
    """The data of a regular member in pieces of at most *piece* bytes (EIO if it ends early)."""
    f = tar.extractfile(info)
    if f is None:
        return
    left = info.size
    while left:
        try:
            data = f.read(min(piece, left))
        except _TAR_ERRORS as err:
            raise KernelError("EIO", f"the tarball is damaged ({_tar_reason(err)})") from None
        if not data:
            raise KernelError("EIO", "the tarball ends in the middle of this file: truncated")
        left -= len(data)
        yield data


async def as_async(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


# -- writing into a store ------------------------------------------------------------------------


@dataclass(slots=True)
class _Op:
    """A member whose data is stored, waiting for its metadata (the next batch)."""

    no: int
    m: Member
    inline: bytes | None = None
    chunks: list[tuple[int, str, int]] = field(default_factory=list)  # (index, key, length)
    skip: bool = False  # excluded: counted, not written


@dataclass(slots=True)
class _InTheWay:
    """A name that must be removed (through the filesystem) before its member is applied."""

    parent: int
    name: bytes
    is_dir: bool


class Importer:
    """Writes Members into *fs* below directory *at* (created like ``mkdir -p`` if missing).

    *fs* is a ChunkedVFS, or anything that passes its attributes through (a running mount's
    host cache invalidator: names that are in the way are then unlinked through it, so the
    host forgets them).  *on_names* / *on_inodes* hear, after each batch, of names added to
    directories that existed before and of existing inodes whose attributes changed, so a
    mount can tell the host kernel's caches.  *commit_every*: seconds between durable commits
    (None: leave commits to the caller, as a mount's flusher does).  *batch_members*: members
    per transaction (a batch is applied without a pause: a mount keeps it small, so FUSE
    requests wait at most a few tens of milliseconds)."""

    def __init__(self, fs: ChunkedVFS, at: str = "/", *, commit_every: float | None = COMMIT_SECONDS,
                 exclude: list[str] | tuple[str, ...] = (), batch_members: int = BATCH_MEMBERS,
                 on_names: Callable[[list[tuple[int, bytes]]], None] | None = None,
                 on_inodes: Callable[[list[int]], None] | None = None) -> None:
        self.fs = fs
        self.meta = fs.metadata
        self.bm = fs.bm
        self.chunk_size = fs.chunk_size
        self.inline_threshold = fs.inline_threshold
        self.at = at
        self.summary = Summary()
        self.seen = 0  # members handed to add()
        self.commit_every = commit_every
        self._on_names, self._on_inodes = on_names, on_inodes
        self._excluded = exclusion(exclude) if exclude else None
        self.batch_members = batch_members
        self._ops: list[_Op] = []
        self._batch_bytes = 0
        self._held: set[str] = set()  # block keys referenced by queued members (begin_reference)
        self._dirs: dict[tuple[bytes, ...], int] = {}  # import-relative directory path -> ino
        self._preexisting: set[int] = set()  # directories found, not made
        self._named: set[int] = set()  # directories whose attributes a member set
        self._touched: set[int] = set()  # pre-existing directories that gained names (mtime)
        self._new_names: list[tuple[int, bytes]] = []
        self._changed: set[int] = set()
        self._zero = bytes(self.chunk_size)
        self._nursery: trio.Nursery | None = None  # set inside writing(): blocks go in the background
        self._slots = trio.Semaphore(WRITES_IN_FLIGHT)
        self._writing = 0
        self._written = trio.Event()
        self._write_failed: tuple[int, str, KernelError] | None = None  # (member no, name, error)
        self._last_commit = time.monotonic()
        self._now = time.time_ns()

    # -- the import directory ------------------------------------------------------------

    def start(self) -> None:
        """Find (or make, like ``mkdir -p``) the import directory; its symlinks are followed,
        as ``cd`` would (it is the user's own path, not the archive's)."""
        comps = [c for c in self.at.encode("utf-8", "surrogateescape").split(b"/") if c]
        ino = self.meta.resolve_path("/")
        self._preexisting.add(ino)
        try:
            with self.meta.transaction():
                for i, name in enumerate(comps):
                    check_name(name)
                    try:
                        ino = self.meta.resolve_path(b"/" + b"/".join(comps[:i + 1]))
                    except KernelError as err:
                        if err.code != "ENOENT":
                            raise
                        ino = self._mkdir(ino, name, 0o755, 0, 0, self._now)
                        continue
                    node = self.meta.get_inode_attrs(ino)
                    if node is None or not node.is_dir:
                        raise KernelError("ENOTDIR", "not a directory")
                    self._preexisting.add(ino)
                self._touch_parents()
        except KernelError as err:
            raise KernelError(err.code, f"--at {self.at}: {err.message}") from None
        self._dirs[()] = ino
        self._notify()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator["Importer"]:
        """Store blocks in the background while the next members are read (up to
        WRITES_IN_FLIGHT at once); without it each block is stored before ``add`` returns."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield self
            finally:
                self._nursery = None

    # -- members ---------------------------------------------------------------------------

    async def add(self, m: Member, data: AsyncIterator[bytes] | None = None) -> None:
        """Take one member: its data is stored as blocks now, its metadata at the next batch."""
        if self._write_failed is not None:
            await self.flush()  # a block of an earlier member could not be stored: stop there
        self.seen += 1
        op = _Op(self.seen, m)
        if self._excluded is not None and self._excluded(m.path):
            op.skip = True
            if data is not None:
                async for _ in data:  # read past it
                    pass
            self._ops.append(op)
            return
        try:
            if m.kind == "file":
                await self._take_data(op, data)
            elif data is not None:
                async for _ in data:
                    raise KernelError("EPROTO", "data for a member that is not a regular file")
        except BaseException as exc:  # a refusal, damaged data, ^C: its blocks are not kept
            self._drop([op])
            if isinstance(exc, KernelError):
                raise ImportStopped(exc.code, exc.message, f"member {op.no} ({m.name})") from None
            raise
        self._ops.append(op)
        self._batch_bytes += m.size
        if len(self._ops) >= self.batch_members or self._batch_bytes >= BATCH_BYTES:
            await self.flush()

    async def _take_data(self, op: _Op, data: AsyncIterator[bytes] | None) -> None:
        size, cs = op.m.size, self.chunk_size
        got = 0
        if size <= self.inline_threshold:
            parts = []
            if data is not None:
                async for piece in data:
                    parts.append(piece)
                    got += len(piece)
            if got != size:
                raise KernelError("EIO", f"{got} bytes of data, not {size}")
            op.inline = b"".join(parts)
            return
        buf = bytearray()
        idx = 0
        if data is not None:
            async for piece in data:
                got += len(piece)
                if got > size:
                    raise KernelError("EIO", f"more data than its size ({size} bytes)")
                view = memoryview(piece)
                while view:
                    if not buf and len(view) >= cs:
                        await self._store(op, idx, view[:cs])
                        view = view[cs:]
                        idx += 1
                        continue
                    take = min(cs - len(buf), len(view))
                    buf += view[:take]
                    view = view[take:]
                    if len(buf) == cs:
                        await self._store(op, idx, buf)
                        buf = bytearray()
                        idx += 1
        if got != size:
            raise KernelError("EIO", f"{got} bytes of data, not {size}")
        if buf:
            await self._store(op, idx, buf)

    async def _store(self, op: _Op, idx: int, payload: bytes | bytearray | memoryview) -> None:
        n = len(payload)
        if payload[0] == 0 and payload[n - 1] == 0 and payload == self._zero[:n]:
            return  # a hole costs nothing (as ChunkedVFS stores zeros)
        key = block_key(payload)
        op.chunks.append((idx, key, n))
        if key in self._held:
            return
        self.bm.begin_reference(key)
        self._held.add(key)
        if self._nursery is None:
            await self.bm.ensure_stored(key, payload)
            return
        await self._slots.acquire()
        self._writing += 1
        self._nursery.start_soon(self._write, op.no, op.m.name, key, payload)

    async def _write(self, no: int, name: str, key: str, payload: bytes | bytearray | memoryview) -> None:
        """One block, in the background.  Shielded: a stop (^C, a damaged tarball) cancels the
        nursery, and a member whose block was never written must not be applied by abort."""
        try:
            with trio.CancelScope(shield=True):
                await self.bm.ensure_stored(key, payload)
        except BaseException as exc:
            err = exc if isinstance(exc, KernelError) else KernelError("EIO", f"block not stored: {exc!r}")
            if self._write_failed is None or no < self._write_failed[0]:
                self._write_failed = (no, name, err)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._slots.release()
            self._writing -= 1
            if not self._writing:
                self._written.set()

    async def _wait_writes(self) -> None:
        while self._writing:
            await self._written.wait()
            self._written = trio.Event()

    # -- batches -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Apply the queued members: one transaction, a savepoint per member.  A member that
        is refused stops the import (ImportStopped); those before it stay applied."""
        ops, self._ops = self._ops, []
        self._batch_bytes = 0
        i = 0
        try:
            await self._wait_writes()
            failed = self._write_failed
            end = len(ops) if failed is None else sum(1 for op in ops if op.no < failed[0])
            while i < end:
                first = i
                done = Summary()
                refused: KernelError | None = None
                in_way: _InTheWay | None = None
                made: list[tuple[bytes, ...]] = []
                try:
                    with self.meta.transaction():
                        while i < end:
                            made = []
                            try:
                                with self.meta.transaction():
                                    in_way = self._apply(ops[i], done, made)
                            except KernelError as err:
                                refused = err
                                break
                            if in_way is not None:
                                break
                            done.members += 1
                            i += 1
                        self._touch_parents()
                except BaseException:
                    self._forget_tree()  # the batch was rolled back: so is what it made
                    i = first
                    raise
                if refused is not None:
                    for path in made:
                        self._dirs.pop(path, None)
                self.summary.add(done)
                self._notify()
                if refused is not None:
                    op = ops[i]
                    raise ImportStopped(refused.code, refused.message, f"member {op.no} ({op.m.name})")
                if in_way is not None:
                    await self._remove(ops[i], in_way)
            if failed is not None:
                no, name, why = failed
                raise ImportStopped(why.code, why.message, f"member {no} ({name})")
        finally:
            self._drop(ops[i:])
            for key in self._held:
                self.bm.end_reference(key)
            self._held.clear()
        if self.commit_every is not None and time.monotonic() - self._last_commit >= self.commit_every:
            await self.commit()

    async def commit(self) -> None:
        await self.bm.commit()
        self._last_commit = time.monotonic()

    async def finish(self) -> Summary:
        """Apply what is queued and make it durable."""
        await self.flush()
        await self.commit()
        return self.summary

    async def abort(self) -> None:
        """After a failure: apply the complete members still queued (stopping at the first
        that is refused) and make them durable; never raises what it was given."""
        try:
            await self.flush()
        except KernelError:
            pass
        finally:
            try:
                await self.commit()
            except KernelError:
                pass

    def _drop(self, ops: list[_Op]) -> None:
        """Members that will not be applied: their blocks go at the next commit, unless used."""
        for op in ops:
            for _idx, key, _n in op.chunks:
                self.bm.discard_if_unused(key)

    def _forget_tree(self) -> None:
        at = self._dirs.get(())
        self._dirs.clear()
        if at is not None:
            self._dirs[()] = at

    async def _remove(self, op: _Op, way: _InTheWay) -> None:
        """Unlink (or rmdir, when empty) the name in the way of *op*, as tar does."""
        try:
            if way.is_dir:
                await self.fs.rmdir(way.parent, way.name)
            else:
                await self.fs.unlink(way.parent, way.name)
        except KernelError as err:
            if err.code == "ENOTEMPTY":
                err = KernelError("EEXIST", "a non-empty directory of that name is in the way")
            raise ImportStopped(err.code, err.message, f"member {op.no} ({op.m.name})") from None
        if way.is_dir:
            self._dirs = {k: v for k, v in self._dirs.items() if k != op.m.path}

    def _notify(self) -> None:
        names, self._new_names = self._new_names, []
        changed, self._changed = self._changed, set()
        if names and self._on_names is not None:
            self._on_names(names)
        if changed and self._on_inodes is not None:
            self._on_inodes(sorted(changed))

    # -- one member (no await: a savepoint around it) -------------------------------------------

    def _apply(self, op: _Op, done: Summary, made: list[tuple[bytes, ...]]) -> _InTheWay | None:
        m = op.m
        if op.skip:
            done.excluded += 1
            return None
        if not m.path:
            if m.kind != "dir":
                raise KernelError("EINVAL", "it names the import directory but is not a directory")
            self._set_dir(self._dirs[()], m)
            done.dirs += 1
            return None
        parent = self._dir(m.path[:-1], done, made)
        name = m.path[-1]
        meta = self.meta
        existing = meta.lookup(parent, name)
        link_to = self._link_target(m) if m.kind == "hardlink" else None
        if existing is not None:
            node = meta.get_inode_attrs(existing)
            assert node is not None
            if m.kind == "dir" and node.is_dir:
                self._set_dir(existing, m)
                self._dirs[m.path] = existing
                self._preexisting.add(existing)
                done.dirs += 1
                return None
            if link_to == existing:
                done.hardlinks += 1
                return None
            return _InTheWay(parent, name, node.is_dir)
        self._charge(len(name) + len(op.inline or b"") + sum(len(n) + len(v) for n, v in m.xattrs))
        if link_to is not None:
            target = meta.get_inode_attrs(link_to)
            assert target is not None
            meta.create_dentry(parent, name, link_to)
            meta.update_inode(link_to, nlink=target.nlink + 1, ctime_ns=self._now)
            done.hardlinks += 1
        elif m.kind == "dir":
            ino = self._mkdir(parent, name, m.perm, m.uid, m.gid, m.mtime_ns, m.atime_ns)
            for xname, value in m.xattrs:
                meta.set_xattr(ino, xname, value)
            self._dirs[m.path] = ino
            made.append(m.path)
            self._named.add(ino)
            done.dirs += 1
        else:
            ino = self._create(op)
            meta.create_dentry(parent, name, ino)
            if m.kind == "file":
                done.files += 1
                done.bytes += m.size
            elif m.kind == "symlink":
                done.symlinks += 1
            else:
                done.special += 1
        self._added(parent, name)
        return None

    def _create(self, op: _Op) -> int:
        m, meta = op.m, self.meta
        target = m.target if m.kind == "symlink" else None
        perm = 0o777 if m.kind == "symlink" else m.perm
        size = len(target) if target is not None else m.size
        ino = meta.create_inode(_TYPE_BITS[m.kind] | perm, m.uid, m.gid, self._now,
                                rdev=m.rdev if m.kind in ("chr", "blk") else 0, symlink_target=target,
                                nlink=1, size=size)
        upd: dict[str, Any] = {"mtime_ns": m.mtime_ns, "atime_ns": m.atime_ns}
        if m.kind == "file":
            if op.inline is None:
                upd["storage_mode"] = CHUNKED
            elif op.inline:
                upd["inline_content"] = op.inline
        meta.update_inode(ino, **upd)
        for idx, key, n in op.chunks:
            meta.set_chunk_key(ino, idx, key, n)
        for xname, value in m.xattrs:
            meta.set_xattr(ino, xname, value)
        return ino

    def _mkdir(self, parent: int, name: bytes, perm: int, uid: int, gid: int, mtime_ns: int,
               atime_ns: int | None = None) -> int:
        meta = self.meta
        ino = meta.create_inode(_stat.S_IFDIR | perm, uid, gid, self._now, nlink=2)
        meta.update_inode(ino, mtime_ns=mtime_ns, atime_ns=mtime_ns if atime_ns is None else atime_ns)
        meta.create_dentry(parent, name, ino)
        pnode = meta.get_inode_attrs(parent)
        assert pnode is not None
        meta.update_inode(parent, nlink=pnode.nlink + 1)
        self._added(parent, name)
        return ino

    def _set_dir(self, ino: int, m: Member) -> None:
        """A directory member naming a directory that exists: its attributes, as tar sets them."""
        self.meta.update_inode(ino, mode=_stat.S_IFDIR | m.perm, uid=m.uid, gid=m.gid, mtime_ns=m.mtime_ns,
                               atime_ns=m.atime_ns, ctime_ns=self._now)
        for xname, value in m.xattrs:
            self.meta.set_xattr(ino, xname, value)
        self._named.add(ino)
        self._touched.discard(ino)
        if ino in self._preexisting:
            self._changed.add(ino)

    def _dir(self, comps: tuple[bytes, ...], done: Summary, made: list[tuple[bytes, ...]]) -> int:
        """The directory at *comps* below the import directory; missing ones are made (0755,
        root's), as tar makes the parents an archive does not list."""
        ino = self._dirs.get(comps)
        if ino is not None:
            return ino
        parent = self._dir(comps[:-1], done, made)
        name = comps[-1]
        child = self.meta.lookup(parent, name)
        if child is None:
            child = self._mkdir(parent, name, 0o755, 0, 0, self._now)
            made.append(comps)
            done.dirs += 1
        else:
            self._require_dir(child, comps)
            self._preexisting.add(child)
        self._dirs[comps] = child
        return child

    def _require_dir(self, ino: int, comps: tuple[bytes, ...]) -> None:
        node = self.meta.get_inode_attrs(ino)
        shown = b"/".join(comps).decode("utf-8", "replace")
        if node is not None and node.is_symlink:
            raise KernelError("ELOOP", f"{shown} is a symlink in the tree: members are never "
                                       "written through symlinks")
        if node is None or not node.is_dir:
            raise KernelError("ENOTDIR", f"{shown} is not a directory")

    def _link_target(self, m: Member) -> int:
        """The inode a hard link member names (it must be in the import directory already)."""
        assert m.link is not None
        shown = b"/".join(m.link).decode("utf-8", "replace")
        ino = self._dirs.get(m.link[:-1])
        if ino is None:
            ino = self._dirs[()]
            for i, name in enumerate(m.link[:-1]):
                nxt = self.meta.lookup(ino, name)
                if nxt is None:
                    raise KernelError("ENOENT", f"hard link target {shown} is not in the import directory")
                self._require_dir(nxt, m.link[:i + 1])
                ino = nxt
        target = self.meta.lookup(ino, m.link[-1])
        if target is None:
            raise KernelError("ENOENT", f"hard link target {shown} is not in the import directory")
        node = self.meta.get_inode_attrs(target)
        if node is None or node.is_dir:
            raise KernelError("EPERM", f"hard link target {shown} is a directory")
        return target

    def _added(self, parent: int, name: bytes) -> None:
        if parent in self._preexisting:
            self._new_names.append((parent, name))
            self._changed.add(parent)
            if parent not in self._named:
                self._touched.add(parent)

    def _touch_parents(self) -> None:
        """Directories that existed before and gained names: their mtime is now, as after a
        create (those a member describes keep the member's)."""
        for ino in self._touched:
            self.meta.update_inode(ino, mtime_ns=self._now, ctime_ns=self._now)
        self._touched.clear()

    def _charge(self, nbytes: int) -> None:
        room = self.bm.room
        if room is not None:
            room.charge(nbytes)
