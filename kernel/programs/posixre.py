"""POSIX regular expressions (BRE and ERE, with the GNU extensions) for the text programs.

grep, sed, awk, expr and the shell's ``[[ =~ ]]`` all share this module so that
a pattern means the same thing everywhere and is translated once.  The POSIX
text is parsed by our own parser (so errors carry GNU's wording and GNU's odd
context rules are honoured), turned into a small tree, and the tree is emitted
as a pattern for one of two engines:

* google-re2 (linear time, no backtracking) whenever it can express the
  pattern, with ``longest_match`` for POSIX leftmost-longest semantics and
  Latin-1 encoding so that one byte is one character: programs work on bytes
  and must never die on invalid UTF-8;
* the ``regex`` module in POSIX mode when the pattern needs backreferences (or
  look-around for ``\\<``/``\\>`` in positions re2 cannot express), always with
  a time limit so that a pathological pattern fails with ``ETIME`` instead of
  hanging the sandbox.

A pattern that is a plain byte string skips both and uses ``bytes.find``.

Matching follows the C locale: bytes are characters, ranges are byte ranges,
case folding is ASCII only.  Brackets and classes are resolved to explicit byte
sets by the parser, so both engines see the same sets.

Use from the programs::

    rx = compile(pat, extended=False, dialect="sed")      # cached
    rx.search(buf, pos, endpos) -> Match | None          # leftmost-longest
    rx.match(...) / rx.fullmatch(...)                    # expr: anchored at pos
    rx.finditer(buf)                                     # grep -o, s///g rules
    rx.sub(b"\\U&", buf, nth=2, all=True) -> (bytes, n)  # sed s///2g
    compile(pat, lines=True).search_lines(buf)           # grep over a whole buffer
    rx.engine, rx.compiled, rx.engine_pattern            # for bulk work

Where GNU itself is two-faced we pick one face: grep decides which lines
match with its dfa matcher but reports ``-o`` spans with glibc regex, and the
two disagree on repeated anchors (``\\<*``) and on leading ``{2}``/``*`` in
ERE; we follow dfa, i.e. the line selection.  Not modelled: multibyte
(UTF-8) locales, glibc's results for back references to groups repeated
while empty (``(){2}*\\1``), and grep ``-w``/``-x`` with an unmatched ``)``
(GNU splices the text into its wrapper).  awk should pass its regex here as
``dialect="posix", extended=True`` after its own escape processing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Sequence, Union

import re2
import regex as _regex

from kernel.errors import KernelError

__all__ = [
    "compile",
    "PosixRegex",
    "Match",
    "Replacement",
    "parse_replacement",
    "DEFAULT_TIMEOUT",
    "RE_DUP_MAX",
]

#: Seconds a backtracking (backreference) search may take before ``ETIME``.
DEFAULT_TIMEOUT = 2.0
#: The largest interval bound GNU accepts; beyond it: "Regular expression too big".
RE_DUP_MAX = 0x7FFF
#: re2 refuses counted repetition above this; such patterns go to the other engine.
_RE2_MAX_REPEAT = 1000

Dialect = Literal["grep", "sed", "posix", "expr"]

# --------------------------------------------------------------------------
# Byte sets.  A set is a 256-bit int; bit b set means byte b is in the set.
# --------------------------------------------------------------------------

_ALL = (1 << 256) - 1
_NL = 1 << 10


def _bits(chars: bytes | range) -> int:
    m = 0
    for c in chars:
        m |= 1 << c
    return m


def _rng(lo: int, hi: int) -> int:
    return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)


_UPPER = _rng(65, 90)
_LOWER = _rng(97, 122)
_DIGIT = _rng(48, 57)
_CLASSES: dict[bytes, int] = {
    b"upper": _UPPER,
    b"lower": _LOWER,
    b"alpha": _UPPER | _LOWER,
    b"digit": _DIGIT,
    b"alnum": _UPPER | _LOWER | _DIGIT,
    b"xdigit": _DIGIT | _rng(65, 70) | _rng(97, 102),
    b"space": _bits(b" \t\n\v\f\r"),
    b"blank": _bits(b" \t"),
    b"punct": _rng(33, 47) | _rng(58, 64) | _rng(91, 96) | _rng(123, 126),
    b"print": _rng(32, 126),
    b"graph": _rng(33, 126),
    b"cntrl": _rng(0, 31) | (1 << 127),
}
_WORD = _CLASSES[b"alnum"] | (1 << 95)


def _fold(mask: int) -> int:
    """Add the other ASCII case of every letter in *mask* (C-locale ``-i``)."""
    up = (mask & _UPPER) << 32
    low = (mask & _LOWER) >> 32
    return mask | up | low


def _emit_set(mask: int) -> str:
    """Render a byte set as an engine pattern both re2 and ``regex`` accept."""
    if mask == 0:
        return "[^\\x00-\\xff]"  # matches nothing, in both engines
    if mask & (mask - 1) == 0:
        return _emit_byte(mask.bit_length() - 1)
    parts: list[str] = []
    b = 0
    while b < 256:
        if mask >> b & 1:
            e = b
            while e + 1 < 256 and mask >> (e + 1) & 1:
                e += 1
            parts.append(f"\\x{b:02x}" if b == e else f"\\x{b:02x}-\\x{e:02x}")
            b = e + 1
        else:
            b += 1
    return "[" + "".join(parts) + "]"


def _emit_byte(b: int) -> str:
    ch = chr(b)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{b:02x}"


# --------------------------------------------------------------------------
# The tree.
# --------------------------------------------------------------------------


#: re2's low-level ``Match(anchor, text, pos, endpos)``: a (start, end) per group, (-1, -1) if none.
_RawMatch = Callable[..., Sequence[tuple[int, int]]]

@dataclass(frozen=True, slots=True)
class _Set:
    """One byte out of a set (a literal is a one-byte set)."""

    mask: int


@dataclass(frozen=True, slots=True)
class _Anchor:
    """A zero-width assertion: bol eol bos eos wordb nwordb wstart wend."""

    kind: str


@dataclass(frozen=True, slots=True)
class _Group:
    index: int
    body: "_Node"


@dataclass(frozen=True, slots=True)
class _Cat:
    items: tuple["_Node", ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: tuple["_Node", ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    body: "_Node"
    lo: int
    hi: int | None  # None: unbounded


@dataclass(frozen=True, slots=True)
class _Backref:
    index: int


_Node = Union[_Set, _Anchor, _Group, _Cat, _Alt, _Repeat, _Backref]
_EMPTY = _Cat(())


# --------------------------------------------------------------------------
# Syntax variants: glibc's syntax bits as the programs set them.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Syntax:
    """The context rules in which GNU programs differ from each other."""

    #: ERE: ``*``/``+``/``?``/``{`` with nothing to repeat is an error (else it is skipped).
    invalid_ops: bool
    #: BRE: ``\\{`` with nothing to repeat, and ``**``, are errors.
    invalid_dup: bool
    #: ERE: a ``{`` that does not start a valid interval is a literal (grep).
    interval_literal: bool
    #: ERE: an unmatched ``)`` is a literal.
    rparen_literal: bool
    #: ``\\n``, ``\\t``, ``\\xHH``... denote bytes (sed).
    escapes: bool
    #: ``[:space:]`` is rejected with a hint (grep and sed do this).
    colon_check: bool
    #: ``[z-a]`` is an error (else an empty range: expr).
    no_empty_ranges: bool = True
    #: Repetition of nothing (ERE) or of an anchor other than BRE ``^`` follows
    #: GNU dfa, which decides which lines grep selects.
    dfa_dups: bool = False


_SYNTAX: dict[tuple[str, bool], _Syntax] = {
    ("grep", False): _Syntax(False, False, True, True, False, True, dfa_dups=True),
    ("grep", True): _Syntax(False, False, True, True, False, True, dfa_dups=True),
    ("expr", False): _Syntax(False, False, True, True, False, False, False),
    ("expr", True): _Syntax(True, False, False, True, False, False, False),
    ("sed", False): _Syntax(True, True, False, False, True, True),
    ("sed", True): _Syntax(True, True, False, False, True, True),
    ("posix", False): _Syntax(True, True, False, True, False, False),
    ("posix", True): _Syntax(True, True, False, True, False, False),
}


def _err(message: str) -> KernelError:
    return KernelError("EINVAL", message)


# Messages exactly as glibc/GNU grep word them.
_E_PAREN = "Unmatched ( or \\("
_E_RPAREN = "Unmatched ) or \\)"
_E_BRACK = "Unmatched [, [^, [:, [., or [="
_E_BRACE = "Unmatched \\{"
_E_BADBR = "Invalid content of \\{\\}"
_E_BADRPT = "Invalid preceding regular expression"
_E_SUBREG = "Invalid back reference"
_E_ESCAPE = "Trailing backslash"
_E_RANGE = "Invalid range end"
_E_CTYPE = "Invalid character class name"
_E_COLLATE = "Invalid collation character"
_E_SIZE = "Regular expression too big"
_E_COLON = "character class syntax is [[:space:]], not [:space:]"


# Token kinds produced by the lexer.
_T_CHAR, _T_SET, _T_OPEN, _T_CLOSE, _T_ALT, _T_STAR, _T_PLUS, _T_QMARK = range(8)
_T_BRACE, _T_ANCHOR, _T_BREF, _T_BRACKET, _T_END = range(8, 13)
_DUP_TOKENS = (_T_STAR, _T_PLUS, _T_QMARK, _T_BRACE)


@dataclass(slots=True)
class _Info:
    """What the parser learnt that decides the engine."""

    groups: int = 0
    backrefs: bool = False
    max_repeat: int = 0


class _Parser:
    """Recursive descent over the pattern bytes, following glibc's parse_reg_exp.

    Tokens are read one at a time with the position of the previous token in
    hand, because BRE's ``^``/``$``/``*`` meanings depend on their neighbours.
    """

    def __init__(self, pat: bytes, extended: bool, syntax: _Syntax, icase: bool, hat_nl: bool = False) -> None:
        self.p = pat
        self.n = len(pat)
        self.i = 0
        self.ere = extended
        self.syn = syntax
        self.icase = icase
        # REG_NEWLINE (sed M): "." and "[^...]" never match a newline.
        self.hat_mask = _ALL & ~_NL if hat_nl else _ALL
        self.info = _Info()
        self.completed: set[int] = set()
        self.depth = 0
        self.at_start = True  # the next token begins a branch (for BRE ``^``)
        self.literal_at = -1  # a ``{`` here is literal (grep's invalid interval)
        self.literal_at_paren = -1  # a ``)`` here is literal (see glibc_paren_rule)
        # dfa's "laststart": only anchors so far in this branch (BRE: ``\<*`` has a literal ``*``).
        self.laststart = True

    # -- lexer -------------------------------------------------------------
    def peek(self) -> tuple[int, int, int]:
        """(kind, value, length) of the token at ``self.i``."""
        p, i, n = self.p, self.i, self.n
        if i >= n:
            return (_T_END, 0, 0)
        c = p[i]
        ere = self.ere
        if i == self.literal_at or i == self.literal_at_paren:
            return (_T_CHAR, c, 1)
        if c == 0x5C:  # backslash
            if i + 1 >= n:
                raise _err(_E_ESCAPE)
            d = p[i + 1]
            if not ere:
                if d == 0x28:
                    return (_T_OPEN, 0, 2)
                if d == 0x29:
                    return (_T_CLOSE, 0, 2)
                if d == 0x7C:
                    return (_T_ALT, 0, 2)
                if d == 0x7B:
                    return (_T_BRACE, 0, 2)
                if d == 0x7D:
                    return (_T_CHAR, 0x7D, 2)
                if d == 0x2B:
                    return (_T_PLUS, 0, 2)
                if d == 0x3F:
                    return (_T_QMARK, 0, 2)
            if 0x31 <= d <= 0x39:
                return (_T_BREF, d - 0x30, 2)
            simple = _ESCAPE_SETS.get(d)
            if simple is not None:
                return (_T_SET, simple, 2)
            anchor = _ESCAPE_ANCHORS.get(d)
            if anchor is not None:
                return (_T_ANCHOR, anchor, 2)
            if self.syn.escapes:
                got = _sed_escape(p, i + 1)
                if got is not None:
                    return (_T_CHAR, got[0], 1 + got[1])
            return (_T_CHAR, d, 2)
        if c == 0x5B:
            return (_T_BRACKET, 0, 1)
        if c == 0x2E:
            return (_T_SET, -1, 1)
        if c == 0x2A:
            return (_T_STAR, 0, 1)
        if c == 0x5E:
            if ere or self.at_start:
                return (_T_ANCHOR, 0, 1)  # 0: bol
            return (_T_CHAR, c, 1)
        if c == 0x24:
            if ere or i + 1 == n:
                return (_T_ANCHOR, 1, 1)  # 1: eol
            save = self.i
            self.i = i + 1
            nxt = self.peek()[0]
            self.i = save
            if nxt in (_T_CLOSE, _T_ALT):
                return (_T_ANCHOR, 1, 1)
            return (_T_CHAR, c, 1)
        if ere:
            if c == 0x28:
                return (_T_OPEN, 0, 1)
            if c == 0x29:
                return (_T_CLOSE, 0, 1)
            if c == 0x7C:
                return (_T_ALT, 0, 1)
            if c == 0x2B:
                return (_T_PLUS, 0, 1)
            if c == 0x3F:
                return (_T_QMARK, 0, 1)
            if c == 0x7B:
                return (_T_BRACE, 0, 1)
        return (_T_CHAR, c, 1)

    def advance(self, tok: tuple[int, int, int]) -> None:
        self.i += tok[2]
        self.at_start = tok[0] in (_T_OPEN, _T_ALT)
        if self.at_start:
            self.laststart = True

    # -- grammar -----------------------------------------------------------
    def parse(self) -> _Node:
        tree = self.parse_alt()
        kind = self.peek()[0]
        if kind == _T_CLOSE:  # only reachable when a close is not a literal
            raise _err(_E_RPAREN)
        return tree

    def parse_alt(self) -> _Node:
        # As glibc: a back reference may only name a group closed earlier in
        # the same alternative (or before the alternation).
        initial = set(self.completed)
        accumulated = set()
        branches = [self.parse_branch()]
        while self.peek()[0] == _T_ALT:
            self.advance(self.peek())
            accumulated |= self.completed
            self.completed = set(initial)
            branches.append(self.parse_branch())
        self.completed |= accumulated
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def parse_branch(self) -> _Node:
        items: list[_Node] = []
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind == _T_END or kind == _T_ALT:
                break
            if kind == _T_CLOSE and (self.depth > 0 or not self.syn.rparen_literal or not self.ere):
                break
            node = self.parse_expression()
            if node is not None:
                items.append(node)
        return items[0] if len(items) == 1 else _Cat(tuple(items))

    def parse_expression(self) -> _Node | None:
        tok = self.peek()
        kind, val, _ = tok
        tree: _Node
        if kind == _T_CHAR:
            self.advance(tok)
            tree = self.char(val)
        elif kind == _T_SET:
            self.advance(tok)
            tree = _Set(self.hat_mask if val == -1 else val)
        elif kind == _T_BRACKET:
            tree = _Set(self.bracket())
            self.at_start = False
        elif kind == _T_OPEN:
            self.advance(tok)
            self.info.groups += 1
            index = self.info.groups
            self.depth += 1
            body = self.parse_alt()
            if self.peek()[0] != _T_CLOSE:
                raise _err(_E_PAREN)
            self.depth -= 1
            self.advance(self.peek())
            self.at_start = False
            self.completed.add(index)
            tree = _Group(index, body)
        elif kind == _T_CLOSE:  # an unmatched ERE ``)`` that is a literal
            self.advance(tok)
            self.at_start = False
            tree = self.char(0x29)
        elif kind == _T_BREF:
            if val not in self.completed:
                raise _err(_E_SUBREG)
            self.advance(tok)
            self.info.backrefs = True
            tree = _Backref(val)
        elif kind == _T_ANCHOR:
            # glibc: an anchor is never repeated; a following ``*`` starts anew.
            # grep -E decides which lines match with GNU dfa, which does repeat
            # it: ``^*`` may match without the anchor.
            self.advance(tok)
            if self.syn.dfa_dups and (self.ere or not self.laststart):
                if self.ere and self.peek()[0] in _DUP_TOKENS:
                    self.glibc_paren_rule()
                skipped, optional = self.skip_dups()
                if skipped:
                    return None if optional else _Anchor(_ANCHOR_NAMES[val])
            return _Anchor(_ANCHOR_NAMES[val])
        elif kind in _DUP_TOKENS:
            # Nothing to repeat.
            if self.ere:
                if self.syn.invalid_ops:
                    raise _err(_E_BADRPT)
                if self.syn.dfa_dups:
                    self.glibc_paren_rule()
                    self.skip_dups()  # dfa: a repeated empty expression
                    return None
                self.advance((kind, 0, 1))  # glibc skips just this one token
                self.at_start = False
                return None
            if kind == _T_BRACE and self.syn.invalid_dup:
                raise _err(_E_BADRPT)
            self.advance(tok)
            tree = self.char(0x7B if kind == _T_BRACE else self.p[self.i - 1])
        else:  # pragma: no cover - every token kind is handled above
            raise AssertionError(kind)
        # Postfix repetition operators.
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind not in _DUP_TOKENS:
                break
            start = self.i
            self.advance(tok)
            self.at_start = False
            if kind == _T_STAR:
                lo, hi = 0, None
            elif kind == _T_PLUS:
                lo, hi = 1, None
            elif kind == _T_QMARK:
                lo, hi = 0, 1
            else:
                got = self.interval()
                if got is None:  # grep ERE: the ``{`` is a literal after all
                    self.i = start
                    self.literal_at = start
                    return tree
                lo, hi = got
            if self.syn.invalid_dup and not self.ere:
                nxt = self.peek()[0]
                if nxt in (_T_STAR, _T_BRACE):
                    raise _err(_E_BADRPT)
            self.info.max_repeat = max(self.info.max_repeat, lo, hi or 0)
            tree = _Repeat(tree, lo, hi)
        self.laststart = False
        return tree

    def skip_dups(self) -> tuple[bool, bool]:
        """Consume repetition operators applied to nothing (or to an anchor), as GNU dfa does.

        Returns (any consumed, one of them allows zero repetitions, making
        what it repeats optional).  A ``{`` that starts no valid interval is
        left as a literal, as dfa reads it.
        """
        optional = skipped = False
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind not in _DUP_TOKENS:
                return skipped, optional
            start = self.i
            self.advance(tok)
            self.at_start = False
            if kind in (_T_STAR, _T_QMARK):
                optional = True
            elif kind == _T_BRACE:
                try:
                    got = self.interval()
                except KernelError:
                    got = None
                if got is None:
                    self.i = self.literal_at = start
                    return skipped, optional
                optional = optional or got[0] == 0
            skipped = True

    def glibc_paren_rule(self) -> None:
        """glibc skips a leading operator one byte at a time and then reads a ``)`` as a literal.

        So ``(*)`` and ``({)`` are "Unmatched ( or \\(" in grep -E, while
        ``({2})`` is fine.  Called at the operator, before dfa's reading.
        """
        if not self.syn.rparen_literal:
            return
        j = self.i
        while j < self.n and self.p[j] in b"*+?{":
            j += 1
        if j < self.n and self.p[j] == 0x29:
            self.literal_at_paren = j

    def char(self, c: int) -> _Set:
        m = 1 << c
        return _Set(_fold(m) if self.icase else m)

    def number(self) -> tuple[int, int]:
        """glibc's fetch_number: (value | -1 no digits | -2 junk or end, stop byte | -1 at end)."""
        num = -1
        p, n = self.p, self.n
        while True:
            if self.i >= n:
                return -2, -1
            c = p[self.i]
            if self.ere and c == 0x7D:
                self.i += 1
                return num, 0x7D
            if not self.ere and c == 0x5C and self.i + 1 < n and p[self.i + 1] == 0x7D:
                self.i += 2
                return num, 0x7D
            self.i += 1
            if c == 0x2C:
                return num, 0x2C
            if num == -2 or not 0x30 <= c <= 0x39:
                num = -2
            else:
                num = c - 0x30 if num == -1 else min(RE_DUP_MAX + 1, num * 10 + c - 0x30)

    def interval(self) -> tuple[int, int | None] | None:
        """After ``{``: (lo, hi), or None when grep wants the ``{`` taken literally."""
        lo, stop = self.number()
        hi = -1
        if lo == -1:
            if stop != 0x2C:
                raise _err(_E_BADBR)
            lo = 0  # "{,m}" is "{0,m}"
        if lo != -2:
            if stop == 0x7D:
                hi = lo
            else:
                hi, stop = self.number()
        if lo == -2 or hi == -2:
            if self._interval_literal():
                return None
            raise _err(_E_BRACE if stop == -1 else _E_BADBR)
        if (hi != -1 and lo > hi) or stop != 0x7D:
            raise _err(_E_BADBR)
        if (lo if hi == -1 else hi) > RE_DUP_MAX:
            raise _err(_E_SIZE)
        return lo, (None if hi == -1 else hi)

    def _interval_literal(self) -> bool:
        return self.ere and self.syn.interval_literal

    def bracket(self) -> int:
        """Parse ``[...]`` starting at the ``[``; return the byte set."""
        p, n = self.p, self.n
        i = self.i + 1
        neg = False
        if i < n and p[i] == 0x5E:
            neg = True
            i += 1
        body_start = i
        mask = 0
        first = True
        while True:
            if i >= n:
                raise _err(_E_BRACK)
            c = p[i]
            if c == 0x5D and not first:
                i += 1
                break
            first = False
            lo, i, is_class = self._bracket_elem(i)
            if i + 1 < n and p[i] == 0x2D and p[i + 1] != 0x5D:
                if is_class:
                    raise _err(_E_RANGE)
                hi, i, hi_class = self._bracket_elem(i + 1)
                if hi_class:
                    raise _err(_E_RANGE)
                if hi >= lo:
                    mask |= _rng(lo, hi)
                elif self.syn.no_empty_ranges:
                    raise _err(_E_RANGE)
                if i + 1 < n and p[i] == 0x2D and p[i + 1] != 0x5D:
                    raise _err(_E_RANGE)  # "a-c-e": a range cannot start at a range's end
            elif is_class:
                mask |= lo
            else:
                mask |= 1 << lo
        if self.syn.colon_check:
            body = p[body_start : i - 1]
            if len(body) >= 2 and body[:1] == b":" and body[-1:] == b":" and b"[" not in body:
                raise _err(_E_COLON)
        self.i = i
        if self.icase:
            mask = _fold(mask)
        return ((_ALL ^ mask) & self.hat_mask) if neg else mask

    def _bracket_elem(self, i: int) -> tuple[int, int, bool]:
        """One element at *i*: (byte or class mask, next index, is a class)."""
        p, n = self.p, self.n
        c = p[i]
        if c == 0x5B and i + 1 < n and p[i + 1] in (0x3A, 0x2E, 0x3D):
            delim = p[i + 1]
            j = i + 2
            end = -1
            while j + 1 < n:
                if p[j] == delim and p[j + 1] == 0x5D:
                    end = j
                    break
                j += 1
            if end < 0:
                raise _err(_E_BRACK)
            name = p[i + 2 : end]
            if delim == 0x3A:
                cls = _CLASSES.get(name)
                if cls is None:
                    raise _err(_E_CTYPE)
                return cls, end + 2, True
            if len(name) != 1:
                raise _err(_E_COLLATE)
            return name[0], end + 2, False
        if c == 0x5C and self.syn.escapes:
            got = _sed_escape(p, i + 1)
            if got is not None:
                return got[0], i + 1 + got[1], False
        return c, i + 1, False


_ESCAPE_SETS: dict[int, int] = {
    0x77: _WORD,  # \w
    0x57: _ALL ^ _WORD,  # \W
    0x73: _CLASSES[b"space"],  # \s
    0x53: _ALL ^ _CLASSES[b"space"],  # \S
}
# Values index _ANCHOR_NAMES; 0 and 1 are ^ and $.
_ANCHOR_NAMES = ("bol", "eol", "bos", "eos", "wordb", "nwordb", "wstart", "wend")
_ESCAPE_ANCHORS: dict[int, int] = {0x60: 2, 0x27: 3, 0x62: 4, 0x42: 5, 0x3C: 6, 0x3E: 7}

_SED_SIMPLE = {0x6E: 10, 0x74: 9, 0x61: 7, 0x66: 12, 0x76: 11, 0x72: 13}


def _sed_escape(p: bytes, i: int) -> tuple[int, int] | None:
    """GNU sed's byte escapes at ``p[i]`` (just after the backslash): (byte, length) or None."""
    d = p[i]
    if d in _SED_SIMPLE:
        return _SED_SIMPLE[d], 1
    if d == 0x63 and i + 1 < len(p):  # \cX: upper-case X, then flip bit 6
        x = p[i + 1]
        if 0x61 <= x <= 0x7A:
            x -= 0x20
        return x ^ 0x40, 2
    spec = _SED_NUMERIC.get(d)
    if spec is None:
        return None
    digits, width, base = spec
    j = i + 1
    while j < len(p) and j - i - 1 < width and p[j] in digits:
        j += 1
    if j == i + 1:
        return None
    return int(p[i + 1 : j], base) & 0xFF, j - i


_SED_NUMERIC = {0x64: (b"0123456789", 3, 10), 0x6F: (b"01234567", 3, 8), 0x78: (b"0123456789abcdefABCDEF", 2, 16)}


# --------------------------------------------------------------------------
# Emission.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mode:
    lines: bool
    multiline: bool
    for_re2: bool


def _first_mask(node: _Node) -> int | None:
    """Bytes the node can start with when it must consume one; None if it may be empty."""
    if isinstance(node, _Set):
        return node.mask
    if isinstance(node, _Group):
        return _first_mask(node.body)
    if isinstance(node, _Repeat):
        return _first_mask(node.body) if node.lo > 0 else None
    if isinstance(node, _Cat):
        return _first_mask(node.items[0]) if node.items else None
    if isinstance(node, _Alt):
        acc = 0
        for b in node.branches:
            m = _first_mask(b)
            if m is None:
                return None
            acc |= m
        return acc
    return None


def _last_mask(node: _Node) -> int | None:
    if isinstance(node, _Set):
        return node.mask
    if isinstance(node, _Group):
        return _last_mask(node.body)
    if isinstance(node, _Repeat):
        return _last_mask(node.body) if node.lo > 0 else None
    if isinstance(node, _Cat):
        return _last_mask(node.items[-1]) if node.items else None
    if isinstance(node, _Alt):
        acc = 0
        for b in node.branches:
            m = _last_mask(b)
            if m is None:
                return None
            acc |= m
        return acc
    return None


class _Emitter:
    def __init__(self, mode: _Mode) -> None:
        self.mode = mode
        self.needs_lookaround = False

    def emit(self, node: _Node) -> str:
        m = self.mode
        if isinstance(node, _Set):
            mask = node.mask & ~_NL if m.lines else node.mask
            return _emit_set(mask)
        if isinstance(node, _Cat):
            out = []
            items = node.items
            for k, it in enumerate(items):
                if isinstance(it, _Anchor) and it.kind in ("wstart", "wend") and m.for_re2:
                    # re2 has only \b; it equals \< before a word byte, \> after one.
                    near = _first_mask(items[k + 1]) if it.kind == "wstart" and k + 1 < len(items) else None
                    if it.kind == "wend" and k > 0:
                        near = _last_mask(items[k - 1])
                    if near is not None and near and near & ~_WORD == 0:
                        out.append("\\b")
                        continue
                out.append(self.emit_atom(it))
            return "".join(out)
        return self.emit_atom(node)

    def emit_atom(self, node: _Node) -> str:
        m = self.mode
        if isinstance(node, (_Set, _Cat)):
            if isinstance(node, _Cat) and len(node.items) != 1:
                return "(?:" + self.emit(node) + ")" if node.items else ""
            return self.emit(node)
        if isinstance(node, _Alt):
            return "(?:" + "|".join(self.emit(b) for b in node.branches) + ")"
        if isinstance(node, _Group):
            return "(" + self.emit(node.body) + ")"
        if isinstance(node, _Repeat):
            inner = self.emit(node.body)
            if not isinstance(node.body, (_Set, _Group)):
                inner = "(?:" + inner + ")"
            if inner == "":
                inner = "(?:)"
            lo, hi = node.lo, node.hi
            if (lo, hi) == (0, None):
                op = "*"
            elif (lo, hi) == (1, None):
                op = "+"
            elif (lo, hi) == (0, 1):
                op = "?"
            elif hi is None:
                op = "{%d,}" % lo
            elif lo == hi:
                op = "{%d}" % lo
            else:
                op = "{%d,%d}" % (lo, hi)
            return inner + op
        if isinstance(node, _Backref):
            return "(?:\\%d)" % node.index
        if isinstance(node, _Anchor):
            k = node.kind
            eos = "\\z" if m.for_re2 else "\\Z"
            if k == "bol":
                return "^" if (m.lines or m.multiline) else "\\A"
            if k == "eol":
                return "$" if (m.lines or m.multiline) else eos
            if k == "bos":
                return "^" if m.lines else "\\A"
            if k == "eos":
                return "$" if m.lines else eos
            if k == "wordb":
                return "\\b"
            if k == "nwordb":
                return "\\B"
            self.needs_lookaround = True
            w = "[0-9A-Za-z_]"
            return f"\\b(?={w})" if k == "wstart" else f"\\b(?<={w})"
        raise AssertionError(node)  # pragma: no cover


# --------------------------------------------------------------------------
# Matches.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """One match: spans are byte offsets into ``string``; groups numbered as in the source."""

    string: bytes
    spans: tuple[tuple[int, int], ...]

    def span(self, i: int = 0) -> tuple[int, int]:
        """(-1, -1) for a group that did not take part in the match."""
        return self.spans[i]

    def start(self, i: int = 0) -> int:
        return self.spans[i][0]

    def end(self, i: int = 0) -> int:
        return self.spans[i][1]

    def group(self, i: int = 0) -> bytes | None:
        s, e = self.spans[i]
        return None if s < 0 else self.string[s:e]

    def __getitem__(self, i: int) -> bytes | None:
        return self.group(i)

    def groups(self) -> tuple[bytes | None, ...]:
        return tuple(self.group(i) for i in range(1, len(self.spans)))


# --------------------------------------------------------------------------
# sed replacements.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replacement:
    """A parsed sed RHS: literal bytes, group numbers and case-conversion ops.

    Pieces are ``bytes`` (literal), ``int`` (group, 0 = whole match) or one of
    the strings ``"U" "L" "E" "u" "l"``.  Parsed once per ``s`` command so the
    per-match work is a join.
    """

    pieces: tuple[Union[bytes, int, str], ...]
    max_group: int
    has_case: bool

    def expand(self, m: Match) -> bytes:
        if not self.has_case:
            out: list[bytes] = []
            for p in self.pieces:
                if type(p) is int:
                    g = m.group(p)
                    if g:
                        out.append(g)
                else:
                    assert isinstance(p, bytes)  # without case ops the pieces are bytes and ints
                    out.append(p)
            return b"".join(out)
        buf: list[bytes] = []
        mode = ""  # "", "U" or "L"
        once = ""  # "", "u" or "l"
        for p in self.pieces:
            if isinstance(p, str):
                if p in ("u", "l"):
                    once = p
                else:
                    mode = "" if p == "E" else p
                    if p == "E":
                        once = ""
                continue
            text = (m.group(p) or b"") if isinstance(p, int) else p
            if not text:
                continue
            if mode == "U":
                text = text.upper()
            elif mode == "L":
                text = text.lower()
            if once:
                head = text[:1].upper() if once == "u" else text[:1].lower()
                text = head + text[1:]
                once = ""
            buf.append(text)
        return b"".join(buf)


@functools.lru_cache(maxsize=256)
def parse_replacement(text: bytes, groups: int = 9) -> Replacement:
    """Parse sed's RHS: ``&``, ``\\&``, ``\\0``-``\\9``, ``\\n`` and friends, ``\\L \\U \\l \\u \\E``.

    *groups* is the number of groups in the regex: a reference beyond it is
    sed's "invalid reference \\N on `s' command's RHS".
    """
    if isinstance(text, str):
        text = text.encode()
    pieces: list[Union[bytes, int, str]] = []
    lit = bytearray()
    max_group = 0
    has_case = False
    i, n = 0, len(text)

    def flush() -> None:
        if lit:
            pieces.append(bytes(lit))
            lit.clear()

    while i < n:
        c = text[i]
        if c == 0x26:  # &
            flush()
            pieces.append(0)
            i += 1
            continue
        if c != 0x5C or i + 1 >= n:
            lit.append(c)
            i += 1
            continue
        d = text[i + 1]
        if 0x30 <= d <= 0x39:
            g = d - 0x30
            if g > groups:
                raise _err(f"invalid reference \\{g} on `s' command's RHS")
            flush()
            pieces.append(g)
            max_group = max(max_group, g)
            i += 2
            continue
        if d in b"ULEul":
            flush()
            pieces.append(chr(d))
            has_case = True
            i += 2
            continue
        if d == 0x0A:
            lit.append(10)
            i += 2
            continue
        got = _sed_escape(text, i + 1)
        if got is not None:
            lit.append(got[0])
            i += 1 + got[1]
            continue
        lit.append(d)
        i += 2
    flush()
    return Replacement(tuple(pieces), max_group, has_case)


# --------------------------------------------------------------------------
# The compiled regex.
# --------------------------------------------------------------------------


def _timeout_error() -> KernelError:
    return KernelError("ETIME", "regular expression took too long")


@dataclass(eq=False)
class PosixRegex:
    """A compiled POSIX regex.  Build with :func:`compile` (cached), not directly.

    ``engine`` is ``"re2"`` or ``"regex"``; ``compiled`` is the engine object and
    ``engine_pattern`` its pattern, for programs that want bulk calls.  Engine
    group ``g + group_offset`` is source group ``g``.
    """

    pattern: bytes
    extended: bool
    groups: int
    engine: str
    engine_pattern: bytes
    compiled: object
    timeout: float
    group_offset: int = 0
    lines: bool = False
    multiline: bool = False
    _raw: _RawMatch | None = field(default=None, repr=False)
    #: Set when the pattern is a plain byte string: searches use bytes.find.
    literal: bytes | None = None
    #: grep -w on re2: anchored matchers (after a non-word byte, at a line start, bare).
    _word_at: tuple[_RawMatch, ...] | None = field(default=None, repr=False)
    _exists: tuple[_RawMatch, _RawMatch] | None = field(default=None, repr=False)

    def _make_exists(self) -> tuple[_RawMatch, _RawMatch]:
        """Capture-free re2 matchers for :meth:`search_lines`: the pattern, and a run of lines holding it.

        Without captures re2 answers from its DFA alone; the run pattern lets
        one call cover many consecutive matching lines (dense grep output).
        """
        opts = _re2_options()
        opts.never_capture = True
        body = self.engine_pattern.decode("latin-1").removeprefix("(?m)")
        run = "(?m)(?:^[^\\n]*(?:" + body + ")[^\\n]*(?:\\n|\\z))+"
        self._exists = (
            re2.compile(self.engine_pattern, opts)._regexp.Match,
            re2.compile(run.encode("latin-1"), opts)._regexp.Match,
        )
        return self._exists

    # The primitive: one leftmost-longest search with optional anchoring.
    def _spans(self, data: bytes, pos: int, endpos: int | None, anchored: int) -> tuple[tuple[int, int], ...] | None:
        n = len(data)
        if endpos is None or endpos > n:
            endpos = n
        if pos < 0:
            pos = 0
        if pos > endpos:
            return None
        lit = self.literal
        if lit is not None:
            if anchored == 0:
                s = data.find(lit, pos, endpos)
                return None if s < 0 else ((s, s + len(lit)),)
            if not data.startswith(lit, pos, endpos) or (anchored == 2 and pos + len(lit) != endpos):
                return None
            return ((pos, pos + len(lit)),)
        off = self.group_offset
        if self.engine == "re2":
            text = data if endpos == n else memoryview(data)[:endpos]
            if off and anchored == 0:
                return self._word_spans(data, text, pos, endpos)
            assert self._raw is not None  # set for every re2 pattern
            spans = self._raw(_ANCHORS[anchored], text, pos, endpos)
            if spans[0][0] < 0:
                return None
            if off:
                return (spans[1],) + tuple(spans[2:])
            return tuple(spans)
        rx = self.compiled
        try:
            if anchored == 0:
                m = rx.search(data, pos, endpos, timeout=self.timeout)  # type: ignore[attr-defined]
            elif anchored == 1:
                m = rx.match(data, pos, endpos, timeout=self.timeout)  # type: ignore[attr-defined]
            else:
                m = rx.fullmatch(data, pos, endpos, timeout=self.timeout)  # type: ignore[attr-defined]
        except TimeoutError:
            raise _timeout_error() from None
        if m is None:
            return None
        return tuple(m.span(g) for g in range(self.groups + 1))

    def _word_spans(self, data: bytes, text: object, pos: int, endpos: int) -> tuple[tuple[int, int], ...] | None:
        """grep -w on re2, whose search pattern consumes the neighbouring bytes.

        That pattern finds where the first word-bounded match starts, up to
        two blind spots settled with anchored matches: a word may begin right
        at *pos* bounded by the byte before it (which the search cannot see),
        and at a line start the consumed-neighbour form may prefer a later
        start that gives a longer overall match.  Then, like GNU grep, take
        the longest match at that start whose end is also a word boundary.
        """
        assert self._word_at is not None and self._raw is not None  # set for re2 -w patterns
        after_nonword, at_bol, plain = self._word_at
        lines = self.lines or self.multiline
        start = -1
        if pos > 0:
            c = data[pos - 1]
            if not (_WORD >> c) & 1 and not (lines and c == 10):
                if after_nonword(_ANCHORS[1], text, pos - 1, endpos)[0][0] >= 0:
                    start = pos
        if start < 0:
            spans = self._raw(_ANCHORS[0], text, pos, endpos)
            s0 = spans[0][0]
            if s0 < 0:
                return None
            start = spans[1][0]
            if start == s0 + 1 and (s0 == 0 or (lines and data[s0 - 1] == 10)):
                if at_bol(_ANCHORS[1], text, s0, endpos)[0][0] >= 0:
                    start = s0
        limit = endpos
        while True:
            spans = plain(_ANCHORS[1], text, start, limit)
            end = spans[0][1]
            if spans[0][0] < 0 or end < 0:
                return None  # cannot happen: the wrapped pattern matched here
            if end == endpos or (lines and data[end] == 10) or not (_WORD >> data[end]) & 1:
                return tuple(spans)
            if end == start:
                return None
            limit = end - 1

    def search(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Match | None:
        """Leftmost-longest match at or after *pos*; text beyond *endpos* is ignored.

        ``^`` and ``\\b`` see the bytes before *pos* (sed's ``g`` relies on it).
        """
        spans = self._spans(data, pos, endpos, 0)
        return None if spans is None else Match(data, spans)

    def match(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Match | None:
        """Longest match starting exactly at *pos* (expr's implicit anchoring)."""
        spans = self._spans(data, pos, endpos, 1)
        return None if spans is None else Match(data, spans)

    def fullmatch(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Match | None:
        """A match covering all of ``data[pos:endpos]``."""
        spans = self._spans(data, pos, endpos, 2)
        return None if spans is None else Match(data, spans)

    def finditer(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Iterator[Match]:
        """Successive matches as GNU sed ``s///g`` and ``grep -o`` see them.

        An empty match is not allowed right where the previous match ended
        (``echo abc | sed 's/b*/-/g'`` is ``-a-c-``); after an empty match the
        search resumes one byte later.
        """
        for spans in self._iter_spans(data, pos, endpos):
            yield Match(data, spans)

    def _iter_spans(self, data: bytes, pos: int = 0,
                    endpos: int | None = None) -> Iterator[tuple[tuple[int, int], ...]]:
        n = len(data) if endpos is None else min(endpos, len(data))
        prev_end = -1
        find = self._spans
        while pos <= n:
            spans = find(data, pos, n, 0)
            if spans is None:
                return
            s, e = spans[0]
            if s == e:
                if s == prev_end:
                    pos = s + 1
                    continue
                pos = e + 1
            else:
                pos = e
            prev_end = e
            yield spans

    def count(self, data: bytes) -> int:
        """Number of matches :meth:`finditer` would yield."""
        return sum(1 for _ in self.finditer(data))

    def sub(
        self,
        repl: Union[bytes, Replacement, Callable[[Match], bytes]],
        data: bytes,
        *,
        nth: int = 1,
        all: bool = False,
    ) -> tuple[bytes, int]:
        """sed's ``s``: replace the *nth* match, and every later one when *all*.

        Returns (new data, number of replacements) so sed can set its ``t`` flag.
        ``s/x/y/`` is ``nth=1``; ``s/x/y/g`` is ``all=True``; ``s/x/y/3g`` is both.
        """
        if isinstance(repl, (bytes, bytearray, str)):
            repl = parse_replacement(bytes(repl) if not isinstance(repl, str) else repl.encode(), self.groups)
        lit = self.literal
        if lit and isinstance(repl, Replacement) and all and nth == 1:
            # Every match is the same bytes, so is every expansion: one bytes.replace.
            done = data.count(lit)
            if not done:
                return data, 0
            return data.replace(lit, repl.expand(Match(lit, ((0, len(lit)),) + ((-1, -1),) * self.groups))), done
        if (
            self.engine == "re2"
            and not self.group_offset
            and isinstance(repl, Replacement)
            and repl.max_group == 0
            and not repl.has_case
        ):
            return self._sub_whole_matches(repl, data, nth, all)
        expand = repl.expand if isinstance(repl, Replacement) else repl
        out: list[bytes] = []
        last = 0
        done = 0
        k = 0
        for spans in self._iter_spans(data):
            k += 1
            if k < nth:
                continue
            s, e = spans[0]
            out.append(data[last:s])
            out.append(expand(Match(data, spans)))
            last = e
            done += 1
            if not all:
                break
        if not done:
            return data, 0
        out.append(data[last:])
        return b"".join(out), done

    def _sub_whole_matches(self, repl: Replacement, data: bytes, nth: int, all: bool) -> tuple[bytes, int]:
        """:meth:`sub` when the RHS needs only ``&``: no groups, so re2 runs capture-free.

        The loop is :meth:`_iter_spans` inlined; at one match per line this is
        where sed spends its time.
        """
        raw = (self._exists or self._make_exists())[0]
        unanchored = _ANCHORS[0]
        pieces = repl.pieces
        const = b"".join(pieces) if 0 not in pieces else None  # type: ignore[arg-type]
        n = len(data)
        out: list[bytes] = []
        append = out.append
        pos = last = done = k = 0
        prev_end = -1
        while pos <= n:
            s, e = raw(unanchored, data, pos, n)[0]
            if s < 0:
                break
            if s == e:
                if s == prev_end:
                    pos = s + 1
                    continue
                pos = e + 1
            else:
                pos = e
            prev_end = e
            k += 1
            if k < nth:
                continue
            append(data[last:s])
            if const is not None:
                append(const)
            else:
                whole = data[s:e]
                for p in pieces:
                    append(whole if p == 0 else p)  # type: ignore[arg-type]
            last = e
            done += 1
            if not all:
                break
        if not done:
            return data, 0
        append(data[last:])
        return b"".join(out), done

    def search_lines(self, data: bytes, pos: int = 0) -> Iterator[tuple[int, int]]:
        """(start, end) of each newline-terminated line holding a match, searching in bulk.

        Needs ``lines=True`` so nothing matches across a newline; *end* excludes
        the newline.  This is grep's fast path: one engine call per matching
        line instead of one per line.
        """
        if not self.lines:
            raise ValueError("search_lines needs a regex compiled with lines=True")
        n = len(data)
        if self.engine in ("re2", "literal"):
            # Only where a match starts matters: a capture-free copy lets re2
            # answer from its DFA alone, and the loop avoids per-call wrappers.
            raw, run = self._exists or self._make_exists()
            unanchored, at_start = _ANCHORS[0], _ANCHORS[1]
            find = data.find
            rfind = data.rfind
            after_last = -1  # start of the line after the last one yielded
            lit = self.literal
            while pos <= n:
                s = find(lit, pos) if lit is not None else raw(unanchored, data, pos, n)[0][0]
                if s < 0 or (s == n and (n == 0 or data[n - 1] == 10)):
                    return
                ls = rfind(b"\n", 0, s) + 1
                if ls == after_last:
                    # Two matching lines in a row: take the whole run of
                    # matching lines in one anchored call, then split it.
                    e = run(at_start, data, ls, n)[0][1]
                    p = ls
                    while p < e:
                        q = find(b"\n", p, e)
                        if q < 0:
                            q = e
                        yield p, q
                        p = q + 1
                    pos = after_last = p
                    continue
                le = find(b"\n", s)
                if le < 0:
                    le = n
                yield ls, le
                pos = after_last = le + 1
            return
        while pos <= n:
            spans = self._spans(data, pos, n, 0)
            if spans is None:
                return
            s = spans[0][0]
            ls = data.rfind(b"\n", 0, s) + 1
            le = data.find(b"\n", s)
            if le < 0:
                le = n
            if s == n and (n == 0 or data[n - 1] == 10):
                return  # the empty "line" after a final newline is not a line
            yield ls, le
            pos = le + 1


_ANCHORS = (re2._re2.RE2.Anchor.UNANCHORED, re2._re2.RE2.Anchor.ANCHOR_START, re2._re2.RE2.Anchor.ANCHOR_BOTH)


def _re2_options() -> re2.Options:
    o = re2.Options()
    o.encoding = re2.Options.Encoding.LATIN1
    o.longest_match = True
    o.log_errors = False
    o.max_mem = 64 << 20
    return o


def compile(
    pattern: bytes | str,
    *,
    extended: bool = False,
    icase: bool = False,
    dialect: Dialect = "grep",
    lines: bool = False,
    multiline: bool = False,
    word: bool = False,
    whole: bool = False,
    fixed: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> PosixRegex:
    """Translate and compile a POSIX pattern (cached on all arguments).

    * *extended*: ERE (``grep -E``, ``sed -E``, awk, ``[[ =~ ]]``) instead of BRE.
    * *dialect*: whose GNU context rules apply: ``grep`` (also ``grep -E``'s
      forgiving ``{``), ``sed`` (strict, plus ``\\n``/``\\t``/``\\xHH`` escapes),
      ``posix`` (``regcomp``: bash, awk) or ``expr``.
    * *lines*: grep's view: the data is newline-separated lines, nothing in the
      pattern matches a newline and ``^``/``$`` match at line ends, so a whole
      buffer can be searched at once.  Without it ``.`` matches a newline
      (POSIX, sed's ``N``) and ``^``/``$`` are the buffer's ends.
    * *multiline*: POSIX ``REG_NEWLINE``, sed's ``M``: ``^``/``$`` also match
      around newlines and ``.`` and ``[^...]`` do not match one (``\\W``,
      ``[[:space:]]`` and sed's ``\\n`` still do).
    * *word*, *whole*: ``grep -w`` and ``grep -x``.  *fixed*: ``grep -F``.
    * *timeout*: seconds a backtracking search may run before ``ETIME``.

    A str pattern is encoded as UTF-8.  Errors raise ``KernelError("EINVAL", msg)``
    with GNU's message.
    """
    if isinstance(pattern, str):
        pattern = pattern.encode("utf-8", "surrogateescape")
    return _compile(bytes(pattern), extended, icase, dialect, lines, multiline, word, whole, fixed, float(timeout))


@functools.lru_cache(maxsize=512)
def _compile(
    pattern: bytes,
    extended: bool,
    icase: bool,
    dialect: str,
    lines: bool,
    multiline: bool,
    word: bool,
    whole: bool,
    fixed: bool,
    timeout: float,
) -> PosixRegex:
    syntax = _SYNTAX.get((dialect, extended))
    if syntax is None:
        raise ValueError(f"unknown dialect {dialect!r}")
    if fixed:
        info = _Info()
        tree: _Node = _Cat(tuple(_Set(_fold(1 << c) if icase else 1 << c) for c in pattern))
    else:
        parser = _Parser(pattern, extended, syntax, icase, hat_nl=multiline)
        tree = parser.parse()
        info = parser.info
    if _weight(tree) > _MAX_WEIGHT:
        raise _err(_E_SIZE)
    literal = _literal_of(tree) if not (word or whole) else None
    if literal and lines and b"\n" in literal:
        literal = None
    use_re2 = not info.backrefs and info.max_repeat <= _RE2_MAX_REPEAT
    if use_re2:
        em = _Emitter(_Mode(lines, multiline, True))
        body = em.emit(tree)
        if not em.needs_lookaround:
            text, offset, after_nonword = _wrap(body, lines, multiline, word, whole, True)
            try:
                rx = re2.compile(text.encode("latin-1"), _re2_options())
                word_at = after_nonword and tuple(
                    re2.compile(t.encode("latin-1"), _re2_options())._regexp.Match for t in after_nonword
                )
            except re2.error:
                pass  # e.g. too big for re2's memory budget: let the other engine try
            else:
                return PosixRegex(
                    pattern, extended, info.groups, "literal" if literal else "re2", text.encode("latin-1"),
                    rx, timeout, group_offset=offset, lines=lines, _raw=rx._regexp.Match, literal=literal,
                    _word_at=word_at or None, multiline=multiline,
                )
    em = _Emitter(_Mode(lines, multiline, False))
    body = em.emit(tree)
    text, offset, _ = _wrap(body, lines, multiline, word, whole, False)
    flags = _regex.POSIX | _regex.V0
    if icase:
        flags |= _regex.IGNORECASE  # only backreferences need it: sets are folded already
    try:
        rx2 = _regex.compile(text.encode("latin-1"), flags)
    except (_regex.error, OverflowError, RecursionError) as exc:
        raise _err(_E_SIZE) from exc
    return PosixRegex(
        pattern, extended, info.groups, "regex", text.encode("latin-1"), rx2, timeout, 0, lines, multiline
    )


#: Bound on a pattern's size with counted repetitions unrolled.  GNU accepts
#: a\{30000\}\{30000\} and then never finishes; the sandbox says "too big".
_MAX_WEIGHT = 1 << 21


def _weight(node: _Node) -> int:
    """Size of the pattern with every counted repetition written out."""
    if isinstance(node, _Repeat):
        return _weight(node.body) * max(1, node.lo, node.hi or 0) + 1
    if isinstance(node, _Group):
        return _weight(node.body) + 1
    if isinstance(node, (_Cat, _Alt)):
        items = node.items if isinstance(node, _Cat) else node.branches
        return sum(_weight(i) for i in items) + 1
    return 1


def _literal_of(tree: _Node) -> bytes | None:
    """The bytes a group-free, anchor-free, single-choice pattern stands for, else None."""
    items = tree.items if isinstance(tree, _Cat) else (tree,)
    out = bytearray()
    for it in items:
        if not isinstance(it, _Set) or not it.mask or it.mask & (it.mask - 1):
            return None
        out.append(it.mask.bit_length() - 1)
    return bytes(out) or None


def _wrap(body: str, lines: bool, multiline: bool, word: bool, whole: bool,
          for_re2: bool) -> tuple[str, int, tuple[str, str, str] | None]:
    """Add grep's -x/-w wrappers and the newline flag.

    Returns (pattern, group offset, None or for re2 -w the patterns to match
    anchored right after a non-word byte, at a line start, and bare).
    """
    ml = lines or multiline
    flag = "(?m)" if ml else ""
    bol = "^" if ml else "\\A"
    eol = "$" if ml else ("\\z" if for_re2 else "\\Z")
    offset = 0
    after_nonword = None
    if whole:
        body = f"{bol}(?:{body}){eol}"
    elif word:
        nonword = "[^0-9A-Za-z_\\n]" if lines else "[^0-9A-Za-z_]"
        if for_re2:
            # re2 has no look-around: consume the neighbours and report group 1.
            # The neighbour before a search's start is out of reach, hence the
            # second pattern, matched anchored one byte before the start.
            after_nonword = f"{flag}{nonword}({body})(?:{nonword}|{eol})"
            at_bol = f"{flag}({body})(?:{nonword}|{eol})"
            plain = f"{flag}{body}"
            body = f"(?:{bol}|{nonword})({body})(?:{nonword}|{eol})"
            offset = 1
        else:
            body = f"(?<![0-9A-Za-z_])(?:{body})(?![0-9A-Za-z_])"
    return flag + body, offset, (after_nonword, at_bol, plain) if after_nonword else None
