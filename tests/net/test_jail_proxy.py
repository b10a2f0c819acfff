"""The jail's allow-mode proxy without a jail: request-line parsing, decisions with the kernel's
own NetPolicy, and the proxy served on a host socket in front of origin servers that the tests
start on 127.0.0.1 (the jail itself: tests/jail/test_jail_net.py)."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from kernel.net.policy import NetPolicy
from tests.tcpservers import echo, serve_tcp
from vfsfuse.daemon.jail_proxy import (
    Decider,
    JailProxy,
    ProxyRefusal,
    Target,
    parse_authority,
    parse_request,
)

# -- parsing -------------------------------------------------------------------------------

AUTHORITIES = [
    ("example.org:443", None, Target("example.org", 443)),
    ("EXAMPLE.org.:8080", None, Target("example.org", 8080)),
    ("127.0.0.1:80", None, Target("127.0.0.1", 80)),
    ("[::1]:8443", None, Target("::1", 8443)),
    ("example.org", 80, Target("example.org", 80)),
    ("[2001:db8::1]", 80, Target("2001:db8::1", 80)),
]


@pytest.mark.parametrize("text,default,want", AUTHORITIES)
def test_authorities(text, default, want):
    assert parse_authority(text, default) == want


@pytest.mark.parametrize("text", ["example.org", "", ":80", "host:0", "host:65536", "host:8x", "::1:80",
                                  "[::1", "[nothost]:80", "user@host:80", "host:80/path", "a b:80",
                                  "host:\u0661\u0662"])
def test_bad_authorities_are_400_with_one_line(text):
    with pytest.raises(ProxyRefusal) as info:
        parse_authority(text)
    assert info.value.status == 400 and "\n" not in info.value.line


@pytest.mark.parametrize("method,target,want", [
    (b"GET", b"http://example.org/a/b?c=1", (Target("example.org", 80), b"/a/b?c=1")),
    (b"GET", b"http://example.org", (Target("example.org", 80), b"/")),
    (b"POST", b"HTTP://127.0.0.1:8000/x", (Target("127.0.0.1", 8000), b"/x")),
    (b"GET", b"http://[::1]:81/", (Target("::1", 81), b"/")),
    (b"CONNECT", b"example.org:443", (Target("example.org", 443), b"")),
])
def test_requests(method, target, want):
    req = parse_request(method, target)
    assert (req.target, req.path) == want
    assert req.tunnel == (method == b"CONNECT")


@pytest.mark.parametrize("method,target,says", [
    (b"GET", b"/index.html", "absolute URL"),
    (b"OPTIONS", b"*", "absolute URL"),
    (b"GET", b"https://example.org/", "CONNECT"),
    (b"GET", b"ftp://example.org/", "only http://"),
    (b"GET", b"http://user:pw@example.org/", "user names"),
    (b"CONNECT", b"example.org", "no port"),
    (b"GET", b"http://ex\xc3\xa4mple.org/", "ASCII"),
])
def test_requests_refused(method, target, says):
    with pytest.raises(ProxyRefusal) as info:
        parse_request(method, target)
    assert info.value.status == 400 and says in info.value.line


# -- decisions -----------------------------------------------------------------------------

def fake_resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: Any, family: int, type: int) -> list[Any]:
        await trio.lowlevel.checkpoint()
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, 0)) for a in table[host]]
    return resolve


async def test_an_allowed_address_and_port():
    policy = NetPolicy.allow("tcp:127.0.0.1:8000")
    d = Decider(policy, fake_resolver({}))
    assert await d.addresses(Target("127.0.0.1", 8000)) == [ipaddress.IPv4Address("127.0.0.1")]
    assert policy.denied == 0


@pytest.mark.parametrize("target", [Target("127.0.0.1", 8001), Target("127.0.0.2", 8000), Target("::1", 8000)])
async def test_other_ports_and_hosts_are_403_counted_and_logged(target, caplog):
    policy = NetPolicy.allow("tcp:127.0.0.1:8000")
    with pytest.raises(ProxyRefusal) as info:
        await Decider(policy, fake_resolver({})).addresses(target)
    assert info.value.status == 403 and str(target) in info.value.line
    assert policy.denied == 1 and "jail proxy" in policy.log_lines[-1]


async def test_udp_rules_do_not_allow_a_tcp_proxy_connection():
    policy = NetPolicy.allow("udp:127.0.0.1:8000")
    with pytest.raises(ProxyRefusal):
        await Decider(policy, fake_resolver({})).addresses(Target("127.0.0.1", 8000))


async def test_ipv4_mapped_ipv6_is_decided_as_ipv4():
    policy = NetPolicy.allow("tcp:127.0.0.1:8000")
    d = Decider(policy, fake_resolver({}))
    assert await d.addresses(Target("::ffff:127.0.0.1", 8000)) == [ipaddress.IPv4Address("127.0.0.1")]
    with pytest.raises(ProxyRefusal):
        await d.addresses(Target("::ffff:127.0.0.2", 8000))


@pytest.mark.parametrize("spelling", ["0x7f.1", "2130706433", "0177.0.0.1", "127.1"])
async def test_numeric_spellings_are_decided_on_the_address_they_resolve_to(spelling):
    """The host's resolver reads them as 127.0.0.1: allowed by a 127.0.0.1 rule, not by another."""
    async def host_resolver(host: str, port: Any, family: int, type: int) -> list[Any]:
        return await trio.socket.getaddrinfo(host, port, socket.AF_INET, type)

    allowed = Decider(NetPolicy.allow("tcp:127.0.0.1:8000"), host_resolver)
    assert await allowed.addresses(Target(spelling, 8000)) == [ipaddress.IPv4Address("127.0.0.1")]
    other = Decider(NetPolicy.allow("tcp:10.0.0.0/8:8000"), host_resolver)
    with pytest.raises(ProxyRefusal) as info:
        await other.addresses(Target(spelling, 8000))
    assert info.value.status == 403


