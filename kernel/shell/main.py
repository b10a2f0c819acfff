"""The ``sh`` / ``bash`` program: command-line handling, startup, and the top-level catch.

``sh`` runs in POSIX mode (bash's ``--posix`` differences where they matter), ``bash``
with the extensions.  Startup ignores ``ENV``, ``BASH_ENV``, ``SHELLOPTS``, ``BASHOPTS`` and
exported functions (``BASH_FUNC_*``): a sandboxed shell must not run code named by its
environment.  Nothing below ever lets a Python traceback reach the user: every error
becomes one ``sh: …`` line and an exit status.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from kernel.errors import KernelError
from kernel.shell.builtins import SPECIAL, all_builtins
from kernel.shell.expand import FatalExpansion
from kernel.shell.interp import ExitShell, LimitExceeded, Shell, errno_text
from kernel.shell.jobs import JobTable
from kernel.shell.lexer import ShellSyntaxError
from kernel.shell.state import LONG_OPTIONS, OPTION_LETTERS, ShellState, Var
from kernel.syscalls import O_CLOEXEC, O_RDONLY

__all__ = ["main", "main_bash", "PROGRAMS", "make_shell", "run_in_shell"]

log = logging.getLogger("vfsfuse.shell")

_IGNORED_ENV = ("ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "CDPATH", "GLOBIGNORE")
_BUILTINS: dict | None = None


def _ensure_stack(sh: Shell) -> None:
    """Raise Python's recursion limit to what the function-depth limit needs (each shell
    function level costs about 16 coroutine frames); never lowered, so concurrent shells
    cannot undercut each other."""
    depth = sh.limits.function_depth or 0
    need = min(depth, 1000) * 20 + sh.limits.parse_depth * 16 + 3000
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)


def make_shell(ctx: Any, name: str = "sh", posix: bool = False) -> Shell:
    """A shell over *ctx* with its environment imported (what both entry points share)."""
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = all_builtins()
    st = ShellState()
    st.posix = posix
    st.options["posix"] = posix
    # A fresh state holds no variable yet (nothing readonly, no nameref, no attribute), so the
    # imported environment and the shell's own variables go straight into the global scope:
    # ``st.set`` per name was a third of a short script's start-up.
    scope = st.scopes[0]
    for k, v in ctx.environ.items():
        if k in _IGNORED_ENV or k.startswith("BASH_FUNC_") or not _valid_name(k):
            continue
        scope[k] = Var(v, exported=True)
    pid = ctx.getpid()
    st.shell_pid = st.bash_pid = pid
    st.ppid = ctx.getppid()
    scope["PPID"] = Var(str(st.ppid), readonly=True)
    scope["PS4"] = Var("+ ")
    scope["OPTIND"] = Var("1")
    scope["IFS"] = Var(" \t\n")
    cwd = ctx.getcwd()
    pwd = scope.get("PWD")
    if pwd is None or pwd.value is None:
        scope["PWD"] = Var(cwd, exported=True)
    elif pwd.value != cwd:
        pwd.value = cwd
    if scope.get("PATH") is None:
        scope["PATH"] = Var("/bin:/usr/bin")
    scope["BASH_VERSION"] = Var("5.2.15(1)-release")
    if not posix:  # bash's own (dash has none of them)
        uid = str(ctx.getuid())
        scope["UID"] = Var(uid, readonly=True, integer=True)
        scope["EUID"] = Var(uid, readonly=True, integer=True)
        for k, v in (("HOSTNAME", ctx.gethostname()), ("HOSTTYPE", "x86_64"), ("OSTYPE", "linux-gnu"),
                     ("MACHTYPE", "x86_64-pc-linux-gnu")):
            if k not in scope:
                scope[k] = Var(v)
    sh = Shell(ctx, st, name=name)
    sh.builtins = _BUILTINS
    sh.special_builtins = SPECIAL
    sh.jobs = JobTable()
    _ensure_stack(sh)
    return sh


def _valid_name(k: str) -> bool:
    return bool(k) and (k[0].isalpha() or k[0] == "_") and all(c.isalnum() or c == "_" for c in k)


async def _run(ctx: Any, name: str, posix: bool) -> int:
    sh = make_shell(ctx, name, posix)
    st = sh.st
    args = list(ctx.argv[1:])
    command: str | None = None
    read_stdin = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--posix",):
            st.posix = True
            st.options["posix"] = True
            i += 1
            continue
        if a in ("--norc", "--noprofile", "--login", "-l", "--restricted"):
            i += 1
            continue
        if a == "--":
            i += 1
            break
        if a == "-c":
            i += 1
            if i >= len(args):
                await sh.out(f"{name}: -c: option requires an argument\n", 2)
                return 2
            command = args[i]
            i += 1
            break
        if len(a) > 1 and a[0] in "-+" and a[1] != "-":
            on = a[0] == "-"
            j = 1
            while j < len(a):
                c = a[j]
                if c == "c" and on:
                    if i + 1 >= len(args):
                        await sh.out(f"{name}: -c: option requires an argument\n", 2)
                        return 2
                    command = args[i + 1]
                    i += 1
                elif c == "s":
                    read_stdin = True
                elif c == "i":
                    st.interactive = True
                elif c == "o":
                    i += 1
                    if i < len(args) and args[i] in LONG_OPTIONS:
                        st.options[args[i]] = on
                elif c in OPTION_LETTERS:
                    st.options[OPTION_LETTERS[c]] = on
                else:
                    await sh.out(f"{name}: {a[0]}{c}: invalid option\n", 2)
                    return 2
                j += 1
            i += 1
            if command is not None:
                break
            continue
        break
    rest = args[i:]
    source: str
    if command is not None:
        source = command
        st.dash_c = True
        if rest:
            st.arg0 = rest[0]
            st.positional = rest[1:]
        else:
            st.arg0 = name
        sh.script_name = st.arg0
    elif rest and not read_stdin:
        path = rest[0]
        st.arg0 = path
        st.positional = rest[1:]
        sh.script_name = path
        try:
            fd = await ctx.open(path, O_RDONLY | O_CLOEXEC)
            try:
                source = await sh.read_script(fd)
            finally:
                await ctx.close(fd)
        except KernelError as e:
            await sh.out(f"{name}: {path}: {errno_text(e)}\n", 2)
            return 127 if e.code == "ENOENT" else 126
        except LimitExceeded as e:
            await sh.error(e.message)
            return e.status
        st.sources = [path]
    else:
        st.arg0 = name
        st.positional = rest
        if st.interactive or (ctx.isatty(0) and ctx.isatty(2)):
            st.interactive = True
            return await interactive(sh)
        data = await ctx.read_all(0)
        source = data.decode("utf-8", "surrogateescape")
    return await run_toplevel(sh, source)


async def report_syntax_error(sh: Shell, e: ShellSyntaxError, source: str) -> None:
    """A script's syntax error as bash reports it: ``bash: -c: line N: ...`` for a ``-c``
    string, then the offending line quoted for an unexpected token."""
    st = sh.st
    if st.posix or st.interactive:
        await sh.error(str(e), e.line)
        return
    name = sh.script_name + (": -c" if st.dash_c else "")
    line = e.line
    if "unexpected end of file" in e.message:
        line = source.count("\n") + (1 if source.endswith("\n") else 2)
    text = f"{name}: line {line}: {e}\n"
    if e.source_line and e.message.startswith("syntax error near"):
        text += f"{name}: line {line}: `{e.source_line}'\n"
    await sh.out(text, 2)


async def run_toplevel(sh: Shell, source: str) -> int:
    """Run *source* as the shell's script: syntax errors, limits, ``exit`` and the EXIT trap."""
    st = sh.st
    status = 0
    try:
        try:
            status = await sh.run_source(source)
        except ShellSyntaxError as e:
            await report_syntax_error(sh, e, source)
            status = 2
            st.last_status = 2
        except LimitExceeded as e:
            await sh.error(e.message)
            status = e.status
        except ExitShell as e:
            status = e.status
        except FatalExpansion as e:
            await sh.error(e.message)
            status = sh.fatal_status(e)
        except KernelError as e:
            if e.code == "EPIPE":
                status = 141
            else:
                await sh.error(errno_text(e))
                status = 1
        except RecursionError:
            await sh.error(f"maximum nesting level exceeded ({sh.limits.function_depth})")
            status = 2
        except Exception as e:  # noqa: BLE001 - the shell must never show a traceback
            log.debug("shell internal error", exc_info=True)
            await sh.error(f"internal error: {type(e).__name__}: {e}")
            status = 2
        st.last_status = status
        try:
            status = await sh.run_exit_trap(status)
        except Exception as e:  # noqa: BLE001
            await sh.error(f"internal error: {type(e).__name__}: {e}")
    except KernelError:
        pass
    return status & 0xFF


