"""The kernel's socket table: every socket of one kernel, their inode numbers, and the limits.

A socket is a kernel object reached only through fds (``OpenFileDescription.endpoint``): it
dies when its last description is released, never with the process that made it (an fd
passed with SCM_RIGHTS keeps it alive).  It is *created* for a live process only (ESRCH
otherwise) and counted against a per-process and a per-kernel limit (EMFILE/ENFILE), so a
fork bomb of sockets hits a wall instead of the host's memory.

The constants are Linux's (x86-64) values; the families' semantics live in ``stream``,
``dgram``, ``unix`` and ``inet``.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat as _stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel.errors import KernelError
from kernel.pipes import Waitable

if TYPE_CHECKING:
    from kernel.process import Process, ProcessTable

    from .policy import NetPolicy

log = logging.getLogger("vfsfuse.kernel.net")

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6 = 0, 1, 2, 10
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET = 1, 2, 3, 4, 5
SOCK_NONBLOCK = os.O_NONBLOCK
SOCK_CLOEXEC = os.O_CLOEXEC
IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 0, 6, 17, 41
SOL_SOCKET = 1

MSG_OOB, MSG_PEEK, MSG_CTRUNC, MSG_TRUNC = 0x1, 0x2, 0x8, 0x20
MSG_DONTWAIT, MSG_EOR, MSG_WAITALL, MSG_NOSIGNAL = 0x40, 0x80, 0x100, 0x4000
MSG_CMSG_CLOEXEC = 0x40000000
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2

SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 1, 2, 3, 4, 5, 6
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_LINGER, SO_REUSEPORT = 7, 8, 9, 10, 13, 15
SO_PASSCRED, SO_PEERCRED, SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO, SO_SNDTIMEO = 16, 17, 18, 19, 20, 21
SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN = 30, 38, 39
TCP_NODELAY, TCP_MAXSEG, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 1, 2, 4, 5, 6
IPV6_V6ONLY = 26
IP_TTL = 2
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2

S_IFSOCK = _stat.S_IFSOCK
SOCK_MIN_RCVBUF = 2304   # what Linux clamps a tiny SO_RCVBUF to (after doubling)
SOCK_MIN_SNDBUF = 4608
SYSCTL_MAX_BUF = 212992  # net.core.{r,w}mem_max: setsockopt cannot go above (twice) this
SOMAXCONN = 4096


@dataclass(frozen=True, slots=True)
class Cred:
    """Who a socket belongs to (and what SO_PEERCRED tells its peer)."""

    pid: int
    uid: int
    gid: int

    @classmethod
    def of(cls, proc: Any) -> "Cred":
        return cls(proc.pid, proc.uid, proc.gid)


class Socket(Waitable):
    """What every socket has: identity, owner, options, a pending error, and the Endpoint
    protocol the fd layer uses (``try_read``/``try_write``/``poll``/``close``)."""

    kind = "socket"
    mode = S_IFSOCK | 0o777
    family: int
    type: int
    proto: int

    def __init__(self, table: "SocketTable", family: int, type: int, proto: int, owner: "Cred") -> None:
        super().__init__()
        self.table = table
        self.family, self.type, self.proto = family, type, proto
        self.object_id = table.new_inode()
        self.pid, self.uid, self.gid = owner.pid, owner.uid, owner.gid
        self.options: dict[tuple[int, int], Any] = {}
        self.rcvbuf = table.default_buffer
        self.sndbuf = table.default_buffer
        self.err: str | None = None   # SO_ERROR: reported once by the next call, then cleared
        self.closed = False
        self.shut_rd = False
        self.shut_wr = False

    @property
    def waitable(self) -> Waitable:
        return self

    @property
    def cred(self) -> Cred:
        return Cred(self.pid, self.uid, self.gid)

    # -- option helpers ------------------------------------------------------------------
    def opt(self, level: int, name: int, default: Any = 0) -> Any:
        return self.options.get((level, name), default)

    def take_error(self) -> None:
        """Raise the pending error once (Linux ``sock_error``)."""
        if self.err is not None:
            code, self.err = self.err, None
            raise KernelError(code, _ERROR_TEXT.get(code, ""))

    # -- the Endpoint protocol (read/write on the fd; subclasses refine) -------------------
    def try_read(self, n: int) -> bytes | None:
        got = self.recv(n, 0)
        if got is None:
            return None
        for ofd in got[2] or ():  # read(2) discards passed descriptors
            self.table.drop_right(ofd)
        return got[0]

    def try_write(self, data: bytes | bytearray | memoryview) -> int | None:
        return self.send(data, 0, None)

    def recv(self, n: int, flags: int) -> tuple[bytes, Any, list[Any] | None, int] | None:
        """``(data, source address, in-flight rights, msg_flags)`` or None (would block)."""
        raise KernelError("EOPNOTSUPP", "operation not supported on socket")

    def send(self, data: bytes | bytearray | memoryview, flags: int, rights: list[Any] | None,
             dest: Any = None) -> int | None:
        raise KernelError("EOPNOTSUPP", "operation not supported on socket")

    def poll(self) -> int:
        return 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.on_close()
        self.table.remove(self)
        self.changed()

    def on_close(self) -> None:
        """Family-specific teardown (peers, bindings, queued rights)."""

    def queued_rights(self) -> list[Any]:
        """Descriptions in flight in this socket's receive queue (SCM_RIGHTS)."""
        return []

    def purge_rights(self) -> None:
        """Drop the descriptions in flight in this socket's queue (the collector's verdict)."""


