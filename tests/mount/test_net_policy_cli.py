"""``vfsfuse mount --net``: the policy the sandbox's sockets obey, shown in ``MNT/.vfs/net``
and unchangeable from inside; a real server on the host's 127.0.0.1 is reached only when a
rule allows it."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from tests.mount.conftest import cli

pytestmark = pytest.mark.mount


@pytest.fixture
def host_server():
    """An HTTP server on the host's loopback, the only address tests may contact."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b"hello from the host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _exec(m, script: str):
    return cli("exec", m.path, "--", script, timeout=60, env=m.env)


@pytest.mark.parametrize("mode", ["none", "loopback"])
def test_a_host_server_is_out_of_reach_without_a_rule(new_mount, host_server, mode):
    m = new_mount("--net", mode, memory=True)
    assert Path(m.path, ".vfs", "net").read_text().startswith(f"mode {mode}\n")
    r = _exec(m, f"curl -sS http://127.0.0.1:{host_server}/; echo status $?")
    assert "hello from the host" not in r.stdout and "status 7" in r.stdout, (r.stdout, r.stderr)


def test_an_allow_rule_reaches_exactly_its_port(new_mount, host_server):
    m = new_mount("--net", "allow", "--allow", f"tcp:127.0.0.1:{host_server}", memory=True)
    text = Path(m.path, ".vfs", "net").read_text()
    assert text.startswith("mode allow\n") and "127.0.0.1" in text and str(host_server) in text
    r = _exec(m, f"curl -sS http://127.0.0.1:{host_server}/")
    assert r.returncode == 0 and r.stdout == "hello from the host\n", r.stderr
    other = host_server + 1 if host_server < 65535 else host_server - 1
    r = _exec(m, f"curl -sS http://127.0.0.1:{other}/; echo status $?")
    assert "status 7" in r.stdout, (r.stdout, r.stderr)


def test_the_policy_cannot_be_changed_from_inside(new_mount):
    m = new_mount("--net", "loopback", memory=True)
    r = _exec(m, "echo 'mode allow' > /.vfs/net; echo status $?; cat /.vfs/net")
    assert "mode loopback" in r.stdout and "status 0" not in r.stdout, r.stdout
    assert Path(m.path, ".vfs", "net").read_text().startswith("mode loopback\n")


@pytest.mark.parametrize("args", [("--net", "allow", "--allow", "tcp:999.1.1.1:80"),
                                  ("--allow", "tcp:127.0.0.1:80")])
def test_a_bad_rule_is_one_line_before_any_daemon(tmp_path, args):
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = cli("mount", "--memory", *args, str(mnt))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    assert "Traceback" not in r.stderr and not Path(mnt, ".vfs").exists()


def test_the_sandbox_hosts_file_does_not_widen_a_name_rule(new_mount, host_server):
    """``--allow tcp:NAME:PORT`` holds what the daemon's resolver says NAME is; a line the
    sandbox writes into its own /etc/hosts answers lookups there but reaches nothing (it did:
    the sandbox could point any ruled name at any address)."""
    m = new_mount("--net", "allow", "--allow", f"tcp:Web.Test:{host_server}", memory=True)
    r = _exec(m, "echo '127.0.0.1 web.test' >> /etc/hosts; getent hosts web.test; "
                 f"curl -sS http://WEB.test.:{host_server}/; echo status $?; "
                 f"curl -sS http://127.0.0.1:{host_server}/; echo status $?")
    assert r.stdout.split() == ["127.0.0.1", "web.test", "status", "7", "status", "7"], (r.stdout, r.stderr)
    assert "hello from the host" not in r.stdout
