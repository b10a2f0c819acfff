"""Offline consistency check (and repair) of a store directory.

Why it reads ``meta.db`` with SQL instead of the ``MetadataStore`` API: a check
must see rows the API never hands out (orphans, dangling entries, stale
refcounts) and a repair must write counters the API maintains implicitly.  The
whole scan is loaded into memory once; every check is then a set operation.

Problem classes are either *errors* (the metadata contradicts itself or data is
missing) or *notices* (harmless leftovers of a crash that ``gc`` or ``--repair``
clean up: unreferenced block files, temp files, unlinked inodes).  Only errors
make the check fail.

Repair never drops a name or a byte that is still readable: refcounts and link
counts are recomputed, dangling entries dropped, files without a name or with
unreadable chunks are moved to ``/lost+found/#<ino>``, corrupt block files are
moved aside into ``STORE/corrupt/`` and unreferenced block files are deleted.
"""

from __future__ import annotations

import os
import stat as _stat
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import apsw
import trio
import xxhash

from blockstores.host import TEMP_PREFIX, HostBlockStore
from kernel.errors import KernelError
from kernel.fs import ROOT_INO

ProgressFn = Callable[[str, int, int], None]
S_IFMT = 0o170000
S_IFDIR = 0o040000
LOST_FOUND = b"lost+found"
DEFAULT_CHUNK_SIZE = 4 << 20
MAX_SAMPLES = 20
_HASH_BATCH = 64  # block files hashed per worker-thread hop

# kind -> (severity, human description), in report order
CLASSES: dict[str, tuple[str, str]] = {
    "dangling_dentries": ("error", "entries naming a missing inode or the root, or in a non-directory"),
    "dir_hardlinks": ("error", "directories with more than one name"),
    "orphan_inodes": ("error", "inodes with nlink > 0 but no name"),
    "disconnected": ("error", "named inodes not reachable from the root (directory cycles)"),
    "wrong_nlink": ("error", "inodes whose nlink does not match their names / subdirectories"),
    "chunks_without_file": ("error", "chunk rows of a missing inode, a non-file or an inline file"),
    "chunks_beyond_size": ("error", "chunk rows at or beyond the file size"),
    "inline_too_long": ("error", "inline content longer than the file size"),
    "wrong_refcount": ("error", "block refcounts that differ from the references counted"),
    "missing_blocks": ("error", "referenced blocks missing from the block store"),
    "corrupt_blocks": ("error", "block files whose xxh3-128 is not their name (--verify-data)"),
    "damaged_files": ("error", "files that reference a missing or corrupt block"),
    "unreferenced_blocks": ("notice", "block files nothing references (gc removes them)"),
    "temp_files": ("notice", "temporary block files left by a crash"),
    "unlinked_inodes": ("notice", "inodes with no name and nlink 0 (deleted while open)"),
    "open_modes": ("notice", "store files other users may read or change (--repair: 0600/0700)"),
}


@dataclass
class FsckReport:
    """Counts per problem class, a few examples of each, and what was scanned."""

    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in CLASSES})
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    scanned: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, detail: str, n: int = 1) -> None:
        self.counts[kind] += n
        if len(self.samples[kind]) < MAX_SAMPLES:
            self.samples[kind].append(detail)

    @property
    def errors(self) -> int:
        return sum(n for k, n in self.counts.items() if CLASSES[k][0] == "error")

    @property
    def notices(self) -> int:
        return sum(n for k, n in self.counts.items() if CLASSES[k][0] == "notice")

    def to_json(self) -> dict:
        return {"counts": dict(self.counts), "samples": {k: v for k, v in self.samples.items() if v},
                "scanned": dict(self.scanned), "errors": self.errors, "notices": self.notices}


@dataclass
class FsckResult:
    before: FsckReport
    after: FsckReport | None = None  # the re-check after a repair
    actions: dict[str, int] = field(default_factory=Counter)

    @property
    def final(self) -> FsckReport:
        return self.after or self.before

    def to_json(self) -> dict:
        out = {"found": self.before.to_json(), "repaired": dict(self.actions)}
        if self.after is not None:
            out["after_repair"] = self.after.to_json()
        return out


