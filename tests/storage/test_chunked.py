"""ChunkedVFS at the inode level: storage tiers, write-back, dedup, GC, unlink-while-open,
permission rules, rename rules, crash safety.  (The seed's conformance cases live in
tests/conformance; these test what we added and the Linux rules we chose.)"""

from __future__ import annotations

import os
import signal
import stat as S
import subprocess
import sys
import textwrap

import pytest
import trio
import trio.testing

from blockstores import HostBlockStore, MemoryBlockStore
from kernel.errors import KernelError
from kernel.fs import RENAME_EXCHANGE, RENAME_NOREPLACE, Caller, SetAttr
from tests.paths import REPO
from vfsfuse.storage.blocks import block_key
from vfsfuse.storage.chunked import ChunkedVFS
from vfsfuse.storage.metadata import MemoryMetadataStore, SqliteMetadataStore
from vfsfuse.storage.store import create_store, open_store

CS = 4096
INLINE = 256
RW = os.O_RDWR


class CountingBlocks(MemoryBlockStore):
    """A memory block store that counts writes (to check write-back behaviour)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    async def write(self, key, data, *, durable=False):
        self.writes.append(key)
        await super().write(key, data, durable=durable)


@pytest.fixture(params=["memory", "sqlite"])
def meta(request, tmp_path):
    if request.param == "memory":
        return MemoryMetadataStore(versioning=True)
    return SqliteMetadataStore(str(tmp_path / "meta.db"), versioning=True)


@pytest.fixture
def blocks():
    return CountingBlocks()


@pytest.fixture
def vfs(meta, blocks):
    return ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE, versioning=True)


ROOT = Caller()


async def new_file(vfs, name=b"f", data=b"", parent=1, caller=ROOT):
    fh, attr = await vfs.create(parent, name, 0o644, RW | os.O_CREAT, caller)
    if data:
        await vfs.write(fh, 0, data)
    return fh, attr.ino


async def read_all(vfs, ino):
    fh = await vfs.open(ino, os.O_RDONLY)
    try:
        return await vfs.read(fh, 0, (await vfs.getattr(ino)).size + 10)
    finally:
        await vfs.release(fh)


async def stored_keys(blocks) -> set[str]:
    return {k async for k in blocks.list_keys()}


# -- tiers and write-back ----------------------------------------------------------


async def test_inline_up_to_threshold_then_chunks(vfs, meta, blocks):
    fh, ino = await new_file(vfs, data=b"a" * INLINE)
    await vfs.fsync(fh)
    assert meta.get_inode(ino).storage_mode == "inline" and blocks.writes == []
    await vfs.write(fh, INLINE, b"b")
    await vfs.fsync(fh)
    assert meta.get_inode(ino).storage_mode == "chunked"
    assert await read_all(vfs, ino) == b"a" * INLINE + b"b"
    await vfs.setattr(ino, SetAttr(size=10))
    assert meta.get_inode(ino).storage_mode == "inline"
    assert await read_all(vfs, ino) == b"a" * 10


async def test_random_small_writes_are_buffered_not_rewritten_per_write(vfs, blocks):
    fh, ino = await new_file(vfs, data=os.urandom(16 * CS))
    await vfs.fsync(fh)
    before = len(blocks.writes)
    import random

    rnd = random.Random(1)
    for _ in range(200):
        await vfs.write(fh, rnd.randrange(0, 16 * CS - 512), os.urandom(512))
    assert len(blocks.writes) == before  # nothing written until a flush
    await vfs.fsync(fh)
    assert len(blocks.writes) - before <= 16  # at most one block per dirty chunk


async def test_buffer_pressure_flushes_and_stays_bounded(meta, blocks):
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE, cache_bytes=4 * CS)
    fh, ino = await new_file(vfs)
    data = os.urandom(40 * CS)
    for off in range(0, len(data), 1000):
        await vfs.write(fh, off, data[off:off + 1000])
        assert vfs.buffer.total <= 6 * CS
    assert len(blocks.writes) > 0
    assert await read_all(vfs, ino) == data


async def test_sparse_petabyte_truncate_is_cheap_and_reads_zeros(vfs, blocks):
    fh, ino = await new_file(vfs, data=b"head" * 100)
    pb = 1 << 50
    await vfs.setattr(ino, SetAttr(size=pb))
    assert (await vfs.getattr(ino)).size == pb
    assert await vfs.read(fh, pb - 4096 * 3, 8192) == bytes(8192)
    await vfs.write(fh, pb - 3, b"end")
    await vfs.fsync(fh)
    assert await vfs.read(fh, pb - 5, 10) == b"\0\0end"
    assert len(await stored_keys(blocks)) <= 2  # the head and the tail chunk, holes cost nothing


async def test_all_zero_chunk_becomes_a_hole(vfs, meta):
    fh, ino = await new_file(vfs, data=b"x" * (3 * CS))
    await vfs.fsync(fh)
    await vfs.write(fh, CS, bytes(CS))
    await vfs.fsync(fh)
    assert meta.get_chunk_key(ino, 1) is None
    assert await vfs.read(fh, 0, 3 * CS) == b"x" * CS + bytes(CS) + b"x" * CS


# -- dedup, refcounts, GC ----------------------------------------------------------


async def test_identical_chunks_are_stored_once_and_freed_after_last_reference(vfs, meta, blocks):
    data = os.urandom(4 * CS)
    fa, a = await new_file(vfs, b"a", data)
    fb, b = await new_file(vfs, b"b", data)
    for fh in (fa, fb):
        await vfs.fsync(fh)
        await vfs.release(fh)
    keys = await stored_keys(blocks)
    assert len(keys) == 4
    assert all(meta.block_refcount(k) == 2 for k in keys)
    assert keys == {block_key(data[i:i + CS]) for i in range(0, len(data), CS)}
    await vfs.unlink(1, b"a")
    await vfs.sync()
    assert await stored_keys(blocks) == keys
    assert await read_all(vfs, b) == data
    await vfs.unlink(1, b"b")
    await vfs.sync()
    assert await stored_keys(blocks) == set()


async def test_gc_removes_unreferenced_blocks_and_reports(vfs, blocks):
    fh, ino = await new_file(vfs, data=os.urandom(2 * CS))
    await vfs.fsync(fh)
    await blocks.write("0" * 32, b"stray")
    report = await vfs.gc()
    assert report.removed_blocks == 1 and report.removed_bytes == 5
    assert len(await stored_keys(blocks)) == 2
    assert len(await read_all(vfs, ino)) == 2 * CS


async def test_versions_keep_blocks_alive_until_pruned(vfs, blocks):
    fh, ino = await new_file(vfs, data=b"1" * (2 * CS))
    assert await vfs.create_version(ino) == 1
    await vfs.write(fh, 0, b"2" * (2 * CS))
    await vfs.fsync(fh)
    assert len(await stored_keys(blocks)) == 2  # v1's block "1"*CS shared by both chunks, + new
    await vfs.restore_version(ino, 1)
    assert await read_all(vfs, ino) == b"1" * (2 * CS)
    await vfs.write(fh, 0, b"3" * (2 * CS))
    assert await vfs.prune_versions(ino, {"type": "count", "keep": 0}) == 1
    await vfs.sync()
    assert await stored_keys(blocks) == {block_key(b"3" * CS)}


@pytest.mark.allow_log_warnings  # provokes the errors it checks
async def test_corrupt_or_missing_block_gives_eio_not_wrong_bytes(tmp_path):
    meta = SqliteMetadataStore(str(tmp_path / "m.db"))
    hb = HostBlockStore(str(tmp_path / "blocks"))
    vfs = ChunkedVFS(meta, hb, chunk_size=CS, inline_threshold=INLINE)
    fh, ino = await new_file(vfs, data=b"a" * CS + b"b" * CS)
    await vfs.fsync(fh)
    await vfs.release(fh)
    vfs2 = ChunkedVFS(meta, hb)  # fresh caches
    path = hb.path_for(block_key(b"a" * CS))
    with open(path, "r+b") as f:
        f.write(b"X")
    fh = await vfs2.open(ino, os.O_RDONLY)
    with pytest.raises(KernelError) as err:
        await vfs2.read(fh, 0, 10)
    assert err.value.code == "EIO"
    assert await vfs2.read(fh, CS, 10) == b"b" * 10  # the intact range still reads
    os.unlink(hb.path_for(block_key(b"b" * CS)))
    vfs3 = ChunkedVFS(meta, hb)
    fh = await vfs3.open(ino, os.O_RDONLY)
    with pytest.raises(KernelError) as err:
        await vfs3.read(fh, CS, 10)
    assert err.value.code == "EIO"


# -- unlink while open, forget -----------------------------------------------------


async def test_open_unlinked_file_keeps_working_until_last_close(vfs, meta, blocks):
    fh, ino = await new_file(vfs, data=os.urandom(3 * CS))
    await vfs.fsync(fh)
    await vfs.unlink(1, b"f")
    assert meta.lookup(1, b"f") is None
    await vfs.write(fh, 0, b"still here")
    assert (await vfs.read(fh, 0, 10)) == b"still here"
    assert (await vfs.getattr(ino)).nlink == 0
    await vfs.release(fh)
    assert meta.get_inode(ino) is None
    await vfs.sync()
    assert await stored_keys(blocks) == set()


async def test_retained_inode_survives_unlink_until_forget(vfs, meta):
    fh, ino = await new_file(vfs, data=b"data")
    await vfs.release(fh)
    vfs.retain(ino)
    await vfs.unlink(1, b"f")
    assert meta.get_inode(ino) is not None
    await vfs.forget(ino)
    assert meta.get_inode(ino) is None


# -- names, nlink, times -----------------------------------------------------------


@pytest.mark.parametrize("name,code", [(b"", "EINVAL"), (b"a/b", "EINVAL"), (b"a\0b", "EINVAL"),
                                       (b"x" * 256, "ENAMETOOLONG")])
async def test_invalid_names(vfs, name, code):
    for op in (lambda: vfs.mkdir(1, name, 0o755), lambda: vfs.create(1, name, 0o644, RW),
               lambda: vfs.symlink(1, name, b"t")):
        with pytest.raises(KernelError) as err:
            await op()
        assert err.value.code == code


async def test_255_byte_name_works(vfs):
    fh, ino = await new_file(vfs, b"n" * 255, b"ok")
    assert (await vfs.lookup(1, b"n" * 255)).ino == ino


async def test_directory_nlink_is_two_plus_subdirs(vfs):
    a = await vfs.mkdir(1, b"a", 0o755)
    await vfs.mkdir(a.ino, b"x", 0o755)
    await vfs.mkdir(a.ino, b"y", 0o755)
    await new_file(vfs, b"file", parent=a.ino)
    assert (await vfs.getattr(a.ino)).nlink == 4
    b = await vfs.mkdir(1, b"b", 0o755)
    await vfs.rename(a.ino, b"x", b.ino, b"x")
    assert (await vfs.getattr(a.ino)).nlink == 3 and (await vfs.getattr(b.ino)).nlink == 3
    await vfs.rmdir(b.ino, b"x")
    assert (await vfs.getattr(b.ino)).nlink == 2
    assert (await vfs.getattr(1)).nlink == 4


async def test_ctime_and_mtime_rules(vfs):
    fh, ino = await new_file(vfs, data=b"x")
    a0 = await vfs.getattr(ino)
    await trio.sleep(0.002)
    a1 = await vfs.setattr(ino, SetAttr(mode=0o600))
    assert a1.ctime_ns > a0.ctime_ns and a1.mtime_ns == a0.mtime_ns
    await trio.sleep(0.002)
    await vfs.write(fh, 0, b"y")
    a2 = await vfs.getattr(ino)
    assert a2.mtime_ns > a1.mtime_ns and a2.ctime_ns >= a2.mtime_ns
    await trio.sleep(0.002)
    await vfs.link(ino, 1, b"g")
    a3 = await vfs.getattr(ino)
    assert a3.ctime_ns > a2.ctime_ns and a3.mtime_ns == a2.mtime_ns
    await trio.sleep(0.002)
    await vfs.rename(1, b"g", 1, b"h")
    assert (await vfs.getattr(ino)).ctime_ns > a3.ctime_ns
    t = 1_700_000_000_123_456_789
    a4 = await vfs.setattr(ino, SetAttr(atime_ns=t, mtime_ns=t))
    assert a4.atime_ns == t and a4.mtime_ns == t


async def test_relatime_updates_atime_only_when_stale(vfs):
    fh, ino = await new_file(vfs, data=b"x")
    old = 1_000_000_000
    await vfs.setattr(ino, SetAttr(atime_ns=old, mtime_ns=old + 5))
    await vfs.read(fh, 0, 1)
    a = (await vfs.getattr(ino)).atime_ns
    assert a > old + 5
    await vfs.read(fh, 0, 1)
    assert (await vfs.getattr(ino)).atime_ns == a


# -- permissions -------------------------------------------------------------------

ALICE = Caller(uid=1000, gid=1000, umask=0o022)
BOB = Caller(uid=1001, gid=1001, umask=0o022)


@pytest.fixture
async def open_root(vfs):
    """Let unprivileged callers create entries in the root directory."""
    await vfs.setattr(1, SetAttr(mode=0o777))


async def test_owner_is_caller_and_umask_applies(vfs, open_root):
    fh, attr = await vfs.create(1, b"f", 0o666, RW | os.O_CREAT, ALICE)
    assert (attr.uid, attr.gid, S.S_IMODE(attr.mode)) == (1000, 1000, 0o644)
    d = await vfs.mkdir(1, b"d", 0o777, ALICE)
    assert S.S_IMODE(d.mode) == 0o755


async def test_setgid_directory_passes_gid_down(vfs, open_root):
    d = await vfs.mkdir(1, b"shared", 0o777)
    await vfs.setattr(d.ino, SetAttr(mode=0o2777, gid=50))
    f = (await vfs.create(d.ino, b"f", 0o644, RW, ALICE))[1]
    sub = await vfs.mkdir(d.ino, b"sub", 0o755, ALICE)
    assert f.gid == 50 and sub.gid == 50 and sub.mode & S.S_ISGID


async def test_sticky_directory_restricts_unlink_and_rename(vfs, open_root):
    tmp = await vfs.mkdir(1, b"tmp", 0o777)
    await vfs.setattr(tmp.ino, SetAttr(mode=0o1777))
    await vfs.create(tmp.ino, b"alice", 0o644, RW, ALICE)
    for op in (lambda: vfs.unlink(tmp.ino, b"alice", BOB),
               lambda: vfs.rename(tmp.ino, b"alice", tmp.ino, b"bob", 0, BOB)):
        with pytest.raises(KernelError) as err:
            await op()
        assert err.value.code == "EPERM"
    await vfs.unlink(tmp.ino, b"alice", ALICE)


async def test_non_owner_chmod_and_chown_are_eperm(vfs, open_root):
    _, ino = await new_file(vfs, caller=ALICE)
    with pytest.raises(KernelError) as err:
        await vfs.setattr(ino, SetAttr(mode=0o777), BOB)
    assert err.value.code == "EPERM"
    with pytest.raises(KernelError) as err:
        await vfs.setattr(ino, SetAttr(uid=1001), ALICE)
    assert err.value.code == "EPERM"


async def test_write_by_non_owner_drops_setuid(vfs, open_root):
    fh, ino = await new_file(vfs, caller=ALICE)
    await vfs.setattr(ino, SetAttr(mode=0o4777), ALICE)
    bob_fh = await vfs.open(ino, os.O_WRONLY, BOB)
    await vfs.write(bob_fh, 0, b"x")
    assert not (await vfs.getattr(ino)).mode & S.S_ISUID


async def test_permission_bits_enforced_for_non_root(vfs, open_root):
    fh, ino = await new_file(vfs, caller=ALICE)
    await vfs.setattr(ino, SetAttr(mode=0o600), ALICE)
    with pytest.raises(KernelError) as err:
        await vfs.open(ino, os.O_RDONLY, BOB)
    assert err.value.code == "EACCES"
    priv = await vfs.mkdir(1, b"priv", 0o700, ALICE)
    with pytest.raises(KernelError) as err:
        await vfs.lookup(priv.ino, b"x", BOB)
    assert err.value.code == "EACCES"


# -- rename ------------------------------------------------------------------------


async def test_rename_errors_follow_linux(vfs):
    d = await vfs.mkdir(1, b"d", 0o755)
    sub = await vfs.mkdir(d.ino, b"sub", 0o755)
    await new_file(vfs, b"f")
    full = await vfs.mkdir(1, b"full", 0o755)
    await new_file(vfs, b"x", parent=full.ino)
    cases = [
        ((1, b"d", sub.ino, b"in"), 0, "EINVAL"),
        ((1, b"f", 1, b"d"), 0, "EISDIR"),
        ((1, b"d", 1, b"f"), 0, "ENOTDIR"),
        ((1, b"d", 1, b"full"), 0, "ENOTEMPTY"),
        ((1, b"f", 1, b"d"), RENAME_NOREPLACE, "EEXIST"),
        ((1, b"nope", 1, b"z"), 0, "ENOENT"),
        ((1, b"f", 1, b"nope"), RENAME_EXCHANGE, "ENOENT"),
    ]
    for args, flags, code in cases:
        with pytest.raises(KernelError) as err:
            await vfs.rename(*args, flags)
        assert err.value.code == code, (args, flags)


async def test_rename_exchange_swaps_and_fixes_nlink(vfs):
    a = await vfs.mkdir(1, b"a", 0o755)
    b = await vfs.mkdir(1, b"b", 0o755)
    dir_ = await vfs.mkdir(a.ino, b"x", 0o755)
    _, f = await new_file(vfs, b"x", parent=b.ino)
    await vfs.rename(a.ino, b"x", b.ino, b"x", RENAME_EXCHANGE)
    assert (await vfs.lookup(a.ino, b"x")).ino == f
    assert (await vfs.lookup(b.ino, b"x")).ino == dir_.ino
    assert (await vfs.getattr(a.ino)).nlink == 2 and (await vfs.getattr(b.ino)).nlink == 3


async def test_rename_over_hard_link_of_itself_is_a_no_op(vfs):
    _, ino = await new_file(vfs, b"a", b"x")
    await vfs.link(ino, 1, b"b")
    await vfs.rename(1, b"a", 1, b"b")
    assert (await vfs.lookup(1, b"a")).ino == ino and (await vfs.getattr(ino)).nlink == 2


async def test_readdir_cookies_survive_concurrent_changes(vfs):
    d = await vfs.mkdir(1, b"d", 0o755)
    for i in range(10):
        await new_file(vfs, b"f%d" % i, parent=d.ino)
    dh = await vfs.opendir(d.ino)
    first = (await vfs.readdir(dh, 0))[:5]
    await vfs.unlink(d.ino, b"f2")
    await vfs.unlink(d.ino, b"f7")
    await new_file(vfs, b"new", parent=d.ino)
    rest = await vfs.readdir(dh, first[-1].offset)
    names = [e.name for e in first] + [e.name for e in rest]
    assert names == [b"f0", b"f1", b"f2", b"f3", b"f4", b"f5", b"f6", b"f8", b"f9", b"new"]


async def test_concurrent_writes_to_distinct_chunks(vfs):
    fh, ino = await new_file(vfs, data=bytes(8 * CS))

    async def writer(i):
        for _ in range(5):
            await vfs.write(fh, i * CS, bytes([i + 1]) * CS)
            await trio.sleep(0)

    async with trio.open_nursery() as n:
        for i in range(8):
            n.start_soon(writer, i)
    await vfs.fsync(fh)
    assert await read_all(vfs, ino) == b"".join(bytes([i + 1]) * CS for i in range(8))


# -- persistence and crashes -------------------------------------------------------


async def test_reopen_sees_synced_data_and_never_reuses_inode_numbers(tmp_path):
    create_store(str(tmp_path / "s"), chunk_size=CS, inline_threshold=INLINE)
    st = open_store(str(tmp_path / "s"))
    data = os.urandom(5 * CS + 17)
    fh, ino = await new_file(st.vfs, b"f", data)
    await st.vfs.release(fh)
    await st.vfs.unlink(1, b"f")
    fh, ino2 = await new_file(st.vfs, b"g", data)
    await st.vfs.release(fh)
    await st.vfs.close()
    st.close()
    st = open_store(str(tmp_path / "s"))
    assert st.vfs.chunk_size == CS
    assert await read_all(st.vfs, (await st.vfs.lookup(1, b"g")).ino) == data
    fh, ino3 = await new_file(st.vfs, b"h")
    assert ino3 > ino2 > ino
    await st.vfs.close()
    st.close()


CRASH_WRITER = textwrap.dedent(
    """
    import os, sys, trio
    sys.path.insert(0, {root!r})
    from vfsfuse.storage.store import open_store
    async def main():
        st = open_store({store!r})
        vfs = st.vfs
        i = 0
        async with vfs.running():
            while True:
                name = b"f%d" % i
                fh, attr = await vfs.create(1, name, 0o644, os.O_RDWR | os.O_CREAT)
                data = bytes([i % 251]) * (3 * 4096 + i)
                await vfs.write(fh, 0, data)
                await vfs.fsync(fh)
                await vfs.release(fh)
                print(i, flush=True)
                i += 1
    trio.run(main)
    """
)


def _check_consistent(store_path: str) -> tuple[int, set[str]]:
    """Every referenced block exists and refcounts equal the references."""
    import apsw

    db = apsw.Connection(os.path.join(store_path, "meta.db"), flags=apsw.SQLITE_OPEN_READONLY)
    refs: dict[str, int] = {}
    for (key,) in db.execute("SELECT key FROM chunks"):
        refs[key] = refs.get(key, 0) + 1
    for (key,) in db.execute("SELECT key FROM version_chunks"):
        refs[key] = refs.get(key, 0) + 1
    counted = dict(db.execute("SELECT key, refcount FROM blocks"))
    hb = HostBlockStore(os.path.join(store_path, "blocks"))
    for key in refs:
        assert os.path.exists(hb.path_for(key)), f"referenced block {key} missing"
    assert counted == refs
    names = {bytes(n) for (n,) in db.execute("SELECT name FROM dentries WHERE parent_ino = 1")}
    db.close()
    return len(refs), names


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.45, 1.1])
async def test_kill_9_during_writes_leaves_a_consistent_store(tmp_path, delay):
    store = str(tmp_path / "s")
    create_store(store, chunk_size=4096, inline_threshold=256)
    root = str(REPO)
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER.format(root=root, store=store)],
                            stdout=subprocess.PIPE, text=True)
    first = await trio.to_thread.run_sync(proc.stdout.readline)  # the writer is running
    await trio.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    synced = [int(x) for x in (first + out).split()]
    assert synced, "the writer never completed an fsync"
    _, names = _check_consistent(store)
    st = open_store(store)
    for i in synced:  # every file whose fsync returned is intact
        ino = (await st.vfs.lookup(1, b"f%d" % i)).ino
        assert await read_all(st.vfs, ino) == bytes([i % 251]) * (3 * 4096 + i)
    report = await st.vfs.gc()  # only unreferenced blocks may be left behind
    assert report.removed_blocks >= 0
    await st.vfs.close()
    st.close()
    _check_consistent(store)


async def test_orphans_left_by_a_crash_are_reaped_on_open(meta, blocks):
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    fh, ino = await new_file(vfs, data=os.urandom(2 * CS))
    await vfs.fsync(fh)
    await vfs.unlink(1, b"f")  # still open: survives, like a crash before the last close
    assert meta.get_inode(ino) is not None
    again = ChunkedVFS(meta, blocks)  # "after the crash"
    assert meta.get_inode(ino) is None
    await again.sync()
    assert await stored_keys(blocks) == set()


class FullBlocks(MemoryBlockStore):
    async def write(self, key, data, *, durable=False):
        raise KernelError("ENOSPC", "block store is full")


async def test_full_block_store_gives_enospc_and_keeps_the_data_buffered(meta):
    vfs = ChunkedVFS(meta, FullBlocks(), chunk_size=CS, inline_threshold=INLINE)
    fh, ino = await new_file(vfs, data=os.urandom(4 * CS))  # four chunks: a parallel flush
    with pytest.raises(KernelError) as err:
        await vfs.fsync(fh)
    assert err.value.code == "ENOSPC"
    assert len(await vfs.read(fh, 0, 4 * CS)) == 4 * CS  # nothing lost: still in the buffer
    assert vfs.buffer.total >= 4 * CS


async def test_st_blocks_counts_stored_bytes_not_holes(vfs):
    fh, ino = await new_file(vfs, data=b"x" * 1000)
    await vfs.setattr(ino, SetAttr(size=100 * CS))
    await vfs.write(fh, 50 * CS, b"y" * 10)
    await vfs.fsync(fh)
    attr = await vfs.getattr(ino)
    assert attr.size == 100 * CS
    assert attr.blocks * 512 < 2 * CS  # 1000 + 10 bytes stored, not 400 KiB


async def test_no_atime_writes_when_disabled(vfs):
    fh, ino = await new_file(vfs, data=b"x")
    await vfs.setattr(ino, SetAttr(atime_ns=5, mtime_ns=10))
    vfs.update_atime = False
    await vfs.read(fh, 0, 1)
    assert (await vfs.getattr(ino)).atime_ns == 5


# -- read-ahead ----------------------------------------------------------------------


class ReadCountingBlocks(MemoryBlockStore):
    """A memory block store that records which blocks were read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def read(self, key):
        self.reads.append(key)
        return await super().read(key)


