"""The network family: programs that use the socket table.

``nc`` (OpenBSD netcat's options), ``host``/``nslookup``/``getent hosts`` (resolution through
the policy), and, in sibling modules, ``ss`` (``net_ss``) and ``curl``/``wget``/``httpd``
(``net_http``).  Everything goes through ``ctx``: names resolve with ``ctx.getaddrinfo``
(numeric, ``localhost``, the VFS's /etc/hosts; other names only if the policy allows), so
a program cannot reach anything the kernel's policy does not let through.
"""

from __future__ import annotations

import time
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import error, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.net_http import PROGRAMS as HTTP_PROGRAMS
from kernel.programs.net_ss import PROGRAMS as SS_PROGRAMS
from kernel.programs.registry import Program
from kernel.syscalls import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    AF_UNSPEC,
    MSG_NOSIGNAL,
    SHUT_WR,
    SO_REUSEADDR,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
)

POLLIN = 0x001
CHUNK = 65536

NC_SPEC = Spec("nc", "[-46dklNnuUvz] [-p port] [-s source] [-q secs] [-w timeout] [destination] [port]",
               "Read and write data across network connections (TCP, UDP, AF_UNIX).", [
                   Opt("4", None, help="use IPv4 only"),
                   Opt("6", None, help="use IPv6 only"),
                   Opt("d", None, help="do not read from stdin"),
                   Opt("k", None, help="keep listening for another connection after one ends"),
                   Opt("l", None, help="listen for an incoming connection"),
                   Opt("N", None, help="shutdown(2) the socket for writing after EOF on stdin"),
                   Opt("n", None, help="numeric addresses only, no name resolution"),
                   Opt("p", None, arg="port", help="source port (with -l: the port to listen on)"),
                   Opt("q", None, arg="secs", help="after EOF on stdin wait secs, then quit"),
                   Opt("s", None, arg="source", help="source address to bind"),
                   Opt("U", None, help="use AF_UNIX sockets"),
                   Opt("u", None, help="use UDP instead of TCP"),
                   Opt("v", None, action="count", help="verbose"),
                   Opt("w", None, arg="timeout", help="connect and idle timeout in seconds"),
                   Opt("z", None, help="scan: report whether a port listens, send no data"),
               ])


class NcError(Exception):
    """A message for ``nc: ...`` and exit status 1."""


