"""Fixtures for the mount table, /dev and /proc tests.

``FakeProcessTable`` is a test double of the *interface* procfs reads (the kernel
contract's ProcessTable/Process/FdTable fields), so procfs can be tested on its own;
tests that use the real ProcessTable live next to these.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import pytest

from kernel.fs import Caller
from kernel.mounts import MountTable
from kernel.pathvfs import PathVFS
from vfsfuse.store import memory_vfs

from .ksupport import boot_kernel


@dataclass
class FakeOFD:
    kind: str = "file"
    path: str | None = None
    object_id: int = 0
    pos: int = 0
    flags: int = os.O_RDONLY


class FakeFdTable:
    def __init__(self) -> None:
        self.fds: dict[int, FakeOFD] = {}
        self.cloexec: set[int] = set()

    def items(self) -> list[tuple[int, FakeOFD]]:
        return sorted(self.fds.items())

    def get_cloexec(self, fd: int) -> bool:
        return fd in self.cloexec


@dataclass
class FakeSig:
    pending: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    actions: dict = field(default_factory=dict)


@dataclass
class FakeProcess:
    pid: int
    ppid: int = 0
    pgid: int = 0
    sid: int = 0
    uid: int = 0
    gid: int = 0
    argv: list[str] = field(default_factory=lambda: ["/bin/sh"])
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    exe: str = "/bin/sh"
    umask: int = 0o022
    start_time_ns: int = 0
    state: str = "S"
    exit_status: int | None = None
    tty: str | None = None
    rss_bytes: int = 2 << 20
    fds: FakeFdTable = field(default_factory=FakeFdTable)
    sig: FakeSig = field(default_factory=FakeSig)

    @property
    def comm(self) -> str:
        name = self.argv[0] if self.argv else self.exe
        return (name.rsplit("/", 1)[-1] or name).encode()[:15].decode(errors="ignore")


class FakeProcessTable:
    def __init__(self) -> None:
        self.procs: dict[int, FakeProcess] = {}
        self.boot_time_ns = time.time_ns() - 5_000_000_000
        self.monotonic_boot_ns = time.monotonic_ns() - 5_000_000_000

    def add(self, pid: int, **kw) -> FakeProcess:
        kw.setdefault("ppid", 1 if pid != 1 else 0)
        kw.setdefault("pgid", pid)
        kw.setdefault("sid", pid)
        p = FakeProcess(pid, **kw)
        self.procs[pid] = p
        return p

    def get(self, pid: int) -> FakeProcess | None:
        return self.procs.get(pid)

    def pids(self) -> list[int]:
        return sorted(self.procs)


@pytest.fixture
def procs() -> FakeProcessTable:
    t = FakeProcessTable()
    init = t.add(1, argv=["/sbin/init"], exe="/sbin/init")
    init.fds.fds[0] = FakeOFD("device", "/dev/null", flags=os.O_RDONLY)
    return t


@pytest.fixture
def root_fs():
    return memory_vfs()


@pytest.fixture
def table(root_fs) -> MountTable:
    return MountTable(root_fs)


@pytest.fixture
def vfs(table) -> PathVFS:
    return PathVFS(table, Caller.root())


def as_pid(vfs: PathVFS, pid: int, uid: int = 0, gid: int = 0) -> PathVFS:
    """The same tree seen by sandbox process *pid*."""
    return vfs.with_caller(Caller(uid=uid, gid=gid, pid=pid))


@pytest.fixture
async def kernel(nursery):
    """A booted kernel over a memory store, shut down after the test."""
    k = await boot_kernel(nursery)
    yield k
    await k.shutdown(grace=0.2)
