"""Scripts name their interpreter by the paths a Debian system has: ``#!/usr/bin/env NAME``,
``#!/usr/bin/awk -f``, ``#!/bin/sh``.  The boot stubs make each of them resolve in the VFS."""

from __future__ import annotations

import trio

from kernel.kernel import Kernel
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs

SCRIPTS = {
    "/tmp/env-bash": (b"#!/usr/bin/env bash\necho \"bash ${BASH_VERSION:+yes} $1\"\n", b"bash yes arg\n"),
    "/tmp/env-S": (b"#!/usr/bin/env -S awk -f\n{ print NR \": \" $0 }\n", b"1: arg\n"),
    "/tmp/awk-f": (b"#!/usr/bin/awk -f\nBEGIN { print \"awk\", ARGV[1] }\n", b"awk arg\n"),
    "/tmp/usr-sh": (b"#!/usr/bin/sh\necho sh $1\n", b"sh arg\n"),
}


def test_interpreters_named_by_their_usr_bin_paths_run():
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=standard_registry())
            await kernel.boot(nursery)
            try:
                for path, (text, _) in SCRIPTS.items():
                    await kernel.vfs.write_file(path, text)
                    await kernel.vfs.chmod(path, 0o755)
                for path, (_, want) in SCRIPTS.items():
                    if path == "/tmp/env-S":
                        r = await kernel.run(["sh", "-c", path], input=b"arg\n", timeout=30)
                    else:
                        r = await kernel.run(["sh", "-c", f"{path} arg"], timeout=30)
                    assert (r.status, r.stdout, r.stderr) == (0, want, b""), path
                assert await kernel.vfs.exists("/usr/bin/env") and await kernel.vfs.exists("/bin/env")
            finally:
                await kernel.shutdown()
                nursery.cancel_scope.cancel()
    trio.run(go)
