"""The text family, first part: head, tail, wc, tee, rev, tac — GNU coreutils look-alikes over
``ctx`` only, working on bytes in 64 KiB reads.

``PROGRAMS`` here is the whole family: it gathers the dicts of the other ``text_*`` modules
(one module per job: grep, sed, sort, the column tools, the byte tools) so that the userland
registers the family with one entry.
"""

from __future__ import annotations

import re
import stat as _stat
from typing import Any

from kernel.errors import KernelError
from kernel.programs.bytecount import count_byte, count_utf8_starts
from kernel.programs.common import CHUNK, Writer
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import Run, fsencode, parse_count, quote, strerror, usage_error
from kernel.syscalls import SEEK_CUR, SEEK_END, SEEK_SET

# ============================================================================ head

HEAD = Spec(
    "head",
    "[OPTION]... [FILE]...",
    "Print the first 10 lines of each FILE to standard output.",
    [
        Opt(
            "c",
            "bytes",
            arg="[-]NUM",
            help="print the first NUM bytes of each file; with the leading '-', "
            "print all but the last NUM bytes of each file",
        ),
        Opt(
            "n",
            "lines",
            arg="[-]NUM",
            help="print the first NUM lines instead of the first 10; with the "
            "leading '-', print all but the last NUM lines of each file",
        ),
        Opt("q", "quiet", help="never print headers giving file names", dest="quiet"),
        Opt(None, "silent", help="same as --quiet", dest="quiet"),
        Opt("v", "verbose", help="always print headers giving file names"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)

_OBSOLETE_HEAD = re.compile(r"-(\d+)([bkm]?)([cqlvz]*)$")


def _obsolete_head(argv: list[str]) -> list[str]:
    """``head -5`` / ``head -5c`` (the historical first-argument form) into ``-n 5`` / ``-c 5``."""
    if len(argv) < 2:
        return argv
    m = _OBSOLETE_HEAD.match(argv[1])
    if not m:
        return argv
    num, mult, flags = m.groups()
    unit = "c" if "c" in flags else "n"
    mult = {"b": "b", "k": "K", "m": "M"}.get(mult, "")
    new = [f"-{unit}", num + mult]
    for f in flags:
        if f in "qvz":
            new.append(f"-{f}")
    return [argv[0], *new, *argv[2:]]


def _signed_count(text: str) -> tuple[bool, int]:
    """(negative, n) for head's ``[-]NUM``."""
    neg = text.startswith("-")
    body = text[1:] if neg or text.startswith("+") else text
    return neg, parse_count(body)


async def _header(out: Writer, name: str, first: bool) -> None:
    shown = "standard input" if name == "-" else name
    await out.write(("" if first else "\n") + f"==> {shown} <==\n")


async def prog_head(ctx: Any) -> int:
    args = await parse_or_exit(ctx, HEAD, _obsolete_head(list(ctx.argv)))
    if isinstance(args, int):
        return args
    run = Run(ctx, "head")
    use_bytes = False
    spec_text = "10"
    for key, value in args.order:
        if key in ("bytes", "lines"):
            use_bytes, spec_text = key == "bytes", value
    try:
        neg, count = _signed_count(spec_text)
    except ValueError:
        what = "number of bytes" if use_bytes else "number of lines"
        await run.err(f"invalid {what}: {quote(spec_text)}")
        return 1
    delim = 0 if args.get("zero_terminated") else 10
    files = args.operands or ["-"]
    headers = bool(args.get("verbose")) or (len(files) > 1 and not args.get("quiet"))
    if args.get("quiet"):
        for key, _ in args.order:
            if key == "verbose":
                headers = True
            elif key == "quiet":
                headers = False
    out = Writer(ctx)
    first = True
    for name in files:
        fd = await run.open(name, quoted=True)
        if fd is None:
            continue
        if headers:
            await _header(out, name, first)
        first = False
        try:
            if use_bytes:
                await (_head_drop_bytes if neg else _head_bytes)(ctx, fd, out, count)
            else:
                await (_head_drop_lines if neg else _head_lines)(ctx, fd, out, count, delim)
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await out.flush()
            await run.err(f"error reading {quote(name)}: {strerror(e)}")
        finally:
            await run.close(fd)
    await out.flush()
    return run.status


async def _head_bytes(ctx: Any, fd: int, out: Writer, n: int) -> None:
    while n > 0:
        data = await ctx.read(fd, min(CHUNK, n))
        if not data:
            return
        await out.write(data)
        n -= len(data)


async def _head_lines(ctx: Any, fd: int, out: Writer, n: int, delim: int) -> None:
    sep = bytes([delim])
    while n > 0:
        data = await ctx.read(fd, CHUNK)
        if not data:
            return
        k = data.count(sep)
        if k < n:
            await out.write(data)
            n -= k
            continue
        pos = -1
        for _ in range(n):
            pos = data.find(sep, pos + 1)
        await out.write(data[: pos + 1])
        # a seekable input is left just after what was printed, as GNU head leaves it
        try:
            await ctx.lseek(fd, pos + 1 - len(data), SEEK_CUR)
        except KernelError:
            pass
        return


async def _head_drop_bytes(ctx: Any, fd: int, out: Writer, n: int) -> None:
    pending = b""
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            return
        pending += data
        if len(pending) > n:
            cut = len(pending) - n
            await out.write(pending[:cut])
            pending = pending[cut:]


async def _head_drop_lines(ctx: Any, fd: int, out: Writer, n: int, delim: int) -> None:
    """All but the last *n* lines: hold back exactly the text that could still be among them."""
    sep = bytes([delim])
    pending = b""
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            break
        pending += data
        if pending.count(sep) > n:
            pos = len(pending)
            for _ in range(n + 1):
                pos = pending.rfind(sep, 0, pos)
            await out.write(pending[: pos + 1])
            pending = pending[pos + 1 :]
    if n == 0:
        await out.write(pending)
    elif pending and not pending.endswith(sep):
        # the unterminated last line is one of the n dropped: one more complete line survives
        i = pending.find(sep)
        if i >= 0 and pending.count(sep) >= n:
            await out.write(pending[: i + 1])


# ============================================================================ tail

TAIL = Spec(
    "tail",
    "[OPTION]... [FILE]...",
    "Print the last 10 lines of each FILE to standard output.",
    [
        Opt(
            "c",
            "bytes",
            arg="[+]NUM",
            help="output the last NUM bytes; or use -c +NUM to output starting with byte NUM of each file",
        ),
        Opt("f", "follow", arg="{name|descriptor}", optional_arg=True, help="output appended data as the file grows"),
        Opt("F", None, help="same as --follow=name --retry"),
        Opt(
            "n",
            "lines",
            arg="[+]NUM",
            help="output the last NUM lines, instead of the last 10; or use -n +NUM to skip NUM-1 lines at the start",
        ),
        Opt(None, "pid", arg="PID", help="with -f, terminate after process ID, PID dies"),
        Opt("q", "quiet", help="never output headers giving file names", dest="quiet"),
        Opt(None, "silent", help="same as --quiet", dest="quiet"),
        Opt(None, "retry", help="keep trying to open a file if it is inaccessible"),
        Opt(
            "s",
            "sleep-interval",
            arg="N",
            help="with -f, sleep for approximately N seconds (default 1.0) between iterations",
        ),
        Opt("v", "verbose", help="always output headers giving file names"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)

_OBSOLETE_TAIL = re.compile(r"([-+])(\d+)([bcl]?)(f?)$")


def _obsolete_tail(argv: list[str]) -> list[str]:
    """``tail -5``, ``tail +3``, ``tail -5c``, ``tail -3f`` into the modern options."""
    if len(argv) < 2:
        return argv
    m = _OBSOLETE_TAIL.match(argv[1])
    if not m or (m.group(1) == "+" and len(argv) > 3):
        return argv
    sign, num, unit, follow = m.groups()
    count = num
    if unit == "b":
        count = str(int(num) * 512)
    new = ["-c" if unit in ("b", "c") else "-n", ("+" if sign == "+" else "") + count]
    if follow:
        new.append("-f")
    return [argv[0], *new, *argv[2:]]


async def prog_tail(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TAIL, _obsolete_tail(list(ctx.argv)))
    if isinstance(args, int):
        return args
    run = Run(ctx, "tail")
    use_bytes = False
    spec_text = "10"
    for key, value in args.order:
        if key in ("bytes", "lines"):
            use_bytes, spec_text = key == "bytes", value
    from_start = spec_text.startswith("+")
    try:
        body = spec_text[1:] if spec_text[:1] in "+-" else spec_text
        count = parse_count(body)
    except ValueError:
        what = "number of bytes" if use_bytes else "number of lines"
        await run.err(f"invalid {what}: {quote(spec_text)}")
        return 1
    follow = "follow" in args or bool(args.get("F"))
    interval = 1.0
    if args.get("sleep_interval") is not None:
        try:
            interval = float(args["sleep_interval"])
            if interval < 0:
                raise ValueError
        except ValueError:
            await run.err(f"invalid number of seconds: {quote(args['sleep_interval'])}")
            return 1
    pid = None
    if args.get("pid") is not None:
        try:
            pid = int(args["pid"])
        except ValueError:
            await run.err(f"invalid PID: {quote(args['pid'])}")
            return 1
    delim = 0 if args.get("zero_terminated") else 10
    files = args.operands or ["-"]
    headers = bool(args.get("verbose")) or (len(files) > 1 and not args.get("quiet"))
    out = Writer(ctx)
    first = True
    followed: list[tuple[str, int, int]] = []  # (name, fd, position)
    for name in files:
        fd = await run.open(name, quoted=True)
        if fd is None:
            continue
        if headers:
            await _header(out, name, first)
        first = False
        keep = False
        try:
            st = await ctx.fstat(fd)
            regular = _stat.S_ISREG(st.mode)
            if from_start:
                await _tail_from(ctx, fd, out, count, use_bytes, delim)
            elif regular:
                await _tail_seekable(ctx, fd, out, count, use_bytes, delim, st.size)
            else:
                await _tail_stream(ctx, fd, out, count, use_bytes, delim)
            if follow and not _stat.S_ISFIFO(st.mode):
                pos = await ctx.lseek(fd, 0, SEEK_CUR) if regular else 0
                followed.append((name, fd, pos))
                keep = True
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await out.flush()
            await run.err(f"error reading {quote(name)}: {strerror(e)}")
        finally:
            if not keep:
                await run.close(fd)
    await out.flush()
    if followed:
        await _follow(ctx, run, out, followed, interval, pid, headers)
    return run.status


async def _tail_from(ctx: Any, fd: int, out: Writer, n: int, use_bytes: bool, delim: int) -> None:
    """``+N``: skip N-1 units, then copy the rest."""
    skip = max(n - 1, 0)
    sep = bytes([delim])
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            return
        if skip:
            if use_bytes:
                if len(data) <= skip:
                    skip -= len(data)
                    continue
                data, skip = data[skip:], 0
            else:
                k = data.count(sep)
                if k < skip:
                    skip -= k
                    continue
                pos = -1
                for _ in range(skip):
                    pos = data.find(sep, pos + 1)
                data, skip = data[pos + 1 :], 0
        await out.write(data)


def _last_lines(data: bytes, n: int, sep: bytes) -> bytes:
    """The last *n* lines of *data* (an unterminated tail counts as one)."""
    if n == 0:
        return b""
    pos = len(data)
    if data.endswith(sep):
        pos -= 1
    for _ in range(n):
        pos = data.rfind(sep, 0, pos)
        if pos < 0:
            return data
    return data[pos + 1 :]


async def _tail_seekable(ctx: Any, fd: int, out: Writer, n: int, use_bytes: bool, delim: int, size: int) -> None:
    """Read backwards from the end in 64 KiB blocks until enough is held."""
    start = await ctx.lseek(fd, 0, SEEK_CUR)
    if use_bytes:
        begin = max(start, size - n)
        await ctx.lseek(fd, begin, SEEK_SET)
        while True:
            data = await ctx.read(fd, CHUNK)
            if not data:
                break
            await out.write(data)
        return
    sep = bytes([delim])
    blocks: list[bytes] = []
    seen = 0
    end = size
    while end > start:
        begin = max(start, end - CHUNK)
        block = await ctx.pread(fd, end - begin, begin)
        if not block:
            break
        blocks.append(block)
        seen += block.count(sep)
        end = begin
        if seen > n:
            break
    blocks.reverse()
    await out.write(_last_lines(b"".join(blocks), n, sep))
    await ctx.lseek(fd, size, SEEK_SET)
    while True:  # anything appended meanwhile
        data = await ctx.read(fd, CHUNK)
        if not data:
            break
        await out.write(data)


async def _tail_stream(ctx: Any, fd: int, out: Writer, n: int, use_bytes: bool, delim: int) -> None:
    """A pipe: keep only what may still be among the last *n* lines (or bytes)."""
    sep = bytes([delim])
    pending = b""
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            break
        pending += data
        if use_bytes:
            if len(pending) > n + CHUNK:
                pending = pending[len(pending) - n :]
        elif len(pending) > 4 * CHUNK and pending.count(sep) > n + 1:
            pos = len(pending)
            for _ in range(n + 1):
                pos = pending.rfind(sep, 0, pos)
            pending = pending[pos + 1 :]
    if use_bytes:
        await out.write(pending[len(pending) - n :] if n else b"")
    else:
        await out.write(_last_lines(pending, n, sep))


async def _follow(
    ctx: Any, run: Run, out: Writer, files: list[tuple[str, int, int]], interval: float, pid: int | None, headers: bool
) -> None:
    """``-f``: poll each file's size and copy what was appended (a shrunk file starts over)."""
    last = files[-1][0]
    state: list[list[Any]] = [list(f) for f in files]
    while True:
        progressed = False
        for entry in state:
            name, fd, pos = str(entry[0]), int(entry[1]), int(entry[2])
            try:
                st = await ctx.fstat(fd)
            except KernelError:
                continue
            if _stat.S_ISREG(st.mode) and st.size < pos:
                await run.err(f"{name}: file truncated")
                pos = 0
                await ctx.lseek(fd, 0, SEEK_SET)
            if _stat.S_ISREG(st.mode) and st.size == pos:
                continue
            data = await ctx.read(fd, CHUNK)
            if not data:
                entry[2] = pos
                continue
            if headers and name != last:
                await _header(out, name, False)
                last = name
            await out.write(data)
            entry[2] = pos + len(data)
            progressed = True
        await out.flush()
        if pid is not None:
            try:
                await ctx.kill(pid, 0)
            except KernelError as e:
                if e.code == "ESRCH":
                    return
        if not progressed:
            await ctx.sleep(interval)


# ============================================================================ wc

WC = Spec(
    "wc",
    "[OPTION]... [FILE]...",
    "Print newline, word, and byte counts for each FILE, and a total line if more than one FILE is specified.",
    [
        Opt("c", "bytes", help="print the byte counts"),
        Opt("m", "chars", help="print the character counts"),
        Opt("l", "lines", help="print the newline counts"),
        Opt(None, "files0-from", arg="F", help="read input from the files specified by NUL-terminated names in file F"),
        Opt("L", "max-line-length", help="print the maximum display width"),
        Opt("w", "words", help="print the word counts"),
    ],
)

# Bytes that neither make nor end a word in the C locale (wc counts only printable runs).
_NONPRINT = bytes(c for c in range(256) if not (32 <= c < 127) and c not in b" \t\n\v\f\r")
_PRINTABLE_OR_TAB = re.compile(rb"[\t\r\f]")


def _utf8_locale(ctx: Any) -> bool:
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = ctx.getenv(var)
        if value:
            return "UTF-8" in value.upper() or "UTF8" in value.upper()
    return False


class _Counts:
    """One file's counts, kept across 64 KiB chunks (words may straddle two)."""

    __slots__ = ("lines", "words", "chars", "bytes", "maxlen", "in_word", "linepos")

    def __init__(self) -> None:
        self.lines = self.words = self.chars = self.bytes = self.maxlen = 0
        self.in_word = False
        self.linepos = 0

    def add_words(self, data: bytes) -> None:
        text = data.translate(None, _NONPRINT)
        if not text:
            return
        k = len(text.split())
        if self.in_word and not text[:1].isspace():
            k -= 1
        self.words += k
        self.in_word = not text[-1:].isspace()

    def add_width(self, data: bytes) -> None:
        pos = self.linepos
        best = self.maxlen
        for piece in re.split(rb"([\t\n\r\f])", data):
            if not piece:
                continue
            if len(piece) == 1 and piece in b"\t\n\r\f":
                if piece == b"\t":
                    pos += 8 - pos % 8
                else:
                    best = max(best, pos)
                    pos = 0
                continue
            pos += len(piece.translate(None, _NONPRINT + b"\v"))
        self.linepos = pos
        self.maxlen = max(best, pos)


async def prog_wc(ctx: Any) -> int:
    args = await parse_or_exit(ctx, WC)
    if isinstance(args, int):
        return args
    run = Run(ctx, "wc")
    want = [bool(args.get(k)) for k in ("lines", "words", "chars", "bytes", "max_line_length")]
    if not any(want):
        want = [True, True, False, True, False]
    files = list(args.operands)
    if args.get("files0_from") is not None:
        if files:
            return await usage_error(
                ctx, WC, f"extra operand {quote(files[0])}\nfile operands cannot be combined with --files0-from"
            )
        src = args["files0_from"]
        fd = await run.open(src, quoted=True)
        if fd is None:
            return 1
        data = await ctx.read_all(fd)
        await run.close(fd)
        files = [n.decode("utf-8", "surrogateescape") for n in data.split(b"\0") if n]
    named = bool(files)
    if not files:
        files = ["-"]
    utf8 = want[2] and _utf8_locale(ctx)
    # GNU's column width: digits of the regular files' total size, at least 7 if any input is
    # not a regular file; a single count of a single file is not padded.
    width = 1
    if not (len(files) == 1 and sum(want) == 1):
        total_size = 0
        minimum = 1
        for name in files:
            try:
                st = await (ctx.fstat(0) if name == "-" else ctx.stat(name))
            except KernelError:
                continue
            if _stat.S_ISREG(st.mode):
                total_size += st.size
            else:
                minimum = 7
        width = max(len(str(total_size)), minimum)
    out = Writer(ctx)
    totals = [0, 0, 0, 0, 0]
    for name in files:
        fd = await run.open(name)
        if fd is None:
            continue
        c = _Counts()
        try:
            only_bytes = want[3] and not (want[0] or want[1] or want[2] or want[4])
            st = await ctx.fstat(fd) if only_bytes else None
            if st is not None and _stat.S_ISREG(st.mode) and fd > 2:
                c.bytes = st.size
            else:
                lines, words, width_needed = want[0], want[1], want[4]
                # counting is one C call per buffer: bigger reads halve the per-syscall cost
                size = CHUNK * 64 if not (words or width_needed or utf8) else CHUNK
                while True:
                    data = await ctx.read(fd, size)
                    if not data:
                        break
                    c.bytes += len(data)
                    if lines:
                        c.lines += count_byte(data, 10)
                    if words:
                        c.add_words(data)
                    if utf8:
                        c.chars += count_utf8_starts(data)
                    if width_needed:
                        c.add_width(data)
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await run.file_err(name, e)
        finally:
            await run.close(fd)
        if not utf8:
            c.chars = c.bytes
        values = [c.lines, c.words, c.chars, c.bytes, c.maxlen]
        for i in range(4):
            totals[i] += values[i]
        totals[4] = max(totals[4], c.maxlen)
        await out.write(_wc_line(values, want, width, name if named else None))
    if len(files) > 1:
        await out.write(_wc_line(totals, want, width, "total"))
    await out.flush()
    return run.status


def _wc_line(values: list[int], want: list[bool], width: int, name: str | None) -> bytes:
    cols = [str(v).rjust(width) for v, w in zip(values, want) if w]
    line = " ".join(cols)
    if name is not None:
        line += " " + name
    return fsencode(line + "\n")


# ============================================================================ tee

TEE = Spec(
    "tee",
    "[OPTION]... [FILE]...",
    "Copy standard input to each FILE, and also to standard output.",
    [
        Opt("a", "append", help="append to the given FILEs, do not overwrite"),
        Opt("i", "ignore-interrupts", help="ignore interrupt signals"),
        Opt("p", None, help="diagnose errors writing to non pipes", dest="p"),
        Opt(None, "output-error", arg="MODE", optional_arg=True, help="set behavior on write error"),
    ],
)


async def prog_tee(ctx: Any) -> int:
    from kernel.syscalls import O_APPEND, O_CREAT, O_TRUNC, O_WRONLY

    args = await parse_or_exit(ctx, TEE)
    if isinstance(args, int):
        return args
    run = Run(ctx, "tee")
    if args.get("ignore_interrupts"):
        try:
            await ctx.signal(2, "ignore")
        except Exception:  # noqa: BLE001 - a kernel without SIG_IGN by name keeps the default
            pass
    flags = O_WRONLY | O_CREAT | (O_APPEND if args.get("append") else O_TRUNC)
    outs: list[tuple[str, int]] = [("standard output", 1)]
    for name in args.operands:
        if name == "-":
            outs.append(("standard output", 1))
            continue
        try:
            outs.append((name, await ctx.open(name, flags, 0o666)))
        except KernelError as e:
            await run.file_err(name, e)
    while True:
        try:
            data = await ctx.read(0, CHUNK)
        except KernelError as e:
            await run.err(f"read error: {strerror(e)}")
            break
        if not data:
            break
        for i, (name, fd) in enumerate(outs):
            if fd < 0:
                continue
            try:
                await ctx.write_all(fd, data)
            except KernelError as e:
                if e.code == "EPIPE" and args.get("p") or "output_error" in args:
                    outs[i] = (name, -1)
                    continue
                if e.code == "EPIPE":
                    raise
                await run.file_err(name, e)
                outs[i] = (name, -1)
        if all(fd < 0 for _, fd in outs):
            break
    for _name, fd in outs:
        if fd > 2:
            await ctx.close(fd)
    return run.status


# ============================================================================ rev, tac

REV = Spec(
    "rev",
    "[options] [file ...]",
    "Reverse lines characterwise.",
    [
        Opt("0", "zero", help="zero termination, use NUL as line separator"),
    ],
)


async def prog_rev(ctx: Any) -> int:
    args = await parse_or_exit(ctx, REV)
    if isinstance(args, int):
        return args
    from kernel.programs.text_base import lines_of

    run = Run(ctx, "rev")
    delim = 0 if args.get("zero") else 10
    sep = bytes([delim])
    utf8 = _utf8_locale(ctx)
    out = Writer(ctx)

    async def one_input(name: str, fd: int) -> None:
        async for batch in lines_of(ctx, fd, delim):
            parts = []
            for line in batch:
                body = line[:-1] if line.endswith(sep) else line
                if utf8:
                    text = body.decode("utf-8", "surrogateescape")[::-1]
                    rev = text.encode("utf-8", "surrogateescape")
                else:
                    rev = body[::-1]
                parts.append(rev + (sep if len(body) < len(line) else b""))
            await out.write(b"".join(parts))

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


TAC = Spec(
    "tac",
    "[OPTION]... [FILE]...",
    "Write each FILE to standard output, last line first.",
    [
        Opt("b", "before", help="attach the separator before instead of after"),
        Opt("r", "regex", help="interpret the separator as a regular expression"),
        Opt("s", "separator", arg="STRING", help="use STRING as the separator instead of newline"),
    ],
)


async def prog_tac(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TAC)
    if isinstance(args, int):
        return args
    run = Run(ctx, "tac")
    sep = fsencode(args.get("separator", "\n"))
    if not sep:
        await run.err("separator cannot be empty")
        return 1
    before = bool(args.get("before"))
    rx = None
    if args.get("regex"):
        from kernel.programs import posixre

        try:
            rx = posixre.compile(sep, dialect="posix")
        except KernelError as e:
            await run.err(e.message)
            return 1
    out = Writer(ctx)
    for name in args.operands or ["-"]:
        fd = await run.open(name, quoted=True)
        if fd is None:
            continue
        try:
            # tac needs the whole input; a regular file is read backwards, so only one block
            # and the record being assembled are held at a time
            st = await ctx.fstat(fd)
            if rx is None and _stat.S_ISREG(st.mode) and not before:
                await _tac_seekable(ctx, fd, out, sep, st.size)
            elif rx is None and not before:
                await _tac_stream(ctx, fd, out, sep)
            else:
                data = await ctx.read_all(fd)
                await out.write(_tac_records(data, sep, before, rx))
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await run.err(f"{quote(name)}: read error: {strerror(e)}")
        finally:
            await run.close(fd)
    await out.flush()
    return run.status


def _tac_records(data: bytes, sep: bytes, before: bool, rx: Any) -> bytes:
    if rx is not None:
        bounds = [(m.start(), m.end()) for m in rx.finditer(data) if m.end() > m.start()]
    else:
        bounds = []
        i = data.find(sep)
        while i >= 0:
            bounds.append((i, i + len(sep)))
            i = data.find(sep, i + len(sep))
    records = []
    if before:
        starts = [s for s, _ in bounds]
        if not starts or starts[0] != 0:
            starts.insert(0, 0)
        for k, s in enumerate(starts):
            e = starts[k + 1] if k + 1 < len(starts) else len(data)
            records.append(data[s:e])
    else:
        pos = 0
        for _, e in bounds:
            records.append(data[pos:e])
            pos = e
        if pos < len(data):
            records.append(data[pos:])
    records.reverse()
    return b"".join(records)


#: A pipe fed to tac beyond this goes to a temporary file, read back from its end.
TAC_MEMORY_BOUND = 64 << 20


async def _tac_stream(ctx: Any, fd: int, out: Writer, sep: bytes) -> None:
    """tac of a pipe: in memory while small, else through a temporary file in /tmp."""
    import secrets

    from kernel.syscalls import O_CREAT, O_EXCL, O_RDWR

    parts: list[bytes] = []
    held = 0
    tmp_fd = None
    tmp_name = ""
    try:
        while True:
            data = await ctx.read(fd, CHUNK)
            if not data:
                break
            if tmp_fd is None:
                parts.append(data)
                held += len(data)
                if held > TAC_MEMORY_BOUND:
                    tmp_name = f"/tmp/tac{secrets.token_hex(6)}"
                    tmp_fd = await ctx.open(tmp_name, O_RDWR | O_CREAT | O_EXCL, 0o600)
                    for p in parts:
                        await ctx.write_all(tmp_fd, p)
                    parts = []
            else:
                await ctx.write_all(tmp_fd, data)
        if tmp_fd is None:
            await out.write(_tac_records(b"".join(parts), sep, False, None))
            return
        size = await ctx.lseek(tmp_fd, 0, SEEK_END)
        await ctx.lseek(tmp_fd, 0, SEEK_SET)
        await _tac_seekable(ctx, tmp_fd, out, sep, size)
    finally:
        if tmp_fd is not None:
            await ctx.close(tmp_fd)
            try:
                await ctx.unlink(tmp_name)
            except KernelError:
                pass


async def _tac_seekable(ctx: Any, fd: int, out: Writer, sep: bytes, size: int) -> None:
    start = await ctx.lseek(fd, 0, SEEK_CUR)
    end = size
    tail = b""  # the (partial) record after the block being read
    while end > start:
        begin = max(start, end - CHUNK)
        block = await ctx.pread(fd, end - begin, begin) + tail
        end = begin
        # every separator in block except one ending exactly at its start closes a record
        first = block.find(sep)
        if first < 0:
            tail = block
            continue
        keep_from = first + len(sep)
        if end > start:
            head, body = block[:keep_from], block[keep_from:]
        else:
            head, body = b"", block
        await out.write(_tac_records(body, sep, False, None))
        tail = head
    if tail:
        await out.write(tail)
    await ctx.lseek(fd, 0, SEEK_END)


# ============================================================================ the family

PROGRAMS: dict[str, Any] = {
    "head": prog_head,
    "tail": prog_tail,
    "wc": prog_wc,
    "tee": prog_tee,
    "rev": prog_rev,
    "tac": prog_tac,
}


def _gather() -> None:
    """Add the other text_* modules' programs (each module one job)."""
    import importlib

    for mod in ("text_cols", "text_grep", "text_sed", "text_sort", "text_bytes", "text_diff"):
        try:
            module = importlib.import_module(f"kernel.programs.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"kernel.programs.{mod}":
                raise
            continue
        PROGRAMS.update(module.PROGRAMS)


_gather()
