"""The program registry: which kernel programs exist, and how a command name or path finds one.

A kernel program is ``async def main(ctx) -> int``.  The registry is passed to ``Kernel`` by
whoever boots it (the daemon, the CLI, the Python API, tests), so each picks its own set: the
production set from ``kernel.userland.standard_registry()``, tests their own small programs.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from kernel.errors import KernelError

Program = Callable[[Any], Awaitable[int | None]]

# What the kernel writes at /bin/<name> for each registered program: a file that exec finds in
# the VFS like any other (PATH lookup, permissions, `ls /bin`), naming the program to run.
STUB = b"#!/bin/sh\n# kernel command stub\n"


class ProgramRegistry:
    """Programs by name; ``/bin/<name>``, ``/usr/bin/<name>``, ``/sbin/<name>`` map to ``<name>``."""

    SEARCH_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin")

    def __init__(self, programs: Iterable[tuple[str, Program]] = ()) -> None:
        self._programs: dict[str, Program] = {}
        for name, program in programs:
            self.register(name, program)

    def register(self, name: str, program: Program) -> None:
        if not name or "/" in name:
            raise ValueError(f"bad program name {name!r}")
        self._programs[name] = program

    def get(self, name: str) -> Program:
        """The program registered as *name* (KeyError if none)."""
        return self._programs[name]

    def names(self) -> list[str]:
        return sorted(self._programs)

    def resolve(self, command: str) -> tuple[str, Program]:
        """(exe path, program) for a bare name or a path under a bin directory; ENOENT otherwise."""
        if "/" not in command:
            prog = self._programs.get(command)
            if prog is not None:
                return f"/bin/{command}", prog
        else:
            head, _, base = command.rpartition("/")
            head = "/" + "/".join(p for p in head.split("/") if p and p != ".")
            if head in self.SEARCH_DIRS and base in self._programs:
                return f"{head}/{base}", self._programs[base]
        raise KernelError("ENOENT", f"command not found: {command}")
