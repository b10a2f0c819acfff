"""AF_INET and AF_INET6: TCP and UDP inside the kernel.

The only interface is loopback (127.0.0.0/8 and ::1; 0.0.0.0 and :: as destinations mean
this host, as on Linux).  Ports live in one table per protocol with Linux's bind rules
(overlapping addresses conflict unless both sockets set SO_REUSEADDR and the older one
is not listening, or both set SO_REUSEPORT; an IPv6 wildcard without IPV6_V6ONLY also
covers IPv4), port 0 takes an ephemeral port from 32768-60999, and a TCP backlog holds
``backlog + 1`` connections.  Every listen, connect and send asks the policy first:
in mode ``none`` nothing inet works; traffic for other addresses needs an allow rule and
the host adapter (which this kernel does not have yet: ENETUNREACH once allowed).

Addresses are ``(ipaddress, port)`` inside; the syscall layer shows them the way
Python's ``socket`` does: ``(host, port)`` and ``(host, port, 0, 0)``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket as _pysocket
from typing import TYPE_CHECKING, Any

from kernel.errors import KernelError

from .dgram import DatagramSocket
from .policy import IPAddress, canonical, is_loopback
from .stream import StreamSocket
from .table import (
    AF_INET,
    AF_INET6,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_V6ONLY,
    SO_REUSEADDR,
    SO_REUSEPORT,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
    SOMAXCONN,
    Cred,
    Socket,
)

if TYPE_CHECKING:
    from .table import SocketTable

EPHEMERAL = (32768, 60999)
ANY4 = ipaddress.IPv4Address("0.0.0.0")
ANY6 = ipaddress.IPv6Address("::")
LO4 = ipaddress.IPv4Address("127.0.0.1")
LO6 = ipaddress.IPv6Address("::1")
Addr = tuple[IPAddress, int]


@functools.lru_cache(maxsize=4096)
def parse_ip(family: int, host: str) -> IPAddress:
    """A numeric host for *family*: IPv4 in any inet_aton spelling (as glibc accepts it),
    IPv6 without zone; EINVAL otherwise (names are resolved before this)."""
    if family == AF_INET:
        if host == "":
            return ANY4
        if host == "<broadcast>":
            return ipaddress.IPv4Address("255.255.255.255")
        try:
            return ipaddress.IPv4Address(host)
        except ValueError:
            pass
        try:
            return ipaddress.IPv4Address(_pysocket.inet_aton(host))
        except (OSError, ValueError):
            raise KernelError("EINVAL", f"not a numeric IPv4 address: {host!r}") from None
    if host == "":
        return ANY6
    try:
        return ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        raise KernelError("EINVAL", f"not a numeric IPv6 address: {host!r}") from None


def numeric(family: int, host: str) -> bool:
    try:
        parse_ip(family, host)
        return True
    except KernelError:
        return False


def show(family: int, addr: Addr | None) -> tuple[Any, ...]:
    if addr is None:
        return ("0.0.0.0", 0) if family == AF_INET else ("::", 0, 0, 0)
    ip, port = addr
    if family == AF_INET:
        return (str(ip), port)
    if ip.version == 4:
        return (f"::ffff:{ip}", port, 0, 0)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (f"::ffff:{mapped}" if mapped is not None else str(ip), port, 0, 0)  # inet_ntop's spelling


def _as_family(family: int, ip: IPAddress) -> IPAddress:
    """*ip* as a socket of *family* sees it (IPv4 peers of an IPv6 socket are mapped)."""
    if family == AF_INET6 and ip.version == 4:
        return ipaddress.IPv6Address(f"::ffff:{ip}")
    return ip


class _InetMixin:
    table: "SocketTable"
    family: int
    local: Addr | None
    remote: Addr | None
    options: dict[tuple[int, int], Any]
    proto_name: str

    def unbind(self) -> None:
        if self.local is not None:
            self.table.inet.forget(self)

    def sockname(self) -> tuple[Any, ...]:
        return show(self.family, self.local)

    def v6only(self) -> bool:
        return bool(self.options.get((IPPROTO_IPV6, IPV6_V6ONLY), 0))

    def v4_view(self) -> IPAddress | None:
        """The IPv4 address this socket's binding covers (0.0.0.0: all), None if none."""
        if self.local is None:
            return None
        ip = self.local[0]
        if ip.version == 4:
            return ip
        assert isinstance(ip, ipaddress.IPv6Address)
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip == ANY6 and not self.v6only():
            return ANY4
        return None

    def v6_view(self) -> IPAddress | None:
        if self.local is None:
            return None
        ip = self.local[0]
        if ip.version == 4 or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None):
            return None
        return ip


