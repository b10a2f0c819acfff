"""sed: GNU sed 4.x over ``ctx``; regular expressions from ``posixre`` (dialect ``sed``).

The script is parsed once into a flat list of commands (blocks become jumps, labels become
indices), then each input line runs through it.  One common shape gets a fast path: a script
that is a single unaddressed ``s///g`` without ``p``/``w`` flags is applied to whole 64 KiB
buffers of complete lines in one ``PosixRegex.sub`` call (the regex is compiled in posixre's
``lines`` mode, where ``^``/``$`` are line ends and nothing crosses a newline, which is exactly
what one-line-per-cycle sed sees).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.errors import KernelError
from kernel.programs import posixre
from kernel.programs.common import CHUNK
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import fsencode, strerror
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

SED = Spec(
    "sed",
    "[OPTION]... {script-only-if-no-other-script} [input-file]...",
    "Stream editor for filtering and transforming text.",
    [
        Opt("n", "quiet", help="suppress automatic printing of pattern space", dest="quiet"),
        Opt(None, "silent", help="same as --quiet", dest="quiet"),
        Opt(None, "debug", help="annotate program execution"),
        Opt(
            "e",
            "expression",
            arg="script",
            help="add the script to the commands to be executed",
            action="append",
            dest="script",
        ),
        Opt(
            "f",
            "file",
            arg="script-file",
            help="add the contents of script-file to the commands to be executed",
            action="append",
            dest="script",
        ),
        Opt(None, "follow-symlinks", help="follow symlinks when processing in place"),
        Opt(
            "i",
            "in-place",
            arg="SUFFIX",
            optional_arg=True,
            help="edit files in place (makes backup if SUFFIX supplied)",
        ),
        Opt("l", "line-length", arg="N", help="specify the desired line-wrap length for the `l' command"),
        Opt(None, "posix", help="disable all GNU extensions."),
        Opt("E", "regexp-extended", help="use extended regular expressions in the script", dest="extended"),
        Opt("r", None, help="same as -E", dest="extended"),
        Opt("s", "separate", help="consider files as separate rather than as a single continuous long stream."),
        Opt(None, "sandbox", help="operate in sandbox mode (disable e/r/w commands)."),
        Opt(
            "u",
            "unbuffered",
            help="load minimal amounts of data from the input files and flush output buffers more often",
        ),
        Opt("z", "null-data", help="separate lines by NUL characters"),
    ],
)


class SedError(Exception):
    """A script error: GNU's ``-e expression #N, char M: text`` (status 1)."""


class SedPanic(Exception):
    """An error GNU treats as fatal at run level (status 4): missing label, unreadable script."""


class SedExit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class Addr:
    kind: str  # "line", "last", "re", "step", "zero"
    n: int = 0
    step: int = 0
    rx: Any = None  # compiled regex or None for "the last regex"


@dataclass
class Cmd:
    name: str
    a1: Addr | None = None
    a2: Addr | None = None
    a2kind: str = ""  # "", "addr", "plus", "tilde"
    a2n: int = 0
    negate: bool = False
    text: bytes = b""
    label: str = ""
    target: int = -1  # jump index (b t T, and '{' to past its '}')
    rx: Any = None
    repl: Any = None
    gflag: bool = False
    nth: int = 1
    pflag: int = 0
    wfile: str | None = None
    eflag: bool = False
    number: int | None = None
    table: bytes | None = None
    # range state
    active: bool = False
    end_line: int = 0


