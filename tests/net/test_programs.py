"""The network programs from the sandbox's shell: nc, curl, wget, httpd, ss, host, under the
policies.  Servers in the scripts wait for their listener with ``ss -ltn`` before clients run,
and end by themselves (``httpd -n COUNT``, one connection for ``nc -l``)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kernel.net.policy import NetPolicy
from kernel.userland import standard_registry
from tests.kernel.ksupport import boot_kernel

WAIT = 'until ss -ltn | grep -q ":{port} "; do :; done'
WAIT_X = 'until ss -lx | grep -q "{path} "; do :; done'


@pytest.fixture
async def sh(nursery):
    kernels = {}

    async def run(script: str, policy: NetPolicy | None = None, timeout: float = 30):
        key = policy.mode if policy else "loopback"
        k = kernels.get(key)
        if k is None:
            k = kernels[key] = await boot_kernel(nursery, programs=standard_registry(),
                                                 net=policy or NetPolicy.loopback())
        r = await k.run(["sh", "-c", script], timeout=timeout)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    yield run
    for k in kernels.values():
        await k.shutdown()


async def test_httpd_and_curl(sh):
    rc, out, err = await sh(
        "mkdir -p /srv/www/sub; echo hello > /srv/www/a.txt; echo '<p>i</p>' > /srv/www/sub/index.html\n"
        "httpd -p 8080 -d /srv/www -n 13 > /dev/null & " + WAIT.format(port=8080) + "\n"
        "curl -s http://127.0.0.1:8080/a.txt\n"
        "curl -s http://localhost:8080/sub/\n"
        "curl -s -o /dev/null -w '%{http_code} %{size_download}\\n' http://127.0.0.1:8080/missing\n"
        "curl -sf http://127.0.0.1:8080/missing; echo fail=$?\n"
        "curl -sI http://127.0.0.1:8080/a.txt | grep -i -e '^HTTP' -e '^content-length' | tr -d '\\r'\n"
        "curl -s http://127.0.0.1:8080/sub | grep -c 'Moved'; curl -sL http://127.0.0.1:8080/sub\n"
        "curl -s -o /tmp/got http://127.0.0.1:8080/a.txt; cat /tmp/got\n"
        "curl -s -O http://127.0.0.1:8080/a.txt; cat a.txt\n"
        "wget -q -O /tmp/w http://127.0.0.1:8080/a.txt; echo wget=$?; cat /tmp/w\n"
        "wget -q -O - http://127.0.0.1:8080/nope; echo wget=$?\n"
        "curl -s -X POST http://127.0.0.1:8080/a.txt -w ' %{http_code}\\n'\n"
        "wait\n")
    assert rc == 0, err
    assert out.splitlines() == [
        "hello", "<p>i</p>", "404 10", "fail=22", "HTTP/1.1 200 OK", "Content-Length: 6",
        "0", "<p>i</p>", "hello", "hello", "wget=0", "hello", "wget=8", "not implemented", " 501"]


async def test_curl_post_chunked_and_headers_through_nc(sh):
    rc, out, err = await sh(
        r"printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'"
        " | nc -l -p 9000 > /tmp/req & " + WAIT.format(port=9000) + "\n"
        "curl -s -d x=1 -d y=2 -H 'X-Test: yes' http://127.0.0.1:9000/p; echo\n"
        "wait\n"
        "grep -e '^POST' -e '^X-Test' -e '^Content-Length' /tmp/req | tr -d '\\r'\n"
        "tail -c 7 /tmp/req; echo\n")
    assert rc == 0, err
    assert out.splitlines() == ["abcde", "POST /p HTTP/1.1", "X-Test: yes", "Content-Length: 7", "x=1&y=2"]


async def test_curl_errors(sh):
    rc, out, err = await sh(
        "curl http://127.0.0.1:1/; echo rc=$?\n"
        "curl -s http://127.0.0.1:1/; echo rc=$?\n"
        "curl -sS https://127.0.0.1/; echo rc=$?\n"
        "curl -s http://no.such.name/; echo rc=$?\n")
    assert out.splitlines() == ["rc=7", "rc=7", "rc=1", "rc=6"]
    lines = err.splitlines()
    assert lines[0].startswith("curl: (7) Failed to connect to 127.0.0.1 port 1")
    assert lines[1] == 'curl: (1) Protocol "https" not supported' and len(lines) == 2


async def test_nc_tcp_both_ways_and_half_close(sh):
    rc, out, err = await sh(
        "echo from-server | nc -l -p 7000 > /tmp/srv & " + WAIT.format(port=7000) + "\n"
        "echo from-client | nc -N 127.0.0.1 7000\n"
        "wait; cat /tmp/srv\n")
    assert rc == 0, err
    assert out.splitlines() == ["from-server", "from-client"]


async def test_nc_unix_socket_and_ls(sh):
    rc, out, err = await sh(
        "nc -lU /tmp/u.sock > /tmp/got & " + WAIT_X.format(path="/tmp/u.sock") + "\n"
        "ls -l /tmp/u.sock | cut -c1\n"
        "echo over-unix | nc -NU /tmp/u.sock\n"
        "wait; cat /tmp/got\n"
        "rm /tmp/u.sock; nc -U /tmp/u.sock; echo rc=$?\n")
    assert out.splitlines() == ["s", "over-unix", "rc=1"], err
    assert err == "nc: /tmp/u.sock: No such file or directory\n"


async def test_nc_udp(sh):
    rc, out, err = await sh(
        "nc -u -l -p 5300 -q 0 < /dev/null > /tmp/d & "
        "until ss -lun | grep -q ':5300 '; do :; done\n"
        "echo datagram | nc -u -q 0 127.0.0.1 5300\n"
        "wait; cat /tmp/d\n")
    assert rc == 0, err
    assert out == "datagram\n"


async def test_nc_scan(sh):
    rc, out, err = await sh(
        "httpd -p 8081 -d / -n 2 > /dev/null & " + WAIT.format(port=8081) + "\n"
        "nc -z 127.0.0.1 8081; echo open=$?\n"
        "nc -z 127.0.0.1 8082; echo closed=$?\n"
        "nc -zv 127.0.0.1 8080-8081 2>&1 | grep -c succeeded\n"
        "wait\n")
    assert out.splitlines() == ["open=0", "closed=1", "1"], err


async def test_ss_lists_what_runs(sh):
    rc, out, err = await sh(
        "httpd -p 8083 -d / -n 1 > /dev/null & " + WAIT.format(port=8083) + "\n"
        "ss -ltnp | grep 8083 | tr -s ' ' | cut -d' ' -f1,4\n"
        "ss -ltnp | grep -c '(\"httpd\",pid='\n"
        "nc -z 127.0.0.1 8083; wait\n")
    assert out.splitlines() == ["LISTEN 0.0.0.0:8083", "1"], err


async def test_host_and_getent(sh):
    rc, out, err = await sh(
        "host localhost; echo '10.9.8.7 db.internal' >> /etc/hosts; getent hosts db.internal\n"
        "host example.com; echo rc=$?\n")
    assert out.splitlines()[:3] == ["localhost has address 127.0.0.1", "localhost has IPv6 address ::1",
                                    "10.9.8.7        db.internal"]
    assert out.splitlines()[3].startswith("Host example.com not found") and out.endswith("rc=1\n")


async def test_policy_none_from_the_shell(sh):
    rc, out, err = await sh(
        "curl -s http://example.com/; echo rc=$?\n"
        "curl -s http://127.0.0.1:8080/; echo rc=$?\n"
        "nc -l -p 8000; echo rc=$?\n"
        "nc -lU /tmp/ok.sock > /dev/null & " + WAIT_X.format(path="/tmp/ok.sock") + "\n"
        "echo unix-works | nc -NU /tmp/ok.sock; echo rc=$?\n"
        "wait\n", NetPolicy.none())
    assert out.splitlines() == ["rc=6", "rc=7", "rc=1", "rc=0"], err
    assert "nc: listen failed: Permission denied" in err


@pytest.mark.skipif(shutil.which("ss") is None, reason="no ss on this host")
async def test_our_ss_rows_match_host_ss(nursery, tmp_path):
    k = await boot_kernel(nursery, programs=standard_registry(), net=NetPolicy.loopback())
    files = {}

    async def snap(ctx):
        for name in ("tcp", "tcp6", "udp", "udp6", "unix"):
            fd = await ctx.open(f"/proc/net/{name}")
            files[name] = await ctx.read_all(fd)
        return 0

    await k.install_program("snap", snap)
    r = await k.run(["sh", "-c",
                     "httpd -p 8090 -d / -n 1 >/dev/null & nc -lU /tmp/q.sock >/dev/null & "
                     "nc -u -l -p 5301 -q 0 </dev/null >/dev/null & "
                     + WAIT.format(port=8090) + "; " + WAIT_X.format(path="/tmp/q.sock")
                     + "; until ss -lun | grep -q :5301; do :; done; "
                     "ss -tuanx; snap; nc -z 127.0.0.1 8090; echo | nc -NU /tmp/q.sock; "
                     "echo x | nc -u -q 0 127.0.0.1 5301; wait"], timeout=30)
    assert r.returncode == 0, r.stderr
    (tmp_path / "net").mkdir()
    for name, data in files.items():
        (tmp_path / "net" / name).write_bytes(data)
    host = subprocess.run(["ss", "-tuanx"], env={**os.environ, "PROC_ROOT": str(tmp_path)},
                          capture_output=True, text=True, check=True).stdout
    ours = [line.split() for line in r.stdout.decode().splitlines()]
    theirs = [line.split() for line in host.splitlines()]
    assert "".join(ours[0]) == "".join(theirs[0])  # ss glues "Port" and "Process" when tight
    assert sorted(ours[1:]) == sorted(theirs[1:]), (r.stdout.decode(), host)
    await k.shutdown()


ODD = ["nc", "nc -x", "nc -l", "nc 127.0.0.1", "nc 127.0.0.1 notaport", "nc 127.0.0.1 0",
       "nc -w abc 127.0.0.1 1", "nc -U", "nc -lz 1", "nc -p 99999 127.0.0.1 1", "curl", "curl -X",
       "curl ftp://x/", "curl 'http://[::1'", "curl -O 'http://[::1/'", "wget 'http://[x'",
       "curl http://127.0.0.1:99999/", "curl -d @/nope http://127.0.0.1:1/",
       "curl -o /nodir/x http://127.0.0.1:1/", "wget", "wget http://127.0.0.1:1/", "httpd -p abc",
       "httpd -p 8085 -d /nonexistent", "httpd -b 10.1.1.1 -p 8086", "ss -Z", "ss foo", "host",
       "host -4 ::1", "getent passwd", "getent hosts no.such.name"]


@pytest.mark.parametrize("line", ODD)
async def test_odd_command_lines_give_one_message(sh, line):
    rc, out, err = await sh(line + " < /dev/null", timeout=10)
    assert rc != 0, (out, err)
    assert "internal error" not in err and "Traceback" not in err, err
    assert len(err.splitlines()) <= 2, err


async def test_curl_through_the_host_adapter(nursery):
    """curl in the sandbox fetches from a server this test runs on the host's 127.0.0.1."""
    import functools

    import trio

    body = b"from the host\n" * 1000

    async def handler(stream):
        req = b""
        while b"\r\n\r\n" not in req:
            req += await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    k = await boot_kernel(nursery, programs=standard_registry(), net=NetPolicy.allow(f"tcp:127.0.0.1:{port}"))
    r = await k.run(["sh", "-c", f"curl -s http://127.0.0.1:{port}/ | wc -c; "
                                 f"curl -s http://127.0.0.1:{port + 1}/; echo rc=$?; "
                                 "curl -s http://10.0.0.1/; echo rc=$?"], timeout=30)
    assert r.stdout.decode().split() == [str(len(body)), "rc=7", "rc=7"], r.stderr
    assert k.net.policy.denied == 1
    await k.shutdown()


