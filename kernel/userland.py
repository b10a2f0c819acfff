"""The sandbox's userland: every production program, registered once.

Each program family module of ``kernel.programs`` (``files``, ``text``, ...) and the shell
(``kernel.shell``) expose ``PROGRAMS``, a ``{name: program}`` dict; adding a family is one import
and one entry in ``FAMILIES``.  This module sits above both packages (they may import only the
syscall layer), so the daemon, the CLI and the Python API all get the same set from here.
"""

from __future__ import annotations

from collections.abc import Mapping

from kernel.programs import archive as archive_family
from kernel.programs import awk as awk_family
from kernel.programs import bytecount
from kernel.programs import files as files_family
from kernel.programs import jq_cmd as jq_family
from kernel.programs import net as net_family
from kernel.programs import procps as procps_family
from kernel.programs import sqlite_cmd as sqlite_family
from kernel.programs import system as system_family
from kernel.programs import text as text_family
from kernel.programs.registry import Program, ProgramRegistry
from kernel.shell import main as shell_family

FAMILIES: tuple[Mapping[str, Program], ...] = (
    files_family.PROGRAMS,
    text_family.PROGRAMS,
    awk_family.PROGRAMS,
    jq_family.PROGRAMS,
    archive_family.PROGRAMS,
    sqlite_family.PROGRAMS,
    procps_family.PROGRAMS,
    system_family.PROGRAMS,
    net_family.PROGRAMS,
    shell_family.PROGRAMS,
)


def standard_registry() -> ProgramRegistry:
    """A fresh registry of every production program (and numpy's import started for ``wc``)."""
    bytecount.start_loading()
    registry = ProgramRegistry()
    for family in FAMILIES:
        for name, program in family.items():
            registry.register(name, program)
    return registry
