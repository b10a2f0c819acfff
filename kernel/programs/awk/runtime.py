"""The state of one awk run: the current record and its fields, the special variables, the
input sources and output streams.  Every byte in or out goes through ``ctx``; commands
(``cmd | getline``, ``print | cmd``, ``system``) run as ``sh -c`` kernel processes.

Records are split from 64 KiB reads in bulk (one ``bytes.split`` per chunk for a one-byte
``RS``) and handed to the compiled rules one by one; fields are split only when the rules
ask for one, and ``$0`` is rebuilt from them only when it is read after a field changed.
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable

from kernel.errors import KernelError
from kernel.programs import posixre
from kernel.programs.awk.lexer import unescape
from kernel.programs.awk.values import UNINIT, AwkArray, AwkFatal, StrNum, fmt_num, to_num
from kernel.programs.common import fsencode, strerror
from kernel.syscalls import O_APPEND, O_CLOEXEC, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY

CHUNK = 65536
EMPTY = StrNum(b"")
_ODD_SPACE = re.compile(rb"[\r\v\f]").search
_BLANKS = re.compile(rb"[ \t\n]+")
_NAME_ASSIGN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*=")


class NextRecord(Exception):
    """``next``."""


class NextFile(Exception):
    """``nextfile``."""


class AwkExit(Exception):
    """``exit [code]``."""

    def __init__(self, code: int | None) -> None:
        self.code = code


def _literal_leading_ops(pat: bytes) -> bytes:
    """gawk's regex syntax takes ``*``, ``+``, ``?`` and ``{`` with nothing before them (at the
    start, after ``(`` or ``|``) literally; posixre's POSIX dialect would reject them."""
    if not any(c in pat for c in b"*+?{"):
        return pat
    out = bytearray()
    i, n = 0, len(pat)
    prev = -1            # the previous significant byte: -1 at the start
    while i < n:
        c = pat[i]
        if c == 92 and i + 1 < n:
            out += pat[i:i + 2]
            prev = 0
            i += 2
            continue
        if c == 91:      # a bracket expression is copied whole
            j = i + 1
            if j < n and pat[j] == 94:
                j += 1
            if j < n and pat[j] == 93:
                j += 1
            while j < n and pat[j] != 93:
                if pat[j] == 91 and j + 1 < n and pat[j + 1] in b":.=":
                    k = pat.find(bytes([pat[j + 1], 93]), j + 2)
                    j = k + 2 if k >= 0 else n
                    continue
                j += 1
            out += pat[i:j + 1]
            prev = 0
            i = j + 1
            continue
        if c in b"*+?{" and prev in (-1, 40, 124):
            out.append(92)
        out.append(c)
        prev = c if c in (40, 124) else 0
        i += 1
    return bytes(out)


def awk_regex(src: bytes) -> posixre.PosixRegex:
    """A regex written in awk (literal or dynamic): awk's escapes first, then POSIX ERE."""
    try:
        return posixre.compile(_literal_leading_ops(unescape(src, regex=True)), extended=True,
                               dialect="posix")
    except KernelError as e:
        raise AwkFatal(f"invalid regexp: {e.message}: /{src.decode('latin-1')}/") from None


def rx_test(rx: posixre.PosixRegex) -> Callable[[bytes], bool]:
    """A fast 'does it match anywhere' for a compiled regex."""
    lit = rx.literal
    if lit is not None:
        return lambda s: lit in s
    if rx.engine == "re2":
        compiled: Any = rx.compiled
        found = compiled.search   # existence only: no spans, no Match object
        return lambda s: found(s) is not None
    search = rx.search
    return lambda s: search(s) is not None


