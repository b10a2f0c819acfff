"""The embedding API: run shell scripts in a sandbox from Python (AI-agent frameworks run many
short ones).

    with vfsfuse.Sandbox("mystore") as sb:          # or a mount point, or None: memory
        sb.write_file("/src/a.py", "# TODO: x\\n")
        r = sb.run("grep -r TODO /src | wc -l")
        r.stdout, r.stderr, r.exit_code

Each ``run`` is a fresh ``bash -c`` (no variables, functions or working directory survive
it; files do, they are the filesystem); ``session()`` gives one shell that keeps its state
across calls.  Per-call limits: ``timeout`` (seconds, exit 124) and ``max_output`` (bytes of
stdout + stderr, exit 125); each hit adds one line to stderr.  A script sees the sandbox's
environment, never this process's.

What *target* names decides where the kernel runs: a mount point (or a mounted store) is
reached through its daemon's control socket; an unmounted store or ``None`` (a memory store,
gone at close) gets a kernel booted in this process, in a thread of its own.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from kernel.errors import KernelError
from kernel.limits import Limits
from vfsfuse.daemon import control

__all__ = ["Sandbox", "Session", "Result", "Limits", "MEMORY"]

MEMORY = ":memory:"
T = TypeVar("T")


@dataclass
class Result:
    """How one script ended."""

    stdout_bytes: bytes
    stderr_bytes: bytes
    exit_code: int
    timed_out: bool = False
    output_limited: bool = False

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class _Collect:
    """The emit callback of a run: gathers stdout and stderr."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    async def emit(self, stream: int, data: bytes) -> None:
        (self.out if stream == 1 else self.err).append(data)

    def result(self, exit_code: int, timed_out: bool = False, output_limited: bool = False,
               note: bytes = b"") -> Result:
        if note:
            self.err.append(note)
        return Result(b"".join(self.out), b"".join(self.err), exit_code, timed_out, output_limited)


# ------------------------------------------------------------------ backends

