"""The tree-walking command evaluator.

One :class:`Shell` per shell process.  Control flow (``break``, ``continue``, ``return``,
``exit``) travels as exceptions derived from :class:`ControlFlow`, caught by the loop,
function or process they end.  Subshells, pipeline stages, ``$( )`` and ``&`` are kernel
processes made with ``ctx.fork``: the child closure builds a new ``Shell`` over a copy of
the state (:meth:`ShellState.fork_copy`), which is what fork's copied memory gives a C
shell.  Programs run with ``ctx.spawn`` (or ``ctx.execve`` when the command is the last
thing a forked child does, saving a process).

Redirections of commands that run inside the shell are applied with ``dup2`` on the
shell's own fds and undone afterwards (saved copies live above fd 10, close-on-exec so
children never see them), the way a C shell does it; programs then simply inherit 0-2.

Every command goes through :meth:`Shell._tick`, which makes a syscall
(``ctx.preempt_point``) so a busy loop lets the other tasks (and the FUSE server) run and a
SIGKILL or SIGINT lands, and which counts the command against the limits.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from kernel.errors import KernelError
from kernel.shell import arith, pattern
from kernel.shell.ast import (
    AndOr,
    ArithCommand,
    ArithFor,
    Case,
    CmdSub,
    CommandList,
    CondAnd,
    CondBinary,
    CondCommand,
    CondNot,
    CondOr,
    CondUnary,
    CondWord,
    Coproc,
    For,
    FunctionDef,
    Group,
    If,
    Lit,
    Pipeline,
    ProcSub,
    Redir,
    Select,
    SimpleCommand,
    Subshell,
    While,
    Word,
)
from kernel.shell.expand import ArithAdapter, Expander, ExpansionError, FatalExpansion, shell_quote
from kernel.shell.parser import Parser, ShellSyntaxError
from kernel.shell.state import ShellState, VarError
from kernel.syscalls import (
    AF_UNSPEC,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_STREAM,
    ExecImage,
)

__all__ = ["Shell", "ControlFlow", "BreakLoop", "ContinueLoop", "ReturnFn", "ExitShell", "LimitExceeded",
           "SIGNALS", "signal_number", "wait_status_code"]

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
    "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
    "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
    "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
}
SIGNAL_NAMES = {v: k for k, v in SIGNALS.items()}
_PSEUDO = ("EXIT", "ERR", "DEBUG", "RETURN")


def signal_number(spec: str) -> int | None:
    """``INT``, ``SIGINT``, ``2``, ``int`` -> 2; ``EXIT``/``0`` -> 0; None if unknown."""
    s = spec.upper()
    if s.isdigit():
        n = int(s)
        return n if n == 0 or n in SIGNAL_NAMES else None
    if s.startswith("SIG"):
        s = s[3:]
    if s == "EXIT":
        return 0
    return SIGNALS.get(s)


def wait_status_code(status: int) -> int:
    """``$?`` of a wait status (Linux layout): the exit code or 128 + signal."""
    low = status & 0x7F
    if low == 0:
        return (status >> 8) & 0xFF
    if low == 0x7F:
        return 128 + ((status >> 8) & 0xFF)
    return 128 + low


_SIGNAL_TEXT = {1: "Hangup", 3: "Quit", 4: "Illegal instruction", 6: "Aborted", 8: "Floating point exception",
                9: "Killed", 10: "User defined signal 1", 11: "Segmentation fault", 12: "User defined signal 2",
                14: "Alarm clock", 15: "Terminated", 24: "CPU time limit exceeded", 25: "File size limit exceeded"}


class ControlFlow(Exception):
    """Base of the exceptions that carry ``break``/``continue``/``return``/``exit``."""


class BreakLoop(ControlFlow):
    def __init__(self, n: int) -> None:
        self.n = n


class ContinueLoop(ControlFlow):
    def __init__(self, n: int) -> None:
        self.n = n


class ReturnFn(ControlFlow):
    def __init__(self, status: int) -> None:
        self.status = status


class ExitShell(ControlFlow):
    def __init__(self, status: int) -> None:
        self.status = status


class AbortCommand(ExitShell):
    """bash's "discard the current top-level command": ``run_source`` goes on with the next
    one; anywhere else (a subshell, ``$( )``) it ends the process like ``exit``."""


class LimitExceeded(ExitShell):
    """A resource limit: the message is printed once and the shell exits non-zero."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(status)
        self.message = message


