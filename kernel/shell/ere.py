"""POSIX ERE for ``[[ s =~ re ]]``: a thin adapter over the ``regex`` module.

Why not ``kernel.programs.posixre``: the layering rule lets ``kernel.shell`` import only
the syscall layer, the errors and its own package.  This adapter does what posixre does
for the shell's small needs: translate POSIX ERE syntax (bracket expressions with
``[:class:]``, intervals, literal quoted parts) to a ``regex`` pattern compiled with
``regex.POSIX`` (leftmost-longest, as glibc's ``regexec``), with a time limit so a
pathological pattern cannot hang the sandbox.
"""

from __future__ import annotations

import functools
import re

import regex

__all__ = ["EreError", "search", "translate"]

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "print": r" -~",
    "graph": r"!-~", "cntrl": r"\x00-\x1f\x7f", "xdigit": "0-9A-Fa-f", "word": "A-Za-z0-9_",
}
_TIMEOUT = 2.0


class EreError(Exception):
    """The pattern is not a valid ERE (bash's ``[[ =~ ]]`` then returns 2)."""


def _bracket(p: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting after ``[`` at *i*."""
    out = ["["]
    n = len(p)
    if i < n and p[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < n:
        c = p[i]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if c == "[" and i + 1 < n and p[i + 1] in ":.=":
            kind = p[i + 1]
            end = p.find(kind + "]", i + 2)
            if end < 0:
                raise EreError("brackets ([ ]) not balanced")
            name = p[i + 2:end]
            if kind == ":":
                cls = _CLASSES.get(name)
                if cls is None:
                    raise EreError("invalid character class")
                out.append(cls)
            else:
                out.append(re.escape(name))
            i = end + 2
            continue
        if c in "\\[]^":
            out.append("\\" + c)
        elif c == "-":
            out.append("-")
        else:
            out.append(c)
        i += 1
    raise EreError("brackets ([ ]) not balanced")


def translate(chunks: list[tuple[str, bool]]) -> str:
    """ERE chunks ``(text, quoted)`` to a ``regex`` pattern; quoted text is literal."""
    out: list[str] = []
    depth = 0
    for text, quoted in chunks:
        if quoted:
            out.append(regex.escape(text))
            continue
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 < n:
                    d = text[i + 1]
                    out.append("\\" + d if d.isdigit() and d != "0" else regex.escape(d))
                    i += 2
                else:
                    out.append(r"\\")
                    i += 1
            elif c == "[":
                s, i = _bracket(text, i + 1)
                out.append(s)
            elif c == "{":
                m = re.match(r"\{(\d*)(,?)(\d*)\}", text[i:])
                if m and (m.group(1) or m.group(3)) and out:
                    out.append(m.group(0))
                    i += len(m.group(0))
                else:
                    out.append(r"\{")
                    i += 1
            elif c == "(":
                depth += 1
                out.append("(")
                i += 1
            elif c == ")":
                if depth == 0:
                    out.append(r"\)")
                else:
                    depth -= 1
                    out.append(")")
                i += 1
            elif c in ".^$|*+?":
                if c in "*+?" and (not out or out[-1] in ("(", "|")):
                    out.append("\\" + c)
                else:
                    out.append(c)
                i += 1
            else:
                out.append(regex.escape(c))
                i += 1
    if depth:
        raise EreError("parentheses not balanced")
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compile(pat: str, icase: bool) -> "regex.Pattern":
    try:
        return regex.compile(pat, regex.POSIX | regex.DOTALL | (regex.IGNORECASE if icase else 0))
    except regex.error as e:
        raise EreError(str(e)) from None


def search(chunks: list[tuple[str, bool]], s: str, icase: bool = False) -> list[str | None] | None:
    """The match and its groups (``BASH_REMATCH``), or None."""
    rx = _compile(translate(chunks), icase)
    try:
        m = rx.search(s, timeout=_TIMEOUT)
    except TimeoutError:
        raise EreError("regex time limit exceeded") from None
    if m is None:
        return None
    groups: list[str | None] = [m.group(0)]
    groups.extend(m.groups())
    return groups
