"""The jail's network (issue 16 §1) on real mounts, one per mode: ``none`` gives a down loopback,
``loopback`` a private one that is up, ``allow`` the daemon's proxy deciding with the sandbox's
policy.  The host's python3 runs ``netcheck.py`` in the jail; the servers are the test's own, on
the host's 127.0.0.1 (the only addresses tests contact).  The proxy without a jail:
tests/net/test_jail_proxy.py."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jail.harness import JailMount, Result
from tests.tcpservers import echo, serve_tcp
from vfsfuse.daemon.jail import JailConfig, probe

pytestmark = pytest.mark.mount

HERE = Path(__file__).resolve().parent
CHECK = "/opt/netcheck.py"
PROBE = "/opt/probe"


class Page(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"page {self.server.server_address[1]} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _http_server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def allowed_port() -> Iterator[int]:
    yield from _http_server()


@pytest.fixture(scope="module")
def other_port() -> Iterator[int]:
    yield from _http_server()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    yield from serve_tcp(echo)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A directory the jail's unprivileged host user can traverse (the mounts live in it)."""
    d = Path(tempfile.mkdtemp(prefix="vfsfuse-jailnet-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def probe_binary(base) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the probe")
    out = base / "probe"
    built = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(HERE / "probe.c")],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return out


def _mount(base: Path, name: str, probe_binary: Path, net: tuple[str, ...]) -> Iterator[JailMount]:
    jm = JailMount.start(base, name, net=net)
    try:
        refusal = probe(JailConfig(jm.path))
        if refusal is not None:
            r = jm.run(f"{PROBE} exit 0")
            assert refusal in r.stderr and "Traceback" not in r.stderr, r.stderr
            pytest.skip(f"this host cannot run the jail: {refusal}")
        jm.install_python("os, json, socket, fcntl, struct, errno, encodings.idna, urllib.request, urllib.error")
        os.makedirs(jm.path + "/opt", exist_ok=True)
        shutil.copy(HERE / "netcheck.py", jm.path + CHECK)
        shutil.copy(probe_binary, jm.path + PROBE)
        yield jm
    finally:
        jm.close()


@pytest.fixture(scope="module")
def jail_none(base, probe_binary) -> Iterator[JailMount]:
    yield from _mount(base, "none", probe_binary, ("none",))


@pytest.fixture(scope="module")
def jail_loopback(base, probe_binary) -> Iterator[JailMount]:
    yield from _mount(base, "loopback", probe_binary, ("loopback",))


@pytest.fixture(scope="module")
def jail_allow(base, probe_binary, allowed_port, echo_port) -> Iterator[JailMount]:
    yield from _mount(base, "allow", probe_binary, ("allow", f"tcp:127.0.0.1:{allowed_port}",
                                                    f"tcp:127.0.0.1:{echo_port}"))


def check(jm: JailMount, *args: object) -> Result:
    r = jm.run(f"/usr/bin/python3 -I -S {CHECK} " + " ".join(map(str, args)))
    assert r.code == 0 and "Traceback" not in r.stderr, r.stderr
    return r


def never_reached(port_server: socket.socket) -> None:
    port_server.settimeout(0.2)
    with pytest.raises(socket.timeout):
        port_server.accept()


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    """A listener on the host's 127.0.0.1 that no jail may reach."""
    srv = socket.create_server(("127.0.0.1", 0))
    yield srv
    srv.close()


# -- none ----------------------------------------------------------------------------------

def test_none_has_only_a_down_loopback(jail_none):
    assert check(jail_none, "lo").stdout == "lo DOWN\nifaces lo\ninet6 none\n"


def test_none_connects_to_127_0_0_1_are_enetunreach(jail_none, host_listener):
    port = host_listener.getsockname()[1]
    r = jail_none.run(f"{PROBE} connect {port}")
    assert r.stdout == "ENETUNREACH\n", r.stderr
    assert check(jail_none, "connect", "127.0.0.1", port).stdout == "ENETUNREACH\n"
    # not even to itself: bind(127.0.0.1) fails (a namespace that never had lo up lets the bind
    # through, then the connect fails with ENETUNREACH: Linux has no local table there yet)
    assert check(jail_none, "selfloop").stdout == "EADDRNOTAVAIL\n"
    never_reached(host_listener)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for the reference")