class Reader:
    """Records from one fd, split by the run's current RS."""

    def __init__(self, rt: "Runtime", fd: int, owned: bool, name: str) -> None:
        self.rt, self.fd, self.owned, self.name = rt, fd, owned, name
        self.buf = b""
        self.pending: list[bytes] = []   # split records, last first
        self.sep = b"\n"                 # the separator that made ``pending``
        self.eof = False
        self.started = False
        self.pid = 0
        self.odd = True                  # the last batch may hold \r, \v or \f

    async def _more_until(self, sep: bytes) -> bool:
        """Read until a chunk holds *sep* (or the end): a long line is joined once, not per read."""
        pieces = [self.buf] if self.buf else []
        self.buf = b""
        got = False
        while await self._more():
            got = True
            pieces.append(self.buf)
            found = sep in self.buf
            self.buf = b""
            if found:
                break
        self.buf = b"".join(pieces)
        return got

    async def _more(self) -> bool:
        if self.eof:
            return False
        try:
            data = await self.rt.ctx.read(self.fd, CHUNK)
        except KernelError as e:
            if e.code == "EISDIR":
                raise AwkFatal(f"cannot read `{self.name}': Is a directory") from None
            raise
        if not data:
            self.eof = True
            return False
        self.buf = self.buf + data if self.buf else data
        return True

    def _unsplit(self) -> None:
        if self.pending:
            self.pending.reverse()
            self.buf = self.sep.join(self.pending) + self.sep + self.buf
            self.pending = []

    async def next(self) -> bytes | None:
        """The next record (RT set), or None at the end."""
        rt = self.rt
        mode = rt.rs_mode
        if mode == "char":
            sep = rt.rs_bytes
            if self.pending:
                if self.sep == sep:
                    rt.RT = sep
                    return self.pending.pop()
                self._unsplit()
            while True:
                cut = self.buf.rfind(sep)
                if cut >= 0:
                    recs = self.buf[:cut].split(sep)
                    self.buf = self.buf[cut + 1:]
                    recs.reverse()
                    self.pending, self.sep = recs, sep
                    rt.RT = sep
                    return recs.pop()
                if not await self._more_until(sep):
                    if self.buf:
                        rec, self.buf = self.buf, b""
                        rt.RT = EMPTY
                        return rec
                    return None
        self._unsplit()
        para = mode == "para"
        rx = rt.rs_regex
        assert rx is not None
        while True:
            if para and not self.started:
                stripped = self.buf.lstrip(b"\n")
                if not stripped and not self.eof:
                    self.buf = b""
                    if not await self._more():
                        return None
                    continue
                self.buf = stripped
                self.started = True
            m = rx.search(self.buf) if self.buf else None
            if m is not None and m.end() > m.start() and (m.end() < len(self.buf) or self.eof):
                rec = self.buf[:m.start()]
                rt.RT = StrNum(self.buf[m.start():m.end()])
                self.buf = self.buf[m.end():]
                if para and not self.buf and self.eof:
                    self.started = False
                return rec
            if self.eof:     # (searched once more after the end: a match may end the data)
                if not self.buf:
                    return None
                rec, self.buf = self.buf, b""
                if para:
                    stripped = rec.rstrip(b"\n")
                    rt.RT = StrNum(rec[len(stripped):])
                    rec = stripped
                    if not rec:
                        return None
                else:
                    rt.RT = EMPTY
                return rec
            await self._more()

    async def batch(self) -> list[bytes] | None:
        """Every complete record of the next read, in order (one-byte RS), or None at the end."""
        if self.pending:
            self._unsplit()
        sep = self.rt.rs_bytes
        while True:
            cut = self.buf.rfind(sep)
            if cut >= 0:
                region = self.buf[:cut]
                self.odd = _ODD_SPACE(region) is not None
                recs = region.split(sep)
                self.buf = self.buf[cut + 1:]
                self.rt.RT = sep
                return recs
            if not await self._more_until(sep):
                if self.buf:
                    rec, self.buf = self.buf, b""
                    self.odd = True
                    self.rt.RT = EMPTY
                    return [rec]
                return None

    async def close(self) -> int:
        status = 0
        if self.owned:
            try:
                await self.rt.ctx.close(self.fd)
            except KernelError:
                pass
        if self.pid:
            status = await self.rt.reap(self.pid)
        return status


class Output:
    """An output stream: a file (``>``, ``>>``) or a command's stdin (``|``)."""

    def __init__(self, fd: int, pid: int = 0, unbuffered: bool = False) -> None:
        self.fd, self.pid, self.unbuffered = fd, pid, unbuffered
        self.parts: list[bytes] = []
        self.size = 0


