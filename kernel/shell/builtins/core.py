"""Core builtins: the ones that read or change the shell's own state or control flow.

``: true false echo printf exit return break continue shift set unset export readonly local
declare typeset eval source . exec command type hash getopts read mapfile readarray let test [``
"""

from __future__ import annotations

import re
from typing import Any

from kernel.errors import KernelError
from kernel.shell.expand import ExpansionError, FatalExpansion, printf_q, shell_quote
from kernel.shell.interp import (
    BreakLoop,
    ContinueLoop,
    ExitShell,
    ReturnFn,
    errno_text,
)
from kernel.shell.lexer import ShellSyntaxError, decode_ansi_c
from kernel.shell.state import LONG_OPTIONS, OPTION_LETTERS, VarError
from kernel.syscalls import O_CLOEXEC, O_RDONLY

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_name(s: str) -> bool:
    return _NAME.match(s) is not None


async def b_colon(sh: Any, argv: list[str]) -> int:
    return 0


async def b_false(sh: Any, argv: list[str]) -> int:
    return 1


# ---------------------------------------------------------------- echo / printf
def _echo_escapes(s: str, dash: bool = False) -> tuple[str, bool]:
    """``echo -e`` escapes; returns (text, stop) where stop is ``\\c``.  *dash*: dash's echo,
    where ``\\NNN`` is octal without the leading 0 and there is no ``\\x``."""
    out = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        i += 2
        if d == "c":
            return "".join(out), True
        if dash and d in "1234567":
            j = i
            while j < n and j < i + 2 and s[j] in "01234567":
                j += 1
            out.append(chr(int(d + s[i:j], 8) & 0xFF))
            i = j
        elif d == "0":
            j = i
            while j < n and j < i + 3 and s[j] in "01234567":
                j += 1
            out.append(chr(int(s[i:j] or "0", 8) & 0xFF))
            i = j
        elif d == "x" and not dash:
            j = i
            while j < n and j < i + 2 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i:
                out.append("\\x")
            else:
                out.append(chr(int(s[i:j], 16)))
            i = j
        else:
            m = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                 "e": "\x1b", "E": "\x1b", "\\": "\\"}.get(d)
            out.append(m if m is not None else "\\" + d)
    return "".join(out), False


async def b_echo(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    newline = True
    escapes = sh.st.shopts.get("xpg_echo", False)
    if sh.st.posix:  # sh is dash here: backslash escapes always, and -n the only option
        escapes = True
        if args and args[0] == "-n":
            newline = False
            args = args[1:]
    while (not sh.st.posix and args and len(args[0]) > 1 and args[0][0] == "-"
           and all(c in "neE" for c in args[0][1:])):
        for c in args[0][1:]:
            if c == "n":
                newline = False
            elif c == "e":
                escapes = True
            else:
                escapes = False
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = _echo_escapes(text, sh.st.posix)
        if stop:
            newline = False
    if newline:
        text += "\n"
    try:
        await sh.out(text)
    except KernelError as e:
        if e.code == "EPIPE":
            return 141
        await sh.error(f"echo: write error: {errno_text(e)}")
        return 1
    return 0


_FMT = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d*))?[hlLqjzt]*([diouxXfFeEgGaAcsbq%])")
#: Everything of a conversion before its letter (to name a bad letter as bash does).
_FMT_HEAD = re.compile(r"%[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d*))?[hlLqjzt]*")


def _num_arg(s: str, errors: list[str]) -> int:
    t = s.strip()
    if not t:
        return 0
    if t[0] in "'\"":
        return ord(t[1]) if len(t) > 1 else 0
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[+-]?0[0-7]+", t):
            return int(t, 8)
        return int(t, 10)
    except ValueError:
        m = re.match(r"[+-]?\d+", t)
        errors.append(f"{s}: invalid number")
        return int(m.group(0)) if m else 0


def _float_arg(s: str, errors: list[str]) -> float:
    t = s.strip()
    if t and t[0] in "'\"":
        return float(ord(t[1])) if len(t) > 1 else 0.0
    try:
        return float(t) if t else 0.0
    except ValueError:
        errors.append(f"{s}: invalid number")
        return 0.0


def printf_format(fmt: str, args: list[str], errors: list[str]) -> str:
    """bash's printf: the format is reused while arguments remain."""
    out: list[str] = []
    pos = 0
    fmt_dec = fmt
    while True:
        consumed = 0
        i = 0
        n = len(fmt_dec)
        stop = False
        while i < n:
            c = fmt_dec[i]
            if c == "\\":
                seg, j = _printf_escape(fmt_dec, i)
                out.append(seg)
                i = j
                continue
            if c != "%":
                out.append(c)
                i += 1
                continue
            m = _FMT.match(fmt_dec, i)
            if m is None:  # bash stops there: what came before is printed, nothing after
                head = _FMT_HEAD.match(fmt_dec, i)
                j = head.end() if head is not None else i + 1
                if j < n:
                    errors.append(f"`{fmt_dec[j]}': invalid format character")
                else:
                    errors.append("`%': missing format character")
                stop = True
                break
            flags, width, prec, conv = m.groups()
            i = m.end()
            if conv == "%":
                out.append("%")
                continue
            if width == "*":
                width = str(_num_arg(args[pos], errors)) if pos < len(args) else "0"
                pos += 1
                consumed += 1
            if prec == "*":
                prec = str(_num_arg(args[pos], errors)) if pos < len(args) else "0"
                pos += 1
                consumed += 1
            have = pos < len(args)
            arg = args[pos] if have else None
            if have:
                pos += 1
                consumed += 1
            spec = "%" + flags + (width or "") + (("." + prec) if prec is not None else "")
            if conv in "di":
                v = _num_arg(arg, errors) if arg is not None else 0
                out.append((spec + "d") % v)
            elif conv in "ouxX":
                v = _num_arg(arg, errors) if arg is not None else 0
                if v < 0:
                    v &= (1 << 64) - 1
                if conv == "o" and "#" in flags:  # C's 010, not Python's 0o10
                    digits = f"%.{prec}o" % v if prec else "%o" % v
                    if not digits.startswith("0"):
                        digits = "0" + digits
                    w = int(width) if width else 0
                    if "-" in flags:
                        text = digits.ljust(w)
                    elif "0" in flags and not prec:
                        text = digits.rjust(w, "0")
                    else:
                        text = digits.rjust(w)
                else:
                    text = (spec + conv) % v if conv != "u" else (spec + "d") % v
                out.append(text)
            elif conv in "fFeEgGaA":
                fv = _float_arg(arg, errors) if arg is not None else 0.0
                if conv in "aA":
                    out.append(float.hex(fv))
                else:
                    out.append((spec + conv) % fv)
            elif conv == "c":
                s = (arg or "")[:1]
                out.append((spec.replace(".", ".") + "s") % s if s or width else "")
            elif conv == "s":
                out.append((spec + "s") % (arg or ""))
            elif conv == "b":
                text, st = _echo_escapes(_b_octal(arg or ""))
                out.append((spec + "s") % text)
                if st:
                    stop = True
                    break
            elif conv == "q":
                out.append((spec + "s") % printf_q(arg or ""))
        if stop or consumed == 0 or pos >= len(args):
            break
    return "".join(out)


