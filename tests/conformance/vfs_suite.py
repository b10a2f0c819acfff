"""Path-level VFS conformance suite: seed cases V1-V89 (seed-behaviour §10.3).

Usage: in a test module, define a ``vfs_env`` fixture that yields a fresh ``VfsEnv``
per test (build it from a ``VfsConfig``), then
``from tests.conformance.vfs_suite import *``.  Every ``test_v*`` function below then
runs against that fixture.  A case whose capability is off, or which needs a threshold
the config does not give, is skipped (V27 falls back to a 4 MiB chunk, like the seed).

Error checks accept the code as an attribute or as a ``"CODE:"`` message prefix (§0.1).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, Callable

import pytest
import trio

from kernel.errors import has_code
from kernel.pathvfs import PathVFS

MIB = 1024 * 1024


@dataclass(frozen=True)
class Capabilities:
    """The seed's twelve capability flags, all on by default."""

    symlinks: bool = True
    hard_links: bool = True
    permissions: bool = True
    utimes: bool = True
    truncate: bool = True
    pread: bool = True
    pwrite: bool = True
    mkdir: bool = True
    remove_dir: bool = True
    fsync: bool = True
    copy: bool = True
    read_dir_stat: bool = True


@dataclass
class VfsEnv:
    """What a factory hands a test: the path-level VFS, and when it has them, the
    inode-level filesystem and the stores under it (for storage-level assertions)."""

    vfs: PathVFS
    config: "VfsConfig"
    fs: Any = None
    metadata: Any = None
    blocks: Any = None


@dataclass
class VfsConfig:
    """One implementation to run the suite against.

    ``factory(tmp_path, **options)`` is an async context manager yielding a fresh
    ``VfsEnv``; options let storage tests ask for variants (e.g. ``versioning=True``).
    """

    name: str
    factory: Callable[..., AsyncContextManager[VfsEnv]]
    capabilities: Capabilities = field(default_factory=Capabilities)
    inline_threshold: int | None = None
    chunk_size: int | None = None

    def __str__(self) -> str:
        return self.name


