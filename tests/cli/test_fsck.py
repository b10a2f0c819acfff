"""fsck on real stores corrupted on purpose: detection, --repair, and no loss of intact data."""

from __future__ import annotations

import glob
import json
import os
import sqlite3
import subprocess

import pytest
import trio
import xxhash

from .conftest import TREE, cli, read_tree, script


def fsck(store: str, *args: str) -> tuple[int, dict]:
    res = cli("fsck", store, "--json", *args)
    assert "Traceback" not in res.err
    return res.code, json.loads(res.out)


def sql(store: str, statement: str) -> None:
    """Corrupt meta.db with the real sqlite3 program, as an admin would."""
    subprocess.run(["sqlite3", os.path.join(store, "meta.db"), statement], check=True)


def block_files(store: str) -> list[str]:
    return sorted(glob.glob(os.path.join(store, "blocks", "*", "*", "*")))


def block_of(store: str, path: str, index: int = 0) -> str:
    con = sqlite3.connect(os.path.join(store, "meta.db"))
    try:
        ino = _ino(con, path)
        (key,) = con.execute("SELECT key FROM chunks WHERE ino = ? AND chunk_index = ?",
                             (ino, index)).fetchone()
        return key
    finally:
        con.close()


def _ino(con, path: str) -> int:
    ino = 1
    for part in path.strip("/").split("/"):
        (ino,) = con.execute("SELECT child_ino FROM dentries WHERE parent_ino = ? AND name = ?",
                             (ino, part.encode())).fetchone()
    return ino


def key_path(store: str, key: str) -> str:
    return os.path.join(store, "blocks", key[:2], key[2:4], key)


def test_clean_store(store):
    code, rep = fsck(store, "--verify-data")
    assert code == 0
    assert rep["found"]["errors"] == 0 and rep["found"]["notices"] == 0
    assert rep["found"]["scanned"]["verified_blocks"] == len(block_files(store)) > 0
    res = script("fsck", store)
    assert res.code == 0 and "result: clean" in res.out


@pytest.mark.allow_log_warnings  # provokes the errors it checks
def test_missing_block_detected_and_file_moved_to_lost_found(store):
    key = block_of(store, "/d/a.bin", 1)
    os.unlink(key_path(store, key))
    code, rep = fsck(store)
    assert code == 4
    assert rep["found"]["counts"]["missing_blocks"] == 1
    assert rep["found"]["counts"]["damaged_files"] == 1
    code, rep = fsck(store, "--repair")
    assert code == 4  # the lost bytes cannot come back
    assert rep["repaired"]["moved_to_lost+found"] == 1
    left = rep["after_repair"]["counts"]
    assert left["missing_blocks"] == 1 and left["wrong_nlink"] == 0
    tree = trio.run(read_tree, store)
    # both names of the damaged file went to lost+found as #<ino>; everything else is intact
    assert "/d/a.bin" not in tree and "/d/sub/a-hardlink" not in tree
    assert [p for p in tree if p.startswith("/lost+found/#")]
    for name, data in TREE.items():
        if name != "/d/a.bin":
            assert tree[name] == data
    # a second repair does not move it again
    code, rep = fsck(store, "--repair")
    assert "moved_to_lost+found" not in rep["repaired"]


