"""diff and patch: GNU diffutils' normal and unified formats (``-r`` over directories) and GNU
patch's unified-diff application, over ``ctx``.

The edit script is Myers' O(ND) greedy algorithm on line numbers (common prefix and suffix
stripped first), then GNU's ``shift_boundaries`` pass slides each run of changes as GNU does
(down as far as equal lines allow, then back up to meet a change in the other file), so the
hunks people see line up with what GNU diff prints.  difflib is not used: its longest-block
matching gives different (valid, but different) hunks.
"""

from __future__ import annotations

import re
import stat as _stat
import time
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import Writer
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import Run, fsencode, quote, strerror
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

DIFF = Spec(
    "diff",
    "[OPTION]... FILES",
    "Compare FILES line by line.",
    [
        Opt("q", "brief", help="report only when files differ"),
        Opt("s", "report-identical-files", help="report when two files are the same"),
        Opt("c", None, help="output 3 lines of copied context", dest="context_c"),
        Opt("u", None, help="output 3 lines of unified context", dest="unified_u"),
        Opt("U", "unified", arg="NUM", help="output NUM (default 3) lines of unified context", optional_arg=False),
        Opt("r", "recursive", help="recursively compare any subdirectories found"),
        Opt("N", "new-file", help="treat absent files as empty"),
        Opt("i", "ignore-case", help="ignore case differences in file contents"),
        Opt("b", "ignore-space-change", help="ignore changes in the amount of white space"),
        Opt("w", "ignore-all-space", help="ignore all white space"),
        Opt("B", "ignore-blank-lines", help="ignore changes where lines are all blank"),
        Opt("a", "text", help="treat all files as text"),
        Opt(None, "label", arg="LABEL", help="use LABEL instead of file name and timestamp", action="append"),
        Opt(None, "strip-trailing-cr", help="strip trailing carriage return on input"),
        Opt(None, "color", arg="WHEN", optional_arg=True, help="color output"),
        Opt(None, "normal", help="output a normal diff (the default)"),
        Opt("x", "exclude", arg="PAT", help="exclude files that match PAT", action="append"),
    ],
    usage_status=2,
)


# ---------------------------------------------------------------------------- the algorithm


def _myers(a: list[int], b: list[int]) -> tuple[list[bool], list[bool]]:
    """Changed flags for *a* and *b* from a shortest edit script (Myers' greedy, with a trace)."""
    n, m = len(a), len(b)
    ca, cb = [False] * n, [False] * m
    lo = 0
    while lo < n and lo < m and a[lo] == b[lo]:
        lo += 1
    hi_a, hi_b = n, m
    while hi_a > lo and hi_b > lo and a[hi_a - 1] == b[hi_b - 1]:
        hi_a -= 1
        hi_b -= 1
    A, B = a[lo:hi_a], b[lo:hi_b]
    N, M = len(A), len(B)
    if N == 0 or M == 0:
        for i in range(N):
            ca[lo + i] = True
        for j in range(M):
            cb[lo + j] = True
        return ca, cb
    maxd = N + M
    off = maxd + 1
    v = [0] * (2 * maxd + 3)
    trace: list[tuple[int, list[int]]] = []
    found = False
    for d in range(maxd + 1):
        base = off - d - 1
        trace.append((base, v[base : off + d + 2]))  # only diagonals -d-1..d+1 matter at step d
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]):
                x = v[off + k + 1]
            else:
                x = v[off + k - 1] + 1
            y = x - k
            while x < N and y < M and A[x] == B[y]:
                x += 1
                y += 1
            v[off + k] = x
            if x >= N and y >= M:
                found = True
                break
        if found:
            break
    # walk back through the trace
    x, y = N, M
    for d in range(len(trace) - 1, 0, -1):
        base, vv = trace[d]
        k = x - y
        if k == -d or (k != d and vv[off + k - 1 - base] < vv[off + k + 1 - base]):
            pk = k + 1
        else:
            pk = k - 1
        px = vv[off + pk - base]
        py = px - pk
        while x > px and y > py:
            x -= 1
            y -= 1
        if x == px:  # came down: an insertion of B[py]
            cb[lo + py] = True
        else:
            ca[lo + px] = True
        x, y = px, py
    return ca, cb


