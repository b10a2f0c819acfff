"""grep, egrep, fgrep: GNU grep 3.x over ``ctx``, with the patterns translated by ``posixre``.

The input is searched a buffer of complete lines at a time (64 KiB reads cut at the last
newline): ``PosixRegex.search_lines`` finds the matching lines of a whole buffer in bulk, so the
Python work is per matching line, not per line.  Context (-A/-B/-C) and -v walk the lines of
the buffer between matches.  ``-z`` swaps NUL and newline in the searched copy (same length, so
offsets hold) instead of a second matcher.
"""

from __future__ import annotations

import fnmatch
import stat as _stat
from dataclasses import dataclass, field
from typing import Any, Iterator

from kernel.errors import KernelError
from kernel.programs import posixre
from kernel.programs.common import CHUNK, Writer
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import fsencode, strerror
from kernel.syscalls import DT_DIR, DT_LNK, DT_REG, DT_UNKNOWN, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_RDONLY

GREP = Spec(
    "grep",
    "[OPTION]... PATTERNS [FILE]...",
    "Search for PATTERNS in each FILE.",
    [
        Opt(
            "E",
            "extended-regexp",
            help="PATTERNS are extended regular expressions",
            dest="mode",
            action="const",
            const="E",
        ),
        Opt("F", "fixed-strings", help="PATTERNS are strings", dest="mode", action="const", const="F"),
        Opt("G", "basic-regexp", help="PATTERNS are basic regular expressions", dest="mode", action="const", const="G"),
        Opt("P", "perl-regexp", help="PATTERNS are Perl regular expressions", dest="mode", action="const", const="P"),
        Opt("e", "regexp", arg="PATTERNS", help="use PATTERNS for matching", action="append", dest="regexp"),
        Opt("f", "file", arg="FILE", help="take PATTERNS from FILE", action="append", dest="pattern_file"),
        Opt(
            "i",
            "ignore-case",
            help="ignore case distinctions in patterns and data",
            dest="icase",
            action="const",
            const=True,
        ),
        Opt("y", None, help="same as -i (obsolete)", dest="icase", action="const", const=True),
        Opt(
            None,
            "no-ignore-case",
            help="do not ignore case distinctions (default)",
            dest="icase",
            action="const",
            const=False,
        ),
        Opt("w", "word-regexp", help="match only whole words"),
        Opt("x", "line-regexp", help="match only whole lines"),
        Opt("z", "null-data", help="a data line ends in 0 byte, not newline"),
        Opt("s", "no-messages", help="suppress error messages"),
        Opt("v", "invert-match", help="select non-matching lines"),
        Opt("V", None, help="display version information and exit", dest="version"),
        Opt("m", "max-count", arg="NUM", help="stop after NUM selected lines"),
        Opt("b", "byte-offset", help="print the byte offset with output lines"),
        Opt("n", "line-number", help="print line number with output lines"),
        Opt(None, "line-buffered", help="flush output on every line"),
        Opt(
            "H", "with-filename", help="print file name with output lines", dest="filename", action="const", const=True
        ),
        Opt(
            "h",
            "no-filename",
            help="suppress the file name prefix on output",
            dest="filename",
            action="const",
            const=False,
        ),
        Opt(None, "label", arg="LABEL", help="use LABEL as the standard input file name prefix"),
        Opt("o", "only-matching", help="show only nonempty parts of lines that match"),
        Opt("q", "quiet", help="suppress all normal output", dest="quiet"),
        Opt(None, "silent", help="same as --quiet", dest="quiet"),
        Opt(
            None,
            "binary-files",
            arg="TYPE",
            help="assume that binary files are TYPE; TYPE is 'binary', 'text', or 'without-match'",
        ),
        Opt("a", "text", help="equivalent to --binary-files=text", dest="binary_files", action="const", const="text"),
        Opt(
            "I",
            None,
            help="equivalent to --binary-files=without-match",
            dest="binary_files",
            action="const",
            const="without-match",
        ),
        Opt("d", "directories", arg="ACTION", help="how to handle directories; ACTION is 'read', 'recurse', or 'skip'"),
        Opt("D", "devices", arg="ACTION", help="how to handle devices, FIFOs and sockets"),
        Opt("r", "recursive", help="like --directories=recurse", dest="recurse", action="const", const="r"),
        Opt(
            "R",
            "dereference-recursive",
            help="likewise, but follow all symlinks",
            dest="recurse",
            action="const",
            const="R",
        ),
        Opt(None, "include", arg="GLOB", help="search only files that match GLOB (a file pattern)", action="append"),
        Opt(None, "exclude", arg="GLOB", help="skip files that match GLOB", action="append"),
        Opt(None, "exclude-from", arg="FILE", help="skip files that match any file pattern from FILE", action="append"),
        Opt(None, "exclude-dir", arg="GLOB", help="skip directories that match GLOB", action="append"),
        Opt(
            "L",
            "files-without-match",
            help="print only names of FILEs with no selected lines",
            dest="list",
            action="const",
            const="L",
        ),
        Opt(
            "l",
            "files-with-matches",
            help="print only names of FILEs with selected lines",
            dest="list",
            action="const",
            const="l",
        ),
        Opt("c", "count", help="print only a count of selected lines per FILE"),
        Opt("T", "initial-tab", help="make tabs line up (if needed)"),
        Opt("Z", "null", help="print 0 byte after FILE name"),
        Opt("B", "before-context", arg="NUM", help="print NUM lines of leading context"),
        Opt("A", "after-context", arg="NUM", help="print NUM lines of trailing context"),
        Opt("C", "context", arg="NUM", help="print NUM lines of output context"),
        Opt(
            None,
            "color",
            arg="WHEN",
            optional_arg=True,
            help="use markers to highlight the matching strings; WHEN is 'always', 'never', or 'auto'",
        ),
        Opt(None, "colour", arg="WHEN", optional_arg=True, help="same as --color", dest="color"),
        Opt("U", "binary", help="do not strip CR characters at EOL (MSDOS/Windows)"),
    ],
    usage_status=2,
)

