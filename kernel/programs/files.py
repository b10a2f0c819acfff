"""The file family of the userland (issue 14): ls, cat, cp, mv, rm, find, xargs, dd, ...

The programs live in ``files_*`` modules, one job each; this module only gathers their
``PROGRAMS`` tables into the one the userland registers."""

from __future__ import annotations

from kernel.programs import (
    files_basic,
    files_copy,
    files_data,
    files_find,
    files_ls,
    files_space,
    files_xargs,
)
from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
for _module in (files_basic, files_ls, files_copy, files_find, files_xargs, files_data, files_space):
    PROGRAMS.update(_module.PROGRAMS)
