"""Programs that run other programs or just wait: true, false, sleep, timeout, nohup, nice,
env, printenv, time — GNU coreutils' options, messages and exit statuses (125 for the tool's
own failure, 126 cannot run, 127 not found, timeout's 124)."""

from __future__ import annotations

import math
import time
from typing import Any

from kernel.errors import KernelError
from kernel.programs import procps_signals as sigs
from kernel.programs.common import error, read_file, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.syscalls import O_APPEND, O_CREAT, O_TRUNC, O_WRONLY

WNOHANG = 1


def wait_code(status: int) -> int:
    """A wait status as a shell's ``$?``: the exit code, or 128 + the signal."""
    if status & 0x7F == 0:
        return (status >> 8) & 0xFF
    if status & 0xFF == 0x7F:
        return 128 + ((status >> 8) & 0xFF)
    return 128 + (status & 0x7F)


def exec_failure(e: KernelError) -> int:
    """126 for a command found but not runnable, 127 for one not found (POSIX)."""
    return 127 if e.code in ("ENOENT", "ENOTDIR") else 126


# ---- true, false -------------------------------------------------------------------------
async def _truth(ctx: Any, status: int, name: str) -> int:
    argv = ctx.argv
    if len(argv) == 2 and argv[1] == "--help":
        await ctx.write_all(1, f"Usage: {name} [ignored command line arguments]\n"
                               f"  or:  {name} OPTION\nExit with a status code indicating "
                               f"{'success' if status == 0 else 'failure'}.\n")
    elif len(argv) == 2 and argv[1] == "--version":
        await ctx.write_all(1, f"{name} (vfsfuse 0.1)\n")
    return status


async def prog_true(ctx: Any) -> int:
    return await _truth(ctx, 0, "true")


async def prog_false(ctx: Any) -> int:
    return await _truth(ctx, 1, "false")


# ---- durations ---------------------------------------------------------------------------
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """GNU's ``NUMBER[smhd]`` (fractions, ``inf``); ValueError otherwise."""
    t = text.strip()
    unit = t[-1:] if t[-1:] in "smhd" and t[-1:] else ""
    number = t[:-1] if unit else t
    if not number or number.lower().startswith(("nan", "+nan", "-nan")):
        raise ValueError(text)
    if number.lower() in ("inf", "infinity", "+inf", "+infinity"):
        return math.inf
    if not all(c.isdigit() or c in ".+eE-" for c in number) or number.startswith("-"):
        raise ValueError(text)
    value = float(number) * _UNITS[unit]
    if value < 0:
        raise ValueError(text)
    return value


async def sleep_for(ctx: Any, seconds: float) -> None:
    """Sleep the whole time: a handled signal (EINTR) only interrupts one stretch of it."""
    end = time.monotonic() + seconds if math.isfinite(seconds) else math.inf
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            await ctx.sleep(min(left, 86400.0))
        except KernelError as e:
            if e.code != "EINTR":
                raise


SLEEP = Spec("sleep", "NUMBER[SUFFIX]...", "Pause for NUMBER seconds.  SUFFIX may be 's' for "
             "seconds (the default),\n'm' for minutes, 'h' for hours or 'd' for days.", [])


async def prog_sleep(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SLEEP)
    if isinstance(args, int):
        return args
    if not args.operands:
        await error(ctx, "sleep", "missing operand\nTry 'sleep --help' for more information.")
        return 1
    total = 0.0
    bad = False
    for op in args.operands:
        try:
            total += duration(op)
        except ValueError:
            await error(ctx, "sleep", f"invalid time interval '{op}'")
            bad = True
    if bad:
        await ctx.write_all(2, "Try 'sleep --help' for more information.\n")
        return 1
    await sleep_for(ctx, total)
    return 0


# ---- timeout -----------------------------------------------------------------------------
TIMEOUT = Spec("timeout", "[OPTION] DURATION COMMAND [ARG]...",
               "Start COMMAND, and kill it if still running after DURATION.", [
                   Opt(None, "preserve-status", help="exit with the same status as COMMAND, even "
                       "when the command times out"),
                   Opt(None, "foreground", help="when not running timeout directly from a shell prompt"),
                   Opt("k", "kill-after", arg="DURATION", help="also send a KILL signal if COMMAND "
                       "is still running this long after the initial signal was sent"),
                   Opt("s", "signal", arg="SIGNAL", help="specify the signal to be sent on timeout"),
                   Opt("v", "verbose", help="diagnose to stderr any signal sent upon timeout"),
               ], permute=False, usage_status=125)

