"""Socket calls: socket/socketpair, bind/listen/accept/connect, the send and receive family,
shutdown, names, options and name resolution (the table and its providers are ``kernel.net``).

A socket is an fd whose description's endpoint is the socket, so close, dup, fcntl,
poll, read and write need nothing here.  Addresses follow Python's ``socket`` module:
``(host, port)`` for AF_INET, ``(host, port, flowinfo, scope_id)`` for AF_INET6 (a
2-tuple is accepted), ``str`` paths or NUL-led ``bytes`` for AF_UNIX; hosts that are not
numeric are resolved through the policy first.  Blocking calls park with ``_wait`` (EINTR
or restart); O_NONBLOCK or MSG_DONTWAIT turn a wait into EAGAIN (EINPROGRESS for a
TCP connect).  EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
"""

from __future__ import annotations

import array
import errno as _errno
import ipaddress
import stat as _stat
import struct
from typing import Any, Iterable

import trio

from kernel import signals as S
from kernel.errors import KernelError
from kernel.fdtable import O_NONBLOCK, O_RDWR, OpenFileDescription
from kernel.fs import may_access
from kernel.net.dgram import DatagramSocket
from kernel.net.inet import InetDgram, InetStream, numeric, parse_ip, show
from kernel.net.policy import IPAddress
from kernel.net.stream import StreamSocket
from kernel.net.table import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    AF_UNSPEC,
    IP_TTL,
    IPPROTO_IP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_V6ONLY,
    MSG_CMSG_CLOEXEC,
    MSG_CTRUNC,
    MSG_DONTWAIT,
    MSG_NOSIGNAL,
    MSG_PEEK,
    MSG_TRUNC,
    MSG_WAITALL,
    SCM_RIGHTS,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SO_ACCEPTCONN,
    SO_DOMAIN,
    SO_ERROR,
    SO_LINGER,
    SO_PEERCRED,
    SO_PROTOCOL,
    SO_RCVBUF,
    SO_RCVTIMEO,
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_SNDTIMEO,
    SO_TYPE,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_MIN_RCVBUF,
    SOCK_MIN_SNDBUF,
    SOCK_NONBLOCK,
    SOCK_SEQPACKET,
    SOCK_STREAM,
    SOL_SOCKET,
    SYSCTL_MAX_BUF,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_MAXSEG,
    TCP_NODELAY,
    Cred,
    Socket,
    SocketTable,
)
from kernel.net.unix import UnixDgram, UnixStream
from kernel.syscalls._base import CtxBase

# SOL_SOCKET options that are plain booleans or integers, and their defaults
_BOOL_OPTS = {1, 2, 5, 6, 9, 10, 15, 16}   # DEBUG REUSEADDR DONTROUTE BROADCAST KEEPALIVE OOBINLINE REUSEPORT PASSCRED
_INT_OPTS = {18: 1, 19: 1}                 # RCVLOWAT SNDLOWAT
_TCP_DEFAULTS = {TCP_NODELAY: 0, TCP_MAXSEG: 536, TCP_KEEPIDLE: 7200, TCP_KEEPINTVL: 75, TCP_KEEPCNT: 9}
_SERVICES = {"echo": 7, "discard": 9, "daytime": 13, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
             "domain": 53, "http": 80, "pop3": 110, "imap": 143, "https": 443, "http-alt": 8080}
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
AI_PASSIVE = 1
_CMSG_HDR = 16


