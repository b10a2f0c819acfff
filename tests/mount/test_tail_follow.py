"""Changes made on the host through the mount, seen from inside the sandbox: ``tail -f`` in
the sandbox follows appends the host makes, and the kernel's directory cache
(``MountTable.lookup_dir``) never serves a name the host has renamed or removed.

The daemon runs in a child process (this module run with ``python -m``, see the end) that takes
commands on stdin: ``tail PATH`` starts ``tail -f -s 0.05 PATH`` in the sandbox and relays
each line it prints as ``line TEXT``; ``read PATH`` reads a file through the kernel's paths
and answers ``ok TEXT`` or ``err CODE``.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served import unmount_and_reap

from .conftest import make_store, mounted_here

pytestmark = pytest.mark.mount

REPO = Path(__file__).resolve().parents[2]  # this module runs as ``python -m`` from here


@pytest.fixture
def sandbox(world_base, runtime_env):
    mnt = world_base / f"tailf{time.monotonic_ns()}"
    mnt.mkdir()
    store = make_store(world_base / f"tailf-store{time.monotonic_ns()}")
    p = subprocess.Popen([sys.executable, "-m", __name__, store, str(mnt)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=runtime_env, cwd=REPO)
    assert p.stdin is not None and p.stdout is not None
    to_daemon, from_daemon = p.stdin, p.stdout
    lines: list[str] = []
    pending = b""

    def next_line(timeout: float = 5.0) -> str:
        nonlocal pending
        end = time.monotonic() + timeout
        while b"\n" not in pending:
            left = end - time.monotonic()
            assert left > 0, f"no answer from the sandbox within {timeout} s"
            ready, _, _ = select.select([from_daemon], [], [], left)
            if ready:
                chunk = os.read(from_daemon.fileno(), 65536)
                assert chunk, "the sandbox daemon exited"
                pending += chunk
        line, pending = pending.split(b"\n", 1)
        lines.append(line.decode())
        return lines[-1]

    def do(cmd: str) -> str:
        to_daemon.write(cmd.encode() + b"\n")
        to_daemon.flush()
        return next_line()

    assert next_line(30) == "ready"
    try:
        yield mnt, do, next_line
    finally:
        unmount_and_reap(mnt, p)
    assert not mounted_here(str(mnt))


def test_tail_f_follows_host_appends(sandbox):
    mnt, do, next_line = sandbox
    (mnt / "w").mkdir()
    log = mnt / "w" / "log"
    log.write_bytes(b"one\n")
    assert do("tail /w/log") == "started"
    assert next_line() == "line one"
    for word in ("two", "three"):
        with open(log, "ab") as f:
            f.write(word.encode() + b"\n")
        assert next_line() == f"line {word}"
    with open(log, "ab") as f:  # a line written in two pieces comes out whole
        f.write(b"fo")
        f.flush()
        time.sleep(0.2)
        f.write(b"ur\n")
    assert next_line() == "line four"


def test_host_rename_seen_by_a_cached_lookup(sandbox):
    mnt, do, _ = sandbox
    (mnt / "h" / "proj" / "src").mkdir(parents=True)
    (mnt / "h" / "proj" / "src" / "m.py").write_bytes(b"first")
    assert do("read /h/proj/src/m.py") == "ok first"  # /h, /h/proj, /h/proj/src cached
    (mnt / "h" / "proj").rename(mnt / "h" / "moved")
    assert do("read /h/proj/src/m.py") == "err ENOENT"
    assert do("read /h/moved/src/m.py") == "ok first"
    # the old name back, as a file: a stale entry would still walk through it
    (mnt / "h" / "proj").write_bytes(b"a file")
    assert do("read /h/proj/src/m.py") == "err ENOTDIR"
    # a cached directory replaced by another one under the same name
    (mnt / "h" / "other" / "src").mkdir(parents=True)
    (mnt / "h" / "other" / "src" / "m.py").write_bytes(b"other")
    assert do("read /h/moved/src/m.py") == "ok first"
    (mnt / "h" / "moved" / "src" / "m.py").unlink()
    (mnt / "h" / "moved" / "src").rmdir()
    (mnt / "h" / "other" / "src").rename(mnt / "h" / "moved" / "src")
    assert do("read /h/moved/src/m.py") == "ok other"


def test_host_mkdir_in_place_of_a_renamed_directory(sandbox):
    mnt, do, _ = sandbox
    (mnt / "p" / "q").mkdir(parents=True)
    (mnt / "p" / "q" / "f").write_bytes(b"x")
    assert do("read /p/q/f") == "ok x"
    (mnt / "p").rename(mnt / "p2")
    (mnt / "p").mkdir()
    assert do("read /p/q/f") == "err ENOENT"
    assert do("read /p2/q/f") == "ok x"


# ---- the daemon side -------------------------------------------------------------------------
def _serve(store: str, mountpoint: str) -> None:
    import trio

    from kernel.errors import KernelError
    from vfsfuse.daemon.config import MountConfig
    from vfsfuse.daemon.serve import Daemon

    class TailDaemon(Daemon):
        async def _after_mount(self) -> None:
            await super()._after_mount()
            kernel = self.kernel
            assert kernel is not None
            stdin = trio.lowlevel.FdStream(0)
            buf = b""
            async with trio.open_nursery() as nursery:
                while True:
                    data = await stdin.receive_some(4096)
                    if not data:
                        nursery.cancel_scope.cancel()
                        return
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        cmd, _, path = line.decode().partition(" ")
                        if cmd == "tail":
                            h = await kernel.spawn(["tail", "-f", "-s", "0.05", path])
                            nursery.start_soon(relay, h)
                            print("started", flush=True)
                        elif cmd == "read":
                            try:
                                text = (await kernel.vfs.read_file(path)).decode()
                                print(f"ok {text}", flush=True)
                            except KernelError as err:
                                print(f"err {err.code}", flush=True)

    async def relay(h) -> None:
        pending = b""
        while True:
            chunk = await h.stdout.read()
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                print(f"line {line.decode()}", flush=True)

    config = MountConfig(mountpoint=mountpoint, store=store)
    TailDaemon(config, lambda: print("ready", flush=True)).run()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
