"""Space and shape of trees: du (allocated or apparent sizes), df (per mount, from the
``statfs`` syscall and /proc/mounts), tree (tree 2.x's drawing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.fs import Attr
from kernel.programs.common import Writer, fsencode, human_size, quote, strerror
from kernel.programs.files_base import Tool, join, parse_size
from kernel.programs.flags import Opt, Spec, parse_or_exit

# ============================================================================ du

DU = Spec("du", "[OPTION]... [FILE]...", "Summarize device usage of the set of FILEs, recursively "
          "for directories.", [
    Opt("0", "null", help="end each output line with NUL, not newline"),
    Opt("a", "all", help="write counts for all files, not just directories"),
    Opt(None, "apparent-size", help="print apparent sizes rather than device usage"),
    Opt("B", "block-size", arg="SIZE", help="scale sizes by SIZE before printing them"),
    Opt("b", "bytes", help="equivalent to '--apparent-size --block-size=1'"),
    Opt("c", "total", help="produce a grand total"),
    Opt("D", "dereference-args", help="dereference only symlinks that are listed on the command line"),
    Opt("H", None, dest="dereference_args", help="equivalent to --dereference-args (-D)"),
    Opt("d", "max-depth", arg="N", help="print the total for a directory only if it is N or fewer levels below"),
    Opt("h", "human-readable", help="print sizes in human readable format (e.g., 1K 234M 2G)"),
    Opt(None, "si", help="like -h, but use powers of 1000 not 1024"),
    Opt("k", None, help="like --block-size=1K"),
    Opt("L", "dereference", help="dereference all symbolic links"),
    Opt("l", "count-links", help="count sizes many times if hard linked"),
    Opt("m", None, help="like --block-size=1M"),
    Opt("P", "no-dereference", help="don't follow any symbolic links (this is the default)"),
    Opt("S", "separate-dirs", help="for directories do not include size of subdirectories"),
    Opt("s", "summarize", help="display only a total for each argument"),
    Opt("x", "one-file-system", help="skip directories on different file systems"),
    Opt(None, "inodes", help="list inode usage information instead of block usage"),
])


@dataclass
class DuOpts:
    all: bool
    apparent: bool
    block: int
    human: int
    max_depth: int | None
    deref: str
    count_links: bool
    separate: bool
    end: str
    inodes: bool


class _Du:
    def __init__(self, ctx: Any, tool: Tool, o: DuOpts, out: Writer) -> None:
        self.ctx, self.tool, self.o, self.out = ctx, tool, o, out
        self.seen: set[int] = set()

    def size_of(self, a: Attr) -> int:
        if self.o.inodes:
            return 1
        return a.size if self.o.apparent else a.blocks * 512

    def text(self, n: int) -> str:
        o = self.o
        if o.inodes:
            return str(n)
        if o.human:
            return human_size(n, si=o.human == 1000)
        return str(-(-n // o.block))

    async def emit(self, n: int, path: str) -> None:
        await self.out.write(f"{self.text(n)}\t{path}{self.o.end}")

    async def walk(self, path: str, depth: int, top: bool) -> int:
        ctx, o = self.ctx, self.o
        try:
            follow = o.deref == "all" or (o.deref == "args" and top)
            a = await (ctx.stat(path) if follow else ctx.lstat(path))
        except KernelError as e:
            await self.out.flush()
            await self.tool.fail("cannot access", path, e)
            return 0
        if not o.count_links and a.nlink > 1 and not a.is_dir:
            if a.ino in self.seen:
                return 0
            self.seen.add(a.ino)
        total = self.size_of(a)
        if a.is_dir:
            if a.ino in self.seen and not top:
                return 0
            self.seen.add(a.ino)
            try:
                names = await ctx.listdir(path)
            except KernelError as e:
                await self.out.flush()
                await self.tool.fail("cannot read directory", path, e)
                names = []
            for n in names:
                sub = await self.walk(join(path, n), depth + 1, False)
                child_is_dir = await _is_dir(ctx, join(path, n))
                if not (o.separate and child_is_dir):
                    total += sub
        if a.is_dir or o.all or top:
            if o.max_depth is None or depth <= o.max_depth:
                await self.emit(total, path)
        return total


async def _is_dir(ctx: Any, path: str) -> bool:
    try:
        return (await ctx.lstat(path)).is_dir
    except KernelError:
        return False


async def prog_du(ctx: Any) -> int:
    args = await parse_or_exit(ctx, DU)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "du")
    block = 1024
    human = 0
    apparent = bool(args.get("apparent_size"))
    for key, value in args.order:
        if key == "bytes":
            block, apparent, human = 1, True, 0
        elif key == "k":
            block, human = 1024, 0
        elif key == "m":
            block, human = 1024 * 1024, 0
        elif key == "block_size":
            try:
                block = parse_size(value)
                if block <= 0:
                    raise ValueError
            except ValueError:
                await tool.err(f"invalid -B argument {quote(value)}")
                return 1
            human = 0
        elif key == "human_readable":
            human = 1024
        elif key == "si":
            human = 1000
    max_depth = None
    if args.get("max_depth") is not None:
        try:
            max_depth = int(args["max_depth"])
            if max_depth < 0:
                raise ValueError
        except ValueError:
            await tool.err(f"invalid maximum depth {quote(args['max_depth'])}")
            return 1
    if args.get("summarize"):
        if max_depth not in (None, 0):
            await tool.err(f"warning: summarizing conflicts with --max-depth={max_depth}")
            return await tool.usage("") if False else 1
        max_depth = 0
        if args.get("all"):
            await tool.err("cannot both summarize and show all entries")
            await ctx.write_all(2, "Try 'du --help' for more information.\n")
            return 1
    deref = "all" if args.get("dereference") else ("args" if args.get("dereference_args") else "none")
    o = DuOpts(bool(args.get("all")), apparent, block, human, max_depth, deref,
               bool(args.get("count_links")), bool(args.get("separate_dirs")),
               "\0" if args.get("null") else "\n", bool(args.get("inodes")))
    du = _Du(ctx, tool, o, Writer(ctx))
    grand = 0
    for path in args.operands or ["."]:
        grand += await du.walk(path, 0, True)
    if args.get("total"):
        await du.emit(grand, "total")
    await du.out.flush()
    return tool.status


# ============================================================================ df

DF = Spec("df", "[OPTION]... [FILE]...", "Show information about the file system on which each "
          "FILE resides,\nor all file systems by default.", [
    Opt("a", "all", help="include pseudo, duplicate, inaccessible file systems"),
    Opt("B", "block-size", arg="SIZE", help="scale sizes by SIZE before printing them"),
    Opt("h", "human-readable", help="print sizes in powers of 1024 (e.g., 1023M)"),
    Opt("H", "si", help="print sizes in powers of 1000 (e.g., 1.1G)"),
    Opt("i", "inodes", help="list inode information instead of block usage"),
    Opt("k", None, help="like --block-size=1K"),
    Opt("l", "local", help="limit listing to local file systems"),
    Opt("P", "portability", help="use the POSIX output format"),
    Opt(None, "total", help="elide all entries insignificant to available space, and produce a grand total"),
    Opt("t", "type", arg="TYPE", action="append", help="limit listing to file systems of type TYPE"),
    Opt("T", "print-type", help="print file system type"),
    Opt("x", "exclude-type", arg="TYPE", action="append", help="limit listing to file systems not of type TYPE"),
    Opt(None, "sync", help="invoke sync before getting usage info"),
    Opt(None, "no-sync", help="do not invoke sync before getting usage info (default)"),
])


async def _mounts(ctx: Any) -> list[tuple[str, str, str]]:
    """(source, mount point, type) from /proc/mounts, in mount order."""
    try:
        fd = await ctx.open("/proc/mounts")
    except KernelError:
        return [("vfsfuse", "/", "vfsfuse")]
    try:
        data = await ctx.read_all(fd)
    finally:
        await ctx.close(fd)
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        f = line.split()
        if len(f) >= 3:
            unesc = [x.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\") for x in f[:3]]
            out.append((unesc[0], unesc[1], unesc[2]))
    return out


async def prog_df(ctx: Any) -> int:
    args = await parse_or_exit(ctx, DF)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "df")
    block = 1024
    human = 0
    for key, value in args.order:
        if key == "block_size":
            try:
                block = parse_size(value)
                if block <= 0:
                    raise ValueError
            except ValueError:
                await tool.err(f"invalid --block-size argument {quote(value)}")
                return 1
            human = 0
        elif key == "k":
            block, human = 1024, 0
        elif key == "human_readable":
            human = 1024
        elif key == "si":
            human = 1000
    posix = bool(args.get("portability"))
    inodes = bool(args.get("inodes"))
    mounts = await _mounts(ctx)
    chosen: list[tuple[str, str, str]] = []
    if args.operands:
        for name in args.operands:
            try:
                real = await ctx.realpath(name)
            except KernelError as e:
                await tool.fail("", name, e)
                continue
            best = None
            for m in mounts:
                p = m[1]
                if real == p or real.startswith(p.rstrip("/") + "/"):
                    if best is None or len(p) >= len(best[1]):
                        best = m
            if best is not None:
                chosen.append(best)
    else:
        chosen = mounts
    types = set(args.get("type") or [])
    excluded = set(args.get("exclude_type") or [])
    rows = []
    totals = [0, 0, 0]
    for source, point, fstype in chosen:
        if types and fstype not in types or fstype in excluded:
            continue
        try:
            st = await ctx.statfs(point)
        except KernelError as e:
            await tool.fail("", point, e)
            continue
        if inodes:
            total, free = st.files, st.files_free
            used, avail = total - free, free
            unit = 1
        else:
            total, free, avail = st.blocks, st.blocks_free, st.blocks_avail
            used = total - free
            unit = st.fragment_size or st.block_size
        if not args.operands and not args.get("all") and total == 0:
            continue  # pseudo file systems (proc, an empty devfs) are listed with -a only
        denom = used + avail
        pct = "-" if denom == 0 else f"{-(-used * 100 // denom)}%"

        def fmt(n: int, unit: int = unit) -> str:
            if inodes:
                return human_size(n, si=human == 1000) if human else str(n)
            if human:
                return human_size(n * unit, si=human == 1000)
            return str(-(-n * unit // block))
        totals[0] += total * (1 if inodes else unit)
        totals[1] += used * (1 if inodes else unit)
        totals[2] += avail * (1 if inodes else unit)
        rows.append([source, fstype, fmt(total), fmt(used), fmt(avail), pct, point])
    if args.get("total") and rows:
        def fmt_t(n: int) -> str:
            if human:
                return human_size(n, si=human == 1000)
            return str(n if inodes else -(-n // block))
        denom = totals[1] + totals[2]
        pct = "-" if denom == 0 else f"{-(-totals[1] * 100 // denom)}%"
        rows.append(["total", "-", fmt_t(totals[0]), fmt_t(totals[1]), fmt_t(totals[2]), pct, "-"])
    if inodes:
        head = ["Filesystem", "Type", "Inodes", "IUsed", "IFree", "IUse%", "Mounted on"]
    elif human:
        head = ["Filesystem", "Type", "Size", "Used", "Avail", "Use%", "Mounted on"]
    elif posix:
        size_head = f"{block // 1024}K-blocks" if block % 1024 == 0 else f"{block}-blocks"
        head = ["Filesystem", "Type", "1024-blocks" if block == 1024 else size_head, "Used",
                "Available", "Capacity", "Mounted on"]
    else:
        size_head = f"{block // 1024}K-blocks" if block % 1024 == 0 else f"{block}B-blocks"
        if block % (1024 * 1024) == 0:
            size_head = f"{block // (1024 * 1024)}M-blocks"
        head = ["Filesystem", "Type", size_head, "Used", "Available", "Use%", "Mounted on"]
    show_type = bool(args.get("print_type"))
    cols = [0, 1, 2, 3, 4, 5, 6] if show_type else [0, 2, 3, 4, 5, 6]
    minimum = {0: 14, 1: 4, 2: 5, 3: 5, 4: 5, 5: 4, 6: 0}
    table = [head] + rows
    widths = {c: max([minimum[c]] + [len(r[c]) for r in table]) for c in cols}
    if posix:
        widths = {c: max(len(r[c]) for r in table) for c in cols}
    lines = []
    for r in table:
        parts = []
        for c in cols:
            if c == 6:
                parts.append(r[c])
            elif c in (0, 1):
                parts.append(r[c].ljust(widths[c]))
            else:
                parts.append(r[c].rjust(widths[c]))
        lines.append(" ".join(parts).rstrip() + "\n")
    await ctx.write_all(1, fsencode("".join(lines)))
    return tool.status


# ============================================================================ tree

TREE = Spec("tree", "[-adfFilpsuDh] [-L level] [--noreport] [--] [directory ...]",
            "List contents of directories in a tree-like format.", [
    Opt("a", None, dest="all", help="all files are listed"),
    Opt("d", None, dest="dirs_only", help="list directories only"),
    Opt("f", None, dest="full", help="print the full path prefix for each file"),
    Opt("F", None, dest="classify", help="appends '/', '=', '*', '@', '|' or '>' as per ls -F"),
    Opt("i", None, dest="no_indent", help="don't print indentation lines"),
    Opt("L", None, arg="level", dest="level", help="descend only level directories deep"),
    Opt("l", None, dest="follow", help="follow symbolic links like directories"),
    Opt("p", None, dest="perms", help="print the protections for each file"),
    Opt("s", None, dest="size", help="print the size in bytes of each file"),
    Opt("h", None, dest="human", help="print the size in a more human readable way"),
    Opt("r", None, dest="reverse", help="sort files in reverse alphanumeric order"),
    Opt("U", None, dest="unsorted", help="leave files unsorted"),
    Opt(None, "noreport", help="turn off file/directory count at end of tree listing"),
    Opt(None, "dirsfirst", help="list directories before files"),
    Opt("n", None, dest="nocolor", help="turn colorization off always"),
    Opt("C", None, dest="color", help="turn colorization on always"),
    Opt(None, "charset", arg="X", help="use charset X for the line drawing (ascii for plain)"),
])


async def prog_tree(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TREE)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "tree")
    level = None
    if args.get("level") is not None:
        try:
            level = int(args["level"])
            if level < 1:
                raise ValueError
        except ValueError:
            await tool.err("Invalid level, must be greater than 0.")
            return 1
    ascii_lines = (args.get("charset") or "").lower() in ("ascii", "us-ascii")
    branch, last, pipe, space = ("|-- ", "`-- ", "|   ", "    ") if ascii_lines else \
        ("├── ", "└── ", "│   ", "    ")
    out = Writer(ctx)
    counts = [0, 0]
    from kernel.programs.common import mode_string

    def decorate(name: str, a: Attr | None, path: str) -> str:
        text = name
        if args.get("perms") or args.get("size") or args.get("human"):
            bits = []
            if a is not None:
                if args.get("perms"):
                    bits.append(mode_string(a.mode))
                if args.get("human"):
                    bits.append(human_size(a.size).rjust(4))
                elif args.get("size"):
                    bits.append(str(a.size).rjust(11))
            text = f"[{' '.join(bits)}]  {text}"
        if a is not None and args.get("classify"):
            if a.is_dir:
                text += "/"
            elif a.is_symlink:
                pass
            elif a.mode & 0o111:
                text += "*"
        return text

    async def walk(path: str, prefix: str, depth: int, ancestors: set[int]) -> None:
        try:
            names = await ctx.listdir(path)
        except KernelError as e:
            await out.write(f" [error opening dir: {strerror(e)}]\n")
            return
        if not args.get("all"):
            names = [n for n in names if not n.startswith(".")]
        entries = []
        for n in names:
            p = join(path, n)
            try:
                a = await ctx.lstat(p)
            except KernelError:
                continue
            target_attr = None
            if a.is_symlink:
                try:
                    target_attr = await ctx.stat(p)
                except KernelError:
                    target_attr = None
            is_dir = a.is_dir or (target_attr is not None and target_attr.is_dir and a.is_symlink)
            if args.get("dirs_only") and not is_dir:
                continue
            entries.append((n, p, a, target_attr, is_dir))
        if not args.get("unsorted"):
            entries.sort(key=lambda e: fsencode(e[0]), reverse=bool(args.get("reverse")))
        if args.get("dirsfirst"):
            entries.sort(key=lambda e: not e[4])
        for k, (n, p, a, ta, is_dir) in enumerate(entries):
            is_last = k == len(entries) - 1
            shown = p if args.get("full") else n
            line = ("" if args.get("no_indent") else prefix + (last if is_last else branch)) + decorate(shown, a, p)
            if a.is_symlink:
                try:
                    line += " -> " + await ctx.readlink(p)
                except KernelError:
                    pass
                if ta is not None and args.get("classify"):
                    line += "/" if ta.is_dir else ("*" if ta.mode & 0o111 else "")
            await out.write(line)
            if a.is_dir or (a.is_symlink and is_dir):
                counts[0] += 1
                if a.is_dir and (level is None or depth < level) and a.ino not in ancestors:
                    await out.write("\n")
                    await walk(p, prefix + (space if is_last else pipe), depth + 1, ancestors | {a.ino})
                    continue
                if a.is_symlink and args.get("follow") and ta is not None and ta.ino not in ancestors \
                        and (level is None or depth < level):
                    await out.write("\n")
                    await walk(p, prefix + (space if is_last else pipe), depth + 1, ancestors | {ta.ino})
                    continue
            else:
                counts[1] += 1
            await out.write("\n")

    for top in args.operands or ["."]:
        try:
            a = await ctx.stat(top)
        except KernelError:
            await out.write(f"{top}  [error opening dir]\n")
            tool.status = 2
            continue
        if not a.is_dir:
            await out.write(f"{top}  [error opening dir]\n")
            tool.status = 2
            continue
        await out.write(top + "\n")
        await walk(top, "", 1, {a.ino})
    if not args.get("noreport"):
        d, f = counts
        text = f"\n{d} director{'y' if d == 1 else 'ies'}"
        if not args.get("dirs_only"):
            text += f", {f} file{'' if f == 1 else 's'}"
        await out.write(text + "\n")
    await out.flush()
    return tool.status


PROGRAMS = {"du": prog_du, "df": prog_df, "tree": prog_tree}