class InetStream(_InetMixin, StreamSocket):
    """A TCP socket."""

    tcp = True
    unconnected_send = "EPIPE"
    unconnected_recv = "ENOTCONN"
    listening_recv = "ENOTCONN"
    proto_name = "tcp"

    def __init__(self, table: "SocketTable", family: int, owner: Cred) -> None:
        super().__init__(table, family, SOCK_STREAM, IPPROTO_TCP, owner)
        self.rcvbuf, self.sndbuf = 131072, 16384
        self.connecting_to: InetStream | None = None
        self.connect_failed = False
        self.publisher: Any = None

    def peername(self) -> tuple[Any, ...]:
        if self.state != "connected" or self.remote is None:
            raise KernelError("ENOTCONN", "socket is not connected")
        return show(self.family, self.remote)

    def accept(self) -> "StreamSocket | None":
        server = super().accept()
        if server is not None:
            self.table.inet.promote(self)
        return server

    def on_close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        if self.connecting_to is not None:
            try:
                self.connecting_to.waiting.remove(self)
            except ValueError:
                pass
            self.connecting_to = None
        super().on_close()


class InetDgram(_InetMixin, DatagramSocket):
    """A UDP socket: datagrams between sockets of this kernel, dropped when nobody listens
    (a connected sender then sees ECONNREFUSED, Linux's ICMP port unreachable)."""

    lossy = True
    proto_name = "udp"

    def __init__(self, table: "SocketTable", family: int, owner: Cred) -> None:
        super().__init__(table, family, SOCK_DGRAM, IPPROTO_UDP, owner)
        self.rcvbuf = self.sndbuf = 212992
        self.max_datagram = 65507 if family == AF_INET else 65527
        self.host_udp: Any = None

    def peername(self) -> tuple[Any, ...]:
        if self.remote is None:
            raise KernelError("ENOTCONN", "socket is not connected")
        return show(self.family, self.remote)

    def route(self, dest: Any) -> Any:
        space = self.table.inet
        ip, port = dest
        external = space.check_out("sendto", "udp", ip, port)
        if self.local is None:
            space.autobind(self, ANY4 if self.family == AF_INET else ANY6)
        target = None if external else space.find_udp(ip, port, self)
        if target is None and (external or self.table.policy.outbound_allowed("udp", ip, port)):
            return self._host_dest(ip, port)
        if target is None and self.remote is not None:
            self.err = "ECONNREFUSED"
        return target

    def _host_dest(self, ip: IPAddress, port: int) -> Any:
        """The host adapter's side of this socket (made on first use) aimed at (ip, port)."""
        from .host import HostDest, HostUdp

        dst = canonical(ip)
        if self.host_udp is None:
            spawn = self.table.spawn
            if spawn is None:
                raise KernelError("ENETUNREACH", "network is unreachable (no host adapter)")
            policy = self.table.policy
            family = AF_INET if dst.version == 4 else AF_INET6
            self.host_udp = HostUdp(self, lambda a, p: policy.outbound_allowed("udp", a, p), family)
            spawn(self.host_udp.run)
        address: tuple[Any, ...] = (str(dst), port) if dst.version == 4 else (str(dst), port, 0, 0)
        return HostDest(self.host_udp, address)

    def on_close(self) -> None:
        if self.host_udp is not None:
            self.host_udp.close()
        super().on_close()

    def source(self) -> Any:
        assert self.local is not None
        ip, port = self.local
        if ip.is_unspecified:
            ip = LO4 if ip.version == 4 else LO6
        return (ip, port)