def make_data(size: int, seed: int = 0x42) -> bytes:
    """The seed suites' test data: byte *i* is ``(seed + i) & 0xFF``."""
    pattern = bytes((seed + i) & 0xFF for i in range(256))
    return (pattern * (size // 256 + 1))[:size]


@contextlib.contextmanager
def expect_code(*codes: str):
    """Expect an exception carrying one of *codes*."""
    with pytest.raises(Exception) as info:
        yield info
    assert any(has_code(info.value, c) for c in codes), f"expected {codes}, got {info.value!r}"


def _need(env: VfsEnv, capability: str) -> None:
    if not getattr(env.config.capabilities, capability):
        pytest.skip(f"{env.config.name} lacks {capability}")


def _threshold(env: VfsEnv) -> int:
    if env.config.inline_threshold is None:
        pytest.skip("config gives no inline threshold")
    return env.config.inline_threshold


def _chunk(env: VfsEnv) -> int:
    if env.config.chunk_size is None:
        pytest.skip("config gives no chunk size")
    return env.config.chunk_size


# -- core (V1-V23) -------------------------------------------------------------------


async def test_v01_write_read_string(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/hello.txt", "hello world")
    assert (await v.read_file("/hello.txt")).decode() == "hello world"


async def test_v02_binary_round_trip(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/bin.dat", bytes([0, 1, 2, 255, 254, 253]))
    assert await v.read_file("/bin.dat") == bytes([0, 1, 2, 255, 254, 253])


async def test_v03_read_text_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/text.txt", "some text")
    assert await v.read_text_file("/text.txt") == "some text"


async def test_v04_write_creates_parents(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/a/b/c/deep.txt", "deep")
    assert await v.read_text_file("/a/b/c/deep.txt") == "deep"
    assert (await v.stat("/a/b")).is_directory


async def test_v05_overwrite(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/over.txt", "first")
    await v.write_file("/over.txt", "second")
    assert await v.read_text_file("/over.txt") == "second"


async def test_v06_read_missing_enoent(vfs_env):
    with expect_code("ENOENT"):
        await vfs_env.vfs.read_file("/missing.txt")


async def test_v07_read_directory(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/d/file.txt", "x")
    with expect_code("EISDIR", "ENOENT"):
        await v.read_file("/d")


async def test_v08_exists_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/e.txt", "x")
    assert await v.exists("/e.txt") is True


async def test_v09_exists_directory(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/edir/f.txt", "x")
    assert await v.exists("/edir") is True


async def test_v10_exists_missing(vfs_env):
    assert await vfs_env.vfs.exists("/nope") is False


async def test_v11_stat_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/s.txt", "data")
    st = await v.stat("/s.txt")
    assert st.is_directory is False and st.size == 4
    assert st.atime_ms > 0 and st.mtime_ms > 0 and st.ctime_ms > 0 and st.birthtime_ms > 0


async def test_v12_stat_size_counts_utf8_bytes(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/u.txt", "h\u00e9llo")
    assert (await v.stat("/u.txt")).size == 6


async def test_v13_stat_directory(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/sd/f.txt", "x")
    assert (await v.stat("/sd")).is_directory is True


async def test_v14_remove_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/rm.txt", "x")
    await v.remove_file("/rm.txt")
    assert await v.exists("/rm.txt") is False


async def test_v15_remove_missing_enoent(vfs_env):
    with expect_code("ENOENT"):
        await vfs_env.vfs.remove_file("/missing.txt")


async def test_v16_remove_file_on_directory(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/rd/f.txt", "x")
    with expect_code("EISDIR", "EPERM"):
        await v.remove_file("/rd")


async def test_v17_read_dir(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/ls/a.txt", "a")
    await v.write_file("/ls/b.txt", "b")
    names = await v.read_dir("/ls")
    assert "." not in names and ".." not in names
    assert sorted(names) == ["a.txt", "b.txt"]


async def test_v18_read_dir_with_types(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/typed/file.txt", "x")
    await v.write_file("/typed/sub/nested.txt", "y")
    entries = sorted(await v.read_dir_with_types("/typed"), key=lambda e: e.name)
    assert [e.name for e in entries] == ["file.txt", "sub"]
    assert entries[0].is_directory is False and entries[1].is_directory is True


async def test_v19_rename(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/old.txt", "content")
    await v.rename("/old.txt", "/new.txt")
    assert await v.exists("/old.txt") is False
    assert await v.read_text_file("/new.txt") == "content"


async def test_v20_rename_across_directories(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/a/old.txt", "moved")
    await v.write_file("/b/keep.txt", "k")
    await v.rename("/a/old.txt", "/b/new.txt")
    assert await v.exists("/a/old.txt") is False
    assert await v.read_text_file("/b/new.txt") == "moved"


async def test_v21_rename_replaces_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/src.txt", "new content")
    await v.write_file("/dst.txt", "old content")
    await v.rename("/src.txt", "/dst.txt")
    assert await v.read_text_file("/dst.txt") == "new content"
    assert await v.exists("/src.txt") is False


async def test_v22_rename_directory(vfs_env):
    _need(vfs_env, "remove_dir")
    v = vfs_env.vfs
    await v.write_file("/src/one.txt", "1")
    await v.write_file("/src/two.txt", "2")
    await v.rename("/src", "/dst")
    assert await v.exists("/src") is False
    assert await v.read_text_file("/dst/one.txt") == "1"
    assert await v.read_text_file("/dst/two.txt") == "2"


async def test_v23_realpath(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/real.txt", "x")
    assert await v.realpath("/real.txt") == "/real.txt"


# -- pwrite (V24-V31) ----------------------------------------------------------------


async def _patched(env, initial: bytes | str, offset: int, data: bytes | str) -> bytes:
    _need(env, "pwrite")
    v = env.vfs
    await v.write_file("/pw.txt", initial)
    await v.pwrite("/pw.txt", offset, data.encode() if isinstance(data, str) else data)
    return await v.read_file("/pw.txt")


async def test_v24_pwrite_at_start(vfs_env):
    assert await _patched(vfs_env, "abcdef", 0, "XY") == b"XYcdef"


async def test_v25_pwrite_in_middle(vfs_env):
    assert await _patched(vfs_env, "abcdef", 2, "XY") == b"abXYef"


async def test_v26_pwrite_past_end_fills_zeros(vfs_env):
    got = await _patched(vfs_env, "abc", 6, "XY")
    assert len(got) == 8 and got[3:6] == b"\0\0\0" and got[6:] == b"XY"


async def test_v27_pwrite_across_chunk_boundary(vfs_env):
    _need(vfs_env, "pwrite")
    cs = vfs_env.config.chunk_size or 4 * MIB
    v = vfs_env.vfs
    data = make_data(cs + 100)
    await v.write_file("/big.dat", data)
    patch = bytes([0xAA, 0xBB, 0xCC, 0xDD])
    await v.pwrite("/big.dat", cs - 2, patch)
    got = await v.read_file("/big.dat")
    assert len(got) == cs + 100
    assert got[cs - 2:cs + 2] == patch
    assert got[:cs - 2] == data[:cs - 2] and got[cs + 2:] == data[cs + 2:]


async def test_v28_pwrite_then_pread(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/pp.txt", "aaaaaaaaaa")
    await v.pwrite("/pp.txt", 3, b"XYZ")
    assert await v.pread("/pp.txt", 3, 3) == b"XYZ"


async def test_v29_pwrite_changes_nothing_else(vfs_env):
    assert await _patched(vfs_env, "abcdefghij", 4, "XX") == b"abcdXXghij"


async def test_v30_several_pwrites(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/dots.txt", "..........")
    await v.pwrite("/dots.txt", 0, b"AB")
    await v.pwrite("/dots.txt", 5, b"CD")
    await v.pwrite("/dots.txt", 8, b"EF")
    assert await v.read_file("/dots.txt") == b"AB...CD.EF"


async def test_v31_pwrite_into_empty_file(vfs_env):
    assert await _patched(vfs_env, "", 0, "hello") == b"hello"


# -- concurrency (V32-V34) -----------------------------------------------------------


async def test_v32_concurrent_pwrites_different_offsets(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/conc.dat", make_data(1024, 0))
    async with trio.open_nursery() as n:
        n.start_soon(v.pwrite, "/conc.dat", 100, bytes([0xAA] * 4))
        n.start_soon(v.pwrite, "/conc.dat", 500, bytes([0xBB] * 4))
    got = await v.read_file("/conc.dat")
    assert got[100:104] == bytes([0xAA] * 4) and got[500:504] == bytes([0xBB] * 4)
    assert len(got) == 1024


async def test_v33_concurrent_pwrites_same_offset_do_not_mix(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/same.dat", make_data(256, 0))
    async with trio.open_nursery() as n:
        n.start_soon(v.pwrite, "/same.dat", 50, bytes([0xAA] * 4))
        n.start_soon(v.pwrite, "/same.dat", 50, bytes([0xBB] * 4))
    got = await v.read_file("/same.dat")
    assert got[50:54] in (bytes([0xAA] * 4), bytes([0xBB] * 4))


async def test_v34_concurrent_pwrite_and_read(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/cr.txt", "hello world!!!")
    seen = []

    async def reader():
        seen.append(await v.read_file("/cr.txt"))

    async with trio.open_nursery() as n:
        n.start_soon(v.pwrite, "/cr.txt", 0, b"XXXXX")
        n.start_soon(reader)
    assert seen[0] in (b"hello world!!!", b"XXXXX world!!!")
    assert await v.read_file("/cr.txt") == b"XXXXX world!!!"


# -- symlinks (V35-V42) --------------------------------------------------------------


async def test_v35_readlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/target.txt", "target data")
    await v.symlink("/target.txt", "/link.txt")
    assert await v.readlink("/link.txt") == "/target.txt"


async def test_v36_read_through_symlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/target.txt", "target data")
    await v.symlink("/target.txt", "/link.txt")
    assert await v.read_text_file("/link.txt") == "target data"


async def test_v37_lstat_symlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/target.txt", "target data")
    await v.symlink("/target.txt", "/link.txt")
    assert (await v.lstat("/link.txt")).is_symbolic_link is True


async def test_v38_stat_follows_symlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/target.txt", "target data")
    await v.symlink("/target.txt", "/link.txt")
    st = await v.stat("/link.txt")
    assert st.is_symbolic_link is False and st.size == 11


async def test_v39_dangling_symlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.symlink("/nonexistent-target.txt", "/dangling.txt")
    assert (await v.lstat("/dangling.txt")).is_symbolic_link is True
    with expect_code("ENOENT"):
        await v.stat("/dangling.txt")


async def test_v40_symlink_loop(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.symlink("/loop-b.txt", "/loop-a.txt")
    await v.symlink("/loop-a.txt", "/loop-b.txt")
    with expect_code("ELOOP"):
        await v.read_file("/loop-a.txt")


async def test_v41_symlink_chain_over_40(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/chain-41", "end")
    for i in range(41):
        await v.symlink(f"/chain-{i + 1}", f"/chain-{i}")
    with expect_code("ELOOP"):
        await v.read_file("/chain-0")
    assert await v.read_text_file("/chain-1") == "end"  # exactly 40 hops is allowed


async def test_v42_remove_symlink_keeps_target(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/keep.txt", "kept")
    await v.symlink("/keep.txt", "/rmlink.txt")
    await v.remove_file("/rmlink.txt")
    assert await v.exists("/rmlink.txt") is False
    assert await v.read_text_file("/keep.txt") == "kept"


# -- hard links (V43-V47) ------------------------------------------------------------


async def test_v43_link_reads_same(vfs_env):
    _need(vfs_env, "hard_links")
    v = vfs_env.vfs
    await v.write_file("/original.txt", "shared")
    await v.link("/original.txt", "/linked.txt")
    assert await v.read_text_file("/linked.txt") == "shared"


async def test_v44_write_through_link(vfs_env):
    _need(vfs_env, "hard_links")
    v = vfs_env.vfs
    await v.write_file("/original.txt", "shared")
    await v.link("/original.txt", "/linked.txt")
    await v.write_file("/linked.txt", "updated")
    assert await v.read_text_file("/original.txt") == "updated"


async def test_v45_remove_original_keeps_link(vfs_env):
    _need(vfs_env, "hard_links")
    v = vfs_env.vfs
    await v.write_file("/original.txt", "data")
    await v.link("/original.txt", "/linked.txt")
    await v.remove_file("/original.txt")
    assert await v.read_text_file("/linked.txt") == "data"


async def test_v46_nlink_counts(vfs_env):
    _need(vfs_env, "hard_links")
    v = vfs_env.vfs
    await v.write_file("/n1.txt", "x")
    await v.link("/n1.txt", "/n2.txt")
    assert (await v.stat("/n1.txt")).nlink == 2
    await v.remove_file("/n1.txt")
    assert (await v.stat("/n2.txt")).nlink == 1
    await v.remove_file("/n2.txt")
    assert await v.exists("/n2.txt") is False


async def test_v47_link_directory_eperm(vfs_env):
    _need(vfs_env, "hard_links")
    v = vfs_env.vfs
    await v.mkdir("/linkdir")
    with expect_code("EPERM"):
        await v.link("/linkdir", "/linkdir2")


# -- truncate (V48-V53) --------------------------------------------------------------


async def test_v48_truncate_shrink(vfs_env):
    _need(vfs_env, "truncate")
    v = vfs_env.vfs
    await v.write_file("/t.txt", "hello world")
    await v.truncate("/t.txt", 5)
    assert await v.read_file("/t.txt") == b"hello"


async def test_v49_truncate_to_zero(vfs_env):
    _need(vfs_env, "truncate")
    v = vfs_env.vfs
    await v.write_file("/t0.txt", "hello world")
    await v.truncate("/t0.txt", 0)
    assert await v.read_file("/t0.txt") == b""
    assert (await v.stat("/t0.txt")).size == 0


async def test_v50_truncate_grow(vfs_env):
    _need(vfs_env, "truncate")
    v = vfs_env.vfs
    await v.write_file("/tg.txt", "abc")
    await v.truncate("/tg.txt", 6)
    assert await v.read_file("/tg.txt") == b"abc\0\0\0"


async def test_v51_truncate_to_exact_threshold(vfs_env):
    _need(vfs_env, "truncate")
    th = _threshold(vfs_env)
    v = vfs_env.vfs
    await v.write_file("/tt.dat", make_data(th + 100))
    await v.truncate("/tt.dat", th)
    assert (await v.stat("/tt.dat")).size == th
    assert len(await v.read_file("/tt.dat")) == th


async def test_v52_truncate_grow_promotes(vfs_env):
    _need(vfs_env, "truncate")
    th = _threshold(vfs_env)
    v = vfs_env.vfs
    data = make_data(th)
    await v.write_file("/tp.dat", data)
    await v.truncate("/tp.dat", th + 100)
    got = await v.read_file("/tp.dat")
    assert (await v.stat("/tp.dat")).size == th + 100
    assert got[:th] == data and got[th:] == bytes(100)


async def test_v53_truncate_shrink_demotes(vfs_env):
    _need(vfs_env, "truncate")
    th = _threshold(vfs_env)
    v = vfs_env.vfs
    data = make_data(th + 100)
    await v.write_file("/td.dat", data)
    target = max(0, th - 10)  # a store with nothing inline (threshold 0) demotes only at 0
    await v.truncate("/td.dat", target)
    assert (await v.stat("/td.dat")).size == target
    assert await v.read_file("/td.dat") == data[:target]


# -- permissions (V54-V56) -----------------------------------------------------------


async def test_v54_chmod(vfs_env):
    _need(vfs_env, "permissions")
    v = vfs_env.vfs
    await v.write_file("/perm.txt", "x")
    await v.chmod("/perm.txt", 0o644)
    assert (await v.stat("/perm.txt")).mode & 0o777 == 0o644


async def test_v55_chmod_keeps_type_bits(vfs_env):
    _need(vfs_env, "permissions")
    v = vfs_env.vfs
    await v.write_file("/perm2.txt", "x")
    before = (await v.stat("/perm2.txt")).mode & 0o170000
    await v.chmod("/perm2.txt", 0o755)
    st = await v.stat("/perm2.txt")
    if before:
        assert st.mode & 0o170000 == before
    assert st.mode & 0o777 == 0o755


async def test_v56_chown(vfs_env):
    _need(vfs_env, "permissions")
    v = vfs_env.vfs
    await v.write_file("/own.txt", "x")
    await v.chown("/own.txt", 1000, 2000)
    st = await v.stat("/own.txt")
    assert (st.uid, st.gid) == (1000, 2000)


# -- utimes (V57) ----------------------------------------------------------------------


async def test_v57_utimes_seconds(vfs_env):
    _need(vfs_env, "utimes")
    v = vfs_env.vfs
    await v.write_file("/times.txt", "x")
    await v.utimes("/times.txt", 1700000000, 1710000000)
    st = await v.stat("/times.txt")
    assert st.atime_ms == 1700000000 * 1000 and st.mtime_ms == 1710000000 * 1000


# -- mkdir (V58-V60) -----------------------------------------------------------------


async def test_v58_create_dir(vfs_env):
    _need(vfs_env, "mkdir")
    v = vfs_env.vfs
    await v.create_dir("/newdir")
    assert (await v.stat("/newdir")).is_directory


async def test_v59_mkdir_recursive(vfs_env):
    _need(vfs_env, "mkdir")
    v = vfs_env.vfs
    await v.mkdir("/p/q/r", recursive=True)
    for p in ("/p", "/p/q", "/p/q/r"):
        assert (await v.stat(p)).is_directory


async def test_v60_create_dir_existing_eexist(vfs_env):
    _need(vfs_env, "mkdir")
    v = vfs_env.vfs
    await v.mkdir("/exists/already", recursive=True)
    with expect_code("EEXIST"):
        await v.create_dir("/exists/already")


# -- removeDir (V61-V62) -------------------------------------------------------------


async def test_v61_remove_empty_dir(vfs_env):
    _need(vfs_env, "remove_dir")
    v = vfs_env.vfs
    await v.mkdir("/empty")
    await v.remove_dir("/empty")
    assert await v.exists("/empty") is False


async def test_v62_remove_non_empty_dir(vfs_env):
    _need(vfs_env, "remove_dir")
    v = vfs_env.vfs
    await v.write_file("/full/f.txt", "x")
    with expect_code("ENOTEMPTY", "EPERM"):
        await v.remove_dir("/full")


# -- pread (V63-V64) -----------------------------------------------------------------


async def test_v63_pread_middle(vfs_env):
    _need(vfs_env, "pread")
    v = vfs_env.vfs
    await v.write_file("/pr.txt", "abcdefghij")
    assert await v.pread("/pr.txt", 3, 4) == b"defg"


async def test_v64_pread_whole(vfs_env):
    _need(vfs_env, "pread")
    v = vfs_env.vfs
    await v.write_file("/pr2.txt", "hello")
    assert await v.pread("/pr2.txt", 0, 5) == b"hello"


# -- fsync (V65-V67) -----------------------------------------------------------------


async def test_v65_fsync_then_read(vfs_env):
    _need(vfs_env, "fsync")
    v = vfs_env.vfs
    await v.write_file("/fs.txt", "original")
    await v.pwrite("/fs.txt", 0, b"modified")
    await v.fsync("/fs.txt")
    assert await v.read_text_file("/fs.txt") == "modified"


async def test_v66_read_sees_unflushed(vfs_env):
    _need(vfs_env, "fsync")
    v = vfs_env.vfs
    await v.write_file("/fb.txt", "original")
    await v.pwrite("/fb.txt", 0, b"buffered")
    assert await v.read_text_file("/fb.txt") == "buffered"


async def test_v67_fsync_missing_is_silent(vfs_env):
    _need(vfs_env, "fsync")
    assert await vfs_env.vfs.fsync("/no-such-file.txt") is None


# -- copy (V68-V70) --------------------------------------------------------------------


async def test_v68_copy(vfs_env):
    _need(vfs_env, "copy")
    v = vfs_env.vfs
    data = make_data(1024)
    await v.write_file("/copysrc.dat", data)
    await v.copy("/copysrc.dat", "/copydst.dat")
    assert await v.read_file("/copydst.dat") == data


async def test_v69_copy_is_independent(vfs_env):
    _need(vfs_env, "copy")
    v = vfs_env.vfs
    await v.write_file("/orig.txt", "original")
    await v.copy("/orig.txt", "/copy.txt")
    await v.write_file("/copy.txt", "changed")
    assert await v.read_text_file("/orig.txt") == "original"
    assert await v.read_text_file("/copy.txt") == "changed"


async def test_v70_copy_keeps_size(vfs_env):
    _need(vfs_env, "copy")
    v = vfs_env.vfs
    await v.write_file("/cs.txt", "some content")
    await v.chmod("/cs.txt", 0o644)
    await v.copy("/cs.txt", "/cd.txt")
    assert (await v.stat("/cd.txt")).size == (await v.stat("/cs.txt")).size


# -- readDirStat (V71-V72) -----------------------------------------------------------


async def test_v71_read_dir_stat_names(vfs_env):
    _need(vfs_env, "read_dir_stat")
    v = vfs_env.vfs
    await v.write_file("/rds/file.txt", "x")
    await v.mkdir("/rds/sub")
    names = sorted(e.name for e in await v.read_dir_stat("/rds"))
    assert names == sorted(await v.read_dir("/rds")) == ["file.txt", "sub"]


async def test_v72_read_dir_stat_fields(vfs_env):
    _need(vfs_env, "read_dir_stat")
    v = vfs_env.vfs
    await v.write_file("/rds2/a.txt", "abc")
    await v.mkdir("/rds2/dir")
    by_name = {e.name: e for e in await v.read_dir_stat("/rds2")}
    assert by_name["a.txt"].stat.size == 3 and by_name["a.txt"].is_directory is False
    assert by_name["dir"].is_directory is True and by_name["dir"].stat.is_directory is True


# -- edge cases (V73-V86) ------------------------------------------------------------


async def test_v73_empty_file(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/empty.txt", "")
    assert (await v.stat("/empty.txt")).size == 0
    assert await v.read_file("/empty.txt") == b""


async def test_v74_exact_threshold_round_trip(vfs_env):
    th = _threshold(vfs_env)
    v = vfs_env.vfs
    data = make_data(th)
    await v.write_file("/th.dat", data)
    assert await v.read_file("/th.dat") == data
    assert (await v.stat("/th.dat")).size == th


async def test_v75_threshold_plus_one_round_trip(vfs_env):
    th = _threshold(vfs_env)
    v = vfs_env.vfs
    data = make_data(th + 1)
    await v.write_file("/th1.dat", data)
    assert await v.read_file("/th1.dat") == data
    assert (await v.stat("/th1.dat")).size == th + 1


async def test_v76_exact_chunk_round_trip(vfs_env):
    cs = _chunk(vfs_env)
    v = vfs_env.vfs
    data = make_data(cs)
    await v.write_file("/cs.dat", data)
    assert await v.read_file("/cs.dat") == data


async def test_v77_chunk_plus_one_round_trip(vfs_env):
    cs = _chunk(vfs_env)
    v = vfs_env.vfs
    data = make_data(cs + 1)
    await v.write_file("/cs1.dat", data)
    assert await v.read_file("/cs1.dat") == data
    assert (await v.stat("/cs1.dat")).size == cs + 1


async def test_v78_pread_zero_length(vfs_env):
    _need(vfs_env, "pread")
    v = vfs_env.vfs
    await v.write_file("/z.txt", "hello")
    assert await v.pread("/z.txt", 0, 0) == b""


async def test_v79_pread_at_end(vfs_env):
    _need(vfs_env, "pread")
    v = vfs_env.vfs
    await v.write_file("/end.txt", "hello")
    assert await v.pread("/end.txt", 5, 10) == b""


async def test_v80_pread_past_end(vfs_env):
    _need(vfs_env, "pread")
    v = vfs_env.vfs
    await v.write_file("/past.txt", "hello")
    assert await v.pread("/past.txt", 100, 10) == b""


async def test_v81_write_empty_bytes(vfs_env):
    v = vfs_env.vfs
    await v.write_file("/eb.dat", b"")
    assert (await v.stat("/eb.dat")).size == 0
    assert len(await v.read_file("/eb.dat")) == 0


async def test_v82_name_of_255(vfs_env):
    v = vfs_env.vfs
    path = "/" + "a" * 255
    await v.write_file(path, "long name")
    assert await v.read_text_file(path) == "long name"


async def test_v83_twenty_levels(vfs_env):
    v = vfs_env.vfs
    path = "/" + "/".join(f"d{i}" for i in range(20)) + "/deep.txt"
    await v.write_file(path, "deep")
    assert await v.read_text_file(path) == "deep"


async def test_v84_pwrite_missing_enoent(vfs_env):
    _need(vfs_env, "pwrite")
    with expect_code("ENOENT"):
        await vfs_env.vfs.pwrite("/missing.txt", 0, b"x")


async def test_v85_truncate_missing_enoent(vfs_env):
    _need(vfs_env, "truncate")
    with expect_code("ENOENT"):
        await vfs_env.vfs.truncate("/missing.txt", 0)


async def test_v86_stat_root(vfs_env):
    assert (await vfs_env.vfs.stat("/")).is_directory is True


# -- relative symlinks (V87-V88) -------------------------------------------------------


async def test_v87_relative_symlink(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/dir/real.txt", "relative")
    await v.symlink("real.txt", "/dir/link.txt")
    assert await v.read_text_file("/dir/link.txt") == "relative"


async def test_v88_symlink_in_middle_of_path(vfs_env):
    _need(vfs_env, "symlinks")
    v = vfs_env.vfs
    await v.write_file("/real-dir/file.txt", "through")
    await v.symlink("/real-dir", "/a")
    assert await v.read_text_file("/a/file.txt") == "through"


# -- concurrent rename + readFile (V89) ------------------------------------------------


async def test_v89_concurrent_rename_and_read(vfs_env):
    _need(vfs_env, "pwrite")
    v = vfs_env.vfs
    await v.write_file("/conc-rename.txt", "data before rename")
    outcome = []

    async def reader():
        try:
            outcome.append(await v.read_text_file("/conc-rename.txt"))
        except Exception as e:  # noqa: BLE001 - checked below
            outcome.append(e)

    async with trio.open_nursery() as n:
        n.start_soon(v.rename, "/conc-rename.txt", "/conc-renamed.txt")
        n.start_soon(reader)
    got = outcome[0]
    assert got == "data before rename" or has_code(got, "ENOENT"), repr(got)
    assert await v.read_text_file("/conc-renamed.txt") == "data before rename"


__all__ = [name for name in dir() if name.startswith("test_v")] + [
    "Capabilities", "VfsConfig", "VfsEnv", "make_data", "expect_code",
]
