"""Pseudo-terminals: master/slave pairs with a line discipline (termios), window size, job control.

Writing to the master is terminal *input*: it goes through the line discipline
(ICRNL, ISIG signal characters, canonical editing with echo) into the queue the
slave reads.  Writing to the slave is *output*: OPOST/ONLCR turn ``\\n`` into
``\\r\\n`` on the way to the master.  Like the pipe module, nothing here blocks:
``None`` means "would block" and the syscall layer waits on ``Pty.wait()``.

Linux behaviour chosen over the seed's (see docs/DECISIONS.md): ^C is sent to the
whole foreground process group (the shell included) and echoed as ``^C``; the
master reads EIO once no slave is open; a slave reads EOF once the master is gone.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from . import signals as S
from .errors import KernelError
from .pipes import POLLHUP, POLLIN, POLLOUT, Waitable

log = logging.getLogger("vfsfuse.kernel.pty")

PTS_MAJOR = 136     # /dev/pts/N is 136:N
PTMX_RDEV = (5, 2)  # /dev/ptmx

LF = 0x0A
CR = 0x0D


def _default_cc() -> dict[str, int]:
    return {"VINTR": 0x03, "VQUIT": 0x1C, "VERASE": 0x7F, "VKILL": 0x15, "VEOF": 0x04,
            "VSUSP": 0x1A, "VWERASE": 0x17}


@dataclass(slots=True)
class Termios:
    """The termios flags we implement, set as on a fresh Linux PTY (all on but TOSTOP)."""

    icrnl: bool = True
    opost: bool = True
    onlcr: bool = True
    icanon: bool = True
    echo: bool = True
    echoe: bool = True
    echoctl: bool = True
    isig: bool = True
    tostop: bool = False  # background writes get SIGTTOU (the syscall layer checks it)
    cc: dict[str, int] = field(default_factory=_default_cc)

    def copy(self) -> "Termios":
        return Termios(self.icrnl, self.opost, self.onlcr, self.icanon, self.echo, self.echoe,
                       self.echoctl, self.isig, self.tostop, dict(self.cc))

    def make_raw(self) -> None:
        """cfmakeraw(3) for the flags we model."""
        self.icrnl = self.opost = self.icanon = self.echo = self.isig = False


@dataclass(slots=True)
class WinSize:
    rows: int = 24
    cols: int = 80


SignalGroup = Callable[[int, int], int]


class Pty(Waitable):
    """One pseudo-terminal pair; ``masters``/``slaves`` count open descriptions of each end."""

    def __init__(self, index: int, registry: "PtyRegistry", buffer_limit: int = 65536,
                 max_canon: int = 4096) -> None:
        super().__init__()
        self.index = index
        self.registry = registry
        self.path = f"/dev/pts/{index}"
        self.buffer_limit = buffer_limit
        self.max_canon = max_canon
        self.termios = Termios()
        self.winsize = WinSize()
        self.fg_pgid = 0
        self.sid = 0            # session that has this as controlling terminal (0: none)
        self.masters = 0
        self.slaves = 0
        self.in_q: deque[bytes] = deque()   # slave-readable; canonical: one line (or b"" = EOF) per chunk
        self.in_size = 0
        self.in_head = 0
        self.out_q: deque[bytes] = deque()  # master-readable
        self.out_size = 0
        self.line = bytearray()

    @property
    def object_id(self) -> int:
        return self.index

    # -- output (slave -> master) -------------------------------------------------------
    def _post(self, data: bytes) -> bytes:
        t = self.termios
        if t.opost and t.onlcr and b"\n" in data:
            return data.replace(b"\n", b"\r\n")
        return data

    def _emit(self, data: bytes, *, force: bool = False) -> None:
        if not data:
            return
        if not force and self.out_size >= self.buffer_limit:
            return  # echo is dropped when the output queue is full (as Linux does)
        self.out_q.append(data)
        self.out_size += len(data)

    def slave_write(self, data: bytes | bytearray | memoryview) -> int | None:
        if self.masters == 0:
            raise KernelError("EIO", "terminal hung up")
        n = len(data)
        if n == 0:
            return 0
        space = self.buffer_limit - self.out_size
        if space <= 0:
            return None
        k = min(n, space)
        chunk = bytes(data[:k]) if (k != n or type(data) is not bytes) else data
        self._emit(self._post(chunk), force=True)
        self.changed()
        return k

    def master_read(self, n: int) -> bytes | None:
        if not self.out_q:
            if self.slaves == 0:
                raise KernelError("EIO", "no slave open")
            return None
        out = _take(self.out_q, n, self, "out")
        self.changed()
        return out

    # -- input (master -> slave) -------------------------------------------------------
    def master_write(self, data: bytes | bytearray | memoryview) -> int | None:
        n = len(data)
        if n == 0:
            return 0
        t = self.termios
        space = self.buffer_limit - self.in_size
        if not (t.icanon or t.echo or t.isig):
            if space <= 0:
                return None
            chunk = bytes(data[:space])
            if t.icrnl:
                chunk = chunk.replace(b"\r", b"\n")
            self._deliver(chunk)
            self.changed()
            return len(chunk)
        done = 0
        raw = bytearray()
        for b in bytes(data):
            if self.in_size + len(raw) >= self.buffer_limit:
                break
            done += 1
            self._input_byte(b, raw)
        if raw:
            self._deliver(bytes(raw))
        self.changed()
        return done or None

    def _input_byte(self, b: int, raw: bytearray) -> None:
        t = self.termios
        cc = t.cc
        if b == CR and t.icrnl:
            b = LF
        if t.isig:
            sig = {cc["VINTR"]: S.SIGINT, cc["VQUIT"]: S.SIGQUIT, cc["VSUSP"]: S.SIGTSTP}.get(b)
            if sig is not None:
                # like Linux without NOFLSH: flush the line, the input and the output queues
                self.line.clear()
                raw.clear()
                self.in_q.clear()
                self.in_size = self.in_head = 0
                self.out_q.clear()
                self.out_size = 0
                if t.echo:
                    self._emit(_ctl(b))
                self._signal_fg(sig)
                return
        if t.icanon:
            if b == cc["VERASE"]:
                if self.line:
                    self.line.pop()
                    if t.echo and t.echoe:
                        self._emit(b"\b \b")
                return
            if b == cc["VKILL"]:
                if t.echo and t.echoe:
                    self._emit(b"\b \b" * len(self.line))
                self.line.clear()
                return
            if b == cc["VWERASE"]:
                k = len(self.line)
                while k and self.line[k - 1] in b" \t":
                    k -= 1
                while k and self.line[k - 1] not in b" \t":
                    k -= 1
                if t.echo and t.echoe:
                    self._emit(b"\b \b" * (len(self.line) - k))
                del self.line[k:]
                return
            if b == cc["VEOF"]:
                self._deliver(bytes(self.line))  # b"" reads as end of file
                self.line.clear()
                return
            if b == LF:
                self.line.append(LF)
                if t.echo:
                    self._emit(self._post(b"\n"))
                self._deliver(bytes(self.line))
                self.line.clear()
                return
            if len(self.line) >= self.max_canon - 1:
                return  # Linux drops characters past MAX_CANON
            self.line.append(b)
            if t.echo:
                self._emit(self._echo_form(b))
            return
        if t.echo:
            self._emit(self._echo_form(b) if b != LF else self._post(b"\n"))
        raw.append(b)

    def _echo_form(self, b: int) -> bytes:
        if self.termios.echoctl and b < 0x20 and b not in (0x09, LF):
            return _ctl(b)
        return bytes((b,))

    def _deliver(self, chunk: bytes) -> None:
        self.in_q.append(chunk)
        self.in_size += len(chunk)

    def slave_read(self, n: int) -> bytes | None:
        if not self.in_q:
            if self.masters == 0:
                return b""
            return None
        if self.termios.icanon:
            first = self.in_q[0]
            if not first:  # EOF marker from ^D on an empty line
                self.in_q.popleft()
                self.changed()
                return b""
            head = self.in_head
            out = first[head:head + n]
            if head + n >= len(first):
                self.in_q.popleft()
                self.in_head = 0
            else:
                self.in_head = head + n
            self.in_size -= len(out)
            self.changed()
            return out
        # drop EOF markers left over from canonical mode
        while self.in_q and not self.in_q[0]:
            self.in_q.popleft()
        if not self.in_q:
            return None if self.masters else b""
        out = _take(self.in_q, n, self, "in")
        self.changed()
        return out

    # -- control ----------------------------------------------------------------------------
    def _signal_fg(self, sig: int) -> None:
        if self.fg_pgid > 0:
            try:
                self.registry.signal_group(self.fg_pgid, sig)
            except KernelError:
                pass  # a stale foreground group makes the signal a no-op

    def set_winsize(self, rows: int, cols: int) -> None:
        if rows < 0 or cols < 0:
            raise KernelError("EINVAL", "negative window size")
        changed = (rows, cols) != (self.winsize.rows, self.winsize.cols)
        self.winsize = WinSize(rows, cols)
        if changed:
            self._signal_fg(S.SIGWINCH)

    def set_termios(self, termios: Termios) -> None:
        was_canon = self.termios.icanon
        self.termios = termios.copy()
        if was_canon and not termios.icanon and self.line:
            self._deliver(bytes(self.line))  # pending line becomes readable in raw mode
            self.line.clear()
        self.changed()

    def close_master(self) -> None:
        self.masters -= 1
        if self.masters == 0:
            for sig in (S.SIGHUP, S.SIGCONT):
                self._signal_fg(sig)
            self.registry.hangup_session(self)
        self._maybe_free()
        self.changed()

    def close_slave(self) -> None:
        self.slaves -= 1
        self._maybe_free()
        self.changed()

    def _maybe_free(self) -> None:
        if self.masters <= 0 and self.slaves <= 0:
            self.registry.free(self)

    def poll_master(self) -> int:
        mask = POLLIN if self.out_q else 0
        if self.in_size < self.buffer_limit:
            mask |= POLLOUT
        if self.slaves == 0:
            mask |= POLLHUP
        return mask

    def poll_slave(self) -> int:
        mask = POLLIN if self.in_q else 0
        if self.out_size < self.buffer_limit:
            mask |= POLLOUT
        if self.masters == 0:
            mask |= POLLHUP | POLLIN
        return mask


def _ctl(b: int) -> bytes:
    return b"^" + bytes(((b + 0x40) & 0x7F,))


def _take(q: deque, n: int, pty: Pty, which: str) -> bytes:
    """Take up to n bytes from a chunk queue (used for raw input and for output)."""
    parts: list[bytes] = []
    head = pty.in_head if which == "in" else 0
    want = n
    while want and q:
        first = q[0]
        avail = len(first) - head
        if avail <= want:
            parts.append(first[head:] if head else first)
            q.popleft()
            head = 0
            want -= avail
        else:
            parts.append(first[head:head + want])
            q[0] = first[head + want:]
            head = 0
            want = 0
    if which == "in":
        pty.in_head = 0
        pty.in_size -= n - want
    else:
        pty.out_size -= n - want
    return parts[0] if len(parts) == 1 else b"".join(parts)


class PtyRegistry:
    """Open PTYs of one kernel; devfs lists ``pty_names()`` under /dev/pts."""

    def __init__(self, signal_group: SignalGroup | None = None, buffer_limit: int = 65536,
                 max_canon: int = 4096, session_hangup: Callable[[int], None] | None = None) -> None:
        self._ptys: dict[int, Pty] = {}
        self._signal_group = signal_group
        self._session_hangup = session_hangup
        self.buffer_limit = buffer_limit
        self.max_canon = max_canon

    def signal_group(self, pgid: int, sig: int) -> int:
        if self._signal_group is None:
            return 0
        return self._signal_group(pgid, sig)

    def hangup_session(self, pty: Pty) -> None:
        if pty.sid and self._session_hangup is not None:
            self._session_hangup(pty.sid)

    def open_pty(self) -> Pty:
        """A new pair, numbered with the lowest free index like devpts; both ends start unopened."""
        index = 0
        while index in self._ptys:
            index += 1
        pty = Pty(index, self, self.buffer_limit, self.max_canon)
        self._ptys[index] = pty
        log.debug("open pty %d", index)
        return pty

    def get(self, index: int) -> Pty | None:
        return self._ptys.get(index)

    def free(self, pty: Pty) -> None:
        if self._ptys.get(pty.index) is pty:
            del self._ptys[pty.index]
            log.debug("free pty %d", pty.index)

    def pty_names(self) -> list[int]:
        return sorted(self._ptys)