async def run_in_shell(sh: Shell, source: str) -> tuple[int, bool]:
    """Run one script in a shell that outlives it (a persistent session): ``(status, ended)``,
    *ended* when the script ran ``exit`` (the EXIT trap has run then).  Errors end the script,
    not the shell, as at an interactive prompt."""
    st = sh.st
    try:
        status = await run_toplevel_body(sh, source)
    except ExitShell as e:
        st.last_status = e.status
        try:
            status = await sh.run_exit_trap(e.status)
        except Exception as err:  # noqa: BLE001
            await sh.error(f"internal error: {type(err).__name__}: {err}")
            status = e.status
        return status & 0xFF, True
    st.last_status = status
    return status & 0xFF, False


async def run_toplevel_body(sh: Shell, source: str) -> int:
    """*source* run with every error turned into a message and a status; ``exit`` raises."""
    try:
        return await sh.run_source(source)
    except ShellSyntaxError as e:
        await report_syntax_error(sh, e, source)
        return 2
    except LimitExceeded as e:
        await sh.error(e.message)
        return e.status
    except ExitShell:
        raise
    except FatalExpansion as e:
        await sh.error(e.message)
        return sh.fatal_status(e)
    except KernelError as e:
        if e.code == "EPIPE":
            return 141
        await sh.error(errno_text(e))
        return 1
    except RecursionError:
        await sh.error(f"maximum nesting level exceeded ({sh.limits.function_depth})")
        return 2
    except Exception as e:  # noqa: BLE001 - the shell must never show a traceback
        log.debug("shell internal error", exc_info=True)
        await sh.error(f"internal error: {type(e).__name__}: {e}")
        return 2


async def interactive(sh: Shell) -> int:
    """The interactive loop (prompts, line editor, completion, job control): interactive.py."""
    from kernel.shell.interactive import interactive as loop

    return await loop(sh)


async def main(ctx: Any) -> int:
    """``sh``: POSIX mode."""
    return await _run(ctx, "sh", True)


async def main_bash(ctx: Any) -> int:
    """``bash``: with the extensions."""
    return await _run(ctx, "bash", False)


PROGRAMS = {"sh": main, "bash": main_bash}
