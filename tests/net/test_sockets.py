"""The socket table through the syscalls: sandbox processes talking over AF_UNIX and loopback
inet, fd passing, credentials, readiness, back-pressure, limits, lifetimes, signals, the
policy, and the socket inodes in the VFS and /proc."""

from __future__ import annotations

import array
import functools
import ipaddress
import stat
import struct

import pytest
import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.limits import Limits
from kernel.net.policy import NetPolicy, Rule
from kernel.pipes import POLLIN, POLLOUT
from kernel.syscalls import O_NONBLOCK
from tests.kernel.ksupport import boot_kernel, run_program

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
STREAM, DGRAM, SEQPACKET = 1, 2, 5
SOL_SOCKET, SCM_RIGHTS, SO_PEERCRED = 1, 1, 17


async def _both(kernel, server, client):
    """Run two programs as two processes at once; both must exit 0."""
    results = {}

    async def one(name, prog):
        results[name] = await run_program(kernel, prog)

    async with trio.open_nursery() as n:
        n.start_soon(one, "server", server)
        n.start_soon(one, "client", client)
    for name, r in results.items():
        assert r.returncode == 0, (name, r.stderr)
    return results


@pytest.mark.parametrize("type_", [STREAM, SEQPACKET, DGRAM])
async def test_two_processes_over_a_unix_path(kernel, type_):
    got = []
    ready = trio.Event()

    async def server(ctx):
        s = await ctx.socket(AF_UNIX, type_)
        await ctx.bind(s, "/tmp/srv.sock")
        if type_ == DGRAM:
            ready.set()
            data, src = await ctx.recvfrom(s, 100)
            got.append((data, src))
            await ctx.sendto(s, data.upper(), src)
            return 0
        await ctx.listen(s, 1)
        ready.set()
        c, _ = await ctx.accept(s)
        data = await ctx.recv(c, 100)
        got.append(data)
        await ctx.send(c, data.upper())
        return 0

    async def client(ctx):
        await ready.wait()
        s = await ctx.socket(AF_UNIX, type_)
        if type_ == DGRAM:
            await ctx.bind(s, "/tmp/cli.sock")
        await ctx.connect(s, "/tmp/srv.sock")
        await ctx.send(s, b"hello")
        got.append(await ctx.recv(s, 100))
        return 0

    await _both(kernel, server, client)
    if type_ == DGRAM:
        assert got == [(b"hello", "/tmp/cli.sock"), b"HELLO"]
    else:
        assert got == [b"hello", b"HELLO"]


async def test_socket_inode_in_the_vfs(kernel):
    seen = {}

    async def prog(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, "/tmp/a.sock")
        st = await ctx.lstat("/tmp/a.sock")
        seen["mode"] = st.mode
        seen["fd"] = await ctx.readlink(f"/proc/self/fd/{s}")
        seen["fstat"] = (await ctx.fstat(s)).mode
        fd = await ctx.open(f"/proc/self/fdinfo/{s}")
        seen["fdinfo"] = await ctx.read_all(fd)
        try:
            await ctx.open("/tmp/a.sock")
        except KernelError as e:
            seen["open"] = e.code
        await ctx.unlink("/tmp/a.sock")
        c = await ctx.socket(AF_UNIX, STREAM)
        try:
            await ctx.connect(c, "/tmp/a.sock")
        except KernelError as e:
            seen["after unlink"] = e.code
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISSOCK(seen["mode"]) and seen["mode"] & 0o777 == 0o755  # 0777 & ~umask 022
    assert stat.S_ISSOCK(seen["fstat"])
    ino = int(seen["fd"][len("socket:["):-1])
    assert seen["fd"] == f"socket:[{ino}]"
    assert f"ino:\t{ino}\n".encode() in seen["fdinfo"]
    assert seen["open"] == "ENXIO"  # as Linux: a socket file cannot be opened
    assert seen["after unlink"] == "ENOENT"


