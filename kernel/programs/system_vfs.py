"""``vfs``: the store's internals from inside the sandbox, through the ``/.vfs`` tree only.

    vfs stats | stat          store totals (/.vfs/stats)
    vfs version               program, schema and store settings (/.vfs/version)
    vfs chunks FILE...        the chunk map of each FILE (/.vfs/chunks/<path>)
    vfs versions list|create FILE
    vfs versions restore FILE N
    vfs versions prune FILE keep=N|max_age=SECONDS
    vfs gc | sync             run through /.vfs/control (the mount owner or root only)

A FILE outside the store (``/proc``, ``/dev``) has no chunk map: ENOENT, said plainly.
"""

from __future__ import annotations

import shlex
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import error, strerror
from kernel.programs.procps_proc import read_file
from kernel.syscalls import O_WRONLY

VFS = "/.vfs"
USAGE = """Usage: vfs COMMAND [ARG]...
Look inside the store this sandbox lives on (through /.vfs).

  stats                         store totals (also: stat)
  version                       program, schema and store settings
  chunks FILE...                the chunk map of each FILE
  versions list FILE            the saved versions of FILE, newest first
  versions create FILE          save FILE's current content as a version
  versions restore FILE N       make version N FILE's current content
  versions prune FILE keep=N|max_age=SECONDS
  gc                            delete blocks nothing references
  sync                          flush dirty chunks and commit the metadata
"""


async def _available(ctx: Any) -> bool:
    try:
        await ctx.stat(f"{VFS}/stats")
        return True
    except KernelError:
        return False


async def _store_path(ctx: Any, name: str) -> str:
    """The path of *name* inside the store (absolute, symlinks resolved)."""
    return await ctx.realpath(name)


async def _control(ctx: Any, line: str) -> str:
    """Write one command to /.vfs/control and read its reply (KernelError with the reply's
    message when the command fails)."""
    fd = await ctx.open(f"{VFS}/control", O_WRONLY)
    try:
        await ctx.write_all(fd, line + "\n")
    except KernelError as e:
        reply = (await read_file(ctx, f"{VFS}/control") or b"").decode(errors="replace")
        message = reply.strip().removeprefix("error: ").removeprefix(f"{e.code}: ") or strerror(e)
        raise KernelError(e.code, message) from None
    finally:
        await ctx.close(fd)
    return (await read_file(ctx, f"{VFS}/control") or b"").decode(errors="replace")


async def prog_vfs(ctx: Any) -> int:
    argv = list(ctx.argv[1:])
    if not argv or argv[0] in ("-h", "--help", "help"):
        await ctx.write_all(1 if argv else 2, USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        await ctx.write_all(1, "vfs (vfsfuse 0.1)\n")
        return 0
    if not await _available(ctx):
        await error(ctx, "vfs", f"{VFS} is not available: this sandbox does not run on a mounted store")
        return 1
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd in ("stats", "stat") and not rest:
            await ctx.write_all(1, await read_file(ctx, f"{VFS}/stats") or b"")
            return 0
        if cmd == "version" and not rest:
            await ctx.write_all(1, await read_file(ctx, f"{VFS}/version") or b"")
            return 0
        if cmd in ("gc", "sync") and not rest:
            await ctx.write_all(1, await _control(ctx, cmd))
            return 0
        if cmd == "chunks" and rest:
            return await _chunks(ctx, rest)
        if cmd in ("versions", "version") and len(rest) >= 2:
            sub, name, extra = rest[0], rest[1], rest[2:]
            if sub not in ("list", "create", "restore", "prune"):
                raise KernelError("EINVAL", f"unknown versions command '{sub}'")
            try:
                path = (await _store_path(ctx, name)).lstrip("/")
            except KernelError as e:
                await error(ctx, "vfs", f"{name}: {strerror(e)}")
                return 1
            line = " ".join(["version", sub, shlex.quote(path), *map(shlex.quote, extra)])
            await ctx.write_all(1, await _control(ctx, line))
            return 0
    except KernelError as e:
        await error(ctx, "vfs", e.message)
        return 1
    await ctx.write_all(2, f"vfs: bad command line: {' '.join(argv)}\n{USAGE}")
    return 2


async def _chunks(ctx: Any, names: list[str]) -> int:
    status = 0
    for name in names:
        try:
            path = await _store_path(ctx, name)
            attr = await ctx.stat(path)
        except KernelError as e:
            await error(ctx, "vfs", f"{name}: {strerror(e)}")
            status = 1
            continue
        if attr.is_dir:
            await error(ctx, "vfs", f"{name}: Is a directory")
            status = 1
            continue
        data = await read_file(ctx, f"{VFS}/chunks{path}")
        if data is None:
            await error(ctx, "vfs", f"{name}: not a file of the store (no chunk map)")
            status = 1
            continue
        await ctx.write_all(1, data)
    return status


PROGRAMS = {"vfs": prog_vfs}
