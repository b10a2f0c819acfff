"""Real Linux programs as kernel processes: the launcher interface the host provides, and the
kernel side of a native process (stdio pumps, signal forwarding, exit status).

When ``execve`` finds an ELF file in the VFS, the process runs ``native_program(path)``: it asks
the host's ``NativeLauncher`` (the daemon's bubblewrap jail, which needs the FUSE mount; the kernel
never imports it) to start the file as a real process, then stays the kernel process of it.  Its
kernel fds 0-2 are pumped to and from the streams the launcher gives; catchable signals sent to
the kernel process are forwarded to the real one, a kernel stop stops it and SIGKILL kills it; the
real process's exit status (or death signal) becomes the kernel process's, so ``waitpid``, ``$?``,
``ps`` and ``/proc`` see one process.

Without a launcher (a memory-only kernel, ``vfsfuse shell STORE``) execve of an ELF file fails
with ENOEXEC and a message saying that real programs need a mount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import O_APPEND, OpenFileDescription, PtySlaveEnd
from kernel.limits import Limits
from kernel.process import WEXITSTATUS, WIFEXITED, WTERMSIG, Process
from kernel.pty import Pty, Termios

if TYPE_CHECKING:
    from kernel.net.table import SocketTable
    from kernel.programs.registry import Program
    from kernel.syscalls import Ctx

ELF_MAGIC = b"\x7fELF"

# stdio plans for the launcher: a stream it must give back, /dev/null, or fd 1's stream again
STDIO_PIPE = "pipe"
STDIO_NULL = "null"
STDIO_SAME_AS_STDOUT = "stdout"

# Signals the kernel process catches and passes on; the stop signals are kernel stops (job
# control), forwarded as SIGSTOP/SIGCONT; SIGKILL kills the real process with the kernel one.
FORWARDED = (S.SIGHUP, S.SIGINT, S.SIGQUIT, S.SIGUSR1, S.SIGUSR2, S.SIGTERM, S.SIGALRM,
             S.SIGWINCH, S.SIGCONT)

WATCH_INTERVAL = 0.5  # how often memory and descendants are read from the host

NO_LAUNCHER = "real programs (ELF files) run only on a mounted store; mount it and use the mount"


@dataclass(frozen=True, slots=True)
class NativeSpec:
    """What to run: every path is a path inside the sandbox (the jail's root is the mount)."""

    path: str                       # the ELF file
    argv: list[str]
    env: dict[str, str]
    cwd: str
    uid: int
    gid: int
    hostname: str
    limits: Limits
    stdio: tuple[str, str, str]     # STDIO_* for fds 0, 1, 2
    winsize: tuple[int, int] | None = None   # rows, cols when stdin is a terminal
    terminal: bool = False          # fds 0-2 are one kernel PTY: give the program a real pty
    net: "SocketTable | None" = None  # the kernel's sockets: their policy decides the jail's network


@dataclass(slots=True)
class NativeUsage:
    """What the host's /proc says of the real process, already free of host pids and paths."""

    state: str = "S"
    rss_bytes: int = 0


@dataclass(slots=True)
class NativeChild:
    """A process the real program started inside the jail, as the host's /proc shows it."""

    key: int                        # the launcher's handle for it (opaque to the kernel)
    parent_key: int | None          # its parent's key; None: the real program itself
    argv: list[str]
    usage: NativeUsage


@dataclass(eq=False)
class NativeStreams:
    """The host ends of the real process's stdio (None where the plan was not STDIO_PIPE)."""

    stdin: trio.abc.SendStream | None = None
    stdout: trio.abc.ReceiveStream | None = None
    stderr: trio.abc.ReceiveStream | None = None
    extra: list[trio.abc.AsyncResource] = field(default_factory=list)


class NativeProcess(Protocol):
    """A running real process, as the launcher hands it to the kernel."""

    streams: NativeStreams

    def send_signal(self, sig: int) -> None:
        """Deliver *sig* to the real process (nothing if it is gone)."""

    async def wait(self) -> int:
        """Its wait(2) status (Linux encoding) once it has ended."""

    def usage(self) -> NativeUsage | None:
        """State and memory from the host's /proc, or None once gone."""

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size of its terminal (with ``terminal``; a no-op otherwise)."""

    def children(self) -> list[NativeChild]:
        """Its descendants inside the jail, parents before children."""

    def signal_child(self, key: int, sig: int) -> None:
        """Deliver *sig* to the descendant *key* (nothing if it is gone)."""

    async def aclose(self) -> None:
        """Kill it if still running and release everything the launcher holds for it."""


class NativeLauncher(Protocol):
    """Starts real programs; the daemon gives one to a kernel that has a mount."""

    async def launch(self, spec: NativeSpec) -> NativeProcess:
        """Start *spec* or raise KernelError with one clear line (e.g. what the host lacks)."""


def native_program(path: str) -> "Program":
    """The kernel program that runs the ELF file *path* through the kernel's launcher."""

    async def run(ctx: "Ctx") -> int:
        launcher: NativeLauncher | None = ctx.kernel.native
        if launcher is None:
            raise KernelError("ENOEXEC", f"{path}: {NO_LAUNCHER}")
        return await _run_native(ctx, launcher, path)

    run.__name__ = "native"
    return run


def _plan(ctx: "Ctx") -> tuple[tuple[str, str, str], list[OpenFileDescription | None]]:
    ofds = [ctx.fds.lookup(fd) for fd in (0, 1, 2)]
    plan = [STDIO_PIPE if o is not None else STDIO_NULL for o in ofds]
    if ofds[1] is not None and ofds[2] is ofds[1]:
        plan[2] = STDIO_SAME_AS_STDOUT  # 2>&1 keeps the order of what is written
    return (plan[0], plan[1], plan[2]), ofds


def _terminal(ctx: "Ctx", ofds: list[OpenFileDescription | None]) -> "Pty | None":
    """The kernel PTY that is fds 0-2 of a foreground process, if it is one."""
    eps = [o.endpoint if o is not None else None for o in ofds]
    if not all(isinstance(ep, PtySlaveEnd) for ep in eps):
        return None
    ptys = {ep.pty for ep in eps if isinstance(ep, PtySlaveEnd)}
    if len(ptys) != 1:
        return None
    pty = ptys.pop()
    return pty if pty.fg_pgid in (0, ctx.proc.pgid) else None


def _bridge_modes(t: Termios) -> Termios:
    """The kernel PTY's modes while a real pty does the line discipline: bytes pass through
    unchanged in both directions, but ^C/^Z/^\\ still become signals of the kernel's foreground
    group (the real program has no controlling terminal of its own to get them from)."""
    m = t.copy()
    m.make_raw()
    m.echoe = m.echoctl = False
    m.isig = True
    return m


async def _run_native(ctx: "Ctx", launcher: NativeLauncher, path: str) -> int:
    proc = ctx.proc
    plan, ofds = _plan(ctx)
    pty = _terminal(ctx, ofds)
    winsize = (pty.winsize.rows, pty.winsize.cols) if pty is not None else None
    if pty is not None:
        plan = (STDIO_PIPE, STDIO_PIPE, STDIO_SAME_AS_STDOUT)
    spec = NativeSpec(path=path, argv=list(proc.argv), env=dict(proc.env), cwd=proc.cwd,
                      uid=proc.uid, gid=proc.gid, hostname=ctx.kernel.hostname,
                      limits=ctx.kernel.limits, stdio=plan, winsize=winsize, terminal=pty is not None,
                      net=ctx.kernel.net)
    real = await launcher.launch(spec)
    saved = pty.termios.copy() if pty is not None else None

    def forward(sig: int) -> None:
        if sig == S.SIGWINCH and pty is not None:
            real.resize(pty.winsize.rows, pty.winsize.cols)
        real.send_signal(sig)

    try:
        if pty is not None:
            pty.set_termios(_bridge_modes(pty.termios))
        for sig in FORWARDED:
            if (await ctx.sigaction(sig)).handler != S.SIG_IGN:  # ignored stays ignored, as over exec
                await ctx.sigaction(sig, S.SigAction(handler=forward, flags=S.SA_RESTART))
        status = await _supervise(ctx, real, ofds, pty, saved)
    finally:
        with trio.CancelScope(shield=True):
            if pty is not None and saved is not None:
                pty.set_termios(saved)
            await real.aclose()
    if WIFEXITED(status):
        return WEXITSTATUS(status)
    ctx._table.terminate(proc, WTERMSIG(status), core=bool(status & 0x80))
    await trio.lowlevel.checkpoint()  # the kernel records the death signal
    return 128 + WTERMSIG(status)


async def _supervise(ctx: "Ctx", real: NativeProcess, ofds: list[OpenFileDescription | None],
                     pty: "Pty | None" = None, saved: Termios | None = None) -> int:
    """Pump stdio and pass signals on until the real process has ended and its output is read.
    While it is stopped the terminal has the modes it had before (the shell's), as when a real
    program's modes live on its own terminal."""
    proc = ctx.proc
    ended = trio.Event()
    result: list[int] = []
    drained = trio.Event()

    async def waiter() -> None:
        result.append(await real.wait())
        ended.set()

    async def outputs() -> None:
        async with trio.open_nursery() as n:
            if real.streams.stdout is not None and ofds[1] is not None:
                n.start_soon(_pump_out, real.streams.stdout, ofds[1])
            if real.streams.stderr is not None and ofds[2] is not None:
                n.start_soon(_pump_out, real.streams.stderr, ofds[2])
        drained.set()

    shadows: dict[int, tuple[Process, trio.Event]] = {}

    async def watch_usage() -> None:
        try:
            while True:
                u = real.usage()
                if u is None:
                    return
                proc.rss_bytes = u.rss_bytes or proc.rss_bytes
                _mirror_children(ctx, real, shadows)
                await trio.sleep(WATCH_INTERVAL)
        finally:
            for _, gone in shadows.values():
                gone.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(outputs)
        nursery.start_soon(watch_usage)
        if real.streams.stdin is not None and ofds[0] is not None:
            nursery.start_soon(_pump_in, ofds[0], real.streams.stdin, proc)
        while not (ended.is_set() and drained.is_set()):
            await ctx._block(_both, ended, drained)
            stopped = proc.state == "T"
            if stopped:
                real.send_signal(S.SIGSTOP)
                if pty is not None and saved is not None:
                    bridged = pty.termios.copy()
                    pty.set_termios(saved)
            await ctx._signals()  # waits while stopped, runs the forwarding handlers
            if stopped:
                if pty is not None and saved is not None:
                    saved = pty.termios.copy()  # what the shell left, restored at the end
                    pty.set_termios(bridged)
                real.send_signal(S.SIGCONT)
        nursery.cancel_scope.cancel()
    return result[0]


def _mirror_children(ctx: "Ctx", real: NativeProcess, shadows: dict[int, tuple[Process, trio.Event]]) -> None:
    """Keep one kernel process per descendant of the real program (so ``ps``, ``/proc`` and
    ``kill`` in the sandbox see them); each ends when its real process is gone."""
    kids = {c.key: c for c in real.children()}
    for key in [k for k in shadows if k not in kids]:
        shadows.pop(key)[1].set()
    for key, child in kids.items():
        if key in shadows:
            known = shadows[key][0]
            known.rss_bytes = child.usage.rss_bytes or known.rss_bytes
            if child.argv and child.argv != known.argv:  # it exec'd since (fork, then exec)
                known.argv, known.exe = child.argv, child.argv[0]
            continue
        parent = shadows[child.parent_key][0] if child.parent_key in shadows else ctx.proc
        gone = trio.Event()
        argv = child.argv or ["?"]
        try:
            shadow = ctx.kernel.spawn_process(argv, parent=parent, env={}, cwd=parent.cwd,
                                              program=_shadow_program(real, key, gone), exe=argv[0])
        except KernelError:  # the process limit: the real one still runs, unseen
            continue
        for fd, _ in shadow.fds.items():  # no kernel fds: it must not hold the program's pipes
            shadow.fds.remove(fd)
        shadow.rss_bytes = child.usage.rss_bytes or shadow.rss_bytes
        shadows[key] = (shadow, gone)


def _shadow_program(real: NativeProcess, key: int, gone: trio.Event) -> "Program":
    async def shadow(ctx: "Ctx") -> int:
        def forward(sig: int) -> None:
            real.signal_child(key, sig)

        for sig in FORWARDED:
            await ctx.sigaction(sig, S.SigAction(handler=forward, flags=S.SA_RESTART))
        try:
            while not gone.is_set():
                await ctx._block(gone.wait)
                stopped = ctx.proc.state == "T"
                if stopped:
                    real.signal_child(key, S.SIGSTOP)
                await ctx._signals()
                if stopped:
                    real.signal_child(key, S.SIGCONT)
        finally:
            if not gone.is_set():  # SIGKILL from the sandbox
                real.signal_child(key, S.SIGKILL)
        return 0

    shadow.__name__ = "native-child"
    return shadow


async def _both(a: trio.Event, b: trio.Event) -> None:
    await a.wait()
    await b.wait()


async def _pump_in(ofd: OpenFileDescription, dest: trio.abc.SendStream, proc: Process) -> None:
    """Kernel fd 0 -> the real process; its end closes at our EOF (or when it stops reading).
    From a terminal it reads only while the process is in the foreground, as a read would."""
    ep = ofd.endpoint
    pty = ep.pty if isinstance(ep, PtySlaveEnd) else None
    try:
        while True:
            if pty is not None and pty.fg_pgid not in (0, proc.pgid):
                await trio.sleep(0.05)
                continue
            data = await read_description(ofd, 65536)
            if not data:
                break
            await dest.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, KernelError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await dest.aclose()


async def _pump_out(src: trio.abc.ReceiveStream, ofd: OpenFileDescription) -> None:
    """The real process's stdout/stderr -> its kernel fd; a closed reader ends the pump."""
    try:
        while True:
            data = await src.receive_some(65536)
            if not data:
                break
            await write_description(ofd, data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, KernelError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await src.aclose()


async def read_description(ofd: OpenFileDescription, n: int) -> bytes:
    """Read from an open file description directly (pipe, PTY, device or file), at its offset."""
    ep = ofd.endpoint
    if ep is not None:
        while True:
            try:
                data = ep.try_read(n)
            except KernelError as e:
                if e.code == "EIO":  # a hung-up terminal
                    return b""
                raise
            if data is not None:
                return data
            await ep.waitable.wait()
    fs, fh = ofd.handle()
    data = await fs.read(fh, ofd.pos, n)
    ofd.pos += len(data)
    return data


async def write_description(ofd: OpenFileDescription, data: bytes | bytearray) -> None:
    """Write all of *data* to an open file description (appending where it says O_APPEND)."""
    ep = ofd.endpoint
    view = memoryview(data)
    if ep is not None:
        while view:
            k = ep.try_write(view)
            if k is None:
                await ep.waitable.wait()
                continue
            view = view[k:]
        return
    fs, fh = ofd.handle()
    if ofd.flags & O_APPEND:
        assert ofd.ino is not None
        ofd.pos = (await fs.getattr(ofd.ino)).size
    while view:
        k = await fs.write(fh, ofd.pos, bytes(view))
        if k <= 0:
            raise KernelError("EIO", "short write")
        ofd.pos += k
        view = view[k:]
