"""Fixtures that mount a store for real with FUSE and always unmount it again.

Every mount is made through the real command line (``vfsfuse mount``, daemon
mode unless a test asks for ``--foreground``) and torn down with ``vfsfuse
umount``; if that fails, teardown falls back to ``fusermount3 -u -z`` and
``kill -9`` so no mount or daemon survives a failing test.

Paths live under a world-traversable temp dir so tests can also act as the
unprivileged user 65534 (the shared mount uses ``--allow-other``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))
NOBODY = 65534


def _have_fuse() -> bool:
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3") is not None


def pytest_collection_modifyitems(config, items):
    if _have_fuse():
        return
    skip = pytest.mark.skip(reason="needs /dev/fuse and fusermount3")
    for item in items:
        if "tests/mount/" in str(item.fspath):
            item.add_marker(skip)


def cli(*args: str, env: dict | None = None, timeout: float = 120, check: bool = False,
        **kw) -> subprocess.CompletedProcess:
    """Run ``vfsfuse ARGS`` and capture its output."""
    p = subprocess.run([VFSFUSE, *args], capture_output=True, text=True, env=env, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"vfsfuse {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def sh(script: str, cwd: str | os.PathLike, *, user: int | None = None, umask: int | None = None,
       timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a shell script in *cwd*, optionally as uid/gid *user* with no supplementary groups."""
    if umask is not None:
        script = f"umask {umask:03o}\n{script}"
    argv = ["sh", "-c", script]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    e = dict(os.environ if env is None else env)
    e.setdefault("LC_ALL", "C")
    return subprocess.run(argv, cwd=str(cwd), capture_output=True, text=True, timeout=timeout, env=e)


def make_store(path: Path | str, **sizes: int) -> str:
    from vfsfuse.storage.store import create_store

    os.makedirs(path, exist_ok=True)
    create_store(str(path), **sizes)
    return str(path)


def mounted_here(path: str) -> bool:
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


@dataclass
class Mount:
    """One real mount made with the CLI.  ``path`` is the mount point."""

    store: str | None
    path: str
    env: dict = field(default_factory=lambda: dict(os.environ))
    options: tuple[str, ...] = ()
    pid: int | None = None
    proc: subprocess.Popen | None = None  # --foreground mounts

    def start(self) -> "Mount":
        args = ["mount", *self.options]
        args += [self.path] if self.store is None else [self.store, self.path]
        p = cli(*args, env=self.env)
        if p.returncode != 0:
            raise AssertionError(f"mount failed ({p.returncode}): {p.stderr.strip()}")
        self.pid = self.daemon_pid()
        return self

    def start_foreground(self) -> "Mount":
        args = ["mount", "--foreground", *self.options]
        args += [self.path] if self.store is None else [self.store, self.path]
        self.proc = subprocess.Popen([VFSFUSE, *args], env=self.env, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()  # "vfsfuse: mounted ..." once ready
        if "mounted" not in line:
            rest = line + self.proc.stderr.read() if self.proc.poll() is not None else line
            self.cleanup()
            raise AssertionError(f"foreground mount failed: {rest.strip()}")
        self.pid = self.proc.pid
        return self

    def daemon_pid(self) -> int | None:
        import hashlib
        import json

        rdir = self.env.get("VFSFUSE_RUNTIME_DIR")
        digest = hashlib.sha1(os.path.abspath(self.path).encode()).hexdigest()[:20]
        try:
            with open(os.path.join(rdir, digest + ".json")) as f:
                return int(json.load(f)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def umount(self) -> subprocess.CompletedProcess:
        p = cli("umount", self.path, env=self.env)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        return p

    def kill9(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait_gone(self.pid)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def log_problems(self) -> list[str]:
        """Warning and error lines of the daemon's log (``STORE/run/daemon.log``)."""
        if self.store is None:
            return []
        try:
            with open(os.path.join(self.store, "run", "daemon.log"), errors="replace") as f:
                return [line.rstrip() for line in f if " WARNING " in line or " ERROR " in line
                        or "Traceback" in line]
        except OSError:
            return []

    def cleanup(self) -> None:
        """Never leave a mount or a daemon behind, whatever state the test left."""
        if mounted_here(self.path):
            p = self.umount()
            if p.returncode != 0 and mounted_here(self.path):
                subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True)
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if mounted_here(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True)


def _wait_gone(pid: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    return
        except OSError:
            return
        time.sleep(0.01)


@pytest.fixture(scope="session")
def world_base():
    """A temp dir every user can traverse (mount points and tmpfs live here)."""
    d = tempfile.mkdtemp(prefix="vfsfuse-mt-")
    os.chmod(d, 0o755)
    yield Path(d)
    for sub in Path(d).iterdir():
        if mounted_here(str(sub)):
            subprocess.run(["fusermount3", "-u", "-z", str(sub)], capture_output=True)
            subprocess.run(["umount", "-l", str(sub)], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def runtime_env(world_base):
    rdir = world_base / "runtime"
    rdir.mkdir()
    env = dict(os.environ)
    env["VFSFUSE_RUNTIME_DIR"] = str(rdir)
    return env


_counter = iter(range(1, 1 << 30))


@pytest.fixture
def new_mount(world_base, runtime_env, request):
    """Factory: ``new_mount(*options, store=..., memory=False, start=True)``; all are cleaned up,
    and their daemons' logs must hold no warning or error (unless ``allow_log_warnings``)."""
    made: list[Mount] = []

    def factory(*options: str, store: str | None = None, memory: bool = False, start: bool = True,
                foreground: bool = False) -> Mount:
        n = next(_counter)
        mnt = world_base / f"mnt{n}"
        mnt.mkdir()
        if store is None and not memory:
            store = make_store(world_base / f"store{n}")
        m = Mount(store, str(mnt), dict(runtime_env), tuple(options) + (("--memory",) if memory else ()))
        made.append(m)
        if start:
            m.start_foreground() if foreground else m.start()
        return m

    yield factory
    for m in made:
        m.cleanup()
    if not request.node.get_closest_marker("allow_log_warnings"):
        problems = [line for m in made for line in m.log_problems()]
        assert not problems, "daemon logged warnings/errors:\n  " + "\n  ".join(problems[:20])


@pytest.fixture(scope="session")
def shared_mount(world_base, runtime_env):
    """One mount for the many tests that only need a fresh directory in some mount."""
    mnt = world_base / "shared"
    mnt.mkdir()
    store = make_store(world_base / "shared-store")
    m = Mount(store, str(mnt), dict(runtime_env), ("--allow-other",))
    m.start()
    yield m
    m.cleanup()


@pytest.fixture
def mdir(shared_mount, request) -> Path:
    """A fresh empty directory inside the shared mount."""
    d = Path(shared_mount.path) / f"t{next(_counter)}-{request.node.name[:40]}"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def tmpfs(world_base):
    """A real tmpfs to compare against."""
    d = world_base / "tmpfs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=755", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.fixture
def tdir(tmpfs, request) -> Path:
    """A fresh empty directory on tmpfs."""
    d = tmpfs / f"t{next(_counter)}-{request.node.name[:40]}"
    d.mkdir()
    return d
