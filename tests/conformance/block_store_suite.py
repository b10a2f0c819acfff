"""Block-store conformance suite: seed cases B1-B19 (seed-behaviour §10.1) plus our additions.

Usage: in a test module, define a ``store`` fixture that yields a fresh, empty
store per test, then ``from tests.conformance.block_store_suite import *``.
Every ``test_*`` function below then runs against that fixture. Copy cases
run only when the store has a ``copy`` method (the seed's ``copy`` capability).
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import xxhash

from blockstores.base import BlockStore
from kernel.errors import has_code

MIB = 1024 * 1024


def make_data(size: int, seed: int = 0x42) -> bytes:
    """The seed suites' test data: byte *i* is ``(seed + i) & 0xFF``."""
    pattern = bytes((seed + i) & 0xFF for i in range(256))
    return (pattern * (size // 256 + 1))[:size]


@contextlib.contextmanager
def expect_code(code: str):
    """Expect an exception carrying *code* (attribute or ``"CODE:"`` prefix, see §0.1)."""
    with pytest.raises(Exception) as info:
        yield info
    assert has_code(info.value, code), f"expected {code}, got {info.value!r}"


def _needs_copy(store) -> None:
    if not callable(getattr(store, "copy", None)):
        pytest.skip("store has no copy capability")


async def _keys(store) -> list[str]:
    async with contextlib.aclosing(store.list_keys()) as keys:
        return [key async for key in keys]


# -- B1-B3 write + read ----------------------------------------------------------------


async def test_b01_round_trip_small_data(store):
    data = make_data(64)
    await store.write("key1", data)
    assert await store.read("key1") == data


async def test_b02_round_trip_large_data(store):
    data = make_data(4 * MIB + 1, 0xAB)
    await store.write("large", data)
    got = await store.read("large")
    assert len(got) == len(data) and got == data


async def test_b03_write_overwrites_existing_key(store):
    await store.write("k", make_data(32, 0x11))
    second = make_data(64, 0x22)
    await store.write("k", second)
    got = await store.read("k")
    assert got == second and len(got) == 64


# -- B4-B10 read_range -----------------------------------------------------------------


async def test_b04_read_range_from_start(store):
    data = make_data(100)
    await store.write("key", data)
    assert await store.read_range("key", 0, 10) == data[:10]


async def test_b05_read_range_from_middle(store):
    data = make_data(100)
    await store.write("key", data)
    assert await store.read_range("key", 20, 30) == data[20:50]


async def test_b06_read_range_at_end(store):
    data = make_data(100)
    await store.write("key", data)
    assert await store.read_range("key", 90, 10) == data[90:100]


async def test_b07_short_read_beyond_block_size(store):
    data = make_data(50)
    await store.write("key", data)
    got = await store.read_range("key", 40, 100)
    assert got == data[40:50] and len(got) == 10


async def test_b08_read_range_nonexistent_key(store):
    with expect_code("ENOENT"):
        await store.read_range("missing", 0, 10)


async def test_b09_read_range_offset_at_block_size(store):
    await store.write("key", make_data(50))
    assert len(await store.read_range("key", 50, 10)) == 0


async def test_b10_read_range_zero_length(store):
    await store.write("key", make_data(50))
    assert len(await store.read_range("key", 0, 0)) == 0


# -- B11 read errors --------------------------------------------------------------------


async def test_b11_read_nonexistent_key(store):
    with expect_code("ENOENT") as info:
        await store.read("nonexistent")
    assert "nonexistent" in str(info.value)


# -- B12-B13 delete ----------------------------------------------------------------------


async def test_b12_delete_then_read_raises(store):
    await store.write("gone", make_data(16))
    await store.delete("gone")
    with expect_code("ENOENT"):
        await store.read("gone")


async def test_b13_delete_missing_is_noop(store):
    await store.delete("never-existed")
    assert not await store.exists("never-existed")


# -- B14-B16 delete_many -------------------------------------------------------------------


async def test_b14_delete_many_removes_only_listed(store):
    for key, seed in (("a", 1), ("b", 2), ("c", 3)):
        await store.write(key, make_data(8, seed))
    await store.delete_many(["a", "b"])
    for key in ("a", "b"):
        with expect_code("ENOENT"):
            await store.read(key)
    assert await store.read("c") == make_data(8, 3)


async def test_b15_delete_many_ignores_missing(store):
    await store.write("x", make_data(8))
    await store.delete_many(["x", "nonexistent1", "nonexistent2"])
    with expect_code("ENOENT"):
        await store.read("x")


async def test_b16_delete_many_empty(store):
    await store.write("keep", b"k")
    await store.delete_many([])
    assert await store.read("keep") == b"k"


# -- B17-B19 copy --------------------------------------------------------------------------


async def test_b17_copy_round_trip(store):
    _needs_copy(store)
    data = make_data(128, 0xCC)
    await store.write("src", data)
    await store.copy("src", "dst")
    assert await store.read("dst") == data
    assert await store.read("src") == data


async def test_b18_copy_is_independent(store):
    _needs_copy(store)
    original = make_data(64, 0xDD)
    await store.write("src", original)
    await store.copy("src", "dst")
    await store.write("src", make_data(32, 0xEE))
    assert await store.read("dst") == original
    assert await store.read("src") == make_data(32, 0xEE)
    await store.delete("src")
    assert await store.read("dst") == original


async def test_b19_copy_missing_source(store):
    _needs_copy(store)
    with expect_code("ENOENT"):
        await store.copy("missing", "dst")
    assert not await store.exists("dst")


# -- additions: protocol, exists, size, empty blocks -----------------------------------------


async def test_store_satisfies_protocol(store):
    assert isinstance(store, BlockStore)


async def test_exists_follows_write_and_delete(store):
    assert not await store.exists("e")
    await store.write("e", b"1")
    assert await store.exists("e")
    await store.delete("e")
    assert not await store.exists("e")


async def test_size(store):
    await store.write("s", make_data(1000))
    assert await store.size("s") == 1000
    await store.write("s", make_data(7))
    assert await store.size("s") == 7
    with expect_code("ENOENT"):
        await store.size("missing")


async def test_empty_block(store):
    await store.write("empty", b"")
    assert await store.exists("empty")
    assert await store.size("empty") == 0
    assert await store.read("empty") == b""
    assert await store.read_range("empty", 0, 10) == b""


async def test_overwrite_with_shorter_data_truncates(store):
    await store.write("k", make_data(5000, 1))
    await store.write("k", make_data(10, 2))
    assert await store.read("k") == make_data(10, 2)
    assert await store.read_range("k", 0, 5000) == make_data(10, 2)


async def test_read_range_far_past_end_and_whole_block(store):
    data = make_data(300)
    await store.write("k", data)
    assert await store.read_range("k", 10_000, 5) == b""
    assert await store.read_range("k", 0, 300) == data
    assert await store.read_range("k", 299, 1) == data[299:]


async def test_read_range_negative_arguments_are_einval(store):
    await store.write("k", b"abc")
    with expect_code("EINVAL"):
        await store.read_range("k", -1, 2)
    with expect_code("EINVAL"):
        await store.read_range("k", 0, -2)


async def test_read_returns_immutable_bytes(store):
    await store.write("k", b"abc")
    got = await store.read("k")
    assert type(got) is bytes
    assert type(await store.read_range("k", 1, 1)) is bytes


async def test_delete_then_write_again(store):
    await store.write("k", b"one")
    await store.delete("k")
    await store.write("k", b"two")
    assert await store.read("k") == b"two"


# -- additions: buffers --------------------------------------------------------------------------


async def test_write_accepts_bytearray_and_keeps_its_own_copy(store):
    buf = bytearray(make_data(100))
    await store.write("k", buf)
    buf[:] = b"\0" * 100
    assert await store.read("k") == make_data(100)


async def test_write_accepts_memoryview_slice_and_keeps_its_own_copy(store):
    backing = bytearray(make_data(1000, 7))
    await store.write("k", memoryview(backing)[100:300])
    backing[100:300] = b"\xff" * 200
    assert await store.read("k") == make_data(1000, 7)[100:300]
    assert await store.size("k") == 200


async def test_write_accepts_non_byte_memoryview(store):
    import array

    words = array.array("I", [0x01020304, 0x05060708])
    await store.write("k", memoryview(words))
    assert await store.read("k") == words.tobytes()


async def test_durable_write_round_trip(store):
    data = make_data(10_000, 9)
    await store.write("d", data, durable=True)
    await store.write("d", data[:10], durable=True)
    assert await store.read("d") == data[:10]


# -- additions: keys -------------------------------------------------------------------------------


async def test_content_keys_and_long_keys(store):
    data = make_data(4096, 3)
    key = xxhash.xxh3_128_hexdigest(data)
    await store.write(key, data)
    long_key = "k" * 200
    await store.write(long_key, b"long")
    assert await store.read(key) == data
    assert await store.read(long_key) == b"long"
    assert sorted(await _keys(store)) == sorted([key, long_key])


INVALID_KEYS = ["", ".", "..", ".hidden", "/abs", "a/b", "../up", "a\\b", "a\0b", "é", "a b", "x" * 201]


async def test_invalid_keys_are_einval(store):
    await store.write("ok", b"1")
    for key in INVALID_KEYS:
        for call in (
            lambda key=key: store.write(key, b"data"),
            lambda key=key: store.read(key),
            lambda key=key: store.read_range(key, 0, 1),
            lambda key=key: store.delete(key),
            lambda key=key: store.delete_many(["ok", key]),
            lambda key=key: store.exists(key),
            lambda key=key: store.size(key),
            lambda key=key: store.sync([key]),
        ):
            with expect_code("EINVAL"):
                await call()
        if callable(getattr(store, "copy", None)):
            with expect_code("EINVAL"):
                await store.copy("ok", key)
            with expect_code("EINVAL"):
                await store.copy(key, "ok2")
    # delete_many validates every key before deleting any
    assert await store.read("ok") == b"1"
    assert await _keys(store) == ["ok"]


# -- additions: list_keys ----------------------------------------------------------------------------


async def test_list_keys_empty_store(store):
    assert await _keys(store) == []


async def test_list_keys_returns_exactly_the_written_keys(store):
    written = {xxhash.xxh3_128_hexdigest(str(i).encode()) for i in range(300)}
    written |= {"a", "ab", "abc", "abcd", "a.b", "x-y_z", "A.9"}
    for key in written:
        await store.write(key, key.encode())
    await store.delete_many(["abc", "x-y_z"])
    written -= {"abc", "x-y_z"}
    listed = await _keys(store)
    assert len(listed) == len(set(listed)), "duplicates in list_keys"
    assert set(listed) == written


async def test_list_keys_can_stop_early(store):
    for i in range(50):
        await store.write(f"key{i:03d}", b"v")
    seen = []
    async with contextlib.aclosing(store.list_keys()) as keys:
        async for key in keys:
            seen.append(key)
            if len(seen) == 3:
                break
    assert len(seen) == 3 and set(seen) <= {f"key{i:03d}" for i in range(50)}
    assert len(await _keys(store)) == 50


async def test_list_keys_tolerates_writes_while_listing(store):
    for i in range(20):
        await store.write(f"old{i}", b"v")
    seen = set()
    async with contextlib.aclosing(store.list_keys()) as keys:
        async for key in keys:
            seen.add(key)
            await store.write(f"new-{key}", b"w")
    assert {f"old{i}" for i in range(20)} <= seen
    assert len(await _keys(store)) >= 40


# -- additions: sync and concurrency --------------------------------------------------------------


async def test_sync_written_deleted_and_no_keys(store):
    await store.write("s1", b"one")
    await store.write("s2", b"two")
    await store.write("s3", b"three")
    await store.delete("s3")
    await store.sync(["s1", "s2", "s1", "s3"])
    await store.sync([])
    assert await store.read("s1") == b"one" and await store.read("s2") == b"two"


async def test_concurrent_writes_of_distinct_keys(store):
    async def put(i: int) -> None:
        await store.write(f"c{i}", make_data(1000 + i, i))

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(put, i)
    for i in range(40):
        assert await store.read(f"c{i}") == make_data(1000 + i, i)


__all__ = [name for name in dir() if name.startswith("test_")] + ["make_data", "expect_code"]
