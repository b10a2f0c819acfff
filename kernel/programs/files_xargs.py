"""xargs: command lines built from standard input (blanks and quotes, or -0/-d items), run
in batches by -n/-L/-s, one per line with -I, up to -P at a time; GNU's exit statuses (123 when
a command failed, 124 on 255, 125 on a signal, 126/127 when it cannot run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import Reader, Writer, quote, strerror
from kernel.programs.files_base import Tool
from kernel.programs.files_ls import unescape
from kernel.programs.flags import VERSION


class XargsError(Exception):
    """A bad command line; the text is the message."""


XARGS_HELP = ("Usage: xargs [OPTION]... COMMAND [INITIAL-ARGS]...\n"
              "Run COMMAND with arguments INITIAL-ARGS and more arguments read from input.\n")


@dataclass
class XargsOpts:
    null: bool = False
    delim: str | None = None
    max_args: int | None = None
    max_lines: int | None = None
    replace: str | None = None
    procs: int = 1
    no_run_empty: bool = False
    trace: bool = False
    eof: str | None = None
    arg_file: str | None = None
    max_chars: int = 128 * 1024
    exit_if_large: bool = False
    interactive: bool = False


def _xargs_parse(argv: list[str]) -> tuple[XargsOpts, list[str]]:
    """xargs stops at the first non-option word (the command); its options take arguments."""
    o = XargsOpts()
    i = 0
    takes = {"n": "max_args", "L": "max_lines", "I": "replace", "P": "procs", "d": "delim",
             "E": "eof", "a": "arg_file", "s": "max_chars"}
    longs = {"null": "0", "delimiter": "d", "max-args": "n", "max-lines": "L", "replace": "I",
             "max-procs": "P", "no-run-if-empty": "r", "verbose": "t", "eof": "E", "arg-file": "a",
             "max-chars": "s", "exit": "x", "interactive": "p"}
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            hits = [k for k in longs if k.startswith(name)]
            if name in longs:
                hits = [name]
            if name in ("help", "version"):
                raise _XargsExit(name)
            if len(hits) != 1:
                raise XargsError(f"unrecognized option '{a}'")
            letter = longs[hits[0]]
            if letter in takes:
                if not eq:
                    if hits[0] in ("replace",):
                        val = "{}"
                    elif hits[0] == "eof":
                        val = ""
                    else:
                        i += 1
                        if i >= len(argv):
                            raise XargsError(f"option '--{hits[0]}' requires an argument")
                        val = argv[i]
                _xargs_set(o, letter, val)
            else:
                _xargs_set(o, letter, None)
            i += 1
            continue
        if not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            ch = a[j]
            j += 1
            if ch in takes:
                if j < len(a):
                    val = a[j:]
                elif ch in ("I",) and False:
                    val = "{}"
                else:
                    i += 1
                    if i >= len(argv):
                        raise XargsError(f"option requires an argument -- '{ch}'")
                    val = argv[i]
                _xargs_set(o, ch, val)
                break
            if ch == "i":
                _xargs_set(o, "I", a[j:] or "{}")
                break
            if ch == "e":
                o.eof = a[j:] or None
                break
            if ch == "l":
                _xargs_set(o, "L", a[j:] or "1")
                break
            if ch not in "0rtxp":
                raise XargsError(f"invalid option -- '{ch}'")
            _xargs_set(o, ch, None)
        i += 1
    return o, argv[i:]


class _XargsExit(Exception):
    pass


def _xargs_set(o: XargsOpts, letter: str, val: str | None) -> None:
    def number(v: str | None, what: str, minimum: int = 1) -> int:
        try:
            n = int(v or "")
        except ValueError:
            raise XargsError(f"invalid number \"{v}\" for -{what} option") from None
        if n < minimum:
            raise XargsError(f"value {v} for -{what} option should be >= {minimum}")
        return n

    if letter == "0":
        o.null = True
    elif letter == "r":
        o.no_run_empty = True
    elif letter == "t":
        o.trace = True
    elif letter == "x":
        o.exit_if_large = True
    elif letter == "p":
        o.interactive = o.trace = True
    elif letter == "n":
        o.max_args = number(val, "n")
        o.max_lines = None
    elif letter == "L":
        o.max_lines = number(val, "L")
        o.max_args = None
    elif letter == "I":
        o.replace = val
        o.max_lines = 1
    elif letter == "P":
        o.procs = number(val, "P", 0)
    elif letter == "d":
        d = unescape(val or "")
        if len(d) != 1:
            raise XargsError(f"invalid input delimiter specification {val}: the delimiter must be "
                            "either a single character or an escape sequence starting with \\.")
        o.delim = d
    elif letter == "E":
        o.eof = val or None
    elif letter == "a":
        o.arg_file = val
    elif letter == "s":
        o.max_chars = number(val, "s")


def _unmatched(quote_ch: str) -> str:
    kind = "single" if quote_ch == "'" else "double"
    return f"unmatched {kind} quote; by default quotes are special to xargs unless you use the -0 option"


def _split_words(data: str, eof: str | None) -> tuple[list[list[str]], str | None]:
    """xargs' default input: blanks separate, quotes and backslash protect; one list per line
    (for -L).  Returns (lines of words, error text)."""
    lines: list[list[str]] = []
    words: list[str] = []
    cur: list[str] = []
    have = False
    quote_ch = None
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        i += 1
        if quote_ch:
            if c == quote_ch:
                quote_ch = None
            elif c == "\n":
                return lines + ([words] if words else []), _unmatched(quote_ch)
            else:
                cur.append(c)
            continue
        if c in "'\"":
            quote_ch = c
            have = True
            continue
        if c == "\\" and i < n:
            cur.append(data[i])
            i += 1
            have = True
            continue
        if c in " \t\n":
            if have:
                w = "".join(cur)
                if eof is not None and w == eof:
                    if words:
                        lines.append(words)
                    return lines, None
                words.append(w)
                cur, have = [], False
            if c == "\n":
                # a line ending in a blank continues (-L's rule)
                if words and not (i >= 2 and data[i - 2] in " \t"):
                    lines.append(words)
                    words = []
            continue
        cur.append(c)
        have = True
    if quote_ch:
        return lines + ([words] if words else []), _unmatched(quote_ch)
    if have:
        w = "".join(cur)
        if not (eof is not None and w == eof):
            words.append(w)
    if words:
        lines.append(words)
    return lines, None


async def prog_xargs(ctx: Any) -> int:
    tool = Tool(ctx, "xargs")
    try:
        o, command = _xargs_parse(list(ctx.argv[1:]))
    except _XargsExit as e:
        if str(e) == "help":
            await ctx.write_all(1, XARGS_HELP)
        else:
            await ctx.write_all(1, f"xargs ({VERSION})\n")
        return 0
    except XargsError as e:
        await tool.err(str(e))
        if "option" in str(e) and ("invalid option" in str(e) or "unrecognized" in str(e)
                                   or "requires" in str(e)):
            await ctx.write_all(2, XARGS_HELP.split("\n")[0] + "\n")
        return 1
    if not command:
        command = ["echo"]
    src = 0
    if o.arg_file is not None:
        try:
            src = await ctx.open(o.arg_file)
        except KernelError as e:
            await tool.err(f"Cannot open input file {quote(o.arg_file)}: {strerror(e)}")
            return 1
    raw = b""
    reader = Reader(ctx, src)
    parts = []
    while True:
        chunk = await reader.read()
        if not chunk:
            break
        parts.append(chunk)
    raw = b"".join(parts)
    data = raw.decode("utf-8", "surrogateescape")
    if o.null or o.delim is not None:
        sep = "\0" if o.null else o.delim
        items = data.split(sep)
        if items and items[-1] == "":
            items.pop()
        if o.eof is not None and not o.null and o.delim is None:
            pass
        lines = [[x] for x in items]
    elif o.replace is not None:
        lines = []
        for ln in data.split("\n"):
            s = ln.lstrip(" \t")
            if s:
                if o.eof is not None and s == o.eof:
                    break
                lines.append([s])
        err = None
    else:
        lines, err = _split_words(data, o.eof)
        if err:
            # GNU runs what came before the bad quote, then fails
            pass
    if not (o.null or o.delim is not None or o.replace is not None) and err:
        status = await _xargs_run(ctx, tool, o, command, lines)
        await tool.err(err)
        return max(status, 1)
    return await _xargs_run(ctx, tool, o, command, lines)


async def _xargs_run(ctx: Any, tool: Tool, o: XargsOpts, command: list[str],
                     lines: list[list[str]]) -> int:
    batches: list[list[str]] = []
    if o.replace is not None:
        for line in lines:
            arg = " ".join(line)
            batches.append([w.replace(o.replace, arg) for w in command])
    else:
        cur: list[str] = []
        cur_lines = 0
        base_len = sum(len(w) + 1 for w in command)
        size = base_len
        for line in lines:
            for word in line:
                if o.max_args is not None and len(cur) >= o.max_args:
                    batches.append(command + cur)
                    cur, size = [], base_len
                if size + len(word) + 1 > o.max_chars and cur:
                    batches.append(command + cur)
                    cur, size = [], base_len
                cur.append(word)
                size += len(word) + 1
            cur_lines += 1
            if o.max_lines is not None and cur_lines >= o.max_lines:
                batches.append(command + cur)
                cur, size, cur_lines = [], base_len, 0
        if cur:
            batches.append(command + cur)
        if not batches and not o.no_run_empty and not lines:
            batches.append(list(command))
    status = 0
    running: list[int] = []
    out = Writer(ctx, 2)

    async def reap(pid: int) -> int:
        _, st = await ctx.waitpid(pid)
        if st & 0x7F:
            return 125
        return (st >> 8) & 0xFF

    async def note(code: int, argv0: str) -> bool:
        nonlocal status
        if code == 255:
            await tool.err(f"{argv0}: exited with status 255; aborting")
            status = 124
            return False
        if code == 125 and status == 0:
            status = 125
        elif 1 <= code <= 125:
            status = max(status, 123) if status not in (124, 125) else status
        return True

    for argv in batches:
        if o.trace:
            await out.write(" ".join(argv) + ("?..." if o.interactive else "") + "\n")
            await out.flush()
            if o.interactive:
                ans = await Reader(ctx, await ctx.open("/dev/tty"), 1).readline()
                if ans[:1] not in (b"y", b"Y"):
                    continue
        try:
            pid = await ctx.spawn(argv)
        except KernelError as e:
            for p in running:
                await reap(p)
            await tool.err(f"{argv[0]}: {strerror(e)}")
            return 127 if e.code == "ENOENT" else 126
        running.append(pid)
        limit = o.procs if o.procs > 0 else len(batches)
        if len(running) >= limit:
            pid0 = running.pop(0)
            if not await note(await reap(pid0), argv[0]):
                for p in running:
                    await reap(p)
                return status
    for p in running:
        if not await note(await reap(p), command[0]):
            break
    return status


PROGRAMS = {"xargs": prog_xargs}