def _seconds(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        n = float(value)
    except ValueError:
        raise NcError(f"{what} \"{value}\" invalid") from None
    return n


def _ports(text: str) -> list[int]:
    lo_s, dash, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
    except ValueError:
        raise NcError(f"port number invalid: {text}") from None
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or lo > hi:
        raise NcError(f"port number invalid: {text}")
    return list(range(lo, hi + 1))


async def _addresses(ctx: Any, host: str, port: int, family: int, stype: int, numeric: bool) -> list[tuple[int, Any]]:
    if numeric:
        infos = []
        for fam in (AF_INET, AF_INET6):
            if family in (AF_UNSPEC, fam):
                try:
                    infos += await ctx.getaddrinfo(host, port, fam, stype)
                except KernelError:
                    continue
                break
        if not infos:
            raise NcError(f"getaddrinfo: Name or service not known ({host})")
    else:
        try:
            infos = await ctx.getaddrinfo(host, port, family, stype)
        except KernelError as e:
            raise NcError(f"getaddrinfo for host \"{host}\" port {port}: {e.message}") from None
    return [(fam, addr) for fam, _t, _p, _c, addr in infos]


async def _send_all(ctx: Any, sock: int, data: bytes) -> None:
    view = memoryview(data)
    done = 0
    while done < len(data):
        done += await ctx.send(sock, view[done:], MSG_NOSIGNAL)


async def _pump(ctx: Any, sock: int, o: dict[str, Any], udp_peer: Any = None) -> None:
    """Copy stdin to the socket and the socket to stdout until the peer is done."""
    stdin_open = not o["d"]
    idle = o["w"]
    quit_at: float | None = None
    while True:
        fds = [(sock, POLLIN)] + ([(0, POLLIN)] if stdin_open else [])
        timeout = idle
        if quit_at is not None:
            left = max(0.0, quit_at - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        ready = await ctx.poll(fds, timeout)
        if not ready:
            return  # idle timeout, or the -q wait after stdin's EOF is over
        for fd, _ev in ready:
            if fd == sock:
                try:
                    data = await ctx.recv(sock, CHUNK)
                except KernelError as e:
                    if e.code in ("ECONNRESET", "ECONNREFUSED"):
                        return
                    raise
                if not data:
                    if not o["u"]:
                        return
                    continue
                await ctx.write_all(1, data)
            else:
                data = await ctx.read(0, CHUNK)
                if not data:
                    stdin_open = False
                    if o["N"] and not o["u"]:
                        await ctx.shutdown(sock, SHUT_WR)
                    if o["q"] is not None and o["q"] >= 0:
                        if o["q"] == 0:
                            return
                        quit_at = time.monotonic() + o["q"]
                    continue
                if udp_peer is not None:
                    await ctx.sendto(sock, data, udp_peer)
                else:
                    await _send_all(ctx, sock, data)


async def _unix(ctx: Any, o: dict[str, Any], path: str) -> int:
    stype = SOCK_DGRAM if o["u"] else SOCK_STREAM
    sock = await ctx.socket(AF_UNIX, stype)
    if o["l"]:
        try:
            await ctx.bind(sock, path)
        except KernelError as e:
            raise NcError(f"{path}: {strerror(e)}") from None
        if stype == SOCK_DGRAM:
            await _pump(ctx, sock, o)
            return 0
        await ctx.listen(sock, 5)
        while True:
            conn, _ = await ctx.accept(sock)
            await _pump(ctx, conn, o)
            await ctx.close(conn)
            if not o["k"]:
                return 0
    try:
        await ctx.connect(sock, path)
    except KernelError as e:
        if o["z"]:
            return 1
        raise NcError(f"{path}: {strerror(e)}") from None
    if o["z"]:
        return 0
    await _pump(ctx, sock, o)
    return 0


async def _listen(ctx: Any, o: dict[str, Any], host: str | None, port: int) -> int:
    stype = SOCK_DGRAM if o["u"] else SOCK_STREAM
    family = o["family"]
    if host is None:
        family = AF_INET6 if family == AF_INET6 else AF_INET
        host = "::" if family == AF_INET6 else "0.0.0.0"
    fam, addr = (await _addresses(ctx, host, port, family, stype, o["n"]))[0]
    sock = await ctx.socket(fam, stype)
    await ctx.setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, 1)
    try:
        await ctx.bind(sock, addr)
    except KernelError as e:
        raise NcError(f"bind failed: {strerror(e)}") from None
    if stype == SOCK_DGRAM:
        data, peer = await ctx.recvfrom(sock, CHUNK)
        if o["v"]:
            await error(ctx, "nc", f"Connection received on {peer[0]} {peer[1]}")
        await ctx.write_all(1, data)
        await ctx.connect(sock, peer)
        await _pump(ctx, sock, o)
        return 0
    try:
        await ctx.listen(sock, 5)
    except KernelError as e:
        raise NcError(f"listen failed: {strerror(e)}") from None
    if o["v"]:
        local = await ctx.getsockname(sock)
        await error(ctx, "nc", f"Listening on {local[0]} {local[1]}")
    while True:
        conn, peer = await ctx.accept(sock)
        if o["v"]:
            await error(ctx, "nc", f"Connection received on {peer[0]} {peer[1]}")
        await _pump(ctx, conn, o)
        await ctx.close(conn)
        if not o["k"]:
            return 0


async def _connect_one(ctx: Any, o: dict[str, Any], fam: int, addr: Any) -> int:
    stype = SOCK_DGRAM if o["u"] else SOCK_STREAM
    sock = await ctx.socket(fam, stype)
    if o["s"] is not None or o["p"] is not None:
        src = await _addresses(ctx, o["s"] or ("::" if fam == AF_INET6 else "0.0.0.0"),
                               int(o["p"] or 0), fam, stype, True)
        await ctx.setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, 1)
        await ctx.bind(sock, src[0][1])
    if o["w"] is not None and not o["u"]:
        # a connect inside the kernel completes or fails at once; -w bounds the wait for room
        # in a full backlog
        from kernel.syscalls import F_GETFL, F_SETFL, O_NONBLOCK, SO_ERROR

        flags = await ctx.fcntl(sock, F_GETFL)
        await ctx.fcntl(sock, F_SETFL, flags | O_NONBLOCK)
        try:
            await ctx.connect(sock, addr)
        except KernelError as e:
            if e.code != "EINPROGRESS":
                await ctx.close(sock)
                raise
        ready = await ctx.poll([(sock, 0x004)], o["w"])
        err = await ctx.getsockopt(sock, SOL_SOCKET, SO_ERROR)
        if not ready:
            await ctx.close(sock)
            raise KernelError("ETIMEDOUT", "connection timed out")
        if err:
            await ctx.close(sock)
            import errno as _errno
            raise KernelError(_errno.errorcode[err], "")
        await ctx.fcntl(sock, F_SETFL, flags)
    else:
        try:
            await ctx.connect(sock, addr)
        except KernelError:
            await ctx.close(sock)
            raise
    return sock