async def test_ls_shows_a_socket(nursery):
    from kernel.userland import standard_registry

    k = await boot_kernel(nursery, programs=standard_registry())

    async def prog(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, "/tmp/x.sock")
        pid = await ctx.spawn(["ls", "-l", "/tmp/x.sock"])
        _, status = await ctx.waitpid(pid)
        return status

    name = "lsprog"
    k.programs.register(name, prog)
    r = await k.run([name])
    assert r.stdout.startswith(b"srwxr-xr-x"), r.stdout
    await k.shutdown()


async def test_scm_rights_passes_a_pipe_between_processes(kernel):
    got = []
    ready = trio.Event()

    async def sender(ctx):
        await ready.wait()
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.connect(s, "/tmp/fdpass")
        r, w = await ctx.pipe()
        await ctx.write(w, b"through the passed fd")
        await ctx.close(w)
        n = await ctx.sendmsg(s, [b"x"], [(SOL_SOCKET, SCM_RIGHTS, array.array("i", [r]).tobytes())])
        await ctx.close(r)  # the message holds the pipe open
        got.append(("sent", n))
        return 0

    async def receiver(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, "/tmp/fdpass")
        await ctx.listen(s, 1)
        ready.set()
        c, _ = await ctx.accept(s)
        data, anc, flags, _addr = await ctx.recvmsg(c, 10, 64)
        level, kind, payload = anc[0]
        fds = array.array("i")
        fds.frombytes(payload)
        got.append((data, level, kind, flags))
        got.append(await ctx.read_all(fds[0]))
        return 0

    await _both(kernel, receiver, sender)
    assert ("sent", 1) in got
    assert (b"x", SOL_SOCKET, SCM_RIGHTS, 0) in got
    assert b"through the passed fd" in got


async def test_scm_rights_without_room_truncates_and_closes(kernel):
    out = {}

    async def prog(ctx):
        a, b = await ctx.socketpair(AF_UNIX, STREAM)
        r, w = await ctx.pipe()
        await ctx.sendmsg(a, [b"y"], [(SOL_SOCKET, SCM_RIGHTS, [r])])
        await ctx.close(r)
        data, anc, flags, _ = await ctx.recvmsg(b, 10, 0)
        out["recv"] = (data, anc, flags)
        try:  # the pipe's only reader went with the dropped fd: EPIPE
            await ctx.signal(S.SIGPIPE, S.SIG_IGN)
            await trio.sleep(0.01)
            await ctx.write(w, b"z")
        except KernelError as e:
            out["write"] = e.code
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert out["recv"] == (b"y", [], 0x8)  # MSG_CTRUNC
    assert out["write"] == "EPIPE"


async def test_so_peercred(kernel):
    got = {}
    ready = trio.Event()

    async def server(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, b"\0cred")
        await ctx.listen(s, 1)
        ready.set()
        c, _ = await ctx.accept(s)
        got["server sees"] = struct.unpack("3i", await ctx.getsockopt(c, SOL_SOCKET, SO_PEERCRED, 12))
        got["server pid"] = ctx.getpid()
        await ctx.recv(c, 1)
        return 0

    async def client(ctx):
        await ready.wait()
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.connect(s, b"\0cred")
        got["client sees"] = struct.unpack("3i", await ctx.getsockopt(s, SOL_SOCKET, SO_PEERCRED, 12))
        got["client pid"] = ctx.getpid()
        await ctx.close(s)
        return 0

    await _both(kernel, server, client)
    assert got["server sees"] == (got["client pid"], 0, 0)
    assert got["client sees"] == (got["server pid"], 0, 0)


