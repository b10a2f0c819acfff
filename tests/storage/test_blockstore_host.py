"""Host block store behaviour that only a real directory has: layout, atomicity, host errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import trio
import xxhash

import blockstores.host as host_module
from blockstores import HostBlockStore
from kernel.errors import KernelError
from tests.conformance.block_store_suite import INVALID_KEYS, expect_code, make_data
from tests.paths import REPO

MIB = 1024 * 1024


@pytest.fixture
def base(tmp_path) -> Path:
    return tmp_path / "blocks"


@pytest.fixture
def host(base) -> HostBlockStore:
    return HostBlockStore(base)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir())


def temp_files(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.startswith(".tmp.")]


async def listed(store) -> list[str]:
    async with contextlib.aclosing(store.list_keys()) as keys:
        return [key async for key in keys]


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run *code* in a fresh interpreter that can import the project."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


# -- layout ------------------------------------------------------------------------------------


async def test_layout_is_sharded_plain_files_named_by_their_hash(host, base):
    blocks = {}
    for i in range(20):
        data = os.urandom(1000 + i * 37)
        key = xxhash.xxh3_128_hexdigest(data)
        blocks[key] = data
        await host.write(key, data)
    files = all_files(base)
    assert len(files) == len(blocks)
    for path in files:
        key = path.name
        assert path.relative_to(base).parts == (key[:2], key[2:4], key)
        assert host.path_for(key) == str(path)
        raw = path.read_bytes()
        assert raw == blocks[key]
        assert xxhash.xxh3_128_hexdigest(raw) == key
    xxhsum = shutil.which("xxhsum")
    if xxhsum:  # the real tool agrees with the file names
        out = subprocess.run([xxhsum, "-H128", *map(str, files)], capture_output=True, text=True, check=True)
        for line, path in zip(out.stdout.splitlines(), files):
            assert path.name in line.split()[0]


async def test_short_and_dotted_keys_are_padded_into_safe_shards(host, base):
    expected = {"x": "x_/__/x", "ab": "ab/__/ab", "abc": "ab/c_/abc", "a.b.c": "a_/b_/a.b.c", "ab..z": "ab/__/ab..z"}
    for key, rel in expected.items():
        await host.write(key, key.encode())
        assert host.path_for(key) == str(base / rel)
        assert (base / rel).read_bytes() == key.encode()
    assert sorted(await listed(host)) == sorted(expected)
    # no shard directory is hidden, "." or ".."
    for path in base.rglob("*"):
        if path.is_dir():
            assert not path.name.startswith(".")


def test_base_dir_is_created(tmp_path):
    HostBlockStore(tmp_path / "a" / "b" / "c")
    assert (tmp_path / "a" / "b" / "c").is_dir()


async def test_blocks_survive_reopening(host, base):
    await host.write("persist", b"still here")
    again = HostBlockStore(base)
    assert await again.read("persist") == b"still here"
    assert await listed(again) == ["persist"]


async def test_invalid_keys_are_einval_and_create_nothing(tmp_path, host, base):
    await host.write("ok", b"1")
    for key in INVALID_KEYS + ["../../escape", "..\\escape", "/tmp/escape"]:
        with expect_code("EINVAL"):
            host.path_for(key)
        with expect_code("EINVAL"):
            await host.write(key, b"x")
        with expect_code("EINVAL"):
            await host.copy("ok", key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks"]
    assert [p.relative_to(base) for p in all_files(base)] == [Path("ok/__/ok")]


async def test_list_keys_skips_temp_stray_and_misplaced_files(host, base):
    await host.write("abcd1234", b"real")
    shard = base / "ab" / "cd"
    (shard / ".tmp.abcd9999.1-1").write_bytes(b"half")
    (base / "README").write_text("not a block")
    (base / "zz" / "zz").mkdir(parents=True)
    (base / "zz" / "zz" / "abcd5678").write_bytes(b"wrong shard")
    (shard / "bad name").write_bytes(b"invalid key")
    (shard / "abcdlink").symlink_to(shard / "abcd1234")
    assert await listed(host) == ["abcd1234"]


async def test_list_keys_streams_in_batches(host, monkeypatch):
    for i in range(40):
        await host.write(f"k{i:02d}", b"v")
    monkeypatch.setattr(host_module, "_LIST_BATCH", 4)
    produced = 0
    walk = host._walk_keys

    def counting_walk():
        nonlocal produced
        for key in walk():
            produced += 1
            yield key

    monkeypatch.setattr(host, "_walk_keys", counting_walk)
    async with contextlib.aclosing(host.list_keys()) as keys:
        first = await keys.__anext__()
        assert first.startswith("k") and produced == 4  # one batch, not the whole store
    assert len(await listed(host)) == 40


# -- atomicity and crashes ------------------------------------------------------------------------

CRASH_CHILD = """
import os, sys, trio
import blockstores.host
from blockstores import HostBlockStore
store = HostBlockStore(sys.argv[1])
os.replace = lambda *args, **kw: os._exit(17)   # die between temp write and rename
trio.run(store.write, "victim", b"N" * 300000)
"""


async def test_crash_between_temp_write_and_rename_leaves_only_a_temp_file(host, base):
    await host.write("victim", b"old contents")
    child = await trio.to_thread.run_sync(run_child, CRASH_CHILD, str(base))
    assert child.returncode == 17, child.stderr
    assert await host.read("victim") == b"old contents"
    temps = temp_files(base)
    assert len(temps) == 1 and temps[0].parent == Path(host.path_for("victim")).parent
    assert temps[0].read_bytes() == b"N" * 300000
    assert await listed(host) == ["victim"]
    assert await host.cleanup_temp_files() == 1
    assert temp_files(base) == []
    assert await host.read("victim") == b"old contents"


async def test_cleanup_temp_files_can_spare_recent_ones(host, base):
    await host.write("abcdef", b"x")
    shard = base / "ab" / "cd"
    old, new = shard / ".tmp.abcdef.1-1", shard / ".tmp.abcdef.1-2"
    old.write_bytes(b"o")
    new.write_bytes(b"n")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert await host.cleanup_temp_files(older_than=600) == 1
    assert temp_files(base) == [new]
    assert await host.cleanup_temp_files() == 1
    assert await host.read("abcdef") == b"x"


async def test_concurrent_writers_of_one_key_never_expose_a_partial_block(host, base):
    size = MIB
    payloads = [bytes([fill]) * size for fill in range(1, 7)]
    bad: list[str] = []
    done = trio.Event()

    async def writer(data: bytes) -> None:
        for _ in range(15):
            await host.write("hot", data)

    async def reader() -> None:
        while not done.is_set():
            try:
                got = await host.read("hot")
            except KernelError as err:  # only before the first write lands
                if err.code != "ENOENT":
                    bad.append(str(err))
                continue
            if len(got) != size or got.count(got[:1]) != size:
                bad.append(f"partial or mixed block of {len(got)} bytes")
            part = await host.read_range("hot", size - 10, 100)
            if len(part) != 10:
                bad.append(f"short range {len(part)}")

    async with trio.open_nursery() as outer:
        for _ in range(3):
            outer.start_soon(reader)
        async with trio.open_nursery() as writers:
            for data in payloads:
                writers.start_soon(writer, data)
        done.set()
    assert bad == []
    assert await host.read("hot") in payloads
    assert temp_files(base) == []


async def test_copy_onto_an_earlier_copy_leaves_no_temp_file(host, base):
    await host.write("src", b"payload")
    await host.copy("src", "dst")
    await host.copy("src", "dst")  # dst is already the same inode: rename is a no-op
    await host.copy("dst", "dst")
    assert temp_files(base) == []
    assert await host.read("dst") == b"payload"
    await host.write("src", b"changed")
    assert await host.read("dst") == b"payload"
    assert Path(host.path_for("dst")).read_bytes() == b"payload"


async def test_copy_falls_back_to_bytes_when_links_fail(host, base, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")  # EXDEV

    await host.write("src", make_data(5000))
    monkeypatch.setattr(host_module.os, "link", no_links)
    await host.copy("src", "fresh-dst")
    assert await host.read("fresh-dst") == make_data(5000)
    assert os.stat(host.path_for("fresh-dst")).st_ino != os.stat(host.path_for("src")).st_ino
    with expect_code("ENOENT"):
        await host.copy("missing", "dst2")
    assert temp_files(base) == []


async def test_durable_write_and_sync_create_valid_blocks(host, base):
    await host.write("abcdef01", make_data(1000), durable=True)
    await host.write("ffee0011", make_data(10))
    await host.sync(["abcdef01", "ffee0011", "gone"])
    assert (base / "ab" / "cd" / "abcdef01").read_bytes() == make_data(1000)
    assert await host.read("ffee0011") == make_data(10)


# -- host errors ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs, mounted for this test only."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


async def test_full_filesystem_gives_enospc_without_debris(tiny_fs):
    store = HostBlockStore(tiny_fs / "blocks")
    small = make_data(100_000, 5)
    await store.write("keep", small)
    with expect_code("ENOSPC") as info:
        await store.write("big", make_data(2 * MIB))
    assert isinstance(info.value, KernelError) and str(tiny_fs) not in str(info.value)
    assert "big" in str(info.value)
    with expect_code("ENOSPC"):  # replacing a block that does not fit keeps the old one whole
        await store.write("keep", make_data(2 * MIB, 6), durable=True)
    assert not await store.exists("big")
    assert await store.read("keep") == small
    assert temp_files(tiny_fs) == []
    assert await listed(store) == ["keep"]
    assert await store.cleanup_temp_files() == 0


EACCES_CHILD = """
import json, os, sys, trio
from blockstores import HostBlockStore
from kernel.errors import KernelError
store = HostBlockStore(sys.argv[1])
os.setgroups([]); os.setgid(65534); os.setuid(65534)