_SGR = {"ms": "01;31", "mc": "01;31", "sl": "", "cx": "", "fn": "35", "ln": "32", "bn": "32", "se": "36"}


def _sgr(code: str, text: bytes) -> bytes:
    if not code:
        return text
    return b"\x1b[" + code.encode() + b"m\x1b[K" + text + b"\x1b[m\x1b[K"


def _digits_option(argv: list[str]) -> list[str]:
    """``grep -5`` is ``-C 5`` (digits clustered among the short options)."""
    out = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            out.extend(argv[i:])
            break
        if len(a) > 1 and a[0] == "-" and a[1] != "-" and any(ch.isdigit() for ch in a):
            # only when every character before the first digit is a flag without an argument
            j = 1
            while j < len(a) and not a[j].isdigit():
                if a[j] in "efmABCdD":
                    break
                j += 1
            if j < len(a) and a[j].isdigit():
                k = j
                while k < len(a) and a[k].isdigit():
                    k += 1
                head = a[:j]
                out.extend(([head] if head != "-" else []) + ["-C", a[j:k]])
                if k < len(a):
                    out.append("-" + a[k:])
                i += 1
                continue
        out.append(a)
        i += 1
    return out


@dataclass
class _Grep:
    ctx: Any
    out: Writer
    rx: Any
    invert: bool = False
    count: bool = False
    listing: str | None = None
    quiet: bool = False
    only: bool = False
    number: bool = False
    byte_offset: bool = False
    with_name: bool = False
    null: bool = False
    initial_tab: bool = False
    max_count: int | None = None
    before: int = 0
    after: int = 0
    binary: str = "binary"
    color: bool = False
    nul_data: bool = False
    line_buffered: bool = False
    silent: bool = False
    label: str = "(standard input)"
    status: int = 1
    error: bool = False
    matched_any: bool = False
    # per file
    name: bytes = b""
    lineno: int = 0
    offset: int = 0
    last_printed: int = -1  # line number of the last line printed (for "--" separators)
    printed_any: bool = False
    after_left: int = 0
    before_ring: list[tuple[int, bytes]] = field(default_factory=list)

    async def err(self, text: str) -> None:
        self.error = True
        if not self.silent:
            await self.ctx.write_all(2, fsencode(f"grep: {text}\n"))

    def prefix(self, lineno: int, offset: int, sep: bytes) -> bytes:
        parts = []
        if self.with_name:
            name = _sgr(_SGR["fn"], self.name) if self.color else self.name
            parts.append(name + (b"\0" if self.null else (_sgr(_SGR["se"], sep) if self.color else sep)))
        if self.number:
            num = str(lineno).encode()
            if self.initial_tab:
                num = num.rjust(4)
            parts.append(
                (_sgr(_SGR["ln"], num) if self.color else num) + (_sgr(_SGR["se"], sep) if self.color else sep)
            )
        if self.byte_offset:
            num = str(offset).encode()
            if self.initial_tab:
                num = num.rjust(9)
            parts.append(
                (_sgr(_SGR["bn"], num) if self.color else num) + (_sgr(_SGR["se"], sep) if self.color else sep)
            )
        if self.initial_tab and parts:
            parts.append(b"\t")
        return b"".join(parts)

    def colored(self, line: bytes) -> bytes:
        out = []
        pos = 0
        for m in self.rx.finditer(line):
            s, e = m.span()
            if s == e:
                continue
            out.append(line[pos:s])
            out.append(_sgr(_SGR["ms"], line[s:e]))
            pos = e
        out.append(line[pos:])
        return b"".join(out)


