"""/dev: Linux device numbers, modes and read/write semantics, compared with the host's /dev."""

from __future__ import annotations

import os
import stat

import pytest

from kernel.devfs import MAX_DEVICE_READ, DevFS
from kernel.errors import KernelError
from kernel.fdtable import FdTable
from kernel.fs import Caller
from kernel.pathvfs import PathVFS
from kernel.process import ProcessTable
from kernel.pty import PtyRegistry

from .conftest import as_pid

HOST_DEVICES = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"]


@pytest.fixture
def processes() -> ProcessTable:
    return ProcessTable()


@pytest.fixture
async def dev(table, ptys, processes):
    devfs = DevFS(ptys, processes)
    await table.mount("/dev", devfs, fstype="devtmpfs", source="devtmpfs")
    return devfs


async def raises(code, coro):
    with pytest.raises(KernelError) as ei:
        await coro
    assert ei.value.code == code, str(ei.value)


async def open_dev(table, vfs, name, flags=os.O_RDONLY, caller=None):
    ino, _ = await vfs.resolve(f"/dev/{name}")
    return await table.open(ino, flags, caller or Caller.root())


@pytest.mark.parametrize("name", HOST_DEVICES)
async def test_device_numbers_and_modes_match_host(dev, vfs, name):
    host = os.lstat(f"/dev/{name}")
    ours = await vfs.lstat(f"/dev/{name}")
    assert stat.S_ISCHR(ours.mode)
    assert (os.major(ours.rdev), os.minor(ours.rdev)) == (os.major(host.st_rdev), os.minor(host.st_rdev))
    assert stat.S_IMODE(ours.mode) == stat.S_IMODE(host.st_mode)


@pytest.mark.parametrize("name", ["stdin", "stdout", "stderr", "fd"])
async def test_symlinks_match_host(dev, vfs, name):
    assert await vfs.readlink(f"/dev/{name}") == os.readlink(f"/dev/{name}")
    st = await vfs.lstat(f"/dev/{name}")
    assert st.is_symbolic_link and st.size == len(os.readlink(f"/dev/{name}"))


async def test_listing(dev, vfs):
    names = await vfs.read_dir("/dev")
    assert set(HOST_DEVICES + ["stdin", "stdout", "stderr", "fd", "pts", "shm", "console"]) == set(names)
    shm = await vfs.stat("/dev/shm")
    assert shm.is_directory and stat.S_IMODE(shm.mode) == 0o1777 == stat.S_IMODE(os.stat("/dev/shm").st_mode)
    assert await vfs.read_dir("/dev/pts") == []


async def test_null(dev, table, vfs):
    fh = await open_dev(table, vfs, "null", os.O_RDWR)
    assert await table.write(fh, 0, b"x" * 1000) == 1000
    assert await table.read(fh, 0, 4096) == b""
    await table.release(fh)
    await vfs.write_file("/dev/null", b"discarded")  # O_TRUNC on a device is accepted
    assert await vfs.read_file("/dev/null") == b""


@pytest.mark.parametrize("size", [0, 1, 4096, 100_000, MAX_DEVICE_READ + 5])
async def test_zero_exact_size_bounded(dev, table, vfs, size):
    fh = await open_dev(table, vfs, "zero")
    data = await table.read(fh, 0, size)
    assert data == bytes(min(size, MAX_DEVICE_READ))
    with open("/dev/zero", "rb", buffering=0) as f:  # same answer as Linux for small sizes
        if size <= 100_000:
            assert f.read(size) == data
    await table.release(fh)


