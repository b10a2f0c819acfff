"""The shell's lexer: source characters to tokens whose words are already split into parts.

Shell lexing depends on where the parser is (``a=(1 2)`` is an array only
where an assignment may stand, ``((`` starts arithmetic only in command
position, ``=~`` takes a regex with parentheses), so the parser asks for one
token at a time and says what may come next; the lexer never runs ahead of
it.  Constructs that contain whole commands (``$(…)``, ``<(…)``) are parsed by
calling back into the parser on the *same* character stream, as bash does, so
here-documents inside ``$(…)`` and comments containing ``)`` behave as in
bash; backquote bodies (which need bash's backslash rules applied first) and
here-document bodies are parsed from a separate lexer over their text.

Runs of ordinary characters are taken with one regular expression each, which
keeps a 10 MB script at a few seconds; positions are computed from a table of
newline offsets only when a node is created.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kernel.shell import braces
from kernel.shell.ast import (
    DQ,
    SQ,
    ArithSub,
    ArrayElem,
    Assign,
    CmdSub,
    DollarSQ,
    Escaped,
    ExtGlob,
    Lit,
    Param,
    ProcSub,
    Redir,
    Tilde,
    Word,
    WordPart,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from kernel.shell.parser import Parser

__all__ = ["ShellSyntaxError", "IncompleteInput", "Token", "Lexer", "decode_ansi_c", "apply_tilde"]


class ShellSyntaxError(Exception):
    """A syntax error, worded as bash words it.

    ``str(err)`` is the message bash prints after ``bash: line N: `` (e.g.
    ``syntax error near unexpected token `fi'``); ``line``/``col`` locate it
    (1-based), ``token`` is the offending token text or None, and
    ``source_line`` the text of that line (bash prints it as a second line).
    """

    def __init__(self, message: str, line: int = 0, col: int = 0, token: str | None = None,
                 source_line: str = "") -> None:
        super().__init__(message, line, col, token)
        self.message = message
        self.line = line
        self.col = col
        self.token = token
        self.source_line = source_line

    def __str__(self) -> str:
        return self.message


class IncompleteInput(ShellSyntaxError):
    """The input ended inside a construct that more lines could complete (an
    open quote, ``if`` without ``fi``, a ``|`` at the end, a pending
    here-document in interactive mode): an interactive shell prompts with PS2."""


#: Operators, longest first so that one regex match takes the longest one.
_OPS_RE = re.compile(r";;&|;;|;&|;|&&|&>>|&>|&|\|\||\|&|\||<<<|<<-|<<|<&|<>|<\(|<|>>|>&|>\||>\(|>|\(|\)")
_BLANKS_RE = re.compile(r"(?:[ \t]|\\\n)+")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# "2>(cat)" is the word 2 and a process substitution, not a redirection.
_IONUM_RE = re.compile(r"[0-9]+(?=[<>](?!\())")
_IOVAR_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\[[^\]{}]*\])?)\}(?=[<>](?!\())")
_DIGITS_RE = re.compile(r"[0-9]+")
_SPECIAL = "@*#?$!-0123456789"

# Runs of characters with no meaning in each context.
_RUN_WORD = re.compile(r"[^ \t\n|&;()<>\\'\"`$]+")
_RUN_DQ = re.compile(r"[^\"\\`$]+")
_RUN_HEREDOC = re.compile(r"[^\\`$]+")
_RUN_ARITH = re.compile(r"[^()\[\];\\\"`$]+")
_RUN_SUBSCRIPT = re.compile(r"[^()\[\];\\\"'`$]+")
_RUN_REGEX = re.compile(r"[^ \t\n()\\'\"`$]+")
_RUN_ARG: dict[str, re.Pattern[str]] = {}

_EXTGLOB_OPS = "?*+@!"
_OP_START = frozenset(";&|<>()")
_DIGIT_CHARS = frozenset("0123456789")
#: Characters that end a word made of one run of ordinary characters.
_WORD_END = frozenset(" \t\n;&|)<>")


@dataclass(slots=True)
class Token:
    """One token.  ``kind`` is ``WORD``, ``OP`` (``text`` is the operator),
    ``NEWLINE``, ``EOF``, ``IONUM`` (``2`` of ``2>``), ``IOVAR`` (``text`` is
    the name of ``{name}>``), ``ARITH`` (``((…))``: ``word``) or ``ARITHFOR``
    (``((a;b;c))``: ``arith``).  For words, ``text`` is the raw source text."""

    kind: str
    text: str
    start: int
    end: int
    line: int
    col: int
    parts: list[WordPart] | None = None
    assign: Assign | None = None
    word: Word | None = None
    arith: tuple[Word | None, Word | None, Word | None] | None = None
    #: Names of the aliases this token came out of (no recursive expansion).
    alias_blocked: frozenset[str] = frozenset()
    #: Last token of an alias whose value ends in a blank: check the next word too.
    alias_space: bool = False

    @property
    def plain(self) -> bool:
        """True for an unquoted word made of literal text only (a reserved-word or alias candidate)."""
        p = self.parts
        return self.kind == "WORD" and p is not None and len(p) == 1 and type(p[0]) is Lit and p[0].text == self.text

    def describe(self) -> str:
        """The token as bash names it in ``near unexpected token `…'``."""
        if self.kind == "NEWLINE":
            return "newline"
        if self.kind == "EOF":
            return "end of file"
        return self.text


@dataclass(slots=True)
class _PendingHeredoc:
    redir: Redir
    delimiter: str
    quoted: bool
    strip_tabs: bool