async def main():
    out = {}
    ops = {
        "write_new": lambda: store.write("newkey", b"data"),
        "overwrite": lambda: store.write("locked", b"evil"),
        "read": lambda: store.read("locked"),
        "read_range": lambda: store.read_range("locked", 0, 4),
        "delete": lambda: store.delete("locked"),
        "copy": lambda: store.copy("open", "copied"),
    }
    for name, op in ops.items():
        try:
            await op()
            out[name] = "ok"
        except KernelError as err:
            out[name] = str(err)
    print(json.dumps(out))

trio.run(main)
"""


async def test_unwritable_directory_gives_eacces_without_debris():
    # A world-traversable directory owned by root, used by an unprivileged child.
    parent = Path(tempfile.mkdtemp(prefix="vfsfuse-eacces-"))
    try:
        parent.chmod(0o755)
        store = HostBlockStore(parent / "blocks")
        await store.write("locked", b"secret")
        await store.write("open", b"public")
        os.chmod(store.path_for("locked"), 0o600)
        child = await trio.to_thread.run_sync(run_child, EACCES_CHILD, str(parent / "blocks"))
        assert child.returncode == 0, child.stderr
        result = json.loads(child.stdout)
        for name in ("write_new", "overwrite", "read", "read_range", "delete", "copy"):
            assert result[name].startswith("EACCES:"), (name, result[name])
            assert str(parent) not in result[name]
        assert await store.read("locked") == b"secret"
        assert stat.S_IMODE(os.stat(store.path_for("locked")).st_mode) == 0o600
        assert not await store.exists("newkey") and not await store.exists("copied")
        assert temp_files(parent) == []
    finally:
        shutil.rmtree(parent)


@pytest.fixture
def fsync_log(monkeypatch):
    """Record the path of every fsync'd descriptor, in order."""
    log: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        log.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(host_module.os, "fsync", recording_fsync)
    return log