_ERROR_TEXT = {"ECONNRESET": "connection reset by peer", "ECONNREFUSED": "connection refused",
               "EPIPE": "broken pipe", "ETIMEDOUT": "connection timed out"}


class SocketTable:
    """All sockets of one kernel by inode number, plus the per-family name spaces
    (``unix`` and ``inet`` providers hang their binding tables here)."""

    def __init__(self, processes: "ProcessTable", policy: "NetPolicy", *, max_sockets: int = 4096,
                 max_per_process: int = 1024, default_buffer: int = 262144) -> None:
        from .inet import InetSpace
        from .unix import UnixSpace

        self.processes = processes
        self.policy = policy
        self.max_sockets = max_sockets
        self.max_per_process = max_per_process
        self.default_buffer = default_buffer
        self.sockets: dict[int, Socket] = {}
        self._per_pid: dict[int, int] = {}
        self._inodes = itertools.count(20000)
        self.unix = UnixSpace(self)
        self.inet = InetSpace(self)
        # where released in-flight descriptions go (their release may await); the kernel
        # sets this to a nursery's start_soon at boot
        self.release_later: Callable[[Any], None] = _drop_quietly
        # starts a task in the kernel's nursery (the host adapter's pumps); None before boot
        self.spawn: Callable[..., Any] | None = None
        # the host adapter's resolver (mode allow only): getaddrinfo-shaped, awaitable
        self.resolver: Callable[..., Any] = _host_getaddrinfo

    def new_inode(self) -> int:
        return next(self._inodes)

    def __len__(self) -> int:
        return len(self.sockets)

    def check_room(self, proc: "Process", n: int = 1) -> None:
        """ESRCH for a dead owner; ENFILE/EMFILE past the kernel's or the process's limit
        (after collecting unreachable sockets, which only a full table makes worth it)."""
        if self.processes.get(proc.pid) is not proc or not proc.alive:
            raise KernelError("ESRCH", f"process {proc.pid} is not alive")
        if (len(self.sockets) + n > self.max_sockets
                or self._per_pid.get(proc.pid, 0) + n > self.max_per_process):
            self.collect()
        if len(self.sockets) + n > self.max_sockets:
            raise KernelError("ENFILE", f"too many sockets in the kernel (limit {self.max_sockets})")
        if self._per_pid.get(proc.pid, 0) + n > self.max_per_process:
            raise KernelError("EMFILE", f"too many sockets (limit {self.max_per_process} per process)")

    def add(self, sock: Socket) -> Socket:
        self.sockets[sock.object_id] = sock
        self._per_pid[sock.pid] = self._per_pid.get(sock.pid, 0) + 1
        return sock

    def adopt(self, sock: Socket, proc: "Process") -> None:
        """An accepted connection now belongs to the accepting process."""
        if sock.pid == proc.pid:
            return
        self._uncount(sock.pid)
        sock.pid, sock.uid, sock.gid = proc.pid, proc.uid, proc.gid
        self._per_pid[proc.pid] = self._per_pid.get(proc.pid, 0) + 1

    def remove(self, sock: Socket) -> None:
        if self.sockets.pop(sock.object_id, None) is sock:
            self._uncount(sock.pid)

    def _uncount(self, pid: int) -> None:
        left = self._per_pid.get(pid, 0) - 1
        if left > 0:
            self._per_pid[pid] = left
        else:
            self._per_pid.pop(pid, None)

    def collect(self) -> int:
        """Linux's ``unix_gc``: sockets whose every reference is a message in flight inside
        sockets that are themselves reachable only that way (a socket sent over itself, two
        sent over each other, then closed) can never be received; drop those messages so the
        sockets are released.  Returns how many sockets were found unreachable."""
        held: dict[int, list[Any]] = {}
        inflight: dict[int, int] = {}
        ofds: dict[int, Any] = {}
        for sock in self.sockets.values():
            rights = list(sock.queued_rights())
            if rights:
                held[sock.object_id] = rights
                for ofd in rights:
                    inflight[id(ofd)] = inflight.get(id(ofd), 0) + 1
                    ofds[id(ofd)] = ofd
        candidates = {k for k, ofd in ofds.items()
                      if isinstance(ofd.endpoint, Socket) and ofd.refs == inflight[k]}
        if not candidates:
            return 0
        candidate_socks = {ofds[k].endpoint.object_id for k in candidates}
        alive: set[int] = set()
        stack = [sid for sid in held if sid not in candidate_socks]
        while stack:
            for ofd in held.get(stack.pop(), ()):
                k = id(ofd)
                if k in candidates and k not in alive:
                    alive.add(k)
                    stack.append(ofd.endpoint.object_id)
        dead = [ofds[k].endpoint for k in candidates - alive]
        for sock in dead:
            sock.purge_rights()
        return len(dead)

    def drop_right(self, ofd: Any) -> None:
        """A passed descriptor that will not be received: drop the message's reference."""
        ofd.refs -= 1
        if ofd.refs <= 0:
            if ofd.endpoint is not None and ofd.locks is None:
                ofd.endpoint.close()  # what release() would do, without waiting for a task
            else:
                self.release_later(ofd)

    def count_of(self, pid: int) -> int:
        return self._per_pid.get(pid, 0)

    def of_family(self, *families: int) -> list[Socket]:
        return [s for s in self.sockets.values() if s.family in families]


async def _host_getaddrinfo(host: str, port: Any, family: int, type: int) -> list[Any]:
    import trio

    return await trio.socket.getaddrinfo(host, port, family, type)


def _drop_quietly(ofd: Any) -> None:
    log.debug("in-flight description %s dropped without a releaser", ofd)
