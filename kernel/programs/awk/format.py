"""printf/sprintf formatting, as C's printf with awk's conversions of the arguments.

Not shared with the ``printf`` program (text_bytes.py): that one takes its arguments as shell
words and reports bad numbers, where awk converts every value silently (``%d`` of ``"3abc"``
is 3, ``%c`` of 65 is ``A``).  A format is parsed once and cached; each conversion is then
one C-level ``bytes %`` call.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable

from kernel.programs.awk.values import AwkFatal, StrNum, looks_numeric, to_num

_SPEC = re.compile(rb"%([-+ #0']*)(\*|[0-9]+)?(?:\.(\*|[0-9]*))?(hh|h|ll|l|L|q|j|z|t)?(.?)", re.S)
#: Widths and precisions past this are refused: a format must not allocate gigabytes.
MAX_WIDTH = 1 << 24

Piece = "bytes | tuple[bytes, bytes | None, bytes | None, str]"


@functools.lru_cache(maxsize=256)
def _parse(fmt: bytes) -> tuple[Any, ...]:
    out: list[Any] = []
    i, n = 0, len(fmt)
    lit = bytearray()
    while i < n:
        j = fmt.find(b"%", i)
        if j < 0:
            lit += fmt[i:]
            break
        lit += fmt[i:j]
        m = _SPEC.match(fmt, j)
        assert m is not None
        flags, width, prec, _len, conv = m.groups()
        c = conv.decode("latin-1")
        if c == "%":
            lit += b"%"
        elif c and c in "diouxXcseEfFgGaA":
            if lit:
                out.append(bytes(lit))
                lit = bytearray()
            out.append((flags.replace(b"'", b""), width, prec, c))
        else:
            lit += fmt[j:m.end()]   # not a conversion: printed as written (gawk does the same)
        i = m.end()
    if lit:
        out.append(bytes(lit))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _parse_fast(fmt: bytes) -> tuple[bytes, str] | None:
    """The whole format as one Python ``bytes %`` format and the kind of each argument
    (``s`` string, ``d`` integer, ``u`` unsigned integer, ``f`` float, ``c`` character), or None
    when a conversion needs the general path (``*``, ``%#o``, ``%0.Nd``)."""
    out = []
    kinds = []
    for p in _parse(fmt):
        if type(p) is bytes:
            out.append(p.replace(b"%", b"%%"))
            continue
        flags, width, prec, c = p
        if width == b"*" or prec == b"*" or (c in "diouxX" and (prec is not None or b"#" in flags)) or (
                c in "ouxX" and (b"+" in flags or b" " in flags)) or (
                width and int(width) > MAX_WIDTH) or (prec and int(prec) > MAX_WIDTH):
            return None   # the general path (which also refuses widths past MAX_WIDTH)
        spec = b"%" + flags + (width or b"") + (b"." + prec if prec is not None else b"")
        if c == "c":
            out.append(b"%" + flags.replace(b"0", b"") + (width or b"") + b"s")
            kinds.append("c")
        elif c == "s":
            out.append(spec + b"s")
            kinds.append("s")
        elif c in "di":
            out.append(spec + b"d")
            kinds.append("d")
        elif c == "u":
            out.append(spec + b"d")
            kinds.append("u")
        elif c in "oxX":
            out.append(spec + c.encode())
            kinds.append("u")
        else:
            out.append(spec + (c.encode() if c not in "aA" else b"e"))
            kinds.append("f")
    return b"".join(out), "".join(kinds)


def sprintf(fmt: bytes, args: list[Any], convfmt: bytes, tostr: Callable[[Any], bytes] | None = None) -> bytes:
    """``sprintf(fmt, args...)``; *tostr* converts a number for ``%s`` (CONVFMT)."""
    fast = _parse_fast(fmt)
    if fast is not None and len(args) >= len(fast[1]):
        vals: list[Any] = []
        for kind, v in zip(fast[1], args):
            if kind == "s":
                if type(v) is float:
                    v = tostr(v) if tostr else (b"%d" % v if v.is_integer() else b"%.6g" % v)
                vals.append(v)
                continue
            if kind == "c":
                if type(v) is StrNum and looks_numeric(v):
                    v = to_num(v)   # "65" from input is a number: %c gives "A"
                if type(v) is float:
                    vals.append(bytes([int(v) & 0xFF]) if v - v == 0.0 else b"\0")
                else:
                    vals.append(bytes(v[:1]))
                continue
            f = v if type(v) is float else to_num(v)
            if f - f != 0.0:
                break          # inf/nan: gawk's spelling, on the general path
            if kind == "f":
                vals.append(f)
            elif kind == "d":
                vals.append(int(f))
            else:
                iv = int(f)
                vals.append(iv & ((1 << 64) - 1) if iv < 0 else iv)
        else:
            return fast[0] % tuple(vals)
    pieces = _parse(fmt)
    out: list[bytes] = []
    k = 0
    nargs = len(args)
    for p in pieces:
        if type(p) is bytes:
            out.append(p)
            continue
        flags, width, prec, c = p
        if width == b"*":
            if k >= nargs:
                raise AwkFatal("not enough arguments to satisfy format string")
            w = int(to_num(args[k]))
            k += 1
            if w < 0:
                flags += b"-"
                w = -w
            width = str(w).encode()
        if prec == b"*":
            if k >= nargs:
                raise AwkFatal("not enough arguments to satisfy format string")
            pv = int(to_num(args[k]))
            k += 1
            prec = str(pv).encode() if pv >= 0 else None
        if (width and int(width) > MAX_WIDTH) or (prec and int(prec) > MAX_WIDTH):
            raise AwkFatal("format width or precision too large")
        if k >= nargs:
            raise AwkFatal("not enough arguments to satisfy format string")
        v = args[k]
        k += 1
        spec = b"%" + flags + (width or b"") + (b"." + prec if prec is not None else b"")
        out.append(_one(spec, flags, width, prec, c, v, tostr))
    return b"".join(out)


def _one(spec: bytes, flags: bytes, width: bytes | None, prec: bytes | None, c: str, v: Any,
         tostr: Callable[[Any], bytes] | None) -> bytes:
    if c == "s":
        if type(v) is float:
            s = tostr(v) if tostr else (b"%d" % v if v.is_integer() else b"%.6g" % v)
        else:
            s = bytes(v)
        return (spec + b"s") % s
    if c == "c":
        if type(v) is StrNum and looks_numeric(v):
            v = to_num(v)
        if type(v) is float:
            code = int(v) if v - v == 0.0 else 0
            ch = bytes([code & 0xFF])   # the C locale: one byte
        else:
            ch = bytes(v[:1])
        return (b"%" + flags.replace(b"0", b"") + (width or b"") + b"s") % ch
    f = to_num(v)
    if c in "diouxX":
        if f - f != 0.0:
            return _nonfinite(f, flags, width)
        iv = int(f)
        if c in "ouxX" and iv < 0:
            iv &= (1 << 64) - 1
        return _c_int(flags, width, prec, c, iv, f == 0.0)
    if f - f != 0.0:
        return _nonfinite(f, flags, width)
    conv = c.encode() if c not in "aA" else b"e"
    return (spec + conv) % f


def _c_int(flags: bytes, width: bytes | None, prec: bytes | None, c: str, iv: int, zero: bool) -> bytes:
    """C's printf for an integer conversion: + and space only for signed ones, precision as
    a minimum of digits (0 of 0 prints none), # as 0 / 0x (not for zero), 0 padding unless a
    precision is given.  gawk drops the digit only for an exact zero (0.5 still prints 0)."""
    neg = iv < 0
    mag = -iv if neg else iv
    if c in "di":
        digits = b"%d" % mag
        sign = b"-" if neg else b"+" if b"+" in flags else b" " if b" " in flags else b""
    else:
        digits = (b"%o" if c == "o" else b"%x" if c == "x" else b"%X" if c == "X" else b"%d") % mag
        sign = b""
    prefix = b""
    alt_octal = b"#" in flags and c == "o" and not digits.startswith(b"0")   # (before padding: gawk)
    if prec is not None:
        p = int(prec or b"0")
        if p == 0 and zero:
            digits = b""
        digits = digits.rjust(p, b"0")
    if alt_octal:
        digits = b"0" + digits
    elif b"#" in flags and c in "xX" and mag != 0:
        prefix = b"0x" if c == "x" else b"0X"
    body = sign + prefix + digits
    w = int(width) if width else 0
    if len(body) < w:
        if b"-" in flags:
            body = body.ljust(w)
        elif b"0" in flags and prec is None:
            body = sign + prefix + digits.rjust(w - len(sign) - len(prefix), b"0")
        else:
            body = body.rjust(w)
    return body


def _nonfinite(f: float, flags: bytes, width: bytes | None) -> bytes:
    """inf and nan as gawk prints them for any numeric conversion."""
    if f != f:
        text = b"-nan" if math.copysign(1.0, f) < 0 else b"+nan"
    else:
        text = b"-inf" if f < 0 else b"+inf"
    return text   # gawk prints these whatever the width