@dataclass
class _Script:
    cmds: list[Cmd] = field(default_factory=list)
    wfiles: dict[str, int] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: bytes, extended: bool, sandbox: bool, expr_names: list[tuple[int, str]]) -> None:
        self.s = text
        self.i = 0
        self.extended = extended
        self.sandbox = sandbox
        self.cmds: list[Cmd] = []
        self.blocks: list[int] = []
        self.labels: dict[str, int] = {}
        self.expr_names = expr_names

    def fail(self, msg: str) -> SedError:
        # name the -e expression or file the error is in, as GNU does
        where = "-e expression #1"
        pos = self.i
        for start, name in self.expr_names:
            if self.i >= start:
                where, pos = name, self.i - start
        return SedError(f"{where}, char {pos}: {msg}")

    def peek(self) -> int:
        return self.s[self.i] if self.i < len(self.s) else -1

    def getc(self) -> int:
        c = self.peek()
        self.i += 1
        return c

    def skip_ws(self) -> None:
        while self.peek() in (32, 9):
            self.i += 1

    def skip_ws_nl(self) -> None:
        while self.peek() in (32, 9, 10, 59):
            self.i += 1

    def number(self) -> int:
        j = self.i
        while self.peek() >= 0 and 48 <= self.peek() <= 57:
            self.i += 1
        return int(self.s[j : self.i])

    def regex_text(self, delim: int) -> bytes:
        """Up to the unescaped *delim*; ``\\delim`` is the delimiter itself, ``\\n`` a newline."""
        out = bytearray()
        while True:
            c = self.getc()
            if c < 0 or c == 10 and delim != 10:
                raise self.fail("unterminated address regex" if self._in_addr else "unterminated `s' command")
            if c == delim:
                return bytes(out)
            if c == 0x5C:
                d = self.getc()
                if d < 0:
                    raise self.fail("unterminated `s' command")
                if d == delim:
                    out.append(d)
                elif d == 0x6E:
                    out += b"\\n"
                else:
                    out += bytes([0x5C, d])
                continue
            if c == 0x5B:  # a bracket: the delimiter is literal inside it
                out.append(c)
                j = self.i
                if self.peek() == 0x5E:
                    out.append(self.getc())
                if self.peek() == 0x5D:
                    out.append(self.getc())
                while self.peek() >= 0 and self.peek() != 0x5D and self.peek() != 10:
                    ch = self.getc()
                    out.append(ch)
                    if ch == 0x5B and self.peek() in (0x3A, 0x2E, 0x3D):
                        kind = self.getc()
                        out.append(kind)
                        while self.peek() >= 0 and not (
                            self.peek() == kind and self.i + 1 < len(self.s) and self.s[self.i + 1] == 0x5D
                        ):
                            out.append(self.getc())
                        if self.peek() >= 0:
                            out.append(self.getc())
                            out.append(self.getc())
                if self.peek() == 0x5D:
                    out.append(self.getc())
                elif self.peek() < 0 or self.peek() == 10:
                    self.i = j
                    del out[-(len(out)) :]  # fall back: treat '[' plainly
                    out += self.s[j - 1 : j]
                continue
            out.append(c)

    _in_addr = False

    seen_rx = False

    def compile_rx(self, pat: bytes, flags: str) -> Any:
        if not pat:
            if not self.seen_rx:
                raise self.fail("no previous regular expression")
            return None  # the last regex used
        self.seen_rx = True
        try:
            return posixre.compile(
                pat, extended=self.extended, icase="I" in flags, dialect="sed", multiline="M" in flags
            )
        except KernelError as e:
            raise self.fail(e.message) from None

    def address(self) -> Addr | None:
        c = self.peek()
        if c >= 0 and 48 <= c <= 57:
            n = self.number()
            if self.peek() == 0x7E:
                self.i += 1
                step = self.number() if 48 <= self.peek() <= 57 else 0
                return Addr("step", n, step)
            return Addr("zero" if n == 0 else "line", n)
        if c == 0x24:
            self.i += 1
            return Addr("last")
        if c == 0x2F or c == 0x5C:
            self.i += 1
            delim = c
            if c == 0x5C:
                delim = self.getc()
            self._in_addr = True
            pat = self.regex_text(delim)
            self._in_addr = False
            flags = ""
            while self.peek() in (0x49, 0x4D):
                flags += chr(self.getc())
            return Addr("re", rx=self.compile_rx(pat, flags))
        return None

    def text_arg(self) -> bytes:
        """a/i/c text: GNU one-liner or the classic ``a\\`` + lines continued by backslashes."""
        self.skip_ws()
        if self.peek() == 0x5C:
            self.i += 1
            if self.peek() == 10:
                self.i += 1
            else:
                pass  # 'a\text': the text follows directly
        elif self.peek() < 0 or self.peek() == 10:
            raise self.fail("expected \\ after `a', `c' or `i'")
        out = bytearray()
        while True:
            c = self.getc()
            if c < 0:
                break
            if c == 0x5C:
                d = self.getc()
                if d < 0:
                    break
                out.append(d)
                continue
            if c == 10:
                break
            out.append(c)
        return bytes(out) + b"\n"

    def label_arg(self) -> str:
        self.skip_ws()
        j = self.i
        while self.peek() >= 0 and self.peek() not in (10, 59):
            self.i += 1
        return self.s[j : self.i].decode("latin-1").rstrip()

    def filename(self) -> str:
        self.skip_ws()
        j = self.i
        while self.peek() >= 0 and self.peek() != 10:
            self.i += 1
        return self.s[j : self.i].decode("utf-8", "surrogateescape")

    def end_cmd(self) -> None:
        self.skip_ws()
        c = self.peek()
        if c in (-1, 10, 59):
            if c >= 0:
                self.i += 1
            return
        if c == 0x7D or c == 0x23:
            return
        raise self.fail("extra characters after command")

    def parse(self) -> list[Cmd]:
        while True:
            self.skip_ws_nl()
            if self.peek() < 0:
                break
            if self.peek() == 0x23:  # comment
                while self.peek() >= 0 and self.peek() != 10:
                    self.i += 1
                continue
            cmd = Cmd("")
            cmd.a1 = self.address()
            if cmd.a1 is not None:
                self.skip_ws()
                if self.peek() == 0x2C:
                    self.i += 1
                    self.skip_ws()
                    if self.peek() == 0x2B or self.peek() == 0x7E:
                        cmd.a2kind = "plus" if self.getc() == 0x2B else "tilde"
                        if not (48 <= self.peek() <= 57):
                            raise self.fail("expected newer version of sed")
                        cmd.a2n = self.number()
                    else:
                        cmd.a2 = self.address()
                        if cmd.a2 is None:
                            raise self.fail("unexpected `,'")
                        cmd.a2kind = "addr"
                        if cmd.a2.kind == "zero":
                            raise self.fail("invalid usage of line address 0")
                if cmd.a1.kind == "zero" and not (cmd.a2 is not None and cmd.a2.kind == "re"):
                    raise self.fail("invalid usage of line address 0")
            self.skip_ws()
            if self.peek() == 0x21:
                self.i += 1
                cmd.negate = True
                self.skip_ws()
                if self.peek() == 0x21:
                    raise self.fail("multiple `!'s")
            c = self.getc()
            if c < 0:
                raise self.fail("missing command")
            name = chr(c)
            cmd.name = name
            if name in "=dDgGhHlnNpPxz":
                if name == "l" or name == "L":
                    self.skip_ws()
                    if 48 <= self.peek() <= 57:
                        cmd.number = self.number()
                self.end_cmd()
            elif name == "{":
                self.blocks.append(len(self.cmds))
            elif name == "}":
                if cmd.a1 is not None:
                    raise self.fail("} doesn't want any addresses")
                if not self.blocks:
                    raise self.fail("unexpected `}'")
                self.cmds[self.blocks.pop()].target = len(self.cmds) + 1
                self.end_cmd()
            elif name in "aic":
                cmd.text = self.text_arg()
            elif name == ":":
                if cmd.a1 is not None:
                    raise self.fail(": doesn't want any addresses")
                label = self.label_arg()
                if not label:
                    raise self.fail('":" lacks a label')
                if self.peek() == 59:
                    self.i += 1
                self.labels[label] = len(self.cmds)
                cmd.label = label
            elif name in "btT":
                cmd.label = self.label_arg()
                if self.peek() == 59:
                    self.i += 1
            elif name in "qQ":
                self.skip_ws()
                cmd.number = self.number() if 48 <= self.peek() <= 57 else 0
                self.end_cmd()
            elif name in "rRwW":
                cmd.wfile = self.filename()
                if not cmd.wfile:
                    raise self.fail("missing filename in r/R/w/W commands")
                if self.sandbox:
                    raise self.fail("e/r/w commands disabled in sandbox mode")
            elif name == "s":
                self.parse_s(cmd)
            elif name == "y":
                self.parse_y(cmd)
            elif name == "F" or name == "e":
                if name == "e":
                    raise self.fail("e command not supported in the sandbox")
                self.end_cmd()
            else:
                raise self.fail(f"unknown command: `{name}'")
            self.cmds.append(cmd)
        if self.blocks:
            self.i = len(self.s)
            raise self.fail("unmatched `{'")
        for cmd in self.cmds:
            if cmd.name in "btT":
                if cmd.label:
                    if cmd.label not in self.labels:
                        raise SedPanic(f"can't find label for jump to `{cmd.label}'")
                    cmd.target = self.labels[cmd.label]
                else:
                    cmd.target = len(self.cmds)
        return self.cmds

    def parse_s(self, cmd: Cmd) -> None:
        delim = self.getc()
        if delim < 0 or delim in (10, 0x5C):
            raise self.fail("unterminated `s' command")
        pat = self.regex_text(delim)
        # the replacement: keep escapes for posixre, but \delim is the delimiter
        out = bytearray()
        while True:
            c = self.getc()
            if c < 0:
                raise self.fail("unterminated `s' command")
            if c == delim:
                break
            if c == 0x5C:
                d = self.getc()
                if d < 0:
                    raise self.fail("unterminated `s' command")
                if d == delim and d != 0x26:
                    out.append(d)
                elif d == 10:
                    out += b"\\\n"
                else:
                    out += bytes([0x5C, d])
                continue
            out.append(c)
        flags = ""
        while True:
            c = self.peek()
            if c in (0x67, 0x70, 0x69, 0x49, 0x6D, 0x4D, 0x65):
                ch = chr(self.getc())
                if ch == "g":
                    if cmd.gflag:
                        raise self.fail("multiple `g' options to `s' command")
                    cmd.gflag = True
                elif ch == "p":
                    if cmd.pflag:
                        raise self.fail("multiple `p' options to `s' command")
                    cmd.pflag += 1
                elif ch == "e":
                    raise self.fail("e command not supported in the sandbox")
                else:
                    flags += ch.upper()
            elif c >= 0 and 48 <= c <= 57:
                if cmd.number is not None:
                    raise self.fail("multiple number options to `s' command")
                n = self.number()
                if n == 0:
                    raise self.fail("number option to `s' command may not be zero")
                cmd.number = n
            elif c == 0x77:
                self.i += 1
                cmd.wfile = self.filename()
                if not cmd.wfile:
                    raise self.fail("missing filename in r/R/w/W commands")
                break
            else:
                break
        self.end_cmd()
        cmd.nth = cmd.number or 1
        cmd.number = None
        cmd.rx = self.compile_rx(pat, flags)
        cmd.text = pat
        cmd.label = flags
        groups = cmd.rx.groups if cmd.rx is not None else 9
        try:
            cmd.repl = posixre.parse_replacement(bytes(out), groups)
        except KernelError as e:
            raise self.fail(e.message) from None

    def parse_y(self, cmd: Cmd) -> None:
        delim = self.getc()
        parts = []
        for _ in range(2):
            out = bytearray()
            while True:
                c = self.getc()
                if c < 0 or c == 10:
                    raise self.fail("unterminated `y' command")
                if c == delim:
                    break
                if c == 0x5C:
                    d = self.getc()
                    if d == delim:
                        out.append(d)
                    elif d == 0x6E:
                        out.append(10)
                    elif d == 0x5C:
                        out.append(0x5C)
                    elif d == 0x74:
                        out.append(9)
                    else:
                        out += bytes([0x5C, d])
                    continue
                out.append(c)
            parts.append(bytes(out))
        if len(parts[0]) != len(parts[1]):
            raise self.fail("strings for `y' command are different lengths")
        self.end_cmd()
        table = bytearray(range(256))
        for a, b in zip(parts[0], parts[1]):
            table[a] = b
        cmd.table = bytes(table)


