"""Serve a memory ChunkedVFS through FuseAdapter, with one name whose lookup raises a bug.

Used by test_adapter.py: an unexpected exception inside a filesystem must become EIO for that
request only, never take the daemon down.  Usage: python serve_faulty.py MOUNTPOINT
(prints "ready", serves until unmounted).
"""

from __future__ import annotations

import sys

import pyfuse3
import trio

from vfsfuse.daemon.fuse_adapter import FuseAdapter
from vfsfuse.storage.store import memory_store


class Faulty:
    """Delegates everything to a real filesystem, except that looking up b"boom" is a bug."""

    def __init__(self, fs) -> None:
        self._fs = fs
        self.root_ino = fs.root_ino

    def __getattr__(self, name):
        return getattr(self._fs, name)

    async def lookup(self, parent, name, caller=None):
        if name == b"boom":
            raise ZeroDivisionError("a bug below the adapter")
        return await self._fs.lookup(parent, name, caller)


async def main(mountpoint: str) -> None:
    store = memory_store()
    async with store.vfs.running():
        pyfuse3.init(FuseAdapter(Faulty(store.vfs)), mountpoint,
                     {"fsname=vfsfuse-test", "subtype=vfsfuse", "default_permissions"})
        print("ready", flush=True)
        try:
            await pyfuse3.main()
        finally:
            pyfuse3.close(unmount=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
