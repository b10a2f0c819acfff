"""awk's lexer: program text (bytes) to tokens with line numbers.

Two things make awk's lexing context-sensitive, and both are settled here: a ``/`` starts a
regular expression unless the previous token ends an operand (then it divides), and a name
written right against ``(`` is a call of a user function (``FUNC_NAME``), which matters
because ``f (x)`` is a concatenation.  Newlines are tokens; the parser decides where they
are just white space.
"""

from __future__ import annotations

from dataclasses import dataclass

KEYWORDS = frozenset({
    "BEGIN", "END", "BEGINFILE", "ENDFILE", "function", "func", "if", "else", "while", "for", "do",
    "break", "continue", "next", "nextfile", "exit", "return", "delete", "in", "getline", "print",
    "printf", "switch", "case", "default",
})

BUILTINS = frozenset({
    "length", "substr", "index", "split", "sub", "gsub", "match", "sprintf", "sin", "cos", "atan2",
    "exp", "log", "sqrt", "int", "rand", "srand", "tolower", "toupper", "system", "close", "fflush",
    "gensub", "strftime", "systime", "mktime", "asort", "asorti", "and", "or", "xor", "lshift",
    "rshift", "compl", "strtonum", "isarray", "typeof",
})

# Longest first, so that ``**=`` wins over ``**`` and ``*``.
_PUNCT = sorted([
    "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!", ">", "<", "|", "?",
    ":", "~", "$", "=", "+=", "-=", "*=", "/=", "%=", "^=", "==", "<=", ">=", "!=", "++", "--",
    "&&", "||", ">>", "!~", "**", "**=", "|&",
], key=len, reverse=True)

#: After these a ``/`` divides; anywhere else it opens a regular expression.
_OPERAND_END = frozenset({"NAME", "NUMBER", "STRING", "ERE", "BUILTIN", ")", "]", "$", "++", "--"})

_ESCAPES = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord("\\"): 92, ord('"'): 34, ord("/"): 47,
            ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("v"): 11}


class AwkSyntaxError(Exception):
    """A program that does not parse: ``line`` and the one-line message."""

    def __init__(self, line: int, message: str, source: str = "cmd. line") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.source = source


@dataclass(slots=True)
class Token:
    kind: str       # NEWLINE EOF NUMBER STRING ERE NAME FUNC_NAME BUILTIN, a keyword, or punctuation
    value: object   # float for NUMBER, bytes for STRING/ERE, str for names
    line: int


def unescape(raw: bytes, regex: bool = False, warnings: list[str] | None = None) -> bytes:
    """Process awk's backslash escapes in a string (or, with *regex*, in a regex literal,
    where unknown escapes are kept for the regex engine)."""
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != 92 or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = raw[i + 1]
        if 48 <= d <= 55:
            j, v = i + 1, 0
            while j < n and j < i + 4 and 48 <= raw[j] <= 55:
                v = v * 8 + raw[j] - 48
                j += 1
            _put(out, v & 0xFF, regex)
            i = j
            continue
        if d == ord("x"):
            j, v = i + 2, 0
            while j < n and j < i + 4 and chr(raw[j]) in "0123456789abcdefABCDEF":
                v = v * 16 + int(chr(raw[j]), 16)
                j += 1
            if j > i + 2:
                _put(out, v, regex)
                i = j
                continue
        if regex:
            if d == ord("/"):
                out.append(47)
            elif d == ord("y"):
                out += b"\\b"         # gawk's word boundary is \y; posixre spells it \b
            elif d in _ESCAPES and d not in (92, 47, 34):
                out.append(_ESCAPES[d])
            elif d == 34:
                out.append(34)
            else:
                out += raw[i:i + 2]
            i += 2
            continue
        e = _ESCAPES.get(d)
        if warnings is not None and (e is None or d == 47):
            ch = chr(d)
            warnings.append(f"escape sequence `\\{ch}' treated as plain `{ch}'")
        out.append(e if e is not None else d)
        i += 2
    return bytes(out)


def _put(out: bytearray, v: int, regex: bool) -> None:
    if regex and chr(v) in "\\^$.[]|()*+?{}":
        out.append(92)
    out.append(v)


