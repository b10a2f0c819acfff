"""Processes, the process table, wait(2) status encoding and signal delivery.

A process is a trio task (started by ``Kernel.spawn``) running a program under
a pid.  This module keeps the bookkeeping that must stay consistent without
awaiting: pids, parent/children links, process groups and sessions, states,
zombies and reaping, and how a signal changes a process (terminate through trio
cancellation, stop/continue, or queue for a handler that the process runs at its
next syscall).  Blocking syscalls park in ``Process.blocked_scope`` so a signal
can interrupt them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from . import signals as S
from .errors import KernelError
from .limits import Limits, ProcLimits

if TYPE_CHECKING:
    from .fdtable import FdTable

log = logging.getLogger("vfsfuse.kernel.process")

# waitpid(2) options
WNOHANG = 1
WUNTRACED = 2
WCONTINUED = 8

INIT_PID = 1


# -- wait(2) status encoding (same bit layout as Linux, so os.WIFEXITED etc. agree) -----------
def status_exited(code: int) -> int:
    return (code & 0xFF) << 8


def status_signaled(sig: int, core: bool = False) -> int:
    return (sig & 0x7F) | (0x80 if core else 0)


def status_stopped(sig: int) -> int:
    return ((sig & 0xFF) << 8) | 0x7F


STATUS_CONTINUED = 0xFFFF


def WIFEXITED(s: int) -> bool:
    return (s & 0x7F) == 0


def WEXITSTATUS(s: int) -> int:
    return (s >> 8) & 0xFF


def WIFSIGNALED(s: int) -> bool:
    return (s & 0x7F) not in (0, 0x7F)


def WTERMSIG(s: int) -> int:
    return s & 0x7F


def WCOREDUMP(s: int) -> bool:
    return bool(s & 0x80)


def WIFSTOPPED(s: int) -> bool:
    return (s & 0xFF) == 0x7F


def WSTOPSIG(s: int) -> int:
    return (s >> 8) & 0xFF


def WIFCONTINUED(s: int) -> bool:
    return s == STATUS_CONTINUED


def shell_code(status: int) -> int:
    """The ``$?`` a shell shows: the exit code, or 128 + signal."""
    if WIFEXITED(status):
        return WEXITSTATUS(status)
    if WIFSIGNALED(status):
        return 128 + WTERMSIG(status)
    return 128 + WSTOPSIG(status)


@dataclass(eq=False)
class Process:
    """One process; the fields named in the kernel contract are read by procfs."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    argv: list[str]
    env: dict[str, str]
    cwd: str
    exe: str
    fds: "FdTable"
    uid: int = 0
    gid: int = 0
    umask: int = 0o022
    nice: int = 0  # -20 (first) .. 19 (last): scales the time slice (see syscalls/_base.py)
    start_time_ns: int = 0
    state: str = "R"
    exit_status: int | None = None
    tty: str | None = None
    rss_bytes: int = 1 << 20
    sig: S.SignalState = field(default_factory=S.SignalState)
    children: dict[int, "Process"] = field(default_factory=dict)
    # -- task plumbing (not part of the contract) --
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    blocked_scope: trio.CancelScope | None = None
    cont_event: trio.Event | None = None
    exited: trio.Event = field(default_factory=trio.Event)
    wait_lot: trio.lowlevel.ParkingLot = field(default_factory=trio.lowlevel.ParkingLot)
    term_signal: int = 0
    core: bool = False
    stop_report: int | None = None
    cont_report: bool = False
    reaped: bool = False
    rlimits: ProcLimits | None = None  # set by the process's first syscall context (kernel.syscalls._base)

    @property
    def comm(self) -> str:
        name = self.argv[0] if self.argv else self.exe
        base = name.rsplit("/", 1)[-1] or name
        return base.encode()[:15].decode(errors="ignore")

    @property
    def alive(self) -> bool:
        return self.state != "Z"

    def interrupt(self) -> None:
        """Wake a blocking syscall so the process looks at its signals."""
        if self.blocked_scope is not None:
            self.blocked_scope.cancel()


