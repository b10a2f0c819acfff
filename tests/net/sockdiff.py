"""Differential socket tests: one script of socket calls, run against the host kernel (Python's
``socket`` module on 127.0.0.1, ::1 and a temporary directory) and against ours (the ``ctx``
socket calls in a sandbox process); each step's result or errno must be the same.

A case file is plain text::

    ### tcp: connect to a port nobody listens on     <- a case
    l = socket inet stream                            <- NAME = call ARGS  (or just: call ARGS)
    bind l 127.0.0.1:0
    c = socket inet stream
    connect c @l                                      <- @NAME: the address NAME is bound to

Addresses: ``127.0.0.1:PORT``, ``[::1]:PORT``, ``unix:NAME`` (a path in the case's directory),
``abstract:NAME`` (made unique per run), ``@SOCK`` (getsockname of SOCK), ``peer@SOCK``,
``HOST@SOCK`` (HOST with SOCK's port).
Calls: ``socket FAMILY TYPE [nonblock]`` (inet inet6 unix; stream dgram seqpacket raw),
``socketpair TYPE``, ``bind``, ``listen S N``, ``accept S`` (value: the new socket),
``connect``, ``send S TEXT [FLAGS]``, ``sendto S TEXT ADDR``, ``recv S N [FLAGS]``,
``recvfrom S N``, ``shutdown S rd|wr|rdwr``, ``close S``, ``sockname S``, ``peername S``,
``setsockopt S LEVEL NAME VALUE``, ``getsockopt S LEVEL NAME``, ``poll S`` (all events, no
wait), ``nonblock S``, ``settle`` (let asynchronous effects such as resets arrive), ``unlink NAME``.
FLAGS are ``peek``, ``dontwait``, ``nosignal``, ``waitall`` joined with ``|``.
Ports are shown as ``p1, p2, ...`` in order of appearance, so both runs print the same.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX, "bogus": 99}
TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM, "seqpacket": socket.SOCK_SEQPACKET,
         "raw": socket.SOCK_RAW, "rdm": socket.SOCK_RDM}
FLAGS = {"peek": socket.MSG_PEEK, "dontwait": socket.MSG_DONTWAIT, "nosignal": socket.MSG_NOSIGNAL,
         "waitall": socket.MSG_WAITALL, "trunc": socket.MSG_TRUNC}
LEVELS = {"socket": socket.SOL_SOCKET, "tcp": socket.IPPROTO_TCP, "ipv6": socket.IPPROTO_IPV6,
          "ip": socket.IPPROTO_IP}
OPTS = {"reuseaddr": socket.SO_REUSEADDR, "rcvbuf": socket.SO_RCVBUF, "sndbuf": socket.SO_SNDBUF,
        "keepalive": socket.SO_KEEPALIVE, "type": socket.SO_TYPE, "error": socket.SO_ERROR,
        "acceptconn": socket.SO_ACCEPTCONN, "domain": socket.SO_DOMAIN, "protocol": socket.SO_PROTOCOL,
        "nodelay": socket.TCP_NODELAY, "keepidle": socket.TCP_KEEPIDLE, "v6only": socket.IPV6_V6ONLY,
        "reuseport": socket.SO_REUSEPORT, "broadcast": socket.SO_BROADCAST, "ttl": socket.IP_TTL,
        "bogus": 999}
SHUT = {"rd": socket.SHUT_RD, "wr": socket.SHUT_WR, "rdwr": socket.SHUT_RDWR}
POLL_ALL = select.POLLIN | select.POLLOUT | select.POLLPRI | 0x2000
POLL_NAMES = [(select.POLLIN, "IN"), (select.POLLPRI, "PRI"), (select.POLLOUT, "OUT"), (select.POLLERR, "ERR"),
              (select.POLLHUP, "HUP"), (0x2000, "RDHUP"), (select.POLLNVAL, "NVAL")]


@dataclass
class Case:
    name: str
    steps: list[tuple[str | None, str, list[str]]] = field(default_factory=list)


def load(path: Path) -> list[Case]:
    cases: list[Case] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not line.startswith("###")):
            continue
        if line.startswith("###"):
            cases.append(Case(line[3:].strip()))
            continue
        target = None
        if " = " in line:
            target, line = (x.strip() for x in line.split(" = ", 1))
        words = line.split()
        cases[-1].steps.append((target, words[0], words[1:]))
    return cases


def poll_text(mask: int) -> str:
    return "|".join(name for bit, name in POLL_NAMES if mask & bit) or "-"


def flags_of(text: str | None) -> int:
    if not text:
        return 0
    n = 0
    for part in text.split("|"):
        n |= FLAGS[part]
    return n


class Shower:
    """Turns results into text that does not depend on the run (ports, paths, fds)."""

    def __init__(self, directory: str, tag: str) -> None:
        self.ports: dict[int, str] = {}
        self.directory = directory
        self.tag = tag

    def port(self, p: int) -> str:
        if p == 0:
            return "0"
        if p not in self.ports:
            self.ports[p] = f"p{len(self.ports) + 1}"
        return self.ports[p]

    def addr(self, a: Any) -> str:
        if a is None:
            return "None"
        if isinstance(a, tuple):
            host = a[0] if ":" not in a[0] else f"[{a[0]}]"
            return f"{host}:{self.port(a[1])}"
        if isinstance(a, bytes):
            return "@" + a[1:].decode().replace(self.tag, "")
        if a == "":
            return "''"
        return a.replace(self.directory, "DIR")

    def value(self, v: Any) -> str:
        if isinstance(v, bytes):
            return repr(v)
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], bytes):
            return f"{v[0]!r} from {self.addr(v[1])}"
        return str(v)


def address(words: str, names: dict[str, Any], directory: str, tag: str, getname) -> Any:
    if words.startswith("@"):
        return getname(names[words[1:]])
    if "@" in words and not words.startswith(("unix:", "abstract:", "peer@")):
        host, _, name = words.partition("@")  # HOST@SOCK: that host, SOCK's port
        port = getname(names[name])[1]
        return (host, port) if ":" not in host else (host, port, 0, 0)
    if words.startswith("unix:"):
        return f"{directory}/{words[5:]}"
    if words.startswith("abstract:"):
        return b"\0" + (tag + words[9:]).encode()
    if words.startswith("["):
        host, _, port = words[1:].partition("]:")
        return (host, int(port), 0, 0)
    host, _, port = words.rpartition(":")
    return (host, int(port))


# ------------------------------------------------------------------------------------- host
def run_host(case: Case, directory: str, tag: str) -> list[str]:
    show = Shower(directory, tag)
    names: dict[str, Any] = {}
    out: list[str] = []
    opened: list[socket.socket] = []
    try:
        for target, call, args in case.steps:
            try:
                result = _host_step(call, args, names, directory, tag, opened, show)
                if target is not None:
                    names[target] = result[0] if call == "accept" else result
                    if call == "socketpair":
                        names[target + "0"], names[target + "1"] = result
                text = "ok" if result is None or target is not None else f"ok {show.value(result)}"
                if call == "accept":
                    text = f"ok from {show.addr(result[1])}"
            except OSError as e:
                code = errno.errorcode.get(e.errno or 0, str(e.errno))
                text = "err " + code if e.errno else f"err {type(e).__name__}"
            out.append(f"{call} {' '.join(args)}: {text}")
    finally:
        for s in opened:
            s.close()
    return out


def _host_step(call: str, args: list[str], names: dict[str, Any], directory: str, tag: str,
               opened: list[socket.socket], show: Shower) -> Any:
    def sock(i: int = 0) -> socket.socket:
        return names[args[i]]

    def addr(text: str) -> Any:
        if text.startswith("peer@"):
            return names[text[5:]].getpeername()
        return address(text, names, directory, tag, lambda s: s.getsockname())

    if call == "socket":
        s = socket.socket(FAMILIES[args[0]], TYPES[args[1]])
        opened.append(s)
        s.settimeout(2)
        if "nonblock" in args[2:]:
            s.setblocking(False)
        return s
    if call == "socketpair":
        a, b = socket.socketpair(socket.AF_UNIX, TYPES[args[0]])
        opened.extend((a, b))
        a.settimeout(2)
        b.settimeout(2)
        return a, b
    if call == "bind":
        return sock().bind(addr(args[1]))
    if call == "listen":
        return sock().listen(int(args[1]))
    if call == "accept":
        c, peer = sock().accept()
        opened.append(c)
        c.settimeout(2)
        return c, peer
    if call == "connect":
        s = sock()
        if s.gettimeout() == 0.0:
            rc = s.connect_ex(addr(args[1]))
            if rc:
                raise OSError(rc, os.strerror(rc))
            return None
        return s.connect(addr(args[1]))
    if call == "send":
        return sock().send(args[1].encode(), flags_of(args[2] if len(args) > 2 else None))
    if call == "sendto":
        return sock().sendto(args[1].encode(), addr(args[2]))
    if call == "recv":
        flags = flags_of(args[2] if len(args) > 2 else None)
        s = sock()
        if flags & socket.MSG_DONTWAIT:  # Python would wait for its timeout first
            saved = s.gettimeout()
            s.setblocking(False)
            try:
                return s.recv(int(args[1]), flags)
            finally:
                s.settimeout(saved)
        return s.recv(int(args[1]), flags)
    if call == "recvfrom":
        data, src = sock().recvfrom(int(args[1]))
        return f"{data!r} from {show.addr(src)}"
    if call == "shutdown":
        return sock().shutdown(SHUT[args[1]])
    if call == "close":
        return sock().close()
    if call == "sockname":
        return show.addr(sock().getsockname())
    if call == "peername":
        return show.addr(sock().getpeername())
    if call == "setsockopt":
        return sock().setsockopt(LEVELS[args[1]], OPTS[args[2]], int(args[3]))
    if call == "getsockopt":
        return sock().getsockopt(LEVELS[args[1]], OPTS[args[2]])
    if call == "poll":
        p = select.poll()
        p.register(sock(), POLL_ALL)
        got = p.poll(0)
        return poll_text(got[0][1] if got else 0)
    if call == "nonblock":
        return sock().setblocking(False)
    if call == "settle":
        time.sleep(0.05)
        return None
    if call == "unlink":
        return os.unlink(f"{directory}/{args[0]}")
    if call == "stat":
        import stat as st
        return "socket" if st.S_ISSOCK(os.lstat(f"{directory}/{args[0]}").st_mode) else "other"
    raise ValueError(f"unknown call {call!r}")


# ------------------------------------------------------------------------------------- kernel
async def run_kernel(ctx: Any, case: Case, directory: str, tag: str) -> list[str]:
    from kernel.errors import KernelError
    from kernel.signals import SIG_IGN, SIGPIPE

    await ctx.signal(SIGPIPE, SIG_IGN)
    show = Shower(directory, tag)
    names: dict[str, Any] = {}
    out: list[str] = []
    for target, call, args in case.steps:
        try:
            result = await _kernel_step(ctx, call, args, names, directory, tag, show)
            if target is not None:
                names[target] = result[0] if call == "accept" else result
                if call == "socketpair":
                    names[target + "0"], names[target + "1"] = result
            text = "ok" if result is None or target is not None else f"ok {show.value(result)}"
            if call == "accept":
                text = f"ok from {show.addr(result[1])}"
        except KernelError as e:
            text = f"err {errno.errorcode[e.errno]}"  # one name per number, as the host prints
        out.append(f"{call} {' '.join(args)}: {text}")
    return out


async def _kernel_step(ctx: Any, call: str, args: list[str], names: dict[str, Any], directory: str,
                       tag: str, show: Shower) -> Any:
    from kernel.syscalls import F_GETFL, F_SETFL, O_NONBLOCK

    def sock(i: int = 0) -> int:
        return names[args[i]]

    async def addr(text: str) -> Any:
        if text.startswith("peer@"):
            return await ctx.getpeername(names[text[5:]])
        if text.startswith("@"):
            return await ctx.getsockname(names[text[1:]])
        if "@" in text and not text.startswith(("unix:", "abstract:")):
            host, _, name = text.partition("@")
            port = (await ctx.getsockname(names[name]))[1]
            return (host, port) if ":" not in host else (host, port, 0, 0)
        return address(text, names, directory, tag, None)

    if call == "socket":
        t = TYPES[args[1]] | (O_NONBLOCK if "nonblock" in args[2:] else 0)
        return await ctx.socket(FAMILIES[args[0]], t)
    if call == "socketpair":
        return await ctx.socketpair(socket.AF_UNIX, TYPES[args[0]])
    if call == "bind":
        return await ctx.bind(sock(), await addr(args[1]))
    if call == "listen":
        return await ctx.listen(sock(), int(args[1]))
    if call == "accept":
        return await ctx.accept(sock())
    if call == "connect":
        return await ctx.connect(sock(), await addr(args[1]))
    if call == "send":
        return await ctx.send(sock(), args[1].encode(), flags_of(args[2] if len(args) > 2 else None))
    if call == "sendto":
        return await ctx.sendto(sock(), args[1].encode(), await addr(args[2]))
    if call == "recv":
        return await ctx.recv(sock(), int(args[1]), flags_of(args[2] if len(args) > 2 else None))
    if call == "recvfrom":
        data, src = await ctx.recvfrom(sock(), int(args[1]))
        return f"{data!r} from {show.addr(src)}"
    if call == "shutdown":
        return await ctx.shutdown(sock(), SHUT[args[1]])
    if call == "close":
        return await ctx.close(sock())
    if call == "sockname":
        return show.addr(await ctx.getsockname(sock()))
    if call == "peername":
        return show.addr(await ctx.getpeername(sock()))
    if call == "setsockopt":
        return await ctx.setsockopt(sock(), LEVELS[args[1]], OPTS[args[2]], int(args[3]))
    if call == "getsockopt":
        return await ctx.getsockopt(sock(), LEVELS[args[1]], OPTS[args[2]])
    if call == "poll":
        got = await ctx.poll([(sock(), POLL_ALL)], 0)
        return poll_text(got[0][1] if got else 0)
    if call == "nonblock":
        fl = await ctx.fcntl(sock(), F_GETFL)
        await ctx.fcntl(sock(), F_SETFL, fl | O_NONBLOCK)
        return None
    if call == "settle":
        await ctx.sched_yield()
        return None
    if call == "unlink":
        return await ctx.unlink(f"{directory}/{args[0]}")
    if call == "stat":
        import stat as st
        return "socket" if st.S_ISSOCK((await ctx.lstat(f"{directory}/{args[0]}")).mode) else "other"
    raise ValueError(f"unknown call {call!r}")