@dataclass
class _Scan:
    """Everything fsck needs from meta.db and the block directory, loaded once."""

    inodes: dict[int, tuple[int, int, int, str, int]]  # ino -> (mode, size, nlink, storage, inline_len)
    dentries: list[tuple[int, bytes, int, int]]  # (parent, name, child, seq)
    chunks: list[tuple[int, int, str]]  # (ino, index, key)
    version_refs: Counter  # key -> references from version_chunks
    version_keys_by_ino: dict[int, set[str]]
    block_rows: dict[str, tuple[int, int]]  # key -> (refcount, length)
    on_disk: set[str]
    temp_files: list[str]
    chunk_size: int
    block_path: Callable[[str], str]
    corrupt: set[str] = field(default_factory=set)
    open_modes: list[tuple[str, int]] = field(default_factory=list)  # (path, st_mode)
    verified: bool = False
    refs_after: Counter = field(default_factory=Counter)  # references once repaired

    def is_dir(self, ino: int) -> bool:
        row = self.inodes.get(ino)
        return row is not None and (row[0] & S_IFMT) == S_IFDIR


def _connect(store_path: str, writable: bool) -> apsw.Connection:
    db = os.path.join(store_path, "meta.db")
    if not os.path.isfile(db):
        raise KernelError("ENOENT", f"not a store (no meta.db): {store_path}")
    flags = apsw.SQLITE_OPEN_READWRITE if writable else apsw.SQLITE_OPEN_READONLY
    conn = apsw.Connection(db, flags=flags)
    conn.set_busy_timeout(10_000)
    try:
        have = conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'schema_version'").get
    except apsw.Error as exc:
        conn.close()
        raise KernelError("EIO", f"meta.db is not readable: {exc}") from None
    if not have:
        conn.close()
        raise KernelError("EINVAL", "meta.db has no vfsfuse schema")
    return conn


def _load(conn: apsw.Connection) -> tuple:
    inodes = {row[0]: (row[1], row[2], row[3], row[4], row[5]) for row in conn.execute(
        "SELECT ino, mode, size, nlink, storage_mode, length(inline_content) FROM inodes")}
    inodes = {k: (m, s, n, st, il or 0) for k, (m, s, n, st, il) in inodes.items()}
    dentries = list(conn.execute("SELECT parent_ino, name, child_ino, seq FROM dentries"))
    chunks = list(conn.execute("SELECT ino, chunk_index, key FROM chunks"))
    version_refs: Counter = Counter()
    by_ino: dict[int, set[str]] = defaultdict(set)
    for ino, key in conn.execute("SELECT ino, key FROM version_chunks"):
        version_refs[key] += 1
        by_ino[ino].add(key)
    rows = {k: (r, ln) for k, r, ln in conn.execute("SELECT key, refcount, length FROM blocks")}
    cs = conn.execute("SELECT value FROM config WHERE key = 'chunk_size'").get
    chunk_size = int(cs) if cs else DEFAULT_CHUNK_SIZE
    return inodes, dentries, chunks, version_refs, by_ino, rows, chunk_size


def _list_temp_files(base: str) -> list[str]:
    found: list[str] = []
    for top in _subdirs(base):
        for shard in _subdirs(top):
            with os.scandir(shard) as it:
                found.extend(e.path for e in it if e.name.startswith(TEMP_PREFIX))
    return found


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.path for e in it if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _open_modes(store_path: str) -> list[tuple[str, int]]:
    """Every directory and file of the store (itself included) with group or other bits:
    the blocks are the files' bytes and meta.db holds every name, so all stay private."""
    found: list[tuple[str, int]] = []
    try:
        mode = os.lstat(store_path).st_mode
    except FileNotFoundError:
        return found
    if mode & 0o077:
        found.append((store_path, mode))
    for top, dirs, files in os.walk(store_path):
        for name in dirs + files:
            path = os.path.join(top, name)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not _stat.S_ISLNK(mode) and mode & 0o077:
                found.append((path, mode))
    return found


def _fix_modes(found: list[tuple[str, int]]) -> int:
    """Drop the group and other bits of every path in *found* (0644 -> 0600, 0755 -> 0700)."""
    fixed = 0
    for path, mode in found:
        try:
            os.chmod(path, _stat.S_IMODE(mode) & 0o700, follow_symlinks=False)
            fixed += 1
        except FileNotFoundError:
            pass
    return fixed


def _hash_file(path: str) -> tuple[str, int]:
    h = xxhash.xxh3_128()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            buf = f.read(8 << 20)
            if not buf:
                break
            h.update(buf)
            size += len(buf)
    return h.hexdigest(), size


def _hash_files(paths: list[str]) -> list[tuple[str, int] | None]:
    out: list[tuple[str, int] | None] = []
    for path in paths:
        try:
            out.append(_hash_file(path))
        except FileNotFoundError:
            out.append(None)
    return out


