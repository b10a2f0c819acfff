"""The mount table's directory cache (``MountTable.lookup_dir``) and the walker's use of it.

Every test first walks the paths it is about (so their directories are cached), then makes a
change — through the table, through the FUSE adapter's view of the table (``with_root``: how
changes made on the host through the mount arrive) or behind the table's back in another
mount — and checks that the next walk sees the change exactly as a walk without a cache would.
"""

from __future__ import annotations

import stat as S

import pytest
import trio

from kernel.errors import KernelError
from kernel.fs import RENAME_EXCHANGE, Caller, SetAttr
from kernel.mounts import MountTable
from kernel.pathvfs import PathVFS
from vfsfuse.storage.store import memory_vfs

USER = Caller(uid=1000, gid=1000)


async def raises(code: str, coro) -> None:
    with pytest.raises(KernelError) as ei:
        await coro
    assert ei.value.code == code, str(ei.value)


class CountingFS:
    """A store that counts its lookups and can hold one lookup until told to go on."""

    def __init__(self, fs) -> None:
        self._fs = fs
        self.lookups = 0
        self.hold: bytes | None = None
        self.held = trio.Event()
        self.go = trio.Event()

    def __getattr__(self, name):
        return getattr(self._fs, name)

    async def lookup(self, parent, name, caller=None):
        self.lookups += 1
        attr = await self._fs.lookup(parent, name, caller) if caller else await self._fs.lookup(parent, name)
        if name == self.hold:  # found: hold the answer back
            self.hold = None
            self.held.set()
            await self.go.wait()
        return attr


@pytest.fixture
def store():
    return memory_vfs()


@pytest.fixture
def counting(store):
    return CountingFS(store)


@pytest.fixture
def table(counting) -> MountTable:
    return MountTable(counting)


@pytest.fixture
def vfs(table) -> PathVFS:
    return PathVFS(table)


@pytest.fixture
def host(table, store) -> PathVFS:
    """The tree as the host sees it through the mount: the FUSE adapter's view of the table."""
    return PathVFS(table.with_root(store))


async def test_walks_through_cached_directories(vfs, counting):
    await vfs.write_file("/a/b/c/d/f", b"x")
    await vfs.stat("/a/b/c/d/f")
    before = counting.lookups
    for _ in range(10):
        await vfs.stat("/a/b/c/d/f")
    assert counting.lookups - before == 10  # only the last component, every time


async def test_the_last_component_is_never_cached(vfs):
    await vfs.write_file("/a/b/f", b"x")
    await vfs.stat("/a/b/f")
    await vfs.write_file("/a/b/f", b"longer")
    assert (await vfs.stat("/a/b/f")).size == 6
    await vfs.mkdir("/a/b/g")
    await vfs.write_file("/a/b/g/h", b"")
    st = await vfs.stat("/a/b")
    assert st.nlink == 3  # ".", its entry in /a, "g/.."


async def test_dot_and_dotdot_give_fresh_attributes(vfs):
    await vfs.write_file("/a/b/c/f", b"x")
    old = await vfs.stat("/a/b/.")
    await vfs.stat("/a/b/c/..")
    await trio.sleep(0.002)
    await vfs.mkdir("/a/b/new")
    for path in ("/a/b/.", "/a/b/c/..", "/a/b/c/../", "/a/b/./"):
        st = await vfs.stat(path)
        assert st.nlink == old.nlink + 1, path
        assert st.mtime_ns > old.mtime_ns, path


async def test_renamed_directory_under_a_cached_walk(vfs):
    await vfs.write_file("/w/old/sub/f", b"1")
    await vfs.stat("/w/old/sub/f")
    await vfs.rename("/w/old", "/w/new")
    await raises("ENOENT", vfs.stat("/w/old/sub/f"))
    assert await vfs.read_file("/w/new/sub/f") == b"1"
    await vfs.mkdir("/w/old")
    await raises("ENOENT", vfs.stat("/w/old/sub/f"))


async def test_rename_over_a_cached_directory(vfs):
    await vfs.write_file("/r/src/f", b"src")
    await vfs.mkdir("/r/dst/inner", recursive=True)
    await vfs.stat("/r/dst/inner")
    await vfs.remove_dir("/r/dst/inner")
    await vfs.stat("/r/dst/.")
    await vfs.rename("/r/src", "/r/dst")
    assert await vfs.read_file("/r/dst/f") == b"src"
    await raises("ENOENT", vfs.stat("/r/dst/inner"))