def _b_octal(s: str) -> str:
    # %b takes \0NNN and also \NNN
    return re.sub(r"\\([1-7][0-7]{0,2})", lambda m: "\\0" + m.group(1), s)


def _printf_escape(s: str, i: int) -> tuple[str, int]:
    n = len(s)
    if i + 1 >= n:
        return "\\", i + 1
    d = s[i + 1]
    if d in "01234567":
        j = i + 1
        while j < n and j < i + 4 and s[j] in "01234567":
            j += 1
        return chr(int(s[i + 1:j], 8) & 0xFF), j
    if d == "x":
        j = i + 2
        while j < n and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
            j += 1
        if j == i + 2:
            return "\\x", j
        return chr(int(s[i + 2:j], 16)), j
    if d in "uU":  # \uHHHH, \UHHHHHHHH: a Unicode character (bash's printf)
        j = i + 2
        lim = i + 2 + (4 if d == "u" else 8)
        while j < n and j < lim and s[j] in "0123456789abcdefABCDEF":
            j += 1
        if j == i + 2:
            return "\\" + d, j
        try:
            return chr(int(s[i + 2:j], 16)), j
        except (ValueError, OverflowError):
            return "\\" + d + s[i + 2:j], j
    m = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b",
         "\\": "\\", '"': '"', "'": "'", "?": "?"}.get(d)
    if m is None:
        return "\\" + d, i + 2
    return m, i + 2


