"""The archive family: tar, gzip/gunzip/zcat, bzip2/bunzip2/bzcat, xz/unxz/xzcat, zip and unzip,
over the standard library codecs and ``ctx`` only."""

from __future__ import annotations

from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
