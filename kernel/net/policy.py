"""The network policy: what inet traffic may do, decided on addresses, never on spellings.

Modes:

* ``none`` (the default): no inet traffic at all, not even in-kernel loopback and not even
  name resolution; ``listen``, ``connect`` and ``sendto`` on AF_INET/AF_INET6 fail with
  EACCES.  AF_UNIX is not network and always works.
* ``loopback``: inet sockets talk to each other inside the kernel (127.0.0.0/8, ::1);
  nothing leaves it, names other than ``localhost`` and the hostname do not resolve.
* ``allow``: loopback plus outbound traffic matching a rule (``[tcp:|udp:]CIDR[:PORT[-PORT]]``,
  IPv6 in brackets, or a host name in place of the CIDR); the host adapter carries it.  A name
  rule allows the addresses that name resolved to through the sandbox's own lookups (the
  adapter's, or the VFS's /etc/hosts), compared without case or a trailing dot.
  ``publish:PORT`` also listens on the host's 127.0.0.1 for a sandbox TCP listener on PORT.

The decision takes a *parsed* address (``ipaddress``), with IPv4-mapped IPv6 folded to
IPv4, so decimal, octal or hex IPv4 spellings, ``::ffff:a.b.c.d`` or a name that later
resolves elsewhere cannot slip past it: callers resolve first and ask about the result.
Denials are counted and logged.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from kernel.errors import KernelError

log = logging.getLogger("vfsfuse.kernel.net.policy")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MODES = ("none", "loopback", "allow")


def canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses are IPv4 addresses for every decision."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(ip: IPAddress) -> bool:
    """Addresses the in-kernel loopback serves (0.0.0.0 and :: mean "this host", as Linux)."""
    ip = canonical(ip)
    return ip.is_loopback or ip.is_unspecified


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow rule: a network, an optional port range and an optional protocol."""

    network: IPNetwork | None
    ports: tuple[int, int] | None = None
    proto: str | None = None          # "tcp", "udp" or None for both
    host: str | None = None           # a name rule (network None): lower case, no trailing dot

    def matches(self, proto: str, ip: IPAddress, port: int, names: frozenset[str] = frozenset()) -> bool:
        """*names*: the names *ip* was resolved from (for name rules)."""
        if self.proto is not None and self.proto != proto:
            return False
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        return self.holds(ip, names)

    def holds(self, ip: IPAddress, names: frozenset[str] = frozenset()) -> bool:
        if self.network is None:
            return self.host in names
        return ip.version == self.network.version and ip in self.network

    def __str__(self) -> str:
        if self.network is None:
            net = str(self.host)
        else:
            net = str(self.network)
            if self.network.version == 6:
                net = f"[{net}]"
        text = f"{self.proto}:{net}" if self.proto else net
        if self.ports is not None:
            lo, hi = self.ports
            text += f":{lo}" if lo == hi else f":{lo}-{hi}"
        return text

    @classmethod
    def parse(cls, text: str) -> "Rule":
        """``[tcp:|udp:]ADDR[/LEN][:PORT[-PORT]]``; ADDR is IPv4 or ``[IPv6]``."""
        s = text.strip()
        proto = None
        for p in ("tcp:", "udp:"):
            if s.lower().startswith(p):
                proto, s = p[:3], s[4:]
        if s.startswith("["):
            end = s.find("]")
            if end < 0:
                raise ValueError(f"bad network rule {text!r}: missing ]")
            net_text, rest = s[1:end], s[end + 1:]
            if rest.startswith("/"):  # [ADDR]/LEN
                length, _, port_text = rest[1:].partition(":")
                net_text += "/" + length
                rest = ":" + port_text if _ else ""
        else:
            net_text, _, port_text = s.partition(":")
            rest = ":" + port_text if _ else ""
        host: str | None = None
        network: IPNetwork | None
        try:
            network = ipaddress.ip_network(net_text, strict=False)
        except ValueError as e:
            host = host_name(net_text)
            if host is None:
                raise ValueError(f"bad network rule {text!r}: {e}") from None
            network = None
        ports = None
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad network rule {text!r}")
            lo_s, _, hi_s = rest[1:].partition("-")
            try:
                lo = int(lo_s)
                hi = int(hi_s) if hi_s else lo
            except ValueError:
                raise ValueError(f"bad port in network rule {text!r}") from None
            if not 0 <= lo <= hi <= 65535:
                raise ValueError(f"bad port range in network rule {text!r}")
            ports = (lo, hi)
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            raise ValueError(f"write IPv4-mapped rules as IPv4: {text!r}")
        return cls(network, ports, proto, host)