async def b_printf(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    var = None
    if args and args[0] == "-v":
        if len(args) < 2:
            await sh.error("printf: -v: option requires an argument")
            await sh.out("printf: usage: printf [-v var] format [arguments]\n", 2)
            return 2
        var = args[1]
        args = args[2:]
        base = var[:-1].partition("[")[0] if var.endswith("]") else var
        if not is_name(base):
            await sh.error(f"printf: `{var}': not a valid identifier")
            return 2
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        await sh.error("printf: usage: printf [-v var] format [arguments]")
        return 2
    errors: list[str] = []
    text = printf_format(args[0], args[1:], errors)
    status = 0
    for e in errors:
        if e:
            await sh.error(f"printf: {e}")
        status = 1
    if var is not None:
        try:
            if "[" in var and var.endswith("]"):
                base, _, sub = var[:-1].partition("[")
                v = sh.st.lookup(base)
                key = sub if v is not None and v.kind == "A" else sh.arith_eval(sub)
                sh.st.set_index(base, key, text)
            else:
                sh.st.set(var, text)
        except VarError as e:
            await sh.error(f"printf: {e}")
            return 1
        return status
    try:
        await sh.out(text)
    except KernelError as e:
        if e.code == "EPIPE":
            return 141
        raise
    return status


# ---------------------------------------------------------------- control flow
def _int_arg(s: str) -> int | None:
    try:
        return int(s.strip())
    except ValueError:
        return None


async def b_exit(sh: Any, argv: list[str]) -> int:
    status = sh.st.last_status
    if len(argv) > 1:
        v = _int_arg(argv[1])
        if v is None:
            await sh.error(f"exit: {argv[1]}: numeric argument required")
            status = 2
        else:
            status = v & 0xFF
    raise ExitShell(status)


async def b_return(sh: Any, argv: list[str]) -> int:
    status = sh.st.last_status
    if len(argv) > 1:
        v = _int_arg(argv[1])
        if v is None:
            await sh.error(f"return: {argv[1]}: numeric argument required")
            status = 2
        else:
            status = v & 0xFF
    if not sh.st.funcnames and not getattr(sh, "in_source", 0):
        await sh.error("return: can only `return' from a function or sourced script")
        return 2
    raise ReturnFn(status)


async def _loop_ctl(sh: Any, argv: list[str], exc: type) -> int:
    n = 1
    if len(argv) > 1:
        v = _int_arg(argv[1])
        if v is None:
            await sh.error(f"{argv[0]}: {argv[1]}: numeric argument required")
            raise ExitShell(128) if False else ExitShell(1)
        if v < 1:
            await sh.error(f"{argv[0]}: {argv[1]}: loop count out of range")
            return 1
        n = v
    if sh.loop_depth <= 0:
        if not sh.st.posix:  # dash says nothing
            await sh.error(f"{argv[0]}: only meaningful in a `for', `while', or `until' loop")
        return 0
    raise exc(min(n, sh.loop_depth))


async def b_break(sh: Any, argv: list[str]) -> int:
    return await _loop_ctl(sh, argv, BreakLoop)


async def b_continue(sh: Any, argv: list[str]) -> int:
    return await _loop_ctl(sh, argv, ContinueLoop)


async def b_shift(sh: Any, argv: list[str]) -> int:
    n = 1
    if len(argv) > 1:
        v = _int_arg(argv[1])
        if v is None:
            await sh.error(f"shift: {argv[1]}: numeric argument required")
            return 1
        n = v
    if n < 0 or n > len(sh.st.positional):
        if sh.st.posix:
            await sh.error("shift: can't shift that many")
            raise ExitShell(2)
        if n < 0:
            await sh.error(f"shift: {argv[1]}: shift count out of range")
        return 1
    sh.st.positional = sh.st.positional[n:]
    return 0


# ---------------------------------------------------------------- set / shopt-like state
async def b_set(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    if not args:
        lines = []
        seen = {}
        for s in st.scopes:
            seen.update(s)
        for k in sorted(seen):
            v = seen[k]
            if v.value is None:
                continue
            lines.append(f"{k}={_declare_value(v)}" if v.kind != "s" else f"{k}={_quote_value(v.value)}")
        await sh.out("".join(line + "\n" for line in lines))
        return 0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            st.positional = args[i + 1:]
            return 0
        if a == "-":
            st.options["xtrace"] = st.options["verbose"] = False
            if i + 1 < len(args):
                st.positional = args[i + 1:]
            return 0
        if a[0] in "-+" and len(a) > 1:
            on = a[0] == "-"
            if a[1:] == "o" or a[1:] == "o":
                if i + 1 >= len(args):
                    await _print_options(sh, on)
                    return 0
                name = args[i + 1]
                if name not in LONG_OPTIONS:
                    await sh.error(f"set: {name}: invalid option name")
                    return 2
                st.options[name] = on
                if name == "posix":
                    st.posix = on
                i += 2
                continue
            nxt = i + 1  # each ``o`` of a bundle (``set -eo pipefail``) takes the next argument
            for c in a[1:]:
                if c == "o":
                    if nxt >= len(args):
                        await _print_options(sh, on)
                        return 0
                    name = args[nxt]
                    nxt += 1
                    if name not in LONG_OPTIONS:
                        await sh.error(f"set: {name}: invalid option name")
                        return 2
                    st.options[name] = on
                    if name == "posix":
                        st.posix = on
                    continue
                letter_name = OPTION_LETTERS.get(c)
                if letter_name is None:
                    await sh.error(f"set: {a[0]}{c}: invalid option")
                    return 2
                st.options[letter_name] = on
            i = nxt
            continue
        st.positional = args[i:]
        return 0
    return 0


async def _print_options(sh: Any, on: bool) -> None:
    names = sorted(n for n in LONG_OPTIONS if n not in ("nolog",))
    if on:
        text = "".join(f"{n:<15}\t{'on' if sh.st.options.get(n) else 'off'}\n" for n in names)
    else:
        text = "".join(f"set {'-' if sh.st.options.get(n) else '+'}o {n}\n" for n in names)
    await sh.out(text)


def _quote_value(s: str) -> str:
    if s and all(c.isalnum() or c in "_-./:=@%+,^" for c in s):
        return s
    return shell_quote(s)


def _dq(s: str) -> str:
    """A value as declare -p quotes it: double quotes, or $'...' when it holds control characters."""
    if any(ord(c) < 32 or c == "\x7f" for c in s):
        return shell_quote(s)
    return '"' + re.sub(r'(["\\$`])', r"\\\1", s) + '"'


def _declare_value(v: Any) -> str:
    if v.kind == "a":
        return "(" + " ".join(f"[{k}]={_dq(v.value[k])}" for k in sorted(v.value)) + ")"
    if v.kind == "A":
        return "(" + "".join(f"[{_assoc_key(k)}]={_dq(val)} " for k, val in v.value.items()) + ")"
    return _dq(v.value)


def _assoc_key(k: str) -> str:
    if k and all(c.isalnum() or c in "_-./:@%+,^" for c in k):
        return k
    return _dq(k)


def _attr_flags(v: Any) -> str:
    f = ""
    if v.kind == "a":
        f += "a"
    elif v.kind == "A":
        f += "A"
    if v.integer:
        f += "i"
    if v.lower:
        f += "l"
    if v.nameref:
        f += "n"
    if v.readonly:
        f += "r"
    if v.upper:
        f += "u"
    if v.exported:
        f += "x"
    return f or "-"


def declare_line(name: str, v: Any) -> str:
    flags = _attr_flags(v)
    if v.value is None or v.fresh:
        return f"declare -{flags} {name}"
    return f"declare -{flags} {name}={_declare_value(v)}"


async def b_unset(sh: Any, argv: list[str]) -> int:
    st = sh.st
    mode = "v"
    status = 0
    args = argv[1:]
    while args and args[0].startswith("-") and len(args[0]) > 1:
        for c in args[0][1:]:
            if c in "fvn":
                mode = c if c != "n" else "v"
            else:
                await sh.error(f"unset: -{c}: invalid option")
                return 2
        args = args[1:]
    for name in args:
        if mode == "f":
            if name in st.readonly_functions:
                await sh.error(f"unset: {name}: cannot unset: readonly function")
                status = 1
                continue
            st.functions.pop(name, None)
            continue
        if "[" in name and name.endswith("]"):
            base, _, sub = name[:-1].partition("[")
            v = st.lookup(base)
            if v is None:
                continue
            if v.readonly:
                await sh.error(f"unset: {base}: cannot unset: readonly variable")
                status = 1
                continue
            if sub in ("@", "*"):
                st.unset(base)
                continue
            if v.kind == "A":
                v.value.pop(sub, None)
            elif v.kind == "a":
                try:
                    idx = sh.arith_eval(sub)
                except ExpansionError as e:
                    await sh.error(e.message)
                    status = 1
                    continue
                if idx < 0 and v.value:
                    idx += max(v.value) + 1
                v.value.pop(idx, None)
            elif sub in ("0",):
                st.unset(base)
            continue
        if not is_name(name):
            if sh.st.posix:
                await sh.error(f"unset: `{name}': not a valid identifier")
                status = 1
            continue
        v = st.lookup(name)
        if v is None and mode == "v" and name in st.functions and False:
            continue
        try:
            if v is not None:
                st.unset(name)
            elif not sh.st.posix and name in st.functions and mode != "v":
                if name in st.readonly_functions:
                    raise VarError(f"{name}: cannot unset: readonly function")
                del st.functions[name]
        except VarError as e:
            await sh.error(f"unset: {e}")
            if sh.st.posix:
                raise ExitShell(2) from None
            status = 1
    return status


async def _compound_text(sh: Any, name: str, value: str, *, local: bool, export: bool | None) -> bool:
    """``declare -a a='(1 2 3)'``: a value that reads as ``( … )`` is parsed as a compound
    assignment, as bash does for an array declaration."""
    try:
        node = sh.new_parser(f"{name}={value}").parse_next()
        cmd = node.items[0][0].first.commands[0]
        a = cmd.assigns[0]
    except (ShellSyntaxError, AttributeError, IndexError):
        return False
    if a.array is None or cmd.words or len(node.items) != 1:
        return False
    await sh.assign(a, local=local, export=export)
    return True


async def _decl_assign(sh: Any, arg: str, word_assign: Any, *, local: bool, export: bool | None = None,
                       compound: bool = False) -> tuple[str, bool]:
    """Perform ``name=value`` given to a declaration builtin; returns (name, assigned)."""
    if compound and word_assign is not None and word_assign.array is None and word_assign.index is None \
            and word_assign.value is not None and not word_assign.append:
        text = await sh.expand_str(word_assign.value)
        if text.startswith("(") and text.endswith(")") and await _compound_text(
                sh, word_assign.name, text, local=local, export=export):
            return word_assign.name, True
    if word_assign is not None:
        await sh.assign(word_assign, local=local, export=export)
        return word_assign.name, True
    if "=" in arg:
        name, _, value = arg.partition("=")
        append = name.endswith("+")
        if append:
            name = name[:-1]
        base = name.split("[", 1)[0]
        if not is_name(base):
            raise VarError(f"`{arg}': not a valid identifier")
        from kernel.shell.ast import Assign, Lit, Word
        idx = None
        if "[" in name and name.endswith("]"):
            idx = Word([Lit(name[len(base) + 1:-1])])
        await sh.assign(Assign(base, Word([Lit(value)] if value else []), idx, None, append), local=local,
                        export=export)
        return base, True
    return arg, False


def _declare_parse(argv: list[str]) -> tuple[set[str], set[str], list[str]] | str:
    on: set[str] = set()
    off: set[str] = set()
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if len(a) > 1 and a[0] in "-+" and "=" not in a:
            for c in a[1:]:
                if c not in "aAfFgilnprtuxI":
                    return f"{argv[0]}: {a[0]}{c}: invalid option"
                (on if a[0] == "-" else off).add(c)
            i += 1
            continue
        break
    return on, off, argv[i:]


async def b_declare(sh: Any, argv: list[str], *, local: bool | None = None, words: list | None = None) -> int:
    st = sh.st
    parsed = _declare_parse(argv)
    if isinstance(parsed, str):
        await sh.error(parsed)
        return 2
    on, off, names = parsed
    if local is None:
        local = len(st.scopes) > 1 and "g" not in on
    status = 0
    if "f" in on or "F" in on:
        if not names:
            for n in sorted(st.functions):
                await sh.out(_func_text(st.functions[n]) + "\n" if "F" not in on else f"declare -f {n}\n")
            return 0
        for n in names:
            fn = st.functions.get(n)
            if fn is None:
                status = 1
                continue
            await sh.out(_func_text(fn) + "\n" if "F" not in on else f"{n}\n")
        return status
    if "p" in on or (not names and not (on - {"g"}) and not off):
        if not names:
            seen: dict = {}
            for s in st.scopes:
                seen.update(s)
            for n in sorted(seen):
                v = seen[n]
                filt = on - {"p", "g"}
                if filt and not _has_attrs(v, filt):
                    continue
                await sh.out(declare_line(n, v) + "\n")
            return 0
        for n in names:
            v = st.lookup(n)
            if v is None:
                await sh.error(f"{argv[0]}: {n}: not found")
                status = 1
                continue
            await sh.out(declare_line(n, v) + "\n")
        return status
    if not names:
        seen = {}
        for s in st.scopes:
            seen.update(s)
        for n in sorted(seen):
            if _has_attrs(seen[n], on - {"g"}):
                await sh.out(declare_line(n, seen[n]) + "\n")
        return 0
    word_assigns = getattr(sh, "_decl_words", None) or {}
    for arg in names:
        base = arg.split("=", 1)[0].split("[", 1)[0].rstrip("+")
        if not is_name(base):
            await sh.error(f"{argv[0]}: `{arg}': not a valid identifier")
            status = 1
            continue
        if local:
            scope = st.scopes[-1]
            v = scope.get(base)
            if v is None:
                from kernel.shell.state import Var
                outer = st.lookup(base)
                if outer is not None and outer.readonly and "p" not in on:
                    await sh.error(f"{argv[0]}: {base}: readonly variable")
                    status = 1
                    continue
                v = scope[base] = Var()
        else:
            v = st.lookup(base)
            if v is None:
                from kernel.shell.state import Var
                v = st.scopes[0][base] = Var()
        if v.readonly and ("=" in arg or on - {"r", "p", "g"} or off):
            await sh.error(f"{argv[0]}: {base}: readonly variable")
            status = 1
            continue
        if "a" in on and v.kind == "s":
            v.kind = "a"
            v.fresh = v.value is None and "=" not in arg
            v.value = {} if v.value is None else {0: v.value}
        if "A" in on and v.kind != "A":
            if v.kind == "a" and v.value:
                await sh.error(f"{argv[0]}: {base}: cannot convert indexed to associative array")
                status = 1
                continue
            v.fresh = (v.value is None or v.fresh) and "=" not in arg
            v.kind = "A"
            v.value = {} if v.value is None else ({"0": v.value} if isinstance(v.value, str) else {})
        if "i" in on:
            v.integer = True
        if "i" in off:
            v.integer = False
        if "l" in on:
            v.lower, v.upper = True, False
        if "u" in on:
            v.upper, v.lower = True, False
        if "n" in on:
            v.nameref = True
        if "x" in on:
            v.exported = True
        if "x" in off:
            v.exported = False
        try:
            if "=" in arg:
                await _decl_assign(sh, arg, word_assigns.get(arg), local=local, compound=bool(on & {"a", "A"}))
        except VarError as e:
            await sh.error(f"{argv[0]}: {e}")
            status = 1
            continue
        except ExpansionError as e:
            await sh.error(e.message)
            status = 1
            continue
        if "r" in on:
            v.readonly = True
    return status


def _has_attrs(v: Any, attrs: set[str]) -> bool:
    for c in attrs:
        if c == "a" and v.kind != "a" or c == "A" and v.kind != "A":
            return False
        if c == "i" and not v.integer or c == "r" and not v.readonly or c == "x" and not v.exported:
            return False
    return True


def _func_text(fn: Any) -> str:
    """What ``declare -f``/``type`` print: bash's own reformatting of the parsed function."""
    from kernel.shell.deparse import function_text

    return function_text(fn)


async def b_local(sh: Any, argv: list[str]) -> int:
    if len(sh.st.scopes) <= 1 or not sh.st.funcnames:
        await sh.error("local: can only be used in a function")
        return 1
    if "-" in argv[1:]:
        # ``local -``: the single-letter options come back when the function returns
        sh.st.local_options.setdefault(len(sh.st.scopes), dict(sh.st.options))
        argv = [a for a in argv if a != "-"]
        if len(argv) == 1:
            return 0
    return await b_declare(sh, argv, local=True)


async def b_export(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    unexport = False
    pflag = False
    fflag = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        if args[0] == "--":
            args = args[1:]
            break
        for c in args[0][1:]:
            if c == "n":
                unexport = True
            elif c == "p":
                pflag = True
            elif c == "f":
                fflag = True
            else:
                await sh.error(f"export: -{c}: invalid option")
                return 2
        args = args[1:]
    if not args or pflag and not args:
        seen: dict = {}
        for s in st.scopes:
            seen.update(s)
        for n in sorted(seen):
            v = seen[n]
            if v.exported:
                await sh.out(declare_line(n, v) + "\n")
        return 0
    status = 0
    words = getattr(sh, "_decl_words", None) or {}
    for a in args:
        name = a.split("=", 1)[0].rstrip("+")
        if fflag:
            continue
        if not is_name(name.split("[", 1)[0]):
            await sh.error(f"export: `{a}': not a valid identifier")
            status = 1
            continue
        try:
            if "=" in a:
                await _decl_assign(sh, a, words.get(a), local=False)
        except VarError as e:
            await sh.error(str(e))
            status = 1
            continue
        v = st.lookup(name)
        if v is None:
            from kernel.shell.state import Var
            v = st.scopes[0][name] = Var()
        v.exported = not unexport
    return status


async def b_readonly(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    flags: set[str] = set()
    while args and args[0].startswith("-") and len(args[0]) > 1:
        if args[0] == "--":
            args = args[1:]
            break
        flags.update(args[0][1:])
        args = args[1:]
    if "f" in flags:
        status = 0
        for a in args:
            if a not in st.functions:
                await sh.error(f"readonly: {a}: not a function")
                status = 1
            else:
                st.readonly_functions.add(a)
        return status
    if not args:
        seen: dict = {}
        for s in st.scopes:
            seen.update(s)
        for n in sorted(seen):
            if seen[n].readonly:
                await sh.out(declare_line(n, seen[n]) + "\n")
        return 0
    status = 0
    words = getattr(sh, "_decl_words", None) or {}
    for a in args:
        name = a.split("=", 1)[0].rstrip("+")
        if not is_name(name):
            await sh.error(f"readonly: `{a}': not a valid identifier")
            status = 1
            continue
        try:
            if "=" in a:
                v0 = st.lookup(name)
                if v0 is not None and ("a" in flags) and v0.kind == "s":
                    v0.kind, v0.value = "a", {} if v0.value is None else {0: v0.value}
                await _decl_assign(sh, a, words.get(a), local=False)
        except VarError as e:
            await sh.error(f"readonly: {e}" if "readonly" not in str(e) else str(e))
            status = 1
            continue
        v = st.lookup(name)
        if v is None:
            from kernel.shell.state import Var
            v = st.scopes[0][name] = Var()
        if "a" in flags and v.kind == "s" and v.value is None:
            v.kind, v.value = "a", {}
        if "A" in flags and v.kind == "s" and v.value is None:
            v.kind, v.value = "A", {}
        v.readonly = True
    return status


# ---------------------------------------------------------------- eval / source / exec / command
async def b_eval(sh: Any, argv: list[str]) -> int:
    src = " ".join(argv[1:])
    if not src.strip():
        return 0
    try:
        return await sh.run_source(src, line=sh.st.lineno)
    except ShellSyntaxError as e:
        # bash: "eval: line N: message", then the offending line quoted on a second line
        line = e.line
        if "unexpected end of file" in e.message:
            line = sh.st.lineno + src.count("\n") + 1
        await sh.error(f"eval: line {line}: {e}", 0)
        if e.source_line and e.message.startswith("syntax error near"):
            await sh.error(f"eval: line {line}: `{e.source_line}'", 0)
        return 2


async def b_source(sh: Any, argv: list[str]) -> int:
    if len(argv) < 2:
        await sh.error(f"{argv[0]}: filename argument required")
        await sh.out(f"{argv[0]}: usage: {argv[0]} filename [arguments]\n", 2)
        return 2
    name = argv[1]
    path = name
    if "/" not in name:
        for d in (sh.st.get("PATH") or "").split(":"):
            cand = f"{d or '.'}/{name}"
            try:
                attr = await sh.ctx.stat(cand)
                if attr.is_reg:
                    path = cand
                    break
            except KernelError:
                continue
    try:
        fd = await sh.ctx.open(path, O_RDONLY | O_CLOEXEC)
        try:
            text = await sh.read_script(fd)
        finally:
            await sh.ctx.close(fd)
    except KernelError as e:
        await sh.error(f"{name}: {errno_text(e)}")
        if sh.st.posix:
            raise ExitShell(2) from None
        return 1
    st = sh.st
    saved_pos = None
    if len(argv) > 2:
        saved_pos = st.positional
        st.positional = argv[2:]
    sh.in_source = getattr(sh, "in_source", 0) + 1
    st.sources.insert(0, name)
    try:
        return await sh.run_source(text)
    except ReturnFn as r:
        return r.status
    except ShellSyntaxError as e:
        await sh.error(f"{e}", e.line)
        return 2
    finally:
        st.sources.pop(0)
        sh.in_source -= 1
        if saved_pos is not None:
            st.positional = saved_pos


async def b_exec(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    while args and args[0].startswith("-") and args[0] != "-":
        if args[0] == "--":
            args = args[1:]
            break
        args = args[1:]
    if not args:
        sh.keep_redirs = True
        return 0
    path = await sh.find_command(args[0])
    if path is None:
        await sh.error(f"exec: {args[0]}: not found" if "/" not in args[0]
                       else f"{args[0]}: No such file or directory")
        raise ExitShell(127)
    try:
        await sh.ctx.execve([path] + args[1:], sh.st.env())
    except KernelError as e:
        if e.code == "ENOEXEC":
            raise ExitShell(await sh.run_script_file(path, args)) from None
        await sh.error(f"{args[0]}: {errno_text(e)}")
        raise ExitShell(126 if e.code != "ENOENT" else 127) from None
    return 0


async def b_command(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    mode = None
    while args and args[0].startswith("-") and len(args[0]) > 1:
        if args[0] == "--":
            args = args[1:]
            break
        for c in args[0][1:]:
            if c in "vV":
                mode = c
            elif c != "p":
                await sh.error(f"command: -{c}: invalid option")
                return 2
        args = args[1:]
    if not args:
        return 0
    if mode is not None:
        status = 0
        for name in args:
            desc = await describe(sh, name, functions=True)
            if desc is None:
                if mode == "V":
                    await sh.error(f"command: {name}: not found")
                status = 1
                continue
            kind, text = desc
            if mode == "v":
                shown = text if kind in ("file",) else name if kind != "alias" else f"alias {name}={shell_quote(text)}"
                await sh.out(shown + "\n")
            else:
                await sh.out(_type_text(name, kind, text) + "\n")
        return status
    name = args[0]
    bi = sh.builtins.get(name)
    if bi is not None:
        return await bi(sh, args)
    path = await sh.find_command(name)
    if path is None:
        await sh.error(f"{name}: command not found")
        return 127
    return await sh.spawn_program(path, args, sh.st.env())


async def b_builtin(sh: Any, argv: list[str]) -> int:
    if len(argv) < 2:
        return 0
    bi = sh.builtins.get(argv[1])
    if bi is None:
        await sh.error(f"builtin: {argv[1]}: not a shell builtin")
        return 1
    return await bi(sh, argv[1:])


async def describe(sh: Any, name: str, functions: bool = True) -> tuple[str, str] | None:
    st = sh.st
    if name in st.aliases:
        return "alias", st.aliases[name]
    from kernel.shell.parser import RESERVED_WORDS
    if name in RESERVED_WORDS:
        return "keyword", name
    if functions and name in st.functions:
        return "function", name
    if name in sh.builtins:
        return "builtin", name
    path = await sh.find_command(name)
    if path is not None:
        if "/" in name:
            try:
                await sh.ctx.stat(name)
            except KernelError:
                return None
        return "file", path
    return None


def _type_text(name: str, kind: str, text: str) -> str:
    if kind == "alias":
        return f"{name} is aliased to `{text}'"
    if kind == "keyword":
        return f"{name} is a shell keyword"
    if kind == "function":
        return f"{name} is a function"
    if kind == "builtin":
        return f"{name} is a shell builtin"
    return f"{name} is {text}"


async def b_type(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    flags: set[str] = set()
    while args and args[0].startswith("-") and len(args[0]) > 1:
        if args[0] == "--":
            args = args[1:]
            break
        flags.update(args[0][1:])
        args = args[1:]
    status = 0
    for name in args:
        desc = await describe(sh, name, functions="f" not in flags)
        if desc is None:
            if "t" not in flags and "p" not in flags and "P" not in flags:
                await sh.error(f"type: {name}: not found")
            status = 1
            continue
        kind, text = desc
        if "t" in flags:
            await sh.out(kind + "\n")
        elif "p" in flags or "P" in flags:
            if kind == "file":
                await sh.out(text + "\n")
        else:
            line = _type_text(name, kind, text)
            if kind == "function":
                line += "\n" + _func_text(sh.st.functions[name])
            await sh.out(line + "\n")
    return status


async def b_hash(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    if args and args[0] == "-r":
        st.hashed.clear()
        return 0
    if not args:
        if not st.hashed:
            await sh.out("hash: hash table empty\n")
            return 0
        text = "hits\tcommand\n" + "".join(f"   1\t{p}\n" for p in st.hashed.values())
        await sh.out(text)
        return 0
    status = 0
    for name in args:
        if name in sh.builtins:
            continue
        st.hashed.pop(name, None)
        if await sh.find_command(name) is None:
            await sh.error(f"hash: {name}: not found")
            status = 1
    return status


# ---------------------------------------------------------------- getopts
async def b_getopts(sh: Any, argv: list[str]) -> int:
    st = sh.st
    if len(argv) < 3:
        await sh.out("getopts: usage: getopts optstring name [arg ...]\n", 2)
        return 2
    optstring, name = argv[1], argv[2]
    args = argv[3:] if len(argv) > 3 else list(st.positional)
    silent = optstring.startswith(":")
    if silent:
        optstring = optstring[1:]
    try:
        optind = int(st.get("OPTIND") or "1")
    except ValueError:
        optind = 1
    sub = getattr(sh, "_getopts_sub", (0, 0))
    charpos = sub[1] if sub[0] == optind else 1
    if optind < 1:
        optind = 1
    if optind > len(args):
        st.set(name, "?")
        st.unset("OPTARG") if st.lookup("OPTARG") is not None and not st.lookup("OPTARG").readonly else None
        return 1
    arg = args[optind - 1]
    if charpos == 1:
        if arg == "--":
            st.set("OPTIND", str(optind + 1))
            st.set(name, "?")
            return 1
        if not arg.startswith("-") or arg == "-":
            st.set(name, "?")
            return 1
    c = arg[charpos]
    charpos += 1
    done_arg = charpos >= len(arg)

    def advance() -> None:
        nonlocal optind
        if done_arg:
            optind += 1
            sh._getopts_sub = (optind, 1)
        else:
            sh._getopts_sub = (optind, charpos)
        st.set("OPTIND", str(optind))

    idx = optstring.find(c) if c != ":" else -1
    if idx < 0:
        advance()
        if silent:
            st.set("OPTARG", c)
        else:
            if st.get("OPTERR") != "0":  # OPTERR=0 silences the messages only
                await sh.out(f"{sh.script_name}: illegal option -- {c}\n", 2)
            if st.lookup("OPTARG") is not None:
                st.unset("OPTARG")
        st.set(name, "?")
        return 0
    if idx + 1 < len(optstring) and optstring[idx + 1] == ":":
        if not done_arg:
            st.set("OPTARG", arg[charpos:])
            optind += 1
            sh._getopts_sub = (optind, 1)
            st.set("OPTIND", str(optind))
        elif optind < len(args):
            st.set("OPTARG", args[optind])
            optind += 2
            sh._getopts_sub = (optind, 1)
            st.set("OPTIND", str(optind))
        else:
            optind += 1
            sh._getopts_sub = (optind, 1)
            st.set("OPTIND", str(optind))
            if silent:
                st.set(name, ":")
                st.set("OPTARG", c)
            else:
                if st.get("OPTERR") != "0":
                    await sh.out(f"{sh.script_name}: option requires an argument -- {c}\n", 2)
                st.set(name, "?")
            return 0
        st.set(name, c)
        return 0
    advance()
    st.set(name, c)
    if st.lookup("OPTARG") is not None:
        st.unset("OPTARG")
    return 0


# ---------------------------------------------------------------- read / mapfile
async def b_read(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    raw = False
    array = None
    delim = "\n"
    nchars = None
    exact = False
    prompt = None
    fd = 0
    timeout = None
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-") or a == "-":
            break
        if a == "--":
            i += 1
            break
        j = 1
        while j < len(a):
            c = a[j]
            if c in "adnNptu":
                val = a[j + 1:] if j + 1 < len(a) else (args[i + 1] if i + 1 < len(args) else None)
                if val is None:
                    await sh.error(f"read: -{c}: option requires an argument")
                    return 2
                if j + 1 >= len(a):
                    i += 1
                if c == "a":
                    array = val
                elif c == "d":
                    delim = val[:1] if val else "\0"
                elif c in "nN":
                    try:
                        nchars = int(val)
                    except ValueError:
                        await sh.error(f"read: {val}: invalid number")
                        return 1
                    exact = c == "N"
                elif c == "p":
                    prompt = val
                elif c == "t":
                    try:
                        timeout = float(val)
                    except ValueError:
                        await sh.error(f"read: {val}: invalid timeout specification")
                        return 1
                elif c == "u":
                    try:
                        fd = int(val)
                    except ValueError:
                        await sh.error(f"read: {val}: invalid file descriptor specification")
                        return 1
                break
            if c == "r":
                raw = True
            elif c in "sei":
                pass
            else:
                await sh.error(f"read: -{c}: invalid option")
                return 2
            j += 1
        i += 1
    names = args[i:]
    for n in names + ([array] if array else []):
        if not is_name(n):  # bash checks before reading anything
            await sh.error(f"read: `{n}': not a valid identifier")
            return 1
    if prompt is not None and sh.ctx.isatty(fd):
        await sh.out(prompt, 2)
    ctx = sh.ctx
    buf = bytearray()
    eof = False
    d = delim.encode("utf-8", "surrogateescape") or b"\0"
    got_delim = False
    if timeout == 0:
        # read -t 0: only whether input is ready (end of file counts), nothing is read
        try:
            ready = await ctx.poll([(fd, 0x001)], 0)  # POLLIN
        except KernelError:
            return 1
        return 0 if ready else 1
    try:
        if timeout is not None:
            import trio
            with trio.move_on_after(timeout) as cs:
                eof, got_delim = await _read_bytes(ctx, fd, buf, d, nchars, raw, exact)
            if cs.cancelled_caught:
                return 142
        else:
            eof, got_delim = await _read_bytes(ctx, fd, buf, d, nchars, raw, exact)
    except KernelError as e:
        await sh.error(f"read: read error: {fd}: {errno_text(e)}")
        return 1
    text = buf.decode("utf-8", "surrogateescape")
    status = 1 if eof and not got_delim else 0
    if nchars is not None and not eof:
        status = 0
    if not raw:
        text = _backslashes(text)
    ifs = st.get("IFS")
    if ifs is None:
        ifs = " \t\n"
    try:
        if exact:
            st.set(names[0] if names else "REPLY", text)
            return status
        if array is not None:
            fields = _split_all(text, ifs)
            st.set_array(array, dict(enumerate(fields)))
            return status
        if not names:
            st.set("REPLY", text)
            return status
        parts = _split_n(text, ifs, len(names))
        for k, n in enumerate(names):
            st.set(n, parts[k] if k < len(parts) else "")
    except VarError as e:
        await sh.error(str(e) if "readonly" in str(e) else f"read: {e}")
        return 1
    return status


async def _read_bytes(ctx: Any, fd: int, buf: bytearray, d: bytes, nchars: int | None, raw: bool,
                      exact: bool) -> tuple[bool, bool]:
    count = 0
    while True:
        if nchars is not None and count >= nchars:
            return False, False
        b = await ctx.read(fd, 1)
        if not b:
            return True, False
        if not exact and b == d:
            if not raw and buf.endswith(b"\\") and _odd_bs(buf):
                buf[-1:] = b"" if d == b"\n" else d
                if d != b"\n":
                    pass
                continue
            return False, True
        buf += b
        count += 1


def _odd_bs(buf: bytearray) -> bool:
    n = len(buf) - len(buf.rstrip(b"\\"))
    return n % 2 == 1


_BS_MARK = "\x00BS"


def _backslashes(text: str) -> str:
    """Without ``-r``: a backslash quotes the next character (kept literal through splitting)."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append("\x01" + text[i + 1])
            i += 2
        elif c == "\\":
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _unmark(s: str) -> str:
    return s.replace("\x01", "")


def _split_n(text: str, ifs: str, n: int) -> list[str]:
    """read's splitting: *n* fields, the last one takes the rest (minus trailing IFS space)."""
    ws = "".join(c for c in ifs if c in " \t\n")
    other = "".join(c for c in ifs if c not in " \t\n")
    fields: list[str] = []
    i = 0
    L = len(text)
    # skip leading IFS whitespace
    while i < L and text[i] in ws:
        i += 1
    while len(fields) < n - 1 and i < L:
        start = i
        while i < L and not (text[i] in ifs and (i == 0 or text[i - 1] != "\x01")):
            i += 1
        fields.append(_unmark(text[start:i]))
        # consume one delimiter (whitespace run, optionally with one non-ws char)
        while i < L and text[i] in ws:
            i += 1
        if i < L and text[i] in other:
            i += 1
            while i < L and text[i] in ws:
                i += 1
    if len(fields) < n:
        rest = text[i:]
        # strip trailing IFS whitespace (unescaped)
        j = len(rest)
        while j > 0 and rest[j - 1] in ws and not (j >= 2 and rest[j - 2] == "\x01"):
            j -= 1
        rest = rest[:j]
        if len(fields) == n - 1 and rest and rest[-1] in other and not (len(rest) >= 2 and rest[-2] == "\x01"):
            # a single trailing non-whitespace delimiter is dropped when nothing follows it
            k = rest[:-1]
            if not any(ch in other for ch in k.replace("\x01" + "", "")):
                rest = k
        fields.append(_unmark(rest))
    return fields


def _split_all(text: str, ifs: str) -> list[str]:
    ws = "".join(c for c in ifs if c in " \t\n")
    other = "".join(c for c in ifs if c not in " \t\n")
    fields: list[str] = []
    i, L = 0, len(text)
    while i < L and text[i] in ws:
        i += 1
    while i < L:
        start = i
        while i < L and not (text[i] in ifs and (i == 0 or text[i - 1] != "\x01")):
            i += 1
        fields.append(_unmark(text[start:i]))
        while i < L and text[i] in ws:
            i += 1
        if i < L and text[i] in other:
            i += 1
            while i < L and text[i] in ws:
                i += 1
    return fields


async def b_mapfile(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    strip = False
    delim = "\n"
    count = 0
    origin = 0
    skip = 0
    fd = 0
    i = 0
    while i < len(args) and args[i].startswith("-") and len(args[i]) > 1:
        a = args[i]
        c = a[1]
        if c == "t":
            strip = True
            i += 1
            continue
        val = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
        if not a[2:]:
            i += 1
        i += 1
        if c == "d":
            delim = val[:1] or "\0"
        elif c == "n":
            count = int(val)
        elif c == "O":
            origin = int(val)
        elif c == "s":
            skip = int(val)
        elif c == "u":
            fd = int(val)
    name = args[i] if i < len(args) else "MAPFILE"
    data = bytearray()
    ctx = sh.ctx
    while True:
        try:
            chunk = await ctx.read(fd, 65536)
        except KernelError as e:
            if e.code != "EBADF":
                raise
            await sh.error(f"{argv[0]}: {fd}: invalid file descriptor: Bad file descriptor")
            return 1
        if not chunk:
            break
        data += chunk
        if sh.limits.var_bytes is not None and len(data) > sh.limits.var_bytes:
            await sh.error(f"{argv[0]}: input exceeds the variable size limit")
            return 1
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split(delim)
    items = [ln + delim for ln in lines[:-1]]
    if lines[-1]:
        items.append(lines[-1])
    items = items[skip:]
    if count:
        items = items[:count]
    if strip:
        items = [x[:-1] if x.endswith(delim) else x for x in items]
    v = sh.st.lookup(name)
    base = dict(v.value) if v is not None and v.kind == "a" and origin and v.value else {}
    for k, x in enumerate(items):
        base[origin + k] = x
    try:
        sh.st.set_array(name, base)
    except VarError as e:
        await sh.error(str(e) if "readonly" in str(e) else f"{argv[0]}: {e}")
        return 1
    return 0


# ---------------------------------------------------------------- let / test
async def b_let(sh: Any, argv: list[str]) -> int:
    if len(argv) < 2:
        await sh.error("let: expression expected")
        return 1
    v = 0
    for e in argv[1:]:
        try:
            v = sh.arith_eval(e)
        except FatalExpansion as ex:
            await sh.error(f"let: {ex.message}")
            return 1
    return 0 if v else 1


async def unary_test(sh: Any, op: str, val: str) -> bool:
    if op == "-z":
        return val == ""
    if op == "-n":
        return val != ""
    if op == "-t":
        try:
            return sh.ctx.isatty(int(val))
        except (ValueError, KernelError):
            return False
    if op == "-o":
        return bool(sh.st.options.get(val))
    if op == "-v":
        return await sh._var_is_set(val)
    if op == "-R":
        v = sh.st.lookup(val)
        return v is not None and v.nameref
    ctx = sh.ctx
    if not val:
        return False
    try:
        if op in ("-h", "-L"):
            a = await ctx.lstat(val)
            return a.is_symlink if hasattr(a, "is_symlink") else (a.mode & 0o170000) == 0o120000
        a = await ctx.stat(val)
    except KernelError:
        return False
    fmt = a.mode & 0o170000
    if op == "-e" or op == "-a":
        return True
    if op == "-f":
        return fmt == 0o100000
    if op == "-d":
        return fmt == 0o040000
    if op == "-p":
        return fmt == 0o010000
    if op == "-S":
        return fmt == 0o140000
    if op == "-b":
        return fmt == 0o060000
    if op == "-c":
        return fmt == 0o020000
    if op == "-s":
        return a.size > 0
    if op in ("-r", "-w", "-x"):
        try:
            await ctx.access(val, {"-r": 4, "-w": 2, "-x": 1}[op])
            return True
        except KernelError:
            return False
    if op == "-u":
        return bool(a.mode & 0o4000)
    if op == "-g":
        return bool(a.mode & 0o2000)
    if op == "-k":
        return bool(a.mode & 0o1000)
    if op == "-O":
        return a.uid == ctx.getuid()
    if op == "-G":
        return a.gid == ctx.getgid()
    if op == "-N":
        return a.mtime_ns > a.atime_ns
    return False


async def binary_file_test(sh: Any, op: str, a: str, b: str) -> bool:
    ctx = sh.ctx

    async def st(p: str) -> Any:
        try:
            return await ctx.stat(p)
        except KernelError:
            return None
    sa, sb = await st(a), await st(b)
    if op == "-nt":
        return sa is not None and (sb is None or sa.mtime_ns > sb.mtime_ns)
    if op == "-ot":
        return sb is not None and (sa is None or sa.mtime_ns < sb.mtime_ns)
    if op == "-ef":
        return sa is not None and sb is not None and sa.ino == sb.ino
    return False


_UNARY = frozenset("-" + c for c in "abcdefghknoprstuvwxzGLNORS")
_BINARY = frozenset({"=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef"})


class _TestError(Exception):
    pass


def _int_test(s: str) -> int:
    t = s.strip()
    if not re.fullmatch(r"[+-]?\d+", t):
        raise _TestError(f"{s}: integer expression expected")
    return int(t)


class _TestParser:
    def __init__(self, sh: Any, args: list[str]) -> None:
        self.sh = sh
        self.a = args
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.a[j] if j < len(self.a) else None

    async def expr(self) -> bool:
        v = await self.term()
        while self.peek() == "-o":
            self.i += 1
            r = await self.term()
            v = v or r
        return v

    async def term(self) -> bool:
        v = await self.factor()
        while self.peek() == "-a":
            self.i += 1
            r = await self.factor()
            v = v and r
        return v

    async def factor(self) -> bool:
        t = self.peek()
        if t is None:
            raise _TestError("argument expected")
        if t == "!":
            self.i += 1
            return not await self.factor()
        if t == "(" :
            self.i += 1
            v = await self.expr()
            if self.peek() != ")":
                raise _TestError("`)' expected")
            self.i += 1
            return v
        if self.peek(1) in _BINARY and self.peek(2) is not None:
            self.i += 3
            return await binary(self.sh, self.a[self.i - 3], self.a[self.i - 2], self.a[self.i - 1])
        if t in _UNARY and self.peek(1) is not None:
            self.i += 2
            return await unary_test(self.sh, t, self.a[self.i - 1])
        self.i += 1
        return t != ""


async def binary(sh: Any, a: str, op: str, b: str) -> bool:
    if op in ("=", "=="):
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
        x, y = _int_test(a), _int_test(b)
        return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[op]
    return await binary_file_test(sh, op, a, b)


async def b_test(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            await sh.error("[: missing `]'")
            return 2
        args = args[:-1]
    try:
        n = len(args)
        if n == 0:
            return 1
        if n == 1:
            return 0 if args[0] != "" else 1
        if n == 2:
            if args[0] == "!":
                return 0 if args[1] == "" else 1
            if args[0] in _UNARY:
                return 0 if await unary_test(sh, args[0], args[1]) else 1
            raise _TestError(f"{args[0]}: unary operator expected")
        if n == 3:
            if args[1] in _BINARY:
                return 0 if await binary(sh, args[0], args[1], args[2]) else 1
            if args[0] == "!":
                p = _TestParser(sh, args[1:])
                v = await p.expr()
                return 1 if v else 0
            if args[0] == "(" and args[2] == ")":
                return 0 if args[1] != "" else 1
            if args[1] in ("-a", "-o"):
                x, y = args[0] != "", args[2] != ""
                return 0 if (x and y if args[1] == "-a" else x or y) else 1
            raise _TestError(f"{args[1]}: binary operator expected")
        if n == 4 and args[0] == "!" and args[2] in _BINARY:
            return 1 if await binary(sh, args[1], args[2], args[3]) else 0
        p = _TestParser(sh, args)
        v = await p.expr()
        if p.i < len(args):
            raise _TestError("too many arguments")
        return 0 if v else 1
    except _TestError as e:
        await sh.error(f"{argv[0]}: {e}")
        return 2


BUILTINS = {
    ":": b_colon, "true": b_colon, "false": b_false, "echo": b_echo, "printf": b_printf,
    "exit": b_exit, "return": b_return, "break": b_break, "continue": b_continue, "shift": b_shift,
    "set": b_set, "unset": b_unset, "export": b_export, "readonly": b_readonly, "local": b_local,
    "declare": b_declare, "typeset": b_declare, "eval": b_eval, "source": b_source, ".": b_source,
    "exec": b_exec, "command": b_command, "builtin": b_builtin, "type": b_type, "hash": b_hash, "getopts": b_getopts,
    "read": b_read, "mapfile": b_mapfile, "readarray": b_mapfile, "let": b_let, "test": b_test, "[": b_test,
}

__all__ = ["BUILTINS", "unary_test", "binary_file_test", "printf_format", "declare_line", "decode_ansi_c"]
