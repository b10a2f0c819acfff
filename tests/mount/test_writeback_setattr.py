"""Issue 12: what the host kernel sends on its own with write-back caching is not a user's utimensat.

With write-back caching (the default) the host kernel keeps mtime/ctime of regular files itself and
stores them with a SETATTR (mtime + ctime, no atime) carrying the credentials of whoever caused the
change: a non-owner renaming or unlinking a root file in a world-writable directory, a non-owner
writing or truncating through a descriptor.  Refusing that SETATTR latched a write-back error on the
file and the superblock, so every later fsync and syncfs failed and umount warned about lost data.

Every scenario runs the same steps on tmpfs and on a fresh mount (default options, ``--allow-other``)
and compares what Linux shows: results, errnos, which of mtime/ctime changed, nlink, owner, mode,
bytes.  On the mount, afterwards, fsync (on descriptors held across the step and on fresh ones),
syncfs (``sync -f``) and ``vfsfuse umount`` must report nothing, and after a remount the times are
exactly the ones seen before (the host's record was stored, not replaced by "now").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from stat import S_ISDIR

import pytest

from .conftest import NOBODY, sh

pytestmark = pytest.mark.mount

ROOT_SETUP = "set -e\nmkdir r r2\nchmod 0777 r r2\n"


def _errno(fn, *args) -> str:
    try:
        fn(*args)
    except OSError as exc:
        return __import__("errno").errorcode.get(exc.errno, str(exc.errno))
    return "ok"


def _files(d: Path) -> list[str]:
    out = []
    for top, dirs, files in os.walk(d):
        dirs.sort()
        out += [os.path.relpath(os.path.join(top, n), d) for n in sorted(files)]
    return out


def _tree(d: Path) -> dict:
    """Everything Linux shows of the tree except the time values."""
    out = {}
    for top, dirs, files in os.walk(d):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            s = os.lstat(p)
            data = None if os.path.isdir(p) else Path(p).read_bytes().decode()
            out[os.path.relpath(p, d)] = [oct(s.st_mode), s.st_uid, s.st_nlink, data]
    return out


def _times(d: Path) -> dict:
    out = {}
    for top, dirs, files in os.walk(d):
        for n in dirs + files:
            s = os.lstat(os.path.join(top, n))
            out[os.path.relpath(os.path.join(top, n), d)] = (s.st_mtime_ns, s.st_ctime_ns)
    return out


def _changes(before: os.stat_result, after: os.stat_result) -> dict:
    return {"mtime changed": after.st_mtime_ns != before.st_mtime_ns,
            "ctime changed": after.st_ctime_ns != before.st_ctime_ns,
            "nlink": after.st_nlink, "uid": after.st_uid, "mode": oct(after.st_mode),
            "size": None if S_ISDIR(after.st_mode) else after.st_size}  # tmpfs: 20 bytes a name


class Run:
    """One scenario in one directory: root's setup, descriptors root holds, the non-owner's step."""

    def __init__(self, d: Path, setup: str, held: list[str], dirty: bool = False) -> None:
        self.d = d
        r = sh(ROOT_SETUP + setup, d)
        assert r.returncode == 0, r.stderr
        flags = os.O_RDWR if dirty else os.O_RDONLY
        self.fds = {name: os.open(d / name, flags) for name in held}
        for fd in self.fds.values():
            if dirty:  # data and times only in the host's page cache when the step runs
                os.pwrite(fd, b"dirty\n", 0)
        time.sleep(0.05)  # so that any time the step sets differs from the setup's
        self.before = self.snap()

    def snap(self) -> dict:
        s = {"held " + name: os.fstat(fd) for name, fd in self.fds.items()}
        s.update({name + "/": os.stat(self.d / name) for name in ("r", "r2")})
        return s

    def changes(self) -> dict:
        self.after = self.snap()
        return {k: _changes(self.before[k], self.after[k]) for k in self.before}

    def sync_checks(self) -> dict:
        """fsync on the held descriptors and on fresh ones, then syncfs; all must be quiet."""
        out = {}
        for name, fd in self.fds.items():
            out["fsync held " + name] = _errno(os.fsync, fd)
        for rel in _files(self.d):
            fd = os.open(self.d / rel, os.O_RDONLY)
            try:
                out["fsync " + rel] = _errno(os.fsync, fd)
            finally:
                os.close(fd)
        p = subprocess.run(["sync", "-f", str(self.d)], capture_output=True, text=True)
        out["syncfs"] = [p.returncode, p.stderr]
        again = self.snap()
        out["times unchanged by syncing"] = all(
            (again[k].st_mtime_ns, again[k].st_ctime_ns) == (self.after[k].st_mtime_ns, self.after[k].st_ctime_ns)
            for k in again)
        return out

    def close(self) -> dict:
        return {"close " + name: _errno(os.close, fd) for name, fd in self.fds.items()}


QUIET = {"syncfs": [0, ""], "times unchanged by syncing": True}


def _expect_quiet(checks: dict) -> None:
    bad = {k: v for k, v in checks.items() if v != QUIET.get(k, "ok")}
    assert not bad, f"syncing reported errors: {bad}"


def _mount_dir(m) -> Path:
    d = Path(m.path) / "t"
    d.mkdir()
    return d


def _umount_quietly_and_remount(m, d: Path) -> None:
    """umount says nothing; after a remount the tree and its times are exactly as last seen."""
    tree, times = _tree(d), _times(d)
    p = m.umount()
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    m.start()
    assert _tree(d) == tree
    assert _times(d) == times


# name: (root's setup in r/ and r2/, files root holds open across the step, the non-owner's step)
SCENARIOS = {
    "rename_over": ("echo a > r/a\necho b > r/b\n", ["r/a", "r/b"], "mv -f r/a r/b"),
    "rename_out": ("echo a > r/a\n", ["r/a"], "mv r/a r2/a"),
    "unlink": ("echo a > r/a\nln r/a r/a2\necho c > r/c\n", ["r/a", "r/c"], "rm -f r/a r/c"),
    "replace": ("echo a > r/a\n", ["r/a"], "echo new > r/a.tmp && mv -f r/a.tmp r/a"),
    # root has written through its descriptor and nothing has reached the daemon yet
    "rename_dirty": ("echo a > r/a\n", ["r/a"], "mv r/a r/b"),
}


@pytest.mark.parametrize("order", ["fsync-syncfs-umount", "umount-first"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_non_owner_name_changes_leave_no_write_back_error(name, order, tdir, new_mount):
    setup, held, step = SCENARIOS[name]
    m = new_mount("--allow-other")
    mdir = _mount_dir(m)
    traces = []
    for d in (tdir, mdir):
        run = Run(d, setup, held, dirty=name == "rename_dirty")
        p = sh(step, d, user=NOBODY)
        trace = {"step": [p.returncode, p.stderr], "changes": run.changes()}
        if order == "fsync-syncfs-umount":
            checks = run.sync_checks()
            _expect_quiet(checks)
            trace["checks"] = checks
        trace["close"] = run.close()
        trace["tree"] = _tree(d)
        traces.append(trace)
    tmpfs, ours = traces
    assert tmpfs["step"] == [0, ""], tmpfs["step"]
    for key in tmpfs:
        assert ours[key] == tmpfs[key], f"{key}:\ntmpfs:   {tmpfs[key]}\nvfsfuse: {ours[key]}"
    _umount_quietly_and_remount(m, mdir)


# utimensat(2) by a non-owner, through ctypes so that UTIME_NOW and UTIME_OMIT reach the kernel.
UTIMENSAT = r"""
import ctypes, errno, json, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]
NOW, OMIT, T = (0, (1 << 30) - 1), (0, (1 << 30) - 2), (946684800, 123456789)
ARGS = {"now": NOW, "omit": OMIT, "T": T}
out = []
for path, a, m in json.loads(sys.argv[1]):
    before = os.stat(path)
    time.sleep(0.02)
    ts = (TS * 2)(TS(*ARGS[a]), TS(*ARGS[m]))
    r = libc.utimensat(-100, path.encode(), ts, 0)
    res = "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
    after = os.stat(path)
    out.append([path, a, m, res, after.st_mtime_ns != before.st_mtime_ns,
                after.st_ctime_ns != before.st_ctime_ns,
                after.st_atime_ns if a == "T" and r == 0 else None,
                after.st_mtime_ns if m == "T" and r == 0 else None])
