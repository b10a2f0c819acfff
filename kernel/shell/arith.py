"""Bash arithmetic: ``$((…))``, ``((…))``, ``let``, indexed-array subscripts, ``declare -i``.

The text is parsed once into a small tree and compiled to a tree of closures;
:func:`compile_arith` caches the result by source text because loops evaluate
the same expression again and again.  Evaluation then costs a handful of Python
calls: ``x+i`` evaluates in about 1 us, and a whole ``x=$((x+i))`` loop step
with the string conversions around it in about 2 us (measured by
``tests/shell/test_arith.py::test_speed_of_a_loop_body``).

Bash evaluates *while* it parses, and a few of its observable behaviours come
from that; they are reproduced here on purpose:

* the error token in a message is the rest of the text from the token bash had
  just read (for ``/`` and ``%`` by zero: the text after the operator);
* a syntax error late in the text still lets the side effects before it happen
  (``x=5, 1+`` assigns ``x``): a parse error becomes a tree that runs the part
  parsed so far and then raises;
* the side that ``&&``, ``||`` or ``?:`` skips is still parsed and computed with
  every variable reading 0 and no assignments ("noeval"), so ``0 && 2**-1``
  fails with ``exponent less than 0`` while ``0 && 1/0`` does not.  That
  computation depends only on the text, so it is done once at compile time.

Numbers are signed 64-bit with wrap-around, as bash's ``intmax_t`` on Linux:
``/`` and ``%`` truncate toward zero and shift counts are taken modulo 64 (what
x86 does with the C shift bash performs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "MAX_NESTING",
    "MAX_RECURSION",
    "ArithError",
    "ArithVars",
    "SimpleVars",
    "compile_arith",
    "evaluate",
]

_MIN = -(1 << 63)
_MAX = (1 << 63) - 1
_MASK = (1 << 64) - 1

#: Parser recursion depth (one unit per nested parenthesis, unary operator or
#: right operand).  Each unit costs one to three Python frames at parse,
#: compile and evaluation time and the interpreter calling us is itself deep in
#: the stack, so this stays well under Python's default limit of 1000 frames.
MAX_NESTING = 250
#: Nested evaluations of variable values and subscripts (bash allows 1024; each
#: level costs several Python frames here).
MAX_RECURSION = 128


class ArithError(Exception):
    """An arithmetic error, worded as bash words it.

    ``str(err)`` is what bash prints after ``bash: line N: ``, e.g.
    ``1/0: division by 0 (error token is "0")``; ``reason`` is the bare
    message (``division by 0``), ``token`` the error token or None.
    """

    def __init__(self, reason: str, expression: str | None = None, token: str | None = None) -> None:
        super().__init__(reason, expression, token)
        self.reason = reason
        self.expression = expression
        self.token = token

    def __str__(self) -> str:
        if self.expression is None:
            return self.reason
        text = self.expression.lstrip(" \t")
        if self.token is None:
            return f"{text}: {self.reason}"
        return f'{text}: {self.reason} (error token is "{self.token}")'


class ArithVars(Protocol):
    """What the evaluator needs from the shell's variables.

    Values are strings (or None when unset); ``index`` is an ``int`` for an
    indexed array (already evaluated; may be negative, the shell resolves it)
    and the literal subscript text for an associative array.
    """

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def get_index(self, name: str, index: str | int) -> str | None: ...

    def set_index(self, name: str, index: str | int, value: str) -> None: ...

    def is_assoc(self, name: str) -> bool: ...


@dataclass
class SimpleVars:
    """A dict-backed :class:`ArithVars`, for tests and callers without a shell.

    A bare name on an array means element 0, as in bash; a negative index
    counts from the end, and one still below 0 reads as unset.
    """

    scalars: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, dict[int, str]] = field(default_factory=dict)
    assoc: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        if name in self.arrays:
            return self.arrays[name].get(0)
        if name in self.assoc:
            return self.assoc[name].get("0")
        return self.scalars.get(name)

    def set(self, name: str, value: str) -> None:
        if name in self.arrays:
            self.arrays[name][0] = value
        elif name in self.assoc:
            self.assoc[name]["0"] = value
        else:
            self.scalars[name] = value

    def _index(self, name: str, index: int) -> int | None:
        if index >= 0:
            return index
        arr = self.arrays.get(name)
        top = max(arr) + 1 if arr else 0
        return index + top if index + top >= 0 else None

    def get_index(self, name: str, index: str | int) -> str | None:
        if name in self.assoc:
            return self.assoc[name].get(str(index))
        i = self._index(name, int(index))
        if i is None:
            return None
        if name in self.arrays:
            return self.arrays[name].get(i)
        return self.scalars.get(name) if i == 0 else None

    def set_index(self, name: str, index: str | int, value: str) -> None:
        if name in self.assoc:
            self.assoc[name][str(index)] = value
            return
        i = self._index(name, int(index))
        if i is None:
            raise ArithError("bad array subscript", name)
        arr = self.arrays.get(name)
        if arr is None:
            arr = self.arrays[name] = {}
            if name in self.scalars:
                arr[0] = self.scalars.pop(name)
        arr[i] = value

    def is_assoc(self, name: str) -> bool:
        return name in self.assoc


def _wrap(n: int) -> int:
    """Reduce to signed 64 bits."""
    return ((n + (1 << 63)) & _MASK) - (1 << 63)


# ---------------------------------------------------------------------------
# Tokens.  Kinds are short strings; only the parser looks at them.

_EOF, _NUM, _STR = "EOF", "NUM", "STR"
_PREINC, _PREDEC, _POSTINC, _POSTDEC = "PREINC", "PREDEC", "POSTINC", "POSTDEC"
_OPASSIGN = "OP="
_START = "START"
# Single characters that are operators (bash's _is_arithop).
_ARITHOP_CHARS = set("=><+-*/%!()&|^~?:,")
# Two-character operators and the like (bash's _is_multiop); they, start of
# text and single operators make an unknown character "operand expected".
_MULTIOPS = {"==", "!=", "<=", ">=", "&&", "||", "<<", ">>", _OPASSIGN, "**", _PREINC, _PREDEC}
_WS = " \t\n"
_IDSTART = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDCHARS = _IDSTART | set("0123456789")
_DIGITS = set("0123456789")
_NUMCHARS = _IDCHARS | {"#", "@"}

# Infix binding powers (bash's precedence, lowest first).
_BP = {
    ",": 1,
    "=": 2,
    _OPASSIGN: 2,
    "?": 3,
    "||": 4,
    "&&": 5,
    "|": 6,
    "^": 7,
    "&": 8,
    "==": 9,
    "!=": 9,
    "<": 10,
    "<=": 10,
    ">": 10,
    ">=": 10,
    "<<": 11,
    ">>": 11,
    "+": 12,
    "-": 12,
    "*": 13,
    "/": 13,
    "%": 13,
    "**": 14,
}
_COND_BP = 3


# ---------------------------------------------------------------------------
# Tree.  Plain tuples keep the parser short; the first item is the tag.
#   ("num", value)
#   ("var", name, subscript_text | None, expression, token_pos)
#   ("neg"|"pos"|"not"|"bnot", child)
#   ("bin", op, left, right, (text, error_token_offset))
#   ("and"|"or", left, right)
#   ("cond", test, then, else)
#   ("assign", op | None, var, rhs, (text, offset))   op is e.g. "+" for +=
#   ("pre"|"post", delta, var)
#   ("comma", [items])
#   ("raise", (reason, expression, token))


class _Partial(Exception):
    """A parse error together with the tree of what bash had already evaluated."""

    def __init__(self, node: tuple) -> None:
        super().__init__()
        self.node = node


def _seq(*nodes: tuple | None) -> tuple:
    return ("comma", [n for n in nodes if n is not None])


def _strlong(tok: str) -> tuple[int | None, str | None]:
    """Bash's number reading: value, or the reason it is not a number."""
    val = 0
    base = 10
    found_base = False
    i = 0
    n = len(tok)
    if tok[0] == "0":
        i = 1
        if n == 1:
            return 0, None
        if tok[1] in "xX":
            base = 16
            i = 2
        else:
            base = 8
        found_base = True
    while i < n:
        c = tok[i]
        i += 1
        if c == "#":
            if found_base:
                return None, "invalid number"
            if val < 2 or val > 64:
                return None, "invalid arithmetic base"
            base = val
            val = 0
            found_base = True
            if i >= n or tok[i] not in _NUMCHARS or tok[i] == "#":
                return None, "invalid integer constant"
            continue
        if c in _DIGITS:
            d = ord(c) - 48
        elif "a" <= c <= "z":
            d = ord(c) - 87
        elif "A" <= c <= "Z":
            d = ord(c) - (55 if base <= 36 else 29)
        elif c == "@":
            d = 62
        else:  # "_"
            d = 63
        if d >= base:
            return None, "value too great for base"
        val = (val * base + d) & _MASK
    return _wrap(val), None


