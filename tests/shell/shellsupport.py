"""Helpers for the shell tests: a kernel with the test programs and our ``sh``/``bash``."""

from __future__ import annotations

from typing import Any

import trio

from kernel.kernel import Kernel
from kernel.limits import Limits
from kernel.programs.testprogs import test_registry
from kernel.shell.main import PROGRAMS
from vfsfuse.storage.store import memory_vfs


def shell_registry():
    reg = test_registry()
    for name, prog in PROGRAMS.items():
        reg.register(name, prog)
    return reg


async def boot(nursery: trio.Nursery, limits: Limits | None = None, **kw: Any) -> Kernel:
    k = Kernel(memory_vfs(), programs=shell_registry(), limits=limits, **kw)
    await k.boot(nursery)
    return k


async def run_sh(kernel: Kernel, script: str, *, shell: str = "bash", input: bytes | str | None = None,
                 cwd: str | None = None, timeout: float = 20, args: tuple[str, ...] = ()):
    """Run *script* with ``shell -c``; returns ``Completed`` (status, stdout, stderr)."""
    return await kernel.run([shell, "-c", script, shell, *args], input=input, cwd=cwd, timeout=timeout)
