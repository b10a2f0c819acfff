"""Listing and inspecting files: ls and stat, formatted as GNU coreutils does under LC_ALL=C."""

from __future__ import annotations

import stat as _stat
import time
from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.fs import Attr
from kernel.programs.common import IdNames, Writer, fsencode, human_size, mode_string, quote
from kernel.programs.files_base import Tool, glob_regex, join
from kernel.programs.flags import Opt, Spec, parse_or_exit

SIX_MONTHS = 31556952 // 2
_C_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


def tz_offset(ctx: Any, epoch: float) -> int:
    """Seconds east of UTC for $TZ at *epoch*; UTC when unset or unknown (as glibc)."""
    tz = (ctx.getenv("TZ") or "UTC").lstrip(":")
    if tz in ("UTC", "UTC0", "GMT", ""):
        return 0
    try:
        from datetime import datetime, timezone
        from zoneinfo import ZoneInfo
        off = datetime.fromtimestamp(epoch, timezone.utc).astimezone(ZoneInfo(tz)).utcoffset()
        return int(off.total_seconds()) if off else 0
    except Exception:
        return 0


def strftime_local(ctx: Any, fmt: str, ns: int) -> str:
    """strftime in $TZ, with ``%N`` (nanoseconds) and ``%z`` of that zone."""
    secs = ns // 1_000_000_000
    off = tz_offset(ctx, secs)
    tm = time.gmtime(secs + off)
    sign = "+" if off >= 0 else "-"
    z = f"{sign}{abs(off) // 3600:02d}{abs(off) % 3600 // 60:02d}"
    fmt = fmt.replace("%N", f"{ns % 1_000_000_000:09d}").replace("%z", z)
    return time.strftime(fmt, tm)


def version_key(name: bytes) -> list[tuple[int, bytes | int]]:
    """``ls -v``/``sort -V`` ordering, simplified: runs of digits compare as numbers."""
    import re as _re
    parts: list[tuple[int, bytes | int]] = []
    for digits, text in _re.findall(rb"(\d+)|(\D+)", name):
        parts.append((1, int(digits)) if digits else (0, text))
    return parts


# ============================================================================ ls

LS = Spec("ls", "[OPTION]... [FILE]...", "List information about the FILEs (the current directory "
          "by default).\nSort entries alphabetically if none of -cftuvSUX nor --sort is specified.", [
    Opt("a", "all", help="do not ignore entries starting with ."),
    Opt("A", "almost-all", help="do not list implied . and .."),
    Opt("C", None, dest="fmt", action="const", const="columns", help="list entries by columns"),
    Opt("x", None, dest="fmt", action="const", const="across", help="list entries by lines instead of by columns"),
    Opt("m", None, dest="fmt", action="const", const="commas", help="comma separated list of entries"),
    Opt("1", None, dest="fmt", action="const", const="single", help="list one file per line"),
    Opt("l", None, dest="fmt", action="const", const="long", help="use a long listing format"),
    Opt("g", None, help="like -l, but do not list owner"),
    Opt("o", None, help="like -l, but do not list group information"),
    Opt("n", "numeric-uid-gid", help="like -l, but list numeric user and group IDs"),
    Opt("d", "directory", help="list directories themselves, not their contents"),
    Opt("F", "classify", help="append indicator (one of */=>@|) to entries"),
    Opt("p", None, dest="slash", help="append / indicator to directories"),
    Opt("h", "human-readable", help="with -l and -s, print sizes like 1K 234M 2G etc."),
    Opt(None, "si", help="likewise, but use powers of 1000 not 1024"),
    Opt("i", "inode", help="print the index number of each file"),
    Opt("s", "size", help="print the allocated size of each file, in blocks"),
    Opt("R", "recursive", help="list subdirectories recursively"),
    Opt("r", "reverse", help="reverse order while sorting"),
    Opt("S", None, dest="sort", action="const", const="size", help="sort by file size, largest first"),
    Opt("t", None, dest="sort", action="const", const="time", help="sort by time, newest first"),
    Opt("U", None, dest="sort", action="const", const="none", help="do not sort; list entries in directory order"),
    Opt("X", None, dest="sort", action="const", const="extension", help="sort alphabetically by entry extension"),
    Opt("f", None, help="list all entries in directory order"),
    Opt(None, "sort", arg="WORD", help="sort by WORD instead of name: none, size, time, extension"),
    Opt("c", None, dest="timefield", action="const", const="ctime", help="use time of last status change"),
    Opt("u", None, dest="timefield", action="const", const="atime", help="use time of last access"),
    Opt(None, "time", arg="WORD", help="select which time to show and sort by: atime, ctime, mtime, birth"),
    Opt(None, "format", arg="WORD", help="across -x, commas -m, long -l, single-column -1, vertical -C"),
    Opt(None, "quoting-style", arg="WORD", help="literal, shell, shell-always, shell-escape, c, escape"),
    Opt("b", "escape", help="print C-style escapes for nongraphic characters"),
    Opt("q", "hide-control-chars", help="print ? instead of nongraphic characters"),
    Opt("L", "dereference", help="show information for the file a symbolic link references"),
    Opt("H", "dereference-command-line", help="follow symbolic links listed on the command line"),
    Opt(None, "color", arg="WHEN", optional_arg=True, help="colorize the output; WHEN: always, auto, never"),
    Opt(None, "time-style", arg="STYLE", help="time/date format with -l: full-iso, long-iso, iso, +FORMAT"),
    Opt(None, "full-time", help="like -l --time-style=full-iso"),
    Opt(None, "group-directories-first", help="group directories before files"),
    Opt("w", "width", arg="COLS", help="set output width to COLS; 0 means no limit"),
    Opt("Q", "quote-name", help="enclose entry names in double quotes"),
    Opt("N", "literal", help="print entry names without quoting"),
    Opt(None, "indicator-style", arg="WORD", help="append indicator: none, slash, file-type, classify"),
    Opt("v", None, dest="sort", action="const", const="version", help="natural sort of (version) numbers within text"),
    Opt("I", "ignore", arg="PATTERN", action="append", help="do not list implied entries matching shell PATTERN"),
    Opt(None, "hide", arg="PATTERN", action="append", help="like -I, but overridden by -a or -A"),
    Opt("B", "ignore-backups", help="do not list implied entries ending with ~"),
    Opt("T", "tabsize", arg="COLS", help="assume tab stops at each COLS instead of 8"),
], usage_status=2)

