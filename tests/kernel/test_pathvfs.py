"""PathVFS semantics beyond the seed suite: the path walker's edge cases compared with real
Linux (a temp directory driven with ``os``), root as a target, bytes paths, and the
decisions recorded in docs/DECISIONS.md ("Path-level VFS")."""

from __future__ import annotations

import errno
import os
import stat as S

import pytest

from kernel.errors import KernelError
from kernel.fs import RENAME_EXCHANGE, RENAME_NOREPLACE, Caller
from kernel.pathvfs import PathVFS
from tests.conformance.vfs_suite import expect_code
from tests.paths import REPO
from vfsfuse.storage.store import memory_vfs


@pytest.fixture
async def vfs():
    fs = memory_vfs(chunk_size=1024, inline_threshold=256)
    async with fs.running():
        yield PathVFS(fs)


# -- a small tree, built the same way on Linux and on ours --------------------------------

FILES = {"f": b"hello", "d/g": b"gee", "d/sub/.keep": b""}
DIRS = ["d", "d/sub", "e"]
LINKS = {"sd": "d", "sf": "f", "dang": "nowhere", "dang2": "newt", "loop1": "loop2",
         "loop2": "loop1", "d/up": "../f", "d/parent": "..", "deep": "d/parent/d/up"}


def build_linux(root: str) -> None:
    for d in DIRS:
        os.mkdir(os.path.join(root, d))
    for p, data in FILES.items():
        with open(os.path.join(root, p), "wb") as fh:
            fh.write(data)
    for p, target in LINKS.items():
        os.symlink(target, os.path.join(root, p))


async def build_ours(v: PathVFS) -> None:
    for d in DIRS:
        await v.mkdir("/" + d)
    for p, data in FILES.items():
        await v.write_file("/" + p, data)
    for p, target in LINKS.items():
        await v.symlink(target, "/" + p)


def _kind(mode: int) -> str:
    return {S.S_IFDIR: "dir", S.S_IFREG: "file", S.S_IFLNK: "link"}[S.S_IFMT(mode)]


def snapshot_linux(root: str) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            kind = _kind(st.st_mode)
            extra = (os.readlink(full) if kind == "link" else
                     open(full, "rb").read() if kind == "file" else None)
            out[rel] = (kind, S.S_IMODE(st.st_mode), st.st_nlink if kind == "file" else 0, st.st_uid, extra)
    return out


async def snapshot_ours(v: PathVFS, base: str = "") -> dict:
    out = {}
    for ent in await v.read_dir_stat("/" + base):
        rel = f"{base}/{ent.name}" if base else ent.name
        st = ent.stat
        kind = _kind(st.mode)
        extra = (await v.readlink("/" + rel) if kind == "link" else
                 await v.read_file("/" + rel) if kind == "file" else None)
        out[rel] = (kind, S.S_IMODE(st.mode), st.nlink if kind == "file" else 0, st.uid, extra)
        if kind == "dir":
            out.update(await snapshot_ours(v, rel))
    return out


def _stat_view(mode: int, size: int):
    kind = _kind(mode)
    return (kind, size if kind != "dir" else None)