async def _chunks_file(tmp_path, n_chunks: int):
    blocks = ReadCountingBlocks()
    vfs = ChunkedVFS(SqliteMetadataStore(str(tmp_path / "m.db")), blocks, chunk_size=CS,
                     inline_threshold=INLINE, cache_bytes=64 * CS)
    data = b"".join(bytes([i + 1]) * CS for i in range(n_chunks))
    fh, ino = await new_file(vfs, data=data)
    await vfs.release(fh)
    await vfs.sync()
    vfs.bm._cache.clear()  # cold: every chunk must come from the block store
    vfs.bm._cache_bytes = 0
    keys = [k for _, _, _, k in vfs.chunk_map(ino)]
    return vfs, blocks, ino, data, keys


async def test_sequential_reader_gets_the_next_chunks_read_ahead(tmp_path):
    vfs, blocks, ino, data, keys = await _chunks_file(tmp_path, 8)
    async with vfs.running():
        fh = await vfs.open(ino, os.O_RDONLY)
        assert await vfs.read(fh, 0, 1024) == data[:1024]
        await trio.testing.wait_all_tasks_blocked()
        assert set(blocks.reads) == set(keys[:4])  # this chunk and the next three
        got = bytearray(data[:1024])
        off = 1024
        while off < len(data):
            got += await vfs.read(fh, off, 1024)
            off += 1024
        assert bytes(got) == data
        assert sorted(blocks.reads) == sorted(keys)  # each block read exactly once
        await vfs.release(fh)