class _Parser:
    """Bash's expr.c grammar as a Pratt parser producing a tree."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.kind = _START  # current token (bash's curtok)
        self.prev = _START  # the one before (bash's lasttok)
        self.tokpos = 0  # start of the current token, or of the last one at EOF (bash's lasttp)
        self.value = 0
        self.name = ""
        self.sub: str | None = None
        self.assign_op = ""
        self.depth = 0

    # -- errors -------------------------------------------------------------
    def err(self, reason: str, token_pos: int | None = None) -> tuple:
        pos = self.tokpos if token_pos is None else token_pos
        return ("raise", (reason, self.s, self.s[pos:]))

    def fail(self, reason: str, token_pos: int | None = None) -> _Partial:
        return _Partial(self.err(reason, token_pos))

    # -- lexer (bash's readtok) ---------------------------------------------
    def advance(self) -> None:
        s = self.s
        n = len(s)
        p = self.pos
        while p < n and s[p] in _WS:
            p += 1
        if p >= n:
            self.prev, self.kind = self.kind, _EOF
            self.pos = p
            return
        self.tokpos = start = p
        c = s[p]
        if c in _IDSTART:
            p += 1
            while p < n and s[p] in _IDCHARS:
                p += 1
            self.name = s[start:p]
            self.sub = None
            if p < n and s[p] == "[":
                level = 0
                q = p
                while q < n:
                    if s[q] == "[":
                        level += 1
                    elif s[q] == "]":
                        level -= 1
                        if level == 0:
                            break
                    q += 1
                if q >= n:
                    raise self.fail("bad array subscript")
                self.sub = s[p + 1 : q]
                p = q + 1
            self.pos = p
            self.prev, self.kind = self.kind, _STR
            return
        if c in _DIGITS:
            p += 1
            while p < n and s[p] in _NUMCHARS:
                p += 1
            value, reason = _strlong(s[start:p])
            if value is None:  # bash names the expression up to the bad number, and the number
                raise _Partial(("raise", (reason or "invalid number", s[:p], s[start:p])))
            self.value = value
            self.pos = p
            self.prev, self.kind = self.kind, _NUM
            return
        c1 = s[p + 1] if p + 1 < n else ""
        p += 2  # most operators below are two characters
        two = c + c1
        if two in ("==", "!=", ">=", "<=", "&&", "||", "**"):
            kind = two
        elif two in ("<<", ">>"):
            if p < n and s[p] == "=":
                kind, self.assign_op = _OPASSIGN, two
                p += 1
            else:
                kind = two
        elif two in ("++", "--"):
            if self.kind == _STR:
                kind = _POSTINC if c == "+" else _POSTDEC
            elif self.kind == _NUM and self.prev in (_PREINC, _PREDEC):
                raise self.fail(f"{two}: assignment requires lvalue")
            else:
                q = p
                while q < n and s[q] in _WS:
                    q += 1
                if q < n and s[q] in _IDSTART:
                    kind = _PREINC if c == "+" else _PREDEC
                else:
                    kind, p = c, p - 1
        elif c1 == "=" and c in "*/%+-&^|":
            kind, self.assign_op = _OPASSIGN, c
        elif c not in _ARITHOP_CHARS:
            if self.kind in (_START, _EOF) or self.kind in _MULTIOPS or (
                len(self.kind) == 1 and self.kind in _ARITHOP_CHARS
            ):
                raise self.fail("syntax error: operand expected")
            raise self.fail("syntax error: invalid arithmetic operator")
        else:
            kind, p = c, p - 1
        self.pos = p
        self.prev, self.kind = self.kind, kind

    # -- grammar --------------------------------------------------------------
    def parse(self) -> tuple:
        try:
            self.advance()
            if self.kind == _EOF:
                return ("num", 0)
            node = self.expr(0)
            if self.kind != _EOF:
                return _seq(node, self.err("syntax error in expression"))
            return node
        except _Partial as p:
            return p.node

    def expr(self, min_bp: int) -> tuple:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail("expression recursion level exceeded")
        left = self.prefix()
        while True:
            kind = self.kind
            bp = _BP.get(kind)
            if bp is None or bp < min_bp:
                break
            if kind == ",":
                items = [left]
                try:
                    while self.kind == ",":
                        self.advance()
                        items.append(self.expr(2))
                except _Partial as p:
                    raise _Partial(_seq(*items, p.node)) from None
                left = ("comma", items)
            elif bp == 2:  # = and OP=
                if left[0] != "var":
                    raise _Partial(_seq(left, self.err("attempted assignment to non-variable")))
                op = None if kind == "=" else self.assign_op
                try:
                    self.advance()
                    rhs = self.expr(2)
                except _Partial as p:
                    raise _Partial(p.node if op is None else _seq(left, p.node)) from None
                left = ("assign", op, left, rhs, (self.s, self.tokpos))
            elif kind == "?":
                left = self.conditional(left)
            elif kind in ("&&", "||"):
                tag = "and" if kind == "&&" else "or"
                try:
                    self.advance()
                    right = self.expr(bp + 1)
                except _Partial as p:
                    raise _Partial((tag, left, p.node)) from None
                left = (tag, left, right)
            else:
                op_end = self.pos
                try:
                    self.advance()
                    right = self.expr(bp if kind == "**" else bp + 1)
                except _Partial as p:
                    raise _Partial(_seq(left, p.node)) from None
                if kind in ("/", "%"):  # bash names the text after the operator
                    while op_end < len(self.s) and self.s[op_end] in " \t":
                        op_end += 1
                    tok = (self.s, op_end)
                else:
                    tok = (self.s, self.tokpos)
                left = ("bin", kind, left, right, tok)
        self.depth -= 1
        return left

    def conditional(self, test: tuple) -> tuple:
        try:
            self.advance()
            if self.kind in (_EOF, ":"):
                raise self.fail("expression expected")
        except _Partial as p:
            raise _Partial(_seq(test, p.node)) from None
        try:
            then = self.expr(0)
        except _Partial as p:
            raise _Partial(("and", test, p.node)) from None
        if self.kind != ":":
            raise _Partial(("cond", test, then, self.err("`:' expected for conditional expression")))
        try:
            self.advance()
            if self.kind == _EOF:
                raise self.fail("expression expected")
            other = self.expr(_COND_BP)
        except _Partial as p:
            raise _Partial(("cond", test, then, p.node)) from None
        return ("cond", test, then, other)

    def prefix(self) -> tuple:
        kind = self.kind
        if kind in ("!", "~", "-", "+"):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail("expression recursion level exceeded")
            self.advance()
            child = self.prefix()
            self.depth -= 1
            if kind == "+":
                return ("pos", child)
            return ({"!": "not", "~": "bnot", "-": "neg"}[kind], child)
        if kind in (_PREINC, _PREDEC):
            self.advance()  # always an identifier: the lexer looked ahead
            var = self.var_node()
            self.kind = _NUM  # so that ++x++ and ++x=1 are errors, as in bash
            node = ("pre", 1 if kind == _PREINC else -1, var)
            try:
                self.advance()
            except _Partial as p:
                # bash lexes the next token once before the increment (a plain
                # lexing error comes first) and once after it (the lvalue error)
                if p.node[1][0].endswith("assignment requires lvalue"):
                    raise _Partial(_seq(node, p.node)) from None
                raise
            return node
        if kind == "(":
            try:
                self.advance()
                inner = self.expr(0)
            except _Partial as p:
                raise _Partial(p.node) from None
            if self.kind != ")":
                raise _Partial(_seq(inner, self.err("missing `)'")))
            try:
                self.advance()
            except _Partial as p:
                raise _Partial(_seq(inner, p.node)) from None
            # (a)=1 is no assignment: a parenthesized name is no longer an lvalue
            return ("pos", inner) if inner[0] == "var" else inner
        if kind == _NUM:
            num: tuple = ("num", self.value)
            self.advance()
            return num
        if kind == _STR:
            var = self.var_node()
            self.advance()  # bash's peek: a lexing error here comes before the read
            if self.kind in (_POSTINC, _POSTDEC):
                node = ("post", 1 if self.kind == _POSTINC else -1, var)
                self.kind = _NUM
                try:
                    self.advance()
                except _Partial as p:
                    raise _Partial(_seq(node, p.node)) from None
                return node
            return var
        raise self.fail("syntax error: operand expected")

    def var_node(self) -> tuple:
        return ("var", self.name, self.sub, self.s, self.tokpos)


# ---------------------------------------------------------------------------
# Noeval: what bash computes for a skipped operand (variables read 0).


def _noeval(node: tuple) -> int:
    tag = node[0]
    if tag == "num":
        return node[1]
    if tag == "var":
        return 0
    if tag == "neg":
        return _wrap(-_noeval(node[1]))
    if tag == "pos":
        return _noeval(node[1])
    if tag == "not":
        return int(not _noeval(node[1]))
    if tag == "bnot":
        return ~_noeval(node[1])
    if tag == "bin":
        spine = _left_spine(node)
        v = _noeval(spine[0][2])
        for n in spine:
            b = _noeval(n[3])
            if n[1] in ("/", "%") and b == 0:
                b = 1
            v = _BINOPS[n[1]](v, b, n[4])
        return v
    if tag == "and":
        a = _noeval(node[1])
        b = _noeval(node[2])
        return int(bool(a and b))
    if tag == "or":
        a = _noeval(node[1])
        b = _noeval(node[2])
        return int(bool(a or b))
    if tag == "cond":
        c = _noeval(node[1])
        a = _noeval(node[2])
        b = _noeval(node[3])
        return a if c else b
    if tag == "assign":
        v = _noeval(node[3])
        if node[1] is None:
            return v
        if node[1] in ("/", "%") and v == 0:
            v = 1
        return _BINOPS[node[1]](0, v, node[4])
    if tag == "pre":
        return node[1]
    if tag == "post":
        return 0
    if tag == "comma":
        v = 0
        for item in node[1]:
            v = _noeval(item)
        return v
    if tag == "raise":
        raise ArithError(*node[1])
    raise AssertionError(tag)


def _noeval_error(node: tuple) -> tuple | None:
    """The error bash raises while skipping *node*, if any (as ArithError args)."""
    try:
        _noeval(node)
    except ArithError as e:
        return (e.reason, e.expression, e.token)
    return None


# ---------------------------------------------------------------------------
# Operators on Python ints, already reduced to 64 bits.


def _div(a: int, b: int, tok: tuple[str, int]) -> int:
    if b == 0:
        raise ArithError("division by 0", None, tok[0][tok[1] :])
    q = abs(a) // abs(b)
    return _wrap(q if (a < 0) == (b < 0) else -q)


def _mod(a: int, b: int, tok: tuple[str, int]) -> int:
    if b == 0:
        raise ArithError("division by 0", None, tok[0][tok[1] :])
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _pow(a: int, b: int, tok: tuple[str, int]) -> int:
    if b == 0:
        return 1
    if b < 0:
        raise ArithError("exponent less than 0", None, tok[0][tok[1] :])
    return _wrap(pow(a, b, 1 << 64))


# The third argument locates the error token: (text, offset), sliced only on error.
_BINOPS: dict[str, Callable[[int, int, tuple[str, int]], int]] = {
    "+": lambda a, b, t: _wrap(a + b),
    "-": lambda a, b, t: _wrap(a - b),
    "*": lambda a, b, t: _wrap(a * b),
    "/": _div,
    "%": _mod,
    "**": _pow,
    "<<": lambda a, b, t: _wrap(a << (b & 63)),
    ">>": lambda a, b, t: a >> (b & 63),
    "<": lambda a, b, t: int(a < b),
    "<=": lambda a, b, t: int(a <= b),
    ">": lambda a, b, t: int(a > b),
    ">=": lambda a, b, t: int(a >= b),
    "==": lambda a, b, t: int(a == b),
    "!=": lambda a, b, t: int(a != b),
    "&": lambda a, b, t: a & b,
    "^": lambda a, b, t: a ^ b,
    "|": lambda a, b, t: a | b,
}
_ASSIGN_OPS = {k: _BINOPS[k] for k in ("+", "-", "*", "/", "%", "<<", ">>", "&", "^", "|")}


# ---------------------------------------------------------------------------
# Compilation to closures.

_Fn = Callable[[ArithVars], int]
_depth = [0]  # nested evaluations of values and subscripts (evaluation never yields)


def _value_to_int(text: str | None, ctx: ArithVars, expression: str, token_pos: int) -> int:
    """A variable's value as a number: itself an expression, evaluated in turn."""
    if not text:
        return 0
    if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1):
        n = int(text)
        return n if n <= _MAX else _wrap(n)
    if text[0] == "-" and text[1:2] != "0" and text[1:].isdigit() and text.isascii():
        n = -int(text[1:])
        return n if n >= _MIN else _wrap(n)
    if _depth[0] + 1 >= MAX_RECURSION:  # counted as bash does, top level included
        raise ArithError("expression recursion level exceeded", expression, expression[token_pos:])
    _depth[0] += 1
    try:
        return compile_arith(text)(ctx)
    finally:
        _depth[0] -= 1