class SocketCalls(CtxBase):
    """socket calls (mixed into ``Ctx``)."""

    # ---------------------------------------------------------------- helpers
    @property
    def _net(self) -> SocketTable:
        return self.kernel.net

    def _sock(self, fd: int) -> tuple[OpenFileDescription, Any]:
        ofd = self.fds.get(fd)
        if ofd.kind != "socket":
            raise KernelError("ENOTSOCK", f"fd {fd} is not a socket")
        return ofd, ofd.endpoint

    def _install(self, sock: Socket, flags: int) -> int:
        ofd = OpenFileDescription("socket", None, O_RDWR | (flags & O_NONBLOCK), object_id=sock.object_id,
                                  endpoint=sock, ino=sock.object_id)
        return self.fds.install(ofd, cloexec=bool(flags & SOCK_CLOEXEC))

    def _new(self, family: int, type: int, proto: int) -> tuple[Socket, int]:
        flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC)
        base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        if base <= 0 or base > 10:
            raise KernelError("EINVAL", f"invalid socket type {type}")
        net = self._net
        cred = Cred.of(self.proc)
        if family == AF_UNIX:
            if proto not in (0, AF_UNIX):
                raise KernelError("EPROTONOSUPPORT", f"protocol {proto} not supported for AF_UNIX")
            sock = net.unix.create(base, cred)
        elif family in (AF_INET, AF_INET6):
            sock = net.inet.create(family, base, proto, cred)
        else:
            raise KernelError("EAFNOSUPPORT", f"address family {family} not supported")
        return sock, flags

    async def _ip(self, family: int, host: Any) -> IPAddress:
        if not isinstance(host, str):
            raise KernelError("EINVAL", "host must be a str")
        if numeric(family, host):
            return parse_ip(family, host)
        infos = await self.getaddrinfo(host, 0, family, SOCK_STREAM)
        return parse_ip(family, infos[0][4][0])

    async def _inet_addr(self, sock: Socket, addr: Any) -> tuple[IPAddress, int]:
        if not isinstance(addr, tuple) or len(addr) < 2 or (sock.family == AF_INET and len(addr) != 2):
            family = "AF_INET" if sock.family == AF_INET else "AF_INET6"
            raise KernelError("EINVAL", f"{family} address must be a tuple (host, port)")
        port = addr[1]
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise KernelError("EINVAL", "port must be 0-65535")
        return await self._ip(sock.family, addr[0]), port

    async def _unix_target(self, sock: Socket, addr: Any) -> Socket:
        """The socket bound at an AF_UNIX address (the path walked like any path)."""
        path, abstract = self._net.unix.parse(addr)
        if path is None and abstract is None:
            raise KernelError("EINVAL", "empty AF_UNIX address")
        if path is None:
            return self._net.unix.lookup(None, abstract, sock.type)
        apath = self._abs(path)
        self._check("read", apath)
        _ino, attr = await self._vfs.resolve(apath, follow=True)
        if attr.mode & 0o170000 != _stat.S_IFSOCK:
            raise KernelError("ECONNREFUSED", "connection refused")
        if not may_access(self._caller, attr.mode, attr.uid, attr.gid, 2):  # W_OK, as Linux
            raise KernelError("EACCES", f"permission denied: {path}")
        return self._net.unix.lookup(attr.ino, None, sock.type)

    def _address_of(self, sock: Any, addr: Any) -> Any:
        """An address as recvfrom/accept show it for *sock*'s family."""
        if sock.family == AF_UNIX:
            return addr
        if addr is None:
            return None
        return show(sock.family, addr)

    async def _sock_wait(self, sock: Any, deadline: float | None) -> None:
        """Park until *sock* changes; EAGAIN once the SO_RCVTIMEO/SO_SNDTIMEO *deadline* passed."""
        if deadline is None:
            await self._wait(sock.wait)
            return
        if trio.current_time() >= deadline:
            raise KernelError("EAGAIN", "resource temporarily unavailable (socket timeout)")
        await self._wait(_park_until, sock, deadline)

    # ---------------------------------------------------------------- creation
    async def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> int:
        """socket(2): a new socket fd (type may carry SOCK_NONBLOCK and SOCK_CLOEXEC)."""
        await self._enter()
        self.fds.reserve(1)
        self._net.check_room(self.proc)
        sock, flags = self._new(family, type, proto)
        self._net.add(sock)
        try:
            return self._install(sock, flags)
        except BaseException:
            sock.close()
            raise

    async def socketpair(self, family: int = AF_UNIX, type: int = SOCK_STREAM, proto: int = 0) -> tuple[int, int]:
        """socketpair(2): two connected AF_UNIX sockets (EOPNOTSUPP for inet, as Linux)."""
        await self._enter()
        if family in (AF_INET, AF_INET6):
            self._new(family, type, proto)  # the family's own errors first
            raise KernelError("EOPNOTSUPP", "operation not supported")
        if family != AF_UNIX:
            raise KernelError("EAFNOSUPPORT", f"address family {family} not supported")
        flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC)
        base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        if proto not in (0, AF_UNIX):
            raise KernelError("EPROTONOSUPPORT", f"protocol {proto} not supported for AF_UNIX")
        self.fds.reserve(2)
        self._net.check_room(self.proc, 2)
        a, b = self._net.unix.socketpair(base, Cred.of(self.proc))
        self._net.add(a)
        self._net.add(b)
        return self._install(a, flags), self._install(b, flags)

    # ---------------------------------------------------------------- names
    async def bind(self, fd: int, addr: Any) -> None:
        await self._enter()
        _ofd, sock = self._sock(fd)
        if sock.family == AF_UNIX:
            await self._bind_unix(sock, addr)
            return
        ip, port = await self._inet_addr(sock, addr)
        if sock.family == AF_INET6 and ip.version == 4:
            raise KernelError("EINVAL", "an IPv4 address for an IPv6 socket")
        self._net.inet.bind(sock, ip, port, self.proc.uid)

    async def _bind_unix(self, sock: Any, addr: Any) -> None:
        unix = self._net.unix
        path, abstract = unix.parse(addr)
        if sock.name is not None:
            raise KernelError("EINVAL", "socket is already bound")
        if path is None:
            unix.bind_abstract(sock, abstract)
            return
        apath = self._abs(path)
        self._check("write", apath)
        parent, name = await self._vfs.resolve_parent(apath, special="EADDRINUSE")
        mode = _stat.S_IFSOCK | (0o777 & ~self.proc.umask)
        try:
            attr = await self._fs.mknod(parent, name, mode, 0, self._caller)
        except KernelError as e:
            if e.code == "EEXIST":
                raise KernelError("EADDRINUSE", "address already in use") from None
            raise
        if sock.name is not None or sock.closed:  # lost a race with another bind of the same socket
            raise KernelError("EINVAL", "socket is already bound")
        unix.bind_path(sock, path, attr.ino)

    async def getsockname(self, fd: int) -> Any:
        await self._enter()
        return self._sock(fd)[1].sockname()

    async def getpeername(self, fd: int) -> Any:
        await self._enter()
        return self._sock(fd)[1].peername()

    # ---------------------------------------------------------------- connections
    async def listen(self, fd: int, backlog: int = 128) -> None:
        await self._enter()
        _ofd, sock = self._sock(fd)
        if not isinstance(sock, StreamSocket):
            raise KernelError("EOPNOTSUPP", "operation not supported on a datagram socket")
        if isinstance(sock, InetStream):
            self._net.inet.listen(sock, backlog)
            return
        if sock.state not in ("bound", "listening"):
            raise KernelError("EINVAL", "socket is not bound" if sock.state == "new" else "socket is connected")
        sock.backlog_max = min(max(backlog, 0), 4096)
        sock.peercred = (self.proc.pid, self.proc.uid, self.proc.gid)
        sock.state = "listening"
        sock.changed()

    async def accept(self, fd: int) -> tuple[int, Any]:
        """accept(2): ``(new fd, peer address)``."""
        return await self.accept4(fd, 0)

    async def accept4(self, fd: int, flags: int = 0) -> tuple[int, Any]:
        await self._enter()
        if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
            raise KernelError("EINVAL", "invalid accept4 flags")
        ofd, sock = self._sock(fd)
        if not isinstance(sock, StreamSocket):
            raise KernelError("EOPNOTSUPP", "operation not supported on a datagram socket")
        deadline = _deadline(sock, SO_RCVTIMEO)
        while True:
            self.fds.reserve(1)
            server = sock.accept()
            if server is not None:
                break
            if ofd.flags & O_NONBLOCK:
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            await self._sock_wait(sock, deadline)
        self._net.adopt(server, self.proc)
        new = self._install(server, flags)
        if isinstance(server, UnixStream):
            return new, server.peer_name.address() if server.peer_name is not None else ""
        return new, show(server.family, server.remote)

    async def connect(self, fd: int, addr: Any) -> None:
        await self._enter()
        ofd, sock = self._sock(fd)
        nonblock = bool(ofd.flags & O_NONBLOCK)
        if isinstance(sock, InetStream):
            await self._connect_tcp(sock, addr, nonblock)
        elif isinstance(sock, InetDgram):
            ip, port = await self._inet_addr(sock, addr)
            self._net.inet.connect_udp(sock, ip, port)
        elif isinstance(sock, UnixDgram):
            target = await self._unix_target(sock, addr)
            assert isinstance(target, UnixDgram)
            sock.peer_sock = target
            sock.remote = target
        else:
            await self._connect_unix(sock, addr, nonblock)

    async def _connect_unix(self, sock: UnixStream, addr: Any, nonblock: bool) -> None:
        if sock.state == "connected":
            raise KernelError("EISCONN", "socket is already connected")
        listener = await self._unix_target(sock, addr)
        while not self._net.unix.connect_stream(sock, listener):
            if nonblock:
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            await self._wait(listener.wait)

    async def _connect_tcp(self, sock: InetStream, addr: Any, nonblock: bool) -> None:
        if sock.state == "connected" and not sock.connect_reported:
            sock.connect_reported = True
            return
        if sock.connect_failed:
            sock.connect_failed = False
            sock.take_error()
            raise KernelError("ECONNABORTED", "software caused connection abort")
        if sock.state == "connecting":
            if nonblock:
                raise KernelError("EALREADY", "operation already in progress")
        else:
            ip, port = await self._inet_addr(sock, addr)
            try:
                self._net.inet.connect_tcp(sock, ip, port)
            except KernelError as e:
                if e.code == "ECONNREFUSED" and nonblock:
                    sock.err = "ECONNREFUSED"
                    sock.connect_failed = True
                    sock.shut_rd = sock.shut_wr = True
                    sock.changed()
                    raise KernelError("EINPROGRESS", "operation now in progress") from None
                raise
            if nonblock:
                sock.connect_reported = False  # the next connect() says 0 once it is through
                raise KernelError("EINPROGRESS", "operation now in progress")
        deadline = _deadline(sock, SO_SNDTIMEO)
        while sock.state == "connecting":
            try:
                await self._sock_wait(sock, deadline)
            except KernelError as e:
                if e.code == "EAGAIN":  # SO_SNDTIMEO: the connect goes on, as Linux says
                    raise KernelError("EINPROGRESS", "operation now in progress") from None
                raise
        if sock.err is not None:
            sock.connect_failed = False
            sock.take_error()

    async def shutdown(self, fd: int, how: int) -> None:
        await self._enter()
        _ofd, sock = self._sock(fd)
        if isinstance(sock, InetDgram) and sock.remote is None:
            sock.shutdown(how)
            raise KernelError("ENOTCONN", "socket is not connected")
        sock.shutdown(how)

    # ---------------------------------------------------------------- sending
    async def send(self, fd: int, data: bytes | bytearray | memoryview | str, flags: int = 0) -> int:
        await self._enter()
        ofd, sock = self._sock(fd)
        return await self._send(ofd, sock, _bytes(data), flags, None, None)

    async def sendto(self, fd: int, data: bytes | bytearray | memoryview | str, addr: Any, flags: int = 0) -> int:
        await self._enter()
        ofd, sock = self._sock(fd)
        dest = await self._dest(sock, addr)
        return await self._send(ofd, sock, _bytes(data), flags, None, dest)

    async def sendmsg(self, fd: int, buffers: Iterable[bytes | bytearray | memoryview],
                      ancdata: Iterable[tuple[int, int, Any]] = (),
                      flags: int = 0, addr: Any = None) -> int:
        """sendmsg(2); ancillary data may carry ``(SOL_SOCKET, SCM_RIGHTS, fds)`` (packed ints or a list)."""
        await self._enter()
        ofd, sock = self._sock(fd)
        data = b"".join(bytes(b) for b in buffers)
        fds: list[int] = []
        for level, kind, payload in ancdata:
            if level != SOL_SOCKET or kind != SCM_RIGHTS or sock.family != AF_UNIX:
                raise KernelError("EINVAL", "unsupported ancillary data")
            if isinstance(payload, (bytes, bytearray, memoryview)):
                raw = bytes(payload)
                arr = array.array("i")
                arr.frombytes(raw[:len(raw) - len(raw) % arr.itemsize])
                fds.extend(arr)
            else:
                fds.extend(int(x) for x in payload)
        if len(fds) > 253:
            raise KernelError("EINVAL", "too many descriptors in one message (SCM_MAX_FD 253)")
        rights = [self.fds.get(n) for n in fds] or None
        dest = await self._dest(sock, addr) if addr is not None else None
        for r in rights or ():
            r.refs += 1            # in flight: the message holds a reference
        try:
            sent = await self._send(ofd, sock, data, flags, rights, dest)
        except BaseException:
            for r in rights or ():
                self._net.drop_right(r)
            raise
        return sent

    async def _dest(self, sock: Any, addr: Any) -> Any:
        if isinstance(sock, StreamSocket):
            if isinstance(sock, UnixStream):
                raise KernelError("EISCONN" if sock.state == "connected" else "EOPNOTSUPP",
                                  "sendto on a connection-mode socket")
            return None  # TCP ignores it
        if isinstance(sock, UnixDgram):
            return await self._unix_target(sock, addr)
        ip, port = await self._inet_addr(sock, addr)
        return (ip, port)

    async def _send(self, ofd: OpenFileDescription, sock: Any, data: bytes | memoryview, flags: int,
                    rights: list[OpenFileDescription] | None, dest: Any) -> int:
        nonblock = ofd.flags & O_NONBLOCK or flags & MSG_DONTWAIT
        total = len(data)
        done = 0
        view: memoryview | None = None
        whole = not isinstance(sock, StreamSocket) or sock.message
        deadline = _deadline(sock, SO_SNDTIMEO)
        while True:
            try:
                k = sock.send(data if view is None else view[done:], flags, rights, dest)
            except KernelError as e:
                if e.code == "EPIPE" and not flags & MSG_NOSIGNAL:
                    self._table.send(self.proc, S.SIGPIPE)
                    if done:
                        return done
                    await self._enter()  # a default SIGPIPE ends the process here
                if done:
                    return done
                raise
            if k is not None:
                rights = None
                done += k
                if whole or done >= total:
                    return done
                if view is None:
                    view = memoryview(data)
                continue
            if nonblock:
                if done:
                    return done
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            try:
                await self._sock_wait(sock, deadline)
            except KernelError as e:
                if e.code in ("EINTR", "EAGAIN") and done:
                    return done
                raise

    # ---------------------------------------------------------------- receiving
    async def recv(self, fd: int, n: int = 65536, flags: int = 0) -> bytes:
        await self._enter()
        ofd, sock = self._sock(fd)
        data, _src, rights, _fl = await self._recv(ofd, sock, n, flags)
        self._drop_rights(rights)
        return data

    async def recvfrom(self, fd: int, n: int = 65536, flags: int = 0) -> tuple[bytes, Any]:
        await self._enter()
        ofd, sock = self._sock(fd)
        data, src, rights, _fl = await self._recv(ofd, sock, n, flags)
        self._drop_rights(rights)
        return data, self._source(sock, src)

    async def recvmsg(self, fd: int, bufsize: int = 65536, ancbufsize: int = 0,
                      flags: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """recvmsg(2) as Python's: ``(data, ancdata, msg_flags, address)``; passed fds are
        installed in this process (as many as *ancbufsize* has room for; MSG_CTRUNC else)."""
        await self._enter()
        ofd, sock = self._sock(fd)
        data, src, rights, msg_flags = await self._recv(ofd, sock, bufsize, flags)
        anc: list[tuple[int, int, bytes]] = []
        if rights:
            room = max(0, (ancbufsize - _CMSG_HDR) // 4)
            got: list[int] = []
            for i, r in enumerate(rights):
                if i >= room:
                    self._net.drop_right(r)
                    msg_flags |= MSG_CTRUNC
                    continue
                try:
                    got.append(self.fds.install(r, cloexec=bool(flags & MSG_CMSG_CLOEXEC)))
                    r.refs -= 1    # the message's reference became the new fd's
                except KernelError:
                    self._net.drop_right(r)
                    msg_flags |= MSG_CTRUNC
            if got:
                anc.append((SOL_SOCKET, SCM_RIGHTS, array.array("i", got).tobytes()))
        return data, anc, msg_flags, self._source(sock, src)

    def _source(self, sock: Any, src: Any) -> Any:
        if isinstance(sock, StreamSocket):
            if sock.family == AF_UNIX:
                return None
            return show(sock.family, sock.remote) if sock.remote is not None else None
        return self._address_of(sock, src)

    def _drop_rights(self, rights: list[OpenFileDescription] | None) -> None:
        for r in rights or ():
            self._net.drop_right(r)

    async def _recv(self, ofd: OpenFileDescription, sock: Any, n: int,
                    flags: int) -> tuple[bytes, Any, list[Any] | None, int]:
        if n < 0:
            raise KernelError("EINVAL", "negative buffer size")
        nonblock = ofd.flags & O_NONBLOCK or flags & MSG_DONTWAIT
        stream = isinstance(sock, StreamSocket) and not sock.message
        if n == 0 and stream:
            return b"", None, None, 0
        waitall = stream and flags & MSG_WAITALL and not flags & MSG_PEEK
        parts: list[bytes] = []
        got = 0
        deadline = _deadline(sock, SO_RCVTIMEO)
        while True:
            try:
                r = sock.recv(n - got, flags)
            except KernelError:
                if parts:
                    return b"".join(parts), None, None, 0
                raise
            if r is not None:
                data, src, rights, fl = r
                if not waitall or (not parts and (len(data) >= n or not data or rights)):
                    return data, src, rights, fl
                parts.append(data)
                got += len(data)
                self._drop_rights(rights)
                if got >= n or not data:
                    return b"".join(parts), None, None, 0
                continue
            if nonblock:
                if parts:
                    return b"".join(parts), None, None, 0
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            try:
                await self._sock_wait(sock, deadline)
            except KernelError as e:
                if e.code in ("EINTR", "EAGAIN") and parts:
                    return b"".join(parts), None, None, 0
                raise

    # ---------------------------------------------------------------- options
    async def setsockopt(self, fd: int, level: int, name: int, value: int | bytes) -> None:
        await self._enter()
        _ofd, sock = self._sock(fd)
        ival = _int_of(value)
        if level == SOL_SOCKET:
            if name == SO_RCVBUF:
                sock.rcvbuf = max(min(max(ival, 0), SYSCTL_MAX_BUF) * 2, SOCK_MIN_RCVBUF)
                sock.capacity = sock.rcvbuf
                return
            if name == SO_SNDBUF:
                sock.sndbuf = max(min(max(ival, 0), SYSCTL_MAX_BUF) * 2, SOCK_MIN_SNDBUF)
                return
            if name == SO_LINGER:
                if not isinstance(value, (bytes, bytearray)) or len(value) < 8:
                    raise KernelError("EINVAL", "SO_LINGER takes a struct linger")
                onoff, secs = struct.unpack("ii", bytes(value[:8]))
                sock.options[(level, name)] = (1 if onoff else 0, secs)
                return
            if name in (SO_RCVTIMEO, SO_SNDTIMEO):
                if not isinstance(value, (bytes, bytearray)) or len(value) < 16:
                    raise KernelError("EINVAL", "a struct timeval is needed")
                sock.options[(level, name)] = bytes(value[:16])
                return
            if name in _BOOL_OPTS:
                sock.options[(level, name)] = 1 if ival else 0
                return
            if name in _INT_OPTS:
                sock.options[(level, name)] = max(ival, 1)
                return
            raise KernelError("ENOPROTOOPT", f"protocol not available (SOL_SOCKET option {name})")
        if level == IPPROTO_TCP and isinstance(sock, InetStream):
            if name == TCP_NODELAY:
                sock.options[(level, name)] = 1 if ival else 0
                return
            if name in (TCP_KEEPIDLE, TCP_KEEPINTVL):
                if not 1 <= ival <= 32767:
                    raise KernelError("EINVAL", "value out of range")
                sock.options[(level, name)] = ival
                return
            if name == TCP_KEEPCNT:
                if not 1 <= ival <= 127:
                    raise KernelError("EINVAL", "value out of range")
                sock.options[(level, name)] = ival
                return
            if name == TCP_MAXSEG:
                sock.options[(level, name)] = ival
                return
        elif level == IPPROTO_IPV6 and sock.family == AF_INET6 and name == IPV6_V6ONLY:
            if sock.local is not None:
                raise KernelError("EINVAL", "IPV6_V6ONLY on a bound socket")
            sock.options[(level, name)] = 1 if ival else 0
            return
        elif level == IPPROTO_IP and sock.family == AF_INET and name == IP_TTL:
            if not (ival == -1 or 1 <= ival <= 255):
                raise KernelError("EINVAL", "TTL out of range")
            sock.options[(level, name)] = ival
            return
        elif level in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IP, IPPROTO_IPV6) and sock.family == AF_UNIX:
            raise KernelError("EOPNOTSUPP", "operation not supported")
        raise KernelError("ENOPROTOOPT", f"protocol not available (level {level} option {name})")

    async def getsockopt(self, fd: int, level: int, name: int, buflen: int = 0) -> int | bytes:
        """getsockopt(2) as Python's: an int, or the raw bytes when *buflen* is given."""
        await self._enter()
        _ofd, sock = self._sock(fd)
        value: int | bytes
        if level == SOL_SOCKET:
            if name == SO_TYPE:
                value = sock.type
            elif name == SO_DOMAIN:
                value = sock.family
            elif name == SO_PROTOCOL:
                value = sock.proto
            elif name == SO_ACCEPTCONN:
                value = 1 if getattr(sock, "state", "") == "listening" else 0
            elif name == SO_ERROR:
                code, sock.err = sock.err, None
                value = getattr(_errno, code) if code else 0
            elif name == SO_RCVBUF:
                value = sock.rcvbuf
            elif name == SO_SNDBUF:
                value = sock.sndbuf
            elif name == SO_LINGER:
                onoff, secs = sock.options.get((level, name), (0, 0))
                value = struct.pack("ii", onoff, secs) if buflen else onoff
            elif name in (SO_RCVTIMEO, SO_SNDTIMEO):
                value = sock.options.get((level, name), bytes(16)) if buflen else 0
            elif name == SO_PEERCRED:
                cred = self._peercred(sock)
                value = struct.pack("iII", *cred) if buflen else cred[0]
            elif name in _BOOL_OPTS:
                value = sock.options.get((level, name), 0)
            elif name in _INT_OPTS:
                value = sock.options.get((level, name), _INT_OPTS[name])
            else:
                raise KernelError("ENOPROTOOPT", f"protocol not available (SOL_SOCKET option {name})")
        elif level == IPPROTO_TCP and isinstance(sock, InetStream) and name in _TCP_DEFAULTS:
            value = sock.options.get((level, name), _TCP_DEFAULTS[name])
        elif level == IPPROTO_IPV6 and sock.family == AF_INET6 and name == IPV6_V6ONLY:
            value = sock.options.get((level, name), 0)
        elif level == IPPROTO_IP and sock.family == AF_INET and name == IP_TTL:
            ttl = sock.options.get((level, name), -1)
            value = 64 if ttl == -1 else ttl
        else:
            raise KernelError("ENOPROTOOPT", f"protocol not available (level {level} option {name})")
        if buflen and isinstance(value, int):
            return struct.pack("i", value)[:buflen]
        return value

    def _peercred(self, sock: Any) -> tuple[int, int, int]:
        cred = getattr(sock, "peercred", None)
        if cred is None:
            return (0, 0xFFFFFFFF, 0xFFFFFFFF)
        return cred if isinstance(cred, tuple) else (cred.pid, cred.uid, cred.gid)

    # ---------------------------------------------------------------- names
    async def getaddrinfo(self, host: str | None, port: int | str | None, family: int = AF_UNSPEC,
                          type: int = 0, proto: int = 0, flags: int = 0) -> list[tuple[int, int, int, str, Any]]:
        """Resolve *host* the sandbox's way: numeric addresses, ``localhost`` and the names
        in the VFS's /etc/hosts; any other name is a network lookup, which the policy
        refuses unless it allows one (none of them leaves the kernel without the host
        adapter).  Entries as Python's ``socket.getaddrinfo``."""
        await self._enter()
        if family not in (AF_UNSPEC, AF_INET, AF_INET6):
            raise KernelError("EAFNOSUPPORT", f"address family {family} not supported")
        num = _port_number(port)
        ips: list[IPAddress] = []
        if host is None or host == "":
            ips = [ipaddress.IPv4Address("0.0.0.0") if flags & AI_PASSIVE else ipaddress.IPv4Address("127.0.0.1"),
                   ipaddress.IPv6Address("::") if flags & AI_PASSIVE else ipaddress.IPv6Address("::1")]
        elif numeric(AF_INET, host):
            ips = [parse_ip(AF_INET, host)]
        elif numeric(AF_INET6, host):
            ips = [parse_ip(AF_INET6, host)]
        else:
            policy = self._net.policy
            # /etc/hosts answers for itself, but never teaches a name rule an address: the
            # sandbox can write it, so only the daemon's own resolver may (_resolve_on_host).
            ips = await self._hosts_lookup(host)
            if not ips:
                if policy.mode != "allow":
                    raise policy.deny("resolve", repr(host))
                ips = await self._resolve_on_host(host)
        out: list[tuple[int, int, int, str, Any]] = []
        types = [type] if type else [SOCK_STREAM, SOCK_DGRAM]
        for ip in ips:
            fam = AF_INET if ip.version == 4 else AF_INET6
            if family not in (AF_UNSPEC, fam):
                continue
            for t in types:
                p = proto or (IPPROTO_TCP if t == SOCK_STREAM else IPPROTO_UDP)
                out.append((fam, t, p, "", show(fam, (ip, num))))
        if not out:
            raise KernelError("EADDRNOTAVAIL", f"no address of the requested family for {host!r}")
        return out

    async def _resolve_on_host(self, host: str) -> list[IPAddress]:
        """Mode allow: the host adapter resolves the name; only the addresses some rule allows
        are returned (connect checks again, on the address, so rebinding gains nothing)."""
        policy = self._net.policy
        found: list[Any] = []

        async def look() -> None:
            found.extend(await self._net.resolver(host, None, 0, SOCK_STREAM))

        try:
            await self._wait(look, restartable=False)
        except OSError:
            raise KernelError("EHOSTUNREACH", f"cannot resolve {host!r}") from None
        ips: list[IPAddress] = []
        for info in found:
            try:
                ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            except ValueError:
                continue
            if ip not in ips:
                ips.append(ip)
        policy.learn(host, ips)  # the adapter's own answer: a rule naming this host holds them
        allowed = [ip for ip in ips if policy.address_allowed(ip)]
        if not allowed:
            raise policy.deny("resolve", f"{host!r} ({', '.join(map(str, ips)) or 'no address'})")
        return allowed

    async def _hosts_lookup(self, host: str) -> list[IPAddress]:
        name = host.rstrip(".").lower()
        if name in _LOCAL_NAMES or name == self.kernel.hostname.lower():
            return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
        try:
            text = (await self._vfs.read_file("/etc/hosts")).decode("utf-8", "replace")
        except KernelError:
            return []
        found: list[IPAddress] = []
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2 or name not in (f.lower().rstrip(".") for f in fields[1:]):
                continue
            try:
                found.append(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
        return found


def _deadline(sock: Any, name: int) -> float | None:
    """When a blocking call on *sock* gives up (SO_RCVTIMEO/SO_SNDTIMEO; None: never)."""
    raw = sock.options.get((SOL_SOCKET, name))
    if not raw:
        return None
    sec, usec = struct.unpack("qq", raw[:16])
    limit = sec + usec / 1e6
    return trio.current_time() + limit if limit > 0 else None


async def _park_until(sock: Any, deadline: float) -> None:
    with trio.move_on_at(deadline):
        await sock.wait()


def _bytes(data: bytes | bytearray | memoryview | str) -> bytes | memoryview:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytearray):
        return bytes(data)
    return data


def _int_of(value: int | bytes) -> int:
    if isinstance(value, int):
        return value
    raw = bytes(value)
    if len(raw) >= 4:
        return int(struct.unpack("i", raw[:4])[0])
    return int.from_bytes(raw, "little") if raw else 0


def _port_number(port: int | str | None) -> int:
    if port is None:
        return 0
    if isinstance(port, int):
        if not 0 <= port <= 65535:
            raise KernelError("EINVAL", f"port out of range: {port}")
        return port
    if port.isdigit():
        return _port_number(int(port))
    num = _SERVICES.get(port.lower())
    if num is None:
        raise KernelError("EINVAL", f"unknown service {port!r}")
    return num


__all__ = ["SocketCalls", "AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC", "IPPROTO_TCP", "MSG_DONTWAIT",
           "MSG_NOSIGNAL", "MSG_PEEK", "MSG_TRUNC", "MSG_WAITALL", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SO_ERROR",
           "SO_REUSEADDR", "SOCK_CLOEXEC", "SOCK_DGRAM", "SOCK_NONBLOCK", "SOCK_SEQPACKET", "SOCK_STREAM",
           "SOL_SOCKET", "TCP_NODELAY", "DatagramSocket"]