async def test_random_reader_gets_no_read_ahead(tmp_path):
    vfs, blocks, ino, data, keys = await _chunks_file(tmp_path, 8)
    async with vfs.running():
        fh = await vfs.open(ino, os.O_RDONLY)
        assert await vfs.read(fh, 5 * CS + 100, 50) == data[5 * CS + 100:5 * CS + 150]
        assert await vfs.read(fh, 2 * CS + 7, 50) == data[2 * CS + 7:2 * CS + 57]
        await trio.testing.wait_all_tasks_blocked()
        assert blocks.reads == [keys[5], keys[2]]
        await vfs.release(fh)


async def test_linux_check_order_for_create_and_unlink(vfs, open_root):
    d = await vfs.mkdir(1, b"ro", 0o755, ALICE)
    await vfs.create(d.ino, b"x", 0o644, RW, ALICE)
    with pytest.raises(KernelError) as err:  # exists beats "no write permission"
        await vfs.mkdir(d.ino, b"x", 0o755, BOB)
    assert err.value.code == "EEXIST"
    sticky = await vfs.mkdir(1, b"sticky", 0o777)
    await vfs.setattr(sticky.ino, SetAttr(mode=0o1777))
    await vfs.mkdir(sticky.ino, b"alices_dir", 0o755, ALICE)
    with pytest.raises(KernelError) as err:  # sticky beats the type check
        await vfs.unlink(sticky.ino, b"alices_dir", BOB)
    assert err.value.code == "EPERM"


