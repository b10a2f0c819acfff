"""Run the VFS conformance suite (V1-V89) against PathVFS over ChunkedVFS on every store
combination, plus storage-level checks adapted from seed §10.5 to content addressing."""

from __future__ import annotations

import contextlib
import random
from contextlib import asynccontextmanager

import pytest
import trio

from blockstores import HostBlockStore, MemoryBlockStore
from kernel.pathvfs import PathVFS
from tests.conformance.vfs_suite import *  # noqa: F401,F403  (the suite's test functions)
from tests.conformance.vfs_suite import VfsConfig, VfsEnv, expect_code, make_data
from vfsfuse.storage.chunked import ChunkedVFS
from vfsfuse.storage.metadata import MemoryMetadataStore, SqliteMetadataStore

SMALL = dict(inline_threshold=256, chunk_size=1024)
DEFAULTS = dict(inline_threshold=64 << 10, chunk_size=4 << 20)


def _metadata(kind: str, tmp_path, versioning: bool):
    if kind == "memory":
        return MemoryMetadataStore(versioning=versioning)
    if kind == "sqlite-mem":
        return SqliteMetadataStore(":memory:", versioning=versioning)
    return SqliteMetadataStore(str(tmp_path / "meta.db"), versioning=versioning)


def _blocks(kind: str, tmp_path):
    return MemoryBlockStore() if kind == "memory" else HostBlockStore(tmp_path / "blocks")


def chunked_config(meta: str, blocks: str, sizes: dict, cache_bytes: int = 64 << 20,
                   label: str = "") -> VfsConfig:
    """A suite config for ChunkedVFS on one metadata x block store pair."""

    @asynccontextmanager
    async def factory(tmp_path, versioning: bool = False):
        metadata = _metadata(meta, tmp_path, versioning)
        store = _blocks(blocks, tmp_path)
        fs = ChunkedVFS(metadata, store, cache_bytes=cache_bytes, versioning=versioning, **sizes)
        try:
            async with fs.running():
                yield VfsEnv(PathVFS(fs), None, fs, metadata, store)
        finally:
            metadata.close()

    size = "small" if sizes is SMALL else "default"
    name = f"{meta}+{blocks}-{size}{label}"
    return VfsConfig(name, factory, inline_threshold=sizes["inline_threshold"],
                     chunk_size=sizes["chunk_size"])


def mount_table_config() -> VfsConfig:
    """The suite through the kernel's mount table (root = ChunkedVFS, another fs at /mnt)."""

    @asynccontextmanager
    async def factory(tmp_path, versioning: bool = False):
        from kernel.mounts import MountTable

        metadata = MemoryMetadataStore(versioning=versioning)
        store = MemoryBlockStore()
        fs = ChunkedVFS(metadata, store, versioning=versioning, **SMALL)
        table = MountTable(fs)
        await table.mount("/mnt", ChunkedVFS(MemoryMetadataStore(), MemoryBlockStore(), **SMALL))
        async with fs.running():
            yield VfsEnv(PathVFS(table), None, fs, metadata, store)

    return VfsConfig("mounttable+memory-small", factory, inline_threshold=SMALL["inline_threshold"],
                     chunk_size=SMALL["chunk_size"])


STORE_PAIRS = [(m, b) for m in ("memory", "sqlite-mem", "sqlite-file") for b in ("memory", "host")]
SMALL_CONFIGS = [chunked_config(m, b, SMALL) for m, b in STORE_PAIRS]
# The default sizes (64 KiB inline, 4 MiB chunks) on {memory, SQLite} x {memory, host}.
DEFAULT_CONFIGS = [chunked_config(m, b, DEFAULTS) for m in ("memory", "sqlite-file") for b in ("memory", "host")]
TINY_CACHE_CONFIGS = [
    chunked_config("memory", "memory", SMALL, cache_bytes=4096, label="-tinycache"),
    chunked_config("sqlite-file", "host", SMALL, cache_bytes=4096, label="-tinycache"),
]
def shm_config() -> VfsConfig:
    """The suite on the sandbox's /dev/shm filesystem: sized memory stores, nothing inline,
    64 KiB chunks, a small write-back buffer (store.shm_vfs)."""
    from vfsfuse.storage.store import shm_vfs

    @asynccontextmanager
    async def factory(tmp_path, versioning: bool = False):
        fs = shm_vfs(64 << 20)
        async with fs.running():
            yield VfsEnv(PathVFS(fs), None, fs, fs.metadata, fs.blocks)

    return VfsConfig("shm-64M", factory, inline_threshold=0, chunk_size=64 << 10)


