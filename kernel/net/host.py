"""The host adapter: a TCP connection the policy allows to leave the kernel, carried by a
trio socket of the host.

The sandbox side stays an ordinary ``InetStream`` (same fd, poll, shutdown and error
behaviour); a ``HostLink`` attached to it owns the host socket and two pump tasks in the
kernel's nursery.  Both directions are bounded: the reader stops reading the host socket
while the sandbox's receive queue is full, a send takes what fits in the link's transmit
queue (``None`` otherwise: back-pressure as for any socket).  Options set on the sandbox
socket (TCP_NODELAY, SO_KEEPALIVE) are replayed on the host socket.  Closing the sandbox
socket cancels the pumps and closes the host socket.
"""

from __future__ import annotations

import logging
import socket as _pysocket
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from .table import IPPROTO_TCP, SO_KEEPALIVE, SOL_SOCKET, TCP_NODELAY

if TYPE_CHECKING:
    from .inet import InetStream

log = logging.getLogger("vfsfuse.kernel.net.host")
PIECE = 65536
DRAIN = 30.0   # seconds a closed socket's unsent data may take to reach the host


class HostLink:
    """The host half of one allowed outbound TCP connection."""

    def __init__(self, sock: "InetStream", capacity: int) -> None:
        self.sock = sock
        self.capacity = capacity
        self.tx: deque[bytes] = deque()
        self.tx_size = 0
        self.tx_lot = trio.lowlevel.ParkingLot()
        self.shut_wr = False
        self.scope = trio.CancelScope()
        self.hs: Any = None
        self.closing = False

    # -- the sandbox side (synchronous, called by the socket) -------------------------------
    def send(self, data: Any) -> int | None:
        space = self.capacity - self.tx_size
        if space <= 0:
            return None
        k = min(len(data), space)
        chunk = data if (k == len(data) and type(data) is bytes) else bytes(data[:k])
        self.tx.append(chunk)
        self.tx_size += k
        self.tx_lot.unpark_all()
        return k

    def writable(self) -> bool:
        return self.tx_size < self.capacity

    def shutdown_write(self) -> None:
        self.shut_wr = True
        self.tx_lot.unpark_all()

    def close(self) -> None:
        """The sandbox closed its socket: what it sent still goes out (as Linux flushes on
        close), for at most ``DRAIN`` seconds, then the host socket closes."""
        if not self.tx or self.hs is None:
            self.scope.cancel()
            return
        self.closing = True
        self.shut_wr = True
        self.scope.deadline = min(self.scope.deadline, trio.current_time() + DRAIN)
        self.tx_lot.unpark_all()

    # -- the host side (tasks) ----------------------------------------------------------------
    async def run(self, family: int, address: tuple[Any, ...]) -> None:
        """Connect, then pump until either side ends (a task in the kernel's nursery)."""
        sock = self.sock
        with self.scope:
            hs = trio.socket.socket(family, _pysocket.SOCK_STREAM)
            self.hs = hs
            try:
                try:
                    await hs.connect(address)
                except OSError as e:
                    sock.err = _code(e, "ECONNREFUSED")
                    sock.state = "bound"
                    sock.connect_failed = True
                    sock.changed()
                    return
                self._replay_options(hs)
                sock.state = "connected"
                sock.changed()
                await self._pump(hs)
            finally:
                hs.close()

    async def run_accepted(self, hs: Any) -> None:
        """Pump an already connected host socket (a published listener's connection)."""
        self.hs = hs
        with self.scope:
            try:
                self._replay_options(hs)
                await self._pump(hs)
            finally:
                hs.close()

    async def _pump(self, hs: Any) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reader, hs)
            nursery.start_soon(self._writer, hs)

    def _replay_options(self, hs: Any) -> None:
        for (level, name), value in self.sock.options.items():
            if (level, name) in ((IPPROTO_TCP, TCP_NODELAY), (SOL_SOCKET, SO_KEEPALIVE)):
                try:
                    hs.setsockopt(level, name, value)
                except OSError as e:
                    log.debug("replaying option %s/%s: %s", level, name, e)

    async def _reader(self, hs: Any) -> None:
        sock = self.sock
        while True:
            while sock.rx_size >= sock.capacity and not sock.closed:
                await sock.wait()
            if sock.closed:
                return  # nobody will read it: only the unsent data is still drained
            try:
                data = await hs.recv(PIECE)
            except OSError as e:
                sock.err = _code(e, "ECONNRESET")
                sock.shut_rd = sock.shut_wr = True
                sock.changed()
                return
            if not data:
                sock.fin = sock.shut_rd = True
                sock.changed()
                return
            sock.rx.append([data, None])
            sock.rx_size += len(data)
            sock.changed()

    async def _writer(self, hs: Any) -> None:
        sock = self.sock
        while True:
            while not self.tx:
                if self.shut_wr:
                    try:
                        hs.shutdown(_pysocket.SHUT_WR)
                    except OSError:
                        pass
                    if self.closing:
                        self.scope.cancel()
                    return
                await self.tx_lot.park()
            chunk = self.tx[0]
            try:
                await hs.send(chunk) if len(chunk) == 0 else await _send_all(hs, chunk)
            except OSError as e:
                sock.err = _code(e, "EPIPE")
                sock.shut_wr = True
                sock.changed()
                return
            self.tx.popleft()
            self.tx_size -= len(chunk)
            sock.changed()


