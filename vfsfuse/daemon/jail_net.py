"""The jail's network namespace, set up by the daemon while bubblewrap waits (issue 16 §1).

bwrap's ``--unshare-net`` always brings a private ``lo`` up.  For the modes that need more than
that, bwrap is started with ``--block-fd``: it sets up the namespace (lo included), then waits
for one byte before it runs the program.  In that window a fresh daemon thread joins the jail's
network namespace (``setns`` on ``/proc/<bwrap's child>/ns/net``) and

* ``none``: removes lo's 127.0.0.1 and takes lo down, so the program finds the namespace as a
  new one is (connects to 127.0.0.1 fail with ENETUNREACH, ::1 has no address);
* ``allow``: opens the proxy's listening socket on 127.0.0.1:3128 *inside* the jail's
  namespace, so the daemon serves it (``jail_proxy.py``) with no forwarder process and no path
  shared with the jail; the program gets ``HTTP(S)_PROXY`` pointing there.  The namespace has
  no other interface and no route out, so a program ignoring the variables reaches nothing;
* ``loopback``: nothing to do (bwrap's private lo is that mode), so bwrap does not wait.

Joining another network namespace needs CAP_SYS_ADMIN in the daemon's own user namespace (the
daemon runs as root, bwrap as an unprivileged id): an unprivileged daemon says so in one line
(``allow``) or leaves the private lo up (``none``, logged once).  The thread that joined ends
with its work, so no daemon thread ever stays in a jail's namespace.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, TypeVar

import trio

from kernel.errors import KernelError
from vfsfuse.daemon.jail_proxy import Decider, JailProxy

if TYPE_CHECKING:
    from kernel.native import NativeSpec
    from kernel.net.table import SocketTable

log = logging.getLogger("vfsfuse.daemon.jail")

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
IFF_UP = 0x1
PROXY_HOST = "127.0.0.1"
PROXY_PORT = 3128
SETUP_TIMEOUT = 60.0     # bwrap's setup before the block fd; seconds on a loaded machine
_T = TypeVar("_T")
_said_unprivileged = False


def net_mode(spec: "NativeSpec") -> str:
    """The jail's network mode: the kernel's policy mode (``none`` without a socket table)."""
    return spec.net.policy.mode if spec.net is not None else "none"


def proxy_url() -> str:
    return f"http://{PROXY_HOST}:{PROXY_PORT}"


def jail_env(spec: "NativeSpec") -> dict[str, str]:
    """The program's environment: the sandbox's, with the proxy variables in mode allow (set by
    us, whatever the sandbox had; the policy, not the variables, is the boundary)."""
    env = dict(spec.env)
    if net_mode(spec) == "allow":
        url = proxy_url()
        env.update({"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
                    "NO_PROXY": "", "no_proxy": ""})
    return env


def can_enter() -> bool:
    """Whether this daemon may join a jail's network namespace (root in its user namespace)."""
    return os.geteuid() == 0


def needs_setup(mode: str) -> bool:
    """Whether bwrap must wait for the daemon (``--block-fd``) before running the program."""
    global _said_unprivileged
    if mode not in ("none", "allow"):
        return False
    if can_enter():
        return True
    if mode == "none" and not _said_unprivileged:
        _said_unprivileged = True
        log.info("jail: the daemon is not root, so it cannot take a jail's loopback down; "
                 "network mode none gives real programs a private loopback that is up")
    return mode == "allow"


def in_netns(pid: int, work: Callable[[], _T]) -> _T:
    """Run *work* in a new thread that joined the network namespace of host process *pid*.

    Refuses a namespace that is the daemon's own (a jail always has its own), so nothing here
    can touch the host's interfaces; the thread ends with *work*."""
    own = os.stat("/proc/self/ns/net").st_ino
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_ino == own:
            raise OSError(errno.EPERM, "the jail has no network namespace of its own")
        result: list[_T] = []
        error: list[BaseException] = []

        def body() -> None:
            try:
                _setns(fd)
                if os.stat("/proc/thread-self/ns/net").st_ino == own:
                    raise OSError(errno.EPERM, "setns did not take")
                result.append(work())
            except BaseException as err:  # handed to the caller's thread
                error.append(err)

        t = threading.Thread(target=body, name="jail-netns", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if error:
        raise error[0]
    return result[0]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _flags(s: socket.socket) -> int:
    raw = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0))
    return int(struct.unpack_from("16sh", raw)[1])