_TERMS = ("ansi", "*color*", "con[0-9]*x[0-9]*", "cons25", "console", "cygwin", "*direct*", "dtterm",
          "gnome", "hurd", "jfbterm", "konsole", "kterm", "linux", "linux-c", "mlterm", "putty",
          "rxvt*", "screen*", "st", "terminator", "tmux*", "vt100", "xterm*", "alacritty*",
          "foot*", "kitty*", "wezterm*", "eterm*")


def color_palette(ctx: Any) -> dict[str, str] | None:
    """GNU's colour choice: $LS_COLORS when set, else the built-in table if $TERM is one the
    dircolors database knows, else no colours at all (``--color=always`` then prints none)."""
    import fnmatch

    spec = ctx.getenv("LS_COLORS")
    if spec:
        table: dict[str, str] = {}
        for item in spec.split(":"):
            key, eq, value = item.partition("=")
            if eq:
                table[key] = value
        return table
    term = ctx.getenv("TERM") or ""
    if term and any(fnmatch.fnmatchcase(term, pat) for pat in _TERMS):
        return dict(_COLORS)
    return None


_COLORS = {"di": "01;34", "ln": "01;36", "ex": "01;32", "pi": "33", "so": "01;35", "bd": "01;33",
           "cd": "01;33", "su": "37;41", "sg": "30;43", "tw": "30;42", "ow": "34;42", "st": "37;44"}


@dataclass
class Entry:
    """One name to show: how it was named, its lstat (or followed stat), its link target."""

    name: str
    path: str
    attr: Attr
    target: str | None = None
    target_attr: Attr | None = None


@dataclass
class LsOptions:
    fmt: str
    all: bool
    almost: bool
    long: bool
    owner: bool
    group: bool
    numeric: bool
    directory: bool
    indicator: str   # none, slash, file-type, classify
    human: int       # 0, 1024, 1000
    inode: bool
    size: bool
    recursive: bool
    reverse: bool
    sort: str
    timefield: str
    deref: bool
    color: bool
    time_style: str
    dirs_first: bool
    width: int
    quote_style: str  # literal, shell, c