async def test_truncate_by_non_root_drops_setuid(vfs, open_root):
    fh, ino = await new_file(vfs, data=b"abc", caller=ALICE)
    await vfs.setattr(ino, SetAttr(mode=0o6755), ALICE)
    attr = await vfs.setattr(ino, SetAttr(size=1), ALICE)
    assert not attr.mode & (S.S_ISUID | S.S_ISGID)
    await vfs.setattr(ino, SetAttr(mode=0o4755))
    assert (await vfs.setattr(ino, SetAttr(size=0))).mode & S.S_ISUID  # root keeps it (CAP_FSETID)


async def test_read_buffer_returns_the_same_bytes_as_read_and_views_only_stored_blocks(vfs):
    """read_buffer (used by the FUSE adapter) may return views, but never different bytes,
    and never a view of dirty data that a later write would change under the reader."""
    data = bytes(range(256)) * (3 * CS // 256) + b"tail"
    fh, ino = await new_file(vfs, data=data)
    await vfs.fsync(fh)  # stored blocks from here on
    ranges = [(0, CS), (10, 100), (CS - 5, 10), (CS, CS), (2 * CS + 1, 50000), (len(data) - 2, 10),
              (len(data) + 5, 10), (0, len(data))]
    for off, size in ranges:
        plain = await vfs.read(fh, off, size)
        buf = await vfs.read_buffer(fh, off, size)
        assert bytes(buf) == plain == data[off:off + size]
    assert isinstance(await vfs.read_buffer(fh, 10, 100), memoryview)  # inside one stored block
    await vfs.write(fh, 20, b"new!")  # chunk 0 is dirty again
    dirty = await vfs.read_buffer(fh, 10, 100)
    assert not isinstance(dirty, memoryview)
    await vfs.write(fh, 30, b"LATER")
    assert bytes(dirty) == data[10:20] + b"new!" + data[24:110]  # unchanged by the later write
    await vfs.release(fh)


async def test_close_flushes_in_the_background_and_inspection_waits_for_it(meta):
    """While running, close() hands the flush of a chunked file to a background task (the host
    does not wait for RELEASE, so the requests behind it should not either); the chunk-map
    xattr waits for that flush, so it always shows stored blocks for a closed file."""
    blocks = CountingBlocks()
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE, versioning=True)
    data = os.urandom(3 * CS)
    async with vfs.running():
        fh, ino = await new_file(vfs)
        await vfs.write(fh, CS, data[CS:])  # out of order: no write-behind
        await vfs.write(fh, 0, data[:CS])
        await vfs.release(fh)
        assert blocks.writes == []  # not flushed by release itself
        text = (await vfs.getxattr(ino, b"user.vfs.chunks")).decode()
        assert len(blocks.writes) == 3  # the xattr waited for the background flush
        assert "dirty" not in text and block_key(data[:CS]) in text
        await vfs.settle()  # nothing left: returns at once
        assert await read_all(vfs, ino) == data


