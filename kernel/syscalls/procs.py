"""Process calls: identity and environment, spawn, exec, wait, exit, kill, groups, sessions, sleep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.native import ELF_MAGIC, NO_LAUNCHER, native_program
from kernel.process import WNOHANG
from kernel.programs.registry import STUB, Program
from kernel.syscalls._base import (
    X_OK,
    CtxBase,
    ExecImage,
    ProcessExit,
)

if TYPE_CHECKING:
    from kernel.fs import Attr


class ProcCalls(CtxBase):
    """proc system calls (mixed into ``Ctx``)."""

    if TYPE_CHECKING:  # from PathCalls, mixed into Ctx beside this class
        async def stat(self, path: str) -> Attr: ...
        async def access(self, path: str, mode: int = ...) -> None: ...

    # ---------------------------------------------------------------- identity, env
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def argv(self) -> list[str]:
        return self.proc.argv

    @property
    def environ(self) -> dict[str, str]:
        return self.proc.env

    def getenv(self, key: str, default: str | None = None) -> str | None:
        return self.proc.env.get(key, default)

    def setenv(self, key: str, value: str) -> None:
        if not key or "=" in key:
            raise KernelError("EINVAL", f"invalid environment name {key!r}")
        self.proc.env[key] = value

    def unsetenv(self, key: str) -> None:
        self.proc.env.pop(key, None)

    def getpid(self) -> int:
        return self.proc.pid

    def getppid(self) -> int:
        return self.proc.ppid

    def getuid(self) -> int:
        return self.proc.uid

    def getgid(self) -> int:
        return self.proc.gid

    def getpgid(self, pid: int = 0) -> int:
        return (self.proc if pid in (0, self.proc.pid) else self._table.lookup(pid)).pgid

    def getsid(self, pid: int = 0) -> int:
        return (self.proc if pid in (0, self.proc.pid) else self._table.lookup(pid)).sid

    def getpriority(self) -> int:
        """This process's niceness (getpriority(PRIO_PROCESS, 0), as a nice value)."""
        return self.proc.nice

    def setpriority(self, nice: int) -> None:
        """setpriority(PRIO_PROCESS, 0, nice): clamped to -20..19; only root may lower it,
        as without CAP_SYS_NICE on Linux (EACCES)."""
        nice = max(-20, min(19, nice))
        if nice < self.proc.nice and self.proc.uid != 0:
            raise KernelError("EACCES", "only root may lower a niceness")
        self.proc.nice = nice

    def umask(self, mask: int | None = None) -> int:
        old = self.proc.umask
        if mask is not None:
            self.proc.umask = mask & 0o777
            self._caller.umask = self.proc.umask
        return old

    # ---------------------------------------------------------------- processes
    async def spawn(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                    stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
                    fds: dict[int, int] | None = None, close_fds: bool = False,
                    pgid: int | None = None, setsid: bool = False, path: str | None = None) -> int:
        """posix_spawn: run program *path* (default ``argv[0]``) as a child; returns its pid.
        With *path*, ``argv[0]`` is only the name the program sees (a shell passes the word
        the user typed, ``ps``, and the path it found, ``/bin/ps``).

        The child inherits every fd not marked close-on-exec (only 0-2 and *fds* with
        *close_fds*); ``stdin``/``stdout``/``stderr`` and ``fds={child_fd: parent_fd}``
        place parent fds in the child.  ``pgid=0`` puts the child in a new group of its
        own, ``pgid=N`` into group N; ``setsid`` makes it a session leader.
        """
        await self._enter()
        mapping = dict(fds or {})
        for child_fd, parent_fd in ((0, stdin), (1, stdout), (2, stderr)):
            if parent_fd is not None:
                mapping[child_fd] = parent_fd
        if not argv:
            raise KernelError("EINVAL", "empty argv")
        exe, program, argv = await self._image(list(argv), path=path)
        proc = self.kernel.spawn_process(
            argv, parent=self.proc, env=dict(self.proc.env) if env is None else env,
            cwd=self._abs(cwd) if cwd is not None else self.proc.cwd,
            fd_map=mapping, close_fds=close_fds, pgid=pgid, setsid=setsid, program=program, exe=exe)
        return proc.pid

    async def fork(self, child: Callable[[Any], Awaitable[int | None]], *,
                   argv: list[str] | None = None, stdin: int | None = None, stdout: int | None = None,
                   stderr: int | None = None, fds: dict[int, int] | None = None,
                   pgid: int | None = None, setsid: bool = False) -> int:
        """fork(2) for in-kernel programs: a child process (own pid, a copy of the fd table, the
        same cwd, environment and umask, caught signals reset and ignored ones kept) that runs
        *child* with its own context.  A shell forks this way for subshells, pipeline stages and
        ``&``; *child* is a closure over a copy of the shell's state, as fork copies memory."""
        await self._enter()
        mapping = dict(fds or {})
        for child_fd, parent_fd in ((0, stdin), (1, stdout), (2, stderr)):
            if parent_fd is not None:
                mapping[child_fd] = parent_fd
        p = self.proc
        proc = self.kernel.spawn_process(
            list(argv or p.argv), parent=p, env=dict(p.env), cwd=p.cwd, fd_map=mapping,
            pgid=pgid, setsid=setsid, program=child, exe=p.exe)
        return proc.pid

    async def _image(self, argv: list[str], depth: int = 0, path: str | None = None) -> tuple[str, Program, list[str]]:
        """What ``execve(argv[0])`` runs.  A bare name is a registered program.  A path is looked
        up in the VFS as Linux does (ENOENT; EACCES without exec permission or for a directory)
        and its first bytes decide: a kernel command stub runs the registered program of that
        name; ``#!interpreter [arg]`` runs the interpreter with the script's path (nested up to
        4 levels, ELOOP beyond); an ELF file runs as a real process through the host's
        launcher (``kernel/native.py``; ENOEXEC saying so without one); anything else is ENOEXEC
        (a shell then runs the file as a
        script itself, as POSIX says)."""
        command = path if path is not None else argv[0]
        if "/" not in command:
            exe, program = self.kernel.programs.resolve(command)
            return exe, program, argv
        if depth > 4:
            raise KernelError("ELOOP", f"too many levels of interpreters: {command}")
        path = self._abs(command)
        attr = await self.stat(path)
        if attr.is_dir:
            raise KernelError("EACCES", f"is a directory: {command}")
        if not attr.is_reg:
            raise KernelError("EACCES", f"permission denied: {command}")
        await self.access(path, X_OK)
        head = await self._vfs.pread(path, 0, 256)
        if head.startswith(STUB):
            name = path.rsplit("/", 1)[1]
            try:
                program = self.kernel.programs.get(name)
            except KeyError:
                raise KernelError("ENOEXEC", f"{command}: no such kernel program") from None
            return path, program, argv
        if head.startswith(b"#!"):
            line = head[2:].split(b"\n", 1)[0].strip().decode("utf-8", "replace")
            if not line:
                raise KernelError("ENOEXEC", f"{command}: empty interpreter line")
            interp, _, arg = line.partition(" ")
            arg = arg.strip()
            new_argv = [interp] + ([arg] if arg else []) + [command] + argv[1:]
            _, program, resolved = await self._image(new_argv, depth + 1)
            return path, program, resolved
        if head.startswith(ELF_MAGIC):
            if self.kernel.native is None:
                raise KernelError("ENOEXEC", f"{command}: {NO_LAUNCHER}")
            return path, native_program(path), argv
        raise KernelError("ENOEXEC", f"exec format error: {command}")

    async def waitpid(self, pid: int = -1, options: int = 0) -> tuple[int, int]:
        """(pid, wait status); (0, 0) with WNOHANG when nothing changed; ECHILD without children."""
        await self._enter()
        table = self._table
        p = self.proc
        while True:
            res = table.try_wait(p, pid, options)
            if res is not None:
                return res
            if options & WNOHANG:
                return 0, 0
            await self._wait(p.wait_lot.park)

    async def execve(self, argv: list[str], env: dict[str, str] | None = None, *, path: str | None = None) -> None:
        """Replace this process's program (same pid, fds minus close-on-exec, caught signals
        reset to default); only returns by raising (ENOENT, EACCES) when *argv* cannot run.
        *path*: the program to run when ``argv[0]`` is only its name (as in ``spawn``)."""
        await self._enter()
        if not argv:
            raise KernelError("EINVAL", "empty argv")
        self._perm.check_spawn(path if path is not None else argv[0], tuple(argv[1:]), self.proc.cwd)
        exe, program, argv = await self._image(list(argv), path=path)
        raise ExecImage(exe, program, argv, dict(self.proc.env if env is None else env))

    def gethostname(self) -> str:
        return self.kernel.hostname

    async def sethostname(self, name: str) -> None:
        if self.proc.uid != 0:
            raise KernelError("EPERM", "only root may set the hostname")
        if not name or len(name.encode()) > 64:
            raise KernelError("EINVAL", "invalid hostname")
        self.kernel.set_hostname(name)

    async def alarm(self, seconds: float) -> int:
        """alarm(2): SIGALRM after *seconds* (0 cancels); returns the old alarm's seconds left."""
        return self.kernel.set_alarm(self.proc, seconds)

    async def wait(self) -> tuple[int, int]:
        return await self.waitpid(-1, 0)

    def exit(self, code: int = 0) -> None:
        """End the process with *code* (raises ProcessExit, which the kernel catches)."""
        raise ProcessExit(code & 0xFF)

    async def kill(self, pid: int, sig: int = S.SIGTERM) -> None:
        self._table.kill(self.proc, pid, sig)
        if self.proc.sig.pending or self.proc.state == "T" or self.proc.term_signal:
            await self._enter()
            if self.proc.term_signal:
                await trio.lowlevel.checkpoint()

    async def setpgid(self, pid: int = 0, pgid: int = 0) -> None:
        self._table.setpgid(self.proc, pid, pgid)

    async def setsid(self) -> int:
        return self._table.setsid(self.proc)

    async def sleep(self, seconds: float) -> None:
        """nanosleep: EINTR when a handled signal arrives (never restarted)."""
        await self._enter()
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            await self._wait(trio.sleep_until, deadline, restartable=False)

    async def pause(self) -> None:
        """Sleep until a signal handler runs; always ends with EINTR (or termination)."""
        await self._enter()
        while True:
            await self._wait(trio.sleep_forever, restartable=False)

    async def sched_yield(self) -> None:
        await self._enter()
        await trio.lowlevel.checkpoint()
