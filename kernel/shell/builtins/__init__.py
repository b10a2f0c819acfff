"""The shell's builtins, one module per family; each builtin is ``async def b(sh, argv) -> int``.

``all_builtins()`` merges the families' ``BUILTINS`` dicts; ``SPECIAL`` are POSIX's special
builtins (assignments before them persist and their errors end a POSIX shell).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Builtin = Callable[[Any, list[str]], Awaitable[int]]

SPECIAL = frozenset({":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly",
                     "return", "set", "shift", "times", "trap", "unset", "source"})


def all_builtins() -> dict[str, Builtin]:
    from kernel.shell.builtins import core, dirs, info, jobs
    out: dict[str, Builtin] = {}
    for mod in (core, dirs, jobs, info):
        out.update(mod.BUILTINS)
    return out