async def test_poll_wakes_on_a_connection_and_on_data(kernel):
    events = []

    async def prog(ctx):
        lst = await ctx.socket(AF_INET, STREAM)
        await ctx.bind(lst, ("127.0.0.1", 0))
        await ctx.listen(lst)
        addr = await ctx.getsockname(lst)
        pid = await ctx.spawn(["client"], env={"PORT": str(addr[1])})
        events.append(await ctx.poll([(lst, POLLIN)], 5))
        c, _ = await ctx.accept(lst)
        events.append(await ctx.poll([(c, POLLIN)], 5))
        events.append(await ctx.recv(c, 10))
        await ctx.waitpid(pid)
        return 0

    async def client(ctx):
        await trio.sleep(0.05)
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.connect(s, ("127.0.0.1", int(ctx.getenv("PORT"))))
        await trio.sleep(0.05)
        await ctx.send(s, b"late")
        return 0

    kernel.programs.register("client", client)
    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert events[0][0][1] == POLLIN and events[1][0][1] == POLLIN and events[2] == b"late"


async def test_a_never_reading_peer_bounds_the_buffer(kernel):
    out = {}

    async def prog(ctx):
        a, b = await ctx.socketpair(AF_UNIX, STREAM | O_NONBLOCK)
        total = 0
        chunk = b"x" * 65536
        while True:
            try:
                total += await ctx.send(a, chunk)
            except KernelError as e:
                out["code"] = e.code
                break
        out["total"] = total
        out["poll"] = await ctx.poll([(a, POLLOUT)], 0)
        await ctx.recv(b, 65536)
        out["after read"] = await ctx.poll([(a, POLLOUT)], 0)
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert out["code"] == "EAGAIN"
    assert 0 < out["total"] <= kernel.limits.socket_buffer
    assert out["poll"] == [] and out["after read"][0][1] == POLLOUT


async def test_a_blocked_writer_waits_and_the_kernel_stays_healthy(kernel):
    async def writer(ctx):
        a, _b = await ctx.socketpair(AF_UNIX, STREAM)
        await ctx.write_all(a, b"y" * (4 << 20))  # blocks for ever: nobody reads
        return 0

    with trio.move_on_after(0.3):
        await run_program(kernel, writer)
    r = await kernel.run(["true"])
    assert r.returncode == 0


async def test_blocked_accept_is_interrupted_by_a_signal(kernel):
    out = {}

    async def prog(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, b"\0intr")
        await ctx.listen(s)
        await ctx.signal(S.SIGALRM, lambda sig: None, flags=0)
        await ctx.alarm(0.05)
        try:
            await ctx.accept(s)
        except KernelError as e:
            out["code"] = e.code
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert out["code"] == "EINTR"


async def test_sigpipe_ends_a_writer_unless_msg_nosignal(kernel):
    async def writer(ctx):
        a, b = await ctx.socketpair(AF_UNIX, STREAM)
        await ctx.close(b)
        try:
            await ctx.send(a, b"x", 0x4000)  # MSG_NOSIGNAL: EPIPE only
        except KernelError as e:
            assert e.code == "EPIPE"
        await ctx.write(a, b"x")
        return 0

    r = await run_program(kernel, writer)
    assert r.returncode == -S.SIGPIPE


