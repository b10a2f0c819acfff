"""Sessions of the sandbox shell, host side: a script run to completion (``exec``), a shell on a
kernel PTY (``shell``) and a persistent shell that runs one script after another (the Python
API's ``Sandbox.session()``).  Everything here runs in the kernel's trio loop; the control
socket (``control.py``) and the in-process API (``vfsfuse/api.py``) are the two callers.

What a script sees is the kernel's own environment (``Kernel.env``) plus what the caller adds:
nothing of the host's environment, working directory or pid is ever passed in.
"""

from __future__ import annotations

import logging
import os
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import OpenFileDescription
from kernel.kernel import DEVNULL, PIPE, HostFile, Kernel, TerminalHandle
from kernel.limits import Limits, lower_command
from kernel.net.policy import NetPolicy
from kernel.process import Process, shell_code

log = logging.getLogger("vfsfuse.daemon.sessions")

SHELL = "bash"  # what scripts are run by: the extensions agents write ([[ ]], arrays)
TIMEOUT_STATUS = 124  # as timeout(1)
OUTPUT_LIMIT_STATUS = 125
READ_CHUNK = 65536

Emit = Callable[[int, bytes], Awaitable[None]]  # (1 or 2, bytes) -> sent on


@dataclass
class RunLimits:
    """Per-call limits: wall-clock seconds and bytes of stdout + stderr (None: unlimited; 0 means 0);
    *command*: the kernel's limits lowered for this run (``kernel.limits.lowered``), or None."""

    timeout: float | None = None
    max_output: int | None = None
    command: Limits | None = None

    def deadline(self) -> float:
        """Seconds the run may take: the timeout, or a lowered wall limit if that is shorter."""
        t = self.timeout if self.timeout is not None else float("inf")
        if self.command is not None and self.command.wall_seconds is not None:
            t = min(t, self.command.wall_seconds)
        return t


def apply_command_limits(proc: Process, limits: Limits | None) -> None:
    """Give a process just started from the host (it has not run yet) a session's lowered
    limits: its command budget, its rlimits, its fd table, the shell's own limits."""
    if limits is None or proc.rlimits is None:
        return
    lower_command(proc.rlimits, limits, trio.current_time())
    proc.fds.max_fds = min(proc.fds.max_fds, limits.max_fds)


@dataclass
class RunOutcome:
    """How one script ended: its shell status and which limit (if any) ended it."""

    exit_code: int
    timed_out: bool = False
    output_limited: bool = False


@dataclass
class _Meter:
    """Counts output against ``max_output``; the first byte past it ends the run."""

    emit: Emit
    limit: int | None
    used: int = 0
    hit: bool = False
    tripped: trio.Event = field(default_factory=trio.Event)

    async def send(self, stream: int, data: bytes) -> None:
        if self.hit or not data:
            return
        if self.limit is not None and self.used + len(data) > self.limit:
            data = data[: max(0, self.limit - self.used)]
            self.hit = True
            self.tripped.set()
        self.used += len(data)
        if data:
            await self.emit(stream, data)


_DEVNULL: "weakref.WeakKeyDictionary[Kernel, OpenFileDescription]" = weakref.WeakKeyDictionary()


async def _devnull(kernel: Kernel) -> OpenFileDescription:
    """One open /dev/null per kernel for every script's stdin (opening it per run cost a path
    walk and an open each time); the extra reference held here keeps it from being released."""
    ofd = _DEVNULL.get(kernel)
    if ofd is None:
        ofd, _ = await kernel._stdio(DEVNULL, 0)
        assert ofd is not None
        ofd.refs += 1
        _DEVNULL[kernel] = ofd
    return ofd


def sandbox_env(kernel: Kernel, extra: dict[str, str] | None) -> dict[str, str]:
    """The kernel's environment plus the caller's additions (never the host's)."""
    env = dict(kernel.env)
    if extra:
        env.update(extra)
    return env


