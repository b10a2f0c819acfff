"""jq, with real jq semantics from the jq bindings; only input and output go through ``ctx``.

The filter runs in the ``jq`` library (libjq); this module does what jq's ``main.c`` does around
it: the command line, reading inputs (files or stdin, through ``ctx``), splitting them into JSON
values, and printing results.  Results are printed by our own formatter in jq 1.6's exact layout
(the host's jq): numbers as doubles in jq's ``%.17g``-shortest style, ``-c``/``--tab``/
``--indent``/``-S``/``-a``/``-r``/``-j``, and 1.6's colours (``-C``, or a terminal).

The library runs each input on its own and knows nothing of our files or environment, so a small
prelude of jq definitions (prepended to the user's filter on the same line, so ``$__loc__`` and
line numbers stay right) gives ``$ENV``/``env`` the sandbox's environment, ``input``/``inputs``
the values still to come, ``input_filename`` the current file, ``halt``/``halt_error`` an exit
status, and shadows everything that would reach the host (module search, ``debug`` to the host's
stderr).  ``import``/``include`` are refused: modules would be read from the host.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Callable, Iterator

import jq as libjq

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Writer, strerror
from kernel.programs.flags import Opt, Spec
from kernel.programs.registry import Program

SPEC = Spec("jq", "[OPTIONS] FILTER [FILES...]",
            "jq is a tool for processing JSON inputs, applying the given filter to its JSON text "
            "inputs and producing the filter's results as JSON on standard output.", [
    Opt("c", "compact-output", help="compact instead of pretty-printed output"),
    Opt("n", "null-input", help="use `null` as the single input value"),
    Opt("e", "exit-status", help="set the exit status code based on the output"),
    Opt("s", "slurp", help="read (slurp) all inputs into an array; apply filter to it"),
    Opt("r", "raw-output", help="output raw strings, not JSON texts"),
    Opt("j", "join-output", help="like -r but without newlines after each output"),
    Opt("a", "ascii-output", help="output strings by only ASCII characters using escape sequences"),
    Opt("S", "sort-keys", help="sort keys of each object on output"),
    Opt("C", "color-output", help="colorize JSON (the default on a terminal)"),
    Opt("M", "monochrome-output", help="disable colored output"),
    Opt("R", "raw-input", help="read each line as string instead of JSON"),
    Opt(None, "tab", help="use tabs for indentation"),
    Opt(None, "indent", arg="n", help="use n spaces for indentation (max 7 spaces)"),
    Opt(None, "seq", help="use the application/json-seq MIME type scheme"),
    Opt(None, "stream", help="parse the input in streaming fashion"),
    Opt(None, "arg", arg="name value", help="set $name to the string value"),
    Opt(None, "argjson", arg="name value", help="set $name to the JSON value"),
    Opt(None, "slurpfile", arg="name file", help="set $name to an array of JSON values read from the file"),
    Opt(None, "rawfile", arg="name file", help="set $name to the file's contents"),
    Opt(None, "args", help="remaining arguments are string arguments, not files"),
    Opt(None, "jsonargs", help="remaining arguments are JSON arguments, not files"),
])

HINT = ("Use jq --help for help with command-line options,\n"
        "or see the jq manpage, or online docs  at https://stedolan.github.io/jq\n")

# Shadows the builtins that would see the host, or that the per-input library cannot do itself.
PRELUDE = (
    "$__vfs_env as $ENV | def env: $ENV; "
    "def input_filename: $__vfs_file; "
    "def inputs: $__vfs_rest[]; "
    "def input: if ($__vfs_rest | length) > 0 then $__vfs_rest[0] else error(\"No more inputs\") end; "
    "def __vfs_input($k): if ($__vfs_rest | length) > $k then $__vfs_rest[$k] "
    "else error(\"No more inputs\") end; "
    "def halt: error({\"__vfs_halt\": 0}); "
    "def halt_error($code): error({\"__vfs_halt\": $code, \"value\": .}); "
    "def halt_error: halt_error(5); "
    "def debug: .; def debug(msg): .; def stderr: .; "
    "def input_line_number: 0; "
    "def modulemeta: error(\"modulemeta is not available in the sandbox\"); "
    "def get_search_list: []; def get_jq_origin: null; def get_prog_origin: null; "
    # jq 1.6 behaviour the library changed
    "def leaf_paths: paths(scalars); "
    "def ltrimstr($x): if type == \"string\" and ($x | type) == \"string\" and startswith($x) "
    "then .[($x | length):] else . end; "
    "def rtrimstr($x): if type == \"string\" and ($x | type) == \"string\" and endswith($x) "
    "and ($x | length) > 0 then .[:length - ($x | length)] else . end; "
)
_MODULES = re.compile(r"(?<![\w$])(import|include)\s*\"")
_USES_INPUT = re.compile(r"(?<![\w$])inputs?(?!\w)")


PARSE_ERROR_STATUS = 4  # what the host's jq 1.6 exits with on input that is not JSON (1.7: 2)
_STRINGIFIES = re.compile(r"tostring|tojson|@|\\\(|join|ascii|implode|splits|test|match|capture|scan|sub")


_INPUT_SITE = re.compile(r"(?<![\w$.])input(?![\w])(?!\s*:)")


def number_input_sites(filt: str) -> tuple[str, int]:
    """Each ``input`` call of the filter (outside strings and comments) becomes
    ``__vfs_input(k)``, the k-th value after the current one: the library has no input
    callback, and this keeps the common ``input as $a | input as $b`` right (an ``input``
    reached again in a loop sees the same value)."""
    out: list[str] = []
    count = 0
    i, n = 0, len(filt)
    code_start = 0

    def flush_code(end: int) -> None:
        nonlocal count
        piece = filt[code_start:end]

        def site(_: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return f"__vfs_input({count - 1})"

        out.append(_INPUT_SITE.sub(site, piece))

    while i < n:
        ch = filt[i]
        if ch == '"' or ch == "#":
            flush_code(i)
            j = i + 1
            if ch == "#":
                while j < n and filt[j] != "\n":
                    j += 1
            else:
                while j < n and filt[j] != '"':
                    j += 2 if filt[j] == "\\" else 1
                j += 1
            out.append(filt[i:j])
            i = code_start = j
            continue
        i += 1
    flush_code(n)
    return "".join(out), count


class Usage(Exception):
    """A bad command line: jq's message, status 2."""


