"""Run the real mount daemon in this process and change files *from the sandbox side* on command.

Used by test_coherence.py: sandbox processes live inside the daemon and change the store around
FUSE; the host must still see their changes.  Commands on stdin, one per line, each answered with
"ok" or "err CODE": ``write PATH TEXT``, ``append PATH TEXT``, ``mkdir PATH``, ``rm PATH``,
``mv OLD NEW``, ``chmod PATH OCTAL``.  Usage: python serve_sandbox.py STORE MOUNTPOINT
"""

from __future__ import annotations

import sys

import trio

from kernel.errors import KernelError
from vfsfuse.daemon.config import MountConfig
from vfsfuse.daemon.serve import Daemon


class SandboxDaemon(Daemon):
    async def _after_mount(self) -> None:
        await super()._after_mount()
        stdin = trio.lowlevel.FdStream(0)
        buf = b""
        vfs = self.kernel.vfs
        while True:
            data = await stdin.receive_some(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd, _, rest = line.decode().partition(" ")
                try:
                    if cmd == "write":
                        path, _, text = rest.partition(" ")
                        await vfs.write_file(path, text.encode())
                    elif cmd == "append":
                        path, _, text = rest.partition(" ")
                        old = await vfs.read_file(path)
                        await vfs.pwrite(path, len(old), text.encode())
                    elif cmd == "mkdir":
                        await vfs.mkdir(rest)
                    elif cmd == "rm":
                        await vfs.remove_file(rest)
                    elif cmd == "mv":
                        a, b = rest.split()
                        await vfs.rename(a, b)
                    elif cmd == "chmod":
                        path, mode = rest.split()
                        await vfs.chmod(path, int(mode, 8))
                    reply = "ok"
                except KernelError as err:
                    reply = f"err {err.code}"
                print(reply, flush=True)


if __name__ == "__main__":
    config = MountConfig(mountpoint=sys.argv[2], store=sys.argv[1])
    SandboxDaemon(config, lambda: print("ready", flush=True)).run()
