"""sqlite3: the SQLite shell over apsw, reading and writing database files through ``ctx``."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