@dataclass
class Options:
    filter: str | None = None
    files: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    indent: int = 2
    tab: bool = False
    pretty: bool = True
    named: dict[str, Any] = field(default_factory=dict)
    positional: list[Any] = field(default_factory=list)
    slurpfiles: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, file, raw)


_LONG_TWO = ("arg", "argjson", "slurpfile", "rawfile")


def parse_argv(argv: list[str]) -> Options:
    """jq's own command line rules: options anywhere, short ones cluster, ``--arg`` takes two
    words, the first operand is the filter, after ``--args``/``--jsonargs`` operands are values."""
    o = Options()
    mode = "files"
    i = 1
    only_operands = False
    while i < len(argv):
        a = argv[i]
        i += 1
        if only_operands or a == "-" or not a.startswith("-"):
            if o.filter is None:
                o.filter = a
            elif mode == "files":
                o.files.append(a)
            elif mode == "args":
                o.positional.append(a)
            else:
                try:
                    o.positional.append(_loads(a))
                except ValueError:
                    raise Usage("Invalid JSON text passed to --jsonargs") from None
            continue
        if a == "--":
            only_operands = True
            continue
        if a.startswith("--"):
            name = a[2:]
            if name in _LONG_TWO:
                if i + 1 >= len(argv):
                    what = {"arg": "--arg takes two parameters (e.g. --arg varname value)",
                            "argjson": "--argjson takes two parameters (e.g. --argjson varname text)",
                            "slurpfile": "--slurpfile takes two parameters (e.g. --slurpfile varname filename)",
                            "rawfile": "--rawfile takes two parameters (e.g. --rawfile varname filename)"}
                    raise Usage(what[name])
                var, value = argv[i], argv[i + 1]
                i += 2
                if name == "arg":
                    o.named[var] = value
                elif name == "argjson":
                    try:
                        o.named[var] = _loads(value)
                    except ValueError:
                        raise Usage("invalid JSON text passed to --argjson") from None
                else:
                    o.slurpfiles.append((var, value, name == "rawfile"))
                continue
            if name == "indent":
                if i >= len(argv):
                    raise Usage("--indent takes one parameter")
                try:
                    n = int(argv[i])
                except ValueError:
                    raise Usage("--indent takes a number") from None
                i += 1
                if n < -1 or n > 7:
                    raise Usage("--indent takes a number between -1 and 7")
                o.indent, o.tab, o.pretty = n, False, n != 0
                continue
            if name == "tab":
                o.tab = o.pretty = True
                continue
            if name in ("args", "jsonargs"):
                mode = name
                continue
            if name in ("help", "version"):
                o.flags.add(name)
                continue
            opt = SPEC._long.get(name)
            if opt is None or opt.arg is not None:
                raise Usage(f"Unknown option: {a}")
            o.flags.add(opt.key)
            if opt.key == "compact_output":
                o.tab = o.pretty = False
            continue
        for ch in a[1:]:
            if ch == "h":
                o.flags.add("help")
                continue
            if ch == "L":
                raise Usage("-L: modules are not available in the sandbox")
            opt = SPEC._short.get(ch)
            if opt is None:
                raise Usage(f"Unknown option: {a}")
            o.flags.add(opt.key)
            if ch == "c":
                o.tab = o.pretty = False
    return o


