"""``vfsfuse shell``, ``vfsfuse exec`` and ``vfsfuse ps``: the sandbox shell from a host terminal.

A MOUNTPOINT is reached through its daemon's control socket (vfsfuse/daemon/control.py); an
unmounted STORE gets a kernel booted in this process (a thread running the same connection
handler over a socket pair), so both paths speak the one protocol.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import stat
import sys
import termios
import threading
import tty
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click

from cli.app import EXIT_USAGE, CliError, vfsfuse
from cli.params import limits_epilog, net_policy, parse_limits
from cli.paths import resolve_in_mount, resolve_inside, resolve_target
from kernel.errors import KernelError
from kernel.limits import Limits, with_values
from kernel.net.policy import NetPolicy
from vfsfuse.daemon import control
from vfsfuse.storage.store import is_store


@dataclass
class _Local:
    """A kernel booted in this process on an unmounted store, serving one connection."""

    store: str
    cwd: str | None
    net: NetPolicy | None = None
    limits: Limits | None = None
    thread: threading.Thread | None = None
    error: BaseException | None = None
    resolved_cwd: list[str] = field(default_factory=list)

    def connect(self) -> control.ControlClient:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.thread = threading.Thread(target=self._run, args=(theirs,), name="vfsfuse-kernel",
                                       daemon=True)
        self.thread.start()
        return control.ControlClient(ours)

    def _run(self, sock: socket.socket) -> None:
        import trio

        from vfsfuse.daemon.sessions import local_kernel

        async def main() -> None:
            async with local_kernel(self.store, net=self.net, limits=self.limits) as kernel:
                stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
                cwd = None
                if self.cwd is not None:
                    cwd = await _inside_dir(kernel.mount_table, self.cwd)
                await control.handle_connection(kernel, stream, cwd=cwd)

        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            sock.close()

    def finish(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error


async def _inside_dir(fs: Any, path: str) -> str:
    inside = await resolve_inside(fs, path, what=f"--cwd {path}")
    if not stat.S_ISDIR(inside.attr.mode):
        raise KernelError("ENOTDIR", f"--cwd {path}: not a directory")
    return inside.path


def _open(target_arg: str, cwd: str | None, net: NetPolicy | None = None,
          limits: dict[str, Any] | None = None) -> tuple[control.ControlClient, _Local | None, str | None]:
    """Connect to what *target_arg* names; ``(client, local kernel or None, cwd for the request)``.
    *net*: the policy of a kernel booted here (a mount's is fixed when it is mounted); *limits*:
    ``--limit`` values, the limits of a kernel booted here (a mount's session sends them itself)."""
    target = resolve_target(target_arg)
    if net is not None and target.mount is not None:
        raise CliError(f"{target.mount} is mounted: its network policy was set by 'vfsfuse mount --net' "
                       "and cannot change while it runs", EXIT_USAGE)
    if target.mount is None and target.path not in ("", "/"):
        cwd = cwd or target.path
    if target.mount is not None:
        if target.path not in ("", "/") and cwd is None:
            cwd = target.path
        wd = None
        if cwd is not None:
            inside = resolve_in_mount(target.mount, cwd, what=f"--cwd {cwd}")
            if not stat.S_ISDIR(inside.attr.mode):
                raise KernelError("ENOTDIR", f"--cwd {cwd}: not a directory")
            wd = inside.path
        store = target_arg.partition(":")[0] if ":" in target_arg else target_arg
        if is_store(store):  # named by its store: its socket is in its run directory
            sock = control.socket_path(os.path.abspath(store), target.mount)
        else:
            sock = control.socket_for_mount(target.mount)
        return control.ControlClient.connect(sock), None, wd
    local = _Local(target.unmounted_store, cwd, net, with_values(Limits(), limits) if limits else None)
    return local.connect(), local, None


def _net(mode: str | None, rules: tuple[str, ...]) -> NetPolicy | None:
    """``--net``/``--allow`` for a kernel booted here; None when neither was given."""
    if mode is None and not rules:
        return None
    return net_policy(mode or "none", rules)


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise CliError(f"usage: --env wants NAME=VALUE, not {p!r}", EXIT_USAGE)
        env[k] = v
    return env


def _raise_error(msg: dict[str, Any]) -> None:
    err = control.error_of(msg)
    if err is not None:
        raise err


def _daemon_gone(local: _Local | None) -> KernelError:
    if local is not None:
        local.finish()  # raises the in-process kernel's own reason
    return KernelError("ECONNRESET", "the daemon closed the connection")


# ------------------------------------------------------------------ exec

_LIMIT_HELP = ("NAME=VALUE: a limit (repeat; names below). STORE: the in-process kernel's; "
               "MOUNTPOINT: this session's, at most the mount's")


@vfsfuse.command("exec", context_settings={"ignore_unknown_options": False}, epilog=limits_epilog())
@click.argument("target", metavar="MOUNTPOINT|STORE")
@click.argument("script", metavar="-- SCRIPT")
@click.option("--timeout", type=float, default=None, metavar="S", help="kill the script after S seconds (exit 124)")
@click.option("--max-output", type=int, default=None, metavar="BYTES",
              help="kill the script once it wrote more than BYTES (exit 125)")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="add to the sandbox's environment")
@click.option("--cwd", default=None, metavar="DIR", help="directory inside the sandbox to start in")
@click.option("--net", "net_mode", type=click.Choice(["none", "loopback", "allow"]), default=None,
              help="STORE only: the in-process kernel's network (default none; see vfsfuse mount --help)")
@click.option("--allow", "net_rules", multiple=True, metavar="RULE", help="with --net allow: a rule (repeat)")
@click.option("--limit", "limit_pairs", multiple=True, metavar="NAME=VALUE", help=_LIMIT_HELP)
def exec_cmd(target: str, script: str, timeout: float | None, max_output: int | None,
             env_pairs: tuple[str, ...], cwd: str | None, net_mode: str | None, net_rules: tuple[str, ...],
             limit_pairs: tuple[str, ...]) -> None:
    """Run SCRIPT with the sandbox's bash; its status is ours.

    stdin, stdout and stderr are passed through; the script sees the sandbox's own
    environment (never the host's) plus --env.  Example: vfsfuse exec mnt -- 'ls / | wc -l'
    """
    env = _parse_env(env_pairs)
    limits, run = parse_limits(limit_pairs)
    if timeout is not None:
        run["timeout"] = timeout
    if max_output is not None:
        run["max_output"] = max_output
    _run_script(target, cwd, _net(net_mode, net_rules), {"script": script, "env": env, **run}, limits)


def _run_script(target: str, cwd: str | None, net: NetPolicy | None, request: dict,
                limits: dict[str, Any]) -> NoReturn:
    """Run one script (``request``: script, env, run limits) with our stdio; exit with its status."""
    client, local, wd = _open(target, cwd, net, limits)
    if local is None and limits:
        request["limits"] = limits
    try:
        client.send_json({"op": "exec", **request, "cwd": wd, "stdin": True})
        code = _exec_loop(client, local)
    finally:
        client.close()
    if local is not None:
        local.finish()
    raise click.exceptions.Exit(code)


def _exec_loop(client: control.ControlClient, local: _Local | None) -> int:
    stdin_fd: int | None = sys.stdin.fileno() if sys.stdin is not None else None
    sock = client.sock
    while True:
        watch = [sock] + ([stdin_fd] if stdin_fd is not None else [])
        ready, _, _ = select.select(watch, [], [])
        if stdin_fd is not None and stdin_fd in ready:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            try:
                client.send(control.STDIN, data)
            except OSError:
                pass  # the script finished meanwhile
            if not data:
                stdin_fd = None
        if sock in ready:
            status = _take_frames(client, sock, local)
            if status is not None:
                return status


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _json(payload: bytes) -> dict[str, Any]:
    import json

    obj = json.loads(payload)
    return obj if isinstance(obj, dict) else {}


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ------------------------------------------------------------------ shell

class _Hangup(Exception):
    """SIGTERM/SIGHUP to the client: leave through the terminal-restoring path."""


@vfsfuse.command("shell", epilog=limits_epilog())
@click.argument("target", metavar="MOUNTPOINT|STORE")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="add to the sandbox's environment")
@click.option("--cwd", default=None, metavar="DIR", help="directory inside the sandbox to start in")
@click.option("--net", "net_mode", type=click.Choice(["none", "loopback", "allow"]), default=None,
              help="STORE only: the in-process kernel's network (default none; see vfsfuse mount --help)")