def _subscript(sub: str, ctx: ArithVars, name: str) -> int:
    if not sub.strip(" \t\n"):
        raise ArithError("bad array subscript", f"{name}[{sub}]")
    if _depth[0] + 1 >= MAX_RECURSION:
        raise ArithError("expression recursion level exceeded", sub, sub)
    _depth[0] += 1
    try:
        return compile_arith(sub)(ctx)
    finally:
        _depth[0] -= 1


def _no_index(ctx: ArithVars) -> None:
    return None


def _index_fn(var: tuple) -> Callable[[ArithVars], Any]:
    """The index for an array element: literal key (assoc) or evaluated number."""
    _, name, sub, _expr, _pos = var
    if sub is None:
        return _no_index

    def index(ctx: ArithVars) -> str | int | None:
        if ctx.is_assoc(name):
            return sub
        return _subscript(sub, ctx, name)

    return index


def _reader(var: tuple) -> tuple[Callable, Callable]:
    """(read(ctx, idx) -> int, write(ctx, idx, value)) for a variable or element."""
    _, name, sub, expr, pos = var
    if sub is None:

        def read(ctx: ArithVars, idx: Any) -> int:
            return _value_to_int(ctx.get(name), ctx, expr, pos)

        def write(ctx: ArithVars, idx: Any, v: int) -> None:
            ctx.set(name, str(v))

    else:

        def read(ctx: ArithVars, idx: Any) -> int:
            return _value_to_int(ctx.get_index(name, idx), ctx, expr, pos)

        def write(ctx: ArithVars, idx: Any, v: int) -> None:
            ctx.set_index(name, idx, str(v))

    return read, write