CONFIGS = SMALL_CONFIGS + DEFAULT_CONFIGS + TINY_CACHE_CONFIGS + [mount_table_config(), shm_config()]


@pytest.fixture(params=CONFIGS, ids=str)
async def vfs_env(request, tmp_path):
    config: VfsConfig = request.param
    async with config.factory(tmp_path) as env:
        env.config = config
        yield env


@pytest.fixture(params=SMALL_CONFIGS + TINY_CACHE_CONFIGS, ids=str)
async def store_env(request, tmp_path):
    """A small-threshold ChunkedVFS whose stores the test inspects."""
    config: VfsConfig = request.param
    async with config.factory(tmp_path) as env:
        env.config = config
        yield env


@pytest.fixture(params=SMALL_CONFIGS, ids=str)
async def versioned_env(request, tmp_path):
    config: VfsConfig = request.param
    async with config.factory(tmp_path, versioning=True) as env:
        env.config = config
        yield env


async def _keys(blocks) -> list[str]:
    async with contextlib.aclosing(blocks.list_keys()) as keys:
        return [k async for k in keys]


def _distinct_chunks(n: int, cs: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n * cs)


# -- tier boundaries ---------------------------------------------------------------------


async def test_exact_threshold_stays_inline(store_env):
    th = store_env.config.inline_threshold
    await store_env.vfs.write_file("/inline.dat", make_data(th))
    await store_env.fs.sync()
    assert await _keys(store_env.blocks) == []
    assert await store_env.vfs.read_file("/inline.dat") == make_data(th)


async def test_threshold_plus_one_goes_to_blocks(store_env):
    th = store_env.config.inline_threshold
    await store_env.vfs.write_file("/chunked.dat", make_data(th + 1))
    await store_env.fs.sync()
    assert len(await _keys(store_env.blocks)) == 1
    assert await store_env.vfs.read_file("/chunked.dat") == make_data(th + 1)


async def test_promotion_by_pwrite_and_demotion_by_truncate(store_env):
    v, fs = store_env.vfs, store_env.fs
    th = store_env.config.inline_threshold
    await v.write_file("/pd.dat", make_data(100))
    await v.pwrite("/pd.dat", 200, b"x" * 200)  # 400 bytes > threshold: promoted
    await fs.sync()
    assert len(await _keys(store_env.blocks)) == 1
    assert (await v.stat("/pd.dat")).size == 400
    await v.truncate("/pd.dat", th - 56)  # demoted: the block is released
    await fs.sync()
    assert await _keys(store_env.blocks) == []
    expect = make_data(100) + bytes(100)
    assert await v.read_file("/pd.dat") == expect


async def test_rewrite_small_file_large_then_small(store_env):
    v, fs = store_env.vfs, store_env.fs
    cs = store_env.config.chunk_size
    await v.write_file("/rw.dat", _distinct_chunks(3, cs))
    await fs.sync()
    assert len(await _keys(store_env.blocks)) == 3
    await v.write_file("/rw.dat", "tiny")
    await fs.sync()
    assert await _keys(store_env.blocks) == []
    assert await v.read_file("/rw.dat") == b"tiny"


async def test_chunk_math_partial_last_chunk(store_env):
    v = store_env.vfs
    cs = store_env.config.chunk_size
    data = _distinct_chunks(3, cs)[: 3 * cs - 500] + b"tail"
    await v.write_file("/cm.dat", data)
    await store_env.fs.sync()
    assert len(await _keys(store_env.blocks)) == 3
    assert await v.read_file("/cm.dat") == data
    assert await v.pread("/cm.dat", cs - 5, 10) == data[cs - 5:cs + 5]


# -- sparse files ------------------------------------------------------------------------


