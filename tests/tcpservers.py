"""Tiny TCP servers on the host's 127.0.0.1 for the network tests (a thread each)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator


def serve_tcp(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """Yield the port of a server that calls *handle* on each accepted connection, one at a
    time, until the fixture ends (then the listening socket closes)."""
    srv = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                handle(c)

    threading.Thread(target=run, daemon=True).start()
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def echo(c: socket.socket) -> None:
    """Answer every read with ``echo:`` and what was read."""
    while data := c.recv(65536):
        c.sendall(b"echo:" + data)
