"""awk's values and their conversions.

A value is a ``float`` (a number), ``bytes`` (a string), a ``StrNum`` (a string that came from
input — fields, ``getline``, ``split``, ``ARGV``, ``ENVIRON``, ``-v`` — which compares as a
number when it looks like one: POSIX's "numeric string"), or ``UNINIT`` (never assigned: both
``""`` and 0).  Strings are bytes because awk works on bytes in the C locale.
"""

from __future__ import annotations

import math
import re
from typing import Any, Union


class StrNum(bytes):
    """A string from input: numeric in comparisons if it looks like a number."""

    __slots__ = ()


class Uninit(StrNum):
    """The value of a variable never assigned."""

    __slots__ = ()


UNINIT = Uninit(b"")
ONE, ZERO = 1.0, 0.0

Value = Union[float, bytes]


class AwkArray(dict[bytes, Any]):
    """An associative array; reading a missing element creates it, as in awk."""

    __slots__ = ()

    def __missing__(self, key: bytes) -> Any:
        self[key] = UNINIT
        return UNINIT


_PREFIX = re.compile(rb"[ \t\n\r\f\v]*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)")
_SPECIAL = re.compile(rb"[ \t\n\r\f\v]*([-+])(inf|nan)", re.I)


def to_num(v: Any) -> float:
    """The numeric value: the longest numeric prefix of a string, else 0."""
    if type(v) is float:
        return v
    try:
        if v.isdigit():
            return float(v)   # the common case, without the checks below
        f = float(v)
    except ValueError:
        m = _PREFIX.match(v)
        if m is None:
            m2 = _SPECIAL.match(v)
            return float(m2.group(1) + m2.group(2)) if m2 else 0.0
        return float(m.group(1))
    except (TypeError, AttributeError):
        if isinstance(v, AwkArray):
            raise AwkFatal("attempt to use array in a scalar context") from None
        raise
    if f - f == 0.0 and b"_" not in v:
        return f
    m = _PREFIX.match(v)
    if m is not None:
        return float(m.group(1))
    m2 = _SPECIAL.match(v)
    return float(m2.group(1) + m2.group(2)) if m2 else 0.0


def looks_numeric(v: bytes) -> bool:
    """POSIX's numeric string: blanks, a number, blanks (gawk: also ``+inf``/``-nan``)."""
    try:
        f = float(v)
    except ValueError:
        return False
    if f - f == 0.0:
        return b"_" not in v
    s = v.strip().lower()
    return s in (b"+inf", b"-inf", b"+nan", b"-nan")


class AwkFatal(Exception):
    """A run-time error: ``awk: cmd. line:N: fatal: ...`` and status 2."""


def fmt_num(f: float, fmt: bytes) -> bytes:
    """A number as a string: integral values as integers, others through *fmt* (CONVFMT/OFMT)."""
    if f.is_integer():
        return b"%d" % f
    if f != f:
        return b"-nan" if math.copysign(1.0, f) < 0 else b"+nan"
    if f - f != 0.0:
        return b"-inf" if f < 0 else b"+inf"
    if fmt == b"%.6g":
        return b"%.6g" % f
    from kernel.programs.awk.format import sprintf  # checks the user's format's widths
    return sprintf(fmt, [f], b"%.6g")


def is_num_for_compare(v: Any) -> bool:
    t = type(v)
    if t is float or t is Uninit:
        return True
    if t is StrNum:
        return looks_numeric(v)
    return False


def truth(v: Any) -> bool:
    """awk's truth: a number is true when non-zero, a string when non-empty."""
    t = type(v)
    if t is float:
        return v != 0.0
    if t is StrNum:
        if looks_numeric(v):
            return to_num(v) != 0.0
        return len(v) > 0
    return len(v) > 0
