"""dump -> load round trips, and load's refusals."""

from __future__ import annotations

import json
import os
import shutil

import trio

from vfsfuse.storage.dumpload import dec, enc

from .conftest import TREE, assert_one_line_error, cli, read_tree, script


def test_bytes_encoding_round_trips():
    for value in (b"", b"plain", "é".encode(), b"\xff\x00bin", b'{"b64": "x"}'):
        assert dec(json.loads(json.dumps(enc(value)))) == value


def test_round_trip_equals_original(store, tmp_path):
    res = script("dump", store)
    assert res.code == 0, res.err
    dump = json.loads(res.out)
    assert dump["format"] == "vfsfuse-dump"
    new = str(tmp_path / "copy")
    os.makedirs(new)
    shutil.copytree(os.path.join(store, "blocks"), os.path.join(new, "blocks"))
    res = script("load", new, input=res.out)
    assert res.code == 0, res.err
    assert "loaded" in res.out
    # the same metadata (inode numbers, times, xattrs, config, ...) before anything reads it
    assert json.loads(script("dump", new).out) == dump
    # and the same tree, byte for byte
    assert trio.run(read_tree, new) == trio.run(read_tree, store)
    assert trio.run(read_tree, new)["/d/a.bin"] == TREE["/d/a.bin"]
    assert script("fsck", new, "--verify-data").code == 0


def test_round_trip_keeps_versions(store, tmp_path):
    assert cli("versions", "create", f"{store}:/hello.txt").code == 0
    assert cli("versions", "create", f"{store}:/d/a.bin").code == 0
    out = tmp_path / "dump.json"
    assert cli("dump", store, "-o", str(out)).code == 0
    new = str(tmp_path / "copy")
    os.makedirs(new)
    shutil.copytree(os.path.join(store, "blocks"), os.path.join(new, "blocks"))
    assert cli("load", new, "-i", str(out)).code == 0
    listing = cli("versions", "list", f"{new}:/d/a.bin")
    assert listing.code == 0 and "\n      1 " in listing.out
    assert json.loads(cli("dump", new).out) == json.loads(out.read_text())


def test_load_refuses_missing_blocks_and_writes_nothing(store, tmp_path):
    dump = script("dump", store).out
    new = str(tmp_path / "empty")
    res = script("load", new, input=dump)
    assert_one_line_error(res, "EIO", exit_code=4)
    assert "missing" in res.err
    assert not os.path.exists(os.path.join(new, "meta.db"))
    res = script("load", new, "--allow-missing", input=dump)
    assert res.code == 4 and "warning" in res.err
    assert os.path.exists(os.path.join(new, "meta.db"))


def test_load_refuses_a_store_with_files(store):
    dump = script("dump", store).out
    assert_one_line_error(script("load", store, input=dump), "EEXIST")


def test_load_rejects_garbage(tmp_path):
    assert_one_line_error(script("load", str(tmp_path / "x"), input="{not json"), "EINVAL")
    assert_one_line_error(script("load", str(tmp_path / "x"), input='{"a": 1}'), "EINVAL")