def _loads(text: str) -> Any:
    """A JSON text as jq 1.6 holds it: every number a double (``1.0`` is ``1``)."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_as_double, parse_int=_as_double)


def _as_double(text: str) -> int | float:
    d = float(text)
    if d.is_integer() and abs(d) < 1 << 53:
        return int(d)
    return d


def _no_constant(name: str) -> Any:
    raise ValueError(name)


# ---------------------------------------------------------------------------- output


def format_number(x: float | int) -> str:
    """A number as jq 1.6 prints it: a double, shortest round-trip digits, plain notation
    unless the exponent is below -4 or beyond 15 places past the digits (then ``1e+17``)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int) and -(1 << 53) <= x <= (1 << 53):
        return str(x)
    try:
        d = float(x)
    except OverflowError:
        d = math.inf if x > 0 else -math.inf
    if d != d:
        return "null"
    if math.isinf(d):
        d = 1.7976931348623157e308 if d > 0 else -1.7976931348623157e308
    if d == 0:
        return "-0" if math.copysign(1.0, d) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(d)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)
    decpt = len(digit_tuple) + exp
    nd = len(digits)
    neg = "-" if sign else ""
    if decpt <= -4 or decpt > nd + 15:
        e = decpt - 1
        mant = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if decpt <= 0:
        return f"{neg}0.{'0' * -decpt}{digits}"
    if decpt >= nd:
        return neg + digits + "0" * (decpt - nd)
    return f"{neg}{digits[:decpt]}.{digits[decpt:]}"