async def _send_all(hs: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = await hs.send(view)
        view = view[n:]


def _code(err: OSError, default: str) -> str:
    import errno as _errno

    return _errno.errorcode.get(err.errno or 0, default)


class HostUdp:
    """The host half of a UDP socket that sends to allowed addresses outside the kernel: one
    host UDP socket, a bounded send queue (full: the datagram is dropped, as UDP does), and a
    receiver that lets in only datagrams from addresses the policy allows."""

    MAX_QUEUE = 256

    def __init__(self, sock: Any, allowed: Any, family: int) -> None:
        self.sock = sock
        self.allowed = allowed          # (ip, port) -> bool
        self.family = family
        self.queue: deque[tuple[bytes, tuple[Any, ...]]] = deque()
        self.lot = trio.lowlevel.ParkingLot()
        self.scope = trio.CancelScope()

    def push(self, data: bytes, address: tuple[Any, ...]) -> bool:
        if len(self.queue) >= self.MAX_QUEUE:
            return False
        self.queue.append((data, address))
        self.lot.unpark_all()
        return True

    def close(self) -> None:
        self.scope.cancel()

    async def run(self) -> None:
        with self.scope:
            hs = trio.socket.socket(self.family, _pysocket.SOCK_DGRAM)
            try:
                await hs.bind(("0.0.0.0", 0) if self.family == _pysocket.AF_INET else ("::", 0))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, hs)
                    nursery.start_soon(self._receiver, hs)
            finally:
                hs.close()

    async def _sender(self, hs: Any) -> None:
        while True:
            while not self.queue:
                await self.lot.park()
            data, address = self.queue.popleft()
            try:
                await hs.sendto(data, address)
            except OSError as e:
                log.debug("udp to %s: %s", address, e)

    async def _receiver(self, hs: Any) -> None:
        import ipaddress

        sock = self.sock
        while True:
            try:
                data, src = await hs.recvfrom(65536)
            except OSError as e:
                log.debug("udp receive: %s", e)
                continue
            ip = ipaddress.ip_address(src[0].split("%", 1)[0])
            if not self.allowed(ip, src[1]):
                continue
            remote = sock.remote
            if remote is not None and (str(remote[0]).removeprefix("::ffff:"), remote[1]) != (str(ip), src[1]):
                continue  # a connected socket hears only its peer
            if not sock.deliver(data, (ip, src[1]), None):
                sock.drops += 1


class HostDest:
    """What ``route`` returns for an outside destination: delivering queues it on the link."""

    __slots__ = ("link", "address", "drops", "senders")

    def __init__(self, link: HostUdp, address: tuple[Any, ...]) -> None:
        self.link, self.address = link, address
        self.drops = 0
        self.senders: set[Any] = set()

    def deliver(self, data: bytes, src: Any, rights: Any) -> bool:
        return self.link.push(data, self.address)


class HostPublisher:
    """A sandbox TCP listener published on the host's loopback (a port the policy lists):
    each host connection becomes an unaccepted connection in the listener's backlog, pumped
    by a ``HostLink``; a full backlog closes the host connection at once."""

    def __init__(self, listener: "InetStream", port: int, spawn: Any, make_server: Any) -> None:
        self.listener, self.port = listener, port
        self.spawn, self.make_server = spawn, make_server
        self.scope = trio.CancelScope()

    def close(self) -> None:
        self.scope.cancel()

    async def run(self) -> None:
        with self.scope:
            hs = trio.socket.socket(_pysocket.AF_INET, _pysocket.SOCK_STREAM)
            try:
                hs.setsockopt(_pysocket.SOL_SOCKET, _pysocket.SO_REUSEADDR, 1)
                try:
                    await hs.bind(("127.0.0.1", self.port))
                except OSError as e:
                    log.info("cannot publish port %d on the host: %s", self.port, e)
                    return
                hs.listen(max(1, self.listener.backlog_max))
                while True:
                    conn, addr = await hs.accept()
                    listener = self.listener
                    if listener.closed or listener.state != "listening" or listener.backlog_full():
                        conn.close()
                        continue
                    server = self.make_server(listener, addr)
                    link = HostLink(server, listener.capacity)
                    server.host = link
                    self.spawn(link.run_accepted, conn)
                    listener.enqueue(server)
            finally:
                hs.close()