SIGALRM, SIGKILL, SIGCONT, SIGTERM = 14, 9, 18, 15


async def prog_timeout(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TIMEOUT)
    if isinstance(args, int):
        return args
    hint = "Try 'timeout --help' for more information."
    if len(args.operands) < 2:
        if args.operands:
            await error(ctx, "timeout", f"missing operand after '{args.operands[0]}'\n{hint}")
        else:
            await error(ctx, "timeout", f"missing operand\n{hint}")
        return 125
    sig = SIGTERM
    if "signal" in args:
        n = sigs.number(args["signal"])
        if n is None:
            await error(ctx, "timeout", f"'{args['signal']}': invalid signal\n{hint}")
            return 125
        sig = n
    try:
        limit = duration(args.operands[0])
        kill_after = duration(args["kill_after"]) if "kill_after" in args else 0.0
    except ValueError as e:
        await error(ctx, "timeout", f"invalid time interval '{e}'\n{hint}")
        return 125
    argv = args.operands[1:]
    try:
        child = await ctx.spawn(argv)
    except KernelError as e:
        await error(ctx, "timeout", f"failed to run command '{argv[0]}': {strerror(e)}")
        return exec_failure(e)
    state = {"timed_out": False, "stage": 0}

    async def on_alarm(_sig: int) -> None:
        if state["stage"] == 0:
            state["timed_out"] = True
            state["stage"] = 1
            if args.get("verbose"):
                await error(ctx, "timeout", f"sending signal {sigs.name(sig) or sig} to command "
                                            f"'{argv[0]}'")
            await _signal(ctx, child, sig)
            if kill_after > 0:
                await ctx.alarm(kill_after)
        else:
            state["stage"] = 2
            if args.get("verbose"):
                await error(ctx, "timeout", f"sending signal KILL to command '{argv[0]}'")
            await _signal(ctx, child, SIGKILL)

    await ctx.signal(SIGALRM, on_alarm, 0)
    if math.isfinite(limit) and limit > 0:
        await ctx.alarm(max(limit, 1e-6))
    while True:
        try:
            _, status = await ctx.waitpid(child)
            break
        except KernelError as e:
            if e.code != "EINTR":
                raise
    await ctx.alarm(0)
    code = wait_code(status)
    if state["timed_out"]:
        if sig == SIGKILL or state["stage"] == 2:
            await ctx.kill(ctx.getpid(), SIGKILL)  # GNU kills its whole group, itself included
        return code if args.get("preserve_status") else 124
    return code


async def _signal(ctx: Any, pid: int, sig: int) -> None:
    try:
        await ctx.kill(pid, sig)
        if sig != SIGKILL:
            await ctx.kill(pid, SIGCONT)
    except KernelError:
        pass


# ---- nohup -------------------------------------------------------------------------------
NOHUP = Spec("nohup", "COMMAND [ARG]...", "Run COMMAND, ignoring hangup signals.", [],
             permute=False, usage_status=125)