@dataclass
class Printer:
    """jq's dump of one value: compact or indented, sorted keys, ASCII escapes."""

    indent: str | None          # None: compact
    sort_keys: bool = False
    ascii: bool = False

    def string(self, s: str) -> str:
        if self.ascii:
            return encode_basestring_ascii(s).replace("\\u007f", "\\u007f")
        out: str = encode_basestring(s)
        return out.replace("\x7f", "\\u007f") if "\x7f" in out else out

    def dump(self, v: Any) -> str:
        parts: list[str] = []
        self._dump(v, parts, 0)
        return "".join(parts)

    def _dump(self, v: Any, out: list[str], level: int) -> None:
        if v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, str):
            out.append(self.string(v))
        elif isinstance(v, (int, float)):
            out.append(format_number(v))
        elif isinstance(v, list):
            if not v:
                out.append("[]")
                return
            if self.indent is None:
                out.append("[")
                for k, item in enumerate(v):
                    if k:
                        out.append(",")
                    self._dump(item, out, level)
                out.append("]")
                return
            inner = "\n" + self.indent * (level + 1)
            out.append("[")
            for k, item in enumerate(v):
                out.append("," + inner if k else inner)
                self._dump(item, out, level + 1)
            out.append("\n" + self.indent * level + "]")
        elif isinstance(v, dict):
            if not v:
                out.append("{}")
                return
            keys: Any = sorted(v) if self.sort_keys else v
            if self.indent is None:
                out.append("{")
                for k, key in enumerate(keys):
                    out.append("," if k else "")
                    out.append(self.string(key))
                    out.append(":")
                    self._dump(v[key], out, level)
                out.append("}")
                return
            inner = "\n" + self.indent * (level + 1)
            out.append("{")
            for k, key in enumerate(keys):
                out.append("," + inner if k else inner)
                out.append(self.string(key))
                out.append(": ")
                self._dump(v[key], out, level + 1)
            out.append("\n" + self.indent * level + "}")
        else:  # pragma: no cover - the library only yields JSON types
            out.append(self.string(str(v)))


_ESC = "\x1b["
_COLORS = {type(None): "1;30", bool: "0;39", int: "0;39", float: "0;39", str: "0;32", list: "1;39", dict: "1;39"}
_FIELD = _ESC + "34;1m"
_RESET = _ESC + "0m"


class ColorPrinter(Printer):
    """jq 1.6's colours (``-C``, or stdout a terminal), escape for escape: a container's
    colour is set again after each member, keys in blue, every value reset after itself."""

    def _dump(self, v: Any, out: list[str], level: int) -> None:
        color = _ESC + _COLORS.get(type(v), "0;39") + "m"
        out.append(color)
        if isinstance(v, list) and v:
            inner = "\n" + self.indent * (level + 1) if self.indent is not None else ""
            out.append("[" + inner)
            for k, item in enumerate(v):
                if k:
                    out.append("," + inner)
                self._dump(item, out, level + 1)
                out.append(color)
            if self.indent is not None:
                out.append("\n" + self.indent * level)
            out.append(color + "]")
        elif isinstance(v, dict) and v:
            inner = "\n" + self.indent * (level + 1) if self.indent is not None else ""
            out.append("{" + inner)
            keys: Any = sorted(v) if self.sort_keys else v
            for k, key in enumerate(keys):
                if k:
                    out.append("," + inner)
                out.append(_RESET + _FIELD + self.string(key) + _RESET + color + ":")
                out.append((" " if self.indent is not None else "") + _RESET)
                self._dump(v[key], out, level + 1)
                out.append(color)
            if self.indent is not None:
                out.append("\n" + self.indent * level)
            out.append(color + "}")
        else:
            super()._dump(v, out, level)
        out.append(_RESET)


# ---------------------------------------------------------------------------- inputs


class ParseError(Exception):
    """Input that is not JSON: jq's ``parse error: ...`` line, status 2."""


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def split_values(text: str, final: bool) -> tuple[list[str], int]:
    """The complete JSON texts at the start of *text* and where the unread rest begins.
    With *final* a value cut off by the end is an error, otherwise it waits for more."""
    values: list[str] = []
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    n = len(text)
    while pos < n:
        try:
            _, end = _DECODER.raw_decode(text, pos)
        except ValueError as e:
            if not final and _maybe_incomplete(text, pos):
                return values, pos
            line = text.count("\n", 0, pos) + 1
            raise ParseError(f"{_reason(e)} at line {line}, column {pos - text.rfind(chr(10), 0, pos)}"
                             ) from None
        if not final and end == n and text[pos] not in "[{\"":
            return values, pos  # a bare number may go on in the next chunk
        values.append(text[pos:end])
        pos = _WS.match(text, end).end()  # type: ignore[union-attr]
    return values, pos


