"""Connection-oriented sockets inside the kernel: TCP, AF_UNIX stream and seqpacket.

Each connected socket owns a bounded receive queue; a send appends to the *peer's* queue
and returns what fitted (``None`` when nothing fits: back-pressure, the syscall layer
parks the sender), a receive takes from its own and wakes the peer's writers.  Both ends
of a connection wake each other through their own ``Waitable``.  The differences between
TCP and AF_UNIX (what an unconnected send or receive says, how a peer's close is seen,
resets) are class attributes read at the few places they matter, following Linux's
``tcp_sendmsg``/``tcp_recvmsg``/``tcp_poll`` and ``unix_stream_*``/``unix_poll``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from kernel.errors import KernelError
from kernel.pipes import POLLERR, POLLHUP, POLLIN, POLLOUT

from .table import MSG_PEEK, MSG_TRUNC, SHUT_RD, SHUT_RDWR, SHUT_WR, SO_LINGER, SOL_SOCKET, Socket

if TYPE_CHECKING:
    from .table import Cred, SocketTable

POLLRDHUP = 0x2000


class StreamSocket(Socket):
    """A stream (or, with ``message``, seqpacket) socket; see the module docstring."""

    message = False              # seqpacket: records keep their boundaries, long ones truncate
    tcp = False
    unconnected_send = "ENOTCONN"
    unconnected_recv = "EINVAL"
    listening_recv = "EINVAL"

    def __init__(self, table: "SocketTable", family: int, type: int, proto: int, owner: "Cred") -> None:
        super().__init__(table, family, type, proto, owner)
        self.state = "new"       # new bound listening connecting connected
        self.local: Any = None
        self.remote: Any = None
        self.peer: StreamSocket | None = None
        self.rx: deque[list[Any]] = deque()   # [bytes, rights or None]
        self.rx_size = 0
        self.rx_head = 0
        self.capacity = table.default_buffer
        self.fin = False         # TCP: the peer said it will send no more (SOCK_DONE)
        self.rst_sent = False
        self.backlog: deque[StreamSocket] = deque()
        self.backlog_max = 0
        self.waiting: deque[Any] = deque()  # TCP connects parked on a full backlog
        self.listener: StreamSocket | None = None    # the listener an unaccepted socket waits in
        self.connect_reported = True                 # a non-blocking connect's first re-check
        self.peercred: tuple[int, int, int] | None = None
        self.host: Any = None                        # a HostLink when the peer is outside

    # ------------------------------------------------------------------ connection plumbing
    @staticmethod
    def link(a: "StreamSocket", b: "StreamSocket") -> None:
        a.peer, b.peer = b, a
        a.state = b.state = "connected"
        a.changed()
        b.changed()

    def backlog_full(self) -> bool:
        return len(self.backlog) > self.backlog_max  # Linux: backlog + 1 fit

    def enqueue(self, server: "StreamSocket") -> None:
        server.listener = self
        self.backlog.append(server)
        self.changed()

    def accept(self) -> "StreamSocket | None":
        if self.state != "listening":
            raise KernelError("EINVAL", "socket is not listening")
        if not self.backlog:
            return None
        server = self.backlog.popleft()
        server.listener = None
        self.changed()
        return server

    # ------------------------------------------------------------------ data
    def send(self, data: Any, flags: int, rights: list[Any] | None, dest: Any = None) -> int | None:
        if self.tcp:
            self.take_error()
        if self.shut_wr:
            raise KernelError("EPIPE", "broken pipe")
        if self.state != "connected":
            if self.state == "connecting":
                return None
            raise KernelError(self.unconnected_send, "socket is not connected")
        if self.host is not None:
            return self.host.send(data)
        peer = self.peer
        if peer is None or peer.closed:
            if self.tcp and not self.rst_sent:
                # the data reaches a closed socket, whose answer is a reset (seen next time)
                self.rst_sent = True
                self.err = "EPIPE"
                self.shut_wr = self.shut_rd = True
                self.changed()
                return len(data)
            raise KernelError("EPIPE", "broken pipe")
        n = len(data)
        space = peer.capacity - peer.rx_size
        if self.message:
            if n > peer.capacity:
                raise KernelError("EMSGSIZE", "message too long")
            if n > space and peer.rx:
                return None
            k = n
        else:
            if n == 0:
                return 0
            if space <= 0:
                return None
            k = n if n <= space else space
        chunk = data if (k == n and type(data) is bytes) else bytes(data[:k])
        peer.rx.append([chunk, rights])
        peer.rx_size += k
        peer.changed()
        return k

    def recv(self, n: int, flags: int) -> tuple[bytes, Any, list[Any] | None, int] | None:
        if self.state == "listening":
            raise KernelError(self.listening_recv, "socket is listening")
        if self.rx:
            return self._take(n, flags)
        if self.fin:
            return b"", None, None, 0
        self.take_error()
        if self.shut_rd:
            return b"", None, None, 0
        if self.state != "connected":
            if self.state == "connecting":
                return None
            raise KernelError(self.unconnected_recv, "socket is not connected")
        return None

    def _take(self, n: int, flags: int) -> tuple[bytes, Any, list[Any] | None, int]:
        rx = self.rx
        peek = flags & MSG_PEEK
        if self.message:
            chunk, rights = rx[0]
            out_flags = MSG_TRUNC if len(chunk) > n else 0
            if not peek:
                rx.popleft()
                self.rx_size -= len(chunk)
                self._wake_writer()
            return chunk[:n] if out_flags else chunk, None, None if peek else rights, out_flags
        parts: list[bytes] = []
        want = n
        got_rights: list[Any] | None = None
        head = self.rx_head
        i = 0
        while want > 0 and i < len(rx):
            chunk, rights = rx[i]
            if rights is not None:
                if parts:
                    break
                if not peek:
                    got_rights = rights
                    rx[i][1] = None
            avail = len(chunk) - head
            if avail <= want:
                parts.append(chunk[head:] if head else chunk)
                want -= avail
                if peek:
                    i += 1
                else:
                    rx.popleft()
                head = 0
            else:
                parts.append(chunk[head:head + want])
                if not peek:
                    head += want
                want = 0
            if got_rights is not None:
                break
        if not peek:
            self.rx_head = head
            self.rx_size -= n - want
            self._wake_writer()
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return data, None, got_rights, 0

    def _wake_writer(self) -> None:
        peer = self.peer
        if peer is not None:
            peer.changed()
        elif self.host is not None:
            self.changed()  # the host link's reader waits for room

    # ------------------------------------------------------------------ readiness
    def poll(self) -> int:
        if self.state == "listening":
            return POLLIN if self.backlog else 0
        mask = POLLERR if self.err else 0
        if self.state == "connecting":
            return mask
        if self.rx:
            mask |= POLLIN
        if self.shut_rd or self.fin:
            mask |= POLLIN | POLLRDHUP
        if (self.shut_rd and self.shut_wr) or self.state != "connected":
            mask |= POLLHUP
        if self.shut_wr or self.writable():
            mask |= POLLOUT
        return mask

    def writable(self) -> bool:
        if self.host is not None:
            return self.host.writable()
        peer = self.peer
        if peer is None or peer.closed:
            return True
        return peer.rx_size < peer.capacity

    # ------------------------------------------------------------------ shutdown / close
    def shutdown(self, how: int) -> None:
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise KernelError("EINVAL", f"invalid shutdown mode {how}")
        if self.state == "listening":
            if self.tcp and how != SHUT_WR:
                self._drop_backlog()
                self.state = "bound"
                self.changed()
            return
        peer = self.peer
        if how != SHUT_WR:
            self.shut_rd = True
            if not self.tcp and peer is not None:
                peer.shut_wr = True
                peer.changed()
        if how != SHUT_RD:
            self.shut_wr = True
            if self.host is not None:
                self.host.shutdown_write()
            if peer is not None and not peer.closed:
                peer.shut_rd = not self.tcp or peer.shut_rd
                peer.fin = self.tcp
                peer.changed()
        self.changed()
        if self.tcp and self.state != "connected":
            raise KernelError("ENOTCONN", "socket is not connected")

    def reset_by_peer(self) -> None:
        """The other end went away abruptly (unread data, SO_LINGER 0, an unaccepted
        connection whose listener closed)."""
        self.err = "EPIPE" if (self.tcp and self.fin) else "ECONNRESET"
        self.shut_rd = self.shut_wr = True
        self.rst_sent = True
        self.changed()

    def on_close(self) -> None:
        if self.host is not None:
            self.host.close()
        if self.state == "listening":
            self._drop_backlog()
        if self.listener is not None:
            try:
                self.listener.backlog.remove(self)
            except ValueError:
                pass
            self.listener = None
        peer = self.peer
        if peer is not None and not peer.closed:
            linger = self.options.get((SOL_SOCKET, SO_LINGER))
            if self.rx or (isinstance(linger, tuple) and linger[0] and linger[1] == 0):
                peer.reset_by_peer()
            elif self.tcp:
                peer.fin = True
                peer.shut_rd = True
            else:
                peer.shut_rd = peer.shut_wr = True
            peer.changed()
        self._drop_rx()
        self.unbind()
        self.state = "closed"

    def _drop_backlog(self) -> None:
        while self.backlog:
            server = self.backlog.popleft()
            server.listener = None
            client = server.peer
            server.peer = None
            if client is not None:
                client.peer = None
                client.reset_by_peer()
            server.close()
        while self.waiting:
            client = self.waiting.popleft()
            client.state = "new" if client.local is None else "bound"
            client.err = "ECONNREFUSED"
            client.changed()

    def queued_rights(self) -> list[Any]:
        return [ofd for _chunk, rights in self.rx if rights for ofd in rights]

    def purge_rights(self) -> None:
        dropped: list[Any] = []
        for item in self.rx:
            dropped.extend(item[1] or ())
            item[1] = None
        for ofd in dropped:  # may close this very socket: the queue is no longer walked
            self.table.drop_right(ofd)

    def _drop_rx(self) -> None:
        items = list(self.rx)
        self.rx.clear()
        self.rx_size = self.rx_head = 0
        for _chunk, rights in items:
            for ofd in rights or ():
                self.table.drop_right(ofd)

    def unbind(self) -> None:
        """Give back the name this socket holds (the provider's table)."""

