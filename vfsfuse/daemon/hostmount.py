"""The host's view of mounts: what is mounted where (``/proc/self/mountinfo``), whether a
mount point is usable or a dead FUSE mount, and unmounting through ``fusermount3``."""

from __future__ import annotations

import errno
import os
import subprocess

from kernel.errors import KernelError


def _unescape(field_: str) -> str:
    return field_.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_fstype(mountpoint: str) -> str | None:
    """The filesystem type mounted exactly at *mountpoint* (topmost), or None."""
    mountpoint = os.path.abspath(mountpoint)
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                sep = parts.index("-")
                if _unescape(parts[4]) == mountpoint:
                    found = parts[sep + 1]
    except OSError:
        return None
    return found


def is_vfsfuse_mount(mountpoint: str) -> bool:
    return mount_fstype(mountpoint) == "fuse.vfsfuse"


def pid_alive(pid: int) -> bool:
    """True if *pid* runs (a zombie counts as dead: our daemons are nobody's child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def fusermount_unmount(mountpoint: str, lazy: bool = False) -> tuple[bool, str]:
    """Detach a FUSE mount; returns (ok, stderr text)."""
    args = ["fusermount3", "-u"] + (["-z"] if lazy else []) + ["--", mountpoint]
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return p.returncode == 0, p.stderr.strip()


# -------------------------------------------------------------------- store lock



def check_mountpoint(mountpoint: str) -> None:
    try:
        st = os.stat(mountpoint)
        if is_vfsfuse_mount(mountpoint):
            os.statvfs(mountpoint)
    except FileNotFoundError:
        raise KernelError("ENOENT", f"mount point {mountpoint} does not exist") from None
    except OSError as err:
        if err.errno == errno.ENOTCONN:
            raise KernelError("ENOTCONN", f"{mountpoint} holds a dead FUSE mount; "
                              f"run 'fusermount3 -u -z {mountpoint}' first") from None
        raise KernelError.from_os_error(err, f"mount point {mountpoint}") from None
    import stat as _stat

    if not _stat.S_ISDIR(st.st_mode):
        raise KernelError("ENOTDIR", f"mount point {mountpoint} is not a directory")
    if is_vfsfuse_mount(mountpoint):
        raise KernelError("EBUSY", f"{mountpoint} is already a vfsfuse mount")




def is_dead_mount(path: str) -> bool:
    try:
        os.statvfs(path)  # always reaches the server (stat may be answered from the attr cache)
    except OSError as err:
        return err.errno == errno.ENOTCONN
    return False
