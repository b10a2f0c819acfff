"""/proc/net/{tcp,tcp6,udp,udp6,unix}: the socket table in Linux's exact formats.

Written after the kernel's own ``seq_printf`` formats (``tcp4_seq_show``, ``tcp6_seq_show``,
``udp4_format_sock``, ``__ip6_dgram_sock_seq_show``, ``unix_seq_show``), so host tools that
parse them (``ss`` with ``PROC_ROOT``, ``netstat``) read the sandbox's sockets.  Addresses
are the raw 32-bit words in host (little-endian) order, ports in hex; kernel pointers show
as zeros, as they do for an unprivileged reader.  The generator is duck-typed over the
table's sockets so procfs needs nothing of ``kernel.net`` but their fields.
"""

from __future__ import annotations

import struct
from typing import Any

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM = 1, 2

TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
              "  timeout inode").ljust(149) + "\n"
TCP6_HEADER = ("  sl  local_address                         remote_address                        st"
               " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
UDP_HEADER = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
              "  timeout inode ref pointer drops").ljust(127) + "\n"
UDP6_HEADER = ("  sl  local_address                         remote_address                        st"
               " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n")
UNIX_HEADER = "Num       RefCount Protocol Flags    Type St Inode Path\n"

# Linux TCP states
ESTABLISHED, SYN_SENT, FIN_WAIT2, CLOSE, CLOSE_WAIT, LISTEN = 0x01, 0x02, 0x05, 0x07, 0x08, 0x0A
_ZERO_PTR = "0000000000000000"


def _hex_addr(ip: Any, v6: bool) -> str:
    """The address words as ``%08X`` of each little-endian u32 (IPv4 peers of an IPv6
    socket are mapped)."""
    packed = ip.packed
    if v6 and len(packed) == 4:
        packed = b"\0" * 10 + b"\xff\xff" + packed
    return "".join(f"{struct.unpack('<I', packed[i:i + 4])[0]:08X}" for i in range(0, len(packed), 4))


def _endpoint(addr: Any, v6: bool) -> str:
    if addr is None:
        return ("0" * 32 if v6 else "0" * 8) + ":0000"
    ip, port = addr
    return f"{_hex_addr(ip, v6)}:{port:04X}"


def _tcp_state(s: Any) -> int | None:
    state = s.state
    if state == "listening":
        return LISTEN
    if state == "connecting":
        return SYN_SENT
    if state != "connected":
        return None
    if s.shut_wr and not (s.fin or s.shut_rd):
        return FIN_WAIT2
    if s.fin and not s.shut_wr:
        return CLOSE_WAIT
    if s.shut_wr and (s.fin or s.shut_rd):
        return CLOSE
    return ESTABLISHED


def tcp(sockets: list[Any], v6: bool) -> bytes:
    lines = [TCP6_HEADER if v6 else TCP_HEADER]
    family = AF_INET6 if v6 else AF_INET
    i = 0
    for s in sockets:
        if s.family != family or s.type != SOCK_STREAM:
            continue
        st = _tcp_state(s)
        if st is None:
            continue
        if st == LISTEN:
            rx, remote, tail = len(s.backlog), None, "100 0 0 10 0"
        else:
            rx, remote, tail = s.rx_size, s.remote, "20 4 30 10 -1"
        line = (f"{i:4d}: {_endpoint(s.local, v6)} {_endpoint(remote, v6)} {st:02X} "
                f"{0:08X}:{rx:08X} 00:00000000 00000000 {s.uid:5d} {0:8d} {s.object_id} 1 "
                f"{_ZERO_PTR} {tail}")
        lines.append(line + "\n" if v6 else line.ljust(149) + "\n")
        i += 1
    return "".join(lines).encode()


def udp(sockets: list[Any], v6: bool) -> bytes:
    lines = [UDP6_HEADER if v6 else UDP_HEADER]
    family = AF_INET6 if v6 else AF_INET
    i = 0
    for s in sockets:
        if s.family != family or s.type != SOCK_DGRAM or s.local is None:
            continue
        st = ESTABLISHED if s.remote is not None else CLOSE
        port = s.local[1]
        bucket = port & 0x7F  # the hash slot; readers ignore it
        line = (f"{bucket:5d}: {_endpoint(s.local, v6)} {_endpoint(s.remote, v6)} {st:02X} "
                f"{0:08X}:{s.q_bytes:08X} 00:00000000 00000000 {s.uid:5d} {0:8d} {s.object_id} 2 "
                f"{_ZERO_PTR} {s.drops}")
        lines.append(line + "\n" if v6 else line.ljust(127) + "\n")
        i += 1
    return "".join(lines).encode()


def unix(sockets: list[Any]) -> bytes:
    lines = [UNIX_HEADER]
    for s in sockets:
        if s.family != AF_UNIX:
            continue
        listening = getattr(s, "state", "") == "listening"
        if s.type == SOCK_DGRAM:
            connected = getattr(s, "peer_sock", None) is not None
        else:
            connected = s.state == "connected"
        if connected:
            st = 0x02 if getattr(s, "listener", None) is not None else 0x03
        else:
            st = 0x01
        line = (f"{_ZERO_PTR}: {2:08X} {0:08X} {0x10000 if listening else 0:08X} {s.type:04X} "
                f"{st:02X} {s.object_id:5d}")
        name = getattr(s, "name", None)
        if name is not None:
            line += " " + name.proc_text()
        lines.append(line + "\n")
    return "".join(lines).encode(errors="surrogateescape")


def proc_net(table: Any, name: str) -> bytes | None:
    """The content of ``/proc/net/<name>`` for a ``SocketTable`` (None: not ours)."""
    sockets = sorted(table.sockets.values(), key=lambda s: s.object_id)
    if name == "tcp":
        return tcp(sockets, False)
    if name == "tcp6":
        return tcp(sockets, True)
    if name == "udp":
        return udp(sockets, False)
    if name == "udp6":
        return udp(sockets, True)
    if name == "unix":
        return unix(sockets)
    return None
