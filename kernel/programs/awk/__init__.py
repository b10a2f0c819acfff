"""awk: a POSIX awk (with the gawk extensions scripts use) as a kernel program.

The package splits like a real interpreter: ``lexer`` and ``parser`` make a syntax tree of
``nodes``, ``interp`` compiles it to Python functions, ``runtime`` holds a run's records,
fields, special variables and streams (all I/O through ``ctx``), ``builtins`` and ``format``
are the built-in functions and printf.  Errors are gawk's one-line messages: a syntax error
exits 1, a run-time fatal error 2.
"""

from __future__ import annotations

import re
from typing import Any

from kernel.errors import KernelError
from kernel.programs.awk import interp
from kernel.programs.awk.builtins import make_builtins
from kernel.programs.awk.lexer import AwkSyntaxError, unescape
from kernel.programs.awk.parser import parse
from kernel.programs.awk.runtime import AwkExit, Runtime
from kernel.programs.awk.values import UNINIT, AwkArray, AwkFatal, StrNum
from kernel.programs.common import fsencode, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.registry import Program

AWK = Spec(
    "awk",
    "[POSIX or GNU style options] -f progfile [--] file ...\n"
    "       awk [POSIX or GNU style options] [--] 'program' file ...",
    "Pattern scanning and processing language.",
    [
        Opt("f", "file", arg="progfile", help="read the program source from progfile", action="append",
            dest="progfiles"),
        Opt("F", "field-separator", arg="fs", help="use fs for the input field separator"),
        Opt("v", "assign", arg="var=val", help="assign the value val to the variable var", action="append"),
        Opt("e", "source", arg="program-text", help="use program-text as source code", action="append"),
        Opt("P", "posix", help="turn on POSIX compatibility"),
        Opt("c", "traditional", help="turn on compatibility mode"),
        Opt(None, "re-interval", help="allow interval expressions in regexps (the default)"),
        Opt("b", "characters-as-bytes", help="treat all input data as bytes"),
        Opt("S", "sandbox", help="disable system() and redirections (accepted, not enforced)"),
    ],
    permute=False,
)

_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=", re.S)
_RECURSION = "function call nesting too deep"


async def prog_awk(ctx: Any) -> int:
    args = await parse_or_exit(ctx, AWK)
    if isinstance(args, int):
        return args
    operands = list(args.operands)
    texts: list[tuple[bytes, str]] = []
    for name in args.get("progfiles") or []:
        try:
            fd = 0 if name == "-" else await ctx.open(name)
            data = await ctx.read_all(fd)
            if fd:
                await ctx.close(fd)
        except KernelError as e:
            await ctx.write_all(2, fsencode(f"awk: fatal: can't open source file `{name}' for reading: "
                                            f"{strerror(e)}\n"))
            return 2
        texts.append((data, name))
    for src in args.get("source") or []:
        texts.append((fsencode(src), "cmd. line"))
    if not texts:
        if not operands:
            await ctx.write_all(2, "usage: awk [POSIX or GNU style options] -f progfile [--] file ...\n"
                                   "usage: awk [POSIX or GNU style options] [--] 'program' file ...\n")
            return 1
        texts.append((fsencode(operands.pop(0)), "cmd. line"))
    source = texts[0][1] if len(texts) == 1 else "cmd. line"
    text = b"\n".join(t for t, _ in texts)
    try:
        prog, warnings = parse(text, source)
        external = {a.partition("=")[0] for a in args.get("assign") or []}
        external |= {a.partition("=")[0] for a in operands if _ASSIGN.match(a)}
        code = interp.Compiler(prog, external)
        py = code.compile()
        for w in dict.fromkeys(warnings + code.warnings):
            await ctx.write_all(2, fsencode(f"awk: {source}:1: warning: {w}\n"))
    except AwkSyntaxError as e:
        await ctx.write_all(2, fsencode(f"awk: {e.source}:{e.line}: {e.message}\n"))
        return 1
    except interp.CompileError as e:
        kind = "fatal" if e.status == 2 else "error"
        await ctx.write_all(2, fsencode(f"awk: {source}:1: {kind}: {e}\n"))
        return e.status
    except AwkFatal as e:
        await ctx.write_all(2, fsencode(f"awk: {source}:1: fatal: {e}\n"))
        return 2
    except RecursionError:
        await ctx.write_all(2, b"awk: fatal: program too deeply nested\n")
        return 2
    return await run(ctx, prog, code, py, operands, args)