class InetSpace:
    """The port tables of one kernel and the TCP/UDP connection logic."""

    def __init__(self, table: "SocketTable") -> None:
        self.table = table
        self.ports: dict[int, dict[int, list[Any]]] = {IPPROTO_TCP: {}, IPPROTO_UDP: {}}
        self._cursor = EPHEMERAL[0]

    def create(self, family: int, type: int, proto: int, owner: Cred) -> Socket:
        if type == SOCK_STREAM:
            if proto not in (0, IPPROTO_TCP):
                raise KernelError("EPROTONOSUPPORT", f"protocol {proto} not supported for a stream socket")
            return InetStream(self.table, family, owner)
        if type == SOCK_DGRAM:
            if proto not in (0, IPPROTO_UDP):
                raise KernelError("EPROTONOSUPPORT", f"protocol {proto} not supported for a datagram socket")
            return InetDgram(self.table, family, owner)
        raise KernelError("ESOCKTNOSUPPORT", f"socket type {type} not supported for inet")

    # -- the policy ---------------------------------------------------------------------------
    def check_out(self, op: str, proto: str, ip: IPAddress, port: int) -> bool:
        """EACCES unless the policy lets this through; True when it must leave the kernel."""
        policy = self.table.policy
        shown = f"{canonical(ip)}:{port}"
        policy.check_inet(op, f"{proto} {shown}")
        if is_loopback(ip):
            return False
        policy.check_outbound(op, proto, ip, port)
        return True

    def _to_host(self, client: InetStream, ip: IPAddress, port: int) -> None:
        """Hand an allowed connection to the host adapter (the client waits, connecting)."""
        spawn = self.table.spawn
        if spawn is None:
            raise KernelError("ENETUNREACH", "network is unreachable (no host adapter)")
        from .host import HostLink

        dst = canonical(ip)
        family = AF_INET if dst.version == 4 else AF_INET6
        address: tuple[Any, ...] = (str(dst), port) if family == AF_INET else (str(dst), port, 0, 0)
        link = HostLink(client, self.table.default_buffer)
        client.host = link
        client.state = "connecting"
        spawn(link.run, family, address)

    # -- binding ------------------------------------------------------------------------------
    def _table(self, sock: Any) -> dict[int, list[Any]]:
        return self.ports[IPPROTO_TCP if isinstance(sock, InetStream) else IPPROTO_UDP]

    @staticmethod
    def _overlap(a: Any, b: Any) -> bool:
        a4, b4 = a.v4_view(), b.v4_view()
        if a4 is not None and b4 is not None and (a4 == b4 or a4 == ANY4 or b4 == ANY4):
            return True
        a6, b6 = a.v6_view(), b.v6_view()
        return a6 is not None and b6 is not None and (a6 == b6 or a6 == ANY6 or b6 == ANY6)

    def _conflict(self, sock: Any, port: int) -> bool:
        for other in self._table(sock).get(port, ()):
            if other is sock or not self._overlap(sock, other):
                continue
            if sock.opt(SOL_SOCKET, SO_REUSEPORT) and other.opt(SOL_SOCKET, SO_REUSEPORT) and sock.uid == other.uid:
                continue
            if (sock.opt(SOL_SOCKET, SO_REUSEADDR) and other.opt(SOL_SOCKET, SO_REUSEADDR)
                    and getattr(other, "state", "") != "listening"):
                continue
            return True
        return False

    def bind(self, sock: Any, ip: IPAddress, port: int, uid: int) -> None:
        if sock.local is not None:
            raise KernelError("EINVAL", "socket is already bound")
        if not (ip.is_unspecified or canonical(ip).is_loopback):
            raise KernelError("EADDRNOTAVAIL", "cannot assign requested address")
        if not 0 <= port <= 65535:
            raise KernelError("EINVAL", f"port out of range: {port}")
        if 0 < port < 1024 and uid != 0:
            raise KernelError("EACCES", "permission denied (port below 1024)")
        if port == 0:
            self._claim_ephemeral(sock, ip)
            return
        sock.local = (ip, port)
        if self._conflict(sock, port):
            sock.local = None
            raise KernelError("EADDRINUSE", "address already in use")
        self._register(sock)

    def _claim_ephemeral(self, sock: Any, ip: IPAddress) -> None:
        lo, hi = EPHEMERAL
        table = self._table(sock)
        span = hi - lo + 1
        for _ in range(span):
            port = self._cursor
            self._cursor = lo + (port - lo + 1) % span
            if port in table:
                continue
            sock.local = (ip, port)
            self._register(sock)
            return
        raise KernelError("EADDRINUSE", "no ephemeral port left")

    def autobind(self, sock: Any, ip: IPAddress) -> None:
        self._claim_ephemeral(sock, ip)

    def _register(self, sock: Any) -> None:
        self._table(sock).setdefault(sock.local[1], []).append(sock)
        sock.registered = True
        if isinstance(sock, StreamSocket) and sock.state == "new":
            sock.state = "bound"

    def forget(self, sock: Any) -> None:
        if not getattr(sock, "registered", False):
            return  # an accepted connection shares its listener's port without holding it
        sock.registered = False
        table = self._table(sock)
        port = sock.local[1]
        entries = table.get(port)
        if entries is not None:
            try:
                entries.remove(sock)
            except ValueError:
                pass
            if not entries:
                del table[port]

    # -- TCP ----------------------------------------------------------------------------------
    def listen(self, sock: InetStream, backlog: int) -> None:
        self.table.policy.check_inet("listen", "tcp")
        if sock.state not in ("new", "bound", "listening"):
            raise KernelError("EINVAL", "socket is connected")
        if sock.local is None:
            self.autobind(sock, ANY4 if sock.family == AF_INET else ANY6)
        sock.backlog_max = min(max(backlog, 0), SOMAXCONN)
        sock.state = "listening"
        self.promote(sock)
        sock.changed()
        self._maybe_publish(sock)

    def _maybe_publish(self, sock: InetStream) -> None:
        """A listener on a port the policy publishes also listens on the host's 127.0.0.1."""
        policy = self.table.policy
        assert sock.local is not None
        port = sock.local[1]
        if sock.publisher is not None or policy.mode != "allow" or port not in policy.publish:
            return
        if self.table.spawn is None:
            return
        from .host import HostPublisher

        sock.publisher = HostPublisher(sock, port, self.table.spawn, self._published_connection)
        self.table.spawn(sock.publisher.run)

    def _published_connection(self, listener: InetStream, addr: tuple[Any, ...]) -> InetStream:
        """The sandbox end of a connection that came in through a published port."""
        server = InetStream(self.table, listener.family, listener.cred)
        self.table.add(server)
        assert listener.local is not None
        local_ip = listener.local[0]
        if local_ip.is_unspecified:
            local_ip = _as_family(listener.family, LO4)
        server.local = (local_ip, listener.local[1])
        server.remote = (_as_family(listener.family, ipaddress.ip_address(addr[0])), addr[1])
        server.options.update(listener.options)
        server.capacity = listener.capacity
        server.state = "connected"
        return server

    def find_listener(self, ip: IPAddress, port: int) -> InetStream | None:
        exact = wild = None
        want4 = canonical(ip) if canonical(ip).version == 4 else None
        for s in self.ports[IPPROTO_TCP].get(port, ()):
            if s.state != "listening":
                continue
            if want4 is not None:
                v4 = s.v4_view()
                if v4 == want4:
                    exact = s
                elif v4 == ANY4:
                    wild = wild or s
            else:
                v6 = s.v6_view()
                if v6 == ip:
                    exact = s
                elif v6 == ANY6:
                    wild = wild or s
        return exact or wild

    def connect_tcp(self, client: InetStream, ip: IPAddress, port: int) -> bool:
        """Connect or park *client*; True once connected, False while it waits for room in
        a full backlog (``client.state == "connecting"``)."""
        if client.state == "connected" or client.state == "listening":
            raise KernelError("EISCONN", "socket is already connected")
        if client.state == "connecting":
            raise KernelError("EALREADY", "operation already in progress")
        if ip.version == 4 and client.family == AF_INET6:
            raise KernelError("EAFNOSUPPORT", "address family not supported")
        external = self.check_out("connect", "tcp", ip, port)
        if ip.is_unspecified:
            ip = LO4 if ip.version == 4 else LO6
        self._local_for(client, ip)
        client.remote = (ip, port)
        client.shut_rd = client.shut_wr = client.fin = client.rst_sent = False
        client.err = None
        listener = self.find_listener(ip, port) if port and not external else None
        if listener is None:
            # the in-kernel loopback answers first; an allow rule naming a loopback address
            # reaches the host's own loopback when nothing in here listens (the seed's order)
            if external or self.table.policy.outbound_allowed("tcp", ip, port):
                self._to_host(client, ip, port)
                return False
            client.remote = None
            raise KernelError("ECONNREFUSED", "connection refused")
        if listener.backlog_full() or listener.waiting:
            client.state = "connecting"
            client.connecting_to = listener
            listener.waiting.append(client)
            return False
        self._establish(listener, client)
        return True

    def _local_for(self, client: Any, dst: IPAddress) -> None:
        """Autobind, and a wildcard-bound socket takes the route's source address
        (127.0.0.1 for all of 127/8, ::1 for IPv6; mapped for an IPv6 socket)."""
        src = _as_family(client.family, LO4) if canonical(dst).version == 4 else LO6
        if client.local is None:
            self.autobind(client, src)
        elif client.local[0].is_unspecified:
            client.local = (src, client.local[1])

    def _establish(self, listener: InetStream, client: InetStream) -> None:
        if len(self.table.sockets) >= self.table.max_sockets:
            raise KernelError("EAGAIN", "too many sockets in the kernel")
        assert client.local is not None and client.remote is not None
        server = InetStream(self.table, listener.family, listener.cred)
        self.table.add(server)
        server.local = (_as_family(listener.family, client.remote[0]), client.remote[1])
        server.remote = (_as_family(listener.family, client.local[0]), client.local[1])
        for key, value in listener.options.items():
            server.options[key] = value
        server.capacity = listener.capacity
        server.rcvbuf, server.sndbuf = listener.rcvbuf, listener.sndbuf
        server.peercred = (client.pid, client.uid, client.gid)
        client.peercred = (listener.pid, listener.uid, listener.gid)
        StreamSocket.link(client, server)
        client.connect_failed = False
        listener.enqueue(server)

    def promote(self, listener: InetStream) -> None:
        """Room in the backlog: the oldest parked connect completes."""
        while listener.waiting and not listener.backlog_full() and listener.state == "listening":
            client = listener.waiting.popleft()
            client.connecting_to = None
            if client.closed or client.state != "connecting":
                continue
            self._establish(listener, client)

    # -- UDP ----------------------------------------------------------------------------------
    def connect_udp(self, sock: InetDgram, ip: IPAddress, port: int) -> None:
        self.check_out("connect", "udp", ip, port)
        if ip.is_unspecified:
            ip = LO4 if ip.version == 4 else LO6
        self._local_for(sock, ip)
        sock.remote = (ip, port)

    def find_udp(self, ip: IPAddress, port: int, sender: InetDgram) -> InetDgram | None:
        if ip.is_unspecified:
            ip = LO4 if ip.version == 4 else LO6
        want = canonical(ip)
        src_ip, src_port = sender.source()
        exact = wild = None
        for s in self.ports[IPPROTO_UDP].get(port, ()):
            if want.version == 4:
                view = s.v4_view()
                match_exact, match_wild = view == want, view == ANY4
            else:
                view = s.v6_view()
                match_exact, match_wild = view == want, view == ANY6
            if not (match_exact or match_wild):
                continue
            if s.remote is not None and (canonical(s.remote[0]) != canonical(src_ip) or s.remote[1] != src_port):
                continue
            if match_exact:
                exact = exact or s
            else:
                wild = wild or s
        return exact or wild

    def deliver_source(self, target: InetDgram, src: Addr) -> Addr:
        return (_as_family(target.family, src[0]), src[1])
