"""jq, with real jq semantics from the jq bindings; only input and output go through ``ctx``."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
