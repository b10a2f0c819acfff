"""What the text programs share among themselves: one run's error state, opening inputs the GNU
way (``-`` is stdin, a missing file is a message and status 1, not an exception), number
parsing with GNU's suffixes, and whole-chunk line iteration.

Everything here works on bytes: names come from ``ctx`` as surrogate-escaped ``str`` and are
turned back into their exact bytes for output (``fsencode``), data is never decoded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, AsyncIterator

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, error, fsencode, quote, strerror
from kernel.programs.flags import Spec, UsageError

__all__ = [
    "CHUNK",
    "Run",
    "fsencode",
    "quote",
    "strerror",
    "parse_count",
    "chunks",
    "lines_of",
    "usage_error",
    "UsageError",
    "is_epipe",
    "unescape_c",
]


@dataclass
class Run:
    """One program run: its name for messages and the exit status so far."""

    ctx: Any
    prog: str
    status: int = 0

    async def err(self, text: str, status: int = 1) -> None:
        await error(self.ctx, self.prog, text)
        self.status = max(self.status, status)

    async def file_err(self, name: str, e: KernelError, status: int = 1) -> None:
        """``prog: name: No such file or directory`` (coreutils' ``quotef`` form)."""
        await self.err(f"{name}: {strerror(e)}", status)

    async def usage(self, text: str, status: int = 1) -> int:
        """A bad command line: the message and the ``--help`` hint."""
        await error(self.ctx, self.prog, f"{text}\nTry '{self.prog} --help' for more information.")
        return status

    async def open(self, name: str, *, quoted: bool = False) -> int | None:
        """An fd for *name* (``-`` is stdin, fd 0) or None after printing the error."""
        if name == "-":
            return 0
        try:
            return int(await self.ctx.open(name))
        except KernelError as e:
            if quoted:
                await self.err(f"cannot open {quote(name)} for reading: {strerror(e)}")
            else:
                await self.file_err(name, e)
            return None

    async def close(self, fd: int) -> None:
        if fd > 2:
            try:
                await self.ctx.close(fd)
            except KernelError:
                pass

    async def each_input(self, names: list[str], work: Callable[[str, int], Awaitable[object]],
                         *, quoted: bool = False) -> None:
        """``await work(name, fd)`` for each input file (``-`` or none: stdin), the way every
        coreutils filter goes: an unreadable file is reported and skipped (status 1), a read
        error mid-file reported after what was written, a broken output pipe ends the run."""
        for name in names or ["-"]:
            fd = await self.open(name, quoted=quoted)
            if fd is None:
                continue
            try:
                await work(name, fd)
            except KernelError as e:
                if e.code == "EPIPE":
                    raise
                await self.file_err(name, e)
            finally:
                await self.close(fd)


async def usage_error(ctx: Any, spec: Spec, text: str) -> int:
    await ctx.write_all(2, f"{spec.prog}: {text}\nTry '{spec.prog} --help' for more information.\n")
    return spec.usage_status


def is_epipe(e: KernelError) -> bool:
    return e.code == "EPIPE"


_MULT = {
    "b": 512,
    "kB": 1000,
    "K": 1024,
    "k": 1024,
    "KiB": 1024,
    "MB": 1000**2,
    "M": 1024**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "G": 1024**3,
    "GiB": 1024**3,
    "TB": 1000**4,
    "T": 1024**4,
    "TiB": 1024**4,
    "PB": 1000**5,
    "P": 1024**5,
    "PiB": 1024**5,
    "EB": 1000**6,
    "E": 1024**6,
    "EiB": 1024**6,
}


def parse_count(text: str, *, suffixes: bool = True) -> int:
    """A non-negative count with coreutils' ``xstrtoumax`` suffixes (``2K``, ``1MB``, ``512b``);
    ValueError if it is not one."""
    s = text.strip() if text[:1].isspace() else text
    i = 0
    while i < len(s) and s[i].isdigit():
        i += 1
    if i == 0:
        raise ValueError(text)
    n = int(s[:i])
    rest = s[i:]
    if not rest:
        return n
    if suffixes and rest in _MULT:
        return n * _MULT[rest]
    raise ValueError(text)


async def chunks(ctx: Any, fd: int, size: int = CHUNK) -> AsyncIterator[bytes]:
    """The data of *fd* in reads of *size* (64 KiB): the streaming primitive."""
    while True:
        data = await ctx.read(fd, size)
        if not data:
            return
        yield data


async def lines_of(ctx: Any, fd: int, delim: int = 10) -> AsyncIterator[list[bytes]]:
    """Batches of complete lines (each with its delimiter; the last of the input may lack it),
    one batch per 64 KiB read, so per-line work happens on lists, not per syscall."""
    sep = bytes([delim])
    rest = b""
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            if rest:
                yield [rest]
            return
        if rest:
            data = rest + data
        cut = data.rfind(sep)
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1 :]
        parts = data[: cut + 1].split(sep)
        parts.pop()  # the empty piece after the last delimiter
        yield [p + sep for p in parts]


_ESC = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def unescape_c(text: bytes, *, octal_max: int = 3, extra: dict[str, int] | None = None) -> bytes:
    """C-style backslash escapes (``\\n``, ``\\t``, ``\\NNN`` octal) as tr and paste read them;
    an unknown escape stands for its character."""
    out = bytearray()
    i, n = 0, len(text)
    table = dict(_ESC)
    if extra:
        table.update(extra)
    while i < n:
        c = text[i]
        if c != 0x5C or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = chr(text[i + 1])
        if d in "01234567":
            j = i + 1
            v = 0
            while j < n and j < i + 1 + octal_max and chr(text[j]) in "01234567":
                v = v * 8 + text[j] - 48
                j += 1
            out.append(v & 0xFF)
            i = j
            continue
        if d in table:
            out.append(table[d])
        else:
            out.append(ord(d))
        i += 2
    return bytes(out)