async def prog_ls(ctx: Any) -> int:
    args = await parse_or_exit(ctx, LS)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "ls")
    tty = ctx.isatty(1)
    fmt = "columns" if tty else "single"
    formats = {"across": "across", "horizontal": "across", "commas": "commas", "long": "long",
               "verbose": "long", "single-column": "single", "vertical": "columns"}
    for key, value in args.order:  # the last format option wins (-l1 is one per line)
        if key == "fmt":
            fmt = value
        elif key == "format":
            if value not in formats:
                await tool.err(f"invalid argument {quote(value)} for '--format'")
                return 1
            fmt = formats[value]
        elif key in ("g", "o", "numeric_uid_gid", "full_time"):
            fmt = "long"
    long = fmt == "long"
    sort = args.get("sort") or "name"
    if args.get("f"):
        sort = "none"
    if sort not in ("name", "size", "time", "none", "extension", "version"):
        await tool.err(f"invalid argument {quote(sort)} for '--sort'\nValid arguments are:\n"
                       "  - 'none'\n  - 'time'\n  - 'size'\n  - 'extension'\n  - 'version'\n"
                       "  - 'width'\nTry 'ls --help' for more information.")
        return 1
    indicator = "none"
    if args.get("slash"):
        indicator = "slash"
    if args.get("classify"):
        indicator = "classify"
    if args.get("indicator_style"):
        indicator = args["indicator_style"]
    color_word = args.get("color", "never") if "color" in args else "never"
    if color_word is None:
        color_word = "always"
    if color_word in ("always", "yes", "force"):
        color = True
    elif color_word in ("auto", "tty", "if-tty"):
        color = tty
    elif color_word in ("never", "no", "none"):
        color = False
    else:
        await tool.err(f"invalid argument {quote(color_word)} for '--color'\nValid arguments are:\n"
                       "  - 'always', 'yes', 'force'\n  - 'never', 'no', 'none'\n  - 'auto', 'tty', 'if-tty'\n"
                       "Try 'ls --help' for more information.")
        return 1
    style = "locale"
    if args.get("full_time"):
        style = "full-iso"
    if args.get("time_style"):
        style = args["time_style"]
        if style.startswith("posix-"):
            style = style[6:]
        if not style.startswith("+") and style not in ("full-iso", "long-iso", "iso", "locale"):
            await tool.err(f"invalid argument {quote(style)} for 'time style'")
            return 2
    width = 80
    if args.get("width") is not None:
        try:
            width = int(args["width"])
        except ValueError:
            await tool.err(f"invalid line width: {quote(args['width'])}")
            return 2
    else:
        cols = ctx.getenv("COLUMNS")
        if cols and cols.isdigit() and int(cols) > 0:
            width = int(cols)
        elif tty:
            try:
                width = ctx.get_winsize(1)[1] or 80
            except KernelError:
                width = 80
    quote_style = "shell" if tty else "literal"
    styles = {"literal": "literal", "shell": "plainshell", "shell-escape": "shell", "shell-always": "plainalways",
              "shell-escape-always": "always", "c": "c", "escape": "escape", "locale": "always",
              "clocale": "always"}
    for key, value in args.order:
        if key == "literal":
            quote_style = "literal"
        elif key == "escape":
            quote_style = "escape"
        elif key == "hide_control_chars":
            quote_style = "hide"
        elif key == "quote_name":
            quote_style = "c"
        elif key == "quoting_style":
            if value not in styles:
                await tool.err(f"invalid argument {quote(value)} for '--quoting-style'")
                return 1
            quote_style = styles[value]
    opts = LsOptions(
        fmt="long" if long else fmt, all=bool(args.get("all") or args.get("f")),
        almost=bool(args.get("almost_all")), long=long, owner=not args.get("g"),
        group=not args.get("o"), numeric=bool(args.get("numeric_uid_gid")),
        directory=bool(args.get("directory")), indicator=indicator,
        human=1000 if args.get("si") else (1024 if args.get("human_readable") else 0),
        inode=bool(args.get("inode")), size=bool(args.get("size")),
        recursive=bool(args.get("recursive")), reverse=bool(args.get("reverse")), sort=sort,
        timefield=args.get("timefield") or "mtime", deref=bool(args.get("dereference")),
        color=color, time_style=style, dirs_first=bool(args.get("group_directories_first")),
        width=width, quote_style=quote_style)
    if args.get("f"):
        opts.color = False
    if args.get("time") is not None:
        words = {"atime": "atime", "access": "atime", "use": "atime", "ctime": "ctime", "status": "ctime",
                 "mtime": "mtime", "modification": "mtime", "birth": "birth", "creation": "birth"}
        if args["time"] not in words:
            await tool.err(f"invalid argument {quote(args['time'])} for '--time'")
            return 1
        opts.timefield = words[args["time"]]
    tabsize = 8
    if args.get("tabsize") is not None:
        try:
            tabsize = int(args["tabsize"])
        except ValueError:
            await tool.err(f"invalid tab size: {quote(args['tabsize'])}")
            return 2
    ls = _Lister(ctx, tool, opts, Writer(ctx))
    ls.tabsize = tabsize
    ignore = list(args.get("ignore") or [])
    if args.get("ignore_backups"):
        ignore += ["*~", ".*~"]
    if not (opts.all or opts.almost):
        ignore += list(args.get("hide") or [])
    ls.ignore = [glob_regex(p) for p in ignore]
    if opts.color:
        palette = color_palette(ctx)
        if palette is None:
            opts.color = False
        else:
            ls.palette = palette
    if width <= 0:
        ls.tabsize = 0
    await ls.run(args.operands, bool(args.get("dereference_command_line")))
    await ls.out.flush()
    return tool.status