async def check_cwd(kernel: Kernel, cwd: str | None) -> str:
    """*cwd* as a directory inside the sandbox (ENOENT/ENOTDIR otherwise)."""
    if cwd is None:
        return kernel.cwd  # the kernel's own (made at boot): no lookup per run
    wd = cwd
    if not wd.startswith("/"):
        raise KernelError("EINVAL", f"working directory must be absolute inside the sandbox: {wd}")
    st = await kernel.vfs.stat(wd)
    if not (st.mode & 0o170000) == 0o040000:
        raise KernelError("ENOTDIR", f"not a directory: {wd}")
    return wd


def _kill_group(kernel: Kernel, pgid: int, *, but: int = 0) -> None:
    """SIGKILL every process of group *pgid* (except pid *but*), waking stopped ones first."""
    for p in kernel.processes.group(pgid):
        if p.pid != but and p.state != "Z":
            kernel.processes.send(p, S.SIGCONT)
            kernel.processes.send(p, S.SIGKILL)


async def _end_group(kernel: Kernel, pgid: int) -> None:
    """Kill the group until it stays empty: a member killed between two checkpoints may still
    have forked once more."""
    for _ in range(20):
        if not any(p.state != "Z" for p in kernel.processes.group(pgid)):
            return
        _kill_group(kernel, pgid)
        await trio.sleep(0)


def _drain_ready(h: HostFile | None) -> bytes:
    """What a pipe holds right now, without waiting (output left after the script exited)."""
    if h is None or h.closed:
        return b""
    parts = []
    while True:
        try:
            d = h.ofd.endpoint.try_read(READ_CHUNK)
        except KernelError:
            break
        if not d:
            break
        parts.append(d)
    return b"".join(parts)


async def _pump(h: HostFile | None, stream: int, meter: _Meter) -> None:
    if h is None:
        return
    while True:
        d = await h.read(READ_CHUNK)
        if not d:
            return
        with trio.CancelScope(shield=True):  # bytes taken from the pipe are never dropped
            await meter.send(stream, d)


async def _feed(h: HostFile | None, source: AsyncIterator[bytes] | bytes | None) -> None:
    """Copy *source* into the script's stdin, then close it (EOF)."""
    if h is None:
        return
    try:
        if isinstance(source, bytes):
            await h.write_all(source)
        elif source is not None:
            async for chunk in source:
                if not chunk:
                    break
                await h.write_all(chunk)
    except KernelError:
        pass  # the script closed its stdin (EPIPE): the rest is not wanted
    finally:
        await h.close()


async def run_script(kernel: Kernel, script: str, emit: Emit, *, env: dict[str, str] | None = None,
                     cwd: str | None = None, limits: RunLimits | None = None,
                     stdin: AsyncIterator[bytes] | bytes | None = None) -> RunOutcome:
    """Run *script* in a fresh ``bash -c`` (no state survives it); stream its output to *emit*.

    The run ends when the shell exits: what its background jobs wrote by then is kept, and they
    are killed with the rest of its process group (``sleep 100 &`` neither holds the caller nor
    outlives the run).  A limit kills the group too and adds one line on stderr."""
    lim = limits or RunLimits()
    wd = await check_cwd(kernel, cwd)
    h = await kernel.spawn([SHELL, "-c", script], stdin=PIPE if stdin is not None else await _devnull(kernel),
                           stdout=PIPE, stderr=PIPE, env=sandbox_env(kernel, env), cwd=wd)
    apply_command_limits(h.proc, lim.command)
    meter = _Meter(emit, lim.max_output)
    timed_out = False
    try:
        async with trio.open_nursery() as n:
            if stdin is not None:
                n.start_soon(_feed, h.stdin, stdin)
            n.start_soon(_pump, h.stdout, 1, meter)
            n.start_soon(_pump, h.stderr, 2, meter)

            async def limit_watch() -> None:
                await meter.tripped.wait()
                _kill_group(kernel, h.proc.pgid)

            if lim.max_output is not None:
                n.start_soon(limit_watch)
            with trio.move_on_after(lim.deadline()) as scope:
                status = await h.wait()
            if scope.cancelled_caught:
                timed_out = True
                _kill_group(kernel, h.proc.pgid)
                status = await h.wait()
            for stream, hf in ((1, h.stdout), (2, h.stderr)):
                await meter.send(stream, _drain_ready(hf))
            n.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            # What the script left running in its group (``cmd &``, a fork bomb) goes with it: a
            # run leaves no processes behind for the next one (a session is for what must stay).
            await _end_group(kernel, h.proc.pgid)
            await h.aclose()
    return _outcome(shell_code(status), timed_out, meter, lim)


