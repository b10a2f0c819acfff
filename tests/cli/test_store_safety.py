"""Store safety: only mkfs creates a schema, every other command refuses a damaged meta.db
without writing anything, mkfs does not orphan blocks, and a store is private to its owner
whatever the umask (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import apsw
import pytest
import trio

from tests.cli.conftest import assert_one_line_error, cli, read_tree, script
from vfsfuse.storage.metadata import schema
from vfsfuse.storage.store import check_private, check_store, create_store

# -- damaging meta.db ----------------------------------------------------------------------------


def _empty(store: str) -> None:
    os.truncate(os.path.join(store, "meta.db"), 0)


def _truncated(store: str) -> None:
    db = os.path.join(store, "meta.db")
    os.truncate(db, os.path.getsize(db) // 2)


def _truncated_mid_page(store: str) -> None:
    db = os.path.join(store, "meta.db")
    os.truncate(db, 4096 + 1000)


def _header_only(store: str) -> None:
    os.truncate(os.path.join(store, "meta.db"), 50)


def _garbage(store: str) -> None:
    db = os.path.join(store, "meta.db")
    size = os.path.getsize(db)
    with open(db, "wb") as f:
        f.write(bytes((i * 131 + 7) % 256 for i in range(size)))


def _missing(store: str) -> None:
    os.unlink(os.path.join(store, "meta.db"))


def _future(store: str) -> None:
    conn = apsw.Connection(os.path.join(store, "meta.db"))
    conn.execute("UPDATE schema_version SET version = ?", (schema.current_version() + 1,))
    conn.close()


def _foreign(store: str) -> None:
    db = os.path.join(store, "meta.db")
    os.unlink(db)
    conn = apsw.Connection(db)
    conn.execute("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('hello')")
    conn.close()


DAMAGE = {
    "empty": (_empty, "EINVAL", "is empty"),
    "truncated": (_truncated, "EIO", "truncated"),
    "truncated-mid-page": (_truncated_mid_page, "EIO", "truncated"),
    "header-only": (_header_only, "EIO", "truncated"),
    "garbage": (_garbage, "EINVAL", "not an SQLite database"),
    "missing": (_missing, "ENOENT", "is missing"),
    "future": (_future, "EINVAL", "newer than this vfsfuse"),
    "foreign": (_foreign, "EINVAL", "without a vfsfuse schema"),
}


def snapshot(store: str) -> dict:
    """Everything a command could change: every path's type, mode, size, mtime, and the
    bytes (hashed) of every file."""
    out = {}
    for top, dirs, files in os.walk(store):
        for name in [""] + dirs + files:
            path = os.path.join(top, name) if name else top
            st = os.lstat(path)
            entry = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry += (hashlib.sha256(f.read()).hexdigest(),)
            out[os.path.relpath(path, store)] = entry
    return out


def _blocks(store: str) -> int:
    return sum(len(files) for _t, _d, files in os.walk(os.path.join(store, "blocks")))


@pytest.fixture
def dump_json(store, tmp_path) -> str:
    res = cli("dump", store)
    assert res.code == 0, res.err
    path = tmp_path / "dump.json"
    path.write_text(res.out)
    return str(path)


def _commands(store: str, dump: str, mnt: str) -> dict[str, tuple[str, ...]]:
    return {
        "gc": ("gc", store),
        "fsck": ("fsck", store),
        "fsck-repair": ("fsck", "--repair", store),
        "info": ("info", f"{store}:/hello.txt"),
        "stat": ("stat", store),
        "versions-list": ("versions", "list", f"{store}:/hello.txt"),
        "versions-create": ("versions", "create", f"{store}:/hello.txt"),
        "dump": ("dump", store),
        "load": ("load", store, "-i", dump),
        "mount": ("mount", store, mnt),
    }


COMMANDS = ["gc", "fsck", "fsck-repair", "info", "stat", "versions-list", "versions-create",
            "dump", "load", "mount"]


# load into a directory without meta.db is the documented restore path
# (test_load_restores_a_store_whose_meta_db_is_missing), so that pair is not a refusal.
REFUSALS = [(command, damage) for command in COMMANDS for damage in sorted(DAMAGE)
            if (command, damage) != ("load", "missing")]


@pytest.mark.parametrize(("command", "damage"), REFUSALS)
def test_every_command_refuses_a_damaged_meta_db_and_writes_nothing(store, dump_json, tmp_path,
                                                                    damage, command):
    spoil, code, words = DAMAGE[damage]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    spoil(store)
    before = snapshot(store)
    args = _commands(store, dump_json, str(mnt))[command]
    try:
        res = script(*args) if command == "mount" else cli(*args)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    assert_one_line_error(res, code)
    assert words in res.err, res.err
    if damage != "future":
        assert "restore" in res.err and "nothing was changed" in res.err, res.err
    assert snapshot(store) == before, f"{command} changed the store"
    assert res.out == "", res.out


def test_gc_on_an_empty_meta_db_keeps_every_block(store):
    """The original report: gc wrote a fresh schema and deleted every block."""
    n = _blocks(store)
    assert n > 0
    _empty(store)
    res = cli("gc", store)
    assert_one_line_error(res, "EINVAL")
    assert f"{n} blocks" in res.err, res.err
    assert _blocks(store) == n
    assert os.path.getsize(os.path.join(store, "meta.db")) == 0


def test_the_messages_say_how_many_blocks_are_kept(store):
    n = _blocks(store)
    _missing(store)
    res = cli("fsck", store)
    assert_one_line_error(res, "ENOENT")
    assert f"its {n} blocks" in res.err and "vfsfuse load" in res.err, res.err


def test_check_store_passes_a_sound_store_and_reads_it_as_it_is(store):
    before = snapshot(store)
    check_store(store)
    assert snapshot(store) == before  # no -wal/-shm left behind either


def test_check_store_sees_a_schema_that_is_only_in_the_wal(tmp_path):
    """A store whose last daemon died before a checkpoint: the WAL is read (read-only)."""
    path = str(tmp_path / "s")
    create_store(path)
    conn = apsw.Connection(os.path.join(path, "meta.db"))
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE schema_version SET version = 99")
    # leave the change in the WAL: copy the three files as a crash would leave them
    crashed = tmp_path / "crashed"
    shutil.copytree(path, crashed)
    conn.close()
    assert os.path.getsize(crashed / "meta.db-wal") > 0
    with pytest.raises(Exception, match="schema version 99"):
        check_store(str(crashed))


def test_load_restores_a_store_whose_meta_db_is_missing(store, dump_json):
    expected = trio.run(read_tree, store)
    _missing(store)
    res = cli("load", store, "-i", dump_json)
    assert res.code == 0, res.err
    assert trio.run(read_tree, store) == expected


def test_open_store_never_creates_a_schema(tmp_path):
    from kernel.errors import KernelError
    from vfsfuse.storage.metadata import SqliteMetadataStore

    db = tmp_path / "meta.db"
    db.write_bytes(b"")
    with pytest.raises(KernelError, match="no vfsfuse schema"):
        SqliteMetadataStore(str(db), create=False)
    assert db.read_bytes() == b""
    with pytest.raises(KernelError):
        SqliteMetadataStore(str(tmp_path / "absent.db"), create=False)
    assert not (tmp_path / "absent.db").exists()


# -- mkfs ------------------------------------------------------------------------------------------


def test_mkfs_refuses_a_directory_with_blocks_and_counts_them(store):
    n = _blocks(store)
    _empty(store)
    before = snapshot(store)
    res = cli("mkfs", store)
    assert_one_line_error(res, "EEXIST")
    assert f"holds {n} blocks" in res.err and "orphan" in res.err and "--force" in res.err, res.err
    assert snapshot(store) == before
    _missing(store)  # blocks only, no meta.db at all: still refused
    before = snapshot(store)
    res = cli("mkfs", store)
    assert_one_line_error(res, "EEXIST")
    assert f"holds {n} blocks" in res.err, res.err
    assert snapshot(store) == before
    res = cli("mkfs", "--force", store)
    assert res.code == 0, res.err
    assert _blocks(store) == 0
    check_store(store)


def test_mkfs_refuses_an_existing_store_without_blocks(tmp_path):
    path = str(tmp_path / "s")
    assert cli("mkfs", path).code == 0
    before = snapshot(path)
    res = cli("mkfs", path)
    assert_one_line_error(res, "EEXIST")
    assert "already holds a store" in res.err
    assert snapshot(path) == before


def test_mkfs_in_an_empty_existing_directory(tmp_path):
    path = tmp_path / "s"
    path.mkdir(mode=0o755)
    (path / "blocks").mkdir()  # an empty blocks dir (an interrupted mkfs) orphans nothing
    assert cli("mkfs", str(path)).code == 0
    check_store(str(path))


# -- modes -----------------------------------------------------------------------------------------


@pytest.fixture
def umask000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(store: str) -> dict[str, int]:
    out = {}
    for top, dirs, files in os.walk(store):
        for name in [""] + dirs + files:
            path = os.path.join(top, name) if name else top
            out[os.path.relpath(path, store)] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


def _assert_private(store: str) -> None:
    modes = _modes(store)
    for rel, mode in modes.items():
        path = os.path.join(store, rel)
        want = 0o700 if os.path.isdir(path) else 0o600
        assert mode == want, f"{rel} is {mode:04o}, want {want:04o}"
    assert check_private(store) is None


def test_store_stays_private_under_umask_000(tmp_path, umask000):
    path = str(tmp_path / "s")
    assert cli("mkfs", path, "--chunk-size", "4K", "--inline-threshold", "1K").code == 0
    _assert_private(path)
    assert set(_modes(path)) == {".", "meta.db", "blocks", "run"}

    async def write_and_peek():
        from kernel.pathvfs import PathVFS
        from vfsfuse.storage.store import open_store

        store = open_store(path)
        try:
            fs = PathVFS(store.vfs)
            await fs.write_file("/a", os.urandom(20000))
            await fs.write_file("/b", os.urandom(9000))
            await store.vfs.sync()
            _assert_private(path)  # meta.db-wal and -shm while open too
            assert os.path.exists(os.path.join(path, "meta.db-wal"))
            await fs.remove_file("/b")
            await store.vfs.close()
        finally:
            store.close()

    trio.run(write_and_peek)
    assert _blocks(path) >= 5
    _assert_private(path)  # after writes (and the lock file of the offline work)
    assert cli("stat", path).code == 0
    res = cli("gc", path)
    assert res.code == 0 and "removed" in res.out, res.err
    _assert_private(path)


def test_fsck_reports_and_repairs_open_modes(store, umask000):
    _assert_private(store)
    os.chmod(store, 0o755)
    os.chmod(os.path.join(store, "meta.db"), 0o644)
    for top, dirs, files in os.walk(os.path.join(store, "blocks")):
        for d in dirs:
            os.chmod(os.path.join(top, d), 0o777)
        for f in files:
            os.chmod(os.path.join(top, f), 0o666)
    with pytest.raises(Exception, match="EPERM: store .* is open to other users"):
        check_private(store)
    res = cli("fsck", "--json", store)
    assert res.code == 0, res.err  # a notice, not an error
    found = json.loads(res.out)["found"]
    assert found["counts"]["open_modes"] >= 3 + _blocks(store)
    res = cli("fsck", "--repair", store)
    assert res.code == 0, res.out + res.err
    assert "modes_made_private" in res.out
    _assert_private(store)
    assert json.loads(cli("fsck", "--json", store).out)["found"]["counts"]["open_modes"] == 0


def test_owner_tools_still_read_the_store(store):
    """xxhsum on a block file, sqlite3 -readonly on meta.db (as the owner)."""
    blocks = [os.path.join(t, f) for t, _d, fs in os.walk(os.path.join(store, "blocks")) for f in fs]
    if shutil.which("xxhsum"):
        out = subprocess.run(["xxhsum", "-H128", blocks[0]], capture_output=True, text=True, check=True)
        assert os.path.basename(blocks[0]) in out.stdout
    if shutil.which("sqlite3"):
        out = subprocess.run(["sqlite3", "-readonly", os.path.join(store, "meta.db"),
                              "SELECT count(*) FROM inodes"], capture_output=True, text=True, check=True)
        assert int(out.stdout) > 3
    before = snapshot(store)
    check_store(store)
    after = snapshot(store)
    # sqlite3 left -wal/-shm behind; a reader may touch -shm (SQLite's shared lock memory)
    assert {k: v for k, v in after.items() if k != "meta.db-shm"} == \
        {k: v for k, v in before.items() if k != "meta.db-shm"}
