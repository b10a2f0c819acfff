"""The interactive shell: prompts (``PS1``/``PS2`` with bash's backslash escapes), the line
editor on a terminal, completion of commands and VFS paths, ``$COLUMNS``/``$LINES`` kept up
with the window, job control set up, and the read-parse-run loop.

Everything goes through ``sh.ctx``: paths completed are paths of the sandbox, the user and
host names come from the sandbox (``/etc/passwd`` inside it, the kernel's hostname).
"""

from __future__ import annotations

import time

import trio

from kernel.errors import KernelError
from kernel.shell.ast import SimpleCommand
from kernel.shell.expand import FatalExpansion
from kernel.shell.interp import ExitShell, LimitExceeded, Shell, errno_text, wait_status_code
from kernel.shell.lexer import IncompleteInput, ShellSyntaxError
from kernel.shell.lineedit import History, Interrupted, LineEditor
from kernel.syscalls import O_CLOEXEC, O_RDONLY

__all__ = ["interactive", "expand_prompt", "complete"]

DEFAULT_PS1 = "\\u@\\h:\\w\\$ "
SIGWINCH = 28
_COMMAND_BREAKS = (";", "|", "&", "(", "`", "{", "!", "then", "do", "else", "elif", "while", "until",
                   "if", "time", "$(")
_WORD_BREAKS = " \t\n;|&<>()=`"


async def _user_name(sh: Shell) -> str:
    """The sandbox's name for our uid: its own /etc/passwd, else root / the uid."""
    uid = sh.ctx.getuid()
    try:
        fd = await sh.ctx.open("/etc/passwd", O_RDONLY | O_CLOEXEC)
        try:
            text = (await sh.ctx.read_all(fd)).decode("utf-8", "replace")
        finally:
            await sh.ctx.close(fd)
        for line in text.splitlines():
            f = line.split(":")
            if len(f) > 2 and f[2] == str(uid):
                return f[0]
    except KernelError:
        pass
    return "root" if uid == 0 else (sh.st.get("USER") or str(uid))


async def expand_prompt(sh: Shell, ps: str) -> str:
    """``PS1`` as bash shows it: backslash escapes, then parameter, command and arithmetic
    expansion (``promptvars``).  ``\\[ \\]`` become ``\\x01 \\x02`` for the editor's width count."""
    st = sh.st
    out: list[str] = []
    i = 0
    while i < len(ps):
        c = ps[i]
        if c != "\\" or i + 1 >= len(ps):
            out.append(c)
            i += 1
            continue
        e = ps[i + 1]
        i += 2
        if e == "u":
            out.append(_protect(await _user_name(sh)))
        elif e in "hH":
            host = sh.ctx.gethostname()
            out.append(_protect(host if e == "H" else host.split(".")[0]))
        elif e in "wW":
            cwd = st.get("PWD") or sh.ctx.getcwd()
            home = st.get("HOME") or ""
            if e == "W":
                cwd = "~" if home and cwd == home else (cwd.rsplit("/", 1)[-1] or "/")
            elif home and (cwd == home or cwd.startswith(home.rstrip("/") + "/")):
                cwd = "~" + cwd[len(home.rstrip("/")):]
            out.append(_protect(cwd))
        elif e == "$":
            out.append("#" if sh.ctx.getuid() == 0 else "$")
        elif e == "s":
            out.append(sh.name)
        elif e in "vV":
            out.append("5.2" if e == "v" else "5.2.15")
        elif e == "n":
            out.append("\n")
        elif e == "r":
            out.append("\r")
        elif e == "a":
            out.append("\a")
        elif e == "e":
            out.append("\x1b")
        elif e == "[":
            out.append("\x01")
        elif e == "]":
            out.append("\x02")
        elif e == "j":
            out.append(str(len(sh.jobs.jobs) if sh.jobs is not None else 0))
        elif e == "!":
            out.append(str(len(getattr(sh, "history", [])) + 1))
        elif e == "#":
            out.append(str(getattr(sh, "command_number", 1)))
        elif e == "l":
            try:
                out.append(sh.ctx.ttyname(0).rsplit("/", 1)[-1])
            except KernelError:
                out.append("tty")
        elif e in "tT@Ad":
            fmt = {"t": "%H:%M:%S", "T": "%I:%M:%S", "@": "%I:%M %p", "A": "%H:%M", "d": "%a %b %d"}[e]
            out.append(time.strftime(fmt))
        elif e == "\\":
            out.append("\\\\")
        elif e in "01234567":
            j = i - 1
            digits = ps[j:j + 3]
            k = 0
            while k < len(digits) and digits[k] in "01234567":
                k += 1
            out.append(chr(int(digits[:k], 8) & 0xFF))
            i = j + k
        else:
            out.append("\\" + e)
    text = "".join(out)
    if not st.shopts.get("promptvars", True) or not any(ch in text for ch in "$`"):
        return text.replace("\\\\", "\\")
    return await _expand_as_dq(sh, text)


def _protect(s: str) -> str:
    """A value put into the prompt is not expanded again (bash quotes it the same way)."""
    return s.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")