async def test_exchange_of_cached_directories(vfs):
    await vfs.write_file("/x/one/f", b"1")
    await vfs.write_file("/x/two/f", b"2")
    assert await vfs.read_file("/x/one/f") == b"1"
    assert await vfs.read_file("/x/two/f") == b"2"
    await vfs.rename("/x/one", "/x/two", RENAME_EXCHANGE)
    assert await vfs.read_file("/x/one/f") == b"2"
    assert await vfs.read_file("/x/two/f") == b"1"


async def test_removed_directory_replaced_by_a_file(vfs):
    await vfs.write_file("/q/d/f", b"x")
    await vfs.stat("/q/d/f")
    await vfs.remove_file("/q/d/f")
    await vfs.remove_dir("/q/d")
    await vfs.write_file("/q/d", b"now a file")
    await raises("ENOTDIR", vfs.stat("/q/d/f"))
    await raises("ENOTDIR", vfs.write_file("/q/d/f", b""))


async def test_removed_directory_replaced_by_a_symlink(vfs):
    await vfs.write_file("/s/real/f", b"real")
    await vfs.write_file("/s/d/f", b"old")
    assert await vfs.read_file("/s/d/f") == b"old"
    await vfs.remove_file("/s/d/f")
    await vfs.remove_dir("/s/d")
    await vfs.symlink("real", "/s/d")
    assert await vfs.read_file("/s/d/f") == b"real"


async def test_search_permission_on_cached_intermediate_directories(vfs):
    await vfs.write_file("/p/q/f", b"x")
    await vfs.chmod("/p", 0o755)
    await vfs.chmod("/p/q", 0o755)
    user = vfs.with_caller(USER)
    assert await user.read_file("/p/q/f") == b"x"  # now every directory is cached
    await vfs.chmod("/p/q", 0o700)
    await raises("EACCES", user.stat("/p/q/f"))
    await raises("EACCES", user.stat("/p/q/./f"))
    await vfs.chmod("/p/q", 0o711)
    assert await user.read_file("/p/q/f") == b"x"
    await vfs.chmod("/p", 0o600)
    await raises("EACCES", user.stat("/p/q/f"))
    await raises("EACCES", user.read_file("/p/q/f"))
    await vfs.chown("/p", 1000, 1000)
    await vfs.chmod("/p", 0o700)
    assert await user.read_file("/p/q/f") == b"x"  # the owner's bits now apply


async def test_root_walks_leave_no_grant_for_a_user(vfs):
    await vfs.mkdir("/locked/in", recursive=True)
    await vfs.write_file("/locked/in/f", b"x")
    await vfs.chmod("/locked", 0o700)
    assert await vfs.read_file("/locked/in/f") == b"x"  # root cached /locked and /locked/in
    user = vfs.with_caller(USER)
    await raises("EACCES", user.stat("/locked/in/f"))
    await raises("EACCES", user.write_file("/locked/in/g", b""))
    await raises("EACCES", user.remove_file("/locked/in/f"))


async def test_symlink_loops_still_loop(vfs):
    await vfs.mkdir("/l")
    await vfs.symlink("b", "/l/a")
    await vfs.symlink("a", "/l/b")
    await vfs.symlink("self/x", "/l/self")
    for _ in range(2):  # the second time with /l cached
        await raises("ELOOP", vfs.stat("/l/a"))
        await raises("ELOOP", vfs.stat("/l/a/f"))
        await raises("ELOOP", vfs.stat("/l/self"))


async def test_symlinked_directory_retargeted(vfs):
    await vfs.write_file("/t/one/f", b"1")
    await vfs.write_file("/t/two/f", b"2")
    await vfs.symlink("one", "/t/cur")
    assert await vfs.read_file("/t/cur/f") == b"1"
    await vfs.remove_file("/t/cur")
    await vfs.symlink("/t/two", "/t/cur")
    assert await vfs.read_file("/t/cur/f") == b"2"


async def test_dotdot_at_a_mount_root(table, vfs):
    await vfs.write_file("/top/f", b"top")
    data = memory_vfs()
    await table.mount("/top/m", data)
    await vfs.write_file("/top/m/sub/g", b"g")
    for _ in range(2):
        assert await vfs.read_file("/top/m/..//f") == b"top"
        assert await vfs.read_file("/top/m/sub/../../f") == b"top"
        assert await vfs.realpath("/top/m/sub/../..") == "/top"
        assert (await vfs.stat("/top/m/sub/../..")).ino == (await vfs.stat("/top")).ino


async def test_mount_and_unmount_over_a_cached_directory(table, vfs):
    await vfs.write_file("/mnt/below/f", b"below")
    assert await vfs.read_file("/mnt/below/f") == b"below"
    data = memory_vfs()
    await PathVFS(data).write_file("/below/f", b"mounted")
    await table.mount("/mnt", data)
    assert await vfs.read_file("/mnt/below/f") == b"mounted"
    await table.unmount("/mnt")
    assert await vfs.read_file("/mnt/below/f") == b"below"