def _shift_boundaries(equiv: list[int], changed: list[bool], other: list[bool]) -> None:
    """GNU analyze.c's shift_boundaries for one file, against the other file's flags."""
    n = len(equiv)
    i = j = 0
    other_len = len(other)

    def oc(k: int) -> bool:
        return 0 <= k < other_len and other[k]

    while True:
        while i < n and not changed[i]:
            while oc(j):
                j += 1
            i += 1
            j += 1
        if i >= n:
            break
        start = i
        while i < n and changed[i]:
            i += 1
        while oc(j):
            j += 1
        while True:
            runlength = i - start
            while start > 0 and equiv[start - 1] == equiv[i - 1]:
                start -= 1
                changed[start] = True
                i -= 1
                changed[i] = False
                while start > 0 and changed[start - 1]:
                    start -= 1
                j -= 1
                while oc(j):
                    j -= 1
            corresponding = i if oc(j - 1) else n
            while i < n and equiv[start] == equiv[i]:
                changed[start] = False
                start += 1
                changed[i] = True
                i += 1
                while i < n and changed[i]:
                    i += 1
                j += 1
                while oc(j):
                    j += 1
                    corresponding = i
            if runlength == i - start:
                break
        while corresponding < i:
            start -= 1
            changed[start] = True
            i -= 1
            changed[i] = False
            j -= 1
            while oc(j):
                j -= 1


def _hunks(ca: list[bool], cb: list[bool]) -> list[tuple[int, int, int, int]]:
    """(a_start, a_end, b_start, b_end) of each change, 0-based half-open."""
    out = []
    i = j = 0
    n, m = len(ca), len(cb)
    while i < n or j < m:
        if (i < n and ca[i]) or (j < m and cb[j]):
            si, sj = i, j
            while i < n and ca[i]:
                i += 1
            while j < m and cb[j]:
                j += 1
            out.append((si, i, sj, j))
            continue
        i += 1
        j += 1
    return out


# ---------------------------------------------------------------------------- output


def _split(data: bytes) -> tuple[list[bytes], bool]:
    """Lines without their newline, and whether the last one lacked it."""
    if not data:
        return [], False
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
        return lines, False
    return lines, True


def _rng(s: int, e: int) -> str:
    """Normal format range: 1-based, ``s`` alone for one line, ``s,e`` otherwise."""
    if e - s == 1:
        return str(s + 1)
    if e == s:
        return str(s)
    return f"{s + 1},{e}"


_NONL = b"\\ No newline at end of file\n"


def _normal(
    a: list[bytes], b: list[bytes], hunks: list[tuple[int, int, int, int]], a_nonl: bool, b_nonl: bool
) -> bytes:
    out: list[bytes] = []
    for s1, e1, s2, e2 in hunks:
        if s1 == e1:
            out.append(f"{s1}a{_rng(s2, e2)}\n".encode())
        elif s2 == e2:
            out.append(f"{_rng(s1, e1)}d{s2}\n".encode())
        else:
            out.append(f"{_rng(s1, e1)}c{_rng(s2, e2)}\n".encode())
        for k in range(s1, e1):
            out.append(b"< " + a[k] + b"\n")
            if k == len(a) - 1 and a_nonl:
                out.append(_NONL)
        if s1 != e1 and s2 != e2:
            out.append(b"---\n")
        for k in range(s2, e2):
            out.append(b"> " + b[k] + b"\n")
            if k == len(b) - 1 and b_nonl:
                out.append(_NONL)
    return b"".join(out)


def _uni_rng(s: int, e: int) -> str:
    n = e - s
    if n == 1:
        return str(s + 1)
    if n == 0:
        return f"{s},0"
    return f"{s + 1},{n}"