@pytest.mark.allow_log_warnings  # provokes the errors it checks
async def test_writes_to_a_full_store_fail_without_taking_more_memory(meta):
    """Once the buffer is over its limit and the store is full, a write gives ENOSPC and
    changes nothing: dirty data stays bounded however long the writer keeps trying."""
    vfs = ChunkedVFS(meta, FullBlocks(), chunk_size=CS, inline_threshold=INLINE, cache_bytes=4 * CS)
    fh, ino = await new_file(vfs)
    accepted = 0
    failures = 0
    for off in range(0, 64 * CS, CS):
        try:
            accepted += await vfs.write(fh, off, b"z" * CS)
        except KernelError as err:
            assert err.code == "ENOSPC"
            failures += 1
    assert failures > 50 and accepted <= 6 * CS
    assert vfs.buffer.total == accepted  # every accepted byte is still there, nothing more
    assert (await vfs.getattr(ino)).size == accepted
    assert await read_all(vfs, ino) == b"z" * accepted


async def test_a_sized_memory_filesystem_is_like_tmpfs():
    """shm_vfs: ENOSPC past its size, df shows the size and the inode limit, and the
    space comes back when files are removed."""
    from vfsfuse.storage.store import shm_vfs

    vfs = shm_vfs(1 << 20)
    async with vfs.running():
        st = await vfs.statfs()
        assert st.blocks * st.block_size == 1 << 20 and st.files == 1024
        fh, ino = await new_file(vfs, name=b"big")
        written = 0
        with pytest.raises(KernelError) as err:
            for _ in range(64):
                written += await vfs.write(fh, written, os.urandom(64 << 10))
                await vfs.fsync(fh)
        assert err.value.code == "ENOSPC"
        assert written == (1 << 20) + (64 << 10)  # the last write was taken (buffered), its fsync failed
        vfs._statfs_cache = None  # statfs is cached for a second
        assert (await vfs.statfs()).blocks_free * 4096 < 64 << 10
        await vfs.release(fh)
        await vfs.unlink(1, b"big")
        await vfs.sync()
        vfs._statfs_cache = None
        assert (await vfs.statfs()).blocks_free * 4096 == 1 << 20
        fh, ino = await new_file(vfs, name=b"again", data=b"x" * (512 << 10))
        await vfs.fsync(fh)
        assert await read_all(vfs, ino) == b"x" * (512 << 10)
        await vfs.release(fh)


