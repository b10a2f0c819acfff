"""awk's built-in functions that do no I/O (string, regex, math, time, bits, sorting).

``make_builtins(rt)`` returns them as closures over one run (its CONVFMT, RSTART, random
state), under the names the compiled code calls.  Regular expressions come from
``runtime.awk_regex`` (posixre), so a pathological one hits posixre's limits.
"""

from __future__ import annotations

import math
import time
from datetime import timezone
from typing import Any, Callable

from kernel.programs import posixre
from kernel.programs.awk.format import sprintf
from kernel.programs.awk.runtime import EMPTY, Runtime, _split_default, awk_regex, regex_split
from kernel.programs.awk.values import UNINIT, AwkArray, AwkFatal, StrNum, Uninit, looks_numeric, to_num
from kernel.programs.system_datefmt import Moment, Zone, epoch_of, format_time, zone_named

_MAX_STRING = 1 << 28


def make_builtins(rt: Runtime) -> dict[str, Any]:
    s: Callable[[Any], bytes] = rt.ns["_s"]
    rx_cache: dict[bytes, posixre.PosixRegex] = {}

    def dre(v: Any) -> posixre.PosixRegex:
        """A dynamic regex: a string value used where a regex goes."""
        if isinstance(v, posixre.PosixRegex):
            return v
        src = s(v)
        rx = rx_cache.get(src)
        if rx is None:
            if len(rx_cache) > 500:
                rx_cache.clear()
            rx = rx_cache[src] = awk_regex(src)
        return rx

    def dmatch(subject: bytes, rx: Any) -> bool:
        return dre(rx).search(subject) is not None

    def b_length(v: Any) -> float:
        if isinstance(v, AwkArray):
            return float(len(v))
        return float(len(s(v)))

    def b_substr(v: Any, m: Any, n: Any = None) -> bytes:
        text = s(v)
        start = to_num(m)
        if start != start:
            return b""
        start_i = int(start) if start - start == 0.0 else (1 << 62 if start > 0 else -(1 << 62))
        if n is None:
            return text[max(start_i, 1) - 1:]
        ln = to_num(n)
        if ln != ln or ln <= 0:
            return b""
        ln_i = int(ln) if ln - ln == 0.0 else 1 << 62
        if start_i < 1:
            start_i = 1
        return text[start_i - 1:start_i - 1 + ln_i]

    def b_index(v: Any, t: Any) -> float:
        return float(s(v).find(s(t)) + 1)

    def b_split(v: Any, arr: AwkArray, fs: Any = None, seps: AwkArray | None = None) -> float:
        text = s(v)
        if fs is None:
            # FS as it splits strings: RS=""'s extra newline separator is for records only
            if rt.fs_default:
                pieces = _split_default(text)     # (rt.splitter may stop after the fields used)
            elif rt.rs_mode != "para":
                pieces = rt.splitter(text)
            else:
                pieces = rt.make_splitter(s(rt.FS), False)(text)
            seplist = None
        elif isinstance(fs, posixre.PosixRegex):
            pieces, seplist = _split_rx(fs, text)
        else:
            f = s(fs)
            if f == b" ":
                pieces = text.split() if text.strip(b" \t\n") else []
                seplist = None
            elif len(f) == 1 and f != b"\\":
                pieces = text.split(f) if text else []
                seplist = [f] * max(0, len(pieces) - 1)
            elif f == b"":
                pieces = [text[i:i + 1] for i in range(len(text))]
                seplist = None
            else:
                pieces, seplist = _split_rx(dre(f), text)
        arr.clear()
        for i, p in enumerate(pieces, 1):
            arr[b"%d" % i] = StrNum(p)
        if seps is not None:
            seps.clear()
            for i, p in enumerate(seplist or [], 1):
                seps[b"%d" % i] = StrNum(p)
        return float(len(pieces))

    def _split_rx(rx: posixre.PosixRegex, text: bytes) -> tuple[list[bytes], list[bytes]]:
        if not text:
            return [], []
        if not rx.pattern:   # split(s, a, //): one element per character, as with ""
            return [text[i:i + 1] for i in range(len(text))], [b""] * (len(text) - 1)
        pieces, seplist, last = [], [], 0
        for m in rx.finditer(text):
            a, e = m.start(), m.end()
            if a == e:
                continue
            pieces.append(text[last:a])
            seplist.append(text[a:e])
            last = e
        pieces.append(text[last:])
        return pieces, seplist

    repl_cache: dict[bytes, posixre.Replacement] = {}

    def sub_repl(repl: bytes) -> posixre.Replacement:
        """gawk's rules for sub/gsub (``&`` is the match, ``\\&`` a literal &, ``\\\\&`` a
        backslash and the match, any other backslash itself) as a posixre Replacement, so
        posixre's whole-match fast paths apply."""
        got = repl_cache.get(repl)
        if got is not None:
            return got
        if len(repl_cache) > 256:
            repl_cache.clear()
        parts: list[Any] = []
        lit = bytearray()
        i, n = 0, len(repl)
        while i < n:
            c = repl[i]
            if c == 92 and i + 1 < n and repl[i + 1] == 38:
                lit.append(38)          # \& is a literal &
                i += 2
                continue
            if c == 92 and repl[i + 1:i + 3] == b"\\&":
                lit.append(92)          # \\& is a backslash, then the match
                i += 2
                continue
            if c == 38:
                if lit:
                    parts.append(bytes(lit))
                    lit = bytearray()
                parts.append(0)
            else:
                lit.append(c)
            i += 1
        if lit:
            parts.append(bytes(lit))
        r = repl_cache[repl] = posixre.Replacement(tuple(parts), 0, False)
        return r

    def do_sub(rx: Any, repl: Any, target: Any, glob: bool) -> tuple[float, Any]:
        if not isinstance(rx, posixre.PosixRegex):
            rx = dre(rx)
        text = target if type(target) is bytes else s(target)
        out, n = rx.sub(sub_repl(repl if type(repl) is bytes else s(repl)), text, all=glob)
        if len(out) > _MAX_STRING:
            raise AwkFatal("string too long")
        return float(n), out

    def b_match(v: Any, rx: Any, arr: AwkArray | None = None) -> float:
        text = s(v)
        m = dre(rx).search(text)
        if arr is not None:
            arr.clear()
        if m is None:
            rt.RSTART, rt.RLENGTH = 0.0, -1.0
            return 0.0
        a, e = m.span()
        rt.RSTART, rt.RLENGTH = float(a + 1), float(e - a)
        if arr is not None:
            for g in range(len(m.spans)):
                ga, ge = m.spans[g]
                if ga >= 0:
                    arr[b"%d" % g] = StrNum(text[ga:ge])
                    arr[b"%d" % g + rt.subsep + b"start"] = float(ga + 1)
                    arr[b"%d" % g + rt.subsep + b"length"] = float(ge - ga)
        return float(a + 1)

    def b_gensub(rx: Any, repl: Any, how: Any, target: Any) -> bytes:
        rx = dre(rx)
        text = s(target)
        r = s(repl)
        h = s(how) if not isinstance(how, float) else b""
        glob = h[:1] in (b"g", b"G")
        nth = 1
        if not glob:
            nv = to_num(how)
            nth = int(nv) if nv >= 1 else 1
        parts: list[Any] = []
        lit = bytearray()
        i = 0
        while i < len(r):
            c = r[i]
            if c == 92 and i + 1 < len(r):
                d = r[i + 1]
                if 48 <= d <= 57:
                    if lit:
                        parts.append(bytes(lit))
                        lit = bytearray()
                    parts.append(d - 48)
                elif d == 38:
                    lit.append(38)
                elif d == 92:
                    lit.append(92)
                else:
                    lit += r[i:i + 2]
                i += 2
                continue
            if c == 38:
                if lit:
                    parts.append(bytes(lit))
                    lit = bytearray()
                parts.append(0)
            else:
                lit.append(c)
            i += 1
        if lit:
            parts.append(bytes(lit))

        def expand(m: posixre.Match) -> bytes:
            out = []
            for p in parts:
                if type(p) is int:
                    g = m.group(p) if p < len(m.spans) else None
                    out.append(g or b"")
                else:
                    out.append(p)
            return b"".join(out)

        return rx.sub(expand, text, nth=nth, all=glob)[0]

    def b_srand(v: Any = None) -> float:
        prev = rt.seed
        rt.seed = float(int(time.time())) if v is None else to_num(v)
        rt.random.seed(rt.seed)
        return prev

    def b_rand() -> float:
        return rt.random.random()

    def b_int(v: Any) -> float:
        f = to_num(v)
        return float(int(f)) if f - f == 0.0 else f

    def b_log(v: Any) -> float:
        f = to_num(v)
        if f == 0:
            return -math.inf
        if f != f:
            return f
        if f < 0:
            rt.warnings.append(f"log: received negative argument {s(v).decode('latin-1')}")
            return -math.nan   # as the C library's log: gawk prints "-nan"
        return math.log(f) if f != math.inf else math.inf

    def b_exp(v: Any) -> float:
        try:
            return math.exp(to_num(v))
        except OverflowError:
            return math.inf

    def b_sqrt(v: Any) -> float:
        f = to_num(v)
        if f < 0:
            rt.warnings.append(f"sqrt: received negative argument {s(v).decode('latin-1')}")
            return -math.nan
        return math.sqrt(f)

    def b_sin(v: Any) -> float:
        f = to_num(v)
        return math.sin(f) if f - f == 0.0 else math.nan

    def b_cos(v: Any) -> float:
        f = to_num(v)
        return math.cos(f) if f - f == 0.0 else math.nan

    def b_atan2(y: Any, x: Any) -> float:
        return math.atan2(to_num(y), to_num(x))

    def b_tolower(v: Any) -> bytes:
        return s(v).lower()

    def b_toupper(v: Any) -> bytes:
        return s(v).upper()

    def b_sprintf(fmt: Any, *args: Any) -> bytes:
        return sprintf(s(fmt), list(args), rt.convfmt, s)

    GMT = Zone(timezone.utc, "GMT")

    def zone(utc: Any = None) -> Zone:
        """The zone strftime and mktime work in: UTC when asked, else the sandbox's ``$TZ``
        (the same rules as ``date``: system_datefmt.py)."""
        if utc is not None and to_num(utc):
            return GMT  # gawk's utc-flag: gmtime(), whose %Z is GMT
        return zone_named(rt.ctx.getenv("TZ"))

    def b_strftime(fmt: Any = None, ts: Any = None, utc: Any = None) -> bytes:
        f = b"%a %b %e %H:%M:%S %Z %Y" if fmt is None else s(fmt)
        t = time.time() if ts is None else to_num(ts)
        try:
            return format_time(f.decode("latin-1"), Moment(int(t), 0, zone(utc))).encode("latin-1", "replace")
        except (OverflowError, OSError, ValueError):
            return b""

    def b_systime() -> float:
        return float(int(time.time()))

    def b_mktime(spec: Any, utc: Any = None) -> float:
        """``mktime("YYYY MM DD HH MM SS")``: out-of-range parts carry over, as C's mktime."""
        parts = s(spec).split()
        try:
            y, mo, d, h, mi, sec = (int(p) for p in parts[:6])
            return float(epoch_of(y, mo, d, h, mi, sec, zone(utc)))
        except (ValueError, OverflowError, OSError):
            return -1.0

    def _ival(v: Any) -> int:
        f = to_num(v)
        if f < 0:
            raise AwkFatal("negative values are not allowed for bit operations")
        return int(f) if f - f == 0.0 else (1 << 64) - 1

    def b_and(*a: Any) -> float:
        r = _ival(a[0])
        for x in a[1:]:
            r &= _ival(x)
        return float(r)

    def b_or(*a: Any) -> float:
        r = _ival(a[0])
        for x in a[1:]:
            r |= _ival(x)
        return float(r)

    def b_xor(*a: Any) -> float:
        r = _ival(a[0])
        for x in a[1:]:
            r ^= _ival(x)
        return float(r)

    def b_lshift(v: Any, n: Any) -> float:
        return float((_ival(v) << min(_ival(n), 64)) & ((1 << 64) - 1))

    def b_rshift(v: Any, n: Any) -> float:
        return float(_ival(v) >> min(_ival(n), 64))

    def b_compl(v: Any) -> float:
        return float(~_ival(v) & ((1 << 53) - 1))

    def b_strtonum(v: Any) -> float:
        if type(v) is float:
            return v
        t = s(v).strip().lower()
        try:
            if t.startswith((b"0x", b"-0x", b"+0x")):
                return float(int(t, 16))
            if len(t) > 1 and t.startswith(b"0") and t.isdigit():
                return float(int(t, 8))
        except ValueError:
            pass
        return to_num(v)

    def _sort_key(v: Any) -> tuple[int, float, bytes]:
        if type(v) is float:
            return (0, v, b"")
        if type(v) is StrNum and looks_numeric(v):
            return (0, to_num(v), b"")
        return (1, 0.0, bytes(v))

    def b_asort(src: AwkArray, dest: AwkArray | None = None) -> float:
        vals = sorted(src.values(), key=_sort_key)
        target = src if dest is None else dest
        target.clear()
        for i, v in enumerate(vals, 1):
            target[b"%d" % i] = v
        return float(len(vals))

    def b_asorti(src: AwkArray, dest: AwkArray | None = None) -> float:
        keys = sorted(bytes(k) for k in src)
        target = src if dest is None else dest
        target.clear()
        for i, k in enumerate(keys, 1):
            target[b"%d" % i] = StrNum(k)
        return float(len(keys))

    def b_isarray(v: Any) -> float:
        return 1.0 if isinstance(v, AwkArray) else 0.0

    def b_typeof(v: Any) -> bytes:
        if isinstance(v, AwkArray):
            return b"array"
        if type(v) is float:
            return b"number"
        if type(v) is Uninit:
            return b"untyped" if v is UNINIT else b"unassigned"
        if type(v) is StrNum:
            return b"strnum" if looks_numeric(v) else b"string"
        return b"string"

    return {
        "_dre": dre, "_dmatch": dmatch, "_length": b_length, "_substr": b_substr, "_index": b_index, "_split": b_split,
        "_dosub": do_sub, "_match": b_match, "_gensub": b_gensub, "_srand": b_srand, "_rand": b_rand,
        "_int": b_int, "_log": b_log, "_exp": b_exp, "_sqrt": b_sqrt, "_sin": b_sin, "_cos": b_cos,
        "_atan2": b_atan2, "_tolower": b_tolower, "_toupper": b_toupper, "_sprintf": b_sprintf,
        "_strftime": b_strftime, "_systime": b_systime, "_mktime": b_mktime, "_and": b_and,
        "_or": b_or, "_xor": b_xor, "_lshift": b_lshift, "_rshift": b_rshift, "_compl": b_compl,
        "_strtonum": b_strtonum, "_asort": b_asort, "_asorti": b_asorti, "_isarray": b_isarray,
        "_typeof": b_typeof, "_EMPTY": EMPTY, "_regex_split": regex_split,
    }