class ProcessTable:
    """All processes of one kernel, pids never reused (the seed counts up from 1)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._procs: dict[int, Process] = {}
        self._next_pid = 1
        self.boot_time_ns = time.time_ns()
        self.monotonic_boot_ns = time.monotonic_ns()

    # -- queries --------------------------------------------------------------------
    def get(self, pid: int) -> Process | None:
        return self._procs.get(pid)

    def pids(self) -> list[int]:
        return sorted(self._procs)

    def __len__(self) -> int:
        return len(self._procs)

    def processes(self) -> list[Process]:
        return [self._procs[p] for p in sorted(self._procs)]

    def group(self, pgid: int) -> list[Process]:
        return [p for p in self._procs.values() if p.pgid == pgid and p.state != "Z"]

    def is_orphaned_pgrp(self, pgid: int) -> bool:
        """POSIX: no live member has a parent in another group of the same session (init
        does not count).  Nobody could continue such a group, so job control answers EIO
        there instead of stopping it."""
        procs = self._procs
        for p in procs.values():
            if p.pgid != pgid or p.state == "Z":
                continue
            parent = procs.get(p.ppid)
            if (parent is not None and parent.pid != INIT_PID and parent.pgid != pgid
                    and parent.sid == p.sid):
                return False
        return True

    def lookup(self, pid: int) -> Process:
        proc = self._procs.get(pid)
        if proc is None:
            raise KernelError("ESRCH", f"no such process: {pid}")
        return proc

    # -- lifecycle ------------------------------------------------------------------
    def create(self, *, parent: Process | None, argv: list[str], env: dict[str, str], cwd: str,
               exe: str, fds: "FdTable", uid: int = 0, gid: int = 0, umask: int | None = None) -> Process:
        """Allocate a pid and record the process (EAGAIN at the process limit)."""
        counted = len(self._procs) - (1 if INIT_PID in self._procs else 0)
        if self._next_pid != INIT_PID and counted >= self.limits.max_processes:
            raise KernelError("EAGAIN", f"process limit reached ({self.limits.max_processes})")
        pid = self._next_pid
        self._next_pid += 1
        if parent is not None:
            proc = Process(pid=pid, ppid=parent.pid, pgid=parent.pgid, sid=parent.sid, argv=argv,
                           env=env, cwd=cwd, exe=exe, fds=fds, uid=uid, gid=gid,
                           umask=parent.umask if umask is None else umask, tty=parent.tty,
                           nice=parent.nice, sig=parent.sig.inherit())
            parent.children[pid] = proc
        else:
            proc = Process(pid=pid, ppid=0, pgid=pid, sid=pid, argv=argv, env=env, cwd=cwd, exe=exe,
                           fds=fds, uid=uid, gid=gid, umask=0o022 if umask is None else umask)
        proc.start_time_ns = time.monotonic_ns() - self.monotonic_boot_ns
        self._procs[pid] = proc
        log.debug("create pid=%d ppid=%d argv=%r", pid, proc.ppid, argv)
        return proc

    def mark_exited(self, proc: Process, status: int) -> None:
        """The task ended (fds already closed): zombie, re-parent children, tell the parent."""
        if proc.state == "Z":
            return
        proc.state = "Z"
        proc.exit_status = status
        proc.blocked_scope = None
        init = self._procs.get(INIT_PID)
        for child in list(proc.children.values()):
            child.ppid = INIT_PID if init is not None and init is not proc else 0
            if init is not None and init is not proc:
                init.children[child.pid] = child
            elif child.state == "Z":
                self.reap(child)
        proc.children.clear()
        if init is not None:
            init.wait_lot.unpark_all()
        proc.exited.set()
        log.debug("exit pid=%d status=%#x", proc.pid, status)
        parent = self._procs.get(proc.ppid)
        if parent is None or parent.state == "Z":
            self.reap(proc)
            return
        if parent.sig.action(S.SIGCHLD).handler == S.SIG_IGN:
            self.reap(proc)  # SIGCHLD ignored: children are reaped automatically (POSIX)
        parent.wait_lot.unpark_all()
        self.send(parent, S.SIGCHLD)

    def reap(self, proc: Process) -> None:
        if proc.reaped:
            return
        proc.reaped = True
        self._procs.pop(proc.pid, None)
        parent = self._procs.get(proc.ppid)
        if parent is not None:
            parent.children.pop(proc.pid, None)

    # -- waitpid --------------------------------------------------------------------
    def try_wait(self, parent: Process, pid: int, options: int) -> tuple[int, int] | None:
        """One non-blocking waitpid pass: (pid, status), or None if nothing to report yet.

        ECHILD when no child matches the selector (pid > 0, -1, 0 = my group, < -1 = group -pid).
        """
        if pid > 0:
            child = parent.children.get(pid)
            candidates = [child] if child is not None else []
        elif pid == -1:
            candidates = list(parent.children.values())
        else:
            pgid = parent.pgid if pid == 0 else -pid
            candidates = [c for c in parent.children.values() if c.pgid == pgid]
        if not candidates:
            raise KernelError("ECHILD", "no child processes")
        for child in candidates:
            if child.state == "Z":
                self.reap(child)
                return child.pid, child.exit_status or 0
            if options & WUNTRACED and child.stop_report is not None:
                sig, child.stop_report = child.stop_report, None
                return child.pid, status_stopped(sig)
            if options & WCONTINUED and child.cont_report:
                child.cont_report = False
                return child.pid, STATUS_CONTINUED
        return None

    # -- signals --------------------------------------------------------------------
    def kill(self, sender: Process | None, pid: int, sig: int) -> None:
        """kill(2): pid > 0 one process, 0 sender's group, -1 everyone but init/sender, < -1 a group."""
        S.check_signal(sig, allow_zero=True)
        if pid > 0:
            self.send(self.lookup(pid), sig)
            return
        if pid == -1:
            targets = [p for p in self._procs.values()
                       if p.pid != INIT_PID and p is not sender and p.state != "Z"]
        else:
            pgid = (sender.pgid if sender is not None else 0) if pid == 0 else -pid
            targets = [p for p in self._procs.values() if p.pgid == pgid]
        if not targets:
            raise KernelError("ESRCH", f"no such process group: {-pid if pid else 0}")
        for p in targets:
            self.send(p, sig)

    def kill_group(self, pgid: int, sig: int) -> int:
        """Signal every live member of a group; returns how many (the PTY uses this)."""
        members = self.group(pgid)
        for p in members:
            self.send(p, sig)
        return len(members)

    def send(self, proc: Process, sig: int) -> None:
        """Apply signal *sig* to *proc* now (default actions) or queue it for its handler."""
        if sig == 0 or proc.state == "Z":
            return
        if proc.pid == INIT_PID and sig in (S.SIGKILL, S.SIGSTOP):
            return  # like Linux, init cannot be killed or stopped
        if sig == S.SIGKILL:
            self.terminate(proc, sig)
            return
        if sig == S.SIGSTOP:
            self.stop(proc, sig)
            return
        if sig == S.SIGCONT:
            self.cont(proc)
        act = proc.sig.action(sig)
        handler = act.handler
        if handler == S.SIG_IGN:
            return
        if handler == S.SIG_DFL:
            what = S.default_action(sig)
            if what in ("ign", "cont"):
                return
            if sig in proc.sig.blocked:
                proc.sig.pending.add(sig)
                return
            if what == "stop":
                self.stop(proc, sig)
            else:
                self.terminate(proc, sig, core=what == "core")
            return
        proc.sig.pending.add(sig)
        if sig not in proc.sig.blocked:
            proc.interrupt()

    def terminate(self, proc: Process, sig: int, core: bool = False) -> None:
        if proc.state == "Z":
            return
        if not proc.term_signal or sig == S.SIGKILL:
            proc.term_signal = sig
            proc.core = core
        log.debug("terminate pid=%d sig=%d", proc.pid, sig)
        proc.cancel_scope.cancel()

    def stop(self, proc: Process, sig: int) -> None:
        if proc.state in ("T", "Z") or proc.term_signal:
            return
        proc.state = "T"
        proc.cont_event = trio.Event()
        proc.stop_report = sig
        proc.cont_report = False
        proc.interrupt()
        self._notify_parent(proc, stopped=True)

    def cont(self, proc: Process) -> None:
        if proc.state != "T":
            return
        proc.state = "R"
        if proc.cont_event is not None:
            proc.cont_event.set()
            proc.cont_event = None
        proc.stop_report = None
        proc.cont_report = True
        self._notify_parent(proc, stopped=False)

    def _notify_parent(self, proc: Process, stopped: bool) -> None:
        parent = self._procs.get(proc.ppid)
        if parent is None or parent.state == "Z":
            return
        parent.wait_lot.unpark_all()
        if not (parent.sig.action(S.SIGCHLD).flags & S.SA_NOCLDSTOP):
            self.send(parent, S.SIGCHLD)

    # -- groups and sessions ------------------------------------------------------------
    def setpgid(self, caller: Process, pid: int, pgid: int) -> None:
        target = caller if pid in (0, caller.pid) else caller.children.get(pid)
        if target is None or target.state == "Z":
            raise KernelError("ESRCH", f"no such child process: {pid}")
        if pgid < 0:
            raise KernelError("EINVAL", f"invalid process group {pgid}")
        if target.sid != caller.sid or target.pid == target.sid:
            raise KernelError("EPERM", "cannot change the process group of a session leader or another session")
        pgid = pgid or target.pid
        if pgid != target.pid and not any(
                p.pgid == pgid and p.sid == caller.sid and p.state != "Z" for p in self._procs.values()):
            raise KernelError("EPERM", f"no such process group in this session: {pgid}")
        target.pgid = pgid

    def setsid(self, proc: Process) -> int:
        if proc.pgid == proc.pid:
            raise KernelError("EPERM", "already a process group leader")
        proc.sid = proc.pgid = proc.pid
        proc.tty = None
        return proc.pid

    def sigaction(self, proc: Process, sig: int, action: S.SigAction | None) -> S.SigAction:
        """Install *action* (None only queries); returns the previous one."""
        S.check_signal(sig)
        old = proc.sig.action(sig)
        if action is None:
            return old
        if sig in S.UNCATCHABLE:
            raise KernelError("EINVAL", f"signal {sig} cannot be caught or ignored")
        proc.sig.actions[sig] = action
        if action.handler == S.SIG_IGN:
            proc.sig.pending.discard(sig)
        return old

    def sigprocmask(self, proc: Process, how: int, sigs: set[int] | frozenset[int] | None) -> set[int]:
        old = set(proc.sig.blocked)
        if sigs is None:
            return old
        sigs = set(sigs) - S.UNCATCHABLE
        if how == S.SIG_BLOCK:
            proc.sig.blocked |= sigs
        elif how == S.SIG_UNBLOCK:
            proc.sig.blocked -= sigs
        elif how == S.SIG_SETMASK:
            proc.sig.blocked = sigs
        else:
            raise KernelError("EINVAL", f"invalid sigprocmask how {how}")
        return old