async def prog_grep(ctx: Any, default_mode: str = "G", prog: str = "grep") -> int:
    spec = GREP if prog == "grep" else Spec(prog, GREP.usage, GREP.summary, GREP.options, usage_status=2)
    args = await parse_or_exit(ctx, spec, _digits_option(list(ctx.argv)))
    if isinstance(args, int):
        return args
    mode = args.get("mode") or default_mode
    if mode == "P":
        await ctx.write_all(2, b"grep: Perl matching not supported in this build\n")
        return 2
    operands = list(args.operands)
    patterns: list[bytes] = []
    have_patterns = False
    for key, value in args.order:
        if key == "regexp":
            patterns.extend(fsencode(value).split(b"\n"))
            have_patterns = True
        elif key == "pattern_file":
            have_patterns = True
            try:
                fd = 0 if value == "-" else await ctx.open(value)
                data = await ctx.read_all(fd)
                if fd:
                    await ctx.close(fd)
            except KernelError as e:
                await ctx.write_all(2, fsencode(f"grep: {value}: {strerror(e)}\n"))
                return 2
            if data.endswith(b"\n"):
                data = data[:-1]
            if data or value:
                patterns.extend(data.split(b"\n") if data else [])
    if not have_patterns:
        if not operands:
            return await _usage(ctx, prog)
        patterns = fsencode(operands.pop(0)).split(b"\n")
    if mode == "E":
        for p in patterns:
            for w in _ere_start_warnings(p):
                await ctx.write_all(2, f"grep: warning: {w} at start of expression\n".encode())
    g = _Grep(ctx, Writer(ctx), None)
    try:
        g.rx = _compile(patterns, mode, args)
    except KernelError as e:
        await ctx.write_all(2, fsencode(f"grep: {e.message}\n"))
        return 2
    g.invert = bool(args.get("invert_match"))
    g.count = bool(args.get("count"))
    g.listing = args.get("list")
    g.quiet = bool(args.get("quiet"))
    g.only = bool(args.get("only_matching"))
    g.number = bool(args.get("line_number"))
    g.byte_offset = bool(args.get("byte_offset"))
    g.null = bool(args.get("null"))
    g.initial_tab = bool(args.get("initial_tab"))
    g.silent = bool(args.get("no_messages"))
    g.nul_data = bool(args.get("null_data"))
    g.line_buffered = bool(args.get("line_buffered"))
    if args.get("label") is not None:
        g.label = args["label"]
    try:
        if args.get("max_count") is not None:
            g.max_count = int(args["max_count"])
            if g.max_count < 0:
                g.max_count = None
        ctx_n = {"before_context": 0, "after_context": 0}
        for key, value in args.order:
            if key == "context":
                n = _context_num(value)
                ctx_n["before_context"] = ctx_n["after_context"] = n
            elif key in ctx_n:
                ctx_n[key] = _context_num(value)
        g.before, g.after = ctx_n["before_context"], ctx_n["after_context"]
    except ValueError as e:
        await ctx.write_all(
            2, fsencode(f"grep: {e}: invalid context length argument\n" if "context" not in str(e) else f"grep: {e}\n")
        )
        return 2
    binary = args.get("binary_files") or "binary"
    if binary not in ("binary", "text", "without-match"):
        await ctx.write_all(2, b"grep: unknown binary-files type\n")
        return 2
    g.binary = binary
    when = args.get("color", "never") if "color" in args else "never"
    if when is None:
        when = "auto"
    if when in ("always", "yes", "force"):
        g.color = True
    elif when in ("auto", "tty", "if-tty"):
        g.color = ctx.isatty(1) and (ctx.getenv("TERM") or "dumb") != "dumb"
    elif when not in ("never", "no", "none"):
        await ctx.write_all(2, fsencode(f"grep: invalid argument '{when}' for '--color'\n"))
        return 2
    recurse = args.get("recurse")
    directories = args.get("directories") or ("recurse" if recurse else "read")
    if directories == "recurse" and not recurse:
        recurse = "r"
    if not operands:
        operands = ["."] if recurse else ["-"]
        implicit_dot = bool(recurse)
    else:
        implicit_dot = False
    filename = args.get("filename")
    walker = _Walker(ctx, g, args, recurse, directories)
    walker.names = filename if filename is not None else (True if len(operands) > 1 else None)
    for name in operands:
        await walker.visit(name, top=True, implicit=implicit_dot)
        if g.quiet and g.matched_any:
            break
    await g.out.flush()
    if g.error and not (g.quiet and g.matched_any):
        return 2
    return 0 if g.matched_any else 1