class _Input:
    """Lines of the input files in order, one line of lookahead (for ``$``)."""

    def __init__(self, sed: "_Sed", files: list[str]) -> None:
        self.sed = sed
        self.files = list(files)
        self.fd: int | None = None
        self.buf = b""
        self.eof_file = True
        self.name = "-"
        self.next_line: tuple[bytes, bool] | None = None
        self.lineno = 0

    async def _open_next(self) -> bool:
        ctx = self.sed.ctx
        while self.files:
            name = self.files.pop(0)
            if name == "-":
                self.fd = 0
            else:
                try:
                    st = await ctx.stat(name)
                    import stat as _stat

                    if _stat.S_ISDIR(st.mode):
                        if self.sed.in_place:
                            await self.sed.warn(f"couldn't edit {name}: not a regular file")
                            self.sed.status = 4
                            continue
                        raise SedPanic(f"read error on {name}: Is a directory")
                    self.fd = await ctx.open(name)
                except KernelError as e:
                    await self.sed.warn(f"can't read {name}: {strerror(e)}")
                    self.sed.status = 2
                    continue
            self.name = name
            self.buf = b""
            self.eof_file = False
            return True
        return False

    async def _raw_line(self) -> tuple[bytes, bool] | None:
        """The next line of the current file: (text without delimiter, had delimiter)."""
        delim = self.sed.delim
        while True:
            if self.fd is None or self.eof_file and not self.buf:
                return None
            i = self.buf.find(delim)
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1 :]
                return line, True
            if self.eof_file:
                line, self.buf = self.buf, b""
                return line, False
            data = await self.sed.ctx.read(self.fd, CHUNK)
            if not data:
                self.eof_file = True
                if self.fd > 2:
                    await self.sed.ctx.close(self.fd)
            else:
                self.buf += data

    async def fetch(self) -> tuple[bytes, bool] | None:
        """The next line across files (one file at a time in separate mode)."""
        while True:
            if self.fd is not None:
                got = await self._raw_line()
                if got is not None:
                    return got
            if self.sed.separate:
                return None
            if not await self._open_next():
                return None

    async def start_file(self) -> bool:
        """Separate mode: move to the next file; False when none is left."""
        self.fd = None
        if not await self._open_next():
            return False
        self.lineno = 0
        self.next_line = await self.fetch()
        return True

    async def read(self) -> tuple[bytes, bool] | None:
        line = self.next_line
        if line is None:
            return None
        self.next_line = await self.fetch()
        self.lineno += 1
        return line

    def is_last(self) -> bool:
        return self.next_line is None and (self.sed.separate or not self.files or self._rest_empty())

    def _rest_empty(self) -> bool:
        return False