@pytest.mark.allow_log_warnings  # provokes the errors it checks
def test_flipped_byte_needs_verify_data(store):
    key = block_of(store, "/d/shared1", 0)  # SHARED: also used by /d/sub/shared2
    path = key_path(store, key)
    with open(path, "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 0xFF]))
    code, rep = fsck(store)
    assert code == 0  # size and name unchanged: only hashing can tell
    code, rep = fsck(store, "--verify-data")
    assert code == 4
    assert rep["found"]["counts"]["corrupt_blocks"] == 1
    assert rep["found"]["counts"]["damaged_files"] == 2
    code, rep = fsck(store, "--verify-data", "--repair")
    assert code == 4
    assert rep["repaired"]["corrupt_blocks_quarantined"] == 1
    quarantined = os.path.join(store, "corrupt", key)
    assert os.path.isfile(quarantined) and not os.path.exists(path)
    tree = trio.run(read_tree, store)
    assert tree["/hello.txt"] == TREE["/hello.txt"]
    assert tree["/d/a.bin"] == TREE["/d/a.bin"]
    assert "/d/shared1" not in tree and "/d/sub/shared2" not in tree
    assert len([p for p in tree if p.startswith("/lost+found/#")]) == 2


def test_stray_block_is_a_notice_and_repair_deletes_it(store):
    data = b"nobody references me"
    key = xxhash.xxh3_128_hexdigest(data)
    os.makedirs(os.path.dirname(key_path(store, key)), exist_ok=True)
    with open(key_path(store, key), "wb") as f:
        f.write(data)
    before = block_files(store)
    code, rep = fsck(store)
    assert code == 0
    assert rep["found"]["counts"]["unreferenced_blocks"] == 1
    code, rep = fsck(store, "--repair")
    assert code == 0
    assert rep["repaired"]["unreferenced_blocks_deleted"] == 1
    assert block_files(store) == [p for p in before if not p.endswith(key)]
    assert trio.run(read_tree, store)["/d/a.bin"] == TREE["/d/a.bin"]


def test_broken_refcount_and_nlink_are_repaired(store):
    key = block_of(store, "/d/a.bin", 0)
    sql(store, f"UPDATE blocks SET refcount = refcount + 3 WHERE key = '{key}';"
               "UPDATE inodes SET nlink = 9 WHERE ino = (SELECT child_ino FROM dentries "
               "WHERE name = CAST('hello.txt' AS BLOB));"
               "UPDATE inodes SET nlink = 5 WHERE ino = 1;")
    code, rep = fsck(store)
    assert code == 4
    counts = rep["found"]["counts"]
    assert counts["wrong_refcount"] == 1 and counts["wrong_nlink"] == 2
    res = script("fsck", store, "--repair")
    assert res.code == 1, res.out
    assert "result: repaired" in res.out
    code, rep = fsck(store)
    assert code == 0
    assert trio.run(read_tree, store) == trio.run(read_tree, store)  # readable
    tree = trio.run(read_tree, store)
    for name, data in TREE.items():
        assert tree[name] == data


def test_dangling_entry_and_orphan_inode(store):
    sql(store, "INSERT INTO dentries (parent_ino, name, child_ino, seq) "
               "VALUES (1, CAST('ghost' AS BLOB), 99999, 100000);"
               "INSERT INTO dentries (parent_ino, name, child_ino, seq) "
               "VALUES (1, CAST('loop' AS BLOB), 1, 100001);")
    # give /d/sub/shared2 no name but keep nlink: an orphan with intact data
    sql(store, "DELETE FROM dentries WHERE name = CAST('shared2' AS BLOB);")
    code, rep = fsck(store)
    assert code == 4
    counts = rep["found"]["counts"]
    assert counts["dangling_dentries"] == 2 and counts["orphan_inodes"] == 1
    code, rep = fsck(store, "--repair")
    assert code == 1
    assert rep["after_repair"]["errors"] == 0
    tree = trio.run(read_tree, store)
    rescued = [p for p in tree if p.startswith("/lost+found/#")]
    assert len(rescued) == 1 and tree[rescued[0]] == TREE["/d/sub/shared2"]
    assert "/ghost" not in tree and not any(p.startswith("/loop") for p in tree)


def test_chunk_beyond_size_is_dropped(store):
    sql(store, "UPDATE inodes SET size = 10 WHERE ino = (SELECT child_ino FROM dentries "
               "WHERE name = CAST('a.bin' AS BLOB));")
    code, rep = fsck(store)
    assert rep["found"]["counts"]["chunks_beyond_size"] == 3
    code, rep = fsck(store, "--repair")
    assert code == 1
    assert trio.run(read_tree, store)["/d/a.bin"] == TREE["/d/a.bin"][:10]
    assert fsck(store)[0] == 0


def test_text_report_lists_every_class(store):
    from vfsfuse.storage.fsck import CLASSES

    res = script("fsck", store)
    for kind in CLASSES:
        assert kind in res.out


def test_directory_cycle_is_reattached(store):
    # move /d into its own subdirectory: /d and everything below is cut off from the root
    sql(store, "UPDATE dentries SET parent_ino = (SELECT child_ino FROM dentries "
               "WHERE name = CAST('sub' AS BLOB)) WHERE name = CAST('d' AS BLOB);")
    code, rep = fsck(store)
    assert code == 4 and rep["found"]["counts"]["disconnected"] >= 1
    code, rep = fsck(store, "--repair")
    assert code == 1, rep
    tree = trio.run(read_tree, store)
    rescued = {p.split("/", 3)[3]: data for p, data in tree.items() if p.startswith("/lost+found/#")}
    # both directories of the cycle come back under lost+found, with every file intact
    assert rescued["a.bin"] == TREE["/d/a.bin"] and rescued["shared1"] == TREE["/d/shared1"]
    assert rescued["shared2"] == TREE["/d/sub/shared2"] and rescued["empty"] == b""
    assert tree["/hello.txt"] == TREE["/hello.txt"]
    assert fsck(store)[0] == 0
