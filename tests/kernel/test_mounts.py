"""Mount table: the seed's T1-T13 (spec §10.6) through PathVFS, plus inode-level rules."""

from __future__ import annotations

import errno as _errno
import os
import stat
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from kernel.errors import KernelError
from kernel.fs import Caller, SetAttr
from kernel.mounts import SHIFT, normalize
from kernel.pathvfs import PathVFS
from kernel.procfs import ProcFS
from vfsfuse.storage.store import memory_vfs


async def raises(code: str, coro) -> KernelError:
    with pytest.raises(KernelError) as ei:
        await coro
    assert ei.value.code == code, str(ei.value)
    return ei.value


# ---- T1-T13 ---------------------------------------------------------------------------------
async def test_t1_write_through_mount_lands_in_backend(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/foo", b"hello")
    assert await PathVFS(data).read_file("/foo") == b"hello"
    assert not await PathVFS(table._root.fs).exists("/data/foo")


async def test_t2_other_paths_go_to_root(table, vfs, root_fs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/home/user/foo", b"x")
    assert await PathVFS(root_fs).read_file("/home/user/foo") == b"x"
    assert not await PathVFS(data).exists("/home/user/foo")


async def test_t3_nested_mounts_longest_prefix(table, vfs, root_fs):
    data, cache = memory_vfs(), memory_vfs()
    await table.mount("/data", data)
    await table.mount("/data/cache", cache)
    await vfs.write_file("/data/a", b"1")
    await vfs.write_file("/data/cache/b", b"2")
    await vfs.write_file("/database", b"3")  # not under /data
    assert await PathVFS(data).read_file("/a") == b"1"
    assert await PathVFS(cache).read_file("/b") == b"2"
    assert not await PathVFS(data).exists("/cache/b")
    assert await PathVFS(root_fs).read_file("/database") == b"3"


async def test_t4_rename_across_mounts_is_exdev(table, vfs):
    await table.mount("/data", memory_vfs())
    await vfs.write_file("/a", b"x")
    await raises("EXDEV", vfs.rename("/a", "/data/a"))
    await vfs.write_file("/data/x", b"y")
    await raises("EXDEV", vfs.rename("/data/x", "/x"))


async def test_t5_rename_within_mount(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/a", b"x")
    await vfs.rename("/data/a", "/data/b")
    assert await PathVFS(data).read_file("/b") == b"x"
    assert not await vfs.exists("/data/a")


async def test_t6_link_across_mounts_is_exdev(table, vfs):
    await table.mount("/data", memory_vfs())
    await vfs.write_file("/a", b"x")
    await raises("EXDEV", vfs.link("/a", "/data/a"))
    await vfs.write_file("/data/b", b"y")
    await vfs.link("/data/b", "/data/c")  # same mount works
    assert (await vfs.stat("/data/c")).nlink == 2


async def test_t7_t8_read_only_mount(table, vfs):
    ro = memory_vfs()
    await PathVFS(ro).write_file("/f", b"content")
    await PathVFS(ro).mkdir("/d")
    await table.mount("/ro", ro, read_only=True)
    assert await vfs.read_file("/ro/f") == b"content"  # T8
    await raises("EROFS", vfs.write_file("/ro/f", b"x"))  # T7
    await raises("EROFS", vfs.write_file("/ro/new", b"x"))
    await raises("EROFS", vfs.mkdir("/ro/x"))
    await raises("EROFS", vfs.remove_file("/ro/f"))
    await raises("EROFS", vfs.remove_dir("/ro/d"))
    await raises("EROFS", vfs.rename("/ro/f", "/ro/g"))
    await raises("EROFS", vfs.symlink("f", "/ro/l"))
    await raises("EROFS", vfs.link("/ro/f", "/ro/h"))
    await raises("EROFS", vfs.chmod("/ro/f", 0o600))
    await raises("EROFS", vfs.truncate("/ro/f", 0))
    ino = (await vfs.stat("/ro/f")).ino
    await raises("EROFS", table.open(ino, os.O_WRONLY))
    await raises("EROFS", table.open(ino, os.O_RDONLY | os.O_TRUNC))
    await table.release(await table.open(ino, os.O_RDONLY | os.O_CREAT))  # exists: Linux allows
    await raises("EROFS", table.setxattr(ino, b"user.a", b"1"))
    assert await vfs.read_file("/ro/f") == b"content"


async def test_t9_readdir_root_lists_mount_points(table, vfs, procs):
    await vfs.write_file("/own", b"")
    await table.mount("/data", memory_vfs())
    await table.mount("/proc", ProcFS(procs, table), fstype="proc", source="proc")
    names = await vfs.read_dir("/")
    assert {"own", "data", "proc"} <= set(names)
    assert len(names) == len(set(names))


async def test_t10_mount_shadows_then_unmount_reveals(table, vfs):
    await vfs.write_file("/data/hidden.txt", b"under")
    await table.mount("/data", memory_vfs())
    assert not await vfs.exists("/data/hidden.txt")
    assert await vfs.read_dir("/data") == []
    await table.unmount("/data")
    assert await vfs.read_file("/data/hidden.txt") == b"under"


async def test_t11_mount_creates_mount_point_in_parent(table, root_fs):
    await table.mount("/mnt/external", memory_vfs())
    st = await PathVFS(root_fs).stat("/mnt/external")
    assert st.is_directory


async def test_t12_stat_of_mount_point_is_mounted_root(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    st = await vfs.stat("/data")
    assert st.is_directory
    assert st.ino == (1 << SHIFT) | data.root_ino
    entries = {e.name: e for e in await vfs.read_dir_stat("/")}
    assert entries["data"].stat.ino == st.ino  # listing shows the mounted root


async def test_t13_proc_mounts(table, procs):
    await table.mount("/data", memory_vfs())
    await table.mount("/cache", memory_vfs(), read_only=True)
    await table.mount("/proc", ProcFS(procs, table), fstype="proc", source="proc")
    text = await PathVFS(table).read_text_file("/proc/mounts")
    lines = text.splitlines()
    assert any(line.split()[1] == "/" and line.split()[3].startswith("rw") for line in lines)
    assert any(line.split()[1] == "/data" and line.split()[3].startswith("rw") for line in lines)
    assert any(line.split()[1] == "/cache" and line.split()[3].startswith("ro") for line in lines)
    assert "proc /proc proc rw,relatime 0 0" in lines
    assert all(len(line.split()) == 6 for line in lines)


# ---- beyond the seed -------------------------------------------------------------------------
async def test_mount_errors(table, vfs):
    await raises("EINVAL", table.mount("/", memory_vfs()))
    await table.mount("/data", memory_vfs())
    await raises("EEXIST", table.mount("/data/", memory_vfs()))
    await raises("EINVAL", table.unmount("/"))
    await raises("EINVAL", table.unmount("/nothing"))
    await vfs.write_file("/file", b"")
    await raises("ENOTDIR", table.mount("/file", memory_vfs()))


async def test_unmount_busy_with_open_handle_or_nested_mount(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/f", b"x")
    ino = (await vfs.stat("/data/f")).ino
    fh = await table.open(ino, os.O_RDONLY)
    await raises("EBUSY", table.unmount("/data"))
    await table.release(fh)
    dfh = await table.opendir((await vfs.stat("/data")).ino)
    await raises("EBUSY", table.unmount("/data"))
    await table.releasedir(dfh)
    await table.mount("/data/sub", memory_vfs())
    await raises("EBUSY", table.unmount("/data"))
    await table.unmount("/data/sub")
    await table.unmount("/data")
    assert table.mounts()[-1].path == "/"


async def test_stale_inodes_after_unmount(table, vfs):
    await table.mount("/data", memory_vfs())
    await vfs.write_file("/data/f", b"x")
    ino = (await vfs.stat("/data/f")).ino
    await table.unmount("/data")
    await raises("ENOENT", table.getattr(ino))
    await table.mount("/data", memory_vfs())  # a new id: old numbers never reach it
    await raises("ENOENT", table.getattr(ino))


async def test_mount_point_cannot_be_removed_or_renamed(table, vfs):
    await table.mount("/data", memory_vfs())
    await raises("EBUSY", vfs.remove_dir("/data"))
    await raises("EBUSY", vfs.rename("/data", "/data2"))
    await vfs.mkdir("/other")
    await raises("EBUSY", vfs.rename("/other", "/data"))


async def test_dotdot_of_mounted_root(table, vfs):
    await table.mount("/a/b", memory_vfs())
    b = await vfs.stat("/a/b")
    a = await vfs.stat("/a")
    assert (await table.lookup(b.ino, b"..")).ino == a.ino
    await vfs.write_file("/a/x", b"1")
    assert await vfs.read_file("/a/b/../x") == b"1"
    assert await vfs.realpath("/a/b/../b") == "/a/b"  # no doubled slashes (Q8)


async def test_hidden_mount_reachable_not_listed(table, vfs):
    hidden = memory_vfs()
    await PathVFS(hidden).write_file("/stats", b"s")
    await table.mount("/.vfs", hidden, hidden=True, read_only=True)
    assert ".vfs" not in await vfs.read_dir("/")
    assert await vfs.read_file("/.vfs/stats") == b"s"
    assert "/.vfs" not in table.mounts_text()


async def test_inode_numbers_root_unshifted_others_shifted(table, vfs, root_fs):
    await vfs.write_file("/r", b"")
    assert (await vfs.stat("/r")).ino == (await PathVFS(root_fs).stat("/r")).ino
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/d", b"")
    local = (await PathVFS(data).stat("/d")).ino
    assert (await vfs.stat("/data/d")).ino == (1 << SHIFT) | local
    fs, loc = table.fs_of((await vfs.stat("/data/d")).ino)
    assert fs is data and loc == local


async def test_readdir_batches_inside_mount_have_global_inos(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    for i in range(300):
        await vfs.write_file(f"/data/f{i}", b"")
    entries = await vfs.read_dir_stat("/data")
    assert len(entries) == 300
    assert all(e.stat.ino >> SHIFT == 1 for e in entries)


async def test_create_over_mount_point_is_eexist(table, vfs):
    await table.mount("/data", memory_vfs())
    await raises("EEXIST", table.mkdir(table.root_ino, b"data", 0o755))
    await raises("EEXIST", table.create(table.root_ino, b"data", 0o644, os.O_WRONLY))


async def test_mount_listener_called(table):
    seen = []
    table.add_listener(lambda p, n: seen.append((p, n)))
    await table.mount("/data", memory_vfs())
    await table.unmount("/data")
    assert seen == [(table.root_ino, b"data"), (table.root_ino, b"data")]


async def test_mountinfo_format(table):
    await table.mount("/data dir", memory_vfs(), source="mem", fstype="tmpfs")
    lines = table.mountinfo_text().splitlines()
    assert len(lines) == 2
    ids = {}
    for line in lines:
        left, right = line.split(" - ")
        f = left.split()
        mnt_id, parent, devno, root, point, opts = f[:6]
        assert devno.count(":") == 1 and all(x.isdigit() for x in devno.split(":"))
        assert root == "/" and opts in ("rw,relatime", "ro,relatime")
        fstype, source, superopts = right.split()
        ids[point] = (int(mnt_id), int(parent))
    assert ids["/data\\040dir"][1] == ids["/"][0]
    assert "mem /data\\040dir tmpfs rw,relatime 0 0" in table.mounts_text()
    assert table.mount_for_path("/data dir/x").path == "/data dir"
    assert table.mount_for_path("/data").path == "/"


def test_normalize():
    assert normalize("") == "/"
    assert normalize("//a/./b/../c/") == "/a/c"
    assert normalize("/../..") == "/"


async def test_setattr_and_xattr_forwarded(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/f", b"abc")
    ino = (await vfs.stat("/data/f")).ino
    a = await table.setattr(ino, SetAttr(mode=0o600))
    assert a.ino == ino and stat.S_IMODE(a.mode) == 0o600
    assert stat.S_IMODE((await PathVFS(data).stat("/f")).mode) == 0o600


async def test_permission_caller_forwarded(table, vfs):
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.mkdir("/data/priv")
    await vfs.chmod("/data/priv", 0o700)
    user = vfs.with_caller(Caller(uid=1000, gid=1000, pid=5))
    await raises("EACCES", user.write_file("/data/priv/x", b""))


# ---- differential: the same operations against real Linux tmpfs mounts --------------------------

PATHS = ["/x", "/y", "/a/x", "/a/y", "/a/b/x", "/c/f", "/c/x", "/a", "/a/b", "/c", "/d", "/a/d",
         "/d/x"]
OPS = ["write", "mkdir", "rmdir", "unlink", "rename", "link", "list", "stat"]
STEP = hst.tuples(hst.sampled_from(OPS), hst.sampled_from(PATHS), hst.sampled_from(PATHS))


def _can_mount() -> bool:
    return os.geteuid() == 0 and os.path.exists("/bin/mount")


def _host_op(root: str, op: str, a: str, b: str):
    try:
        if op == "write":
            if not os.path.isdir(os.path.dirname(root + a)):
                return "skip"  # PathVFS.write_file creates parents (seed); not a mount question
            fd = os.open(root + a, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"data")
            os.close(fd)
        elif op == "mkdir":
            os.mkdir(root + a)
        elif op == "rmdir":
            os.rmdir(root + a)
        elif op == "unlink":
            os.unlink(root + a)
        elif op == "rename":
            os.rename(root + a, root + b)
        elif op == "link":
            if os.path.isdir(root + a):
                return "skip"  # dir sources: ChunkedVFS's order (EPERM vs EEXIST), not the table's
            os.link(root + a, root + b)
        elif op == "list":
            return sorted(os.listdir(root + a))
        elif op == "stat":
            st = os.lstat(root + a)
            return ("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0)
        return "ok"
    except OSError as e:
        return _errno.errorcode[e.errno]


async def _our_op(vfs: PathVFS, op: str, a: str, b: str):
    """The mount table at the inode level (parents resolved by PathVFS), so the order of
    its checks is what is compared: Linux resolves parents, then checks EXDEV/EROFS, then
    looks the names up."""
    table = vfs.fs

    async def parent(path: str) -> tuple[int, bytes]:
        head, _, name = path.rpartition("/")
        ino, attr = await vfs.resolve(head or "/")
        if not attr.is_dir:
            raise KernelError("ENOTDIR", "not a directory")
        return ino, name.encode()

    try:
        if op == "write":
            await vfs.write_file(a, b"data")
        elif op == "mkdir":
            await table.mkdir(*await parent(a), 0o755)
        elif op == "rmdir":
            await table.rmdir(*await parent(a))
        elif op == "unlink":
            await table.unlink(*await parent(a))
        elif op == "rename":
            await table.rename(*await parent(a), *await parent(b))
        elif op == "link":
            src = (await vfs.resolve(a, follow=False))[0]
            await table.link(src, *await parent(b))
        elif op == "list":
            return sorted(await vfs.read_dir(a))
        elif op == "stat":
            st = await vfs.lstat(a)
            return ("dir" if st.is_directory else "file", st.nlink if not st.is_directory else 0)
        return "ok"
    except KernelError as e:
        return e.code


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount tmpfs")
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=hst.lists(STEP, min_size=1, max_size=14))
def test_differential_against_linux_mounts(steps):
    import trio

    base = tempfile.mkdtemp(prefix="vfsfuse-mtdiff-")
    mounted: list[str] = []
    try:
        os.makedirs(base + "/a")
        for point, opts in (("/a", "size=1m"), ("/a/b", "size=1m"), ("/c", "size=1m")):
            os.makedirs(base + point, exist_ok=True)
            _sh("mount", "-t", "tmpfs", "-o", opts, "tmpfs", base + point)
            mounted.append(base + point)
        with open(base + "/c/f", "wb") as f:
            f.write(b"ro")
        _sh("mount", "-o", "remount,ro", base + "/c")

        async def ours():
            from kernel.mounts import MountTable
            table = MountTable(memory_vfs())
            await table.mount("/a", memory_vfs())
            await table.mount("/a/b", memory_vfs())
            ro = memory_vfs()
            await PathVFS(ro).write_file("/f", b"ro")
            await table.mount("/c", ro, read_only=True)
            vfs = PathVFS(table)
            out = []
            for op, a, b in steps:
                want = _host_op(base, op, a, b)
                if want == "skip":
                    continue
                got = await _our_op(vfs, op, a, b)
                out.append(((op, a, b), got, want))
                assert got == want, out
        trio.run(ours)
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", base], capture_output=True)
