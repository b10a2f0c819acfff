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
