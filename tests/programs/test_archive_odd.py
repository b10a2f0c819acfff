"""Every program of the jq, archive and sqlite3 families over odd command lines and odd input:
never a Python traceback, always a status, at most a few lines on stderr."""

from __future__ import annotations

import os

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs import archive, jq_cmd, sqlite_cmd
from kernel.programs.registry import ProgramRegistry
from vfsfuse.storage.store import memory_vfs

PROGRAMS = {**archive.PROGRAMS, **jq_cmd.PROGRAMS, **sqlite_cmd.PROGRAMS}
ODD = [[], ["--help"], ["--version"], ["-"], ["--"], ["--bogus"], ["-Z"], ["nofile"], ["dir"], ["bin"],
       ["-c", "bin"], ["-d", "bin"], ["-l", "bin"], ["-t", "bin"], ["x", "y", "z"], ["-f"], ["-C"], ["."],
       ["", ""], ["-cf", "out", "nofile"], ["-xf", "bin"], ["-tvf", "bin"], ["-d", "dir"]]
BINARY = bytes(range(256)) * 40 + os.urandom(3000)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_odd_command_lines(name: str) -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=ProgramRegistry(PROGRAMS.items()),
                            env={"PATH": "/bin", "HOME": "/root"})
            await kernel.boot(nursery)
            try:
                await kernel.vfs.mkdir("/w/dir", recursive=True)
                await kernel.vfs.write_file("/w/bin", BINARY)
                for extra in ODD:
                    for stdin in (b"", BINARY):
                        r = await kernel.run([name, *extra], input=stdin, cwd="/w", timeout=30)
                        shown = f"{name} {extra} stdin={len(stdin)}"
                        assert b"Traceback" not in r.stderr, shown + r.stderr.decode(errors="replace")
                        assert b"internal error" not in r.stderr, shown + r.stderr.decode(errors="replace")
                        assert r.status & 0x7F == 0, shown       # exited, not killed by an exception
                        if not stdin:   # (a script of binary junk is one error per statement)
                            assert r.stderr.count(b"\n") <= 12, shown + r.stderr.decode(errors="replace")
            finally:
                await kernel.shutdown()
    trio.run(go)
