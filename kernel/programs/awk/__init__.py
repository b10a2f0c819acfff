"""awk: a POSIX awk (with the gawk extensions scripts use) as a kernel program.

The package splits like the shell: a lexer, a parser to a syntax tree, and an interpreter
that reads its input and runs commands only through ``ctx``."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
