"""Socket table benchmark (see scripts/bench-net).

Each figure is measured inside sandbox programs (two processes, through the syscall layer)
and, in the same run, with plain Python sockets on the host's own loopback doing the same:

* TCP throughput: 64 KiB sends from one process to another (target >= 500 MB/s);
* connect + accept + close rate (target >= 5,000/s);
* AF_UNIX ping-pong round trip, one byte each way (target p50 <= 50 us);
* ``curl -o /dev/null`` of a file from ``httpd`` (100 MiB; 16 MiB with --quick), and the
  sandbox's curl through the host adapter from Python's ``http.server`` on the host's
  127.0.0.1, beside the host's curl against that same server when the host has curl.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import trio  # noqa: E402

from kernel.kernel import Kernel  # noqa: E402
from kernel.net.policy import NetPolicy  # noqa: E402
from kernel.syscalls import AF_INET, AF_UNIX, O_CREAT, O_WRONLY, SOCK_STREAM  # noqa: E402
from kernel.userland import standard_registry  # noqa: E402

BLOCK = 65536


# --------------------------------------------------------------------------------- sandbox
async def k_throughput(k: Kernel, total: int) -> float:
    result: dict[str, float] = {}
    ready = trio.Event()
    port: list[int] = []

    async def server(ctx) -> int:
        s = await ctx.socket(AF_INET, SOCK_STREAM)
        await ctx.bind(s, ("127.0.0.1", 0))
        await ctx.listen(s)
        port.append((await ctx.getsockname(s))[1])
        ready.set()
        c, _ = await ctx.accept(s)
        got = 0
        recv = ctx.recv
        t = time.perf_counter()
        while True:
            data = await recv(c, 1 << 20)
            if not data:
                break
            got += len(data)
        result["rate"] = got / (time.perf_counter() - t) / 1e6
        return 0

    async def client(ctx) -> int:
        await ready.wait()
        s = await ctx.socket(AF_INET, SOCK_STREAM)
        await ctx.connect(s, ("127.0.0.1", port[0]))
        block = b"\xab" * BLOCK
        send = ctx.send
        for _ in range(total // BLOCK):
            await send(s, block)
        await ctx.close(s)
        return 0

    k.programs.register("bn-srv", server)
    k.programs.register("bn-cli", client)
    async with trio.open_nursery() as n:
        n.start_soon(k.run, ["bn-srv"])
        n.start_soon(k.run, ["bn-cli"])
    return result["rate"]


async def k_connect_rate(k: Kernel, count: int) -> float:
    result: dict[str, float] = {}
    ready = trio.Event()
    port: list[int] = []

    async def server(ctx) -> int:
        s = await ctx.socket(AF_INET, SOCK_STREAM)
        await ctx.bind(s, ("127.0.0.1", 0))
        await ctx.listen(s, 128)
        port.append((await ctx.getsockname(s))[1])
        ready.set()
        for _ in range(count):
            c, _ = await ctx.accept(s)
            await ctx.close(c)
        return 0

    async def client(ctx) -> int:
        await ready.wait()
        addr = ("127.0.0.1", port[0])
        t = time.perf_counter()
        for _ in range(count):
            s = await ctx.socket(AF_INET, SOCK_STREAM)
            await ctx.connect(s, addr)
            await ctx.close(s)
        result["rate"] = count / (time.perf_counter() - t)
        return 0

    k.programs.register("bn-asrv", server)
    k.programs.register("bn-acli", client)
    async with trio.open_nursery() as n:
        n.start_soon(k.run, ["bn-asrv"])
        n.start_soon(k.run, ["bn-acli"])
    return result["rate"]


async def k_pingpong(k: Kernel, rounds: int) -> float:
    result: dict[str, float] = {}

    async def echo(ctx) -> int:
        while True:
            b = await ctx.recv(3, 1)
            if not b:
                return 0
            await ctx.send(3, b)

    async def main(ctx) -> int:
        a, b = await ctx.socketpair(AF_UNIX, SOCK_STREAM)
        pid = await ctx.spawn(["bn-echo"], fds={3: b})
        await ctx.close(b)
        send, recv = ctx.send, ctx.recv
        times = []
        clock = time.perf_counter
        for _ in range(rounds):
            t = clock()
            await send(a, b"x")
            await recv(a, 1)
            times.append(clock() - t)
        await ctx.close(a)
        await ctx.waitpid(pid)
        result["p50"] = statistics.median(times) * 1e6
        return 0

    k.programs.register("bn-echo", echo)
    k.programs.register("bn-ping", main)
    await k.run(["bn-ping"])
    return result["p50"]


async def k_curl(k: Kernel, size: int) -> float:
    async def make(ctx) -> int:
        await ctx.mkdir("/srv")
        fd = await ctx.open("/srv/big", O_WRONLY | O_CREAT)
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            await ctx.write_all(fd, block)
        await ctx.close(fd)
        return 0

    k.programs.register("bn-make", make)
    await k.run(["bn-make"])
    script = ("httpd -p 8099 -d /srv -n 1 >/dev/null & until ss -ltn | grep -q ':8099 '; do :; done; "
              "curl -s -o /dev/null http://127.0.0.1:8099/big; wait")
    t = time.perf_counter()
    r = await k.run(["sh", "-c", script], timeout=600)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"curl in the sandbox failed: {r.stderr.decode()}")
    return size / dt / 1e6


# ------------------------------------------------------------------------------------ host
def h_throughput(total: int) -> float:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    out: dict[str, float] = {}

    def serve() -> None:
        c, _ = srv.accept()
        got = 0
        t = time.perf_counter()
        while True:
            data = c.recv(1 << 20)
            if not data:
                break
            got += len(data)
        out["rate"] = got / (time.perf_counter() - t) / 1e6
        c.close()

    th = threading.Thread(target=serve)
    th.start()
    c = socket.create_connection(srv.getsockname())
    block = b"\xab" * BLOCK
    for _ in range(total // BLOCK):
        c.sendall(block)
    c.close()
    th.join()
    srv.close()
    return out["rate"]


def _accept_loop(srv: socket.socket, count: int) -> None:
    for _ in range(count):
        c, _ = srv.accept()
        c.close()


def h_connect_rate(count: int) -> float:
    """The server is another process, as in the sandbox (a thread would fight for the GIL)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    addr = srv.getsockname()
    p = multiprocessing.get_context("fork").Process(target=_accept_loop, args=(srv, count))
    p.start()
    srv.close()
    t = time.perf_counter()
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # no TIME_WAIT pile-up
        s.connect(addr)
        s.close()
    rate = count / (time.perf_counter() - t)
    p.join()
    return rate


