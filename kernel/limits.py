"""Resource limits of one kernel, and the memory budget for generated files.

Hitting a limit raises ``KernelError`` to the caller that asked (EAGAIN for
processes, EMFILE for fds, ENOMEM for generated-file memory); the kernel itself
keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import KernelError


@dataclass(slots=True)
class Limits:
    max_processes: int = 1024          # live + zombie entries, init excluded (EAGAIN)
    max_fds: int = 1024                # per process (EMFILE)
    pipe_buffer: int = 65536           # bytes buffered in one pipe
    pty_buffer: int = 65536            # bytes buffered per PTY direction
    max_canon: int = 4096              # PTY canonical line length (MAX_CANON)
    max_generated_bytes: int = 64 << 20  # total of generated (/proc-style) file contents (ENOMEM)
    max_sockets: int = 16384           # sockets in the whole kernel (ENFILE)
    max_sockets_per_process: int = 1024  # sockets a process may create (EMFILE)
    socket_buffer: int = 262144        # bytes a socket's receive queue holds before senders wait
    # the shell (kernel/shell): None is unlimited, 0 means 0; hitting one ends the script
    sh_function_depth: int | None = 256      # nested shell function calls
    sh_loop_iterations: int | None = None    # loop iterations per shell process
    sh_commands: int | None = None           # commands executed per shell process
    sh_brace_words: int = 1_000_000          # words one brace expansion may produce
    sh_glob_results: int = 100_000           # pathnames one glob may produce
    sh_var_bytes: int | None = 256 << 20     # size of one variable, $( ) output or here-doc
    sh_parse_depth: int = 200                # parser nesting ($( ( { [[ levels)
    sh_subst_depth: int = 64                 # nested $( ) processes
    sh_script_bytes: int | None = 64 << 20   # size of one script (sh FILE, source, eval, -c)
    # one command: a process started from the host (``Kernel.spawn``/``run``, an exec call, a
    # session's shell) and everything it starts share one ``CommandBudget``; hitting one of these
    # prints one line on the command's stderr and kills the whole tree (None: unlimited)
    cpu_seconds: float | None = None         # CPU time of the whole tree
    wall_seconds: float | None = None        # wall time from the start of the command
    file_bytes: int | None = None            # total bytes the tree writes to files
    output_bytes: int | None = 1 << 30       # bytes the tree writes to the stdout/stderr it was given
    # per process, inherited like setrlimit (``ulimit -t/-f``): the POSIX signals, not a kill
    rlimit_cpu: float | None = None          # RLIMIT_CPU seconds (SIGXCPU)
    rlimit_fsize: int | None = None          # RLIMIT_FSIZE bytes (EFBIG and SIGXFSZ)


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(eq=False, slots=True)
class CommandBudget:
    """What one command tree has used of its limits (shared by every process in the tree).

    ``watched`` holds the descriptions the host gave the command as stdout/stderr: only writes
    there count as output (a pipeline's inner pipes do not)."""

    cpu_limit: float | None = None
    deadline: float | None = None            # trio clock
    wall_limit: float | None = None
    file_limit: int | None = None
    output_limit: int | None = None
    cpu_used: float = 0.0
    file_written: int = 0
    output_written: int = 0
    watched: tuple[Any, ...] = ()
    watched_ids: frozenset[int] = frozenset()
    stderr: Any = None                       # where the one line goes (a description)
    exceeded: str | None = None              # the message, once a limit was hit
    name: str = "sh"                         # the command's name, the prefix of that line

    def charge_cpu(self, seconds: float) -> str | None:
        self.cpu_used += seconds
        lim = self.cpu_limit
        if lim is not None and self.cpu_used > lim:
            return f"CPU time limit exceeded ({_fmt(lim)}s)"
        return None

    def charge_file(self, nbytes: int) -> str | None:
        self.file_written += nbytes
        lim = self.file_limit
        if lim is not None and self.file_written > lim:
            return f"file write limit exceeded ({lim} bytes)"
        return None

    def charge_output(self, nbytes: int) -> str | None:
        self.output_written += nbytes
        lim = self.output_limit
        if lim is not None and self.output_written > lim:
            return f"output limit exceeded ({lim} bytes)"
        return None

    def wall_message(self) -> str:
        return f"wall time limit exceeded ({_fmt(self.wall_limit or 0)}s)"


@dataclass(eq=False, slots=True)
class ProcLimits:
    """One process's limits: its rlimits (copied at fork, changed by ``ulimit``), its CPU
    time so far, and the budget of the command it belongs to (shared)."""

    budget: CommandBudget | None = None
    rlimit_cpu: float | None = None
    rlimit_fsize: int | None = None
    cpu_used: float = 0.0
    signalled_cpu: bool = False
    children_cpu: float = 0.0                # CPU of its children (``times``)
    parent: "ProcLimits | None" = None
    extra: dict[str, float | None] = field(default_factory=dict)   # soft limits not enforced here
    hard: dict[str, float | None] = field(default_factory=dict)    # hard limits set so far

    def child(self) -> "ProcLimits":
        return ProcLimits(self.budget, self.rlimit_cpu, self.rlimit_fsize, parent=self,
                          extra=dict(self.extra), hard=dict(self.hard))


def new_command(limits: Limits, now: float) -> ProcLimits:
    """The limits of a process started from the host: a fresh budget from *limits*."""
    b = CommandBudget(cpu_limit=limits.cpu_seconds, wall_limit=limits.wall_seconds,
                      file_limit=limits.file_bytes, output_limit=limits.output_bytes)
    if limits.wall_seconds is not None:
        b.deadline = now + max(0.0, limits.wall_seconds)
    return ProcLimits(b, limits.rlimit_cpu, limits.rlimit_fsize)


class MemoryBudget:
    """Counts bytes held by generated files; ``reserve`` fails with ENOMEM past the limit.

    procfs (or anything that materialises file contents at open) reserves the size
    of what it generated and releases it when the handle is released.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError("negative reservation")
        if self.used + nbytes > self.limit:
            raise KernelError("ENOMEM", f"generated files exceed {self.limit} bytes")
        self.used += nbytes

    def release(self, nbytes: int) -> None:
        self.used = max(0, self.used - nbytes)
