"""Boots the sandbox kernel for the daemon: the kernel over the store, its `/dev`, `/proc`,
`/dev/shm`, and the hidden `/.vfs` inspection tree, with the host cache invalidator between the
kernel and the store (sandbox processes change the store around FUSE, so the host kernel's
caches must be told).  The control socket for shells will live beside this."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from kernel.kernel import Kernel
from kernel.limits import Limits
from kernel.mounts import MountTable
from kernel.net.policy import NetPolicy
from kernel.userland import standard_registry
from vfsfuse.daemon.fuse_adapter import HostCacheInvalidator
from vfsfuse.daemon.jail import JailConfig, JailLauncher, settle_invalidations
from vfsfuse.inspect.inspectfs import InspectFS
from vfsfuse.storage.chunked import ChunkedVFS
from vfsfuse.storage.store import shm_vfs


@dataclass
class Sandbox:
    """What the daemon serves when the kernel runs, and the pieces it must stop.

    ``fuse_table`` is the kernel's mount table seen with the bare store at ``/``: host requests
    need no cache invalidation (the host kernel keeps its own caches right), so they skip the
    invalidator that sandbox processes go through."""

    kernel: Kernel
    invalidator: HostCacheInvalidator
    fuse_table: MountTable


async def boot_sandbox(vfs: ChunkedVFS, nursery: trio.Nursery, *, read_only: bool,
                       shm_bytes: int, mountpoint: str | None = None,
                       limits: Limits | None = None, net: NetPolicy | None = None) -> Sandbox:
    """Boot the kernel over *vfs* in *nursery* and mount ``/.vfs``; with the FUSE *mountpoint*
    the kernel runs ELF files as real programs in a jail rooted there (``jail.py``)."""
    invalidator = HostCacheInvalidator(vfs, vfs.metadata.parents_of, read_only=read_only)
    # /dev/shm: a writable memory filesystem, as on Linux (gone at unmount).
    kernel = Kernel(invalidator, shm=shm_vfs(shm_bytes), programs=standard_registry(), limits=limits, net=net)
    await kernel.boot(nursery)
    # InspectFS refuses every change itself except writes to its control file
    # ("echo gc > .vfs/control"), so the mount table must let writes through.
    inspect = InspectFS(invalidator, net_text=kernel.net.policy.describe)
    await kernel.mount_table.mount("/.vfs", inspect, read_only=False, hidden=True,
                                   fstype="vfsinspect", source="vfs")
    if mountpoint is not None:
        kernel.native = JailLauncher(kernel.vfs, JailConfig(mountpoint), settle_invalidations(invalidator))
    return Sandbox(kernel, invalidator, kernel.mount_table.with_root(vfs))