async def test_forgotten_inodes_are_destroyed_together_a_moment_later(meta, blocks):
    """While running, forgets of unlinked inodes are gathered and destroyed in one metadata
    batch (rm -rf sends thousands); sync, settle and shutdown destroy what is pending."""
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    batches: list[list[int]] = []
    real = meta.delete_inodes
    meta.delete_inodes = lambda inos: (batches.append(list(inos)), real(inos))[1]
    async with vfs.running():
        inos = []
        for i in range(20):
            fh, ino = await new_file(vfs, name=b"f%d" % i, data=os.urandom(3 * CS))
            await vfs.release(fh)
            vfs.retain(ino)  # what a FUSE lookup does
            await vfs.unlink(1, b"f%d" % i)
            inos.append(ino)
        await vfs.sync()
        for ino in inos:
            await vfs.forget(ino)
        assert all(meta.get_inode(ino) is not None for ino in inos)  # not yet: gathered
        await trio.sleep(0.1)
        assert all(meta.get_inode(ino) is None for ino in inos)
        assert batches == [inos]  # one batch
        fh, late = await new_file(vfs, name=b"late", data=b"x" * 100)
        await vfs.release(fh)
        vfs.retain(late)
        await vfs.unlink(1, b"late")
        await vfs.forget(late)
    assert meta.get_inode(late) is None  # shutdown destroyed the pending one
    assert await stored_keys(blocks) == set()  # and their blocks went at the final commit