def _raise_with(expression: str, fn: _Fn) -> _Fn:
    """Fill in the expression text of errors raised by an operator of this text."""

    def run(ctx: ArithVars) -> int:
        try:
            return fn(ctx)
        except ArithError as e:
            if e.expression is None:
                e.expression = expression
                e.args = (e.reason, expression, e.token)
            raise

    return run


def _compile(node: tuple) -> _Fn:
    tag = node[0]
    if tag == "num":
        v = node[1]
        return lambda ctx: v
    if tag == "var":
        _, name, sub, expr, pos = node
        if sub is None:
            return lambda ctx: _value_to_int(ctx.get(name), ctx, expr, pos)
        index = _index_fn(node)
        return lambda ctx: _value_to_int(ctx.get_index(name, index(ctx)), ctx, expr, pos)
    if tag == "neg":
        f = _compile(node[1])

        def neg(ctx: ArithVars) -> int:
            v = -f(ctx)
            return v if v <= _MAX else _MIN

        return neg
    if tag == "pos":
        return _compile(node[1])
    if tag == "not":
        f = _compile(node[1])
        return lambda ctx: 0 if f(ctx) else 1
    if tag == "bnot":
        f = _compile(node[1])
        return lambda ctx: ~f(ctx)
    if tag == "bin":
        return _compile_bin(node)
    if tag in ("and", "or"):
        a = _compile(node[1])
        b = _compile(node[2])
        skipped = _noeval_error(node[2])
        if tag == "and":

            def land(ctx: ArithVars) -> int:
                if a(ctx):
                    return 1 if b(ctx) else 0
                if skipped:
                    raise ArithError(*skipped)
                return 0

            return land

        def lor(ctx: ArithVars) -> int:
            if not a(ctx):
                return 1 if b(ctx) else 0
            if skipped:
                raise ArithError(*skipped)
            return 1

        return lor
    if tag == "cond":
        c = _compile(node[1])
        a = _compile(node[2])
        b = _compile(node[3])
        skip_a = _noeval_error(node[2])
        skip_b = _noeval_error(node[3])

        def cond(ctx: ArithVars) -> int:
            if c(ctx):
                v = a(ctx)
                if skip_b:
                    raise ArithError(*skip_b)
                return v
            if skip_a:
                raise ArithError(*skip_a)
            return b(ctx)

        return cond
    if tag == "assign":
        return _compile_assign(node)
    if tag in ("pre", "post"):
        delta, var = node[1], node[2]
        read, write = _reader(var)
        index = _index_fn(var)
        pre = tag == "pre"

        def incdec(ctx: ArithVars) -> int:
            idx = index(ctx)
            old = read(ctx, idx)
            new = _wrap(old + delta)
            write(ctx, idx, new)
            return new if pre else old

        return incdec
    if tag == "comma":
        fns = [_compile(n) for n in node[1]]

        def comma(ctx: ArithVars) -> int:
            v = 0
            for f in fns:
                v = f(ctx)
            return v

        return comma
    if tag == "raise":
        args = node[1]

        def fail(ctx: ArithVars) -> int:
            raise ArithError(*args)

        return fail
    raise AssertionError(tag)