async def test_other_mounts_are_walked_afresh(table, vfs):
    """Only the root mount's directories are cached: another filesystem may change on its own
    (/proc does), so a change made inside it, not through the table, is seen at once."""
    data = memory_vfs()
    await table.mount("/data", data)
    await vfs.write_file("/data/a/b/f", b"1")
    assert await vfs.read_file("/data/a/b/f") == b"1"
    inside = PathVFS(data)
    await inside.rename("/a", "/z")
    await raises("ENOENT", vfs.stat("/data/a/b/f"))
    assert await vfs.read_file("/data/z/b/f") == b"1"


# ---- changes from the host, through the FUSE adapter's view of the table ----------------------
async def test_host_rename_seen_by_a_cached_walk(vfs, host):
    await vfs.write_file("/home/u/proj/src/m.py", b"1")
    assert await vfs.read_file("/home/u/proj/src/m.py") == b"1"
    await host.rename("/home/u/proj", "/home/u/moved")
    await raises("ENOENT", vfs.stat("/home/u/proj/src/m.py"))
    assert await vfs.read_file("/home/u/moved/src/m.py") == b"1"


async def test_host_rmdir_and_recreate_seen(vfs, host):
    await vfs.write_file("/h/d/f", b"x")
    await vfs.stat("/h/d/f")
    await host.remove_file("/h/d/f")
    await host.remove_dir("/h/d")
    await raises("ENOENT", vfs.stat("/h/d/f"))
    await host.write_file("/h/d", b"file")
    await raises("ENOTDIR", vfs.stat("/h/d/f"))


async def test_host_chmod_seen(vfs, host):
    await vfs.write_file("/c/d/e/f", b"x")
    for d in ("/c", "/c/d", "/c/d/e"):
        await vfs.chmod(d, 0o755)
    user = vfs.with_caller(USER)
    assert await user.read_file("/c/d/e/f") == b"x"
    await host.chmod("/c/d", 0o700)
    await raises("EACCES", user.stat("/c/d/e/f"))
    await host.chmod("/c/d", 0o755)
    await host.chown("/c/d/e", 1000, 1000)
    await host.chmod("/c/d/e", 0o600)  # the owner's bits lack search now
    await raises("EACCES", user.stat("/c/d/e/f"))


async def test_host_exchange_seen(vfs, host):
    await vfs.write_file("/e/a/f", b"a")
    await vfs.write_file("/e/b/f", b"b")
    assert await vfs.read_file("/e/a/f") == b"a"
    await host.rename("/e/a", "/e/b", RENAME_EXCHANGE)
    assert await vfs.read_file("/e/a/f") == b"b"


# ---- races ------------------------------------------------------------------------------------
async def test_a_lookup_that_raced_a_removal_caches_nothing(table, vfs, counting, nursery):
    await vfs.write_file("/race/d/f", b"x")
    parent = (await vfs.stat("/race")).ino
    counting.hold = b"d"
    got: list = []

    async def walker() -> None:
        got.append(await table.lookup_dir(parent, b"d"))

    nursery.start_soon(walker)
    await counting.held.wait()  # the lookup found /race/d and is about to answer
    await vfs.remove_file("/race/d/f")
    await vfs.remove_dir("/race/d")
    counting.go.set()
    while not got:
        await trio.sleep(0)
    assert S.S_ISDIR(got[0].mode)
    await vfs.write_file("/race/d", b"a file now")
    await raises("ENOTDIR", vfs.stat("/race/d/f"))
    await raises("ENOTDIR", vfs.stat("/race/d/."))


async def test_setattr_that_fails_still_drops_the_entry(table, vfs):
    await vfs.write_file("/fail/d/f", b"x")
    await vfs.stat("/fail/d/f")
    ino = (await vfs.stat("/fail/d")).ino
    await raises("EPERM", table.setattr(ino, SetAttr(mode=S.S_IFDIR | 0o700), USER))
    assert ino not in table._dir_key


async def test_root_directory_mode_change_seen(vfs, host):
    await vfs.write_file("/top/f", b"x")
    user = vfs.with_caller(USER)
    assert await user.read_file("/top/f") == b"x"  # the root's attributes are cached now
    await vfs.chmod("/", 0o700)
    await raises("EACCES", user.stat("/top/f"))
    await raises("EACCES", user.stat("/top/."))
    await vfs.chmod("/", 0o755)
    assert await user.read_file("/top/f") == b"x"
    await host.chmod("/", 0o700)
    await raises("EACCES", user.stat("/top/f"))