def _wait_lo_up(s: socket.socket, alive: Callable[[], bool]) -> int:
    """lo's flags once bwrap has brought it up (its address is set before that)."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    delay = 0.0005
    while True:
        flags = _flags(s)
        if flags & IFF_UP:
            return flags
        if not alive() or time.monotonic() > deadline:
            raise OSError(errno.ETIMEDOUT, "bubblewrap did not set up the jail's network")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def take_loopback_down(alive: Callable[[], bool] = lambda: True) -> None:
    """In the jail's namespace: lo without 127.0.0.1 and down, as in a new namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = _wait_lo_up(s, alive)
        # SIOCSIFADDR with 0.0.0.0 deletes the address (::1 goes with the link)
        fcntl.ioctl(s, SIOCSIFADDR, struct.pack("16sHH4s16x", b"lo", socket.AF_INET, 0, bytes(4)))
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags & ~IFF_UP))
        if _flags(s) & IFF_UP:
            raise OSError(errno.EIO, "the jail's loopback stayed up")


def open_proxy_listener(alive: Callable[[], bool] = lambda: True) -> socket.socket:
    """In the jail's namespace: the proxy's listening socket on 127.0.0.1:3128."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        _wait_lo_up(s, alive)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((PROXY_HOST, PROXY_PORT))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(eq=False)
class JailNet:
    """One jail's network: the options and fds bwrap gets, and the daemon's part once bwrap has
    set the namespace up (then it lets bwrap go on)."""

    mode: str
    table: "SocketTable | None" = None
    block_r: int | None = None       # bwrap's --block-fd (closed here once bwrap has it)
    block_w: int | None = None       # ours: one byte lets bwrap run the program

    @classmethod
    def plan(cls, spec: "NativeSpec") -> "JailNet":
        """The plan for *spec*; one clear line (KernelError) when this daemon cannot do it."""
        mode = net_mode(spec)
        if mode == "allow" and (not can_enter() or spec.net is None):
            raise KernelError("ENOSYS", "network mode allow for real programs needs the daemon to run as "
                              "root (it serves the proxy inside the jail's network namespace)")
        net = cls(mode, spec.net)
        if needs_setup(mode):
            net.block_r, net.block_w = os.pipe2(os.O_CLOEXEC)
        return net

    @property
    def options(self) -> list[str]:
        """bwrap's options for this plan."""
        return ["--block-fd", str(self.block_r)] if self.block_r is not None else []

    def child_fds(self) -> list[int]:
        """What bwrap inherits (the caller closes them once it has started)."""
        return [self.block_r] if self.block_r is not None else []

    def parent_fds(self) -> list[int]:
        """What the caller closes if bwrap cannot be started."""
        return [self.block_w] if self.block_w is not None else []

    async def setup(self, init_pid: int | None, alive: Callable[[], bool]) -> JailProxy | None:
        """Do this mode's part in the namespace of bwrap's child *init_pid*, then let bwrap go
        on.  On an error bwrap is still waiting: the caller must kill it before ``close``
        (bwrap reads EOF on its block fd as "go on")."""
        if self.block_w is None or init_pid is None:
            return None
        proxy = None
        if self.mode == "none":
            await trio.to_thread.run_sync(in_netns, init_pid, partial(take_loopback_down, alive))
        else:
            assert self.table is not None
            sock = await trio.to_thread.run_sync(in_netns, init_pid, partial(open_proxy_listener, alive))
            proxy = JailProxy(trio.socket.from_stdlib_socket(sock), Decider.of(self.table))
        os.write(self.block_w, b"x")
        return proxy

    def close(self) -> None:
        if self.block_w is not None:
            os.close(self.block_w)
            self.block_w = None
