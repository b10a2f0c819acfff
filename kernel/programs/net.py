"""The network family: programs that use the socket table (nc, curl-like fetches, ss, ...)."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