@click.option("--allow", "net_rules", multiple=True, metavar="RULE", help="with --net allow: a rule (repeat)")
@click.option("--limit", "limit_pairs", multiple=True, metavar="NAME=VALUE", help=_LIMIT_HELP)
@click.option("--timeout", type=float, default=None, metavar="S",
              help="commands from a pipe or file only: end the shell after S seconds (exit 124)")
def shell_cmd(target: str, env_pairs: tuple[str, ...], cwd: str | None, net_mode: str | None,
              net_rules: tuple[str, ...], limit_pairs: tuple[str, ...], timeout: float | None) -> None:
    """An interactive sandbox shell on a kernel PTY.

    MOUNTPOINT attaches to the running mount (several shells may attach at once; their
    processes show in MOUNTPOINT/proc); STORE boots a kernel on the unmounted store in this
    process.  The host terminal is raw while attached and restored on every exit.
    """
    env = _parse_env(env_pairs)
    limits, run = parse_limits(limit_pairs)
    if timeout is not None:
        run["timeout"] = timeout
    if not os.isatty(sys.stdin.fileno()):
        # commands from a pipe or a file: a non-interactive shell reading them (as ssh does
        # without a terminal), not a PTY session whose line editor would race the input
        _run_script(target, cwd, _net(net_mode, net_rules), {"script": "exec bash", "env": env, **run}, limits)
    if run:
        raise CliError(f"--limit {next(iter(run))} and --timeout are for a shell reading a pipe or a file "
                       "(an interactive shell has no run to end)", EXIT_USAGE)
    term = os.environ.get("TERM")
    if term and term.replace("-", "").isalnum():
        env.setdefault("TERM", term)  # how to draw on this terminal: the one host value passed in
    client, local, wd = _open(target, cwd, _net(net_mode, net_rules), limits)
    cols, rows = shutil.get_terminal_size((80, 24))
    try:
        client.send_json({"op": "shell", "rows": rows, "cols": cols, "env": env, "cwd": wd,
                          **({"limits": limits} if local is None and limits else {})})
        code = _terminal_loop(client, local)
    finally:
        client.close()
    if local is not None:
        local.finish()
    raise click.exceptions.Exit(code)


