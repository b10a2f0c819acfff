"""find and xargs: walking trees with an expression, building command lines from input.

find parses its expression into a tree of closures once (``-o`` below ``-a`` below ``!``, as
GNU's precedence) and evaluates it per file in pre-order (post-order with ``-depth``/``-delete``);
``-exec`` and xargs start children with ``ctx.spawn`` and wait for them."""

from __future__ import annotations

import stat as _stat
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from kernel.errors import KernelError
from kernel.fs import Attr
from kernel.programs.common import IdNames, Reader, Writer, fsencode, mode_string, quote, strerror
from kernel.programs.files_base import Tool, base_name, glob_regex, join, parse_mode
from kernel.programs.files_ls import strftime_local, unescape
from kernel.programs.flags import VERSION

# ============================================================================ find

@dataclass
class Visit:
    """One file during the walk."""

    path: str
    start: str
    depth: int
    attr: Attr          # lstat, or stat when following
    link_ok: bool = True


class FindError(Exception):
    """A bad expression: the message and find's exit status."""


Pred = Callable[[Visit], Awaitable[bool]]


@dataclass
class FindState:
    ctx: Any
    tool: Tool
    out: Writer
    names: IdNames
    now: float
    follow: str = "P"                  # P never, L always, H command line
    maxdepth: int | None = None
    mindepth: int = 0
    depth_first: bool = False
    has_action: bool = False
    pending: list["_ExecPlus"] = field(default_factory=list)
    quit: bool = False
    pruned: bool = False


def _num_test(text: str, what: str) -> Callable[[int], bool]:
    """find's numeric arguments: ``+N`` more than, ``-N`` less than, ``N`` exactly."""
    sign = text[:1]
    body = text[1:] if sign in "+-" else text
    if not body.isdigit():
        raise FindError(f"invalid argument `{text}' to `{what}'")
    n = int(body)
    if sign == "+":
        return lambda v: v > n
    if sign == "-":
        return lambda v: v < n
    return lambda v: v == n