async def _expand_as_dq(sh: Shell, text: str) -> str:
    """Expand *text* as the inside of a double-quoted word; on a syntax error, show it as is."""
    body = text.replace('"', '\\"')
    try:
        prog = sh.new_parser(f': "{body}"').parse_program()
        cmd = prog.body.items[0][0].first.commands[0]
        if not isinstance(cmd, SimpleCommand) or len(cmd.words) != 2:
            return text
        return await sh.expand_str(cmd.words[1])
    except (ShellSyntaxError, IncompleteInput, FatalExpansion, KernelError, IndexError, AttributeError):
        return text


# ------------------------------------------------------------------ completion

async def complete(sh: Shell, line: str, cursor: int) -> tuple[int, list[str]]:
    """What Tab offers at *cursor*: command names for a command word, else paths in the VFS.
    Candidates are full replacements of the word, with ``/`` after a directory and a space
    after a finished name."""
    start = cursor
    while start > 0 and line[start - 1] not in _WORD_BREAKS:
        start -= 1
    word = line[start:cursor]
    before = line[:start].rstrip()
    command_word = (not before or before.endswith(_COMMAND_BREAKS)) and "/" not in word
    if command_word and not word.startswith(("~", ".")):
        return start, sorted(n + " " for n in await _command_names(sh, word))
    return start, await _paths(sh, word, dirs_only=before.split()[-1:] in (["cd"], ["pushd"]))


async def _command_names(sh: Shell, prefix: str) -> set[str]:
    names = {n for n in sh.builtins if n.startswith(prefix)}
    names |= {n for n in sh.st.functions if n.startswith(prefix)}
    names |= {n for n in sh.st.aliases if n.startswith(prefix)}
    names |= {n for n in ("if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
                          "case", "esac", "function", "select", "time") if n.startswith(prefix)}
    for d in (sh.st.get("PATH") or "").split(":"):
        try:
            entries = await sh.ctx.listdir(d or ".")
        except KernelError:
            continue
        names |= {n for n in entries if n.startswith(prefix)}
    return names


async def _paths(sh: Shell, word: str, *, dirs_only: bool = False) -> list[str]:
    home = sh.st.get("HOME") or "/"
    shown_dir, _, base = word.rpartition("/")
    if "/" in word:
        shown_dir += "/"
    real_dir = shown_dir
    if real_dir.startswith("~"):
        real_dir = home.rstrip("/") + real_dir[1:]
    try:
        entries = await sh.ctx.listdir(real_dir or ".")
    except KernelError:
        return []
    out = []
    for name in entries:
        if not name.startswith(base) or (name.startswith(".") and not base.startswith(".")):
            continue
        path = (real_dir or "") + name
        try:
            is_dir = (await sh.ctx.stat(path)).mode & 0o170000 == 0o040000
        except KernelError:
            is_dir = False
        if dirs_only and not is_dir:
            continue
        out.append(shown_dir + _escape(name) + ("/" if is_dir else " "))
    return sorted(out)


def _escape(name: str) -> str:
    return "".join("\\" + c if c in " \t\\'\"$`&|;<>()*?[]!{}#~" else c for c in name)


# ------------------------------------------------------------------ the loop

class CommandInterrupted(BaseException):
    """^C while the shell itself runs the command (a builtin loop): abandon it, as bash does.
    A BaseException so that no ``except Exception`` inside the interpreter swallows it."""


def _only_interrupts(exc: BaseException) -> bool:
    if isinstance(exc, CommandInterrupted):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(e) for e in exc.exceptions)
    return False


class _Running:
    """Whether the shell task is running a command (then ^C interrupts it)."""

    def __init__(self) -> None:
        self.on = False
        self.task = trio.lowlevel.current_task()

    def on_int(self, sig: int) -> None:
        # forked subshells inherit the handler: only the interactive shell's own task raises
        if self.on and trio.lowlevel.current_task() is self.task:
            raise CommandInterrupted()

async def _update_size(sh: Shell) -> None:
    """``checkwinsize``: $COLUMNS and $LINES follow the terminal."""
    try:
        rows, cols = sh.ctx.get_winsize(0)
    except KernelError:
        return
    if rows > 0 and cols > 0:
        for name, value in (("COLUMNS", cols), ("LINES", rows)):
            try:
                sh.st.set(name, str(value))
            except Exception:  # noqa: BLE001 - a readonly COLUMNS keeps its value
                pass


async def _setup_job_control(sh: Shell, running: _Running) -> None:
    ctx = sh.ctx
    sh.st.options["monitor"] = True
    # the shell catches the keyboard and terminal-access signals (children get them reset to
    # default) and leads its own process group in the foreground
    await ctx.signal(2, running.on_int)
    for sig in (3, 20, 21, 22):  # QUIT TSTP TTIN TTOU
        await ctx.signal(sig, lambda s: None)
    # a resize interrupts the editor's read (no SA_RESTART) so it redraws at the new width
    await ctx.signal(SIGWINCH, lambda s: None, 0)
    try:
        if ctx.getpgid() != ctx.getpid():
            await ctx.setpgid(0, 0)
        await sh.set_terminal_group(ctx.getpgid())
    except KernelError:
        pass