def split_all(text: str) -> tuple[list[str], ParseError | None]:
    """Every JSON text of *text*, and the error that stopped the split (if one did)."""
    values: list[str] = []
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        try:
            _, end = _DECODER.raw_decode(text, pos)
        except ValueError as e:
            line = text.count("\n", 0, pos) + 1
            return values, ParseError(f"{_reason(e)} at line {line}, column {pos - text.rfind(chr(10), 0, pos)}")
        values.append(text[pos:end])
        pos = _WS.match(text, end).end()  # type: ignore[union-attr]
    return values, None


def _maybe_incomplete(text: str, pos: int) -> bool:
    """Whether the failing value may just be cut off by the chunk boundary."""
    return len(text) - pos < 1 << 26


def _reason(e: ValueError) -> str:
    msg = str(e)
    if msg.startswith("Expecting value") or msg.startswith("Extra data"):
        return "Invalid literal"
    if "Unterminated string" in msg:
        return "Unfinished string at EOF"
    return "Unfinished JSON term"


# ---------------------------------------------------------------------------- running


class Halt(Exception):
    def __init__(self, status: int, value: Any, has_value: bool) -> None:
        super().__init__(status)
        self.status, self.value, self.has_value = status, value, has_value


WHOLE_LIMIT = 64 << 20


class WholeText(str):
    """The rest of a file, not yet cut into values (a big document read to its end)."""


@dataclass
class Source:
    """The inputs as jq sees them: one stream of values across every file."""

    ctx: Any
    names: list[str]
    raw: bool
    errors: list[str] = field(default_factory=list)
    current: str | None = None
    whole_ok: bool = False   # a file that is one big value may come whole (``WholeText``)

    async def texts(self) -> Any:
        """(file name, JSON text or raw line) in order; a missing file is a message."""
        for name in self.names or ["-"]:
            try:
                fd = 0 if name == "-" else await self.ctx.open(name)
            except KernelError as e:
                self.errors.append(f"jq: error: Could not open {name}: {strerror(e)}")
                continue
            self.current = None if name == "-" else name
            try:
                async for item in self._read(fd):
                    yield item
            finally:
                if fd:
                    await self.ctx.close(fd)

    async def _read(self, fd: int) -> Any:
        pending = b""
        parts: list[str] = []
        size = 0
        retry_at = 0   # a value cut off at this size is parsed again only once the text doubles
        while True:
            data = await self.ctx.read(fd, CHUNK * 4)
            final = not data
            pending += data
            cut = len(pending) if final else _utf8_cut(pending)
            if cut:
                piece = pending[:cut].decode("utf-8", "replace")
                parts.append(piece)
                size += len(piece)
            pending = pending[cut:]
            if self.raw:
                if final:
                    text = "".join(parts)
                    if text:
                        yield text
                    return
                continue
            if not final and size < retry_at:
                continue
            text = "".join(parts)
            if final and retry_at and self.whole_ok:
                # the file's first value was still cut off: hand over the text unparsed, the
                # library parses it once (``_drive`` splits it only if that fails)
                if text.strip():
                    yield WholeText(text)
                return
            values, rest = split_values(text, final)
            if not values and not final:
                retry_at = max(WHOLE_LIMIT, 2 * size) if self.whole_ok else 2 * size
            elif values:
                retry_at = 0
            parts = [text[rest:]]
            size = len(parts[0])
            for v in values:
                yield v
            if final:
                return

    async def raw_lines(self) -> Any:
        async for blob in self.texts():
            lines = blob.split("\n")
            last = lines.pop()
            for line in lines:
                yield line
            if last:
                yield last


