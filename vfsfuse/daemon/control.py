"""The mount daemon's control socket: how ``vfsfuse shell/exec`` and the Python API reach the
kernel of a running mount.

Where: ``STORE/run/control.sock`` (memory mounts: beside their runtime record, in the 0700
runtime directory), mode 0600, and every connection's peer credentials (``SO_PEERCRED``) are
checked: only the user who mounted, or root, is served.

Wire format: frames of ``type (1 byte) + length (4 bytes, big-endian) + payload``.

- ``J``: a JSON object.  The client's first frame is the request: ``{"op": "exec", "script",
  "env", "cwd", "timeout", "max_output", "limits", "stdin"}``, ``{"op": "shell", "rows", "cols",
  "env", "cwd", "limits"}``, ``{"op": "session", "env", "cwd", "limits"}`` (then ``{"op": "run", "script", "timeout",
  "max_output"}`` frames, one after another), ``{"op": "read_file", "path"}``, ``{"op":
  "write_file", "path", "mode"}`` (followed by one ``D`` frame).  Later ``J`` frames from the
  client: ``{"op": "resize", "rows", "cols"}``.  From the daemon: ``{"exit": N, ...}`` ends a run,
  ``{"error": "CODE: message"}`` refuses one.
- ``0``: stdin bytes (empty: end of input); ``1``/``2``: stdout/stderr bytes (a terminal's
  screen is ``1``); ``D``: file contents.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

import trio

from kernel.errors import KernelError, unwrap_group
from vfsfuse.daemon.config import DaemonRecord, record_path, store_run_dir

if TYPE_CHECKING:  # the client side (CLI, API over a mount) does not load the kernel
    from kernel.kernel import Kernel
    from vfsfuse.daemon import sessions

log = logging.getLogger("vfsfuse.daemon.control")

SOCKET_NAME = "control.sock"
HEADER = struct.Struct(">BI")
MAX_FRAME = 1 << 30
JSON, STDIN, STDOUT, STDERR, DATA = b"J"[0], b"0"[0], b"1"[0], b"2"[0], b"D"[0]
_SUN_PATH_MAX = 107
MOUNT_IMPORT_BATCH = 500  # import members applied per pause of the event loop (~20 ms)


def socket_path(store: str | None, mountpoint: str) -> str:
    """The control socket of the mount of *store* (None: a memory mount) on *mountpoint*."""
    if store is not None:
        return os.path.join(store_run_dir(store), SOCKET_NAME)
    return os.path.splitext(record_path(mountpoint))[0] + ".sock"


def socket_for_mount(mountpoint: str) -> str:
    """The control socket of the daemon serving *mountpoint* (found through its runtime record)."""
    mnt = os.path.abspath(mountpoint)
    rec = DaemonRecord.load(mnt)
    if rec is None:
        raise KernelError("ENOENT", f"{mnt} is not a vfsfuse mount (no daemon is known for it)")
    if rec.state != "running":
        raise KernelError("ENOTCONN", f"the daemon of {mnt} is not running (state: {rec.state})")
    return socket_path(rec.store, mnt)


def _short_address(path: str) -> tuple[str, int | None]:
    """A path for bind/connect that fits sun_path: long ones go through ``/proc/self/fd``."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path, None
    dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{dfd}/{os.path.basename(path)}", dfd