async def test_sockets_die_with_their_last_fd(kernel):
    counts = []

    async def prog(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.bind(s, ("127.0.0.1", 0))
        await ctx.listen(s)
        addr = await ctx.getsockname(s)
        d = await ctx.dup(s)
        await ctx.close(s)
        counts.append(len(kernel.net))
        c = await ctx.socket(AF_INET, STREAM)
        await ctx.connect(c, addr)  # the listener lives on through the dup
        counts.append(len(kernel.net))
        await ctx.close(d)  # the listener and the connection it did not accept go
        counts.append(len(kernel.net))
        c2 = await ctx.socket(AF_INET, STREAM)
        try:
            await ctx.connect(c2, addr)
        except KernelError as e:
            counts.append(e.code)
        await ctx.socketpair()
        return 0  # exit closes the rest

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert counts == [1, 3, 1, "ECONNREFUSED"]
    assert len(kernel.net) == 0


async def test_limits_per_process_and_per_kernel(nursery):
    k = await boot_kernel(nursery, limits=Limits(max_sockets=35, max_sockets_per_process=10),
                          net=NetPolicy.loopback())
    codes = []

    async def prog(ctx):
        for _ in range(10):
            await ctx.socket(AF_UNIX, STREAM)
        try:
            await ctx.socket(AF_UNIX, STREAM)
        except KernelError as e:
            codes.append(e.code)
        await ctx.pause()

    async def more(ctx):
        try:
            for _ in range(10):
                await ctx.socket(AF_INET, DGRAM)
        except KernelError as e:
            codes.append(e.code)
        codes.append(len(k.net))
        return 0

    async with trio.open_nursery() as n:
        for _ in range(3):
            n.start_soon(run_program, k, prog)
        await trio.sleep(0.2)
        r = await run_program(k, more)
        assert r.returncode == 0
        assert len(k.net) == 30  # the second program's sockets died with it
        n.cancel_scope.cancel()
    assert codes == ["EMFILE"] * 3 + ["ENFILE", 35]
    await k.shutdown()


async def test_ten_thousand_sockets(nursery):
    k = await boot_kernel(nursery, net=NetPolicy.loopback())
    lines = []

    async def holder(ctx):
        for _ in range(500):
            await ctx.socketpair()
        await ctx.pause()

    async def count(ctx):
        fd = await ctx.open("/proc/net/unix")
        lines.append(len((await ctx.read_all(fd)).splitlines()))
        return 0

    async with trio.open_nursery() as n:
        for _ in range(10):
            n.start_soon(functools.partial(run_program, k, holder, timeout=60))
        with trio.fail_after(60):
            while len(k.net) < 10000:
                await trio.sleep(0.05)
        await run_program(k, count)
        n.cancel_scope.cancel()
    assert lines == [10001]
    r = await k.run(["true"])
    assert r.returncode == 0
    await k.shutdown()
    assert len(k.net) == 0


async def test_connect_storm(kernel):
    served = []

    async def server(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.bind(s, ("127.0.0.1", 7070))
        await ctx.listen(s, 8)
        for _ in range(300):
            c, _ = await ctx.accept(s)
            served.append(await ctx.recv(c, 10))
            await ctx.close(c)
        return 0

    async def client(ctx):
        await trio.sleep(0.01)
        for i in range(30):
            s = await ctx.socket(AF_INET, STREAM)
            await ctx.connect(s, ("127.0.0.1", 7070))
            await ctx.send(s, b"%d" % i)
            await ctx.close(s)
        return 0

    async with trio.open_nursery() as n:
        n.start_soon(run_program, kernel, server)
        for _ in range(10):
            n.start_soon(run_program, kernel, client)
    assert len(served) == 300
    assert len(kernel.net) == 0


async def test_udp_drops_when_nobody_reads(kernel):
    out = {}

    async def prog(ctx):
        a = await ctx.socket(AF_INET, DGRAM)
        await ctx.bind(a, ("127.0.0.1", 0))
        addr = await ctx.getsockname(a)
        b = await ctx.socket(AF_INET, DGRAM)
        for _ in range(1000):
            await ctx.sendto(b, b"z" * 1000, addr)
        fd = await ctx.open("/proc/net/udp")
        out["udp"] = (await ctx.read_all(fd)).decode()
        out["port"] = addr[1]
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    line = [x for x in out["udp"].splitlines() if x.split()[1] == "0100007F:%04X" % out["port"]][0]
    drops = int(line.split()[-1])
    assert drops > 0 and len(kernel.net) == 0


# ---------------------------------------------------------------------------------- policy
async def _codes(kernel, calls):
    out = []

    async def prog(ctx):
        for call in calls:
            try:
                out.append(await call(ctx))
            except KernelError as e:
                out.append(e.code)
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    return out


async def test_policy_none_blocks_inet_and_names_but_not_unix(kernel_none):
    async def listen(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.bind(s, ("127.0.0.1", 0))
        await ctx.listen(s)

    async def connect(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.connect(s, ("127.0.0.1", 80))

    async def connect_out(ctx):
        s = await ctx.socket(AF_INET6, STREAM)
        await ctx.connect(s, ("2001:db8::1", 443))

    async def sendto(ctx):
        s = await ctx.socket(AF_INET, DGRAM)
        await ctx.sendto(s, b"q", ("8.8.8.8", 53))

    async def resolve(ctx):
        return await ctx.getaddrinfo("example.com", 80)

    async def unix(ctx):
        a, b = await ctx.socketpair()
        await ctx.send(a, b"ok")
        return await ctx.recv(b, 2)

    codes = await _codes(kernel_none, [listen, connect, connect_out, sendto, resolve, unix])
    assert codes == ["EACCES"] * 5 + [b"ok"]
    assert kernel_none.net.policy.denied == 5


async def test_policy_loopback_stays_inside(kernel):
    async def out(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.connect(s, ("93.184.216.34", 80))

    async def name(ctx):
        return await ctx.getaddrinfo("example.com", 80)

    async def local(ctx):
        return [i[4] for i in await ctx.getaddrinfo("LOCALHOST.", "http", type=STREAM)]

    codes = await _codes(kernel, [out, name, local])
    assert codes == ["EACCES", "EACCES", [("127.0.0.1", 80), ("::1", 80, 0, 0)]]


async def test_policy_decides_on_the_address_not_its_spelling(nursery):
    k = await boot_kernel(nursery, net=NetPolicy.allow("tcp:10.0.0.0/8:80"))
    handed: list[tuple] = []
    k.net.spawn = lambda run, family, address: handed.append(address)  # record, contact nothing
    targets = [
        (AF_INET, "10.1.2.3", 80),        # allowed: handed to the host adapter
        (AF_INET, "10.1.2.3", 81),        # wrong port
        (AF_INET, "167838211", 80),       # 10.1.2.3 in decimal: allowed like the dotted form
        (AF_INET, "0x0a.1.2.3", 80),      # hex
        (AF_INET, "012.1.2.3", 80),       # octal 012 = 10
        (AF_INET, "2130706433", 9),       # 127.0.0.1: loopback, nobody listens, no rule: refused
        (AF_INET6, "::ffff:10.1.2.3", 80),  # mapped: the IPv4 rule decides
        (AF_INET6, "::ffff:11.1.2.3", 80),
        (AF_INET, "11.0.0.1", 80),
    ]

    def connect(fam, host, port):
        async def call(ctx):
            s = await ctx.socket(fam, STREAM | O_NONBLOCK)
            await ctx.connect(s, (host, port))
        return call

    codes = await _codes(k, [connect(*t) for t in targets])
    # a refused non-blocking connect says EINPROGRESS too (and SO_ERROR later), as Linux
    assert codes == ["EINPROGRESS", "EACCES", "EINPROGRESS", "EINPROGRESS", "EINPROGRESS",
                     "EINPROGRESS", "EINPROGRESS", "EACCES", "EACCES"]
    assert handed == [("10.1.2.3", 80)] * 5
    assert k.net.policy.denied == 3
    assert "denied connect tcp 11.1.2.3:80" in k.net.policy.log_lines[1]
    await k.shutdown()


async def test_host_adapter_carries_an_allowed_connection(nursery):
    """A real server of the test on 127.0.0.1: an allow rule for its port reaches it (nothing
    in the kernel listens there); other loopback ports stay in-kernel and refuse."""
    got = []

    async def handler(stream):
        data = b""
        while not data.endswith(b"\n"):
            data += await stream.receive_some(100)
        got.append(data)
        await stream.send_all(b"echo:" + data)
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    k = await boot_kernel(nursery, net=NetPolicy.allow(f"tcp:127.0.0.1:{port}"))
    out = {}

    async def prog(ctx):
        s = await ctx.socket(AF_INET, STREAM)
        await ctx.setsockopt(s, 6, 1, 1)  # TCP_NODELAY, replayed on the host socket
        await ctx.connect(s, ("127.0.0.1", port))
        await ctx.send(s, b"over the adapter\n")
        parts = []
        while True:
            data = await ctx.recv(s, 100)
            if not data:
                break
            parts.append(data)
        out["reply"] = b"".join(parts)
        c = await ctx.socket(AF_INET, STREAM)
        try:
            await ctx.connect(c, ("127.0.0.1", port + 1 if port < 65535 else port - 1))
        except KernelError as e:
            out["other"] = e.code
        fd = await ctx.open("/proc/net/tcp")
        out["tcp"] = await ctx.read_all(fd)
        return 0

    r = await run_program(k, prog)
    assert r.returncode == 0, r.stderr
    assert got == [b"over the adapter\n"]
    assert out["reply"] == b"echo:over the adapter\n"
    assert out["other"] == "ECONNREFUSED"
    await k.shutdown()


def test_policy_rules_parse_and_print():
    assert str(Rule.parse("tcp:10.0.0.0/8:80-90")) == "tcp:10.0.0.0/8:80-90"
    assert str(Rule.parse("[2001:db8::]/32:443")) == "[2001:db8::/32]:443"
    assert str(Rule.parse("192.168.1.7")) == "192.168.1.7/32"
    assert str(Rule.parse("tcp:Pypi.ORG.:443")) == "tcp:pypi.org:443"  # a name rule, case and dot folded
    for bad in ("10.0.0.0/8:99999", "non sense", "-x.example", "1.2.3.999", "0x7f.1", "[::1:80",
                "::ffff:1.2.3.4/128", "a..b"):
        with pytest.raises(ValueError):
            Rule.parse(bad)
    with pytest.raises(ValueError):
        NetPolicy("everything")
    assert NetPolicy.allow("udp:1.2.3.4:53").describe() == "mode allow\nallow udp:1.2.3.4/32:53\ndenied 0\n"


def _fake_resolver(table: dict[str, list[str]], asked: list[str] | None = None):
    """The host adapter's resolver, answering from *table* (case and root dot ignored, as DNS)."""
    async def resolver(host, port, family, type_):
        if asked is not None:
            asked.append(host)
        name = host.lower().rstrip(".")
        if name not in table:
            raise OSError(-2, "Name or service not known")
        return [(AF_INET, STREAM, 6, "", (ip, 0)) for ip in table[name]]
    return resolver


def _resolve(name: str):
    """A program that looks *name* up (port 443, TCP) and returns the addresses."""
    async def call(ctx):
        return [i[4][0] for i in await ctx.getaddrinfo(name, 443, type=STREAM)]
    return call


async def test_names_resolve_through_the_adapter_only_to_allowed_addresses(nursery):
    k = await boot_kernel(nursery, net=NetPolicy.allow("tcp:10.0.0.0/8:443"))
    asked: list[str] = []
    k.net.resolver = _fake_resolver({"inside.example": ["10.2.3.4", "192.0.2.1"],
                                     "outside.example": ["192.0.2.7"]}, asked)
    codes = await _codes(k, [_resolve("inside.example"), _resolve("outside.example"),
                             _resolve("nothing.example"), _resolve("localhost")])
    assert codes == [["10.2.3.4"], "EACCES", "EHOSTUNREACH", ["127.0.0.1", "::1"]]
    assert asked == ["inside.example", "outside.example", "nothing.example"]  # localhost stays local
    await k.shutdown()


async def test_a_name_rule_allows_what_the_name_resolved_to_and_nothing_else(nursery):
    """``--allow tcp:inside.example:443``: the adapter's answer for that name (any spelling of
    it) becomes allowed at connect time; other names and other addresses stay refused."""
    k = await boot_kernel(nursery, net=NetPolicy.allow("tcp:inside.example:443"))
    k.net.resolver = _fake_resolver({"inside.example": ["198.51.100.5"], "other.example": ["198.51.100.6"]})
    before = k.net.policy.outbound_allowed("tcp", ipaddress.ip_address("198.51.100.5"), 443)
    codes = await _codes(k, [_resolve("INSIDE.example."), _resolve("other.example")])
    assert before is False and codes == [["198.51.100.5"], "EACCES"]
    policy = k.net.policy
    assert policy.outbound_allowed("tcp", ipaddress.ip_address("198.51.100.5"), 443)
    assert not policy.outbound_allowed("tcp", ipaddress.ip_address("198.51.100.5"), 80)   # the rule's port
    assert not policy.outbound_allowed("udp", ipaddress.ip_address("198.51.100.5"), 443)  # and protocol
    assert not policy.outbound_allowed("tcp", ipaddress.ip_address("198.51.100.6"), 443)
    assert "allow tcp:inside.example:443" in policy.describe()
    await k.shutdown()


async def test_host_adapter_carries_allowed_udp(nursery):
    host = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await host.bind(("127.0.0.1", 0))
    port = host.getsockname()[1]

    scope = trio.CancelScope()

    async def echo():
        with scope:
            while True:
                data, src = await host.recvfrom(100)
                await host.sendto(b"echo:" + data, src)
        host.close()

    nursery.start_soon(echo)
    k = await boot_kernel(nursery, net=NetPolicy.allow(f"udp:127.0.0.1:{port}"))
    out = {}

    async def prog(ctx):
        s = await ctx.socket(AF_INET, DGRAM)
        await ctx.sendto(s, b"ping", ("127.0.0.1", port))
        out["reply"] = await ctx.recvfrom(s, 100)
        c = await ctx.socket(AF_INET, DGRAM)
        await ctx.connect(c, ("127.0.0.1", port))
        await ctx.send(c, b"two")
        out["connected"] = await ctx.recv(c, 100)
        try:
            await ctx.sendto(s, b"x", ("127.0.0.1", port + 1 if port < 65535 else port - 1))
            out["other"] = "sent (in-kernel: nobody there, dropped)"
        except KernelError as e:
            out["other"] = e.code
        try:
            await ctx.sendto(s, b"x", ("192.0.2.1", 53))
        except KernelError as e:
            out["outside"] = e.code
        return 0

    r = await run_program(k, prog)
    scope.cancel()
    assert r.returncode == 0, r.stderr
    assert out["reply"] == (b"echo:ping", ("127.0.0.1", port))
    assert out["connected"] == b"echo:two"
    assert out["other"].startswith("sent") and out["outside"] == "EACCES"
    await k.shutdown()


async def test_so_rcvtimeo_and_sndtimeo_like_the_host(kernel):
    import socket as pysocket
    import time as _time

    tv = struct.pack("qq", 0, 50_000)  # 50 ms
    a, b = pysocket.socketpair()
    a.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVTIMEO, tv)
    t = _time.monotonic()
    try:
        a.recv(10)
        host_recv = "data"
    except OSError as e:
        host_recv = errno_name(e.errno)
    host_wait = _time.monotonic() - t
    a.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_SNDTIMEO, tv)
    sent = 0
    try:
        while True:
            sent += a.send(b"x" * 65536)
    except OSError as e:
        host_send = errno_name(e.errno)
    a.close()
    b.close()
    out = {}

    async def prog(ctx):
        x, y = await ctx.socketpair()
        await ctx.setsockopt(x, SOL_SOCKET, 20, tv)
        t0 = trio.current_time()
        try:
            await ctx.recv(x, 10)
        except KernelError as e:
            out["recv"] = e.code
        out["wait"] = trio.current_time() - t0
        await ctx.setsockopt(x, SOL_SOCKET, 21, tv)
        try:
            while True:
                await ctx.send(x, b"x" * 65536)
        except KernelError as e:
            out["send"] = e.code
        out["tv"] = await ctx.getsockopt(x, SOL_SOCKET, 20, 16)
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    assert (out["recv"], out["send"]) == (host_recv, host_send) == ("EAGAIN", "EAGAIN")
    assert 0.04 <= out["wait"] < 1 and 0.04 <= host_wait < 1
    assert out["tv"] == tv


def errno_name(n):
    import errno

    return errno.errorcode[n]


async def test_connect_needs_write_permission_on_the_socket_file(kernel):
    out = []
    ready = trio.Event()
    go = trio.Event()

    async def server(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        await ctx.bind(s, "/tmp/priv.sock")  # 0755: others may not write
        await ctx.listen(s, 4)
        ready.set()
        await go.wait()
        await ctx.chmod("/tmp/priv.sock", 0o777)
        out.append("opened")
        c, _ = await ctx.accept(s)
        return 0

    async def client(ctx):
        s = await ctx.socket(AF_UNIX, STREAM)
        try:
            await ctx.connect(s, "/tmp/priv.sock")
        except KernelError as e:
            out.append(e.code)
        go.set()
        while "opened" not in out:
            await ctx.sched_yield()
        await ctx.connect(s, "/tmp/priv.sock")
        out.append("connected")
        return 0

    async with trio.open_nursery() as n:
        n.start_soon(run_program, kernel, server)
        await ready.wait()
        kernel.uid = 1000
        n.start_soon(run_program, kernel, client)
    assert out == ["EACCES", "opened", "connected"]


async def test_sockets_passed_over_themselves_are_collected(nursery):
    k = await boot_kernel(nursery, limits=Limits(max_sockets_per_process=8), net=NetPolicy.loopback())
    out = {}

    async def prog(ctx):
        for _ in range(4):  # each round leaves an unreachable pair: a sent over b, b over a
            a, b = await ctx.socketpair()
            await ctx.sendmsg(a, [b"x"], [(SOL_SOCKET, SCM_RIGHTS, [a])])
            await ctx.sendmsg(b, [b"y"], [(SOL_SOCKET, SCM_RIGHTS, [b])])
            await ctx.close(a)
            await ctx.close(b)
        out["before"] = k.net.count_of(ctx.getpid())
        keep_a, keep_b = await ctx.socketpair()  # 8 + 2 > 8: the collector runs first
        r, w = await ctx.pipe()
        await ctx.sendmsg(keep_a, [b"z"], [(SOL_SOCKET, SCM_RIGHTS, [r])])  # a pipe in flight
        await ctx.close(r)
        await trio.sleep(0.01)
        out["after"] = k.net.count_of(ctx.getpid())
        _d, anc, _f, _a = await ctx.recvmsg(keep_b, 10, 64)  # reachable messages are kept
        out["received"] = len(anc)
        return 0

    r = await run_program(k, prog)
    assert r.returncode == 0, r.stderr
    assert out == {"before": 8, "after": 2, "received": 1}
    await k.shutdown()


async def test_the_sandbox_hosts_file_cannot_widen_a_name_rule(nursery):
    """A name rule holds what the daemon's resolver says the name is; an /etc/hosts line the
    sandbox wrote still answers lookups but allows nothing."""
    k = await boot_kernel(nursery, net=NetPolicy.allow("tcp:pkgs.example:443"))
    k.net.resolver = _fake_resolver({"pkgs.example": ["198.51.100.7"]})
    await k.vfs.write_file("/etc/hosts", b"127.0.0.1 localhost\n10.1.2.3 pkgs.example\n")
    codes = await _codes(k, [_resolve("pkgs.example")])
    assert codes == [["10.1.2.3"]]  # the file answers, as a resolver reading it does
    policy = k.net.policy
    assert not policy.outbound_allowed("tcp", ipaddress.ip_address("10.1.2.3"), 443)
    await k.shutdown()
