"""The archive family: tar, gzip/gunzip/zcat, bzip2/bunzip2/bzcat, xz/unxz/xzcat, zip and unzip,
over the standard library codecs and ``ctx`` only.

The codecs (``archive_codec``) are fed chunks, never files; each program module moves the
chunks through ``ctx``: ``archive_gzip`` (the three stream compressors), ``archive_tar``,
``archive_zip``.
"""

from __future__ import annotations

from kernel.programs import archive_gzip, archive_tar, archive_zip
from kernel.programs.registry import Program

PROGRAMS: dict[str, Program] = {}
PROGRAMS.update(archive_gzip.PROGRAMS)
PROGRAMS["tar"] = archive_tar.main
PROGRAMS.update(archive_zip.PROGRAMS)