async def test_an_inode_referenced_again_before_its_batch_is_kept(meta, blocks):
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    async with vfs.running():
        fh, ino = await new_file(vfs, data=b"keep me")
        await vfs.release(fh)
        vfs.retain(ino)
        await vfs.unlink(1, b"f")
        await vfs.forget(ino)  # gathered for destruction...
        vfs.retain(ino)  # ...and referenced again before the batch ran
        await trio.sleep(0.1)
        assert meta.get_inode(ino) is not None
        await vfs.forget(ino)
        await vfs.settle()
        assert meta.get_inode(ino) is None


async def test_a_full_store_destroys_gathered_inodes_before_giving_up(meta):
    """A forgotten file waits a moment to be destroyed in a batch; a write that finds the
    store full does not wait for that: it destroys the gathered files, commits, retries."""
    blocks = MemoryBlockStore(capacity=8 * CS)
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    async with vfs.running():
        fh, old = await new_file(vfs, name=b"old", data=os.urandom(6 * CS))
        await vfs.fsync(fh)
        await vfs.release(fh)
        vfs.retain(old)
        await vfs.unlink(1, b"old")
        await vfs.forget(old)  # gathered, not destroyed yet
        fh, new = await new_file(vfs, name=b"new", data=os.urandom(6 * CS))
        await vfs.fsync(fh)  # needs old's space right now
        assert meta.get_inode(old) is None and blocks.used_bytes == 6 * CS
        await vfs.release(fh)


# -- write-behind ------------------------------------------------------------------

class GatedBlocks(CountingBlocks):
    """Block writes wait until the test opens the gate (a write-behind caught in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def write(self, key, data, *, durable=False):
        await self.gate.wait()
        await super().write(key, data, durable=durable)


def gated_vfs(meta) -> tuple[ChunkedVFS, GatedBlocks]:
    blocks = GatedBlocks()
    return ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE), blocks


async def start_storing_behind(vfs, size: int) -> tuple[int, int]:
    """A new file written sequentially: its full chunks' write-behind waits at the gate."""
    fh, ino = await new_file(vfs)
    await vfs.write(fh, 0, os.urandom(size))
    await trio.testing.wait_all_tasks_blocked()
    return fh, ino


async def test_sequential_writer_gets_full_chunks_stored_behind_it(meta, blocks):
    """Chunks a sequential writer has filled are stored while it goes on (no fsync, no
    close, no memory pressure); the chunk it is still filling stays in the buffer."""
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    data = os.urandom(4 * CS + 100)
    async with vfs.running():
        fh, ino = await new_file(vfs)
        for off in range(0, len(data), 1000):
            await vfs.write(fh, off, data[off:off + 1000])
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(blocks.writes) == sorted(block_key(data[i * CS:(i + 1) * CS]) for i in range(4))
        assert [k for _, _, _, k in vfs.chunk_map(ino)][:4] == [block_key(data[i * CS:(i + 1) * CS]) for i in range(4)]
        assert vfs.buffer.total == 100  # only the last, partial chunk is dirty
        assert await read_all(vfs, ino) == data
        await vfs.release(fh)


async def test_a_file_growing_out_of_inline_storage_gets_write_behind_from_its_first_chunk(meta, blocks):
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    data = os.urandom(2 * CS)
    async with vfs.running():
        fh, ino = await new_file(vfs)
        await vfs.write(fh, 0, data[:100])  # inline
        await vfs.write(fh, 100, data[100:200])
        await vfs.write(fh, 200, data[200:])  # moves to chunks and fills both
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(blocks.writes) == sorted([block_key(data[:CS]), block_key(data[CS:])])
        await vfs.release(fh)


async def test_out_of_order_writer_gets_no_write_behind(meta, blocks):
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    async with vfs.running():
        fh, ino = await new_file(vfs)
        await vfs.write(fh, 2 * CS, os.urandom(CS))
        await vfs.write(fh, 0, os.urandom(CS))
        await trio.testing.wait_all_tasks_blocked()
        assert blocks.writes == []
        assert vfs.buffer.total == 2 * CS
        await vfs.release(fh)


async def test_rewrite_while_a_chunk_is_stored_behind_keeps_the_new_bytes(meta):
    """A write to a chunk whose block is being written copies the chunk first: the block
    keeps the bytes it is named after, the file gets the new bytes, and the block nobody
    references in the end is deleted at the next commit."""
    vfs, blocks = gated_vfs(meta)
    first = os.urandom(CS)
    async with vfs.running():
        fh, ino = await new_file(vfs)
        await vfs.write(fh, 0, first)
        await trio.testing.wait_all_tasks_blocked()  # the write-behind waits at the gate
        await vfs.write(fh, 10, b"NEW")
        blocks.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        expected = first[:10] + b"NEW" + first[13:]
        assert blocks.writes[0] == block_key(first)
        assert await blocks.read(block_key(first)) == first  # the bytes it is named after
        assert await read_all(vfs, ino) == expected
        await vfs.fsync(fh)
        assert [k for _, _, _, k in vfs.chunk_map(ino)] == [block_key(expected)]
        assert await stored_keys(blocks) == {block_key(expected)}  # the stale block went
        await vfs.release(fh)