async def _announce_jobs(sh: Shell, before: set[int]) -> None:
    """``[N] PID`` for each job the last command put in the background, as bash prints."""
    if sh.jobs is None:
        return
    for num, job in sorted(sh.jobs.jobs.items()):
        if num not in before and job.state == "Running":
            await sh.out(f"[{num}] {job.pid}\n", 2)


async def _notify_done(sh: Shell) -> None:
    """Before a prompt: ``[N]+  Done  text`` for background jobs that finished, then forget them."""
    if sh.jobs is None or not sh.jobs.jobs:
        return
    keys = sorted(sh.jobs.jobs)
    for num in keys:
        job = sh.jobs.jobs[num]
        if job.state not in ("Running",):
            continue
        try:
            pid, status = await sh.ctx.waitpid(job.pid, 1)  # WNOHANG
        except KernelError:
            continue
        if pid != job.pid:
            continue
        code = wait_status_code(status)
        sh.jobs.done_status[job.pid] = code
        state = "Done" if code == 0 else f"Exit {code}"
        mark = "+" if num == keys[-1] else ("-" if len(keys) > 1 and num == keys[-2] else " ")
        await sh.out(f"[{num}]{mark}  {state:<24}{job.text}\n", 2)
        del sh.jobs.jobs[num]


async def _read_rc(sh: Shell) -> int | None:
    st = sh.st
    rc = "~/.shrc" if st.posix else "~/.bashrc"
    path = rc.replace("~", st.get("HOME") or "/home/user", 1)
    try:
        await sh.ctx.stat(path)
    except KernelError:
        return None
    try:
        await sh.builtins["."](sh, [".", path])
    except ExitShell as e:
        return e.status
    return None


async def interactive(sh: Shell) -> int:
    """Read, parse and run commands until end of input or ``exit``."""
    st = sh.st
    ctx = sh.ctx
    st.shopts["expand_aliases"] = True
    tty = ctx.isatty(0)
    editor: LineEditor | None = None
    running = _Running()
    if tty:
        await _setup_job_control(sh, running)
        history = History()
        sh.history = history.lines  # type: ignore[attr-defined]  # what the history builtin lists

        async def completer(line: str, cursor: int) -> tuple[int, list[str]]:
            return await complete(sh, line, cursor)

        editor = LineEditor(ctx, history=history, completer=completer)
        if not st.is_set("PS1"):
            st.set("PS1", DEFAULT_PS1)
    if not st.is_set("PS2"):
        st.set("PS2", "> ")
    ended = await _read_rc(sh)
    if ended is not None:
        return ended
    buf = ""
    status = 0
    sh.command_number = 1  # type: ignore[attr-defined]
    while True:
        if tty:
            await _update_size(sh)
            if not buf:
                await _notify_done(sh)
        ps = st.get("PS1" if not buf else "PS2") or ""
        prompt = await expand_prompt(sh, ps)
        try:
            if editor is not None:
                got = await editor.read_line(prompt)
                line = None if got is None else got + "\n"
            else:
                await sh.out(prompt, 2)
                line = await sh.read_line(0)
        except Interrupted:
            buf = ""
            st.last_status = 130
            continue
        except KernelError:
            line = None
        if line is None:
            if tty:
                await sh.out("exit\n", 2)
            break
        buf += line
        try:
            sh.new_parser(buf).parse_program()
        except IncompleteInput:
            continue
        except ShellSyntaxError as e:
            await sh.error(str(e), e.line)
            buf = ""
            st.last_status = 2
            continue
        src, buf = buf, ""
        if editor is not None:
            editor.history.add(src)
            await _update_size(sh)  # the window may have changed while the line was edited
        sh.command_number += 1  # type: ignore[attr-defined]
        running.on = True
        jobs_before = set(sh.jobs.jobs) if sh.jobs is not None else set()
        try:
            status, leave = await _run_command(sh, src)
        except BaseException as e:  # noqa: BLE001 - only ^C is handled here
            if not _only_interrupts(e):
                raise
            await sh.out("\n", 2)
            status, leave = 130, False
            st.last_status = 130
        finally:
            running.on = False
        if leave:
            break
        if tty:
            await _announce_jobs(sh, jobs_before)
    return await sh.run_exit_trap(status) & 0xFF


async def _run_command(sh: Shell, src: str) -> tuple[int, bool]:
    """Run one complete command: ``(status, the shell should exit)``; errors are messages."""
    st = sh.st
    try:
        return await sh.run_source(src), False
    except LimitExceeded as e:
        await sh.error(e.message)
        st.last_status = e.status
        return e.status, False
    except ExitShell as e:
        return e.status, True
    except FatalExpansion as e:
        await sh.error(e.message)
        st.last_status = 1
    except ShellSyntaxError as e:
        await sh.error(str(e), e.line)
        st.last_status = 2
    except KernelError as e:
        await sh.error(errno_text(e))
        st.last_status = 1
    except Exception as e:  # noqa: BLE001 - the shell must never show a traceback
        await sh.error(f"internal error: {type(e).__name__}: {e}")
        st.last_status = 2
    return st.last_status, False
