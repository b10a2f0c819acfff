"""sort: GNU coreutils sort over ``ctx``, C-locale byte order.

Lines become Python sort keys once (a tuple per line: one entry per ``-k`` key, then the whole
line as GNU's last-resort comparison unless ``-s``/``-u``), so the comparison loop is the C one
of ``list.sort``.  Only when keys sort in different directions, or ``-V`` is involved, does a
comparator run (``cmp_to_key``).  The sorting itself goes in bounded steps (text_sort_steps)
so the event loop, and the mount it serves, is never held for long.  Input past the memory
bound (64 MiB of lines) is sorted in runs written to temporary files under ``/tmp`` (or
``-T``) and merged back a block at a time, so sort works on inputs bigger than the sandbox
wants to hold.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Awaitable, Callable

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, Writer, read_file
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import fsencode, quote, strerror
from kernel.programs.text_sort_steps import KMerge, Plan, Steps, sorted_pieces
from kernel.syscalls import O_CREAT, O_EXCL, O_RDWR, O_TRUNC, O_WRONLY

SORT = Spec(
    "sort",
    "[OPTION]... [FILE]...",
    "Write sorted concatenation of all FILE(s) to standard output.",
    [
        Opt("b", "ignore-leading-blanks", help="ignore leading blanks"),
        Opt("d", "dictionary-order", help="consider only blanks and alphanumeric characters"),
        Opt("f", "ignore-case", help="fold lower case to upper case characters"),
        Opt("g", "general-numeric-sort", help="compare according to general numerical value"),
        Opt("i", "ignore-nonprinting", help="consider only printable characters"),
        Opt("M", "month-sort", help="compare (unknown) < 'JAN' < ... < 'DEC'"),
        Opt("h", "human-numeric-sort", help="compare human readable numbers (e.g., 2K 1G)"),
        Opt("n", "numeric-sort", help="compare according to string numerical value"),
        Opt("R", "random-sort", help="shuffle, but group identical keys"),
        Opt(None, "random-source", arg="FILE", help="get random bytes from FILE"),
        Opt("r", "reverse", help="reverse the result of comparisons"),
        Opt(
            None,
            "sort",
            arg="WORD",
            help="sort according to WORD: general-numeric -g, human-numeric -h, month -M, "
            "numeric -n, random -R, version -V",
        ),
        Opt("V", "version-sort", help="natural sort of (version) numbers within text"),
        Opt(None, "batch-size", arg="NMERGE", help="merge at most NMERGE inputs at once"),
        Opt("c", None, help="check for sorted input; do not sort", dest="check", action="const", const="diagnose"),
        Opt(None, "check", arg="WHEN", optional_arg=True, help="check for sorted input; do not sort"),
        Opt("C", None, help="like -c, but do not report first bad line", dest="check", action="const", const="quiet"),
        Opt(None, "compress-program", arg="PROG", help="compress temporaries with PROG"),
        Opt(None, "debug", help="annotate the part of the line used to sort"),
        Opt(None, "files0-from", arg="F", help="read input from the files specified by NUL-terminated names in file F"),
        Opt("k", "key", arg="KEYDEF", help="sort via a key; KEYDEF gives location and type", action="append"),
        Opt("m", "merge", help="merge already sorted files; do not sort"),
        Opt("o", "output", arg="FILE", help="write result to FILE instead of standard output"),
        Opt("s", "stable", help="stabilize sort by disabling last-resort comparison"),
        Opt("S", "buffer-size", arg="SIZE", help="use SIZE for main memory buffer"),
        Opt("t", "field-separator", arg="SEP", help="use SEP instead of non-blank to blank transition"),
        Opt("T", "temporary-directory", arg="DIR", help="use DIR for temporaries, not $TMPDIR or /tmp"),
        Opt(None, "parallel", arg="N", help="change the number of sorts run concurrently to N"),
        Opt("u", "unique", help="output only the first of an equal run"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
    usage_status=2,
)

#: Memory held for lines before a sorted run goes to a temporary file (``-S`` sets it). GNU
#: sizes its buffer to the input, so files of a million lines sort in memory there: so here.
MEMORY_BOUND = 192 << 20
#: What one held line costs beyond its bytes, for the bound (measured with tracemalloc): the
#: bytes object and its list slot; with a key, also the (key, line) tuple, its slot and the key.
_LINE_OVERHEAD = 40
_KEYED_LINE_OVERHEAD = 136
#: -S's multipliers (GNU: K is the default unit, % is of physical memory).
_SIZE_UNITS = {"b": 1, "": 1024, "k": 1024, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}

_BLANKS = b" \t"
#: Bytes read from a temporary run at a time while merging.
_RUN_BLOCK = 4 * CHUNK


class SortError(Exception):
    pass


@dataclass
class Key:
    sword: int = 0
    schar: int = 0
    eword: int = -1  # -1: to the end of the line
    echar: int = 0
    skipsblanks: bool = False
    skipeblanks: bool = False
    fold: bool = False
    dictionary: bool = False
    nonprinting: bool = False
    kind: str = ""  # "", "n", "g", "h", "M", "V", "R"
    reverse: bool = False

    def has_options(self) -> bool:
        return bool(
            self.skipsblanks
            or self.skipeblanks
            or self.fold
            or self.dictionary
            or self.nonprinting
            or self.kind
            or self.reverse
        )


def _apply_opts(key: Key, letters: str, where: str) -> None:
    for ch in letters:
        if ch == "b":
            if where == "start":
                key.skipsblanks = True
            elif where == "end":
                key.skipeblanks = True
            else:
                key.skipsblanks = key.skipeblanks = True
        elif ch == "d":
            key.dictionary = True
        elif ch == "f":
            key.fold = True
        elif ch == "i":
            key.nonprinting = True
        elif ch == "r":
            key.reverse = True
        elif ch in "nghMVR":
            if key.kind and key.kind != ch:
                raise SortError(f"options '-{key.kind}{ch}' are incompatible")
            key.kind = ch
        else:
            raise SortError("stray character in field spec")


_KEYDEF = re.compile(r"(\d+)(?:\.(\d+))?([a-zA-Z]*)(?:,(\d+)(?:\.(\d+))?([a-zA-Z]*))?$")


def parse_key(text: str) -> Key:
    m = _KEYDEF.match(text)
    if not m:
        if re.match(r"\d+(\.\d+)?[a-zA-Z]*,$", text) or re.match(r"\d*\.?$", text):
            raise SortError(
                f"invalid number after ',': invalid count at start of '{text.split(',')[-1]}'"
                if "," in text
                else f"invalid field specification {quote(text)}"
            )
        raise SortError(f"invalid field specification {quote(text)}")
    f1, c1, o1, f2, c2, o2 = m.groups()
    key = Key()
    if int(f1) == 0:
        raise SortError(f"field number is zero: invalid field specification {quote(text)}")
    key.sword = int(f1) - 1
    if c1 is not None:
        if int(c1) == 0:
            raise SortError(f"character offset is zero: invalid field specification {quote(text)}")
        key.schar = int(c1) - 1
    for ch in o1:
        if ch not in "bdfginMhRrV":
            raise SortError(f"invalid field specification {quote(text)}")
    _apply_opts(key, o1, "start")
    if f2 is not None:
        if int(f2) == 0:
            raise SortError(f"field number is zero: invalid field specification {quote(text)}")
        key.eword = int(f2) - 1
        key.echar = int(c2) if c2 is not None else 0
        for ch in o2:
            if ch not in "bdfginMhRrV":
                raise SortError(f"invalid field specification {quote(text)}")
        _apply_opts(key, o2, "end")
    return key


def _begfield(line: bytes, key: Key, tab: int | None) -> int:
    ptr, lim = 0, len(line)
    sword = key.sword
    if tab is not None:
        while ptr < lim and sword:
            sword -= 1
            i = line.find(tab, ptr)
            ptr = lim if i < 0 else i + 1
    else:
        while ptr < lim and sword:
            sword -= 1
            while ptr < lim and line[ptr] in _BLANKS:
                ptr += 1
            while ptr < lim and line[ptr] not in _BLANKS:
                ptr += 1
    if key.skipsblanks:
        while ptr < lim and line[ptr] in _BLANKS:
            ptr += 1
    return min(lim, ptr + key.schar)


def _limfield(line: bytes, key: Key, tab: int | None) -> int:
    ptr, lim = 0, len(line)
    if key.eword < 0:
        return lim
    eword, echar = key.eword, key.echar
    if echar == 0:
        eword += 1
    if tab is not None:
        while ptr < lim and eword:
            eword -= 1
            while ptr < lim and line[ptr] != tab:
                ptr += 1
            if ptr < lim and (eword or echar):
                ptr += 1
    else:
        while ptr < lim and eword:
            eword -= 1
            while ptr < lim and line[ptr] in _BLANKS:
                ptr += 1
            while ptr < lim and line[ptr] not in _BLANKS:
                ptr += 1
    if echar:
        if key.skipeblanks:
            while ptr < lim and line[ptr] in _BLANKS:
                ptr += 1
        ptr = min(lim, ptr + echar)
    return ptr


_NUM = re.compile(rb"[ \t]*(-?)(\d*)(?:\.(\d*))?")
#: The commonest -n field: an integer not followed by a decimal point (int() takes the sign).
_INT = re.compile(rb"[ \t]*(-?\d+)(?![.\d])")
_HUMAN_SUFFIX = {c: i + 1 for i, c in enumerate(b"KMGTPEZYRQ")}
_HUMAN_SUFFIX[ord("k")] = 1
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"]
    )
}
_GENERAL = re.compile(
    rb"[ \t\n\v\f\r]*([-+]?0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[-+]?\d+)?"
    rb"|[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|inf(?:inity)?|nan))",
    re.I,
)
_NONDICT = bytes(c for c in range(256) if not (c in b" \t" or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122))
_NONPRINT = bytes(c for c in range(256) if not 32 <= c < 127)
_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


_INT_MATCH = _INT.match
#: Longer digit strings go to Decimal: int() refuses more than 4,300 digits.
_INT_DIGITS = 4000
#: Each line's leading integer text, or what is not one ('', '-', '3.'): one C call per batch.
_LINE_INTS = re.compile(rb"^[ \t]*(-?\d*\.?)", re.M)


def _numeric_items(lines: list[bytes]) -> list[tuple[int | Decimal, bytes]]:
    """``(numeric value, line)`` for each line, as ``sort -n`` of whole lines sorts them.
    The lines are most often integers: they are found and converted by C calls for the whole
    batch (a regex over the joined lines, ``map(int, …)``); any other line sends the batch
    the per-line way."""
    texts = _LINE_INTS.findall(b"\n".join(lines))
    if len(texts) == len(lines):  # no line holds a newline (sort -z)
        try:
            return list(zip(map(int, texts), lines))
        except ValueError:  # '', '-', a decimal point or a digit string int() refuses
            pass
    return [(_numeric(line), line) for line in lines]


def _numeric(field: bytes) -> int | Decimal:
    """The value -n sorts by: an int for the plain integers most fields are (ints and
    Decimals compare exactly with each other), a Decimal otherwise."""
    i = _INT_MATCH(field)
    if i is not None and len(i[1]) < _INT_DIGITS:
        return int(i[1])
    m = _NUM.match(field)
    assert m is not None  # every part of the pattern is optional
    sign, whole, frac = m.group(1), m.group(2), m.group(3)
    if not frac and len(whole) < _INT_DIGITS:
        if not whole:
            return 0
        return -int(whole) if sign else int(whole)
    text = (whole or b"0") + b"." + (frac or b"0")
    value = Decimal(text.decode())
    return -value if sign else value


def _human(field: bytes) -> tuple[int, int, int | Decimal]:
    m = _NUM.match(field)
    assert m is not None
    value = _numeric(field)
    suffix = 0
    end = m.end()
    if end < len(field) and (m.group(2) or m.group(3)):
        suffix = _HUMAN_SUFFIX.get(field[end], 0)
    sign = (value > 0) - (value < 0)
    if sign == 0:
        return (0, 0, value)
    return (sign, sign * suffix, value)


def _general(field: bytes) -> tuple[int, float]:
    m = _GENERAL.match(field)
    if not m:
        return (0, 0.0)
    try:
        text = m.group(1).decode()
        v = float.fromhex(text) if "x" in text.lower() else float(text)
    except ValueError:
        return (0, 0.0)
    if v != v:
        return (1, 0.0)
    return (2, v)


def _month(field: bytes) -> int:
    return _MONTHS.get(field.lstrip(b" \t\n\v\f\r")[:3].upper(), 0)


# ---------------------------------------------------------------------------- version sort


def _ver_order(c: int) -> int:
    if 48 <= c <= 57:
        return 0
    if 65 <= c <= 90 or 97 <= c <= 122:
        return c
    if c == 0x7E:
        return -1
    return c + 256


def _verrevcmp(a: bytes, b: bytes) -> int:
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not (48 <= a[i] <= 57)) or (j < lb and not (48 <= b[j] <= 57)):
            ac = _ver_order(a[i]) if i < la else 0
            bc = _ver_order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == 48:
            i += 1
        while j < lb and b[j] == 48:
            j += 1
        while i < la and j < lb and 48 <= a[i] <= 57 and 48 <= b[j] <= 57:
            if not first_diff:
                first_diff = a[i] - b[j]
            i += 1
            j += 1
        if i < la and 48 <= a[i] <= 57:
            return 1
        if j < lb and 48 <= b[j] <= 57:
            return -1
        if first_diff:
            return first_diff
    return 0


_SUFFIX_RE = re.compile(rb"(?:\.[A-Za-z~][A-Za-z0-9~]*)*$")


def _file_prefix_len(s: bytes) -> int:
    """Length of *s* without its file-name suffix (GNU filevercmp's ``(\\.[A-Za-z~][A-Za-z0-9~]*)*$``)."""
    n = len(s)
    prefix = n
    i = 0
    # scan like gnulib: the suffix starts at a '.' followed by an alpha or '~', continuing to the end
    while i < n:
        c = s[i]
        if c == 0x2E and i + 1 < n and (65 <= s[i + 1] <= 90 or 97 <= s[i + 1] <= 122 or s[i + 1] == 0x7E):
            j = i + 1
            ok = True
            while j < n:
                d = s[j]
                if d == 0x2E:
                    if j + 1 < n and (65 <= s[j + 1] <= 90 or 97 <= s[j + 1] <= 122 or s[j + 1] == 0x7E):
                        j += 1
                        continue
                    ok = False
                    break
                if not (48 <= d <= 57 or 65 <= d <= 90 or 97 <= d <= 122 or d == 0x7E):
                    ok = False
                    break
                j += 1
            if ok:
                prefix = i
                break
        i += 1
    return prefix


def filevercmp(a: bytes, b: bytes) -> int:
    if a == b:
        return 0
    if not a:
        return -1
    if not b:
        return 1
    if a == b".":
        return -1
    if b == b".":
        return 1
    if a == b"..":
        return -1
    if b == b"..":
        return 1
    if a[:1] == b"." and b[:1] != b".":
        return -1
    if a[:1] != b"." and b[:1] == b".":
        return 1
    if a[:1] == b"." and b[:1] == b".":
        a, b = a[1:], b[1:]
    pa, pb = _file_prefix_len(a), _file_prefix_len(b)
    one = a[:pa] == b[:pb]
    if one:
        result = _verrevcmp(a, b)
    else:
        result = _verrevcmp(a[:pa], b[:pb])
        if not result:
            result = _verrevcmp(a, b)
    return result


# ---------------------------------------------------------------------------- the comparison


class _Order:
    """How lines compare: key extraction plus the last-resort rule, as a key function or a cmp."""

    def __init__(
        self, keys: list[Key], tab: int | None, stable: bool, unique: bool, reverse: bool, salt: bytes
    ) -> None:
        self.keys = keys
        self.tab = tab
        self.last_resort = not (stable or unique)
        self.reverse = reverse
        self.salt = salt
        dirs = {k.reverse for k in keys}
        if self.last_resort:
            dirs.add(reverse)
        self.mixed = len(dirs) > 1
        self.all_reversed = dirs == {True}
        self.needs_cmp = self.mixed or any(k.kind == "V" for k in keys)
        self.whole_line = (
            len(keys) == 1
            and keys[0].sword == 0
            and keys[0].schar == 0
            and keys[0].eword < 0
            and not keys[0].skipsblanks
        )

    def field(self, line: bytes, k: Key) -> bytes:
        if k.sword == 0 and k.schar == 0 and k.eword < 0 and not k.skipsblanks:
            return line
        s = _begfield(line, k, self.tab)
        e = _limfield(line, k, self.tab)
        return line[s:e] if e > s else b""

    def component(self, line: bytes, k: Key) -> Any:
        f = self.field(line, k)
        kind = k.kind
        if kind == "n":
            return _numeric(f)
        if kind == "h":
            return _human(f)
        if kind == "g":
            return _general(f)
        if kind == "M":
            return _month(f)
        if kind == "R":
            f = self._text(f, k)
            return hashlib.md5(self.salt + f).digest()
        if kind == "V":
            return f
        return self._text(f, k)

    def _text(self, f: bytes, k: Key) -> bytes:
        if k.dictionary:
            f = f.translate(None, _NONDICT)
        elif k.nonprinting:
            f = f.translate(None, _NONPRINT)
        if k.fold:
            f = f.translate(_UPPER)
        return f

    def keyfunc(self) -> Callable[[bytes], Any] | None:
        """A key function for ``list.sort`` (with ``reverse=self.all_reversed``); None if a cmp is needed."""
        if self.needs_cmp:
            return None
        keys = self.keys
        if len(keys) == 1 and not keys[0].has_options() and self.whole_line:
            return None if self.last_resort else (lambda line: line)  # the line itself
        comp = self.component
        if len(keys) == 1 and self.whole_line and keys[0].kind == "n":
            num = _numeric  # sort -n: the commonest key, without the per-key dispatch
            return (lambda line: (num(line), line)) if self.last_resort else num
        if self.last_resort:
            if len(keys) == 1:
                k0 = keys[0]
                return lambda line: (comp(line, k0), line)
            return lambda line: (*[comp(line, k) for k in keys], line)
        if len(keys) == 1:
            k0 = keys[0]
            return lambda line: comp(line, k0)
        return lambda line: tuple(comp(line, k) for k in keys)

    def compare_keys(self, a: bytes, b: bytes) -> int:
        for k in self.keys:
            ca, cb = self.component(a, k), self.component(b, k)
            if k.kind == "V":
                r = filevercmp(ca, cb)
            else:
                r = (ca > cb) - (ca < cb)
            if r:
                return -r if k.reverse else r
        return 0

    def compare(self, a: bytes, b: bytes) -> int:
        r = self.compare_keys(a, b)
        if r or not self.last_resort:
            return r
        r = (a > b) - (a < b)
        return -r if self.reverse else r

    def plan(self) -> Plan:
        """What the bounded-step sort works on: the lines themselves when the whole line,
        compared as bytes, is the key; else (key, line) pairs, a cmp's key where needed."""
        if self.needs_cmp:
            return Plan(functools.cmp_to_key(self.compare), False)
        k = self.keys[0]
        if len(self.keys) == 1 and self.whole_line and not (
            k.fold or k.dictionary or k.nonprinting or k.kind
        ):
            return Plan(None, self.all_reversed)  # `sort`, `sort -r`, `sort -u`: no key at all
        batch = _numeric_items if len(self.keys) == 1 and self.whole_line and k.kind == "n" else None
        return Plan(self.keyfunc(), self.all_reversed, key_ends_with_line=self.last_resort, batch=batch)

    def merge_key(self) -> Callable[[bytes], Any]:
        """A key for the k-way merge where smaller always comes first (reversal folded in)."""
        if self.needs_cmp or self.all_reversed:
            return functools.cmp_to_key(self.compare)
        kf = self.keyfunc()
        return kf if kf is not None else (lambda line: line)


# ---------------------------------------------------------------------------- the program


async def prog_sort(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SORT)
    if isinstance(args, int):
        return args

    async def fail(text: str, status: int = 2) -> int:
        await ctx.write_all(2, fsencode(f"sort: {text}\n"))
        return status

    gkey = Key()
    for letter, name in (
        ("b", "ignore_leading_blanks"),
        ("d", "dictionary_order"),
        ("f", "ignore_case"),
        ("g", "general_numeric_sort"),
        ("i", "ignore_nonprinting"),
        ("M", "month_sort"),
        ("h", "human_numeric_sort"),
        ("n", "numeric_sort"),
        ("R", "random_sort"),
        ("r", "reverse"),
        ("V", "version_sort"),
    ):
        if args.get(name):
            try:
                _apply_opts(gkey, letter, "both")
            except SortError as e:
                return await fail(str(e))
    if args.get("sort"):
        word = {
            "general-numeric": "g",
            "human-numeric": "h",
            "month": "M",
            "numeric": "n",
            "random": "R",
            "version": "V",
        }.get(args["sort"])
        if word is None:
            return await fail(f"invalid argument {quote(args['sort'])} for '--sort'")
        try:
            _apply_opts(gkey, word, "both")
        except SortError as e:
            return await fail(str(e))
    keys: list[Key] = []
    for text in args.get("key") or []:
        try:
            k = parse_key(text)
        except SortError as e:
            return await fail(str(e))
        if not k.has_options():
            k.skipsblanks, k.skipeblanks = gkey.skipsblanks, gkey.skipeblanks
            k.fold, k.dictionary, k.nonprinting = gkey.fold, gkey.dictionary, gkey.nonprinting
            k.kind, k.reverse = gkey.kind, gkey.reverse
        keys.append(k)
    if not keys:
        whole = Key(
            skipsblanks=gkey.skipsblanks,
            skipeblanks=gkey.skipeblanks,
            fold=gkey.fold,
            dictionary=gkey.dictionary,
            nonprinting=gkey.nonprinting,
            kind=gkey.kind,
            reverse=gkey.reverse,
        )
        keys = [whole]
    tab: int | None = None
    if args.get("field_separator") is not None:
        t = fsencode(args["field_separator"])
        if t == b"\\0":
            t = b"\0"
        if len(t) != 1:
            if not t:
                return await fail("empty tab")
            return await fail(f"multi-character tab {quote(args['field_separator'])}")
        tab = t[0]
    delim = b"\0" if args.get("zero_terminated") else b"\n"
    salt = secrets.token_bytes(16)
    if args.get("random_source") is not None:
        try:
            fd = await ctx.open(args["random_source"])
            salt = await ctx.read(fd, 16)
            await ctx.close(fd)
        except KernelError as e:
            return await fail(f"{args['random_source']}: {strerror(e)}")
    order = _Order(keys, tab, bool(args.get("stable")), bool(args.get("unique")), gkey.reverse, salt)
    check = args.get("check")
    if "check" in args and check is None:
        check = "diagnose"
    if check not in (None, "diagnose", "diagnose-first", "quiet", "silent"):
        return await fail(f"invalid argument {quote(check)} for '--check'")
    files = list(args.operands) or ["-"]
    if args.get("files0_from") is not None:
        try:
            fd = 0 if args["files0_from"] == "-" else await ctx.open(args["files0_from"])
            data = await ctx.read_all(fd)
        except KernelError as e:
            return await fail(f"cannot open {quote(args['files0_from'])} for reading: {strerror(e)}")
        files = [n.decode("utf-8", "surrogateescape") for n in data.split(b"\0") if n]
    if check:
        if len(files) > 1:
            return await fail(f"extra operand {quote(files[1])} not allowed with -c")
        return await _check(ctx, order, files[0], delim, bool(args.get("unique")), check in ("quiet", "silent"))
    # open every input first: a missing file is fatal before any output, as in GNU
    fds = []
    for name in files:
        if name == "-":
            fds.append((name, 0))
            continue
        try:
            fds.append((name, await ctx.open(name)))
        except KernelError as e:
            for _, fd in fds:
                if fd:
                    await ctx.close(fd)
            return await fail(f"cannot read: {name}: {strerror(e)}")
    bound = None
    if args.get("buffer_size") is not None:
        size = await _buffer_size(ctx, args["buffer_size"])
        if isinstance(size, str):
            return await fail(size)
        bound = size
    tmpdir = args.get("temporary_directory") or ctx.getenv("TMPDIR") or "/tmp"
    sorter = _Sorter(ctx, order, delim, bool(args.get("unique")), tmpdir, bound)
    try:
        merged = None
        if args.get("merge"):
            merged = _Merge([_RunReader(ctx, fd, delim) for _, fd in fds], order, delim)
        else:
            for name, fd in fds:
                await sorter.feed(name, fd)
        out_name = args.get("output")
        out_fd = 1
        if out_name is not None and out_name != "-":
            try:
                out_fd = await ctx.open(out_name, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
            except KernelError as e:
                return await fail(f"open failed: {out_name}: {strerror(e)}")
        out = Writer(ctx, out_fd)
        if merged is not None:
            await sorter.emit_merge(merged, out)
        else:
            await sorter.output(out)
        await out.flush()
        if out_fd != 1:
            await ctx.close(out_fd)
    except _ReadError as e:
        return await fail(str(e))
    finally:
        for _, fd in fds:
            if fd:
                try:
                    await ctx.close(fd)
                except KernelError:
                    pass
        await sorter.cleanup()
    return 0


async def _buffer_size(ctx: Any, text: str) -> int | str:
    """-S SIZE in bytes, or GNU's complaint: a number with an optional unit, K by default,
    % of the kernel's MemTotal; at least 64 KiB, as GNU raises tiny sizes too."""
    m = re.fullmatch(r"(\d+)(.*)", text, re.S)
    if m is None:
        return f"invalid -S argument {quote(text)}"
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit in ("z", "y", "r", "q"):
        return f"-S argument {quote(text)} too large"
    if unit == "%":
        info = await read_file(ctx, "/proc/meminfo") or b""
        try:
            total = int(info.split(b"MemTotal:", 1)[1].split()[0]) * 1024
        except (IndexError, ValueError):
            total = 1 << 30
        size = total * n // 100
    elif unit in _SIZE_UNITS:
        size = n * _SIZE_UNITS[unit]
    else:
        return f"invalid suffix in -S argument {quote(text)}"
    return max(size, 64 << 10)


class _ReadError(Exception):
    pass


class _RunReader:
    """Lines of one sorted run (a temp file or an input of ``-m``), each with its delimiter."""

    def __init__(self, ctx: Any, fd: int, delim: bytes) -> None:
        self.reader = Reader(ctx, fd)
        self.delim = delim

    async def next(self) -> bytes | None:
        line = await self.reader.readline(self.delim)
        if not line:
            return None
        if not line.endswith(self.delim):
            line += self.delim
        return line


class _Sorter:
    """The lines read, sorted in bounded steps (text_sort_steps) with a preempt point after
    each; past the memory bound, sorted runs go to temporary files and are merged back from
    blocks read in turn, in steps of the same size."""

    def __init__(
        self, ctx: Any, order: _Order, delim: bytes, unique: bool, tmpdir: str, bound: int | None = None
    ) -> None:
        self.ctx, self.order, self.delim, self.unique, self.tmpdir = ctx, order, delim, unique, tmpdir
        self.plan = order.plan()
        self.bound = MEMORY_BOUND if bound is None else bound
        self.overhead = _LINE_OVERHEAD if self.plan.key is None else _KEYED_LINE_OVERHEAD
        self.steps = Steps()
        self.key_steps = Steps()
        self.lines: list[bytes] = []
        self.size = 0
        self.temps: list[str] = []

    async def feed(self, name: str, fd: int) -> None:
        ctx, delim = self.ctx, self.delim
        rest = b""
        while True:
            try:
                data = await ctx.read(fd, CHUNK)
            except KernelError as e:
                raise _ReadError(f"read failed: {name}: {strerror(e)}") from None
            if not data:
                break
            if rest:
                data = rest + data
            cut = data.rfind(delim)
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            # lines are kept without their delimiter: the comparisons see the text only
            batch = data[:cut].split(delim)
            self.lines.extend(batch)
            # the bound counts Python's per-line cost too (object header, list slot, key)
            self.size += cut + 1 + self.overhead * len(batch)
            if self.size > self.bound:
                await self.spill()
        if rest:
            self.lines.append(rest)
            self.size += len(rest)

    async def _decorate(self, lines: list[bytes]) -> list[Any]:
        """The items to sort: each line's key computed once, a bounded batch at a time."""
        plan = self.plan
        if plan.key is None:
            return lines
        items: list[Any] = []
        steps, i = self.key_steps, 0
        while i < len(lines):
            steps.start()
            batch = plan.decorate(lines[i : i + steps.items])
            items.extend(batch)
            steps.done(len(batch))
            i += len(batch)
            await self.ctx.preempt_point()
        return items

    def _put(self, out: Writer) -> Callable[[list[Any]], Awaitable[None]]:
        """Writes pieces of sorted items to *out* (with -u, the first of each equal run only)."""
        plan, delim = self.plan, self.delim
        key = plan.item_key
        prev: list[Any] = []  # the last key written, across pieces

        async def put(items: list[Any]) -> None:
            if self.unique:
                kept = []
                p = prev[0] if prev else _NONE
                for it in items:
                    k = key(it)
                    if p is _NONE or k != p:
                        kept.append(it)
                        p = k
                prev[:] = [p]
                items = kept
            if items:
                await out.write(delim.join(plan.lines(items)) + delim)

        return put

    async def _sort_held(self, put: Callable[[list[Any]], Awaitable[None]]) -> None:
        items = await self._decorate(self.lines)
        self.lines, self.size = [], 0
        for piece in sorted_pieces(items, self.plan, self.steps):
            if piece:
                await put(piece)
            await self.ctx.preempt_point()

    async def spill(self) -> None:
        """Sort what is held and write it as a run to a temporary file."""
        name = f"{self.tmpdir.rstrip('/')}/sort{secrets.token_hex(6)}"
        fd = await self.ctx.open(name, O_RDWR | O_CREAT | O_EXCL, 0o600)
        self.temps.append(name)
        out = Writer(self.ctx, fd)
        await self._sort_held(self._put(out))
        await out.flush()
        await self.ctx.close(fd)

    async def output(self, out: Writer) -> None:
        """Everything fed, sorted, to *out*."""
        put = self._put(out)
        if not self.temps:
            await self._sort_held(put)
            return
        await self.spill()
        runs = [_BlockReader(self.ctx, await self.ctx.open(name), self.delim) for name in self.temps]
        try:
            merge = KMerge([[] for _ in runs], self.plan, open_ended=True)
            steps = self.steps
            while True:
                steps.start()
                piece = merge.step(steps.items)
                if merge.finished:
                    break
                if piece is None:
                    r = merge.want
                    assert r is not None
                    merge.more(r, await self._decorate(await runs[r].lines()))
                    continue
                steps.done(len(piece))
                await put(piece)
                await self.ctx.preempt_point()
        finally:
            for run in runs:
                try:
                    await self.ctx.close(run.fd)
                except KernelError:
                    pass

    async def emit_merge(self, result: "_Merge", out: Writer) -> None:
        """The output of ``-m``: the inputs merged line by line."""
        prev = None
        while True:
            line = await result.next()
            if line is None:
                break
            text = line[:-1]
            if self.unique and prev is not None and self.order.compare_keys(prev, text) == 0:
                continue
            prev = text
            await out.write(line)

    async def cleanup(self) -> None:
        for name in self.temps:
            try:
                await self.ctx.unlink(name)
            except KernelError:
                pass


_NONE = object()


class _BlockReader:
    """The lines of a sorted run (a temporary file), a block at a time."""

    def __init__(self, ctx: Any, fd: int, delim: bytes) -> None:
        self.ctx, self.fd, self.delim = ctx, fd, delim
        self.rest = b""
        self.eof = False

    async def lines(self) -> list[bytes]:
        """The next whole lines (without delimiters); [] at the end."""
        while not self.eof:
            data = await self.ctx.read(self.fd, _RUN_BLOCK)
            if not data:
                self.eof = True
                break
            data = self.rest + data if self.rest else data
            cut = data.rfind(self.delim)
            if cut < 0:
                self.rest = data
                continue
            self.rest = data[cut + 1 :]
            return data[:cut].split(self.delim)
        rest, self.rest = self.rest, b""
        return [rest] if rest else []


class _Merge:
    """A k-way merge of sorted runs on a heap; ties go to the earlier run (stability)."""

    def __init__(self, runs: list[_RunReader], order: _Order, delim: bytes) -> None:
        self.runs = runs
        self.key = order.merge_key()
        self.heap: list[tuple[Any, int, bytes]] | None = None

    async def next(self) -> bytes | None:
        if self.heap is None:
            self.heap = []
            for i, r in enumerate(self.runs):
                line = await r.next()
                if line is not None:
                    self.heap.append((self.key(line[:-1]), i, line))
            heapq.heapify(self.heap)
        if not self.heap:
            return None
        _, i, line = self.heap[0]
        nxt = await self.runs[i].next()
        if nxt is None:
            heapq.heappop(self.heap)
        else:
            heapq.heapreplace(self.heap, (self.key(nxt[:-1]), i, nxt))
        return line


async def _check(ctx: Any, order: _Order, name: str, delim: bytes, unique: bool, quiet: bool) -> int:
    try:
        fd = 0 if name == "-" else await ctx.open(name)
    except KernelError as e:
        await ctx.write_all(2, fsencode(f"sort: cannot read: {name}: {strerror(e)}\n"))
        return 2
    reader = _RunReader(ctx, fd, delim)
    prev = None
    n = 0
    while True:
        line = await reader.next()
        if line is None:
            return 0
        n += 1
        text = line[:-1]
        if prev is not None:
            r = order.compare(prev, text)
            if r > 0 or (unique and order.compare_keys(prev, text) == 0):
                if not quiet:
                    shown = "-" if name == "-" else name
                    await ctx.write_all(2, fsencode(f"sort: {shown}:{n}: disorder: ") + text + b"\n")
                return 1
        prev = text


PROGRAMS = {"sort": prog_sort}