def _outcome(code: int, timed_out: bool, meter: _Meter, lim: RunLimits) -> RunOutcome:
    if timed_out:
        return RunOutcome(TIMEOUT_STATUS, timed_out=True)
    if meter.hit:
        return RunOutcome(OUTPUT_LIMIT_STATUS, output_limited=True)
    return RunOutcome(code)


def limit_message(outcome: RunOutcome, limits: RunLimits) -> bytes:
    """The one line a limit adds to stderr."""
    if outcome.timed_out:
        return f"vfsfuse: timeout: the script ran longer than {limits.deadline():g} s and was killed\n".encode()
    if outcome.output_limited:
        return (f"vfsfuse: output limit: the script wrote more than {limits.max_output} bytes "
                "and was killed\n").encode()
    return b""


# ------------------------------------------------------------------ terminals

async def open_shell(kernel: Kernel, *, rows: int, cols: int, env: dict[str, str] | None = None,
                     cwd: str | None = None, limits: Limits | None = None) -> TerminalHandle:
    """An interactive shell on a new kernel PTY, session leader with the PTY as its terminal;
    *limits*: the kernel's lowered for this session (see ``apply_command_limits``)."""
    wd = await check_cwd(kernel, cwd)
    term = await kernel.open_terminal([SHELL], rows=rows, cols=cols, env=env, cwd=wd)
    apply_command_limits(term.proc, limits)
    return term


async def pump_terminal(term: TerminalHandle, emit: Emit) -> int:
    """Copy the PTY's screen output to *emit* until the shell is gone; its shell status."""
    while True:
        d = await term.read(READ_CHUNK)
        if not d:
            break
        await emit(1, d)
    status = await term.wait()
    return shell_code(status)


# ------------------------------------------------------------------ persistent shells

@dataclass
class _Request:
    script: str
    done: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    status: int = 0
    ended: bool = False  # the script ran `exit`: the session is over


