"""``ss``: the socket table from /proc/net, in iproute2's columns.

The rows are what iproute2's ``ss`` prints when it reads /proc (its fallback without
netlink): the same states, queue sizes and address spellings (``0.0.0.0:*``, ``*:*``,
``[::1]:53``, ``* 0`` for an AF_UNIX peer it cannot know).  ``-p`` finds the owning
processes by the ``socket:[inode]`` links of /proc/<pid>/fd.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import error
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.registry import Program

SPEC = Spec("ss", "[OPTION]...", "Show the sandbox's sockets (read from /proc/net).", [
    Opt("a", "all", help="display all sockets"),
    Opt("l", "listening", help="display listening sockets"),
    Opt("n", "numeric", help="don't resolve service names"),
    Opt("t", "tcp", help="display only TCP sockets"),
    Opt("u", "udp", help="display only UDP sockets"),
    Opt("x", "unix", help="display only Unix domain sockets"),
    Opt("4", "ipv4", help="display only IP version 4 sockets"),
    Opt("6", "ipv6", help="display only IP version 6 sockets"),
    Opt("p", "processes", help="show process using socket"),
    Opt("H", "no-header", help="suppress header line"),
])

TCP_STATES = {0x01: "ESTAB", 0x02: "SYN-SENT", 0x03: "SYN-RECV", 0x04: "FIN-WAIT-1", 0x05: "FIN-WAIT-2",
              0x06: "TIME-WAIT", 0x07: "UNCONN", 0x08: "CLOSE-WAIT", 0x09: "LAST-ACK", 0x0A: "LISTEN",
              0x0B: "CLOSING"}
LISTENING = ("LISTEN", "UNCONN")
UNIX_TYPES = {1: "u_str", 2: "u_dgr", 5: "u_seq"}


def _ip(hexwords: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = b"".join(struct.pack("<I", int(hexwords[i:i + 8], 16)) for i in range(0, len(hexwords), 8))
    return ipaddress.IPv4Address(raw) if len(raw) == 4 else ipaddress.IPv6Address(raw)


def _show(hexaddr: str, services: dict[int, str], local: bool) -> str:
    h, _, p = hexaddr.partition(":")
    ip = _ip(h)
    port = int(p, 16)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        host = f"[::ffff:{ip.ipv4_mapped}]"
    elif ip.version == 6:
        host = "*" if ip.is_unspecified else f"[{ip}]"
    else:
        host = str(ip)
    if port == 0:
        return f"{host}:*"
    return f"{host}:{services.get(port, str(port))}"


async def _read(ctx: Any, path: str) -> list[str]:
    try:
        fd = await ctx.open(path)
    except KernelError:
        return []
    try:
        return (await ctx.read_all(fd)).decode("utf-8", "surrogateescape").splitlines()[1:]
    finally:
        await ctx.close(fd)


async def _services(ctx: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in await _read(ctx, "/etc/services"):
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and "/" in fields[1]:
            port = fields[1].split("/", 1)[0]
            if port.isdigit():
                names.setdefault(int(port), fields[0])
    return names


async def _owners(ctx: Any) -> dict[int, list[str]]:
    """inode -> ``("comm",pid=N,fd=M)`` entries, from the fd links of every process."""
    out: dict[int, list[str]] = {}
    try:
        pids = [p for p in await ctx.listdir("/proc") if p.isdigit()]
    except KernelError:
        return out
    for pid in pids:
        try:
            fds = await ctx.listdir(f"/proc/{pid}/fd")
            fd = await ctx.open(f"/proc/{pid}/comm")
            comm = (await ctx.read_all(fd)).decode().strip()
            await ctx.close(fd)
        except KernelError:
            continue
        for n in fds:
            try:
                target = await ctx.readlink(f"/proc/{pid}/fd/{n}")
            except KernelError:
                continue
            if target.startswith("socket:["):
                out.setdefault(int(target[8:-1]), []).append(f'("{comm}",pid={pid},fd={n})')
    return out


def _inet_rows(lines: list[str], netid: str, services: dict[int, str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for line in lines:
        f = line.split()
        if len(f) < 10:
            continue
        state = TCP_STATES.get(int(f[3], 16), "UNKNOWN")
        tx, rx = (int(x, 16) for x in f[4].split(":"))
        rows.append((netid, state, str(rx), str(tx), _show(f[1], services, True), _show(f[2], services, False), f[9]))
    return rows


def _unix_rows(lines: list[str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for line in lines:
        f = line.split()
        if len(f) < 7:
            continue
        flags, stype, st, inode = int(f[3], 16), int(f[4], 16), int(f[5], 16), f[6]
        path = f[7] if len(f) > 7 else "*"
        if flags & 0x10000:
            state = "LISTEN"
        elif st == 0x03:
            state = "ESTAB"
        elif st == 0x02:
            state = "SYN-SENT"
        else:
            state = "UNCONN"
        rows.append((UNIX_TYPES.get(stype, "u_???"), state, "0", "0", f"{path} {inode}", "* 0", inode))
    return rows


async def ss_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SPEC)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "ss", f"filters are not supported: {' '.join(args.operands)}")
        return 1
    want = {k for k in ("t", "u", "x") if args.get({"t": "tcp", "u": "udp", "x": "unix"}[k])}
    if not want:
        want = {"t", "u", "x"}
    v4, v6 = bool(args.get("ipv4")), bool(args.get("ipv6"))
    if v4 or v6:
        want.discard("x")
    both = not (v4 or v6) or (v4 and v6)
    services = {} if args.get("numeric") else await _services(ctx)
    rows: list[tuple[str, ...]] = []
    if "x" in want:
        rows += _unix_rows(await _read(ctx, "/proc/net/unix"))
    for kind, netid in (("u", "udp"), ("t", "tcp")):
        if kind not in want:
            continue
        if v4 or both:
            rows += _inet_rows(await _read(ctx, f"/proc/net/{netid}"), netid, services)
        if v6 or both:
            rows += _inet_rows(await _read(ctx, f"/proc/net/{netid}6"), netid, services)
    if args.get("listening"):
        rows = [r for r in rows if r[1] in LISTENING]
    elif not args.get("all"):
        rows = [r for r in rows if r[1] not in LISTENING]
    owners = await _owners(ctx) if args.get("processes") else {}
    netid_col = len(want) > 1
    header = ("Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Process")
    table: list[list[str]] = []
    if not args.get("no_header"):
        table.append(list(header if netid_col else header[1:]))
    for r in rows:
        proc = ""
        if owners:
            users = owners.get(int(r[6]), [])
            proc = f"users:({','.join(users)})" if users else ""
        cells = list(r[:6]) + [proc]
        table.append(cells if netid_col else cells[1:])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))] if table else []
    out = []
    for row in table:
        out.append(" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    await ctx.write_all(1, "".join(out))
    return 0


PROGRAMS: dict[str, Program] = {"ss": ss_main}
