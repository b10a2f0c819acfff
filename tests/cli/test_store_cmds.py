"""info, stat, gc and versions on an unmounted store (STORE / STORE:/path)."""

from __future__ import annotations

import glob
import json
import os

import trio
import xxhash

from vfsfuse.inspect.inspectfs import parse_kv

from .conftest import CHUNK, TREE, cli, read_tree, script


def test_info_shows_chunk_map_with_block_files(store):
    res = script("info", f"{store}:/d/a.bin")
    assert res.code == 0, res.err
    kv = parse_kv(res.out)
    assert kv["path"] == "/d/a.bin" and kv["size"] == str(len(TREE["/d/a.bin"]))
    assert kv["storage"] == "chunked" and kv["chunks"] == "4"
    rows = [ln.split() for ln in res.out.splitlines() if ln[:1].isdigit()]
    data = TREE["/d/a.bin"]
    for index, offset, length, key, refs, path in rows:
        chunk = data[int(offset):int(offset) + int(length)]
        assert int(offset) == int(index) * CHUNK
        assert xxhash.xxh3_128_hexdigest(chunk) == key
        with open(path, "rb") as f:  # the block file path is real and holds the chunk
            assert f.read() == chunk
        assert refs == "1"  # hard links share the inode, not the chunk rows


def test_info_shared_chunk_refcount_and_inline(store):
    res = cli("info", f"{store}:/d/shared1", f"{store}:/hello.txt")
    assert res.code == 0
    first, second = res.out.split("\n\n")
    rows = [ln.split() for ln in first.splitlines() if ln[:1].isdigit()]
    # SHARED appears twice in shared1 and once in shared2: refcount 3
    assert rows[0][3] == rows[1][3] and rows[0][4] == "3"
    kv = parse_kv(second)
    assert kv["storage"] == "inline" and kv["inline_bytes"] == "6"


def test_stat_totals(store):
    res = cli("stat", store, "--json")
    assert res.code == 0
    stats = json.loads(res.out)
    assert stats["files"] == len(TREE)
    assert stats["logical_bytes"] == sum(len(v) for v in TREE.values())
    blocks = glob.glob(os.path.join(store, "blocks", "*", "*", "*"))
    assert stats["blocks"] == len(blocks)
    assert stats["stored_bytes"] == sum(os.path.getsize(b) for b in blocks)
    assert stats["dedup_ratio"] > 1.0
    text = script("stat", store).out
    assert "dedup ratio:" in text and "logical bytes:" in text


def test_gc_removes_only_unreferenced_blocks(store):
    stray = b"stray block"
    key = xxhash.xxh3_128_hexdigest(stray)
    os.makedirs(os.path.join(store, "blocks", key[:2], key[2:4]), exist_ok=True)
    with open(os.path.join(store, "blocks", key[:2], key[2:4], key), "wb") as f:
        f.write(stray)
    res = script("gc", store)
    assert res.code == 0, res.err
    assert res.out.strip() == f"gc: removed 1 blocks ({len(stray)} B)"
    assert trio.run(read_tree, store)["/d/a.bin"] == TREE["/d/a.bin"]
    assert script("gc", store).out.startswith("gc: removed 0 blocks")


def test_versions_offline(store):
    target = f"{store}:/hello.txt"
    assert cli("versions", "list", target).out.strip() == "no versions"
    assert cli("versions", "create", target).out.strip() == "created version 1"

    async def change(path):
        from kernel.pathvfs import PathVFS
        from vfsfuse.storage.store import open_store

        s = open_store(path)
        await PathVFS(s.vfs).write_file("/hello.txt", b"changed\n")
        await s.vfs.close()
        s.close()

    trio.run(change, store)
    assert cli("versions", "create", target).out.strip() == "created version 2"
    listing = cli("versions", "list", target).out.splitlines()
    assert [ln.split()[0] for ln in listing[1:]] == ["2", "1"]
    assert cli("versions", "restore", target, "1").code == 0
    assert trio.run(read_tree, store)["/hello.txt"] == TREE["/hello.txt"]
    res = cli("versions", "prune", target, "--keep", "1")
    assert res.out.strip() == "pruned 1 versions"
    assert cli("versions", "prune", target, "--max-age", "1h").out.strip() == "pruned 0 versions"
    assert [ln.split()[0] for ln in cli("versions", "list", target).out.splitlines()[1:]] == ["2"]


def test_versions_errors(store):
    res = script("versions", "prune", f"{store}:/hello.txt")
    assert res.code == 2 and "exactly one" in res.err
    res = script("versions", "restore", f"{store}:/hello.txt", "7")
    assert res.code == 8 and res.err.startswith("vfsfuse: ENOENT") and "Traceback" not in res.err