def _unified(
    a: list[bytes], b: list[bytes], hunks: list[tuple[int, int, int, int]], ctxn: int, a_nonl: bool, b_nonl: bool
) -> bytes:
    out: list[bytes] = []
    groups: list[list[tuple[int, int, int, int]]] = []
    for h in hunks:
        if groups and h[0] - groups[-1][-1][1] <= 2 * ctxn:
            groups[-1].append(h)
        else:
            groups.append([h])
    for g in groups:
        a0 = max(g[0][0] - ctxn, 0)
        b0 = max(g[0][2] - ctxn, 0)
        a1 = min(g[-1][1] + ctxn, len(a))
        b1 = min(g[-1][3] + ctxn, len(b))
        out.append(f"@@ -{_uni_rng(a0, a1)} +{_uni_rng(b0, b1)} @@\n".encode())
        i, j = a0, b0
        for s1, e1, s2, e2 in g:
            while i < s1:
                out.append(b" " + a[i] + b"\n")
                if i == len(a) - 1 and a_nonl:
                    out.append(_NONL)
                i += 1
                j += 1
            for k in range(s1, e1):
                out.append(b"-" + a[k] + b"\n")
                if k == len(a) - 1 and a_nonl:
                    out.append(_NONL)
            for k in range(s2, e2):
                out.append(b"+" + b[k] + b"\n")
                if k == len(b) - 1 and b_nonl:
                    out.append(_NONL)
            i, j = e1, e2
        while i < a1:
            out.append(b" " + a[i] + b"\n")
            if i == len(a) - 1 and a_nonl:
                out.append(_NONL)
            i += 1
    return b"".join(out)