async def _usage(ctx: Any, prog: str) -> int:
    await ctx.write_all(
        2, fsencode(f"Usage: {prog} [OPTION]... PATTERNS [FILE]...\nTry '{prog} --help' for more information.\n")
    )
    return 2


def _ere_start_warnings(p: bytes) -> list[str]:
    """GNU grep 3.8 warns when ``*``, ``+``, ``?`` or ``{`` opens an ERE (or a group/branch)."""
    out = []
    i, n = 0, len(p)
    at_start = True
    while i < n:
        c = p[i]
        if at_start and c in b"*+?{":
            out.append("{...}" if c == 0x7B else chr(c))
        if c == 0x5C:
            i += 2
            at_start = False
            continue
        if c == 0x5B:  # skip a bracket expression
            j = i + 1
            if j < n and p[j] == 0x5E:
                j += 1
            if j < n and p[j] == 0x5D:
                j += 1
            while j < n and p[j] != 0x5D:
                j += (
                    2
                    if p[j] == 0x5B
                    and j + 1 < n
                    and p[j + 1] in b":.="
                    and p.find(b"]", j + 2) > 0
                    and (j := p.find(b"]", j + 2)) >= 0
                    else 1
                )
            i = j + 1
            at_start = False
            continue
        at_start = c in b"(|"
        i += 1
    return out