async def _scan(conn: apsw.Connection, blocks: HostBlockStore, verify: bool,
                progress: ProgressFn) -> _Scan:
    inodes, dentries, chunks, vrefs, vby, rows, cs = _load(conn)
    on_disk: set[str] = set()
    async for key in blocks.list_keys():
        on_disk.add(key)
        if len(on_disk) % 1024 == 0:
            progress("listing blocks", len(on_disk), max(len(rows), len(on_disk)))
    temp = await trio.to_thread.run_sync(_list_temp_files, blocks.base_dir)
    scan = _Scan(inodes, dentries, chunks, vrefs, vby, rows, on_disk, temp, cs, blocks.path_for)
    scan.verified = verify
    scan.open_modes = await trio.to_thread.run_sync(_open_modes, os.path.dirname(blocks.base_dir))
    if verify:
        keys = sorted(on_disk)
        for start in range(0, len(keys), _HASH_BATCH):  # one thread hop per batch
            batch = keys[start:start + _HASH_BATCH]
            hashed = await trio.to_thread.run_sync(_hash_files, [blocks.path_for(k) for k in batch])
            for key, found in zip(batch, hashed):
                if found is None:  # vanished since the listing
                    scan.on_disk.discard(key)
                    continue
                digest, size = found
                row = rows.get(key)
                if digest != key or (row is not None and row[1] and row[1] != size):
                    scan.corrupt.add(key)
            progress("verifying blocks", start + len(batch), len(keys))
    return scan


@dataclass
class _Findings:
    """Problems found by ``_check``, in the form the repair needs them."""

    report: FsckReport
    dangling: list[tuple[int, bytes]] = field(default_factory=list)
    extra_dir_names: list[tuple[int, bytes]] = field(default_factory=list)
    to_lost_found: set[int] = field(default_factory=set)
    bad_chunks: list[tuple[int, int]] = field(default_factory=list)
    inline_trim: list[int] = field(default_factory=list)
    unlinked: list[int] = field(default_factory=list)
    refcounts: dict[str, int] = field(default_factory=dict)  # wanted refcount per key
    wrong_nlink: int = 0
    lf_ino: int | None = None