def linux_op(root: str, op: str, args: tuple):
    P = lambda p: root + "/" + p  # noqa: E731  (keeps a trailing slash)
    if op == "stat":
        st = os.stat(P(args[0]))
        return _stat_view(st.st_mode, st.st_size)
    if op == "lstat":
        st = os.lstat(P(args[0]))
        return _stat_view(st.st_mode, st.st_size)
    if op == "read":
        with open(P(args[0]), "rb") as fh:
            return fh.read()
    if op == "readlink":
        return os.readlink(P(args[0]))
    if op == "listdir":
        return sorted(os.listdir(P(args[0])))
    if op == "exists":
        return os.path.exists(P(args[0]))
    if op == "realpath":
        rel = os.path.relpath(os.path.realpath(P(args[0]), strict=True), root)
        return "/" if rel == "." else "/" + rel
    if op == "mkdir":
        return os.mkdir(P(args[0]))
    if op == "rmdir":
        return os.rmdir(P(args[0]))
    if op == "unlink":
        return os.unlink(P(args[0]))
    if op == "rename":
        return os.rename(P(args[0]), P(args[1]))
    if op == "link":
        return os.link(P(args[0]), P(args[1]), follow_symlinks=False)
    if op == "symlink":
        return os.symlink(args[0], P(args[1]))
    if op == "truncate":
        return os.truncate(P(args[0]), args[1])
    if op == "write":
        fd = os.open(P(args[0]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, args[1])
        finally:
            os.close(fd)
        return None
    if op == "chmod":
        return os.chmod(P(args[0]), args[1])
    if op == "chown":
        return os.chown(P(args[0]), args[1], args[2])
    if op == "rename2":
        from tests.storage.test_vfs_differential import _renameat2
        return _renameat2(P(args[0]), P(args[1]), args[2])
    raise AssertionError(op)


async def our_op(v: PathVFS, op: str, args: tuple):
    p = "/" + args[0] if op != "symlink" else args[0]
    if op in ("stat", "lstat"):
        st = await getattr(v, op)(p)
        return _stat_view(st.mode, st.size)
    if op == "read":
        return await v.read_file(p)
    if op == "readlink":
        return await v.readlink(p)
    if op == "listdir":
        return sorted(await v.read_dir(p))
    if op == "exists":
        return await v.exists(p)
    if op == "realpath":
        return await v.realpath(p)
    if op == "mkdir":
        return await v.mkdir(p)
    if op == "rmdir":
        return await v.remove_dir(p)
    if op == "unlink":
        return await v.remove_file(p)
    if op == "rename":
        return await v.rename(p, "/" + args[1])
    if op == "link":
        return await v.link(p, "/" + args[1])
    if op == "symlink":
        return await v.symlink(args[0], "/" + args[1])
    if op == "truncate":
        return await v.truncate(p, args[1])
    if op == "write":
        return await v.write_file(p, args[1])
    if op == "chmod":
        return await v.chmod(p, args[1])
    if op == "chown":
        return await v.chown(p, args[1], args[2])
    if op == "rename2":
        return await v.rename(p, "/" + args[1], args[2])
    raise AssertionError(op)


LONG = "a" * 256
CASES = [
    ("stat", ("f/",)), ("stat", ("f/.",)), ("stat", ("f/..",)), ("stat", ("d/",)), ("stat", ("sd/",)),
    ("stat", ("sd/g",)), ("stat", ("sf/",)), ("stat", ("sf",)), ("stat", ("dang",)), ("stat", ("loop1",)),
    ("stat", ("loop1/x",)), ("stat", ("d/../f",)), ("stat", ("d/./g",)), ("stat", ("d//g",)),
    ("stat", ("nope/x",)), ("stat", ("f/x",)), ("stat", (LONG,)), ("stat", ("nope/" + LONG,)),
    ("stat", ("d/up",)), ("stat", ("deep",)), ("stat", ("d/parent/f",)), ("stat", ("sd/parent/sd/g",)),
    ("lstat", ("sd",)), ("lstat", ("sd/",)), ("lstat", ("dang",)), ("lstat", ("loop1",)), ("lstat", ("d/up",)),
    ("read", ("d",)), ("read", ("sf",)), ("read", ("dang",)), ("read", ("d/up",)), ("read", ("deep",)),
    ("readlink", ("f",)), ("readlink", ("sd",)), ("readlink", ("d",)), ("readlink", ("sd/",)),
    ("readlink", ("nope",)), ("listdir", ("sd",)), ("listdir", ("f",)), ("listdir", ("sf",)),
    ("listdir", ("d/parent/e",)), ("exists", ("f/x",)), ("exists", ("loop1",)), ("exists", ("dang",)),
    ("exists", ("sd/g",)), ("realpath", ("deep",)), ("realpath", ("sd/sub/..",)), ("realpath", ("dang",)),
    ("realpath", ("d/parent",)),
    ("mkdir", ("f",)), ("mkdir", ("d",)), ("mkdir", ("f/x",)), ("mkdir", ("nope/x",)), ("mkdir", ("d/.",)),
    ("mkdir", ("d/..",)), ("mkdir", ("x/",)), ("mkdir", ("sd/new",)), ("mkdir", ("dang",)),
    ("mkdir", ("sd/parent/e/n",)),
    ("unlink", ("d",)), ("unlink", ("sd",)), ("unlink", ("f/",)), ("unlink", ("d/",)), ("unlink", ("sd/",)),
    ("unlink", ("d/.",)), ("unlink", ("sd/g",)), ("unlink", ("nope",)), ("unlink", ("dang",)),
    ("rmdir", ("f",)), ("rmdir", ("sd",)), ("rmdir", ("sd/",)), ("rmdir", ("d/.",)), ("rmdir", ("d/..",)),
    ("rmdir", ("nope",)), ("rmdir", ("d",)), ("rmdir", ("e",)), ("rmdir", ("e/",)), ("rmdir", ("sd/sub",)),
    ("rename", ("f", "d")), ("rename", ("d", "f")), ("rename", ("d", "d/sub/x")), ("rename", ("f", "g/")),
    ("rename", ("f/", "g")), ("rename", ("d", "z/")), ("rename", ("f", "f")), ("rename", ("nope", "x")),
    ("rename", ("f", "nope/x")), ("rename", ("d/.", "z")), ("rename", ("d", "sd")), ("rename", ("e", "d")),
    ("rename", ("d/sub", "e")), ("rename", ("sd", "e")), ("rename", ("f", "sf")), ("rename", ("sf", "f")),
    ("rename", ("d", "e/d")), ("rename", ("sd/g", "sd/h")), ("rename", ("d", "d")),
    ("rename", ("e", "d/parent/e2")), ("rename", ("d/up", "d")), ("rename", ("d/sub", "d")),
    ("rename", ("d/sub/.keep", "d")), ("rename", ("d/g", "sd")),
    ("link", ("d", "x")), ("link", ("d", "f")), ("link", ("d", "nope/x")), ("link", ("f", "d")),
    ("link", ("f", "x/")), ("link", ("sf", "hl")),
    ("link", ("f", "d/hl")), ("link", ("nope", "x")), ("link", ("f", "dang")), ("link", ("dang", "dl")),
    ("symlink", ("t", "f")), ("symlink", ("t", "x/")), ("symlink", ("t", "f/")), ("symlink", ("t", "nope/x")),
    ("symlink", ("t", "d/new")),
    ("truncate", ("d", 0)), ("truncate", ("f", -1)), ("truncate", ("sf", 2)), ("truncate", ("f", 3000)),
    ("truncate", ("dang", 1)),
    ("write", ("d", b"x")), ("write", ("x/", b"x")), ("write", ("dang2", b"new")), ("write", ("sd", b"x")),
    ("write", ("f/", b"x")), ("write", ("f/x", b"x")), ("write", ("sf", b"via link")), ("write", ("loop1", b"x")),
    ("write", ("d/up", b"up")), ("write", ("dang", b"x")),
    ("chmod", ("sf", 0o600)), ("chmod", ("d", 0o700)), ("chmod", ("dang", 0o600)),
    ("chown", ("sf", -1, -1)), ("chown", ("d", 5, -1)), ("chown", ("dang", 1, 1)),
    ("rename2", ("f", "d", RENAME_EXCHANGE)), ("rename2", ("f", "sf", RENAME_EXCHANGE)),
    ("rename2", ("d", "e", RENAME_EXCHANGE)), ("rename2", ("d/sub", "e", RENAME_EXCHANGE)),
    ("rename2", ("d", "d/sub", RENAME_EXCHANGE)), ("rename2", ("d/sub", "d", RENAME_EXCHANGE)),
    ("rename2", ("f", "nope", RENAME_EXCHANGE)), ("rename2", ("f", "e", RENAME_NOREPLACE)),
    ("rename2", ("f", "new", RENAME_NOREPLACE)), ("rename2", ("f", "new", RENAME_NOREPLACE | RENAME_EXCHANGE)),
    ("rename2", ("f", "f", RENAME_EXCHANGE)), ("rename2", ("f", "f", RENAME_NOREPLACE)),
]


def _outcome_linux(root, op, args):
    try:
        return ("ok", linux_op(root, op, args))
    except OSError as e:
        return ("err", errno.errorcode[e.errno])


async def _outcome_ours(v, op, args):
    try:
        return ("ok", await our_op(v, op, args))
    except KernelError as e:
        return ("err", e.code)


@pytest.mark.skipif(os.geteuid() != 0, reason="the Linux side chowns files: needs root")
@pytest.mark.parametrize("op,args", CASES, ids=lambda x: repr(x) if isinstance(x, tuple) else x)
async def test_same_as_linux(vfs, tmp_path, op, args):
    root = str(tmp_path / "lx")
    os.mkdir(root)
    os.umask(0o022)
    build_linux(root)
    await build_ours(vfs)
    want = _outcome_linux(root, op, args)
    got = await _outcome_ours(vfs, op, args)
    assert got == want
    assert await snapshot_ours(vfs) == snapshot_linux(root)


# -- root as a target (Linux answers; tmp dirs cannot test these) ------------------------


async def test_root_as_target(vfs):
    root = await vfs.lstat("/")
    assert root.is_directory and root.ino == vfs.fs.root_ino
    for path in ("/", "//", "/..", "/../..", "/."):
        assert (await vfs.stat(path)).ino == root.ino
    with expect_code("EINVAL"):
        await vfs.readlink("/")
    with expect_code("EISDIR"):
        await vfs.remove_file("/")
    with expect_code("EBUSY"):
        await vfs.remove_dir("/")
    with expect_code("EEXIST"):
        await vfs.mkdir("/")
    with expect_code("EEXIST"):
        await vfs.create_dir("/")
    await vfs.mkdir("/", recursive=True)
    with expect_code("EEXIST"):
        await vfs.symlink("x", "/")
    with expect_code("EISDIR"):
        await vfs.write_file("/", "x")
    await vfs.write_file("/f", "x")
    with expect_code("EBUSY"):
        await vfs.rename("/", "/x")
    with expect_code("EBUSY"):
        await vfs.rename("/f", "/")
    with expect_code("EEXIST"):
        await vfs.link("/f", "/")
    assert await vfs.realpath("/") == "/"
    assert sorted(await vfs.read_dir("/..")) == ["f"]


async def test_dotdot_is_clamped_and_physical(vfs):
    await vfs.write_file("/a/b/file", "x")
    await vfs.symlink("/a/b", "/lnk")
    assert await vfs.realpath("/../../a/./b/../b//file") == "/a/b/file"
    # ".." after a symlink goes to the target's parent, as on Linux
    assert await vfs.realpath("/lnk/..") == "/a"
    assert await vfs.read_text_file("/lnk/../b/file") == "x"


async def test_symlink_hops_count_across_the_whole_path(vfs):
    await vfs.mkdir("/d0")
    await vfs.write_file("/d0/end", "end")
    for i in range(1, 41):  # /d40 -> /d39 -> ... -> /d0: 40 hops
        await vfs.symlink(f"d{i - 1}", f"/d{i}")
    assert await vfs.read_text_file("/d40/end") == "end"
    await vfs.symlink("d40", "/d41")
    with expect_code("ELOOP"):
        await vfs.read_file("/d41/end")
    assert await vfs.exists("/d41/end") is False


async def test_name_and_path_limits(vfs):
    await vfs.write_file("/" + "n" * 255, "ok")
    with expect_code("ENAMETOOLONG"):
        await vfs.write_file("/" + "n" * 256, "x")
    with expect_code("ENAMETOOLONG"):
        await vfs.mkdir("/" + "n" * 256)
    with expect_code("ENAMETOOLONG"):
        await vfs.stat("/" + "a/" * 2048)
    with expect_code("EINVAL"):
        await vfs.stat("/a\0b")
    with expect_code("ENOENT"):
        await vfs.stat("")


# -- bytes paths and names -------------------------------------------------------------------


async def test_bytes_paths_give_bytes(vfs):
    name = b"caf\xe9"  # not UTF-8
    await vfs.write_file(b"/dir/" + name, b"latin-1")
    assert await vfs.read_dir(b"/dir") == [name]
    assert await vfs.read_file(b"/dir/" + name) == b"latin-1"
    assert await vfs.realpath(b"/dir/./" + name) == b"/dir/" + name
    # the same name through a str path uses surrogate escapes, like os.fsdecode
    assert await vfs.read_dir("/dir") == [os.fsdecode(name)]
    assert await vfs.read_file("/dir/" + os.fsdecode(name)) == b"latin-1"
    await vfs.symlink(b"/dir/" + name, b"/l")
    assert await vfs.readlink(b"/l") == b"/dir/" + name
    assert (await vfs.read_dir_with_types(b"/dir"))[0].name == name


# -- documented decisions ----------------------------------------------------------------------


async def test_write_file_creates_parents_with_linux_default_modes(vfs):
    await vfs.write_file("/p/q/file", "x")
    assert (await vfs.stat("/p")).mode == S.S_IFDIR | 0o755
    assert (await vfs.stat("/p/q/file")).mode == S.S_IFREG | 0o644
    with expect_code("ENOTDIR"):  # never "inside" a file (seed Q3)
        await vfs.write_file("/p/q/file/inner", "x")
    with expect_code("ENOTDIR"):
        await vfs.mkdir("/p/q/file/sub", recursive=True)
    with expect_code("EEXIST"):
        await vfs.mkdir("/p/q/file", recursive=True)


async def test_write_file_follows_symlinks_and_creates_dangling_targets(vfs):
    await vfs.mkdir("/real")
    await vfs.symlink("/real", "/via")
    await vfs.write_file("/via/made/deeper", "x")  # parents created through the link
    assert await vfs.read_text_file("/real/made/deeper") == "x"
    await vfs.symlink("target", "/real/dangling")
    await vfs.write_file("/real/dangling", "created")
    assert await vfs.read_text_file("/real/target") == "created"
    assert (await vfs.lstat("/real/dangling")).is_symbolic_link


async def test_write_file_truncates_longer_content(vfs):
    await vfs.write_file("/t", b"x" * 5000)
    await vfs.write_file("/t", b"short")
    assert await vfs.read_file("/t") == b"short"
    assert (await vfs.stat("/t")).size == 5


async def test_link_does_not_follow_a_final_symlink_unless_asked(vfs):
    await vfs.write_file("/target", "t")
    await vfs.symlink("target", "/sym")
    await vfs.link("/sym", "/hard-to-link")
    assert (await vfs.lstat("/hard-to-link")).is_symbolic_link
    assert (await vfs.lstat("/sym")).nlink == 2
    await vfs.link("/sym", "/hard-to-target", follow_symlinks=True)
    assert (await vfs.lstat("/hard-to-target")).is_file
    assert (await vfs.stat("/target")).nlink == 2


async def test_chmod_ignores_type_bits_and_chown_minus_one_keeps(vfs):
    await vfs.write_file("/m", "x")
    await vfs.chmod("/m", S.S_IFDIR | 0o4751)
    st = await vfs.stat("/m")
    assert st.mode == S.S_IFREG | 0o4751 and not st.is_directory
    await vfs.chown("/m", -1, -1)  # Linux: any chown of a file drops set-user-ID, even as root
    assert (await vfs.stat("/m")).mode == S.S_IFREG | 0o751
    await vfs.chmod("/m", 0o6751)
    await vfs.chown("/m", 0, -1)
    assert (await vfs.stat("/m")).mode == S.S_IFREG | 0o751
    await vfs.chmod("/m", 0o2741)  # set-group-ID without group-execute marks locking: kept
    await vfs.chown("/m", -1, 0)
    assert (await vfs.stat("/m")).mode == S.S_IFREG | 0o2741
    await vfs.chown("/m", 7, 8)
    await vfs.chown("/m", -1, 9)
    await vfs.chown("/m", 10, -1)
    st = await vfs.stat("/m")
    assert (st.uid, st.gid) == (10, 9)


async def test_utimes_fractions_and_now(vfs):
    await vfs.write_file("/u", "x")
    await vfs.utimes("/u", 1.5, 2.25)
    st = await vfs.stat("/u")
    assert (st.atime_ms, st.mtime_ms) == (1500, 2250)
    assert (st.atime_ns, st.mtime_ns) == (1_500_000_000, 2_250_000_000)
    await vfs.utimes("/u", None, None)
    st = await vfs.stat("/u")
    assert st.atime_ms > 1e12 and st.mtime_ms > 1e12


async def test_copy_rules(vfs):
    await vfs.write_file("/src", b"abc" * 1000)
    await vfs.chmod("/src", 0o600)
    await vfs.chown("/src", 5, 6)
    await vfs.copy("/src", "/new/parent/dst")
    st = await vfs.stat("/new/parent/dst")
    assert (S.S_IMODE(st.mode), st.uid, st.gid, st.size) == (0o600, 5, 6, 3000)
    assert await vfs.read_file("/new/parent/dst") == b"abc" * 1000
    with expect_code("EEXIST"):
        await vfs.copy("/src", "/new/parent/dst")
    await vfs.symlink("nowhere", "/dangle")
    with expect_code("EEXIST"):
        await vfs.copy("/src", "/dangle")
    await vfs.mkdir("/dir")
    with expect_code("EISDIR"):
        await vfs.copy("/dir", "/dir2")
    with expect_code("ENOENT"):
        await vfs.copy("/missing", "/x")


async def test_copy_keeps_holes_and_trailing_hole(vfs):
    await vfs.write_file("/sparse", b"")
    await vfs.pwrite("/sparse", 3000, b"mid")
    await vfs.truncate("/sparse", 9000)
    await vfs.copy("/sparse", "/sparse2")
    assert await vfs.read_file("/sparse2") == await vfs.read_file("/sparse")
    assert (await vfs.stat("/sparse2")).size == 9000


async def test_exists_is_false_for_every_resolution_failure(vfs):
    await vfs.write_file("/f", "x")
    await vfs.symlink("/loop", "/loop")
    for path in ("/nope", "/f/x", "/loop", "/" + "x" * 300):
        assert await vfs.exists(path) is False


async def test_pread_pwrite_edges(vfs):
    await vfs.write_file("/pw", "0123456789")
    assert await vfs.pwrite("/pw", 3, b"abc") == 3
    assert await vfs.pwrite("/pw", 0, b"") == 0
    with expect_code("EINVAL"):
        await vfs.pwrite("/pw", -1, b"x")
    with expect_code("EINVAL"):
        await vfs.pread("/pw", -1, 1)
    await vfs.mkdir("/dir")
    with expect_code("EISDIR"):
        await vfs.pwrite("/dir", 0, b"")
    with expect_code("EISDIR"):
        await vfs.pread("/dir", 0, 1)
    assert await vfs.pread("/pw", 2, 100) == b"2abc6789"


async def test_listing_pages_through_many_entries(vfs):
    await vfs.mkdir("/many")
    names = [f"f{i:04d}" for i in range(1300)]
    for n in names:
        await vfs.write_file(f"/many/{n}", n)
    assert sorted(await vfs.read_dir("/many")) == names
    stats = await vfs.read_dir_stat("/many")
    assert len(stats) == 1300 and all(e.stat.size == 5 for e in stats)


async def test_read_file_large_and_fsync_on_directory(vfs):
    data = os.urandom(300_000)
    await vfs.write_file("/big", data)
    assert await vfs.read_file("/big") == data
    await vfs.fsync("/big")
    await vfs.fsync("/")
    assert await vfs.read_file("/big") == data


async def test_resolve_helpers(vfs):
    await vfs.write_file("/d/f", "x")
    await vfs.symlink("f", "/d/l")
    ino, attr = await vfs.resolve("/d/l")
    assert attr.is_reg and ino == (await vfs.stat("/d/f")).ino
    ino2, attr2 = await vfs.resolve("/d/l", follow=False)
    assert attr2.is_symlink and ino2 != ino
    parent, name = await vfs.resolve_parent("/d/new")
    assert (parent, name) == ((await vfs.stat("/d")).ino, b"new")
    with expect_code("EEXIST"):
        await vfs.resolve_parent("/")
    with expect_code("ENOENT"):
        await vfs.resolve_parent("/missing/new")


async def test_open_create_is_open_with_o_creat(vfs):
    fs = vfs.fs
    fh, attr, created = await vfs.open_create("/oc", os.O_WRONLY | os.O_CREAT, mode=0o640)
    assert created and attr.is_reg and S.S_IMODE(attr.mode) == 0o640
    await fs.write(fh, 0, b"one")
    await fs.release(fh)
    fh, attr, created = await vfs.open_create("/oc", os.O_RDWR | os.O_CREAT)
    assert not created and await fs.read(fh, 0, 10) == b"one"
    await fs.release(fh)
    with expect_code("EEXIST"):
        await vfs.open_create("/oc", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    await vfs.symlink("made-by-open", "/dangling")
    with expect_code("EEXIST"):  # O_EXCL never follows a symlink
        await vfs.open_create("/dangling", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    fh, attr, created = await vfs.open_create("/dangling", os.O_WRONLY | os.O_CREAT)
    await fs.release(fh)
    assert created and (await vfs.stat("/made-by-open")).ino == attr.ino
    with expect_code("ENOENT"):
        await vfs.open_create("/no/parent", os.O_WRONLY | os.O_CREAT)
    fh, _, created = await vfs.open_create("/no/parent", os.O_WRONLY | os.O_CREAT, mkdirs=True)
    await fs.release(fh)
    assert created and (await vfs.stat("/no")).is_directory


async def test_caller_owns_what_it_creates_and_is_checked(vfs):
    await vfs.write_file("/secret", "root only")
    await vfs.chmod("/secret", 0o600)
    await vfs.mkdir("/home")
    await vfs.chmod("/home", 0o777)
    user = vfs.with_caller(Caller(uid=1000, gid=1000))
    await user.write_file("/home/mine", "x")
    st = await user.stat("/home/mine")
    assert (st.uid, st.gid, S.S_IMODE(st.mode)) == (1000, 1000, 0o644)
    with expect_code("EACCES"):
        await user.read_file("/secret")
    with expect_code("EACCES"):
        await user.write_file("/not-mine", "x")


# -- the benchmark script runs (figures are printed, never asserted) --------------------------


def test_bench_vfs_quick_smoke(tmp_path):
    import subprocess

    script = REPO / "scripts" / "bench-vfs"
    proc = subprocess.run([str(script), "--quick", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for key in ("seq-write", "seq-read", "create", "list+stat", "unlink", "peak-rss"):
        assert sum(1 for ln in lines if ln.startswith(key + " ")) == 1, (key, proc.stdout)
    assert all(("ok" in ln or "MISS" in ln) for ln in lines[1:])
    assert list(tmp_path.iterdir()) == []  # the store was removed


# -- the same, as an unprivileged user (uid/gid 65534, no supplementary groups) --------------

NOBODY = 65534
U_DIRS = {"t": 0o1777, "ww": 0o777, "nx": 0o700, "ww/sub": 0o755, "ww/mine": 0o755, "d": 0o755}
U_FILES = {"t/mine": 0o644, "t/root": 0o644, "ww/rootfile": 0o644, "ww/open": 0o666, "nx/x": 0o644,
           "f": 0o644}
U_OWNED = ["t/mine", "ww/mine"]
# Set-ID files of the user's (chmod after the chown, which clears those bits even for root).
U_SETID = {"ww/suid": 0o4755, "ww/sgid": 0o2775, "ww/sgidnx": 0o2764}
USER_CASES = [
    # Writing or truncating without CAP_FSETID clears set-user-ID, and set-group-ID when the
    # group may execute; an O_TRUNC open does so even when nothing is written.
    ("write", ("ww/suid", b"")), ("write", ("ww/sgid", b"")), ("write", ("ww/sgidnx", b"")),
    ("write", ("ww/suid", b"x")), ("truncate", ("ww/suid", 0)), ("truncate", ("ww/sgid", 2)),
    ("unlink", ("t/root",)), ("unlink", ("t/mine",)), ("unlink", ("ww/rootfile",)), ("unlink", ("d/f2",)),
    ("rename", ("t/root", "t/x")), ("rename", ("t/mine", "t/y")), ("rename", ("ww/sub", "ww/s2")),
    ("rename", ("ww/sub", "t/sub")), ("rename", ("ww/mine", "t/mine2")), ("rename", ("t/mine", "t/root")),
    ("rename", ("ww/open", "ww/open")), ("rename", ("f", "ww/f")),
    ("stat", ("nx/x",)), ("stat", ("nx",)), ("read", ("nx",)), ("listdir", ("nx",)), ("read", ("d/../nx/x",)),
    ("exists", ("nx/x",)), ("realpath", ("nx/x",)), ("stat", ("nx/",)), ("stat", ("nx/.",)),
    ("link", ("f", "ww/l")), ("link", ("ww/open", "ww/l2")), ("link", ("t/mine", "ww/l3")),
    ("link", ("t/mine", "d/l4")), ("link", ("ww", "t/l5")), ("link", ("f", "t/mine")),
    ("truncate", ("f", 1)), ("truncate", ("ww/open", 1)), ("truncate", ("nx", 1)),
    ("write", ("f", b"x")), ("write", ("ww/new", b"x")), ("write", ("ww/open", b"o")), ("write", ("nx/y", b"x")),
    ("mkdir", ("d/x",)), ("mkdir", ("ww/x",)), ("mkdir", ("nx/..",)), ("mkdir", ("nx/x",)), ("mkdir", ("ww/sub",)),
    ("rmdir", ("nx/..",)), ("rmdir", ("ww/sub",)), ("rmdir", ("t",)), ("rmdir", ("ww/mine",)),
    ("chmod", ("f", 0o600)), ("chmod", ("t/mine", 0o600)), ("chown", ("t/mine", -1, NOBODY)),
    ("chown", ("t/mine", 0, -1)), ("chown", ("f", -1, -1)),
    ("symlink", ("x", "d/l")), ("symlink", ("x", "ww/l")), ("symlink", ("x", "t/root")),
]


def _build_user_tree_linux(root: str) -> None:
    for d, mode in U_DIRS.items():
        os.mkdir(f"{root}/{d}")
        os.chmod(f"{root}/{d}", mode)
    for p, mode in U_FILES.items():
        with open(f"{root}/{p}", "wb") as fh:
            fh.write(b"data")
        os.chmod(f"{root}/{p}", mode)
    for p in U_OWNED:
        os.chown(f"{root}/{p}", NOBODY, NOBODY)
    for p, mode in U_SETID.items():
        with open(f"{root}/{p}", "wb") as fh:
            fh.write(b"data")
        os.chown(f"{root}/{p}", NOBODY, NOBODY)
        os.chmod(f"{root}/{p}", mode)


async def _build_user_tree_ours(v: PathVFS) -> None:
    for d, mode in U_DIRS.items():
        await v.mkdir("/" + d)
        await v.chmod("/" + d, mode)
    for p, mode in U_FILES.items():
        await v.write_file("/" + p, b"data")
        await v.chmod("/" + p, mode)
    for p in U_OWNED:
        await v.chown("/" + p, NOBODY, NOBODY)
    for p, mode in U_SETID.items():
        await v.write_file("/" + p, b"data")
        await v.chown("/" + p, NOBODY, NOBODY)
        await v.chmod("/" + p, mode)


@pytest.fixture
def shm_root():
    """A Linux directory an unprivileged user can reach (pytest's tmp dirs are 0700)."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="pathvfs-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(base, 0o755)
    yield base + "/r"
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 on the Linux side needs root")
@pytest.mark.parametrize("op,args", USER_CASES, ids=lambda x: repr(x) if isinstance(x, tuple) else x)
async def test_same_as_linux_as_unprivileged_user(vfs, shm_root, op, args):
    os.umask(0o022)
    os.mkdir(shm_root)
    os.chmod(shm_root, 0o755)
    _build_user_tree_linux(shm_root)
    await vfs.chmod("/", 0o755)
    await _build_user_tree_ours(vfs)
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        want = _outcome_linux(shm_root, op, args)
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)
    got = await _outcome_ours(vfs.with_caller(Caller(uid=NOBODY, gid=NOBODY)), op, args)
    assert got == want
    assert await snapshot_ours(vfs) == snapshot_linux(shm_root)


@pytest.mark.skipif(os.geteuid() != 0, reason="the Linux side chowns a symlink: needs root")
async def test_nofollow_attribute_changes_match_linux(vfs, tmp_path):
    from kernel.fs import UTIME_NOW

    root = str(tmp_path)
    open(f"{root}/t", "wb").close()
    os.symlink("t", f"{root}/l")
    await vfs.write_file("/t", b"")
    await vfs.symlink("t", "/l")
    os.chown(f"{root}/l", 7, 8, follow_symlinks=False)
    await vfs.chown("/l", 7, 8, follow_symlinks=False)
    for p in ("t", "l"):
        lx, ours = os.lstat(f"{root}/{p}"), await vfs.lstat("/" + p)
        assert (ours.uid, ours.gid) == (lx.st_uid, lx.st_gid)
    with expect_code("EOPNOTSUPP"):  # fchmodat(AT_SYMLINK_NOFOLLOW) on a symlink (glibc >= 2.32)
        await vfs.chmod("/l", 0o600, follow_symlinks=False)
    await vfs.chmod("/t", 0o600, follow_symlinks=False)
    assert S.S_IMODE((await vfs.stat("/t")).mode) == 0o600
    exact = 1_700_000_000_123_456_789
    os.utime(f"{root}/l", ns=(exact, exact + 1), follow_symlinks=False)
    await vfs.utimens("/l", exact, exact + 1, follow_symlinks=False)
    st = await vfs.lstat("/l")
    assert (st.atime_ns, st.mtime_ns) == (os.lstat(f"{root}/l").st_atime_ns, os.lstat(f"{root}/l").st_mtime_ns)
    assert (await vfs.stat("/l")).mtime_ns != exact + 1  # the target kept its own times
    await vfs.utimens("/l", None, 5)  # follows; atime omitted
    st = await vfs.stat("/t")
    assert st.mtime_ns == 5 and st.atime_ns != 5
    await vfs.utimens("/t", UTIME_NOW, None)
    assert (await vfs.stat("/t")).atime_ns > exact