class _Sed:
    def __init__(
        self, ctx: Any, cmds: list[Cmd], quiet: bool, delim: bytes, separate: bool, line_len: int, in_place: bool
    ) -> None:
        self.ctx = ctx
        self.cmds = cmds
        self.quiet = quiet
        self.delim = delim
        self.separate = separate
        self.line_len = line_len
        self.in_place = in_place
        self.status = 0
        self.out_fd = 1
        self.out: list[bytes] = []
        self.out_size = 0
        self.missing_nl: dict[int, bool] = {}
        self.wfds: dict[str, int] = {}
        self.rfiles: dict[str, Any] = {}
        self.last_rx: Any = None
        self.append_queue: list[tuple[str, Any]] = []
        self.hold = b""

    async def warn(self, text: str) -> None:
        await self.flush()
        await self.ctx.write_all(2, fsencode(f"sed: {text}\n"))

    async def write(self, fd: int, data: bytes, nl: bool) -> None:
        if fd == self.out_fd:
            if self.missing_nl.get(fd):
                self.out.append(self.delim)
                self.missing_nl[fd] = False
            self.out.append(data + self.delim if nl else data)
            self.out_size += len(data) + 1
            if not nl:
                self.missing_nl[fd] = True
            if self.out_size >= CHUNK:
                await self.flush()
            return
        if self.missing_nl.get(fd):
            await self.ctx.write_all(fd, self.delim)
            self.missing_nl[fd] = False
        if fd in (1, 2):
            await self.flush()
        await self.ctx.write_all(fd, data + self.delim if nl else data)
        if not nl:
            self.missing_nl[fd] = True

    async def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out = []
            self.out_size = 0
            await self.ctx.write_all(self.out_fd, data)

    async def wfd(self, name: str) -> int:
        if name in ("/dev/stdout",):
            return self.out_fd
        if name == "/dev/stderr":
            return 2
        fd = self.wfds.get(name)
        if fd is None:
            fd = await self.ctx.open(name, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
            self.wfds[name] = fd
        return fd

    def rx_of(self, rx: Any) -> Any:
        if rx is None:
            if self.last_rx is None:
                raise SedError("no previous regular expression")
            return self.last_rx
        self.last_rx = rx
        return rx

    def match_addr(self, a: Addr, ps: bytes, lineno: int, last: bool) -> bool:
        k = a.kind
        if k == "line":
            return lineno == a.n
        if k == "last":
            return last
        if k == "step":
            if a.step <= 0:
                return lineno == a.n
            return lineno >= a.n and (lineno - a.n) % a.step == 0
        if k == "zero":
            return False
        return self.rx_of(a.rx).search(ps) is not None

    def selected(self, cmd: Cmd, ps: bytes, lineno: int, last: bool) -> bool:
        if cmd.a1 is None:
            return True
        if not cmd.a2kind:
            return self.match_addr(cmd.a1, ps, lineno, last)
        if cmd.active:
            a2 = cmd.a2 if cmd.a2 is not None else Addr("line")  # +N and ~N ranges end by line number
            if cmd.a2kind in ("plus", "tilde") or a2.kind == "line":
                if lineno >= cmd.end_line:
                    cmd.active = False
                    return True  # the range's last line (or a line number already passed)
                return True
            if a2.kind == "last":
                if last:
                    cmd.active = False
                return True
            if self.match_addr(a2, ps, lineno, last):
                cmd.active = False
            return True
        a1 = cmd.a1
        start = (a1.kind == "zero" and lineno == 1) or self.match_addr(a1, ps, lineno, last)
        if not start:
            return False
        if a1.kind == "zero":
            # 0,/re/: the regex may end the range on the very first line
            assert cmd.a2 is not None
            if self.match_addr(cmd.a2, ps, lineno, last):
                return True
            cmd.active = True
            return True
        if cmd.a2kind == "plus":
            if cmd.a2n > 0:
                cmd.active, cmd.end_line = True, lineno + cmd.a2n
            return True
        if cmd.a2kind == "tilde":
            if cmd.a2n > 0 and lineno % cmd.a2n:
                cmd.active, cmd.end_line = True, (lineno // cmd.a2n + 1) * cmd.a2n
            return True
        assert cmd.a2 is not None
        a2 = cmd.a2
        if a2.kind == "line":
            if a2.n > lineno:
                cmd.active, cmd.end_line = True, a2.n
            return True
        if a2.kind == "last":
            if not last:
                cmd.active = True
            return True
        if a2.kind == "step":
            # addr1,first~step is not a GNU form; treat as a line number
            if a2.n > lineno:
                cmd.active, cmd.end_line = True, a2.n
            return True
        cmd.active = True
        return True

    async def flush_appends(self) -> None:
        for kind, value in self.append_queue:
            if kind == "text":
                await self._write_plain(value)
            elif kind == "R":
                await self.write(self.out_fd, value[0], value[1])
            else:
                try:
                    fd = 0 if value == "/dev/stdin" else await self.ctx.open(value)
                except KernelError:
                    continue
                try:
                    data = await self.ctx.read_all(fd)
                finally:
                    if fd:
                        await self.ctx.close(fd)
                if data:
                    await self.write(self.out_fd, data, False)
                    self.missing_nl[self.out_fd] = False
        self.append_queue = []

    async def read_R(self, name: str) -> tuple[bytes, bool] | None:
        state = self.rfiles.get(name)
        if state is None:
            try:
                fd = await self.ctx.open(name)
                data = await self.ctx.read_all(fd)
                await self.ctx.close(fd)
            except KernelError:
                data = b""
            state = [data, 0]
            self.rfiles[name] = state
        data, pos = state
        if pos >= len(data):
            return None
        i = data.find(self.delim, pos)
        if i < 0:
            state[1] = len(data)
            return data[pos:], True
        state[1] = i + 1
        return data[pos:i], True

    def escape_l(self, ps: bytes, width: int) -> list[bytes]:
        esc = {7: b"\\a", 8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r", 9: b"\\t", 11: b"\\v", 92: b"\\\\"}
        pieces = []
        for c in ps:
            if c in esc:
                pieces.append(esc[c])
            elif 32 <= c < 127:
                pieces.append(bytes([c]))
            else:
                pieces.append(b"\\%03o" % c)
        lines = []
        cur = b""
        for p in pieces:
            if width > 1 and len(cur) + len(p) > width - 1:
                lines.append(cur + b"\\")
                cur = b""
            cur += p
        lines.append(cur + b"$")
        return lines

    async def run(self, inp: _Input) -> None:
        cmds = self.cmds
        ncmd = len(cmds)
        ps: bytes | None = None
        had_nl = True
        restart_with = None
        while True:
            if restart_with is None:
                got = await inp.read()
                if got is None:
                    return
                ps, had_nl = got
            else:
                ps = restart_with
                restart_with = None
            tflag = False
            pc = 0
            deleted = False
            quit_status: int | None = None
            while pc < ncmd:
                cmd = cmds[pc]
                pc += 1
                last = inp.is_last()
                sel = self.selected(cmd, ps, inp.lineno, last)
                if cmd.negate:
                    sel = not sel
                name = cmd.name
                if not sel:
                    if name == "{":
                        pc = cmd.target
                    continue
                if name == "{" or name == "}" or name == ":":
                    continue
                if name == "s":
                    rx = self.rx_of(cmd.rx)
                    new, n = rx.sub(cmd.repl, ps, nth=cmd.nth, all=cmd.gflag)
                    if n:
                        tflag = True
                        ps = new
                        if cmd.pflag:
                            await self.write(self.out_fd, ps, had_nl)
                        if cmd.wfile:
                            await self.write(await self.wfd(cmd.wfile), ps, had_nl)
                elif name == "p":
                    await self.write(self.out_fd, ps, had_nl)
                elif name == "d":
                    deleted = True
                    break
                elif name == "D":
                    i = ps.find(b"\n")
                    if i < 0:
                        deleted = True
                        break
                    restart_with = ps[i + 1 :]
                    deleted = True
                    break
                elif name == "n":
                    if inp.next_line is None and inp.is_last():
                        quit_status = 0 if quit_status is None else quit_status
                        break
                    if not self.quiet:
                        await self.write(self.out_fd, ps, had_nl)
                    await self.flush_appends()
                    got = await inp.read()
                    if got is None:
                        deleted = True
                        quit_status = 0
                        break
                    ps, had_nl = got
                elif name == "N":
                    got = await inp.read() if inp.next_line is not None else None
                    if got is None:
                        quit_status = 0
                        break
                    await self.flush_appends()
                    ps = ps + b"\n" + got[0]
                    had_nl = got[1]
                elif name == "P":
                    i = ps.find(b"\n")
                    await self.write(self.out_fd, ps if i < 0 else ps[:i], had_nl or i >= 0)
                elif name == "h":
                    self.hold = ps
                elif name == "H":
                    self.hold = self.hold + b"\n" + ps
                elif name == "g":
                    ps = self.hold
                elif name == "G":
                    ps = ps + b"\n" + self.hold
                elif name == "x":
                    ps, self.hold = self.hold, ps
                elif name == "z":
                    ps = b""
                elif name == "=":
                    await self._write_plain(str(inp.lineno).encode() + b"\n")
                elif name == "l":
                    width = self.line_len if cmd.number is None else cmd.number
                    for piece in self.escape_l(ps, width):
                        await self._write_plain(piece + b"\n")
                elif name == "a":
                    self.append_queue.append(("text", cmd.text))
                elif name == "i":
                    await self._write_plain(cmd.text)
                elif name == "c":
                    if not cmd.a2kind or cmd.negate or not cmd.active:
                        await self._write_plain(cmd.text)
                    deleted = True
                    break
                elif name == "y":
                    ps = ps.translate(cmd.table)
                elif name == "b":
                    pc = cmd.target
                elif name == "t":
                    if tflag:
                        tflag = False
                        pc = cmd.target
                elif name == "T":
                    if not tflag:
                        pc = cmd.target
                    else:
                        tflag = False
                elif name == "q":
                    quit_status = cmd.number or 0
                    break
                elif name == "Q":
                    await self.flush()
                    raise SedExit(cmd.number or 0)
                elif name == "r":
                    self.append_queue.append(("r", cmd.wfile))
                elif name == "R":
                    got = await self.read_R(cmd.wfile or "")
                    if got is not None:
                        self.append_queue.append(("R", got))
                elif name == "w":
                    await self.write(await self.wfd(cmd.wfile or ""), ps, had_nl)
                elif name == "W":
                    i = ps.find(b"\n")
                    await self.write(await self.wfd(cmd.wfile or ""), ps if i < 0 else ps[:i], had_nl or i >= 0)
                elif name == "F":
                    await self._write_plain(fsencode("-" if inp.name == "-" else inp.name) + b"\n")
            if not deleted and not self.quiet:
                await self.write(self.out_fd, ps, had_nl)
            await self.flush_appends()
            if quit_status is not None:
                await self.flush()
                raise SedExit(quit_status)

    async def _write_plain(self, data: bytes) -> None:
        if self.missing_nl.get(self.out_fd):
            self.out.append(self.delim)
            self.missing_nl[self.out_fd] = False
        self.out.append(data)
        self.out_size += len(data)


async def prog_sed(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SED)
    if isinstance(args, int):
        return args
    operands = list(args.operands)
    n_expr = 0
    # -e and -f share one list; tell them apart from the command line again
    scripts: list[tuple[str, bytes]] = []
    argv = list(ctx.argv)
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            break
        kind = None
        value = None
        if (
            a in ("-e", "--expression")
            or (a.startswith("--expression="))
            or (a.startswith("--e") and "=" in a and "--expression".startswith(a.split("=")[0]))
        ):
            kind = "e"
        elif a in ("-f", "--file") or a.startswith("--file="):
            kind = "f"
        elif a.startswith("-") and not a.startswith("--") and len(a) > 1:
            # clustered short options: find e or f
            j = 1
            while j < len(a):
                ch = a[j]
                if ch in "ef":
                    kind = ch
                    value = a[j + 1 :] or None
                    break
                if ch in "l":
                    if j + 1 == len(a):
                        i += 1
                    break
                if ch == "i":
                    break
                j += 1
        if kind is not None:
            if value is None:
                if "=" in a and a.startswith("--"):
                    value = a.split("=", 1)[1]
                else:
                    i += 1
                    value = argv[i] if i < len(argv) else ""
            scripts.append((kind, fsencode(value)))
        i += 1
    texts: list[bytes] = []
    names: list[tuple[int, str]] = []
    pos = 0
    for kind, value in scripts:
        if kind == "e":
            n_expr += 1
            text = value
            names.append((pos, f"-e expression #{n_expr}"))
        else:
            name = value.decode("utf-8", "surrogateescape")
            try:
                fd = 0 if name == "-" else await ctx.open(name)
                text = await ctx.read_all(fd)
                if fd:
                    await ctx.close(fd)
            except KernelError as e:
                await ctx.write_all(2, fsencode(f"sed: couldn't open file {name}: {strerror(e)}\n"))
                return 4
            if text.endswith(b"\n"):
                text = text[:-1]
            names.append((pos, f"file {name} line 1"))
        texts.append(text)
        pos += len(text) + 1
    if not scripts:
        if not operands:
            await ctx.write_all(2, b"Usage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...\n\n")
            return 1
        texts = [fsencode(operands.pop(0))]
        names = [(0, "-e expression #1")]
    script = b"\n".join(texts)
    extended = bool(args.get("extended"))
    try:
        parser = _Parser(script, extended, bool(args.get("sandbox")), names)
        cmds = parser.parse()
    except SedError as e:
        await ctx.write_all(2, fsencode(f"sed: {e}\n"))
        return 1
    except SedPanic as e:
        await ctx.write_all(2, fsencode(f"sed: {e}\n"))
        return 4
    line_len = 70
    if args.get("line_length") is not None:
        try:
            line_len = int(args["line_length"])
        except ValueError:
            await ctx.write_all(2, fsencode(f"sed: invalid line length: {args['line_length']}\n"))
            return 1
    in_place = "in_place" in args
    suffix = args.get("in_place") or ""
    separate = bool(args.get("separate")) or in_place
    delim = b"\0" if args.get("null_data") else b"\n"
    files = operands or ["-"]
    sed = _Sed(ctx, cmds, bool(args.get("quiet")), delim, separate, line_len, in_place)
    try:
        # open w files up front (GNU truncates them even when never written)
        for cmd in cmds:
            if cmd.wfile and cmd.name in "swW":
                await sed.wfd(cmd.wfile)
        if in_place:
            if not operands:
                await ctx.write_all(2, b"sed: no input files\n")
                return 4
            for name in files:
                await _in_place(sed, name, suffix)
        elif not separate and delim == b"\n" and _fast_sub(cmds) and not sed.quiet:
            await _run_fast(sed, cmds[0], files)
        else:
            inp = _Input(sed, files)
            if separate:
                while await inp.start_file():
                    await sed.run(inp)
            else:
                inp.next_line = await inp.fetch()
                await sed.run(inp)
    except SedExit as e:
        await sed.flush()
        return e.status if not sed.status else sed.status
    except (SedError, SedPanic) as e:
        await sed.flush()
        await ctx.write_all(2, fsencode(f"sed: {e}\n"))
        return 4
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await sed.flush()
        await ctx.write_all(2, fsencode(f"sed: {strerror(e) if e.code != 'ETIME' else e.message}\n"))
        return 4
    finally:
        await sed.flush()
        for fd in sed.wfds.values():
            try:
                await ctx.close(fd)
            except KernelError:
                pass
    return sed.status


async def _in_place(sed: _Sed, name: str, suffix: str) -> None:
    ctx = sed.ctx
    import stat as _stat

    try:
        st = await ctx.stat(name)
    except KernelError as e:
        await sed.warn(f"can't read {name}: {strerror(e)}")
        sed.status = 2
        return
    if not _stat.S_ISREG(st.mode):
        await sed.warn(f"couldn't edit {name}: not a regular file")
        sed.status = 4
        return
    directory, _, base = name.rpartition("/")
    tmp = (directory + "/" if directory else "") + f".sed{ctx.getpid()}{base}"
    fd = await ctx.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, st.mode & 0o7777)
    saved = sed.out_fd
    sed.out_fd = fd
    sed.missing_nl[fd] = False
    inp = _Input(sed, [name])
    try:
        await inp.start_file()
        try:
            await sed.run(inp)
        finally:
            await sed.flush()
            await ctx.close(fd)
            sed.out_fd = saved
            if suffix:
                if "*" in suffix:
                    backup = suffix.replace("*", base)
                    if "/" not in backup:
                        backup = (directory + "/" if directory else "") + backup
                else:
                    backup = name + suffix
                await ctx.rename(name, backup)
            await ctx.rename(tmp, name)
    except BaseException:
        raise


def _fast_sub(cmds: list[Cmd]) -> bool:
    if len(cmds) != 1:
        return False
    c = cmds[0]
    return (
        c.name == "s"
        and c.a1 is None
        and not c.negate
        and c.gflag
        and c.nth == 1
        and not c.pflag
        and not c.wfile
        and c.rx is not None
        and "M" not in c.label
    )


async def _run_fast(sed: _Sed, cmd: Cmd, files: list[str]) -> None:
    """``sed s/x/y/g`` on whole buffers of lines (see the module docstring)."""
    ctx = sed.ctx
    rx = posixre.compile(cmd.text, extended=cmd.rx.extended, icase="I" in cmd.label, dialect="sed", lines=True)
    repl = cmd.repl
    rest = b""
    for name in files:
        if name == "-":
            fd = 0
        else:
            try:
                import stat as _stat

                st = await ctx.stat(name)
                if _stat.S_ISDIR(st.mode):
                    raise SedPanic(f"read error on {name}: Is a directory")
                fd = await ctx.open(name)
            except KernelError as e:
                await sed.warn(f"can't read {name}: {strerror(e)}")
                sed.status = 2
                continue
        try:
            while True:
                data = await ctx.read(fd, CHUNK)
                if not data:
                    break
                if rest:
                    data = rest + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1 :]
                await ctx.write_all(1, rx.sub(repl, data[:cut], all=True)[0] + b"\n")
        finally:
            if fd:
                await ctx.close(fd)
        if rest and name != files[-1]:
            # a file without a final newline: sed adds one before the next file's lines
            await ctx.write_all(1, rx.sub(repl, rest, all=True)[0] + b"\n")
            rest = b""
    if rest:
        await ctx.write_all(1, rx.sub(repl, rest, all=True)[0])


PROGRAMS = {"sed": prog_sed}
