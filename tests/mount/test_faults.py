"""Durability and faults: kill -9 under a real writer, a full block-store disk, damaged blocks."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import cli, make_store, mounted_here, sh

pytestmark = [pytest.mark.mount, pytest.mark.slow]

# Writes files of varied sizes (inline, multi-chunk), fsyncs each and then reports it on stdout.
WRITER = r"""
import os, sys, hashlib
d = sys.argv[1]
i = 0
sizes = [10, 5000, 70000, 300000, 1 << 20, (9 << 20) + 3]
log = os.open(os.path.join(d, "journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
try:
    while True:
        size = sizes[i % len(sizes)]
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1)
        data = data[:size]
        p = os.path.join(d, "f%05d" % i)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.write(log, b"entry %05d\n" % i)
        os.fsync(log)
        print(i, flush=True)
        i += 1
except OSError:
    pass
"""


def _expected(i: int) -> bytes:
    sizes = [10, 5000, 70000, 300000, 1 << 20, (9 << 20) + 3]
    size = sizes[i % len(sizes)]
    return (hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1))[:size]


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_kill9_under_a_writer_loses_no_fsynced_byte(new_mount):
    m = new_mount()
    rng = random.Random(7)
    work = Path(m.path) / "w"
    work.mkdir()
    for round_ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(work)], stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.3, 1.2))
        m.kill9()
        out, _ = writer.communicate(timeout=30)  # the writer must not hang: it gets ENOTCONN
        done = [int(x) for x in out.split()]
        with pytest.raises(OSError) as e:
            os.listdir(m.path)
        assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        subprocess.run(["fusermount3", "-u", "-z", m.path], check=True)
        assert not mounted_here(m.path)
        m.start()  # no fsck first
        for i in done:
            assert (work / f"f{i:05d}").read_bytes() == _expected(i), f"round {round_}: file {i} damaged"
        journal = (work / "journal").read_bytes()
        assert b"".join(b"entry %05d\n" % i for i in done) in journal
        # next round starts from a clean directory so every round checks its own writes
        subprocess.run(["rm", "-rf", str(work)], check=True)
        work.mkdir()
        fd = os.open(m.path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        assert done, "the writer managed no fsync before the kill"
    assert m.umount().returncode == 0
    r = cli("fsck", m.store, env=m.env)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def tiny_tmpfs(world_base):
    d = world_base / f"tiny{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_full_block_store_disk_gives_enospc_and_keeps_committed_data(new_mount, tiny_tmpfs):
    store = make_store(tiny_tmpfs / "store", chunk_size=1 << 20)
    m = new_mount(store=store)
    kept = os.urandom(3 << 20)
    with open(os.path.join(m.path, "kept"), "wb") as f:
        f.write(kept)
        f.flush()
        os.fsync(f.fileno())
    r = sh("dd if=/dev/urandom of=big bs=1M count=40 conv=fsync", m.path)
    assert r.returncode != 0
    assert "No space left on device" in r.stderr
    # the daemon keeps serving and committed data is intact
    assert (Path(m.path) / "kept").read_bytes() == kept
    # Data the daemon takes but cannot store (the disk is full of blocks; the space kept
    # for metadata still lets it commit that the file exists).
    pending = os.urandom(2 << 20)
    (Path(m.path) / "pending").write_bytes(pending)  # no fsync: taken into the daemon's buffer
    # umount cannot flush: it says so and leaves the mount up rather than drop data
    p = m.umount()
    assert p.returncode == 8 and "ENOSPC" in p.stderr, p.stderr
    assert mounted_here(m.path)
    os.unlink(os.path.join(m.path, "big"))  # frees the space and the buffered chunks...
    # ...once the host kernel forgets the deleted file and the next commit runs (the kernel
    # may hold it a little while, as Linux holds the space of any file still referenced)
    deadline = time.monotonic() + 30
    while shutil.disk_usage(tiny_tmpfs).free < 8 << 20:
        assert time.monotonic() < deadline, "the space of the deleted file never came back"
        time.sleep(0.05)
    with open(os.path.join(m.path, "after"), "wb") as f:
        f.write(b"a" * 100_000)
        os.fsync(f.fileno())
    p = m.umount()
    assert p.returncode == 0, p.stderr
    m.start()
    assert (Path(m.path) / "kept").read_bytes() == kept
    assert (Path(m.path) / "after").read_bytes() == b"a" * 100_000
    assert (Path(m.path) / "pending").read_bytes() == pending  # kept through the failed umount


def _block_files(store: str) -> dict[str, str]:
    out = {}
    for top, _, files in os.walk(os.path.join(store, "blocks")):
        for n in files:
            out[n] = os.path.join(top, n)
    return out


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_missing_or_corrupt_block_gives_eio_for_that_range_only(new_mount, world_base):
    cs = 64 * 1024
    store = make_store(world_base / f"dmg-{time.monotonic_ns()}", chunk_size=cs, inline_threshold=4096)
    m = new_mount(store=store)
    parts = [bytes([65 + i]) * cs for i in range(4)]
    with open(os.path.join(m.path, "f"), "wb") as f:
        f.write(b"".join(parts))
        os.fsync(f.fileno())
    chunk_map = os.getxattr(os.path.join(m.path, "f"), "user.vfs.chunks").decode().splitlines()
    # rows: "index offset length hash ..."
    keys = [r.split()[3] for r in chunk_map if r.split() and r.split()[0].isdigit() and len(r.split()) >= 4]
    assert len(keys) == 4
    assert m.umount().returncode == 0
    files = _block_files(store)
    os.unlink(files[keys[1]])  # missing
    with open(files[keys[2]], "r+b") as f:  # corrupt: same length, wrong bytes
        f.write(b"X")
    m.start()
    fd = os.open(os.path.join(m.path, "f"), os.O_RDONLY)
    try:
        assert os.pread(fd, cs, 0) == parts[0]
        assert os.pread(fd, cs, 3 * cs) == parts[3]
        for bad in (1, 2):
            with pytest.raises(OSError) as e:
                os.pread(fd, 100, bad * cs + 10)
            assert e.value.errno == errno.EIO
    finally:
        os.close(fd)
    assert m.umount().returncode == 0
    log = Path(store, "run", "daemon.log").read_text()
    assert keys[1] in log and keys[2] in log
