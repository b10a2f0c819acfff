"""Byte and number tools: echo, printf, yes, seq, base64, base32, the checksum programs, cksum,
cmp, expr, od, xxd, hexdump, strings, iconv, shuf — GNU (and xxd's / util-linux's) behaviour
over ``ctx``, streaming in 64 KiB reads where the job allows.

Checksums are one ``hashlib`` update per 64 KiB buffer, so they run at the library's speed.
"""

from __future__ import annotations

import base64 as _b64
import binascii
import codecs
import hashlib
import math
import re
import secrets
import zlib
from decimal import Decimal, InvalidOperation
from typing import Any

from kernel.errors import KernelError
from kernel.programs import posixre
from kernel.programs.common import CHUNK, Writer
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import Run, fsencode, quote, strerror

# ============================================================================ echo

_ECHO_ESC = {
    ord("a"): b"\a",
    ord("b"): b"\b",
    ord("e"): b"\x1b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
    ord("\\"): b"\\",
}


def _echo_escapes(s: bytes) -> tuple[bytes, bool]:
    """echo -e: the escapes, and whether ``\\c`` stopped the output."""
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != 0x5C or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        if d == ord("c"):
            return bytes(out), True
        if d in _ECHO_ESC:
            out += _ECHO_ESC[d]
            i += 2
        elif d == ord("0"):
            j = i + 2
            v = 0
            while j < n and j < i + 5 and 48 <= s[j] <= 55:
                v = v * 8 + s[j] - 48
                j += 1
            out.append(v & 0xFF)
            i = j
        elif d == ord("x") and i + 2 < n and chr(s[i + 2]) in "0123456789abcdefABCDEF":
            j = i + 2
            v = 0
            while j < n and j < i + 4 and chr(s[j]) in "0123456789abcdefABCDEF":
                v = v * 16 + int(chr(s[j]), 16)
                j += 1
            out.append(v)
            i = j
        else:
            out.append(c)
            i += 1
    return bytes(out), False


async def prog_echo(ctx: Any) -> int:
    argv = list(ctx.argv)[1:]
    if len(argv) == 1 and argv[0] in ("--help", "--version"):
        if argv[0] == "--help":
            await ctx.write_all(
                1,
                b"Usage: echo [SHORT-OPTION]... [STRING]...\nEcho the STRING(s) to standard output.\n"
                b"\n  -n  do not output the trailing newline\n  -e  enable interpretation of "
                b"backslash escapes\n  -E  disable interpretation of backslash escapes (default)\n",
            )
        else:
            await ctx.write_all(1, b"echo (vfsfuse 0.1)\n")
        return 0
    newline = True
    escapes = False
    while argv and len(argv[0]) > 1 and argv[0][0] == "-" and all(ch in "neE" for ch in argv[0][1:]):
        for ch in argv[0][1:]:
            if ch == "n":
                newline = False
            elif ch == "e":
                escapes = True
            else:
                escapes = False
        argv.pop(0)
    data = b" ".join(fsencode(a) for a in argv)
    if escapes:
        data, stop = _echo_escapes(data)
        if stop:
            newline = False
    await ctx.write_all(1, data + (b"\n" if newline else b""))
    return 0


# ============================================================================ printf

_SHELL_SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,/:@%^")


def shell_quote(s: bytes) -> bytes:
    """printf %q the coreutils way: bare when safe, '...' or "..." when possible, $'\\t' pieces
    for control bytes."""
    if not s:
        return b"''"
    if all(c in _SHELL_SAFE for c in s) and s[:1] not in (b"~", b"#"):
        return s
    if any(c < 32 or c == 127 for c in s):
        out = bytearray()
        run = bytearray()
        esc = {9: b"\\t", 10: b"\\n", 13: b"\\r", 7: b"\\a", 8: b"\\b", 11: b"\\v", 12: b"\\f", 27: b"\\E"}

        def flush() -> None:
            if run:
                out.extend(b"'" + bytes(run).replace(b"'", b"'\\''") + b"'")
                run.clear()

        for c in s:
            if c < 32 or c == 127:
                flush()
                out.extend(b"$'" + esc.get(c, b"\\%03o" % c) + b"'")
            else:
                run.append(c)
        flush()
        return bytes(out)
    if b"'" in s:
        if not any(c in b'$`"\\!' for c in s):
            return b'"' + s + b'"'
        return b"'" + s.replace(b"'", b"'\\''") + b"'"
    return b"'" + s + b"'"


class _PrintfError(Exception):
    pass


