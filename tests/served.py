"""Ending a mount that a test serves from a daemon process of its own."""

from __future__ import annotations

import subprocess
from os import PathLike


def unmount_and_reap(mnt: str | PathLike[str], proc: subprocess.Popen, timeout: float = 15) -> None:
    """Lazily unmount *mnt* and wait for the serving process to end (killed after *timeout*
    seconds), so no mount or daemon outlives the test, whatever it did."""
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
