"""Signal numbers, default actions and per-process signal state (Linux numbering).

Delivery itself lives in ``ProcessTable.send`` (it needs process groups and the
task scopes); this module only holds the data so procfs, the shell and ``kill``
can share names and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import KernelError

SIGHUP = 1
SIGINT = 2
SIGQUIT = 3
SIGILL = 4
SIGTRAP = 5
SIGABRT = 6
SIGBUS = 7
SIGFPE = 8
SIGKILL = 9
SIGUSR1 = 10
SIGSEGV = 11
SIGUSR2 = 12
SIGPIPE = 13
SIGALRM = 14
SIGTERM = 15
SIGSTKFLT = 16
SIGCHLD = 17
SIGCONT = 18
SIGSTOP = 19
SIGTSTP = 20
SIGTTIN = 21
SIGTTOU = 22
SIGURG = 23
SIGXCPU = 24
SIGXFSZ = 25
SIGVTALRM = 26
SIGPROF = 27
SIGWINCH = 28
SIGIO = 29
SIGPWR = 30
SIGSYS = 31
NSIG = 65  # valid signals are 1..64 (real-time ones have no names here)

SIGNAL_NAMES: dict[int, str] = {
    v: k for k, v in list(globals().items()) if k.startswith("SIG") and "_" not in k and isinstance(v, int)
}

# sigaction(2) flags (Linux values)
SA_NOCLDSTOP = 0x00000001
SA_NODEFER = 0x40000000
SA_RESTART = 0x10000000
SA_RESETHAND = 0x80000000

# sigprocmask(2) "how"
SIG_BLOCK = 0
SIG_UNBLOCK = 1
SIG_SETMASK = 2

# dispositions
SIG_DFL = "default"
SIG_IGN = "ignore"

Handler = Callable[[int], Any] | str

_IGNORE = frozenset({SIGCHLD, SIGURG, SIGWINCH})
_STOP = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
_CORE = frozenset({SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS})
UNCATCHABLE = frozenset({SIGKILL, SIGSTOP})


def default_action(sig: int) -> str:
    """One of ``"term"``, ``"core"``, ``"ign"``, ``"stop"``, ``"cont"`` (signal(7))."""
    if sig == SIGCONT:
        return "cont"
    if sig in _IGNORE:
        return "ign"
    if sig in _STOP:
        return "stop"
    if sig in _CORE:
        return "core"
    return "term"


def check_signal(sig: int, *, allow_zero: bool = False) -> None:
    if not isinstance(sig, int) or sig < (0 if allow_zero else 1) or sig >= NSIG:
        raise KernelError("EINVAL", f"invalid signal {sig!r}")


def signal_name(sig: int) -> str:
    return SIGNAL_NAMES.get(sig, f"SIGRT{sig}" if 32 <= sig < NSIG else str(sig))


def parse_signal(text: str) -> int:
    """``"9"``, ``"KILL"``, ``"SIGKILL"``, ``"kill"`` -> 9 (EINVAL otherwise)."""
    t = text.strip().upper()
    if t.isdigit():
        sig = int(t)
        check_signal(sig, allow_zero=True)
        return sig
    if not t.startswith("SIG"):
        t = "SIG" + t
    for num, name in SIGNAL_NAMES.items():
        if name == t:
            return num
    raise KernelError("EINVAL", f"unknown signal {text!r}")


@dataclass(slots=True)
class SigAction:
    """A disposition: SIG_DFL, SIG_IGN or a callable ``handler(sig)`` (sync or async)."""

    handler: Handler = SIG_DFL
    mask: frozenset[int] = frozenset()
    flags: int = 0


@dataclass(slots=True)
class SignalState:
    """Per-process dispositions, blocked mask and pending set (pending signals coalesce)."""

    actions: dict[int, SigAction] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)

    def action(self, sig: int) -> SigAction:
        return self.actions.get(sig) or _DEFAULT_ACTION

    def inherit(self) -> "SignalState":
        """State of a spawned child (execve semantics): caught signals reset to default,
        ignored ones stay ignored, the mask is kept, nothing is pending."""
        kept = {s: a for s, a in self.actions.items() if a.handler == SIG_IGN}
        return SignalState(actions=kept, blocked=set(self.blocked))

    def deliverable(self) -> list[int]:
        """Pending signals not blocked, ascending (Linux delivers lower numbers first)."""
        if not self.pending:
            return []
        return sorted(s for s in self.pending if s not in self.blocked)


_DEFAULT_ACTION = SigAction()
