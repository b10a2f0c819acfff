"""Differential test: the same random operations on a real Linux directory (tmpfs when
available) and on PathVFS over ChunkedVFS (memory stores, tiny thresholds and cache so
promotion, demotion and pressure flushes happen).  Results, errno codes, sizes, modes,
link counts and bytes must agree; where they do not, Linux is right.

Hypothesis drives a synchronous state machine; the VFS lives in a trio run on a helper
thread and each operation is sent to it with ``trio.from_thread.run``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat as S
import tempfile
import threading

import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kernel.errors import KernelError
from kernel.fs import RENAME_EXCHANGE, RENAME_NOREPLACE, Caller
from kernel.pathvfs import PathVFS
from vfsfuse.storage.store import memory_vfs

CHUNK = 64
NOBODY = 65534
INLINE = 16

names = st.sampled_from(["a", "b", "x", "y"])
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
link_targets = st.sampled_from(["a", "b", "x", "y", "a/x", "b/y", "a/b", ".", "x/"])
payloads = st.one_of(st.binary(max_size=3 * CHUNK + 5), st.sampled_from([b"", b"z" * INLINE, b"q" * (INLINE + 1)]))
offsets = st.one_of(st.integers(0, 4 * CHUNK), st.sampled_from([INLINE, CHUNK - 1, CHUNK, 2 * CHUNK + 1]))
modes = st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o4755, 0o1777])


class _Bridge:
    """A trio run on a helper thread holding the VFS, callable from synchronous code."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as e:  # noqa: BLE001 - reported to the creating thread
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        fs = memory_vfs(chunk_size=CHUNK, inline_threshold=INLINE, cache_bytes=4 * CHUNK)
        fs.flush_interval = 0.01  # the background flusher races with the operations
        async with fs.running():
            self.fs = fs
            self.vfs = PathVFS(fs)
            self._ready.set()
            await self._stop.wait()

    def call(self, fn, *args):
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def close(self) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
        self._thread.join(10)


def _linux(fn, *args, **kw):
    try:
        return ("ok", fn(*args, **kw))
    except OSError as e:
        return ("err", errno.errorcode[e.errno])


_libc = ctypes.CDLL(None, use_errno=True)


def _renameat2(old: str, new: str, flags: int) -> None:
    """renameat2(2) through libc (Python's os has no flags argument)."""
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), flags) != 0:  # AT_FDCWD
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _kind(mode: int) -> str:
    return {S.S_IFDIR: "dir", S.S_IFREG: "file", S.S_IFLNK: "link"}[S.S_IFMT(mode)]


def _view(mode: int, size: int, nlink: int, uid: int, gid: int):
    kind = _kind(mode)
    return (kind, S.S_IMODE(mode), None if kind == "dir" else size, nlink, uid, gid)


class DiffMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        os.umask(0o022)
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.tmp = tempfile.mkdtemp(prefix="vfsdiff-", dir=base)
        self.root = self.tmp + "/r"
        os.mkdir(self.root)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.root, 0o777)
        self.old_groups = os.getgroups()
        os.setgroups([])  # root without supplementary groups, like Caller.root()
        self.bridge = _Bridge()
        self.root_vfs = self.bridge.vfs
        self.bridge.call(self.root_vfs.chmod, "/", 0o777)
        self.user_vfs = self.root_vfs.with_caller(Caller(uid=NOBODY, gid=NOBODY))
        self.uid = 0

    def teardown(self) -> None:
        self.bridge.close()
        os.setgroups(self.old_groups)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def v(self) -> PathVFS:
        """The VFS as the current user."""
        return self.user_vfs if self.uid else self.root_vfs

    def lx(self, fn, *args, **kw):
        """Run a host call as the current user (effective ids; supplementary groups are empty)."""
        if not self.uid:
            return _linux(fn, *args, **kw)
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            return _linux(fn, *args, **kw)
        finally:
            os.seteuid(0)
            os.setegid(0)

    @rule(uid=st.sampled_from([0, NOBODY]))
    def become(self, uid):
        self.uid = uid

    # -- helpers --------------------------------------------------------------------------

    def L(self, path: str) -> str:
        return self.root + "/" + path

    def existing(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            out += [os.path.relpath(os.path.join(dirpath, n), self.root) for n in dirnames + filenames]
        return sorted(out)

    def pick(self, data, label: str = "path") -> str:
        """Mostly a path that exists now (so operations get past ENOENT), sometimes any path."""
        have = self.existing()
        how = data.draw(st.integers(0, 4), label=f"{label}-kind")
        if how == 0 or not have:
            return data.draw(paths, label=label)
        if how <= 2:
            return data.draw(st.sampled_from(have), label=label)
        dirs = [""] + [p for p in have if os.path.isdir(self.L(p))]  # a new name in a directory
        base = data.draw(st.sampled_from(dirs), label=f"{label}-dir")
        name = data.draw(names, label=f"{label}-name")
        return f"{base}/{name}" if base else name

    def ours(self, fn, *args):
        async def run():
            try:
                return ("ok", await fn(*args))
            except KernelError as e:
                return ("err", e.code)
        return self.bridge.call(run)

    def check(self, want, got, what):
        assert got == want, f"{what}: linux {want!r}, ours {got!r}"

    # -- mutations --------------------------------------------------------------------------

    @rule(data=st.data())
    def mkdir(self, data):
        path = self.pick(data)
        self.check(self.lx(os.mkdir, self.L(path)), self.ours(self.v.mkdir, "/" + path), f"mkdir {path}")

    @rule(data=st.data(), payload=payloads)
    def write_file(self, data, payload):
        path = self.pick(data)
        def lx():
            fd = os.open(self.L(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
        want = self.lx(lx)
        if want == ("err", "ENOENT"):
            return  # our write_file creates missing parents (the seed's rule); open(2) does not
        self.check(want, self.ours(self.v.write_file, "/" + path, payload), f"write_file {path}")

    @rule(data=st.data(), offset=offsets, payload=payloads)
    def pwrite(self, data, offset, payload):
        path = self.pick(data)
        def lx():
            fd = os.open(self.L(path), os.O_WRONLY)
            try:
                return os.pwrite(fd, payload, offset)
            finally:
                os.close(fd)
        self.check(self.lx(lx), self.ours(self.v.pwrite, "/" + path, offset, payload), f"pwrite {path}@{offset}")

    @rule(data=st.data(), length=offsets)
    def truncate(self, data, length):
        path = self.pick(data)
        self.check(self.lx(os.truncate, self.L(path), length),
                   self.ours(self.v.truncate, "/" + path, length), f"truncate {path} {length}")

    @rule(data=st.data())
    def rename(self, data):
        src, dst = self.pick(data, "src"), self.pick(data, "dst")
        self.check(self.lx(os.rename, self.L(src), self.L(dst)),
                   self.ours(self.v.rename, "/" + src, "/" + dst), f"rename {src} {dst}")

    @rule(data=st.data(), flags=st.sampled_from([RENAME_NOREPLACE, RENAME_EXCHANGE]))
    def rename2(self, data, flags):
        src, dst = self.pick(data, "src"), self.pick(data, "dst")
        self.check(self.lx(_renameat2, self.L(src), self.L(dst), flags),
                   self.ours(self.v.rename, "/" + src, "/" + dst, flags), f"renameat2 {src} {dst} {flags}")

    @rule(data=st.data())
    def unlink(self, data):
        path = self.pick(data)
        self.check(self.lx(os.unlink, self.L(path)), self.ours(self.v.remove_file, "/" + path), f"unlink {path}")

    @rule(data=st.data())
    def rmdir(self, data):
        path = self.pick(data)
        self.check(self.lx(os.rmdir, self.L(path)), self.ours(self.v.remove_dir, "/" + path), f"rmdir {path}")

    @rule(dest=link_targets, data=st.data())
    def symlink(self, dest, data):
        path = self.pick(data)
        self.check(self.lx(os.symlink, dest, self.L(path)),
                   self.ours(self.v.symlink, dest, "/" + path), f"symlink {dest} {path}")

    @rule(data=st.data())
    def link(self, data):
        src, dst = self.pick(data, "src"), self.pick(data, "dst")
        self.check(self.lx(os.link, self.L(src), self.L(dst), follow_symlinks=False),
                   self.ours(self.v.link, "/" + src, "/" + dst), f"link {src} {dst}")

    @rule(data=st.data(), mode=modes)
    def chmod(self, data, mode):
        path = self.pick(data)
        self.check(self.lx(os.chmod, self.L(path), mode),
                   self.ours(self.v.chmod, "/" + path, mode), f"chmod {path} {mode:o}")

    @rule(data=st.data(), uid=st.sampled_from([-1, 0, 1000]), gid=st.sampled_from([-1, 0, 2000]))
    def chown(self, data, uid, gid):
        path = self.pick(data)
        self.check(self.lx(os.chown, self.L(path), uid, gid),
                   self.ours(self.v.chown, "/" + path, uid, gid), f"chown {path} {uid} {gid}")

    # -- observations -------------------------------------------------------------------------

    @rule(data=st.data())
    def read(self, data):
        path = self.pick(data)
        def lx():
            with open(self.L(path), "rb") as fh:
                return fh.read()
        self.check(self.lx(lx), self.ours(self.v.read_file, "/" + path), f"read {path}")

    @rule(data=st.data(), offset=offsets, length=st.integers(0, 3 * CHUNK))
    def pread(self, data, offset, length):
        path = self.pick(data)
        def lx():
            fd = os.open(self.L(path), os.O_RDONLY)
            try:
                return os.pread(fd, length, offset)
            finally:
                os.close(fd)
        self.check(self.lx(lx), self.ours(self.v.pread, "/" + path, offset, length), f"pread {path}")

    @rule(data=st.data(), follow=st.booleans())
    def stat(self, data, follow):
        path = self.pick(data)
        def lx():
            s = os.stat(self.L(path)) if follow else os.lstat(self.L(path))
            return _view(s.st_mode, s.st_size, s.st_nlink, s.st_uid, s.st_gid)

        async def ours():
            s = await (self.v.stat if follow else self.v.lstat)("/" + path)
            return _view(s.mode, s.size, s.nlink, s.uid, s.gid)
        self.check(self.lx(lx), self.ours(ours), f"{'stat' if follow else 'lstat'} {path}")

    @rule(data=st.data())
    def listdir(self, data):
        path = "" if data.draw(st.booleans(), label="root") else self.pick(data)
        async def ours():
            return sorted(await self.v.read_dir("/" + path))
        self.check(self.lx(lambda: sorted(os.listdir(self.L(path)))), self.ours(ours), f"listdir {path}")

    @rule(data=st.data())
    def readlink(self, data):
        path = self.pick(data)
        self.check(self.lx(os.readlink, self.L(path)), self.ours(self.v.readlink, "/" + path), f"readlink {path}")

    @rule(data=st.data())
    def exists_and_realpath(self, data):
        path = self.pick(data)
        self.check(self.lx(os.path.exists, self.L(path)), self.ours(self.v.exists, "/" + path), f"exists {path}")

        def lx():
            os.stat(self.L(path))  # the kernel's errors (os.path.realpath is pure Python)
            rel = os.path.relpath(os.path.realpath(self.L(path), strict=True), self.root)
            return "/" if rel == "." else "/" + rel
        self.check(self.lx(lx), self.ours(self.v.realpath, "/" + path), f"realpath {path}")

    @invariant()
    def same_tree(self):
        want = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                s = os.lstat(full)
                want[os.path.relpath(full, self.root)] = _view(s.st_mode, s.st_size, s.st_nlink, s.st_uid, s.st_gid)

        async def ours():
            out = {}
            todo = [""]
            while todo:
                base = todo.pop()
                for e in await self.root_vfs.read_dir_stat("/" + base):
                    rel = f"{base}/{e.name}" if base else e.name
                    out[rel] = _view(e.stat.mode, e.stat.size, e.stat.nlink, e.stat.uid, e.stat.gid)
                    if e.is_directory:
                        todo.append(rel)
            return out
        self.check(("ok", want), self.ours(ours), "tree")


DiffMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("VFS_DIFF_EXAMPLES", "400")), stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVfsDifferential = pytest.mark.skipif(
    os.geteuid() != 0, reason="runs host operations as root and as uid 65534: needs root")(DiffMachine.TestCase)
