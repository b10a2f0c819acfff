"""/proc for the sandbox kernel: ``ProcFS`` (the filesystem) and ``ProcConfig``
(the synthetic machine it describes).  File formats live in ``files.py``."""

from __future__ import annotations

from ..mounts import normalize
from .files import ProcConfig
from .fs import ProcFS

__all__ = ["ProcConfig", "ProcFS", "fd_reference"]

_STDIO = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def fd_reference(path: str, pid: int) -> tuple[int, int] | None:
    """``(pid, fd)`` if *path* names an open descriptor the Linux way: ``/dev/fd/N``,
    ``/dev/stdin|stdout|stderr``, ``/proc/self/fd/N`` or ``/proc/<pid>/fd/N``.

    Opening such a path on Linux re-opens what the descriptor refers to (even a pipe or a
    socket, whose link target ``pipe:[id]`` names nothing).  The fd layer calls this
    before walking the path and, on a match, duplicates the descriptor instead (the
    seed does the same for ``/dev/fd/N``).  The check is lexical, on the normalised path,
    and only for paths without "..": Linux resolves ".." after following the link
    (``/dev/fd/3/..`` is the parent of what fd 3 is, ENOTDIR for a file), which the
    ordinary walk does.
    """
    if ".." in path.split("/"):
        return None
    p = normalize(path)
    if p in _STDIO:
        return pid, _STDIO[p]
    parts = p.split("/")[1:]
    if len(parts) == 3 and parts[0] == "dev" and parts[1] == "fd":
        owner, n = pid, parts[2]
    elif len(parts) == 4 and parts[0] == "proc" and parts[2] == "fd":
        if parts[1] == "self":
            owner = pid
        elif parts[1].isdigit() and parts[1][:1] != "0":
            owner = int(parts[1])
        else:
            return None
        n = parts[3]
    else:
        return None
    if not n.isdigit() or (len(n) > 1 and n[0] == "0"):
        return None
    return owner, int(n)
