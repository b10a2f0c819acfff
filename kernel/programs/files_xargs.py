"""xargs: command lines built from standard input (blanks and quotes, or -0/-d items), run
in batches by -n/-L/-s, one per line with -I, up to -P at a time; GNU's exit statuses (123 when
a command failed, 124 on 255, 125 on a signal, 126/127 when it cannot run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import Reader, quote, strerror
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


def _split_words(data: str, eof: str | None) -> tuple[list[list[str]], str | None, bool]:
    """xargs' default input: blanks separate, quotes and backslash protect; one list per line
    (for -L).  Returns (lines of words, error text, whether the -E word ended the input)."""
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
                return lines + ([words] if words else []), _unmatched(quote_ch), False
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
                    return lines, None, True
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
        return lines + ([words] if words else []), _unmatched(quote_ch), False
    stopped = False
    if have:
        w = "".join(cur)
        if eof is not None and w == eof:
            stopped = True
        else:
            words.append(w)
    if words:
        lines.append(words)
    return lines, None, stopped


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
    runner = _Runner(ctx, tool, o, command)
    err = None
    try:
        async for words in _input_lines(ctx, o, src):
            if isinstance(words, str):
                err = words
                break
            if not await runner.add(words):
                return runner.status
        else:
            pass
        await runner.finish()
    finally:
        if src != 0:
            await ctx.close(src)
    if err:
        await tool.err(err)
        return max(runner.status, 1)
    return runner.status


async def _input_lines(ctx: Any, o: XargsOpts, src: int):
    """The input as lists of words, one list per input line (per item with -0/-d), read in
    64 KiB blocks so commands start before the input ends; a ``str`` is an error text."""
    reader = Reader(ctx, src)
    if o.null or o.delim is not None:
        sep = b"\0" if o.null or o.delim is None else o.delim.encode("utf-8", "surrogateescape")
        while True:
            item = await reader.readline(sep)
            if not item:
                return
            if item.endswith(sep):
                item = item[:-1]
            yield [item.decode("utf-8", "surrogateescape")]
    carry: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            if carry:
                yield carry
            return
        text = raw.decode("utf-8", "surrogateescape")
        if o.replace is not None:
            line = text.rstrip("\n").lstrip(" \t")
            if o.eof is not None and line == o.eof:
                return
            if line:
                yield [line]
            continue
        lines, err, stopped = _split_words(text, o.eof)
        words = carry + [w for ln in lines for w in ln]
        carry = []
        if err:
            if words:
                yield words
            yield err
            return
        if stopped:
            if words:
                yield words
            return
        if words and text.rstrip("\n").endswith((" ", "\t")) and o.max_lines is not None:
            carry = words  # a line ending in a blank continues on the next one (-L)
            continue
        if words:
            yield words


class _Runner:
    """Builds command lines from input lines and runs them (up to -P at a time)."""

    def __init__(self, ctx: Any, tool: Tool, o: XargsOpts, command: list[str]) -> None:
        self.ctx, self.tool, self.o, self.command = ctx, tool, o, command
        self.cur: list[str] = []
        self.cur_lines = 0
        self.base = sum(len(w) + 1 for w in command)
        self.size = self.base
        self.ran = False
        self.any_input = False
        self.status = 0
        self.running: list[int] = []
        self.stopped = False

    async def add(self, words: list[str]) -> bool:
        """Take one input line; False once xargs must stop (a command exited 255, or failed to run)."""
        o = self.o
        self.any_input = True
        if o.replace is not None:
            arg = " ".join(words)
            return await self.launch([w.replace(o.replace, arg) for w in self.command])
        for word in words:
            if o.max_args is not None and len(self.cur) >= o.max_args:
                if not await self.flush():
                    return False
            if self.size + len(word) + 1 > o.max_chars and self.cur:
                if not await self.flush():
                    return False
            self.cur.append(word)
            self.size += len(word) + 1
        self.cur_lines += 1
        if o.max_lines is not None and self.cur_lines >= o.max_lines:
            return await self.flush()
        return True

    async def flush(self) -> bool:
        argv = self.command + self.cur
        self.cur, self.size, self.cur_lines = [], self.base, 0
        return await self.launch(argv)

    async def finish(self) -> None:
        if self.cur or (not self.ran and not self.any_input and not self.o.no_run_empty):
            await self.flush()
        while self.running:
            pid = self.running.pop(0)
            if not await self.note(await self.reap(pid)):
                await self.reap_all()
                return

    async def reap(self, pid: int) -> int:
        _, st = await self.ctx.waitpid(pid)
        if st & 0x7F:
            return 125
        return (st >> 8) & 0xFF

    async def reap_all(self) -> None:
        while self.running:
            await self.reap(self.running.pop(0))

    async def note(self, code: int) -> bool:
        if code == 255:
            await self.tool.err(f"{self.command[0]}: exited with status 255; aborting")
            self.status = 124
            return False
        if code == 125 and self.status == 0:
            self.status = 125
        elif 1 <= code <= 125 and self.status not in (124, 125):
            self.status = 123
        return True

    async def launch(self, argv: list[str]) -> bool:
        ctx, o = self.ctx, self.o
        self.ran = True
        if o.trace:
            await ctx.write_all(2, (" ".join(argv) + ("?..." if o.interactive else "") + "\n")
                                .encode("utf-8", "surrogateescape"))
            if o.interactive:
                tty = await ctx.open("/dev/tty")
                try:
                    ans = await Reader(ctx, tty, 1).readline()
                finally:
                    await ctx.close(tty)
                if ans[:1] not in (b"y", b"Y"):
                    return True
        null = await ctx.open("/dev/null")  # children do not read xargs' own input
        try:
            pid = await ctx.spawn(argv, stdin=null)
        except KernelError as e:
            await self.reap_all()
            await self.tool.err(f"{argv[0]}: {strerror(e)}")
            self.status = 127 if e.code == "ENOENT" else 126
            return False
        finally:
            await ctx.close(null)
        self.running.append(pid)
        limit = o.procs if o.procs > 0 else 1 << 30
        while len(self.running) >= limit:
            if not await self.note(await self.reap(self.running.pop(0))):
                await self.reap_all()
                return False
        return True


PROGRAMS = {"xargs": prog_xargs}
