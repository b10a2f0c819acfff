"""The host never keeps seeing stale names, sizes or bytes after the sandbox changes a file.

Sandbox processes run inside the daemon and change the store around FUSE, while the host kernel
caches entries, attributes and (with write-back caching) sizes and pages of what it has seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served import unmount_and_reap

from .conftest import make_store, mounted_here

pytestmark = pytest.mark.mount

SERVER = str(Path(__file__).with_name("serve_sandbox.py"))


@pytest.fixture
def sandbox(world_base, runtime_env):
    mnt = world_base / f"coh{time.monotonic_ns()}"
    mnt.mkdir()
    store = make_store(world_base / f"coh-store{time.monotonic_ns()}")
    p = subprocess.Popen([sys.executable, SERVER, store, str(mnt)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=runtime_env)
    assert p.stdout.readline().strip() == "ready"

    def do(cmd: str) -> str:
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    yield mnt, do
    unmount_and_reap(mnt, p)
    assert not mounted_here(str(mnt))


def _eventually(fn, timeout: float = 3.0):
    end = time.monotonic() + timeout
    while True:
        try:
            fn()
            return
        except AssertionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def test_host_sees_sandbox_writes_appends_and_renames(sandbox):
    mnt, do = sandbox
    assert do("mkdir /w") == "ok"
    f = mnt / "w" / "log"
    assert not f.exists()  # cached as a negative entry now
    assert do("write /w/log first") == "ok"
    _eventually(lambda: _check(f, b"first"))
    # the host reads it (caching pages, size and mtime), then the sandbox appends
    assert f.read_bytes() == b"first"
    assert do("append /w/log +second") == "ok"
    _eventually(lambda: _check(f, b"first+second"))
    assert do("chmod /w/log 600") == "ok"
    _eventually(lambda: _check_mode(f, 0o600))
    assert do("mv /w/log /w/renamed") == "ok"
    _eventually(lambda: _check_gone(f))
    _eventually(lambda: _check(mnt / "w" / "renamed", b"first+second"))
    assert do("rm /w/renamed") == "ok"
    _eventually(lambda: _check_gone(mnt / "w" / "renamed"))
    # host-side writes are still the host's own business
    (mnt / "w" / "host").write_bytes(b"h" * 10)
    assert (mnt / "w" / "host").read_bytes() == b"h" * 10


def _check(p: Path, data: bytes) -> None:
    try:
        assert os.stat(p).st_size == len(data)
        assert p.read_bytes() == data
    except FileNotFoundError:
        raise AssertionError("not visible yet") from None


def _check_mode(p: Path, mode: int) -> None:
    assert os.stat(p).st_mode & 0o7777 == mode


def _check_gone(p: Path) -> None:
    assert not p.exists()


def test_version_restore_through_control_is_seen_by_the_host(new_mount):
    m = new_mount()
    f = Path(m.path) / "doc.txt"
    f.write_bytes(b"version one")
    ctl = Path(m.path) / ".vfs" / "control"
    ctl.write_text("version create doc.txt\n")
    assert ctl.read_text().startswith("version ")
    number = ctl.read_text().split()[1]
    f.write_bytes(b"version two, longer")
    assert f.read_bytes() == b"version two, longer"  # now in the host's page cache
    ctl.write_text(f"version restore doc.txt {number}\n")
    _eventually(lambda: _check(f, b"version one"))