def host_name(text: str) -> str | None:
    """*text* as a DNS name for a rule (lower case, no trailing dot), or None if it is none:
    labels of letters, digits and hyphens, one with a letter (so no IP spelling passes)."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or any(not label or len(label) > 63 for label in labels):
        return None
    if any(not all(c.isascii() and (c.isalnum() or c == "-") for c in label) or label[0] == "-"
           for label in labels):
        return None
    if not any(c.isalpha() for c in labels[-1]):
        return None  # 010.1 or 0x7f.1: numeric spellings are addresses, never names
    return name


@dataclass(slots=True)
class NetPolicy:
    """The kernel's network policy (set by the host; the sandbox cannot change it)."""

    mode: str = "none"
    rules: tuple[Rule, ...] = ()
    publish: tuple[int, ...] = ()     # ports whose sandbox listeners also listen on the host's 127.0.0.1
    denied: int = 0
    log_lines: list[str] = field(default_factory=list)
    # addresses name rules hold: what each rule's name resolved to inside the sandbox
    resolved: dict[IPAddress, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown network mode {self.mode!r} (none, loopback or allow)")

    @classmethod
    def none(cls) -> "NetPolicy":
        return cls("none")

    @classmethod
    def loopback(cls) -> "NetPolicy":
        return cls("loopback")

    @classmethod
    def allow(cls, *rules: str | Rule, publish: tuple[int, ...] | list[int] = ()) -> "NetPolicy":
        for port in publish:
            if not 0 < port <= 65535:
                raise ValueError(f"bad port to publish: {port}")
        return cls("allow", tuple(r if isinstance(r, Rule) else Rule.parse(r) for r in rules), tuple(publish))

    @classmethod
    def parse(cls, mode: str, rules: list[str] | tuple[str, ...] = ()) -> "NetPolicy":
        """*rules*: allow rules, and ``publish:PORT`` for an inbound listener."""
        if mode == "allow":
            publish = []
            allow = []
            for r in rules:
                if r.lower().startswith("publish:"):
                    try:
                        publish.append(int(r[8:]))
                    except ValueError:
                        raise ValueError(f"bad port to publish: {r!r}") from None
                else:
                    allow.append(r)
            return cls.allow(*allow, publish=publish)
        if rules:
            raise ValueError(f"network mode {mode!r} takes no rules")
        return cls(mode)

    # -- decisions ------------------------------------------------------------------------
    @property
    def inet(self) -> bool:
        """Whether inet sockets may carry anything at all (in-kernel loopback included)."""
        return self.mode != "none"

    def deny(self, op: str, what: str) -> KernelError:
        self.denied += 1
        line = f"denied {op} {what} (network mode {self.mode})"
        self.log_lines.append(line)
        del self.log_lines[:-100]
        log.info("%s", line)
        return KernelError("EACCES", f"network {op} {what} denied by policy (mode {self.mode})")

    def check_inet(self, op: str, what: str) -> None:
        """EACCES in mode none for any inet listen/connect/send."""
        if not self.inet:
            raise self.deny(op, what)

    def learn(self, name: str, ips: list[IPAddress]) -> None:
        """*name* resolved to *ips* in the sandbox: name rules for it now hold those addresses."""
        host = host_name(name)
        if host is None or not any(r.host == host for r in self.rules):
            return
        for ip in ips:
            self.resolved.setdefault(canonical(ip), set()).add(host)

    def _names(self, ip: IPAddress) -> frozenset[str]:
        return frozenset(self.resolved.get(ip, ()))

    def outbound_allowed(self, proto: str, ip: IPAddress, port: int) -> bool:
        if self.mode != "allow":
            return False
        ip = canonical(ip)
        names = self._names(ip)
        return any(r.matches(proto, ip, port, names) for r in self.rules)

    def address_allowed(self, ip: IPAddress) -> bool:
        """Whether some rule holds *ip* (any port or protocol): what a name may resolve to."""
        if self.mode != "allow":
            return False
        ip = canonical(ip)
        names = self._names(ip)
        return any(r.holds(ip, names) for r in self.rules)

    def check_outbound(self, op: str, proto: str, ip: IPAddress, port: int) -> None:
        """EACCES unless a rule allows leaving the kernel for (*proto*, *ip*, *port*)."""
        if not self.outbound_allowed(proto, ip, port):
            shown = canonical(ip)
            raise self.deny(op, f"{proto} {shown}:{port}" if shown.version == 4 else f"{proto} [{shown}]:{port}")

    def describe(self) -> str:
        """The text shown to the host (``MNT/.vfs/net``)."""
        lines = [f"mode {self.mode}"]
        lines += [f"allow {r}" for r in self.rules]
        lines += [f"publish 127.0.0.1:{p}" for p in self.publish]
        lines.append(f"denied {self.denied}")
        return "\n".join(lines) + "\n"
