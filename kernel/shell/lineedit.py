"""The interactive shell's line editor, on the kernel PTY through ``ctx`` only.

prompt_toolkit cannot be driven here: it wants host file descriptors and an asyncio loop,
while the sandbox's terminal is a kernel PTY reached through trio syscalls.  So this is a
small editor of our own: emacs keys, history, tab completion (the completer is the caller's),
multi-row redisplay when a line wraps, and the terminal put in a raw-ish mode (no canonical
editing, no echo, no signal keys: ^C and ^D are read as bytes) only while a line is edited.

Keys: printable text; ^A/Home ^E/End ^B/Left ^F/Right M-b M-f (words); Backspace ^H, ^D/Delete,
^K ^U ^W M-d M-Backspace (kill), ^Y (yank), ^T (transpose), ^P/Up ^N/Down (history), ^R
(reverse history search), ^L (clear screen), Tab (complete; twice lists), ^C (abandon the line),
^D on an empty line (end of input), Enter.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from kernel.errors import KernelError

__all__ = ["LineEditor", "Interrupted", "display_width", "common_prefix"]

Completer = Callable[[str, int], Awaitable[tuple[int, list[str]]]]
"""``(line, cursor) -> (start of the word, candidates)``; a candidate ending in ``/`` or
`` `` is a directory or a finished word."""

ESC = "\x1b"


class Interrupted(Exception):
    """^C at the prompt: the line was abandoned."""


def char_width(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    if unicodedata.east_asian_width(c) in ("W", "F"):
        return 2
    return 0 if ord(c) < 0x20 else 1


def display_width(text: str) -> int:
    """Columns *text* takes; ``\\x01..\\x02`` (PS1's ``\\[ \\]``) and escape sequences count 0."""
    width = 0
    hidden = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\x01":
            hidden = True
        elif c == "\x02":
            hidden = False
        elif not hidden:
            if c == ESC and i + 1 < len(text) and text[i + 1] == "[":
                i += 2
                while i < len(text) and not ("@" <= text[i] <= "~"):
                    i += 1
            else:
                width += char_width(c)
        i += 1
    return width


def common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    lo, hi = min(words), max(words)
    n = 0
    while n < len(lo) and lo[n] == hi[n]:
        n += 1
    return lo[:n]


@dataclass
class History:
    """Lines entered, oldest first; consecutive duplicates and blank lines are not kept."""

    lines: list[str] = field(default_factory=list)
    limit: int = 500

    def add(self, line: str) -> None:
        line = line.rstrip("\n")
        if not line.strip() or (self.lines and self.lines[-1] == line):
            return
        self.lines.append(line)
        if len(self.lines) > self.limit:
            del self.lines[: len(self.lines) - self.limit]


class LineEditor:
    """Reads lines from fd *fd_in* (a PTY slave) and draws on *fd_out*."""

    def __init__(self, ctx: Any, *, fd_in: int = 0, fd_out: int = 2, history: History | None = None,
                 completer: Completer | None = None) -> None:
        self.ctx = ctx
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.history = history or History()
        self.completer = completer
        self.buf: list[str] = []
        self.pos = 0
        self.prompt = ""
        self.cols = 80
        self._row = 0  # rows between the prompt's first row and the cursor
        self._kill = ""
        self._pending = b""
        self._out: list[str] = []
        self._last_tab = False

    # ---------------------------------------------------------------- terminal
    async def _raw(self) -> Any:
        saved = self.ctx.tcgetattr(self.fd_in)
        t = saved.copy()
        t.icanon = t.echo = t.isig = False
        t.icrnl = False
        await self.ctx.tcsetattr(self.fd_in, t)
        return saved

    def _size(self) -> None:
        try:
            _rows, cols = self.ctx.get_winsize(self.fd_in)
            self.cols = cols if cols > 0 else 80
        except KernelError:
            self.cols = 80

    async def _flush(self) -> None:
        if self._out:
            data = "".join(self._out).encode("utf-8", "surrogateescape")
            self._out.clear()
            await self.ctx.write_all(self.fd_out, data)

    def _w(self, s: str) -> None:
        self._out.append(s)

    # ---------------------------------------------------------------- input
    async def _key(self) -> str:
        """One key: a character or an escape sequence (``\\x1b[A``, ``\\x1bb``)."""
        c = await self._char()
        if c != ESC:
            return c
        c2 = await self._char()
        if c2 not in ("[", "O"):
            return ESC + c2
        seq = ESC + c2
        while True:
            c3 = await self._char()
            seq += c3
            if "@" <= c3 <= "~" and c3 not in "[":
                return seq

    async def _char(self) -> str:
        while True:
            if self._pending:
                for n in range(1, min(4, len(self._pending)) + 1):
                    try:
                        c = self._pending[:n].decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    self._pending = self._pending[n:]
                    return c
                if len(self._pending) >= 4:  # not UTF-8: take the byte as it is
                    c = self._pending[:1].decode("latin-1")
                    self._pending = self._pending[1:]
                    return c
            data = await self.ctx.read(self.fd_in, 256)
            if not data:
                raise EOFError
            self._pending += data

    # ---------------------------------------------------------------- drawing
    def _redraw(self) -> None:
        cols = max(1, self.cols)
        if self._row:
            self._w(f"{ESC}[{self._row}A")
        text = "".join(self.buf)
        self._w("\r" + self.prompt + text + f"{ESC}[J")
        plen = display_width(self.prompt)
        end = plen + display_width(text)
        if end and end % cols == 0:
            self._w("\r\n")  # leave the pending-wrap state: the cursor really is on the next row
        end_row = end // cols
        cur = plen + display_width("".join(self.buf[: self.pos]))
        row, col = divmod(cur, cols)
        if end_row > row:
            self._w(f"{ESC}[{end_row - row}A")
        self._w("\r" + (f"{ESC}[{col}C" if col else ""))
        self._row = row

    def _to_end(self) -> None:
        """Put the cursor after the line (before printing below it)."""
        self.pos = len(self.buf)
        self._redraw()

    # ---------------------------------------------------------------- the loop
    async def read_line(self, prompt: str) -> str | None:
        """The next line (without its newline); None at end of input; ``Interrupted`` on ^C."""
        self.prompt = prompt
        self.buf, self.pos, self._row = [], 0, 0
        self._last_tab = False
        hist = self.history.lines
        hist_i = len(hist)
        scratch = ""
        self._size()
        try:
            saved = await self._raw()
        except KernelError:
            saved = None
        try:
            self._w(prompt)
            await self._flush()
            while True:
                try:
                    key = await self._key()
                except KernelError as e:
                    if e.code == "EINTR":  # SIGWINCH (or another handled signal): redraw
                        self._size()
                        self._redraw()
                        await self._flush()
                        continue
                    raise
                except EOFError:
                    return None if not self.buf else "".join(self.buf)
                tab = key == "\t"
                if key in ("\r", "\n"):
                    self._to_end()
                    self._w("\r\n")
                    await self._flush()
                    return "".join(self.buf)
                if key == "\x03":
                    self._to_end()
                    self._w("^C\r\n")
                    await self._flush()
                    raise Interrupted
                if key == "\x04":
                    if not self.buf:
                        self._w("\r\n")
                        await self._flush()
                        return None
                    self._delete(self.pos, self.pos + 1)
                elif key in ("\x10", f"{ESC}[A", f"{ESC}OA"):
                    if hist_i > 0:
                        if hist_i == len(hist):
                            scratch = "".join(self.buf)
                        hist_i -= 1
                        self._set(hist[hist_i])
                elif key in ("\x0e", f"{ESC}[B", f"{ESC}OB"):
                    if hist_i < len(hist):
                        hist_i += 1
                        self._set(hist[hist_i] if hist_i < len(hist) else scratch)
                elif key == "\x12":
                    await self._search()
                elif key == "\t":
                    await self._complete()
                elif self._append_fast(key):
                    self._last_tab = False
                    await self._flush()
                    continue
                else:
                    self._edit(key)
                self._last_tab = tab
                self._redraw()
                await self._flush()
        finally:
            if saved is not None:
                try:
                    await self.ctx.tcsetattr(self.fd_in, saved)
                except KernelError:
                    pass

    def _append_fast(self, key: str) -> bool:
        """Typing at the end of a line that does not reach the margin: echo, no redraw."""
        if len(key) != 1 or key < " " or key == "\x7f" or self.pos != len(self.buf):
            return False
        end = display_width(self.prompt) + display_width("".join(self.buf)) + char_width(key)
        if end >= self.cols * (self._row + 1) or char_width(key) != 1:
            return False
        self._insert(key)
        self._w(key)
        return True

    def _set(self, text: str) -> None:
        self.buf = list(text)
        self.pos = len(self.buf)

    def _delete(self, a: int, b: int, kill: bool = False) -> None:
        a, b = max(0, a), min(len(self.buf), b)
        if a >= b:
            return
        if kill:
            self._kill = "".join(self.buf[a:b])
        del self.buf[a:b]
        self.pos = a

    def _insert(self, text: str) -> None:
        self.buf[self.pos:self.pos] = list(text)
        self.pos += len(text)

    def _word_left(self) -> int:
        i = self.pos
        while i > 0 and not self.buf[i - 1].isalnum():
            i -= 1
        while i > 0 and self.buf[i - 1].isalnum():
            i -= 1
        return i

    def _word_right(self) -> int:
        i, n = self.pos, len(self.buf)
        while i < n and not self.buf[i].isalnum():
            i += 1
        while i < n and self.buf[i].isalnum():
            i += 1
        return i

    def _edit(self, key: str) -> None:
        """Every key that only changes the buffer or the cursor."""
        n = len(self.buf)
        if key in ("\x01", f"{ESC}[H", f"{ESC}OH", f"{ESC}[1~"):
            self.pos = 0
        elif key in ("\x05", f"{ESC}[F", f"{ESC}OF", f"{ESC}[4~"):
            self.pos = n
        elif key in ("\x02", f"{ESC}[D", f"{ESC}OD"):
            self.pos = max(0, self.pos - 1)
        elif key in ("\x06", f"{ESC}[C", f"{ESC}OC"):
            self.pos = min(n, self.pos + 1)
        elif key in (f"{ESC}b", f"{ESC}[1;5D", f"{ESC}[1;3D"):
            self.pos = self._word_left()
        elif key in (f"{ESC}f", f"{ESC}[1;5C", f"{ESC}[1;3C"):
            self.pos = self._word_right()
        elif key in ("\x7f", "\x08"):
            self._delete(self.pos - 1, self.pos)
        elif key == f"{ESC}[3~":
            self._delete(self.pos, self.pos + 1)
        elif key == "\x0b":
            self._delete(self.pos, n, kill=True)
        elif key == "\x15":
            self._delete(0, self.pos, kill=True)
        elif key == "\x17":
            i = self.pos
            while i > 0 and self.buf[i - 1] == " ":
                i -= 1
            while i > 0 and self.buf[i - 1] != " ":
                i -= 1
            self._delete(i, self.pos, kill=True)
        elif key in (f"{ESC}\x7f", f"{ESC}\x08"):
            self._delete(self._word_left(), self.pos, kill=True)
        elif key == f"{ESC}d":
            self._delete(self.pos, self._word_right(), kill=True)
        elif key == "\x19":
            self._insert(self._kill)
        elif key == "\x14":
            if 0 < self.pos:
                p = self.pos if self.pos < n else n - 1
                if p > 0:
                    self.buf[p - 1], self.buf[p] = self.buf[p], self.buf[p - 1]
                    self.pos = p + 1
        elif key == "\x0c":
            self._w(f"{ESC}[H{ESC}[2J")
            self._row = 0
        elif len(key) == 1 and (key >= " " or key == "\t") and key != "\x7f":
            self._insert(key)
        # other control keys and unknown sequences are ignored, as readline rings the bell

    async def _search(self) -> None:
        """^R: incremental search backwards through the history; Enter or an edit key accepts."""
        query = ""
        found = "".join(self.buf)
        start = len(self.history.lines)
        saved_prompt = self.prompt
        while True:
            self.prompt = f"(reverse-i-search)`{query}': "
            self._set(found)
            self._redraw()
            await self._flush()
            key = await self._key()
            if key == "\x12":
                start = self._find(query, start - 1)[1]
            elif key in ("\x7f", "\x08"):
                query = query[:-1]
                start = len(self.history.lines)
            elif key == "\x07" or key == "\x03":
                found = ""
                break
            elif len(key) == 1 and key >= " ":
                query += key
            else:
                if key in ("\r", "\n"):
                    self._pending = key.encode() + self._pending
                break
            found, start = self._find(query, start)
        self.prompt = saved_prompt
        self._set(found)

    def _find(self, query: str, before: int) -> tuple[str, int]:
        lines = self.history.lines
        for i in range(min(before, len(lines) - 1), -1, -1):
            if query in lines[i]:
                return lines[i], i + 1
        return "".join(self.buf), before

    async def _complete(self) -> None:
        if self.completer is None:
            return
        line = "".join(self.buf)
        try:
            start, cands = await self.completer(line, self.pos)
        except KernelError:
            return
        word = line[start:self.pos]
        if not cands:
            self._w("\x07")
            return
        if len(cands) == 1:
            self._delete(start, self.pos)
            self._insert(cands[0])
            return
        prefix = common_prefix(cands)
        if len(prefix) > len(word):
            self._delete(start, self.pos)
            self._insert(prefix)
            return
        if not self._last_tab:
            self._w("\x07")
            return
        self._list(cands)

    def _list(self, cands: list[str]) -> None:
        """Print candidates in columns below the line, then redraw the prompt under them."""
        saved = self.pos
        self._to_end()
        self._w("\r\n")
        names = sorted(set(c.rstrip(" ") for c in cands))
        width = max(display_width(c) for c in names) + 2
        per_row = max(1, self.cols // width)
        rows = -(-len(names) // per_row)
        for r in range(rows):
            row = [names[r + k * rows] for k in range(per_row) if r + k * rows < len(names)]
            self._w("".join(c + " " * (width - display_width(c)) for c in row).rstrip() + "\r\n")
        self._row = 0
        self.pos = saved