def _num_arg(arg: bytes, run_errors: list[str], integer: bool) -> Any:
    """A numeric printf argument: C-style prefixes, a leading quote for a character's code."""
    text = arg.strip(b" \t\n")
    if arg[:1] in (b"'", b'"'):
        if len(arg) >= 2:
            return arg[1]
        return 0
    if not text:
        if arg:
            run_errors.append(f"{quote(arg.decode('utf-8', 'surrogateescape'))}: expected a numeric value")
        return 0
    try:
        if integer:
            m = re.fullmatch(rb"([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
            if not m:
                m2 = re.match(rb"[-+]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
                if m2:
                    run_errors.append(
                        f"{quote(arg.decode('utf-8', 'surrogateescape'))}: value not completely converted"
                    )
                    return _num_arg(m2.group(0), [], True)
                run_errors.append(f"{quote(arg.decode('utf-8', 'surrogateescape'))}: expected a numeric value")
                return 0
            sign, body = m.groups()
            v = int(body, 16) if body[:2].lower() == b"0x" else (int(body, 8) if body.startswith(b"0") else int(body))
            return -v if sign == b"-" else v
        m = re.fullmatch(
            rb"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?0[xX][0-9a-fA-F.]+([pP][-+]?\d+)?|[-+]?(inf|infinity|nan)",
            text,
            re.I,
        )
        if not m:
            m2 = re.match(rb"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text)
            run_errors.append(
                f"{quote(arg.decode('utf-8', 'surrogateescape'))}: "
                + ("value not completely converted" if m2 else "expected a numeric value")
            )
            return float(m2.group(0)) if m2 else 0.0
        t = text.decode()
        return float.fromhex(t) if "x" in t.lower() else float(t)
    except (ValueError, OverflowError):
        run_errors.append(f"{quote(arg.decode('utf-8', 'surrogateescape'))}: Numerical result out of range")
        return 0


_UTF8 = [False]  # whether the caller's locale is UTF-8 (set per printf run)
_FMT = re.compile(rb"%([-+ #0']*)(\*|\d+)?(?:\.(\*|\d*))?(hh|h|ll|l|L|q|j|z|t)?([diouxXfFeEgGaAcsbq%])")


def _printf_escape(fmt: bytes, i: int) -> tuple[bytes, int, bool]:
    """One backslash escape in a printf FORMAT at *i* (pointing at the backslash)."""
    d = fmt[i + 1] if i + 1 < len(fmt) else None
    if d is None:
        return b"\\", i + 1, False
    if d in _ECHO_ESC and d != ord("e") or d == ord('"'):
        return (_ECHO_ESC.get(d, b'"')), i + 2, False
    if d == ord("c"):
        return b"", i + 2, True
    if 48 <= d <= 55:
        j = i + 1
        v = 0
        while j < len(fmt) and j < i + 4 and 48 <= fmt[j] <= 55:
            v = v * 8 + fmt[j] - 48
            j += 1
        return bytes([v & 0xFF]), j, False
    if d == ord("x"):
        j = i + 2
        v = 0
        while j < len(fmt) and j < i + 4 and chr(fmt[j]) in "0123456789abcdefABCDEF":
            v = v * 16 + int(chr(fmt[j]), 16)
            j += 1
        if j == i + 2:
            raise _PrintfError("missing hexadecimal number in escape")
        return bytes([v]), j, False
    if d in (ord("u"), ord("U")):
        width = 4 if d == ord("u") else 8
        digits = fmt[i + 2 : i + 2 + width]
        if len(digits) < width or not all(chr(c) in "0123456789abcdefABCDEF" for c in digits):
            raise _PrintfError("missing hexadecimal number in escape")
        code = int(digits, 16)
        if code < 0x80:
            return bytes([code]), i + 2 + width, False
        if not _UTF8[0]:  # the C locale cannot encode it: GNU prints the escape, uppercased
            return (b"\\u" if width == 4 else b"\\U") + digits.upper(), i + 2 + width, False
        return chr(code).encode("utf-8", "surrogatepass"), i + 2 + width, False
    if d == ord("e"):
        return b"\x1b", i + 2, False
    return b"\\" + bytes([d]), i + 2, False


def _format_one(spec: re.Match, args: list[bytes], pos: int, errors: list[str]) -> tuple[bytes, int, bool]:
    flags, width, prec, _len, conv = spec.groups()
    conv_c = chr(conv[0])

    def take() -> bytes | None:
        nonlocal pos
        if pos < len(args):
            pos += 1
            return args[pos - 1]
        return None

    if width == b"*":
        a = take()
        w = _num_arg(a, errors, True) if a is not None else 0
        if w < 0:
            flags += b"-"
            w = -w
        width = str(w).encode()
    if prec == b"*":
        a = take()
        pv = _num_arg(a, errors, True) if a is not None else 0
        prec = str(pv).encode() if pv >= 0 else None
    pyflags = flags.replace(b"'", b"").decode()
    w = width.decode() if width else ""
    p = ("." + prec.decode()) if prec is not None else ""
    arg = take()
    stop = False
    if conv_c == "%":
        return b"%", pos, False
    if conv_c in "sbq":
        raw = arg if arg is not None else b""
        if conv_c == "b":
            raw, stop = _echo_escapes_printf(raw)
        elif conv_c == "q":
            raw = shell_quote(raw)
        if prec is not None:
            raw = raw[: int(prec or b"0")]
        if w:
            raw = raw.ljust(int(w)) if "-" in pyflags else raw.rjust(int(w))
        return raw, pos, stop
    if conv_c == "c":
        raw = arg[:1] if arg else (b"\0" if arg is not None and False else b"")
        if arg is None or arg == b"":
            raw = b"\0" if arg == b"" else b"\0"
            raw = b"" if arg is None else raw
        if w:
            raw = raw.ljust(int(w)) if "-" in pyflags else raw.rjust(int(w))
        return raw, pos, False
    if conv_c in "diouxX":
        v = _num_arg(arg, errors, True) if arg is not None else 0
        if not isinstance(v, int):
            v = int(v)
        if conv_c in "ouxX" and v < 0:
            v &= (1 << 64) - 1
        pc = "d" if conv_c in "iu" else conv_c
        if pc == "o" and "#" in pyflags:  # C's alternate octal is a leading 0, not Python's 0o
            body = f"%{pyflags.replace('#', '')}{w}{p}o" % v
            stripped = body.lstrip(" ")
            if not stripped.startswith("0"):
                body = body[: len(body) - len(stripped)] + "0" + stripped
                if w and len(body) > int(w) and body.startswith(" "):
                    body = body[1:]
            return body.encode(), pos, False
        return (f"%{pyflags}{w}{p}{pc}" % v).encode(), pos, False
    v = _num_arg(arg, errors, False) if arg is not None else 0.0
    pc = conv_c if conv_c not in "aA" else ("e" if conv_c == "a" else "E")
    text = f"%{pyflags}{w}{p}{pc}" % float(v)
    if conv_c in "aA":
        text = float(v).hex() if conv_c == "a" else float(v).hex().upper()
    return text.encode(), pos, False


def _echo_escapes_printf(s: bytes) -> tuple[bytes, bool]:
    """%b: echo -e escapes, where ``\\0NNN`` takes up to three more octal digits."""
    return _echo_escapes(s)


async def prog_printf(ctx: Any) -> int:
    argv = list(ctx.argv)[1:]
    if argv and argv[0] in ("--help", "--version"):
        if argv[0] == "--help":
            await ctx.write_all(
                1,
                b"Usage: printf FORMAT [ARGUMENT]...\n  or:  printf OPTION\nPrint ARGUMENT(s) "
                b"according to FORMAT, or execute according to OPTION:\n",
            )
        else:
            await ctx.write_all(1, b"printf (vfsfuse 0.1)\n")
        return 0
    if argv and argv[0] == "--":
        argv.pop(0)
    run = Run(ctx, "printf")
    from kernel.programs.text import _utf8_locale

    _UTF8[0] = _utf8_locale(ctx)
    if not argv:
        return await run.usage("missing operand")
    fmt = fsencode(argv[0])
    args = [fsencode(a) for a in argv[1:]]
    out = bytearray()
    errors: list[str] = []
    pos = 0
    try:
        while True:
            used_before = pos
            i = 0
            n = len(fmt)
            stop = False
            while i < n:
                c = fmt[i]
                if c == 0x5C:
                    piece, i, stop = _printf_escape(fmt, i)
                    out += piece
                    if stop:
                        break
                    continue
                if c == 0x25:
                    m = _FMT.match(fmt, i)
                    if not m:
                        bad = fmt[i : i + 2].decode("utf-8", "surrogateescape")
                        raise _PrintfError(
                            f"{bad}: invalid conversion specification"
                            if len(bad) > 1
                            else "missing conversion specifier"
                        )
                    piece, pos, stop = _format_one(m, args, pos, errors)
                    out += piece
                    i = m.end()
                    if stop:
                        break
                    continue
                out.append(c)
                i += 1
            if stop or pos >= len(args) or pos == used_before:
                break
    except _PrintfError as e:
        await ctx.write_all(1, bytes(out))
        await run.err(str(e))
        return 1
    await ctx.write_all(1, bytes(out))
    for text in errors:
        await run.err(text)
    if pos < len(args) and pos == 0 and args:
        await run.err(f"warning: ignoring excess arguments, starting with {quote(argv[1])}", 0)
    return 1 if errors else 0


# ============================================================================ yes


async def prog_yes(ctx: Any) -> int:
    argv = list(ctx.argv)[1:]
    if argv and argv[0] == "--help":
        await ctx.write_all(
            1,
            b"Usage: yes [STRING]...\n  or:  yes OPTION\nRepeatedly output a line with all "
            b"specified STRING(s), or 'y'.\n",
        )
        return 0
    if argv and argv[0] == "--version":
        await ctx.write_all(1, b"yes (vfsfuse 0.1)\n")
        return 0
    if argv and argv[0] == "--":
        argv.pop(0)
    line = b" ".join(fsencode(a) for a in argv) + b"\n" if argv else b"y\n"
    block = line * max(1, CHUNK // len(line))
    while True:
        await ctx.write_all(1, block)


# ============================================================================ seq

SEQ = Spec(
    "seq",
    "[OPTION]... LAST\n  or:  seq [OPTION]... FIRST LAST\n  or:  seq [OPTION]... FIRST INCREMENT LAST",
    "Print numbers from FIRST to LAST, in steps of INCREMENT.",
    [
        Opt("f", "format", arg="FORMAT", help="use printf style floating-point FORMAT"),
        Opt("s", "separator", arg="STRING", help="use STRING to separate numbers (default: \\n)"),
        Opt("w", "equal-width", help="equalize width by padding with leading zeroes"),
    ],
)


def _seq_num(text: str) -> tuple[Decimal, int, bool]:
    """(value, digits after the point, had an exponent) as GNU seq measures precision."""
    t = text.strip()
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|infinity|nan)", t, re.I) and not re.fullmatch(
        r"[-+]?0[xX][0-9a-fA-F]+", t
    ):
        raise ValueError(text)
    if t.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return Decimal(t), 0, False
    if "x" in t.lower():
        return Decimal(int(t, 16)), 0, False
    v = Decimal(t)
    mant = re.split(r"[eE]", t)[0]
    frac = len(mant.split(".")[1]) if "." in mant else 0
    exp = 0
    if "e" in t.lower():
        exp = int(re.split(r"[eE]", t)[1])
        frac = max(frac - exp, 0)
    return v, frac, "e" in t.lower()


async def prog_seq(ctx: Any) -> int:
    argv = list(ctx.argv)
    # a negative number operand is not an option
    fixed = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            fixed += argv[i:]
            break
        if re.fullmatch(r"-\d.*|-\.\d.*|-inf.*|-nan", a):
            fixed += ["--", *argv[i:]]
            break
        fixed.append(a)
        i += 1
    args = await parse_or_exit(ctx, SEQ, fixed)
    if isinstance(args, int):
        return args
    run = Run(ctx, "seq")
    ops = args.operands
    if not ops:
        return await run.usage("missing operand")
    if len(ops) > 3:
        return await run.usage(f"extra operand {quote(ops[3])}")
    try:
        nums = [_seq_num(o) for o in ops]
    except ValueError as e:
        return await run.usage(f"invalid floating point argument: {quote(str(e))}")
    if len(nums) == 1:
        first, step, last = (Decimal(1), 0, False), (Decimal(1), 0, False), nums[0]
    elif len(nums) == 2:
        first, step, last = nums[0], (Decimal(1), 0, False), nums[1]
    else:
        first, step, last = nums
    if step[0] == 0:
        return await run.usage(f"invalid Zero increment value: {quote(ops[1])}")
    if step[0].is_nan() or first[0].is_nan() or last[0].is_nan():
        return await run.usage("invalid 'not-a-number' argument: " + quote([o for o in ops if "nan" in o.lower()][0]))
    sep = fsencode(args.get("separator", "\n"))
    fmt = args.get("format")
    if fmt is not None and args.get("equal_width"):
        await run.err("format string may not be specified when printing equal width strings")
        return 1
    prec = max(first[1], step[1])
    out = Writer(ctx)
    k = 0
    width = 0
    if args.get("equal_width"):

        def plain(x: Decimal) -> str:
            return f"{x:.{prec}f}"

        lastv = last[0]
        if not lastv.is_infinite():
            # the widest of first and last as printed
            steps = int((lastv - first[0]) / step[0]) if (lastv - first[0]) / step[0] >= 0 else 0
            final = first[0] + steps * step[0]
            width = max(len(plain(first[0])), len(plain(final)), len(f"{lastv:.{prec}f}") if last[1] <= prec else 0)
    pyfmt = None
    if fmt is not None:
        m = re.search(r"%[-+ #0']*\d*(?:\.\d*)?[eEfFgGaA]", fmt)
        if not m or len(re.findall(r"%[^%]", fmt.replace("%%", ""))) != 1:
            await run.err(f"format {quote(fmt)} has " + ("no % directive" if not m else "too many % directives"))
            return 1
        pyfmt = fmt.replace("'", "")
    if (pyfmt is None and not width and prec == 0 and not first[2] and not step[2]
            and not last[0].is_infinite() and first[0] == first[0].to_integral_value()
            and step[0] == step[0].to_integral_value()):
        return await _seq_integers(ctx, out, int(first[0]), int(step[0]), last[0], sep)
    first_out = True
    parts: list[bytes] = []
    while True:
        cur = first[0] + k * step[0]
        if (step[0] > 0 and cur > last[0]) or (step[0] < 0 and cur < last[0]):
            break
        if pyfmt is not None:
            text = pyfmt % float(cur)
        elif prec == 0 and cur == cur.to_integral_value() and not first[2] and not step[2]:
            text = str(int(cur))
        elif prec == 0:
            text = f"{float(cur):g}" if not cur == cur.to_integral_value() else str(int(cur))
        else:
            text = f"{cur:.{prec}f}"
        if width:
            neg = text.startswith("-")
            body = text[1:] if neg else text
            text = ("-" if neg else "") + body.rjust(width - (1 if neg else 0), "0")
        parts.append((b"" if first_out else sep) + text.encode())
        first_out = False
        k += 1
        if len(parts) >= 512:  # Decimal steps are slow: a write (and a yield) every few ms
            await out.write(b"".join(parts))
            parts = []
            await ctx.preempt_point()
    if parts:
        await out.write(b"".join(parts))
    if not first_out:
        await out.write(b"\n")
    await out.flush()
    return 0


async def _seq_integers(ctx: Any, out: Any, first: int, step: int, last: Decimal, sep: bytes) -> int:
    """``seq`` of whole numbers (the common case) with ints: ~20x the Decimal loop."""
    end = int(last.to_integral_value(rounding="ROUND_FLOOR" if step > 0 else "ROUND_CEILING"))
    stop = end + (1 if step > 0 else -1)
    block = 8192 * step  # numbers per write: a few ms of formatting at most
    started = False
    for lo in range(first, stop, block):
        hi = min(lo + block, stop) if step > 0 else max(lo + block, stop)
        numbers = range(lo, hi, step)
        if not numbers:
            break
        text = sep.join(str(n).encode() for n in numbers)
        await out.write(sep + text if started else text)
        started = True
        await ctx.preempt_point()
    if started:
        await out.write(b"\n")
    await out.flush()
    return 0


# ============================================================================ base64, base32


def _base_spec(name: str) -> Spec:
    return Spec(
        name,
        "[OPTION]... [FILE]",
        f"{name[:4].capitalize()}{name[4:]} encode or decode FILE, or standard input, to standard output.",
        [
            Opt("d", "decode", help="decode data"),
            Opt("i", "ignore-garbage", help="when decoding, ignore non-alphabet characters"),
            Opt("w", "wrap", arg="COLS", help="wrap encoded lines after COLS character (default 76)"),
        ],
    )


BASE64 = _base_spec("base64")
BASE32 = _base_spec("base32")
_B64_ALPHA = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B32_ALPHA = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")


async def _base_main(ctx: Any, spec: Spec, b32: bool) -> int:
    args = await parse_or_exit(ctx, spec)
    if isinstance(args, int):
        return args
    run = Run(ctx, spec.prog)
    ops = args.operands
    if len(ops) > 1:
        return await run.usage(f"extra operand {quote(ops[1])}")
    wrap = 76
    if args.get("wrap") is not None:
        try:
            wrap = int(args["wrap"])
            if wrap < 0:
                raise ValueError
        except ValueError:
            await run.err(f"invalid wrap size: {quote(args['wrap'])}")
            return 1
    fd = await run.open(ops[0] if ops else "-")
    if fd is None:
        return 1
    out = Writer(ctx)
    group = 5 if b32 else 3
    try:
        if not args.get("decode") and wrap and wrap % 4 == 0:
            # whole output lines per read: wrap/4*3 input bytes make exactly one line
            per_line = wrap // 4 * group if not b32 else None
            if per_line is None and wrap % 8 == 0:
                per_line = wrap // 8 * 5
            if per_line:
                step = per_line * max(1, CHUNK // per_line)
                rest = b""
                while True:
                    data = await ctx.read(fd, CHUNK)
                    if data:
                        rest += data
                        if len(rest) < step:
                            continue
                        cut = len(rest) - len(rest) % per_line
                        data, rest = rest[:cut], rest[cut:]
                    else:
                        data, rest = rest, b""
                    if not data:
                        break
                    enc = _b64.b32encode(data) if b32 else binascii.b2a_base64(data, newline=False)
                    await out.write(b"\n".join([enc[i : i + wrap] for i in range(0, len(enc), wrap)]) + b"\n")
                await out.flush()
                return 0
        if not args.get("decode"):
            col = 0
            rest = b""
            while True:
                data = await ctx.read(fd, CHUNK)
                if data:
                    data = rest + data
                    cut = len(data) - len(data) % group
                    rest = data[cut:]
                    data = data[:cut]
                else:
                    data, rest = rest, b""
                if data:
                    enc = _b64.b32encode(data) if b32 else binascii.b2a_base64(data, newline=False)
                    if wrap:
                        pieces = []
                        pos = 0
                        while pos < len(enc):
                            take = min(wrap - col, len(enc) - pos)
                            pieces.append(enc[pos : pos + take])
                            pos += take
                            col += take
                            if col == wrap:
                                pieces.append(b"\n")
                                col = 0
                        await out.write(b"".join(pieces))
                    else:
                        await out.write(enc)
                        col += len(enc)
                if not data and not rest:
                    break
            if wrap and col:
                await out.write(b"\n")
        else:
            alpha = _B32_ALPHA if b32 else _B64_ALPHA
            data = await ctx.read_all(fd)
            if args.get("ignore_garbage"):
                data = bytes(c for c in data if c in alpha)
            else:
                data = data.replace(b"\n", b"")
            try:
                if len(data) % (8 if b32 else 4):
                    raise binascii.Error("unpadded")  # GNU wants whole groups
                if b32:
                    res = _b64.b32decode(data)
                else:
                    if any(c not in alpha for c in data):
                        raise binascii.Error("bad")
                    res = _b64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                good = _partial_decode(data, b32)
                await out.write(good)
                await out.flush()
                await run.err("invalid input")
                return 1
            await out.write(res)
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await out.flush()
        await run.err(f"read error: {strerror(e)}")
        return 1
    finally:
        await run.close(fd)
    await out.flush()
    return 0


def _partial_decode(data: bytes, b32: bool) -> bytes:
    """What GNU prints before it stops at the first bad group."""
    group = 8 if b32 else 4
    alpha = _B32_ALPHA if b32 else _B64_ALPHA
    good = bytearray()
    for i in range(0, len(data), group):
        chunk = data[i : i + group]
        if len(chunk) < group:
            # an unpadded tail still decodes as far as it goes
            try:
                good += (
                    _b64.b32decode(chunk + b"=" * (-len(chunk) % 8))
                    if b32
                    else _b64.b64decode(chunk + b"=" * (-len(chunk) % 4))
                )
            except (binascii.Error, ValueError):
                pass
            break
        if any(c not in alpha for c in chunk):
            break
        try:
            good += _b64.b32decode(chunk) if b32 else _b64.b64decode(chunk, validate=True)
        except (binascii.Error, ValueError):
            break
    return bytes(good)


async def prog_base64(ctx: Any) -> int:
    return await _base_main(ctx, BASE64, False)


async def prog_base32(ctx: Any) -> int:
    return await _base_main(ctx, BASE32, True)


# ============================================================================ checksums


def _sum_spec(name: str, blake: bool = False) -> Spec:
    opts = [
        Opt("b", "binary", help="read in binary mode"),
        Opt("c", "check", help="read checksums from the FILEs and check them"),
        Opt(None, "tag", help="create a BSD-style checksum"),
        Opt("t", "text", help="read in text mode (default)"),
        Opt("z", "zero", help="end each output line with NUL, not newline, and disable file name escaping"),
        Opt(None, "ignore-missing", help="don't fail or report status for missing files"),
        Opt(None, "quiet", help="don't print OK for each successfully verified file"),
        Opt(None, "status", help="don't output anything, status code shows success"),
        Opt(None, "strict", help="exit non-zero for improperly formatted checksum lines"),
        Opt("w", "warn", help="warn about improperly formatted checksum lines"),
    ]
    if blake:
        opts.insert(
            1,
            Opt(
                "l",
                "length",
                arg="BITS",
                help="digest length in bits; must not exceed the max for "
                "the blake2 algorithm and must be a multiple of 8",
            ),
        )
    return Spec(name, "[OPTION]... [FILE]...", f"Print or check {name[:-3].upper()} checksums.", opts)


_ALGOS = {
    "md5sum": ("md5", "MD5"),
    "sha1sum": ("sha1", "SHA1"),
    "sha224sum": ("sha224", "SHA224"),
    "sha256sum": ("sha256", "SHA256"),
    "sha384sum": ("sha384", "SHA384"),
    "sha512sum": ("sha512", "SHA512"),
    "b2sum": ("blake2b", "BLAKE2b"),
}


def _escape_name(name: bytes) -> tuple[bytes, bool]:
    if b"\\" in name or b"\n" in name or b"\r" in name:
        return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r"), True
    return name, False


async def _digest_fd(ctx: Any, fd: int, algo: str, bits: int | None) -> str:
    h = hashlib.blake2b(digest_size=bits // 8) if algo == "blake2b" and bits else hashlib.new(algo)
    while True:
        data = await ctx.read(fd, CHUNK * 4)
        if not data:
            return h.hexdigest()
        h.update(data)


def _make_sum(prog: str):
    algo, tag_name = _ALGOS[prog]
    spec = _sum_spec(prog, algo == "blake2b")

    async def main(ctx: Any) -> int:
        args = await parse_or_exit(ctx, spec)
        if isinstance(args, int):
            return args
        run = Run(ctx, prog)
        bits = None
        if algo == "blake2b" and args.get("length") is not None:
            try:
                bits = int(args["length"])
                if bits <= 0 or bits > 512 or bits % 8:
                    raise ValueError
            except ValueError:
                await run.err(f"invalid length: {quote(args['length'])}")
                return 1
            if bits == 512:
                bits = None
        tname = tag_name if not bits else f"{tag_name}-{bits}"
        files = args.operands or ["-"]
        if args.get("check"):
            return await _check_sums(ctx, run, files, algo, bits, args)
        out = Writer(ctx)
        end = b"\0" if args.get("zero") else b"\n"
        for name in files:
            fd = await run.open(name)
            if fd is None:
                continue
            try:
                digest = await _digest_fd(ctx, fd, algo, bits)
            except KernelError as e:
                if e.code == "EPIPE":
                    raise
                await run.file_err(name, e)
                continue
            finally:
                await run.close(fd)
            raw = fsencode(name)
            esc, escaped = _escape_name(raw) if not args.get("zero") else (raw, False)
            if args.get("tag"):
                line = (b"\\" if escaped else b"") + tname.encode() + b" (" + esc + b") = " + digest.encode()
            else:
                line = (b"\\" if escaped else b"") + digest.encode() + (b" *" if args.get("binary") else b"  ") + esc
            await out.write(line + end)
        await out.flush()
        return run.status

    return main


_CHECK_LINE = re.compile(rb"^(\\?)([0-9a-fA-F]+) ([ *])(.*)$")
_TAG_LINE = re.compile(rb"^(\\?)([A-Za-z0-9-]+) \((.*)\) = ([0-9a-fA-F]+)$")


async def _check_sums(ctx: Any, run: Run, files: list[str], algo: str, bits: int | None, args: Any) -> int:
    out = Writer(ctx)
    quiet, status_only = bool(args.get("quiet")), bool(args.get("status"))
    warn, strict = bool(args.get("warn")), bool(args.get("strict"))
    failed = bad_lines = unreadable = 0
    any_ok = False
    status = 0
    want_len = (
        (bits or (64 if algo == "blake2b" else hashlib.new(algo).digest_size) * 8) // 4
        if algo != "blake2b"
        else (bits // 4 if bits else 128)
    )
    for listname in files:
        fd = await run.open(listname)
        if fd is None:
            status = 1
            continue
        data = await ctx.read_all(fd)
        await run.close(fd)
        properly = 0
        for n, line in enumerate(data.split(b"\n"), 1):
            if not line:
                continue
            line = line.rstrip(b"\r")
            m = _TAG_LINE.match(line)
            if m:
                escaped, name, digest = m.group(1), m.group(3), m.group(4)
            else:
                m = _CHECK_LINE.match(line)
                if not m:
                    bad_lines += 1
                    if warn:
                        await out.flush()
                        await run.err(f"{listname}: {n}: improperly formatted {algo.upper()} checksum line", 0)
                    continue
                escaped, digest, name = m.group(1), m.group(2), m.group(4)
            if len(digest) != want_len:
                bad_lines += 1
                continue
            if escaped:
                name = name.replace(b"\\n", b"\n").replace(b"\\\\", b"\\")
            properly += 1
            sname = name.decode("utf-8", "surrogateescape")
            try:
                fd2 = 0 if sname == "-" else await ctx.open(sname)
                got = await _digest_fd(ctx, fd2, algo, bits)
                if fd2:
                    await ctx.close(fd2)
            except KernelError as e:
                if args.get("ignore_missing") and e.code == "ENOENT":
                    continue
                unreadable += 1
                await out.flush()
                await run.err(f"{sname}: {strerror(e)}", 0)
                if not status_only:
                    await out.write(name + b": FAILED open or read\n")
                continue
            if got.lower() == digest.decode().lower():
                any_ok = True
                if not quiet and not status_only:
                    await out.write(name + b": OK\n")
            else:
                failed += 1
                if not status_only:
                    await out.write(name + b": FAILED\n")
        if not properly and not status_only:
            await out.flush()
            await run.err(f"{listname}: no properly formatted checksum lines found", 0)
            status = 1
    await out.flush()
    if not status_only:
        if bad_lines:
            s = "s are" if bad_lines > 1 else " is"
            await run.err(f"WARNING: {bad_lines} line{s} improperly formatted", 0)
        if unreadable:
            s = "s" if unreadable > 1 else ""
            await run.err(f"WARNING: {unreadable} listed file{s} could not be read", 0)
        if failed:
            s = "s" if failed > 1 else ""
            await run.err(f"WARNING: {failed} computed checksum{s} did NOT match", 0)
    if failed or unreadable or (strict and bad_lines) or status:
        return 1
    return 0 if any_ok or not files else 1


# ============================================================================ cksum


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table.append(c & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


class _PosixCrc:
    """POSIX cksum's CRC-32 (MSB first, length appended, complemented); a table per byte."""

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0

    def update(self, data: bytes) -> None:
        crc, table = self.crc, _CRC
        for b in data:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ b]
        self.crc = crc
        self.size += len(data)

    def value(self) -> int:
        crc, n = self.crc, self.size
        while n:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ (n & 0xFF)]
            n >>= 8
        return ~crc & 0xFFFFFFFF


CKSUM = Spec(
    "cksum",
    "[OPTION]... [FILE]...",
    "Print CRC checksum and byte counts of each FILE.",
    [
        Opt("a", "algorithm", arg="TYPE", help="select the digest type to use"),
        Opt(None, "untagged", help="create a reversed style checksum, without digest type"),
        Opt("l", "length", arg="BITS", help="digest length in bits"),
    ],
)


async def prog_cksum(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CKSUM)
    if isinstance(args, int):
        return args
    run = Run(ctx, "cksum")
    algo = args.get("algorithm", "crc")
    hashes = {
        "md5": "md5",
        "sha1": "sha1",
        "sha224": "sha224",
        "sha256": "sha256",
        "sha384": "sha384",
        "sha512": "sha512",
        "blake2b": "blake2b",
    }
    if algo not in ("crc", "sysv", "bsd") and algo not in hashes:
        await run.err(f"invalid argument {quote(algo)} for '--algorithm'")
        return 1
    out = Writer(ctx)
    names = args.operands or ["-"]
    for name in names:
        fd = await run.open(name)
        if fd is None:
            continue
        try:
            if algo == "crc":
                c = _PosixCrc()
                while True:
                    data = await ctx.read(fd, CHUNK)
                    if not data:
                        break
                    c.update(data)
                line = f"{c.value()} {c.size}"
                if args.operands:
                    line += " " + name
            elif algo in ("sysv", "bsd"):
                data = await ctx.read_all(fd)
                if algo == "sysv":
                    s = sum(data)
                    r = (s & 0xFFFF) + ((s & 0xFFFFFFFF) >> 16)
                    line = f"{(r & 0xFFFF) + (r >> 16)} {(len(data) + 511) // 512}"
                else:
                    ck = 0
                    for b in data:
                        ck = (ck >> 1) + ((ck & 1) << 15)
                        ck = (ck + b) & 0xFFFF
                    line = f"{ck:05d} {(len(data) + 1023) // 1024:5d}"
                if args.operands:
                    line += " " + name
            else:
                digest = await _digest_fd(ctx, fd, hashes[algo], None)
                tag = {"blake2b": "BLAKE2b"}.get(algo, algo.upper())
                line = f"{digest}  {name}" if args.get("untagged") else f"{tag} ({name}) = {digest}"
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await run.file_err(name, e)
            continue
        finally:
            await run.close(fd)
        await out.write(fsencode(line) + b"\n")
    await out.flush()
    return run.status


# ============================================================================ cmp

CMP = Spec(
    "cmp",
    "[OPTION]... FILE1 [FILE2 [SKIP1 [SKIP2]]]",
    "Compare two files byte by byte.",
    [
        Opt("b", "print-bytes", help="print differing bytes"),
        Opt("i", "ignore-initial", arg="SKIP", help="skip first SKIP bytes of both inputs"),
        Opt("l", "verbose", help="output byte numbers and differing byte values"),
        Opt("n", "bytes", arg="LIMIT", help="compare at most LIMIT bytes"),
        Opt("s", "quiet", help="suppress all normal output", dest="silent"),
        Opt(None, "silent", help="suppress all normal output", dest="silent"),
    ],
    usage_status=2,
)


def _cmp_byte(c: int) -> str:
    if c >= 128:
        c2 = c - 128
        return "M-" + ("^" + chr(c2 + 64) if c2 < 32 else ("^?" if c2 == 127 else chr(c2)))
    if c < 32:
        return "^" + chr(c + 64)
    if c == 127:
        return "^?"
    return chr(c)


async def prog_cmp(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CMP)
    if isinstance(args, int):
        return args
    run = Run(ctx, "cmp")
    ops = args.operands
    if not ops:
        return await run.usage("missing operand", 2)
    if len(ops) > 4:
        return await run.usage(f"extra operand {quote(ops[4])}", 2)
    names = ops[:2] if len(ops) >= 2 else [ops[0], "-"]
    skips = [0, 0]
    try:
        if args.get("ignore_initial") is not None:
            parts = args["ignore_initial"].split(":")
            skips = [_cmp_num(parts[0]), _cmp_num(parts[1] if len(parts) > 1 else parts[0])]
        for k, v in enumerate(ops[2:4]):
            skips[k] = _cmp_num(v)
        limit = _cmp_num(args["bytes"]) if args.get("bytes") is not None else None
    except ValueError as e:
        await run.err(f"invalid --ignore-initial value {quote(str(e))}")
        return 2
    if args.get("verbose") and args.get("silent"):
        return await run.usage("options -l and -s are incompatible", 2)
    fds: list[int] = []
    sizes: list[int | None] = []
    for name in names:
        if args.get("silent"):
            try:
                fd = 0 if name == "-" else await ctx.open(name)
            except KernelError:
                fd = None
        else:
            fd = await run.open(name)
        if fd is None:
            for f in fds:
                await run.close(f)
            return 2
        fds.append(fd)
        st = await ctx.fstat(fd)
        import stat as _stat

        sizes.append(st.size if _stat.S_ISREG(st.mode) else None)
    from kernel.programs.common import Reader

    known = [x for x in sizes if x is not None]
    off_width = len(str(min(known))) if len(known) == 2 else 1

    readers = [Reader(ctx, fds[0]), Reader(ctx, fds[1])]
    for k in range(2):
        left = skips[k]
        while left > 0:
            got = await readers[k].read(min(left, CHUNK))
            if not got:
                break
            left -= len(got)
    out = Writer(ctx)
    offset = 0
    line = 1
    differ = False
    silent, verbose, show_bytes = bool(args.get("silent")), bool(args.get("verbose")), bool(args.get("print_bytes"))
    bufs = [b"", b""]
    eof = [False, False]
    try:
        while True:
            if limit is not None and offset >= limit:
                break
            for k in range(2):
                if not bufs[k] and not eof[k]:
                    bufs[k] = await readers[k].read(CHUNK)
                    if not bufs[k]:
                        eof[k] = True
            a, b = bufs
            if not a or not b:
                if a or b:
                    short = names[0] if not a else names[1]
                    if not silent:
                        await out.flush()
                        shown = short if short != "-" else "-"
                        detail = f"after byte {offset}, line {line}" if offset else "which is empty"
                        if verbose:
                            detail = f"after byte {offset}" if offset else "which is empty"
                        await run.err(f"EOF on {shown} {detail}", 0)
                    await out.flush()
                    return 1
                break
            n = min(len(a), len(b))
            if limit is not None:
                n = min(n, limit - offset)
            ca, cb = a[:n], b[:n]
            if ca == cb:
                line += ca.count(b"\n")
                offset += n
                bufs = [a[n:], b[n:]]
                continue
            i = 0
            while i < n:
                if ca[i] != cb[i]:
                    differ = True
                    if silent:
                        return 1
                    pos = offset + i + 1
                    if not verbose:
                        ln = line + ca.count(b"\n", 0, i)
                        if show_bytes:
                            await out.write(
                                fsencode(
                                    f"{names[0]} {names[1]} differ: byte {pos}, line {ln} is "
                                    f"{ca[i]:3o} {_cmp_byte(ca[i])} {cb[i]:3o} {_cmp_byte(cb[i])}\n"
                                )
                            )
                        else:
                            await out.write(fsencode(f"{names[0]} {names[1]} differ: char {pos}, line {ln}\n"))
                        await out.flush()
                        return 1
                    if show_bytes:
                        await out.write(
                            fsencode(
                                f"{pos:>{off_width}} {ca[i]:3o} {_cmp_byte(ca[i]):<4} {cb[i]:3o} {_cmp_byte(cb[i])}\n"
                            )
                        )
                    else:
                        await out.write(fsencode(f"{pos:>{off_width}} {ca[i]:3o} {cb[i]:3o}\n"))
                i += 1
            line += ca.count(b"\n")
            offset += n
            bufs = [a[n:], b[n:]]
    finally:
        for f in fds:
            await run.close(f)
    await out.flush()
    return 1 if differ else 0


def _cmp_num(text: str) -> int:
    m = re.fullmatch(r"(\d+)([kKMGTPEZY]?)(i?B)?", text)
    if not m:
        raise ValueError(text)
    mult = {"": 1, "k": 1024, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}.get(m.group(2), 1024**5)
    if m.group(3) == "B":
        mult = {"": 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3}.get(m.group(2), 1000**4)
    return int(m.group(1)) * mult


# ============================================================================ expr


class _ExprError(Exception):
    def __init__(self, msg: str, status: int = 2) -> None:
        super().__init__(msg)
        self.status = status


def _to_int(v: bytes) -> int | None:
    return int(v) if re.fullmatch(rb"[-+]?\d+", v) and not v.startswith(b"+") else None


class _Expr:
    def __init__(self, toks: list[bytes]) -> None:
        self.t = toks
        self.i = 0

    def peek(self) -> bytes | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> bytes:
        if self.i >= len(self.t):
            raise _ExprError(
                f"syntax error: missing argument after {quote(self.t[-1].decode('utf-8', 'replace'))}"
                if self.t
                else "syntax error"
            )
        self.i += 1
        return self.t[self.i - 1]

    def parse(self) -> bytes:
        v = self.or_()
        if self.i < len(self.t):
            raise _ExprError(f"syntax error: unexpected argument {quote(self.t[self.i].decode('utf-8', 'replace'))}")
        return v

    @staticmethod
    def null(v: bytes) -> bool:
        return v == b"" or (_to_int(v) == 0 and re.fullmatch(rb"-?0+", v) is not None)

    def or_(self) -> bytes:
        v = self.and_()
        while self.peek() == b"|":
            self.take()
            w = self.and_()
            v = v if not self.null(v) else (w if not self.null(w) else b"0")
        return v

    def and_(self) -> bytes:
        v = self.cmp()
        while self.peek() == b"&":
            self.take()
            w = self.cmp()
            v = v if not (self.null(v) or self.null(w)) else b"0"
        return v

    def cmp(self) -> bytes:
        v = self.add()
        while self.peek() in (b"<", b"<=", b"=", b"==", b"!=", b">=", b">"):
            op = self.take()
            w = self.add()
            a, b = _to_int(v), _to_int(w)
            if a is not None and b is not None:
                x, y = a, b
            else:
                x, y = v, w  # type: ignore[assignment]
            r = {b"<": x < y, b"<=": x <= y, b"=": x == y, b"==": x == y, b"!=": x != y, b">=": x >= y, b">": x > y}[op]
            v = b"1" if r else b"0"
        return v

    def add(self) -> bytes:
        v = self.mul()
        while self.peek() in (b"+", b"-"):
            op = self.take()
            w = self.mul()
            a, b = _to_int(v), _to_int(w)
            if a is None or b is None:
                raise _ExprError("non-integer argument")
            v = str(a + b if op == b"+" else a - b).encode()
        return v

    def mul(self) -> bytes:
        v = self.match()
        while self.peek() in (b"*", b"/", b"%"):
            op = self.take()
            w = self.match()
            a, b = _to_int(v), _to_int(w)
            if a is None or b is None:
                raise _ExprError("non-integer argument")
            if op == b"*":
                v = str(a * b).encode()
            else:
                if b == 0:
                    raise _ExprError("division by zero")
                q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
                v = str(q if op == b"/" else a - b * q).encode()
        return v

    def match(self) -> bytes:
        v = self.primary()
        while self.peek() == b":":
            self.take()
            pat = self.primary()
            v = self.regex(v, pat)
        return v

    @staticmethod
    def regex(s: bytes, pat: bytes) -> bytes:
        try:
            rx = posixre.compile(pat, dialect="expr")
        except KernelError as e:
            raise _ExprError(e.message) from None
        m = rx.match(s)
        if rx.groups:
            g1 = m.group(1) if m is not None else None
            return g1 if g1 is not None else b""
        return str(m.end() if m else 0).encode()

    def primary(self) -> bytes:
        tok = self.take()
        if tok == b"(":
            v = self.or_()
            if self.peek() != b")":
                raise _ExprError(
                    "syntax error: expecting ')' after " + quote(self.t[self.i - 1].decode("utf-8", "replace"))
                )
            self.take()
            return v
        if tok == b"+":
            return self.take()
        if tok == b"length" and self.peek() is not None:
            return str(len(self.primary())).encode()
        if tok == b"match" and self.peek() is not None:
            s = self.primary()
            return self.regex(s, self.primary())
        if tok == b"substr" and self.peek() is not None:
            s, p, n = self.primary(), self.primary(), self.primary()
            pi, ni = _to_int(p), _to_int(n)
            if pi is None or ni is None or pi < 1 or ni < 1:
                return b""
            return s[pi - 1 : pi - 1 + ni]
        if tok == b"index" and self.peek() is not None:
            s, chars = self.primary(), self.primary()
            for k, c in enumerate(s):
                if c in chars:
                    return str(k + 1).encode()
            return b"0"
        if tok in (b")",):
            raise _ExprError("syntax error: unexpected ')'")
        return tok


async def prog_expr(ctx: Any) -> int:
    argv = [fsencode(a) for a in list(ctx.argv)[1:]]
    if argv and argv[0] == b"--help":
        await ctx.write_all(
            1, b"Usage: expr EXPRESSION\n  or:  expr OPTION\nPrint the value of EXPRESSION to standard output.\n"
        )
        return 0
    if argv and argv[0] == b"--version":
        await ctx.write_all(1, b"expr (vfsfuse 0.1)\n")
        return 0
    if argv and argv[0] == b"--":
        argv.pop(0)
    if not argv:
        await ctx.write_all(2, b"expr: missing operand\nTry 'expr --help' for more information.\n")
        return 2
    try:
        v = _Expr(argv).parse()
    except _ExprError as e:
        await ctx.write_all(2, fsencode(f"expr: {e}\n"))
        return e.status if str(e) != "division by zero" else 2
    await ctx.write_all(1, v + b"\n")
    return 1 if _Expr.null(v) else 0


# ============================================================================ od

OD = Spec(
    "od",
    "[OPTION]... [FILE]...",
    "Write an unambiguous representation, octal bytes by default, of FILE to standard output.",
    [
        Opt("A", "address-radix", arg="RADIX", help="output format for file offsets; RADIX is one of [doxn]"),
        Opt("j", "skip-bytes", arg="BYTES", help="skip BYTES input bytes first"),
        Opt("N", "read-bytes", arg="BYTES", help="limit dump to BYTES input bytes"),
        Opt("t", "format", arg="TYPE", help="select output format or formats", action="append"),
        Opt("v", "output-duplicates", help="do not use * to mark line suppression"),
        Opt("w", "width", arg="BYTES", optional_arg=True, help="output BYTES bytes per output line"),
        Opt("a", None, help="same as -t a,  select named characters, ignoring high-order bit", dest="fa"),
        Opt("b", None, help="same as -t o1, select octal bytes", dest="fb"),
        Opt("c", None, help="same as -t c,  select printable characters or backslash escapes", dest="fc"),
        Opt("d", None, help="same as -t u2, select unsigned decimal 2-byte units", dest="fd"),
        Opt("i", None, help="same as -t dI, select decimal ints", dest="fi"),
        Opt("l", None, help="same as -t dL, select decimal longs", dest="fl"),
        Opt("o", None, help="same as -t o2, select octal 2-byte units", dest="fo"),
        Opt("s", None, help="same as -t d2, select decimal 2-byte units", dest="fs"),
        Opt("x", None, help="same as -t x2, select hexadecimal 2-byte units", dest="fx"),
    ],
)

_OD_SHORT = {"fa": "a", "fb": "o1", "fc": "c", "fd": "u2", "fi": "d4", "fl": "d8", "fo": "o2", "fs": "d2", "fx": "x2"}
_NAMED = [
    "nul",
    "soh",
    "stx",
    "etx",
    "eot",
    "enq",
    "ack",
    "bel",
    "bs",
    "ht",
    "nl",
    "vt",
    "ff",
    "cr",
    "so",
    "si",
    "dle",
    "dc1",
    "dc2",
    "dc3",
    "dc4",
    "nak",
    "syn",
    "etb",
    "can",
    "em",
    "sub",
    "esc",
    "fs",
    "gs",
    "rs",
    "us",
    "sp",
]
_OD_C = {0: "\\0", 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _od_types(spec: str) -> list[tuple[str, int]]:
    out = []
    i = 0
    while i < len(spec):
        c = spec[i]
        i += 1
        if c in "ac":
            out.append((c, 1))
            continue
        if c not in "doux f":
            raise ValueError(spec)
        size = 4 if c != "f" else 8
        m = re.match(r"\d+|[CSILFD]", spec[i:])
        if m:
            tok = m.group(0)
            i += len(tok)
            size = {"C": 1, "S": 2, "I": 4, "L": 8, "F": 4, "D": 8}.get(tok) or int(tok)
            if size not in (1, 2, 4, 8) or (c == "f" and size not in (4, 8)):
                raise ValueError(spec)
        if spec[i : i + 1] == "z":
            i += 1
        out.append((c, size))
    return out


def _od_width(kind: str, size: int) -> int:
    if kind in "ac":
        return 3
    bits = size * 8
    if kind == "o":
        return len(f"{(1 << bits) - 1:o}")
    if kind == "x":
        return size * 2
    if kind == "u":
        return len(str((1 << bits) - 1))
    if kind == "d":
        return len(str(-(1 << (bits - 1))))
    return {4: 14, 8: 23}[size]


def _od_cell(kind: str, size: int, chunk: bytes) -> str:
    if kind == "c":
        c = chunk[0]
        if c in _OD_C:
            return _OD_C[c]
        if 32 <= c < 127:
            return chr(c)
        return f"{c:03o}"
    if kind == "a":
        c = chunk[0] & 0x7F
        if c <= 32:
            return _NAMED[c]
        if c == 127:
            return "del"
        return chr(c)
    v = int.from_bytes(chunk, "little", signed=kind == "d")
    if kind == "o":
        return f"{v:0{_od_width(kind, size)}o}"
    if kind == "x":
        return f"{v:0{size * 2}x}"
    if kind in "ud":
        return str(v)
    import struct

    f = struct.unpack("<f" if size == 4 else "<d", chunk)[0]
    return f"{f:.{8 if size == 4 else 17}g}"


async def prog_od(ctx: Any) -> int:
    args = await parse_or_exit(ctx, OD)
    if isinstance(args, int):
        return args
    run = Run(ctx, "od")
    radix = args.get("address_radix", "o")
    if radix not in ("d", "o", "x", "n"):
        await run.err(f"invalid output address radix '{radix}'; it must be one character from [doxn]")
        return 1
    types: list[tuple[str, int]] = []
    try:
        for key, value in args.order:
            if key == "format":
                types += _od_types(value)
            elif key in _OD_SHORT:
                types += _od_types(_OD_SHORT[key])
    except ValueError as e:
        await run.err(f"invalid type string {quote(str(e))}")
        return 1
    if not types:
        types = [("o", 2)]
    try:
        skip = _cmp_num(args["skip_bytes"]) if args.get("skip_bytes") is not None else 0
        limit = _cmp_num(args["read_bytes"]) if args.get("read_bytes") is not None else None
    except ValueError as e:
        await run.err(f"invalid number {quote(str(e))}")
        return 1
    width = 16
    if "width" in args:
        width = int(args["width"]) if args["width"] is not None else 32
    data = bytearray()
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        try:
            data += await ctx.read_all(fd)
        except KernelError as e:
            await run.file_err(name, e)
        finally:
            await run.close(fd)
    if run.status and not data:
        return 1
    if skip > len(data):
        await run.err("cannot skip past end of combined input")
        return 1
    view = bytes(data[skip:])
    if limit is not None:
        view = view[:limit]
    data = bytearray(view)
    col_w = {}
    # every type's cells line up: a cell gets the widest type's columns per byte, times its size
    per_byte = max((_od_width(k, s) + 1) / s for k, s in types)
    for k, s in types:
        col_w[(k, s)] = int(math.ceil(per_byte * s))
    out = Writer(ctx)

    def addr(n: int) -> str:
        if radix == "n":
            return ""
        return {"d": f"{n:07d}", "o": f"{n:07o}", "x": f"{n:06x}"}[radix]

    prev = None
    starred = False
    total = len(data)
    for off in range(0, total, width):
        block = data[off : off + width]
        if prev == block and not args.get("output_duplicates") and len(block) == width:
            if not starred:
                await out.write(b"*\n")
                starred = True
            continue
        starred = False
        prev = block
        for t_i, (k, s) in enumerate(types):
            cells = []
            padded = block + b"\0" * ((-len(block)) % s)
            for j in range(0, len(block), s):
                cells.append(_od_cell(k, s, bytes(padded[j : j + s])).rjust(col_w[(k, s)]))
            prefix = addr(off + skip) if t_i == 0 else (" " * len(addr(off + skip)))
            await out.write(fsencode(prefix + "".join(cells) + "\n"))
    if radix != "n":
        await out.write(fsencode(addr(total + skip) + "\n"))
    await out.flush()
    return run.status


# ============================================================================ xxd

XXD = Spec(
    "xxd",
    "[options] [infile [outfile]]",
    "Make a hex dump or do the reverse.",
    [
        Opt("a", "autoskip", help="toggle autoskip: A single '*' replaces nul-lines"),
        Opt("b", "bits", help="binary digit dump"),
        Opt("c", "cols", arg="cols", help="format <cols> octets per line"),
        Opt("E", "EBCDIC", help="show characters in EBCDIC"),
        Opt("e", None, help="little-endian dump", dest="little"),
        Opt("g", "groupsize", arg="bytes", help="number of octets per group in normal output"),
        Opt("i", "include", help="output in C include file style"),
        Opt("l", "len", arg="len", help="stop after <len> octets"),
        Opt("o", None, arg="off", help="add <off> to the displayed file position", dest="offset"),
        Opt("p", "ps", help="output in postscript plain hexdump style", dest="plain"),
        Opt("r", "revert", help="reverse operation: convert (or patch) hexdump into binary"),
        Opt("s", "seek", arg="[+][-]seek", help="start at <seek> bytes abs. infile offset"),
        Opt("u", None, help="use upper case hex letters", dest="upper"),
    ],
    help_option=True,
)


def _xxd_num(text: str) -> int:
    t = text.strip()
    neg = t.startswith("-")
    t = t.lstrip("+-")
    v = int(t, 0) if t.lower().startswith("0x") or (t.startswith("0") and len(t) > 1) else int(t)
    return -v if neg else v


async def prog_xxd(ctx: Any) -> int:
    argv = list(ctx.argv)
    # xxd spells long options with one dash (-cols, -ps ...): map the common ones
    longs = {
        "-ps": "-p",
        "-plain": "-p",
        "-postscript": "-p",
        "-cols": "-c",
        "-len": "-l",
        "-seek": "-s",
        "-revert": "-r",
        "-include": "-i",
        "-groupsize": "-g",
        "-bits": "-b",
        "-autoskip": "-a",
        "-upper": "-u",
    }
    argv = [argv[0]] + [longs.get(a, a) for a in argv[1:]]
    args = await parse_or_exit(ctx, XXD, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "xxd")
    ops = args.operands
    try:
        cols = _xxd_num(args["cols"]) if args.get("cols") is not None else None
        group = _xxd_num(args["groupsize"]) if args.get("groupsize") is not None else None
        length = _xxd_num(args["len"]) if args.get("len") is not None else None
        seek = _xxd_num(args["seek"]) if args.get("seek") is not None else 0
        disp_off = _xxd_num(args["offset"]) if args.get("offset") is not None else 0
    except ValueError:
        await run.err("invalid number")
        return 1
    name = ops[0] if ops else "-"
    fd = await run.open(name)
    if fd is None:
        return 2
    try:
        data = await ctx.read_all(fd)
    finally:
        await run.close(fd)
    out_fd = 1
    if len(ops) > 1 and ops[1] != "-":
        from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

        out_fd = await ctx.open(ops[1], O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    out = Writer(ctx, out_fd)
    upper = bool(args.get("upper"))
    hexfmt = "{:02X}" if upper else "{:02x}"
    if args.get("revert"):
        if args.get("plain"):
            digits = re.sub(rb"[^0-9a-fA-F]", b"", data)
            if len(digits) % 2:
                digits = digits[:-1]
            await out.write(binascii.unhexlify(digits))
        else:
            buf = bytearray()
            for line in data.split(b"\n"):
                m = re.match(rb"\s*([0-9a-fA-F]+):\s?(.*)", line)
                if not m:
                    continue
                pos = int(m.group(1), 16) + seek
                hexpart = m.group(2).split(b"  ")[0]
                digits = re.sub(rb"[^0-9a-fA-F]", b"", hexpart)
                chunk = binascii.unhexlify(digits[: len(digits) // 2 * 2])
                if len(buf) < pos:
                    buf += b"\0" * (pos - len(buf))
                buf[pos : pos + len(chunk)] = chunk
            await out.write(bytes(buf))
        await out.flush()
        return 0
    if seek < 0:
        data = data[seek:]
        base = max(len(data) + seek, 0)
        base = 0
    else:
        data = data[seek:]
        base = seek
    if length is not None:
        data = data[:length]
    if args.get("plain"):
        cols = cols or 30
        hx = data.hex()
        if upper:
            hx = hx.upper()
        for i in range(0, len(hx), cols * 2):
            await out.write(hx[i : i + cols * 2].encode() + b"\n")
        await out.flush()
        return 0
    if args.get("include"):
        cols = cols or 12
        var = None
        if name != "-":
            var = re.sub(r"[^0-9A-Za-z]", "_", name)
            if var[:1].isdigit():
                var = "__" + var
            await out.write(f"unsigned char {var}[] = {{\n".encode())
        items = [("0x" + hexfmt.format(b)) for b in data]
        lines = [", ".join(items[i : i + cols]) for i in range(0, len(items), cols)]
        if lines:
            await out.write(("  " + ",\n  ".join(lines) + "\n").encode())
        if var is not None:
            await out.write(f"}};\nunsigned int {var}_len = {len(data)};\n".encode())
        await out.flush()
        return 0
    bits = bool(args.get("bits"))
    cols = cols or (6 if bits else 16)
    if group is None:
        group = 1 if bits else (4 if args.get("little") else 2)
    if group <= 0:
        group = cols
    prev_zero = starred = False
    for off in range(0, len(data), cols):
        chunk = data[off : off + cols]
        if args.get("autoskip") and chunk == b"\0" * cols and off + cols < len(data):
            if prev_zero:
                if not starred:
                    await out.write(b"*\n")
                    starred = True
                continue
            prev_zero = True
        else:
            prev_zero = starred = False
        groups = []
        for g in range(0, cols, group):
            part = chunk[g : g + group]
            if bits:
                groups.append("".join(f"{b:08b}" for b in part))
                continue
            if args.get("little"):
                part = part[::-1]
            groups.append("".join(hexfmt.format(b) for b in part))
        unit = 8 if bits else 2
        hexcol = " ".join(groups).rstrip()
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        width_needed = (cols // group) * (group * unit + 1) + (1 if cols % group else 0) * ((cols % group) * unit + 1)
        line = f"{off + base + disp_off:08x}: " + hexcol.ljust(width_needed) + " " + text
        await out.write(line.encode("latin-1") + b"\n")
    await out.flush()
    if out_fd != 1:
        await ctx.close(out_fd)
    return 0


# ============================================================================ hexdump

HEXDUMP = Spec(
    "hexdump",
    "[options] <file>...",
    "Display file contents in hexadecimal, decimal, octal, or ascii.",
    [
        Opt("b", "one-byte-octal", help="one-byte octal display"),
        Opt("c", "one-byte-char", help="one-byte character display"),
        Opt("C", "canonical", help="canonical hex+ASCII display"),
        Opt("d", "two-bytes-decimal", help="two-byte decimal display"),
        Opt("o", "two-bytes-octal", help="two-byte octal display"),
        Opt("x", "two-bytes-hex", help="two-byte hexadecimal display"),
        Opt("n", "length", arg="length", help="interpret only length bytes of input"),
        Opt("s", "skip", arg="offset", help="skip offset bytes from the beginning"),
        Opt("v", "no-squeezing", help="output identical lines"),
    ],
)


async def prog_hexdump(ctx: Any) -> int:
    args = await parse_or_exit(ctx, HEXDUMP)
    if isinstance(args, int):
        return args
    run = Run(ctx, "hexdump")
    data = bytearray()
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        data += await ctx.read_all(fd)
        await run.close(fd)
    try:
        skip = int(args["skip"], 0) if args.get("skip") is not None else 0
        length = int(args["length"], 0) if args.get("length") is not None else None
    except ValueError:
        await run.err(f"invalid number: {quote(args.get('skip') or args.get('length'))}")
        return 1
    data = data[skip:]
    if length is not None:
        data = data[:length]
    out = Writer(ctx)
    squeeze = not args.get("no_squeezing")
    modes = [
        k
        for k, _ in args.order
        if k
        in ("one_byte_octal", "one_byte_char", "canonical", "two_bytes_decimal", "two_bytes_octal", "two_bytes_hex")
    ]
    prev = None
    starred = False
    n = len(data)
    for off in range(0, n, 16):
        chunk = data[off : off + 16]
        if squeeze and chunk == prev and len(chunk) == 16:
            if not starred:
                await out.write(b"*\n")
                starred = True
            continue
        starred = False
        prev = chunk
        if not modes:
            words = []
            padded = chunk + b"\0" * (len(chunk) % 2)
            for j in range(0, len(chunk), 2):
                words.append(f"{int.from_bytes(padded[j : j + 2], 'little'):04x}")
            line = f"{off + skip:07x} " + " ".join(words)
            line = line.ljust(7 + 1 + 8 * 5 - 1) if len(chunk) < 16 else line
            await out.write(line.encode() + b"\n")
            continue
        for mode in modes:
            if mode == "canonical":
                hx = " ".join(f"{b:02x}" for b in chunk[:8])
                if len(chunk) > 8:
                    hx += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
                text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
                await out.write(f"{off + skip:08x}  {hx.ljust(48)}  |{text}|\n".encode())
            elif mode == "one_byte_char":
                cells = []
                for b in chunk:
                    cells.append(
                        {0: "\\0", 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}.get(
                            b, chr(b) if 32 <= b < 127 else f"{b:03o}"
                        ).rjust(4)
                    )
                await out.write((f"{off + skip:07x}" + "".join(cells).ljust(64)).encode("latin-1") + b"\n")
            elif mode == "one_byte_octal":
                await out.write((f"{off + skip:07x}" + "".join(f" {b:03o}" for b in chunk).ljust(64)).encode() + b"\n")
            else:
                padded = chunk + b"\0" * (len(chunk) % 2)
                vals = [int.from_bytes(padded[j : j + 2], "little") for j in range(0, len(chunk), 2)]
                fmt = {"two_bytes_decimal": "   {:05d}", "two_bytes_octal": "  {:06o}", "two_bytes_hex": "    {:04x}"}[
                    mode
                ]
                await out.write((f"{off + skip:07x}" + "".join(fmt.format(v) for v in vals).ljust(64)).encode() + b"\n")
    if n:
        width = 8 if "canonical" in modes else 7
        await out.write(f"{n + skip:0{width}x}\n".encode())
    await out.flush()
    return run.status


# ============================================================================ strings

STRINGS = Spec(
    "strings",
    "[option(s)] [file(s)]",
    "Display printable strings in [file(s)] (stdin by default)",
    [
        Opt("a", "all", help="Scan the entire file, not just the data section [default]"),
        Opt("n", "bytes", arg="number", help="Locate & print any sequence of at least [number] characters (default 4)"),
        Opt("t", "radix", arg="{o,d,x}", help="Print the location of the string in base 8, 10 or 16"),
        Opt("f", "print-file-name", help="Print the name of the file before each string"),
        Opt("w", "include-all-whitespace", help="Include all whitespace as valid string characters"),
        Opt("o", None, help="An alias for --radix=o", dest="octal"),
    ],
)


async def prog_strings(ctx: Any) -> int:
    argv = list(ctx.argv)
    argv = [argv[0]] + [("-n" + a[1:]) if re.fullmatch(r"-\d+", a) else a for a in argv[1:]]
    args = await parse_or_exit(ctx, STRINGS, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "strings")
    try:
        minlen = int(args.get("bytes", "4"))
        if minlen < 1:
            raise ValueError
    except ValueError:
        await run.err(f"invalid minimum string length {args.get('bytes')}")
        return 1
    if args.get("radix") is not None and args["radix"] not in ("o", "d", "x"):
        await run.err("invalid argument to -t/--radix")
        return 1
    radix = "o" if args.get("octal") else args.get("radix")
    printable = rb"[\t\x20-\x7e]" if not args.get("include_all_whitespace") else rb"[\t\n\v\f\r\x20-\x7e]"
    rx = re.compile(printable + b"{%d,}" % minlen)
    out = Writer(ctx)
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        try:
            data = await ctx.read_all(fd)
        finally:
            await run.close(fd)
        for m in rx.finditer(data):
            prefix = b""
            if args.get("print_file_name"):
                prefix = fsencode(name if name != "-" else "{standard input}") + b": "
            if radix:
                prefix += ({"o": "%7o ", "d": "%7d ", "x": "%7x "}[radix] % m.start()).encode()
            await out.write(prefix + m.group(0) + b"\n")
    await out.flush()
    return run.status


# ============================================================================ iconv

ICONV = Spec(
    "iconv",
    "[OPTION...] [FILE...]",
    "Convert encoding of given files from one encoding to another.",
    [
        Opt("f", "from-code", arg="NAME", help="encoding of original text"),
        Opt("t", "to-code", arg="NAME", help="encoding for output"),
        Opt("l", "list", help="list all known coded character sets"),
        Opt("c", None, help="omit invalid characters from output", dest="omit"),
        Opt("o", "output", arg="FILE", help="output file"),
        Opt("s", "silent", help="suppress warnings"),
    ],
)


def _codec(name: str) -> tuple[str, str]:
    """(python codec, error mode suffix) for an iconv name like ``UTF-8//TRANSLIT``."""
    base, _, suffix = name.partition("//")
    base = base.strip() or "UTF-8"
    alias = {
        "UTF8": "utf-8",
        "LATIN1": "latin-1",
        "ISO-8859-1": "latin-1",
        "ASCII": "ascii",
        "US-ASCII": "ascii",
        "UTF-16": "utf-16",
        "UTF16": "utf-16",
        "UCS-2": "utf-16-le",
        "WINDOWS-1252": "cp1252",
        "CP1252": "cp1252",
        "UTF-32": "utf-32",
    }
    py = alias.get(base.upper(), base)
    codecs.lookup(py)
    return py, suffix.upper()


async def prog_iconv(ctx: Any) -> int:
    args = await parse_or_exit(ctx, ICONV)
    if isinstance(args, int):
        return args
    run = Run(ctx, "iconv")
    if args.get("list"):
        await ctx.write_all(1, b"ASCII\nISO-8859-1\nLATIN1\nUTF-8\nUTF-16\nUTF-16LE\nUTF-16BE\nUTF-32\nCP1252\n")
        return 0
    try:
        src, _ = _codec(args.get("from_code", "UTF-8"))
    except LookupError:
        await run.err(f"conversion from `{args.get('from_code')}' is not supported")
        return 1
    try:
        dst, mode = _codec(args.get("to_code", "UTF-8"))
    except LookupError:
        await run.err(f"conversion to `{args.get('to_code')}' is not supported")
        return 1
    omit = bool(args.get("omit")) or "IGNORE" in mode
    out_fd = 1
    if args.get("output"):
        from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

        out_fd = await ctx.open(args["output"], O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        data = await ctx.read_all(fd)
        await run.close(fd)
        try:
            text = data.decode(src)
        except UnicodeDecodeError as e:
            good = data[: e.start].decode(src)
            if omit:
                text = data.decode(src, "ignore")
            else:
                await ctx.write_all(out_fd, good.encode(dst, "replace"))
                await run.err(f"illegal input sequence at position {e.start}")
                return 1
        try:
            res = text.encode(dst)
        except UnicodeEncodeError as e:
            if omit or "TRANSLIT" in mode:
                res = text.encode(dst, "ignore" if omit else "replace")
                if omit:
                    await ctx.write_all(out_fd, res)
                    continue
            else:
                await ctx.write_all(out_fd, text[: e.start].encode(dst))
                pos = len(text[: e.start].encode(src))
                await run.err(f"illegal input sequence at position {pos}")
                return 1
        await ctx.write_all(out_fd, res)
    return run.status


# ============================================================================ shuf

SHUF = Spec(
    "shuf",
    "[OPTION]... [FILE]\n  or:  shuf -e [OPTION]... [ARG]...\n  or:  shuf -i LO-HI [OPTION]...",
    "Write a random permutation of the input lines to standard output.",
    [
        Opt("e", "echo", help="treat each ARG as an input line"),
        Opt("i", "input-range", arg="LO-HI", help="treat each number LO through HI as an input line"),
        Opt("n", "head-count", arg="COUNT", help="output at most COUNT lines"),
        Opt("o", "output", arg="FILE", help="write result to FILE instead of standard output"),
        Opt(None, "random-source", arg="FILE", help="get random bytes from FILE"),
        Opt("r", "repeat", help="output lines can be repeated"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)


async def prog_shuf(ctx: Any) -> int:
    import random

    args = await parse_or_exit(ctx, SHUF)
    if isinstance(args, int):
        return args
    run = Run(ctx, "shuf")
    eol = b"\0" if args.get("zero_terminated") else b"\n"
    if args.get("random_source") is not None:
        fd = await run.open(args["random_source"])
        if fd is None:
            return 1
        seed = await ctx.read(fd, 64)
        await run.close(fd)
        rng = random.Random(seed)
    else:
        rng = random.Random(secrets.randbits(128))
    if args.get("echo") and args.get("input_range") is not None:
        return await run.usage("cannot combine -e and -i options")
    if args.get("input_range") is not None:
        m = re.fullmatch(r"(\d+)-(\d+)", args["input_range"])
        if not m or int(m.group(2)) + 1 < int(m.group(1)):
            await run.err(f"invalid input range: {quote(args['input_range'])}")
            return 1
        if args.operands:
            return await run.usage(f"extra operand {quote(args.operands[0])}")
        lines = [str(i).encode() for i in range(int(m.group(1)), int(m.group(2)) + 1)]
    elif args.get("echo"):
        lines = [fsencode(a) for a in args.operands]
    else:
        if len(args.operands) > 1:
            return await run.usage(f"extra operand {quote(args.operands[1])}")
        fd = await run.open(args.operands[0] if args.operands else "-")
        if fd is None:
            return 1
        data = await ctx.read_all(fd)
        await run.close(fd)
        lines = data.split(eol)
        if lines and lines[-1] == b"":
            lines.pop()
    count = None
    if args.get("head_count") is not None:
        try:
            count = int(args["head_count"])
            if count < 0:
                raise ValueError
        except ValueError:
            await run.err(f"invalid line count: {quote(args['head_count'])}")
            return 1
    out_fd = 1
    if args.get("output"):
        from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

        out_fd = await ctx.open(args["output"], O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    out = Writer(ctx, out_fd)
    if args.get("repeat"):
        if not lines:
            if count:
                await run.err("no lines to repeat")
                return 1
            return 0
        k = 0
        while count is None or k < count:
            await out.write(rng.choice(lines) + eol)
            k += 1
    else:
        rng.shuffle(lines)
        for line in lines[:count] if count is not None else lines:
            await out.write(line + eol)
    await out.flush()
    return 0


PROGRAMS = {
    "echo": prog_echo,
    "printf": prog_printf,
    "yes": prog_yes,
    "seq": prog_seq,
    "base64": prog_base64,
    "base32": prog_base32,
    "cksum": prog_cksum,
    "cmp": prog_cmp,
    "expr": prog_expr,
    "od": prog_od,
    "xxd": prog_xxd,
    "hexdump": prog_hexdump,
    "strings": prog_strings,
    "iconv": prog_iconv,
    "shuf": prog_shuf,
    **{name: _make_sum(name) for name in _ALGOS},
}
_ = (zlib, InvalidOperation)