def _context_num(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{value}: invalid context length argument") from None
    if n < 0:
        raise ValueError(f"{value}: invalid context length argument")
    return n


_BRE_SPECIAL = b"\\.[]*^$"


def _compile(patterns: list[bytes], mode: str, args: Any) -> Any:
    icase = bool(args.get("icase"))
    word = bool(args.get("word_regexp"))
    whole = bool(args.get("line_regexp"))
    if not patterns:
        # -f /dev/null: no pattern matches nothing
        return posixre.compile(b"a^b", extended=False, lines=True)
    if len(patterns) == 1:
        return posixre.compile(
            patterns[0], extended=mode == "E", icase=icase, lines=True, word=word, whole=whole, fixed=mode == "F"
        )
    if mode == "F":
        pieces = [bytes(b for c in p for b in ((92, c) if c in _BRE_SPECIAL else (c,))) for p in patterns]
        joined = b"\\|".join(pieces)
        return posixre.compile(joined, extended=False, icase=icase, lines=True, word=word, whole=whole)
    for p in patterns:  # each must be valid on its own (GNU reports the bad one)
        posixre.compile(p, extended=mode == "E", icase=icase, lines=True)
    joined = (b"|" if mode == "E" else b"\\|").join(
        (b"(" + p + b")" if mode == "E" else b"\\(" + p + b"\\)") if _needs_group(p, mode) else p for p in patterns
    )
    return posixre.compile(joined, extended=mode == "E", icase=icase, lines=True, word=word, whole=whole)


def _needs_group(p: bytes, mode: str) -> bool:
    # groups would shift back-reference numbers; alternation binds loosest anyway
    return False


class _Walker:
    """The operands and (with -r) the trees under them, with --include/--exclude filters."""

    def __init__(self, ctx: Any, g: _Grep, args: Any, recurse: str | None, directories: str) -> None:
        self.ctx, self.g = ctx, g
        self.recurse = recurse
        self.directories = directories
        self.include = [fsencode(p).decode("latin-1") for p in args.get("include") or []]
        self.exclude = [fsencode(p).decode("latin-1") for p in args.get("exclude") or []]
        self.exclude_dir = [fsencode(p).decode("latin-1") for p in args.get("exclude_dir") or []]
        self.devices = args.get("devices") or "read"
        self.names: bool | None = None  # -H/-h or several operands; None: only below a directory

    def _skip_file(self, name: str, command_line: bool) -> bool:
        base = fsencode(name.rstrip("/").rsplit("/", 1)[-1]).decode("latin-1")
        full = fsencode(name).decode("latin-1")
        for pat in self.exclude:
            if fnmatch.fnmatchcase(base, pat) or (command_line and fnmatch.fnmatchcase(full, pat)):
                return True
        if self.include:
            return not any(
                fnmatch.fnmatchcase(base, pat) or (command_line and fnmatch.fnmatchcase(full, pat))
                for pat in self.include
            )
        return False

    def _skip_dir(self, name: str) -> bool:
        base = fsencode(name.rstrip("/").rsplit("/", 1)[-1]).decode("latin-1")
        return any(fnmatch.fnmatchcase(base, pat) for pat in self.exclude_dir)

    async def _entries(self, name: str) -> list[tuple[str, int]]:
        """A directory's (name, DT_* type) pairs in name order: the walk needs no lstat per entry."""
        fd = await self.ctx.open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try:
            out: list[tuple[str, int]] = []
            while batch := await self.ctx.getdents(fd):
                out.extend((d.name, d.type) for d in batch)
        finally:
            await self.ctx.close(fd)
        out.sort()
        return out

    async def visit(self, name: str, top: bool, implicit: bool = False, dtype: int = DT_UNKNOWN) -> None:
        g = self.g
        ctx = self.ctx
        g.with_name = self.names if self.names is not None else not top
        if name == "-":
            g.name = fsencode(g.label)
            await _search_fd(g, 0)
            return
        if dtype == DT_REG or (dtype == DT_LNK and self.recurse != "R"):
            mode = _stat.S_IFREG if dtype == DT_REG else _stat.S_IFLNK  # the walk's own type: no lstat
        elif dtype == DT_DIR:
            mode = _stat.S_IFDIR
        else:
            try:
                mode = (await (ctx.stat(name) if top or self.recurse == "R" else ctx.lstat(name))).mode
            except KernelError as e:
                if not top and e.code == "ENOENT":
                    return
                await g.err(f"{name}: {strerror(e)}")
                return
        if _stat.S_ISLNK(mode):
            return  # -r skips symlinks met during the walk
        if _stat.S_ISDIR(mode):
            if self.directories == "skip":
                return
            if self.directories != "recurse":
                await g.err(f"{name}: Is a directory")
                return
            if not top and self._skip_dir(name):
                return
            if top and self.exclude_dir and not implicit and self._skip_dir(name):
                return
            try:
                entries = await self._entries(name)
            except KernelError as e:
                await g.err(f"{name}: {strerror(e)}")
                return
            for entry, entry_type in entries:
                child = (
                    entry if implicit and name == "." else (name + entry if name.endswith("/") else f"{name}/{entry}")
                )
                await self.visit(child, top=False, dtype=entry_type)
                if g.quiet and g.matched_any:
                    return
            return
        if not _stat.S_ISREG(mode) and (self.devices == "skip" or (not top and self.recurse)):
            return
        if self._skip_file(name, top):
            return
        try:
            # A name the walk saw as a regular file is opened without following a link, so a
            # file swapped for a symlink meanwhile is still not followed under -r.
            fd = await ctx.open(name, O_RDONLY | O_NOFOLLOW if dtype == DT_REG and self.recurse != "R" else O_RDONLY)
        except KernelError as e:
            if dtype == DT_REG and e.code in ("ELOOP", "ENOENT"):
                return  # gone or replaced by a link since the directory was read
            await g.err(f"{name}: {strerror(e)}")
            return
        g.name = fsencode(name)
        try:
            await _search_fd(g, fd)
        finally:
            await ctx.close(fd)


async def _search_fd(g: _Grep, fd: int) -> None:
    g.lineno = 0
    g.offset = 0
    g.last_printed = -1
    g.after_left = 0
    g.before_ring = []
    g.printed_any = False
    try:
        selected = await _scan(g, fd)
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await g.out.flush()
        await g.err(f"{g.name.decode('utf-8', 'surrogateescape')}: {strerror(e) if e.code != 'ETIME' else e.message}")
        return
    if selected:
        g.matched_any = True
    out = g.out
    if g.count:
        if g.with_name:
            name = _sgr(_SGR["fn"], g.name) if g.color else g.name
            await out.write(name + (b"\0" if g.null else (_sgr(_SGR["se"], b":") if g.color else b":")))
        await out.write(str(selected).encode() + b"\n")
    if g.listing == "l" and selected or g.listing == "L" and not selected:
        name = _sgr(_SGR["fn"], g.name) if g.color else g.name
        await out.write(name + (b"\0" if g.null else b"\n"))
    if g.line_buffered:
        await out.flush()


async def _scan(g: _Grep, fd: int) -> int:
    """Search one input; returns the number of selected lines (capped by -m)."""
    ctx = g.ctx
    eol = 0 if g.nul_data else 10
    sep = bytes([eol])
    quiet_output = g.quiet or g.count or g.listing is not None
    stop_at_first = g.quiet or g.listing is not None
    limit = g.max_count
    if limit == 0:
        return 0
    selected = 0
    binary = False
    binary_checked = False
    rest = b""
    eof = False
    tail = False
    while not eof:
        data = await ctx.read(fd, CHUNK)
        if not data:
            eof = True
            if not rest:
                break
            whole = rest + sep  # an unterminated last line is searched as a line
            whole_added_eol = True
            rest = b""
        else:
            if rest:
                data = rest + data
            cut = data.rfind(sep)
            if cut < 0:
                rest = data
                continue
            whole, rest = data[: cut + 1], data[cut + 1 :]
            whole_added_eol = False
        for buf, last in _pieces(whole, sep):
            await ctx.preempt_point()  # a piece is bounded work: the loop (the mount) gets its turn
            added_eol = last and whole_added_eol
            search = buf.translate(_SWAP) if g.nul_data else buf
            if tail:  # -m was reached with trailing context still to print
                await _emit_buffer(g, buf, search, selected, limit, binary, added_eol, quiet_output, tail_only=True)
                if g.after_left <= 0:
                    return selected
                continue
            if not binary and g.binary != "text" and not g.nul_data and b"\0" in buf:
                binary = True
                if g.binary == "without-match" and not binary_checked:
                    return 0
            binary_checked = True
            if g.after_left == 0 and not g.before and not g.invert and (quiet_output or (binary and not g.only)):
                # only whether/how many lines match
                if g.count and limit is None and not stop_at_first:
                    selected += sum(1 for _ in g.rx.search_lines(search))
                    g.lineno += buf.count(sep)
                    g.offset += len(buf)
                    continue
                for _s, _e in g.rx.search_lines(search):
                    selected += 1
                    if stop_at_first or (limit is not None and selected >= limit):
                        break
                    if binary and not quiet_output:
                        break
                if binary and selected and not quiet_output:
                    await g.out.flush()
                    await g.ctx.write_all(2, b"grep: " + g.name + b": binary file matches\n")
                    return selected
                if stop_at_first and selected or (limit is not None and selected >= limit):
                    return selected
                g.lineno += buf.count(sep)
                g.offset += len(buf)
                continue
            done, selected = await _emit_buffer(g, buf, search, selected, limit, binary, added_eol, quiet_output)
            if done:
                if g.after_left > 0 and not quiet_output and limit is not None and selected >= limit:
                    tail = True  # its trailing context goes on in the next piece
                    continue
                return selected
    return selected


_SWAP = bytes.maketrans(b"\n\0", b"\0\n")
#: Bytes of whole lines searched and printed between two preempt points (a 64 KiB read of
#: short lines is ~10 ms of work for ``grep -v``).
_PIECE = 8192


def _pieces(buf: bytes, sep: bytes) -> Iterator[tuple[bytes, bool]]:
    """*buf* (whole lines) cut after line ends into pieces of about ``_PIECE`` bytes; True
    with the last."""
    n = len(buf)
    if n <= _PIECE:
        yield buf, True
        return
    p = 0
    while p < n:
        q = buf.find(sep, min(p + _PIECE, n) - 1)
        q = n if q < 0 else q + 1
        yield buf[p:q], q >= n
        p = q


async def _emit_buffer(
    g: _Grep,
    buf: bytes,
    search: bytes,
    selected: int,
    limit: int | None,
    binary: bool,
    added_eol: bool,
    quiet_output: bool,
    tail_only: bool = False,
) -> tuple[bool, int]:
    """Print the selected lines of one buffer (with context); (stop?, selected so far).
    *tail_only*: -m was reached before this buffer; only print the trailing context left."""
    out = g.out
    eol = b"\0" if g.nul_data else b"\n"
    spans = g.rx.search_lines(search)
    n = len(buf)
    pos = 0  # start of the next line not yet accounted for
    lineno = g.lineno  # number of lines before pos
    offset0 = g.offset
    context = g.before or g.after
    stop = tail_only

    async def line_out(s: int, e: int, num: int, sepc: bytes, is_match: bool) -> None:
        if context and g.last_printed >= 0 and num > g.last_printed + 1:
            await out.write(_sgr(_SGR["se"], b"--") + b"\n" if g.color else b"--\n")
        line = buf[s:e]
        if g.only and is_match:
            for m in g.rx.finditer(search, s, e):
                ms, me = m.span()
                if ms == me:
                    continue
                text = buf[ms:me]
                await out.write(g.prefix(num, offset0 + ms, sepc) + (_sgr(_SGR["ms"], text) if g.color else text) + eol)
        elif g.only:
            pass
        else:
            if g.color and is_match and not g.invert:
                line = g.colored(line) if not g.nul_data else line
            await out.write(g.prefix(num, offset0 + s, sepc) + line + eol)
        g.last_printed = num
        if g.line_buffered:
            await out.flush()

    def lines_between(a: int, b: int):
        """(start, end) of each line in buf[a:b] (b is a line start)."""
        p = a
        while p < b:
            q = buf.find(eol, p, b)
            if q < 0:
                q = b
            yield p, q
            p = q + 1

    async def handle_selected(s: int, e: int, num: int) -> None:
        # before context from the ring (previous buffers and lines of this one)
        for rnum, rs_line in g.before_ring:
            if rnum > g.last_printed:
                if context and g.last_printed >= 0 and rnum > g.last_printed + 1:
                    await out.write(_sgr(_SGR["se"], b"--") + b"\n" if g.color else b"--\n")
                if not g.only:
                    await out.write(rs_line)
                g.last_printed = rnum
        g.before_ring = []
        await line_out(s, e, num, b":", True)

    async def nonselected(s: int, e: int, num: int) -> None:
        if g.after_left > 0:
            g.after_left -= 1
            await line_out(s, e, num, b"-", False)
        elif g.before:
            g.before_ring.append((num, g.prefix(num, offset0 + s, b"-") + buf[s:e] + eol))
            if len(g.before_ring) > g.before:
                g.before_ring.pop(0)

    if g.invert:
        matched = iter(spans)
        nxt = next(matched, None)
        for s, e in lines_between(0, n):
            lineno += 1
            if nxt is not None and nxt[0] == s:
                nxt = next(matched, None)
                if not stop:
                    await nonselected(s, e, lineno)
                elif g.after_left > 0:
                    await nonselected(s, e, lineno)
                continue
            if stop:
                if g.after_left <= 0:
                    break
                await nonselected(s, e, lineno)
                continue
            selected += 1
            if quiet_output:
                if g.quiet or g.listing is not None:
                    return True, selected
            elif binary:
                await out.flush()
                await g.ctx.write_all(2, b"grep: " + g.name + b": binary file matches\n")
                return True, selected
            else:
                await handle_selected(s, e, lineno)
                g.after_left = g.after
            if limit is not None and selected >= limit:
                stop = True
                if g.after_left <= 0 or quiet_output:
                    break
        g.lineno = lineno
        g.offset += n
        return stop, selected
    for s, e in spans:
        if stop:
            break
        if pos < s:
            if g.after_left > 0 or g.before:
                for ls, le in lines_between(pos, s):
                    lineno += 1
                    await nonselected(ls, le, lineno)
            else:
                lineno += buf.count(eol, pos, s)
        lineno += 1
        selected += 1
        if binary and not quiet_output:
            await out.flush()
            await g.ctx.write_all(2, b"grep: " + g.name + b": binary file matches\n")
            return True, selected
        if not quiet_output:
            await handle_selected(s, e, lineno)
            g.after_left = g.after
        pos = e + 1
        if limit is not None and selected >= limit:
            stop = True
    if stop:
        # trailing context after the last allowed match, then stop
        for ls, le in lines_between(pos, n):
            if g.after_left <= 0:
                break
            lineno += 1
            g.after_left -= 1
            await line_out(ls, le, lineno, b"-", False)
        g.lineno = lineno  # the next piece may hold more of the trailing context
        g.offset += n
        return True, selected
    if pos < n:
        if g.after_left > 0 or g.before:
            for ls, le in lines_between(pos, n):
                lineno += 1
                await nonselected(ls, le, lineno)
        else:
            lineno += buf.count(eol, pos, n)
    g.lineno = lineno
    g.offset += n
    return False, selected


async def prog_egrep(ctx: Any) -> int:
    return await prog_grep(ctx, "E")


async def prog_fgrep(ctx: Any) -> int:
    return await prog_grep(ctx, "F")


PROGRAMS = {"grep": prog_grep, "egrep": prog_egrep, "fgrep": prog_fgrep}
