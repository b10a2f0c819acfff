"""Helpers every program family shares: names as bytes, GNU-style messages, buffered I/O.

Programs see names as ``str`` decoded with ``surrogateescape`` (what ``ctx`` hands out), so a
name that is not UTF-8 round-trips: ``fsencode`` gives back its exact bytes for output.

API (keep it small; the text family imports it too):

* ``fsencode(name) -> bytes`` — a name's exact bytes.
* ``strerror(err) -> str`` — ``"No such file or directory"`` for a ``KernelError``.
* ``quote(name)`` — ``'name'`` always (coreutils' ``quote``: "cannot stat 'x'");
  ``quote_if_needed(name)`` — only when the name has shell-special bytes (``quotef``: "cat: x: ...").
* ``await error(ctx, prog, text)`` — ``prog: text`` on stderr.
* ``await open_input(ctx, name) -> (fd, owned)`` — ``-`` is stdin (``owned`` False: do not close).
* ``Reader(ctx, fd)`` — buffered 64 KiB reads: ``await readline(delim)``, ``await read(n)``,
  ``async for line in reader`` (lines keep their delimiter; the last may lack it).
* ``Writer(ctx, fd)`` — buffered output: ``await write(data)``, ``await flush()``.
* ``human_size(n, si=False)`` — GNU ``-h``: ``1.5K``, ``10K``, ``123`` (rounded up, as GNU).
* ``mode_string(mode)`` — ``-rw-r--r--`` from ``st_mode``.
* ``IdNames`` — uid/gid <-> name from the sandbox's ``/etc/passwd`` and ``/etc/group``.
"""

from __future__ import annotations

import os
import stat as _stat
from typing import Any

from kernel.errors import KernelError

CHUNK = 65536


def fsencode(name: str | bytes) -> bytes:
    """The exact bytes of a name (undoes the ``surrogateescape`` decoding of ``ctx``)."""
    return name if isinstance(name, bytes) else os.fsencode(name)


def strerror(err: KernelError) -> str:
    """The C library's text for the error's code (the message of ``err`` is for logs)."""
    return os.strerror(err.errno)


_SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,/:@%^")


def _shell_quote(name: str, always: bool) -> str:
    raw = fsencode(name)
    if raw and not always and all(c in _SAFE for c in raw):
        return name
    if all(32 <= c < 127 or c >= 128 for c in raw):
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            if "'" in text and not any(ch in text for ch in '"$`\\!'):
                return '"' + text + '"'  # GNU prefers "it's" to 'it'\''s'
            return "'" + text.replace("'", "'\\''") + "'"
    # control or invalid bytes: bash's $'...' form for the awkward runs, as coreutils does
    out = ["'"]
    for c in raw:
        if 32 <= c < 127 and c != 0x27:
            out.append(chr(c))
        elif c == 0x27:
            out.append("'\\''")
        else:
            esc = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 27: "E"}.get(c)
            out.append(f"'$'\\{esc}''" if esc else f"'$'\\{c:03o}''")
    out.append("'")
    return "".join(out).replace("''", "") or "''"


def quote(name: str) -> str:
    """``'name'`` — coreutils' ``quote()`` for names inside a sentence."""
    return _shell_quote(name, True)


def quote_if_needed(name: str) -> str:
    """The name as is unless it needs quoting for the shell — coreutils' ``quotef()``."""
    return _shell_quote(name, False)


async def error(ctx: Any, prog: str, text: str) -> None:
    """``prog: text`` on stderr (GNU's ``error()``)."""
    await ctx.write_all(2, fsencode(f"{prog}: {text}\n"))


async def open_input(ctx: Any, name: str) -> tuple[int, bool]:
    """An fd to read *name* from; ``-`` is stdin.  Returns (fd, owned): close it only if owned."""
    if name == "-":
        return 0, False
    return await ctx.open(name), True