def _utf8_cut(data: bytes) -> int:
    """Where to cut *data* so no UTF-8 sequence is split."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b < 0x80:
            return n
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n if back >= need else n - back
    return n


@dataclass
class Runner:
    ctx: Any
    o: Options
    out: Writer
    printer: Printer
    status: int = 0
    last: Any = None
    produced: bool = False
    errors: int = 0
    input_sites: int = 0

    def render(self, value: Any) -> str:
        """One result as jq prints it, with its separator."""
        f = self.o.flags
        if isinstance(value, str) and self.raw_strings:
            text = value
        else:
            text = self.printer.dump(value)
        if "seq" in f:
            text = "\x1e" + text
        return text if "join_output" in f else text + "\n"

    @property
    def raw_strings(self) -> bool:
        f = self.o.flags
        return ("raw_output" in f or "join_output" in f) and "ascii_output" not in f

    async def emit(self, value: Any) -> None:
        self.produced = True
        self.last = value
        await self.out.write(self.render(value).encode("utf-8", "replace"))

    async def emit_many(self, values: list[Any]) -> None:
        """Results of a batch in one write."""
        if not values:
            return
        self.produced = True
        self.last = values[-1]
        await self.out.write("".join(map(self.render, values)).encode("utf-8", "replace"))

    async def error(self, where: str, msg: str) -> None:
        await self.out.flush()
        await self.ctx.write_all(2, f"jq: error (at {where}): {msg}\n".encode("utf-8", "replace"))
        self.errors += 1

    def run(self, program: Callable[[dict[str, Any]], Any], value_text: str | None,
            value: Any, args: dict[str, Any]) -> Iterator[Any]:
        compiled = program(args)
        if value_text is not None:
            return iter(compiled.input_text(value_text))
        return iter(compiled.input_value(value))


def _error_text(msg: str) -> tuple[str, Halt | None]:
    """The library's message for an error, or the halt our prelude raised."""
    if msg.startswith('{"__vfs_halt": '):
        try:
            obj = json.loads(msg)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "__vfs_halt" in obj:
            code = obj["__vfs_halt"]
            status = int(code) if isinstance(code, (int, float)) and not isinstance(code, bool) else 5
            return "", Halt(status, obj.get("value"), "value" in obj)
    if msg.startswith("{") or msg.startswith("[") or msg in ("null", "true", "false") or msg[:1].isdigit():
        try:
            value = json.loads(msg)
        except ValueError:
            return msg, None
        if not isinstance(value, str):
            return f"(not a string): {Printer(None).dump(value)}", None
    return msg, None


