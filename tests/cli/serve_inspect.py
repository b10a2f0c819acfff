"""Serve a store with /.vfs over FUSE (used by test_mounted.py as a subprocess).

It wires the same pieces as the daemon (ChunkedVFS under a MountTable with
InspectFS at /.vfs, through FuseAdapter), so the CLI's mounted-path code is
tested for real without depending on the daemon's boot sequence.
Usage: python serve_inspect.py STORE MOUNTPOINT  (prints "ready"; ends at unmount)
"""

from __future__ import annotations

import sys

import pyfuse3
import trio

from kernel.mounts import MountTable
from vfsfuse.daemon.fuse_adapter import FuseAdapter
from vfsfuse.inspect.inspectfs import InspectFS
from vfsfuse.storage.store import open_store


async def main(store_path: str, mountpoint: str) -> None:
    store = open_store(store_path)
    try:
        async with store.vfs.running():
            table = MountTable(store.vfs)
            await table.mount("/.vfs", InspectFS(store.vfs), hidden=True, fstype="vfsinspect",
                              source="vfs")
            pyfuse3.init(FuseAdapter(table), mountpoint, {"fsname=vfsfuse-test", "default_permissions"})
            print("ready", flush=True)
            try:
                await pyfuse3.main()
            finally:
                pyfuse3.close(unmount=True)
    finally:
        store.close()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
