"""The HTTP/HTTPS proxy that real programs reach the network through in mode allow (issue 16 §1).

The daemon serves it on a socket inside the jail's network namespace (``jail_net.py``); every
request is decided by the kernel's own ``NetPolicy``, the object the socket table decides with,
so ``--allow`` rules (CIDR, port, protocol, host names) mean the same for builtin and real
programs, and a denial is counted and logged the same way.

* ``CONNECT host:port`` (HTTPS and any other TCP): decided, connected, then a byte tunnel;
* ``GET http://host[:port]/path`` and the other methods in absolute form: decided, sent to the
  origin in origin form, the answer passed back; each request on a kept-alive connection is
  decided again.  HTTP framing on both sides is h11's.
* Names are resolved by the daemon (the socket table's resolver, as for builtin programs), the
  addresses learnt for name rules, and the decision taken on each resolved address; only
  allowed addresses are connected to, so rebinding and numeric spellings gain nothing.
* Refusals are one line of text: 403 for what the policy denies, 400 for what is not a proxy
  request, 502 when the origin cannot be resolved or reached.

Connections are bounded (``max_connections``; more wait in the backlog) and every copy is a
bounded read then ``send_all``, so a slow side slows the other instead of filling memory.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket as _socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlsplit

import h11
import trio

from kernel.net.policy import IPAddress, NetPolicy, canonical

if TYPE_CHECKING:
    from kernel.net.table import SocketTable

log = logging.getLogger("vfsfuse.daemon.jail_proxy")

PIECE = 256 * 1024
HEAD_LIMIT = 64 * 1024
# hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never passed on
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
                        b"proxy-authenticate", b"te", b"trailer", b"upgrade"})
Resolver = Callable[..., Awaitable[list[Any]]]


class ProxyRefusal(Exception):
    """A request the proxy answers itself: an HTTP status and one line of text."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status
        self.line = line


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: a host (a name or an address, no brackets) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A proxy request line, understood: CONNECT's target, or an absolute URL's target and the
    origin-form path sent on."""

    method: bytes
    target: Target
    path: bytes = b""

    @property
    def tunnel(self) -> bool:
        return self.method == b"CONNECT"


def parse_authority(text: str, default_port: int | None = None) -> Target:
    """``host:port``, ``[v6]:port`` (or without the port when *default_port* is given)."""
    if not text or any(c in text for c in "/@?# \t"):
        raise ProxyRefusal(400, f"bad proxy target {text!r}")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ProxyRefusal(400, f"bad proxy target {text!r}: missing ]")
        host, rest = text[1:end], text[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ProxyRefusal(400, f"bad proxy target {text!r}: not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
        rest = ":" + port_text if sep else ""
        if ":" in host:
            raise ProxyRefusal(400, f"bad proxy target {text!r}: write IPv6 addresses in brackets")
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) <= 65535:
            raise ProxyRefusal(400, f"bad port in proxy target {text!r}")
        port = int(digits)
    elif default_port is not None:
        port = default_port
    else:
        raise ProxyRefusal(400, f"proxy target {text!r} has no port")
    host = host.lower().rstrip(".")
    if not host:
        raise ProxyRefusal(400, f"bad proxy target {text!r}: no host")
    return Target(host, port)


def parse_request(method: bytes, target: bytes) -> ProxyRequest:
    """The request line of a proxy request: ``CONNECT host:port`` or an absolute ``http://`` URL."""
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyRefusal(400, "bad proxy target: not ASCII") from None
    if method == b"CONNECT":
        return ProxyRequest(method, parse_authority(text))
    if text.startswith("/") or text == "*":
        raise ProxyRefusal(400, "this is an HTTP proxy: ask for an absolute URL (http://HOST/...)")
    url = urlsplit(text)
    if url.scheme.lower() == "https":
        raise ProxyRefusal(400, "https:// goes through CONNECT, not a plain request")
    if url.scheme.lower() != "http" or not url.netloc:
        raise ProxyRefusal(400, f"only http:// URLs are proxied, not {text[:80]!r}")
    if "@" in url.netloc:
        raise ProxyRefusal(400, "user names in proxy URLs are not supported")
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    return ProxyRequest(method, parse_authority(url.netloc, 80), path.encode("ascii"))