async def main(ctx: Any) -> int:
    """jq FILTER [FILES...]: the exit statuses are jq's (2 usage/input, 3 compile, 5 errors)."""
    try:
        o = parse_argv(list(ctx.argv))
    except Usage as e:
        await ctx.write_all(2, f"jq: {e}\n{HINT}".encode())
        return 2
    if "help" in o.flags:
        await ctx.write_all(1, SPEC.help_text())
        return 0
    if "version" in o.flags:
        await ctx.write_all(1, b"jq-1.6\n")
        return 0
    if o.filter is None:
        if ctx.isatty(0) and ctx.isatty(1):
            await ctx.write_all(2, f"Usage:\tjq {SPEC.usage}\n{HINT}".encode())
            return 2
        o.filter = "."  # jq's default filter when it is not talking to a terminal
    if _MODULES.search(o.filter):
        await ctx.write_all(2, b"jq: error: modules (import/include) are not available in the sandbox\n"
                               b"jq: 1 compile error\n")
        return 3
    for var, name, raw in o.slurpfiles:
        try:
            data = await _read_whole(ctx, name)
        except KernelError as e:
            await ctx.write_all(2, f"jq: Bad JSON in --{'rawfile' if raw else 'slurpfile'} {var} {name}: "
                                   f"Could not open {name}: {strerror(e)}\n".encode())
            return 2
        text = data.decode("utf-8", "replace")
        if raw:
            o.named[var] = text
        else:
            try:
                vals, _ = split_values(text, True)
                o.named[var] = [_loads(v) for v in vals]
            except (ParseError, ValueError) as e:
                await ctx.write_all(2, f"jq: Bad JSON in --slurpfile {var} {name}: {e}\n".encode())
                return 2
    f = o.flags
    indent: str | None = None
    if o.pretty:
        indent = "\t" if o.tab else " " * max(o.indent, 0)
    color = ("color_output" in f or ctx.isatty(1)) and "monochrome_output" not in f   # -M wins, as in 1.6
    printer = (ColorPrinter if color else Printer)(indent, "sort_keys" in f, "ascii_output" in f)
    out = Writer(ctx, 1)
    runner = Runner(ctx, o, out, printer)
    filt = o.filter if o.filter.strip() else "."
    env = dict(ctx.environ)
    base_args: dict[str, Any] = dict(o.named)
    base_args["ARGS"] = {"positional": o.positional, "named": dict(o.named)}
    base_args["__vfs_env"] = env
    numbered, sites = number_input_sites(filt)
    source_text = PRELUDE + numbered
    check_args = dict(base_args, __vfs_file=None, __vfs_rest=[])
    try:
        libjq.compile(source_text, args=check_args)
    except ValueError as e:
        message = str(e)
        try:  # the message about the user's own text, with its own line and column
            libjq.compile(filt, args=base_args)
        except ValueError as raw_error:
            message = str(raw_error)
        await ctx.write_all(2, (message.rstrip("\n") + "\n").encode("utf-8", "replace"))
        return 3
    compiled_cache: dict[str, Any] = {}

    def program(args: dict[str, Any]) -> Any:
        key = json.dumps([args.get("__vfs_file")])
        if "__vfs_rest" in args and args["__vfs_rest"]:
            return libjq.compile(source_text, args=args)
        hit = compiled_cache.get(key)
        if hit is None:
            hit = compiled_cache[key] = libjq.compile(source_text, args=args)
        return hit

    uses = {m.group(0) for m in _USES_INPUT.finditer(filt)}
    runner.input_sites = sites
    src = Source(ctx, o.files, "raw_input" in f)
    status = 0
    try:
        status = await _drive(ctx, runner, src, program, base_args, uses)
    except ParseError as e:
        await out.flush()
        for line in src.errors:
            await ctx.write_all(2, line.encode() + b"\n")
        await ctx.write_all(2, f"parse error: {e}\n".encode())
        return PARSE_ERROR_STATUS
    except Halt as h:
        await out.flush()
        if h.has_value:
            v = h.value
            await ctx.write_all(2, (v if isinstance(v, str) else Printer(None).dump(v) + "\n")
                                .encode("utf-8", "surrogatepass"))
        return h.status
    await out.flush()
    for line in src.errors:
        await ctx.write_all(2, line.encode() + b"\n")
    if status:
        return status
    if runner.errors:
        return 5
    if src.errors:
        return 2
    if "exit_status" in f:
        if not runner.produced:
            return 4
        return 1 if runner.last is None or runner.last is False else 0
    return 0