async def test_a_published_listener_answers_the_host(nursery):
    """``publish:PORT``: httpd in the sandbox is reached from the host's 127.0.0.1."""
    import socket as pysocket

    import trio

    with pysocket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    k = await boot_kernel(nursery, programs=standard_registry(),
                          net=NetPolicy.parse("allow", [f"publish:{port}"]))
    assert f"publish 127.0.0.1:{port}" in k.net.policy.describe()
    await k.run(["sh", "-c", "mkdir -p /srv && echo published > /srv/p.txt"])
    handle = await k.spawn(["httpd", "-p", str(port), "-d", "/srv", "-n", "1"], stdout="null")
    with trio.fail_after(10):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                break
            except OSError:
                await trio.sleep(0.02)
        await stream.send_all(b"GET /p.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while True:
            data = await stream.receive_some(4096)
            if not data:
                break
            reply += data
        assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"\r\n\r\npublished\n")
        assert await handle.wait() == 0
    await k.shutdown()


async def test_the_shells_dev_tcp_and_dev_udp_go_through_the_policy(nursery):
    """bash's ``/dev/tcp/HOST/PORT`` redirections are sockets of the kernel's table: they reach
    an in-kernel listener under ``loopback``, are refused under ``none`` (names too), and POSIX
    ``sh`` treats the path as a file, as dash does."""
    async def bash(script: str, policy: NetPolicy) -> tuple[str, str]:
        k = await boot_kernel(nursery, programs=standard_registry(), net=policy)
        try:
            r = await k.run(["bash", "-c", script], timeout=30)
        finally:
            await k.shutdown()
        return r.stdout.decode(), r.stderr.decode()

    out, err = await bash(
        "nc -l -p 7000 > /tmp/got & " + WAIT.format(port=7000) + "\n"
        "echo hi >/dev/tcp/127.0.0.1/7000; wait; cat /tmp/got\n"
        "exec 3<>/dev/tcp/localhost/7001; echo rc=$?\n"
        "nc -lu -p 7002 > /tmp/udp & until ss -lun | grep -q ':7002 '; do :; done\n"
        "echo dgram > /dev/udp/127.0.0.1/7002; sleep 0.2; kill %1; cat /tmp/udp\n", NetPolicy.loopback())
    assert out.splitlines() == ["hi", "rc=1", "dgram"], (out, err)
    assert "/dev/tcp/localhost/7001: Connection refused" in err
    out, err = await bash("echo hi >/dev/tcp/127.0.0.1/7000; echo rc=$?\n"
                          "exec 3<>/dev/udp/example.com/53; echo rc=$?\n"
                          "sh -c 'echo x > /dev/tcp/127.0.0.1/1'; echo rc=$?", NetPolicy.none())
    assert out.splitlines() == ["rc=1", "rc=1", "rc=2"], (out, err)
    assert "Permission denied" in err and "No such file or directory" in err