print(json.dumps(out))
"""

UTIME_CASES = [
    # root's 0644 file: the non-owner may neither write it nor set explicit times
    ["r/f", "now", "now"], ["r/f", "T", "T"], ["r/f", "omit", "T"], ["r/f", "omit", "now"],
    ["r/f", "now", "omit"], ["r/f", "T", "now"], ["r/f", "omit", "omit"],
    # root's 0666 file: "now" is allowed (write permission), explicit times are not
    ["r/g", "now", "now"], ["r/g", "T", "T"], ["r/g", "omit", "T"], ["r/g", "omit", "now"],
    ["r/g", "now", "omit"], ["r/g", "T", "now"], ["r/g", "now", "T"],
    # the non-owner's own file: anything, explicit times stored exactly
    ["r/own", "T", "T"], ["r/own", "omit", "now"], ["r/own", "now", "omit"], ["r/own", "now", "now"],
    ["r/own", "omit", "T"],
    # directories (their times are not kept by the host): root's 0777 and 0755 ones
    ["r", "now", "now"], ["r", "T", "T"], ["r2", "now", "now"], ["r2", "omit", "T"],
]

TOUCH = """
touch -d '2000-01-01 00:00:01' r/f; echo "f explicit $?"
touch r/f; echo "f now $?"
touch -m r/f; echo "f -m now $?"
touch -d '2000-01-01 00:00:01' r/g; echo "g explicit $?"
touch -m -d '2000-01-01 00:00:01' r/g; echo "g -m explicit $?"
touch r/g; echo "g now $?"
touch -a r/g; echo "g -a now $?"
"""


def test_explicit_utimensat_by_a_non_owner_is_refused_as_on_linux(tdir, new_mount):
    m = new_mount("--allow-other")
    mdir = _mount_dir(m)
    traces = []
    for d in (tdir, mdir):
        r = sh(ROOT_SETUP + "echo f > r/f\necho g > r/g\nchmod 666 r/g\nchmod 755 r2\n", d)
        assert r.returncode == 0, r.stderr
        r = sh("echo own > r/own", d, user=NOBODY)
        assert r.returncode == 0, r.stderr
        p = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                            sys.executable, "-c", UTIMENSAT, json.dumps(UTIME_CASES)],
                           cwd=d, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        touch = sh(TOUCH, d, user=NOBODY)
        p2 = subprocess.run(["sync", "-f", str(d)], capture_output=True, text=True)
        traces.append({"utimensat": json.loads(p.stdout), "touch": [touch.stdout, touch.stderr],
                       "syncfs": [p2.returncode, p2.stderr], "tree": _tree(d)})
    tmpfs, ours = traces
    # the cases mean what they say (on Linux itself)
    results = {(c[0], c[1], c[2]): c[3] for c in tmpfs["utimensat"]}
    assert results[("r/f", "T", "T")] == "EPERM" and results[("r/f", "now", "now")] == "EACCES"
    assert results[("r/g", "now", "now")] == "ok" and results[("r/g", "omit", "T")] == "EPERM"
    assert "Operation not permitted" in tmpfs["touch"][1] and "Permission denied" in tmpfs["touch"][1]
    for a, b in zip(tmpfs["utimensat"], ours["utimensat"]):
        assert b == a, f"tmpfs: {a}\nvfsfuse: {b}"
    for key in ("touch", "syncfs", "tree"):
        assert ours[key] == tmpfs[key], f"{key}:\ntmpfs:   {tmpfs[key]}\nvfsfuse: {ours[key]}"
    assert ours["syncfs"] == [0, ""]
    _umount_quietly_and_remount(m, mdir)


# A non-owner writes and truncates root's files it may write; the host kernel sends the times it
# keeps (and clears set-user-ID/set-group-ID) on the writer's behalf.  Then the writer keeps a
# descriptor while root takes write permission away: write, ftruncate and close through it still
# work on Linux, and the times they flush are not a utimensat either.
KILLPRIV_SETUP = """
echo s > r/s && chmod 4777 r/s
echo g > r/g && chmod 2777 r/g
echo m > r/m && chmod 2767 r/m
echo t > r/t && chmod 4777 r/t
echo n > r/n && chmod 2767 r/n
echo w > r/w && chmod 666 r/w
"""

KILLPRIV_STEP = """
echo x >> r/s
echo x >> r/g
echo x >> r/m
truncate -s 1 r/t
truncate -s 1 r/n
"""

HOLDER = r"""
import errno, json, os, sys
def err(fn, *a):
    try:
        fn(*a)
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "ok"
fd = os.open("r/w", os.O_RDWR)
print("ready", flush=True)
sys.stdin.readline()  # root has made r/w read-only meanwhile
out = {"write": err(os.pwrite, fd, b"data and more", 0), "ftruncate": err(os.ftruncate, fd, 8),
       "fdatasync": err(os.fdatasync, fd), "close": err(os.close, fd)}
