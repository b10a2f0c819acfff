"""The kernel facade: boot (mount table, /dev, /proc, init), spawning, host-side handles.

``Kernel(root_fs)`` wires the parts together; ``await kernel.boot(nursery)`` mounts
``/dev``, ``/proc`` (and ``/dev/shm`` when the host gave a memory filesystem as
``shm=``), creates the standard directories and starts pid 1 (a minimal init that
reaps orphans).  Processes run as trio tasks in the kernel's own
nursery; ``shutdown()`` sends SIGTERM, then SIGKILL, then cancels what is left.

Host code (tests, the daemon, the CLI) starts programs with ``spawn`` (returns a
``ProcessHandle`` with optional pipes to the child's stdio), ``run`` (collects the
output) or ``open_terminal`` (a session on a new PTY, the seed's ``openShell``).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterable

import trio

from kernel.syscalls import Ctx, ExecImage, ProcessExit

from . import signals as S
from .devfs import DevFS
from .errors import KernelError
from .fdtable import (
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    FdTable,
    OpenFileDescription,
    PipeReadEnd,
    PipeWriteEnd,
    PtyMasterEnd,
    PtySlaveEnd,
    close_descriptions,
)
from .flock import FlockTable
from .fs import Caller, FileSystem
from .limits import Limits, MemoryBudget
from .mounts import MountTable
from .net.policy import NetPolicy
from .net.table import SocketTable
from .pathvfs import PathVFS
from .permissions import Permissions
from .pipes import FifoTable, Pipe
from .process import (
    INIT_PID,
    WEXITSTATUS,
    WIFEXITED,
    WTERMSIG,
    Process,
    ProcessTable,
    shell_code,
    status_exited,
    status_signaled,
)
from .procfs import ProcFS
from .procfs.net import proc_net
from .programs.registry import STUB, Program, ProgramRegistry
from .pty import Pty, PtyRegistry

log = logging.getLogger("vfsfuse.kernel")
logging.getLogger("vfsfuse").addHandler(logging.NullHandler())

BOOT_DIRS = ("/bin", "/etc", "/home", "/home/user", "/root", "/tmp", "/usr", "/usr/bin",
             "/var", "/var/tmp")
# Modes of boot directories that Linux does not make 0755 (an existing directory keeps its own).
BOOT_DIR_MODES = {"/root": 0o700}
DEFAULT_ENV = {"PATH": "/bin:/usr/bin", "HOME": "/home/user", "SHELL": "/bin/sh", "TERM": "xterm"}
# Programs that scripts name by their /usr/bin path in a #! line (`#!/usr/bin/env bash`,
# `#!/usr/bin/awk -f`): a stub there too, as on a merged-/usr Debian where both paths work.
USR_BIN_STUBS = ("env", "awk", "bash", "sh")

PIPE = "pipe"
DEVNULL = "null"


class Kernel:
    """One sandbox kernel over a root filesystem (see the module docstring)."""

    def __init__(self, root_fs: FileSystem, *, hostname: str = "sandbox",
                 permissions: Permissions | None = None, limits: Limits | None = None,
                 env: dict[str, str] | None = None, cwd: str = "/home/user",
                 programs: ProgramRegistry | None = None, uid: int = 0, gid: int = 0,
                 mounts: Iterable[tuple[str, FileSystem, bool]] = (),
                 shm: FileSystem | None = None, net: NetPolicy | None = None) -> None:
        """*mounts*: extra ``(path, fs, read_only)`` mounts made at boot.  *shm*: a writable
        memory filesystem to mount on ``/dev/shm`` (kernel/ never imports vfsfuse, so the
        host passes one, e.g. ``vfsfuse.storage.store.memory_vfs()``); without it ``/dev/shm`` is
        devfs's empty directory, where creating files fails with EPERM.  *net*: the network
        policy (default ``none``: no inet traffic at all; AF_UNIX always works)."""
        self.limits = limits or Limits()
        self.permissions = permissions if permissions is not None else Permissions.default()
        self.hostname = hostname
        self.env = dict(DEFAULT_ENV if env is None else env)
        self.cwd = cwd
        self.uid, self.gid = uid, gid
        self.processes = ProcessTable(self.limits)
        self.mount_table = MountTable(root_fs)
        self.root_fs = root_fs
        self.vfs = PathVFS(self.mount_table)
        self.flocks = FlockTable()
        self.fifos = FifoTable(self.limits.pipe_buffer)
        self.memory_budget = MemoryBudget(self.limits.max_generated_bytes)
        self.ptys = PtyRegistry(self.processes.kill_group, self.limits.pty_buffer, self.limits.max_canon,
                                session_hangup=self._session_hangup)
        self.programs = programs if programs is not None else ProgramRegistry()
        self.net = SocketTable(self.processes, net if net is not None else NetPolicy.none(),
                               max_sockets=self.limits.max_sockets,
                               max_per_process=self.limits.max_sockets_per_process,
                               default_buffer=self.limits.socket_buffer)
        self.devfs: DevFS | None = None
        self.procfs: ProcFS | None = None
        self._extra_mounts = tuple(mounts)
        self._shm = shm
        self._nursery: trio.Nursery | None = None
        self._done = trio.Event()
        self._booted = False
        self.init: Process | None = None
        self._alarms: dict[int, tuple[trio.CancelScope, float]] = {}
        self.native: Any = None  # kernel.native.NativeLauncher: the host's, to run ELF files (issue 16)

    # ------------------------------------------------------------------ boot / shutdown
    async def boot(self, nursery: trio.Nursery) -> None:
        """Mount /dev and /proc, create the standard directories, start init (pid 1)."""
        if self._booted:
            raise KernelError("EBUSY", "kernel already booted")
        await self._mount_pseudo()
        for path, fs, read_only in self._extra_mounts:
            await self.mount_table.mount(path, fs, read_only=read_only)
        await self._make_dirs()
        await self._write_stubs()
        self._nursery = await nursery.start(self._host_nursery)
        self.net.release_later = self._release_in_background
        self.net.spawn = self._nursery.start_soon
        self.init = self.spawn_process(["init"], parent=None, env=dict(self.env), cwd="/",
                                       program=_init_main, exe="/sbin/init")
        self._booted = True
        log.debug("booted: hostname=%s", self.hostname)

    async def _mount_pseudo(self) -> None:
        self.devfs = DevFS(self.ptys, self.processes)
        await self.mount_table.mount("/dev", self.devfs, fstype="devtmpfs", source="devtmpfs")
        self.procfs = ProcFS(self.processes, self.mount_table, hostname=self.hostname,
                             budget=self.memory_budget, ptys=self.ptys,
                             net=lambda name: proc_net(self.net, name))
        await self.mount_table.mount("/proc", self.procfs, fstype="proc", source="proc")
        if self._shm is not None:
            await self.mount_table.mount("/dev/shm", self._shm, fstype="tmpfs", source="tmpfs")

    async def _make_dirs(self) -> None:
        for path in BOOT_DIRS:
            try:
                await self.vfs.mkdir(path, recursive=True, mode=BOOT_DIR_MODES.get(path, 0o777))
            except KernelError as e:
                log.debug("boot mkdir %s: %s", path, e)
        for path in ("/tmp", "/dev/shm"):  # sticky and world-writable, as on Linux
            try:
                await self.vfs.chmod(path, 0o1777)
            except KernelError as e:  # a read-only root, or /dev/shm without a memory fs
                log.debug("boot chmod %s: %s", path, e)

    async def _write_stubs(self) -> None:
        names = self.programs.names()
        paths = [f"/bin/{name}" for name in names]
        paths += [f"/usr/bin/{name}" for name in USR_BIN_STUBS if name in names]
        for path in paths:
            try:
                if await self.vfs.exists(path):
                    continue
                await self.vfs.write_file(path, STUB)
                await self.vfs.chmod(path, 0o755)
            except KernelError as e:
                log.debug("stub %s: %s", path, e)

    def _release_in_background(self, ofd: OpenFileDescription) -> None:
        """A description dropped by the socket table (a passed fd nobody received)."""
        if self._nursery is not None:
            self._nursery.start_soon(close_descriptions, [ofd])

    async def _host_nursery(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await self._done.wait()
            nursery.cancel_scope.cancel()

    async def shutdown(self, grace: float = 1.0) -> None:
        """SIGTERM everyone, wait up to *grace* s, SIGKILL survivors, then stop the tasks."""
        procs = [p for p in self.processes.processes() if p.pid != INIT_PID and p.state != "Z"]
        for p in procs:
            self.processes.send(p, S.SIGTERM)
        with trio.move_on_after(grace):
            for p in procs:
                await p.exited.wait()
        for p in self.processes.processes():
            if p.pid != INIT_PID and p.state != "Z":
                self.processes.send(p, S.SIGCONT)
                self.processes.terminate(p, S.SIGKILL)
        with trio.move_on_after(0.5):
            for p in self.processes.processes():
                if p.pid != INIT_PID:
                    await p.exited.wait()
        self._done.set()

    # ------------------------------------------------------------------ spawning
    def spawn_process(self, argv: list[str], *, parent: Process | None, env: dict[str, str],
                      cwd: str, fd_map: dict[int, int] | None = None, close_fds: bool = False,
                      pgid: int | None = None, setsid: bool = False,
                      stdio: dict[int, OpenFileDescription] | None = None,
                      program: Program | None = None, exe: str | None = None) -> Process:
        """Create a process and start its task (synchronous: cheap enough for fork bombs).

        From a process (*parent*): fds are inherited (minus close-on-exec) and *fd_map*
        ``{child_fd: parent_fd}`` places some.  From the host: *stdio* gives descriptions.
        """
        if (self._nursery is None and program is not _init_main) or self._done.is_set():
            raise KernelError("ESHUTDOWN", "kernel is not running")
        if not argv:
            raise KernelError("EINVAL", "empty argv")
        if program is None:
            exe, program = self.programs.resolve(argv[0])
        self.permissions.check_spawn(argv[0], tuple(argv[1:]), cwd)
        if parent is not None:
            src = parent.fds
            placed = {child_fd: src.get(parent_fd) for child_fd, parent_fd in (fd_map or {}).items()}  # EBADF first
            if close_fds:
                fds = FdTable(src.max_fds)
                keep = {0, 1, 2} - set(fd_map or ())
                for fd in keep:
                    ofd = src.lookup(fd)
                    if ofd is not None and not src.get_cloexec(fd):
                        fds.install_at(fd, ofd)
            else:
                fds = src.fork()
            try:
                for child_fd, ofd in placed.items():
                    fds.install_at(child_fd, ofd)  # what it displaces is still held by the parent
            except BaseException:
                for ofd in fds.clear():
                    _orphan_release(ofd, self)
                raise
        else:
            fds = FdTable(self.limits.max_fds)
            for fd, ofd in (stdio or {}).items():
                fds.install_at(fd, ofd)
        try:
            proc = self.processes.create(parent=parent if parent is not None else self.init,
                                         argv=list(argv), env=env, cwd=cwd, exe=exe or argv[0], fds=fds,
                                         uid=parent.uid if parent else self.uid,
                                         gid=parent.gid if parent else self.gid)
        except BaseException:
            for ofd in fds.clear():
                _orphan_release(ofd, self)
            raise
        if parent is None and self.init is not None and proc.ppid == INIT_PID:
            # host-started processes: own session and group, like a login
            proc.sid = proc.pgid = proc.pid
            proc.tty = None
        if setsid and proc.pid != proc.sid:
            proc.sid = proc.pgid = proc.pid
            proc.tty = None
        elif pgid is not None:
            proc.pgid = pgid or proc.pid
        if proc.tty is None and proc.sid == proc.pid:
            self._acquire_tty(proc)
        ctx = Ctx(self, proc)
        assert self._nursery is not None
        self._nursery.start_soon(self._run, proc, program, ctx)
        return proc

    def _acquire_tty(self, proc: Process) -> None:
        """A new session leader whose stdin is a free PTY slave gets it as controlling terminal."""
        ofd = proc.fds.lookup(0)
        if ofd is None or not isinstance(ofd.endpoint, PtySlaveEnd):
            return
        pty = ofd.endpoint.pty
        if pty.sid == 0:
            pty.sid = proc.sid
            pty.fg_pgid = proc.pgid
            proc.tty = pty.path

    def _session_hangup(self, sid: int) -> None:
        leader = self.processes.get(sid)
        if leader is not None and leader.state != "Z":
            self.processes.send(leader, S.SIGHUP)
            self.processes.send(leader, S.SIGCONT)

    async def _run(self, proc: Process, program: Program, ctx: Ctx) -> None:
        status: int | None = None
        message = None
        try:
            with proc.cancel_scope:
                try:
                    while True:
                        try:
                            rc = await program(ctx)
                            break
                        except ExecImage as img:
                            program, ctx = await self._exec(proc, img)
                    status = status_exited(rc if isinstance(rc, int) else 0)
                except ProcessExit as e:
                    status = status_exited(e.code)
                except KernelError as e:
                    status = status_exited(1)
                    message = f"{proc.comm}: {e}\n"
                except Exception as e:  # a program bug must not take the kernel down
                    log.debug("pid %d crashed", proc.pid, exc_info=True)
                    status = status_exited(1)
                    message = f"{proc.comm}: internal error: {_describe(e)}\n"
        finally:
            if proc.term_signal:
                status = status_signaled(proc.term_signal, proc.core)
            elif proc.cancel_scope.cancelled_caught or status is None:
                status = status_signaled(S.SIGKILL)
            with trio.CancelScope(shield=True):
                if message and not proc.term_signal:
                    _try_write(proc, 2, message.encode())
                if proc.tty is not None and proc.sid == proc.pid:
                    self._drop_ctty(proc)
                alarm = self._alarms.pop(proc.pid, None)
                if alarm is not None:
                    alarm[0].cancel()
                await close_descriptions(proc.fds.clear())
                self.processes.mark_exited(proc, status)

    async def _exec(self, proc: Process, img: ExecImage) -> tuple[Program, Ctx]:
        """execve: close close-on-exec fds, reset caught signals, new argv/env/exe."""
        fds = proc.fds
        dead = []
        for fd, ofd in fds.items():
            if fds.get_cloexec(fd):
                fds.remove(fd)
                if ofd.refs == 0:
                    dead.append(ofd)
        await close_descriptions(dead)
        proc.sig = proc.sig.inherit()
        proc.argv, proc.env, proc.exe = img.argv, img.env, img.exe
        return img.program, Ctx(self, proc)

    def set_hostname(self, name: str) -> None:
        self.hostname = name
        if self.procfs is not None:
            self.procfs.config.hostname = name

    def set_alarm(self, proc: Process, seconds: float) -> int:
        """Arm (or with 0 cancel) the process's SIGALRM timer; returns whole seconds left of the old one."""
        old = self._alarms.pop(proc.pid, None)
        left = 0
        if old is not None:
            scope, deadline = old
            scope.cancel()
            left = max(0, int(-(-(deadline - trio.current_time()) // 1)))
        if seconds > 0 and self._nursery is not None:
            scope = trio.CancelScope()
            deadline = trio.current_time() + seconds
            self._alarms[proc.pid] = (scope, deadline)

            async def fire() -> None:
                with scope:
                    await trio.sleep_until(deadline)
                    if self._alarms.get(proc.pid, (None,))[0] is scope:
                        del self._alarms[proc.pid]
                    self.processes.send(proc, S.SIGALRM)

            self._nursery.start_soon(fire)
        return left

    def _drop_ctty(self, leader: Process) -> None:
        """The controlling process exits: its terminal's foreground group gets SIGHUP."""
        tty = leader.tty
        if tty is None:
            return
        pty = self.ptys.get(int(tty.rsplit("/", 1)[1]))
        if pty is not None and pty.sid == leader.sid:
            pty.sid = 0
            if pty.fg_pgid and pty.fg_pgid != leader.pgid:
                self.processes.kill_group(pty.fg_pgid, S.SIGHUP)
                self.processes.kill_group(pty.fg_pgid, S.SIGCONT)
            pty.fg_pgid = 0

    # ------------------------------------------------------------------ host-side API
    async def _stdio(self, spec: Any, fd: int) -> tuple[OpenFileDescription | None, "HostFile | None"]:
        if spec is None:
            return None, None
        if isinstance(spec, OpenFileDescription):
            return spec, None
        if spec == PIPE:
            pipe = Pipe(self.limits.pipe_buffer)
            r = OpenFileDescription("pipe", None, O_RDONLY, object_id=pipe.object_id, endpoint=PipeReadEnd(pipe))
            w = OpenFileDescription("pipe", None, O_WRONLY, object_id=pipe.object_id, endpoint=PipeWriteEnd(pipe))
            child, host = (r, w) if fd == 0 else (w, r)
            host.refs = 1
            return child, HostFile(host)
        if spec == DEVNULL:
            ino, _ = await self.vfs.resolve("/dev/null")
            fh = await self.mount_table.open(ino, O_RDWR, Caller.root())
            return OpenFileDescription("device", "/dev/null", O_RDWR, fs=self.mount_table, fh=fh, ino=ino), None
        raise ValueError(f"bad stdio spec {spec!r}")

    async def spawn(self, argv: list[str], *, stdin: Any = DEVNULL, stdout: Any = PIPE, stderr: Any = PIPE,
                    env: dict[str, str] | None = None, cwd: str | None = None) -> "ProcessHandle":
        """Start ``argv`` from the host; ``PIPE`` gives the handle a pipe end for that stream."""
        stdio: dict[int, OpenFileDescription] = {}
        hosts: dict[int, HostFile | None] = {}
        for fd, spec in ((0, stdin), (1, stdout), (2, stderr)):
            child, host = await self._stdio(spec, fd)
            if child is not None:
                stdio[fd] = child
            hosts[fd] = host
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        wd = cwd or self.cwd
        full_env.setdefault("PWD", wd)
        try:
            proc = self.spawn_process(argv, parent=None, env=full_env, cwd=wd, stdio=stdio)
        except BaseException:
            for h in hosts.values():
                if h is not None:
                    await h.close()
            for ofd in stdio.values():
                if ofd.refs == 0:
                    await ofd.release()
            raise
        return ProcessHandle(self, proc, hosts[0], hosts[1], hosts[2])

    async def run(self, argv: list[str], input: bytes | str | None = None, *,
                  env: dict[str, str] | None = None, cwd: str | None = None,
                  timeout: float | None = None) -> "Completed":
        """Run to completion, feeding *input* and collecting stdout/stderr."""
        h = await self.spawn(argv, stdin=PIPE if input is not None else DEVNULL, env=env, cwd=cwd)
        out: list[bytes] = []
        err: list[bytes] = []

        async def feed() -> None:
            assert h.stdin is not None and input is not None  # started only with input
            try:
                await h.stdin.write_all(input.encode() if isinstance(input, str) else input)
            except KernelError:
                pass
            await h.stdin.close()

        try:
            with trio.fail_after(timeout) if timeout else nullcontext():
                async with trio.open_nursery() as n:
                    if input is not None:
                        n.start_soon(feed)
                    n.start_soon(_drain, h.stdout, out)
                    n.start_soon(_drain, h.stderr, err)
                status = await h.wait()
        except trio.TooSlowError:
            h.kill(S.SIGKILL)
            with trio.CancelScope(shield=True):
                await h.aclose()
            raise KernelError("ETIMEDOUT", f"{argv[0]} timed out") from None
        return Completed(status, b"".join(out), b"".join(err))

    async def open_terminal(self, argv: list[str], *, rows: int = 24, cols: int = 80,
                            env: dict[str, str] | None = None, cwd: str | None = None) -> "TerminalHandle":
        """Start *argv* as a session leader on a new PTY (its controlling terminal, in the
        foreground); the handle holds the master: write = keyboard input, read = screen."""
        pty = self.ptys.open_pty()
        master = OpenFileDescription("pty", "/dev/ptmx", O_RDWR, object_id=pty.index, endpoint=PtyMasterEnd(pty))
        master.refs = 1
        slave = OpenFileDescription("pty", pty.path, O_RDWR, object_id=pty.index, endpoint=PtySlaveEnd(pty))
        pty.winsize.rows, pty.winsize.cols = rows, cols
        full_env = dict(self.env)
        full_env.update({"COLUMNS": str(cols), "LINES": str(rows)})
        if env:
            full_env.update(env)
        wd = cwd or self.cwd
        full_env.setdefault("PWD", wd)
        try:
            proc = self.spawn_process(argv, parent=None, env=full_env, cwd=wd,
                                      stdio={0: slave, 1: slave, 2: slave})
        except BaseException:
            await HostFile(master).close()
            if slave.refs == 0:
                await slave.release()
            raise
        return TerminalHandle(self, proc, HostFile(master), pty)

    async def install_program(self, name: str, program: Program) -> None:
        """Register a program after boot and give it its ``/bin/<name>`` stub."""
        self.programs.register(name, program)
        path = f"/bin/{name}"
        if not await self.vfs.exists(path):
            await self.vfs.write_file(path, STUB)
            await self.vfs.chmod(path, 0o755)

    # ------------------------------------------------------------------ convenience
    def kill(self, pid: int, sig: int = S.SIGTERM) -> None:
        self.processes.kill(None, pid, sig)

    async def mount(self, path: str, fs: FileSystem, *, read_only: bool = False, **kw: Any) -> None:
        await self.mount_table.mount(path, fs, read_only=read_only, **kw)

    async def unmount(self, path: str) -> None:
        await self.mount_table.unmount(path)

    def pty_names(self) -> list[int]:
        return self.ptys.pty_names()


@dataclass(slots=True)
class Completed:
    status: int
    stdout: bytes
    stderr: bytes

    @property
    def returncode(self) -> int:
        """Like subprocess: the exit code, or minus the signal number."""
        return WEXITSTATUS(self.status) if WIFEXITED(self.status) else -WTERMSIG(self.status)

    @property
    def shell_code(self) -> int:
        return shell_code(self.status)


class HostFile:
    """A pipe or PTY end held by host code (no process, so no signals: plain blocking)."""

    def __init__(self, ofd: OpenFileDescription) -> None:
        self.ofd = ofd
        self.closed = False

    async def read(self, n: int = 65536) -> bytes:
        """Up to *n* bytes; ``b""`` at end of file (EIO from a hung-up PTY master reads as EOF)."""
        ep = self.ofd.endpoint
        while True:
            try:
                data = ep.try_read(n)
            except KernelError as e:
                if e.code == "EIO":
                    return b""
                raise
            if data is not None:
                return data
            await ep.waitable.wait()

    async def read_all(self) -> bytes:
        parts: list[bytes] = []
        while True:
            d = await self.read()
            if not d:
                return b"".join(parts)
            parts.append(d)

    async def write(self, data: bytes | bytearray | memoryview | str) -> int:
        if isinstance(data, str):
            data = data.encode()
        ep = self.ofd.endpoint
        while True:
            k = ep.try_write(data)
            if k is not None:
                return k
            await ep.waitable.wait()

    async def write_all(self, data: bytes | bytearray | memoryview | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += await self.write(view[done:] if done else data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.ofd.refs -= 1
            if self.ofd.refs == 0:
                await self.ofd.release()


class ProcessHandle:
    """A process started from the host (``Kernel.spawn``)."""

    def __init__(self, kernel: Kernel, proc: Process, stdin: HostFile | None,
                 stdout: HostFile | None, stderr: HostFile | None) -> None:
        self.kernel = kernel
        self.proc = proc
        self.pid = proc.pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    async def wait(self) -> int:
        """The wait(2) status once the process exited (init reaps it)."""
        await self.proc.exited.wait()
        assert self.proc.exit_status is not None
        return self.proc.exit_status

    def kill(self, sig: int = S.SIGTERM) -> None:
        self.kernel.processes.send(self.proc, sig)

    async def aclose(self) -> None:
        for h in (self.stdin, self.stdout, self.stderr):
            if h is not None:
                await h.close()


class TerminalHandle(ProcessHandle):
    """A session on a PTY (``Kernel.open_terminal``): write keystrokes, read the screen."""

    def __init__(self, kernel: Kernel, proc: Process, master: HostFile, pty: Pty) -> None:
        super().__init__(kernel, proc, None, None, None)
        self.master = master
        self.pty = pty

    async def write(self, data: bytes | str) -> None:
        await self.master.write_all(data)

    async def read(self, n: int = 4096) -> bytes:
        return await self.master.read(n)

    def resize(self, rows: int, cols: int) -> None:
        self.pty.set_winsize(rows, cols)

    async def close(self) -> None:
        await self.master.close()


async def _drain(h: HostFile | None, out: list[bytes]) -> None:
    if h is None:
        return
    try:
        while True:
            d = await h.read()
            if not d:
                break
            out.append(d)
    finally:
        await h.close()


def _describe(exc: Exception) -> str:
    """A crash report for the sandbox's stderr: a host OSError loses its file names."""
    if isinstance(exc, OSError):
        return str(KernelError.from_os_error(exc))
    return f"{type(exc).__name__}: {exc}"


def _try_write(proc: Process, fd: int, data: bytes) -> None:
    ofd = proc.fds.lookup(fd)
    if ofd is None or ofd.endpoint is None:
        return
    try:
        ofd.endpoint.try_write(data)
    except KernelError:
        pass


def _orphan_release(ofd: OpenFileDescription, kernel: Kernel) -> None:
    """Release a description from sync code (spawn failure): endpoints close at once,
    fs handles are released in the background."""
    if ofd.endpoint is not None or kernel._nursery is None:
        if ofd.endpoint is not None:
            ofd.endpoint.close()
        return
    kernel._nursery.start_soon(ofd.release)


async def _init_main(ctx: Ctx) -> int:
    """pid 1: reap every child (orphans are re-parented here) forever."""
    proc = ctx.proc
    while True:
        try:
            await ctx.waitpid(-1, 0)
        except KernelError as e:
            if e.code != "ECHILD":
                raise
            await ctx._block(proc.wait_lot.park)