async def test_names_keep_only_the_allowed_addresses():
    """A name resolving to an allowed and a denied address: only the allowed one is used."""
    policy = NetPolicy.allow("tcp:127.0.0.1:8000")
    d = Decider(policy, fake_resolver({"mixed.test": ["10.9.9.9", "127.0.0.1"], "far.test": ["10.9.9.9"]}))
    assert await d.addresses(Target("mixed.test", 8000)) == [ipaddress.IPv4Address("127.0.0.1")]
    with pytest.raises(ProxyRefusal):
        await d.addresses(Target("far.test", 8000))


async def test_name_rules_hold_what_the_name_resolved_to():
    policy = NetPolicy.allow("tcp:Pkgs.Test.:443")
    d = Decider(policy, fake_resolver({"pkgs.test": ["192.0.2.7"], "other.test": ["192.0.2.7"]}))
    assert await d.addresses(Target("pkgs.test", 443)) == [ipaddress.IPv4Address("192.0.2.7")]
    with pytest.raises(ProxyRefusal):
        await d.addresses(Target("pkgs.test", 80))   # the rule's port only
    # the kernel's own decision learnt it too: the same policy object
    assert policy.outbound_allowed("tcp", ipaddress.IPv4Address("192.0.2.7"), 443)


async def test_a_name_that_does_not_resolve_is_502():
    with pytest.raises(ProxyRefusal) as info:
        await Decider(NetPolicy.allow("tcp:0.0.0.0/0"), fake_resolver({})).addresses(Target("nowhere.test", 80))
    assert info.value.status == 502 and "nowhere.test" in info.value.line


# -- the proxy in front of real origin servers ---------------------------------------------

class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"origin {self.server.server_address[1]} {self.path} host={self.headers['Host']} " \
               f"proxy-headers={self.headers.get('Proxy-Authorization') is not None}\n".encode()
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.upper())

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: Any) -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def origin() -> Iterator[int]:
    yield from _serve(Origin)


