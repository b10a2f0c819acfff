"""What the host's cgroups allow the jail (issue 16 §1: a cgroup v2 child with ``memory.max`` and
``pids.max`` where the host allows it, and saying so when it does not).

A child is possible only in a cgroup v2 tree that is *delegated* to the daemon: the daemon's own
v2 cgroup must offer the ``memory`` and ``pids`` controllers and be writable.  On a v1 or hybrid
host (controllers bound to v1 hierarchies, the v2 mount holding none of them) there is no such
subtree, and the jail's limits are rlimits only.  The daemon never touches v1 hierarchies: they
belong to whatever runs it.
"""

from __future__ import annotations

import os

NEEDED = ("memory", "pids")


def _v2_mount(mountinfo: str) -> str | None:
    for line in mountinfo.splitlines():
        parts = line.split()
        if "-" in parts and parts[parts.index("-") + 1] == "cgroup2":
            return parts[4]
    return None


def _v2_path(cgroup: str) -> str | None:
    for line in cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def delegated_v2(mountinfo: str, cgroup: str, *, exists: bool = True) -> tuple[str | None, str]:
    """The daemon's v2 cgroup directory if it is delegated with memory and pids (else None), and
    why not.  *mountinfo* and *cgroup*: the texts of /proc/self/mountinfo and /proc/self/cgroup."""
    mount = _v2_mount(mountinfo)
    if mount is None:
        return None, "no cgroup v2 mount"
    rel = _v2_path(cgroup)
    if rel is None:
        return None, "the daemon has no cgroup v2 membership"
    where = os.path.join(mount, rel.lstrip("/"))
    try:
        with open(os.path.join(where, "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError:
        return None, "the daemon's cgroup v2 directory is not readable"
    missing = [c for c in NEEDED if c not in controllers]
    if missing:
        return None, f"its cgroup v2 has no {' or '.join(missing)} controller, as on a v1 or hybrid host"
    if exists and not os.access(where, os.W_OK):
        return None, "the daemon's cgroup v2 subtree is not delegated to it"
    return where, ""


def limits_note() -> str:
    """One line for the daemon's log: what limits the jail's real programs."""
    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
        with open("/proc/self/cgroup") as f:
            cgroup = f.read()
    except OSError:
        return "cannot read this host's cgroups: real programs are limited by rlimits only"
    where, why = delegated_v2(mountinfo, cgroup)
    if where is None:
        return f"no delegated cgroup v2 subtree ({why}), so real programs are limited by rlimits only"
    return ("a delegated cgroup v2 subtree exists, but jail cgroups (memory.max, pids.max) are not made "
            "yet: real programs are limited by rlimits only")
