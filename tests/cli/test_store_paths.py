"""Issue 18: a ``STORE:/path`` is resolved inside the store (PathVFS rules), mounted or not,
with the same answer both ways; a ``MOUNTPOINT/path`` the host resolves outside the mount is
refused with one line.  Covers ``info`` and ``versions list|create|restore|prune``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time

import pytest
import trio

from cli.paths import MountView, resolve_inside
from kernel.errors import KernelError
from kernel.pathvfs import PathVFS
from vfsfuse.inspect.inspectfs import parse_kv
from vfsfuse.storage.store import open_store

from .conftest import assert_one_line_error, cli, script

SERVER = os.path.join(os.path.dirname(__file__), "serve_inspect.py")
STORE_HOSTNAME = b"store-hostname\n"

# STORE:/path -> the canonical path it names inside the store
RESOLVES = {
    "/../../../etc/hostname": "/etc/hostname",
    "/d/../../../../etc/hostname": "/etc/hostname",
    "/abs/hostname": "/etc/hostname",  # /abs -> /etc: the store's /etc
    "/abs-host": "/etc/hostname",  # -> /etc/hostname
    "/d/up/etc/hostname": "/etc/hostname",  # /d/up -> ../.. : clamped at the store's root
    "/d/up/../../abs/../d/a.bin": "/d/a.bin",
    "/d/sub/deep-abs": "/d/a.bin",  # -> /d/a.bin, a chunked file
    "/link": "/d/a.bin",
    "/abs": "/etc",
    "/..": "/",
}

ERRORS = {
    "/loop1": "ELOOP",
    "/loop1/x": "ELOOP",
    "/d/self/x": "ELOOP",
    "/root/../etc": "ENOENT",  # each component is looked up: a missing one is ENOENT
    "/../nope": "ENOENT",
    "/abs/nope": "ENOENT",
    "/hello.txt/x": "ENOTDIR",
}


async def _add_links(path: str) -> None:
    store = open_store(path)
    try:
        fs = PathVFS(store.vfs)
        await fs.mkdir("/etc")
        await fs.write_file("/etc/hostname", STORE_HOSTNAME)
        await fs.symlink("/etc", "/abs")
        await fs.symlink("/etc/hostname", "/abs-host")
        await fs.symlink("../..", "/d/up")
        await fs.symlink("/d/self", "/d/self")
        await fs.symlink("/d/a.bin", "/d/sub/deep-abs")
        await fs.symlink("loop2", "/loop1")
        await fs.symlink("loop1", "/loop2")
        await store.vfs.close()
    finally:
        store.close()


async def _truth(path: str, inner: str) -> tuple[int, int]:
    """(inode, size) of *inner* straight from the store through PathVFS."""
    store = open_store(path)
    try:
        ino, attr = await PathVFS(store.vfs).resolve(inner)
        await store.vfs.close()
        return ino, attr.size
    finally:
        store.close()


@pytest.fixture
def links(store) -> str:
    trio.run(_add_links, store)
    return store


@contextlib.contextmanager
def mount(store: str, mnt: str):
    """Serve *store* on *mnt* (ChunkedVFS + /.vfs over FUSE) holding its lock as the daemon does,
    so ``STORE:/path`` goes through the mount; always unmounted."""
    os.makedirs(mnt, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(SERVER))))
    proc = subprocess.Popen([sys.executable, SERVER, store, mnt], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lock = None
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        os.makedirs(os.path.join(store, "run"), exist_ok=True)
        lock = os.open(os.path.join(store, "run", "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.ftruncate(lock, 0)
        os.pwrite(lock, f"{proc.pid} {mnt}\n".encode(), 0)
        yield mnt
    finally:
        if lock is not None:
            os.close(lock)
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _info(arg: str) -> dict[str, str]:
    res = cli("info", arg)
    assert res.code == 0, (arg, res.err)
    assert res.err == ""
    return parse_kv(res.out)


def _answer(kv: dict[str, str]) -> tuple[str, str, str]:
    return kv["path"], kv["inode"], kv["size"]


# -- unmounted -------------------------------------------------------------------------------------


@pytest.mark.parametrize("inner,canonical", sorted(RESOLVES.items()))
def test_store_path_resolves_inside_the_store(links, inner, canonical):
    kv = _info(f"{links}:{inner}")
    ino, size = trio.run(_truth, links, canonical)
    assert _answer(kv) == (canonical, str(ino), str(size))
    if canonical == "/etc/hostname":
        assert kv["size"] == str(len(STORE_HOSTNAME))  # the store's file, not the host's


@pytest.mark.parametrize("inner,code", sorted(ERRORS.items()))
def test_store_path_errors_are_one_line(links, inner, code):
    res = cli("info", f"{links}:{inner}")
    assert_one_line_error(res, code)
    assert f"{links}:{inner}" in res.err


def test_versions_follow_store_paths_unmounted(links):
    s = links
    assert cli("versions", "create", f"{s}:/../abs-host").out.strip() == "created version 1"
    assert cli("versions", "create", f"{s}:/d/up/abs/hostname").out.strip() == "created version 2"
    listing = cli("versions", "list", f"{s}:/etc/hostname").out.splitlines()
    assert [ln.split()[0] for ln in listing[1:]] == ["2", "1"]
    assert cli("versions", "restore", f"{s}:/../../etc/hostname", "1").code == 0
    assert cli("versions", "prune", f"{s}:/abs/../abs/hostname", "--keep", "0").out.strip() \
        == "pruned 2 versions"
    for sub, extra in (("list", []), ("create", []), ("restore", ["1"]), ("prune", ["--keep", "1"])):
        assert_one_line_error(cli("versions", sub, f"{s}:/loop1", *extra), "ELOOP")


# -- a MountView never lets the host walk '..' or a symlink -----------------------------------------


def test_mount_view_over_a_plain_directory_stays_inside(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_bytes(b"inside\n")
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../..", root / "up")
    os.symlink("loop", root / "loop")

    async def main():
        with MountView(str(root)) as view:
            inside = await resolve_inside(view, "/../../abs/hostname")
            assert inside.path == "/etc/hostname"
            assert inside.ino == os.stat(root / "etc" / "hostname").st_ino
            assert (await resolve_inside(view, "/up/up/etc")).path == "/etc"
            with pytest.raises(KernelError) as err:
                await resolve_inside(view, "/loop", what="X:/loop")
            assert err.value.code == "ELOOP" and str(err.value).startswith("ELOOP: X:/loop:")
            with pytest.raises(KernelError) as err:
                await view.lookup(view.root_ino, b"..")
            assert err.value.code == "EINVAL"

    trio.run(main)


# -- mounted: the same answers, and MOUNTPOINT/path refusals -----------------------------------------


@pytest.mark.mount
def test_mounted_and_unmounted_give_the_same_answers(links, tmp_path):
    s = links
    offline = {inner: _answer(_info(f"{s}:{inner}")) for inner in RESOLVES}
    offline_errors = {inner: cli("info", f"{s}:{inner}").err for inner in ERRORS}
    with mount(s, str(tmp_path / "mnt")) as m:
        for inner, canonical in RESOLVES.items():
            kv = _info(f"{s}:{inner}")
            assert _answer(kv) == offline[inner], inner
            assert kv["path"] == canonical
            # the MOUNTPOINT form of the canonical path agrees too
            assert _answer(_info(os.path.join(m, canonical.lstrip("/")))) == offline[inner]
        for inner, code in ERRORS.items():
            res = cli("info", f"{s}:{inner}")
            assert_one_line_error(res, code)
            assert res.err == offline_errors[inner], inner
        # the store's /etc/hostname, not the host's, with its chunk map from /.vfs
        res = script("info", f"{s}:/../../../etc/hostname")
        assert res.code == 0, res.err
        kv = parse_kv(res.out)
        assert kv["size"] == str(len(STORE_HOSTNAME)) and kv["storage"] == "inline"
        res = script("info", f"{s}:/d/sub/deep-abs")
        assert res.code == 0 and parse_kv(res.out)["chunks"] == "4", res.err


@pytest.mark.mount
def test_mount_paths_resolving_outside_the_mount_are_refused(links, tmp_path):
    with mount(links, str(tmp_path / "mnt")) as m:
        outside = [
            f"{m}/../store/meta.db",  # '..' out of the mount root
            f"{m}/d/../../store/blocks",
            f"{m}/" + "../" * 12 + "etc/hostname",
            f"{m}/abs-host",  # the host reads -> /etc/hostname: the host's
            f"{m}/abs",
            f"{m}/d/up",  # ../.. read by the host: above the mount
        ]
        for arg in outside:
            for cmd in (["info", arg], ["versions", "list", arg], ["versions", "create", arg],
                        ["versions", "restore", arg, "1"], ["versions", "prune", arg, "--keep", "0"]):
                res = cli(*cmd)
                assert_one_line_error(res, "EXDEV")
                assert "resolves outside the mount" in res.err, res.err
        assert_one_line_error(cli("info", f"{m}/loop1"), "ELOOP")
        assert_one_line_error(cli("info", f"{m}/../nope"), "ENOENT")
        # a relative argument from inside the mount
        res = script("info", "../store/meta.db", cwd=m)
        assert_one_line_error(res, "EXDEV")
        res = script("info", "../hello.txt", cwd=os.path.join(m, "d"))
        assert res.code == 0 and parse_kv(res.out)["path"] == "/hello.txt", res.err
        # '..' and symlinks that stay inside the mount are fine
        hello = _answer(_info(f"{links}:/hello.txt"))
        assert _answer(_info(f"{m}/d/../hello.txt")) == hello
        assert _answer(_info(f"{m}/d/up/mnt/hello.txt")) == hello  # out and back in: inside
        assert _info(f"{m}/link")["path"] == "/d/a.bin"
        # the daemon's own filesystems are not the store
        assert_one_line_error(cli("info", f"{m}/.vfs/stats"), "EXDEV")
        assert_one_line_error(cli("info", f"{links}:/.vfs/stats"), "EXDEV")


@pytest.mark.mount
def test_versions_through_the_mount_use_store_paths(links, tmp_path):
    s = links
    with mount(s, str(tmp_path / "mnt")) as m:
        assert cli("versions", "create", f"{s}:/../abs-host").out.strip() == "created version 1"
        with open(os.path.join(m, "etc", "hostname"), "wb") as f:
            f.write(b"changed\n")
        assert cli("versions", "create", f"{s}:/d/up/abs/hostname").out.strip() \
            == "created version 2"
        listing = cli("versions", "list", f"{s}:/../../etc/hostname").out.splitlines()
        assert [ln.split()[0] for ln in listing[1:]] == ["2", "1"]
        assert cli("versions", "list", f"{m}/etc/hostname").out.splitlines() == listing
        assert cli("versions", "restore", f"{s}:/abs/../abs/hostname", "1").code == 0
        path = os.path.join(m, "etc", "hostname")
        deadline = time.monotonic() + 20
        while open(path, "rb").read() != STORE_HOSTNAME and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open(path, "rb").read() == STORE_HOSTNAME
        for sub, extra in (("list", []), ("create", []), ("restore", ["1"]),
                           ("prune", ["--keep", "1"])):
            assert_one_line_error(cli("versions", sub, f"{s}:/loop1", *extra), "ELOOP")
        assert cli("versions", "prune", f"{s}:/d/sub/../../etc/hostname", "--keep", "0").out.strip() \
            == "pruned 2 versions"
    # unmounted again: the same store answers the same
    assert cli("versions", "list", f"{s}:/abs-host").out.strip() == "no versions"