async def run(ctx: Any, prog: Any, code: interp.Compiler, py: str, operands: list[str], args: Any) -> int:
    ns = interp.base_namespace()
    rt = Runtime(ctx, ns)
    ns["rt"] = rt
    ns.update(rt.make_helpers())
    ns["_S_holder"][0] = ns["_s"]
    upto = code.max_const_field()
    if upto:
        rt.split_upto = lambda r: r.split(None, upto)
    ns["_F"] = rt.field
    ns["_Fn"] = rt.field_num
    ns["_Fs"] = rt.field_str
    ns.update(make_builtins(rt))
    ns.update(code.consts)
    for g in code.an.globals:
        ns["G_" + g] = AwkArray() if g in code.an.global_arrays else UNINIT
    for i in range(code.ranges_total):
        ns[f"R_{i}"] = False
    env = AwkArray()
    for k, v in ctx.environ.items():
        env[fsencode(k)] = StrNum(fsencode(v))
    ns["G_ENVIRON"] = env
    argv = AwkArray()
    argv[b"0"] = StrNum(fsencode(str(ctx.argv[0]).rpartition("/")[2] or "awk"))
    for i, a in enumerate(operands, 1):
        argv[b"%d" % i] = StrNum(fsencode(a))
    ns["G_ARGV"] = argv
    ns["G_ARGC"] = float(len(operands) + 1)
    try:
        rt.tty_out = bool(ctx.isatty(1))
    except (KernelError, AttributeError):
        rt.tty_out = False
    try:
        exec(compile(py, "<awk>", "exec"), ns)
    except (SyntaxError, RecursionError, MemoryError):
        await ctx.write_all(2, b"awk: fatal: program too complex\n")
        return 2
    status = 0
    try:
        if args.get("field_separator") is not None:
            fs = fsencode(args["field_separator"])
            fs_warnings: list[str] = []
            rt.setv("FS", b"\t" if fs == b"t" else unescape(fs, warnings=fs_warnings))
            for w in fs_warnings:
                await ctx.write_all(2, fsencode(f"awk: warning: {w}\n"))
        for assign in args.get("assign") or []:
            if not _ASSIGN.match(assign):
                await ctx.write_all(2, fsencode(f"awk: `{assign}' argument to `-v' not in `var=value' form\n"))
                return 1
            name, _, val = assign.partition("=")
            rt.assign_var(name, StrNum(unescape(fsencode(val))))
        exit_code: int | None = None
        try:
            if "_begin" in ns:
                await ns["_begin"]()
            if "_main" in ns or "_end" in ns or "_beginfile" in ns or "_endfile" in ns:
                if "_main" in ns:
                    await ns["_main"]()
                else:
                    while await rt.next_async():
                        pass
        except AwkExit as e:
            exit_code = e.code if e.code is None else int(e.code)
        try:
            if "_end" in ns:
                await ns["_end"]()
        except AwkExit as e:
            if e.code is not None:
                exit_code = int(e.code)
        status = (exit_code & 0xFF) if exit_code is not None else rt.status
        await rt.close_all()
    except AwkFatal as e:
        await _fatal(rt, str(e))
        return 2
    except ZeroDivisionError:
        await _fatal(rt, "division by zero attempted")
        return 2
    except RecursionError:
        await _fatal(rt, _RECURSION)
        return 2
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await _fatal(rt, e.message if e.code in ("ETIME", "EINVAL") else strerror(e))
        return 2
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, MemoryError) as e:
        await _fatal(rt, f"internal error: {type(e).__name__}: {e}")
        return 2
    return status


async def _fatal(rt: Runtime, text: str) -> None:
    try:
        await rt.flush_all()
        await rt.show_warnings()
    except KernelError:
        pass
    await rt.ctx.write_all(2, fsencode(f"awk: cmd. line:1: fatal: {text}\n"))


PROGRAMS: dict[str, Program] = {"awk": prog_awk, "gawk": prog_awk}
