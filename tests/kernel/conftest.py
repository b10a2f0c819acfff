"""Fixtures for the mount table, /dev and /proc tests.

procfs is tested on records of the real ``ProcessTable`` that no task runs:
``add_process`` puts one in with a chosen pid and fields, ``open_fd`` gives it
open file descriptions, and ``reap`` removes it like the kernel does.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from kernel.fdtable import FdTable, OpenFileDescription
from kernel.fs import Caller
from kernel.mounts import MountTable
from kernel.pathvfs import PathVFS
from kernel.process import Process, ProcessTable
from kernel.pty import PtyRegistry
from vfsfuse.storage.store import memory_vfs

from .ksupport import boot_kernel


def add_process(table: ProcessTable, pid: int, *, parent: int | None = None, argv: list[str] | None = None,
                env: dict[str, str] | None = None, cwd: str = "/", exe: str = "/bin/sh",
                **fields: Any) -> Process:
    """Record process *pid* (fixed, so tests can name it) with *fields* set on it."""
    table._next_pid = pid
    proc = table.create(parent=table.get(parent) if parent else None,
                        argv=["/bin/sh"] if argv is None else argv, env=env or {}, cwd=cwd,
                        exe=exe, fds=FdTable())
    for name, value in fields.items():
        setattr(proc, name, value)
    return proc


def open_fd(proc: Process, fd: int, kind: str, path: str | None = None, flags: int = os.O_RDONLY,
            *, object_id: int = 0, pos: int = 0, ino: int = 0, cloexec: bool = False) -> OpenFileDescription:
    ofd = OpenFileDescription(kind, path, flags, object_id=object_id, pos=pos, ino=ino)
    proc.fds.install_at(fd, ofd, cloexec=cloexec)
    return ofd


@pytest.fixture
def procs() -> ProcessTable:
    t = ProcessTable()
    t.boot_time_ns -= 5_000_000_000  # booted 5 s ago: uptime and start times lie in the past
    t.monotonic_boot_ns -= 5_000_000_000
    init = add_process(t, 1, argv=["/sbin/init"], exe="/sbin/init", state="S")
    open_fd(init, 0, "device", "/dev/null")
    return t


@pytest.fixture
def ptys() -> PtyRegistry:
    return PtyRegistry()


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
