"""Datagram sockets inside the kernel: UDP and AF_UNIX datagram.

A datagram goes whole into the receiver's queue, which is bounded in count and bytes.
UDP drops what does not fit (counted, as ``drops`` in /proc/net/udp); AF_UNIX gives the
sender back-pressure instead (``None``: the syscall layer parks it; the receiver wakes
its blocked senders when it reads).  The providers say where a datagram goes
(``route``) and what source address it carries (``source``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from kernel.errors import KernelError
from kernel.pipes import POLLERR, POLLIN, POLLOUT

from .table import MSG_PEEK, MSG_TRUNC, SHUT_RD, SHUT_RDWR, SHUT_WR, Socket

if TYPE_CHECKING:
    from .table import Cred, SocketTable

MAX_QUEUE = 256


class DatagramSocket(Socket):
    """One datagram socket; ``lossy`` (UDP) drops on a full queue instead of blocking."""

    lossy = False
    max_datagram = 65507

    def __init__(self, table: "SocketTable", family: int, type: int, proto: int, owner: "Cred") -> None:
        super().__init__(table, family, type, proto, owner)
        self.state = "new"          # new bound (connected is ``remote is not None``)
        self.local: Any = None
        self.remote: Any = None
        self.queue: deque[tuple[bytes, Any, list[Any] | None]] = deque()
        self.q_bytes = 0
        self.capacity = table.default_buffer
        self.drops = 0
        self.senders: set[DatagramSocket] = set()   # blocked on our full queue

    # -- provider hooks ---------------------------------------------------------------------
    def route(self, dest: Any) -> "DatagramSocket | None":
        """The receiving socket for *dest* (None: nobody there, the datagram is lost)."""
        raise NotImplementedError

    def source(self) -> Any:
        return self.local

    # -- data -------------------------------------------------------------------------------
    def deliver(self, data: bytes, src: Any, rights: list[Any] | None) -> bool:
        """Queue one datagram; False when the queue is full (the caller blocks or drops)."""
        if len(self.queue) >= MAX_QUEUE or self.q_bytes + len(data) > self.capacity:
            return False
        self.queue.append((data, src, rights))
        self.q_bytes += len(data)
        self.changed()
        return True

    def send(self, data: Any, flags: int, rights: list[Any] | None, dest: Any = None) -> int | None:
        self.take_error()
        if self.shut_wr:
            raise KernelError("EPIPE", "broken pipe")
        if dest is None and self.remote is None:
            raise KernelError("EDESTADDRREQ", "destination address required")
        n = len(data)
        if n > self.max_datagram or n > self.sndbuf:
            raise KernelError("EMSGSIZE", "message too long")
        target = self.route(dest if dest is not None else self.remote)
        if target is None:
            return n
        chunk = data if type(data) is bytes else bytes(data)
        if target.deliver(chunk, self.source(), rights):
            return n
        if self.lossy:
            target.drops += 1
            return n
        target.senders.add(self)
        return None

    def recv(self, n: int, flags: int) -> tuple[bytes, Any, list[Any] | None, int] | None:
        if self.queue:
            data, src, rights = self.queue[0]
            out_flags = MSG_TRUNC if len(data) > n else 0
            if not flags & MSG_PEEK:
                self.queue.popleft()
                self.q_bytes -= len(data)
                self._wake_senders()
                rights_out = rights
            else:
                rights_out = None
            return (data[:n] if out_flags else data), src, rights_out, out_flags
        self.take_error()
        if self.shut_rd:
            return b"", None, None, 0
        return None

    def _wake_senders(self) -> None:
        if self.senders:
            senders, self.senders = self.senders, set()
            for s in senders:
                s.changed()

    def poll(self) -> int:
        mask = POLLERR if self.err else 0
        if self.queue or self.shut_rd:
            mask |= POLLIN
        if self.writable():
            mask |= POLLOUT
        return mask

    def writable(self) -> bool:
        return True

    def shutdown(self, how: int) -> None:
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise KernelError("EINVAL", f"invalid shutdown mode {how}")
        if how != SHUT_WR:
            self.shut_rd = True
        if how != SHUT_RD:
            self.shut_wr = True
        self.changed()

    def on_close(self) -> None:
        items = list(self.queue)
        self.queue.clear()
        self.q_bytes = 0
        for _data, _src, rights in items:
            for ofd in rights or ():
                self.table.drop_right(ofd)
        self._wake_senders()
        self.unbind()

    def queued_rights(self) -> list[Any]:
        return [ofd for _d, _s, rights in self.queue if rights for ofd in rights]

    def purge_rights(self) -> None:
        queue, self.queue = self.queue, deque()
        dropped: list[Any] = []
        for data, src, rights in queue:
            self.queue.append((data, src, None))
            dropped.extend(rights or ())
        for ofd in dropped:
            self.table.drop_right(ofd)

    def unbind(self) -> None:
        """Give back the name this socket holds (the provider's table)."""
