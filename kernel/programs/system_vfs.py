"""``vfs``: the store's internals from inside the sandbox, through the ``/.vfs`` tree only,
printed as the host CLI prints them (``vfsfuse stat``, ``info``, ``gc``, ``versions``).

    vfs stat | stats              store totals (/.vfs/stats)
    vfs version                   program, schema and store settings (/.vfs/version)
    vfs info | chunks FILE...     the chunk map of each FILE (/.vfs/chunks/<path>)
    vfs versions [list] FILE      the saved versions of FILE, newest first
    vfs versions create FILE
    vfs versions restore FILE N
    vfs versions prune FILE --keep N | --max-age DURATION   (or keep=N, max_age=SECONDS)
    vfs gc | sync                 through /.vfs/control (the mount owner or root only)

A FILE outside the store (``/proc``, ``/dev``) has no chunk map: said plainly.
"""

from __future__ import annotations

import re
import shlex
import stat as _stat
from datetime import datetime, timezone
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import error, read_file, strerror
from kernel.syscalls import O_WRONLY

VFS = "/.vfs"
USAGE = """Usage: vfs COMMAND [ARG]...
Look inside the store this sandbox lives on (through /.vfs).

  stat                          store totals (also: stats)
  version                       program, schema and store settings
  info FILE...                  the chunk map of each FILE (also: chunks)
  versions [list] FILE          the saved versions of FILE, newest first
  versions create FILE          save FILE's current content as a version
  versions restore FILE N       make version N FILE's current content
  versions prune FILE --keep N | --max-age DURATION
  gc                            delete blocks nothing references
  sync                          flush dirty chunks and commit the metadata
"""

_BYTE_KEYS = {"logical_bytes", "stored_bytes", "dirty_bytes", "chunk_size", "inline_threshold"}
_TYPES = {_stat.S_IFREG: "file", _stat.S_IFDIR: "directory", _stat.S_IFLNK: "symlink",
          _stat.S_IFIFO: "fifo", _stat.S_IFSOCK: "socket", _stat.S_IFCHR: "char-device",
          _stat.S_IFBLK: "block-device"}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.I)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def human(n: float) -> str:
    """Bytes for people, as the CLI writes them: ``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def stats_table(text: str) -> str:
    """``/.vfs/stats`` (``key value`` lines) as ``vfsfuse stat`` shows it."""
    rows = []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        shown = value
        if key in _BYTE_KEYS and value.isdigit():
            shown = f"{value} ({human(int(value))})"
        elif "." in value:
            try:
                shown = f"{float(value):.2f}"
            except ValueError:
                pass
        rows.append(f"{key.replace('_', ' ') + ':':<18}{shown}")
    return "\n".join(rows) + "\n" if rows else ""


async def _available(ctx: Any) -> bool:
    try:
        await ctx.stat(f"{VFS}/stats")
        return True
    except KernelError:
        return False


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
            await ctx.write_all(1, stats_table((await read_file(ctx, f"{VFS}/stats") or b"").decode()))
            return 0
        if cmd == "version" and not rest:
            await ctx.write_all(1, await read_file(ctx, f"{VFS}/version") or b"")
            return 0
        if cmd == "gc" and not rest:
            reply = _kv(await _control(ctx, "gc"))
            removed, size = int(reply.get("removed_blocks", 0)), int(reply.get("removed_bytes", 0))
            await ctx.write_all(1, f"gc: removed {removed} blocks ({human(size)})\n")
            return 0
        if cmd == "sync" and not rest:
            await ctx.write_all(1, await _control(ctx, "sync"))
            return 0
        if cmd in ("chunks", "info") and rest:
            return await _info(ctx, rest)
        if cmd == "versions" and rest:
            return await _versions(ctx, rest)
    except KernelError as e:
        await error(ctx, "vfs", e.message)
        return 1
    await ctx.write_all(2, f"vfs: bad command line: {' '.join(argv)}\n{USAGE}")
    return 2


def _kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


async def _info(ctx: Any, names: list[str]) -> int:
    """``vfsfuse info``'s text: ``path`` then the chunk map (or the inode of a non-file)."""
    status = 0
    texts = []
    for name in names:
        try:
            path = await ctx.realpath(name)
            attr = await ctx.stat(path)
        except KernelError as e:
            await error(ctx, "vfs", f"{name}: {strerror(e)}")
            status = 1
            continue
        if not attr.is_reg:
            texts.append(f"path {path}\ninode {attr.ino}\ntype {_TYPES.get(_stat.S_IFMT(attr.mode), 'unknown')}\n"
                         f"size {attr.size}\n(not a regular file: no chunk map)\n")
            continue
        data = await read_file(ctx, f"{VFS}/chunks{path}")
        if data is None:
            await error(ctx, "vfs", f"{name}: not a file of the store (no chunk map)")
            status = 1
            continue
        texts.append(f"path {path}\n" + data.decode(errors="surrogateescape"))
    await ctx.write_all(1, "\n".join(texts).encode(errors="surrogateescape"))
    return status


def _age(text: str) -> float:
    m = _AGE.fullmatch(text)
    if not m:
        raise KernelError("EINVAL", f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d)")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


async def _versions(ctx: Any, rest: list[str]) -> int:
    sub = rest[0] if rest[0] in ("list", "create", "restore", "prune") else "list"
    args = rest[1:] if rest[0] == sub else rest
    if not args:
        raise KernelError("EINVAL", f"versions {sub}: missing FILE")
    name, extra = args[0], args[1:]
    try:
        path = await ctx.realpath(name)
    except KernelError as e:
        raise KernelError(e.code, f"{name}: {strerror(e)}") from None
    quoted = shlex.quote(path.lstrip("/"))
    if sub == "list" and not extra:
        lines = [ln.split() for ln in (await _control(ctx, f"version list {quoted}")).splitlines() if ln.strip()]
        if not lines:
            await ctx.write_all(1, "no versions\n")
            return 0
        out = [f"{'version':>7}  {'size':>12}  {'created (UTC)':<19}  storage"]
        for version, size, created, storage in lines:
            when = datetime.fromtimestamp(int(created) / 1e9, timezone.utc)
            out.append(f"{version:>7}  {size:>12}  {when:%Y-%m-%d %H:%M:%S}  {storage}")
        await ctx.write_all(1, "\n".join(out) + "\n")
        return 0
    if sub == "create" and not extra:
        reply = await _control(ctx, f"version create {quoted}")
        await ctx.write_all(1, f"created {reply.strip()}\n")
        return 0
    if sub == "restore" and len(extra) == 1 and extra[0].isdigit() and int(extra[0]) >= 1:
        await _control(ctx, f"version restore {quoted} {int(extra[0])}")
        await ctx.write_all(1, f"restored version {int(extra[0])} of {name}\n")
        return 0
    if sub == "prune":
        spec = None
        if len(extra) == 2 and extra[0] == "--keep" and extra[1].isdigit():
            spec = f"keep={extra[1]}"
        elif len(extra) == 2 and extra[0] == "--max-age":
            spec = f"max_age={_age(extra[1])}"
        elif len(extra) == 1 and extra[0].startswith(("keep=", "max_age=")):
            spec = extra[0]
        if spec is None:
            raise KernelError("EINVAL", "give exactly one of --keep N or --max-age DURATION")
        reply = await _control(ctx, f"version prune {quoted} {spec}")
        await ctx.write_all(1, f"{reply.strip()} versions\n")
        return 0
    raise KernelError("EINVAL", f"bad versions command: {' '.join(rest)}")


PROGRAMS = {"vfs": prog_vfs}
