"""The entry conventions every system call shares, written once: signal delivery at entry,
the time slice, interruptible blocking (``_block``/``_wait``), path resolution against the
cwd, terminal job control; plus the records (``Dirent``) and exceptions the calls use."""


from __future__ import annotations

import inspect
import os
import stat as _stat
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import (
    O_CLOEXEC,
)
from kernel.fs import Caller
from kernel.limits import CommandBudget, ProcLimits, new_command
from kernel.pathvfs import PathVFS
from kernel.process import INIT_PID, Process

if TYPE_CHECKING:
    from kernel.kernel import Kernel
    from kernel.pty import Pty


O_CREAT = os.O_CREAT
O_EXCL = os.O_EXCL
O_TRUNC = os.O_TRUNC
O_NOFOLLOW = os.O_NOFOLLOW
O_DIRECTORY = os.O_DIRECTORY
O_PATH = getattr(os, "O_PATH", 0o10000000)
_OPEN_ONLY = O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | getattr(os, "O_NOCTTY", 0)

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
SEEK_DATA, SEEK_HOLE = 3, 4

F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1

F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4

DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12
_DT = {_stat.S_IFIFO: DT_FIFO, _stat.S_IFCHR: DT_CHR, _stat.S_IFDIR: DT_DIR, _stat.S_IFBLK: DT_BLK,
       _stat.S_IFREG: DT_REG, _stat.S_IFLNK: DT_LNK, _stat.S_IFSOCK: DT_SOCK}

_EINTR_MSG = "interrupted system call"

# The time slice: a process that has run this long since it last let the others run yields at
# its next syscall.  trio cannot preempt, and a call that never blocks (a write to /dev/null,
# fstat, a cached read) need not checkpoint, so without this a busy loop would starve every
# other process and the FUSE server, and a SIGKILL (a trio cancellation) would never land.
# 0.5 ms: a FUSE request waits about a slice at each of its checkpoints while a sandbox job
# computes (a host stat is a few requests); 2 ms gave a p99 near 20 ms.  A yield costs ~5 us.
SLICE_S = 0.0005
SLICE = 64  # kept for callers that count calls
# Past SOFT_SLICE_S a process also yields as soon as another task is ready to run (a FUSE
# request half answered, the other end of a pipe): that task would otherwise wait a whole
# slice at each of its own checkpoints.
SOFT_SLICE_S = 0.0002
# A niceness scales the slice as Linux's CFS weights do (x1.25 a step): a nice 19 job yields at
# nearly every chance, a negative one keeps the loop longer, but at most 4x (2 ms), so even
# root's nice -20 cannot hold up the FUSE server for long.
SLICE_BY_NICE = {n: SLICE_S * min(1.25 ** -n, 4.0) for n in range(-20, 20)}


def _run_queue() -> Any:
    """trio's queue of the tasks ready for its next batch (private: an empty tuple if that
    ever moves, and then only the full slice applies)."""
    runner = getattr(trio._core._run.GLOBAL_RUN_CONTEXT, "runner", None)
    return getattr(runner, "runq", ())

_now = time.perf_counter


