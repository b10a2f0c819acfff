"""What the FUSE adapter itself guarantees: error containment, readdir cookies, statfs, "." and ".."."""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served import unmount_and_reap
from vfsfuse.daemon.tuning.cpu_wake import NO_CONSTRAINT_US

from .conftest import mounted_here, sh

pytestmark = pytest.mark.mount


def test_a_bug_below_the_adapter_is_eio_and_the_daemon_keeps_serving(world_base):
    mnt = world_base / "faulty"
    mnt.mkdir()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("serve_faulty.py")), str(mnt)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        (mnt / "ok").write_text("fine")
        for _ in range(3):
            with pytest.raises(OSError) as e:
                os.stat(mnt / "boom")
            assert e.value.errno == errno.EIO
        assert (mnt / "ok").read_text() == "fine"
        assert server.poll() is None
    finally:
        unmount_and_reap(mnt, server, timeout=10)
    assert "ZeroDivisionError" in server.stderr.read()  # logged with its traceback
    assert not mounted_here(str(mnt))


def test_readdir_cookies_survive_concurrent_changes(mdir):
    n = 1500
    for i in range(n):
        (mdir / f"f{i:04d}").write_bytes(b"")
    seen: list[str] = []
    removed: set[str] = set()
    added: set[str] = set()
    with os.scandir(mdir) as it:
        for k, entry in enumerate(it):
            seen.append(entry.name)
            if k == 200:
                # remove names not yet listed, add new ones, while the listing is half done
                for i in range(n - 1, n - 301, -1):
                    name = f"f{i:04d}"
                    if name not in seen:
                        os.unlink(mdir / name)
                        removed.add(name)
                for i in range(300):
                    (mdir / f"new{i:03d}").write_bytes(b"")
                    added.add(f"new{i:03d}")
    assert len(seen) == len(set(seen)), "an entry was listed twice"
    stable = {f"f{i:04d}" for i in range(n)} - removed
    assert stable <= set(seen), "an entry present throughout was skipped"
    assert not (removed & set(seen[201:])), "an entry removed before being reached was listed"


def test_dot_and_dotdot_are_listed(mdir):
    (mdir / "sub").mkdir()
    r = sh("ls -a sub && ls -aid sub/. | cut -d' ' -f1 && stat -c %i sub", mdir)
    lines = r.stdout.split()
    assert lines[:2] == [".", ".."]
    assert lines[2] == lines[3]


def test_statfs_is_the_block_store_disk(shared_mount):
    ours = os.statvfs(shared_mount.path)
    disk = os.statvfs(os.path.join(shared_mount.store, "blocks"))
    assert ours.f_namemax == 255
    assert ours.f_frsize == disk.f_frsize and ours.f_blocks == disk.f_blocks
    assert abs(ours.f_bavail - disk.f_bavail) * disk.f_frsize < 512 << 20
    r = sh("df -P . | tail -1", shared_mount.path)
    assert r.returncode == 0 and r.stdout.startswith("vfsfuse")


def test_proc_files_are_read_whole_despite_size_zero(shared_mount):
    proc = Path(shared_mount.path) / "proc"
    if not proc.is_dir():
        pytest.skip("the sandbox kernel is not serving /proc")
    assert os.stat(proc / "mounts").st_size == 0
    text = (proc / "mounts").read_text()
    assert " /proc proc " in text and " /dev " in text
    assert ".vfs" not in os.listdir(shared_mount.path)  # hidden from readdir
    assert os.path.isdir(Path(shared_mount.path) / ".vfs")  # but reachable


def _hammer_getxattr(path: Path, stop_after: float) -> subprocess.Popen:
    """A client that sends the daemon back-to-back requests (misses: each one reaches the daemon)."""
    code = ("import os, sys, time\n"
            "end = time.monotonic() + float(sys.argv[2]); n = 0\n"
            "while time.monotonic() < end:\n"
            "    try: os.getxattr(sys.argv[1], 'user.nope')\n"
            "    except OSError: n += 1\n"
            "print(n)\n")
    return subprocess.Popen([sys.executable, "-c", code, str(path), str(stop_after)],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("poll_us", ["50", "0"])
def test_requests_are_found_by_polling_only_when_enabled(new_mount, world_base, poll_us):
    m = new_mount("--poll-us", poll_us, start=False)
    stats = world_base / f"fuse-stats-{poll_us}.json"
    m.env["VFSFUSE_FUSE_STATS"] = str(stats)
    m.start()
    f = Path(m.path) / "f"
    f.write_bytes(b"x")
    os.chmod(f, 0o600)
    client = _hammer_getxattr(f, 1.0)
    sent = int(client.communicate(timeout=60)[0])
    assert m.umount().returncode == 0
    table = json.loads(stats.read_text())
    assert table["ops"]["getxattr:user.nope"][0] == sent > 100
    # setattr is counted per set of changed attributes: chmod sends mode and the host's ctime
    assert table["ops"]["setattr:mc"][0] == 1
    if poll_us == "0":
        assert table["polled_requests"] == 0
    else:
        # A caller that asks again right after each answer is caught by polling (on a quiet
        # machine more than half of the time; how often is bench-mount's business, since a
        # loaded machine delays the client past the polling window).
        assert table["polled_requests"] > 0


def _cpu_latency_limit() -> int:
    """The PM QoS CPU latency every CPU must currently honour (microseconds)."""
    with open("/dev/cpu_dma_latency", "rb") as f:
        return struct.unpack("=i", f.read(4))[0]


@pytest.mark.parametrize("option", ["--fast-wakeups", "--no-fast-wakeups"])
def test_fast_wakeups_are_asked_for_only_while_requests_flow(new_mount, option):
    m = new_mount(option)
    f = Path(m.path) / "f"
    f.write_bytes(b"x")
    time.sleep(0.2)
    assert _cpu_latency_limit() == NO_CONSTRAINT_US  # a quiet mount keeps no CPU awake
    client = _hammer_getxattr(f, 1.0)
    seen = set()
    while client.poll() is None:
        seen.add(_cpu_latency_limit())
        time.sleep(0.02)
    assert int(client.communicate(timeout=60)[0]) > 1000
    assert (0 in seen) == (option == "--fast-wakeups")
    time.sleep(0.2)
    assert _cpu_latency_limit() == NO_CONSTRAINT_US  # lifted once the pace dropped
