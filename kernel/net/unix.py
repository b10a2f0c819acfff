"""AF_UNIX: stream, seqpacket and datagram sockets named by VFS paths or abstract names.

A path name is a socket inode in the VFS (the syscall layer creates it with mknod, so
``ls -l`` shows ``s`` and ``rm`` removes it); the socket is found again by that inode
number, so a path resolves like every path of the sandbox and can never reach a host
socket.  Abstract names (leading NUL) live only in this table.  Names are given back
when the socket closes; the file stays, as on Linux.

An address as the syscalls see it (Python's ``socket`` conventions): ``str`` path,
``bytes`` starting with NUL for an abstract name, ``""`` for an unnamed socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernel.errors import KernelError

from .dgram import DatagramSocket
from .stream import StreamSocket
from .table import AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, Cred, Socket

if TYPE_CHECKING:
    from .table import SocketTable

UNIX_PATH_MAX = 108


class UnixName:
    """A bound name: a path (with the inode it made) or an abstract name."""

    __slots__ = ("path", "ino", "abstract")

    def __init__(self, path: str | None = None, ino: int = 0, abstract: bytes | None = None) -> None:
        self.path, self.ino, self.abstract = path, ino, abstract

    def address(self) -> str | bytes:
        if self.abstract is not None:
            return b"\0" + self.abstract
        return self.path or ""

    def proc_text(self) -> str:
        """How /proc/net/unix shows it (abstract names with a leading ``@``)."""
        if self.abstract is not None:
            return "@" + self.abstract.decode("latin-1").replace("\0", "@")
        return self.path or ""


class _UnixMixin:
    name: UnixName | None
    table: "SocketTable"

    def unbind(self) -> None:
        if self.name is not None:
            self.table.unix.forget(self)

    def sockname(self) -> str | bytes:
        return self.name.address() if self.name is not None else ""


class UnixStream(_UnixMixin, StreamSocket):
    """AF_UNIX SOCK_STREAM (and, as a subclass, SOCK_SEQPACKET)."""

    def __init__(self, table: "SocketTable", type: int, owner: Cred) -> None:
        super().__init__(table, AF_UNIX, type, 0, owner)
        self.name: UnixName | None = None
        self.peer_name: UnixName | None = None
        self.capacity = table.default_buffer
        self.rcvbuf = self.sndbuf = 212992

    def peername(self) -> str | bytes:
        if self.state != "connected":
            raise KernelError("ENOTCONN", "socket is not connected")
        return self.peer_name.address() if self.peer_name is not None else ""


class UnixSeqpacket(UnixStream):
    message = True
    unconnected_recv = "ENOTCONN"


class UnixDgram(_UnixMixin, DatagramSocket):
    """AF_UNIX SOCK_DGRAM: a connected peer is a socket, a destination is resolved by the
    syscall layer to the socket bound there."""

    max_datagram = 1 << 30

    def __init__(self, table: "SocketTable", owner: Cred) -> None:
        super().__init__(table, AF_UNIX, SOCK_DGRAM, 0, owner)
        self.name: UnixName | None = None
        self.peer_sock: UnixDgram | None = None
        self.peercred: tuple[int, int, int] | None = None
        self.rcvbuf = self.sndbuf = 212992

    def route(self, dest: Any) -> DatagramSocket | None:
        target = dest if isinstance(dest, UnixDgram) else self.peer_sock
        if target is None or target.closed:
            raise KernelError("ECONNREFUSED", "connection refused")
        return target

    def source(self) -> Any:
        return self.name.address() if self.name is not None else None

    def writable(self) -> bool:
        p = self.peer_sock
        return p is None or p.closed or p.q_bytes < p.capacity

    def peername(self) -> str | bytes:
        if self.peer_sock is None:
            raise KernelError("ENOTCONN", "socket is not connected")
        return self.peer_sock.sockname()

    def send(self, data: Any, flags: int, rights: list[Any] | None, dest: Any = None) -> int | None:
        if dest is None and self.peer_sock is None:
            raise KernelError("ENOTCONN", "socket is not connected")
        self.remote = self.peer_sock
        return super().send(data, flags, rights, dest)


class UnixSpace:
    """The AF_UNIX name space of one kernel: inode -> socket, abstract name -> socket."""

    def __init__(self, table: "SocketTable") -> None:
        self.table = table
        self.by_ino: dict[int, Socket] = {}
        self.abstract: dict[bytes, Socket] = {}
        self._auto = 0

    def create(self, type: int, owner: Cred) -> Socket:
        if type == SOCK_STREAM:
            return UnixStream(self.table, type, owner)
        if type == SOCK_SEQPACKET:
            return UnixSeqpacket(self.table, type, owner)
        if type == SOCK_DGRAM:
            return UnixDgram(self.table, owner)
        raise KernelError("ESOCKTNOSUPPORT", f"socket type {type} not supported for AF_UNIX")

    @staticmethod
    def parse(addr: Any) -> tuple[str | None, bytes | None]:
        """``(path, None)``, ``(None, abstract)`` or ``(None, None)`` for autobind."""
        if isinstance(addr, str):
            raw = addr.encode("utf-8", "surrogateescape")
        elif isinstance(addr, (bytes, bytearray, memoryview)):
            raw = bytes(addr)
        else:
            raise KernelError("EINVAL", "AF_UNIX address must be str or bytes")
        if len(raw) >= UNIX_PATH_MAX:
            raise KernelError("EINVAL", "AF_UNIX path too long")
        if not raw:
            return None, None
        if raw[0] == 0:
            return None, raw[1:]
        return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"), None

    def bind_abstract(self, sock: Any, name: bytes | None) -> None:
        if sock.name is not None:
            raise KernelError("EINVAL", "socket is already bound")
        if name is None:  # autobind: five hex digits, as Linux
            while True:
                self._auto = (self._auto + 1) & 0xFFFFF
                name = f"{self._auto:05x}".encode()
                if name not in self.abstract:
                    break
        if name in self.abstract:
            raise KernelError("EADDRINUSE", "address already in use")
        self.abstract[name] = sock
        sock.name = UnixName(abstract=name)
        if isinstance(sock, StreamSocket):
            sock.state = "bound"

    def bind_path(self, sock: Any, path: str, ino: int) -> None:
        self.by_ino[ino] = sock
        sock.name = UnixName(path=path, ino=ino)
        if isinstance(sock, StreamSocket):
            sock.state = "bound"

    def forget(self, sock: Any) -> None:
        name: UnixName = sock.name
        if name.abstract is not None:
            if self.abstract.get(name.abstract) is sock:
                del self.abstract[name.abstract]
        elif self.by_ino.get(name.ino) is sock:
            del self.by_ino[name.ino]

    def lookup(self, path_ino: int | None, abstract: bytes | None, type: int) -> Socket:
        """The socket bound at a resolved path inode or abstract name (ECONNREFUSED if none,
        EPROTOTYPE for another socket type)."""
        sock = self.by_ino.get(path_ino) if path_ino is not None else self.abstract.get(abstract or b"")
        if sock is None or sock.closed:
            raise KernelError("ECONNREFUSED", "connection refused")
        if sock.type != type:
            raise KernelError("EPROTOTYPE", "protocol wrong type for socket")
        return sock

    # -- connection-oriented --------------------------------------------------------------
    def connect_stream(self, client: UnixStream, listener: Socket) -> bool:
        """Connect *client* to *listener*; False when its backlog is full (caller waits)."""
        assert isinstance(listener, UnixStream)
        if client.state == "connected":
            raise KernelError("EISCONN", "socket is already connected")
        if client.state == "listening":
            raise KernelError("EINVAL", "socket is listening")
        if listener.state != "listening":
            raise KernelError("ECONNREFUSED", "connection refused")
        if listener.backlog_full():
            return False
        if len(self.table.sockets) >= self.table.max_sockets:
            raise KernelError("EAGAIN", "too many sockets in the kernel")
        server = type(listener)(self.table, listener.type, listener.cred)
        self.table.add(server)
        server.name = listener.name
        server.peer_name = client.name
        server.capacity = listener.capacity
        server.peercred = (client.pid, client.uid, client.gid)
        client.peer_name = listener.name
        client.peercred = listener.peercred or (listener.pid, listener.uid, listener.gid)
        StreamSocket.link(client, server)
        listener.enqueue(server)
        return True

    def socketpair(self, type: int, owner: Cred) -> tuple[Socket, Socket]:
        a = self.create(type, owner)
        b = self.create(type, owner)
        cred = (owner.pid, owner.uid, owner.gid)
        if isinstance(a, UnixStream) and isinstance(b, UnixStream):
            a.peercred = b.peercred = cred
            StreamSocket.link(a, b)
        else:
            assert isinstance(a, UnixDgram) and isinstance(b, UnixDgram)
            a.peer_sock, b.peer_sock = b, a
            a.peercred = b.peercred = cred
        return a, b
