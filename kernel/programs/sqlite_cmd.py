"""sqlite3: the SQLite shell over apsw, its database files paged through the kernel.

A database file is opened on ``sqlite_vfs.KernelVFS``: SQLite reads and writes its pages,
journal and locks with the process's own syscalls, so two sqlite3 processes share one database
as on Linux and a crash mid-transaction leaves a hot journal that the next open rolls back.
apsw calls a VFS synchronously, so every statement runs in a worker thread (``ctx.compute``)
whose file calls come back to the event loop; the shell's printing stays on the loop.

Nothing reaches the host: names are kernel paths, a ``:memory:`` database has a VFS that refuses
to open any file, an authorizer refuses ``ATTACH`` of anything but ``:memory:``, and extensions
are never enabled.  ``.read``/``.import``/``.output`` go through ``ctx``.

Output follows the sqlite3 3.40 shell for list, csv, tabs, quote, line, column, json, table,
box and markdown modes: REALs as SQLite prints them (``%!.15g``; ``%!.20g`` in json and quote
mode), blobs as their bytes, NULL as the null value.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator

import apsw

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, fsencode, strerror
from kernel.programs.flags import Opt, Spec
from kernel.programs.registry import Program
from kernel.programs.sqlite_vfs import KernelVFS
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

SPEC = Spec("sqlite3", "[OPTIONS] FILENAME [SQL]",
            "FILENAME is the name of an SQLite database. A new database is created\n"
            "if the file does not previously exist.", [
    Opt(None, "bail", help="stop after hitting an error"),
    Opt(None, "batch", help="force batch I/O"),
    Opt(None, "box", help="set output mode to 'box'"),
    Opt(None, "column", help="set output mode to 'column'"),
    Opt(None, "cmd", arg="COMMAND", help="run \"COMMAND\" before reading stdin"),
    Opt(None, "csv", help="set output mode to 'csv'"),
    Opt(None, "echo", help="print inputs before execution"),
    Opt(None, "header", help="turn headers on"),
    Opt(None, "json", help="set output mode to 'json'"),
    Opt(None, "line", help="set output mode to 'line'"),
    Opt(None, "list", help="set output mode to 'list'"),
    Opt(None, "markdown", help="set output mode to 'markdown'"),
    Opt(None, "newline", arg="SEP", help="set output row separator. Default: '\\n'"),
    Opt(None, "noheader", help="turn headers off"),
    Opt(None, "nullvalue", arg="TEXT", help="set text string for NULL values. Default ''"),
    Opt(None, "quote", help="set output mode to 'quote'"),
    Opt(None, "readonly", help="open the database read-only"),
    Opt(None, "separator", arg="SEP", help="set output column separator. Default: '|'"),
    Opt(None, "table", help="set output mode to 'table'"),
    Opt(None, "tabs", help="set output mode to 'tabs'"),
    Opt(None, "version", help="show SQLite version"),
])

MODES = ("list", "csv", "tabs", "quote", "line", "column", "json", "table", "box", "markdown", "insert")
_TAKES_ARG = {"cmd", "newline", "nullvalue", "separator"}

# ---------------------------------------------------------------------------- the sandbox VFS


class _DenyFiles(apsw.VFS):
    """The connection's VFS: every file open is refused (in-memory databases need none)."""

    def __init__(self) -> None:
        super().__init__("vfsfuse-nofiles", "")

    def xOpen(self, name: Any, flags: Any) -> apsw.VFSFile:  # noqa: N802 - apsw's name
        raise apsw.CantOpenError("the sandbox's sqlite3 opens files only through the kernel")

    def xAccess(self, pathname: str, flags: int) -> bool:  # noqa: N802
        return False

    def xDlOpen(self, filename: str) -> int:  # noqa: N802
        return 0


_VFS: _DenyFiles | None = None


def _authorize(action: int, a: str | None, b: str | None, db: str | None, trigger: str | None) -> int:
    if action == apsw.SQLITE_ATTACH and (a or "") not in ("", ":memory:"):
        return apsw.SQLITE_DENY
    return apsw.SQLITE_OK


def open_file(vfs: KernelVFS, path: str, readonly: bool, wal: bool) -> apsw.Connection:
    """A connection on the kernel file *path* (run in the worker thread: it may read it)."""
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(path, flags=flags, vfs=vfs.vfs_name)
    conn.authorizer = _authorize
    conn.execute("PRAGMA temp_store=MEMORY")
    if wal:  # no shared memory in this VFS: SQLite keeps the WAL index itself in this mode
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    return conn


def open_memory(data: bytes | None) -> apsw.Connection:
    """An in-memory connection holding *data* (a database file's bytes), with no file access."""
    global _VFS
    if _VFS is None:
        _VFS = _DenyFiles()
    conn = apsw.Connection(":memory:", vfs="vfsfuse-nofiles")
    if data:
        if len(data) >= 20 and data[18:20] == b"\x02\x02":
            data = data[:18] + b"\x01\x01" + data[20:]   # WAL mode: memdb keeps a rollback journal
        conn.deserialize("main", data)
    conn.authorizer = _authorize
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