class Reader:
    """Buffered reads over one fd (64 KiB at a time): lines, or blocks, without whole-file reads."""

    def __init__(self, ctx: Any, fd: int, chunk: int = CHUNK) -> None:
        self.ctx, self.fd, self.chunk = ctx, fd, chunk
        self.buf = b""
        self.eof = False

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self.ctx.read(self.fd, self.chunk)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf + data if self.buf else data
        return True

    async def readline(self, delim: bytes = b"\n") -> bytes:
        """The next line with its delimiter; the last one may lack it; ``b""`` at the end."""
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            start = len(self.buf)
            if not await self._fill():
                line, self.buf = self.buf, b""
                return line

    async def read(self, n: int = CHUNK) -> bytes:
        """Up to *n* bytes (what is buffered first); ``b""`` at the end."""
        if not self.buf and not await self._fill():
            return b""
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def __aiter__(self) -> "Reader":
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class Writer:
    """Output gathered into 64 KiB writes (one syscall per many short lines)."""

    def __init__(self, ctx: Any, fd: int = 1, limit: int = CHUNK) -> None:
        self.ctx, self.fd, self.limit = ctx, fd, limit
        self.parts: list[bytes] = []
        self.size = 0

    async def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = fsencode(data)
        self.parts.append(data)
        self.size += len(data)
        if self.size >= self.limit:
            await self.flush()

    async def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts, self.size = [], 0
            await self.ctx.write_all(self.fd, data)


def human_size(n: int, si: bool = False) -> str:
    """GNU's ``-h`` (``--si`` with *si*): below the base the plain number, then one decimal
    under 10 and none above, always rounded up (``1025`` -> ``1.1K``)."""
    base = 1000 if si else 1024
    if n < base:
        return str(n)
    units = "kMGTPEZY" if si else "KMGTPEZY"
    k = 0
    div = base
    while n >= div * base and k < len(units) - 1:
        div *= base
        k += 1
    tenths = -(-n * 10 // div)  # exact integer ceiling of n / div in tenths
    if tenths < 100:
        return f"{tenths // 10}.{tenths % 10}{units[k]}"
    whole = -(-n // div)
    if whole >= base and k < len(units) - 1:
        return f"1.0{units[k + 1]}"
    return f"{whole}{units[k]}"


_TYPE_CHAR = {_stat.S_IFDIR: "d", _stat.S_IFLNK: "l", _stat.S_IFCHR: "c", _stat.S_IFBLK: "b",
              _stat.S_IFIFO: "p", _stat.S_IFSOCK: "s", _stat.S_IFREG: "-"}


def mode_string(mode: int) -> str:
    """``drwxr-xr-x`` (with ``s``/``S``, ``t``/``T`` for the special bits), as ``ls -l``."""
    out = [_TYPE_CHAR.get(_stat.S_IFMT(mode), "?")]
    for shift, special, char in ((6, _stat.S_ISUID, "s"), (3, _stat.S_ISGID, "s"), (0, _stat.S_ISVTX, "t")):
        bits = (mode >> shift) & 7
        out.append("r" if bits & 4 else "-")
        out.append("w" if bits & 2 else "-")
        if mode & special:
            out.append(char if bits & 1 else char.upper())
        else:
            out.append("x" if bits & 1 else "-")
    return "".join(out)


class IdNames:
    """User and group names from the sandbox's own ``/etc/passwd`` and ``/etc/group`` (read
    once, lazily); without an entry the number is the name, as ls and stat print it."""

    def __init__(self) -> None:
        self.users: dict[int, str] | None = None
        self.groups: dict[int, str] = {}

    async def load(self, ctx: Any) -> None:
        if self.users is not None:
            return
        self.users = await _id_table(ctx, "/etc/passwd")
        self.groups = await _id_table(ctx, "/etc/group")

    def user(self, uid: int) -> str:
        return (self.users or {}).get(uid, str(uid))

    def group(self, gid: int) -> str:
        return self.groups.get(gid, str(gid))

    def uid_of(self, name: str) -> int | None:
        """The uid called *name*, or the number *name* spells; None if neither."""
        return _lookup(self.users or {}, name)

    def gid_of(self, name: str) -> int | None:
        return _lookup(self.groups, name)


def _lookup(table: dict[int, str], name: str) -> int | None:
    for num, n in table.items():
        if n == name:
            return num
    return int(name) if name.isdigit() else None


async def _id_table(ctx: Any, path: str) -> dict[int, str]:
    try:
        fd = await ctx.open(path)
    except KernelError:
        return {}
    table: dict[int, str] = {}
    try:
        async for line in Reader(ctx, fd):
            fields = line.rstrip(b"\n").split(b":")
            if len(fields) >= 3 and fields[2].isdigit():
                table.setdefault(int(fields[2]), os.fsdecode(fields[0]))
    except KernelError:
        pass
    finally:
        await ctx.close(fd)
    return table


async def read_file(ctx: Any, path: str) -> bytes | None:
    """The whole file, or None when it cannot be read (gone, no permission)."""
    try:
        fd = await ctx.open(path)
    except KernelError:
        return None
    try:
        return await ctx.read_all(fd)
    except KernelError:
        return None
    finally:
        await ctx.close(fd)
