"""SQLite metadata store (apsw), with group commit.

One write transaction stays open between commits: it starts lazily
(``BEGIN IMMEDIATE``) at the first write and ends at ``commit()``.  Readers in
other processes (``sqlite3 -readonly meta.db``) see the last committed state,
thanks to WAL mode and normal locking.  ``transaction()`` is a SAVEPOINT inside
the group; on error it rolls back to the savepoint and re-raises the very same
exception object.

SQL texts are constants so apsw's statement cache reuses the prepared
statements; every hot call is one or two cached statements on one cursor.
Foreign-key failures never escape raw: preconditions are checked first and any
leftover ``apsw.ConstraintError`` becomes a ``KernelError``.
"""

from __future__ import annotations

import json
import stat as _stat
from collections import Counter
from typing import Iterator, Literal

import apsw

from kernel.errors import KernelError
from kernel.fs import ROOT_INO
from vfsfuse.storage.metadata import schema
from vfsfuse.storage.metadata.base import (
    INLINE,
    INODE_FIELDS,
    NOT_LOADED,
    ChunkRef,
    DentryRecord,
    InodeRecord,
    MetadataStore,
    StoreStats,
    VersionMeta,
)

_ROOT_MODE = _stat.S_IFDIR | 0o755
_IFMT = 0o170000
_INODE_COLS = ("ino, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, "
               "birthtime_ns, storage_mode, inline_content")
_INODE_FIELD_SET = frozenset(INODE_FIELDS)

# -- statements (constant texts: apsw caches the prepared statements) -------------------
_GET_INODE = f"SELECT {_INODE_COLS} FROM inodes WHERE ino = ?"
# Without inline_content: SQLite then never reads the blob's overflow pages.
_GET_INODE_ATTRS = ("SELECT ino, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, "
                    "birthtime_ns, storage_mode FROM inodes WHERE ino = ?")
_GET_INLINE = "SELECT inline_content FROM inodes WHERE ino = ?"
_ATTR_CACHE_ENTRIES = 16384  # attribute records kept (a few MiB); the cache starts over when full
# Integer attributes whose updates are held back until a statement that may read them (see
# ``_cur``).  No constraint can refuse an integer in these columns, so a held-back update cannot
# fail later for a reason the caller would have been told about.
_DEFERRABLE = frozenset({"mode", "uid", "gid", "size", "nlink", "atime_ns", "mtime_ns", "ctime_ns"})
_INT64 = 1 << 63  # SQLite's integers: anything outside is refused by the UPDATE, so it goes at once
_HELD_ROWS = 4096  # rows held back at most (~1 MiB); then they are sent in one go
_GET_MODE = "SELECT mode FROM inodes WHERE ino = ?"
# The number comes from a Python-side high-water mark, so even a number handed out
# inside a rolled-back savepoint is never handed out again (AUTOINCREMENT alone would).
_INSERT_INODE = ("INSERT INTO inodes (ino, mode, uid, gid, rdev, atime_ns, mtime_ns, ctime_ns, "
                 "birthtime_ns, nlink, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?6, ?7, ?8)")
_INSERT_SYMLINK = "INSERT INTO symlinks (ino, target) VALUES (?, ?)"
_READ_SYMLINK = "SELECT target FROM symlinks WHERE ino = ?"
_LOOKUP = "SELECT child_ino FROM dentries WHERE parent_ino = ? AND name = ?"
# Insert only if the parent is a directory; 0 changes means: find out why.
_INSERT_DENTRY = ("INSERT INTO dentries (parent_ino, name, child_ino, seq) "
                  "SELECT ?1, ?2, ?3, ?4 FROM inodes WHERE ino = ?1 AND (mode & 61440) = 16384")
_DELETE_DENTRY = "DELETE FROM dentries WHERE parent_ino = ? AND name = ? RETURNING child_ino"
_MOVE_DENTRY = ("UPDATE dentries SET parent_ino = ?, name = ?, seq = ? "
                "WHERE parent_ino = ? AND name = ?")
_SET_DENTRY_CHILD = "UPDATE dentries SET child_ino = ? WHERE parent_ino = ? AND name = ?"
_LIST_DIR = ("SELECT d.name, d.child_ino, d.seq, i.mode FROM dentries d "
             "JOIN inodes i ON i.ino = d.child_ino "
             "WHERE d.parent_ino = ? AND d.seq > ? ORDER BY d.seq LIMIT ?")
_LIST_DIR_STATS = ("SELECT d.name, d.seq, i.ino, i.mode, i.uid, i.gid, i.size, i.nlink, i.rdev, "
                   "i.atime_ns, i.mtime_ns, i.ctime_ns, i.birthtime_ns, i.storage_mode "
                   "FROM dentries d JOIN inodes i ON i.ino = d.child_ino "
                   "WHERE d.parent_ino = ? AND d.seq > ? ORDER BY d.seq LIMIT ?")
