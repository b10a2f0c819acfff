"""The read-only rule (kernel/readonly.py) as each layer applies it: the FUSE adapter (the
host's view), the host cache invalidator (the sandbox's view of the store) and the kernel's
mount table refuse the same operations with EROFS and let reads through."""

from __future__ import annotations

import errno
import os

import pyfuse3
import pytest
import trio

from kernel.errors import KernelError
from kernel.fs import ROOT_CALLER
from kernel.readonly import MUTATING_OPS, STORE_MUTATING_OPS, opens_for_writing
from vfsfuse.daemon.fuse_adapter import FuseAdapter, HostCacheInvalidator
from vfsfuse.storage.store import memory_vfs


@pytest.mark.parametrize(("flags", "writes"), [
    (os.O_RDONLY, False), (os.O_RDONLY | os.O_NOFOLLOW, False), (os.O_WRONLY, True), (os.O_RDWR, True),
    (os.O_RDONLY | os.O_TRUNC, True), (os.O_WRONLY | os.O_APPEND, True),
])
def test_which_opens_write(flags, writes):
    assert opens_for_writing(flags) is writes


def test_every_mutating_op_is_a_filesystem_method():
    vfs = memory_vfs()
    for name in STORE_MUTATING_OPS:
        assert callable(getattr(vfs, name)), name
    for name in MUTATING_OPS:
        assert callable(getattr(pyfuse3.Operations, name)), name


def test_the_adapter_refuses_each_change_and_serves_reads():
    async def main():
        vfs = memory_vfs()
        fh, attr = await vfs.create(vfs.root_ino, b"f", 0o644, os.O_RDWR | os.O_CREAT, ROOT_CALLER)
        await vfs.write(fh, 0, b"data")
        await vfs.release(fh)
        adapter = FuseAdapter(vfs, read_only=True)
        for name in MUTATING_OPS:
            with pytest.raises(pyfuse3.FUSEError) as err:
                await getattr(adapter, name)(vfs.root_ino, b"x", 0o644, 0, None)
            assert err.value.errno == errno.EROFS, name
        with pytest.raises(pyfuse3.FUSEError) as err:
            await adapter.open(attr.ino, os.O_WRONLY, None)
        assert err.value.errno == errno.EROFS
        writable = FuseAdapter(vfs, read_only=False)
        assert writable.mkdir.__func__ is FuseAdapter.mkdir  # nothing replaced when writable
    trio.run(main)


def test_the_invalidator_refuses_each_store_change():
    async def main():
        vfs = memory_vfs()
        view = HostCacheInvalidator(vfs, lambda ino: [], read_only=True)
        for name in STORE_MUTATING_OPS:
            with pytest.raises(KernelError) as err:
                await getattr(view, name)(vfs.root_ino, b"x")
            assert err.value.code == "EROFS", name
        with pytest.raises(KernelError) as err:
            await view.open(vfs.root_ino, os.O_RDONLY | os.O_TRUNC, ROOT_CALLER)
        assert err.value.code == "EROFS"
        assert (await view.getattr(vfs.root_ino)).is_dir
    trio.run(main)
