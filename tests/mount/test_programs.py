"""Real programs on a real mount: cp, tar, git, sqlite3, dd, find, du, getfattr, fifos, concurrency."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from .conftest import sh

pytestmark = pytest.mark.mount

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "GIT_CONFIG_NOSYSTEM": "1"}


def snapshot(root: Path) -> dict:
    """Everything cp -a / tar must preserve: type+mode, size, mtime, link targets, bytes, hard links."""
    out = {}
    inodes: dict[int, str] = {}
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            rel = os.path.relpath(p, root)
            s = os.lstat(p)
            e = [oct(s.st_mode), s.st_uid, s.st_gid]
            if os.path.islink(p):
                e.append(os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    e += [s.st_size, s.st_mtime_ns, hashlib.md5(f.read()).hexdigest(), s.st_nlink]
                e.append(inodes.setdefault(s.st_ino, rel))  # hard links map to one first name
            elif not os.path.isdir(p):
                e.append(s.st_mtime_ns)
            out[rel] = e
    return out


def make_tree(root: Path) -> None:
    """A small tree with the interesting cases: inline/chunk boundaries, holes, links, modes."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "zero").write_bytes(b"")
    (root / "small").write_bytes(b"hello\n")
    (root / "inline-max").write_bytes(os.urandom(64 * 1024))
    (root / "inline-max+1").write_bytes(os.urandom(64 * 1024 + 1))
    (root / "sub" / "chunks").write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    with open(root / "sub" / "sparse", "wb") as f:
        f.seek(5 * 1024 * 1024)
        f.write(b"end")
    (root / "sub" / "deeper" / "x.txt").write_text("x" * 1000)
    os.symlink("../small", root / "sub" / "link")
    os.symlink("nowhere", root / "dangling")
    os.link(root / "small", root / "sub" / "hard")
    os.chmod(root / "sub" / "deeper" / "x.txt", 0o640)
    os.chmod(root / "empty", 0o700)
    os.mkfifo(root / "fifo")
    os.utime(root / "small", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))


