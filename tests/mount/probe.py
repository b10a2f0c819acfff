"""Run a named scenario of syscalls in the current directory and print a normalised JSON trace.

Used by the differential tests: the same scenario runs on tmpfs and on a vfsfuse mount (optionally
as another user via setpriv), and the two traces must be equal.  Every step records its result or
its errno name; ``snap`` records the stat fields that must match (type+mode, nlink, uid, gid, size)
and the bytes of regular files.

Usage: python probe.py SCENARIO
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import stat
import sys

trace: list = []
_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100


def step(name, fn, *args):
    try:
        r = fn(*args)
        trace.append([name, "ok", _norm(r)])
    except OSError as e:
        trace.append([name, errno.errorcode.get(e.errno, str(e.errno))])


def _norm(r):
    if isinstance(r, os.stat_result):
        return _st(r)
    if isinstance(r, (bytes, bytearray)):
        return hashlib.md5(r).hexdigest() if len(r) > 64 else r.decode("latin-1")
    if isinstance(r, (list, tuple)):
        return sorted(map(str, r)) if all(isinstance(x, (str, bytes)) for x in r) else [_norm(x) for x in r]
    if isinstance(r, (int, str, bool)) or r is None:
        return r
    return str(r)


def _st(s: os.stat_result):
    return {"mode": oct(s.st_mode), "nlink": s.st_nlink, "uid": s.st_uid, "gid": s.st_gid,
            "size": s.st_size if not stat.S_ISDIR(s.st_mode) else "dir"}


def snap(label="snap"):
    out = {}
    for top, dirs, files in os.walk("."):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            s = os.lstat(p)
            e = _st(s)
            if stat.S_ISREG(s.st_mode):
                try:
                    with open(p, "rb") as f:
                        e["md5"] = hashlib.md5(f.read()).hexdigest()
                except OSError as err:
                    e["md5"] = errno.errorcode.get(err.errno)
            elif stat.S_ISLNK(s.st_mode):
                e["target"] = os.readlink(p)
            out[p] = e
    trace.append([label, out])


def renameat2(a: str, b: str, flags: int):
    r = _libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
    fd = os.open(path, flags, mode)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------ scenarios

def sc_errnos():
    os.mkdir("d")
    write("d/f", b"x" * 10)
    step("open missing", os.open, "missing", os.O_RDONLY)
    step("mkdir existing", os.mkdir, "d")
    step("rmdir nonempty", os.rmdir, "d")
    step("unlink dir", os.unlink, "d")
    step("rmdir file", os.rmdir, "d/f")
    step("open excl", os.open, "d/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    step("open file as dir", os.open, "d/f/x", os.O_RDONLY)
    step("mkdir under file", os.mkdir, "d/f/x")
    step("rename into self", os.rename, "d", "d/sub")
    step("link dir", os.link, "d", "dlink")
    step("readlink file", os.readlink, "d/f")
    step("open dir for write", os.open, "d", os.O_WRONLY)
    step("long name", os.open, "n" * 256, os.O_WRONLY | os.O_CREAT)
    step("max name", write, "m" * 255, b"ok")
    step("getxattr unknown", os.getxattr, "d/f", "user.nope")
    step("removexattr unknown", os.removexattr, "d/f", "user.nope")
    step("setxattr", os.setxattr, "d/f", "user.a", b"1")
    step("setxattr create existing", os.setxattr, "d/f", "user.a", b"2", os.XATTR_CREATE)
    step("setxattr replace missing", os.setxattr, "d/f", "user.b", b"2", os.XATTR_REPLACE)
    step("getxattr", os.getxattr, "d/f", "user.a")
    step("listxattr", lambda p: [n for n in os.listxattr(p) if n.startswith("user.") and n != "user.vfs.chunks"], "d/f")
    step("removexattr", os.removexattr, "d/f", "user.a")
    step("getxattr removed", os.getxattr, "d/f", "user.a")
    os.mkdir("e")
    write("e/g", b"g")
    step("rename noreplace", renameat2, "d/f", "e/g", 1)
    step("rename exchange", renameat2, "d/f", "e/g", 2)
    step("read after exchange", read, "e/g")
    step("exchange missing", renameat2, "d/f", "e/none", 2)
    step("rename file over dir", os.rename, "d/f", "e")
    step("rename dir over file", os.rename, "e", "d/f")
    os.mkdir("full")
    write("full/x", b"")
    step("rename dir over nonempty", os.rename, "e", "full")
    step("rename onto hard link", lambda: (os.link("d/f", "d/f2"), os.rename("d/f", "d/f2"), sorted(os.listdir("d"))))
    step("truncate grow", lambda: (os.truncate("e/g", 100000), os.stat("e/g").st_size, read("e/g")[-3:]))
    step("truncate shrink", lambda: (os.truncate("e/g", 1), read("e/g")))
    step("symlink loop", lambda: (os.symlink("loop", "loop"), os.stat("loop")))
    step("dangling", lambda: (os.symlink("nowhere", "dang"), os.stat("dang")))
    step("utime", lambda: (os.utime("e/g", ns=(1_000_000_000, 2_000_000_000)),
                           os.stat("e/g").st_atime_ns, os.stat("e/g").st_mtime_ns))
    snap()


def sc_links_and_modes():
    write("a", b"hello")
    os.link("a", "b")
    step("nlink via other name", lambda: (os.stat("a").st_nlink, os.stat("b").st_nlink))
    os.chmod("a", 0o600)
    step("mode via other name", lambda: oct(os.stat("b").st_mode))
    write("b", b"changed!", os.O_WRONLY | os.O_TRUNC)
    step("data via other name", read, "a")
    os.rename("b", "c")
    step("nlink after rename", lambda: (os.stat("a").st_nlink, os.stat("c").st_nlink))
    os.unlink("a")
    step("nlink after unlink", lambda: os.stat("c").st_nlink)
    os.mkdir("dir")
    os.mkdir("dir/sub")
    step("dir nlink", lambda: os.stat("dir").st_nlink)
    os.rename("dir/sub", "sub2")
    step("dir nlink after move", lambda: (os.stat("dir").st_nlink, os.stat(".").st_nlink))
    os.mkfifo("fifo")
    os.symlink("c", "sym")
    step("lstat sym", lambda: oct(os.lstat("sym").st_mode))
    step("stat through sym", lambda: os.stat("sym").st_size)
    os.chmod("c", 0o4755)
    step("setuid kept by root write", lambda: (write("c", b"x", os.O_WRONLY | os.O_APPEND), oct(os.stat("c").st_mode)))
    snap()


# as an unprivileged user, inside directories prepared by root (see the test)
def sc_owner_umask():
    os.umask(0o027)
    write("f", b"1", mode=0o666)
    os.mkdir("d", 0o777)
    os.symlink("f", "l")
    step("file", os.stat, "f")
    step("dir", os.stat, "d")
    os.umask(0)
    write("g", b"1", mode=0o666)
    step("no umask", os.stat, "g")
    snap()


def sc_setgid_dir():
    write("sg/f", b"1")
    os.mkdir("sg/d")
    step("file gid", os.stat, "sg/f")
    step("subdir inherits setgid", os.stat, "sg/d")


def sc_sticky():
    step("unlink others' file", os.unlink, "sticky/rootfile")
    step("rename others' file", os.rename, "sticky/rootfile", "sticky/mine")
    write("sticky/own", b"1")
    step("rename own", os.rename, "sticky/own", "sticky/own2")
    step("unlink own", os.unlink, "sticky/own2")
    step("write others' file (mode 666)", write, "sticky/rootfile", b"w", os.O_WRONLY)


def sc_not_owner():
    step("chmod not owner", os.chmod, "rootfile", 0o777)
    step("chown to self", os.chown, "rootfile", os.getuid(), -1)
    step("utime explicit not owner", os.utime, "rootfile", (1, 2))
    step("utime now with write access", os.utime, "rootfile", None)
    step("read 0600 root file", read, "private")
    step("write suid file", write, "suid", b"appended", os.O_WRONLY | os.O_APPEND)
    step("suid dropped", os.stat, "suid")
    step("truncate sgid file", os.truncate, "sgid", 0)
    step("sgid dropped", os.stat, "sgid")
    step("create in root dir", write, "rootdir/x", b"1")
    step("mkdir in root dir", os.mkdir, "rootdir/y")
    step("setxattr not owner", os.setxattr, "rootfile", "user.z", b"1")


if __name__ == "__main__":
    globals()["sc_" + sys.argv[1]]()
    print(json.dumps(trace, indent=0, sort_keys=True))