class _Local:
    """A kernel in this process: a thread runs its trio loop; calls cross with ``from_thread``."""

    def __init__(self, store: str | None, limits: Any = None, net: Any = None) -> None:
        self.store = store
        self.limits = limits
        self.net = net
        self._token: Any = None
        self._stop: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.kernel: Any = None
        self._thread = threading.Thread(target=self._main, name="vfsfuse-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _main(self) -> None:
        import trio

        from vfsfuse.daemon.sessions import local_kernel

        async def main() -> None:
            async with local_kernel(self.store, limits=self.limits, net=self.net) as kernel:
                self.kernel = kernel
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.set()
                await self._stop.wait()

        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
        finally:
            self._ready.set()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        import trio

        if self._token is None or not self._thread.is_alive():
            raise KernelError("ESHUTDOWN", "the sandbox is closed")
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def run(self, script: str, *, timeout: float | None, max_output: int | None,
            env: dict[str, str] | None, cwd: str | None, input: bytes | None) -> Result:
        from vfsfuse.daemon import sessions

        limits = sessions.RunLimits(timeout, max_output)
        sink = _Collect()

        async def go() -> Result:
            o = await sessions.run_script(self.kernel, script, sink.emit, env=env, cwd=cwd,
                                          limits=limits, stdin=input)
            return sink.result(o.exit_code, o.timed_out, o.output_limited, sessions.limit_message(o, limits))

        return self.call(go)

    def read_file(self, path: str) -> bytes:
        async def go() -> bytes:
            return bytes(await self.kernel.vfs.read_file(path))

        return self.call(go)

    def write_file(self, path: str, data: bytes, mode: int | None) -> None:
        async def go() -> None:
            await self.kernel.vfs.write_file(path, data)
            if mode is not None:
                await self.kernel.vfs.chmod(path, mode)

        self.call(go)

    def session(self, env: dict[str, str] | None, cwd: str | None) -> "_LocalSession":
        from vfsfuse.daemon.sessions import ShellSession

        sess = ShellSession(self.kernel)
        self.call(lambda: sess.start(env=env, cwd=cwd))
        return _LocalSession(self, sess)

    def close(self) -> None:
        import trio

        if self._token is not None and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join()
        self._token = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


class _LocalSession:
    def __init__(self, local: _Local, sess: Any) -> None:
        self.local = local
        self.sess = sess

    def run(self, script: str, timeout: float | None, max_output: int | None) -> Result:
        from vfsfuse.daemon import sessions

        limits = sessions.RunLimits(timeout, max_output)
        sink = _Collect()

        async def go() -> Result:
            o = await self.sess.run(script, sink.emit, limits)
            return sink.result(o.exit_code, o.timed_out, o.output_limited, sessions.limit_message(o, limits))

        return self.local.call(go)

    @property
    def ended(self) -> bool:
        return bool(self.sess.ended)

    def close(self) -> None:
        try:
            self.local.call(self.sess.close)
        except KernelError:
            pass


class _Remote:
    """A running mount: every call is a request on its daemon's control socket."""

    def __init__(self, mountpoint: str, store: str | None = None) -> None:
        self.path = control.socket_path(store, mountpoint) if store else control.socket_for_mount(mountpoint)

    def _request(self, req: dict[str, Any], body: bytes | None = None,
                 stdin: bytes | None = None) -> tuple[_Collect, dict[str, Any], bytes]:
        client = control.ControlClient.connect(self.path)
        try:
            client.send_json(req)
            if body is not None:
                client.send(control.DATA, body)
            if stdin is not None:
                if stdin:
                    client.send(control.STDIN, stdin)
                client.send(control.STDIN, b"")
            return _read_reply(client)
        finally:
            client.close()

    def run(self, script: str, *, timeout: float | None, max_output: int | None,
            env: dict[str, str] | None, cwd: str | None, input: bytes | None) -> Result:
        sink, msg, _ = self._request({"op": "exec", "script": script, "env": env or {}, "cwd": cwd,
                                      "timeout": timeout, "max_output": max_output,
                                      "stdin": input is not None}, stdin=input)
        return sink.result(int(msg["exit"]), bool(msg.get("timed_out")), bool(msg.get("output_limited")))

    def read_file(self, path: str) -> bytes:
        return self._request({"op": "read_file", "path": path})[2]

    def write_file(self, path: str, data: bytes, mode: int | None) -> None:
        self._request({"op": "write_file", "path": path, "mode": mode}, body=data)

    def session(self, env: dict[str, str] | None, cwd: str | None) -> "_RemoteSession":
        client = control.ControlClient.connect(self.path)
        client.send_json({"op": "session", "env": env or {}, "cwd": cwd})
        got = client.recv()
        msg = json.loads(got[1]) if got is not None and got[0] == control.JSON else {}
        if not msg.get("ready"):
            client.close()
            raise control.error_of(msg) or KernelError("ECONNRESET", "the daemon closed the connection")
        return _RemoteSession(client)

    def close(self) -> None:
        pass


class _RemoteSession:
    def __init__(self, client: control.ControlClient) -> None:
        self.client = client
        self.ended = False

    def run(self, script: str, timeout: float | None, max_output: int | None) -> Result:
        self.client.send_json({"op": "run", "script": script, "timeout": timeout, "max_output": max_output})
        sink, msg, _ = _read_reply(self.client)
        self.ended = bool(msg.get("ended"))
        return sink.result(int(msg["exit"]), bool(msg.get("timed_out")), bool(msg.get("output_limited")))

    def close(self) -> None:
        self.client.close()


def _read_reply(client: control.ControlClient) -> tuple[_Collect, dict[str, Any], bytes]:
    """Frames up to the daemon's final ``exit`` (or ``error``) message."""
    sink = _Collect()
    data: list[bytes] = []
    while True:
        got = client.recv()
        if got is None:
            raise KernelError("ECONNRESET", "the daemon closed the connection")
        kind, payload = got
        if kind == control.STDOUT:
            sink.out.append(payload)
        elif kind == control.STDERR:
            sink.err.append(payload)
        elif kind == control.DATA:
            data.append(payload)
        elif kind == control.JSON:
            msg = json.loads(payload)
            err = control.error_of(msg)
            if err is not None:
                raise err
            if "exit" in msg:
                return sink, msg, b"".join(data)


# ------------------------------------------------------------------ the API

class Session:
    """One shell kept across ``run`` calls (variables, functions, cwd, options); stdin is empty.
    ``exit`` in a script ends it (``ended``); later calls raise ESRCH."""

    def __init__(self, impl: _LocalSession | _RemoteSession, sandbox: "Sandbox") -> None:
        self._impl = impl
        self._sandbox = sandbox

    def run(self, script: str, *, timeout: float | None = None, max_output: int | None = None) -> Result:
        if self._impl.ended:
            raise KernelError("ESRCH", "the session's shell has exited")
        return self._impl.run(script, _pick(timeout, self._sandbox.timeout),
                              _pick(max_output, self._sandbox.max_output))

    @property
    def ended(self) -> bool:
        return self._impl.ended

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sandbox:
    """A sandbox to run scripts in (see the module docstring); use it as a context manager.

    *target*: a mount point, a store directory (mounted or not), or None / ``":memory:"``.
    *timeout* and *max_output* are the default limits of each call (None: unlimited);
    *limits* (``kernel.limits.Limits``) those of an in-process kernel: processes, fds, shell
    loop iterations, commands, recursion depth, ...; *net* (``"none"``, the default,
    ``"loopback"`` or ``"allow"``) and *allow* (its rules, as ``vfsfuse mount --allow``) the
    network of an in-process kernel (a mount's policy is its daemon's)."""

    def __init__(self, target: str | os.PathLike[str] | None = None, *, timeout: float | None = None,
                 max_output: int | None = None, env: dict[str, str] | None = None,
                 limits: Limits | None = None, net: str | None = None, allow: list[str] | None = None) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self.env = dict(env or {})
        self._impl = _open_backend(target, limits, _net_policy(net, allow))
        self._sessions: list[Session] = []

    def run(self, script: str, *, timeout: float | None = None, max_output: int | None = None,
            env: dict[str, str] | None = None, cwd: str | None = None,
            input: bytes | str | None = None) -> Result:
        """Run *script* in a fresh ``bash -c``; *input* is its stdin (default: empty)."""
        full_env = {**self.env, **(env or {})}
        data = input.encode() if isinstance(input, str) else input
        return self._impl.run(script, timeout=_pick(timeout, self.timeout),
                              max_output=_pick(max_output, self.max_output),
                              env=full_env, cwd=cwd, input=data)

    def session(self, *, env: dict[str, str] | None = None, cwd: str | None = None) -> Session:
        """A shell whose state persists across its ``run`` calls."""
        s = Session(self._impl.session({**self.env, **(env or {})}, cwd), self)
        self._sessions.append(s)
        return s

    def read_file(self, path: str) -> bytes:
        """The bytes of *path* inside the sandbox."""
        return self._impl.read_file(path)

    def write_file(self, path: str, data: bytes | str, *, mode: int | None = None) -> None:
        """Create or replace *path* inside the sandbox (its directory must exist)."""
        self._impl.write_file(path, data.encode() if isinstance(data, str) else bytes(data), mode)

    def close(self) -> None:
        """End the sessions; an in-process kernel is shut down and its store flushed and closed."""
        for s in self._sessions:
            s.close()
        self._sessions.clear()
        self._impl.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remote(mountpoint: str, limits: Limits | None, store: str | None = None, net: Any = None) -> _Remote:
    if net is not None:
        raise KernelError("EINVAL", f"{mountpoint} is mounted: its network policy is the daemon's "
                                    "(vfsfuse mount --net); net= is for a sandbox run in process")
    if limits is not None:
        raise KernelError("EINVAL", f"{mountpoint} is mounted: its kernel's limits are the daemon's "
                                    "(limits= is for a store or memory sandbox run in process)")
    return _Remote(mountpoint, store)


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _net_policy(mode: str | None, allow: list[str] | None) -> Any:
    """The in-process kernel's network policy; None when neither was given (the default)."""
    if mode is None and not allow:
        return None
    from kernel.net.policy import NetPolicy

    if allow and mode != "allow":
        raise KernelError("EINVAL", "allow= rules need net='allow'")
    try:
        return NetPolicy.parse(mode or "none", list(allow or ()))
    except ValueError as err:
        raise KernelError("EINVAL", str(err)) from None


def _open_backend(target: str | os.PathLike[str] | None, limits: Limits | None = None,
                  net: Any = None) -> _Local | _Remote:
    """A mount point or a mounted store: its daemon; an unmounted store or memory: in process.
    *limits* and *net* are the in-process kernel's (a mount's kernel has its daemon's)."""
    from vfsfuse.daemon.config import DaemonRecord
    from vfsfuse.storage.fsck import lock_holder
    from vfsfuse.storage.store import is_store

    if target is None or str(target) == MEMORY:
        return _Local(None, limits, net)
    path = os.path.abspath(os.fspath(target))
    if is_store(path):
        holder = lock_holder(path)
        if holder is not None and holder[1]:
            return _remote(holder[1], limits, store=path, net=net)
        return _Local(path, limits, net)
    if DaemonRecord.load(path) is not None:
        return _remote(path, limits, net=net)
    raise KernelError("EINVAL", f"{path} is neither a store nor a vfsfuse mount point")
