"""What a path argument names, and the one way a path inside a store is resolved.

A command's path argument is one of

* ``STORE`` or ``STORE:/path``: a path *inside the store's filesystem*.  It is resolved by
  ``PathVFS`` (kernel/pathvfs.py), the one path walker: ``..`` at ``/`` stays at ``/``, an
  absolute symlink means the store's ``/``, more than 40 followed links give ELOOP.  That holds
  whether the store is mounted or not, and both give the same inode: unmounted, PathVFS walks
  the store's ChunkedVFS; mounted, PathVFS walks a ``MountView`` of the mount, an inode-level
  filesystem whose only host operation is "open this one plain name in this directory
  without following it" (``openat(dirfd, name, O_PATH | O_NOFOLLOW)``) plus ``readlinkat`` and
  ``fstat``.  The host never sees ``..``, a symlink target or a multi-component path, so it
  cannot walk out of the mount; PathVFS keeps the chain of directories itself.
* ``MOUNTPOINT/path`` (any host path that enters a vfsfuse mount): a *host* path, resolved by
  the host kernel as any program would (``open(O_PATH)``, then ``/proc/self/fd`` tells where it
  landed).  If it lands outside the mount it entered (``m/../etc``, a symlink to ``/etc`` or
  ``../..`` read by the host), it is refused with EXDEV, as Linux's ``RESOLVE_BENEATH`` does;
  otherwise the part below the mount root is resolved like a ``STORE:/path``.

Why a mounted ``STORE:/path`` is not simply ``MOUNTPOINT + path``: the host would resolve it
(``..`` out of the mount root, absolute symlinks to the host's ``/etc``), describing host files
as store files (issue 18).  Why not ask the daemon through ``/.vfs/control``: ``info`` must
work on read-only mounts and for users who may not write the control file, and a walk done by
the CLI over the daemon's own answers (lookups through FUSE) sees exactly the daemon's view.

The daemon's other filesystems in the mount (``/.vfs``, ``/dev``, ``/proc``; their inode
numbers are ``(k << 48) | i``, see kernel/mounts.py) and host mounts stacked inside the mount
(another ``st_dev``) are not part of the store: a walk into them is refused with EXDEV.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
from dataclasses import dataclass

import trio

from kernel.errors import KernelError
from kernel.fs import ROOT_CALLER, Attr, Caller
from kernel.pathvfs import PathVFS
from vfsfuse.storage.store import is_store

_MOUNT_SHIFT = 48  # kernel/mounts.py: the root mount (the store) numbers its inodes below 1 << 48
_O_LOOKUP = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Target:
    """An unmounted store (``store``) or a mount (``mount``), and a path inside it."""

    store: str | None = None
    mount: str | None = None
    path: str = "/"

    @property
    def unmounted_store(self) -> str:
        """The store of a target that is not mounted (callers handle ``mount`` first)."""
        assert self.store is not None, "a Target names a store or a mount"
        return self.store


@dataclass
class Inside:
    """A path resolved inside a store: its canonical path (only plain names from ``/``: no
    ``.``, ``..`` or symlinks), inode number and attributes."""

    path: str
    ino: int
    attr: Attr


# -- the one resolution --------------------------------------------------------------------------


async def resolve_inside(fs, path: str, *, what: str | None = None) -> Inside:
    """Resolve *path* inside the filesystem *fs* with PathVFS rules (final symlink followed).

    *fs* is any inode-level filesystem: the store's ChunkedVFS (unmounted), a ``MountView``
    of its mount (mounted), or the sandbox kernel's mount table.  This is the only place the
    CLI resolves a path inside a store: ``info`` and ``versions`` use it, and the
    ``shell``/``exec`` ``--cwd`` options are to reuse it (``Inside.path`` is the directory to
    start in), so every command agrees on what ``STORE:/path`` means, mounted or not.
    Errors are KernelErrors naming *what* (default: *path*), e.g. ``ELOOP: STORE:/loop: too
    many levels of symbolic links``.
    """
    walker = PathVFS(fs)
    try:
        canonical = await walker.realpath(path or "/")
        ino, attr = await walker.resolve(canonical)
    except KernelError as exc:
        raise KernelError(exc.code, f"{what or path}: {exc.message}") from None
    return Inside(os.fsdecode(canonical), ino, attr)


def resolve_in_mount(mount: str, path: str, *, what: str | None = None) -> Inside:
    """``resolve_inside`` over a ``MountView`` of the vfsfuse mount at *mount*."""
    with MountView(mount) as view:
        return trio.run(lambda: resolve_inside(view, path, what=what))


# -- a mount seen as an inode-level filesystem, one plain name at a time --------------------------


def _kernel_error(exc: OSError) -> KernelError:
    """The host's answer worded as the store's own filesystem words it ("no such file or
    directory"), so a mounted and an unmounted walk fail with the same line."""
    code = errno.errorcode.get(exc.errno or 0, "EIO")
    text = exc.strerror or os.strerror(exc.errno or errno.EIO)
    return KernelError(code, text[:1].lower() + text[1:])


def _attr(st: os.stat_result) -> Attr:
    return Attr(ino=st.st_ino, mode=st.st_mode, nlink=st.st_nlink, uid=st.st_uid, gid=st.st_gid,
                size=st.st_size, atime_ns=st.st_atime_ns, mtime_ns=st.st_mtime_ns,
                ctime_ns=st.st_ctime_ns, rdev=st.st_rdev, blksize=st.st_blksize,
                blocks=st.st_blocks)


class MountView:
    """The store's tree in a host mount, as the read-only inode-level calls PathVFS walks with
    (``root_ino``, ``lookup``, ``getattr``, ``readlink``).

    Every inode is an ``O_PATH`` descriptor reached by ``openat(parent, name, O_NOFOLLOW)``
    with *name* a single component other than ``.``/``..``: the host resolves nothing but one
    directory entry, so nothing it does can leave the mount.  Inode numbers are the mount's
    ``st_ino``, which are the store's own (the root mount keeps its numbers).  Use it as a
    context manager (it closes its descriptors).
    """

    def __init__(self, mount: str) -> None:
        self.mount = mount
        fd = os.open(mount, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        st = os.fstat(fd)
        self.dev = st.st_dev
        self.root_ino = st.st_ino
        self._fds: dict[int, int] = {st.st_ino: fd}

    def __enter__(self) -> "MountView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def fd(self, ino: int) -> int:
        try:
            return self._fds[ino]
        except KeyError:
            raise KernelError("ESTALE", f"inode {ino} was not looked up") from None

    async def lookup(self, parent: int, name: bytes, caller: Caller = ROOT_CALLER) -> Attr:
        if not name or name in (b".", b"..") or b"/" in name:
            raise KernelError("EINVAL", f"not a plain name: {name!r}")  # PathVFS never asks
        try:
            fd = os.open(name, _O_LOOKUP, dir_fd=self.fd(parent))
        except OSError as exc:
            raise _kernel_error(exc) from None
        st = os.fstat(fd)
        if st.st_dev != self.dev or st.st_ino >> _MOUNT_SHIFT:
            os.close(fd)
            where = "a host mount inside the mount" if st.st_dev != self.dev else \
                "one of the daemon's own filesystems (/.vfs, /dev, /proc)"
            raise KernelError("EXDEV", f"{os.fsdecode(name)} is {where}, not in the store")
        if st.st_ino in self._fds:
            os.close(fd)  # the same inode again (a hard link, or a walk through a symlink)
        else:
            self._fds[st.st_ino] = fd
        return _attr(st)

    async def getattr(self, ino: int) -> Attr:
        return _attr(os.fstat(self.fd(ino)))

    async def readlink(self, ino: int, caller: Caller = ROOT_CALLER) -> bytes:
        try:
            return os.readlink(b"", dir_fd=self.fd(ino))
        except OSError as exc:
            raise _kernel_error(exc) from None

    def open_beneath(self, path: str, flags: int = os.O_RDONLY) -> int:
        """Open the canonical in-mount *path* (plain names only, e.g. ``/.vfs/chunks/d/f``)
        one component at a time without following symlinks; the caller closes the result."""
        names = [n for n in path.split("/") if n]
        if any(n in (".", "..") for n in names):
            raise KernelError("EINVAL", f"not a canonical path: {path}")
        fd = os.dup(self._fds[self.root_ino])
        try:
            for i, name in enumerate(names):
                last = i == len(names) - 1
                nxt = os.open(name, (flags | os.O_NOFOLLOW | os.O_CLOEXEC) if last else _O_LOOKUP,
                              dir_fd=fd)
                os.close(fd)
                fd = nxt
            if not names:
                nxt = os.open(".", flags | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd


# -- what an argument names ---------------------------------------------------------------------




def is_mount_root(path: str) -> bool:
    """A vfsfuse mount's root: a mount point with the hidden ``.vfs/control``."""
    try:
        return os.path.ismount(path) and os.path.exists(os.path.join(path, ".vfs", "control"))
    except OSError:
        return False


def find_mount(path: str) -> tuple[str, str] | None:
    """``(mount_root, path_inside)`` if the canonical host *path* lies in a vfsfuse mount."""
    probe = path
    while True:
        if is_mount_root(probe):
            rel = os.path.relpath(path, probe)
            return probe, "/" if rel == "." else "/" + rel
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def _entered_mount(arg: str) -> str | None:
    """The first vfsfuse mount root among the spelled prefixes of host path *arg* (taken as
    written, ``..`` included: where the argument enters a mount), or None."""
    full = arg if arg.startswith("/") else os.getcwd().rstrip("/") + "/" + arg
    parts = full.split("/")
    seen = set()
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i]) or "/"
        if prefix not in seen:
            seen.add(prefix)
            if is_mount_root(prefix):
                return prefix
    return None


def _host_resolved(arg: str) -> str | None:
    """Where the host resolves *arg* (final symlink followed), or None if it does not exist."""
    try:
        fd = os.open(arg, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def host_path_in_mount(arg: str) -> Target | None:
    """The mount and in-mount path the host path *arg* names; None if it names no mount.

    EXDEV if *arg* enters a vfsfuse mount and the host resolves it outside that mount (via
    ``..`` or a symlink); ENOENT if it enters one and does not exist.
    """
    entered = _entered_mount(arg)
    real = _host_resolved(arg)
    if real is None:
        if entered is None:
            return None
        raise KernelError("ENOENT", f"no such file: {arg}")
    found = find_mount(real)
    if entered is not None:
        root = os.path.realpath(entered)
        if found is None or found[0] != root:
            raise KernelError("EXDEV", f"{arg} resolves outside the mount {entered} (to {real}); "
                                       f"use STORE:/path for a path inside the store")
    if found is None:
        return None
    return Target(mount=found[0], path=found[1])


def resolve_target(arg: str) -> Target:
    """What *arg* names; a mounted store is reached through its mount (named in the lock)."""
    store, sep, inner = arg.partition(":")
    if sep and store and is_store(store):
        return _via_mount(Target(store=store, path=inner or "/"))
    if is_store(arg):
        return _via_mount(Target(store=arg))
    target = host_path_in_mount(arg)
    if target is not None:
        return target
    if not os.path.exists(arg if not sep else store):
        raise KernelError("ENOENT", f"no such store or file: {arg}")
    raise KernelError("EINVAL", f"{arg} is not a store, STORE:/path, or a path inside a vfsfuse mount")


def _via_mount(target: Target) -> Target:
    from vfsfuse.storage.fsck import lock_holder

    assert target.store is not None
    holder = lock_holder(target.store)
    if holder is not None and holder[1] and is_mount_root(holder[1]):
        return Target(mount=holder[1], path=target.path)
    return target  # unmounted (or the mount is unreachable: with_store says EBUSY)


def type_name(mode: int) -> str:
    return {_stat.S_IFREG: "file", _stat.S_IFDIR: "directory", _stat.S_IFLNK: "symlink",
            _stat.S_IFIFO: "fifo", _stat.S_IFSOCK: "socket", _stat.S_IFCHR: "char-device",
            _stat.S_IFBLK: "block-device"}.get(_stat.S_IFMT(mode), "unknown")
