"""The system family: sleep, timeout, env, id, uname, date and the other small tools that ask the
kernel about the process, the user or the machine."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