async def test_sparse_holes_read_zero_and_cost_no_block(store_env):
    v = store_env.vfs
    cs = store_env.config.chunk_size
    await v.write_file("/sparse.dat", b"")
    await v.pwrite("/sparse.dat", 5 * cs + 10, b"Z" * 10)
    await store_env.fs.sync()
    assert (await v.stat("/sparse.dat")).size == 5 * cs + 20
    assert len(await _keys(store_env.blocks)) == 1
    got = await v.read_file("/sparse.dat")
    assert got == bytes(5 * cs + 10) + b"Z" * 10
    assert await v.pread("/sparse.dat", 2 * cs, 100) == bytes(100)


async def test_truncate_to_a_petabyte_is_constant_time(store_env):
    v = store_env.vfs
    pb = 1 << 50
    await v.write_file("/pb.dat", "start")
    with trio.fail_after(20):  # an O(size) implementation would never finish
        await v.truncate("/pb.dat", pb)
        await store_env.fs.sync()
    assert (await v.stat("/pb.dat")).size == pb
    assert await v.pread("/pb.dat", pb - 10, 100) == bytes(10)
    assert await v.pread("/pb.dat", 0, 5) == b"start"
    assert len(await _keys(store_env.blocks)) <= 1  # at most the chunk holding "start"
    await v.truncate("/pb.dat", 3)
    await store_env.fs.sync()
    assert await v.read_file("/pb.dat") == b"sta"
    assert await _keys(store_env.blocks) == []


# -- content addressing: dedup and refcounts ----------------------------------------------


async def test_identical_files_share_blocks(store_env):
    v, fs, meta, blocks = store_env.vfs, store_env.fs, store_env.metadata, store_env.blocks
    cs = store_env.config.chunk_size
    data = _distinct_chunks(4, cs)
    await v.write_file("/one.dat", data)
    await v.write_file("/two.dat", data)
    await fs.sync()
    keys = await _keys(blocks)
    assert len(keys) == 4
    assert all(meta.block_refcount(k) == 2 for k in keys)
    await v.remove_file("/one.dat")
    await fs.sync()
    assert sorted(await _keys(blocks)) == sorted(keys)
    assert all(meta.block_refcount(k) == 1 for k in keys)
    assert await v.read_file("/two.dat") == data
    await v.remove_file("/two.dat")
    await fs.sync()
    await fs.gc()
    assert await _keys(blocks) == []


async def test_repeated_chunk_within_one_file_is_stored_once(store_env):
    v, fs = store_env.vfs, store_env.fs
    cs = store_env.config.chunk_size
    chunk = _distinct_chunks(1, cs, seed=3)
    await v.write_file("/rep.dat", chunk * 4)
    await fs.sync()
    keys = await _keys(store_env.blocks)
    assert len(keys) == 1 and store_env.metadata.block_refcount(keys[0]) == 4
    assert await v.read_file("/rep.dat") == chunk * 4


async def test_copy_shares_blocks(store_env):
    v, fs = store_env.vfs, store_env.fs
    cs = store_env.config.chunk_size
    data = _distinct_chunks(3, cs, seed=11)
    await v.write_file("/orig.dat", data)
    await v.copy("/orig.dat", "/copy.dat")
    await fs.sync()
    assert len(await _keys(store_env.blocks)) == 3
    assert await v.read_file("/copy.dat") == data


async def test_small_pwrite_rewrites_one_block(store_env):
    v, fs = store_env.vfs, store_env.fs
    cs = store_env.config.chunk_size
    data = _distinct_chunks(3, cs, seed=5)
    await v.write_file("/pw.dat", data)
    await fs.sync()
    before = set(await _keys(store_env.blocks))
    await v.pwrite("/pw.dat", cs + 7, b"\xff" * 4)
    await fs.sync()
    after = set(await _keys(store_env.blocks))
    assert len(after) == 3 and len(after - before) == 1
    expect = bytearray(data)
    expect[cs + 7:cs + 11] = b"\xff" * 4
    assert await v.read_file("/pw.dat") == bytes(expect)


# -- versioning ------------------------------------------------------------------------------


