"""The procps family: ps, top, kill, pkill, pgrep, pstree, uptime, free, reading ``/proc`` the way
procps does (so what they print is what the host tools would print over the same /proc)."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
