"""The production set of kernel programs: every program family module, registered once.

Each family module (``files``, ``text``, ...) exposes ``PROGRAMS``, a ``{name: program}``
dict; adding a family is one line here.  (The shell registers itself as ``sh`` and ``bash``.)
"""

from __future__ import annotations

from kernel.programs.registry import Program, ProgramRegistry

FAMILIES: tuple[dict[str, Program], ...] = ()


def standard_registry() -> ProgramRegistry:
    """A fresh registry of every production program."""
    registry = ProgramRegistry()
    for family in FAMILIES:
        for name, program in family.items():
            registry.register(name, program)
    return registry