def peer_allowed(sock: socket.socket | Any, owner: int) -> tuple[bool, int]:
    """``(allowed, uid)``: the peer is *owner* or root."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (owner, 0), uid


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def jframe(obj: dict[str, Any]) -> bytes:
    return frame(JSON, json.dumps(obj).encode())


# ------------------------------------------------------------------ daemon side

class _Conn:
    """One client connection: frame reader and writer over a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.send_lock = trio.Lock()

    async def recv(self) -> tuple[int, bytes] | None:
        while True:
            if len(self.buf) >= HEADER.size:
                kind, n = HEADER.unpack_from(self.buf)
                if n > MAX_FRAME:
                    raise KernelError("EMSGSIZE", "control frame too large")
                if len(self.buf) >= HEADER.size + n:
                    payload = bytes(self.buf[HEADER.size:HEADER.size + n])
                    del self.buf[:HEADER.size + n]
                    return kind, payload
            d = await self.stream.receive_some(65536)
            if not d:
                return None
            self.buf += d

    async def send(self, kind: int, payload: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(frame(kind, payload))

    async def send_json(self, obj: dict[str, Any]) -> None:
        await self.send(JSON, json.dumps(obj).encode())

    async def emit(self, stream: int, data: bytes) -> None:
        await self.send(STDOUT if stream == 1 else STDERR, data)


def _limits(req: dict[str, Any], kernel: Kernel) -> "sessions.RunLimits":
    from vfsfuse.daemon import sessions

    t, m = req.get("timeout"), req.get("max_output")
    return sessions.RunLimits(float(t) if t is not None else None, int(m) if m is not None else None,
                              _command_limits(req, kernel))


def _command_limits(req: dict[str, Any], kernel: Kernel) -> Any:
    """The request's ``limits`` (``{name: number or null}``): the kernel's own, lowered for
    this run or session; the daemon's limits are the ceiling (a session may not raise them)."""
    from kernel.limits import lowered

    values = req.get("limits")
    if not values:
        return None
    if not isinstance(values, dict):
        raise KernelError("EINVAL", "limits must be an object")
    return lowered(kernel.limits, {str(k): v for k, v in values.items()})


def _env(req: dict[str, Any]) -> dict[str, str]:
    env = req.get("env") or {}
    if not isinstance(env, dict):
        raise KernelError("EINVAL", "env must be an object")
    return {str(k): str(v) for k, v in env.items()}


async def handle_connection(kernel: Kernel, stream: trio.abc.Stream, *, cwd: str | None = None) -> None:
    """Serve one client until it hangs up; every failure is an ``error`` frame, never a crash.
    *cwd* (already resolved inside) replaces the request's."""
    conn = _Conn(stream)
    try:
        first = await conn.recv()
        if first is None:
            return
        kind, payload = first
        if kind != JSON:
            raise KernelError("EPROTO", "the first frame must be a request")
        req = json.loads(payload)
        if cwd is not None:
            req["cwd"] = cwd
        op = req.get("op")
        if op == "exec":
            await _exec(kernel, conn, req)
        elif op == "shell":
            await _shell(kernel, conn, req)
        elif op == "session":
            await _session(kernel, conn, req)
        elif op == "read_file":
            data = await kernel.vfs.read_file(str(req["path"]))
            await conn.send(DATA, bytes(data))
            await conn.send_json({"exit": 0})
        elif op == "import":
            await _import(kernel, conn, req)
        elif op == "write_file":
            body = await conn.recv()
            if body is None or body[0] != DATA:
                raise KernelError("EPROTO", "write_file needs a data frame")
            await kernel.vfs.write_file(str(req["path"]), body[1])
            if req.get("mode") is not None:
                await kernel.vfs.chmod(str(req["path"]), int(req["mode"]))
            await conn.send_json({"exit": 0})
        else:
            raise KernelError("EINVAL", f"unknown request {op!r}")
    except Exception as exc:  # noqa: BLE001 - one connection must never take the daemon down
        err = unwrap_group(exc, (KernelError, trio.BrokenResourceError, trio.ClosedResourceError))
        if isinstance(err, KernelError):
            await _try_send(conn, {"error": str(err)})
        elif isinstance(err, (trio.BrokenResourceError, trio.ClosedResourceError)):
            pass  # the client went away
        elif isinstance(err, (ValueError, KeyError, TypeError)):
            await _try_send(conn, {"error": f"EPROTO: bad request: {err}"})
        else:
            log.error("control request failed: %s: %s", type(err).__name__, err, exc_info=err)
            await _try_send(conn, {"error": f"EIO: internal error: {type(err).__name__}: {err}"})
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _try_send(conn: _Conn, obj: dict[str, Any]) -> None:
    try:
        await conn.send_json(obj)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _exec(kernel: Kernel, conn: _Conn, req: dict[str, Any]) -> None:
    """Run one script; the connection is read all along, so a client that goes away (killed,
    ^C) takes its script with it."""
    from vfsfuse.daemon import sessions

    limits = _limits(req, kernel)
    send_in, recv_in = trio.open_memory_channel[bytes](16)
    gone = trio.Event()

    async def reader() -> None:
        stdin_open = bool(req.get("stdin"))
        try:
            while True:
                got = await conn.recv()
                if got is None:
                    return
                if got[0] == STDIN and stdin_open:
                    if got[1]:
                        await send_in.send(got[1])
                    else:
                        stdin_open = False
                        await send_in.aclose()
        finally:
            await send_in.aclose()
            gone.set()

    async def stdin() -> AsyncIterator[bytes]:
        async for chunk in recv_in:
            yield chunk

    result: list[sessions.RunOutcome] = []
    async with trio.open_nursery() as n:
        n.start_soon(reader)

        async def watch() -> None:
            await gone.wait()
            if not result:
                n.cancel_scope.cancel()  # the client left: run_script kills the script

        n.start_soon(watch)
        result.append(await sessions.run_script(kernel, str(req["script"]), conn.emit, env=_env(req),
                                                cwd=req.get("cwd"), limits=limits,
                                                stdin=stdin() if req.get("stdin") else None))
        outcome = result[0]
        note = sessions.limit_message(outcome, limits)
        if note:
            await conn.emit(2, note)
        await conn.send_json({"exit": outcome.exit_code, "timed_out": outcome.timed_out,
                              "output_limited": outcome.output_limited})
        n.cancel_scope.cancel()


async def _shell(kernel: Kernel, conn: _Conn, req: dict[str, Any]) -> None:
    from vfsfuse.daemon import sessions

    term = await sessions.open_shell(kernel, rows=int(req.get("rows") or 24), cols=int(req.get("cols") or 80),
                                     env=_env(req), cwd=req.get("cwd"), limits=_command_limits(req, kernel))
    try:
        async with trio.open_nursery() as n:
            async def keys() -> None:
                while True:
                    got = await conn.recv()
                    if got is None:
                        break  # the client hung up: like closing a terminal window
                    kind, payload = got
                    if kind == STDIN and payload:
                        await term.write(payload)
                    elif kind == JSON:
                        msg = json.loads(payload)
                        if msg.get("op") == "resize":
                            term.resize(int(msg["rows"]), int(msg["cols"]))
                n.cancel_scope.cancel()

            n.start_soon(keys)
            status = await sessions.pump_terminal(term, conn.emit)
            await conn.send_json({"exit": status})
            n.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await term.close()  # SIGHUP to the session if it still runs


async def _session(kernel: Kernel, conn: _Conn, req: dict[str, Any]) -> None:
    """A persistent shell: one ``run`` frame after another.  The connection is read all along,
    so a client that goes away mid-run ends the session (and what it runs) at once."""
    from vfsfuse.daemon import sessions

    sess = sessions.ShellSession(kernel)
    await sess.start(env=_env(req), cwd=req.get("cwd"), limits=_command_limits(req, kernel))
    await conn.send_json({"ready": True})
    send_req, recv_req = trio.open_memory_channel[dict[str, Any]](64)

    async def reader() -> None:
        async with send_req:
            while True:
                got = await conn.recv()
                if got is None:
                    return
                if got[0] == JSON:
                    await send_req.send(json.loads(got[1]))

    try:
        async with trio.open_nursery() as n:
            async def gone() -> None:
                await reader()
                n.cancel_scope.cancel()

            n.start_soon(gone)
            async for msg in recv_req:
                try:
                    limits = _limits(msg, kernel)
                    outcome = await sess.run(str(msg["script"]), conn.emit, limits)
                except KernelError as err:
                    await conn.send_json({"error": str(err)})
                    continue
                note = sessions.limit_message(outcome, limits)
                if note:
                    await conn.emit(2, note)
                await conn.send_json({"exit": outcome.exit_code, "timed_out": outcome.timed_out,
                                      "output_limited": outcome.output_limited, "ended": sess.ended})
    finally:
        with trio.CancelScope(shield=True):
            await sess.close()


async def _import(kernel: Kernel, conn: _Conn, req: dict[str, Any]) -> None:
    """``vfsfuse import MOUNT``: ``J {"m": member}`` frames (a regular file's data follows in
    ``D`` frames), then ``J {"op": "end"}`` (or ``"abort"``), written into the store at the
    storage layer (vfsfuse/storage/importer.py); the reply carries the summary.  After a stop
    the connection is read to its end, so the client always gets the reply."""
    from typing import cast

    from vfsfuse.storage import importer as imp
    from vfsfuse.storage.chunked import ChunkedVFS

    if kernel.mount_table.mount_for_path("/").read_only:
        raise KernelError("EROFS", "the mount is read-only")
    try:  # --read-only refuses in the store's own layer: ask it, with a change that cannot happen
        await kernel.root_fs.removexattr(kernel.root_fs.root_ino, b"user.vfs.import")  # user.vfs.*: never set
    except KernelError as probe:
        if probe.code == "EROFS":
            raise KernelError("EROFS", "the mount is read-only") from None
    changed: set[int] = set()
    job = imp.Importer(cast(ChunkedVFS, kernel.root_fs), str(req.get("at") or "/"), commit_every=None,
                       exclude=[str(p) for p in req.get("exclude") or []], batch_members=MOUNT_IMPORT_BATCH,
                       on_names=_forget_names, on_inodes=changed.update)
    job.start()
    await conn.send_json({"ready": True})

    async def data(size: int) -> AsyncIterator[bytes]:
        while size > 0:
            got = await conn.recv()
            if got is None or got[0] != DATA or len(got[1]) > size:
                raise KernelError("ECANCELED" if got else "EPIPE", "the file's data did not come")
            size -= len(got[1])
            yield got[1]

    try:
        try:
            async with job.writing():
                while True:
                    got = await conn.recv()
                    msg = json.loads(got[1]) if got is not None and got[0] == JSON else {"op": "abort"}
                    if msg.get("op") in ("end", "abort"):
                        break
                    m = imp.Member.from_json(msg.get("m"))
                    await job.add(m, data(m.size) if m.kind == "file" else None)
                if msg.get("op") == "abort":
                    raise KernelError("ECANCELED", "the client stopped the import")
                await job.finish()
            await conn.send_json({"exit": 0, "summary": job.summary.to_json()})
        except Exception as exc:  # noqa: BLE001 - the writing nursery wraps errors in groups
            err = unwrap_group(exc, KernelError)
            if not isinstance(err, KernelError):
                raise
            with trio.CancelScope(shield=True):
                await job.abort()
            await conn.send_json({"error": str(err), "summary": job.summary.to_json()})
            while await conn.recv() is not None:
                pass
    finally:
        if changed:
            await trio.to_thread.run_sync(_forget_inodes, sorted(changed))


def _forget_names(names: list[tuple[int, bytes]]) -> None:
    """Names made around FUSE: the host may cache their absence."""
    import pyfuse3

    for parent, name in names:
        pyfuse3.invalidate_entry_async(parent, name, ignore_enoent=True)


def _forget_inodes(inodes: list[int]) -> None:
    import pyfuse3

    for ino in inodes:
        try:
            pyfuse3.invalidate_inode(ino)
        except OSError:  # the host does not know it
            pass


@dataclass
class ControlServer:
    """The listening socket of one daemon; ``serve`` runs until cancelled and removes it."""

    kernel: Kernel
    path: str
    owner: int

    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr, dfd = _short_address(self.path)
        try:
            try:
                os.unlink(self.path)  # a socket left by a daemon that died (we hold the store lock)
            except FileNotFoundError:
                pass
            await sock.bind(addr)
            os.chmod(self.path, 0o600)
            sock.listen(64)
        except OSError as err:
            sock.close()
            raise KernelError.from_os_error(err, f"control socket {self.path}") from None
        finally:
            if dfd is not None:
                os.close(dfd)
        listener = trio.SocketListener(sock)
        task_status.started()
        try:
            async with trio.open_nursery() as n:
                while True:
                    stream = await listener.accept()
                    ok, uid = peer_allowed(stream.socket, self.owner)
                    if not ok:
                        log.info("refused a control connection from uid %d", uid)
                        n.start_soon(_refuse, stream, uid)
                        continue
                    n.start_soon(handle_connection, self.kernel, stream)
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()
                try:
                    os.unlink(self.path)
                except OSError:
                    pass


async def _refuse(stream: trio.SocketStream, uid: int) -> None:
    conn = _Conn(stream)
    await _try_send(conn, {"error": f"EACCES: uid {uid} may not use this mount's sandbox "
                                    "(only the user who mounted it, or root)"})
    with trio.CancelScope(shield=True):
        await stream.aclose()


# ------------------------------------------------------------------ client side (blocking)

class ControlClient:
    """A blocking connection to a control socket (the CLI and the Python API use it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.broken = False

    @classmethod
    def connect(cls, path: str) -> "ControlClient":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            addr, dfd = _short_address(path)
        except OSError as err:
            s.close()
            raise KernelError.from_os_error(err, f"cannot reach {path}") from None
        try:
            s.connect(addr)
        except OSError as err:
            s.close()
            raise KernelError.from_os_error(err, f"cannot connect to the control socket {path}") from None
        finally:
            if dfd is not None:
                os.close(dfd)
        return cls(s)

    def send(self, kind: int, payload: bytes) -> None:
        """Send a frame; a daemon that already hung up (it refused us, or the run ended) is not
        an error here: what it said before closing is still there to be read."""
        if self.broken:
            return
        try:
            self.sock.sendall(frame(kind, payload))
        except (BrokenPipeError, ConnectionResetError):
            self.broken = True

    def send_json(self, obj: dict[str, Any]) -> None:
        self.send(JSON, json.dumps(obj).encode())

    def feed(self, data: bytes) -> None:
        self.buf += data

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Complete frames already received (``feed`` adds bytes)."""
        while len(self.buf) >= HEADER.size:
            kind, n = HEADER.unpack_from(self.buf)
            if len(self.buf) < HEADER.size + n:
                return
            payload = bytes(self.buf[HEADER.size:HEADER.size + n])
            del self.buf[:HEADER.size + n]
            yield kind, payload

    def recv(self) -> tuple[int, bytes] | None:
        """The next frame, blocking; None when the daemon hung up."""
        while True:
            for f in self.frames():
                return f
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                return None
            self.buf += d

    def close(self) -> None:
        self.sock.close()


def error_of(msg: dict[str, Any]) -> KernelError | None:
    """The daemon's ``error`` frame as a KernelError."""
    text = msg.get("error")
    if text is None:
        return None
    code, _, message = str(text).partition(": ")
    return KernelError(code if code.isupper() else "EIO", message or str(text))