class RedirError(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


# which fd each redirection operator defaults to
_DEFAULT_FD = {"<": 0, "<>": 0, "<&": 0, "<<": 0, "<<-": 0, "<<<": 0,
               ">": 1, ">>": 1, ">|": 1, ">&": 1, "&>": 1, "&>>": 1}

_ERRNO_TEXT = {
    "ENOENT": "No such file or directory", "EACCES": "Permission denied", "EISDIR": "Is a directory",
    "ENOTDIR": "Not a directory", "EEXIST": "File exists", "EBADF": "Bad file descriptor",
    "EPERM": "Operation not permitted", "EROFS": "Read-only file system", "ENOSPC": "No space left on device",
    "ECONNREFUSED": "Connection refused", "ENETUNREACH": "Network is unreachable",
    "ETIMEDOUT": "Connection timed out", "EHOSTUNREACH": "No route to host",
    "EMFILE": "Too many open files", "ENOEXEC": "Exec format error", "ELOOP": "Too many levels of symbolic links",
    "EINVAL": "Invalid argument", "ENOTEMPTY": "Directory not empty", "EPIPE": "Broken pipe",
    "ENAMETOOLONG": "File name too long", "EAGAIN": "Resource temporarily unavailable",
    "ECHILD": "No child processes", "ESRCH": "No such process", "EFBIG": "File too large",
    "EINTR": "Interrupted system call", "EXDEV": "Invalid cross-device link", "ENXIO": "No such device or address",
}


def errno_text(e: KernelError) -> str:
    return _ERRNO_TEXT.get(e.code, e.message)


class Limits:
    """The shell's limits, read from the kernel's ``Limits`` (None: unlimited; 0 means 0)."""

    __slots__ = ("function_depth", "loop_iterations", "commands", "brace_words", "glob_results",
                 "var_bytes", "parse_depth", "subst_depth", "script_bytes")

    def __init__(self, kl: Any) -> None:
        g = getattr
        self.function_depth = g(kl, "sh_function_depth", 200)
        self.loop_iterations = g(kl, "sh_loop_iterations", None)
        self.commands = g(kl, "sh_commands", None)
        self.brace_words = g(kl, "sh_brace_words", 1_000_000)
        self.glob_results = g(kl, "sh_glob_results", 100_000)
        self.var_bytes = g(kl, "sh_var_bytes", 256 << 20)
        self.parse_depth = g(kl, "sh_parse_depth", 200)
        self.subst_depth = g(kl, "sh_subst_depth", 64)
        self.script_bytes = g(kl, "sh_script_bytes", 64 << 20)


def _command_limits(ctx: Any) -> Any:
    """The limits of the command this shell runs in: a session may have lowered the kernel's
    (``kernel.limits.lower_command``); the budget is the command tree's, shared by its processes."""
    rl = getattr(ctx, "_rl", None)
    budget = getattr(rl, "budget", None)
    own = getattr(budget, "shell", None)
    return own if own is not None else ctx.kernel.limits


def _cat_redir(body: CommandList) -> Redir | None:
    """The ``< file`` of ``$(< file)`` (a lone input redirection), or None."""
    if len(body.items) != 1 or body.items[0][1]:
        return None
    ao = body.items[0][0]
    if ao.rest or len(ao.first.commands) != 1 or ao.first.negate:
        return None
    cmd = ao.first.commands[0]
    if type(cmd) is not SimpleCommand or cmd.words or cmd.assigns or len(cmd.redirs) != 1:
        return None
    r = cmd.redirs[0]
    return r if r.op == "<" and r.fd is None and r.fd_var is None else None


#: Commands that may replace a forked child's shell (``exec_last``) when they are all it runs.
_IN_PLACE = frozenset({SimpleCommand, Subshell})

#: Commands between two looks at the time slice (see ``Shell._tick``).
_YIELD_EVERY = 16


class Counters:
    """Work done so far in this shell process (shared by nothing: each fork starts anew)."""

    __slots__ = ("commands", "loops", "depth", "subst")

    def __init__(self) -> None:
        self.commands = 0
        self.loops = 0
        self.depth = 0
        self.subst = 0


class Shell(Expander):
    """One shell process's interpreter (see the module docstring)."""

    def __init__(self, ctx: Any, st: ShellState, *, name: str = "sh") -> None:
        self.ctx = ctx
        self.st = st
        self.name = name
        self.limits = Limits(_command_limits(ctx))
        self.counters = Counters()
        self._arith = ArithAdapter(self)
        self.errexit_off = 0        # >0 while in a condition / && || / ! context
        self.exec_last = False      # this command is the last thing of a forked child
        self.last_stage_in_place = False  # a background pipeline's child: become its last stage
        self.pending_traps: list[str] = []
        self.in_trap = False
        self.loop_depth = 0
        self.jobs: Any = None       # kernel.shell.jobs.JobTable, set by main
        self.builtins: dict[str, Callable[..., Awaitable[int]]] = {}
        self.special_builtins: frozenset[str] = frozenset()
        self.script_name = name
        self._dispatch: dict[type, Callable[[Any], Awaitable[int]]] = {
            SimpleCommand: self.exec_simple, Pipeline: self.exec_pipeline, Group: self._group,
            Subshell: self._subshell, If: self._if, While: self._while, For: self._for,
            ArithFor: self._arith_for, Case: self._case, FunctionDef: self._funcdef,
            ArithCommand: self._arith_cmd, CondCommand: self._cond_cmd, Select: self._select,
            Coproc: self._coproc,
        }
        self._tick_n = 0
        self._procsub_fds: list[int] = []
        self._decl_words: dict[str, Any] | None = None
        self.in_source = 0
        self._subst_status: int | None = None

    @property
    def _arith_vars(self) -> ArithAdapter:
        return self._arith

    def limits_brace(self) -> int:
        return self.limits.brace_words

    def glob_limit(self) -> int:
        return self.limits.glob_results

    # ------------------------------------------------------------------ messages
    async def error(self, msg: str, lineno: int | None = None) -> None:
        """``sh: line N: msg`` on stderr (never raises)."""
        line = self.st.lineno if lineno is None else lineno
        st = self.st
        # bash names the file the running code came from: a sourced file, or for a function
        # its defining file ("environment" for one defined in a -c string)
        name = st.sources[0] if st.sources and not st.posix and not st.interactive else self.script_name
        prefix = f"{name}: line {line}: " if line else f"{name}: "
        try:
            await self.ctx.write_all(2, (prefix + msg + "\n").encode("utf-8", "surrogateescape"))
        except KernelError:
            pass

    async def out(self, text: str, fd: int = 1) -> None:
        await self.ctx.write_all(fd, text.encode("utf-8", "surrogateescape"))

    # ------------------------------------------------------------------ entry
    def new_parser(self, source: str, line: int = 1) -> Parser:
        return Parser(source, posix=self.st.posix, aliases=self.st.aliases_get,
                      max_depth=self.limits.parse_depth, extglob=self.st.shopts.get("extglob", False), line=line)

    async def run_source(self, source: str, *, line: int = 1) -> int:
        """Parse and run *source* one complete command at a time (as bash reads a script,
        so that ``alias`` and ``shopt -s extglob`` apply to the following commands).
        Raises ShellSyntaxError after running the commands before the error."""
        lim = self.limits.script_bytes
        if lim is not None and len(source) > lim:
            raise LimitExceeded(f"script exceeds the size limit ({lim} bytes)")
        parser = self.new_parser(source, line)
        status = 0
        while True:
            parser.extglob = self.st.shopts.get("extglob", False)
            node = parser.parse_next()
            if node is None:
                return status
            if self.st.options.get("noexec"):
                continue
            try:
                status = await self.exec_list(node)
            except AbortCommand as e:
                # bash reads on after the command an arithmetic or substitution error ended
                status = self.st.last_status = e.status

    async def read_script(self, fd: int) -> str:
        """A script's text from *fd*, read no further than the script size limit allows
        (``sh /dev/zero`` or ``source /dev/urandom`` stop there with one line)."""
        lim = self.limits.script_bytes
        parts: list[bytes] = []
        total = 0
        while True:
            data = await self.ctx.read(fd, 65536)
            if not data:
                break
            parts.append(data)
            total += len(data)
            if lim is not None and total > lim:
                raise LimitExceeded(f"script exceeds the size limit ({lim} bytes)")
        return b"".join(parts).decode("utf-8", "surrogateescape")

    # ------------------------------------------------------------------ housekeeping
    async def _tick(self) -> None:
        """Per command: count it, and every ``_YIELD_EVERY`` commands pass a preemption
        point (pending signals run their handlers; once the 2 ms time slice is used up, a
        trio checkpoint: other processes and the FUSE server run, a SIGKILL lands).
        Looking on every command would cost more than the command itself."""
        c = self.counters
        c.commands += 1
        lim = self.limits.commands
        if lim is not None and c.commands > lim:
            raise LimitExceeded(f"maximum number of commands exceeded ({lim})")
        if not c.commands % _YIELD_EVERY:
            await self.ctx.preempt_point()
        if self.pending_traps and not self.in_trap:
            await self.run_pending_traps()

    async def run_pending_traps(self) -> None:
        while self.pending_traps:
            sig = self.pending_traps.pop(0)
            cmd = self.st.traps.get(sig)
            if cmd:
                await self.run_trap(cmd)

    async def run_trap(self, cmd: str) -> None:
        saved = self.st.last_status
        self.in_trap = True
        try:
            await self.run_source(cmd)
        except ShellSyntaxError as e:
            await self.error(f"syntax error: {e}")
        finally:
            self.in_trap = False
        self.st.last_status = saved

    def trap_handler(self, name: str) -> Callable[[int], None]:
        def handler(sig: int) -> None:
            self.pending_traps.append(name)
        return handler

    def loop_tick(self) -> None:
        c = self.counters
        c.loops += 1
        lim = self.limits.loop_iterations
        if lim is not None and c.loops > lim:
            raise LimitExceeded(f"maximum loop iterations exceeded ({lim})")

    # ------------------------------------------------------------------ lists
    async def exec_list(self, cl: CommandList) -> int:
        status = self.st.last_status
        for ao, bg in cl.items:
            try:
                if bg:
                    status = await self._background(ao)
                else:
                    status = await self.exec_andor(ao)
            except KernelError as e:
                if e.code != "EAGAIN":
                    raise
                # the process limit: this command fails, the script goes on (as bash's fork)
                await self.error(f"fork: {errno_text(e)}")
                status = self.st.last_status = 1
        return status

    async def exec_andor(self, ao: AndOr) -> int:
        rest = ao.rest
        st = self.st
        if not rest:
            status = await self.exec_pipeline(ao.first)
            st.last_status = status
            if status and not self.errexit_off and not ao.first.negate:
                await self._failed(status)
            return status
        self.errexit_off += 1
        try:
            status = await self.exec_pipeline(ao.first)
            st.last_status = status
            last = len(rest) - 1
            final_ran = False
            final_neg = False
            for i, (op, p) in enumerate(rest):
                if (op == "&&") == (status == 0):
                    if i == last:
                        self.errexit_off -= 1
                        try:
                            status = await self.exec_pipeline(p)
                        finally:
                            self.errexit_off += 1
                        final_ran = True
                        final_neg = p.negate
                    else:
                        status = await self.exec_pipeline(p)
                    st.last_status = status
        finally:
            self.errexit_off -= 1
        if status and final_ran and not final_neg and not self.errexit_off:
            await self._failed(status)
        return status

    async def _failed(self, status: int) -> None:
        """A command failed outside any condition: the ERR trap, then ``set -e``."""
        st = self.st
        err = st.traps.get("ERR")
        if err and not self.in_trap and (not st.funcnames or st.options.get("errtrace")):
            await self.run_trap(err)
        if st.options.get("errexit"):
            raise ExitShell(status)

    async def exec_pipeline(self, p: Pipeline) -> int:
        cmds = p.commands
        st = self.st
        if p.time:
            t0 = time.monotonic()
        if len(cmds) == 1:
            if p.negate:
                self.errexit_off += 1
                try:
                    status = await self.exec_command(cmds[0])
                finally:
                    self.errexit_off -= 1
            else:
                status = await self.exec_command(cmds[0])
            st.pipestatus = [status]
        elif not cmds:
            status = 0
        else:
            status = await self._multi_pipeline(p)
        if p.time:
            dt = time.monotonic() - t0
            await self.out(f"\nreal\t{_fmt_time(dt)}\nuser\t0m0.000s\nsys\t0m0.000s\n", 2)
        if p.negate:
            status = 0 if status else 1
        return status

    async def _multi_pipeline(self, p: Pipeline) -> int:
        ctx = self.ctx
        cmds = p.commands
        n = len(cmds)
        pids: list[int] = []
        prev_r: int | None = None
        jc = self.job_control
        lastpipe = bool(self.st.shopts.get("lastpipe")) and not jc
        # In a background pipeline's child the last stage runs here, execing in place, so the
        # job's pid is that process's, as in bash: ``kill $!`` ends it, ``wait $!`` is its
        # status.  Not with pipefail (the status is the whole pipeline's; the child reports it).
        in_place = (self.last_stage_in_place and not jc and not lastpipe
                    and not self.st.options.get("pipefail"))
        self.last_stage_in_place = False
        if lastpipe or in_place:
            cmds = cmds[:-1]  # shopt -s lastpipe: the last stage runs in this shell
        try:
            for i, c in enumerate(cmds):
                r = w = None
                if i < n - 1:
                    r, w = await ctx.pipe(O_CLOEXEC)
                errpipe = i < n - 1 and i < len(p.pipe_stderr) and p.pipe_stderr[i]
                pgid = (0 if not pids else pids[0]) if jc else None
                # ``jobs | cat`` lists the parent's jobs in bash (a lone simple command only)
                pid = await self.fork(self._stage_runner(c), stdin=prev_r, stdout=w,
                                      stderr=w if errpipe else None, pgid=pgid,
                                      keep_jobs=type(c) is SimpleCommand)
                pids.append(pid)
                if prev_r is not None:
                    await ctx.close(prev_r)
                    prev_r = None
                if w is not None:
                    await ctx.close(w)
                prev_r = r
            if lastpipe:
                last_status = await self._last_stage_here(p.commands[-1], prev_r)
            elif in_place:
                if prev_r is not None:  # stdin is the pipe for good: this process is the stage
                    await ctx.dup2(prev_r, 0)
                    await ctx.close(prev_r)
                    prev_r = None
                self.exec_last = type(p.commands[-1]) in _IN_PLACE
                last_status = await self.exec_command(p.commands[-1])
        finally:
            if prev_r is not None:
                await ctx.close(prev_r)
        if jc:
            statuses = await self.wait_foreground(pids, _andor_text(None))
        else:
            statuses = [await self.wait_pid(pid) for pid in pids]
        if lastpipe or in_place:
            statuses.append(last_status)
        self.st.pipestatus = statuses
        if self.st.options.get("pipefail"):
            for s in reversed(statuses):
                if s:
                    return s
            return 0
        return statuses[-1]

    async def _last_stage_here(self, c: Any, stdin: int | None) -> int:
        """``lastpipe``: run the pipeline's last command in this shell, its stdin the pipe."""
        ctx = self.ctx
        saved = await ctx.fcntl(0, F_DUPFD_CLOEXEC, 10)
        try:
            if stdin is not None:
                await ctx.dup2(stdin, 0)
            return await self.exec_command(c)
        finally:
            await ctx.dup2(saved, 0)
            await ctx.close(saved)

    def _stage_runner(self, c: Any) -> Callable[["Shell"], Awaitable[int]]:
        # only a simple command (or a subshell, which passes it on) may exec in place: in a
        # compound command the first simple command run is not the last thing to do
        in_place = type(c) in _IN_PLACE

        async def run(sub: Shell) -> int:
            sub.exec_last = in_place
            return await sub.exec_command(c)
        return run

    @property
    def job_control(self) -> bool:
        """Job control is on in an interactive top-level shell with ``set -m``: each
        foreground job gets its own process group and the terminal."""
        st = self.st
        return st.interactive and bool(st.options.get("monitor")) and st.subshell == 0

    async def set_terminal_group(self, pgid: int) -> None:
        """``tcsetpgrp`` with SIGTTOU blocked, as shells do (the shell may be in the
        background group at that moment)."""
        ctx = self.ctx
        try:
            old = await ctx.sigprocmask(0, {SIGNALS["TTOU"]})  # SIG_BLOCK
            try:
                await ctx.tcsetpgrp(0, pgid)
            finally:
                await ctx.sigprocmask(2, old)  # SIG_SETMASK
        except KernelError:
            pass

    async def wait_foreground(self, pids: list[int], text: str) -> list[int]:
        """Give the terminal to the job's group, wait for every process (a stop makes it a
        stopped job, status 128+sig), then take the terminal back."""
        await self.set_terminal_group(pids[0])
        statuses: list[int] = []
        try:
            for pid in pids:
                while True:
                    try:
                        _, status = await self.ctx.waitpid(pid, 2)  # WUNTRACED
                        break
                    except KernelError as e:
                        if e.code == "EINTR":
                            continue
                        status = 127 << 8
                        break
                if status & 0xFF == 0x7F:
                    job = self.jobs.add(pids[0], text) if self.jobs is not None else None
                    if job is not None:
                        job.state = "Stopped"
                        await self.out(f"\n[{job.num}]+  Stopped                 {text}\n", 2)
                    statuses.append(128 + ((status >> 8) & 0xFF))
                    return statuses + [statuses[-1]] * (len(pids) - len(statuses))
                statuses.append(wait_status_code(status))
        finally:
            await self.set_terminal_group(self.ctx.getpgid())
        return statuses

    async def wait_pid(self, pid: int, quiet: bool = False) -> int:
        """waitpid for a foreground child; a death by signal is reported as bash does,
        unless *quiet* (command substitutions, whose deaths bash does not report)."""
        while True:
            try:
                _, status = await self.ctx.waitpid(pid, 0)
                break
            except KernelError as e:
                if e.code == "EINTR":
                    continue
                if e.code == "ECHILD":
                    return 127
                raise
        if self.jobs is not None:
            self.jobs.forget_pid(pid)
        low = status & 0x7F
        if low and low != 0x7F and low not in (2, 13) and not quiet:
            # a foreground command killed by a signal: bash reports it
            desc = _SIGNAL_TEXT.get(low, f"Signal {low}")
            await self.out(f"{self.script_name}: line {self.st.lineno}: {pid} {desc}\n", 2)
        return wait_status_code(status)

    # ------------------------------------------------------------------ processes
    async def fork(self, fn: Callable[["Shell"], Awaitable[int]], *, stdin: int | None = None,
                   stdout: int | None = None, stderr: int | None = None, pgid: int | None = None,
                   background: bool = False, keep_jobs: bool = False) -> int:
        """Run ``fn(child_shell)`` in a forked child process; returns its pid.  The child has a
        job table of its own: empty, or with *keep_jobs* (command substitution) the parent's
        jobs to list, as bash's ``$(jobs -p)`` does."""
        st = self.st.fork_copy()
        if st.traps or st.shown_traps:
            st.shown_traps = dict(self.st.shown_traps if self.st.shown_traps is not None else self.st.traps)
        st.traps = {k: v for k, v in st.traps.items() if v == ""}
        parent = self

        async def child(cctx: Any) -> int:
            sub = Shell(cctx, st, name=parent.name)
            if parent.jobs is not None:
                sub.jobs = parent.jobs.inherited() if keep_jobs else type(parent.jobs)()
            sub.script_name = parent.script_name
            sub.builtins = parent.builtins
            sub.special_builtins = parent.special_builtins
            sub.errexit_off = parent.errexit_off
            sub.loop_depth = 0
            st.bash_pid = cctx.getpid()
            if background and not st.interactive:
                # POSIX: asynchronous lists of a non-interactive shell ignore INT and QUIT
                for sig in ("INT", "QUIT"):
                    await cctx.signal(SIGNALS[sig], "ignore")
            if parent.job_control:
                st.interactive = False
            try:
                status = await fn(sub)
            except ExitShell as e:
                if isinstance(e, LimitExceeded):
                    await sub.error(e.message)
                status = e.status
            except (BreakLoop, ContinueLoop):
                status = 0
            except ReturnFn as e:
                status = e.status
            except FatalExpansion as e:
                await sub.error(e.message)
                status = sub.fatal_status(e)
            status = await sub.run_exit_trap(status)
            return status & 0xFF

        return await self.ctx.fork(child, stdin=stdin, stdout=stdout, stderr=stderr, pgid=pgid)

    async def run_exit_trap(self, status: int) -> int:
        cmd = self.st.traps.pop("EXIT", None)
        if cmd:
            self.st.last_status = status
            try:
                await self.run_trap(cmd)
            except ExitShell as e:
                return e.status
        return status

    async def _background(self, ao: AndOr) -> int:
        # ``cmd &`` is the command itself, as in bash: the forked child execs a lone command in
        # place, so $! and %1 are its pid (kill reaches it) and no shell lingers holding the
        # caller's stdout after ``cmd >/dev/null &``.
        lone = (not ao.rest and not ao.first.negate and not ao.first.time
                and (len(ao.first.commands) != 1 or type(ao.first.commands[0]) in _IN_PLACE))

        async def run(sub: Shell) -> int:
            sub.exec_last = lone
            # ``a | b &``: the child becomes b (bash's $! is the last process of the pipeline)
            sub.last_stage_in_place = lone and len(ao.first.commands) > 1
            return await sub.exec_andor(ao)

        stdin = None
        devnull = None
        if not self.st.interactive:
            try:
                devnull = await self.ctx.open("/dev/null", O_RDONLY | O_CLOEXEC)
                stdin = devnull
            except KernelError:
                pass
        try:
            pid = await self.fork(run, stdin=stdin, background=True, pgid=0 if self.job_control else None)
        finally:
            if devnull is not None:
                await self.ctx.close(devnull)
        self.st.last_bg = pid
        if self.jobs is not None:
            self.jobs.add(pid, _andor_text(ao))
        return 0

    async def command_subst(self, node: CmdSub) -> str:
        if node.error:
            raise FatalExpansion(node.error, 2)
        c = self.counters
        if c.subst >= self.limits.subst_depth:
            raise LimitExceeded(f"maximum command substitution nesting exceeded ({self.limits.subst_depth})")
        ctx = self.ctx
        body = node.body

        cat_file = _cat_redir(body)

        async def run(sub: Shell) -> int:
            sub.counters.subst = c.subst + 1
            if cat_file is not None:
                return await sub.cat_redirection(cat_file)
            sub.exec_last = len(body.items) == 1 and not body.items[0][1]
            return await sub.exec_list(body)

        r, w = await ctx.pipe(O_CLOEXEC)
        try:
            pid = await self.fork(run, stdout=w, keep_jobs=True)
        finally:
            await ctx.close(w)
        chunks = []
        total = 0
        limit = self.limits.var_bytes
        try:
            while True:
                data = await ctx.read(r, 65536)
                if not data:
                    break
                total += len(data)
                if limit is not None and total > limit:
                    await ctx.close(r)
                    r = -1
                    await ctx.kill(pid, 9)
                    await self.wait_pid(pid, quiet=True)
                    raise LimitExceeded(f"command substitution: output exceeds the variable size limit ({limit})")
                chunks.append(data)
        finally:
            if r >= 0:
                await ctx.close(r)
        self.st.last_status = self._subst_status = await self.wait_pid(pid, quiet=True)
        text = b"".join(chunks).decode("utf-8", "surrogateescape")
        return text.rstrip("\n")

    async def cat_redirection(self, redir: Redir) -> int:
        """``$(< file)``: the file's contents, as bash gives them without running ``cat``."""
        try:
            saved = await self.apply_redirs([redir])
        except RedirError as e:
            await self.error(e.message)
            return 1
        try:
            fd = _DEFAULT_FD["<"] if redir.fd is None else redir.fd
            while True:
                data = await self.ctx.read(fd, 65536)
                if not data:
                    return 0
                await self.ctx.write_all(1, data)
        except KernelError as e:
            await self.error(str(e))
            return 1
        finally:
            await self.restore_redirs(saved)

    async def process_subst(self, node: ProcSub) -> str:
        ctx = self.ctx
        body = node.body

        async def run(sub: Shell) -> int:
            return await sub.exec_list(body)

        # close-on-exec while the child forks, so it holds only its own end (a child holding
        # the write end of ``>(cat)`` would never see end of file); then inheritable, so a
        # program given /dev/fd/N gets it
        r, w = await ctx.pipe(O_CLOEXEC)
        if node.direction == "<":
            await self.fork(run, stdout=w)
            await ctx.close(w)
            keep = r
        else:
            await self.fork(run, stdin=r)
            await ctx.close(r)
            keep = w
        # out of the way of the low fds a script redirects (``3< <(cmd)`` must not be fd 3
        # itself), as bash puts them at 63 and below
        high = await ctx.fcntl(keep, F_DUPFD, 60)
        await ctx.close(keep)
        self._procsub_fds.append(high)
        return f"/dev/fd/{high}"


    # ------------------------------------------------------------------ commands
    async def exec_command(self, node: Any) -> int:
        fn = self._dispatch.get(type(node))
        if fn is None:
            await self.error(f"unsupported command {type(node).__name__}")
            return 2
        return await fn(node)

    async def _with_redirs(self, redirs: list[Redir], body: Callable[[], Awaitable[int]]) -> int:
        if not redirs:
            return await body()
        before = len(self._procsub_fds)
        try:
            saved = await self.apply_redirs(redirs)
        except RedirError as e:
            await self.error(e.message)
            return self.redir_status()
        # a process substitution of a compound command's redirection (``done < <(cmd)``) lives
        # as long as the command, not just until its first simple command ends
        ours = self._procsub_fds[before:]
        del self._procsub_fds[before:]
        try:
            return await body()
        finally:
            await self.restore_redirs(saved)
            for fd in ours:
                try:
                    await self.ctx.close(fd)
                except KernelError:
                    pass

    async def _group(self, node: Group) -> int:
        return await self._with_redirs(node.redirs, lambda: self.exec_list(node.body))

    async def _subshell(self, node: Subshell) -> int:
        if self.exec_last and not node.redirs:
            self.exec_last = False
            return await self.exec_list(node.body)

        async def run(sub: Shell) -> int:
            return await sub.exec_list(node.body)

        async def body() -> int:
            pid = await self.fork(run)
            return await self.wait_pid(pid)

        self.st.lineno = node.line
        return await self._with_redirs(node.redirs, body)

    async def _if(self, node: If) -> int:
        async def body() -> int:
            for cond, then in node.clauses:
                self.errexit_off += 1
                try:
                    c = await self.exec_list(cond)
                finally:
                    self.errexit_off -= 1
                if c == 0:
                    return await self.exec_list(then)
            if node.else_body is not None:
                return await self.exec_list(node.else_body)
            self.st.last_status = 0
            return 0
        return await self._with_redirs(node.redirs, body)

    async def _while(self, node: While) -> int:
        async def body() -> int:
            status = 0
            self.loop_depth += 1
            try:
                while True:
                    self.loop_tick()
                    await self._tick()
                    self.errexit_off += 1
                    try:
                        c = await self.exec_list(node.cond)
                    except BreakLoop as b:
                        if b.n > 1:
                            raise BreakLoop(b.n - 1) from None
                        break
                    except ContinueLoop as b:
                        if b.n > 1:
                            raise ContinueLoop(b.n - 1) from None
                        continue
                    finally:
                        self.errexit_off -= 1
                    if (c == 0) == node.until:
                        break
                    try:
                        status = await self.exec_list(node.body)
                    except BreakLoop as b:
                        if b.n > 1:
                            raise BreakLoop(b.n - 1) from None
                        status = 0
                        break
                    except ContinueLoop as b:
                        if b.n > 1:
                            raise ContinueLoop(b.n - 1) from None
                        status = 0
            finally:
                self.loop_depth -= 1
            self.st.last_status = status
            return status
        return await self._with_redirs(node.redirs, body)

    async def _for(self, node: For) -> int:
        async def body() -> int:
            self.st.lineno = node.line
            try:
                items = list(self.st.positional) if node.words is None else await self.expand_words(node.words)
            except ExpansionError as e:
                return await self._expansion_failed(e)
            status = 0
            var = node.var
            st = self.st
            self.loop_depth += 1
            try:
                for item in items:
                    self.loop_tick()
                    await self._tick()
                    try:
                        st.set(var, item)
                    except VarError as e:
                        await self.error(str(e))
                        return 1
                    try:
                        status = await self.exec_list(node.body)
                    except BreakLoop as b:
                        if b.n > 1:
                            raise BreakLoop(b.n - 1) from None
                        status = 0
                        break
                    except ContinueLoop as b:
                        if b.n > 1:
                            raise ContinueLoop(b.n - 1) from None
                        status = 0
            finally:
                self.loop_depth -= 1
            st.last_status = status
            return status
        return await self._with_redirs(node.redirs, body)

    async def _arith_for(self, node: ArithFor) -> int:
        async def body() -> int:
            status = 0
            try:
                if node.init is not None:
                    await self.arith_word(node.init)
                self.loop_depth += 1
                try:
                    while True:
                        self.loop_tick()
                        await self._tick()
                        if node.cond is not None and (await self.arith_word(node.cond)) == 0:
                            break
                        try:
                            status = await self.exec_list(node.body)
                        except BreakLoop as b:
                            if b.n > 1:
                                raise BreakLoop(b.n - 1) from None
                            status = 0
                            break
                        except ContinueLoop as b:
                            if b.n > 1:
                                raise ContinueLoop(b.n - 1) from None
                            status = 0
                        if node.step is not None:
                            await self.arith_word(node.step)
                finally:
                    self.loop_depth -= 1
            except ExpansionError as e:
                return await self._expansion_failed(e)
            self.st.last_status = status
            return status
        return await self._with_redirs(node.redirs, body)

    async def _select(self, node: Select) -> int:
        async def body() -> int:
            items = list(self.st.positional) if node.words is None else await self.expand_words(node.words)
            status = 0
            if not items:
                return 0
            self.loop_depth += 1
            try:
                while True:
                    self.loop_tick()
                    menu = "".join(f"{i + 1}) {w}\n" for i, w in enumerate(items))
                    await self.out(menu, 2)
                    await self.out(self.st.get("PS3") or "#? ", 2)
                    line = await self.read_line(0)
                    if line is None:
                        break
                    line = line.rstrip("\n")
                    self.st.set("REPLY", line)
                    if not line.strip():
                        continue
                    try:
                        k = int(line)
                    except ValueError:
                        k = 0
                    self.st.set(node.var, items[k - 1] if 1 <= k <= len(items) else "")
                    try:
                        status = await self.exec_list(node.body)
                    except BreakLoop as b:
                        if b.n > 1:
                            raise BreakLoop(b.n - 1) from None
                        break
                    except ContinueLoop as b:
                        if b.n > 1:
                            raise ContinueLoop(b.n - 1) from None
            finally:
                self.loop_depth -= 1
            return status
        return await self._with_redirs(node.redirs, body)

    async def read_line(self, fd: int, delim: str = "\n") -> str | None:
        """Read one line byte by byte (so the rest stays for the next reader, as bash does)."""
        buf = bytearray()
        d = delim.encode()
        while True:
            b = await self.ctx.read(fd, 1)
            if not b:
                return buf.decode("utf-8", "surrogateescape") if buf else None
            if b == d:
                return buf.decode("utf-8", "surrogateescape") + delim
            buf += b

    async def _case(self, node: Case) -> int:
        async def body() -> int:
            self.st.lineno = node.line
            try:
                word = await self.expand_str(node.word)
            except ExpansionError as e:
                return await self._expansion_failed(e)
            ext = self.st.shopts.get("extglob", False)
            nocase = self.st.shopts.get("nocasematch", False)
            status = 0
            items = node.items
            i = 0
            matched = False
            while i < len(items):
                it = items[i]
                if not matched:
                    for pw in it.patterns:
                        pat = await self.expand_pattern(pw)
                        if pattern.match(pat, word, extglob=ext, nocase=nocase):
                            matched = True
                            break
                if matched:
                    status = await self.exec_list(it.body)
                    if it.terminator == ";;":
                        break
                    if it.terminator == ";;&":
                        matched = False
                i += 1
            self.st.last_status = status
            return status
        return await self._with_redirs(node.redirs, body)

    async def _funcdef(self, node: FunctionDef) -> int:
        if node.name in self.special_builtins and self.st.posix:
            await self.error(f"`{node.name}': is a special builtin")
            return 1
        if node.name in self.st.readonly_functions:
            await self.error(f"{node.name}: readonly function")
            return 1
        node.file = self.st.sources[0] if self.st.sources else "environment"
        self.st.functions[node.name] = node
        return 0

    async def _arith_cmd(self, node: ArithCommand) -> int:
        async def body() -> int:
            self.st.lineno = node.line
            await self._tick()
            try:
                v = await self.arith_word(node.expr)
            except FatalExpansion as e:
                await self.error(e.message)
                return 1
            if self.st.options.get("xtrace"):
                await self._xtrace(["((", await self.expand_str_arith(node.expr), "))"])
            return 0 if v else 1
        return await self._with_redirs(node.redirs, body)

    async def _cond_cmd(self, node: CondCommand) -> int:
        async def body() -> int:
            self.st.lineno = node.line
            await self._tick()
            try:
                return 0 if await self.cond(node.expr) else 1
            except ExpansionError as e:
                await self.error(e.message)
                return e.status if not isinstance(e, FatalExpansion) else 1
            except _CondError as e:
                await self.error(str(e))
                return 2
        return await self._with_redirs(node.redirs, body)

    async def _coproc(self, node: Coproc) -> int:
        ctx = self.ctx
        r1, w1 = await ctx.pipe(O_CLOEXEC)  # coproc stdout -> shell
        r2, w2 = await ctx.pipe(O_CLOEXEC)  # shell -> coproc stdin

        async def run(sub: Shell) -> int:
            return await sub.exec_command(node.body)

        pid = await self.fork(run, stdin=r2, stdout=w1)
        await ctx.close(w1)
        await ctx.close(r2)
        rd = await ctx.fcntl(r1, F_DUPFD, 60)
        wr = await ctx.fcntl(w2, F_DUPFD, 60)
        await ctx.close(r1)
        await ctx.close(w2)
        self.st.set_array(node.name, {0: str(rd), 1: str(wr)})
        self.st.set(node.name + "_PID", str(pid))
        self.st.last_bg = pid
        if self.jobs is not None:
            self.jobs.add(pid, "coproc " + node.name)
        return 0

    # ------------------------------------------------------------------ [[ ]]
    async def cond(self, e: Any) -> bool:
        t = type(e)
        if t is CondAnd:
            return await self.cond(e.left) and await self.cond(e.right)
        if t is CondOr:
            return await self.cond(e.left) or await self.cond(e.right)
        if t is CondNot:
            return not await self.cond(e.operand)
        if t is CondWord:
            return await self.expand_str(e.word) != ""
        if t is CondUnary:
            if e.op == "-v":
                return await self._var_is_set(await self.expand_str(e.operand))
            val = await self.expand_str(e.operand)
            from kernel.shell.builtins.core import unary_test
            return await unary_test(self, e.op, val)
        if t is CondBinary:
            op = e.op
            left = await self.expand_str(e.left)
            if op in ("==", "=", "!="):
                pat = await self.expand_pattern(e.right)
                ok = pattern.match(pat, left, extglob=True, nocase=self.st.shopts.get("nocasematch", False))
                return ok if op != "!=" else not ok
            if op == "=~":
                return await self._regex_match(left, e.right)
            right = await self.expand_str(e.right)
            if op == "<":
                return left < right
            if op == ">":
                return left > right
            if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
                a = self.arith_eval(left or "0")
                b = self.arith_eval(right or "0")
                return {"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[op]
            from kernel.shell.builtins.core import binary_file_test
            return await binary_file_test(self, op, left, right)
        raise _CondError("conditional: unknown expression")

    async def _var_is_set(self, name: str) -> bool:
        if "[" in name and name.endswith("]"):
            base, _, sub = name[:-1].partition("[")
            v = self.st.lookup(base)
            if v is None or v.value is None:
                return False
            if sub in ("@", "*"):
                return bool(v.value) if v.kind != "s" else True
            if v.kind == "A":
                return sub in v.value
            try:
                idx = self.arith_eval(sub)
            except ExpansionError:
                return False
            if v.kind == "s":
                return idx == 0
            if idx < 0 and v.value:
                idx += max(v.value) + 1
            return idx in v.value
        if name.isdigit():
            return 0 < int(name) <= len(self.st.positional)
        var = self.st.lookup(name)
        return self.st.is_set(name) or (var is not None and var.kind != "s" and bool(var.value))

    async def _regex_match(self, left: str, right: Word) -> bool:
        from kernel.shell.ere import EreError, search
        _, chunks = await self.expand_regex(right)
        try:
            m = search(chunks, left, icase=self.st.shopts.get("nocasematch", False))
        except EreError:
            self.st.last_status = 2
            raise _CondError("") from None
        if m is None:
            self.st.set_array("BASH_REMATCH", {})
            return False
        self.st.set_array("BASH_REMATCH", {i: g if g is not None else "" for i, g in enumerate(m)})
        return True

    # ------------------------------------------------------------------ simple commands
    async def _expansion_failed(self, e: ExpansionError) -> int:
        await self.error(e.message)
        if isinstance(e, FatalExpansion) and not self.st.interactive:
            if e.line_only and not self.st.posix:
                raise AbortCommand(self.fatal_status(e))
            raise ExitShell(self.fatal_status(e))
        return e.status

    def fatal_status(self, e: ExpansionError) -> int:
        """bash leaves a non-interactive shell with 127 after a fatal expansion error at top
        level and 1 in a subshell; POSIX shells (dash) use 2."""
        if self.st.posix:
            return 2
        if e.status == 127:  # unset parameter (set -u, ${x:?})
            return 127 if self.st.subshell == 0 else 1
        return e.status

    async def exec_simple(self, node: SimpleCommand) -> int:
        st = self.st
        st.lineno = node.line
        last = self.exec_last
        self.exec_last = False
        await self._tick()
        if st.options.get("noexec") and not st.interactive:
            return 0
        words = node.words
        self._subst_status = None
        try:
            decl = None
            if words:
                w0 = words[0].parts
                if len(words) == 1 and len(w0) == 1 and type(w0[0]) is Lit and not node.redirs and not node.assigns:
                    argv = [w0[0].text]
                elif any(w.assign is not None for w in words):
                    argv, decl = await self._decl_argv(words)
                else:
                    argv = await self.expand_words(words)
            else:
                argv = []
        except ExpansionError as e:
            return await self._expansion_failed(e)
        try:
            return await self._exec_argv(node, argv, decl, last)
        except ExecImage:
            self._procsub_fds = []  # the new image inherits them (``tee >(cat)``)
            raise
        finally:
            if self._procsub_fds:  # made by the words or by a redirection (``> >(cat)``)
                fds, self._procsub_fds = self._procsub_fds, []
                for fd in fds:
                    try:
                        await self.ctx.close(fd)
                    except KernelError:
                        pass

    async def _exec_argv(self, node: SimpleCommand, argv: list[str], decl: dict | None, last: bool) -> int:
        st = self.st
        if not argv:
            return await self._assign_only(node)
        st.last_arg = argv[-1]
        if st.options.get("xtrace"):
            await self._xtrace_assigns(node)
            await self._xtrace(argv)
        name = argv[0]
        if decl is not None:
            self._decl_words = decl
        elif self._decl_words is not None:
            self._decl_words = None
        if name == "exec" and len(argv) == 1 and node.redirs:
            try:
                await self.apply_redirs(node.redirs, permanent=True)
            except RedirError as e:
                await self.error(e.message)
                if not st.interactive and st.posix:
                    raise ExitShell(1) from None
                return 1
            return 0
        fn = st.functions.get(name)
        if fn is not None and not (st.posix and name in self.special_builtins):
            return await self._run_with_assigns(node, lambda: self.call_function(fn, argv))
        bi = self.builtins.get(name)
        if bi is not None:
            if name in self.special_builtins and st.posix:
                return await self._run_special(node, bi, argv)
            return await self._run_with_assigns(node, lambda: self._call_builtin(bi, argv), builtin=True)
        return await self._run_external(node, argv, last)

    async def _decl_argv(self, words: list[Word]) -> tuple[list[str], dict[str, Any]]:
        """Arguments of ``declare``/``local``/``export``…: assignment words are kept whole
        (their values expand without splitting, as bash does) and mapped to their Assign."""
        argv: list[str] = []
        decl: dict[str, Any] = {}
        for w in words:
            a = w.assign
            if a is None:
                argv.extend(await self.expand_words([w]))
                continue
            index = "[" + _word_src(a.index) + "]" if a.index is not None else ""
            key = f"{a.name}{index}{'+' if a.append else ''}=\x00{len(decl)}"
            decl[key] = a
            argv.append(key)
        if argv and argv[0] not in ("declare", "typeset", "local", "export", "readonly"):
            # not a declaration builtin after all (e.g. a function): plain expansion
            return await self.expand_words(words), {}
        return argv, decl

    async def _call_builtin(self, bi: Callable[..., Awaitable[int]], argv: list[str]) -> int:
        try:
            return await bi(self, argv)
        except KernelError as e:
            if e.code == "EPIPE":
                return 141
            await self.error(f"{argv[0]}: {errno_text(e)}")
            return 1

    async def _assign_only(self, node: SimpleCommand) -> int:
        st = self.st
        try:
            for a in node.assigns:
                await self.assign(a)
        except VarError as e:
            await self.error(str(e))
            if not st.interactive:
                raise ExitShell(2 if st.posix else 1) from None
            return 1
        except ExpansionError as e:
            return await self._expansion_failed(e)
        status = self._subst_status if self._subst_status is not None else 0
        st.last_status = status
        if st.options.get("xtrace") and node.assigns:
            await self._xtrace_assigns(node)
        if node.redirs:
            try:
                saved = await self.apply_redirs(node.redirs)
            except RedirError as e:
                await self.error(e.message)
                return self.redir_status()
            await self.restore_redirs(saved)
        return status

    def redir_status(self) -> int:
        """A failed redirection: 1 in bash, 2 in a POSIX shell (dash)."""
        return 2 if self.st.posix else 1

    async def assign(self, a: Any, *, local: bool = False, export: bool | None = None) -> None:
        """Perform one assignment word (``x=v``, ``x+=v``, ``a[i]=v``, ``a=(…)``)."""
        st = self.st
        name = a.name
        if a.index is not None or a.array is not None:
            v0 = st.lookup(name)
            if v0 is not None and v0.nameref:  # ``local -n r=arr; r[0]=x`` sets arr's element
                name = st.resolve_ref(name)
        if a.array is not None:
            v = st.lookup(name)
            assoc = v is not None and v.kind == "A"
            if assoc:
                assert v is not None
                items: dict = dict(v.value) if a.append and v.value else {}
                for el in a.array:
                    if el.key is None:
                        value = await self.expand_str(el.value)
                        raise ExpansionError(f"{name}: {value}: must use subscript when assigning associative array")
                    k = await self.expand_str(el.key)
                    val = await self.expand_str(el.value)
                    items[k] = items.get(k, "") + val if el.append else val
                st.set_array(name, items, True, local=local)
                return
            items = {}
            if a.append and v is not None and v.value is not None:
                items = dict(v.value) if v.kind == "a" else {0: v.value}
            idx = (max(items) + 1) if items else 0
            integer = v is not None and v.integer
            for el in a.array:
                if el.key is not None:
                    idx = await self.arith_word(el.key)
                    val = await self.expand_str(el.value)
                    if integer:
                        val = str(self.arith_eval(val))
                    items[idx] = items.get(idx, "") + val if el.append else val
                    idx += 1
                else:
                    for val in await self.expand_words([el.value]):
                        if integer:
                            val = str(self.arith_eval(val))
                        items[idx] = val
                        idx += 1
            st.set_array(name, items, local=local)
            return
        value = await self.expand_str(a.value) if a.value is not None else ""
        lim = self.limits.var_bytes
        if lim is not None and len(value) > lim:
            raise LimitExceeded(f"{name}: value exceeds the variable size limit ({lim})")
        if a.index is not None:
            v = st.lookup(name)
            if v is not None and v.kind == "A":
                key: int | str = await self.expand_str(a.index)
            else:
                key = await self.arith_word(a.index)
            if a.append:
                old = self._arith.get_index(name, key) or ""
                if v is not None and v.integer:
                    value = str(self.arith_eval(f"{old or 0}+({value})"))
                else:
                    value = old + value
            elif v is not None and v.integer:
                value = str(self.arith_eval(value))
            st.set_index(name, key, value)
            return
        v = st.lookup(name) if not local else (st.scopes[-1].get(name) if len(st.scopes) > 1 else st.lookup(name))
        if v is not None and v.integer:
            if a.append:
                value = str(self.arith_eval(f"{v.scalar() or 0}+({value})"))
            else:
                value = str(self.arith_eval(value))
        elif a.append and v is not None:
            value = (v.scalar() or "") + value
        st.set(name, value, local=local, export=export)

    async def _run_with_assigns(self, node: SimpleCommand, run: Callable[[], Awaitable[int]],
                                builtin: bool = False, special: bool = False) -> int:
        st = self.st
        scope_pushed = False
        if node.assigns:
            scope: dict = {}
            st.scopes.append(scope)
            scope_pushed = True
            try:
                for a in node.assigns:
                    await self.assign(a, local=True, export=True)
            except (VarError, ExpansionError) as e:
                st.scopes.pop()
                await self.error(getattr(e, "message", str(e)))
                return 1
            for v in scope.values():
                v.exported = True
        try:
            if node.redirs:
                try:
                    saved = await self.apply_redirs(node.redirs)
                except RedirError as e:
                    await self.error(e.message)
                    if special and st.posix and not st.interactive:
                        raise ExitShell(2) from None  # POSIX: a special builtin's redirection error
                    return self.redir_status()
                execing = False
                try:
                    return await run()
                except ExecImage:
                    execing = True  # the new image keeps the redirections
                    raise
                finally:
                    if not execing:
                        await self.restore_redirs(saved)
            return await run()
        finally:
            if scope_pushed:
                # a temporary scope is the innermost one unless the command was ``local``-free
                if st.scopes and st.scopes[-1] is scope:
                    st.scopes.pop()
                else:
                    try:
                        st.scopes.remove(scope)
                    except ValueError:
                        pass

    async def _run_special(self, node: SimpleCommand, bi: Any, argv: list[str]) -> int:
        try:
            for a in node.assigns:
                await self.assign(a)
        except VarError as e:
            await self.error(str(e))
            raise ExitShell(1) from None
        return await self._run_with_assigns(SimpleCommand([], [], node.redirs), lambda: self._call_builtin(bi, argv),
                                            special=True)

    async def call_function(self, fn: FunctionDef, argv: list[str]) -> int:
        st = self.st
        c = self.counters
        lim = self.limits.function_depth
        if lim is not None and c.depth >= lim:
            raise LimitExceeded(f"{fn.name}: maximum function nesting level exceeded ({lim})", 1)
        c.depth += 1
        saved_pos = st.positional
        st.positional = argv[1:]
        st.funcnames.insert(0, fn.name)
        st.sources.insert(0, fn.file or "environment")
        st.call_lines.insert(0, st.lineno)
        st.scopes.append({})
        saved_loop = self.loop_depth
        self.loop_depth = 0
        try:
            try:
                status = await self._with_redirs(fn.redirs, lambda: self.exec_command(fn.body))
            except ReturnFn as r:
                status = r.status
        finally:
            self.loop_depth = saved_loop
            saved_opts = st.local_options.pop(len(st.scopes), None)
            if saved_opts is not None:
                st.options = saved_opts
            st.scopes.pop()
            st.funcnames.pop(0)
            st.sources.pop(0)
            st.call_lines.pop(0)
            st.positional = saved_pos
            c.depth -= 1
        ret = st.traps.get("RETURN")
        if ret:
            await self.run_trap(ret)
        return status

    # ------------------------------------------------------------------ external commands
    async def find_command(self, name: str) -> str | None:
        """PATH search in the VFS (cached in the hash table)."""
        if "/" in name:
            return name
        st = self.st
        hit = st.hashed.get(name)
        if hit is not None:
            return hit
        path = st.get("PATH")
        if path is None:
            path = "/bin:/usr/bin"
        for d in path.split(":"):
            cand = f"{d or '.'}/{name}"
            try:
                attr = await self.ctx.stat(cand)
            except KernelError:
                continue
            if attr.is_dir:
                continue
            try:
                await self.ctx.access(cand, 1)
            except KernelError:
                continue
            if st.options.get("hashall", True):
                st.hashed[name] = cand
            return cand
        return None

    async def _run_external(self, node: SimpleCommand, argv: list[str], last: bool) -> int:
        st = self.st
        name = argv[0]
        if any(a.name == "PATH" for a in node.assigns):  # `PATH=dir cmd` looks cmd up in dir
            async def lookup() -> int:
                path = await self.find_command(name)
                if path is None:
                    await self.error(f"{name}: command not found")
                    return 127
                return await self.spawn_program(path, argv, st.env(), last and not self.st.traps.get("EXIT"))
            return await self._run_with_assigns(node, lookup)
        path = await self.find_command(name)
        if path is None:
            async def notfound() -> int:
                await self.error(f"{name}: command not found")
                return 127
            return await self._run_with_assigns(SimpleCommand([], [], node.redirs), notfound)

        async def run() -> int:
            env = st.env()
            return await self.spawn_program(path, argv, env, last and not self.st.traps.get("EXIT"))

        return await self._run_with_assigns(node, run)

    async def spawn_program(self, path: str, argv: list[str], env: dict[str, str], may_exec: bool = False) -> int:
        ctx = self.ctx
        try:  # argv[0] stays the word typed (``ps``), as bash passes it; *path* is what runs
            if may_exec:
                await ctx.execve(argv, env, path=path)
            if self.job_control:
                pid = await ctx.spawn(argv, env=env, pgid=0, path=path)
                return (await self.wait_foreground([pid], " ".join(argv)))[-1]
            pid = await ctx.spawn(argv, env=env, path=path)
        except KernelError as e:
            if e.code == "ENOEXEC":
                return await self.run_script_file(path, argv)
            if e.code == "ENOENT":
                await self.error(f"{argv[0]}: {'No such file or directory' if '/' in argv[0] else 'command not found'}")
                self.st.hashed.pop(argv[0], None)
                return 127
            if e.code == "EACCES":
                try:  # bash tells a directory apart
                    is_dir = (await ctx.stat(path)).is_dir
                except KernelError:
                    is_dir = False
                await self.error(f"{argv[0]}: {'Is a directory' if is_dir else 'Permission denied'}")
                return 126
            if e.code == "EAGAIN":
                await self.error("fork: retry: Resource temporarily unavailable")
                return 126
            await self.error(f"{argv[0]}: {errno_text(e)}")
            return 126
        return await self.wait_pid(pid)

    async def run_script_file(self, path: str, argv: list[str]) -> int:
        """A file exec refused with ENOEXEC: run it as a script in a subshell (POSIX)."""
        try:
            fd = await self.ctx.open(path, O_RDONLY | O_CLOEXEC)
            try:
                data = await self.ctx.read_all(fd)
            finally:
                await self.ctx.close(fd)
        except KernelError as e:
            await self.error(f"{argv[0]}: {errno_text(e)}")
            return 126
        first = data[:80].split(b"\n", 1)[0]
        if b"\0" in first:  # bash's check for a binary file: a NUL before the first newline
            await self.out(f"{self.script_name}: {argv[0]}: cannot execute binary file: Exec format error\n", 2)
            return 126
        source = data.decode("utf-8", "surrogateescape")

        async def run(sub: Shell) -> int:
            st = sub.st
            st.positional = argv[1:]
            st.arg0 = argv[0]
            st.functions = {}
            st.scopes = [{k: v for k, v in st.scopes[0].items() if v.exported}]
            sub.script_name = argv[0]
            try:
                return await sub.run_source(source)
            except ShellSyntaxError as e:
                await sub.error(f"{e}", e.line)
                return 2

        pid = await self.fork(run)
        return await self.wait_pid(pid)

    # ------------------------------------------------------------------ xtrace
    async def _xtrace(self, argv: list[str]) -> None:
        ps4 = self.st.get("PS4")
        prefix = "+ " if ps4 is None else ps4
        text = " ".join(_xquote(a) for a in argv)
        await self.out(f"{prefix}{text}\n", 2)

    async def _xtrace_assigns(self, node: SimpleCommand) -> None:
        for a in node.assigns:
            if a.value is not None and a.index is None:
                v = self.st.get(a.name) or ""
                ps4 = self.st.get("PS4")
                await self.out(f"{'+ ' if ps4 is None else ps4}{a.name}={_xquote(v)}\n", 2)

    # ------------------------------------------------------------------ redirections
    async def apply_redirs(self, redirs: list[Redir], permanent: bool = False) -> list[tuple[int, int | None]]:
        """Apply *redirs*; returns what :meth:`restore_redirs` needs to undo them."""
        saved: list[tuple[int, int | None]] = []
        try:
            for r in redirs:
                await self._redir(r, saved, permanent)
        except BaseException:
            await self.restore_redirs(saved)
            raise
        return saved

    async def _save(self, fd: int, saved: list, permanent: bool) -> None:
        if permanent:
            return
        for f, _s in saved:
            if f == fd:
                return
        try:
            s = await self.ctx.fcntl(fd, F_DUPFD_CLOEXEC, 10)
        except KernelError:
            s = None
        saved.append((fd, s))

    async def restore_redirs(self, saved: list[tuple[int, int | None]]) -> None:
        ctx = self.ctx
        for fd, s in reversed(saved):
            try:
                if s is None:
                    try:
                        await ctx.close(fd)
                    except KernelError:
                        pass
                else:
                    await ctx.dup2(s, fd)
                    await ctx.close(s)
            except KernelError:
                pass

    async def _redir_target(self, r: Redir) -> str:
        try:
            words = await self.expand_words([r.target])
        except ExpansionError as e:
            raise RedirError(e.message) from None
        if len(words) != 1:
            raise RedirError(f"{_word_src(r.target)}: ambiguous redirect")
        return words[0]

    async def _redir(self, r: Redir, saved: list, permanent: bool) -> None:
        ctx = self.ctx
        op = r.op
        fd = r.fd if r.fd is not None else _DEFAULT_FD[op]
        if op in ("<<", "<<-", "<<<"):
            if op == "<<<":
                try:
                    text = await self.expand_str(r.target) + "\n"
                except ExpansionError as e:
                    raise RedirError(e.message) from None
            else:
                hd = r.heredoc
                if hd is None:
                    text = ""
                elif isinstance(hd.body, str):
                    text = hd.body
                else:
                    try:
                        text = await self.expand_str(hd.body)
                    except ExpansionError as e:
                        raise RedirError(e.message) from None
            newfd = await self._heredoc_fd(text)
            await self._place(newfd, fd, saved, permanent, r)
            return
        if op in (">&", "<&"):
            target = await self._redir_target(r)
            if r.fd_var and target == "-":
                try:
                    fd = int(self._fd_var_get(r.fd_var) or "")
                except ValueError:
                    raise RedirError(f"{r.fd_var}: ambiguous redirect") from None
            if target == "-":
                await self._save(fd, saved, permanent)
                try:
                    await ctx.close(fd)
                except KernelError:
                    pass
                return
            move = target.endswith("-") and target[:-1].isdigit()
            src_text = target[:-1] if move else target
            if src_text.isdigit():
                src = int(src_text)
                if src == fd:
                    try:
                        await ctx.fcntl(src, 1)
                    except KernelError:
                        raise RedirError(f"{src}: Bad file descriptor") from None
                    return
                try:
                    await ctx.fcntl(src, 1)  # F_GETFD: is it open?
                except KernelError:
                    raise RedirError(f"{src}: Bad file descriptor") from None
                await self._save(fd, saved, permanent)
                await ctx.dup2(src, fd)
                if move:
                    await ctx.close(src)
                return
            if op == ">&" and r.fd is None:
                # >&word with a file name: like &>word
                newfd = await self._open_file(target, O_WRONLY | O_CREAT | O_TRUNC, True)
                await self._place(newfd, 1, saved, permanent, r)
                await self._save(2, saved, permanent)
                await ctx.dup2(1, 2)
                return
            raise RedirError(f"{target}: ambiguous redirect")
        target = await self._redir_target(r)
        if op == "<":
            flags = O_RDONLY
        elif op == "<>":
            flags = O_RDWR | O_CREAT
        elif op in (">>", "&>>"):
            flags = O_WRONLY | O_CREAT | O_APPEND
        else:
            flags = O_WRONLY | O_CREAT | O_TRUNC
        clobber_check = op in (">", "&>") and bool(self.st.options.get("noclobber"))
        newfd = await self._open_file(target, flags, clobber_check)
        if r.fd_var:
            nfd = await ctx.fcntl(newfd, F_DUPFD, 10)
            await ctx.close(newfd)
            self._fd_var_set(r.fd_var, str(nfd))
            return
        await self._place(newfd, fd, saved, permanent, r)
        if op in ("&>", "&>>"):
            await self._save(2, saved, permanent)
            await ctx.dup2(1, 2)

    def _fd_var_key(self, name: str) -> tuple[str, str | int | None]:
        """``{name}`` or ``{name[sub]}`` of a redirection: (name, key or None)."""
        if not name.endswith("]"):
            return name, None
        base, _, sub = name[:-1].partition("[")
        v = self.st.lookup(base)
        return base, (sub if v is not None and v.kind == "A" else self.arith_eval(sub))

    def _fd_var_get(self, name: str) -> str | None:
        base, key = self._fd_var_key(name)
        return self.st.get(base) if key is None else self._arith.get_index(base, key)

    def _fd_var_set(self, name: str, value: str) -> None:
        base, key = self._fd_var_key(name)
        if key is None:
            self.st.set(base, value)
        else:
            self.st.set_index(base, key, value)

    async def _place(self, newfd: int, fd: int, saved: list, permanent: bool, r: Redir) -> None:
        ctx = self.ctx
        if r.fd_var:
            nfd = await ctx.fcntl(newfd, F_DUPFD, 10)
            await ctx.close(newfd)
            self._fd_var_set(r.fd_var, str(nfd))
            return
        if newfd == fd:
            await ctx.fcntl(fd, 2, 0)  # F_SETFD: clear close-on-exec
            # the open took the free fd itself (``3< f`` with 3 unused): closed afterwards
            if not permanent and all(f != fd for f, _s in saved):
                saved.append((fd, None))
            return
        await self._save(fd, saved, permanent)
        await ctx.dup2(newfd, fd)
        await ctx.close(newfd)

    async def _open_file(self, path: str, flags: int, clobber_check: bool) -> int:
        ctx = self.ctx
        if path.startswith(("/dev/tcp/", "/dev/udp/")) and not self.st.posix:
            return await self._open_inet(path)
        if clobber_check:
            try:
                attr = await ctx.stat(path)
                if attr.is_reg:
                    raise RedirError(f"{path}: cannot overwrite existing file")
            except KernelError:
                pass
        try:
            return await ctx.open(path, flags | O_CLOEXEC, 0o666)
        except KernelError as e:
            raise RedirError(f"{path}: {errno_text(e)}") from None

    async def _open_inet(self, path: str) -> int:
        """bash's ``/dev/tcp/HOST/PORT`` and ``/dev/udp/HOST/PORT``: a socket connected through
        the kernel's socket table, so the network policy decides (never the host)."""
        ctx = self.ctx
        _, _, proto, host, port = (path.split("/", 4) + ["", ""])[:5]
        if not host or not port or "/" in port:
            raise RedirError(f"{path}: No such file or directory")
        kind = SOCK_STREAM if proto == "tcp" else SOCK_DGRAM
        try:
            addrs = await ctx.getaddrinfo(host, port, AF_UNSPEC, kind)
        except KernelError as e:
            text = errno_text(e) if e.code != "ENOENT" else "Name or service not known"
            raise RedirError(f"{host}: {text}") from None
        last: KernelError | None = None
        for family, _type, _proto, _name, addr in addrs:
            fd = await ctx.socket(family, kind | SOCK_CLOEXEC)
            try:
                await ctx.connect(fd, addr)
                return fd
            except KernelError as e:
                last = e
                await ctx.close(fd)
        raise RedirError(f"{path}: {errno_text(last) if last else 'No such file or directory'}")

    async def _heredoc_fd(self, text: str) -> int:
        ctx = self.ctx
        data = text.encode("utf-8", "surrogateescape")
        lim = self.limits.var_bytes
        if lim is not None and len(data) > lim:
            raise LimitExceeded(f"here-document exceeds the size limit ({lim})")
        r, w = await ctx.pipe(O_CLOEXEC)
        if len(data) <= 32768:
            await ctx.write_all(w, data)
            await ctx.close(w)
            return r

        async def writer(sub: Shell) -> int:
            try:
                await sub.ctx.write_all(1, data)
            except KernelError:
                return 1
            return 0

        await self.fork(writer, stdout=w)
        await ctx.close(w)
        return r


class _CondError(Exception):
    pass


def _fmt_time(dt: float) -> str:
    m, s = divmod(dt, 60)
    return f"{int(m)}m{s:.3f}s"


def _xquote(a: str) -> str:
    if a == "":
        return "''"
    if all(c.isalnum() or c in "_-./:=@%+,^" for c in a):
        return a
    return shell_quote(a)


def _word_src(w: Word) -> str:
    from kernel.shell.expand import _word_text
    return _word_text(w)


def _andor_text(ao: AndOr | None) -> str:
    """What ``jobs`` shows for a background list: its source text, as bash does."""
    return ao.text if ao is not None and ao.text else "job"


__all__ += ["errno_text", "RedirError", "arith"]
