"""Sockets seen from the host through a real FUSE mount: the socket inode a sandbox bind made
(``ls -l`` shows ``s``, and the host cannot connect to it: it is no host socket), the fd links
in /proc, and the host's ``ss`` and ``netstat`` reading the mount's /proc/net."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mount.conftest import make_store
from tests.served import unmount_and_reap

pytestmark = pytest.mark.mount

SERVER = r'''
import json, sys
import trio
from kernel.net.policy import NetPolicy
from vfsfuse.daemon.config import MountConfig
from vfsfuse.daemon.serve import Daemon


class NetDaemon(Daemon):
    async def _after_mount(self) -> None:
        await super()._after_mount()
        k = self.kernel
        k.net.policy = NetPolicy.loopback()
        k.procfs.config.host_self_pid = 1
        handles = [await k.spawn(["nc", "-lU", "/tmp/m.sock"], stdin="pipe"),
                   await k.spawn(["nc", "-l", "-p", "8080"], stdin="pipe")]
        print(json.dumps([h.pid for h in handles]), flush=True)
        stdin = trio.lowlevel.FdStream(0)
        while await stdin.receive_some(100):
            pass
        for h in handles:
            h.kill(9)


if __name__ == "__main__":
    NetDaemon(MountConfig(mountpoint=sys.argv[2], store=sys.argv[1]),
              lambda: print("ready", flush=True)).run()
'''


@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("no FUSE here")
    base = tmp_path_factory.mktemp("netmount")
    repo = Path(__file__).resolve().parents[2]
    store = make_store(base / "store")
    mnt = base / "mnt"
    mnt.mkdir()
    script = base / "serve.py"
    script.write_text(SERVER)
    env = dict(os.environ, PYTHONPATH=str(repo), VFSFUSE_RUNTIME_DIR=str(base))
    proc = subprocess.Popen([sys.executable, str(script), store, str(mnt)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(repo))
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        if ready != "ready":
            raise AssertionError("daemon did not start: " + (proc.stderr.read() if proc.stderr else ""))
        pids = proc.stdout.readline().strip()
        deadline = time.monotonic() + 10
        while not (mnt / "tmp" / "m.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield mnt, pids
    finally:
        if proc.stdin:
            proc.stdin.close()
        unmount_and_reap(mnt, proc, timeout=30)


def _host(mnt: Path, cmd: str) -> str:
    """*cmd* with the mount's /proc over /proc, in private pid and mount namespaces."""
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "sh", "-c",
                        f"mount --bind {mnt}/proc /proc && exec {cmd}"],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/bin",
                                                                        "LC_ALL": "C"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_socket_inode_from_the_host(mounted):
    mnt, _ = mounted
    path = mnt / "tmp" / "m.sock"
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    ls = subprocess.run(["ls", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    assert ls.startswith("srwxr-xr-x")
    with socket.socket(socket.AF_UNIX) as s:
        with pytest.raises(OSError) as info:
            s.connect(str(path))  # no host socket is bound to a FUSE inode
    assert info.value.errno == errno.ECONNREFUSED


def test_fd_links_and_host_ss(mounted):
    mnt, pids = mounted
    import json

    nc_unix, nc_tcp = json.loads(pids)
    fd_dir = mnt / "proc" / str(nc_unix) / "fd"
    links = [os.readlink(fd_dir / n) for n in os.listdir(fd_dir)]
    assert any(link.startswith("socket:[") for link in links)
    out = subprocess.run(["ss", "-ltnx"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PROC_ROOT": str(mnt / "proc")}).stdout
    rows = [line.split() for line in out.splitlines()]
    assert any(r[:2] == ["tcp", "LISTEN"] and r[4] == "0.0.0.0:8080" for r in rows), out
    assert any(r[:2] == ["u_str", "LISTEN"] and r[4] == "/tmp/m.sock" for r in rows), out


@pytest.mark.skipif(shutil.which("netstat") is None or shutil.which("unshare") is None, reason="no netstat")
def test_host_netstat_reads_the_mounted_proc(mounted):
    mnt, _ = mounted
    out = _host(mnt, "netstat -ltnx")
    assert any(line.split()[:4] == ["tcp", "0", "0", "0.0.0.0:8080"] and "LISTEN" in line
               for line in out.splitlines()), out
    assert "/tmp/m.sock" in out
