"""Helpers for the process/fd/signal tests: booting a kernel and running inline test programs
(the ``kernel`` fixture is in conftest.py).

Tests write a program as a local ``async def prog(ctx)`` and run it with
``await run_program(kernel, prog)``; results travel back through closures.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio

from kernel.kernel import Kernel
from kernel.limits import Limits
from kernel.permissions import Permissions
from kernel.programs.testprogs import test_registry
from vfsfuse.storage.store import memory_vfs

_names = itertools.count(1)


async def boot_kernel(nursery: trio.Nursery, *, limits: Limits | None = None,
                      permissions: Permissions | None = None, **kw: Any) -> Kernel:
    kw.setdefault("programs", test_registry())
    k = Kernel(memory_vfs(), limits=limits, permissions=permissions, **kw)
    await k.boot(nursery)
    return k


def register(kernel: Kernel, prog, name: str | None = None) -> str:
    name = name or f"t{next(_names)}"
    kernel.programs.register(name, prog)
    return name


async def run_program(kernel: Kernel, prog, *args: str, input: bytes | None = None,
                      timeout: float = 10):
    """Run *prog* as a fresh process from the host; returns ``Completed`` (status, stdout, stderr)."""
    name = register(kernel, prog)
    return await kernel.run([name, *args], input=input, timeout=timeout)