async def test_truncate_while_a_chunk_is_stored_behind_does_not_bring_it_back(meta):
    vfs, blocks = gated_vfs(meta)
    async with vfs.running():
        fh, ino = await start_storing_behind(vfs, 2 * CS)
        await vfs.setattr(ino, SetAttr(size=CS // 2))
        await vfs.setattr(ino, SetAttr(size=3 * CS))  # the old bytes must not show through
        blocks.gate.set()
        await vfs.fsync(fh)
        got = await read_all(vfs, ino)
        assert len(got) == 3 * CS and got[CS // 2:] == bytes(3 * CS - CS // 2)
        assert await stored_keys(blocks) == {k for _, _, _, k in vfs.chunk_map(ino)}
        await vfs.release(fh)


async def test_fsync_waits_for_the_write_behind_in_flight(meta):
    vfs, blocks = gated_vfs(meta)
    data = os.urandom(CS)
    done = []
    async with vfs.running():
        fh, ino = await new_file(vfs)
        await vfs.write(fh, 0, data)

        async def fsync() -> None:
            await vfs.fsync(fh)
            done.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fsync)
            await trio.testing.wait_all_tasks_blocked()
            assert done == [] and blocks.writes == []
            blocks.gate.set()
        assert done == [True] and blocks.writes == [block_key(data)]  # stored once, not twice
        assert [k for _, _, _, k in vfs.chunk_map(ino)] == [block_key(data)]
        await vfs.release(fh)


async def test_file_removed_while_stored_behind_leaves_no_block(meta):
    vfs, blocks = gated_vfs(meta)
    async with vfs.running():
        fh, ino = await start_storing_behind(vfs, 2 * CS)
        await vfs.unlink(1, b"f")
        await vfs.release(fh)  # the last reference: destroyed now
        blocks.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        await vfs.sync()
        assert len(blocks.writes) == 2 and await stored_keys(blocks) == set()


# -- a full disk under the metadata database ----------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs holding a store: a disk that fills in a second."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("commit_every", [0, 200])
def test_small_files_filling_the_disk_get_enospc_and_every_accepted_one_survives(small_disk, commit_every):
    """Small files live in the metadata database.  Filling the disk with them (with or
    without commits in between) ends in ENOSPC while the commit still fits, so SQLite never
    rolls the group back: every file the writer was told it made is there after reopening,
    and what is kept for commits is still free afterwards."""
    from blockstores.host import metadata_reserve

    store_dir = str(small_disk / "store")
    create_store(store_dir)
    payload = os.urandom(3000)
    made: list[bytes] = []

    async def fill() -> None:
        store = open_store(store_dir)
        vfs = store.vfs
        with pytest.raises(KernelError) as err:
            for i in range(100_000):
                name = b"f%05d" % i
                fh, _ = await vfs.create(1, name, 0o644, RW | os.O_CREAT)
                made.append(name)
                await vfs.write(fh, 0, payload)
                await vfs.release(fh)
                if commit_every and i % commit_every == 0:
                    await vfs.sync()
        assert err.value.code == "ENOSPC" and "kept for metadata" in str(err.value)
        await vfs.sync()  # the commit fits: no EIO, nothing rolled back
        await vfs.close()
        store.close()

    trio.run(fill)
    st = os.statvfs(small_disk)
    assert len(made) > 500 and st.f_bavail * st.f_frsize >= metadata_reserve(st) // 2

    async def check() -> None:
        store = open_store(store_dir)
        for name in made[:-1]:  # the last create may be the one whose write failed
            ino = (await store.vfs.lookup(1, name)).ino
            assert await read_all(store.vfs, ino) == payload
        await store.vfs.close()
        store.close()

    trio.run(check)


def test_statfs_does_not_offer_what_is_kept_for_metadata(small_disk):
    """df's "Avail" is what a writer can still use: the disk's free space minus the part
    block writes leave to the metadata database (ext4 shows its reserved blocks the same way)."""
    from blockstores.host import metadata_reserve

    store_dir = str(small_disk / "store")
    create_store(store_dir)

    async def main() -> None:
        store = open_store(store_dir)
        ours = await store.vfs.statfs()
        disk = os.statvfs(small_disk)
        assert ours.blocks == disk.f_blocks and ours.blocks_free == disk.f_bfree
        assert ours.blocks_avail == disk.f_bavail - metadata_reserve(disk) // disk.f_frsize
        await store.vfs.close()
        store.close()

    trio.run(main)


def test_block_writes_of_a_store_leave_its_wal_size_free(small_disk):
    store_dir = str(small_disk / "store")
    create_store(store_dir)

    async def main() -> None:
        store = open_store(store_dir)
        for i in range(50):
            fh, _ = await store.vfs.create(1, b"f%d" % i, 0o644, RW | os.O_CREAT)
            await store.vfs.write(fh, 0, os.urandom(2000))
            await store.vfs.release(fh)
        await store.vfs.sync()
        wal = os.path.getsize(os.path.join(store_dir, "meta.db-wal"))
        assert wal > 0 and store.blocks.also_keep_free() == wal
        await store.vfs.close()
        store.close()

    trio.run(main)


class FillableBlocks(MemoryBlockStore):
    """A memory store that is full until the test frees some space."""

    def __init__(self) -> None:
        super().__init__()
        self.full = True

    async def write(self, key, data, *, durable=False):
        if self.full:
            raise KernelError("ENOSPC", "block store is full")
        await super().write(key, data, durable=durable)


async def test_write_behind_on_a_full_store_keeps_the_chunks_for_fsync_to_report(meta):
    """A write-behind that meets ENOSPC says nothing to the writer (it was not asked);
    the chunks stay dirty, readable and writable, fsync reports ENOSPC, and once there is
    room the next fsync stores what the file holds."""
    blocks = FillableBlocks()
    vfs = ChunkedVFS(meta, blocks, chunk_size=CS, inline_threshold=INLINE)
    data = bytearray(os.urandom(3 * CS))
    async with vfs.running():
        fh, ino = await new_file(vfs, data=bytes(data))
        await trio.testing.wait_all_tasks_blocked()  # the write-behind has failed by now
        assert await vfs.read(fh, 0, 3 * CS) == data
        with pytest.raises(KernelError) as err:
            await vfs.fsync(fh)
        assert err.value.code == "ENOSPC"
        await vfs.write(fh, 5, b"still writable")
        data[5:19] = b"still writable"
        blocks.full = False
        await vfs.fsync(fh)
        assert [k for _, _, _, k in vfs.chunk_map(ino)] == [block_key(data[i:i + CS]) for i in range(0, 3 * CS, CS)]
        assert await read_all(vfs, ino) == data
        await vfs.release(fh)