print(json.dumps(out), flush=True)
"""


@pytest.mark.parametrize("order", ["fsync-syncfs-umount", "umount-first"])
def test_non_owner_writes_truncates_and_kill_priv_leave_no_write_back_error(order, tdir, new_mount):
    m = new_mount("--allow-other")
    mdir = _mount_dir(m)
    traces = []
    for d in (tdir, mdir):
        run = Run(d, KILLPRIV_SETUP, ["r/s", "r/g", "r/m", "r/t", "r/n", "r/w"])
        p = sh(KILLPRIV_STEP, d, user=NOBODY)
        holder = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   sys.executable, "-c", HOLDER], cwd=d, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert holder.stdout.readline().strip() == "ready"
            os.chmod(d / "r/w", 0o444)
            holder.stdin.write("go\n")
            holder.stdin.flush()
            held = json.loads(holder.stdout.readline())
        finally:
            holder.communicate(timeout=30)
        trace = {"step": [p.returncode, p.stderr], "holder": held, "changes": run.changes()}
        if order == "fsync-syncfs-umount":
            checks = run.sync_checks()
            _expect_quiet(checks)
            trace["checks"] = checks
        trace["close"] = run.close()
        trace["tree"] = _tree(d)
        traces.append(trace)
    tmpfs, ours = traces
    assert tmpfs["step"] == [0, ""] and set(tmpfs["holder"].values()) == {"ok"}
    # set-user-ID went; set-group-ID too (since Linux 6.x also without group execute when the
    # writer is not in the group, so r/m follows whatever the running kernel does)
    assert tmpfs["tree"]["r/s"][0] == "0o100777" and tmpfs["tree"]["r/g"][0] == "0o100777"
    for key in tmpfs:
        assert ours[key] == tmpfs[key], f"{key}:\ntmpfs:   {tmpfs[key]}\nvfsfuse: {ours[key]}"
    _umount_quietly_and_remount(m, mdir)