def _echo(sock: socket.socket, other: socket.socket) -> None:
    other.close()
    while True:
        b = sock.recv(1)
        if not b:
            return
        sock.send(b)


def h_pingpong(rounds: int) -> float:
    a, b = socket.socketpair()
    p = multiprocessing.get_context("fork").Process(target=_echo, args=(b, a))
    p.start()
    b.close()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        a.send(b"x")
        a.recv(1)
        times.append(time.perf_counter() - t)
    a.close()
    p.join()
    return statistics.median(times) * 1e6


class HostServer:
    """Python's http.server on the host's 127.0.0.1 serving one file of *size* bytes."""

    def __init__(self, size: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="bench-net-")
        with open(os.path.join(self.dir, "big"), "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(block)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                                      "--directory", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def h_curl(server: HostServer, size: int) -> float | None:
    if shutil.which("curl") is None:
        return None
    t = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{server.port}/big"], check=True)
    return size / (time.perf_counter() - t) / 1e6


async def k_curl_adapter(k: Kernel, server: HostServer, size: int) -> float:
    k.net.policy = NetPolicy.allow(f"tcp:127.0.0.1:{server.port}")
    t = time.perf_counter()
    r = await k.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{server.port}/big"], timeout=600)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"curl through the adapter failed: {r.stderr.decode()}")
    return size / dt / 1e6


# ------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (CI)")
    opts = ap.parse_args()
    total = (64 if opts.quick else 512) << 20
    conns = 2000 if opts.quick else 10000
    rounds = 2000 if opts.quick else 10000
    big = (16 if opts.quick else 100) << 20

    server = HostServer(big)

    async def sandbox() -> dict[str, float]:
        from vfsfuse.storage.store import memory_vfs

        out: dict[str, float] = {}
        async with trio.open_nursery() as n:
            k = Kernel(memory_vfs(), programs=standard_registry(), net=NetPolicy.loopback())
            await k.boot(n)
            out["tcp"] = await k_throughput(k, total)
            out["accept"] = await k_connect_rate(k, conns)
            out["ping"] = await k_pingpong(k, rounds)
            out["curl"] = await k_curl(k, big)
            out["adapter"] = await k_curl_adapter(k, server, big)
            await k.shutdown()
        return out

    try:
        ours = trio.run(sandbox)
        host = {"tcp": h_throughput(total), "accept": h_connect_rate(conns), "ping": h_pingpong(rounds)}
        host_curl = h_curl(server, big)
    finally:
        server.close()
    rows = [
        ("TCP loopback, 64 KiB sends", f"{ours['tcp']:.0f} MB/s", f"{host['tcp']:.0f} MB/s", ">= 500 MB/s"),
        ("connect+accept+close", f"{ours['accept']:.0f}/s", f"{host['accept']:.0f}/s", ">= 5000/s"),
        ("AF_UNIX ping-pong p50", f"{ours['ping']:.1f} us", f"{host['ping']:.1f} us", "<= 50 us"),
        (f"curl {big >> 20} MiB from httpd", f"{ours['curl']:.0f} MB/s",
         f"{host_curl:.0f} MB/s" if host_curl is not None else "(no host curl)", ""),
        ("curl via the host adapter", f"{ours['adapter']:.0f} MB/s",
         f"{host_curl:.0f} MB/s" if host_curl is not None else "(no host curl)", ""),
    ]
    print(f"{'':32} {'sandbox':>26} {'host (Python sockets)':>22} {'target':>12}")
    for name, a, b, target in rows:
        print(f"{name:32} {a:>26} {b:>22} {target:>12}")


if __name__ == "__main__":
    main()
