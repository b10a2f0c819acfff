"""The procps family: ps, top, kill, pkill, pgrep, pstree, uptime, free, reading ``/proc`` the way
procps does (so what they print is what the host tools would print over the same /proc).

The programs live in ``procps_*`` modules; this one gathers their ``PROGRAMS`` tables."""

from __future__ import annotations

from kernel.programs import procps_kill, procps_ps, procps_sys
from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
for _module in (procps_ps, procps_kill, procps_sys):
    PROGRAMS.update(_module.PROGRAMS)