class Decider:
    """Decides targets with the kernel's policy and resolves names with its resolver."""

    def __init__(self, policy: NetPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    @classmethod
    def of(cls, table: "SocketTable") -> "Decider":
        return cls(table.policy, table.resolver)

    async def addresses(self, target: Target) -> list[IPAddress]:
        """The addresses of *target* the policy lets a TCP connection go to (in the resolver's
        order); ProxyRefusal 403 when none, 502 when the name does not resolve."""
        policy = self.policy
        try:
            ips: list[IPAddress] = [ipaddress.ip_address(target.host)]
        except ValueError:
            ips = await self._resolve(target)
            policy.learn(target.host, ips)
        allowed = [canonical(ip) for ip in ips if policy.outbound_allowed("tcp", ip, target.port)]
        if not allowed:
            policy.deny("connect", f"tcp {target} (jail proxy)")
            raise ProxyRefusal(403, f"the sandbox's network policy does not allow tcp {target}")
        return allowed

    async def _resolve(self, target: Target) -> list[IPAddress]:
        try:
            infos = await self.resolver(target.host, None, 0, _socket.SOCK_STREAM)
        except OSError:
            raise ProxyRefusal(502, f"cannot resolve {target.host!r}") from None
        out: list[IPAddress] = []
        for info in infos:
            try:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            except ValueError:
                continue
            if ip not in out:
                out.append(ip)
        if not out:
            raise ProxyRefusal(502, f"cannot resolve {target.host!r}")
        return out


async def _next_event(conn: h11.Connection, stream: trio.abc.ReceiveStream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(bytes(await stream.receive_some(PIECE)))


def _passed_on(headers: Any) -> list[tuple[bytes, bytes]]:
    """Headers without the hop-by-hop ones (and those the Connection header names)."""
    named = {t.strip().lower() for name, value in headers if name == b"connection" for t in value.split(b",")}
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in named]


class JailProxy:
    """One jail's proxy: serves the listening socket until cancelled."""

    def __init__(self, listener: trio.socket.SocketType, decider: Decider, *,
                 max_connections: int = 256, connect_timeout: float = 30.0) -> None:
        self.listener = listener
        self.decider = decider
        self.limit = trio.Semaphore(max_connections)
        self.connect_timeout = connect_timeout

    async def serve(self) -> None:
        """Accept and serve until cancelled or closed; a failing accept (EMFILE) waits a moment
        instead of ending the jail's wait."""
        async with trio.open_nursery() as nursery:
            while self.listener.fileno() >= 0:
                await self.limit.acquire()
                try:
                    sock, _ = await self.listener.accept()
                except OSError as err:
                    self.limit.release()
                    log.info("jail proxy: accept: %s", err)
                    await trio.sleep(0.1)
                    continue
                except BaseException:
                    self.limit.release()
                    raise
                nursery.start_soon(self._connection, trio.SocketStream(sock))

    def close(self) -> None:
        self.listener.close()

    async def _connection(self, client: trio.SocketStream) -> None:
        try:
            await self.handle(client)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.ProtocolError) as err:
            log.debug("jail proxy connection: %s", err)
        except Exception:  # one connection's bug must not end the jail's wait; it is reported
            log.warning("jail proxy connection failed", exc_info=True)
        finally:
            self.limit.release()
            await trio.aclose_forcefully(client)

    async def handle(self, client: trio.abc.Stream) -> None:
        """Serve one client connection: requests one after the other until it closes."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
        while True:
            try:
                event = await _next_event(conn, client)
            except h11.RemoteProtocolError as err:
                await _refuse(conn, client, ProxyRefusal(err.error_status_hint, f"bad request: {err}"))
                return
            if not isinstance(event, h11.Request):
                return
            try:
                req = parse_request(event.method, event.target)
                upstream = await self._connect(req.target)
            except ProxyRefusal as refusal:
                await _refuse(conn, client, refusal)
                return
            async with upstream:
                if req.tunnel:
                    await _tunnel(conn, client, upstream)
                    return
                if not await _forward(conn, client, upstream, event, req):
                    return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _connect(self, target: Target) -> trio.SocketStream:
        ips = await self.decider.addresses(target)
        last: OSError | None = None
        for ip in ips:
            family = _socket.AF_INET if ip.version == 4 else _socket.AF_INET6
            sock = trio.socket.socket(family, _socket.SOCK_STREAM)
            try:
                with trio.fail_after(self.connect_timeout):
                    await sock.connect((str(ip), target.port))
            except (OSError, trio.TooSlowError) as err:
                sock.close()
                last = err if isinstance(err, OSError) else OSError(errno.ETIMEDOUT, "Connection timed out")
                continue
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return trio.SocketStream(sock)
        why = last.strerror if last is not None and last.strerror else "no address"
        raise ProxyRefusal(502, f"cannot connect to {target}: {why}")


async def _refuse(conn: h11.Connection, client: trio.abc.Stream, refusal: ProxyRefusal) -> None:
    """The refusal's status with its one line as the body; the connection then closes."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = (refusal.line + "\n").encode("utf-8", "replace")
    reason = {400: b"Bad Request", 403: b"Forbidden", 502: b"Bad Gateway"}.get(refusal.status, b"Error")
    headers = [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Content-Length", str(len(body)).encode()),
               (b"Connection", b"close")]
    try:
        data = conn.send(h11.Response(status_code=refusal.status, reason=reason, headers=headers))
        data = (data or b"") + (conn.send(h11.Data(data=body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError:
        return
    await client.send_all(data)


async def _tunnel(conn: h11.Connection, client: trio.abc.Stream, upstream: trio.SocketStream) -> None:
    """CONNECT: 200, then bytes both ways until both sides have finished."""
    while conn.their_state is h11.SEND_BODY:  # a CONNECT with a body: passed on as tunnel bytes
        event = await _next_event(conn, client)
        if isinstance(event, h11.Data):
            await upstream.send_all(event.data)
    data = conn.send(h11.Response(status_code=200, reason=b"Connection established", headers=[]))
    await client.send_all(data or b"")
    early, _ = conn.trailing_data
    if early:
        await upstream.send_all(bytes(early))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_copy, client, upstream)
        nursery.start_soon(_copy, upstream, client)


async def _copy(src: trio.abc.ReceiveStream, dest: trio.abc.Stream) -> None:
    """Bytes from *src* to *dest*; at *src*'s end, *dest*'s writing half closes."""
    try:
        while True:
            data = await src.receive_some(PIECE)
            if not data:
                break
            await dest.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if isinstance(dest, trio.SocketStream):
        try:
            await dest.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


async def _forward(conn: h11.Connection, client: trio.abc.Stream, upstream: trio.SocketStream,
                   request: h11.Request, req: ProxyRequest) -> bool:
    """One plain request to the origin and its answer back; False if the client connection
    cannot carry another request."""
    up = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT)
    headers = _passed_on(request.headers)
    if not any(n == b"host" for n, _ in headers):
        headers.append((b"Host", str(req.target).encode()))
    headers.append((b"Connection", b"close"))
    await upstream.send_all(up.send(h11.Request(method=request.method, target=req.path, headers=headers,
                                                http_version=b"1.1")) or b"")
    sent_body = trio.Event()

    async def body() -> None:
        while True:
            event = await _next_event(conn, client)
            if isinstance(event, h11.Data):
                await upstream.send_all(up.send(event) or b"")
            elif isinstance(event, h11.EndOfMessage):
                await upstream.send_all(up.send(h11.EndOfMessage(headers=_passed_on(event.headers))) or b"")
                sent_body.set()
                return
            else:
                return

    answered = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(body)
        try:
            while True:
                event = await _next_event(up, upstream)
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code != 101:
                        await client.send_all(conn.send(h11.InformationalResponse(
                            status_code=event.status_code, headers=_passed_on(event.headers),
                            reason=event.reason)) or b"")
                    continue
                if isinstance(event, h11.Response):
                    answered = True
                    await client.send_all(conn.send(h11.Response(
                        status_code=event.status_code, headers=_passed_on(event.headers),
                        reason=event.reason)) or b"")
                    length = _body_length(request.method, event)
                    if length is not None:
                        if not await _copy_length(up, upstream, conn, client, length):
                            nursery.cancel_scope.cancel()
                            return False
                        await client.send_all(conn.send(h11.EndOfMessage()) or b"")
                        break
                elif isinstance(event, h11.Data):
                    await client.send_all(conn.send(event) or b"")
                elif isinstance(event, h11.EndOfMessage):
                    await client.send_all(conn.send(h11.EndOfMessage(headers=_passed_on(event.headers))) or b"")
                    break
                else:
                    break
        except h11.RemoteProtocolError as err:
            if not answered:
                await _refuse(conn, client, ProxyRefusal(502, f"bad answer from {req.target}: {err}"))
            nursery.cancel_scope.cancel()
            return False
        if not sent_body.is_set():
            nursery.cancel_scope.cancel()  # answered before the body was sent: this connection ends
            return False
    return answered


def _body_length(method: bytes, response: h11.Response) -> int | None:
    """The body length of a response framed by one Content-Length (None: let h11 frame it)."""
    if method == b"HEAD" or response.status_code in (204, 304):
        return None
    headers = response.headers
    lengths = [v for n, v in headers if n == b"content-length"]
    if any(n == b"transfer-encoding" for n, _ in headers) or len(lengths) != 1 or not lengths[0].isdigit():
        return None
    return int(lengths[0])


async def _copy_length(up: h11.Connection, upstream: trio.SocketStream, conn: h11.Connection,
                       client: trio.abc.Stream, length: int) -> bool:
    """A Content-Length body: what h11 has buffered, then straight from the socket (h11 would
    copy every piece twice more; the upstream connection ends after this answer anyway).
    False if the origin ends early."""
    while length > 0:
        event = up.next_event()
        if event is h11.NEED_DATA:
            break
        if not isinstance(event, h11.Data):
            return False
        length -= len(event.data)
        await client.send_all(conn.send(event) or b"")
    while length > 0:
        data = await upstream.receive_some(min(PIECE, length))
        if not data:
            return False
        length -= len(data)
        await client.send_all(conn.send(h11.Data(data=data)) or b"")
    return True
