"""Resource limits of one kernel, and the memory budget for generated files.

Hitting a limit raises ``KernelError`` to the caller that asked (EAGAIN for
processes, EMFILE for fds, ENOMEM for generated-file memory); the kernel itself
keeps running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
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
    shell: "Limits | None" = None            # the command's own limits when a session lowered them

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


# ------------------------------------------------------------------ limits by name (CLI, control socket)

@dataclass(frozen=True, slots=True)
class LimitSpec:
    """How one ``Limits`` field is named and written on a command line.

    *unit*: ``count``, ``bytes`` or ``seconds``; *per_command*: a session on a running kernel
    may lower it for what it runs (the others are the kernel's, fixed when it boots)."""

    name: str
    unit: str
    per_command: bool
    help: str


_SPECS = (
    LimitSpec("max_processes", "count", False, "live processes in the kernel"),
    LimitSpec("max_fds", "count", True, "open fds per process"),
    LimitSpec("pipe_buffer", "bytes", False, "bytes one pipe buffers"),
    LimitSpec("pty_buffer", "bytes", False, "bytes a PTY buffers per direction"),
    LimitSpec("max_canon", "bytes", False, "PTY line length"),
    LimitSpec("max_generated_bytes", "bytes", False, "memory of generated /proc contents"),
    LimitSpec("max_sockets", "count", False, "sockets in the kernel"),
    LimitSpec("max_sockets_per_process", "count", False, "sockets one process may create"),
    LimitSpec("socket_buffer", "bytes", False, "bytes a socket's receive queue holds"),
    LimitSpec("sh_function_depth", "count", True, "nested shell function calls"),
    LimitSpec("sh_loop_iterations", "count", True, "loop iterations per shell process"),
    LimitSpec("sh_commands", "count", True, "commands run per shell process"),
    LimitSpec("sh_brace_words", "count", True, "words of one brace expansion"),
    LimitSpec("sh_glob_results", "count", True, "pathnames of one glob"),
    LimitSpec("sh_var_bytes", "bytes", True, "size of one variable, $( ) output or here-doc"),
    LimitSpec("sh_parse_depth", "count", True, "parser nesting"),
    LimitSpec("sh_subst_depth", "count", True, "nested $( )"),
    LimitSpec("sh_script_bytes", "bytes", True, "size of one script"),
    LimitSpec("cpu_seconds", "seconds", True, "CPU time of the command tree"),
    LimitSpec("wall_seconds", "seconds", True, "wall time of the command tree"),
    LimitSpec("file_bytes", "bytes", True, "bytes the tree writes to files"),
    LimitSpec("output_bytes", "bytes", True, "bytes the tree writes to its stdout/stderr"),
    LimitSpec("rlimit_cpu", "seconds", True, "RLIMIT_CPU of each process (SIGXCPU)"),
    LimitSpec("rlimit_fsize", "bytes", True, "RLIMIT_FSIZE of each process (EFBIG)"),
)
LIMIT_SPECS: dict[str, LimitSpec] = {s.name: s for s in _SPECS}
_OPTIONAL = frozenset(f for f, t in Limits.__annotations__.items() if "None" in str(t))
_BYTE_UNITS: dict[str, float] = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_COUNT_UNITS: dict[str, float] = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "m": 60.0, "h": 3600.0}
_VALUE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z]*)")


def limit_help() -> str:
    """One line per limit for ``--help``: its name, unit and what it bounds."""
    return "\n".join(f"{s.name} ({s.unit}): {s.help}" for s in _SPECS)


def parse_limit(text: str, extra: dict[str, LimitSpec] | None = None) -> tuple[str, int | float | None]:
    """``NAME=VALUE`` -> (name, value): sizes take K/M/G (powers of 1024), counts k/M/G (powers
    of 1000), times s/ms/m/h; ``unlimited`` is None; 0 means 0.  ValueError says what is wrong."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep:
        raise ValueError(f"--limit wants NAME=VALUE, not {text!r}")
    spec = LIMIT_SPECS.get(name) or (extra or {}).get(name)
    if spec is None:
        raise ValueError(f"unknown limit {name!r} (see --help for the names)")
    word = raw.strip().lower()
    if word in ("unlimited", "none", "inf"):
        if name in LIMIT_SPECS and name not in _OPTIONAL:
            raise ValueError(f"{name} cannot be unlimited")
        return name, None
    if spec.unit == "bytes" and word.endswith(("ib", "b")):
        word = word[:-2] if word.endswith("ib") else word[:-1]
    m = _VALUE_RE.fullmatch(word)
    units: dict[str, float] = {"bytes": _BYTE_UNITS, "count": _COUNT_UNITS, "seconds": _TIME_UNITS}[spec.unit]
    if m is None or m.group(2) not in units:
        example = {"bytes": "4096, 64K, 1G", "count": "100, 10k", "seconds": "30, 2.5s, 500ms, 5m"}[spec.unit]
        raise ValueError(f"{name}={raw}: not a {spec.unit} value (e.g. {example}, or unlimited)")
    value = float(m.group(1)) * units[m.group(2)]
    if spec.unit == "seconds":
        return name, value
    if value != int(value):
        raise ValueError(f"{name}={raw}: not a whole number")
    return name, int(value)


def with_values(base: Limits, values: dict[str, Any]) -> Limits:
    """*base* with the named fields replaced (names already checked by ``parse_limit``)."""
    return replace(base, **values)


def lowered(ceiling: Limits, values: dict[str, Any]) -> Limits:
    """The limits of one command run on a kernel whose limits are *ceiling*: only per-command
    limits may be named, and only lowered (KernelError says which and why)."""
    for name, value in values.items():
        spec = LIMIT_SPECS.get(name)
        if spec is None:
            raise KernelError("EINVAL", f"unknown limit {name!r}")
        if not spec.per_command:
            raise KernelError("EINVAL", f"{name} is the kernel's own: set it when mounting "
                                        "(vfsfuse mount --limit), not per session")
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise KernelError("EINVAL", f"{name}: not a limit: {value!r}")
        cap = getattr(ceiling, name)
        if cap is not None and (value is None or value > cap):
            shown = "unlimited" if value is None else _fmt(value)
            raise KernelError("EPERM", f"{name}={shown} is above this kernel's limit ({_fmt(cap)}): "
                                       "a session may only lower limits")
    return replace(ceiling, **values)


def lower_command(rl: ProcLimits, limits: Limits, now: float) -> None:
    """Give a process the host just started (before it runs) *limits* for its command tree.
    The wall limit needs the kernel's watchdog, so the caller enforces that one itself."""
    b = rl.budget
    if b is not None:
        b.cpu_limit = limits.cpu_seconds
        b.file_limit = limits.file_bytes
        b.output_limit = limits.output_bytes
        b.shell = limits
        if limits.wall_seconds is not None:
            b.wall_limit = limits.wall_seconds
            b.deadline = now + max(0.0, limits.wall_seconds)
    rl.rlimit_cpu = limits.rlimit_cpu
    rl.rlimit_fsize = limits.rlimit_fsize
