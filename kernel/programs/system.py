"""The system family: sleep, timeout, env, id, uname, date and the other small tools that ask the
kernel about the process, the user or the machine.

The programs live in ``system_*`` modules; this one gathers their ``PROGRAMS`` tables."""

from __future__ import annotations

from kernel.programs import system_date, system_ids, system_run, system_tty, system_vfs
from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
for _module in (system_run, system_ids, system_tty, system_date, system_vfs):
    PROGRAMS.update(_module.PROGRAMS)