class Runtime:
    """One run's state; the compiled program reads and sets it through these names."""

    def __init__(self, ctx: Any, ns: dict[str, Any]) -> None:
        self.ctx = ctx
        self.ns = ns
        self.rec = b""
        self.fields: list[bytes] | None = []
        self.nf = 0
        self.dirty = False
        self.NR = 0.0
        self.FNR = 0.0
        self.RSTART = 0.0
        self.RLENGTH = -1.0
        self.RT: Any = EMPTY
        self.FILENAME: Any = EMPTY
        self.FS: Any = b" "
        self.OFS: Any = b" "
        self.ORS: Any = b"\n"
        self.RS: Any = b"\n"
        self.SUBSEP: Any = b"\x1c"
        self.CONVFMT: Any = b"%.6g"
        self.OFMT: Any = b"%.6g"
        self.ofs, self.ors, self.subsep = b" ", b"\n", b"\x1c"
        self.convfmt = self.ofmt = b"%.6g"
        self.rs_mode, self.rs_bytes = "char", b"\n"
        self.rs_regex: posixre.PosixRegex | None = None
        self.splitter: Callable[[bytes], list[bytes]] = _split_default
        self.fs_default = True
        #: When the program reads only $1..$K (never NF, never assigns a field): split no further.
        self.split_upto: Callable[[bytes], list[bytes]] | None = None
        self.obuf: list[bytes] = []
        self.osize = 0
        self.tty_out = False
        self.outputs: dict[bytes, Output] = {}
        self.inputs: dict[bytes, Reader] = {}
        self.reader: Reader | None = None
        self.argi = 1
        self.used_file = False
        self.status = 0
        self.ticks = 10000
        self.seed = 1.0
        self.random = random.Random(1)
        self.prog_has_endfile = False
        self.warnings: list[str] = []   # from builtins (which cannot write): shown at the end

    # -- conversions the compiled code uses (closures over this run's CONVFMT/OFMT) ----------
    def make_helpers(self) -> dict[str, Any]:
        rt = self

        def to_str(v: Any) -> bytes:
            if type(v) is float:
                if v.is_integer():
                    return b"%d" % v
                return fmt_num(v, rt.convfmt)
            if isinstance(v, bytes):
                return v
            raise AwkFatal("attempt to use array in a scalar context")

        def to_out(v: Any) -> bytes:
            if type(v) is float:
                if v.is_integer():
                    return b"%d" % v
                return fmt_num(v, rt.ofmt)
            if isinstance(v, bytes):
                return v
            raise AwkFatal("attempt to use array in a scalar context")

        return {"_s": to_str, "_o": to_out}

    # -- special variables -----------------------------------------------------------------
    def setv(self, name: str, v: Any) -> Any:
        s = self.ns["_s"]
        if name in ("NR", "FNR", "RSTART", "RLENGTH"):
            setattr(self, name, to_num(v))
            return v
        setattr(self, name, v)
        if name == "FS":
            if self.fields is None:
                self.split_record()     # the current record keeps the FS it was read with
            self.splitter = self.make_splitter(s(v))
            self.fs_default = s(v) == b" "
        elif name == "OFS":
            self.ofs = s(v)
        elif name == "ORS":
            self.ors = s(v)
        elif name == "SUBSEP":
            self.subsep = s(v)
        elif name == "CONVFMT":
            self.convfmt = s(v)
        elif name == "OFMT":
            self.ofmt = s(v)
        elif name == "RS":
            rs = s(v)
            if rs == b"":
                self.rs_mode, self.rs_regex = "para", posixre.compile(b"\n\n+", extended=True, dialect="posix")
            elif len(rs) == 1:
                self.rs_mode, self.rs_bytes = "char", rs
            else:
                self.rs_mode, self.rs_regex = "regex", awk_regex(rs)
            self.splitter = self.make_splitter(s(self.FS))
        return v

    def make_splitter(self, fs: bytes, records: bool = True) -> Callable[[bytes], list[bytes]]:
        """How FS (and, for *records*, RS="" mode's extra newline) cut a string into fields."""
        para = records and self.rs_mode == "para"
        if fs == b" ":
            return _split_default
        if fs == b"":
            return lambda r: [r[i:i + 1] for i in range(len(r))]
        if len(fs) == 1 and fs != b"\\":
            # RS="": a newline also separates fields, for a one-character FS only (gawk)
            if not para or fs == b"\n":
                return lambda r: r.split(fs) if r else []
            rx = posixre.compile(b"[" + (b"\\" + fs if fs in b"^]\\" else fs) + b"\n]", extended=True,
                                 dialect="posix")
        else:
            if fs == b"\\":
                fs = b"\\\\"
            rx = awk_regex(fs)
        return lambda r: regex_split(rx, r)

    # -- the record --------------------------------------------------------------------------
    def set_record(self, rec: bytes) -> None:
        self.rec = rec
        self.fields = None
        self.dirty = False

    def split_record(self) -> list[bytes]:
        f = self.fields = self.splitter(self.rec)
        self.nf = len(f)
        return f

    def field(self, i: int) -> Any:
        f = self.fields
        if f is None:
            f = self.fields = self.splitter(self.rec)
            self.nf = len(f)
        if i <= self.nf:
            if i > 0:
                return StrNum(f[i - 1])
            if i == 0:
                return StrNum(self.get0())
            raise AwkFatal(f"attempt to access field {i}")
        return EMPTY

    def field_num(self, i: int) -> float:
        """``$i`` where a number is wanted: no StrNum is made."""
        f = self.fields
        if f is None:
            f = self.fields = self.splitter(self.rec)
            self.nf = len(f)
        if 0 < i <= self.nf:
            v = f[i - 1]
            return float(v) if v.isdigit() else to_num(v)
        return to_num(self.field(i))

    def field_str(self, i: int) -> bytes:
        """``$i`` where a string is wanted."""
        f = self.fields
        if f is None:
            f = self.fields = self.splitter(self.rec)
            self.nf = len(f)
        if 0 < i <= self.nf:
            return f[i - 1]
        return bytes(self.field(i))

    def fields_join(self, sep: bytes, spec: tuple[Any, int, tuple[int, ...]]) -> bytes:
        """``print $2, $1``: the fields joined by OFS in one call (*spec*: an itemgetter of
        the 0-based indices, the highest field number, the field numbers)."""
        f = self.fields
        if f is None:
            f = self.fields = self.splitter(self.rec)
            self.nf = len(f)
        get, top, idxs = spec
        if top <= self.nf:
            return sep.join(get(f))
        nf = self.nf
        return sep.join([f[i - 1] if i <= nf else b"" for i in idxs])

    def field_index(self, v: Any) -> int:
        i = int(to_num(v))
        if i < 0:
            raise AwkFatal(f"attempt to access field {i}")
        return i

    def get0(self) -> bytes:
        if self.dirty:
            if self.fields is not None:   # None: a new record came since (the batch loop
                self.rec = self.ofs.join(self.fields)   # skips the flag when nothing sets it)
            self.dirty = False
        return self.rec

    def get0s(self) -> StrNum:
        return StrNum(self.get0())

    def set0(self, v: Any) -> Any:
        self.set_record(self.ns["_s"](v))
        return v

    def set_field(self, i: int, v: Any) -> Any:
        if i == 0:
            return self.set0(v)
        if i < 0:
            raise AwkFatal(f"attempt to access field {i}")
        if i > 1 << 20:
            raise AwkFatal(f"field index {i} is too large")
        f = self.fields
        if f is None:
            f = self.split_record()
        if i > self.nf:
            f.extend([b""] * (i - self.nf))
            self.nf = i
        f[i - 1] = self.ns["_s"](v)
        self.dirty = True
        return v

    def get_nf(self) -> float:
        if self.fields is None:
            self.split_record()
        return float(self.nf)

    def set_nf(self, v: Any) -> Any:
        n = int(to_num(v))
        if n < 0:
            raise AwkFatal(f"NF set to negative value {n}")
        if n > 1 << 20:
            raise AwkFatal(f"NF set to too large a value {n}")
        f = self.fields
        if f is None:
            f = self.split_record()
        if n < self.nf:
            del f[n:]
        else:
            f.extend([b""] * (n - self.nf))
        self.nf = n
        self.dirty = True
        return v

    # -- main input ---------------------------------------------------------------------------
    def next_sync(self) -> bool:
        """The next record when one is already split and waiting (the per-record fast path)."""
        rd = self.reader
        if rd is not None and rd.pending and rd.sep == self.rs_bytes and self.rs_mode == "char":
            self.rec = rd.pending.pop()
            self.fields = None
            self.dirty = False
            self.NR += 1.0
            self.FNR += 1.0
            return True
        return False

    async def next_batch(self) -> list[bytes] | None:
        """The next records of the main input in bulk (for programs that never read it any
        other way); None at the end of the last file."""
        while True:
            if self.reader is None:
                if not await self.open_next():
                    return None
            rd = self.reader
            assert rd is not None
            if self.rs_mode == "char":
                recs = await rd.batch()
            else:
                rec = await rd.next()
                recs = None if rec is None else [rec]
            if recs is not None:
                if self.fs_default:
                    # one scan per read instead of one per record: plain bytes.split is awk's
                    # default splitting unless \r, \v or \f appear
                    if rd.odd or self.rs_mode != "char":
                        self.splitter = _split_default
                    else:
                        self.splitter = self.split_upto or _bytes_split
                return recs
            await self.end_file()

    async def next_async(self) -> bool:
        rec = await self.main_record()
        if rec is None:
            return False
        self.set_record(rec)
        self.NR += 1.0
        self.FNR += 1.0
        return True

    async def main_record(self) -> bytes | None:
        while True:
            if self.reader is None:
                if not await self.open_next():
                    return None
            assert self.reader is not None
            rec = await self.reader.next()
            if rec is not None:
                return rec
            await self.end_file()

    async def open_next(self) -> bool:
        ns = self.ns
        argv = ns["G_ARGV"]
        while True:
            argc = int(to_num(ns["G_ARGC"]))
            if self.argi >= argc:
                if self.used_file:
                    return False
                self.used_file = True
                self.FILENAME = EMPTY
                await self.start_reader(0, False, "-")
                return True
            key = b"%d" % self.argi
            self.argi += 1
            arg = argv.get(key, UNINIT)
            name = ns["_s"](arg)
            if not name:
                continue
            if _NAME_ASSIGN.match(name):
                var, _, val = name.partition(b"=")
                self.assign_var(var.decode(), StrNum(unescape(val)))
                continue
            self.used_file = True
            self.FILENAME = StrNum(name)
            text = name.decode("utf-8", "surrogateescape")
            if name in (b"-", b"/dev/stdin"):
                await self.start_reader(0, False, text)
                return True
            try:
                fd = await self.ctx.open(text, O_RDONLY | O_CLOEXEC)
            except KernelError as e:
                raise AwkFatal(f"cannot open file `{text}' for reading: {strerror(e)}") from None
            try:
                st = await self.ctx.fstat(fd)
                import stat as _stat
                if _stat.S_ISDIR(st.mode):
                    await self.ctx.close(fd)
                    await self.warn(f"command line argument `{text}' is a directory: skipped", fatal=False)
                    continue
            except (KernelError, AttributeError):
                pass
            await self.start_reader(fd, True, text)
            return True

    async def start_reader(self, fd: int, owned: bool, name: str) -> None:
        self.reader = Reader(self, fd, owned, name)
        self.FNR = 0.0
        bf = self.ns.get("_beginfile")
        if bf is not None:
            await bf()

    async def end_file(self) -> None:
        rd = self.reader
        if rd is None:
            return
        ef = self.ns.get("_endfile")
        if ef is not None:
            await ef()
        self.reader = None
        await rd.close()

    async def nextfile(self) -> None:
        await self.end_file()

    def assign_var(self, name: str, v: Any) -> None:
        """A ``var=value`` operand or ``-v``: special variables through their setters."""
        if name == "NF":
            self.set_nf(v)
        elif name in _SPECIALS:
            self.setv(name, v)
        else:
            cur = self.ns.get("G_" + name)
            if isinstance(cur, AwkArray):
                raise AwkFatal(f"cannot use array `{name}' as a scalar")
            self.ns["G_" + name] = v

    # -- getline --------------------------------------------------------------------------------
    async def getline_main(self) -> tuple[float, bytes]:
        await self.flush_stdout_if_tty()
        rec = await self.main_record()
        if rec is None:
            return 0.0, b""
        self.NR += 1.0
        self.FNR += 1.0
        return 1.0, rec

    async def getline_main0(self) -> float:
        st, rec = await self.getline_main()
        if st > 0:
            self.set_record(rec)
        return st

    async def _input(self, name: bytes, cmd: bool) -> Reader | None:
        rd = self.inputs.get(name)
        if rd is not None:
            return rd
        ctx = self.ctx
        text = name.decode("utf-8", "surrogateescape")
        if cmd:
            await self.flush_all()
            r, w = await ctx.pipe(O_CLOEXEC)
            try:
                pid = await ctx.spawn(["sh", "-c", text], stdout=w)
            except KernelError:
                await ctx.close(r)
                await ctx.close(w)
                return None
            await ctx.close(w)
            rd = Reader(self, r, True, text)
            rd.pid = pid
        elif name in (b"-", b"/dev/stdin"):
            rd = Reader(self, 0, False, text)
        else:
            try:
                fd = await ctx.open(text, O_RDONLY | O_CLOEXEC)
            except KernelError:
                return None
            rd = Reader(self, fd, True, text)
        self.inputs[name] = rd
        return rd

    async def getline_from(self, name: bytes, cmd: bool) -> tuple[float, bytes]:
        rd = await self._input(name, cmd)
        if rd is None:
            return -1.0, b""
        try:
            rec = await rd.next()
        except AwkFatal:
            return -1.0, b""
        if rec is None:
            return 0.0, b""
        return 1.0, rec   # gawk leaves NR alone for `cmd | getline' too

    async def getline_from0(self, name: bytes, cmd: bool) -> float:
        st, rec = await self.getline_from(name, cmd)
        if st > 0:
            self.set_record(rec)
        return st

    # -- output -----------------------------------------------------------------------------
    def emit(self, data: bytes) -> bool:
        """Buffer stdout; True when the buffer should be written now."""
        self.obuf.append(data)
        self.osize += len(data)
        return self.osize >= CHUNK or self.tty_out

    async def flush_stdout(self) -> None:
        if self.obuf:
            data = b"".join(self.obuf)
            self.obuf.clear()   # in place: compiled code may hold the list's append already
            self.osize = 0
            await self.ctx.write_all(1, data)

    async def flush_stdout_if_tty(self) -> None:
        if self.tty_out and self.obuf:
            await self.flush_stdout()

    async def redirect(self, kind: str, dest: bytes, data: bytes) -> None:
        out = self.outputs.get(dest)
        if out is None:
            out = await self._open_output(kind, dest)
        if out.fd == 1 and not out.pid and dest in (b"/dev/stdout", b"-"):
            if self.emit(data):
                await self.flush_stdout()
            return
        out.parts.append(data)
        out.size += len(data)
        if out.size >= CHUNK or out.unbuffered:
            await self._flush_out(out)

    async def _open_output(self, kind: str, dest: bytes) -> Output:
        ctx = self.ctx
        text = dest.decode("utf-8", "surrogateescape")
        if kind == "|":
            await self.flush_all()
            r, w = await ctx.pipe(O_CLOEXEC)
            try:
                pid = await ctx.spawn(["sh", "-c", text], stdin=r)
            finally:
                await ctx.close(r)
            out = Output(w, pid)
        elif dest in (b"/dev/stdout", b"-"):
            out = Output(1)
        elif dest == b"/dev/stderr":
            await self.flush_stdout()
            out = Output(2, unbuffered=True)
        else:
            flags = O_WRONLY | O_CREAT | O_CLOEXEC | (O_APPEND if kind == ">>" else O_TRUNC)
            try:
                fd = await ctx.open(text, flags, 0o666)
            except KernelError as e:
                raise AwkFatal(f"can't redirect to `{text}' ({strerror(e)})") from None
            out = Output(fd)
        self.outputs[dest] = out
        return out

    async def _flush_out(self, out: Output) -> None:
        if out.parts:
            data = b"".join(out.parts)
            out.parts, out.size = [], 0
            if out.fd == 2:
                await self.flush_stdout()
            try:
                await self.ctx.write_all(out.fd, data)
            except KernelError as e:
                if e.code != "EPIPE" or not out.pid:
                    raise

    async def flush_all(self) -> None:
        await self.flush_stdout()
        for out in list(self.outputs.values()):
            await self._flush_out(out)

    async def fflush(self, name: bytes | None) -> float:
        if name is None:
            await self.flush_all()
            return 0.0
        out = self.outputs.get(name)
        if out is None:
            return -1.0
        await self._flush_out(out)
        return 0.0

    async def close(self, name: bytes) -> float:
        status = -1.0
        out = self.outputs.pop(name, None)
        if out is not None:
            await self._flush_out(out)
            if out.fd > 2:
                try:
                    await self.ctx.close(out.fd)
                except KernelError:
                    pass
            status = float(await self.reap(out.pid)) if out.pid else 0.0
        rd = self.inputs.pop(name, None)
        if rd is not None:
            status = float(await rd.close())
        return status

    async def reap(self, pid: int) -> int:
        try:
            _, st = await self.ctx.waitpid(pid)
        except KernelError:
            return -1
        if st & 0x7F:
            return 256 + (st & 0x7F)
        return (st >> 8) & 0xFF

    async def system(self, cmd: bytes) -> float:
        await self.flush_all()
        try:
            pid = await self.ctx.spawn(["sh", "-c", cmd.decode("utf-8", "surrogateescape")])
        except KernelError as e:
            await self.warn(f"system: {strerror(e)}", fatal=False)
            return -1.0
        return float(await self.reap(pid))

    async def close_all(self) -> None:
        """At exit, as gawk: redirections are closed (a ``sort`` pipe writes its output now),
        then what is still buffered for stdout follows."""
        for name in list(self.outputs):
            await self.close(name)
        for name in list(self.inputs):
            await self.close(name)
        await self.flush_stdout()
        await self.show_warnings()

    async def show_warnings(self) -> None:
        for w in dict.fromkeys(self.warnings):
            await self.ctx.write_all(2, fsencode(f"awk: cmd. line:1: warning: {w}\n"))
        self.warnings.clear()

    async def tick(self) -> None:
        """A loop's periodic yield: other processes run, a kill lands."""
        self.ticks = 10000
        await self.ctx.sched_yield()

    async def warn(self, text: str, fatal: bool = False) -> None:
        await self.flush_stdout()
        await self.ctx.write_all(2, fsencode(f"awk: {'fatal: ' if fatal else 'warning: ' if False else ''}{text}\n"))


_SPECIALS = frozenset({"FS", "OFS", "ORS", "RS", "SUBSEP", "CONVFMT", "OFMT", "NR", "FNR", "RSTART",
                       "RLENGTH", "FILENAME", "RT"})


_bytes_split = bytes.split


def _split_default(r: bytes) -> list[bytes]:
    if _ODD_SPACE(r) is None:
        return r.split()
    return [p for p in _BLANKS.split(r) if p] if r.strip(b" \t\n") else []


def regex_split(rx: posixre.PosixRegex, r: bytes) -> list[bytes]:
    """Fields of *r* cut at each non-empty match of *rx* (a leading match makes an empty field)."""
    if not r:
        return []
    out = []
    last = 0
    for m in rx.finditer(r):
        s, e = m.start(), m.end()
        if s == e:
            continue
        out.append(r[last:s])
        last = e
    out.append(r[last:])
    return out