def test_cp_a_preserves_everything(tdir, mdir):
    src = tdir / "src"
    src.mkdir()
    make_tree(src)
    r = sh(f"cp -a {src} {mdir}/copy", tdir)
    assert r.returncode == 0, r.stderr
    assert snapshot(mdir / "copy") == snapshot(src)
    r = sh(f"cp -a {mdir}/copy {tdir}/back", tdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(tdir / "back") == snapshot(src)


def test_tar_round_trip_of_a_real_tree(tdir, mdir):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tar = tdir / "t.tar"
    r = sh(f"tar cf {tar} --exclude=__pycache__ -C {stdlib} json email asyncio", tdir)
    assert r.returncode == 0, r.stderr
    r = sh(f"tar xf {tar}", mdir)
    assert r.returncode == 0, r.stderr
    r = sh(f"mkdir ref && tar xf {tar} -C ref && diff -r ref/json {mdir}/json && diff -r ref/email {mdir}/email "
           f"&& diff -r ref/asyncio {mdir}/asyncio", tdir)
    assert r.returncode == 0, r.stdout + r.stderr
    # tar c from the mount must produce byte-identical members
    r = subprocess.run(f"tar cf {tdir}/again.tar -C {mdir} json email asyncio && mkdir {tdir}/re "
                       f"&& tar xf {tdir}/again.tar -C {tdir}/re && diff -r {tdir}/ref {tdir}/re",
                       shell=True, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(tdir / "ref") == snapshot(mdir)  # same modes, sizes, mtimes and bytes


def test_git_init_add_commit_fsck_clone(tdir, mdir):
    shutil.copytree(Path(sysconfig.get_paths()["stdlib"]) / "json", mdir / "repo" / "json",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, **GIT_ENV, HOME=str(mdir))
    r = sh("git init -q && git add -A && git commit -q -m first && echo more >> json/__init__.py "
           "&& git commit -qam second && git fsck --strict --no-progress && git log --oneline | wc -l "
           "&& git status --porcelain | wc -l && git gc -q && git fsck --no-progress",
           mdir / "repo", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "0"]
    r = sh(f"git clone -q {mdir}/repo {tdir}/clone && git -C {tdir}/clone log --oneline | wc -l "
           f"&& diff -r -x .git {mdir}/repo {tdir}/clone", tdir, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sqlite3_database_inside_the_mount(mdir):
    if not shutil.which("sqlite3"):
        pytest.skip("sqlite3 not installed")
    script = """
        PRAGMA journal_mode=WAL;
        CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<20000)
            INSERT INTO t(v) SELECT printf('value-%d', x) FROM c;
        CREATE INDEX iv ON t(v);
        UPDATE t SET v = v || '!' WHERE id % 7 = 0;
        DELETE FROM t WHERE id % 11 = 0;
        SELECT count(*), sum(id) FROM t;
        SELECT v FROM t WHERE id = 14;
        PRAGMA integrity_check;
    """
    r = subprocess.run(["sqlite3", str(mdir / "db.sqlite")], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["wal", "18182|181821819", "value-14!", "ok"]
    r = subprocess.run(["sqlite3", str(mdir / "db.sqlite"), "PRAGMA journal_mode=DELETE; VACUUM; "
                        "SELECT count(*) FROM t; PRAGMA integrity_check;"], capture_output=True, text=True)
    assert r.stdout.split() == ["delete", "18182", "ok"], r.stderr


def test_dd_find_du(tdir, mdir):
    script = """
        set -e
        dd if=/dev/urandom of=rand bs=1M count=6 status=none
        dd if=rand of=copy bs=64k status=none conv=fsync
        cmp rand copy
        dd if=rand of=part bs=4k skip=100 count=300 status=none
        dd if=part of=rand bs=4k seek=7 count=300 conv=notrunc status=none
        dd if=/dev/zero of=holey bs=1 count=1 seek=12345678 status=none
        mkdir -p t/a t/b/c && for i in 1 2 3; do echo $i > t/a/$i; echo $i$i > t/b/c/$i; done
    """
    for d in (tdir, mdir):
        r = sh(script, d)
        assert r.returncode == 0, r.stderr
    # the random data differs per directory: copy ours over so bytes can be compared
    shutil.copyfile(tdir / "rand", mdir / "rand2")
    assert hashlib.md5((mdir / "rand2").read_bytes()).digest() == hashlib.md5((tdir / "rand").read_bytes()).digest()
    listing = ("find . -path ./rand2 -prune -o -type d -printf 'd %m %P\\n' -o -printf '%y %m %s %P\\n' | sort; "
               "du -s --apparent-size --block-size=1 t/a/1 holey")
    a, b = sh(listing, tdir), sh(listing, mdir)
    assert a.stdout.splitlines() == b.stdout.splitlines()


def test_du_of_a_sparse_file_counts_only_stored_data(mdir):
    r = sh("dd if=/dev/zero of=holey bs=1 count=1 seek=12345678 status=none && du -s --block-size=1 holey", mdir)
    assert int(r.stdout.split()[0]) < 64 * 1024, r.stdout


def test_ln_mv_chmod_seen_through_every_name_immediately(mdir):
    r = sh("""
        set -e
        echo data > a
        ln a b
        stat -c %h a
        chmod 604 b
        stat -c %a a
        mv a c
        stat -c '%h %a' b c
        ln -s c s
        chmod 600 s          # follows the link
        stat -c %a b
        python3 -c 'import os; os.rename("c", "b")'   # onto a hard link of itself: both names stay
        ls
        rm b && stat -c %h c
    """, mdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "604", "2", "604", "2", "604", "600", "b", "c", "s", "1"]


def test_getfattr_setfattr(mdir):
    if not shutil.which("getfattr"):
        pytest.skip("attr tools not installed")
    r = sh("""
        echo x > f
        setfattr -n user.color -v blue f
        setfattr -n user.bin -v 0x00ff f
        getfattr --absolute-names -d f
        getfattr --absolute-names -n user.color --only-values f; echo
        setfattr -x user.color f
        getfattr --absolute-names -n user.color f 2>&1; echo rc=$?
        getfattr --absolute-names -n user.vfs.chunks f | grep -c 'storage inline'
        setfattr -n user.vfs.chunks -v no f 2>&1; echo rc=$?
    """, mdir)
    out = r.stdout
    assert 'user.bin=0sAP8=' in out and 'user.color="blue"' in out
    assert "blue\n" in out
    assert "No such attribute" in out and "rc=1" in out
    assert "\n1\n" in out
    assert out.strip().endswith("rc=1")


def test_fifo_between_two_processes(mdir):
    os.mkfifo(mdir / "p")
    reader = subprocess.Popen(["cat", str(mdir / "p")], stdout=subprocess.PIPE)
    with open(mdir / "p", "wb") as w:
        w.write(b"through the fifo\n" * 1000)
    out, _ = reader.communicate(timeout=60)
    assert out == b"through the fifo\n" * 1000


def test_writer_and_reader_processes_concurrently(mdir):
    path = mdir / "log"
    path.write_bytes(b"")
    n = 2000
    writer = subprocess.Popen([sys.executable, "-c", f"""
import os, time
fd = os.open({str(path)!r}, os.O_WRONLY | os.O_APPEND)
for i in range({n}):
    os.write(fd, b"line %05d\\n" % i)
    if i % 100 == 0:
        time.sleep(0.01)
os.close(fd)
"""])
    got = b""
    deadline = time.monotonic() + 30
    with open(path, "rb") as f:
        while len(got) < n * 11 and time.monotonic() < deadline:
            chunk = f.read()
            if chunk:
                got += chunk
            else:
                time.sleep(0.005)
    writer.wait(timeout=30)
    assert got == b"".join(b"line %05d\n" % i for i in range(n))


def test_parallel_writers_to_separate_files(mdir):
    procs = [subprocess.Popen(["dd", "if=/dev/zero", f"of={mdir}/f{i}", "bs=256k", "count=40", "status=none"])
             for i in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    assert all((mdir / f"f{i}").stat().st_size == 40 * 256 * 1024 for i in range(4))


def test_big_writes_reach_the_daemon_whole(new_mount):
    m = new_mount("--log-level", "info")
    r = sh("dd if=/dev/zero of=f bs=1M count=4 status=none", m.path)
    assert r.returncode == 0
    assert m.umount().returncode == 0
    log = Path(m.store, "run", "daemon.log").read_text()
    size = int(log.rsplit("largest write request: ", 1)[1].split()[0])
    assert size >= 128 * 1024


def test_dev_shm_is_a_writable_memory_directory(shared_mount):
    mounted = shared_mount.path
    shm = os.path.join(mounted, "dev", "shm")
    seg = os.path.join(shm, f"seg{os.getpid()}")
    with open(seg, "wb") as f:
        f.write(b"shared")
    with open(seg, "rb") as f:
        assert f.read() == b"shared"
    os.unlink(seg)
    assert oct(os.stat(shm).st_mode & 0o7777) == oct(0o1777)
    with open(os.path.join(mounted, "proc", "mounts")) as f:
        assert any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in f)


@pytest.mark.allow_log_warnings  # provokes the daemon errors it checks
def test_a_full_dev_shm_says_enospc_and_the_daemon_keeps_serving(new_mount):
    """--shm-size bounds /dev/shm like tmpfs's size=: dd gets ENOSPC, the daemon keeps
    serving, and removing the file gives the space back."""
    m = new_mount("--shm-size", "4M")
    shm = os.path.join(m.path, "dev", "shm")
    # Random bytes: all-zero chunks are holes and identical ones are stored once, here too.
    r = subprocess.run(["dd", "if=/dev/urandom", f"of={shm}/fill", "bs=64k", "count=200", "conv=fsync"],
                       capture_output=True, text=True, timeout=60)
    # Through FUSE the host's write-back cache takes the writes; the fsync reports ENOSPC.
    assert r.returncode != 0 and "No space left on device" in r.stderr
    os.unlink(f"{shm}/fill")
    r = subprocess.run(["dd", "if=/dev/urandom", f"of={shm}/again", "bs=64k", "count=32", "conv=fsync"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(f"{shm}/again") == 2 << 20
    (Path(m.path) / "still-serving").write_text("yes")
    r = m.umount()  # the earlier ENOSPC comes back once from syncfs: a warning, not a failure
    assert r.returncode == 0 and "write-back error earlier (ENOSPC)" in r.stderr


def test_host_users_have_no_proc_self(shared_mount):
    proc = os.path.join(shared_mount.path, "proc")
    assert not os.path.lexists(os.path.join(proc, "self"))  # a host process is no sandbox process
    assert "self" not in os.listdir(proc) and "1" in os.listdir(proc)