_HAS_CHILDREN = "SELECT EXISTS (SELECT 1 FROM dentries WHERE parent_ino = ?)"
_PARENTS_OF = "SELECT parent_ino, name FROM dentries WHERE child_ino = ? ORDER BY seq"
_ANY_LINKED = "SELECT EXISTS (SELECT 1 FROM dentries WHERE child_ino IN (SELECT value FROM json_each(?)))"
_DELETE_CHUNKS_OF_MANY = "DELETE FROM chunks WHERE ino IN (SELECT value FROM json_each(?)) RETURNING key"
_MODE_AND_LINKED = ("SELECT mode, EXISTS (SELECT 1 FROM dentries WHERE child_ino = ?1) "
                    "FROM inodes WHERE ino = ?1")
_GET_CHUNK = "SELECT key FROM chunks WHERE ino = ? AND chunk_index = ?"
_REPLACE_CHUNK = ("INSERT INTO chunks (ino, chunk_index, key) VALUES (?, ?, ?) "
                  "ON CONFLICT (ino, chunk_index) DO UPDATE SET key = excluded.key")
_ALL_CHUNKS = "SELECT chunk_index, key FROM chunks WHERE ino = ? ORDER BY chunk_index"
_DELETE_ALL_CHUNKS = "DELETE FROM chunks WHERE ino = ? RETURNING key"
_DELETE_CHUNKS_FROM = "DELETE FROM chunks WHERE ino = ? AND chunk_index >= ? RETURNING key"
_STORED_BYTES = ("SELECT COALESCE(SUM(b.length), 0) FROM chunks c JOIN blocks b ON b.key = c.key "
                 "WHERE c.ino = ?")
_DELETE_CHUNK = "DELETE FROM chunks WHERE ino = ? AND chunk_index = ? RETURNING key"
_ORPHANS = ("SELECT ino FROM inodes WHERE nlink = 0 AND ino != 1 "
            "AND NOT EXISTS (SELECT 1 FROM dentries WHERE child_ino = inodes.ino) ORDER BY ino")
_INCREF = ("INSERT INTO blocks (key, refcount, length) VALUES (?, ?, ?) "
           "ON CONFLICT (key) DO UPDATE SET refcount = refcount + excluded.refcount, "
           "length = CASE WHEN length = 0 THEN excluded.length ELSE length END")
_DECREF = "UPDATE blocks SET refcount = refcount - ? WHERE key = ? RETURNING refcount, length"
_DROP_BLOCK = "DELETE FROM blocks WHERE key = ?"
_BLOCK = "SELECT refcount, length FROM blocks WHERE key = ?"
_BLOCK_EXISTS = "SELECT EXISTS (SELECT 1 FROM blocks WHERE key = ?)"
_GET_XATTR = "SELECT value FROM xattrs WHERE ino = ? AND name = ?"
_SET_XATTR = ("INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) "
              "ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value")