async def prog_nohup(ctx: Any) -> int:
    args = await parse_or_exit(ctx, NOHUP)
    if isinstance(args, int):
        return args
    if not args.operands:
        await error(ctx, "nohup", "missing operand\nTry 'nohup --help' for more information.")
        return 125
    if ctx.isatty(1):
        home = ctx.getenv("HOME")
        for name in ["nohup.out"] + ([f"{home}/nohup.out"] if home else []):
            try:
                fd = await ctx.open(name, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            except KernelError:
                continue
            await ctx.dup2(fd, 1)
            await ctx.close(fd)
            await error(ctx, "nohup", f"ignoring input and appending output to '{name}'")
            break
        else:
            await error(ctx, "nohup", "failed to open 'nohup.out': Permission denied")
            return 125
        if ctx.isatty(2):
            await ctx.dup2(1, 2)
    elif ctx.isatty(0):
        await error(ctx, "nohup", "ignoring input")
    await ctx.signal(1, "ignore")
    return await _exec(ctx, "nohup", args.operands)


async def _exec(ctx: Any, prog: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Replace this process with *argv* (returns only when that fails, with 126 or 127)."""
    try:
        await ctx.execve(argv, env)
    except KernelError as e:
        await error(ctx, prog, f"'{argv[0]}': {strerror(e)}" if prog == "env"
                    else f"failed to run command '{argv[0]}': {strerror(e)}")
        return exec_failure(e)
    return 0  # not reached: execve returns only by raising


# ---- nice --------------------------------------------------------------------------------
NICE = Spec("nice", "[OPTION] [COMMAND [ARG]...]",
            "Run COMMAND with an adjusted niceness, which affects process scheduling.\n"
            "With no COMMAND, print the current niceness.", [
                Opt("n", "adjustment", arg="N", help="add integer N to the niceness (default 10)"),
            ], permute=False, usage_status=125)


async def prog_nice(ctx: Any) -> int:
    argv = list(ctx.argv)
    if len(argv) > 1 and len(argv[1]) > 1 and argv[1][0] == "-" and argv[1][1:].lstrip("-+").isdigit():
        argv = [argv[0], "-n", argv[1][1:]] + argv[2:]  # the obsolete form: nice -5 CMD
    args = await parse_or_exit(ctx, NICE, argv)
    if isinstance(args, int):
        return args
    adjustment = 10
    if "adjustment" in args:
        try:
            adjustment = int(args["adjustment"])
        except ValueError:
            await error(ctx, "nice", f"invalid adjustment '{args['adjustment']}'")
            return 125
    if not args.operands:
        if "adjustment" in args:
            await error(ctx, "nice", "a command must be given with an adjustment\n"
                                     "Try 'nice --help' for more information.")
            return 125
        await ctx.write_all(1, f"{await niceness(ctx)}\n")
        return 0
    try:
        ctx.setpriority(ctx.getpriority() + adjustment)
    except KernelError as e:  # GNU nice says so and runs the command anyway
        await error(ctx, "nice", f"cannot set niceness: {strerror(e)}")
    return await _exec(ctx, "nice", args.operands)


async def niceness(ctx: Any) -> int:
    """Field 19 of ``/proc/self/stat``, as GNU nice reads it through getpriority."""
    data = await read_file(ctx, "/proc/self/stat") or b""
    try:
        return int(data.rsplit(b")", 1)[1].split()[16])
    except (IndexError, ValueError):
        return 0


# ---- env, printenv -----------------------------------------------------------------------
ENV = Spec("env", "[OPTION]... [-] [NAME=VALUE]... [COMMAND [ARG]...]",
           "Set each NAME to VALUE in the environment and run COMMAND.", [
               Opt("i", "ignore-environment", help="start with an empty environment"),
               Opt("0", "null", help="end each output line with NUL, not newline"),
               Opt("u", "unset", arg="NAME", action="append", help="remove variable from the environment"),
               Opt("C", "chdir", arg="DIR", help="change working directory to DIR"),
               Opt("v", "debug", help="print verbose information for each processing step"),
               Opt("S", "split-string", arg="S", help="process and split S into separate arguments; "
                   "used to pass multiple arguments on shebang lines"),
           ], permute=False, usage_status=125)


class SplitError(ValueError):
    """A bad ``env -S`` string; ``str`` is GNU's message."""


_S_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "\\": "\\", '"': '"',
              "'": "'", "$": "$", "#": "#", " ": " "}


def split_string(text: str, env: dict[str, str]) -> list[str]:
    """GNU env's ``-S``: words split on blanks, '' and "" quoting, backslash escapes
    (``\\_`` is a blank, ``\\c`` ends the string), ``${VAR}`` from the environment, ``#``
    starting a word begins a comment."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            elif c == "\\" and i + 1 < n and text[i + 1] in "\\'":
                i += 1
                cur.append(text[i])
            else:
                cur.append(c)
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise SplitError("invalid backslash at end of string in -S")
            e = text[i + 1]
            i += 2
            if e == "c":
                break
            if e == "_":
                if quote:
                    cur.append(" ")
                else:
                    if have:
                        words.append("".join(cur))
                    cur, have = [], False
                continue
            if e not in _S_ESCAPES:
                raise SplitError(f"invalid sequence '\\{e}' in -S")
            cur.append(_S_ESCAPES[e])
            have = True
            continue
        if c == "$":
            if text.startswith("${", i):
                end = text.find("}", i)
                if end < 0:
                    raise SplitError("only ${VARNAME} expansion is supported, error at: " + text[i:])
                cur.append(env.get(text[i + 2:end], ""))
                have = True
                i = end + 1
                continue
            raise SplitError("only ${VARNAME} expansion is supported, error at: " + text[i:])
        if quote == '"':
            if c == '"':
                quote = ""
            else:
                cur.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
            have = True
        elif c in " \t\n\v\f\r":
            if have:
                words.append("".join(cur))
            cur, have = [], False
        elif c == "#" and not have:
            break
        else:
            cur.append(c)
            have = True
        i += 1
    if quote:
        raise SplitError("no terminating quote in -S string")
    if have:
        words.append("".join(cur))
    return words


async def prog_env(ctx: Any) -> int:
    argv = list(ctx.argv)
    for k in range(1, len(argv)):  # -S splits its string in place, before the options are read
        a = argv[k]
        if a == "--" or not a.startswith("-") or a == "-":
            break
        value = None
        if a in ("-S", "--split-string") and k + 1 < len(argv):
            value, rest = argv[k + 1], argv[k + 2:]
        elif a.startswith("--split-string="):
            value, rest = a.partition("=")[2], argv[k + 1:]
        elif a.startswith("-S"):
            value, rest = a[2:], argv[k + 1:]
        elif len(a) > 2 and a[1] != "-" and "S" in a[1:] and not any(ch in a[1:a.index("S")] for ch in "uC"):
            j = a.index("S")
            value, rest = a[j + 1:] or (argv[k + 1] if k + 1 < len(argv) else ""), \
                argv[k + 1 + (0 if a[j + 1:] else 1):]
            argv[k] = a[:j]
            k += 1
        if value is not None:
            try:
                words = split_string(value, ctx.environ)
            except SplitError as e:
                await error(ctx, "env", str(e))
                return 125
            argv = argv[:k] + words + rest
            break
    args = await parse_or_exit(ctx, ENV, argv)
    if isinstance(args, int):
        return args
    ops = list(args.operands)
    ignore = bool(args.get("ignore_environment"))
    if ops and ops[0] == "-":
        ignore = True
        ops = ops[1:]
    env: dict[str, str] = {} if ignore else dict(ctx.environ)
    for name in args.get("unset", []):
        if not name or "=" in name:
            await error(ctx, "env", f"cannot unset '{name}': Invalid argument")
            return 125
        env.pop(name, None)
    while ops and "=" in ops[0]:
        name, _, value = ops.pop(0).partition("=")
        env[name] = value
    if not ops:
        if "chdir" in args:
            await error(ctx, "env", "must specify command with --chdir (-C)\n"
                                    "Try 'env --help' for more information.")
            return 125
        end = "\0" if args.get("null") else "\n"
        await ctx.write_all(1, "".join(f"{k}={v}{end}" for k, v in env.items()).encode(
            errors="surrogateescape"))
        return 0
    if args.get("null"):
        await error(ctx, "env", "cannot specify --null (-0) with command\n"
                                "Try 'env --help' for more information.")
        return 125
    if "chdir" in args:
        try:
            await ctx.chdir(args["chdir"])
        except KernelError as e:
            await error(ctx, "env", f"cannot change directory to '{args['chdir']}': {strerror(e)}")
            return 125
    return await _exec(ctx, "env", ops, env)


PRINTENV = Spec("printenv", "[OPTION]... [VARIABLE]...",
                "Print the values of the specified environment VARIABLE(s).\n"
                "If no VARIABLE is specified, print name and value pairs for them all.", [
                    Opt("0", "null", help="end each output line with NUL, not newline"),
                ], usage_status=2)


async def prog_printenv(ctx: Any) -> int:
    args = await parse_or_exit(ctx, PRINTENV)
    if isinstance(args, int):
        return args
    end = "\0" if args.get("null") else "\n"
    env = ctx.environ
    if not args.operands:
        text = "".join(f"{k}={v}{end}" for k, v in env.items())
        await ctx.write_all(1, text.encode(errors="surrogateescape"))
        return 0
    status = 0
    parts = []
    for name in args.operands:
        if "=" not in name and name in env:
            parts.append(f"{env[name]}{end}")
        else:
            status = 1
    await ctx.write_all(1, "".join(parts).encode(errors="surrogateescape"))
    return status


# ---- time --------------------------------------------------------------------------------
TIME = Spec("time", "[-p] [-f FORMAT] [-o FILE] [-a] COMMAND [ARG]...",
            "Run COMMAND, then print how long it took on standard error.", [
                Opt("p", "portability", help="POSIX's format: real, user and sys on three lines"),
                Opt("f", "format", arg="FORMAT", help="use FORMAT (%e %E %U %S %P %C %x %%)"),
                Opt("o", "output", arg="FILE", help="write the figures to FILE, not stderr"),
                Opt("a", "append", help="with -o, append instead of overwriting"),
                Opt("v", "verbose", help="one figure per line"),
                Opt("q", "quiet", help="do not report an abnormal exit status"),
            ], permute=False, usage_status=125)

GNU_TIME_FORMAT = ("%Uuser %Ssystem %Eelapsed %PCPU (%Xavgtext+%Davgdata %Mmaxresident)k\n"
                   "%Iinputs+%Ooutputs (%Fmajor+%Rminor)pagefaults %Wswaps")


def _clock(secs: float) -> str:
    """``%E``: ``[h:]m:ss.cc``."""
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}" if h else f"{int(m)}:{s:05.2f}"


def time_report(fmt: str, real: float, user: float, system: float, argv: list[str], code: int) -> str:
    cpu = (user + system) / real * 100 if real > 0 else 0.0
    values = {"e": f"{real:.2f}", "E": _clock(real), "U": f"{user:.2f}", "S": f"{system:.2f}",
              "P": f"{cpu:.0f}%", "C": " ".join(argv), "x": str(code), "%": "%"}
    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            out.append(values.get(fmt[i + 1], "0"))
            i += 2
        elif c == "\\" and i + 1 < len(fmt):
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(fmt[i + 1], "\\" + fmt[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out) + "\n"


def _children_cpu(ctx: Any) -> float:
    """CPU seconds of this process's reaped children (times(2); the kernel counts it all as
    user time)."""
    try:
        return float(ctx.cpu_times()[1])
    except (AttributeError, KernelError):
        return 0.0


async def prog_time(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TIME)
    if isinstance(args, int):
        return args
    if not args.operands:
        await error(ctx, "time", "missing program to run\nTry 'time --help' for more information.")
        return 125
    argv = args.operands
    start = time.monotonic()
    cpu_before = _children_cpu(ctx)
    try:
        child = await ctx.spawn(argv)
    except KernelError as e:
        await error(ctx, "time", f"cannot run {argv[0]}: {strerror(e)}")
        return exec_failure(e)
    while True:
        try:
            _, status = await ctx.waitpid(child)
            break
        except KernelError as e:
            if e.code != "EINTR":
                raise
    real = time.monotonic() - start
    user = max(0.0, _children_cpu(ctx) - cpu_before)
    code = wait_code(status)
    if args.get("portability"):
        report = f"real {real:.2f}\nuser {user:.2f}\nsys 0.00\n"
    else:
        report = time_report(args.get("format", GNU_TIME_FORMAT), real, user, 0.0, argv, code)
        if code and not args.get("quiet") and "format" not in args:
            report = (f"Command exited with non-zero status {code}\n" if status & 0x7F == 0
                      else f"Command terminated by signal {status & 0x7F}\n") + report
    if "output" in args:
        flags = O_WRONLY | O_CREAT | (O_APPEND if args.get("append") else O_TRUNC)
        try:
            fd = await ctx.open(args["output"], flags, 0o666)
        except KernelError as e:
            await error(ctx, "time", f"cannot open {args['output']}: {strerror(e)}")
            return 125
        await ctx.write_all(fd, report)
        await ctx.close(fd)
    else:
        await ctx.write_all(2, report)
    return code


PROGRAMS = {
    "true": prog_true, "false": prog_false, "sleep": prog_sleep, "timeout": prog_timeout,
    "nohup": prog_nohup, "nice": prog_nice, "env": prog_env, "printenv": prog_printenv,
    "time": prog_time,
}
