"""Run the block-store conformance suite against every block store."""

from __future__ import annotations

import pytest

from blockstores import HostBlockStore, MemoryBlockStore
from tests.conformance.block_store_suite import *  # noqa: F401,F403  (the suite's test functions)


@pytest.fixture(params=["memory", "host"])
def store(request, tmp_path):
    """A fresh, empty store per test; the host store lives in a new directory under tmp_path."""
    if request.param == "memory":
        return MemoryBlockStore()
    return HostBlockStore(tmp_path / "blocks")


async def test_a_memory_store_with_a_capacity_is_a_small_disk():
    from kernel.errors import KernelError
    from vfsfuse.storage.blocks import block_key

    store = MemoryBlockStore(capacity=1000)
    a, b = b"a" * 600, b"b" * 500
    await store.write(block_key(a), a)
    await store.write(block_key(a), a)  # rewriting a block takes no more room
    with pytest.raises(KernelError) as err:
        await store.write(block_key(b), b)
    assert err.value.code == "ENOSPC" and not await store.exists(block_key(b))
    with pytest.raises(KernelError):
        await store.copy(block_key(a), block_key(b))  # a copy takes room too
    await store.delete(block_key(a))
    await store.write(block_key(b), b)
    assert store.used_bytes == 500 and await store.read(block_key(b)) == b