def _check(scan: _Scan) -> _Findings:
    rep = FsckReport()
    f = _Findings(rep)
    inodes = scan.inodes
    names: dict[int, list[tuple[int, bytes, int]]] = defaultdict(list)  # child -> [(parent, name, seq)]
    subdirs: Counter = Counter()
    children: dict[int, list[int]] = defaultdict(list)
    for parent, name, child, seq in scan.dentries:
        if child not in inodes or not scan.is_dir(parent) or child == ROOT_INO:
            rep.add("dangling_dentries", f"{parent}/{_show(name)} -> {child}")
            f.dangling.append((parent, name))
            continue
        names[child].append((parent, name, seq))
    root_lf = [c for c, ns in names.items() for p, n, _ in ns if p == ROOT_INO and n == LOST_FOUND]
    f.lf_ino = root_lf[0] if root_lf and scan.is_dir(root_lf[0]) else None
    # directories: one name each; keep the oldest (lowest seq)
    for child, ns in names.items():
        if scan.is_dir(child) and len(ns) > 1:
            ns.sort(key=lambda t: t[2])
            for parent, name, _ in ns[1:]:
                rep.add("dir_hardlinks", f"{parent}/{_show(name)} -> dir {child}")
                f.extra_dir_names.append((parent, name))
            del ns[1:]
    for child, ns in names.items():
        for parent, _n, _s in ns:
            children[parent].append(child)
            if scan.is_dir(child):
                subdirs[parent] += 1
    # reachability from the root
    seen = {ROOT_INO}
    todo = [ROOT_INO]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in seen:
                seen.add(c)
                if scan.is_dir(c):
                    todo.append(c)
    for ino, (mode, size, nlink, storage, inline_len) in inodes.items():
        is_dir = (mode & S_IFMT) == S_IFDIR
        if ino != ROOT_INO and not names.get(ino):
            if nlink == 0 and not (is_dir and children.get(ino)):
                rep.add("unlinked_inodes", f"inode {ino}")
                f.unlinked.append(ino)
            else:
                rep.add("orphan_inodes", f"inode {ino} (nlink {nlink})")
                f.to_lost_found.add(ino)
            continue
        if ino not in seen:
            if is_dir:  # attach each cycle once; files inside come back with it
                rep.add("disconnected", f"directory {ino}")
                f.to_lost_found.add(ino)
            continue
        want = 2 + subdirs[ino] if is_dir else len(names[ino])
        if nlink != want:
            rep.add("wrong_nlink", f"inode {ino}: nlink {nlink}, expected {want}")
            f.wrong_nlink += 1
        if storage == "inline" and inline_len > size and _stat.S_ISREG(mode):
            rep.add("inline_too_long", f"inode {ino}: {inline_len} bytes inline, size {size}")
            f.inline_trim.append(ino)
    # chunk maps
    refs: Counter = Counter(scan.version_refs)
    keys_of: dict[int, set[str]] = defaultdict(set)
    for ino, idx, key in scan.chunks:
        row = inodes.get(ino)
        if row is None or not _stat.S_ISREG(row[0]) or row[3] != "chunked":
            rep.add("chunks_without_file", f"inode {ino} chunk {idx}")
            f.bad_chunks.append((ino, idx))
            continue
        if idx * scan.chunk_size >= row[1]:
            rep.add("chunks_beyond_size", f"inode {ino} chunk {idx} (size {row[1]})")
            f.bad_chunks.append((ino, idx))
            continue
        refs[key] += 1
        keys_of[ino].add(key)
    # refcounts
    for key in set(refs) | set(scan.block_rows):
        stored = scan.block_rows.get(key, (0, 0))[0]
        if stored != refs.get(key, 0) and not (stored == 0 and key not in refs
                                              and key not in scan.block_rows):
            rep.add("wrong_refcount", f"{key}: refcount {stored}, counted {refs.get(key, 0)}")
        f.refcounts[key] = refs.get(key, 0)
    # blocks
    missing = {k for k in refs if k not in scan.on_disk}
    for key in sorted(missing):
        rep.add("missing_blocks", key)
    for key in sorted(scan.corrupt):
        rep.add("corrupt_blocks", key)
    bad = missing | scan.corrupt
    if bad:
        for ino, keys in sorted(keys_of.items()):
            if keys & bad:
                rep.add("damaged_files", f"inode {ino}")
                if not _is_in_lost_found(names.get(ino, []), ino, f.lf_ino):
                    f.to_lost_found.add(ino)
    for key in sorted(scan.on_disk - set(refs)):
        rep.add("unreferenced_blocks", key)
    for path in scan.temp_files:
        rep.add("temp_files", os.path.basename(path))
    for path, mode in scan.open_modes:
        rep.add("open_modes", f"{path} {_stat.S_IMODE(mode):04o}")
    rep.scanned = {"inodes": len(inodes), "dentries": len(scan.dentries),
                   "chunks": len(scan.chunks), "referenced_blocks": len(refs),
                   "block_files": len(scan.on_disk),
                   "verified_blocks": len(scan.on_disk) if scan.verified else 0}
    return f


def _is_in_lost_found(ns: list[tuple[int, bytes, int]], ino: int, lf: int | None) -> bool:
    return lf is not None and len(ns) == 1 and ns[0][0] == lf and ns[0][1] == b"#%d" % ino


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


# -- the mount lock ------------------------------------------------------------------------


def lock_holder(store_path: str) -> tuple[int, str] | None:
    """``(pid, mountpoint)`` of the daemon holding ``STORE/run/lock``, or None.

    The daemon keeps an ``flock`` on the file for its whole life (the kernel drops
    it when the holder dies), so the flock, not the pid text, decides; the text
    only names the holder in the message.
    """
    import fcntl

    path = os.path.join(store_path, "run", "lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace").split(maxsplit=1)
            pid = int(text[0]) if text and text[0].isdigit() else 0
            return pid, text[1].strip() if len(text) > 1 else ""
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def require_unmounted(store_path: str) -> None:
    """Refuse a store that a live daemon has mounted (EBUSY)."""
    holder = lock_holder(store_path)
    if holder is not None:
        pid, where = holder
        on = f" on {where}" if where else ""
        raise KernelError("EBUSY", f"store is mounted (daemon pid {pid}{on}); unmount it first, "
                                   "or use a path inside the mount")