class Lexer:
    """Tokens of one program text, produced on demand (the parser looks one ahead)."""

    def __init__(self, text: bytes, source: str = "cmd. line") -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.source = source
        self.last = "NEWLINE"
        self.paren_depth = 0
        self.warnings: list[str] = []

    def error(self, msg: str) -> AwkSyntaxError:
        return AwkSyntaxError(self.line, msg, self.source)

    def tokens(self) -> list[Token]:
        out = []
        while True:
            t = self.next()
            out.append(t)
            if t.kind == "EOF":
                return out

    def next(self) -> Token:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c in (32, 9, 13):
                self.i += 1
            elif c == 92 and self.i + 1 < n and s[self.i + 1] == 10:
                self.i += 2
                self.line += 1
            elif c == 92 and s[self.i + 1:self.i + 3] == b"\r\n":
                self.i += 3
                self.line += 1
            elif c == 35:
                while self.i < n and s[self.i] != 10:
                    self.i += 1
            else:
                break
        if self.i >= n:
            return self._tok("EOF", None)
        c = s[self.i]
        if c == 10:
            self.i += 1
            tok = self._tok("NEWLINE", None)
            self.line += 1
            return tok
        if c == 34:
            return self._tok("STRING", self._string())
        if c == 47 and self.last not in _OPERAND_END:
            return self._tok("ERE", self._regex())
        if 48 <= c <= 57 or (c == 46 and self.i + 1 < n and 48 <= s[self.i + 1] <= 57):
            return self._tok("NUMBER", self._number())
        if c == 95 or 65 <= c <= 90 or 97 <= c <= 122:
            j = self.i
            while j < n and (s[j] == 95 or 48 <= s[j] <= 57 or 65 <= s[j] <= 90 or 97 <= s[j] <= 122):
                j += 1
            name = s[self.i:j].decode()
            self.i = j
            if name in KEYWORDS:
                return self._tok("function" if name == "func" else name, name)
            if name in BUILTINS:
                return self._tok("BUILTIN", name)
            if j < n and s[j] == 40:
                return self._tok("FUNC_NAME", name)
            return self._tok("NAME", name)
        text = s[self.i:self.i + 3].decode("latin-1")
        for p in _PUNCT:
            if text.startswith(p):
                self.i += len(p)
                if p == "**":
                    p = "^"
                elif p == "**=":
                    p = "^="
                return self._tok(p, p)
        raise self.error(f"invalid char '{chr(c)}' in expression")

    def _tok(self, kind: str, value: object) -> Token:
        self.last = kind
        return Token(kind, value, self.line)

    def _string(self) -> bytes:
        s, n = self.s, len(self.s)
        j = self.i + 1
        start = j
        while True:
            if j >= n or s[j] == 10:
                raise self.error("unterminated string")
            if s[j] == 92 and j + 1 < n:
                if s[j + 1] == 10:
                    self.line += 1
                j += 2
                continue
            if s[j] == 34:
                break
            j += 1
        raw = s[start:j].replace(b"\\\n", b"")
        self.i = j + 1
        return unescape(raw, warnings=self.warnings)

    def _regex(self) -> bytes:
        s, n = self.s, len(self.s)
        j = self.i + 1
        start = j
        in_bracket = False
        bracket_start = j
        while True:
            if j >= n or s[j] == 10:
                raise self.error("unterminated regexp")
            c = s[j]
            if c == 92 and j + 1 < n:
                j += 2
                continue
            if in_bracket:
                if c == 93 and j > bracket_start:
                    in_bracket = False
                j += 1
                continue
            if c == 91:
                in_bracket = True
                bracket_start = j + 1
                if j + 1 < n and s[j + 1] == 94:
                    bracket_start += 1
                j += 1
                continue
            if c == 47:
                break
            j += 1
        raw = s[start:j]
        self.i = j + 1
        return raw

    def _number(self) -> float:
        s, n = self.s, len(self.s)
        j = self.i
        if s[j] == 48 and j + 1 < n and s[j + 1] in (120, 88):
            k = j + 2
            while k < n and chr(s[k]) in "0123456789abcdefABCDEF":
                k += 1
            if k > j + 2:
                self.i = k
                return float(int(s[j + 2:k], 16))
        while j < n and 48 <= s[j] <= 57:
            j += 1
        if j < n and s[j] == 46:
            j += 1
            while j < n and 48 <= s[j] <= 57:
                j += 1
        if j < n and s[j] in (101, 69):
            k = j + 1
            if k < n and s[k] in (43, 45):
                k += 1
            if k < n and 48 <= s[k] <= 57:
                while k < n and 48 <= s[k] <= 57:
                    k += 1
                j = k
        text = s[self.i:j]
        self.i = j
        if len(text) > 1 and text[0] == 48 and text.isdigit() and not text.strip(b"01234567"):
            return float(int(text, 8))   # gawk reads 011 in a program as octal
        return float(text)