_LIST_XATTRS = "SELECT name FROM xattrs WHERE ino = ? ORDER BY name"
_REMOVE_XATTR = "DELETE FROM xattrs WHERE ino = ? AND name = ? RETURNING 1"
_GET_CONFIG = "SELECT value FROM config WHERE key = ?"
_SET_CONFIG = ("INSERT INTO config (key, value) VALUES (?, ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
_SAVE_SEQ = "UPDATE counters SET value = ? WHERE name = 'dentry_seq'"
_VERSION_ROW = ("SELECT version, size, created_at_ns, storage_mode, inline_content "
                "FROM versions WHERE ino = ? AND version = ?")
_VERSION_ROWS = ("SELECT version, size, created_at_ns, storage_mode, inline_content "
                 "FROM versions WHERE ino = ? ORDER BY version DESC")
_VERSION_MAP = ("SELECT chunk_index, key FROM version_chunks WHERE ino = ? AND version = ? "
                "ORDER BY chunk_index")


def _constraint(err: apsw.ConstraintError, what: str) -> KernelError:
    """Map a constraint failure that slipped past the precondition checks."""
    text = str(err)
    if "UNIQUE" in text or "PRIMARY KEY" in text:
        return KernelError("EEXIST", what)
    if "FOREIGN KEY" in text:
        return KernelError("ENOENT", f"{what}: referenced inode does not exist")
    return KernelError("EINVAL", f"{what}: {text}")


def _sqlite_error(err: apsw.Error, what: str) -> KernelError:
    """Map an SQLite failure (disk full, read-only file, I/O error) to a KernelError."""
    if isinstance(err, apsw.FullError):
        code = "ENOSPC"
    elif isinstance(err, (apsw.BusyError, apsw.LockedError)):
        code = "EBUSY"
    elif isinstance(err, (apsw.ReadOnlyError, apsw.PermissionsError)):
        code = "EROFS"
    else:
        code = "EIO"
    return KernelError(code, f"{what}: {err}")


class _Savepoint:
    """``transaction()``: a SAVEPOINT inside the open group transaction."""

    __slots__ = ("_store", "_pending")

    def __init__(self, store: "SqliteMetadataStore") -> None:
        self._store = store

    def __enter__(self) -> "_Savepoint":
        s = self._store
        s._write()
        s._raw.execute("SAVEPOINT sp")
        s._depth += 1
        self._pending = dict(s._pending_dead)
        s._undo.append({})  # held-back updates stay held: a rollback puts back what they were
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        s = self._store
        s._depth -= 1
        undo = s._undo.pop()
        if exc_type is None:
            s._raw.execute("RELEASE sp")
            if s._undo:  # an outer rollback must still reach back past this savepoint
                outer = s._undo[-1]
                for ino, before in undo.items():
                    outer.setdefault(ino, before)
        else:
            s._attrs.clear()  # the rows written inside are back as they were
            for ino, before in undo.items():
                if before is None:
                    s._held.pop(ino, None)
                else:
                    s._held[ino] = before
            try:
                s._raw.execute("ROLLBACK TO sp")
                s._raw.execute("RELEASE sp")
            except apsw.SQLError:
                pass  # SQLite already rolled the whole group back; commit() reports it
            s._load_versioned()  # a deletion inside may have dropped versions that are back
            s._pending_dead = self._pending  # deaths/revivals inside were undone too
        return False  # re-raise the same exception object


class SqliteMetadataStore(MetadataStore):
    """apsw-backed ``MetadataStore`` (see base.py for the method contracts)."""

    def __init__(self, path: str, versioning: bool = False, now_ns: int = 0, *,
                 create: bool = True) -> None:
        """Open *path*; with *create* (mkfs, tests) an empty or missing file gets the schema.
        Without it (``open_store``) the file must exist and hold a vfsfuse schema already:
        only mkfs creates one."""
        import time

        self.versioning = versioning
        self.path = path
        self._create = create
        flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
        try:
            self._conn = apsw.Connection(path, flags=flags, statementcachesize=256)
            if not create:
                self._require_schema()
            self._open(now_ns or time.time_ns())
        except apsw.Error as err:
            raise _sqlite_error(err, "cannot open metadata store") from None

    def _require_schema(self) -> None:
        """Refuse a file without a schema before anything (even the journal mode) is written."""
        try:
            have = self._conn.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").get
        except BaseException:
            self._conn.close()
            raise
        if not have:
            self._conn.close()
            raise KernelError("EINVAL", f"{self.path} has no vfsfuse schema (only mkfs creates one)")

    def _open(self, now: int) -> None:
        self._conn.set_busy_timeout(10_000)
        self._raw = self._conn.cursor()
        # Updates of _DEFERRABLE attributes not yet sent to SQLite, ino -> {column: value}.  A
        # file written by tar gets its size, times and mode set in three requests, and its
        # directory's times once per entry: held here, they cost one UPDATE per row instead.
        # Every statement that may read those columns goes through ``_cur``, which sends them
        # first; the few hot statements that cannot use ``_raw``.
        self._held: dict[int, dict[str, int]] = {}
        # One map per open savepoint: ino -> its held-back updates (None: none) before the first
        # change inside it, so a rollback costs what the savepoint changed, not what is held.
        self._undo: list[dict[int, dict[str, int] | None]] = []
        self._in_txn = False
        self._depth = 0
        self._pending_dead: dict[str, int] = {}
        self._update_sql: dict[tuple[str, ...], str] = {}
        # Attribute records as this connection last wrote or read them.  A FUSE request reads
        # its inode's (and its parent's) attributes several times per file; a SELECT costs
        # ~15x what a copy of the cached record does.  Only this object writes the inode rows
        # while the store is open (fsck and the CLI need it exclusively), so every write here
        # updates or drops the entry, and a rolled-back group empties the cache.
        self._attrs: dict[int, InodeRecord] = {}
        cur = self._cur
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA cache_size = -65536")  # 64 MiB
        cur.execute("PRAGMA temp_store = MEMORY")
        cur.execute("BEGIN IMMEDIATE")
        try:
            self._migrate()
            if cur.execute("SELECT 1 FROM inodes WHERE ino = ?", (ROOT_INO,)).get is None:
                cur.execute(
                    "INSERT INTO inodes (ino, mode, uid, gid, nlink, atime_ns, mtime_ns, "
                    "ctime_ns, birthtime_ns) VALUES (?, ?, 0, 0, 2, ?, ?, ?, ?)",
                    (ROOT_INO, _ROOT_MODE, now, now, now, now))
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                cur.execute("ROLLBACK")
            self._conn.close()
            raise
        self._seq = cur.execute("SELECT value FROM counters WHERE name = 'dentry_seq'").get
        self._saved_seq = self._seq
        self._next_ino = 1 + max(
            cur.execute("SELECT coalesce(max(ino), 1) FROM inodes").get,
            cur.execute("SELECT coalesce(max(seq), 1) FROM sqlite_sequence "
                        "WHERE name = 'inodes'").get)
        self._load_versioned()

    def _load_versioned(self) -> None:
        """The inodes that have saved versions: most never do, and deleting one then needs no
        statements on the two version tables (rm -rf and tar x replace thousands of files).
        Reloaded after a rollback, which can bring back versions a deletion had dropped; None
        (every inode may have some) when the table cannot be read."""
        try:
            self._versioned: set[int] | None = {
                ino for (ino,) in self._cur.execute("SELECT DISTINCT ino FROM versions")}
        except apsw.Error:
            self._versioned = None

    def _drop_all_versions(self, ino: int) -> None:
        v = self._versioned
        if v is None or ino in v:
            self._drop_versions_sql(ino, None)
            if v is not None:
                v.discard(ino)

    def _migrate(self) -> None:
        cur = self._cur
        have = cur.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").get
        version = cur.execute("SELECT version FROM schema_version").get if have else 0
        target = schema.current_version()
        if version > target:
            raise KernelError("EINVAL", f"store schema version {version} is newer than "
                                        f"this program ({target})")
        for v in range(version, target):
            schema.MIGRATIONS[v](cur)
        if version != target:
            cur.execute("UPDATE schema_version SET version = ?", (target,))

    @property
    def schema_version(self) -> int:
        return self._cur.execute("SELECT version FROM schema_version").get

    # -- transaction plumbing ----------------------------------------------------------

    @property
    def _cur(self) -> apsw.Cursor:
        """The cursor for statements that may read held-back attributes: sends them first."""
        if self._held:
            self._send_held()
        return self._raw

    def _remember(self, ino: int) -> None:
        """Note what is held for *ino* before the open savepoint first changes it."""
        level = self._undo[-1]
        if ino not in level:
            held = self._held.get(ino)
            level[ino] = None if held is None else dict(held)

    def _send_held(self) -> None:
        """One UPDATE per row with held-back attributes (executemany per column set)."""
        held = self._held
        if not self._conn.in_transaction:
            return  # SQLite rolled the group back by itself: commit() reports it
        if self._undo:  # a rollback of the savepoint un-sends them: they are held again
            for ino in held:
                self._remember(ino)
        groups: dict[tuple[str, ...], list[tuple[int, ...]]] = {}
        for ino, fields in held.items():
            names = tuple(sorted(fields))
            groups.setdefault(names, []).append((*(fields[n] for n in names), ino))
        try:
            for names, rows in groups.items():
                self._raw.executemany(self._update_statement(names), rows)
        except apsw.Error as err:
            # Kept held: the next statement (or commit) sends them again or reports the error;
            # they are never dropped while the group that made them is still open.
            raise _sqlite_error(err, "update_inode") from None
        held.clear()

    def _update_statement(self, names: tuple[str, ...]) -> str:
        sql = self._update_sql.get(names)
        if sql is None:
            if not _INODE_FIELD_SET.issuperset(names):
                raise TypeError(f"unknown inode fields: {sorted(set(names) - _INODE_FIELD_SET)}")
            sets = ", ".join(f"{n} = ?" for n in names)
            sql = self._update_sql[names] = f"UPDATE inodes SET {sets} WHERE ino = ?"
        return sql

    def _write(self) -> None:
        """Open the group transaction at the first write since the last commit."""
        if not self._in_txn:
            self._raw.execute("BEGIN IMMEDIATE")
            self._in_txn = True

    def transaction(self) -> _Savepoint:
        return _Savepoint(self)

    def commit(self) -> list[str]:
        if self._depth:
            raise KernelError("EBUSY", "commit() inside transaction()")
        if not self._in_txn:
            dead = list(self._pending_dead)
            self._pending_dead = {}
            return dead
        if not self._conn.in_transaction:
            # SQLite rolled the whole group back by itself (I/O error, disk full, ...):
            # the changes are gone, so say so instead of pretending they are durable.
            self._in_txn = False
            self._pending_dead = {}
            self._held.clear()
            self._attrs.clear()
            self._load_versioned()
            raise KernelError("EIO", "metadata transaction was rolled back by SQLite")
        cur = self._cur  # sends the held-back attributes (an error leaves the group open)
        try:
            if self._seq != self._saved_seq:
                cur.execute(_SAVE_SEQ, (self._seq,))
            # Belt and braces: only keys with no row in the state being committed are dead.
            dead = [k for k in self._pending_dead if not cur.execute(_BLOCK_EXISTS, (k,)).get]
            cur.execute("COMMIT")
        except apsw.Error as err:
            self._attrs.clear()
            self._load_versioned()
            raise _sqlite_error(err, "commit") from None
        self._in_txn = False
        self._saved_seq = self._seq
        self._pending_dead = {}
        return dead

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self.commit()
        finally:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]  # closed for good: only close() checks it

    # -- inodes ------------------------------------------------------------------------

    def create_inode(self, mode: int, uid: int, gid: int, now_ns: int, rdev: int = 0,
                     symlink_target: bytes | None = None, *, nlink: int = 0, size: int = 0) -> int:
        self._write()
        cur = self._raw  # a new row: nothing held back can be about it
        ino = self._next_ino
        self._next_ino = ino + 1
        cur.execute(_INSERT_INODE, (ino, mode, uid, gid, rdev, now_ns, nlink, size))
        if len(self._attrs) < _ATTR_CACHE_ENTRIES:  # the row as inserted: the next request reads it
            self._attrs[ino] = InodeRecord(ino, mode, uid, gid, size, nlink, rdev, now_ns, now_ns, now_ns,
                                           now_ns, INLINE, NOT_LOADED)
        if symlink_target is not None:
            cur.execute(_INSERT_SYMLINK, (ino, symlink_target))
        return ino

    def get_inode(self, ino: int) -> InodeRecord | None:
        row = self._cur.execute(_GET_INODE, (ino,)).get
        return None if row is None else InodeRecord(*row)

    def get_inode_attrs(self, ino: int) -> InodeRecord | None:
        r = self._attrs.get(ino)
        if r is None:
            row = self._raw.execute(_GET_INODE_ATTRS, (ino,)).get
            if row is None:
                return None
            if len(self._attrs) >= _ATTR_CACHE_ENTRIES:
                self._attrs.clear()
            r = self._attrs[ino] = InodeRecord(*row, NOT_LOADED)  # type: ignore[call-arg]  # row: 12 columns
            held = self._held.get(ino)
            if held:  # the row as it will be once they are sent
                for name, value in held.items():
                    setattr(r, name, value)
        # a copy: callers change their record before (or without) writing it back
        return InodeRecord(r.ino, r.mode, r.uid, r.gid, r.size, r.nlink, r.rdev, r.atime_ns, r.mtime_ns,
                           r.ctime_ns, r.birthtime_ns, r.storage_mode, NOT_LOADED)

    def get_inline_content(self, ino: int) -> bytes | None:
        return self._raw.execute(_GET_INLINE, (ino,)).get  # inline_content is never held back

    def update_inode(self, ino: int, **fields) -> None:
        if not fields:
            return
        self._write()
        if self._undo:
            self._remember(ino)
        if _DEFERRABLE.issuperset(fields) and all(
                type(v) is int and -_INT64 <= v < _INT64 for v in fields.values()):
            held = self._held.get(ino)
            if held is not None:
                held.update(fields)
            elif len(self._held) < _HELD_ROWS:
                self._held[ino] = fields
            else:
                self._send_held()
                self._held[ino] = fields
        else:
            # Sent now, with what is held back for this row (other rows stay held).
            held = self._held.pop(ino, None)
            row = fields if held is None else {**held, **fields}
            sql = self._update_statement(tuple(row))
            try:
                self._raw.execute(sql, (*row.values(), ino))
            except apsw.Error as err:
                if held is not None:
                    self._held[ino] = held
                self._attrs.pop(ino, None)
                if isinstance(err, apsw.ConstraintError):
                    raise _constraint(err, "update_inode") from None
                raise
        cached = self._attrs.get(ino)
        if cached is not None:
            for name, value in fields.items():
                setattr(cached, name, value)
            cached.inline_content = NOT_LOADED

    def delete_inode(self, ino: int) -> None:
        if ino == ROOT_INO:
            raise KernelError("EBUSY", "cannot delete the root inode")
        cur = self._raw
        row = cur.execute(_MODE_AND_LINKED, (ino,)).get
        if row is None:
            return
        mode, linked = row
        if linked:
            raise KernelError("EBUSY", f"inode {ino} is still linked")
        self._write()
        self._drop_all_versions(ino)
        cur.execute("DELETE FROM xattrs WHERE ino = ?", (ino,))
        # Only the tables this type of inode has rows in (rm -rf destroys thousands).
        if _stat.S_ISLNK(mode):
            cur.execute("DELETE FROM symlinks WHERE ino = ?", (ino,))
        elif _stat.S_ISDIR(mode):
            cur.execute("DELETE FROM dentries WHERE parent_ino = ?", (ino,))
        self.delete_all_chunks(ino)
        cur.execute("DELETE FROM inodes WHERE ino = ?", (ino,))
        self._attrs.pop(ino, None)
        if self._undo:
            self._remember(ino)
        self._held.pop(ino, None)  # the row is gone: nothing left to send

    def delete_inodes(self, inos: list[int]) -> None:
        """One statement per table for the whole batch (``rm -rf`` forgets thousands)."""
        if len(inos) <= 1:
            for ino in inos:
                self.delete_inode(ino)
            return
        if ROOT_INO in inos:
            raise KernelError("EBUSY", "cannot delete the root inode")
        cur = self._cur
        ids = json.dumps(inos)
        if cur.execute(_ANY_LINKED, (ids,)).get:
            raise KernelError("EBUSY", "an inode of the batch is still linked")
        self._write()
        for ino in inos:
            self._drop_all_versions(ino)
        for table, column in (("xattrs", "ino"), ("symlinks", "ino"), ("dentries", "parent_ino")):
            cur.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))", (ids,))
        keys = [k for (k,) in cur.execute(_DELETE_CHUNKS_OF_MANY, (ids,))]
        if keys:
            self._decref_all(keys)
        cur.execute("DELETE FROM inodes WHERE ino IN (SELECT value FROM json_each(?))", (ids,))
        for ino in inos:
            self._attrs.pop(ino, None)

    # -- directory entries -------------------------------------------------------------

    def lookup(self, parent: int, name: bytes) -> int | None:
        return self._raw.execute(_LOOKUP, (parent, name)).get

    def _require_dir(self, ino: int) -> None:
        mode = self._raw.execute(_GET_MODE, (ino,)).get
        if mode is None:
            raise KernelError("ENOENT", f"no directory inode {ino}")
        if mode & _IFMT != _stat.S_IFDIR:
            raise KernelError("ENOTDIR", f"inode {ino} is not a directory")

    def create_dentry(self, parent: int, name: bytes, child: int) -> None:
        self._write()
        self._seq += 1
        try:
            self._raw.execute(_INSERT_DENTRY, (parent, name, child, self._seq))
        except apsw.ConstraintError as err:
            self._seq -= 1  # keep the counter dense, like the memory store
            if self.lookup(parent, name) is not None:
                raise KernelError("EEXIST", "file exists") from None
            raise _constraint(err, "create_dentry") from None
        if not self._conn.changes():
            self._seq -= 1
            self._require_dir(parent)
            raise KernelError("EINVAL", "create_dentry failed")  # pragma: no cover

    def remove_dentry(self, parent: int, name: bytes) -> None:
        self._write()
        self._raw.execute(_DELETE_DENTRY, (parent, name)).fetchall()

    def rename_dentry(self, src_parent: int, src_name: bytes, dst_parent: int,
                      dst_name: bytes) -> int | None:
        cur = self._cur
        if cur.execute(_LOOKUP, (src_parent, src_name)).get is None:
            raise KernelError("ENOENT", "rename source does not exist")
        self._require_dir(dst_parent)
        if src_parent == dst_parent and src_name == dst_name:
            return None
        self._write()
        replaced = cur.execute(_DELETE_DENTRY, (dst_parent, dst_name)).get
        self._seq += 1
        cur.execute(_MOVE_DENTRY, (dst_parent, dst_name, self._seq, src_parent, src_name))
        return replaced

    def exchange_dentries(self, p1: int, n1: bytes, p2: int, n2: bytes) -> None:
        cur = self._cur
        c1 = cur.execute(_LOOKUP, (p1, n1)).get
        c2 = cur.execute(_LOOKUP, (p2, n2)).get
        if c1 is None or c2 is None:
            raise KernelError("ENOENT", "exchange: both names must exist")
        self._write()
        cur.execute(_SET_DENTRY_CHILD, (c2, p1, n1))
        cur.execute(_SET_DENTRY_CHILD, (c1, p2, n2))

    def list_dir(self, parent: int, after_seq: int = 0,
                 limit: int | None = None) -> list[DentryRecord]:
        rows = self._cur.execute(_LIST_DIR, (parent, after_seq, -1 if limit is None else limit))
        return [DentryRecord(*row) for row in rows]

    def list_dir_with_stats(self, parent: int, after_seq: int = 0,
                            limit: int | None = None) -> list[tuple[DentryRecord, InodeRecord]]:
        rows = self._cur.execute(_LIST_DIR_STATS,
                                 (parent, after_seq, -1 if limit is None else limit))
        return [(DentryRecord(r[0], r[2], r[1], r[3]), InodeRecord(*r[2:], NOT_LOADED))  # type: ignore[call-arg]  # 12 columns
                for r in rows]

    def has_children(self, parent: int) -> bool:
        return bool(self._raw.execute(_HAS_CHILDREN, (parent,)).get)

    def parents_of(self, ino: int) -> list[tuple[int, bytes]]:
        return list(self._raw.execute(_PARENTS_OF, (ino,)))

    # -- symlinks ----------------------------------------------------------------------

    def read_symlink(self, ino: int) -> bytes:
        target = self._raw.execute(_READ_SYMLINK, (ino,)).get
        if target is None:
            raise KernelError("EINVAL", f"inode {ino} is not a symlink")
        return target

    # -- chunks and blocks -------------------------------------------------------------

    def _incref(self, key: str, n: int = 1, length: int = 0) -> None:
        pending = self._pending_dead
        if pending and key in pending:
            length = length or pending.pop(key)
        self._raw.execute(_INCREF, (key, n, length))

    def _decref(self, key: str, n: int = 1) -> bool:
        """Drop *n* references; True if the key died."""
        cur = self._raw
        row = cur.execute(_DECREF, (n, key)).get
        if row is None or row[0] > 0:
            return False
        cur.execute(_DROP_BLOCK, (key,))
        self._pending_dead[key] = row[1]
        return True

    def _decref_all(self, keys: list[str]) -> list[str]:
        if len(keys) == 1:
            return keys if self._decref(keys[0]) else []
        return [k for k, n in Counter(keys).items() if self._decref(k, n)]

    def get_chunk_key(self, ino: int, idx: int) -> str | None:
        return self._raw.execute(_GET_CHUNK, (ino, idx)).get

    def set_chunk_key(self, ino: int, idx: int, key: str, length: int = 0) -> None:
        cur = self._raw
        old = cur.execute(_GET_CHUNK, (ino, idx)).get
        if old == key:
            if length:
                self._incref(key, 0, length)  # just record the length
            return
        self._write()
        try:
            cur.execute(_REPLACE_CHUNK, (ino, idx, key))
        except apsw.ConstraintError as err:
            raise _constraint(err, "set_chunk_key") from None
        self._incref(key, 1, length)
        if old is not None:
            self._decref(old)

    def get_all_chunk_keys(self, ino: int) -> list[ChunkRef]:
        return [ChunkRef(i, k) for i, k in self._raw.execute(_ALL_CHUNKS, (ino,))]

    def delete_all_chunks(self, ino: int) -> list[str]:
        self._write()
        keys = [k for (k,) in self._raw.execute(_DELETE_ALL_CHUNKS, (ino,))]
        if keys:
            self._decref_all(keys)
        return keys

    def delete_chunks_from(self, ino: int, start: int) -> list[str]:
        self._write()
        keys = [k for (k,) in self._raw.execute(_DELETE_CHUNKS_FROM, (ino, start))]
        if keys:
            self._decref_all(keys)
        return keys

    def delete_chunk(self, ino: int, idx: int) -> str | None:
        self._write()
        row = self._raw.execute(_DELETE_CHUNK, (ino, idx)).get
        if row is None:
            return None
        self._decref_all([row])
        return row

    def orphan_inodes(self) -> list[int]:
        return [ino for (ino,) in self._cur.execute(_ORPHANS)]

    def stored_bytes(self, ino: int) -> int:
        return self._raw.execute(_STORED_BYTES, (ino,)).get

    def block_refcount(self, key: str) -> int:
        row = self._raw.execute(_BLOCK, (key,)).get
        return 0 if row is None else row[0]

    def block_length(self, key: str) -> int | None:
        row = self._raw.execute(_BLOCK, (key,)).get
        return None if row is None else row[1]

    def iter_blocks(self) -> Iterator[tuple[str, int, int]]:
        # A private cursor: the caller may call other methods while iterating.
        return self._conn.cursor().execute("SELECT key, refcount, length FROM blocks ORDER BY key")

    def check_refcounts(self) -> list[tuple[str, int, int]]:
        return list(self._conn.cursor().execute("""
            WITH refs (key, n) AS (
                SELECT key, count(*) FROM (SELECT key FROM chunks
                                           UNION ALL SELECT key FROM version_chunks)
                GROUP BY key)
            SELECT key, stored, actual FROM (
                SELECT b.key AS key, b.refcount AS stored, coalesce(r.n, 0) AS actual
                FROM blocks b LEFT JOIN refs r ON r.key = b.key
                UNION ALL
                SELECT r.key, 0, r.n FROM refs r
                WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.key = r.key))
            WHERE stored != actual ORDER BY key"""))

    # -- xattrs ------------------------------------------------------------------------

    def get_xattr(self, ino: int, name: bytes) -> bytes | None:
        return self._raw.execute(_GET_XATTR, (ino, name)).get

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        self._write()
        try:
            self._raw.execute(_SET_XATTR, (ino, name, value))
        except apsw.ConstraintError as err:
            raise _constraint(err, "set_xattr") from None

    def list_xattrs(self, ino: int) -> list[bytes]:
        return [n for (n,) in self._raw.execute(_LIST_XATTRS, (ino,))]

    def remove_xattr(self, ino: int, name: bytes) -> bool:
        self._write()
        return self._raw.execute(_REMOVE_XATTR, (ino, name)).get is not None

    # -- config ------------------------------------------------------------------------

    def get_config(self, key: str) -> str | None:
        return self._raw.execute(_GET_CONFIG, (key,)).get

    def set_config(self, key: str, value: str) -> None:
        self._write()
        self._raw.execute(_SET_CONFIG, (key, str(value)))

    # -- versioning --------------------------------------------------------------------

    def create_version(self, ino: int, now_ns: int) -> int:
        self._require_versioning()
        cur = self._cur
        row = cur.execute("SELECT size, storage_mode, inline_content FROM inodes WHERE ino = ?",
                          (ino,)).get
        if row is None:
            raise KernelError("ENOENT", f"no inode {ino}")
        self._write()
        n = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM versions WHERE ino = ?",
                        (ino,)).get
        cur.execute("INSERT INTO versions (ino, version, size, created_at_ns, storage_mode, "
                    "inline_content) VALUES (?, ?, ?, ?, ?, ?)", (ino, n, row[0], now_ns, *row[1:]))
        cur.execute("INSERT INTO version_chunks (ino, version, chunk_index, key) "
                    "SELECT ino, ?, chunk_index, key FROM chunks WHERE ino = ?", (n, ino))
        counts = list(cur.execute("SELECT key, count(*) FROM chunks WHERE ino = ? GROUP BY key",
                                  (ino,)))
        for key, count in counts:
            self._incref(key, count)
        if self._versioned is not None:
            self._versioned.add(ino)
        return n

    def get_version(self, ino: int, n: int) -> VersionMeta | None:
        self._require_versioning()
        row = self._cur.execute(_VERSION_ROW, (ino, n)).get
        return None if row is None else VersionMeta(*row)

    def list_versions(self, ino: int) -> list[VersionMeta]:
        self._require_versioning()
        return [VersionMeta(*row) for row in self._cur.execute(_VERSION_ROWS, (ino,))]

    def get_version_chunk_map(self, ino: int, n: int) -> list[ChunkRef]:
        self._require_versioning()
        return [ChunkRef(i, k) for i, k in self._cur.execute(_VERSION_MAP, (ino, n))]

    def _drop_versions_sql(self, ino: int, n: int | None) -> list[str]:
        """Delete version *n* of *ino* (all versions if None); return the keys that died."""
        cur = self._cur
        if n is None:
            keys = [k for (k,) in cur.execute(
                "DELETE FROM version_chunks WHERE ino = ? RETURNING key", (ino,))]
            cur.execute("DELETE FROM versions WHERE ino = ?", (ino,))
        else:
            keys = [k for (k,) in cur.execute(
                "DELETE FROM version_chunks WHERE ino = ? AND version = ? RETURNING key",
                (ino, n))]
            cur.execute("DELETE FROM versions WHERE ino = ? AND version = ?", (ino, n))
        return self._decref_all(keys) if keys else []

    def delete_versions(self, ino: int, versions: list[int]) -> list[str]:
        self._require_versioning()
        if not versions:
            return []
        self._write()
        dead: list[str] = []
        for n in versions:
            dead.extend(self._drop_versions_sql(ino, n))
        return dead

    def restore_version(self, ino: int, n: int, now_ns: int) -> None:
        self._require_versioning()
        cur = self._cur
        row = cur.execute(_VERSION_ROW, (ino, n)).get
        if row is None or cur.execute(_GET_MODE, (ino,)).get is None:
            raise KernelError("ENOENT", f"no version {n} of inode {ino}")
        self._write()
        cmap = list(cur.execute(_VERSION_MAP, (ino, n)))
        for key, count in Counter(k for _i, k in cmap).items():
            self._incref(key, count)
        self.delete_all_chunks(ino)
        if cmap:
            cur.executemany("INSERT INTO chunks (ino, chunk_index, key) VALUES (?, ?, ?)",
                            [(ino, i, k) for i, k in cmap])
        self._attrs.pop(ino, None)
        cur.execute("UPDATE inodes SET size = ?, storage_mode = ?, inline_content = ?, "
                    "mtime_ns = ?, ctime_ns = ? WHERE ino = ?",
                    (row[1], row[3], row[4], now_ns, now_ns, ino))

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        cur = self._cur
        inodes, files, dirs, logical = cur.execute(
            "SELECT count(*), "
            "coalesce(sum((mode & 61440) = 32768), 0), "
            "coalesce(sum((mode & 61440) = 16384), 0), "
            "coalesce(sum(CASE WHEN (mode & 61440) = 32768 THEN size ELSE 0 END), 0) "
            "FROM inodes").get
        blocks, stored, refs = cur.execute(
            "SELECT count(*), coalesce(sum(length), 0), coalesce(sum(refcount), 0) "
            "FROM blocks").get
        versions = cur.execute("SELECT count(*) FROM versions").get
        return StoreStats(inodes, files, dirs, logical, blocks, stored, refs, versions)
