"""ChunkedVFS.setattr: a user's utimensat is judged, the host's record of times (``host_times``,
issue 12) is stored as given; a write or truncate without CAP_FSETID drops set-user-ID and
set-group-ID as Linux 6.2+ does (tmpfs measured in tests/mount/test_writeback_setattr.py)."""

from __future__ import annotations

import os
import stat as S

import pytest

from blockstores import MemoryBlockStore
from kernel.errors import KernelError
from kernel.fs import UTIME_NOW, Caller, SetAttr
from vfsfuse.storage.chunked import ChunkedVFS
from vfsfuse.storage.metadata import MemoryMetadataStore

OWNER = Caller(uid=1000, gid=1000, umask=0o022)
OTHER = Caller(uid=1001, gid=1001, umask=0o022)
MEMBER = Caller(uid=1002, gid=1002, umask=0o022, groups=(1000,))
T = 946684800_123456789


@pytest.fixture
async def vfs():
    v = ChunkedVFS(MemoryMetadataStore(), MemoryBlockStore(), chunk_size=4096, inline_threshold=256)
    await v.setattr(1, SetAttr(mode=0o777))
    return v


async def _file(vfs, mode: int, name: bytes = b"f") -> int:
    fh, a = await vfs.create(1, name, 0o644, os.O_RDWR | os.O_CREAT, OWNER)
    await vfs.write(fh, 0, b"data")
    await vfs.release(fh)
    await vfs.setattr(a.ino, SetAttr(mode=mode), OWNER)
    return a.ino


async def _code(coro) -> str:
    try:
        await coro
    except KernelError as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("mode", [0o644, 0o666])
async def test_a_non_owners_utimensat_is_judged(vfs, mode):
    ino = await _file(vfs, mode)
    now_ok = "ok" if mode & 0o002 else "EACCES"
    assert await _code(vfs.setattr(ino, SetAttr(atime_ns=UTIME_NOW, mtime_ns=UTIME_NOW), OTHER)) == now_ok
    assert await _code(vfs.setattr(ino, SetAttr(mtime_ns=UTIME_NOW), OTHER)) == now_ok
    assert await _code(vfs.setattr(ino, SetAttr(atime_ns=T, mtime_ns=T), OTHER)) == "EPERM"
    assert await _code(vfs.setattr(ino, SetAttr(mtime_ns=T), OTHER)) == "EPERM"
    # host_times covers mtime/ctime only: an atime in the same request is still the caller's
    assert await _code(vfs.setattr(ino, SetAttr(atime_ns=T, mtime_ns=T, host_times=True), OTHER)) == "EPERM"


@pytest.mark.parametrize("mode", [0o644, 0o444])
async def test_host_times_are_stored_exactly_whoever_sends_them(vfs, mode):
    ino = await _file(vfs, mode)
    before = await vfs.getattr(ino)
    a = await vfs.setattr(ino, SetAttr(mtime_ns=T, ctime_ns=T + 1, host_times=True), OTHER)
    assert (a.mtime_ns, a.ctime_ns, a.atime_ns) == (T, T + 1, before.atime_ns)
    assert (await vfs.getattr(ino)).mtime_ns == T
    # with a size (the host's truncate through a descriptor opened for writing)
    a = await vfs.setattr(ino, SetAttr(size=2, mtime_ns=T + 2, ctime_ns=T + 3, host_times=True), OTHER)
    assert (a.size, a.mtime_ns, a.ctime_ns) == (2, T + 2, T + 3)


@pytest.mark.parametrize("mode, writer, after", [
    (0o4777, OTHER, 0o0777),   # set-user-ID always goes
    (0o2777, OTHER, 0o0777),   # set-group-ID with group execute goes
    (0o2767, OTHER, 0o0767),   # without group execute too, for a writer outside the group
    (0o2767, MEMBER, 0o2767),  # ... but stays for a member of the group
    (0o6767, MEMBER, 0o2767),
    (0o6777, MEMBER, 0o0777),
])
@pytest.mark.parametrize("how", ["write", "truncate", "open_trunc"])
async def test_write_and_truncate_drop_setid_as_linux(vfs, mode, writer, after, how):
    ino = await _file(vfs, mode)
    if how == "write":
        fh = await vfs.open(ino, os.O_WRONLY, writer)
        await vfs.write(fh, 0, b"x")
        await vfs.release(fh)
    elif how == "truncate":
        await vfs.setattr(ino, SetAttr(size=1), writer)
    else:
        await vfs.release(await vfs.open(ino, os.O_WRONLY | os.O_TRUNC, writer))
    assert S.S_IMODE((await vfs.getattr(ino)).mode) == after


async def test_root_keeps_setid_bits_on_write(vfs):
    ino = await _file(vfs, 0o6777)
    fh = await vfs.open(ino, os.O_WRONLY, Caller())
    await vfs.write(fh, 0, b"x")
    await vfs.release(fh)
    await vfs.setattr(ino, SetAttr(size=1), Caller())
    assert S.S_IMODE((await vfs.getattr(ino)).mode) == 0o6777