def _terminal_loop(client: control.ControlClient, local: _Local | None) -> int:
    in_fd = sys.stdin.fileno()
    is_tty = os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if is_tty else None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)

    def on_winch(signum: int, frame: Any) -> None:
        try:
            os.write(wake_w, b"w")
        except OSError:
            pass

    def on_hangup(signum: int, frame: Any) -> None:
        raise _Hangup()

    old_handlers = {sig: signal.signal(sig, handler) for sig, handler in
                    ((signal.SIGWINCH, on_winch), (signal.SIGTERM, on_hangup), (signal.SIGHUP, on_hangup))}
    try:
        if saved is not None:
            tty.setraw(in_fd, termios.TCSANOW)
        return _pump_terminal(client, local, in_fd, wake_r)
    except _Hangup:
        return 129
    finally:
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def _pump_terminal(client: control.ControlClient, local: _Local | None, in_fd: int, wake_r: int) -> int:
    sock = client.sock
    reading: int | None = in_fd
    while True:
        watch: list[Any] = [sock, wake_r] + ([reading] if reading is not None else [])
        try:
            ready, _, _ = select.select(watch, [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 64)
            except BlockingIOError:
                pass
            cols, rows = shutil.get_terminal_size((80, 24))
            client.send_json({"op": "resize", "rows": rows, "cols": cols})
        if reading is not None and reading in ready:
            data = os.read(reading, 65536)
            if not data:  # stdin was not a terminal and ended: ^D for the shell
                data = b"\x04"
                reading = None
            client.send(control.STDIN, data)
        if sock in ready:
            status = _take_frames(client, sock, local)
            if status is not None:
                return status


def _take_frames(client, sock, local) -> int | None:
    """Read what the daemon sent: output to our stdout/stderr, errors raised as one line;
    the script's exit status once it came (None until then)."""
    d = _recv(sock)
    if not d:
        raise _daemon_gone(local)
    client.feed(d)
    for kind, payload in client.frames():
        if kind == control.STDOUT:
            _write(1, payload)
        elif kind == control.STDERR:
            _write(2, payload)
        elif kind == control.JSON:
            msg = _json(payload)
            _raise_error(msg)
            if "exit" in msg:
                return int(msg["exit"])
    return None


# ------------------------------------------------------------------ ps

# In the new namespaces: the sandbox's /proc under a read-only overlay whose top layer adds
# ``self -> 1`` (ps is pid 1 there, and the sandbox's /proc has no ``self`` for host readers).
_PS_SCRIPT = """set -e
mount -t tmpfs -o size=64k,mode=755 vfsfuse-ps /proc
mkdir /proc/.top
ln -s 1 /proc/.top/self
mount -t overlay -o "lowerdir=/proc/.top:$0" vfsfuse-proc /proc
p=$1
shift
exec "$p" "$@"
"""


@vfsfuse.command("ps", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("mountpoint", metavar="MOUNTPOINT")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED, metavar="[PS OPTIONS]")
def ps_cmd(mountpoint: str, ps_args: tuple[str, ...]) -> None:
    """The host's procps ps over the sandbox's /proc (MOUNTPOINT/proc).

    ps runs in private mount and pid namespaces where MOUNTPOINT/proc is bound on /proc,
    so it lists the sandbox's processes, e.g. vfsfuse ps mnt -ef
    """
    proc = os.path.join(os.path.abspath(mountpoint), "proc")
    if not os.path.isfile(os.path.join(proc, "uptime")):
        raise KernelError("ENOENT", f"{mountpoint} is not a vfsfuse mount with a sandbox /proc")
    ps = shutil.which("ps")
    unshare = shutil.which("unshare")
    if ps is None or unshare is None:
        raise KernelError("ENOENT", "vfsfuse ps needs the host's procps 'ps' and util-linux 'unshare'")
    ns = ["--mount", "--propagation", "private", "--pid", "--fork"]
    if os.geteuid() != 0:
        ns = ["--user", "--map-root-user", *ns]  # unprivileged: a user namespace owns the mounts
    if any(c in proc for c in ",:\\"):
        raise KernelError("EINVAL", f"vfsfuse ps cannot name {proc} in a mount option (',' ':' or '\\')")
    script = _PS_SCRIPT
    argv = [unshare, *ns, "sh", "-c", script, proc, ps, *ps_args]
    import subprocess

    r = subprocess.run(argv, stderr=subprocess.PIPE)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0 and ("unshare:" in err or "mount:" in err):
        raise KernelError("EPERM", "cannot give ps a private /proc here (unshare/mount refused: "
                                   f"{err.strip().splitlines()[-1] if err.strip() else 'no reason given'})")
    if err:
        sys.stderr.write(err)
    raise click.exceptions.Exit(r.returncode)
