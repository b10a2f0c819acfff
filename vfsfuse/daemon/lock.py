"""The store lock: one daemon per store, taken over from a daemon that died (``flock`` is
dropped by the kernel when its holder dies)."""

from __future__ import annotations

import fcntl
import os

from kernel.errors import KernelError
from vfsfuse.daemon.config import LOCK_NAME


class StoreLock:
    """``STORE/run/lock``: an flock held for the daemon's life, holding "pid mountpoint"."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.fd = -1
        self.previous: tuple[int, str] | None = None  # (pid, mountpoint) of a stale holder

    def acquire(self, mountpoint: str) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise KernelError.from_os_error(err, f"cannot open lock file {self.path}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock(fd)
            os.close(fd)
            who = f"pid {holder[0]}" if holder else "another process"
            where = f" on {holder[1]}" if holder and holder[1] else ""
            raise KernelError("EBUSY", f"store is already mounted by {who}{where}") from None
        self.previous = _read_lock(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {mountpoint}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


def _read_lock(fd: int) -> tuple[int, str] | None:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        pid, _, mnt = text.partition(" ")
        return int(pid), mnt
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------ the daemon