# ---------------------------------------------------------------------------- value text


def real_text(x: float, digits: int = 15) -> str:
    """A REAL as SQLite's ``%!.Ng`` prints it: ``1.0``, ``1.0e+20``, ``Inf``."""
    if x != x:
        return ""
    if x in (float("inf"), float("-inf")):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0.0"
    s = f"{x:.{digits}g}"
    mant, e, exp = s.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + (e + exp if e else "")


def cell_bytes(v: Any, null: bytes, digits: int = 15) -> bytes:
    """What list, csv and column modes print for a value (a blob stops at its first NUL, as
    the C shell prints it with ``%s``)."""
    if v is None:
        return null
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return real_text(v, digits).encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).split(b"\0", 1)[0]
    return str(v).encode("utf-8", "surrogateescape")


_CSV_SPECIAL = set(range(0, 33)) | {0x22, 0x27, 0x7F} | set(range(0x80, 0x100))


def csv_field(v: Any, sep: bytes, null: bytes) -> bytes:
    if v is None:
        return null
    text = cell_bytes(v, null)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return text
    if not text or sep in text or any(c in _CSV_SPECIAL for c in text):
        return b'"' + text.replace(b'"', b'""') + b'"'
    return text


def _ld(x: Fraction) -> Fraction:
    """*x* rounded to an x87 long double (64-bit mantissa, nearest-even)."""
    if x == 0:
        return x
    neg = x < 0
    x = -x if neg else x
    n, d = x.numerator, x.denominator
    shift = 63 - (n.bit_length() - d.bit_length())
    while True:
        num, den = (n << shift, d) if shift >= 0 else (n, d << -shift)
        q, r = divmod(num, den)
        if q >= 1 << 64:
            shift -= 1
        elif q < 1 << 63:
            shift += 1
        else:
            break
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    out = Fraction(q, 1 << shift) if shift >= 0 else Fraction(q << -shift)
    return -out if neg else out


_ROUND = [Fraction(5 * 10.0 ** -k) for k in range(1, 11)]   # arRound[]: doubles 5e-1 ... 5e-10


