"""SQLite-only behaviour: group commit, savepoint rollback, external readers, schema, reopen."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess

import apsw
import pytest

from kernel.errors import KernelError, has_code
from vfsfuse.storage.metadata import SqliteMetadataStore, schema
from vfsfuse.storage.metadata.base import NOT_LOADED

NOW = 1_700_000_000_000_000_000
REG = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "meta.db")


@pytest.fixture
def store(db):
    s = SqliteMetadataStore(db)
    yield s
    s.close()


def sqlite3_ro(db: str, sql: str) -> str:
    """Run the real sqlite3 CLI read-only against *db* (another process)."""
    out = subprocess.run(["sqlite3", "-readonly", db, sql], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


needs_cli = pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 binary")


def test_pragmas(store):
    cur = store._conn.cursor()
    assert cur.execute("PRAGMA journal_mode").get == "wal"
    assert cur.execute("PRAGMA foreign_keys").get == 1
    assert cur.execute("PRAGMA synchronous").get == 2  # FULL


def test_failed_transaction_rolls_back(store):
    f = store.create_inode(REG, 0, 0, NOW)
    store.create_dentry(1, b"keep", f)
    store.set_chunk_key(f, 0, "old", 10)
    store.commit()
    err = RuntimeError("boom")
    with pytest.raises(RuntimeError) as info:
        with store.transaction():
            g = store.create_inode(REG, 0, 0, NOW)
            store.create_dentry(1, b"gone", g)
            store.set_chunk_key(f, 0, "new", 10)  # "old" dies inside the section
            store.update_inode(f, size=99)
            assert store.block_refcount("old") == 0
            raise err
    assert info.value is err
    assert store.lookup(1, b"gone") is None and store.get_inode(g) is None
    assert store.get_chunk_key(f, 0) == "old" and store.block_refcount("old") == 1
    assert store.block_refcount("new") == 0 and store.get_inode(f).size == 0
    assert store.commit() == []  # the death was rolled back: nothing to delete
    assert store.check_refcounts() == []


def test_rolled_back_revival_keeps_key_dead(store):
    f = store.create_inode(REG, 0, 0, NOW)
    store.set_chunk_key(f, 0, "k")
    store.commit()
    store.delete_all_chunks(f)  # "k" is dead (pending)
    with pytest.raises(ValueError):
        with store.transaction():
            store.set_chunk_key(f, 0, "k")  # revived inside ...
            raise ValueError  # ... and rolled back: dead again
    assert store.commit() == ["k"]


def test_nested_savepoints(store):
    with store.transaction():
        a = store.create_inode(REG, 0, 0, NOW)
        store.create_dentry(1, b"a", a)
        with pytest.raises(KernelError):
            with store.transaction():
                b = store.create_inode(REG, 0, 0, NOW)
                store.create_dentry(1, b"b", b)
                store.create_dentry(1, b"a", b)  # EEXIST
        c = store.create_inode(REG, 0, 0, NOW)
        store.create_dentry(1, b"c", c)
    store.commit()
    assert [e.name for e in store.list_dir(1)] == [b"a", b"c"]
    assert store.get_inode(b) is None
    assert c > b  # a number handed out in a rolled-back savepoint is not reused


def test_commit_inside_transaction_refused(store):
    with store.transaction():
        with pytest.raises(KernelError) as info:
            store.commit()
        assert has_code(info.value, "EBUSY")


def test_fk_errors_never_leak_raw(store):
    f = store.create_inode(REG, 0, 0, NOW)
    for call in (lambda: store.create_dentry(12345, b"x", f),
                 lambda: store.create_dentry(1, b"x", 12345),
                 lambda: store.set_chunk_key(12345, 0, "k"),
                 lambda: store.set_xattr(12345, b"user.x", b"")):
        with pytest.raises(KernelError) as info:
            call()
        assert not isinstance(info.value, apsw.Error)
        assert has_code(info.value, "ENOENT")


@needs_cli
def test_external_readonly_reader_sees_committed_state(db, store):
    f = store.create_inode(REG, 0, 0, NOW)
    store.create_dentry(1, b"committed", f)
    store.commit()
    assert sqlite3_ro(db, "select count(*) from inodes") == "2"
    for i in range(50):  # uncommitted group, write lock held
        ino = store.create_inode(REG, 0, 0, NOW)
        store.create_dentry(1, b"f%d" % i, ino)
    assert sqlite3_ro(db, "select count(*) from inodes") == "2"
    assert sqlite3_ro(db, "select typeof(name), hex(name) from dentries") == "blob|636F6D6D6974746564"
    store.commit()
    assert sqlite3_ro(db, "select count(*) from inodes") == "52"


@needs_cli
def test_schema_comments_visible_to_sqlite3(db, store):
    text = sqlite3_ro(db, ".schema blocks")
    assert "-- refcount: chunk rows + version rows that name this block" in text


def _table_bodies(sql: str) -> dict[str, list[str]]:
    """CREATE TABLE name -> its column/constraint lines."""
    out = {}
    for m in re.finditer(r"CREATE TABLE (\w+) \((.*?)\n\)", sql, re.S):
        out[m.group(1)] = [ln.strip() for ln in m.group(2).splitlines() if ln.strip()]
    return out


def test_every_table_and_column_has_a_comment(store):
    sources = {"schema.py": schema.SCHEMA_V1}
    sources["sqlite_schema"] = "\n".join(
        sql + "\n" for (sql,) in store._conn.cursor().execute(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
    for where, sql in sources.items():
        bodies = _table_bodies(sql)
        assert len(bodies) >= 10, where
        for table, lines in bodies.items():
            for i, line in enumerate(lines):
                if line.startswith(("PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "--")):
                    continue
                col = line.split()[0]
                # a column definition may wrap onto a CHECK line that carries the comment
                wrapped = i + 1 < len(lines) and lines[i + 1].startswith("CHECK")
                comment_line = lines[i + 1] if wrapped else line
                assert "--" in comment_line, f"{where}: {table}.{col} has no comment"
    # each CREATE TABLE / INDEX in the source is preceded by a comment line
    lines = schema.SCHEMA_V1.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("CREATE "):
            assert lines[i - 1].startswith("--"), line


def test_inode_numbers_never_reused_across_reopen(db):
    s = SqliteMetadataStore(db)
    a = s.create_inode(REG, 0, 0, NOW)
    b = s.create_inode(REG, 0, 0, NOW)
    s.delete_inode(b)
    s.close()
    s = SqliteMetadataStore(db)
    c = s.create_inode(REG, 0, 0, NOW)
    assert c > b > a
    s.close()


def test_reopen_keeps_everything(db):
    s = SqliteMetadataStore(db, versioning=True)
    d = s.create_inode(DIR, 0, 0, NOW)
    s.create_dentry(1, b"d", d)
    f = s.create_inode(REG, 7, 8, NOW)
    s.create_dentry(d, b"f", f)
    s.update_inode(f, size=3, inline_content=b"abc", nlink=1)
    s.set_chunk_key(f, 0, "k", 3)
    s.set_xattr(f, b"user.a", b"1")
    s.set_config("chunk_size", "1024")
    s.create_version(f, NOW)
    s.close()
    s = SqliteMetadataStore(db, versioning=True)
    assert s.resolve_path("/d/f") == f
    r = s.get_inode(f)
    assert (r.uid, r.gid, r.size, r.inline_content, r.nlink) == (7, 8, 3, b"abc", 1)
    assert s.get_chunk_key(f, 0) == "k" and s.block_refcount("k") == 2
    assert s.get_xattr(f, b"user.a") == b"1" and s.get_config("chunk_size") == "1024"
    assert [v.version for v in s.list_versions(f)] == [1]
    old_seq = s.list_dir(d)[0].seq
    g = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(d, b"g", g)  # the seq counter continues after a reopen
    assert [e.name for e in s.list_dir(d)] == [b"f", b"g"]
    assert s.list_dir(d)[1].seq > old_seq
    s.close()


def test_versions_cascade_even_when_opened_without_versioning(db):
    s = SqliteMetadataStore(db, versioning=True)
    f = s.create_inode(REG, 0, 0, NOW)
    s.set_chunk_key(f, 0, "k")
    s.create_version(f, NOW)
    s.close()
    s = SqliteMetadataStore(db)  # versioning off this time
    s.delete_inode(f)
    assert s.commit() == ["k"]
    assert s.stats().versions == 0 and s.check_refcounts() == []
    s.close()


def test_close_commits(db):
    s = SqliteMetadataStore(db)
    f = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"x", f)
    s.close()
    s.close()  # idempotent
    s = SqliteMetadataStore(db)
    assert s.lookup(1, b"x") == f
    s.close()


def test_uncommitted_changes_lost_on_crash(db):
    s = SqliteMetadataStore(db)
    f = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"durable", f)
    s.commit()
    g = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"lost", g)
    s._conn.close()  # a crash: the open group transaction never commits
    s._conn = None
    s = SqliteMetadataStore(db)
    assert s.lookup(1, b"durable") == f and s.lookup(1, b"lost") is None
    assert s.get_inode(g) is None
    s.close()


def test_migration_hook_runs_on_older_schema(db, monkeypatch):
    SqliteMetadataStore(db).close()
    ran = []

    def add_notes(cur):
        ran.append(cur.execute("SELECT version FROM schema_version").get)
        cur.execute("CREATE TABLE notes (  -- notes: test table\n"
                    "    text TEXT  -- a note\n)")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_notes])
    s = SqliteMetadataStore(db)
    assert ran == [1] and s.schema_version == 2
    s._conn.cursor().execute("INSERT INTO notes VALUES ('x')")
    s.close()
    SqliteMetadataStore(db).close()  # already at 2: does not run again
    assert ran == [1]


def test_newer_schema_refused(db, monkeypatch):
    SqliteMetadataStore(db).close()
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:0])
    with pytest.raises(KernelError) as info:
        SqliteMetadataStore(db)
    assert has_code(info.value, "EINVAL")


def test_fresh_store_is_at_current_version(store):
    assert store.schema_version == schema.current_version() == len(schema.MIGRATIONS)


def test_group_lost_by_sqlite_is_reported(store):
    f = store.create_inode(REG, 0, 0, NOW)
    store.create_dentry(1, b"x", f)
    store._conn.cursor().execute("ROLLBACK")  # what SQLite does itself on e.g. an I/O error
    with pytest.raises(KernelError) as info:
        store.commit()
    assert has_code(info.value, "EIO")
    assert store.lookup(1, b"x") is None
    g = store.create_inode(REG, 0, 0, NOW)  # the store keeps working afterwards
    assert g > f
    store.create_dentry(1, b"y", g)
    assert store.commit() == [] and store.lookup(1, b"y") == g


def test_not_a_database_is_a_kernel_error(tmp_path):
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not an sqlite file" * 100)
    with pytest.raises(KernelError) as info:
        SqliteMetadataStore(str(bad))
    assert has_code(info.value, "EIO")


# -- the attribute cache: what get_inode_attrs returns is always what the rows hold --------------

def _row_attrs(db: str, ino: int) -> str:
    return sqlite3_ro(db, f"SELECT mode, uid, size, nlink, mtime_ns FROM inodes WHERE ino = {ino}")


def test_cached_attributes_follow_updates_and_are_copies(db, store):
    ino = store.create_inode(REG, 5, 5, NOW)
    first = store.get_inode_attrs(ino)
    first.size = 999  # a caller's own change, never written back
    assert store.get_inode_attrs(ino).size == 0
    store.update_inode(ino, size=42, nlink=1, mtime_ns=NOW + 1)
    got = store.get_inode_attrs(ino)
    assert (got.size, got.nlink, got.mtime_ns) == (42, 1, NOW + 1)
    store.commit()
    assert _row_attrs(db, ino) == f"{REG}|5|42|1|{NOW + 1}"


def test_versions_come_back_with_a_rolled_back_deletion_and_go_with_the_next(db):
    """Deleting skips the version tables for inodes known to have none; a rollback must not
    leave that knowledge stale (the versions are back, so the next deletion must drop them)."""
    s = SqliteMetadataStore(db, versioning=True)
    f = s.create_inode(REG, 0, 0, NOW)
    s.set_chunk_key(f, 0, "k")
    s.create_version(f, NOW)
    s.commit()
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.delete_inode(f)
            raise RuntimeError("undo")
    assert s.stats().versions == 1
    s.delete_inode(f)
    assert s.commit() == ["k"]
    assert s.stats().versions == 0 and s.check_refcounts() == []
    s.close()


def test_a_rolled_back_savepoint_takes_the_cached_change_back(store):
    ino = store.create_inode(REG, 0, 0, NOW)
    store.update_inode(ino, size=7)
    assert store.get_inode_attrs(ino).size == 7
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.update_inode(ino, size=8, mode=REG | 0o777)
            assert store.get_inode_attrs(ino).size == 8
            raise RuntimeError("undo")
    got = store.get_inode_attrs(ino)
    assert (got.size, got.mode) == (7, REG)


def test_deleted_and_restored_inodes_leave_the_cache(store):
    a, b, c = (store.create_inode(REG, 0, 0, NOW) for _ in range(3))
    for ino in (a, b, c):
        assert store.get_inode_attrs(ino) is not None
    store.delete_inode(a)
    store.delete_inodes([b, c])
    assert [store.get_inode_attrs(i) for i in (a, b, c)] == [None, None, None]


def test_inline_bytes_are_never_served_from_the_cache(store):
    ino = store.create_inode(REG, 0, 0, NOW)
    store.update_inode(ino, size=3, inline_content=b"abc")
    assert store.get_inode_attrs(ino).inline_content is NOT_LOADED  # fetched on demand
    assert store.get_inline_content(ino) == b"abc"
    store.update_inode(ino, size=2, inline_content=b"xy")
    assert store.get_inline_content(ino) == b"xy" and store.get_inode_attrs(ino).size == 2


def test_xattrs_of_new_inodes_are_answered_without_losing_any(db, store):
    ino = store.create_inode(REG, 0, 0, NOW)
    assert store.get_xattr(ino, b"security.capability") is None and store.list_xattrs(ino) == []
    store.set_xattr(ino, b"user.a", b"1")
    assert store.get_xattr(ino, b"user.a") == b"1" and store.list_xattrs(ino) == [b"user.a"]
    with pytest.raises(RuntimeError):
        with store.transaction():
            other = store.create_inode(REG, 0, 0, NOW)
            store.set_xattr(other, b"user.b", b"2")
            raise RuntimeError("undo")
    store.delete_inode(ino)  # unlinked: its xattr rows go with it
    store.commit()
    assert sqlite3_ro(db, "SELECT count(*) FROM xattrs") == "0"
    kept = store.create_inode(REG, 0, 0, NOW)
    store.set_xattr(kept, b"user.c", b"3")
    store.commit()
    reopened = SqliteMetadataStore(db)
    try:
        assert reopened.get_xattr(kept, b"user.c") == b"3"  # a fresh connection reads the rows
    finally:
        reopened.close()


# -- held-back attribute updates (integer columns wait for a statement that may read them) --


def test_held_back_updates_reach_every_reader(db, store):
    d = store.create_inode(DIR, 0, 0, NOW, nlink=2)
    store.create_dentry(1, b"d", d)
    f = store.create_inode(REG, 0, 0, NOW, nlink=1)
    store.create_dentry(d, b"f", f)
    store.update_inode(f, size=11, mtime_ns=NOW + 5)
    store.update_inode(f, mode=REG | 0o600)
    assert store.get_inode(f).size == 11  # a full-row read sends them first
    store.update_inode(f, size=12)
    listed = {dent.name: attrs for dent, attrs in store.list_dir_with_stats(d)}
    assert listed[b"f"].size == 12 and listed[b"f"].mode == REG | 0o600
    g = store.create_inode(REG, 0, 0, NOW, nlink=1)  # never linked: an orphan once nlink is 0
    assert g not in store.orphan_inodes()
    store.update_inode(g, nlink=0)
    assert g in store.orphan_inodes()
    store.update_inode(f, nlink=1, size=13)
    store._attrs.clear()  # a cache miss reads the row and overlays what is still held
    assert store.get_inode_attrs(f).size == 13
    store.commit()
    assert sqlite3_ro(db, f"SELECT size, mode, nlink, mtime_ns FROM inodes WHERE ino = {f}") == \
        f"13|{REG | 0o600}|1|{NOW + 5}"


def test_a_rolled_back_savepoint_restores_held_back_values(store):
    f = store.create_inode(REG, 0, 0, NOW, nlink=1)
    store.update_inode(f, size=1)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.update_inode(f, size=2, nlink=5)
            with store.transaction():
                store.update_inode(f, size=3)
            store.get_inode(f)  # sends them inside the savepoint: the rollback un-sends them
            store.update_inode(f, size=4)
            raise RuntimeError("undo")
    got = store.get_inode_attrs(f)
    assert (got.size, got.nlink) == (1, 1)
    assert store.get_inode(f).size == 1
    store.commit()
    assert store.get_inode(f).size == 1


def test_a_rolled_back_deletion_keeps_the_held_back_values(store):
    f = store.create_inode(REG, 0, 0, NOW)
    store.update_inode(f, size=9)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.delete_inode(f)
            raise RuntimeError("undo")
    store.commit()
    assert store.get_inode(f).size == 9


def test_many_held_rows_are_sent_in_batches(db, store):
    inos = [store.create_inode(REG, 0, 0, NOW) for _ in range(5000)]
    for i, ino in enumerate(inos):
        store.update_inode(ino, size=i)
    assert len(store._held) <= 4096
    store.commit()
    assert sqlite3_ro(db, "SELECT sum(size) FROM inodes WHERE mode = %d" % REG) == str(sum(range(5000)))


def test_a_value_sqlite_would_refuse_is_refused_at_once_not_held(store):
    f = store.create_inode(REG, 0, 0, NOW)
    with pytest.raises(OverflowError):
        store.update_inode(f, mtime_ns=1 << 64)
    assert store._held == {} and store.get_inode(f).mtime_ns == NOW
