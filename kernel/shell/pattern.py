"""Shell pattern matching: ``case``, ``[[ == ]]``, ``${x#p}``, ``${x/p/r}``, globbing.

Patterns arrive in the expander's *escaped form*: a character that was quoted
in the source is preceded by a backslash, so ``\\*`` is a literal star and
``*`` a wildcard.

Two engines, chosen per pattern:

* Without extglob groups a pattern is a sequence of fixed-width atoms and
  stars.  It becomes a Python ``re`` regex in which every star but the last is
  an atomic lazy group, ``(?>.*?SEGMENT)``: committing each segment to its
  earliest occurrence never loses a match (the classic glob argument), so
  ``*a*a*a*a*a*b`` against 10 KiB costs milliseconds instead of the
  exponential backtracking a plain ``.*a.*a…`` fullmatch would do.  Stdlib
  ``re`` is used rather than re2 because its per-call cost on the short
  strings shells match is some 25 times lower.
* With extglob groups (``?(…) *(…) +(…) @(…) !(…)``) a small bit-parallel
  simulation runs instead: the set of string positions reachable after each
  pattern element is a Python int used as a bit set.  ``!(…)`` is then exact
  (complement of the group's match ends from each start), which no regex
  lookahead trick gets right in general.

Suffix operations run the *reversed* pattern over the reversed string, so that
every question becomes "shortest or longest match starting here".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "GlobError",
    "Pattern",
    "compile_pattern",
    "glob_expand",
    "has_magic",
    "match",
    "remove_prefix",
    "remove_suffix",
    "replace",
    "unescape",
]


class GlobError(Exception):
    """Pathname expansion refused, e.g. ``too many matches (limit N)``."""


# ---------------------------------------------------------------------------
# Parsing.  Items: ("lit", c) ("any",) ("star",) ("cls", negated, regex_body)
# ("ext", op, [alternative item lists]).

_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "".join("\\" + c if c in "\\]^-[" else c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
    "word": "a-zA-Z0-9_",
}
_EXT_OPS = "?*+@!"


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _parse_bracket(pat: str, i: int) -> tuple[tuple, int] | None:
    """Parse ``[...]`` from just after its ``[``; None if it is no bracket expression.

    Returns ``("cls", negated, folding_body, class_body)``: literal characters
    and ranges fold under nocase, POSIX classes do not (``[[:upper:]]`` stays
    upper case with nocasematch, as in bash), so they are kept apart.
    """
    n = len(pat)
    negated = False
    if i < n and pat[i] in "!^":
        negated = True
        i += 1
    parts: list[str] = []
    classes: list[str] = []
    first = True
    while i < n:
        c = pat[i]
        if c == "]" and not first:
            return ("cls", negated, "".join(parts), "".join(classes)), i + 1
        first = False
        if c == "[" and i + 1 < n and pat[i + 1] in ":=.":
            kind = pat[i + 1]
            end = pat.find(kind + "]", i + 2)
            if end != -1:
                name = pat[i + 2 : end]
                i = end + 2
                if kind == ":":
                    # an unknown class is valid and matches nothing, as in bash
                    classes.append(_POSIX_CLASSES.get(name, ""))
                elif name:
                    parts.append("".join(_class_char(x) for x in name))
                continue
        if c == "\\" and i + 1 < n:
            c = pat[i + 1]
            i += 1
        lo = c
        i += 1
        # a range lo-hi, unless the - is last in the bracket
        if i + 1 < n and pat[i] == "-" and pat[i + 1] != "]":
            hi = pat[i + 1]
            j = i + 2
            if hi == "\\" and j < n:
                hi = pat[j]
                j += 1
            elif hi == "[" and j < n and pat[j] in ":=.":
                parts.append(_class_char(lo))
                continue
            i = j
            if ord(lo) <= ord(hi):
                parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
            # else: an empty range matches nothing, as in bash
            continue
        parts.append(_class_char(lo))
    return None


def _parse(pat: str, extglob: bool) -> list[tuple]:
    return _parse_seq(pat, 0, extglob, nested=False)[0]


def _parse_seq(pat: str, i: int, extglob: bool, nested: bool) -> tuple[list[tuple], int]:
    """Items up to the end (or, inside a group, up to an unescaped ``|`` or ``)``)."""
    items: list[tuple] = []
    n = len(pat)
    while i < n:
        c = pat[i]
        if nested and c in "|)":
            return items, i
        if c == "\\":
            if i + 1 < n:
                items.append(("lit", pat[i + 1]))
                i += 2
            else:
                items.append(("lit", "\\"))
                i += 1
            continue
        if extglob and c in _EXT_OPS and i + 1 < n and pat[i + 1] == "(":
            group = _parse_group(pat, i + 2, extglob)
            if group is not None:
                alts, i = group
                items.append(("ext", c, alts))
                continue
        if c == "*":
            if not (items and items[-1] == ("star",)):
                items.append(("star",))
            i += 1
        elif c == "?":
            items.append(("any",))
            i += 1
        elif c == "[":
            parsed = _parse_bracket(pat, i + 1)
            if parsed is None:
                items.append(("lit", "["))
                i += 1
            else:
                items.append(parsed[0])
                i = parsed[1]
        else:
            items.append(("lit", c))
            i += 1
    return items, i


def _parse_group(pat: str, i: int, extglob: bool) -> tuple[list[list[tuple]], int] | None:
    alts = []
    n = len(pat)
    while True:
        items, i = _parse_seq(pat, i, extglob, nested=True)
        alts.append(items)
        if i >= n:
            return None  # unterminated: the characters are literal
        if pat[i] == ")":
            return alts, i + 1
        i += 1  # "|"


def _has_ext(items: list[tuple]) -> bool:
    return any(it[0] == "ext" for it in items)


def _reverse(items: list[tuple]) -> list[tuple]:
    out = []
    for it in reversed(items):
        if it[0] == "ext":
            out.append(("ext", it[1], [_reverse(a) for a in it[2]]))
        else:
            out.append(it)
    return out


# ---------------------------------------------------------------------------
# Regex engine (patterns without extglob groups).


def _atom_regex(it: tuple, pathname: bool) -> str:
    tag = it[0]
    if tag == "lit":
        return re.escape(it[1])
    if tag == "any":
        return "[^/]" if pathname else "."
    if tag == "cls":
        _, negated, body, classes = it
        no_slash = "/" if pathname else ""
        if negated:
            head = f"(?!(?-i:[{classes}]))" if classes else ""
            if body or no_slash:
                return f"{head}[^{body}{no_slash}]"
            return head + "."
        alts = ([f"[{body}]"] if body else []) + ([f"(?-i:[{classes}])"] if classes else [])
        if not alts:
            return "(?!)"
        rx = alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"
        return f"(?!/){rx}" if pathname else rx
    raise AssertionError(tag)


def _regexes(items: list[tuple], pathname: bool, dotglob: bool) -> tuple[str, str]:
    """(longest-match regex, shortest-match regex) for a star/atom sequence."""
    star = "[^/]*" if pathname else ".*"
    segs: list[list[str]] = [[]]
    guard_at: set[int] = set()  # segment indexes whose star starts a component
    prev_component_start = True
    for it in items:
        at_start = prev_component_start
        if it[0] == "star":
            if pathname and not dotglob and at_start:
                guard_at.add(len(segs))
            segs.append([])
            prev_component_start = False
            continue
        rx = _atom_regex(it, pathname)
        if pathname and not dotglob and at_start and it[0] != "lit":
            rx = "(?!\\.)" + rx
        segs[-1].append(rx)
        prev_component_start = it == ("lit", "/")
    texts = ["".join(s) for s in segs]
    if len(texts) == 1:
        return texts[0], texts[0]

    def star_rx(k: int, lazy: bool) -> str:
        guard = "(?!\\.)" if k in guard_at else ""
        return guard + star + ("?" if lazy else "")

    middle = "".join(f"(?>{star_rx(k, True)}{texts[k]})" for k in range(1, len(texts) - 1))
    last = len(texts) - 1
    longest = texts[0] + middle + star_rx(last, False) + texts[last]
    shortest = texts[0] + middle + f"(?>{star_rx(last, True)}{texts[last]})"
    return longest, shortest


# ---------------------------------------------------------------------------
# Bit-set engine (extglob).


class _BitRun:
    """One string against one pattern: positions as bits of an int."""

    def __init__(self, s: str, nocase: bool, pathname: bool, dotglob: bool) -> None:
        self.s = s
        self.n = n = len(s)
        self.all = (1 << (n + 1)) - 1
        self.flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
        self.pathname = pathname
        self.masks: dict[tuple, int] = {}
        chars = (1 << n) - 1
        # positions where a wildcard may not consume the character
        banned = 0
        if pathname:
            for m in re.finditer("/", s):
                banned |= 1 << m.start()
            if not dotglob:
                for m in re.finditer(r"(?:^|(?<=/))\.", s):
                    banned |= 1 << m.start()
        self.banned = banned
        self.star_mask = chars & ~banned

    def mask(self, it: tuple) -> int:
        m = self.masks.get(it)
        if m is None:
            n = self.n
            rx = re.compile(_atom_regex(it, False), self.flags)
            bits = bytearray(b"0" * n)
            for found in rx.finditer(self.s):
                bits[n - 1 - found.start()] = 49
            m = int(bits, 2) if n else 0
            if it[0] != "lit":
                m &= ~self.banned
            self.masks[it] = m
        return m

    def seq(self, items: list[tuple], S: int) -> int:
        for it in items:
            if not S:
                return 0
            tag = it[0]
            if tag == "star":
                M = self.star_mask
                S |= ((S & M) + M) ^ M
                S &= self.all
            elif tag == "ext":
                S = self.ext(it[1], it[2], S)
            else:
                S = (S & self.mask(it)) << 1
        return S

    def alts(self, alts: list[list[tuple]], S: int) -> int:
        out = 0
        for a in alts:
            out |= self.seq(a, S)
        return out

    def closure(self, alts: list[list[tuple]], S: int) -> int:
        reach = frontier = S
        while frontier:
            frontier = self.alts(alts, frontier) & ~reach
            reach |= frontier
        return reach

    def ext(self, op: str, alts: list[list[tuple]], S: int) -> int:
        if op == "@":
            return self.alts(alts, S)
        if op == "?":
            return S | self.alts(alts, S)
        if op == "*":
            return self.closure(alts, S)
        if op == "+":
            return self.closure(alts, self.alts(alts, S))
        # "!": from each start, every end the group cannot reach
        out = 0
        while S:
            low = S & -S
            S ^= low
            ends = self.alts(alts, low)
            reach = self.all & ~(low - 1)
            if self.pathname:  # it may not run over a "/"
                M = self.star_mask
                reach = (low | ((low & M) + M) ^ M) & self.all
            out |= reach & ~ends
        return out


# ---------------------------------------------------------------------------
# The compiled pattern.


@dataclass
class Pattern:
    """A compiled shell pattern; all spans are (start, end) indexes into the subject."""

    source: str
    items: list[tuple]
    nocase: bool
    pathname: bool
    dotglob: bool
    bitset: bool = field(init=False)  # True: extglob groups, matched by _BitRun
    _longest: re.Pattern | None = field(default=None, repr=False)
    _shortest: re.Pattern | None = field(default=None, repr=False)
    _reversed: Pattern | None = field(default=None, repr=False)
    _suffix: re.Pattern | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.bitset = _has_ext(self.items)
        if not self.bitset:
            longest, shortest = _regexes(self.items, self.pathname, self.dotglob)
            flags = re.DOTALL | (re.IGNORECASE if self.nocase else 0)
            self._longest = re.compile(longest, flags)
            self._shortest = re.compile(shortest, flags)

    def _ends(self, s: str, start: int) -> int:
        run = _BitRun(s, self.nocase, self.pathname, self.dotglob)
        return run.seq(self.items, 1 << start)

    def fullmatch(self, s: str) -> bool:
        """Does the whole of *s* match?"""
        if self._longest is not None:
            return self._longest.fullmatch(s) is not None
        return bool(self._ends(s, 0) >> len(s) & 1)

    def prefix(self, s: str, longest: bool, start: int = 0) -> int | None:
        """End of the shortest or longest match starting at *start*, or None."""
        if self._longest is not None and self._shortest is not None:
            m = (self._longest if longest else self._shortest).match(s, start)
            return None if m is None else m.end()
        ends = self._ends(s, start)
        if not ends:
            return None
        return ends.bit_length() - 1 if longest else (ends & -ends).bit_length() - 1

    def search(self, s: str, pos: int = 0) -> tuple[int, int] | None:
        """Leftmost match at or after *pos*, longest at that start (bash's ``${x/p/r}``)."""
        return self.searcher(s)(pos)

    def searcher(self, s: str) -> Callable[[int], tuple[int, int] | None]:
        """``search`` on one string for many positions, sharing the work between calls."""
        if self._longest is not None:
            rx = self._longest

            def find(pos: int) -> tuple[int, int] | None:
                m = rx.search(s, pos)
                return None if m is None else m.span()

            return find
        # Every start that begins some match, in one pass: run the reversed
        # pattern from every end at once (sets of positions distribute over
        # union), then turn reversed positions back into start offsets.
        n = len(s)
        rev = self.reversed()
        back = _BitRun(s[::-1], self.nocase, False, True)
        reached = back.seq(rev.items, back.all)
        starts = int(format(reached, f"0{n + 1}b")[::-1], 2) if reached else 0
        run = _BitRun(s, self.nocase, self.pathname, self.dotglob)

        def find_ext(pos: int) -> tuple[int, int] | None:
            later = starts >> pos
            if not later:
                return None
            i = pos + (later & -later).bit_length() - 1
            return i, run.seq(self.items, 1 << i).bit_length() - 1

        return find_ext

    def reversed(self) -> Pattern:
        """The pattern matching the reversed strings (for suffix operations)."""
        if self._reversed is None:
            self._reversed = Pattern(self.source, _reverse(self.items), self.nocase, False, True)
        return self._reversed

    def suffix(self, s: str, longest: bool) -> int | None:
        """Start of the shortest or longest suffix of *s* that matches, or None."""
        if longest and self._longest is not None:
            if self._suffix is None:
                self._suffix = re.compile(f"(?:{self._longest.pattern})\\Z", self._longest.flags)
            m = self._suffix.search(s)
            return None if m is None else m.start()
        length = self.reversed().prefix(s[::-1], longest)
        return None if length is None else len(s) - length


@functools.lru_cache(maxsize=1024)
def compile_pattern(
    pat: str, *, extglob: bool = False, nocase: bool = False, pathname: bool = False, dotglob: bool = False
) -> Pattern:
    """Compile escaped-form *pat*.

    ``pathname`` makes ``*``, ``?`` and brackets stop at ``/`` and leaves a
    leading ``.`` (of the string or after a ``/``) to be matched explicitly,
    unless ``dotglob``.
    """
    return Pattern(pat, _parse(pat, extglob), nocase, pathname, dotglob)


def match(pat: str, s: str, *, extglob: bool = False, nocase: bool = False, pathname: bool = False,
          dotglob: bool = False) -> bool:
    """Whether the whole of *s* matches *pat* (``case``, ``[[ s == p ]]``)."""
    return compile_pattern(pat, extglob=extglob, nocase=nocase, pathname=pathname, dotglob=dotglob).fullmatch(s)


def has_magic(pat: str, *, extglob: bool = False) -> bool:
    """Whether *pat* has unquoted glob characters, i.e. whether globbing can change it.

    As in bash, ``[`` counts only with a later ``]``.
    """
    i, n = 0, len(pat)
    bracket = False
    while i < n:
        c = pat[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?":
            return True
        if (c == "]" and bracket) or (extglob and c in "+@!" and pat[i + 1 : i + 2] == "("):
            return True
        if c == "[":
            bracket = True
        i += 1
    return False


def unescape(pat: str) -> str:
    """Quote removal of the escaped form: ``\\c`` becomes ``c``."""
    if "\\" not in pat:
        return pat
    out = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "\\" and i + 1 < n:
            out.append(pat[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------
# Parameter expansion.


def remove_prefix(s: str, pat: str, longest: bool, *, extglob: bool = False, nocase: bool = False) -> str:
    """``${s#pat}`` (shortest) or ``${s##pat}`` (longest)."""
    end = compile_pattern(pat, extglob=extglob, nocase=nocase).prefix(s, longest)
    return s if end is None else s[end:]


def remove_suffix(s: str, pat: str, longest: bool, *, extglob: bool = False, nocase: bool = False) -> str:
    """``${s%pat}`` (shortest) or ``${s%%pat}`` (longest)."""
    start = compile_pattern(pat, extglob=extglob, nocase=nocase).suffix(s, longest)
    return s if start is None else s[:start]


def _replacement(repl: str, amp: bool) -> Callable[[str], str]:
    """With bash's patsub_replacement, an unquoted ``&`` in *repl* is the matched text."""
    if not amp:
        return lambda matched: repl
    parts: list[str | None] = []  # None: the match
    buf: list[str] = []
    i, n = 0, len(repl)
    while i < n:
        c = repl[i]
        if c == "\\" and i + 1 < n:
            buf.append(repl[i + 1])
            i += 2
            continue
        if c == "&":
            parts.append("".join(buf))
            buf = []
            parts.append(None)
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    if len(parts) == 1:
        text = parts[0] or ""
        return lambda matched: text
    return lambda matched: "".join(matched if p is None else p for p in parts)


def _odd_trailing_backslashes(pat: str) -> bool:
    return (len(pat) - len(pat.rstrip("\\"))) % 2 == 1


def replace(
    s: str,
    pat: str,
    repl: str,
    mode: Literal["first", "all", "prefix", "suffix"] = "first",
    *,
    extglob: bool = False,
    nocase: bool = False,
    patsub_replacement: bool = False,
) -> str:
    """``${s/pat/repl}`` (first), ``${s//…}`` (all), ``${s/#…}`` (prefix), ``${s/%…}`` (suffix).

    Bash's rules: the leftmost match, longest at its start; after an empty
    match in ``all`` mode one character is copied; an empty *pat* changes
    nothing except in the anchored modes.  *repl* is literal unless
    ``patsub_replacement``, in which case it is in escaped form and an
    unescaped ``&`` stands for the match.
    """
    p = compile_pattern(pat, extglob=extglob, nocase=nocase)
    rep = _replacement(repl, patsub_replacement)
    n = len(s)
    # bash tries a match at the very end of the string only for a pattern
    # starting with "*" (its match_pattern_char); that shows on empty strings
    at_end_ok = pat.startswith("*")
    if mode == "prefix":
        if _odd_trailing_backslashes(pat) and not compile_pattern(pat + "*", extglob=extglob, nocase=nocase).fullmatch(
            s
        ):
            return s
        end = p.prefix(s, True) if (n or at_end_ok) else None
        return s if end is None else rep(s[:end]) + s[end:]
    if mode == "suffix":
        start = p.suffix(s, True)
        # bash first checks "*PAT" against the string, and its "*" never tries
        # an empty rest before an @( !( +( group: the empty suffix alone fails
        if start == n and extglob and (pat[:2] in ("@(", "+(") or (n and pat[:2] == "!(")):
            start = None
        return s if start is None else s[:start] + rep(s[start:])
    if not pat:
        return s
    if _odd_trailing_backslashes(pat):
        # bash checks "*PAT*" first; the "*" it appends is then escaped by the
        # lone backslash, so only a string ending in PAT's text plus "*" passes
        lead = "" if pat[0] == "*" and not (extglob and pat[1:2] == "(") else "*"
        if not compile_pattern(lead + pat + "*", extglob=extglob, nocase=nocase).fullmatch(s):
            return s
    find = p.searcher(s)
    if mode == "first":
        span = find(0)
        if span is None or (span[0] == n and not at_end_ok):
            return s
        i, j = span
        return s[:i] + rep(s[i:j]) + s[j:]
    out: list[str] = []
    pos = 0
    while True:
        span = find(pos)
        if span is None or (span[0] == n and not at_end_ok):
            break
        i, j = span
        out.append(s[pos:i])
        out.append(rep(s[i:j]))
        if i == j:
            if i >= n:
                pos = n
                break
            out.append(s[i])
            pos = i + 1
        else:
            pos = j
        if pos >= n:
            break
    out.append(s[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------
# Pathname expansion.

ListDir = Callable[[str], Awaitable["list[str] | None"]]
Exists = Callable[[str], Awaitable[bool]]


@dataclass
class _GlobOptions:
    listdir: ListDir
    exists: Exists | None
    dotglob: bool
    globstar: bool
    extglob: bool
    nocase: bool
    max_results: int
    found: int = 0


async def _listdir(opts: _GlobOptions, path: str) -> list[str] | None:
    try:
        names = await opts.listdir(path or ".")
    except Exception:  # noqa: BLE001 - any failure of the callback means "not readable"
        return None
    if names is None:
        return None
    return [n for n in names if n not in (".", "..")]


async def _exists(opts: _GlobOptions, path: str) -> bool:
    if opts.exists is not None:
        try:
            return bool(await opts.exists(path))
        except Exception:  # noqa: BLE001 - as for listdir
            return False
    parent, _, name = path.rstrip("/").rpartition("/")
    if path.startswith("/") and not parent:
        parent = "/"
    names = await _listdir(opts, parent)
    return names is not None and name in names


def _join(prefix: str, name: str) -> str:
    return prefix + name if prefix in ("", "/") else prefix + "/" + name


def _count(opts: _GlobOptions, n: int = 1) -> None:
    opts.found += n
    if opts.found > opts.max_results:
        raise GlobError(f"too many matches (limit {opts.max_results})")


async def _walk(opts: _GlobOptions, prefix: str, parts: list[str], want_dir: bool) -> list[str]:
    """Expand *parts* (pattern components) below directory *prefix* ('' = cwd)."""
    if not parts:
        return [prefix]
    comp, rest = parts[0], parts[1:]
    last = not rest
    if comp == "":  # "a//b": bash keeps the doubled slash
        return await _walk(opts, _join(prefix, ""), rest, want_dir)
    if opts.globstar and comp == "**":
        return await _globstar(opts, prefix, rest, want_dir)
    if not has_magic(comp, extglob=opts.extglob):
        path = _join(prefix, unescape(comp))
        if last:
            if want_dir:
                ok = await _listdir(opts, path) is not None
            else:
                ok = await _exists(opts, path)
            if ok:
                _count(opts)
                return [path]
            return []
        return await _walk(opts, path, rest, want_dir)
    names = await _listdir(opts, prefix)
    if not names:
        return []
    p = compile_pattern(comp, extglob=opts.extglob, nocase=opts.nocase, pathname=True, dotglob=opts.dotglob)
    out: list[str] = []
    for name in sorted(names):
        if not p.fullmatch(name):
            continue
        path = _join(prefix, name)
        if last:
            if want_dir and await _listdir(opts, path) is None:
                continue
            _count(opts)
            out.append(path)
        else:
            out.extend(await _walk(opts, path, rest, want_dir))
    return out


async def _globstar(opts: _GlobOptions, prefix: str, rest: list[str], want_dir: bool) -> list[str]:
    """``**``: zero or more directories (hidden ones only with dotglob).

    Last in the pattern it yields everything below *prefix* (directories only
    before a trailing ``/``) plus ``prefix/`` itself, as bash does.
    """
    dirs = [prefix]
    files: list[str] = []
    i = 0
    while i < len(dirs):  # every directory below prefix, breadth first
        d = dirs[i]
        i += 1
        names = await _listdir(opts, d)
        if names is None:
            continue
        for name in names:
            if name.startswith(".") and not opts.dotglob:
                continue
            path = _join(d, name)
            if await _listdir(opts, path) is not None:
                dirs.append(path)
            else:
                files.append(path)
    if rest:
        out = []
        for d in dirs:
            out.extend(await _walk(opts, d, rest, want_dir))
        return out
    out = dirs[1:] if want_dir else dirs[1:] + files
    if prefix:
        out.append(prefix if want_dir or prefix.endswith("/") else prefix + "/")
    _count(opts, len(out))
    return out


async def glob_expand(
    pattern: str,
    listdir: ListDir,
    *,
    exists: Exists | None = None,
    dotglob: bool = False,
    nullglob: bool = False,
    globstar: bool = False,
    extglob: bool = False,
    nocase: bool = False,
    max_results: int = 100_000,
) -> list[str]:
    """Pathname expansion of escaped-form *pattern*, sorted bytewise as bash in the C locale.

    ``listdir(path)`` returns the names in a directory (``"."`` for the
    current one), or None / raises when *path* is no readable directory.
    ``exists(path)`` answers for literal last components; without it the
    parent directory is listed instead.  With no match the result is the
    pattern after quote removal, or ``[]`` with *nullglob*.
    """
    opts = _GlobOptions(listdir, exists, dotglob, globstar, extglob, nocase, max_results)
    want_dir = pattern.endswith("/")
    body = pattern.rstrip("/") if want_dir else pattern
    absolute = body.startswith("/")
    # a quoted "/" still separates components: drop the backslash before it
    parts = [c[:-1] if _odd_trailing_backslashes(c) else c for c in body.split("/")]
    prefix = ""
    if absolute:
        prefix, parts = "/", parts[1:]
    if not has_magic(pattern, extglob=extglob):
        return [unescape(pattern)]
    results = await _walk(opts, prefix, parts, want_dir)
    if want_dir:
        results = [r + "/" for r in results]
    results.sort(key=lambda r: r.encode("utf-8", "surrogateescape"))
    if not results:
        return [] if nullglob else [unescape(pattern)]
    return results