def decode_ansi_c(text: str) -> str:
    """Decode the escapes of ``$'…'`` as bash does (``\\n``, ``\\x41``, ``\\u263a``, ``\\cA``…)."""
    out: list[str] = []
    i, n = 0, len(text)
    simple = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
              "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = text[i + 1]
        i += 2
        if d in simple:
            out.append(simple[d])
        elif d in "01234567":
            j = i - 1
            while j < n and j < i + 2 and text[j] in "01234567":
                j += 1
            out.append(chr(int(text[i - 1:j], 8) & 0xFF))
            i = j
        elif d in "xuU":
            limit = {"x": 2, "u": 4, "U": 8}[d]
            j = i
            while j < n and j < i + limit and text[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i:
                out.append("\\" + d)
            else:
                code = int(text[i:j], 16)
                out.append(chr(code) if code < 0x110000 else "\ufffd")
                i = j
        elif d == "c" and i < n:
            out.append(chr(ord(text[i].upper()) ^ 0x40) if text[i] != "?" else "\x7f")
            i += 1
        else:
            out.append("\\" + d)
    return "".join(out)


def _tilde_split(text: str, line: int, col: int, first: bool, after_colon: bool, last: bool) -> list[WordPart]:
    """Split a Lit's text into Lit and Tilde parts.  ``first``: the text starts
    the word; ``after_colon``: also after each ``:`` (assignment values);
    ``last``: nothing follows this Lit in the word."""
    out: list[WordPart] = []
    segments = text.split(":") if after_colon else [text]
    buf: list[str] = []
    for k, seg in enumerate(segments):
        if k:
            buf.append(":")
        at_start = first if k == 0 else True
        if at_start and seg.startswith("~"):
            slash = seg.find("/")
            if slash >= 0 or k < len(segments) - 1 or last:
                user = seg[1:slash] if slash >= 0 else seg[1:]
                if buf:
                    out.append(Lit("".join(buf), line=line, col=col))
                    buf = []
                out.append(Tilde(user, line=line, col=col))
                buf.append(seg[1 + len(user):])
                continue
        buf.append(seg)
    rest = "".join(buf)
    if rest:
        out.append(Lit(rest, line=line, col=col))
    return out


def apply_tilde(parts: list[WordPart], assign: bool) -> list[WordPart]:
    """Mark tilde prefixes: at the start of a word, and with ``assign`` also
    after each unquoted ``:`` (bash does this in assignment values).  A prefix
    that runs into a quoted or expanded part is not a tilde prefix."""
    if not parts:
        return parts
    if not assign:
        p = parts[0]
        if type(p) is not Lit or not p.text.startswith("~"):
            return parts
        return _tilde_split(p.text, p.line, p.col, True, False, len(parts) == 1) + parts[1:]
    out: list[WordPart] = []
    for i, p in enumerate(parts):
        if type(p) is Lit and "~" in p.text:
            out.extend(_tilde_split(p.text, p.line, p.col, i == 0, True, i == len(parts) - 1))
        else:
            out.append(p)
    return out


def _merge(parts: list[WordPart]) -> list[WordPart]:
    out: list[WordPart] = []
    for p in parts:
        if out and type(p) is Lit and type(out[-1]) is Lit:
            prev = out[-1]
            out[-1] = Lit(prev.text + p.text, line=prev.line, col=prev.col)
        else:
            out.append(p)
    return out


class Lexer:
    """Reads tokens from ``src`` for one :class:`~kernel.shell.parser.Parser`.

    ``line``/``col`` give the position of ``src[0]`` in the original source
    (sub-lexers over backquote bodies, here-documents and aliases use them).
    """

    def __init__(self, src: str, parser: "Parser", line: int = 1, col: int = 1) -> None:
        self.src = src
        self.n = len(src)
        self.pos = 0
        self.parser = parser
        self.base_line = line
        self.base_col = col
        self._nl = [m.start() for m in re.finditer("\n", src)]
        self.heredocs: list[_PendingHeredoc] = []
        self.extglob = parser.extglob
        #: Here-document bodies: a syntax error inside $(…) is kept in the
        #: CmdSub (bash reports it when the body is expanded), not raised.
        self.defer_errors = False

    # -- positions and errors -------------------------------------------------

    def where(self, pos: int) -> tuple[int, int]:
        """(line, col) of offset ``pos``."""
        k = bisect.bisect_left(self._nl, pos)
        if k == 0:
            return self.base_line, self.base_col + pos
        return self.base_line + k, pos - self._nl[k - 1]

    def line_text(self, pos: int) -> str:
        """The source line containing ``pos`` (for the second line of bash's message)."""
        start = self.src.rfind("\n", 0, pos) + 1
        end = self.src.find("\n", pos)
        return self.src[start:] if end < 0 else self.src[start:end]

    def error(self, message: str, pos: int, token: str | None = None, incomplete: bool = False) -> ShellSyntaxError:
        line, col = self.where(min(pos, self.n))
        cls = IncompleteInput if incomplete else ShellSyntaxError
        return cls(message, line, col, token, self.line_text(min(pos, self.n)))

    def eof_error(self, closer: str) -> ShellSyntaxError:
        return self.error(f"unexpected EOF while looking for matching `{closer}'", self.n, None, True)

    def _continued_at_end(self) -> None:
        """A backslash-newline ends the input: a script just ends there, an
        interactive shell asks for the continuation line."""
        if self.parser.interactive:
            raise self.error("syntax error: unexpected end of file", self.n, None, True)

    # -- tokens ---------------------------------------------------------------

    def next_token(self, assign_ok: bool = False, arith_ok: bool = False, arith_for: bool = False,
                   cond: bool = False) -> Token:
        """The next token.  ``assign_ok``: an assignment word may stand here;
        ``arith_ok``: ``((`` may start an arithmetic command; ``arith_for``:
        after ``for``; ``cond``: inside ``[[ ]]`` (no ``2>`` redirections)."""
        src = self.src
        pos = self.pos
        if pos < self.n and src[pos] in " \t\\":
            m = _BLANKS_RE.match(src, pos)
            if m:
                pos = m.end()
                if pos >= self.n and src.endswith("\\\n"):
                    self._continued_at_end()
        if pos < self.n and src[pos] == "#":
            end = src.find("\n", pos)
            pos = self.n if end < 0 else end
        self.pos = pos
        line, col = self.where(pos)
        if pos >= self.n:
            if self.heredocs:
                self._read_heredocs()
            return Token("EOF", "", pos, pos, line, col)
        c = src[pos]
        if c == "\n":
            self.pos = pos + 1
            if self.heredocs:
                self._read_heredocs()
            return Token("NEWLINE", "\n", pos, pos + 1, line, col)
        if c in _OP_START:
            if c == "(" and (arith_ok or arith_for) and src.startswith("((", pos) and self._is_arith(pos + 2):
                return self._arith_token(pos, line, col, arith_for)
            m = _OPS_RE.match(src, pos)
            if m and m.group() not in ("<(", ">("):
                self.pos = m.end()
                return Token("OP", m.group(), pos, self.pos, line, col)
        elif not cond and (c in _DIGIT_CHARS or c == "{"):
            m = _IONUM_RE.match(src, pos)
            if m:
                self.pos = m.end()
                return Token("IONUM", m.group(), pos, self.pos, line, col)
            m = _IOVAR_RE.match(src, pos)
            if m:
                self.pos = m.end()
                return Token("IOVAR", m.group(1), pos, self.pos, line, col)
        return self._word_token(pos, line, col, assign_ok)

    def _word_token(self, pos: int, line: int, col: int, assign_ok: bool) -> Token:
        assign = self._try_assign(pos) if assign_ok else None
        if assign is not None:
            parts = assign[1]
            tok = Token("WORD", self.src[pos:self.pos], pos, self.pos, line, col, parts, assign[0])
            return tok
        self.pos = pos
        parts = self.read_word_parts()
        return Token("WORD", self.src[pos:self.pos], pos, self.pos, line, col, parts)

    def _try_assign(self, start: int) -> tuple[Assign | None, list[WordPart]] | None:
        """Read ``name[=+]…`` or ``name[sub][+]=…`` at ``start``, or return None
        (leaving nothing consumed) if the word is not an assignment.  A word
        ``name[…]`` without ``=`` is read whole: (None, its parts)."""
        src = self.src
        m = _NAME_RE.match(src, start)
        if not m:
            return None
        i = m.end()
        if i >= self.n or src[i] not in "=+[":
            return None
        name = m.group()
        line, col = self.where(start)
        index: Word | None = None
        prefix: list[WordPart] = [Lit(name, line=line, col=col)]
        if src[i] == "[":
            # As bash does, take the subscript up to its "]" whatever it holds
            # (blanks, newlines); running out of input is incomplete input.
            self.pos = i + 1
            sub = self._read_arith_parts(bracket=True)
            bl, bc = self.where(i)
            index = Word(sub, line=bl, col=bc)
            prefix += [Lit("[", line=bl, col=bc)] + sub + [Lit("]", line=bl, col=bc)]
            i = self.pos + 1
            if not (src.startswith("+=", i) or src.startswith("=", i)):
                # not an assignment, but the bracketed text stays in the word
                self.pos = i
                return None, _merge(prefix + self.read_word_parts())
        append = src.startswith("+=", i)
        if not append and not src.startswith("=", i):
            self.pos = start
            return None
        i += 2 if append else 1
        prefix.append(Lit("+=" if append else "=", line=line, col=col))
        self.pos = i
        vl, vc = self.where(i)
        if i < self.n and src[i] == "(":
            elems = self._array_elems()
            a = Assign(name, None, index, elems, append, line=line, col=col)
            return a, [Lit(src[start:self.pos], line=line, col=col)]
        value_parts = self.read_word_parts()
        value = Word(apply_tilde(value_parts, True), line=vl, col=vc)
        a = Assign(name, value, index, None, append, line=line, col=col)
        return a, _merge(prefix + value_parts)

    def _array_elems(self) -> list[ArrayElem]:
        """Elements of ``( … )`` after ``name=``; ``self.pos`` is at ``(``."""
        src = self.src
        self.pos += 1
        elems: list[ArrayElem] = []
        while True:
            while self.pos < self.n:
                c = src[self.pos]
                if c in " \t\n":
                    self.pos += 1
                    if c == "\n" and self.heredocs:
                        self._read_heredocs()
                elif src.startswith("\\\n", self.pos):
                    self.pos += 2
                elif c == "#":
                    end = src.find("\n", self.pos)
                    self.pos = self.n if end < 0 else end
                else:
                    break
            if self.pos >= self.n:
                raise self.eof_error(")")
            c = src[self.pos]
            if c == ")":
                self.pos += 1
                return elems
            if c in "|&;<>(" and not src.startswith("<(", self.pos) and not src.startswith(">(", self.pos):
                m = _OPS_RE.match(src, self.pos)
                tok = m.group() if m else c
                raise self.error(f"syntax error near unexpected token `{tok}'", self.pos, tok)
            start = self.pos
            line, col = self.where(start)
            if c == "[":
                self.pos += 1
                try:
                    key = self._read_arith_parts(bracket=True)
                    ok = self.pos < self.n and src[self.pos] == "]"
                except ShellSyntaxError:
                    ok = False
                if ok:
                    j = self.pos + 1
                    append = src.startswith("+=", j)
                    if append or src.startswith("=", j):
                        self.pos = j + (2 if append else 1)
                        vl, vc = self.where(self.pos)
                        value = Word(apply_tilde(self.read_word_parts(), True), line=vl, col=vc)
                        elems.append(ArrayElem(value, Word(key, line=line, col=col + 1), append, line=line, col=col))
                        continue
                self.pos = start
            parts = self.read_word_parts()
            try:
                word = Word(braces.parse_braces(apply_tilde(parts, False)), line=line, col=col)
            except braces.BraceError as e:
                raise self.error(str(e), start) from None
            elems.append(ArrayElem(word, line=line, col=col))

    # -- arithmetic -----------------------------------------------------------

    def _is_arith(self, i: int) -> bool:
        """After ``((`` at ``i``: does the text close with ``))`` (arithmetic) or
        with ``) )`` / ``)x`` (nested subshells, as bash falls back to)?"""
        src, n = self.src, self.n
        depth = 0
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if c == "'":
                j = src.find("'", i + 1)
                if j < 0:
                    return True
                i = j + 1
                continue
            if c == '"':
                i += 1
                while i < n and src[i] != '"':
                    i += 2 if src[i] == "\\" else 1
                i += 1
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    return i + 1 < n and src[i + 1] == ")"
                depth -= 1
            i += 1
        return True

    def _after_balanced(self, i: int) -> int:
        """The offset after the ``)`` that closes a parenthesis opened just
        before ``i`` (quotes skipped), or -1 when the text ends first."""
        src, n = self.src, self.n
        depth = 0
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if c in "'\"":
                j = src.find(c, i + 1)
                if j < 0:
                    return -1
                i = j + 1
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    return i + 1
                depth -= 1
            i += 1
        return -1

    def _arith_token(self, pos: int, line: int, col: int, for_loop: bool) -> Token:
        self.pos = pos + 2
        if for_loop:
            exprs: list[Word | None] = []
            for k in range(3):
                el, ec = self.where(self.pos)
                parts = self._read_arith_parts(semicolon=k < 2)
                if self.pos >= self.n:
                    raise self.eof_error(")")
                c = self.src[self.pos]
                if k < 2 and c != ";" or k == 2 and c != ")":
                    raise self.error("syntax error: arithmetic expression required", self.pos, c)
                self.pos += 1
                exprs.append(Word(parts, line=el, col=ec) if any(_nonblank(p) for p in parts) else None)
            if self.pos >= self.n or self.src[self.pos] != ")":
                raise self.eof_error(")")
            self.pos += 1
            return Token("ARITHFOR", self.src[pos:self.pos], pos, self.pos, line, col,
                         arith=(exprs[0], exprs[1], exprs[2]))
        parts = self._read_arith_parts()
        if not self.src.startswith("))", self.pos):
            raise self.eof_error(")")
        self.pos += 2
        return Token("ARITH", self.src[pos:self.pos], pos, self.pos, line, col,
                     word=Word(parts, line=line, col=col + 2))

    def _read_arith_parts(self, semicolon: bool = False, bracket: bool = False) -> list[WordPart]:
        """Parts of an arithmetic expression up to the ``)`` (or ``]`` with
        ``bracket``, ``;`` with ``semicolon``) that closes it at depth 0.
        Quotes and backslashes act as inside double quotes."""
        src, n = self.src, self.n
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = self.pos
        depth = 0
        while True:
            m = (_RUN_SUBSCRIPT if bracket else _RUN_ARITH).match(src, self.pos)
            if m:
                if not buf:
                    bpos = self.pos
                buf.append(m.group())
                self.pos = m.end()
            if self.pos >= n:
                raise self.eof_error("]" if bracket else ")")
            c = src[self.pos]
            if c in ("[]" if bracket else "()"):
                # only the kind of bracket that closes the expression nests
                if c in "([":
                    depth += 1
                elif depth == 0:
                    break
                else:
                    depth -= 1
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if c == "'" and bracket:
                if buf:
                    line, col = self.where(bpos)
                    parts.append(Lit("".join(buf), line=line, col=col))
                    buf = []
                parts.append(self._single_quoted())
                continue
            if c in "()[];" and c != ";":
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if c == ";":
                if semicolon and depth == 0:
                    break
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if c == "\\":
                if src.startswith("\\\n", self.pos):
                    self.pos += 2
                    continue
                if not buf:
                    bpos = self.pos
                nxt = src[self.pos + 1:self.pos + 2]
                buf.append(nxt if nxt in '$`"\\' else "\\" + nxt)
                self.pos += 2
                continue
            part = self._double_quoted() if c == '"' else self._special(c, in_dq=True, arith=True)
            if part is None:
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if buf:
                line, col = self.where(bpos)
                parts.append(Lit("".join(buf), line=line, col=col))
                buf = []
            parts.append(part)
        if buf:
            line, col = self.where(bpos)
            parts.append(Lit("".join(buf), line=line, col=col))
        return parts

    # -- words ----------------------------------------------------------------

    def read_word_parts(self) -> list[WordPart]:
        """Parts of an unquoted word from ``self.pos`` to the next metacharacter."""
        src, n = self.src, self.n
        m = _RUN_WORD.match(src, self.pos)
        if m:
            end = m.end()
            if end >= n or (src[end] in _WORD_END and not (src[end] in "<>" and src.startswith("(", end + 1))):
                # the common case: one run of ordinary characters
                line, col = self.where(self.pos)
                self.pos = end
                return [Lit(m.group(), line=line, col=col)]
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = self.pos
        while True:
            m = _RUN_WORD.match(src, self.pos)
            if m:
                if not buf:
                    bpos = self.pos
                buf.append(m.group())
                self.pos = m.end()
            if self.pos >= n:
                break
            c = src[self.pos]
            part: WordPart | None
            if c == "(":
                if self.extglob and buf and buf[-1][-1:] in list(_EXTGLOB_OPS):
                    last = buf[-1]
                    buf[-1] = last[:-1]
                    start = self.pos - 1
                    part = self._extglob(start)
                else:
                    break
            elif c in "<>":
                if src.startswith("(", self.pos + 1):
                    part = self._procsub(c)
                else:
                    break
            elif c in " \t\n|&;)":
                break
            elif c == "\\":
                if src.startswith("\\\n", self.pos):
                    self.pos += 2
                    if self.pos >= n:
                        self._continued_at_end()
                    continue
                line, col = self.where(self.pos)
                if self.pos + 1 >= n:
                    # A lone backslash at the end of the input is literal.
                    part = Lit("\\", line=line, col=col)
                    self.pos += 1
                else:
                    part = Escaped(src[self.pos + 1], line=line, col=col)
                    self.pos += 2
            elif c == "'":
                part = self._single_quoted()
            elif c == '"':
                part = self._double_quoted()
            else:
                part = self._special(c, in_dq=False)
                if part is None:
                    if not buf:
                        bpos = self.pos
                    buf.append(c)
                    self.pos += 1
                    continue
            if buf and (len(buf) > 1 or buf[0]):
                line, col = self.where(bpos)
                parts.append(Lit("".join(buf), line=line, col=col))
            buf = []
            parts.append(part)
        if buf and "".join(buf):
            line, col = self.where(bpos)
            parts.append(Lit("".join(buf), line=line, col=col))
        return _merge(parts) if len(parts) > 1 else parts

    def read_regex_parts(self) -> tuple[list[WordPart], int, int, int]:
        """The right side of ``=~`` in ``[[ ]]``: everything up to a blank
        outside parentheses (``|`` and ``(…)`` are part of the regex).
        Returns (parts, start offset, line, col)."""
        src, n = self.src, self.n
        m = _BLANKS_RE.match(src, self.pos)
        if m:
            self.pos = m.end()
        start = self.pos
        sline, scol = self.where(start)
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = self.pos
        depth = 0
        while True:
            m = _RUN_REGEX.match(src, self.pos)
            if m:
                if not buf:
                    bpos = self.pos
                buf.append(m.group())
                self.pos = m.end()
            if self.pos >= n:
                break
            c = src[self.pos]
            part: WordPart | None
            if c in " \t\n":
                if depth == 0:
                    break
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if c in "()":
                if c == ")" and depth == 0:
                    break
                depth += 1 if c == "(" else -1
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if c == "\\":
                line, col = self.where(self.pos)
                if src.startswith("\\\n", self.pos):
                    self.pos += 2
                    continue
                part = Escaped(src[self.pos + 1:self.pos + 2], line=line, col=col)
                self.pos += 2
            elif c == "'":
                part = self._single_quoted()
            elif c == '"':
                part = self._double_quoted()
            else:
                part = self._special(c, in_dq=False)
                if part is None:
                    if not buf:
                        bpos = self.pos
                    buf.append(c)
                    self.pos += 1
                    continue
            if buf:
                line, col = self.where(bpos)
                parts.append(Lit("".join(buf), line=line, col=col))
                buf = []
            parts.append(part)
        if buf:
            line, col = self.where(bpos)
            parts.append(Lit("".join(buf), line=line, col=col))
        return _merge(parts), start, sline, scol

    def _extglob(self, start: int) -> ExtGlob:
        """``?(…)`` etc. starting at ``start`` (the operator character); the
        group is kept as raw text up to its balancing ``)``."""
        src, n = self.src, self.n
        i = start + 2
        depth = 0
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if c == "'":
                j = src.find("'", i + 1)
                if j < 0:
                    raise self.eof_error("'")
                i = j + 1
                continue
            if c == '"':
                i += 1
                while i < n and src[i] != '"':
                    i += 2 if src[i] == "\\" else 1
                i += 1
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            i += 1
        if i >= n:
            raise self.eof_error(")")
        self.pos = i + 1
        line, col = self.where(start)
        return ExtGlob(src[start:i + 1], line=line, col=col)

    def _single_quoted(self) -> SQ:
        start = self.pos
        end = self.src.find("'", start + 1)
        if end < 0:
            raise self.eof_error("'")
        self.pos = end + 1
        line, col = self.where(start)
        return SQ(self.src[start + 1:end], line=line, col=col)

    def _double_quoted(self) -> DQ:
        """``"…"`` at ``self.pos``."""
        src, n = self.src, self.n
        start = self.pos
        line, col = self.where(start)
        self.pos += 1
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = self.pos
        self.parser._enter(self, start)
        try:
            while True:
                m = _RUN_DQ.match(src, self.pos)
                if m:
                    if not buf:
                        bpos = self.pos
                    buf.append(m.group())
                    self.pos = m.end()
                if self.pos >= n:
                    raise self.eof_error('"')
                c = src[self.pos]
                if c == '"':
                    self.pos += 1
                    break
                if c == "\\":
                    nxt = src[self.pos + 1:self.pos + 2]
                    if nxt == "\n":
                        self.pos += 2
                        continue
                    if not buf:
                        bpos = self.pos
                    buf.append(nxt if nxt in '$`"\\' else "\\" + nxt)
                    self.pos += 2
                    continue
                part = self._special(c, in_dq=True)
                if part is None:
                    if not buf:
                        bpos = self.pos
                    buf.append(c)
                    self.pos += 1
                    continue
                if buf:
                    bl, bc = self.where(bpos)
                    parts.append(Lit("".join(buf), line=bl, col=bc))
                    buf = []
                parts.append(part)
        finally:
            self.parser._leave()
        if buf:
            bl, bc = self.where(bpos)
            parts.append(Lit("".join(buf), line=bl, col=bc))
        return DQ(parts, line=line, col=col)

    def _special(self, c: str, in_dq: bool, arith: bool = False) -> WordPart | None:
        """An expansion starting with ``$`` or a backquote at ``self.pos``, or
        None when the character is literal here."""
        if c == "`":
            return self._backquote(in_dq)
        if c != "$":
            return None
        src = self.src
        pos = self.pos
        nxt = src[pos + 1:pos + 2]
        line, col = self.where(pos)
        if nxt == "'" and not in_dq:
            end = pos + 2
            while True:
                j = src.find("'", end)
                if j < 0:
                    raise self.eof_error("'")
                k = j
                while k > pos + 2 and src[k - 1] == "\\":
                    k -= 1
                if (j - k) % 2 == 0:
                    break
                end = j + 1
            self.pos = j + 1
            return DollarSQ(decode_ansi_c(src[pos + 2:j]), line=line, col=col)
        if nxt == '"' and not in_dq:
            self.pos = pos + 1
            dq = self._double_quoted()
            dq.line, dq.col = line, col
            return dq
        if nxt == "(":
            if src.startswith("((", pos + 1) and self._is_arith(pos + 3):
                self.pos = pos + 3
                self.parser._enter(self, pos)
                try:
                    parts = self._read_arith_parts()
                finally:
                    self.parser._leave()
                if not src.startswith("))", self.pos):
                    raise self.eof_error(")")
                self.pos += 2
                return ArithSub(Word(parts, line=line, col=col + 3), line=line, col=col)
            self.pos = pos + 2
            # "$((" that is not arithmetic: bash keeps the text and parses it
            # only when it runs, so its syntax errors wait too.
            fallback = src.startswith("((", pos + 1)
            if not (self.defer_errors or fallback):
                body = self.parser._nested(self, pos)
                return CmdSub(body, False, line=line, col=col)
            try:
                body = self.parser._nested(self, pos)
            except ShellSyntaxError as e:
                if e.message == "maximum nesting depth exceeded":
                    raise
                # bash parses $(…) in a here-document only when expanding it
                end = self._after_balanced(pos + 2)
                if end < 0:
                    raise self.eof_error(")") from None
                self.pos = end
                from kernel.shell.ast import CommandList
                return CmdSub(CommandList([], line=line, col=col), False, e.message, line=line, col=col)
            return CmdSub(body, False, line=line, col=col)
        if nxt == "[":
            self.pos = pos + 2
            self.parser._enter(self, pos)
            try:
                parts = self._read_arith_parts(bracket=True)
            finally:
                self.parser._leave()
            self.pos += 1
            return ArithSub(Word(parts, line=line, col=col + 2), line=line, col=col)
        if nxt == "{":
            return self._braced_param(pos, in_dq)
        m = _NAME_RE.match(src, pos + 1)
        if m:
            self.pos = m.end()
            return Param(m.group(), line=line, col=col)
        if nxt and nxt in _SPECIAL:
            self.pos = pos + 2
            return Param(nxt, line=line, col=col)
        return None

    def _procsub(self, c: str) -> ProcSub:
        pos = self.pos
        line, col = self.where(pos)
        self.pos = pos + 2
        body = self.parser._nested(self, pos)
        return ProcSub(body, c, line=line, col=col)

    def _backquote(self, in_dq: bool) -> CmdSub:
        """```…```: remove the backslashes bash removes (before ``$ ` \\`` and,
        inside double quotes, ``"``), then parse the text as a script."""
        src, n = self.src, self.n
        start = self.pos
        line, col = self.where(start)
        i = start + 1
        out: list[str] = []
        specials = '$`\\"' if in_dq else "$`\\"
        while True:
            if i >= n:
                raise self.eof_error("`")
            c = src[i]
            if c == "`":
                break
            if c == "\\" and i + 1 < n:
                d = src[i + 1]
                if d in specials:
                    out.append(d)
                elif d == "\n":
                    pass
                else:
                    out.append("\\" + d)
                i += 2
                continue
            out.append(c)
            i += 1
        self.pos = i + 1
        try:
            body = self.parser._sub_source("".join(out), line, col + 1, self, start)
        except ShellSyntaxError as e:
            if e.message == "maximum nesting depth exceeded":
                raise
            from kernel.shell.ast import CommandList
            return CmdSub(CommandList([], line=line, col=col), True, e.message, line=line, col=col)
        return CmdSub(body, True, line=line, col=col)

    # -- ${…} -----------------------------------------------------------------

    def _braced_param(self, start: int, in_dq: bool) -> Param:
        self.parser._enter(self, start)
        try:
            return self._braced_param_inner(start, in_dq)
        finally:
            self.parser._leave()

    def _braced_param_inner(self, start: int, in_dq: bool) -> Param:
        src, n = self.src, self.n
        line, col = self.where(start)
        i = start + 2
        c = src[i:i + 1]
        length = indirect = False
        if c == "#" and src[i + 1:i + 2] in ("+", "=", "%") and src[i + 2:i + 3] == "}":
            return self._bad_param(start, line, col, in_dq)  # ${#+}: bash's "bad substitution"
        if c == "#" and i + 1 < n and src[i + 1] not in "}:" and (
                (src[i + 1] in _SPECIAL and (src[i + 1].isdigit() or src[i + 2:i + 3] == "}"))
                or src[i + 1].isalpha() or src[i + 1] == "_"):
            # ${#x} ${#1} ${#-}: a length; ${#-w} ${##x}: $# with an operator, as bash reads it
            length = True
            i += 1
        elif c == "!" and i + 1 < n and src[i + 1] not in "}:":
            indirect = True
            i += 1
        m = _NAME_RE.match(src, i)
        name: str
        if m:
            name = m.group()
            i = m.end()
        elif i < n and src[i].isdigit():
            m = _DIGITS_RE.match(src, i)
            assert m is not None
            name = m.group()
            i = m.end()
        elif i < n and src[i] in _SPECIAL:
            name = src[i]
            i += 1
        else:
            return self._bad_param(start, line, col, in_dq)
        subscript: Word | None = None
        if i < n and src[i] == "[" and m is not None and not name[0].isdigit():
            self.pos = i + 1
            sl, sc = self.where(self.pos)
            sub = self._read_arith_parts(bracket=True)
            subscript = Word(sub, line=sl, col=sc)
            i = self.pos + 1
        self.pos = i
        if i >= n:
            raise self.eof_error("}")
        c = src[i]
        param = Param(name, None, None, None, subscript, length, indirect, True, line=line, col=col)
        if c == "}":
            self.pos = i + 1
            if indirect and subscript is not None and _is_at_star(subscript):
                param.op, param.indirect = "keys", False
            return param
        if length:
            return self._bad_param(start, line, col, in_dq)
        if indirect and c in "*@" and src[i + 1:i + 2] == "}" and subscript is None:
            self.pos = i + 2
            param.op, param.indirect = "prefix" + c, False
            return param
        two = src[i:i + 2]
        if two in (":-", ":=", ":?", ":+"):
            self.pos = i + 2
            param.op = two
            param.arg = self._arg_word("}", in_dq, pattern=False, tilde=True)
        elif c in "-=?+":
            self.pos = i + 1
            param.op = c
            param.arg = self._arg_word("}", in_dq, pattern=False, tilde=True)
        elif c == ":":
            self.pos = i + 1
            param.op = ":"
            param.arg = self._arg_word(":}", in_dq, pattern=False)
            if src[self.pos] == ":":
                self.pos += 1
                param.arg2 = self._arg_word("}", in_dq, pattern=False)
        elif c in "#%":
            op = two if two in ("##", "%%") else c
            self.pos = i + len(op)
            param.op = op
            param.arg = self._arg_word("}", in_dq, pattern=True)
        elif c == "/":
            op = two if two in ("//", "/#", "/%") else "/"
            self.pos = i + len(op)
            param.op = op
            # a "/" right after the operator belongs to the pattern (${p////:} replaces "/")
            lead = src[self.pos] == "/" if self.pos < self.n else False
            if lead:
                self.pos += 1
            param.arg = self._arg_word("/}", in_dq, pattern=True)
            if lead:
                ll, lc = self.where(self.pos - 1)
                param.arg.parts.insert(0, Lit("/", line=ll, col=lc))
            if src[self.pos] == "/":
                self.pos += 1
                param.arg2 = self._arg_word("}", in_dq, pattern=False)
        elif c in "^,~":
            op = two if two in ("^^", ",,", "~~") else c
            self.pos = i + len(op)
            param.op = op
            arg = self._arg_word("}", in_dq, pattern=True)
            param.arg = arg if arg.parts else None
        elif c == "@" and i + 2 < n and src[i + 1].isalpha() and src[i + 2] == "}":
            self.pos = i + 2
            param.op = "@"
            al, ac = self.where(i + 1)
            param.arg = Word([Lit(src[i + 1], line=al, col=ac)], line=al, col=ac)
        else:
            return self._bad_param(start, line, col, in_dq)
        if self.pos >= n:
            raise self.eof_error("}")
        self.pos += 1  # the closing brace
        return param

    def _bad_param(self, start: int, line: int, col: int, in_dq: bool) -> Param:
        """A ``${…}`` bash accepts when parsing but rejects when expanding."""
        self.pos = start + 2
        self._arg_word("}", in_dq, pattern=False)
        self.pos += 1
        text = self.src[start + 2:self.pos - 1]
        return Param(text, "bad", Word([Lit(text, line=line, col=col)], line=line, col=col),
                     braced=True, line=line, col=col)

    def _arg_word(self, stops: str, in_dq: bool, pattern: bool, tilde: bool = False) -> Word:
        """The word inside ``${…}`` after an operator, up to the first unquoted
        character of ``stops`` (which always holds ``}``).  Inside double quotes single
        quotes are literal, except in patterns (as bash does)."""
        src, n = self.src, self.n
        rx = _RUN_ARG.get(stops)
        if rx is None:
            rx = _RUN_ARG[stops] = re.compile("[^{}<>\\\\'\"`$" + re.escape(stops) + "]+")
        wl, wc = self.where(self.pos)
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = self.pos
        while True:
            m = rx.match(src, self.pos)
            if m:
                if not buf:
                    bpos = self.pos
                buf.append(m.group())
                self.pos = m.end()
            if self.pos >= n:
                raise self.eof_error("}")
            c = src[self.pos]
            part: WordPart | None = None
            if c in stops:
                break
            if c == "{":
                # bash does not pair braces here: ${x:-{a}} is "{a" then "}"
                part = None
            elif c == "\\":
                nxt = src[self.pos + 1:self.pos + 2]
                if nxt == "\n":
                    self.pos += 2
                    continue
                if in_dq and nxt not in '$`"\\}' and not (nxt == "/" and "/" in stops):
                    part = None  # (but \/ escapes the pattern's end in "${p//\//_}" too)
                else:
                    line, col = self.where(self.pos)
                    if in_dq:
                        part = Lit(nxt, line=line, col=col)
                    else:
                        part = Escaped(nxt, line=line, col=col)
                    self.pos += 2
            elif c == "'" and (not in_dq or pattern):
                part = self._single_quoted()
            elif c in "<>" and not in_dq and src.startswith("(", self.pos + 1):
                part = self._procsub(c)
            elif c == '"':
                part = self._double_quoted()
            else:
                part = self._special(c, in_dq)
            if part is None:
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if buf:
                line, col = self.where(bpos)
                parts.append(Lit("".join(buf), line=line, col=col))
                buf = []
            parts.append(part)
        if buf:
            line, col = self.where(bpos)
            parts.append(Lit("".join(buf), line=line, col=col))
        parts = _merge(parts)
        if tilde and not in_dq:
            parts = apply_tilde(parts, False)
        return Word(parts, line=wl, col=wc)

    # -- here-documents -------------------------------------------------------

    def add_heredoc(self, redir: Redir, delimiter: str, quoted: bool, strip_tabs: bool) -> None:
        """Queue a here-document whose body starts after the next newline token."""
        self.heredocs.append(_PendingHeredoc(redir, delimiter, quoted, strip_tabs))

    def _read_heredocs(self) -> None:
        pending, self.heredocs = self.heredocs, []
        for hd in pending:
            self._read_heredoc(hd)

    def _read_heredoc(self, hd: _PendingHeredoc) -> None:
        src, n = self.src, self.n
        start = self.pos
        lines: list[str] = []
        found = False
        while self.pos < n:
            end = src.find("\n", self.pos)
            nl = end >= 0
            if not nl:
                end = n
            text = src[self.pos:end]
            self.pos = end + 1 if nl else n
            if not hd.quoted:
                # A backslash-newline joins lines before the delimiter is looked for.
                while nl and _odd_trailing_backslashes(text) and self.pos <= n:
                    end2 = src.find("\n", self.pos)
                    nl = end2 >= 0
                    if not nl:
                        end2 = n
                    text = text[:-1] + src[self.pos:end2]
                    self.pos = end2 + 1 if nl else n
            if hd.strip_tabs:
                text = text.lstrip("\t")
            if text == hd.delimiter:
                found = True
                break
            lines.append(text + "\n" if nl else text)
        if not found:
            msg = (f"here-document at line {hd.redir.line} delimited by end-of-file "
                   f"(wanted `{hd.delimiter}')")
            if self.parser.interactive:
                raise self.error(msg, n, None, True)
            self.parser.warnings.append(msg)
        body = "".join(lines)
        bl, bc = self.where(start)
        redir = hd.redir
        assert redir.heredoc is not None
        redir.heredoc.raw = body
        if hd.quoted:
            redir.heredoc.body = body
        else:
            redir.heredoc.body = self.parser._heredoc_word(body, bl, bc, self, start)

    def read_heredoc_parts(self) -> list[WordPart]:
        """Parts of an unquoted here-document body (this lexer's whole text):
        ``$`` expansions and backquotes; a backslash quotes only ``$ ` \\``."""
        src, n = self.src, self.n
        parts: list[WordPart] = []
        buf: list[str] = []
        bpos = 0
        while True:
            m = _RUN_HEREDOC.match(src, self.pos)
            if m:
                if not buf:
                    bpos = self.pos
                buf.append(m.group())
                self.pos = m.end()
            if self.pos >= n:
                break
            c = src[self.pos]
            if c == "\\":
                nxt = src[self.pos + 1:self.pos + 2]
                if not buf:
                    bpos = self.pos
                buf.append(nxt if nxt in "$`\\" else "\\" + nxt)
                self.pos += 2
                continue
            part = self._special(c, in_dq=True)
            if part is None:
                if not buf:
                    bpos = self.pos
                buf.append(c)
                self.pos += 1
                continue
            if buf:
                line, col = self.where(bpos)
                parts.append(Lit("".join(buf), line=line, col=col))
                buf = []
            parts.append(part)
        if buf:
            line, col = self.where(bpos)
            parts.append(Lit("".join(buf), line=line, col=col))
        return parts


def _odd_trailing_backslashes(text: str) -> bool:
    k = len(text) - len(text.rstrip("\\"))
    return k % 2 == 1


def _nonblank(p: WordPart) -> bool:
    return not (type(p) is Lit and not p.text.strip())


def _is_at_star(w: Word) -> bool:
    return len(w.parts) == 1 and type(w.parts[0]) is Lit and w.parts[0].text in ("@", "*")


def static_text(raw: str) -> tuple[str, bool]:
    """Quote removal on a here-document delimiter as written: the delimiter
    and whether any part of it was quoted (then the body is not expanded)."""
    out: list[str] = []
    quoted = False
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            quoted = True
            if raw[i + 1] != "\n":
                out.append(raw[i + 1])
            i += 2
        elif c == "'":
            quoted = True
            j = raw.find("'", i + 1)
            j = n if j < 0 else j
            out.append(raw[i + 1:j])
            i = j + 1
        elif c == "$" and raw.startswith("$'", i):
            quoted = True
            j = raw.find("'", i + 2)
            j = n if j < 0 else j
            out.append(decode_ansi_c(raw[i + 2:j]))
            i = j + 1
        elif c == '"' or c == "$" and raw.startswith('$"', i):
            quoted = True
            i += 1 if c == '"' else 2
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n and raw[i + 1] in '$`"\\':
                    out.append(raw[i + 1])
                    i += 2
                else:
                    out.append(raw[i])
                    i += 1
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), quoted
