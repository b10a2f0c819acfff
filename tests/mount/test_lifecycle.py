"""mount / umount through the real CLI: readiness, locking, options, clean shutdown."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest

from tests.pagecache import cached_pages

from .conftest import Mount, cli, mounted_here, sh

pytestmark = pytest.mark.mount


def _mount_line(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[4] == path:
                return parts
    raise AssertionError(f"{path} is not mounted")


def test_mount_is_ready_when_command_returns_and_data_survives_remount(new_mount):
    m = new_mount()
    # The command returned: the mount must answer at once.
    with open(os.path.join(m.path, "hello.txt"), "wb") as f:
        f.write(b"hello\n" * 1000)
    os.mkdir(os.path.join(m.path, "dir"))
    os.symlink("hello.txt", os.path.join(m.path, "dir", "link"))
    p = m.umount()
    assert p.returncode == 0, p.stderr
    assert not mounted_here(m.path)
    m.start()
    with open(os.path.join(m.path, "hello.txt"), "rb") as f:
        assert f.read() == b"hello\n" * 1000
    assert os.readlink(os.path.join(m.path, "dir", "link")) == "hello.txt"


def test_mount_options_are_safe(new_mount):
    m = new_mount()
    parts = _mount_line(m.path)
    sep = parts.index("-")
    assert parts[sep + 1] == "fuse.vfsfuse"
    assert parts[sep + 2] == "vfsfuse"
    opts = set(parts[5].split(",")) | set(parts[sep + 3].split(","))
    assert {"nosuid", "nodev", "default_permissions"} <= opts


def test_device_nodes_never_reach_host_devices(new_mount):
    m = new_mount()
    # mknod of /dev/zero's numbers works (it is only an entry) but opening it is refused (nodev).
    os.mknod(os.path.join(m.path, "zero"), 0o666 | 0o020000, os.makedev(1, 5))
    st = os.stat(os.path.join(m.path, "zero"))
    assert os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 5
    with pytest.raises(PermissionError):
        open(os.path.join(m.path, "zero"), "rb")


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_second_mount_of_a_store_is_refused_with_the_pid(new_mount, world_base):
    m = new_mount()
    other = world_base / "other-mnt"
    other.mkdir()
    p = cli("mount", m.store, str(other), env=m.env)
    assert p.returncode == 8
    assert p.stderr.startswith("vfsfuse: EBUSY:") and str(m.pid) in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not mounted_here(str(other))


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_mount_errors_are_one_line_with_exit_8(new_mount, world_base):
    m = new_mount(start=False)
    p = cli("mount", m.store, str(world_base / "does-not-exist"), env=m.env)
    assert p.returncode == 8 and p.stderr.startswith("vfsfuse: ENOENT:"), p.stderr
    p = cli("mount", str(world_base / "no-store"), m.path, env=m.env)
    assert p.returncode == 8 and p.stderr.startswith("vfsfuse: ENOENT:"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = cli("umount", m.path, env=m.env)
    assert p.returncode == 8 and p.stderr.startswith("vfsfuse: EINVAL:"), p.stderr
    p = cli("mount", "--help")
    assert p.returncode == 0 and "Exit codes" in p.stdout
    p = cli("umount", "--help")
    assert p.returncode == 0 and "Exit codes" in p.stdout


def test_umount_refuses_a_busy_mount_and_keeps_serving(new_mount):
    m = new_mount()
    holder = subprocess.Popen(["sleep", "30"], cwd=m.path)
    try:
        p = m.umount()
        assert p.returncode == 8 and "EBUSY" in p.stderr, p.stderr
        assert mounted_here(m.path)
        os.listdir(m.path)  # still served
    finally:
        holder.kill()
        holder.wait()
    assert m.umount().returncode == 0


def test_foreground_mount_stops_cleanly_on_sigterm(new_mount):
    m = new_mount(foreground=True)
    with open(os.path.join(m.path, "f"), "wb") as f:
        f.write(b"x" * 300_000)  # stays in the write-back buffer: no fsync
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=30) == 0
    assert not mounted_here(m.path)
    m.proc = None
    m.start()
    with open(os.path.join(m.path, "f"), "rb") as f:
        assert f.read() == b"x" * 300_000


def test_memory_mount(new_mount):
    m = new_mount(memory=True)
    r = sh("mkdir w && cd w && echo hi > a && cat a && mkdir -p x/y && ls", m.path)
    assert r.returncode == 0 and r.stdout == "hi\na\nx\n"
    assert m.umount().returncode == 0


def test_memory_mount_has_a_size(new_mount, tmp_path):
    """--memory --size bounds an in-memory mount like tmpfs's size=: df shows it, a bigger
    write gets ENOSPC at fsync, and the daemon keeps serving."""
    m = new_mount("--size", "2M", memory=True)
    st = os.statvfs(m.path)
    assert st.f_blocks * st.f_frsize == 2 << 20
    r = subprocess.run(["dd", "if=/dev/urandom", f"of={m.path}/big", "bs=64k", "count=64", "conv=fsync"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "No space left on device" in r.stderr
    os.unlink(f"{m.path}/big")
    r = sh("head -c 100000 /dev/urandom > small && wc -c < small", m.path)
    assert r.returncode == 0 and r.stdout.split() == ["100000"]
    assert m.umount().returncode == 0
    store = tmp_path / "s"
    assert cli("mkfs", str(store)).returncode == 0
    r = cli("mount", "--size", "1M", str(store), str(tmp_path))
    assert r.returncode == 2 and "--size is for --memory mounts" in r.stderr


def test_read_only_mount(new_mount):
    m = new_mount()
    with open(os.path.join(m.path, "f"), "w") as f:
        f.write("data")
    assert m.umount().returncode == 0
    ro = Mount(m.store, m.path, m.env, ("--read-only",)).start()
    try:
        with open(os.path.join(ro.path, "f")) as f:
            assert f.read() == "data"
        for fn in (lambda: open(os.path.join(ro.path, "g"), "w"),
                   lambda: os.mkdir(os.path.join(ro.path, "d")),
                   lambda: os.unlink(os.path.join(ro.path, "f"))):
            with pytest.raises(OSError) as e:
                fn()
            assert e.value.errno == errno.EROFS
        r = sh("echo gc > .vfs/control", ro.path)  # no change through /.vfs either
        assert r.returncode != 0 and "Read-only" in r.stderr
    finally:
        ro.cleanup()


def test_read_only_mount_of_a_fresh_store_writes_nothing(new_mount):
    m = new_mount("--read-only")
    names = set(os.listdir(m.path))
    assert names <= {"dev", "proc"}, names  # no /tmp, /bin stubs ... from the kernel's boot
    assert m.umount().returncode == 0
    from vfsfuse.storage.store import open_store

    store = open_store(m.store)
    try:
        assert store.metadata.stats().inodes == 1  # just the root
    finally:
        store.close()


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_kill9_gives_enotconn_and_remount_takes_over_the_stale_lock(new_mount):
    m = new_mount()
    with open(os.path.join(m.path, "kept"), "wb") as f:
        f.write(b"k" * 100_000)
        f.flush()
        os.fsync(f.fileno())
    m.kill9()
    # A request caught in flight while the kernel aborts the connection may get
    # ECONNABORTED; after that every access is ENOTCONN, quickly, never a hang.
    codes = []
    for _ in range(50):
        t = time.monotonic()
        with pytest.raises(OSError) as e:
            os.listdir(m.path)
        assert time.monotonic() - t < 5
        codes.append(e.value.errno)
        if e.value.errno == errno.ENOTCONN:
            break
        time.sleep(0.05)
    assert codes[-1] == errno.ENOTCONN and set(codes) <= {errno.ENOTCONN, errno.ECONNABORTED}, codes
    # `vfsfuse umount` reports the dead daemon and detaches its mount.
    p = m.umount()
    assert p.returncode == 8 and "ESRCH" in p.stderr
    assert not mounted_here(m.path)
    m.start()  # no fsck needed
    with open(os.path.join(m.path, "kept"), "rb") as f:
        assert f.read() == b"k" * 100_000


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_remount_on_the_dead_mount_point_itself(new_mount):
    m = new_mount()
    os.mkdir(os.path.join(m.path, "before"))
    fd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)  # fsyncdir commits
    os.close(fd)
    m.kill9()
    m.start()  # the dead mount left at the same place is detached automatically
    assert "before" in os.listdir(m.path)


def test_open_unlinked_file_keeps_working_until_closed(new_mount):
    m = new_mount()
    code = r"""
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"A" * 200000)
os.unlink(p)
assert not os.path.exists(p)
os.pwrite(fd, b"B" * 10, 100)
os.fsync(fd)
data = os.pread(fd, 200000, 0)
assert data == b"A" * 100 + b"B" * 10 + b"A" * (200000 - 110), "bad data"
assert os.fstat(fd).st_nlink == 0
os.close(fd)
print("ok")
"""
    r = subprocess.run(["python3", "-c", code, os.path.join(m.path, "ghost")], capture_output=True, text=True)
    assert r.stdout == "ok\n", r.stderr
    assert "ghost" not in os.listdir(m.path)


def test_several_workers_and_no_writeback_cache(new_mount):
    m = new_mount("--workers", "4", "--no-writeback-cache")
    procs = [subprocess.Popen(["dd", "if=/dev/urandom", f"of={m.path}/f{i}", "bs=64k", "count=50",
                               "status=none", "conv=fsync"]) for i in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    r = sh("cat f0 f1 f2 f3 | wc -c && echo x >> f0 && stat -c %s f0", m.path)
    assert r.stdout.split() == [str(4 * 50 * 65536), str(50 * 65536 + 2)]
    assert m.umount().returncode == 0


@pytest.mark.parametrize("direct", [True, False])
def test_big_blocks_leave_the_host_page_cache_and_keep_every_byte(new_mount, direct):
    """A mount keeps no big block in the host page cache (the host caches the file above us):
    by default they are written back and dropped, with --direct-io written around the cache
    (padded to 4 KiB, then truncated).  Either way the file reads back whole after a remount
    and each block file hashes to its own name."""
    import xxhash

    m = new_mount(*(["--direct-io"] if direct else []))
    data = os.urandom((9 << 20) + 12345)  # two full 4 MiB chunks and a ragged 1 MiB+ tail
    with open(os.path.join(m.path, "big"), "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    assert m.umount().returncode == 0
    blocks = [os.path.join(d, n) for d, _, names in os.walk(os.path.join(m.store, "blocks")) for n in names]
    assert len(blocks) == 3
    assert sum(cached_pages(p) for p in blocks) == 0  # of ~2,300 pages written
    for path in blocks:
        with open(path, "rb") as f:
            assert xxhash.xxh3_128_hexdigest(f.read()) == os.path.basename(path)
    assert sorted(os.path.getsize(p) for p in blocks) == [(1 << 20) + 12345, 4 << 20, 4 << 20]
    m.start()
    with open(os.path.join(m.path, "big"), "rb") as f:
        assert f.read() == data