def test_none_is_what_a_new_network_namespace_is(jail_none, host_listener):
    """Differential: the same checks in a fresh namespace on the host (``unshare -n``)."""
    port = host_listener.getsockname()[1]
    for args in (["lo"], ["connect", "127.0.0.1", str(port)], ["routes"]):
        host = subprocess.run(["unshare", "-n", "/usr/bin/python3", "-I", "-S", str(HERE / "netcheck.py"), *args],
                              capture_output=True, text=True)
        if host.returncode != 0:
            pytest.skip(f"unshare -n refused here: {host.stderr.strip()}")
        assert check(jail_none, *args).stdout == host.stdout


def test_none_sets_no_proxy_variables(jail_none):
    assert "HTTP_PROXY=<unset>" in check(jail_none, "env").stdout


# -- loopback ------------------------------------------------------------------------------

def test_loopback_is_private_and_up(jail_loopback, host_listener):
    assert check(jail_loopback, "lo").stdout == "lo UP\nifaces lo\ninet6 some\n"
    assert check(jail_loopback, "selfloop").stdout == "selfloop ok\n"
    port = host_listener.getsockname()[1]
    assert check(jail_loopback, "connect", "127.0.0.1", port).stdout == "ECONNREFUSED\n"  # its own lo
    never_reached(host_listener)
    assert check(jail_loopback, "routes").stdout == "routes4 0\nroutes6 via lo\n"   # no route out


# -- allow ---------------------------------------------------------------------------------

def test_allow_sets_the_proxy_variables(jail_allow):
    out = check(jail_allow, "env").stdout.splitlines()
    assert out == ["HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
                   "http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
                   "NO_PROXY=", "no_proxy="]


def test_allow_get_of_an_allowed_port_through_the_proxy(jail_allow, allowed_port):
    r = check(jail_allow, "get", f"http://127.0.0.1:{allowed_port}/hello?x=1")
    assert r.stdout == f"200\npage {allowed_port} /hello?x=1\n"


def test_allow_names_are_resolved_by_the_daemon(jail_allow, allowed_port):
    """The jail has no resolver of its own (no route out): the proxy resolves, then decides on
    the address (localhost is 127.0.0.1, which the rule allows)."""
    r = check(jail_allow, "get", f"http://LocalHost.:{allowed_port}/by-name")
    assert r.stdout == f"200\npage {allowed_port} /by-name\n"


def test_allow_get_of_another_port_is_403_one_line(jail_allow, other_port):
    r = check(jail_allow, "get", f"http://127.0.0.1:{other_port}/")
    assert r.stdout == f"403\nthe sandbox's network policy does not allow tcp 127.0.0.1:{other_port}\n"
    denied = Path(jail_allow.path, ".vfs", "net").read_text()
    assert "mode allow" in denied and int(denied.split("denied ")[-1]) >= 1  # counted by the same policy


def test_allow_connect_tunnel_to_an_allowed_port(jail_allow, echo_port):
    r = check(jail_allow, "tunnel", "127.0.0.1", echo_port)
    assert r.stdout == "HTTP/1.1 200 Connection established\necho:ping\n"


def test_allow_connect_to_a_denied_port_is_refused(jail_allow, other_port):
    r = check(jail_allow, "tunnel", "127.0.0.1", other_port)
    assert r.stdout.splitlines()[0].startswith("HTTP/1.1 403")
    assert "does not allow tcp 127.0.0.1" in r.stdout


def test_allow_raw_sockets_ignoring_the_proxy_reach_nothing(jail_allow, allowed_port):
    """The policy, not the variable, is the boundary: the allowed server itself is out of reach
    without the proxy (the jail's 127.0.0.1 is its own), and nothing routes out."""
    assert check(jail_allow, "connect", "127.0.0.1", allowed_port).stdout == "ECONNREFUSED\n"
    assert check(jail_allow, "lo").stdout.startswith("lo UP\nifaces lo\n")
    assert check(jail_allow, "routes").stdout == "routes4 0\nroutes6 via lo\n"