async def test_sync_fsyncs_files_then_their_dirs_once_each(host, base, fsync_log):
    for key in ("abcd01", "abcd02", "a1"):
        await host.write(key, key.encode())
    assert fsync_log == []  # plain writes are not durable by themselves
    await host.sync(["abcd01", "abcd02", "a1", "abcd01", "deleted-meanwhile"])
    files = [str(base / "ab/cd/abcd01"), str(base / "ab/cd/abcd02"), str(base / "a1/__/a1")]
    dirs = [str(base / p) for p in ("ab/cd", "a1/__", "ab", "a1")] + [str(base)]
    assert sorted(fsync_log[:3]) == sorted(files)
    assert sorted(fsync_log[3:]) == sorted(dirs) and len(fsync_log) == 8
    assert fsync_log.index(str(base / "ab/cd")) < fsync_log.index(str(base / "ab")) < fsync_log.index(str(base))
    fsync_log.clear()
    await host.sync(["abcd01"])  # shard dirs are durable now: only the file and its dir
    assert fsync_log == [files[0], str(base / "ab/cd")]


async def test_durable_write_fsyncs_data_before_rename_and_dirs_after(host, base, fsync_log):
    await host.write("ffee01", b"x" * 1000, durable=True)
    assert fsync_log[0].startswith(str(base / "ff/ee/.tmp.ffee01."))
    assert fsync_log[1:] == [str(base / "ff/ee"), str(base / "ff"), str(base)]
    fsync_log.clear()
    await host.write("ffee02", b"y", durable=True)  # existing shard: file and its dir only
    assert len(fsync_log) == 2 and fsync_log[1] == str(base / "ff/ee")