async def test_versions_create_list_restore(versioned_env):
    v, fs = versioned_env.vfs, versioned_env.fs
    await v.write_file("/ver.dat", make_data(356))
    ino, _ = await v.resolve("/ver.dat")
    assert await fs.create_version(ino) == 1
    await v.write_file("/ver.dat", "second version")
    assert await fs.create_version(ino) == 2
    versions = await fs.list_versions(ino)
    assert [x.version for x in versions] == [2, 1]
    assert [x.size for x in versions] == [14, 356]
    await v.write_file("/ver.dat", "third")
    await fs.restore_version(ino, 1)
    assert await v.read_file("/ver.dat") == make_data(356)
    await fs.restore_version(ino, 2)
    assert await v.read_text_file("/ver.dat") == "second version"
    with expect_code("ENOENT"):
        await fs.restore_version(ino, 9)


async def test_versions_keep_old_blocks_alive(versioned_env):
    v, fs = versioned_env.vfs, versioned_env.fs
    cs = versioned_env.config.chunk_size
    old = _distinct_chunks(2, cs, seed=1)
    await v.write_file("/vb.dat", old)
    ino, _ = await v.resolve("/vb.dat")
    await fs.create_version(ino)
    await v.write_file("/vb.dat", _distinct_chunks(2, cs, seed=2))
    await fs.sync()
    await fs.gc()
    assert len(await _keys(versioned_env.blocks)) == 4
    await fs.restore_version(ino, 1)
    assert await v.read_file("/vb.dat") == old


async def test_prune_versions_by_count(versioned_env):
    v, fs = versioned_env.vfs, versioned_env.fs
    await v.write_file("/pc.dat", "v0")
    ino, _ = await v.resolve("/pc.dat")
    for i in range(1, 5):
        await v.write_file("/pc.dat", make_data(300, i))
        await fs.create_version(ino)
    assert await fs.prune_versions(ino, {"type": "count", "keep": 5}) == 0
    assert await fs.prune_versions(ino, {"type": "count", "keep": 2}) == 2
    assert [x.version for x in await fs.list_versions(ino)] == [4, 3]
    await v.write_file("/pc.dat", "latest")
    await fs.sync()
    await fs.gc()
    # only versions 3 and 4 still hold blocks (one 300-byte chunk each)
    assert len(await _keys(versioned_env.blocks)) == 2


async def test_prune_versions_by_age(versioned_env):
    v, fs = versioned_env.vfs, versioned_env.fs
    await v.write_file("/pa.dat", make_data(400))
    ino, _ = await v.resolve("/pa.dat")
    await fs.create_version(ino)
    assert await fs.prune_versions(ino, {"type": "age", "max_age_s": 3600}) == 0
    await trio.sleep(0.02)
    assert await fs.prune_versions(ino, {"type": "age", "max_age_s": 0.001}) == 1
    assert await fs.list_versions(ino) == []


async def test_remove_versioned_file_then_gc_empties_store(versioned_env):
    v, fs = versioned_env.vfs, versioned_env.fs
    await v.write_file("/gone.dat", make_data(2000))
    ino, _ = await v.resolve("/gone.dat")
    await fs.create_version(ino)
    await v.remove_file("/gone.dat")
    await fs.sync()
    await fs.gc()
    assert await _keys(versioned_env.blocks) == []


# -- persistence -------------------------------------------------------------------------------


async def test_reopen_sees_synced_data(tmp_path):
    meta = SqliteMetadataStore(str(tmp_path / "meta.db"))
    fs = ChunkedVFS(meta, HostBlockStore(tmp_path / "blocks"), **SMALL)
    async with fs.running():
        v = PathVFS(fs)
        await v.write_file("/keep/a.dat", make_data(5000))
        await v.symlink("a.dat", "/keep/link")
        await v.pwrite("/keep/a.dat", 10, b"patched")
    meta.close()
    meta2 = SqliteMetadataStore(str(tmp_path / "meta.db"))
    try:
        fs2 = ChunkedVFS(meta2, HostBlockStore(tmp_path / "blocks"))  # sizes come from the store
        assert (fs2.chunk_size, fs2.inline_threshold) == (1024, 256)
        v2 = PathVFS(fs2)
        expect = bytearray(make_data(5000))
        expect[10:17] = b"patched"
        assert await v2.read_file("/keep/link") == bytes(expect)
    finally:
        meta2.close()