_SIZE_UNITS = {"b": 512, "c": 1, "w": 2, "k": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


class _ExecPlus:
    """``-exec cmd {} +``: paths gathered and run in batches."""

    def __init__(self, st: FindState, argv: list[str]) -> None:
        self.st, self.argv = st, argv
        self.paths: list[str] = []
        self.size = 0

    async def add(self, path: str) -> None:
        self.paths.append(path)
        self.size += len(path) + 1
        if len(self.paths) >= 4096 or self.size > 120_000:
            await self.flush()

    async def flush(self) -> None:
        if not self.paths:
            return
        paths, self.paths, self.size = self.paths, [], 0
        code = await run_command(self.st.ctx, self.st.out, self.argv[:-1] + paths, "find")
        if code != 0:
            self.st.tool.status = 1


async def run_command(ctx: Any, out: Writer, argv: list[str], prog: str, cwd: str | None = None) -> int:
    """Run *argv* as a child with our stdio; its exit status (126/127 when it cannot run,
    128+N when killed by signal N)."""
    await out.flush()
    try:
        pid = await ctx.spawn(argv, cwd=cwd)
    except KernelError as e:
        await ctx.write_all(2, fsencode(f"{prog}: {quote(argv[0])}: {strerror(e)}\n"))
        return 127 if e.code == "ENOENT" else 126
    _, status = await ctx.waitpid(pid)
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


class FindParser:
    """Turns the expression words into one predicate (GNU precedence: ``!`` > ``-a`` > ``-o`` > ``,``)."""

    def __init__(self, st: FindState, words: list[str]) -> None:
        self.st, self.words, self.i = st, words, 0
        self.seen_test = False
        self.last_test = 0
        self.refs: list[str] = []
        self.warnings: list[str] = []
        self.regextype = "emacs"

    def peek(self) -> str | None:
        return self.words[self.i] if self.i < len(self.words) else None

    def take(self, opt: str) -> str:
        if self.i >= len(self.words):
            raise FindError(f"missing argument to `{opt}'")
        w = self.words[self.i]
        self.i += 1
        return w

    def parse(self) -> Pred | None:
        if not self.words:
            return None
        pred = self.comma()
        if self.i < len(self.words):
            w = self.words[self.i]
            if w == ")":
                raise FindError("invalid expression; you have too many ')'")
            raise FindError(f"paths must precede expression: `{w}'")
        return pred

    def comma(self) -> Pred:
        left = self.or_()
        while self.peek() == ",":
            self.i += 1
            right = self.or_()
            left = _seq(left, right)
        return left

    def or_(self) -> Pred:
        left = self.and_()
        while self.peek() in ("-o", "-or"):
            self.i += 1
            if self.peek() in (None, ")", ","):
                raise FindError("invalid expression; you have used a binary operator '-o' with nothing after it.")
            right = self.and_()
            left = _or(left, right)
        return left

    def and_(self) -> Pred:
        left = self.unary()
        while True:
            w = self.peek()
            if w in ("-a", "-and"):
                self.i += 1
                if self.peek() in (None, ")", ",", "-o", "-or"):
                    raise FindError("invalid expression; you have used a binary operator '-a' with nothing after it.")
                left = _and(left, self.unary())
            elif w is not None and w not in ("-o", "-or", ")", ","):
                left = _and(left, self.unary())
            else:
                return left

    def unary(self) -> Pred:
        w = self.peek()
        if w is None:
            raise FindError("invalid expression")
        if w in ("!", "-not"):
            self.i += 1
            if self.peek() in (None, ")", "-o", "-or", "-a", "-and"):
                raise FindError("invalid expression; you have used a unary operator '!' with nothing after it.")
            inner = self.unary()

            async def neg(v: Visit) -> bool:
                return not await inner(v)
            return neg
        if w == "(":
            self.i += 1
            if self.peek() == ")":
                raise FindError("invalid expression; empty parentheses are not allowed.")
            inner = self.comma()
            if self.peek() != ")":
                raise FindError("invalid expression; I was expecting to find a ')' somewhere but did not see one.")
            self.i += 1
            return inner
        if w in ("-o", "-or", "-a", "-and"):
            raise FindError(f"invalid expression; you have used a binary operator '{w}' with nothing before it.")
        if w == ")":
            raise FindError("invalid expression; you have too many ')'")
        self.i += 1
        return self.primary(w)

    # ------------------------------------------------------------------ primaries
    def primary(self, w: str) -> Pred:  # noqa: C901 - one table of find's primaries
        st = self.st
        ctx = st.ctx

        def const(value: bool) -> Pred:
            async def p(v: Visit) -> bool:
                return value
            return p

        if w in ("-maxdepth", "-mindepth"):
            arg = self.take(w)
            if not arg.isdigit():
                raise FindError(f"Expected a positive decimal integer argument to {w}, but got `{arg}'")
            self.global_option(w)
            if w == "-maxdepth":
                st.maxdepth = int(arg)
            else:
                st.mindepth = int(arg)
            return const(True)
        if w in ("-depth", "-d"):
            self.global_option(w)
            st.depth_first = True
            return const(True)
        if w in ("-xdev", "-mount", "-noleaf", "-ignore_readdir_race", "-noignore_readdir_race"):
            self.global_option(w)
            return const(True)
        if w == "-follow":
            st.follow = "L"
            return const(True)
        if w in ("-true", "-false"):
            self.seen_test = True
            self.last_test = self.i - 1
            return const(w == "-true")
        self.seen_test = True
        self.last_test = self.i - 1
        if w in ("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-lname", "-ilname"):
            pat = self.take(w)
            rx = glob_regex(pat, ignore_case=w.startswith("-i"))
            if w in ("-name", "-iname"):
                async def p(v: Visit) -> bool:
                    name = base_name(v.path) if v.path != "/" else "/"
                    return rx.match(name) is not None
            elif w in ("-lname", "-ilname"):
                async def p(v: Visit) -> bool:
                    try:
                        a = await ctx.lstat(v.path)
                        if not a.is_symlink:
                            return False
                        return rx.match(await ctx.readlink(v.path)) is not None
                    except KernelError:
                        return False
            else:
                async def p(v: Visit) -> bool:
                    return rx.match(v.path) is not None
            return p
        if w == "-regextype":
            kind = self.take(w)
            if kind not in ("emacs", "posix-basic", "posix-extended", "posix-egrep", "egrep",
                            "findutils-default", "grep", "posix-awk", "awk", "gnu-awk", "ed", "sed"):
                raise FindError(f"Unknown regular expression type {quote(kind)}; valid types are "
                                "'findutils-default', 'ed', 'emacs', 'gnu-awk', 'grep', 'posix-awk', "
                                "'awk', 'posix-basic', 'posix-egrep', 'egrep', 'posix-extended', 'sed'.")
            self.regextype = kind
            return const(True)
        if w in ("-regex", "-iregex"):
            pat = self.take(w)
            rx2 = find_regex(pat, self.regextype, w == "-iregex")

            async def p(v: Visit) -> bool:
                try:
                    return rx2.fullmatch(fsencode(v.path)) is not None
                except KernelError:
                    return False
            return p
        if w in ("-type", "-xtype"):
            arg = self.take(w)
            kinds = arg.split(",")
            table = {"f": _stat.S_IFREG, "d": _stat.S_IFDIR, "l": _stat.S_IFLNK, "p": _stat.S_IFIFO,
                     "s": _stat.S_IFSOCK, "b": _stat.S_IFBLK, "c": _stat.S_IFCHR}
            for k in kinds:
                if k not in table:
                    if len(k) != 1:
                        raise FindError(f"Must separate multiple arguments to {w} using: ','")
                    raise FindError(f"Unknown argument to {w}: {k}")
            wanted = {table[k] for k in kinds}
            xtype = w == "-xtype"

            async def p(v: Visit) -> bool:
                a = v.attr
                if xtype:
                    try:
                        a = await (ctx.lstat(v.path) if st.follow == "L" else ctx.stat(v.path))
                    except KernelError:
                        a = v.attr
                return _stat.S_IFMT(a.mode) in wanted
            return p
        if w == "-size":
            arg = self.take(w)
            unit = 512
            body = arg
            if body and body[-1] in _SIZE_UNITS:
                unit = _SIZE_UNITS[body[-1]]
                body = body[:-1]
            test = _num_test(body, w)

            async def p(v: Visit) -> bool:
                return test(-(-v.attr.size // unit))
            return p
        if w in ("-mtime", "-atime", "-ctime", "-mmin", "-amin", "-cmin"):
            arg = self.take(w)
            test = _num_test(arg, w)
            field_name = {"m": "mtime_ns", "a": "atime_ns", "c": "ctime_ns"}[w[1]]
            per = 86400 if w.endswith("time") else 60

            async def p(v: Visit) -> bool:
                age = st.now - getattr(v.attr, field_name) / 1e9
                if per == 60:
                    # GNU rounds minutes up (a file 30 s old is 1 minute old)
                    return test(int(-(-age // 60)))
                return test(int(age // per))
            return p
        if w in ("-newer", "-anewer", "-cnewer"):
            ref = self.take(w)
            holder: dict[str, int] = {}
            mine = {"-newer": "mtime_ns", "-anewer": "atime_ns", "-cnewer": "ctime_ns"}[w]

            async def p(v: Visit) -> bool:
                if "t" not in holder:
                    holder["t"] = (await ctx.stat(ref)).mtime_ns
                return getattr(v.attr, mine) > holder["t"]
            self.refs.append(ref)
            return p
        if w.startswith("-newer") and len(w) == 8 and w[6] in "amcB" and w[7] in "amcBt":
            ref = self.take(w)
            mine2 = {"a": "atime_ns", "m": "mtime_ns", "c": "ctime_ns", "B": "birthtime_ns"}[w[6]]
            if w[7] == "t":
                from kernel.programs.files_basic import parse_date
                try:
                    when = int(parse_date(ctx, ref, st.now) * 1e9)
                except ValueError:
                    raise FindError(f"I cannot figure out how to interpret `{ref}' as a date or time") from None

                async def p(v: Visit) -> bool:
                    return getattr(v.attr, mine2) > when
                return p
            theirs = {"a": "atime_ns", "m": "mtime_ns", "c": "ctime_ns", "B": "birthtime_ns"}[w[7]]
            box2: dict[str, int] = {}

            async def p(v: Visit) -> bool:
                if "t" not in box2:
                    box2["t"] = getattr(await ctx.stat(ref), theirs)
                return getattr(v.attr, mine2) > box2["t"]
            self.refs.append(ref)
            return p
        if w == "-empty":
            async def p(v: Visit) -> bool:
                a = v.attr
                if a.is_dir:
                    try:
                        return not await ctx.listdir(v.path)
                    except KernelError:
                        return False
                return a.is_reg and a.size == 0
            return p
        if w == "-perm":
            arg = self.take(w)
            kind = ""
            body = arg
            if body[:1] in "-/+":
                kind, body = body[0], body[1:]
            try:
                mode = parse_mode(body, 0, False)
            except ValueError:
                raise FindError(f"invalid mode `{arg}'") from None

            async def p(v: Visit) -> bool:
                m = v.attr.mode & 0o7777
                if kind == "-":
                    return m & mode == mode
                if kind in "/+" and kind:
                    return mode == 0 or bool(m & mode)
                return m == mode
            return p
        if w in ("-user", "-group", "-uid", "-gid"):
            arg = self.take(w)
            if w in ("-uid", "-gid"):
                test = _num_test(arg, w)
                fld = "uid" if w == "-uid" else "gid"

                async def p(v: Visit) -> bool:
                    return test(getattr(v.attr, fld))
                return p
            num = st.names.uid_of(arg) if w == "-user" else st.names.gid_of(arg)
            if num is None:
                what = "user" if w == "-user" else "group"
                raise FindError(f"`{arg}' is not the name of a known {what}")
            fld2 = "uid" if w == "-user" else "gid"

            async def p(v: Visit) -> bool:
                return getattr(v.attr, fld2) == num
            return p
        if w in ("-nouser", "-nogroup"):
            async def p(v: Visit) -> bool:
                if w == "-nouser":
                    return st.names.users is not None and v.attr.uid not in st.names.users
                return v.attr.gid not in st.names.groups
            return p
        if w in ("-links", "-inum"):
            test = _num_test(self.take(w), w)
            fld3 = "nlink" if w == "-links" else "ino"

            async def p(v: Visit) -> bool:
                return test(getattr(v.attr, fld3))
            return p
        if w == "-samefile":
            ref = self.take(w)
            box: dict[str, int] = {}

            async def p(v: Visit) -> bool:
                if "ino" not in box:
                    box["ino"] = (await ctx.stat(ref)).ino
                return v.attr.ino == box["ino"]
            self.refs.append(ref)
            return p
        if w in ("-readable", "-writable", "-executable"):
            bit = {"-readable": 4, "-writable": 2, "-executable": 1}[w]

            async def p(v: Visit) -> bool:
                try:
                    await ctx.access(v.path, bit)
                    return True
                except KernelError:
                    return False
            return p
        # ---------------------------------------------------------- actions
        if w in ("-print", "-print0", "-printf", "-fprint", "-ls", "-delete", "-exec", "-execdir",
                 "-ok", "-okdir", "-prune", "-quit"):
            if w not in ("-prune",):
                st.has_action = True
        if w == "-print":
            async def p(v: Visit) -> bool:
                await st.out.write(v.path + "\n")
                return True
            return p
        if w == "-print0":
            async def p(v: Visit) -> bool:
                await st.out.write(v.path + "\0")
                return True
            return p
        if w == "-printf":
            fmt = unescape(self.take(w).replace("\\c", "\x00CUT"))

            async def p(v: Visit) -> bool:
                await st.out.write(await _printf(st, fmt, v))
                return True
            return p
        if w == "-ls":
            async def p(v: Visit) -> bool:
                a = v.attr
                await st.names.load(ctx)
                when = strftime_local(ctx, "%b %e %H:%M", a.mtime_ns)
                line = (f"{a.ino:>9} {-(-a.blocks // 2):>6} {mode_string(a.mode)} {a.nlink:>3} "
                        f"{st.names.user(a.uid):<8} {st.names.group(a.gid):<8} {a.size:>8} {when} {v.path}")
                if a.is_symlink:
                    try:
                        line += " -> " + await ctx.readlink(v.path)
                    except KernelError:
                        pass
                await st.out.write(line + "\n")
                return True
            return p
        if w == "-delete":
            st.depth_first = True

            async def p(v: Visit) -> bool:
                if v.path == ".":
                    return True
                try:
                    if v.attr.is_dir:
                        await ctx.rmdir(v.path)
                    else:
                        await ctx.unlink(v.path)
                    return True
                except KernelError as e:
                    await st.out.flush()
                    await st.tool.err(f"cannot delete {quote(v.path)}: {strerror(e)}")
                    return False
            return p
        if w == "-prune":
            async def p(v: Visit) -> bool:
                if not st.depth_first:
                    st.pruned = True
                return True
            return p
        if w == "-quit":
            async def p(v: Visit) -> bool:
                st.quit = True
                return True
            return p
        if w in ("-exec", "-execdir", "-ok", "-okdir"):
            argv: list[str] = []
            while True:
                if self.i >= len(self.words):
                    raise FindError(f"missing argument to `{w}'")
                a = self.words[self.i]
                self.i += 1
                if a == ";":
                    break
                if a == "+" and argv and argv[-1] == "{}":
                    if w in ("-ok", "-okdir"):
                        raise FindError(f"missing argument to `{w}'")
                    plus = _ExecPlus(st, argv)
                    st.pending.append(plus)
                    indir = w == "-execdir"

                    async def batch(v: Visit, plus: _ExecPlus = plus, indir: bool = indir) -> bool:
                        await plus.add(_dir_rel(v) if indir else v.path)
                        return True
                    return batch
                argv.append(a)
            if not argv:
                raise FindError(f"missing argument to `{w}'")
            indir = w in ("-execdir", "-okdir")
            ask = w in ("-ok", "-okdir")

            async def p(v: Visit) -> bool:
                path = _dir_rel(v) if indir else v.path
                cmd = [a.replace("{}", path) for a in argv]
                if ask:
                    await st.out.flush()
                    await ctx.write_all(2, fsencode(f"< {' '.join(cmd)} > ? "))
                    ans = await Reader(ctx, 0, 1).readline()
                    if ans[:1] not in (b"y", b"Y"):
                        return False
                cwd = None
                if indir:
                    parent = (v.path.rsplit("/", 1)[0] or "/") if "/" in v.path else "."
                    try:
                        cwd = await ctx.realpath(parent)
                    except KernelError:
                        cwd = parent
                return await run_command(ctx, st.out, cmd, "find", cwd) == 0
            return p
        if w.startswith("-"):
            raise FindError(f"unknown predicate `{w}'")
        raise FindError(f"paths must precede expression: `{w}'")

    def global_option(self, w: str) -> None:
        """GNU find 4.9 accepts global options anywhere without a warning on this path."""



def find_regex(pattern: str, kind: str, icase: bool) -> Any:
    """find's -regex through the shared POSIX module: the default (emacs) syntax has ``\\(``
    ``\\|`` groups and alternation but bare ``+ ?`` operators, so it is rewritten to ERE."""
    from kernel.programs import posixre

    extended = kind in ("posix-extended", "posix-egrep", "egrep", "posix-awk", "awk", "gnu-awk")
    raw = pattern
    if kind in ("emacs", "findutils-default"):
        out = []
        i = 0
        while i < len(raw):
            c = raw[i]
            if c == "\\" and i + 1 < len(raw):
                n = raw[i + 1]
                out.append({"(": "(", ")": ")", "|": "|", "{": "{", "}": "}"}.get(n, "\\" + n))
                i += 2
                continue
            out.append({"(": "\\(", ")": "\\)", "|": "\\|", "{": "\\{", "}": "\\}"}.get(c, c))
            i += 1
        raw, extended = "".join(out), True
    try:
        return posixre.compile(raw, extended=extended, icase=icase, dialect="posix")
    except KernelError as e:
        raise FindError(f"{e.message}") from None


def _dir_rel(v: Visit) -> str:
    return "./" + base_name(v.path) if v.path != "/" else "/"


def _seq(a: Pred, b: Pred) -> Pred:
    async def p(v: Visit) -> bool:
        await a(v)
        return await b(v)
    return p


def _and(a: Pred, b: Pred) -> Pred:
    async def p(v: Visit) -> bool:
        return await a(v) and await b(v)
    return p


def _or(a: Pred, b: Pred) -> Pred:
    async def p(v: Visit) -> bool:
        return await a(v) or await b(v)
    return p


_TYPE_LETTER = {_stat.S_IFREG: "f", _stat.S_IFDIR: "d", _stat.S_IFLNK: "l", _stat.S_IFIFO: "p",
                _stat.S_IFSOCK: "s", _stat.S_IFBLK: "b", _stat.S_IFCHR: "c"}


async def _printf(st: FindState, fmt: str, v: Visit) -> str:
    ctx = st.ctx
    a = v.attr
    out = []
    i = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c == "\x00" and fmt.startswith("\x00CUT", i):
            st.quit = st.quit
            break
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        flags = ""
        while j < n and fmt[j] in "-+ #0":
            flags += fmt[j]
            j += 1
        width = ""
        while j < n and fmt[j].isdigit():
            width += fmt[j]
            j += 1
        prec = None
        if j < n and fmt[j] == ".":
            j += 1
            p = ""
            while j < n and fmt[j].isdigit():
                p += fmt[j]
                j += 1
            prec = int(p or 0)
        if j >= n:
            out.append("%")
            break
        d = fmt[j]
        i = j + 1
        numeric = False
        if d == "%":
            out.append("%")
            continue
        if d == "p":
            text = v.path
        elif d == "f":
            text = base_name(v.path) if v.path not in ("/",) else "/"
        elif d == "h":
            if "/" in v.path.rstrip("/"):
                text = v.path.rstrip("/").rsplit("/", 1)[0] or "/"
            else:
                text = "."
        elif d == "P":
            text = v.path[len(v.start):].lstrip("/") if v.path != v.start else ""
        elif d == "H":
            text = v.start
        elif d == "s":
            text, numeric = str(a.size), True
        elif d == "d":
            text, numeric = str(v.depth), True
        elif d == "m":
            text, numeric = f"{a.mode & 0o7777:o}", True
        elif d == "M":
            text = mode_string(a.mode)
        elif d in "ug":
            text, numeric = str(a.uid if d == "u" else a.gid), True
            await st.names.load(ctx)
            text = st.names.user(a.uid) if d == "u" else st.names.group(a.gid)
        elif d in "UG":
            text, numeric = str(a.uid if d == "U" else a.gid), True
        elif d == "i":
            text, numeric = str(a.ino), True
        elif d == "n":
            text, numeric = str(a.nlink), True
        elif d == "k":
            text, numeric = str(-(-a.blocks // 2)), True
        elif d == "b":
            text, numeric = str(a.blocks), True
        elif d == "y":
            text = _TYPE_LETTER.get(_stat.S_IFMT(a.mode), "U")
        elif d == "Y":
            try:
                text = _TYPE_LETTER.get(_stat.S_IFMT((await ctx.stat(v.path)).mode), "U")
            except KernelError as e:
                text = "L" if e.code == "ELOOP" else "N"
        elif d == "l":
            text = ""
            if a.is_symlink:
                try:
                    text = await ctx.readlink(v.path)
                except KernelError:
                    text = ""
        elif d in "aAcCtT":
            ns = {"a": a.atime_ns, "c": a.ctime_ns, "t": a.mtime_ns}[d.lower()]
            if d in "act":
                text = strftime_local(ctx, "%a %b %e %H:%M:%S.%N0 %Y", ns)
            else:
                if i >= n:
                    out.append("%" + d)
                    break
                k = fmt[i]
                i += 1
                if k == "@":
                    text = f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}0"
                elif k == "+":
                    text = strftime_local(ctx, "%Y-%m-%d+%H:%M:%S.%N0", ns)
                else:
                    text = strftime_local(ctx, "%" + k, ns)
        elif d == "D":
            text, numeric = "0", True
        elif d == "F":
            text = "vfsfuse"
        elif d == "S":
            text = "1.0"
        else:
            text = "%" + d
        if prec is not None and not numeric:
            text = text[:prec]
        w = int(width) if width else 0
        if "-" in flags:
            text = text.ljust(w)
        elif "0" in flags and numeric:
            text = text.rjust(w, "0")
        else:
            text = text.rjust(w)
        out.append(text)
    return "".join(out)


_FIND_USAGE = "Usage: find [-H] [-L] [-P] [-Olevel] [-D debugopts] [path...] [expression]\n"


async def prog_find(ctx: Any) -> int:
    argv = list(ctx.argv[1:])
    tool = Tool(ctx, "find")
    st = FindState(ctx, tool, Writer(ctx), IdNames(), time.time())
    await st.names.load(ctx)
    i = 0
    while i < len(argv) and argv[i] in ("-H", "-L", "-P") or (i < len(argv) and argv[i].startswith("-O")):
        if argv[i] in ("-H", "-L", "-P"):
            st.follow = argv[i][1]
        i += 1
    if i < len(argv) and argv[i] == "--help":
        await ctx.write_all(1, _FIND_USAGE)
        return 0
    if i < len(argv) and argv[i] == "--version":
        await ctx.write_all(1, f"find ({VERSION})\n")
        return 0
    if i < len(argv) and argv[i] == "--":
        i += 1
    paths = []
    while i < len(argv) and not (argv[i].startswith("-") and argv[i] != "-") and argv[i] not in ("(", "!"):
        paths.append(argv[i])
        i += 1
    words = argv[i:]
    parser = FindParser(st, words)
    try:
        pred = parser.parse()
        for ref in parser.refs:
            try:
                await ctx.stat(ref)
            except KernelError as e:
                raise FindError(f"{quote(ref)}: {strerror(e)}") from None
    except FindError as e:
        await tool.err(str(e))
        return 1
    if pred is None or not st.has_action:
        inner = pred

        async def with_print(v: Visit) -> bool:
            if inner is None or await inner(v):
                await st.out.write(v.path + "\n")
            return True
        pred = with_print
    for start in paths or ["."]:
        if st.quit:
            break
        await _walk_start(st, start, pred)
    for plus in st.pending:
        await plus.flush()
    await st.out.flush()
    return tool.status


async def _walk_start(st: FindState, start: str, pred: Pred) -> None:
    ctx = st.ctx
    try:
        attr = await (ctx.stat(start) if st.follow in ("L", "H") else ctx.lstat(start))
    except KernelError as e:
        if st.follow in ("L", "H") and e.code in ("ENOENT", "ELOOP"):
            try:
                attr = await ctx.lstat(start)
            except KernelError:
                await st.out.flush()
                await st.tool.err(f"{quote(start)}: {strerror(e)}")
                return
        else:
            await st.out.flush()
            await st.tool.err(f"{quote(start)}: {strerror(e)}")
            return
    await _walk(st, Visit(start, start, 0, attr), pred, set())


async def _walk(st: FindState, v: Visit, pred: Pred, ancestors: set[int]) -> None:
    ctx = st.ctx
    if st.quit:
        return
    in_range = v.depth >= st.mindepth
    descend = v.attr.is_dir and (st.maxdepth is None or v.depth < st.maxdepth)
    if not st.depth_first and in_range and (st.maxdepth is None or v.depth <= st.maxdepth):
        st.pruned = False
        await pred(v)
        if st.pruned:
            descend = False
            st.pruned = False
    if descend and not st.quit:
        if v.attr.ino in ancestors and st.follow == "L":
            await st.out.flush()
            await st.tool.err(f"File system loop detected; {quote(v.path)} is part of the same file "
                              "system loop as an ancestor.")
        else:
            try:
                names = await ctx.listdir(v.path)
            except KernelError as e:
                await st.out.flush()
                await st.tool.err(f"{quote(v.path)}: {strerror(e)}")
                names = []
            inner = ancestors | {v.attr.ino}
            for n in names:
                if st.quit:
                    break
                child = join(v.path, n)
                try:
                    a = await ctx.lstat(child)
                    if st.follow == "L" and a.is_symlink:
                        try:
                            a = await ctx.stat(child)
                        except KernelError:
                            pass
                except KernelError as e:
                    await st.out.flush()
                    await st.tool.err(f"{quote(child)}: {strerror(e)}")
                    continue
                await _walk(st, Visit(child, v.start, v.depth + 1, a), pred, inner)
    if st.depth_first and in_range and (st.maxdepth is None or v.depth <= st.maxdepth) and not st.quit:
        await pred(v)


PROGRAMS = {"find": prog_find}