@contextmanager
def exclusive_store(store_path: str) -> Iterator[None]:
    """Hold the store lock (the daemon's flock on ``STORE/run/lock``) while working offline,
    so a daemon cannot mount the store under fsck, load or an offline gc (it gets EBUSY)."""
    import fcntl

    run = os.path.join(store_path, "run")
    try:
        os.makedirs(run, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(run, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise KernelError.from_os_error(err, f"cannot open the lock of {store_path}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            require_unmounted(store_path)  # names the holder
            raise KernelError("EBUSY", "store is in use by another process") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- repair --------------------------------------------------------------------------------


def _repair_metadata(conn: apsw.Connection, scan: _Scan, f: _Findings, actions: Counter) -> None:
    """Apply every metadata fix in one transaction."""
    now = time.time_ns()
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        for parent, name in f.dangling + f.extra_dir_names:
            cur.execute("DELETE FROM dentries WHERE parent_ino = ? AND name = ?", (parent, name))
        actions["dentries_dropped"] += len(f.dangling) + len(f.extra_dir_names)
        for ino, idx in f.bad_chunks:
            cur.execute("DELETE FROM chunks WHERE ino = ? AND chunk_index = ?", (ino, idx))
        actions["chunk_rows_dropped"] += len(f.bad_chunks)
        for ino in f.inline_trim:
            cur.execute("UPDATE inodes SET inline_content = substr(inline_content, 1, size) "
                        "WHERE ino = ?", (ino,))
        actions["inline_trimmed"] += len(f.inline_trim)
        for ino in f.unlinked:
            _delete_inode(cur, ino)
        actions["unlinked_inodes_deleted"] += len(f.unlinked)
        if f.to_lost_found:
            seq = cur.execute("SELECT value FROM counters WHERE name = 'dentry_seq'").get or 0
            lf = f.lf_ino
            if lf is None:
                lf, seq = _make_lost_found(cur, now, seq)
                actions["lost+found_created"] += 1
            for ino in sorted(f.to_lost_found):
                if ino == lf:
                    continue
                cur.execute("DELETE FROM dentries WHERE child_ino = ?", (ino,))
                seq += 1
                cur.execute("INSERT INTO dentries (parent_ino, name, child_ino, seq) "
                            "VALUES (?, ?, ?, ?)", (lf, b"#%d" % ino, ino, seq))
                cur.execute("UPDATE inodes SET ctime_ns = ? WHERE ino = ?", (now, ino))
            cur.execute("UPDATE counters SET value = ? WHERE name = 'dentry_seq'", (seq,))
            actions["moved_to_lost+found"] += len(f.to_lost_found)
        actions["nlinks_fixed"] += _recount_nlinks(cur)
        actions["refcounts_fixed"] += _recount_refs(cur, scan)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def _delete_inode(cur: apsw.Cursor, ino: int) -> None:
    for table in ("version_chunks", "versions", "chunks", "xattrs", "symlinks"):
        cur.execute(f"DELETE FROM {table} WHERE ino = ?", (ino,))
    cur.execute("DELETE FROM dentries WHERE parent_ino = ?", (ino,))
    cur.execute("DELETE FROM inodes WHERE ino = ?", (ino,))


def _make_lost_found(cur: apsw.Cursor, now: int, seq: int) -> tuple[int, int]:
    name = LOST_FOUND
    n = 0
    while cur.execute("SELECT 1 FROM dentries WHERE parent_ino = ? AND name = ?",
                      (ROOT_INO, name)).get:
        n += 1  # /lost+found exists but is not a directory: never touch it
        name = LOST_FOUND + b".%d" % n
    cur.execute("INSERT INTO inodes (mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, "
                "birthtime_ns) VALUES (?, 0, 0, 2, ?, ?, ?, ?)",
                (S_IFDIR | 0o700, now, now, now, now))
    ino = cur.connection.last_insert_rowid()
    seq += 1
    cur.execute("INSERT INTO dentries (parent_ino, name, child_ino, seq) VALUES (?, ?, ?, ?)",
                (ROOT_INO, name, ino, seq))
    return ino, seq


_NLINK_SQL = f"""
WITH names AS (SELECT child_ino AS ino, count(*) AS n FROM dentries GROUP BY child_ino),
     subdirs AS (SELECT d.parent_ino AS ino, count(*) AS n FROM dentries d
                 JOIN inodes c ON c.ino = d.child_ino WHERE (c.mode & {S_IFMT}) = {S_IFDIR}
                 GROUP BY d.parent_ino),
     wanted AS (SELECT i.ino,
                       CASE WHEN (i.mode & {S_IFMT}) = {S_IFDIR}
                            THEN 2 + coalesce((SELECT n FROM subdirs s WHERE s.ino = i.ino), 0)
                            ELSE coalesce((SELECT n FROM names m WHERE m.ino = i.ino), 0) END AS n
                FROM inodes i)
UPDATE inodes SET nlink = (SELECT n FROM wanted w WHERE w.ino = inodes.ino)
WHERE nlink != (SELECT n FROM wanted w WHERE w.ino = inodes.ino)
  AND (ino = {ROOT_INO} OR ino IN (SELECT ino FROM names))
"""


def _recount_nlinks(cur: apsw.Cursor) -> int:
    cur.execute(_NLINK_SQL)
    return cur.connection.changes()


def _recount_refs(cur: apsw.Cursor, scan: _Scan) -> int:
    wanted: Counter = Counter()
    for (key,) in cur.execute("SELECT key FROM chunks UNION ALL SELECT key FROM version_chunks"):
        wanted[key] += 1
    rows = {k: r for k, r in cur.execute("SELECT key, refcount FROM blocks")}
    fixed = 0
    for key, stored in rows.items():
        if key not in wanted:
            cur.execute("DELETE FROM blocks WHERE key = ?", (key,))
            fixed += 1
        elif stored != wanted[key]:
            cur.execute("UPDATE blocks SET refcount = ? WHERE key = ?", (wanted[key], key))
            fixed += 1
    for key, n in wanted.items():
        if key not in rows:
            length = 0
            if key in scan.on_disk:
                try:
                    length = os.stat(scan.block_path(key)).st_size
                except OSError:
                    pass
            cur.execute("INSERT INTO blocks (key, refcount, length) VALUES (?, ?, ?)",
                        (key, n, length))
            fixed += 1
    scan.refs_after = wanted
    return fixed


async def _repair_blocks(store_path: str, blocks: HostBlockStore, scan: _Scan,
                         actions: Counter, progress: ProgressFn) -> None:
    """After the metadata commit: quarantine corrupt blocks, delete unreferenced ones."""
    wanted = scan.refs_after
    if scan.corrupt:
        quarantine = os.path.join(store_path, "corrupt")
        os.makedirs(quarantine, mode=0o700, exist_ok=True)
        for key in sorted(scan.corrupt):
            try:
                os.replace(blocks.path_for(key), os.path.join(quarantine, key))
                actions["corrupt_blocks_quarantined"] += 1
            except FileNotFoundError:
                pass
    dead = sorted(k for k in scan.on_disk - scan.corrupt if k not in wanted)
    for start in range(0, len(dead), 512):
        await blocks.delete_many(dead[start:start + 512])
        progress("deleting unreferenced blocks", min(start + 512, len(dead)), len(dead))
    actions["unreferenced_blocks_deleted"] += len(dead)
    if scan.temp_files:
        actions["temp_files_deleted"] += await blocks.cleanup_temp_files()
    # last, so the quarantine dir made above is covered too
    found = await trio.to_thread.run_sync(_open_modes, store_path)
    actions["modes_made_private"] += await trio.to_thread.run_sync(_fix_modes, found)


# -- entry point ---------------------------------------------------------------------------


async def fsck_store(store_path: str, *, repair: bool = False, verify_data: bool = False,
                     progress: ProgressFn | None = None) -> FsckResult:
    """Check the (unmounted) store at *store_path*; with *repair*, fix and re-check."""
    from vfsfuse.storage.store import check_store

    progress = progress or (lambda phase, done, total: None)
    store_path = os.path.abspath(store_path)
    check_store(store_path)  # refuses an empty, damaged, foreign or newer meta.db, writing nothing
    with exclusive_store(store_path):
        return await _fsck_locked(store_path, repair, verify_data, progress)


async def _fsck_locked(store_path: str, repair: bool, verify_data: bool,
                       progress: ProgressFn) -> FsckResult:
    conn = _connect(store_path, writable=repair)
    try:
        blocks = HostBlockStore(os.path.join(store_path, "blocks"))
        scan = await _scan(conn, blocks, verify_data, progress)
        found = _check(scan)
        result = FsckResult(found.report)
        if not repair or (found.report.errors == 0 and found.report.notices == 0):
            return result
        actions: Counter = Counter()
        _repair_metadata(conn, scan, found, actions)
        await _repair_blocks(store_path, blocks, scan, actions, progress)
        result.actions = {k: v for k, v in actions.items() if v}
        rescan = await _scan(conn, blocks, False, progress)
        result.after = _check(rescan).report
        return result
    finally:
        conn.close()