async def test_sync_of_a_large_batch_uses_one_syncfs(host, base, fsync_log, monkeypatch):
    calls = []
    real = host_module._syncfs
    monkeypatch.setattr(host_module, "_syncfs", lambda fd: calls.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    keys = [f"{i:032x}" for i in range(host_module.SYNCFS_MIN_KEYS)]
    for k in keys:
        await host.write(k, k.encode())
    await host.sync(keys)
    assert calls == [str(base)] and fsync_log == []
    await host.sync(keys[:2])  # small batches keep the targeted per-file fsyncs
    assert calls == [str(base)] and len(fsync_log) >= 2


@pytest.mark.parametrize("size", [1 << 20, (4 << 20) - 1, (1 << 20) + 12345])
@pytest.mark.parametrize("where", ["disk", "tmpfs"])
def test_big_blocks_bypass_the_page_cache_where_possible(tmp_path, monkeypatch, size, where):
    """With direct_io, big blocks are written with O_DIRECT (padded, then truncated to their
    real size) where the filesystem allows it (tmpfs does since Linux 6.6; before, it refuses
    and gets an ordinary write plus the early writeback hint).  Either way the block file holds
    exactly the bytes, named by their hash."""
    import blockstores.host as host
    from vfsfuse.storage.blocks import block_key

    base = tmp_path if where == "disk" else Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        hints: list[int] = []
        monkeypatch.setattr(host, "_start_writeback", lambda fd: hints.append(fd))
        direct: list[bool] = []
        real_direct = host._write_direct
        monkeypatch.setattr(host, "_write_direct", lambda fd, data: direct.append(real_direct(fd, data))
                            or direct[-1])
        store = host.HostBlockStore(str(base / "blocks"), direct_io=True)
        big = os.urandom(size)
        small = b"small block"

        async def main():
            await store.write(block_key(big), big)
            await store.write(block_key(small), small)
            await store.write(block_key(big + b"!"), big + b"!")  # a second big one
            assert await store.read(block_key(big)) == big
            assert await store.read(block_key(big + b"!")) == big + b"!"

        trio.run(main)
        assert os.path.getsize(store.path_for(block_key(big))) == size
        if where == "disk" or direct[0]:  # tmpfs accepts O_DIRECT since Linux 6.6
            assert direct == [True, True] and hints == []
        else:
            assert direct == [False] and len(hints) == 2  # refused once, then not tried again
    finally:
        if where == "tmpfs":
            shutil.rmtree(base, ignore_errors=True)


def test_big_blocks_are_buffered_with_early_writeback_by_default(tmp_path, monkeypatch):
    import blockstores.host as host
    from vfsfuse.storage.blocks import block_key

    hints: list[int] = []
    monkeypatch.setattr(host, "_start_writeback", lambda fd: hints.append(fd))
    monkeypatch.setattr(host, "_write_direct", lambda fd, data: pytest.fail("O_DIRECT without direct_io"))
    store = host.HostBlockStore(str(tmp_path / "blocks"))
    big, small = os.urandom(1 << 20), b"small"

    async def main():
        await store.write(block_key(big), big)
        await store.write(block_key(small), small)
        assert await store.read(block_key(big)) == big

    trio.run(main)
    assert len(hints) == 1  # only the big block


def test_a_filesystem_without_direct_io_gets_ordinary_writes(tmp_path, monkeypatch):
    import fcntl

    import blockstores.host as host
    from vfsfuse.storage.blocks import block_key

    real_fcntl = fcntl.fcntl

    def refusing(fd, cmd, arg=0):
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(host.fcntl, "fcntl", refusing)
    hints: list[int] = []
    monkeypatch.setattr(host, "_start_writeback", lambda fd: hints.append(fd))
    store = host.HostBlockStore(str(tmp_path / "blocks"), direct_io=True)
    blocks = [os.urandom((1 << 20) + n) for n in (1, 2)]

    async def main():
        for b in blocks:
            await store.write(block_key(b), b)
        for b in blocks:
            assert await store.read(block_key(b)) == b

    trio.run(main)
    assert len(hints) == 2 and store._direct is False


def test_the_early_writeback_hint_is_a_valid_call_on_linux(tmp_path):
    import blockstores.host as host

    assert host._sync_file_range is not None  # found in libc
    fd = os.open(tmp_path / "probe", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"x" * 8192)
        assert host._sync_file_range(fd, 0, 0, host._SYNC_FILE_RANGE_WRITE) == 0
    finally:
        os.close(fd)


@pytest.mark.parametrize("mode", ["dontcache", "wait-and-drop", "keep"])
def test_drop_behind_writes_big_blocks_out_of_the_page_cache(tmp_path, monkeypatch, mode):
    """With drop_behind (what mounts use) a big block is out of the host page cache once it
    is on disk: written with RWF_DONTCACHE where the kernel has it, else written back and
    dropped by us (the store remembers a refusal).  Small blocks, and every block without
    drop_behind, stay cached.  The bytes are the same either way."""
    import blockstores.host as host
    from tests.pagecache import cached_pages
    from vfsfuse.storage.blocks import block_key

    calls: list[bool] = []
    real = host._write_uncached
    if mode == "wait-and-drop":  # a kernel without RWF_DONTCACHE (before Linux 6.14)
        monkeypatch.setattr(host, "_write_uncached", lambda fd, data: calls.append(False) or False)
    else:
        monkeypatch.setattr(host, "_write_uncached", lambda fd, data: calls.append(real(fd, data)) or calls[-1])
    store = HostBlockStore(str(tmp_path / "blocks"), drop_behind=mode != "keep")
    big, big2, small = os.urandom(2 << 20), os.urandom(1 << 20), os.urandom(8192)
    keys = [block_key(b) for b in (big, big2, small)]

    async def main():
        for data in (big, big2, small):
            await store.write(block_key(data), data)
        await store.sync(keys)  # on disk now

    trio.run(main)
    big_pages = cached_pages(store.path_for(keys[0])) + cached_pages(store.path_for(keys[1]))
    if mode == "keep":
        assert calls == []
        assert big_pages > 600  # of 768 (memory pressure could evict a few)
    else:
        assert big_pages == 0
        assert calls == ([True, True] if mode == "dontcache" else [False])  # a refusal is remembered
    assert cached_pages(store.path_for(keys[2])) == 2

    async def read_back():
        assert [await store.read(k) for k in keys] == [big, big2, small]

    trio.run(read_back)


def test_block_writes_leave_room_for_metadata(tmp_path):
    """The metadata database shares the filesystem: block writes stop with ENOSPC while a
    little space is still free, so a commit can still record what exists."""
    from kernel.errors import KernelError
    from vfsfuse.storage.blocks import block_key

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        store = HostBlockStore(str(disk / "blocks"))

        async def fill() -> int:
            n = 0
            with pytest.raises(KernelError) as err:
                while True:
                    data = os.urandom(256 << 10)
                    await store.write(block_key(data), data)
                    n += 1
            assert err.value.code == "ENOSPC" and "kept for metadata" in str(err.value)
            return n

        written = trio.run(fill)
        free = shutil.disk_usage(disk).free
        reserve = host_module.METADATA_RESERVE_MIN
        assert written >= 24 and reserve <= free < reserve + (512 << 10)
        assert [p.name for p in disk.rglob("*") if p.name.startswith(".")] == []  # no temp debris
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_block_writes_also_leave_what_the_vfs_asks_for(tmp_path):
    """The VFS asks block writes to leave the metadata WAL's size free as well (a checkpoint
    may copy that much into the database file)."""
    from kernel.errors import KernelError
    from vfsfuse.storage.blocks import block_key

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        store = HostBlockStore(str(disk / "blocks"))
        store.also_keep_free = lambda: 2 << 20

        async def fill() -> None:
            with pytest.raises(KernelError) as err:
                while True:
                    data = os.urandom(256 << 10)
                    await store.write(block_key(data), data)
            assert err.value.code == "ENOSPC"

        trio.run(fill)
        free = shutil.disk_usage(disk).free
        floor = (2 << 20) + host_module.METADATA_RESERVE_MIN
        assert floor <= free < floor + (512 << 10)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
