"""Fixtures for the socket tests: a kernel whose policy lets inet loopback work."""

from __future__ import annotations

import pytest

from kernel.net.policy import NetPolicy
from tests.kernel.ksupport import boot_kernel


@pytest.fixture
async def kernel(nursery):
    k = await boot_kernel(nursery, net=NetPolicy.loopback())
    yield k
    await k.shutdown()


@pytest.fixture
async def kernel_none(nursery):
    """The default policy: no inet at all."""
    k = await boot_kernel(nursery)
    yield k
    await k.shutdown()