def _left_spine(node: tuple) -> list[tuple]:
    """The chain of left-associative operators ending at *node*, innermost first.

    ``1+2+3+…`` nests to the left as deep as it is long; walking the chain in
    a loop keeps long sums from costing Python stack.
    """
    spine = [node]
    while node[2][0] == "bin" and node[2][1] != "**":
        node = node[2]
        spine.append(node)
    spine.reverse()
    return spine


def _compile_chain(spine: list[tuple]) -> _Fn:
    first = _compile(spine[0][2])
    steps = [(_BINOPS[n[1]], _compile(n[3]), n[4]) for n in spine]

    def chain(ctx: ArithVars) -> int:
        v = first(ctx)
        for fn, b, tok in steps:
            v = fn(v, b(ctx), tok)
        return v

    return chain


def _compile_bin(node: tuple) -> _Fn:
    _, op, ln, rn, tok = node
    if ln[0] == "bin" and op != "**":
        spine = _left_spine(node)
        if len(spine) > 8:
            return _compile_chain(spine)
    a = _compile(ln)
    b = _compile(rn)
    if op == "+":

        def add(ctx: ArithVars) -> int:
            v = a(ctx) + b(ctx)
            return v if _MIN <= v <= _MAX else _wrap(v)

        return add
    if op == "-":

        def sub(ctx: ArithVars) -> int:
            v = a(ctx) - b(ctx)
            return v if _MIN <= v <= _MAX else _wrap(v)

        return sub
    if op == "<":
        return lambda ctx: 1 if a(ctx) < b(ctx) else 0
    if op == "==":
        return lambda ctx: 1 if a(ctx) == b(ctx) else 0
    fn = _BINOPS[op]
    return lambda ctx: fn(a(ctx), b(ctx), tok)