async def test_full(dev, table, vfs):
    fh = await open_dev(table, vfs, "full", os.O_RDWR)
    await raises("ENOSPC", table.write(fh, 0, b"x"))
    assert await table.read(fh, 0, 10) == bytes(10)
    await table.release(fh)
    with pytest.raises(OSError) as e:  # Linux agrees
        fd = os.open("/dev/full", os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    assert e.value.errno == 28  # ENOSPC


@pytest.mark.parametrize("name", ["random", "urandom"])
async def test_random(dev, table, vfs, name):
    fh = await open_dev(table, vfs, name, os.O_RDWR)
    a = await table.read(fh, 0, 64)
    b = await table.read(fh, 0, 64)
    assert len(a) == len(b) == 64 and a != b
    assert await table.write(fh, 0, b"entropy") == 7
    await table.release(fh)


async def test_tty_needs_controlling_terminal(dev, table, vfs, processes):
    await raises("ENXIO", open_dev(table, vfs, "tty"))  # host caller (pid 0)
    sh = processes.create(parent=None, argv=["sh"], env={}, cwd="/", exe="/bin/sh", fds=FdTable())
    await raises("ENXIO", open_dev(table, vfs, "tty", caller=Caller(pid=sh.pid)))
    sh.tty = "/dev/pts/0"
    fh = await open_dev(table, vfs, "tty", os.O_RDWR, caller=Caller(pid=sh.pid))
    await table.release(fh)


def open_ptys(ptys: PtyRegistry, indexes: list[int]) -> None:
    """Make exactly *indexes* the open PTYs (devpts numbers them lowest-free)."""
    for pty in [ptys.get(i) for i in ptys.pty_names()]:
        ptys.free(pty)
    made = [ptys.open_pty() for _ in range(max(indexes) + 1)]
    for pty in made:
        if pty.index not in indexes:
            ptys.free(pty)


async def test_ptmx_and_pts_are_for_the_pty_layer(dev, table, vfs, ptys):
    await raises("ENXIO", open_dev(table, vfs, "ptmx", os.O_RDWR))
    open_ptys(ptys, [0, 3])
    await raises("ENXIO", open_dev(table, vfs, "pts/3", os.O_RDWR))


async def test_pts_follow_open_ptys(dev, vfs, table, ptys):
    devfs = dev
    open_ptys(ptys, [0, 3])
    assert await vfs.read_dir("/dev/pts") == ["0", "3"]
    st = await vfs.stat("/dev/pts/3")
    assert stat.S_ISCHR(st.mode) and (os.major(st.rdev), os.minor(st.rdev)) == (136, 3)
    assert devfs.device_for(st.ino) == "pts/3"
    open_ptys(ptys, [0])
    assert not await vfs.exists("/dev/pts/3")
    await raises("ENOENT", table.getattr(st.ino))
    assert not await vfs.exists("/dev/pts/03")


async def test_device_for(dev, vfs, table):
    devfs = dev
    for name in ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "console"]:
        ino = (await vfs.stat(f"/dev/{name}")).ino
        assert devfs.device_for(ino) == name  # global (shifted) number
        fs, local = table.fs_of(ino)
        assert fs is devfs and devfs.device_for(local) == name
    assert devfs.device_for((await vfs.stat("/dev/shm")).ino) is None
    assert devfs.device_for((await vfs.lstat("/dev/stdin")).ino) is None


async def test_mknod_elsewhere_is_not_a_device(dev, vfs, table):
    """A node made with mknod in the root fs is only a name: device_for says so."""
    devfs = dev
    a = await table.mknod(table.root_ino, b"fakenull", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert stat.S_ISCHR(a.mode)
    assert table.fs_of(a.ino)[0] is not devfs


async def test_mutations_refused(dev, vfs):
    await raises("EPERM", vfs.write_file("/dev/newfile", b""))
    await raises("EPERM", vfs.mkdir("/dev/newdir"))
    await raises("EPERM", vfs.remove_file("/dev/null"))
    await raises("EPERM", vfs.rename("/dev/null", "/dev/null2"))
    await raises("EPERM", vfs.symlink("x", "/dev/lnk"))
    await raises("EPERM", vfs.chmod("/dev/null", 0o600))


async def test_stdin_follows_to_proc(dev, table, vfs, procs):
    """/dev/stdin -> /proc/self/fd/0 -> the opened path of fd 0 of the caller."""
    from kernel.procfs import ProcFS
    await table.mount("/proc", ProcFS(procs, table))
    assert await as_pid(vfs, 1).realpath("/dev/stdin") == "/dev/null"
    await raises("ENOENT", vfs.realpath("/dev/stdin"))  # host caller: no /proc/self


@pytest.mark.allow_log_warnings  # provokes the errors it checks
async def test_a_sized_shm_gives_enospc_to_the_writer_and_keeps_the_rest(dev, table, vfs):
    from vfsfuse.storage.store import shm_vfs
    await table.mount("/dev/shm", shm_vfs(256 << 10), fstype="tmpfs", source="tmpfs")
    await vfs.write_file("/dev/shm/small", os.urandom(100 << 10))
    await raises("ENOSPC", vfs.write_file("/dev/shm/big", os.urandom(4 << 20)))
    assert len(await vfs.read_file("/dev/shm/small")) == 100 << 10
    await vfs.remove_file("/dev/shm/big")
    await vfs.remove_file("/dev/shm/small")
    data = os.urandom(200 << 10)
    await vfs.write_file("/dev/shm/again", data)
    assert await vfs.read_file("/dev/shm/again") == data


async def test_shm_can_hold_a_memory_mount(dev, table, vfs):
    from vfsfuse.storage.store import memory_vfs
    await table.mount("/dev/shm", memory_vfs(), fstype="tmpfs", source="tmpfs")
    await vfs.write_file("/dev/shm/seg", b"shared")
    assert await vfs.read_file("/dev/shm/seg") == b"shared"
    assert "shm" in await PathVFS(table).read_dir("/dev")