def sqlite_g(value: float, precision: int) -> str:
    """``%!.{precision}g`` as the printf of SQLite 3.40 (the host's shell) computes it: in long
    double arithmetic, digits taken one by one, so 91.5 at 20 digits is 91.499999999999999996."""
    if value != value:
        return ""
    prefix = ""
    if value < 0:
        value = -value
        prefix = "-"
    if value == float("inf"):
        return prefix + "Inf"
    real = Fraction(value)
    if precision > 0:
        precision -= 1
    idx = precision & 0xFFF
    rounder = _ROUND[idx % 10]
    while idx >= 10:
        rounder = _ld(rounder * Fraction(1e-10))
        idx -= 10
    exp = 0
    if real > 0:
        scale = Fraction(1)
        e100, e10 = Fraction(1e100), Fraction(1e10)
        while real >= _ld(e100 * scale) and exp <= 350:
            scale = _ld(scale * e100)
            exp += 100
        while real >= _ld(e10 * scale) and exp <= 350:
            scale = _ld(scale * e10)
            exp += 10
        while real >= _ld(10 * scale) and exp <= 350:
            scale = _ld(scale * 10)
            exp += 1
        real = _ld(real / scale)
        while real < Fraction(1e-8):
            real = _ld(real * Fraction(100000000))
            exp -= 8
        while real < 1:
            real = _ld(real * 10)
            exp -= 1
        if exp > 350:
            return prefix + "Inf"
    real = _ld(real + rounder)
    if real >= 10:
        real = _ld(real * Fraction(0.1))
        exp += 1
    use_exp = exp < -4 or exp > precision
    if not use_exp:
        precision -= exp
    e2 = 0 if use_exp else exp
    nsd = 26
    out: list[str] = []

    def digit() -> str:
        nonlocal real, nsd
        if nsd <= 0:
            return "0"
        nsd -= 1
        d = int(real)
        real = _ld((real - d) * 10)
        return chr(48 + d)

    if e2 < 0:
        out.append("0")
    else:
        while e2 >= 0:
            out.append(digit())
            e2 -= 1
    out.append(".")
    e2 += 1
    while e2 < 0:
        out.append("0")
        precision -= 1
        e2 += 1
    while precision > 0:
        out.append(digit())
        precision -= 1
    while out[-1] == "0":
        out.pop()
    if out[-1] == ".":
        out.append("0")
    text = "".join(out)
    if use_exp:
        sign = "-" if exp < 0 else "+"
        e = abs(exp)
        text += "e" + sign + (str(e // 100) if e >= 100 else "") + f"{e % 100 // 10}{e % 10}"
    return prefix + text


def real20(x: float) -> str:
    return sqlite_g(x, 20)


def quote_sql(v: Any) -> bytes:
    if v is None:
        return b"NULL"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return real20(v).encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return b"X'" + bytes(v).hex().encode() + b"'"
    return b"'" + str(v).replace("'", "''").encode("utf-8", "surrogateescape") + b"'"


def insert_sql(v: Any) -> bytes:
    """A value as ``.dump`` and insert mode write it: newlines and CRs of text as
    ``replace('a\\nb','\\n',char(10))`` so each INSERT stays on one line."""
    if isinstance(v, float):
        if v in (float("inf"), float("-inf")):
            return b"1e999" if v > 0 else b"-1e999"
        if v == v and abs(v) < 2 ** 63 and v == int(v):
            return b"%d.0" % int(v)
    if not isinstance(v, str) or ("\n" not in v and "\r" not in v):
        return quote_sql(v)
    text = v.replace("'", "''")
    nl = "\\n" if "\\n" not in v else "\\012"
    cr = "\\r" if "\\r" not in v else "\\015"
    head = ""
    tail = ""
    if "\n" in v:
        head += "replace("
        text = text.replace("\n", nl)
        tail = f",'{nl}',char(10))" + tail
    if "\r" in v:
        head += "replace("
        text = text.replace("\r", cr)
        tail = f",'{cr}',char(13))" + tail
    return (head + "'" + text + "'" + tail).encode("utf-8", "surrogateescape")


def json_string(raw: bytes) -> bytes:
    out = bytearray(b'"')
    for c in raw:
        if c == 0x22:
            out += b'\\"'
        elif c == 0x5C:
            out += b"\\\\"
        elif c < 0x20:
            out += {8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r", 9: b"\\t"}.get(c, b"\\u%04x" % c)
        else:
            out.append(c)
    out += b'"'
    return bytes(out)


def json_value(v: Any) -> bytes:
    if v is None:
        return b"null"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        if v == float("inf"):
            return b"1e999"
        if v == float("-inf"):
            return b"-1e999"
        return real20(v).encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return json_string(bytes(v))
    return json_string(str(v).encode("utf-8", "surrogateescape"))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1
               for ch in text)


def _wrap(lines: list[str], width: int) -> list[str]:
    """A cell's lines cut at *width* characters (``.width``), as the 3.40 shell wraps them."""
    if width <= 0:
        return lines
    out: list[str] = []
    for line in lines:
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return out


def _center(text: str, width: int) -> str:
    room = max(0, width - _width(text))
    return " " * (room // 2) + text + " " * (room - room // 2)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


# ---------------------------------------------------------------------------- the shell state


class ShellError(Exception):
    """An error the shell reports and goes on from (status 1)."""


@dataclass
class Shell:
    ctx: Any
    conn: apsw.Connection
    mode: str = "list"
    headers: bool = False
    colsep: bytes = b"|"
    rowsep: bytes = b"\n"
    null: bytes = b""
    bail: bool = False
    echo: bool = False
    widths: list[int] = field(default_factory=list)
    status: int = 0
    quit: bool = False
    out_fd: int = 1
    insert_table: str = "table"
    last_code: int = 0
    _out: list[bytes] = field(default_factory=list)
    _size: int = 0

    async def write(self, data: bytes) -> None:
        self._out.append(data)
        self._size += len(data)
        if self._size >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out, self._size = [], 0
            await self.ctx.write_all(self.out_fd, data)

    async def in_db(self, fn: Any, *args: Any) -> Any:
        """Run *fn* (anything that uses the connection) where its file calls can reach the
        kernel: a worker thread."""
        return await self.ctx.compute(fn, *args)

    async def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return await self.in_db(lambda: list(self.conn.execute(sql, params)))

    async def error(self, text: str) -> None:
        await self.flush()
        await self.ctx.write_all(2, fsencode(text + "\n"))
        self.status = 1

    def set_mode(self, mode: str, dot: bool = False) -> None:
        """Switch modes; ``.mode`` also resets the separators (csv rows end in CRLF there),
        the command-line options only set the column separator, as the 3.40 shell does."""
        self.mode = mode
        if mode == "csv":
            self.colsep = b","
            if dot:
                self.rowsep = b"\r\n"
        elif mode == "tabs":
            self.colsep = b"\t"
            if dot:
                self.rowsep = b"\n"
        elif mode in ("list", "quote", "line") and dot:
            self.colsep, self.rowsep = (b"," if mode == "quote" else b"|"), b"\n"
        if mode in ("table", "box", "markdown"):
            self.headers = True

    # ------------------------------------------------------------------ running SQL

    def _statements(self, sql: str) -> Iterator[tuple[int, list[str], list[tuple[Any, ...]]]]:
        """(statement number, column names, a batch of rows) for the statements of *sql*."""
        cursor = self.conn.cursor()
        starts: list[int] = []

        def trace(cur: Any, stmt: str, bindings: Any) -> bool:
            starts.append(1)
            return True

        cursor.exec_trace = trace
        names: list[str] = []
        seen = -1
        rows: list[tuple[Any, ...]] = []
        for row in cursor.execute(sql):
            if len(starts) != seen:
                if rows:
                    yield seen, names, rows
                seen = len(starts)
                names = [d[0] for d in cursor.get_description()]
                rows = []
            rows.append(row)
            if len(rows) >= 256:
                yield seen, names, rows
                rows = []
        if rows:
            yield seen, names, rows

    async def run_sql(self, sql: str, where: str, echo: bool = False) -> bool:
        """Execute *sql* (one or more statements) and print every result; False on error."""
        if self.echo and echo:
            await self.write(fsencode(sql + "\n"))
        state: _Printing | None = None
        current = None
        batches = self._statements(sql)
        try:
            while (batch := await self.in_db(next, batches, None)) is not None:
                number, names, rows = batch
                if number != current:
                    if state is not None:
                        await self._finish(state)
                    state, current = _Printing(names), number
                assert state is not None
                await self._print(state, rows)
        except (apsw.Error, ValueError) as e:   # ValueError: text apsw cannot pass (a NUL byte)
            if state is not None:
                await self._finish(state)
            msg = re.sub(r"^\w+Error: ", "", str(e))
            await self.error(f"{where}{msg}")
            self.last_code = int(getattr(e, "result", 1) or 1) & 0xFF
            return False
        if state is not None:
            await self._finish(state)
        return True

    async def _finish(self, state: "_Printing") -> None:
        if state.open_json:
            await self.write(b"]\n")
        if self.mode in ("column", "table", "box", "markdown") and state.rows:
            await self._print_table(state.names, state.rows)

    async def _print(self, state: "_Printing", rows: list[tuple[Any, ...]]) -> None:
        mode = self.mode
        names = state.names
        if mode in ("column", "table", "box", "markdown"):
            state.rows.extend(rows)
            return
        sep, rs, null = self.colsep, self.rowsep, self.null
        first = not state.printed
        state.printed = True
        if mode in ("list", "csv", "tabs"):
            if first and self.headers:
                if mode == "csv":
                    await self.write(sep.join(csv_field(n, sep, null) for n in names) + rs)
                else:
                    await self.write(sep.join(n.encode("utf-8", "surrogateescape") for n in names) + rs)
            for row in rows:
                if mode == "csv":
                    await self.write(sep.join(csv_field(v, sep, null) for v in row) + rs)
                else:
                    await self.write(sep.join(cell_bytes(v, null) for v in row) + rs)
        elif mode == "quote":
            if first and self.headers:
                await self.write(b",".join(quote_sql(n) for n in names) + rs)
            for row in rows:
                await self.write(b",".join(quote_sql(v) for v in row) + rs)
        elif mode == "insert":
            for row in rows:
                await self.write(b"INSERT INTO " + self.insert_table.encode() + b" VALUES(" +
                                 b",".join(insert_sql(v) for v in row) + b");\n")
        elif mode == "line":
            w = max([5] + [_width(n) for n in names])
            for row in rows:
                if state.line_count:
                    await self.write(rs)
                state.line_count += 1
                for n, v in zip(names, row):
                    await self.write(fsencode(_pad(n, w, right=True)) + b" = " + cell_bytes(v, null) + rs)
        elif mode == "json":
            for row in rows:
                await self.write(b"[{" if not state.open_json else b",\n{")
                state.open_json = True
                await self.write(b",".join(json_string(n.encode("utf-8", "surrogateescape")) + b":" + json_value(v)
                                           for n, v in zip(names, row)))
                await self.write(b"}")

    async def _print_table(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        mode = self.mode
        null = self.null
        ncol = len(names)
        fixed = [abs(w) for w in self.widths[:ncol]] + [0] * max(0, ncol - len(self.widths))
        cells = [[_wrap(cell_bytes(v, null).decode("utf-8", "replace").split("\n"), fixed[j])
                  for j, v in enumerate(row)] for row in rows]
        widths = [_width(n) for n in names]
        for row in cells:
            for j, lines in enumerate(row):
                for line in lines:
                    widths[j] = max(widths[j], _width(line))
        for j, w in enumerate(fixed):
            if w:
                widths[j] = w
        multiline = any(len(lines) > 1 for row in cells for lines in row)
        out: list[str] = []
        if mode == "column":
            gap, left, right = "  ", "", ""
        elif mode == "markdown":
            gap, left, right = " | ", "| ", " |"
        elif mode == "table":
            gap, left, right = " | ", "| ", " |"
        else:
            gap, left, right = " \u2502 ", "\u2502 ", " \u2502"

        def rule(lft: str, mid: str, rgt: str, fill: str) -> str:
            return lft + mid.join(fill * (w + 2) for w in widths) + rgt

        if mode == "table":
            out.append(rule("+", "+", "+", "-"))
        elif mode == "box":
            out.append(rule("\u250c", "\u252c", "\u2510", "\u2500"))
        if self.headers:
            if mode == "column":
                out.append(gap.join(_pad(n, w) for n, w in zip(names, widths)))
                out.append(gap.join("-" * w for w in widths))
            else:
                out.append(left + gap.join(_center(n, w) for n, w in zip(names, widths)) + right)
                if mode == "markdown":
                    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
                elif mode == "table":
                    out.append(rule("+", "+", "+", "-"))
                else:
                    out.append(rule("\u251c", "\u253c", "\u2524", "\u2500"))
        for k, row in enumerate(cells):
            height = max((len(lines) for lines in row), default=1)
            for i in range(height):
                parts = [_pad(lines[i] if i < len(lines) else "", widths[j]) for j, lines in enumerate(row)]
                out.append(left + gap.join(parts) + right)
            if multiline and k < len(cells) - 1:
                if mode == "column":
                    out.append("")
                elif mode == "table":
                    out.append(rule("+", "+", "+", "-"))
                elif mode == "box":
                    out.append(rule("\u251c", "\u253c", "\u2524", "\u2500"))
        if mode == "table":
            out.append(rule("+", "+", "+", "-"))
        elif mode == "box":
            out.append(rule("\u2514", "\u2534", "\u2518", "\u2500"))
        await self.write(("\n".join(out) + "\n").encode("utf-8", "surrogateescape"))

    # ------------------------------------------------------------------ dot commands

    async def dot(self, line: str) -> None:
        words = _dot_words(line[1:])
        if not words:
            return
        cmd, args = words[0], words[1:]
        handler = _DOT.get(cmd) or next((h for name, h in _DOT.items() if name.startswith(cmd) and len(cmd) > 1),
                                        None)
        if handler is None:
            await self.error(f'Error: unknown command or invalid arguments:  "{cmd}". Enter ".help" for help')
            return
        await handler(self, args)

    # ------------------------------------------------------------------ scripts

    async def script(self, reader: Reader, name: str, interactive: bool = False) -> None:
        """Lines of SQL and dot-commands, as the shell reads a file or a pipe (on a terminal
        with the ``sqlite> `` and ``   ...> `` prompts)."""
        buf: list[str] = []
        start = 0
        lineno = 0
        while not self.quit:
            if interactive:
                await self.flush()
                await self.ctx.write_all(1, b"   ...> " if buf else b"sqlite> ")
            raw = await reader.readline()
            if not raw and interactive:
                await self.ctx.write_all(1, b"\n")
            if not raw:
                break
            lineno += 1
            line = raw.decode("utf-8", "surrogateescape").rstrip("\n").rstrip("\r") if raw else ""
            if not buf and line.lstrip().startswith("."):
                await self.dot(line.strip())
                if self.bail and self.status:
                    return
                continue
            if not buf and not line.strip():
                continue
            if not buf:
                start = lineno
            buf.append(line)
            sql = "\n".join(buf)
            if _complete(sql):
                buf = []
                where = "Parse error: " if interactive else f"Parse error near line {start}: "
                ok = await self.run_sql(sql, where, echo=True)
                if not ok and self.bail:
                    return
        if buf and "\n".join(buf).strip():
            sql = "\n".join(buf)
            if not _complete(sql + ";"):
                await self.error(f"Parse error near line {start}: incomplete input")
            else:
                await self.run_sql(sql, f"Parse error near line {start}: ")


def _complete(sql: str) -> bool:
    """Whether *sql* ends a statement (text SQLite cannot read counts as complete, so that
    running it reports the error)."""
    try:
        return bool(apsw.complete(sql))
    except ValueError:
        return True


@dataclass
class _Printing:
    """Layout state across the rows of one statement (json's brackets, line's blank lines,
    the rows a column layout must see before it can print)."""

    names: list[str]
    printed: bool = False
    open_json: bool = False
    line_count: int = 0
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def _dot_words(text: str) -> list[str]:
    """A dot-command's arguments: words, '...' and "..." quoting as the sqlite3 shell splits them."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        q = text[i]
        if q in "'\"":
            j = i + 1
            word = []
            while j < n and text[j] != q:
                if q == '"' and text[j] == "\\" and j + 1 < n:
                    j += 1
                    word.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"'}.get(text[j], "\\" + text[j]))
                else:
                    word.append(text[j])
                j += 1
            out.append("".join(word))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _unescape(text: str) -> bytes:
    return text.encode().decode("unicode_escape").encode("utf-8", "surrogateescape") if "\\" in text else text.encode()


async def _dot_headers(sh: Shell, args: list[str]) -> None:
    if len(args) != 1:
        await sh.error("Usage: .headers on|off")
        return
    sh.headers = args[0].lower() in ("on", "1", "yes", "true")


async def _dot_mode(sh: Shell, args: list[str]) -> None:
    if not args:
        await sh.write(f"current output mode: {sh.mode}\n".encode())
        return
    mode = args[0].lower()
    if mode in ("lines",):
        mode = "line"
    if mode in ("columns",):
        mode = "column"
    if mode not in MODES:
        await sh.error(f"Error: mode should be one of: {' '.join(MODES)}")
        return
    sh.set_mode(mode, dot=True)
    if mode == "insert" and len(args) > 1:
        sh.insert_table = args[1]


async def _dot_separator(sh: Shell, args: list[str]) -> None:
    if not args or len(args) > 2:
        await sh.error("Usage: .separator COL ?ROW?")
        return
    sh.colsep = _unescape(args[0])
    if len(args) > 1:
        sh.rowsep = _unescape(args[1])


async def _dot_nullvalue(sh: Shell, args: list[str]) -> None:
    if len(args) != 1:
        await sh.error("Usage: .nullvalue STRING")
        return
    sh.null = args[0].encode("utf-8", "surrogateescape")


async def _dot_quit(sh: Shell, args: list[str]) -> None:
    sh.quit = True


async def _names(sh: Shell, kind: str, pattern: str | None) -> list[str]:
    if kind == "table":
        sql = ("SELECT name FROM sqlite_schema WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%' "
               "AND name LIKE ?1 ORDER BY 1")
    else:
        sql = ("SELECT name FROM sqlite_schema WHERE type='index' AND (tbl_name LIKE ?1) "
               "AND name NOT LIKE 'sqlite_%' ORDER BY 1")
    return [r[0] for r in await sh.query(sql, (pattern or "%",))]


async def _columns(sh: Shell, names: list[str]) -> None:
    if not names:
        return
    maxlen = max(_width(n) for n in names)
    cols = max(1, 80 // (maxlen + 2))
    rows = (len(names) + cols - 1) // cols
    out = []
    for i in range(rows):
        parts: list[str] = []
        for j in range(i, len(names), rows):
            parts.append(("" if j < rows else "  ") + _pad(names[j], maxlen))
        out.append("".join(parts))
    await sh.write(("\n".join(out) + "\n").encode("utf-8", "surrogateescape"))


async def _dot_tables(sh: Shell, args: list[str]) -> None:
    await _columns(sh, await _names(sh, "table", args[0] if args else None))


async def _dot_indexes(sh: Shell, args: list[str]) -> None:
    await _columns(sh, await _names(sh, "index", args[0] if args else None))


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote_ident(name: str) -> str:
    return name if _IDENT.match(name) else '"' + name.replace('"', '""') + '"'


async def _dot_schema(sh: Shell, args: list[str]) -> None:
    pattern = args[0] if args else None
    sql = "SELECT sql, type, name FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_stat%'"
    params: tuple[Any, ...] = ()
    if pattern:
        sql += " AND (lower(name) LIKE lower(?1) OR lower(tbl_name) LIKE lower(?1))"
        params = (pattern,)
    sql += " ORDER BY rowid"
    for text, kind, name in await sh.query(sql, params):
        if re.match(r"(?i)CREATE TABLE ['\"]", text):
            text = "CREATE TABLE IF NOT EXISTS " + text[13:]
        if kind == "view":
            cols = [r[1] for r in await sh.query(f"PRAGMA table_info({_quote_ident(name)})")]
            text += f"\n/* {_quote_ident(name)}({','.join(_quote_ident(c) for c in cols)}) */"
        await sh.write(fsencode(text + ";\n"))


async def _dot_read(sh: Shell, args: list[str]) -> None:
    if len(args) != 1:
        await sh.error("Usage: .read FILE")
        return
    try:
        fd = await sh.ctx.open(args[0])
    except KernelError:
        await sh.error(f'Error: cannot open "{args[0]}"')
        return
    try:
        await sh.script(Reader(sh.ctx, fd), args[0])
    finally:
        await sh.ctx.close(fd)


async def _dot_output(sh: Shell, args: list[str]) -> None:
    await sh.flush()
    if sh.out_fd != 1:
        await sh.ctx.close(sh.out_fd)
        sh.out_fd = 1
    if args and args[0] not in ("stdout", "-"):
        try:
            sh.out_fd = await sh.ctx.open(args[0], O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        except KernelError as e:
            await sh.error(f"Error: cannot write to \"{args[0]}\": {strerror(e)}")


async def _dot_width(sh: Shell, args: list[str]) -> None:
    try:
        sh.widths = [int(a) for a in args]
    except ValueError:
        await sh.error("Usage: .width NUM1 NUM2 ...")


async def _dot_print(sh: Shell, args: list[str]) -> None:
    await sh.write(fsencode(" ".join(args) + "\n"))


async def _dot_bail(sh: Shell, args: list[str]) -> None:
    sh.bail = bool(args) and args[0].lower() in ("on", "1", "yes", "true")


async def _dot_echo(sh: Shell, args: list[str]) -> None:
    sh.echo = bool(args) and args[0].lower() in ("on", "1", "yes", "true")


async def _dot_databases(sh: Shell, args: list[str]) -> None:
    for _, name, path in await sh.query("PRAGMA database_list"):
        await sh.write(fsencode(f"{name}: {path or ''} r/w\n"))


async def _dot_dump(sh: Shell, args: list[str]) -> None:
    """The schema and rows as SQL text, the shell's layout (one INSERT per row)."""
    await sh.write(b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
    tables = await sh.query("SELECT name, sql FROM sqlite_schema WHERE type='table' AND sql NOT NULL "
                            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
    for name, sql in tables:
        if args and not any(re.fullmatch(a.replace("%", ".*"), name) for a in args):
            continue
        await sh.write(fsencode(sql + ";\n"))
        select = f"SELECT * FROM {_quote_ident(name)}"
        rows = await sh.in_db(lambda: sh.conn.cursor().execute(select))  # noqa: B023 - awaited here
        while batch := await sh.in_db(_batch, rows):
            for row in batch:
                await sh.write(b"INSERT INTO " + fsencode(_quote_ident(name)) + b" VALUES(" +
                               b",".join(insert_sql(v) for v in row) + b");\n")
    for (sql,) in await sh.query("SELECT sql FROM sqlite_schema WHERE type IN ('index','trigger','view') "
                                 "AND sql NOT NULL ORDER BY rowid"):
        await sh.write(fsencode(sql + ";\n"))
    await sh.write(b"COMMIT;\n")


async def _dot_import(sh: Shell, args: list[str]) -> None:
    """``.import [--csv] [--skip N] FILE TABLE``: rows of FILE (through ``ctx``) into TABLE, made
    from the first row (all TEXT) when it does not exist, as the 3.40 shell does."""
    import csv
    import io
    csv_mode = sh.mode == "csv"
    if csv_mode and sh.rowsep == b"\r\n":
        sh.rowsep = b"\n"   # the 3.40 shell swaps csv's output CRLF for the input's \n, and keeps it
    skip = 0
    rest: list[str] = []
    k = 0
    while k < len(args):
        a = args[k]
        if a == "--csv":
            csv_mode = True
        elif a == "--skip" and k + 1 < len(args) and args[k + 1].isdigit():
            skip = int(args[k + 1])
            k += 1
        elif a.startswith("-") and a != "-":
            await sh.error(f'Error: unknown option "{a}"')
            return
        else:
            rest.append(a)
        k += 1
    if len(rest) != 2:
        await sh.error("Usage: .import FILE TABLE")
        return
    path, table = rest
    try:
        fd = await sh.ctx.open(path)
    except KernelError:
        await sh.error(f'Error: cannot open "{path}"')
        return
    try:
        parts: list[bytes] = []
        while True:
            data = await sh.ctx.read(fd, CHUNK)
            if not data:
                break
            parts.append(data)
    finally:
        await sh.ctx.close(fd)
    text = b"".join(parts).decode("utf-8", "surrogateescape")
    if csv_mode:
        rows = list(csv.reader(io.StringIO(text)))
    else:
        sep = sh.colsep.decode("utf-8", "surrogateescape") or "|"
        rowsep = sh.rowsep.decode("utf-8", "surrogateescape") or "\n"
        rows = [line.split(sep) for line in text.split(rowsep) if line != ""]
    rows = rows[skip:]
    if not rows:
        return
    try:
        await sh.in_db(_insert_rows, sh.conn, table, rows)
    except apsw.Error as e:
        await sh.error("Error: " + re.sub(r"^\w+Error: ", "", str(e)))


def _insert_rows(conn: apsw.Connection, table: str, rows: list[list[str]]) -> None:
    """``.import``'s writes, in one transaction (in the worker thread)."""
    exists = bool(list(conn.execute("SELECT 1 FROM sqlite_schema WHERE name=?", (table,))))
    with conn:
        if not exists:
            cols = ", ".join('"' + c.replace('"', '""') + '" TEXT' for c in rows[0])
            conn.execute(f'CREATE TABLE "{table}"(\n{cols})')
            rows = rows[1:]
        ncol = len(list(conn.execute(f"PRAGMA table_info({_quote_ident(table)})")))
        marks = ",".join("?" * ncol)
        for row in rows:
            values: list[str | None] = [*row, *([None] * (ncol - len(row)))][:ncol]
            conn.execute(f"INSERT INTO {_quote_ident(table)} VALUES({marks})", values)


def _batch(rows: Iterator[tuple[Any, ...]], size: int = 256) -> list[tuple[Any, ...]]:
    return list(itertools.islice(rows, size))


async def _dot_help(sh: Shell, args: list[str]) -> None:
    await sh.write(b"".join(f".{name:<12s} {text}\n".encode() for name, text in _HELP))


_DOT = {
    "bail": _dot_bail, "databases": _dot_databases, "dump": _dot_dump, "echo": _dot_echo,
    "exit": _dot_quit, "headers": _dot_headers, "header": _dot_headers, "help": _dot_help,
    "import": _dot_import, "indexes": _dot_indexes, "indices": _dot_indexes, "mode": _dot_mode,
    "nullvalue": _dot_nullvalue, "output": _dot_output, "print": _dot_print, "quit": _dot_quit,
    "read": _dot_read, "schema": _dot_schema, "separator": _dot_separator, "tables": _dot_tables,
    "width": _dot_width,
}
_HELP = [
    ("bail on|off", "Stop after hitting an error.  Default OFF"), ("databases", "List names of attached databases"),
    ("dump ?TABLE?", "Render database content as SQL"), ("echo on|off", "Turn command echo on or off"),
    ("exit", "Exit this program"), ("headers on|off", "Turn display of headers on or off"),
    ("import FILE TABLE", "Import data from FILE into TABLE"), ("indexes ?TABLE?", "Show names of indexes"),
    ("mode MODE", "Set output mode (list csv tabs quote line column json table box markdown insert)"),
    ("nullvalue STRING", "Use STRING in place of NULL values"), ("output ?FILE?", "Send output to FILE or stdout"),
    ("print STRING...", "Print literal STRING"), ("quit", "Exit this program"),
    ("read FILE", "Read input from FILE"), ("schema ?PATTERN?", "Show the CREATE statements matching PATTERN"),
    ("separator COL ?ROW?", "Change the column and row separators"),
    ("tables ?TABLE?", "List names of tables matching LIKE pattern TABLE"),
    ("width NUM1 NUM2 ...", "Set column widths"),
]


# ---------------------------------------------------------------------------- main


@dataclass
class Cli:
    db: str | None = None
    sql: list[str] = field(default_factory=list)
    cmds: list[str] = field(default_factory=list)
    flags: dict[str, str | bool] = field(default_factory=dict)
    order: list[tuple[str, str | bool]] = field(default_factory=list)


class CliError(Exception):
    pass


def parse_cli(argv: list[str]) -> Cli:
    """sqlite3's command line: ``-opt`` or ``--opt`` anywhere, the first operand the database,
    the rest SQL or dot-commands."""
    cli = Cli()
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("-") and len(a) > 1:
            name = a.lstrip("-")
            if name in _TAKES_ARG:
                if i >= len(argv):
                    raise CliError(f"Error: missing argument to {a}")
                value: str | bool = argv[i]
                i += 1
            elif name in SPEC._long or name in ("help", "noheader"):
                value = True
            else:
                raise CliError(f"Error: unknown option: {a}\nUse -help for a list of options.")
            if name == "cmd":
                cli.cmds.append(str(value))
            cli.flags[name] = value
            cli.order.append((name, value))
            continue
        if cli.db is None:
            cli.db = a
        else:
            cli.sql.append(a)
    return cli


async def _open_database(ctx: Any, path: str, readonly: bool) -> apsw.Connection:
    """A connection on the kernel file *path* (created empty when missing, as sqlite3 does,
    unless read-only); KernelError or apsw.Error when it cannot be opened."""
    apath = path if path.startswith("/") else ctx.getcwd().rstrip("/") + "/" + path
    wal = False
    try:
        fd = await ctx.open(apath)
    except KernelError as e:
        if e.code != "ENOENT" or readonly:
            raise
    else:
        try:
            if (await ctx.fstat(fd)).is_dir:
                raise KernelError("EISDIR", "is a directory")
            wal = (await ctx.pread(fd, 2, 18)) == b"\x02\x02"  # the header's WAL format bytes
        finally:
            await ctx.close(fd)
    return await ctx.compute(open_file, KernelVFS(ctx), apath, readonly, wal)


async def main(ctx: Any) -> int:
    """sqlite3 [OPTIONS] [DB] [SQL...]: 1 when any statement failed."""
    try:
        cli = parse_cli(list(ctx.argv))
    except CliError as e:
        await ctx.write_all(2, fsencode(f"sqlite3: {e}\n" if not str(e).startswith("Error") else f"{e}\n"))
        return 1
    if cli.flags.get("help"):
        await ctx.write_all(1, SPEC.help_text())
        return 0
    if cli.flags.get("version"):
        await ctx.write_all(1, fsencode(f"{apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})\n"))
        return 0
    readonly = bool(cli.flags.get("readonly"))
    path = cli.db if cli.db not in (None, ":memory:", "") else None
    try:
        conn = open_memory(None) if path is None else await _open_database(ctx, path, readonly)
    except (KernelError, apsw.Error):
        await ctx.write_all(2, fsencode(f'Error: unable to open database "{path}": unable to open database file\n'))
        return 1
    sh = Shell(ctx, conn)
    arg_status = 0
    if readonly:
        await sh.in_db(conn.execute, "PRAGMA query_only=1")
    for name, value in cli.order:
        if name in MODES:
            sh.set_mode(name)
        elif name == "header":
            sh.headers = True
        elif name == "noheader":
            sh.headers = False
        elif name == "separator":
            sh.colsep = _unescape(str(value))
        elif name == "newline":
            sh.rowsep = _unescape(str(value))
        elif name == "nullvalue":
            sh.null = str(value).encode("utf-8", "surrogateescape")
        elif name == "bail":
            sh.bail = True
        elif name == "echo":
            sh.echo = True
    try:
        for cmd in cli.cmds:
            if cmd.startswith("."):
                await sh.dot(cmd)
            else:
                await sh.run_sql(cmd, "Error: in prepare, ")
        if cli.sql:
            for sql in cli.sql:
                if sh.quit:
                    break
                if sql.startswith("."):
                    await sh.dot(sql)
                elif not await sh.run_sql(sql, "Error: in prepare, "):
                    arg_status = sh.last_code or 1   # an SQL argument's failure exits with its code
                    if sh.bail:
                        break
        else:
            interactive = ctx.isatty(0) and not cli.flags.get("batch")
            if interactive:
                banner = f'SQLite version {apsw.sqlite_lib_version()}\nEnter ".help" for usage hints.\n'
                if path is None:
                    banner += "Connected to a transient in-memory database.\n"
                await ctx.write_all(1, banner.encode())
            await sh.script(Reader(ctx, 0), "stdin", interactive)
        await sh.flush()
    finally:
        if sh.out_fd != 1:
            await ctx.close(sh.out_fd)
        await sh.in_db(conn.close)
    return arg_status or sh.status


PROGRAMS: dict[str, Program] = {"sqlite3": main}