def _compile_assign(node: tuple) -> _Fn:
    _, op, var, rhs_node, tok = node
    rhs = _compile(rhs_node)
    read, write = _reader(var)
    index = _index_fn(var)
    if op is None:

        def assign(ctx: ArithVars) -> int:
            v = rhs(ctx)
            write(ctx, index(ctx), v)  # bash evaluates the subscript after the value
            return v

        return assign
    fn = _ASSIGN_OPS[op]

    def update(ctx: ArithVars) -> int:
        idx = index(ctx)
        old = read(ctx, idx)
        v = fn(old, rhs(ctx), tok)
        write(ctx, idx, v)
        return v

    return update


@functools.lru_cache(maxsize=2048)
def compile_arith(expression: str) -> Callable[[ArithVars], int]:
    """Compile *expression* (already through the shell's expansions) to ``f(vars) -> int``.

    Never raises: a text with an error compiles to a function that performs
    what bash would have done before noticing it and then raises ArithError.
    """
    try:
        tree = _Parser(expression).parse()
        fn = _compile(tree)
    except RecursionError:
        args = ("expression recursion level exceeded", expression, expression.lstrip(" \t\n"))

        def too_deep(ctx: ArithVars) -> int:
            raise ArithError(*args)

        return too_deep
    if _needs_expression(tree):
        return _raise_with(expression, fn)
    return fn


def _needs_expression(tree: tuple) -> bool:
    """Whether some operator in *tree* can raise an error lacking its text."""
    stack = [tree]
    while stack:
        n = stack.pop()
        tag = n[0]
        if tag == "bin" and n[1] in ("/", "%", "**"):
            return True
        if tag == "assign" and n[1] in ("/", "%"):
            return True
        for item in n[1:]:
            if isinstance(item, tuple):
                stack.append(item)
            elif isinstance(item, list):
                stack.extend(item)
    return False


def evaluate(expression: str, variables: ArithVars) -> int:
    """Evaluate bash arithmetic *expression* against *variables*; raise ArithError."""
    try:
        return compile_arith(expression)(variables)
    except RecursionError:
        raise ArithError(
            "expression recursion level exceeded", expression, expression.lstrip(" \t\n")
        ) from None
