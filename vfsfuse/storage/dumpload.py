"""Metadata backup and migration: a store's metadata as one JSON document, and back.

Why JSON and not a copy of meta.db: the dump is independent of the SQLite schema
version, diffable, and checkable by hand; ``load`` writes it into whatever schema
this program creates.  Blocks are not in the dump (they are plain files already:
copy ``STORE/blocks``); ``load`` checks that every referenced block is present.

Byte strings (names, symlink targets, inline content, xattrs) are stored as text
when they are valid UTF-8 and as ``{"b64": ...}`` otherwise, so a dump of an
ordinary tree stays readable.  Inode numbers, entry order (``seq``) and the
"numbers are never reused" counter are kept, so a loaded store is the same store.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import apsw

from blockstores.host import HostBlockStore
from kernel.errors import KernelError
from kernel.fs import ROOT_INO

FORMAT = "vfsfuse-dump"
FORMAT_VERSION = 1
_INODE_KEYS = ("mode", "uid", "gid", "size", "nlink", "rdev", "atime_ns", "mtime_ns", "ctime_ns",
               "birthtime_ns")

ProgressFn = Callable[[str, int, int], None]


def enc(value: bytes | None) -> Any:
    """bytes -> str if it is UTF-8 (and not mistakable for the b64 form), else {"b64": ...}."""
    if value is None:
        return None
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}


def dec(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"], validate=True)
    raise KernelError("EINVAL", f"bad byte string in dump: {value!r:.60}")


def _open_db(store_path: str, writable: bool) -> apsw.Connection:
    db = os.path.join(store_path, "meta.db")
    if not os.path.isfile(db):
        raise KernelError("ENOENT", f"{store_path} is not a vfsfuse store (no meta.db)")
    flags = apsw.SQLITE_OPEN_READWRITE if writable else apsw.SQLITE_OPEN_READONLY
    conn = apsw.Connection(db, flags=flags)
    conn.set_busy_timeout(10_000)
    return conn


def dump_store(store_path: str) -> dict:
    """The metadata of the store at *store_path* (one committed snapshot; safe while mounted)."""
    from vfsfuse.storage.store import check_store

    check_store(store_path)
    conn = _open_db(store_path, writable=False)
    try:
        conn.execute("BEGIN")
        try:
            return _dump(conn)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def _dump(conn: apsw.Connection) -> dict:
    q = conn.execute
    xattrs: dict[int, list] = {}
    for ino, name, value in q("SELECT ino, name, value FROM xattrs ORDER BY ino, name"):
        xattrs.setdefault(ino, []).append([enc(name), enc(value)])
    chunks: dict[int, list] = {}
    for ino, idx, key in q("SELECT ino, chunk_index, key FROM chunks ORDER BY ino, chunk_index"):
        chunks.setdefault(ino, []).append([idx, key])
    vchunks: dict[tuple[int, int], list] = {}
    for ino, ver, idx, key in q("SELECT ino, version, chunk_index, key FROM version_chunks "
                                "ORDER BY ino, version, chunk_index"):
        vchunks.setdefault((ino, ver), []).append([idx, key])
    versions: dict[int, list] = {}
    for ino, ver, size, created, storage, inline in q(
            "SELECT ino, version, size, created_at_ns, storage_mode, inline_content FROM versions "
            "ORDER BY ino, version"):
        versions.setdefault(ino, []).append({
            "version": ver, "size": size, "created_at_ns": created, "storage": storage,
            "inline": enc(inline), "chunks": vchunks.get((ino, ver), [])})
    targets = {ino: t for ino, t in q("SELECT ino, target FROM symlinks")}
    inodes = []
    for row in q("SELECT ino, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, "
                 "birthtime_ns, storage_mode, inline_content FROM inodes ORDER BY ino"):
        ino = row[0]
        rec: dict[str, Any] = {"ino": ino}
        rec.update(zip(_INODE_KEYS, row[1:11]))
        rec["storage"] = row[11]
        if row[12] is not None:
            rec["inline"] = enc(row[12])
        if ino in targets:
            rec["target"] = enc(targets[ino])
        for key, table in (("xattrs", xattrs), ("chunks", chunks), ("versions", versions)):
            if ino in table:
                rec[key] = table[ino]
        inodes.append(rec)
    dentries = [[p, enc(n), c, s] for p, n, c, s in
                q("SELECT parent_ino, name, child_ino, seq FROM dentries ORDER BY parent_ino, seq")]
    seq_row = q("SELECT seq FROM sqlite_sequence WHERE name = 'inodes'").get
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": q("SELECT version FROM schema_version").get,
        "config": {k: v for k, v in q("SELECT key, value FROM config ORDER BY key")},
        "last_ino": seq_row or 0,
        "dentry_seq": q("SELECT value FROM counters WHERE name = 'dentry_seq'").get or 0,
        "inodes": inodes,
        "dentries": dentries,
        "blocks": [[k, ln] for k, ln in q("SELECT key, length FROM blocks ORDER BY key")],
    }


@dataclass
class LoadReport:
    loaded: bool = False
    inodes: int = 0
    dentries: int = 0
    chunks: int = 0
    missing: list[str] = field(default_factory=list)  # referenced blocks absent from the store


def _check_dump(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KernelError("EINVAL", "not a vfsfuse dump (no \"format\": \"vfsfuse-dump\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise KernelError("EINVAL", f"unsupported dump format version {data.get('format_version')!r}")
    if not any(i.get("ino") == ROOT_INO for i in data.get("inodes", [])):
        raise KernelError("EINVAL", "dump has no root inode")


def _referenced(data: dict) -> Counter:
    refs: Counter = Counter()
    for rec in data["inodes"]:
        for _idx, key in rec.get("chunks", []):
            refs[key] += 1
        for v in rec.get("versions", []):
            for _idx, key in v.get("chunks", []):
                refs[key] += 1
    return refs


async def load_store(store_path: str, data: dict, *, allow_missing: bool = False,
                     progress: ProgressFn | None = None) -> LoadReport:
    """Load dump *data* into the fresh store at *store_path* (created if absent).

    Every referenced block must already be in ``STORE/blocks``; if any is missing
    nothing is written (``report.loaded`` is False) unless *allow_missing*.
    """
    from vfsfuse.storage.fsck import exclusive_store
    from vfsfuse.storage.store import META_FILES, check_store

    progress = progress or (lambda phase, done, total: None)
    if any(os.path.lexists(os.path.join(store_path, name)) for name in META_FILES):
        # a meta.db to load into: it must be a sound (fresh) store; an empty or damaged one
        # is refused untouched.  Without one, load makes the store around the copied blocks.
        check_store(store_path)
    _check_dump(data)
    refs = _referenced(data)
    lengths = {k: ln for k, ln in data.get("blocks", [])}
    report = LoadReport()
    blocks = HostBlockStore(os.path.join(store_path, "blocks"))
    for i, key in enumerate(sorted(refs), 1):
        try:
            size = await blocks.size(key)
        except KernelError as exc:
            if exc.code != "ENOENT":
                raise
            report.missing.append(key)
        else:
            if lengths.get(key) and lengths[key] != size:
                report.missing.append(key)
        progress("checking blocks", i, len(refs))
    if report.missing and not allow_missing:
        return report
    os.makedirs(store_path, exist_ok=True)
    with exclusive_store(store_path):
        _load_locked(store_path, data, refs, lengths, report, progress)
    report.loaded = True
    return report


def _load_locked(store_path: str, data: dict, refs: Counter, lengths: dict, report: LoadReport,
                 progress: ProgressFn) -> None:
    from vfsfuse.storage.store import META_NAME, create_store

    config = data.get("config", {})
    if not os.path.isfile(os.path.join(store_path, META_NAME)):
        kw = {}
        if "chunk_size" in config:
            kw["chunk_size"] = int(config["chunk_size"])
        if "inline_threshold" in config:
            kw["inline_threshold"] = int(config["inline_threshold"])
        _create_around_blocks(store_path, create_store, kw)
    conn = _open_db(store_path, writable=True)
    try:
        _ensure_fresh(conn, store_path)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _load(conn, data, refs, lengths, report, progress)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _create_around_blocks(store_path: str, create_store, kw: dict) -> None:
    """mkfs in a directory that already holds copied blocks (create_store would refuse:
    it takes a ``blocks/`` directory for a store).  The blocks are set aside meanwhile."""
    blocks_dir = os.path.join(store_path, "blocks")
    if not os.path.isdir(blocks_dir):
        create_store(store_path, **kw)
        return
    aside = os.path.join(store_path, f".blocks-being-loaded.{os.getpid()}")
    os.rename(blocks_dir, aside)
    try:
        create_store(store_path, **kw)
    finally:
        if os.path.isdir(blocks_dir):
            os.rmdir(blocks_dir)  # the fresh, empty one
        os.rename(aside, blocks_dir)


def _ensure_fresh(conn: apsw.Connection, store_path: str) -> None:
    q = conn.execute
    if q("SELECT EXISTS (SELECT 1 FROM dentries)").get or \
            q("SELECT EXISTS (SELECT 1 FROM inodes WHERE ino != ?)", (ROOT_INO,)).get:
        raise KernelError("EEXIST", f"{store_path} already holds files; load needs a fresh store "
                                    "(vfsfuse mkfs --force, or a new directory)")


def _load(conn: apsw.Connection, data: dict, refs: Counter, lengths: dict, report: LoadReport,
          progress: ProgressFn) -> None:
    cur = conn.cursor()
    cur.execute("DELETE FROM config")
    for key, value in data.get("config", {}).items():
        cur.execute("INSERT INTO config (key, value) VALUES (?, ?)", (str(key), str(value)))
    inodes = data["inodes"]
    cols = ", ".join(_INODE_KEYS)
    marks = ", ".join("?" for _ in _INODE_KEYS)
    for n, rec in enumerate(inodes, 1):
        ino = int(rec["ino"])
        values = [int(rec[k]) for k in _INODE_KEYS]
        storage, inline = rec.get("storage", "inline"), dec(rec.get("inline"))
        if ino == ROOT_INO:
            sets = ", ".join(f"{k} = ?" for k in _INODE_KEYS)
            cur.execute(f"UPDATE inodes SET {sets}, storage_mode = ?, inline_content = ? WHERE ino = ?",
                        (*values, storage, inline, ino))
        else:
            cur.execute(f"INSERT INTO inodes (ino, {cols}, storage_mode, inline_content) "
                        f"VALUES (?, {marks}, ?, ?)", (ino, *values, storage, inline))
        if rec.get("target") is not None:
            cur.execute("INSERT INTO symlinks (ino, target) VALUES (?, ?)", (ino, dec(rec["target"])))
        for name, value in rec.get("xattrs", []):
            cur.execute("INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?)",
                        (ino, dec(name), dec(value)))
        for idx, key in rec.get("chunks", []):
            cur.execute("INSERT INTO chunks (ino, chunk_index, key) VALUES (?, ?, ?)",
                        (ino, int(idx), key))
            report.chunks += 1
        for v in rec.get("versions", []):
            cur.execute("INSERT INTO versions (ino, version, size, created_at_ns, storage_mode, "
                        "inline_content) VALUES (?, ?, ?, ?, ?, ?)",
                        (ino, int(v["version"]), int(v["size"]), int(v["created_at_ns"]),
                         v["storage"], dec(v.get("inline"))))
            for idx, key in v.get("chunks", []):
                cur.execute("INSERT INTO version_chunks (ino, version, chunk_index, key) "
                            "VALUES (?, ?, ?, ?)", (ino, int(v["version"]), int(idx), key))
        report.inodes += 1
        if n % 1000 == 0 or n == len(inodes):
            progress("loading inodes", n, len(inodes))
    for parent, name, child, seq in data.get("dentries", []):
        cur.execute("INSERT INTO dentries (parent_ino, name, child_ino, seq) VALUES (?, ?, ?, ?)",
                    (int(parent), dec(name), int(child), int(seq)))
        report.dentries += 1
    for key, count in refs.items():
        cur.execute("INSERT INTO blocks (key, refcount, length) VALUES (?, ?, ?)",
                    (key, count, int(lengths.get(key, 0))))
    seqs = [int(d[3]) for d in data.get("dentries", [])]
    cur.execute("UPDATE counters SET value = ? WHERE name = 'dentry_seq'",
                (max([int(data.get("dentry_seq", 0))] + seqs),))
    last = max([int(data.get("last_ino", 0))] + [int(r["ino"]) for r in inodes])
    cur.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'inodes'", (last,))
    if not conn.changes():
        cur.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('inodes', ?)", (last,))