async def _drive(ctx: Any, runner: Runner, src: Source, program: Callable[[dict[str, Any]], Any],
                 base_args: dict[str, Any], uses: set[str]) -> int:
    """Feed the values to the filter the way jq's main loop does (-n, -s, -R, per input)."""
    f = runner.o.flags
    raw = "raw_input" in f
    slurp = "slurp" in f
    null_input = "null_input" in f
    stream = "stream" in f   # each value as [path, leaf] events (built whole, then split)
    # numbers the filter may turn into text go in as doubles, so tostring prints 1.6's digits
    as_values = bool(_STRINGIFIES.search(runner.o.filter or ""))

    async def values() -> Any:
        if raw and not slurp:
            async for line in src.raw_lines():
                yield None, line
        elif raw:
            parts = [t async for t in src.texts()]
            yield None, "".join(parts)
        elif stream:
            to_stream = libjq.compile("tostream")
            async for text in src.texts():
                for event in to_stream.input_text(text):
                    yield None, event
        else:
            async for text in src.texts():
                yield text, None

    async def run_one(text: str | None, value: Any, rest: list[Any] | None, null: bool = False) -> None:
        args = dict(base_args)
        args["__vfs_file"] = src.current
        args["__vfs_rest"] = rest or []
        where = "<unknown>" if null else f"{src.current or '<stdin>'}:0"
        results: list[Any] = []
        if text is not None and as_values:
            value = _loads(text)
            text = None
        try:
            results = []
            for result in runner.run(program, text, value, args):
                results.append(result)
                if len(results) >= 4096:
                    await runner.emit_many(results)
                    results = []
            await runner.emit_many(results)
        except ValueError as e:
            await runner.emit_many(results)
            msg, halt = _error_text(str(e))
            if halt is not None:
                raise halt from None
            await runner.error(where, msg)

    if slurp and not null_input:
        if raw:
            whole = [v async for _, v in values()]
            await run_one(None, whole[0] if whole else "", None)
        else:
            items = [_loads(t) if t is not None else v async for t, v in values()]
            await run_one(None, items, None)
        return 0
    if null_input:
        rest: list[Any] = []
        if uses:
            rest = [_loads(t) if t is not None else v async for t, v in values()]
        await run_one(None, None, rest, null=True)
        return 0
    if uses:
        # inputs takes the rest of the stream; each input call site one value
        queue = [_loads(t) if t is not None else v async for t, v in values()]
        while queue:
            first, queue = queue[0], queue[1:]
            await run_one(None, first, queue)
            queue = [] if "inputs" in uses else queue[max(runner.input_sites, 1):]
        return 0
    if as_values or raw or stream:
        async for text, value in values():
            await run_one(text, value, None)
        return 0
    # many small inputs (JSON lines): one library call per batch; its results wait until the
    # batch is through, and a batch with an error runs again value by value, so the outputs
    # before the error, the message and the values after it come out as one by one would
    batch: list[str] = []
    size = 0
    batch_file: str | None = None

    async def run_batch() -> None:
        nonlocal batch, size
        texts, batch, size = batch, [], 0
        if len(texts) == 1:
            await run_one(texts[0], None, None)
            return
        args = dict(base_args, __vfs_file=batch_file, __vfs_rest=[])
        try:
            results = list(program(args).input_text("\n".join(texts)))
        except ValueError:
            for t in texts:
                await run_one(t, None, None)
            return
        await runner.emit_many(results)

    async def run_whole(text: str) -> None:
        args = dict(base_args, __vfs_file=src.current, __vfs_rest=[])
        try:
            results = list(program(args).input_text(text))
        except ValueError:
            texts, problem = split_all(text)   # the careful way: value by value, then the error
            for t in texts:
                await run_one(t, None, None)
            if problem is not None:
                raise problem from None
            return
        await runner.emit_many(results)

    src.whole_ok = True
    try:
        async for text, _ in values():
            assert text is not None
            if isinstance(text, WholeText):
                if batch:
                    await run_batch()
                await run_whole(text)
                continue
            if batch and src.current != batch_file:
                await run_batch()
            batch_file = src.current
            batch.append(text)
            size += len(text)
            if len(batch) >= 512 or size >= 1 << 20:
                await run_batch()
    except ParseError:
        if batch:
            await run_batch()   # what came before the bad text is printed first, as jq does
        raise
    if batch:
        await run_batch()
    return 0


async def _read_whole(ctx: Any, name: str) -> bytes:
    fd = await ctx.open(name)
    try:
        parts: list[bytes] = []
        while True:
            data = await ctx.read(fd, CHUNK)
            if not data:
                return b"".join(parts)
            parts.append(data)
    finally:
        await ctx.close(fd)


PROGRAMS: dict[str, Program] = {"jq": main}
