"""Random operation sequences: every block store must agree with a plain dict model."""

from __future__ import annotations

import contextlib
import tempfile

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockstores import HostBlockStore, MemoryBlockStore
from kernel.errors import KernelError

# Few keys, so operations collide; they cover padding, dots and shared shards.
KEYS = ["a", "ab", "abc", "abcd", "abcde", "a.b", "ab.-", "ff00", "ff01", "Z_9"]
key = st.sampled_from(KEYS)
blob = st.binary(max_size=300)
op = st.one_of(
    st.tuples(st.just("write"), key, blob),
    st.tuples(st.just("write_view"), key, blob),
    st.tuples(st.just("read"), key),
    st.tuples(st.just("read_range"), key, st.integers(0, 400), st.integers(0, 400)),
    st.tuples(st.just("delete"), key),
    st.tuples(st.just("delete_many"), st.lists(key, max_size=4)),
    st.tuples(st.just("copy"), key, key),
    st.tuples(st.just("exists"), key),
    st.tuples(st.just("size"), key),
    st.tuples(st.just("list"),),
    st.tuples(st.just("sync"), st.lists(key, max_size=4)),
)


def model_apply(model: dict[str, bytes], step: tuple):
    """What a correct store returns for *step* ("ENOENT" for a missing key)."""
    name, *args = step
    if name in ("write", "write_view"):
        model[args[0]] = bytes(args[1])
        return None
    if name == "read":
        return model.get(args[0], "ENOENT")
    if name == "read_range":
        k, off, length = args
        return model[k][off : off + length] if k in model else "ENOENT"
    if name == "delete":
        model.pop(args[0], None)
        return None
    if name == "delete_many":
        for k in args[0]:
            model.pop(k, None)
        return None
    if name == "copy":
        src, dst = args
        if src not in model:
            return "ENOENT"
        model[dst] = model[src]
        return None
    if name == "exists":
        return args[0] in model
    if name == "size":
        return len(model[args[0]]) if args[0] in model else "ENOENT"
    if name == "list":
        return sorted(model)
    return None  # sync


async def store_apply(store, step: tuple):
    name, *args = step
    try:
        if name == "write":
            return await store.write(args[0], args[1])
        if name == "write_view":
            buf = bytearray(args[1])
            result = await store.write(args[0], memoryview(buf))
            buf[:] = b"\0" * len(buf)  # must not leak into the store
            return result
        if name == "read":
            return await store.read(args[0])
        if name == "read_range":
            return await store.read_range(*args)
        if name == "delete":
            return await store.delete(args[0])
        if name == "delete_many":
            return await store.delete_many(args[0])
        if name == "copy":
            return await store.copy(*args)
        if name == "exists":
            return await store.exists(args[0])
        if name == "size":
            return await store.size(args[0])
        if name == "list":
            async with contextlib.aclosing(store.list_keys()) as keys:
                return sorted([k async for k in keys])
        return await store.sync(args[0])
    except KernelError as err:
        return err.code


def check_against_model(make_store, steps) -> None:
    async def main() -> None:
        store = make_store()
        model: dict[str, bytes] = {}
        for i, step in enumerate(steps):
            expected = model_apply(model, step)
            got = await store_apply(store, step)
            assert got == expected, f"step {i} {step[0]}: {got!r} != {expected!r}"

    trio.run(main)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(op, max_size=40))
def test_memory_store_matches_model(steps):
    check_against_model(MemoryBlockStore, steps)


@SETTINGS
@given(st.lists(op, max_size=40))
def test_host_store_matches_model(steps):
    with tempfile.TemporaryDirectory() as tmp:
        check_against_model(lambda: HostBlockStore(tmp), steps)