@pytest.fixture
def other_origin() -> Iterator[int]:
    yield from _serve(Origin)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server (what a CONNECT tunnel reaches)."""
    yield from serve_tcp(echo)


@pytest.fixture
async def proxy_for(nursery):
    """``await proxy_for(*rules)``: a proxy on 127.0.0.1 deciding with NetPolicy.allow(*rules)."""
    async def make(*rules: str) -> tuple[int, NetPolicy]:
        policy = NetPolicy.allow(*rules)
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        proxy = JailProxy(listener, Decider(policy, fake_resolver({"origin.test": ["127.0.0.1"]})))
        nursery.start_soon(proxy.serve)
        return listener.getsockname()[1], policy
    return make


async def exchange(port: int, data: bytes, *, until: bytes | None = None) -> bytes:
    """Send *data* to the proxy and read until it closes (or *until* has been seen)."""
    s = await trio.open_tcp_stream("127.0.0.1", port)
    async with s:
        await s.send_all(data)
        out = b""
        with trio.fail_after(10):
            while until is None or until not in out:
                piece = await s.receive_some(65536)
                if not piece:
                    break
                out += piece
        return out


async def test_get_allowed_passes_and_hop_by_hop_headers_stay(proxy_for, origin):
    port, _ = await proxy_for(f"tcp:127.0.0.1:{origin}")
    out = await exchange(port, f"GET http://127.0.0.1:{origin}/p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n"
                               "Proxy-Authorization: Basic eDp5\r\nConnection: close\r\n\r\n".encode())
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == f"origin {origin} /p?q=1 host=127.0.0.1:{origin} proxy-headers=False\n".encode()


async def test_get_to_a_port_not_allowed_is_403_one_line(proxy_for, origin, other_origin):
    port, policy = await proxy_for(f"tcp:127.0.0.1:{origin}")
    out = await exchange(port, f"GET http://127.0.0.1:{other_origin}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403")
    assert body == f"the sandbox's network policy does not allow tcp 127.0.0.1:{other_origin}\n".encode()
    assert policy.denied == 1


async def test_each_request_on_a_kept_connection_is_decided(proxy_for, origin, other_origin):
    port, _ = await proxy_for(f"tcp:127.0.0.1:{origin}")
    out = await exchange(port, (f"GET http://127.0.0.1:{origin}/one HTTP/1.1\r\nHost: a\r\n\r\n"
                                f"GET http://127.0.0.1:{origin}/chunked HTTP/1.1\r\nHost: a\r\n\r\n"
                                f"GET http://127.0.0.1:{other_origin}/three HTTP/1.1\r\nHost: b\r\n\r\n").encode())
    assert out.count(b"HTTP/1.1 200") == 2 and out.count(b"HTTP/1.1 403") == 1
    assert f"origin {origin} /one".encode() in out
    assert b"transfer-encoding: chunked" in out.lower()   # the origin's framing kept
    assert f"origin {other_origin}".encode() not in out


async def test_post_body_head_and_names(proxy_for, origin):
    port, _ = await proxy_for(f"tcp:127.0.0.1:{origin}")
    out = await exchange(port, f"POST http://origin.test:{origin}/up HTTP/1.1\r\nHost: origin.test\r\n"
                               "Content-Length: 5\r\nConnection: close\r\n\r\nhello".encode())
    assert out.startswith(b"HTTP/1.1 201") and out.endswith(b"\r\n\r\nHELLO")
    out = await exchange(port, f"HEAD http://origin.test:{origin}/ HTTP/1.1\r\nHost: origin.test\r\n"
                               "Connection: close\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n")


async def test_connect_tunnel_to_an_allowed_port(proxy_for, echo_port):
    port, _ = await proxy_for(f"tcp:127.0.0.1:{echo_port}")
    s = await trio.open_tcp_stream("127.0.0.1", port)
    async with s:
        await s.send_all(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nearly".encode())
        got = b""
        with trio.fail_after(10):
            while b"echo:early" not in got:
                got += await s.receive_some(4096)
            assert got.startswith(b"HTTP/1.1 200")
            await s.send_all(b"late")
            while b"echo:late" not in got:
                got += await s.receive_some(4096)


async def test_connect_to_a_denied_port_is_refused(proxy_for, echo_port, origin):
    port, policy = await proxy_for(f"tcp:127.0.0.1:{origin}")
    out = await exchange(port, f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\nHost: x\r\n\r\ndata".encode())
    assert out.startswith(b"HTTP/1.1 403") and b"echo:" not in out and policy.denied == 1


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET https://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"this is not http\r\n\r\n", b"400"),
    (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n", b"502"),   # allowed, nobody listens
])
async def test_refusals(proxy_for, request_bytes, status):
    port, _ = await proxy_for("tcp:127.0.0.1:1")
    out = await exchange(port, request_bytes)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == status
    assert body.count(b"\n") == 1 and body.endswith(b"\n") and b"Traceback" not in body


async def test_python_urllib_through_the_proxy(proxy_for, origin, other_origin):
    port, _ = await proxy_for(f"tcp:127.0.0.1:{origin}")

    def fetch(url: str) -> tuple[int, bytes]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        try:
            with opener.open(url, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    status, body = await trio.to_thread.run_sync(fetch, f"http://127.0.0.1:{origin}/u")
    assert status == 200 and body.startswith(f"origin {origin} /u".encode())
    status, body = await trio.to_thread.run_sync(fetch, f"http://127.0.0.1:{other_origin}/u")
    assert status == 403 and b"does not allow" in body


@pytest.fixture
def short_origin() -> Iterator[int]:
    """An origin that promises 100 bytes, sends 10 and hangs up."""
    def answer_short(c: socket.socket) -> None:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")

    yield from serve_tcp(answer_short)


async def test_an_origin_ending_early_ends_the_client_connection(proxy_for, short_origin):
    """The client gets what came and then the end, not a hang nor a made-up complete answer."""
    port, _ = await proxy_for(f"tcp:127.0.0.1:{short_origin}")
    out = await exchange(port, f"GET http://127.0.0.1:{short_origin}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n0123456789")