class ProcessExit(BaseException):
    """Raised by ``ctx.exit``; a BaseException so ``except Exception`` in programs cannot eat it."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ExecImage(BaseException):
    """Raised by ``ctx.execve`` once the new program is resolved; the kernel swaps images."""

    def __init__(self, exe: str, program: Any, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(exe)
        self.exe, self.program, self.argv, self.env = exe, program, argv, env


_T = TypeVar("_T")


class Dirent:
    """One getdents record: name (str), inode number, DT_* type, and the offset after it."""

    __slots__ = ("name", "ino", "type", "offset")

    def __init__(self, name: str, ino: int, type: int, offset: int) -> None:
        self.name, self.ino, self.type, self.offset = name, ino, type, offset

    def __repr__(self) -> str:
        return f"Dirent({self.name!r}, ino={self.ino}, type={self.type})"


class CtxBase:
    """The state of one process's syscall context and the conventions of every call."""

    def __init__(self, kernel: "Kernel", proc: Process) -> None:
        self.kernel = kernel
        self.proc = proc
        self.fds = proc.fds
        self._table = kernel.processes
        self._perm = kernel.permissions
        self._check_fs = kernel.permissions.check_fs if kernel.permissions.enforce_fs else None
        self._fs = kernel.mount_table
        self._caller = Caller(proc.uid, proc.gid, proc.pid, proc.umask)
        self._vfs = PathVFS(self._fs, self._caller)
        rl = proc.rlimits
        if rl is None:
            rl = proc.rlimits = self._initial_limits(kernel, proc)
        self._rl = rl
        b = rl.budget
        self._watched: frozenset[int] = b.watched_ids if b is not None else frozenset()
        # the clock starts at the first syscall: the task may wait a while before it first runs
        self._run_start = -1.0
        self._slice_end = 0.0
        self._runq = _run_queue()
        if b is not None and (b.exceeded is not None or (b.deadline is not None and b.deadline <= trio.current_time())):
            # born after its command ran out (a fork bomb's latest), or with no time at all
            _limit_hit(kernel, b, b.exceeded or b.wall_message())
            self._slice_end = 0.0

    # ---------------------------------------------------------------- limits
    @staticmethod
    def _initial_limits(kernel: "Kernel", proc: Process) -> ProcLimits:
        """A child inherits its parent's rlimits and command budget; a process the host
        started (its parent is init) begins a new command with the kernel's limits."""
        if proc.pid == INIT_PID:
            return ProcLimits()
        parent = kernel.processes.get(proc.ppid)
        if parent is not None and parent.pid != INIT_PID and parent.rlimits is not None:
            return parent.rlimits.child()
        rl = new_command(kernel.limits, trio.current_time())
        b = rl.budget
        assert b is not None
        watched: list[Any] = []
        for fd in (1, 2):
            ofd = proc.fds.lookup(fd)
            if ofd is not None and ofd.kind != "pty" and all(o is not ofd for o in watched):
                watched.append(ofd)
        b.watched = tuple(watched)  # held, so the ids stay theirs
        b.watched_ids = frozenset(id(o) for o in watched)
        b.stderr = proc.fds.lookup(2)
        b.name = proc.comm
        if b.deadline is not None and kernel._nursery is not None:
            kernel._nursery.start_soon(_watchdog, kernel, proc, b)
        return rl

    def _charge_cpu(self, now: float) -> None:
        """Count the time since the process last resumed as its CPU time (trio runs one task
        at a time, so that is the time it held the CPU) against its rlimit and its command."""
        if self._run_start < 0:
            return  # not started yet
        used = now - self._run_start
        rl = self._rl
        rl.cpu_used += used
        if rl.parent is not None:
            rl.parent.children_cpu += used
        b = rl.budget
        if b is not None and b.cpu_limit is not None:
            msg = b.charge_cpu(used)
            if msg is not None:
                _limit_hit(self.kernel, b, msg)
                self._slice_end = 0.0  # the kill lands at the next syscall
        lim = rl.rlimit_cpu
        if lim is not None and rl.cpu_used > lim:
            if not rl.signalled_cpu:
                rl.signalled_cpu = True
                self._table.send(self.proc, S.SIGXCPU)
            elif rl.cpu_used > lim + 1:
                self._table.terminate(self.proc, S.SIGKILL)

    def _charge_write(self, ofd: Any, nbytes: int, end: int | None) -> None:
        """Before a write of *nbytes* (*end*: the file offset it reaches; None for a stream):
        RLIMIT_FSIZE (EFBIG and SIGXFSZ, as Linux), the command's file and output budgets."""
        rl = self._rl
        if end is not None:
            if ofd.kind != "file":
                return  # both limits are of regular files: Linux's /dev/null takes any write
            lim = rl.rlimit_fsize
            if lim is not None and end > lim:
                self._table.send(self.proc, S.SIGXFSZ)
                raise KernelError("EFBIG", "file size limit exceeded")
            b = rl.budget
            if b is not None and b.file_limit is not None:
                msg = b.charge_file(nbytes)
                if msg is not None:
                    _limit_hit(self.kernel, b, msg)
                    self._slice_end = 0.0  # the kill lands at the next syscall
                    raise KernelError("EFBIG", msg)
        elif id(ofd) in self._watched:
            b = rl.budget
            if b is not None and b.output_limit is not None:
                msg = b.charge_output(nbytes)
                if msg is not None:
                    _limit_hit(self.kernel, b, msg)
                    self._slice_end = 0.0  # the kill lands at the next syscall
                    raise KernelError("EFBIG", msg)

    def getrlimit(self, resource: str) -> tuple[float | None, float | None]:
        """(soft, hard) limit of *resource*: ``cpu`` seconds, ``fsize`` bytes, ``nofile``,
        ``nproc``, or a name only recorded (``core``, ``stack``...); None is unlimited."""
        rl = self._rl
        kl = self.kernel.limits
        if resource == "cpu":
            soft: float | None = rl.rlimit_cpu
            cap: float | None = kl.rlimit_cpu
        elif resource == "fsize":
            soft, cap = rl.rlimit_fsize, kl.rlimit_fsize
        elif resource == "nofile":
            soft, cap = self.fds.max_fds, kl.max_fds
        elif resource == "nproc":
            soft, cap = kl.max_processes, kl.max_processes
        else:
            soft, cap = rl.extra.get(resource, _RECORDED.get(resource)), None
        return soft, rl.hard.get(resource, cap)

    def setrlimit(self, resource: str, soft: float | None, hard: float | None) -> None:
        """setrlimit(2) without privilege: the soft limit may not exceed the hard one, the hard
        one may only come down (EPERM).  ``nproc`` is the kernel's own and stays as it is."""
        if (soft is not None and soft < 0) or (hard is not None and hard < 0):
            raise KernelError("EINVAL", "negative limit")
        _, old_hard = self.getrlimit(resource)
        if old_hard is not None and (hard is None or hard > old_hard or soft is None or soft > old_hard):
            raise KernelError("EPERM", "cannot raise a limit above its hard limit")
        if hard is not None and (soft is None or soft > hard):
            raise KernelError("EINVAL", "soft limit above the hard limit")
        rl = self._rl
        if resource == "nproc":
            if soft != self.kernel.limits.max_processes:
                raise KernelError("EPERM", "the process limit is the kernel's")
            return
        if resource == "nofile":
            if soft is None:
                raise KernelError("EPERM", "cannot raise the fd limit")
            self.fds.max_fds = int(soft)
        elif resource == "cpu":
            rl.rlimit_cpu = soft
            rl.signalled_cpu = False
        elif resource == "fsize":
            rl.rlimit_fsize = None if soft is None else int(soft)
        else:
            rl.extra[resource] = soft
        rl.hard[resource] = hard

    def cpu_times(self) -> tuple[float, float]:
        """(this process's CPU seconds, its reaped children's): what times(2) reports as
        user time (the sandbox does not tell user from system time)."""
        self._charge_cpu(_now())
        self._run_start = _now()
        return self._rl.cpu_used, self._rl.children_cpu

    # ---------------------------------------------------------------- signals plumbing
    async def _enter(self) -> None:
        """Syscall entry: wait while stopped, run handlers of pending signals, and let the
        other tasks run once the time slice (``SLICE_S``) is used up."""
        p = self.proc
        if p.state == "T" or p.sig.pending:
            await self._signals()
        if p.term_signal:  # killed while it ran (SIGXFSZ of its last write): no further syscall
            await trio.lowlevel.checkpoint()
        now = _now()
        if now >= self._slice_end or (self._runq and now - self._run_start >= SOFT_SLICE_S):
            await self._preempt()

    async def preempt_point(self) -> None:
        """A program's own yield point for long computations between syscalls (a sort, a
        formatting loop): costs a clock read unless its time slice is used up, then lets the
        other tasks (the FUSE server) run and delivers pending signals, as a syscall entry
        does.  Call it every few hundred microseconds of work."""
        p = self.proc
        if p.state == "T" or p.sig.pending:
            await self._signals()
        now = _now()
        if now >= self._slice_end or (self._runq and now - self._run_start >= SOFT_SLICE_S):
            await self._preempt()

    async def compute(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a pure computation (``list.sort`` of a big input, a digest) in a worker thread:
        one C call that cannot reach a preempt point would otherwise hold the event loop, and
        the FUSE server with it, for its whole length.  Under the GIL the loop still gets the
        interpreter every switch interval (5 ms).  *fn* must not touch ``ctx`` or anything of
        the kernel except through ``call_from_thread``.  A kill ends the wait at once (the
        thread finishes on its own: its next ``call_from_thread`` fails)."""
        await self._enter()
        self._loop_token = trio.lowlevel.current_trio_token()  # an abandoned thread still calls back
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    def call_from_thread(self, afn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """From inside ``compute``: run the syscall ``afn(*args)`` of this process on the event
        loop and return its result (or raise its KernelError).  For libraries whose callbacks
        are synchronous, such as SQLite's file layer under apsw.  EINTR once the process is
        killed, so an abandoned thread stops touching its files."""
        async def on_the_loop() -> _T:
            if self.proc.cancel_scope.cancel_called:
                raise KernelError("EINTR", "the process was killed")
            return await afn(*args)

        if trio.lowlevel.in_trio_run():
            # On the loop itself (a connection closed by the garbage collector when its
            # process died): waiting for the loop here would never end.
            raise KernelError("EINTR", "the process is gone")
        try:
            return trio.from_thread.run(on_the_loop, trio_token=self._loop_token)
        except (trio.RunFinishedError, trio.Cancelled):
            raise KernelError("EINTR", "the kernel has stopped") from None

    async def _preempt(self) -> None:
        nice = self.proc.nice
        slice_s = SLICE_S if not nice else SLICE_BY_NICE[nice]
        if self._run_start < 0:  # the process's first syscall: start its clock
            self._run_start = now = _now()
            self._slice_end = now + slice_s
            if not self.proc.cancel_scope.cancel_called:
                return
        self._charge_cpu(_now())
        await trio.lowlevel.checkpoint()  # where a SIGKILL (cancellation) lands
        self._run_start = now = _now()
        self._slice_end = now + slice_s

    async def _signals(self) -> tuple[bool, bool]:
        """Deliver what is deliverable; returns (a handler ran, all those handlers restart)."""
        p = self.proc
        table = self._table
        ran = False
        restart = True
        while True:
            if p.state == "T":
                ev = p.cont_event
                if ev is not None:
                    await ev.wait()
                continue
            todo = p.sig.deliverable()
            if not todo:
                return ran, restart
            sig = todo[0]
            p.sig.pending.discard(sig)
            act = p.sig.action(sig)
            handler = act.handler
            if handler == S.SIG_IGN:
                continue
            if handler == S.SIG_DFL:
                what = S.default_action(sig)
                if what == "stop":
                    table.stop(p, sig)
                elif what in ("term", "core"):
                    table.terminate(p, sig, core=what == "core")
                    await trio.lowlevel.checkpoint()  # the cancellation ends the program here
                continue
            assert callable(handler)  # SIG_IGN and SIG_DFL are handled above
            ran = True
            if not act.flags & S.SA_RESTART:
                restart = False
            saved = set(p.sig.blocked)
            p.sig.blocked |= set(act.mask)
            if not act.flags & S.SA_NODEFER:
                p.sig.blocked.add(sig)
            if act.flags & S.SA_RESETHAND:
                p.sig.actions.pop(sig, None)
            try:
                result = handler(sig)
                if inspect.isawaitable(result):
                    await result
            finally:
                p.sig.blocked = saved

    def _needs_attention(self) -> bool:
        p = self.proc
        return p.state == "T" or bool(p.sig.deliverable())

    async def _block(self, wait, *args) -> bool:
        """Run ``await wait(*args)`` interruptibly; True if a signal cut it short."""
        p = self.proc
        self._charge_cpu(_now())
        with trio.CancelScope() as cs:
            p.blocked_scope = cs
            if p.state == "R":
                p.state = "S"
            try:
                if p.state == "T" or (p.sig.pending and self._needs_attention()):
                    cs.cancel()
                await wait(*args)
            finally:
                p.blocked_scope = None
                if p.state == "S":
                    p.state = "R"
                self._run_start = now = _now()
                self._slice_end = now + SLICE_S
        return cs.cancelled_caught

    async def _wait(self, wait, *args, restartable: bool = True) -> None:
        """Block once; after a signal, raise EINTR unless every handler asked to restart."""
        if await self._block(wait, *args):
            ran, restart = await self._signals()
            if ran and not (restartable and restart):
                raise KernelError("EINTR", _EINTR_MSG)

    # ---------------------------------------------------------------- paths
    def _abs(self, path: str) -> str:
        if not isinstance(path, str):
            path = os.fsdecode(path)
        if not path:
            raise KernelError("ENOENT", "empty path")
        if path[0] == "/":
            return path
        cwd = self.proc.cwd
        return (cwd + path) if cwd.endswith("/") else f"{cwd}/{path}"

    async def _enter_path(self, op: str, path: str) -> str:
        """Syscall entry for a call on one path: the absolute path, checked by the policy."""
        await self._enter()
        apath = self._abs(path)
        self._check(op, apath)
        return apath

    def _check(self, op: str, path: str) -> None:
        if self._check_fs is not None:
            self._check_fs(op, path)


    async def _job_control(self, pty: "Pty", sig: int) -> None:
        """Linux's tty_check_change: a process of a background group using its controlling
        terminal sends *sig* to its group (SIGTTIN: read; SIGTTOU: write with TOSTOP,
        tcsetattr, tcsetpgrp), which stops it by default, and tries again once continued.
        With *sig* ignored or blocked a read fails with EIO and the rest go ahead; an
        orphaned group gets EIO instead of a stop nobody could undo."""
        p = self.proc
        while pty.sid and pty.sid == p.sid and pty.fg_pgid and p.pgid != pty.fg_pgid:
            if p.sig.action(sig).handler == S.SIG_IGN or sig in p.sig.blocked:
                if sig == S.SIGTTIN:
                    raise KernelError("EIO", "background read from the terminal")
                return
            if self._table.is_orphaned_pgrp(p.pgid):
                raise KernelError("EIO", "orphaned background job used the terminal")
            self._table.kill_group(p.pgid, sig)
            ran, restart = await self._signals()
            if ran and not restart:
                raise KernelError("EINTR", _EINTR_MSG)


#: What getrlimit reports for the resources the sandbox records but does not enforce
#: (Linux's usual defaults; None is unlimited).
_RECORDED: dict[str, float | None] = {
    "core": 0, "data": None, "nice": 0, "sigpending": 63349, "memlock": 8 << 20, "rss": None,
    "msgqueue": 819200, "rtprio": 0, "stack": 8 << 20, "as": None, "locks": None, "rttime": None,
}


def _limit_hit(kernel: "Kernel", b: CommandBudget, msg: str) -> None:
    """A command went over one of its limits: one line on its stderr, then SIGKILL for every
    process of the command (the shell that started it too, so nothing carries on half-done).
    The kernel, the other commands and the mount are untouched."""
    if b.exceeded is None:
        b.exceeded = msg
        ofd = b.stderr
        if ofd is not None and ofd.endpoint is not None:
            try:
                ofd.endpoint.try_write(f"{b.name}: {msg}\n".encode())
            except KernelError:
                pass
    table = kernel.processes
    for p in table.processes():
        rl = p.rlimits
        if rl is not None and rl.budget is b and p.state != "Z":
            table.terminate(p, S.SIGKILL)


async def _watchdog(kernel: "Kernel", root: Process, b: CommandBudget) -> None:
    """Ends the command at its wall-time deadline, blocked or not (``sleep`` included);
    returns early once every process of the command has exited."""
    deadline = b.deadline
    assert deadline is not None
    table = kernel.processes

    def alive() -> bool:
        return any(p.rlimits is not None and p.rlimits.budget is b and p.state != "Z" for p in table.processes())

    while True:
        now = trio.current_time()
        if now >= deadline:
            if alive():
                _limit_hit(kernel, b, b.wall_message())
            return
        if root.exited.is_set():
            if not alive():
                return
            await trio.sleep_until(min(deadline, now + 1.0))
        else:
            with trio.move_on_at(deadline):
                await root.exited.wait()


async def _wait_until(ev: trio.Event, deadline: float) -> None:
    with trio.move_on_at(deadline):
        await ev.wait()
