"""What the file programs share among themselves (not the other families): the per-run state
with GNU's error reporting, path joins, existence checks, data copying, mode and size parsing."""

from __future__ import annotations

import re
import stat as _stat
from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.fs import Attr
from kernel.programs.common import CHUNK, error, quote, strerror
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY


@dataclass
class Tool:
    """One run of a program: its name for messages and the exit status so far."""

    ctx: Any
    prog: str
    status: int = 0

    async def err(self, text: str, status: int = 1) -> None:
        """Print ``prog: text`` and remember the failure."""
        await error(self.ctx, self.prog, text)
        self.status = max(self.status, status)

    async def fail(self, action: str, path: str, e: KernelError, status: int = 1) -> None:
        """``prog: cannot stat 'x': No such file or directory`` (*action* empty: ``'x': ...``)."""
        where = f"{action} {quote(path)}" if action else quote(path)
        await self.err(f"{where}: {strerror(e)}", status)

    async def usage(self, text: str) -> int:
        """A bad command line: the message, the ``--help`` hint, status 1."""
        await error(self.ctx, self.prog, f"{text}\nTry '{self.prog} --help' for more information.")
        return 1


def join(directory: str, name: str) -> str:
    """*directory*/*name* without doubling the slash (``/`` + ``x`` -> ``/x``)."""
    if directory.endswith("/"):
        return directory + name
    return f"{directory}/{name}"


def base_name(path: str) -> str:
    """The last component as ``basename`` prints it (``a/b/`` -> ``b``, ``/`` -> ``/``)."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else ""
    return stripped.rsplit("/", 1)[-1]


def dir_name(path: str) -> str:
    """``dirname``: ``a/b`` -> ``a``, ``b`` -> ``.``, ``/a`` -> ``/``, ``//`` -> ``/``."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path.startswith("/") else "."
    if "/" not in stripped:
        return "."
    head = stripped.rsplit("/", 1)[0].rstrip("/")
    return head or "/"


async def lstat_or_none(ctx: Any, path: str, follow: bool = False) -> Attr | None:
    """The stat of *path*, or None when it does not exist (other errors propagate)."""
    try:
        return await (ctx.stat(path) if follow else ctx.lstat(path))
    except KernelError as e:
        if e.code in ("ENOENT", "ENOTDIR"):
            return None
        raise


async def copy_fd(ctx: Any, src: int, dst: int) -> int:
    """Copy *src* to *dst* in 64 KiB reads; returns the byte count."""
    total = 0
    while True:
        data = await ctx.read(src, CHUNK)
        if not data:
            return total
        await ctx.write_all(dst, data)
        total += len(data)


async def write_file(ctx: Any, path: str, data: bytes, mode: int = 0o666) -> None:
    fd = await ctx.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    try:
        await ctx.write_all(fd, data)
    finally:
        await ctx.close(fd)


# ---------------------------------------------------------------------------- modes

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}


