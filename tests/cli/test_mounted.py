"""The CLI and ordinary tools against a real FUSE mount with /.vfs."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time

import pytest
import xxhash

from tests.served import unmount_and_reap
from vfsfuse.inspect.inspectfs import parse_kv

from .conftest import TREE, script

pytestmark = pytest.mark.mount

SERVER = os.path.join(os.path.dirname(__file__), "serve_inspect.py")


@pytest.fixture
def mounted(store, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(SERVER))))
    proc = subprocess.Popen([sys.executable, SERVER, store, str(mnt)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        yield str(mnt)
    finally:
        unmount_and_reap(mnt, proc, timeout=20)


def test_vfs_is_hidden_but_reachable(mounted):
    assert ".vfs" not in os.listdir(mounted)
    assert sorted(os.listdir(os.path.join(mounted, ".vfs"))) == ["blocks", "chunks", "control",
                                                                 "stats", "version"]


def test_chunk_maps_with_ordinary_tools(mounted):
    path = os.path.join(mounted, ".vfs", "chunks", "d", "a.bin")
    with open(path) as f:
        text = f.read()
    assert os.stat(path).st_size == len(text)
    out = subprocess.run(["getfattr", "-n", "user.vfs.chunks", "--only-values",
                          os.path.join(mounted, "d", "a.bin")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # the xattr names the same blocks, in the same order, as .vfs/chunks
    hashes = re.compile(r"\b[0-9a-f]{32}\b")
    keys = [k for k in hashes.findall(text)]
    assert len(keys) == 4 * 2  # hash column + block file name
    assert list(dict.fromkeys(hashes.findall(out.stdout))) == list(dict.fromkeys(keys))
    # block files are named relative to the store: no host path is visible inside the mount
    store_dir = os.path.dirname(mounted)
    for shown in (text, out.stdout):
        assert store_dir not in shown
        assert re.search(r" blocks/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}$", shown, re.M)


def test_block_files_hash_to_their_names(mounted):
    blocks = os.path.join(mounted, ".vfs", "blocks")
    names = os.listdir(blocks)
    assert names
    for name in names:
        with open(os.path.join(blocks, name), "rb") as f:
            assert xxhash.xxh3_128_hexdigest(f.read()) == name


def test_cli_on_mounted_paths(mounted):
    res = script("info", os.path.join(mounted, "d", "a.bin"))
    assert res.code == 0, res.err
    kv = parse_kv(res.out)
    assert kv["path"] == "/d/a.bin" and kv["size"] == str(len(TREE["/d/a.bin"]))
    res = script("stat", mounted, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["files"] == len(TREE)
    res = script("gc", mounted)
    assert res.code == 0 and res.out.startswith("gc: removed 0 blocks"), res.err


def test_versions_through_control(mounted):
    f = os.path.join(mounted, "hello.txt")
    assert script("versions", "create", f).out.strip() == "created version 1"
    with open(f, "wb") as fh:
        fh.write(b"new content\n")
    assert script("versions", "create", f).out.strip() == "created version 2"
    listing = script("versions", "list", f).out.splitlines()
    assert [ln.split()[0] for ln in listing[1:]] == ["2", "1"]
    assert script("versions", "restore", f, "1").code == 0
    deadline = time.monotonic() + 20
    while open(f, "rb").read() != TREE["/hello.txt"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the host may hold the old attributes for attr_timeout
    assert open(f, "rb").read() == TREE["/hello.txt"]
    assert script("versions", "prune", f, "--keep", "0").out.strip() == "pruned 2 versions"


def test_shell_control_file(mounted):
    control = os.path.join(mounted, ".vfs", "control")
    res = subprocess.run(["sh", "-c", f"echo sync > {control} && cat {control}"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == "ok\n", res.stderr
    res = subprocess.run(["sh", "-c", f"echo bogus > {control}"], capture_output=True, text=True)
    assert res.returncode != 0  # dash says "I/O error" for any failed write
    fd = os.open(control, os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as err:
            os.write(fd, b"bogus\n")
        assert err.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    with open(control) as f:
        assert f.read().startswith("error: EINVAL:")
    res = script("versions", "list", os.path.join(mounted, "no-such-file"))
    assert res.code == 8 and "Traceback" not in res.err


def test_info_on_missing_file_in_mount(mounted):
    res = script("info", os.path.join(mounted, "nope"))
    assert res.code == 8 and res.err.startswith("vfsfuse: ENOENT") and "Traceback" not in res.err


def test_store_path_of_a_mounted_store_goes_through_the_mount(mounted, store):
    import fcntl

    fd = os.open(os.path.join(store, "run", "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what the daemon holds
        os.write(fd, f"{os.getpid()} {mounted}\n".encode())
        res = script("stat", store, "--json")
        assert res.code == 0, res.err
        assert json.loads(res.out)["files"] == len(TREE)
        res = script("info", f"{store}:/d/a.bin")
        assert res.code == 0 and parse_kv(res.out)["path"] == "/d/a.bin"
        res = script("fsck", store)
        assert res.code == 8 and res.err.startswith("vfsfuse: EBUSY") and mounted in res.err
    finally:
        os.close(fd)


@pytest.fixture
def daemon_mount(store, tmp_path):
    """The real `vfsfuse mount` daemon on the populated store."""
    mnt = tmp_path / "dmnt"
    mnt.mkdir()
    res = script("mount", store, str(mnt))
    assert res.code == 0, res.err
    try:
        yield str(mnt)
    finally:
        if script("umount", str(mnt)).code != 0:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)


def test_with_the_real_daemon(daemon_mount, store):
    big = os.urandom(3 * 4096 + 5)
    with open(os.path.join(daemon_mount, "new.bin"), "wb") as f:
        f.write(big)
        f.flush()
        os.fsync(f.fileno())
    res = script("info", os.path.join(daemon_mount, "new.bin"))
    assert res.code == 0, res.err
    rows = [ln.split() for ln in res.out.splitlines() if ln[:1].isdigit()]
    assert [r[3] for r in rows] == [xxhash.xxh3_128_hexdigest(big[i * 4096:(i + 1) * 4096])
                                    for i in range(4)]
    # the store path of a mounted store is read through the mount; offline work is refused
    res = script("stat", store, "--json")
    assert res.code == 0, res.err
    via_store = json.loads(res.out)
    assert via_store == json.loads(script("stat", daemon_mount, "--json").out)
    assert via_store["files"] >= len(TREE) + 1  # the kernel's boot may add /etc files
    res = script("fsck", store)
    assert res.code == 8 and res.err.startswith("vfsfuse: EBUSY") and daemon_mount in res.err
    # dump reads one committed snapshot, even while mounted
    res = script("dump", store)
    assert res.code == 0, res.err
    dump = json.loads(res.out)
    assert any(d[1] == "new.bin" for d in dump["dentries"])
    assert script("umount", daemon_mount).code == 0
    res = script("fsck", store, "--verify-data")
    assert res.code == 0 and "result: clean" in res.out
