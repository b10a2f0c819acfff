"""/.vfs as an inode-level filesystem (no mount needed): content, sizes, control commands."""

from __future__ import annotations

import os

import pytest
import xxhash

from kernel.errors import KernelError
from kernel.fs import Caller
from kernel.pathvfs import PathVFS
from vfsfuse.inspect.inspectfs import InspectFS, chunk_map_text, chunks_xattr, parse_kv
from vfsfuse.storage.store import memory_store

CHUNK = 4096


@pytest.fixture
async def env():
    store = memory_store(chunk_size=CHUNK, inline_threshold=512)
    vfs = store.vfs
    fs = PathVFS(vfs)
    await fs.mkdir("/dir/sub", recursive=True)
    await fs.write_file("/dir/big", bytes(range(256)) * 40)  # 10240 bytes: 3 chunks
    await fs.write_file("/dir/sub/copy", bytes(range(256)) * 40)
    await fs.write_file("/small", b"tiny")
    await fs.symlink("small", "/link")
    await vfs.sync()
    inspect = InspectFS(vfs)
    return vfs, fs, inspect, PathVFS(inspect)


async def test_layout(env):
    vfs, fs, inspect, iv = env
    assert await iv.read_dir("/") == ["stats", "version", "control", "chunks", "blocks"]
    assert await iv.read_dir("/chunks") == ["dir", "small"]  # symlinks have no chunk map
    assert sorted(await iv.read_dir("/chunks/dir")) == ["big", "sub"]


async def test_stats_match_the_store(env):
    vfs, fs, inspect, iv = env
    stats = parse_kv((await iv.read_file("/stats")).decode())
    real = vfs.stats()
    for key in ("inodes", "files", "logical_bytes", "stored_bytes", "blocks", "versions"):
        assert int(stats[key]) == real[key]
    assert int(stats["logical_bytes"]) == 2 * 10240 + 4


async def test_chunk_map_files_have_real_size_and_content(env):
    vfs, fs, inspect, iv = env
    st = await iv.stat("/chunks/dir/big")
    text = await iv.read_file("/chunks/dir/big")
    assert st.size == len(text) > 0
    kv = parse_kv(text.decode())
    assert kv["size"] == "10240" and kv["storage"] == "chunked" and kv["chunks"] == "3"
    rows = [ln.split() for ln in text.decode().splitlines() if ln[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    assert [int(r[2]) for r in rows] == [4096, 4096, 2048]
    # /dir/sub/copy has the same bytes: same keys, refcount counts both files
    copy = await iv.read_file("/chunks/dir/sub/copy")
    assert [ln.split()[3] for ln in copy.decode().splitlines() if ln[:1].isdigit()] == [r[3] for r in rows]
    assert rows[0][4] == str(vfs.metadata.block_refcount(rows[0][3]))


async def test_inline_file_map(env):
    vfs, fs, inspect, iv = env
    kv = parse_kv((await iv.read_file("/chunks/small")).decode())
    assert kv["storage"] == "inline" and kv["inline_bytes"] == "4" and kv["chunks"] == "0"


async def test_chunk_map_follows_changes(env):
    vfs, fs, inspect, iv = env
    await fs.write_file("/dir/big", b"x" * 20000)
    text = (await iv.read_file("/chunks/dir/big")).decode()
    assert "size 20000" in text
    assert (await iv.stat("/chunks/dir/big")).size == len(text)
    await fs.remove_file("/dir/big")
    with pytest.raises(KernelError) as err:
        await iv.read_file("/chunks/dir/big")
    assert err.value.code == "ENOENT"


async def test_blocks_are_readable_and_named_by_hash(env):
    vfs, fs, inspect, iv = env
    keys = await iv.read_dir("/blocks")
    assert len(keys) == vfs.stats()["blocks"] > 0
    for key in keys:
        data = await iv.read_file(f"/blocks/{key}")
        assert xxhash.xxh3_128_hexdigest(data) == key
        assert (await iv.stat(f"/blocks/{key}")).size == len(data)
    with pytest.raises(KernelError) as err:
        await iv.stat("/blocks/0123456789abcdef0123456789abcdef")
    assert err.value.code == "ENOENT"


async def test_read_only(env):
    vfs, fs, inspect, iv = env
    for op in (lambda: iv.write_file("/stats", b"x"), lambda: iv.write_file("/new", b"x"),
               lambda: iv.remove_file("/version"), lambda: iv.mkdir("/chunks/x")):
        with pytest.raises(KernelError):
            await op()
    assert "dir" in await fs.read_dir("/")  # the store is untouched


async def _control(inspect, iv, command: bytes, caller=None) -> tuple[int, bytes]:
    ino, _ = await iv.resolve("/control")
    fh = await inspect.open(ino, os.O_RDWR, caller or Caller())
    try:
        try:
            n = await inspect.write(fh, 0, command)
        except KernelError as exc:
            return -1, exc.code.encode() + b" " + await inspect.read(fh, 0, 1 << 16)
        return n, await inspect.read(fh, 0, 1 << 16)
    finally:
        await inspect.release(fh)


async def test_control_gc_and_sync(env):
    vfs, fs, inspect, iv = env
    n, reply = await _control(inspect, iv, b"gc\n")
    assert n == 3
    assert parse_kv(reply.decode()) == {"removed_blocks": "0", "removed_bytes": "0"}
    assert (await _control(inspect, iv, b"sync\n"))[1] == b"ok\n"
    # the last reply is what a later `cat .vfs/control` shows
    assert await iv.read_file("/control") == b"ok\n"
    assert (await iv.stat("/control")).size == 3


async def test_control_versions(env):
    vfs, fs, inspect, iv = env
    assert (await _control(inspect, iv, b"version create /small\n"))[1] == b"version 1\n"
    await fs.write_file("/small", b"changed")
    assert (await _control(inspect, iv, b"version create /small\n"))[1] == b"version 2\n"
    listing = (await _control(inspect, iv, b"version list /small\n"))[1].decode().splitlines()
    assert [ln.split()[0] for ln in listing] == ["2", "1"]
    assert (await _control(inspect, iv, b"version restore /small 1\n"))[1] == b"restored 1\n"
    assert await fs.read_file("/small") == b"tiny"
    assert (await _control(inspect, iv, b"version prune /small keep=1\n"))[1] == b"pruned 1\n"


@pytest.mark.parametrize("command,code", [(b"bogus\n", "EINVAL"), (b"version list /nope\n", "ENOENT"),
                                          (b"version prune /small keep=x\n", "EINVAL"),
                                          (b"version restore /small 9\n", "ENOENT")])
async def test_control_errors_fail_the_write(env, command, code):
    vfs, fs, inspect, iv = env
    n, reply = await _control(inspect, iv, command)
    assert n == -1
    assert reply.startswith(code.encode() + b" error: " + code.encode() + b":")


async def test_control_needs_the_owner(env):
    vfs, fs, inspect, iv = env
    ino, _ = await iv.resolve("/control")
    with pytest.raises(KernelError) as err:
        await inspect.open(ino, os.O_WRONLY, Caller(uid=65534, gid=65534))
    assert err.value.code == "EACCES"


async def test_xattr_text_is_the_chunk_map_and_fits(env):
    vfs, fs, inspect, iv = env
    ino = vfs.metadata.resolve_path("/dir/big")
    assert chunks_xattr(vfs, ino) == chunk_map_text(vfs, ino).encode()
    small = chunks_xattr(vfs, ino, limit=200)
    assert len(small) <= 200
    assert small.endswith(b" more chunks (see /.vfs/chunks)\n")
    assert small.startswith(b"inode %d\n" % ino)
