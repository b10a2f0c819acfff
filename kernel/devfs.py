"""``/dev``: character devices with Linux numbers and semantics, as a ``SyntheticFS``.

Namespace (``ls -l /dev`` on Linux looks the same)::

    null 1:3  zero 1:5  full 1:7  random 1:8  urandom 1:9      crw-rw-rw-
    tty 5:0   console 5:1 (crw-------)  ptmx 5:2
    stdin -> /proc/self/fd/0   stdout -> .../1   stderr -> .../2   fd -> /proc/self/fd
    pts/      one node per open PTY, 136:N, crw--w---- root:tty (from ``ptys.pty_names()``)
    shm/      an empty drwxrwxrwt directory: the kernel mounts a memory filesystem over it

Semantics through open/read/write (what the host sees through FUSE, and what the
fd layer gets when it does not route a device itself):

* ``null``: reads give EOF, writes are swallowed.
* ``zero``: reads give zeros; ``full``: reads give zeros, writes fail with ENOSPC.
* ``random``/``urandom``: reads give CSPRNG bytes; writes are accepted (Linux mixes
  them into the pool).
* Reads of zero/full/random/urandom return exactly the requested size up to
  ``MAX_DEVICE_READ`` (16 MiB) per call, a short read beyond that (allowed by POSIX;
  it only bounds the memory one call can make us allocate).
* ``tty``: ENXIO unless the caller has a controlling terminal; ``ptmx`` and
  ``pts/N``: ENXIO here, because a PTY lives in the kernel's fd layer, which must
  recognise these inodes (``device_for``) and route them before calling ``open``.
* ``console``: inert (reads EOF, writes swallowed), root only.

Device nodes created with mknod inside the root filesystem are *not* devices: the
fd layer must answer ENXIO when opening them (only ``device_for`` says what is real).
"""

from __future__ import annotations

import os

from .errors import KernelError
from .mounts import LOCAL_MASK as _LOCAL_MASK
from .pty import PTS_MAJOR
from .synthetic import Device, DynamicDir, Handle, StaticDir, Symlink, SyntheticFS

MAX_DEVICE_READ = 16 << 20
TTY_GID = 5

# name, major, minor, permissions
DEVICES: tuple[tuple[str, int, int, int], ...] = (
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("console", 5, 1, 0o600),
    ("ptmx", 5, 2, 0o666),
)


class DevFS(SyntheticFS):
    """The /dev filesystem.  *ptys* (a ``PtyRegistry``: ``pty_names()``) fills /dev/pts;
    *processes* (a ``ProcessTable``: ``get(pid).tty``) says which terminal /dev/tty is
    for a caller.  Without them there are no PTYs and no controlling terminals."""

    create_error = "EPERM"

    def __init__(self, ptys=None, processes=None) -> None:
        self._ptys = ptys
        self._processes = processes
        root = StaticDir(0o755)
        for name, major, minor, perm in DEVICES:
            root.add(name.encode(), Device(name, os.makedev(major, minor), perm,
                                           gid=TTY_GID if name == "tty" else 0))
        for i, link in enumerate((b"stdin", b"stdout", b"stderr")):
            root.add(link, Symlink(b"/proc/self/fd/%d" % i))
        root.add(b"fd", Symlink(b"/proc/self/fd"))
        self._pts = root.add(b"pts", DynamicDir(self._list_pts, self._lookup_pts, 0o755))
        root.add(b"shm", StaticDir(0o1777))
        super().__init__(root)

    # ---- /dev/pts ------------------------------------------------------------------------
    def _pty_names(self) -> list[int]:
        return self._ptys.pty_names() if self._ptys is not None else []

    def _pts_node(self, n: int) -> Device:
        def make() -> Device:
            return Device(f"pts/{n}", os.makedev(PTS_MAJOR, n), 0o620, gid=TTY_GID,
                          live=lambda: n in self._pty_names())
        return self.intern(("pts", n), make, parent=self._pts)

    def _list_pts(self, fs, caller):
        return [(str(n).encode(), self._pts_node(n)) for n in sorted(self._pty_names())]

    def _lookup_pts(self, fs, name: bytes, caller):
        if not name.isdigit() or (len(name) > 1 and name[0:1] == b"0"):
            return None
        n = int(name)
        return self._pts_node(n) if n in self._pty_names() else None

    # ---- routing helper for the fd layer -------------------------------------------------
    def device_for(self, ino: int) -> str | None:
        """Which device an inode of this filesystem is (``"null"``, ``"tty"``,
        ``"pts/3"``...), or None.  Accepts local or mount-table (shifted) numbers."""
        node = self._nodes.get(ino & _LOCAL_MASK)
        return node.name if isinstance(node, Device) else None

    def _controlling_tty(self, pid: int) -> str | None:
        if pid <= 0 or self._processes is None:
            return None
        p = self._processes.get(pid)
        return p.tty if p is not None else None

    # ---- device behaviour ----------------------------------------------------------------
    def device_open(self, h: Handle) -> None:
        name = h.node.name  # type: ignore[attr-defined]
        if name == "tty":
            if self._controlling_tty(h.caller.pid) is None:
                raise KernelError("ENXIO", "no controlling terminal")
        elif name == "ptmx" or name.startswith("pts/"):
            raise KernelError("ENXIO", f"/dev/{name} is served by the kernel's PTY layer")

    def device_read(self, h: Handle, offset: int, size: int) -> bytes:
        name = h.node.name  # type: ignore[attr-defined]
        n = max(0, min(size, MAX_DEVICE_READ))
        if name == "zero" or name == "full":
            return bytes(n)
        if name == "urandom" or name == "random":
            return os.urandom(n)
        return b""

    def device_write(self, h: Handle, offset: int, data: bytes) -> int:
        if h.node.name == "full":  # type: ignore[attr-defined]
            raise KernelError("ENOSPC", "no space left on device")
        return len(data)