def _stamp(mtime_ns: int) -> str:
    t = time.gmtime(mtime_ns // 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{mtime_ns % 1_000_000_000:09d} +0000"


# ---------------------------------------------------------------------------- the program


class _Diff:
    def __init__(self, ctx: Any, args: Any, run: Run, out: Writer) -> None:
        self.ctx, self.args, self.run, self.out = ctx, args, run, out
        self.unified: int | None = None
        if args.get("unified") is not None:
            try:
                self.unified = int(args["unified"])
            except ValueError:
                self.unified = None
        elif args.get("unified_u"):
            self.unified = 3
        self.labels = args.get("label") or []
        self.status = 0
        # "diff -r ..." lines repeat the options as given (shell-quoted), without the operands
        from kernel.programs.text_bytes import shell_quote

        rest = list(ctx.argv)[1:]
        for op in reversed(args.operands):
            for k in range(len(rest) - 1, -1, -1):
                if rest[k] == op:
                    del rest[k]
                    break
        self.switches = " ".join(shell_quote(fsencode(a)).decode("utf-8", "surrogateescape") for a in rest if a != "--")

    def key(self, line: bytes) -> bytes:
        a = self.args
        if a.get("strip_trailing_cr") and line.endswith(b"\r"):
            line = line[:-1]
        if a.get("ignore_all_space"):
            line = re.sub(rb"[ \t\v\f\r]+", b"", line)
        elif a.get("ignore_space_change"):
            line = re.sub(rb"[ \t\v\f\r]+", b" ", line).rstrip(b" ")
        if a.get("ignore_case"):
            line = line.lower()
        return line

    async def read(self, name: str) -> bytes | None:
        try:
            fd = 0 if name == "-" else await self.ctx.open(name)
            data = await self.ctx.read_all(fd)
            if fd:
                await self.ctx.close(fd)
            return data
        except KernelError as e:
            await self.run.err(f"{name}: {strerror(e)}", 2)
            self.status = 2
            return None

    async def files(self, n1: str, n2: str, header: bool) -> None:
        d1, d2 = await self.read(n1), await self.read(n2)
        if d1 is None or d2 is None:
            return
        if d1 == d2:
            if self.args.get("report_identical_files"):
                await self.out.write(fsencode(f"Files {n1} and {n2} are identical\n"))
            return
        binary = not self.args.get("text") and (b"\0" in d1[:65536] or b"\0" in d2[:65536])
        if self.args.get("brief") or binary:
            self.status = max(self.status, 1)
            if binary and not self.args.get("brief"):
                await self.out.write(fsencode(f"Binary files {n1} and {n2} differ\n"))
            else:
                await self.out.write(fsencode(f"Files {n1} and {n2} differ\n"))
            return
        a, a_nonl = _split(d1)
        b, b_nonl = _split(d2)
        ids: dict[bytes, int] = {}
        ea = [ids.setdefault(self.key(x), len(ids)) for x in a]
        eb = [ids.setdefault(self.key(x), len(ids)) for x in b]
        ca, cb = _myers(ea, eb)
        _shift_boundaries(ea, ca, cb)
        _shift_boundaries(eb, cb, ca)
        hunks = _hunks(ca, cb)
        if self.args.get("ignore_blank_lines"):
            hunks = [
                h
                for h in hunks
                if any(a[k].strip() for k in range(h[0], h[1])) or any(b[k].strip() for k in range(h[2], h[3]))
            ]
        if not hunks and a_nonl == b_nonl:
            return
        if not hunks:
            # only the final newline differs: the last line is a change
            hunks = [(len(a) - 1, len(a), len(b) - 1, len(b))]
        self.status = max(self.status, 1)
        if header:
            s1 = self.labels[0] if len(self.labels) > 0 else n1
            s2 = self.labels[1] if len(self.labels) > 1 else n2
            await self.out.write(fsencode(f"diff {self.switches} {s1} {s2}\n".replace("  ", " ")))
        if self.unified is not None:
            await self.out.write(await self.header(b"---", n1, 0) + await self.header(b"+++", n2, 1))
            await self.out.write(_unified(a, b, hunks, self.unified, a_nonl, b_nonl))
        else:
            await self.out.write(_normal(a, b, hunks, a_nonl, b_nonl))

    async def header(self, mark: bytes, name: str, k: int) -> bytes:
        if len(self.labels) > k:
            return mark + b" " + fsencode(self.labels[k]) + b"\n"
        try:
            st = await (self.ctx.fstat(0) if name == "-" else self.ctx.stat(name))
            stamp = _stamp(st.mtime_ns)
        except KernelError:
            stamp = _stamp(0)
        return mark + b" " + fsencode(name) + b"\t" + stamp.encode() + b"\n"

    async def isdir(self, name: str) -> bool | None:
        try:
            return _stat.S_ISDIR((await self.ctx.stat(name)).mode)
        except KernelError:
            return None

    async def dirs(self, d1: str, d2: str) -> None:
        try:
            e1 = set(await self.ctx.listdir(d1))
            e2 = set(await self.ctx.listdir(d2))
        except KernelError as e:
            await self.run.err(f"{d1}: {strerror(e)}", 2)
            self.status = 2
            return
        import fnmatch

        pats = self.args.get("exclude") or []
        for name in sorted(e1 | e2):
            if any(fnmatch.fnmatchcase(name, p) for p in pats):
                continue
            p1, p2 = f"{d1.rstrip('/')}/{name}", f"{d2.rstrip('/')}/{name}"
            if name not in e2 or name not in e1:
                if self.args.get("new_file"):
                    k1 = await self.isdir(p1) if name in e1 else None
                    k2 = await self.isdir(p2) if name in e2 else None
                    if not k1 and not k2:
                        await self.pair(
                            p1 if name in e1 else "/dev/null", p2 if name in e2 else "/dev/null", True, (p1, p2)
                        )
                        continue
                where = d1 if name in e1 else d2
                self.status = max(self.status, 1)
                await self.out.write(fsencode(f"Only in {where}: {name}\n"))
                continue
            k1, k2 = await self.isdir(p1), await self.isdir(p2)
            if k1 and k2:
                if self.args.get("recursive"):
                    await self.dirs(p1, p2)
                else:
                    await self.out.write(fsencode(f"Common subdirectories: {p1} and {p2}\n"))
                continue
            if k1 != k2:
                self.status = max(self.status, 1)
                kind1 = "directory" if k1 else "regular file"
                kind2 = "directory" if k2 else "regular file"
                await self.out.write(fsencode(f"File {p1} is a {kind1} while file {p2} is a {kind2}\n"))
                continue
            await self.files(p1, p2, True)

    async def pair(self, n1: str, n2: str, header: bool, shown: tuple[str, str] | None = None) -> None:
        if shown is not None:
            d1 = await self.read(n1) if n1 != "/dev/null" else b""
            d2 = await self.read(n2) if n2 != "/dev/null" else b""
            if d1 is None or d2 is None:
                return
            # compare as if the absent one were empty, under the real names
            await self._pair_data(shown[0], shown[1], d1, d2, header)
            return
        await self.files(n1, n2, header)

    async def _pair_data(self, n1: str, n2: str, d1: bytes, d2: bytes, header: bool) -> None:
        saved = self.read

        async def fake(name: str) -> bytes | None:
            return d1 if name == n1 else d2

        self.read = fake  # type: ignore[method-assign]
        try:
            await self.files(n1, n2, header)
        finally:
            self.read = saved  # type: ignore[method-assign]


async def prog_diff(ctx: Any) -> int:
    args = await parse_or_exit(ctx, DIFF)
    if isinstance(args, int):
        return args
    run = Run(ctx, "diff")
    ops = args.operands
    if len(ops) < 2:
        if not ops:
            return await run.usage("missing operand after 'diff'", 2)
        return await run.usage(f"missing operand after {quote(ops[-1])}", 2)
    if len(ops) > 2:
        return await run.usage(f"extra operand {quote(ops[2])}", 2)
    if args.get("unified") is not None and not args["unified"].isdigit():
        await run.err(f"invalid context length {quote(args['unified'])}")
        return 2
    out = Writer(ctx)
    d = _Diff(ctx, args, run, out)
    n1, n2 = ops
    k1 = await d.isdir(n1) if n1 != "-" else False
    k2 = await d.isdir(n2) if n2 != "-" else False
    if k1 is None and not args.get("new_file"):
        await run.err(f"{n1}: No such file or directory", 2)
        return 2
    if k2 is None and not args.get("new_file"):
        await run.err(f"{n2}: No such file or directory", 2)
        return 2
    if k1 and k2:
        await d.dirs(n1, n2)
    elif k1:
        await d.files(f"{n1.rstrip('/')}/{n2.rsplit('/', 1)[-1]}", n2, False)
    elif k2:
        await d.files(n1, f"{n2.rstrip('/')}/{n1.rsplit('/', 1)[-1]}", False)
    elif k1 is None or k2 is None:
        await d.pair("/dev/null" if k1 is None else n1, "/dev/null" if k2 is None else n2, False, (n1, n2))
    else:
        await d.files(n1, n2, False)
    await out.flush()
    return d.status


# ============================================================================ patch

PATCH = Spec(
    "patch",
    "[OPTION]... [ORIGFILE [PATCHFILE]]",
    "Apply a diff file to an original.",
    [
        Opt("p", "strip", arg="NUM", help="strip NUM leading components from file names"),
        Opt("i", "input", arg="PATCHFILE", help="read patch from PATCHFILE instead of stdin"),
        Opt("R", "reverse", help="assume patches were created with old and new files swapped"),
        Opt("N", "forward", help="ignore patches that seem to be reversed or already applied"),
        Opt("o", "output", arg="FILE", help="output patched files to FILE"),
        Opt("d", "directory", arg="DIR", help="change the working directory to DIR first"),
        Opt("s", "quiet", help="work silently, unless an error occurs", dest="silent"),
        Opt(None, "silent", help="work silently, unless an error occurs", dest="silent"),
        Opt(None, "dry-run", help="do not actually change any files; just print what would happen"),
        Opt("E", "remove-empty-files", help="remove output files that are empty after patching"),
        Opt("f", "force", help="like -t, but ignore bad-Prereq patches, and assume unreversed"),
        Opt("t", "batch", help="ask no questions; skip bad-Prereq patches; assume reversed"),
        Opt("b", "backup", help="back up the original contents of each file"),
        Opt("u", "unified", help="interpret the patch as a unified diff"),
        Opt("F", "fuzz", arg="LINES", help="set the fuzz factor to LINES for inexact matching"),
        Opt(None, "no-backup-if-mismatch", help="back up mismatches only if otherwise requested"),
    ],
    usage_status=2,
)


class _Hunk:
    def __init__(self, old_start: int, new_start: int) -> None:
        self.old_start, self.new_start = old_start, new_start
        self.lines: list[tuple[str, bytes]] = []  # (' ' | '-' | '+', text without newline)
        self.old_nonl = False
        self.new_nonl = False


class _FilePatch:
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.hunks: list[_Hunk] = []


_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _parse_patch(data: bytes) -> list[_FilePatch]:
    lines = data.split(b"\n")
    out: list[_FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"--- ") and i + 1 < len(lines) and lines[i + 1].startswith(b"+++ "):
            old = line[4:].split(b"\t")[0].decode("utf-8", "surrogateescape").strip()
            new = lines[i + 1][4:].split(b"\t")[0].decode("utf-8", "surrogateescape").strip()
            fp = _FilePatch(old, new)
            out.append(fp)
            i += 2
            while i < len(lines):
                m = _HUNK_RE.match(lines[i])
                if not m:
                    break
                h = _Hunk(int(m.group(1)), int(m.group(3)))
                old_n = int(m.group(2)) if m.group(2) is not None else 1
                new_n = int(m.group(4)) if m.group(4) is not None else 1
                i += 1
                while (old_n > 0 or new_n > 0) and i < len(lines):
                    ln = lines[i]
                    tag = chr(ln[0]) if ln else " "
                    if tag == "\\":
                        i += 1
                        continue
                    if tag not in " -+":
                        break
                    h.lines.append((tag, ln[1:]))
                    if tag in " -":
                        old_n -= 1
                    if tag in " +":
                        new_n -= 1
                    i += 1
                    if i < len(lines) and lines[i].startswith(b"\\"):
                        if tag == "-":
                            h.old_nonl = True
                        elif tag == "+":
                            h.new_nonl = True
                        else:
                            h.old_nonl = h.new_nonl = True
                        i += 1
                fp.hunks.append(h)
            continue
        i += 1
    return out


def _strip(name: str, p: int | None) -> str:
    if p is None:
        return name.rsplit("/", 1)[-1]
    parts = name.split("/")
    if p >= len(parts):
        return parts[-1]
    return "/".join(parts[p:])


async def prog_patch(ctx: Any) -> int:
    args = await parse_or_exit(ctx, PATCH)
    if isinstance(args, int):
        return args
    run = Run(ctx, "patch")
    ops = list(args.operands)
    src = args.get("input")
    if len(ops) > 1 and src is None:
        src = ops[1]
    target = ops[0] if ops else None
    strip = None
    if args.get("strip") is not None:
        try:
            strip = int(args["strip"])
        except ValueError:
            await run.err(f"strip count {args['strip']} is not a number")
            return 2
    if args.get("directory"):
        await ctx.chdir(args["directory"])
    try:
        fd = 0 if src in (None, "-") else await ctx.open(src)
        data = await ctx.read_all(fd)
    except KernelError as e:
        await run.err(f"can't open patch file {src}: {strerror(e)}")
        return 2
    patches = _parse_patch(data)
    out = Writer(ctx)
    if not patches:
        await run.err("Only garbage was found in the patch input.")
        return 2
    reverse = bool(args.get("reverse"))
    dry = bool(args.get("dry_run"))
    silent = bool(args.get("silent"))
    status = 0
    for fp in patches:
        old, new = (fp.new, fp.old) if reverse else (fp.old, fp.new)
        creating = old == "/dev/null"
        deleting = new == "/dev/null"
        name = target or _strip(new if not deleting else old, strip)
        if not target and not creating and not deleting and strip is None:
            name = _strip(old if old != "/dev/null" else new, strip)
        if not silent:
            await out.write(fsencode(f"{'checking' if dry else 'patching'} file {name}\n"))
        text: list[bytes]
        if creating:
            text, nonl = [], False
        else:
            try:
                fd = await ctx.open(name)
                raw = await ctx.read_all(fd)
                await ctx.close(fd)
            except KernelError as e:
                await out.flush()
                await run.err(f"{name}: {strerror(e)}")
                status = 1
                continue
            text, nonl = _split(raw)
        failed = []
        delta = 0
        result = list(text)
        result_nonl = nonl
        pos_shift = 0
        for n, h in enumerate(fp.hunks, 1):
            lines = [(("+" if t == "-" else "-" if t == "+" else t), s) for t, s in h.lines] if reverse else h.lines
            old_lines = [s for t, s in lines if t in " -"]
            new_lines = [s for t, s in lines if t in " +"]
            start = (h.new_start if reverse else h.old_start) - 1
            if not old_lines:
                start += 1
            want = start + pos_shift
            found = None
            for off in range(0, len(result) + 2):
                for cand in (want + off, want - off) if off else (want,):
                    if 0 <= cand <= len(result) - len(old_lines) and result[cand : cand + len(old_lines)] == old_lines:
                        found = cand
                        break
                if found is not None:
                    break
            if found is None:
                failed.append(n)
                if not silent:
                    await out.write(f"Hunk #{n} FAILED at {start + 1}.\n".encode())
                continue
            result[found : found + len(old_lines)] = new_lines
            if found + len(new_lines) == len(result):
                new_nonl = h.old_nonl if reverse else h.new_nonl
                old_nonl = h.new_nonl if reverse else h.old_nonl
                if new_nonl or old_nonl:
                    result_nonl = new_nonl
            if found != want and not silent:
                k = found - want
                await out.write(
                    f"Hunk #{n} succeeded at {found + 1} (offset {k} line{'s' if abs(k) != 1 else ''}).\n".encode()
                )
            pos_shift += len(new_lines) - len(old_lines)
            pos_shift += found - want
            delta += 1
        if failed:
            status = 1
            if not silent:
                total = len(fp.hunks)
                await out.write(
                    f"{len(failed)} out of {total} hunk{'s' if total != 1 else ''} FAILED -- saving "
                    f"rejects to file {name}.rej\n".encode()
                )
            if not dry:
                rej = []
                for n in failed:
                    h = fp.hunks[n - 1]
                    old_n = sum(1 for t, _ in h.lines if t in " -")
                    new_n = sum(1 for t, _ in h.lines if t in " +")
                    rej.append(f"@@ -{h.old_start},{old_n} +{h.new_start},{new_n} @@\n".encode())
                    rej += [t.encode() + s + b"\n" for t, s in h.lines]
                fd = await ctx.open(name + ".rej", O_WRONLY | O_CREAT | O_TRUNC, 0o666)
                await ctx.write_all(fd, fsencode(f"--- {fp.old}\n+++ {fp.new}\n") + b"".join(rej))
                await ctx.close(fd)
        if dry:
            continue
        body = b"\n".join(result) + (b"\n" if result and not result_nonl else b"")
        if deleting and not body:
            try:
                await ctx.unlink(name)
            except KernelError:
                pass
            continue
        dest = args.get("output") or name
        if args.get("backup") and not creating:
            try:
                await ctx.rename(name, name + ".orig")
            except KernelError:
                pass
        if "/" in dest:
            parts = dest.split("/")[:-1]
            for k in range(1, len(parts) + 1):
                try:
                    await ctx.mkdir("/".join(parts[:k]))
                except KernelError:
                    pass
        fd = await ctx.open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        await ctx.write_all(fd, body)
        await ctx.close(fd)
    await out.flush()
    return status


PROGRAMS = {"diff": prog_diff, "patch": prog_patch}