class ShellSession:
    """One ``bash`` process that runs scripts one after another, keeping variables, functions,
    the working directory and options between them (``Sandbox.session()``).  Its stdout and
    stderr are pipes held for the session's life; a call's output is what arrived while it
    ran.  stdin is /dev/null."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._send: trio.MemorySendChannel[_Request] | None = None
        self._recv: trio.MemoryReceiveChannel[_Request] | None = None
        self.proc: Process | None = None
        self.out: HostFile | None = None
        self.err: HostFile | None = None
        self.ended = False
        self._active: _Request | None = None

    async def start(self, *, env: dict[str, str] | None = None, cwd: str | None = None,
                    limits: Limits | None = None) -> None:
        self._send, self._recv = trio.open_memory_channel(1)
        wd = await check_cwd(self.kernel, cwd)
        stdio: dict[int, OpenFileDescription] = {}
        hosts: list[HostFile | None] = []
        for fd, spec in ((0, await _devnull(self.kernel)), (1, PIPE), (2, PIPE)):
            child, host = await self.kernel._stdio(spec, fd)
            assert child is not None
            stdio[fd] = child
            hosts.append(host)
        self.out, self.err = hosts[1], hosts[2]
        full_env = sandbox_env(self.kernel, env)
        full_env.setdefault("PWD", wd)
        self.proc = self.kernel.spawn_process([SHELL], parent=None, env=full_env, cwd=wd, stdio=stdio,
                                              program=self._program, exe=f"/bin/{SHELL}")
        apply_command_limits(self.proc, limits)

    async def _program(self, ctx: object) -> int:
        """The session's process: a shell that takes its scripts from the host, not from stdin."""
        from kernel.shell.main import make_shell, run_in_shell

        sh = make_shell(ctx, SHELL, False)
        assert self._recv is not None
        async for req in self._recv:
            with req.scope:
                req.status, req.ended = await run_in_shell(sh, req.script)
            if req.scope.cancelled_caught:
                req.status = TIMEOUT_STATUS
            req.done.set()
            if req.ended:
                self.ended = True
                return req.status
        return 0

    async def run(self, script: str, emit: Emit, limits: RunLimits | None = None) -> RunOutcome:
        """Run *script* in the session's shell; its output goes to *emit*."""
        if self.ended or self.proc is None or self.proc.state == "Z" or self._send is None:
            raise KernelError("ESRCH", "the session's shell has exited")
        lim = limits or RunLimits()
        meter = _Meter(emit, lim.max_output)
        req = _Request(script)
        self._active = req
        timed_out = False
        async with trio.open_nursery() as n:
            n.start_soon(_pump, self.out, 1, meter)
            n.start_soon(_pump, self.err, 2, meter)
            await self._send.send(req)
            with trio.move_on_after(lim.deadline()) as scope:
                async with trio.open_nursery() as w:
                    async def on_limit() -> None:
                        await meter.tripped.wait()
                        w.cancel_scope.cancel()

                    w.start_soon(on_limit)
                    await _wait_request(req, self.proc)
                    w.cancel_scope.cancel()
            if scope.cancelled_caught or meter.hit:
                timed_out = scope.cancelled_caught
                req.scope.cancel()  # stop the script inside the shell, then its children
                _kill_group(self.kernel, self.proc.pgid, but=self.proc.pid)
                await _wait_request(req, self.proc)
            n.cancel_scope.cancel()
        for stream, hf in ((1, self.out), (2, self.err)):
            await meter.send(stream, _drain_ready(hf))
        if self.proc.state == "Z" and not req.done.is_set():
            self.ended = True
            return RunOutcome(shell_code(self.proc.exit_status or 0))
        return _outcome(req.status, timed_out, meter, lim)

    async def close(self) -> None:
        """End the shell (and what it left running in its group) and drop the pipes."""
        if self._active is not None and not self._active.done.is_set():
            self._active.scope.cancel()  # a run cut short (its client left): stop it first
        if self._send is not None:
            await self._send.aclose()
        if self.proc is not None and self.proc.state != "Z":
            with trio.move_on_after(1.0):
                await self.proc.exited.wait()
            _kill_group(self.kernel, self.proc.pgid)
        for h in (self.out, self.err):
            if h is not None:
                await h.close()


async def _wait_request(req: _Request, proc: Process) -> None:
    """Until the request is done or the shell died (killed from inside, e.g. ``kill -9 $$``)."""
    async with trio.open_nursery() as n:
        async def died() -> None:
            await proc.exited.wait()
            n.cancel_scope.cancel()

        n.start_soon(died)
        await req.done.wait()
        n.cancel_scope.cancel()


# ------------------------------------------------------------------ in-process kernels

@asynccontextmanager
async def local_kernel(store: str | None, *, read_only: bool = False, shm_bytes: int = 64 << 20,
                       limits: Limits | None = None, net: NetPolicy | None = None) -> AsyncIterator[Kernel]:
    """Boot a kernel in this process over an unmounted *store* (None: a memory store gone at
    exit), holding the store's lock so no daemon mounts it meanwhile; flushed and closed after."""
    from vfsfuse.daemon.config import MountConfig, store_run_dir
    from vfsfuse.daemon.lock import StoreLock
    from vfsfuse.daemon.sandbox import boot_sandbox
    from vfsfuse.daemon.serve import check_store_config
    from vfsfuse.storage.store import memory_store, open_store

    lock: StoreLock | None = None
    if store is not None:
        store = os.path.abspath(store)
        check_store_config(MountConfig(mountpoint="/", store=store))
        run_dir = store_run_dir(store)
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        lock = StoreLock(run_dir)
        lock.acquire("")
        opened = open_store(store)
    else:
        opened = memory_store()
    try:
        vfs = opened.vfs
        async with trio.open_nursery() as nursery:
            async with vfs.running():
                sandbox = await boot_sandbox(vfs, nursery, read_only=read_only, shm_bytes=shm_bytes,
                                             limits=limits, net=net)
                try:
                    yield sandbox.kernel
                finally:
                    with trio.CancelScope(shield=True):
                        await sandbox.kernel.shutdown(grace=0.5)
            nursery.cancel_scope.cancel()
    finally:
        opened.close()
        if lock is not None:
            lock.release()