class _Lister:
    def __init__(self, ctx: Any, tool: Tool, opts: LsOptions, out: Writer) -> None:
        self.ctx, self.tool, self.o, self.out = ctx, tool, opts, out
        self.names = IdNames()
        self.now = time.time()
        self.first_block = True
        self.colored = False
        self.tabsize = 8
        self.ignore: list[Any] = []
        self.palette: dict[str, str] = dict(_COLORS)

    async def stat_entry(self, name: str, path: str, follow: bool, cmdline: bool) -> Entry | None:
        ctx = self.ctx
        try:
            attr = await ctx.lstat(path)
        except KernelError as e:
            if cmdline:
                await self.tool.fail("cannot access", path, e, 2)
            else:
                await self.tool.fail("cannot access", path, e, 1)
            return None
        entry = Entry(name, path, attr)
        if attr.is_symlink:
            try:
                entry.target = await ctx.readlink(path)
            except KernelError:
                entry.target = None
            try:
                entry.target_attr = await ctx.stat(path)
            except KernelError:
                entry.target_attr = None
            if follow and entry.target_attr is not None:
                entry.attr = entry.target_attr
        return entry

    async def run(self, operands: list[str], deref_cmdline: bool) -> None:
        o = self.o
        if not operands:
            operands = ["."]
            implicit = True
        else:
            implicit = False
        files: list[Entry] = []
        dirs: list[Entry] = []
        follow_cmd = o.deref or deref_cmdline or not (o.directory or o.long or o.indicator == "classify")
        for name in operands:
            e = await self.stat_entry(name, name, o.deref, True)
            if e is None:
                continue
            if e.attr.is_symlink and follow_cmd and e.target_attr is not None:
                e.attr = e.target_attr
            if e.attr.is_dir and not o.directory:
                dirs.append(e)
            else:
                files.append(e)
        files = self.sorted(files)
        if files:
            # GNU sizes the long-format columns over every operand, directories included
            await self.show(files, extra=dirs)
            self.first_block = False
        dirs = self.sorted(dirs)
        header = len(dirs) + len(files) > 1 or o.recursive or (bool(files) and bool(dirs)) \
            or self.tool.status != 0
        for d in dirs:
            await self.list_dir(d.path, header and not (implicit and not o.recursive))

    def sorted(self, entries: list[Entry]) -> list[Entry]:
        o = self.o
        if o.sort == "none":
            return entries

        def name_key(e: Entry) -> bytes:
            return fsencode(e.name)

        if o.sort == "name":
            out = sorted(entries, key=name_key)
        elif o.sort == "size":
            out = sorted(entries, key=lambda e: (-e.attr.size, name_key(e)))
        elif o.sort == "time":
            out = sorted(entries, key=lambda e: (-self.time_of(e.attr), name_key(e)))
        elif o.sort == "extension":
            def ext(e: Entry) -> tuple[bytes, bytes]:
                n = fsencode(e.name)
                i = n.rfind(b".")
                return (n[i:] if i > 0 else b"", n)
            out = sorted(entries, key=ext)
        else:
            out = sorted(entries, key=lambda e: version_key(fsencode(e.name)))
        if o.reverse:
            out.reverse()
        if o.dirs_first:
            out = [e for e in out if self.is_dirish(e)] + [e for e in out if not self.is_dirish(e)]
        return out

    @staticmethod
    def is_dirish(e: Entry) -> bool:
        return e.attr.is_dir or (e.attr.is_symlink and e.target_attr is not None and e.target_attr.is_dir)

    def time_of(self, a: Attr) -> int:
        if self.o.timefield == "ctime":
            return a.ctime_ns
        if self.o.timefield == "atime":
            return a.atime_ns
        if self.o.timefield == "birth":
            return a.birthtime_ns or a.mtime_ns
        return a.mtime_ns

    async def list_dir(self, path: str, header: bool) -> None:
        ctx, o = self.ctx, self.o
        try:
            names = await ctx.listdir(path)
        except KernelError as e:
            if not self.first_block:
                await self.out.write("\n")
            self.first_block = False
            await self.tool.fail("cannot open directory", path, e, 2)
            return
        if not self.first_block:
            await self.out.write("\n")
        self.first_block = False
        if header:
            await self.out.write(self.quote_name(path) + ":\n")
        if o.all:
            names = [".", ".."] + names
        elif not o.almost:
            names = [n for n in names if not n.startswith(".")]
        else:
            names = [n for n in names if n not in (".", "..")]
        if self.ignore:
            names = [n for n in names if not any(rx.match(n) for rx in self.ignore)]
        entries: list[Entry] = []
        for n in names:
            entry = await self.stat_entry(n, join(path, n), o.deref, False)
            if entry is not None:
                entries.append(entry)
        entries = self.sorted(entries)
        if o.long or o.size:
            total = sum(-(-e.attr.blocks // 2) for e in entries)
            await self.out.write(f"total {self.size_text(total * 1024, blocks=True)}\n")
        await self.show(entries)
        if o.recursive:
            for entry in entries:
                if entry.attr.is_dir and entry.name not in (".", ".."):
                    await self.list_dir(entry.path, True)

    # ------------------------------------------------------------------ formatting
    def size_text(self, n: int, blocks: bool = False) -> str:
        if self.o.human:
            return human_size(n, si=self.o.human == 1000)
        return str(n // 1024) if blocks else str(n)

    def quote_name(self, name: str) -> str:
        style = self.o.quote_style
        if style == "literal":
            return name
        if style == "always":
            return quote(name)
        if style in ("plainshell", "plainalways"):
            # shell quoting without $'..': control characters stay as they are
            needs = style == "plainalways" or any(not (c.isalnum() or c in "_-+=.,/:@%^") for c in name)
            if not needs:
                return name
            if "'" in name and not any(ch in name for ch in '"$`\\!'):
                return '"' + name + '"'
            return "'" + name.replace("'", "'\\''") + "'"
        if style in ("escape", "hide"):
            raw = fsencode(name)
            if style == "hide":
                return "".join(chr(c) if 32 <= c < 127 else "?" for c in raw) if any(
                    c < 32 or c == 127 for c in raw) else name
            return "".join(chr(c) if 32 < c < 127 and c != 0x5C else
                           ("\\\\" if c == 0x5C else "\\ " if c == 32 else _C_ESCAPES.get(c, f"\\{c:03o}"))
                           for c in raw)
        if style == "c":
            raw = fsencode(name)
            body = "".join(chr(c) if 32 <= c < 127 and c not in (0x22, 0x5C) else
                           ("\\" + chr(c) if c in (0x22, 0x5C) else _C_ESCAPES.get(c, f"\\{c:03o}"))
                           for c in raw)
            return f'"{body}"'
        from kernel.programs.common import quote_if_needed
        return quote_if_needed(name) if name else "''"

    def indicator(self, a: Attr) -> str:
        style = self.o.indicator
        if style == "none":
            return ""
        if _stat.S_ISDIR(a.mode):
            return "/"
        if style == "slash":
            return ""
        if _stat.S_ISLNK(a.mode):
            return "@"
        if _stat.S_ISFIFO(a.mode):
            return "|"
        if _stat.S_ISSOCK(a.mode):
            return "="
        if style == "classify" and _stat.S_ISREG(a.mode) and a.mode & 0o111:
            return "*"
        return ""

    def color_of(self, e: Entry, a: Attr | None = None) -> str | None:
        a = a or e.attr
        m = a.mode
        pal = self.palette
        key = None
        if _stat.S_ISLNK(m):
            key = "ln" if e.target_attr is not None or a is not e.attr else "or"
            if key == "or" and "or" not in pal:
                key = "ln"
        elif _stat.S_ISDIR(m):
            key = "tw" if m & 0o1002 == 0o1002 else "ow" if m & 0o002 else "st" if m & 0o1000 else "di"
        elif _stat.S_ISFIFO(m):
            key = "pi"
        elif _stat.S_ISSOCK(m):
            key = "so"
        elif _stat.S_ISCHR(m):
            key = "cd"
        elif _stat.S_ISBLK(m):
            key = "bd"
        elif m & _stat.S_ISUID:
            key = "su"
        elif m & _stat.S_ISGID:
            key = "sg"
        elif m & 0o111:
            key = "ex"
        if key is not None and key in pal:
            return pal[key]
        if key in (None, "ex", "su", "sg"):
            name = e.name
            for k, v in pal.items():
                if k.startswith("*") and name.endswith(k[1:]):
                    return v
        return pal.get("fi") or None

    def paint(self, text: str, code: str | None) -> str:
        if not self.o.color or code is None:
            return text
        prefix = ""
        if not self.colored:
            prefix = "\x1b[0m"
            self.colored = True
        return f"{prefix}\x1b[{code}m{text}\x1b[0m"

    def name_cell(self, e: Entry) -> tuple[str, int]:
        """The decorated name and its printed width."""
        shown = self.quote_name(e.name)
        width = len(fsencode(shown).decode("utf-8", "replace"))
        text = self.paint(shown, self.color_of(e))
        ind = ""
        if not (self.o.long and e.attr.is_symlink):
            ind = self.indicator(e.attr)
        return text + ind, width + len(ind)

    def time_text(self, a: Attr) -> str:
        ns = self.time_of(a)
        style = self.o.time_style
        if style == "full-iso":
            return strftime_local(self.ctx, "%Y-%m-%d %H:%M:%S.%N %z", ns)
        if style == "long-iso":
            return strftime_local(self.ctx, "%Y-%m-%d %H:%M", ns)
        recent = self.now - SIX_MONTHS < ns / 1e9 <= self.now + 60
        if style == "iso":
            return strftime_local(self.ctx, "%m-%d %H:%M" if recent else "%Y-%m-%d ", ns)
        if style.startswith("+"):
            fmts = style[1:].split("\n")
            fmt = fmts[0] if recent or len(fmts) == 1 else fmts[1]
            return strftime_local(self.ctx, fmt, ns)
        secs = ns // 1_000_000_000
        tm = time.gmtime(secs + tz_offset(self.ctx, secs))
        mon = time.strftime("%b", tm)
        if recent:
            return f"{mon} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}"
        return f"{mon} {tm.tm_mday:2d}  {tm.tm_year}"

    async def show(self, entries: list[Entry], extra: list[Entry] | None = None) -> None:
        o = self.o
        if not entries:
            return
        if o.long:
            await self.show_long(entries, extra or [])
            return
        prefix_w = 0
        cells = []
        ino_w = max(len(str(e.attr.ino)) for e in entries) if o.inode else 0
        blk_w = max(len(self.size_text(-(-e.attr.blocks // 2) * 1024, True)) for e in entries) if o.size else 0
        for e in entries:
            pre = ""
            if o.inode:
                pre += f"{e.attr.ino:>{ino_w if o.fmt != 'single' else ino_w}} "
            if o.size:
                pre += f"{self.size_text(-(-e.attr.blocks // 2) * 1024, True):>{blk_w}} "
            text, w = self.name_cell(e)
            cells.append((pre + text, len(pre) + w))
        del prefix_w
        if o.fmt == "single":
            for text, _ in cells:
                await self.out.write(text + "\n")
            return
        if o.fmt == "commas":
            parts = []
            pos = 0
            for i, (text, w) in enumerate(cells):
                if i:
                    if o.width <= 0 or pos + w + 2 < o.width:
                        parts.append(", ")
                        pos += 2
                    else:
                        parts.append(",\n")
                        pos = 0
                parts.append(text)
                pos += w
            await self.out.write("".join(parts) + "\n")
            return
        await self.show_columns(cells, across=o.fmt == "across")

    async def show_columns(self, cells: list[tuple[str, int]], across: bool) -> None:
        """GNU's column layout: the most columns whose widths (name + 2 gap) fit the line."""
        n = len(cells)
        width = self.o.width
        widths = [w for _, w in cells]
        best_cols, best_widths = 1, [max(widths)]
        if width <= 0:
            best_cols = n
            best_widths = list(widths)
        else:
            for cols in range(min(n, max(1, width // 3)), 0, -1):
                rows = -(-n // cols)
                if across:
                    colw = [0] * cols
                    for i, w in enumerate(widths):
                        c = i % cols
                        colw[c] = max(colw[c], w)
                else:
                    cols_used = -(-n // rows)
                    if cols_used != cols:
                        continue
                    colw = [max(widths[c * rows:(c + 1) * rows]) for c in range(cols)]
                total = sum(w + 2 for w in colw[:-1]) + colw[-1]
                if total < width or cols == 1:
                    best_cols, best_widths = cols, colw
                    break
        cols = best_cols
        rows = -(-n // cols)
        lines = []
        for r in range(rows):
            idx = [r * cols + c for c in range(cols)] if across else [c * rows + r for c in range(cols)]
            idx = [i for i in idx if i < n]
            parts = []
            pos = 0
            for k, i in enumerate(idx):
                text, w = cells[i]
                col = (i % cols) if across else (i // rows)
                parts.append(text)
                if k < len(idx) - 1:
                    parts.append(self.pad(pos + w, pos + best_widths[col] + 2))
                pos += best_widths[col] + 2
            lines.append("".join(parts) + "\n")
        await self.out.write("".join(lines))

    def pad(self, start: int, end: int) -> str:
        """GNU's indent(): tabs where a tab stop fits before *end*, spaces for the rest."""
        out = []
        t = self.tabsize
        while start < end:
            if t and end // t > (start + 1) // t:
                out.append("\t")
                start += t - start % t
            else:
                out.append(" ")
                start += 1
        return "".join(out)

    async def show_long(self, entries: list[Entry], extra: list[Entry]) -> None:
        o = self.o
        if o.owner or o.group:
            await self.names.load(self.ctx) if not o.numeric else None
        rows: list[tuple[Entry, str, str, str, str, str, str, str, str]] = []
        for e in entries + extra:
            a = e.attr
            user = str(a.uid) if o.numeric else self.names.user(a.uid)
            group = str(a.gid) if o.numeric else self.names.group(a.gid)
            if _stat.S_ISCHR(a.mode) or _stat.S_ISBLK(a.mode):
                size = f"{(a.rdev >> 8) & 0xFFF}, {(a.rdev & 0xFF) | ((a.rdev >> 12) & 0xFFF00)}"
            else:
                size = self.size_text(a.size)
            rows.append((e, str(a.ino), self.size_text(-(-a.blocks // 2) * 1024, True),
                         mode_string(a.mode), str(a.nlink), user, group, size, self.time_text(a)))
        w = [max(len(str(r[i])) for r in rows) for i in range(1, 9)]
        for e, ino, blk, mode, nlink, user, group, size, when in rows:
            parts = []
            if o.inode:
                parts.append(ino.rjust(w[0]))
            if o.size:
                parts.append(blk.rjust(w[1]))
            parts.append(mode)
            parts.append(nlink.rjust(w[3]))
            if o.owner:
                parts.append(user.ljust(w[4]))
            if o.group:
                parts.append(group.ljust(w[5]))
            parts.append(size.rjust(w[6]))
            parts.append(when)
            text, _ = self.name_cell(e)
            if e in extra:
                continue
            line = " ".join(parts) + " " + text
            if e.attr.is_symlink and e.target is not None:
                target = self.quote_name(e.target)
                if e.target_attr is not None:
                    target = self.paint(target, self.color_of(e, e.target_attr)) \
                        + self.indicator(e.target_attr)
                line += " -> " + target
            await self.out.write(line + "\n")


# ============================================================================ stat

STAT = Spec("stat", "[OPTION]... FILE...", "Display file or file system status.", [
    Opt("L", "dereference", help="follow links"),
    Opt("c", "format", arg="FORMAT", help="use the specified FORMAT instead of the default"),
    Opt(None, "printf", arg="FORMAT", help="like --format, but interpret backslash escapes"),
    Opt("t", "terse", help="print the information in terse form"),
    Opt("f", "file-system", help="display file system status instead of file status"),
])

_TYPE_NAME = {_stat.S_IFREG: "regular file", _stat.S_IFDIR: "directory", _stat.S_IFLNK: "symbolic link",
              _stat.S_IFIFO: "fifo", _stat.S_IFSOCK: "socket", _stat.S_IFCHR: "character special file",
              _stat.S_IFBLK: "block special file"}

DEFAULT_FORMAT = ("  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\n"
                  "Device: %Hd,%Ld\tInode: %-11i Links: %h\n"
                  "Access: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\n"
                  "Access: %x\nModify: %y\nChange: %z\n Birth: %w\n")
DEVICE_FORMAT = ("  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\n"
                 "Device: %Hd,%Ld\tInode: %-11i Links: %-5h Device type: %Hr,%Lr\n"
                 "Access: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\n"
                 "Access: %x\nModify: %y\nChange: %z\n Birth: %w\n")
TERSE_FORMAT = "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o\n"
FS_FORMAT = ("  File: \"%n\"\n    ID: %-8i Namelen: %-7l Type: %T\nBlock size: %-10s Fundamental block "
             "size: %S\nBlocks: Total: %-10b Free: %-10f Available: %a\nInodes: Total: %-10c Free: %d\n")


def unescape(text: str) -> str:
    """printf-style backslash escapes (``\\n``, ``\\t``, ``\\0NNN``, ``\\xHH``...)."""
    out = []
    i = 0
    simple = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r",
              "v": "\v", '"': '"', "e": "\x1b"}
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 == len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "01234567":
            j = i + 1
            digits = ""
            while j < len(text) and len(digits) < 3 and text[j] in "01234567":
                digits += text[j]
                j += 1
            out.append(chr(int(digits, 8)))
            i = j
        elif nxt == "x" and i + 2 < len(text) and text[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            digits = ""
            while j < len(text) and len(digits) < 2 and text[j] in "0123456789abcdefABCDEF":
                digits += text[j]
                j += 1
            out.append(chr(int(digits, 16)))
            i = j
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out)


class _StatFormatter:
    def __init__(self, ctx: Any, names: IdNames, devices: dict[str, int]) -> None:
        self.ctx, self.names, self.devices = ctx, names, devices
        self.mount_point = "/"

    def time_field(self, ns: int, kind: str) -> str:
        if kind == "human":
            return strftime_local(self.ctx, "%Y-%m-%d %H:%M:%S.%N %z", ns)
        return str(ns // 1_000_000_000)

    def field(self, c: str, name: str, a: Attr, target: str | None, dev: int, hl: str) -> tuple[str, bool]:
        """(text, numeric) of one directive."""
        if c == "n":
            return name, False
        if c == "N":
            return (quote(name) + (f" -> {quote(target)}" if target is not None else "")), False
        if c == "s":
            return str(a.size), True
        if c == "b":
            return str(a.blocks), True
        if c == "B":
            return "512", True
        if c == "o":
            return str(a.blksize if a.blksize else 4096), True
        if c == "a":
            return f"{a.mode & 0o7777:o}", True
        if c == "A":
            return mode_string(a.mode), False
        if c == "f":
            return f"{a.mode:x}", False
        if c == "F":
            kind = _TYPE_NAME.get(_stat.S_IFMT(a.mode), "weird file")
            if kind == "regular file" and a.size == 0:
                kind = "regular empty file"
            return kind, False
        if c == "h":
            return str(a.nlink), True
        if c == "i":
            return str(a.ino), True
        if c == "u":
            return str(a.uid), True
        if c == "g":
            return str(a.gid), True
        if c == "U":
            return self.names.user(a.uid), False
        if c == "G":
            return self.names.group(a.gid), False
        if c == "d":
            if hl == "H":
                return str(dev >> 8), True
            if hl == "L":
                return str(dev & 0xFF), True
            return str(dev), True
        if c == "D":
            return f"{dev:x}", False
        if c == "r":
            if hl == "H":
                return str((a.rdev >> 8) & 0xFFF), True
            if hl == "L":
                return str((a.rdev & 0xFF) | ((a.rdev >> 12) & 0xFFF00)), True
            return str(a.rdev), True
        if c == "t":
            return f"{(a.rdev >> 8) & 0xFFF:x}", False
        if c == "T":
            return f"{(a.rdev & 0xFF) | ((a.rdev >> 12) & 0xFFF00):x}", False
        if c == "m":
            return self.mount_point, False
        if c in "xyzw":
            ns = {"x": a.atime_ns, "y": a.mtime_ns, "z": a.ctime_ns, "w": a.birthtime_ns}[c]
            if c == "w" and not ns:
                return "-", False
            return self.time_field(ns, "human"), False
        if c in "XYZW":
            ns = {"X": a.atime_ns, "Y": a.mtime_ns, "Z": a.ctime_ns, "W": a.birthtime_ns}[c]
            return str(ns // 1_000_000_000), True
        return "?", False

    def render(self, fmt: str, name: str, a: Attr, target: str | None, dev: int) -> str:
        out = []
        i = 0
        while i < len(fmt):
            ch = fmt[i]
            if ch != "%":
                out.append(ch)
                i += 1
                continue
            j = i + 1
            flags = ""
            while j < len(fmt) and fmt[j] in "-+ #0'":
                flags += fmt[j]
                j += 1
            w = ""
            while j < len(fmt) and fmt[j].isdigit():
                w += fmt[j]
                j += 1
            prec = None
            if j < len(fmt) and fmt[j] == ".":
                j += 1
                p = ""
                while j < len(fmt) and fmt[j].isdigit():
                    p += fmt[j]
                    j += 1
                prec = int(p or 0)
            if j >= len(fmt):
                out.append("%")
                break
            c = fmt[j]
            hl = ""
            if c in "HL" and j + 1 < len(fmt) and fmt[j + 1] in "dr":
                hl = c
                j += 1
                c = fmt[j]
            i = j + 1
            if c == "%":
                out.append("%")
                continue
            text, numeric = self.field(c, name, a, target, dev, hl)
            if prec is not None and not numeric:
                text = text[:prec]
            if c in "xyzw" and prec is not None:
                pass
            width = int(w) if w else 0
            if "-" in flags:
                text = text.ljust(width)
            elif "0" in flags and numeric:
                text = text.rjust(width, "0")
            else:
                text = text.rjust(width)
            out.append(text)
        return "".join(out)


async def _devices(ctx: Any) -> list[tuple[str, int]]:
    """(mount point, device number) from /proc/self/mountinfo, longest path first."""
    out: list[tuple[str, int]] = []
    try:
        fd = await ctx.open("/proc/self/mountinfo")
    except KernelError:
        return out
    try:
        data = await ctx.read_all(fd)
    finally:
        await ctx.close(fd)
    for line in data.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) >= 5 and ":" in f[2]:
            major, minor = f[2].split(":")
            out.append((f[4], (int(major) << 8) | int(minor)))
    out.sort(key=lambda x: -len(x[0]))
    return out


async def device_of(ctx: Any, path: str, table: list[tuple[str, int]]) -> tuple[int, str]:
    """(device number, mount point) of the mount *path* lives in (longest prefix wins)."""
    try:
        real = await ctx.realpath(path)
    except KernelError:
        real = path if path.startswith("/") else join(ctx.getcwd(), path)
    for point, dev in table:
        if real == point or real.startswith(point.rstrip("/") + "/") or point == "/":
            return dev, point
    return 0, "/"


async def prog_stat(ctx: Any) -> int:
    args = await parse_or_exit(ctx, STAT)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "stat")
    if not args.operands:
        return await tool.usage("missing operand")
    names = IdNames()
    await names.load(ctx)
    table = await _devices(ctx)
    fmt_arg = args.get("format")
    printf = args.get("printf")
    fmtr = _StatFormatter(ctx, names, {})
    out = Writer(ctx)
    for name in args.operands:
        try:
            a = await (ctx.stat(name) if args.get("dereference") else ctx.lstat(name))
        except KernelError as e:
            await out.flush()
            await tool.fail("cannot statx", name, e)
            continue
        if args.get("file_system"):
            await out.write(await _fs_status(ctx, name, fmt_arg, printf))
            continue
        target = None
        if a.is_symlink:
            try:
                target = await ctx.readlink(name)
            except KernelError:
                target = None
        dev, fmtr.mount_point = await device_of(ctx, name, table)
        if printf is not None:
            fmt = unescape(printf)
        elif fmt_arg is not None:
            fmt = fmt_arg
        elif args.get("terse"):
            fmt = TERSE_FORMAT
        elif _stat.S_ISCHR(a.mode) or _stat.S_ISBLK(a.mode):
            fmt = DEVICE_FORMAT
        else:
            fmt = DEFAULT_FORMAT
        if fmt in (DEFAULT_FORMAT, DEVICE_FORMAT):
            shown = quote(name) if target is not None else name
            text = fmtr.render(fmt.replace("%N", "\x00N"), name, a, target, dev)
            text = text.replace("\x00N", shown + (f" -> {quote(target)}" if target is not None else ""))
        else:
            text = fmtr.render(fmt, name, a, target, dev)
        if fmt_arg is not None and printf is None:
            text += "\n"
        await out.write(text)
    await out.flush()
    return tool.status


async def _fs_status(ctx: Any, name: str, fmt: str | None, printf: str | None) -> str:
    statfs = getattr(ctx, "statfs", None)
    st = await statfs(name) if statfs is not None else None
    values = {
        "n": name, "i": "0", "l": str(getattr(st, "namemax", 255)), "T": "vfsfuse", "t": "0",
        "s": str(getattr(st, "block_size", 4096)), "S": str(getattr(st, "fragment_size", 4096)),
        "b": str(getattr(st, "blocks", 0)), "f": str(getattr(st, "blocks_free", 0)),
        "a": str(getattr(st, "blocks_avail", 0)), "c": str(getattr(st, "files", 0)),
        "d": str(getattr(st, "files_free", 0)),
    }
    text = unescape(printf) if printf is not None else (fmt + "\n" if fmt is not None else FS_FORMAT)
    out = []
    i = 0
    while i < len(text):
        if text[i] == "%" and i + 1 < len(text):
            j = i + 1
            spec = ""
            while j < len(text) and (text[j] in "-0123456789"):
                spec += text[j]
                j += 1
            c = text[j] if j < len(text) else ""
            v = "%" if c == "%" else values.get(c, "?")
            if spec.startswith("-"):
                v = v.ljust(int(spec[1:] or 0))
            elif spec:
                v = v.rjust(int(spec))
            out.append(v)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


PROGRAMS = {"ls": prog_ls, "stat": prog_stat}