async def _client(ctx: Any, o: dict[str, Any], host: str, ports: list[int]) -> int:
    stype = SOCK_DGRAM if o["u"] else SOCK_STREAM
    proto = "udp" if o["u"] else "tcp"
    status = 1
    for port in ports:
        last: KernelError | None = None
        sock = None
        for fam, addr in await _addresses(ctx, host, port, o["family"], stype, o["n"]):
            try:
                sock = await _connect_one(ctx, o, fam, addr)
                break
            except KernelError as e:
                last = e
                if o["v"] or not o["z"]:
                    await error(ctx, "nc", f"connect to {addr[0]} port {port} ({proto}) failed: {strerror(e)}")
        if sock is None:
            if last is not None and last.code == "EACCES" and not o["z"]:
                pass
            continue
        status = 0
        if o["z"]:
            if o["v"]:
                await error(ctx, "nc", f"Connection to {host} {port} port [{proto}/*] succeeded!")
            await ctx.close(sock)
            continue
        if o["v"]:
            await error(ctx, "nc", f"Connection to {host} {port} port [{proto}/*] succeeded!")
        await _pump(ctx, sock, o)
        await ctx.close(sock)
        return 0
    return status


async def nc_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, NC_SPEC)
    if isinstance(args, int):
        return args
    ops = args.operands
    try:
        o: dict[str, Any] = {k: bool(args.get(k)) for k in "dklNnuUz"}
        o["v"] = args.get("v", 0)
        o["p"] = args.get("p")
        o["s"] = args.get("s")
        o["w"] = _seconds(args.get("w"), "timeout")
        o["q"] = _seconds(args.get("q"), "quit timer")
        o["family"] = AF_INET if args.get("4") else AF_INET6 if args.get("6") else AF_UNSPEC
        if o["p"] is not None:
            _ports(o["p"])
        if o["U"]:
            if len(ops) != 1:
                raise NcError("missing or extra operand: -U needs one socket path")
            return await _unix(ctx, o, ops[0])
        if o["l"]:
            if o["z"]:
                raise NcError("cannot use -z and -l")
            if len(ops) > 2 or (not ops and o["p"] is None):
                raise NcError("missing port number")
            host = ops[0] if len(ops) == 2 else None
            port_text = ops[-1] if ops and (len(ops) == 2 or o["p"] is None) else o["p"]
            return await _listen(ctx, o, host, _ports(port_text)[0])
        if len(ops) < 2:
            raise NcError("missing port number" if ops else "missing destination")
        ports: list[int] = []
        for p in ops[1:]:
            ports += _ports(p)
        if len(ports) > 1 and not o["z"]:
            ports = ports[:1]
        return await _client(ctx, o, ops[0], ports)
    except NcError as e:
        await error(ctx, "nc", str(e))
        return 1
    except KernelError as e:
        await error(ctx, "nc", strerror(e))
        return 1


HOST_SPEC = Spec("host", "[-46] NAME", "Look a name up the sandbox's way (numeric, localhost, /etc/hosts, the policy).",
                 [Opt("4", None, help="IPv4 addresses only"), Opt("6", None, help="IPv6 addresses only")])


async def host_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, HOST_SPEC)
    if isinstance(args, int):
        return args
    if len(args.operands) != 1:
        await error(ctx, "host", "usage: host [-46] NAME")
        return 1
    name = args.operands[0]
    family = AF_INET if args.get("4") else AF_INET6 if args.get("6") else AF_UNSPEC
    try:
        infos = await ctx.getaddrinfo(name, None, family, SOCK_STREAM)
    except KernelError as e:
        await ctx.write_all(1, f"Host {name} not found: {e.message}\n")
        return 1
    lines = []
    for fam, _t, _p, _c, addr in infos:
        kind = "address" if fam == AF_INET else "IPv6 address"
        line = f"{name} has {kind} {addr[0]}\n"
        if line not in lines:
            lines.append(line)
    await ctx.write_all(1, "".join(lines))
    return 0


async def getent_hosts_main(ctx: Any) -> int:
    """``getent hosts NAME...``: one ``ADDRESS NAME`` line per name, exit 2 for an unknown one."""
    argv = list(ctx.argv)
    if len(argv) < 3 or argv[1] != "hosts":
        await error(ctx, "getent", "only the 'hosts' database is supported: getent hosts NAME...")
        return 1
    status = 0
    for name in argv[2:]:
        try:
            infos = await ctx.getaddrinfo(name, None, AF_UNSPEC, SOCK_STREAM)
        except KernelError:
            status = 2
            continue
        await ctx.write_all(1, f"{infos[0][4][0]:<15} {name}\n")
    return status


PROGRAMS: dict[str, Program] = {
    "nc": nc_main,
    "netcat": nc_main,
    "host": host_main,
    "nslookup": host_main,
    "getent": getent_hosts_main,
    **SS_PROGRAMS,
    **HTTP_PROGRAMS,
}