def parse_mode(text: str, old: int, is_dir: bool, umask: int = 0) -> int:
    """chmod(1)'s MODE on permission bits *old*: octal (``755``, ``u=rwx,g+s``...), symbolic
    ``[ugoa]*[-+=]([rwxXst]*|[ugo])`` clauses joined by commas.  Without ``ugoa`` a clause
    honours the umask, as GNU does.  ValueError when the text is not a mode."""
    if text and all(c in "01234567" for c in text):
        value = int(text, 8)
        if value > 0o7777:
            raise ValueError(text)
        if is_dir and len(text) < 5:
            # GNU keeps a directory's set-id bits unless the mode has 5+ digits (``00755``)
            return value | (old & 0o6000)
        return value
    mode = old & 0o7777
    if not text:
        raise ValueError(text)
    for clause in text.split(","):
        i = 0
        who = 0
        while i < len(clause) and clause[i] in "ugoa":
            who |= _WHO[clause[i]]
            i += 1
        if i == len(clause):
            raise ValueError(text)
        masked = who == 0
        if masked:
            who = 0o7777
        while i < len(clause):
            op = clause[i]
            if op not in "+-=":
                raise ValueError(text)
            i += 1
            bits = 0
            if i < len(clause) and clause[i] in "ugo":
                src = clause[i]
                i += 1
                shift = {"u": 6, "g": 3, "o": 0}[src]
                perm = (mode >> shift) & 7
                bits = perm << 6 | perm << 3 | perm
            else:
                while i < len(clause) and clause[i] in "rwxXst":
                    c = clause[i]
                    i += 1
                    if c == "r":
                        bits |= 0o444
                    elif c == "w":
                        bits |= 0o222
                    elif c == "x":
                        bits |= 0o111
                    elif c == "X":
                        if is_dir or mode & 0o111:
                            bits |= 0o111
                    elif c == "s":
                        bits |= 0o6000
                    elif c == "t":
                        bits |= 0o1000
            affected = bits & who
            if masked:
                affected &= ~umask | 0o7000
            if op == "+":
                mode |= affected
            elif op == "-":
                mode &= ~affected
            else:
                keep = ~who & 0o7777
                if is_dir:
                    keep |= who & 0o6000 & ~bits  # '=' keeps a directory's set-id bits
                mode = (mode & keep) | affected
    return mode


def is_dir_attr(attr: Attr | None) -> bool:
    return attr is not None and _stat.S_ISDIR(attr.mode)


# ---------------------------------------------------------------------------- sizes

_SUFFIX = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5,
           "E": 1024 ** 6, "Z": 1024 ** 7, "Y": 1024 ** 8}


def parse_size(text: str, *, extra: dict[str, int] | None = None) -> int:
    """``10``, ``4K``, ``1M``, ``2KiB`` (powers of 1024), ``2KB`` (powers of 1000); *extra*
    adds program-specific suffixes (dd's ``c w b``).  ValueError when it is not a size."""
    s = text.strip()
    i = 0
    while i < len(s) and s[i].isdigit():
        i += 1
    if i == 0:
        raise ValueError(text)
    number = int(s[:i])
    suffix = s[i:]
    if extra and suffix in extra:
        return number * extra[suffix]
    if suffix in ("", "k", "K") or suffix.upper() in _SUFFIX and len(suffix) == 1:
        return number * _SUFFIX[suffix.upper()]
    if len(suffix) == 3 and suffix[1:] == "iB" and suffix[0].upper() in _SUFFIX:
        return number * _SUFFIX[suffix[0].upper()]
    if len(suffix) == 2 and suffix[1] == "B" and suffix[0].upper() in _SUFFIX:
        return number * 1000 ** list(_SUFFIX).index(suffix[0].upper())
    raise ValueError(text)


# ---------------------------------------------------------------------------- globs

def glob_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """fnmatch(3) without FNM_PERIOD (``*`` matches a leading dot, as find's -name):
    ``*``, ``?``, ``[...]`` with ``!``/``^`` negation and ``[:class:]``, backslash escapes."""
    classes = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
               "space": r" \t\n\r\f\v", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
               "xdigit": "0-9A-Fa-f", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e",
               "graph": r"\x21-\x7e"}
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            j = i
            negate = False
            if j < n and pattern[j] in "!^":
                negate = True
                j += 1
            items = []
            first = True
            while j < n and (pattern[j] != "]" or first):
                first = False
                if pattern.startswith("[:", j):
                    end = pattern.find(":]", j + 2)
                    if end > 0 and pattern[j + 2:end] in classes:
                        items.append(classes[pattern[j + 2:end]])
                        j = end + 2
                        continue
                ch = pattern[j]
                if ch == "\\" and j + 1 < n:
                    j += 1
                    ch = pattern[j]
                if j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    items.append(re.escape(ch) + "-" + re.escape(pattern[j + 2]))
                    j += 3
                    continue
                items.append(re.escape(ch))
                j += 1
            if j >= n:
                out.append(re.escape("["))
                continue
            i = j + 1
            out.append("[" + ("^" if negate else "") + "".join(items) + "]")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out) + r"\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))
