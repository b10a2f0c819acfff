"""The line and column tools: uniq, cut, tr, paste, join, comm, nl, fold, expand, unexpand,
column, fmt — GNU coreutils (util-linux for column) look-alikes over ``ctx``, on bytes.

The streaming ones (cut, tr, fold, expand, nl, uniq) work per 64 KiB batch of lines; tr is a
``bytes.translate`` per read.  paste, join and comm read their inputs in lockstep a line at a
time through ``Reader``; column and fmt need a whole table/paragraph and hold just that.
"""

from __future__ import annotations

import re
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, Writer
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.text_base import Run, fsencode, lines_of, quote, strerror
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY

# ============================================================================ uniq

UNIQ = Spec(
    "uniq",
    "[OPTION]... [INPUT [OUTPUT]]",
    "Filter adjacent matching lines from INPUT (or standard input), writing to OUTPUT (or standard output).",
    [
        Opt("c", "count", help="prefix lines by the number of occurrences"),
        Opt("d", "repeated", help="only print duplicate lines, one for each group"),
        Opt("D", None, help="print all duplicate lines", dest="all_repeated", action="const", const="none"),
        Opt(
            None,
            "all-repeated",
            arg="METHOD",
            optional_arg=True,
            help="like -D, but allow separating groups with an empty line",
        ),
        Opt("f", "skip-fields", arg="N", help="avoid comparing the first N fields"),
        Opt(
            None, "group", arg="METHOD", optional_arg=True, help="show all items, separating groups with an empty line"
        ),
        Opt("i", "ignore-case", help="ignore differences in case when comparing"),
        Opt("s", "skip-chars", arg="N", help="avoid comparing the first N characters"),
        Opt("u", "unique", help="only print unique lines"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
        Opt("w", "check-chars", arg="N", help="compare no more than N characters in lines"),
    ],
)

_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _obsolete_uniq(argv: list[str]) -> list[str]:
    """``uniq -2`` (skip 2 fields) and ``uniq +3`` (skip 3 chars), the historical forms."""
    out = [argv[0]]
    for a in argv[1:]:
        if re.fullmatch(r"-\d+", a):
            out += ["-f", a[1:]]
        elif re.fullmatch(r"\+\d+", a):
            out += ["-s", a[1:]]
        else:
            out.append(a)
    return out


async def prog_uniq(ctx: Any) -> int:
    args = await parse_or_exit(ctx, UNIQ, _obsolete_uniq(list(ctx.argv)))
    if isinstance(args, int):
        return args
    run = Run(ctx, "uniq")
    nums = {}
    for key, what in (
        ("skip_fields", "number of fields to skip"),
        ("skip_chars", "number of bytes to skip"),
        ("check_chars", "number of bytes to compare"),
    ):
        if args.get(key) is not None:
            try:
                nums[key] = int(args[key])
                if nums[key] < 0:
                    raise ValueError
            except ValueError:
                await run.err(f"{args[key]}: invalid {what}")
                return 1
    skip_f, skip_c, check = nums.get("skip_fields", 0), nums.get("skip_chars", 0), nums.get("check_chars")
    count = bool(args.get("count"))
    repeated = bool(args.get("repeated"))
    unique = bool(args.get("unique"))
    all_rep = args.get("all_repeated") if "all_repeated" in args else None
    if "all_repeated" in args and all_rep is None:
        all_rep = "none"
    if all_rep is not None and all_rep not in ("none", "prepend", "separate"):
        await run.err(f"invalid argument {quote(all_rep)} for '--all-repeated'")
        return 1
    group = args.get("group") if "group" in args else None
    if "group" in args and group is None:
        group = "separate"
    if group is not None:
        if group not in ("separate", "prepend", "append", "both"):
            await run.err(f"invalid argument {quote(group)} for '--group'")
            return 1
        if count or repeated or unique or all_rep:
            return await run.usage("--group is mutually exclusive with -c/-d/-D/-u")
    if count and all_rep is not None:
        return await run.usage("printing all duplicated lines and repeat counts is meaningless")
    icase = bool(args.get("ignore_case"))
    delim = b"\0" if args.get("zero_terminated") else b"\n"
    ops = args.operands
    if len(ops) > 2:
        return await run.usage(f"extra operand {quote(ops[2])}")
    src = ops[0] if ops else "-"
    fd = await run.open(src)
    if fd is None:
        return 1
    out_fd = 1
    if len(ops) == 2 and ops[1] != "-":
        try:
            out_fd = await ctx.open(ops[1], O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        except KernelError as e:
            await run.file_err(ops[1], e)
            return 1
    out = Writer(ctx, out_fd)

    def keyof(line: bytes) -> bytes:
        k = line
        if skip_f:
            p, n = 0, len(k)
            for _ in range(skip_f):
                while p < n and k[p] in b" \t":
                    p += 1
                while p < n and k[p] not in b" \t":
                    p += 1
            k = k[p:]
        if skip_c:
            k = k[skip_c:]
        if check is not None:
            k = k[:check]
        if icase:
            k = k.translate(_UPPER)
        return k

    simple = not (skip_f or skip_c or check is not None or icase)
    prev: bytes | None = None
    prev_key: bytes | None = None
    n = 0
    group_lines: list[bytes] = []
    first_group = True

    async def flush_group() -> None:
        nonlocal first_group
        if prev is None:
            return
        if group is not None:
            if (group in ("prepend", "both") and first_group) or not first_group:
                if not (first_group and group not in ("prepend", "both")):
                    await out.write(delim)
            await out.write(b"".join(group_lines))
            first_group = False
            return
        if all_rep is not None:
            if n > 1:
                if (all_rep == "prepend") or (all_rep == "separate" and not first_group):
                    await out.write(delim)
                await out.write(b"".join(group_lines))
                first_group = False
            return
        if (repeated and n < 2) or (unique and n > 1):
            return
        if count:
            await out.write(b"%7d " % n)
        await out.write(prev + delim)

    plain = simple and not (count or repeated or unique or all_rep is not None or group is not None)
    # -c, -d, -u on whole lines (`sort | uniq -c`): runs counted a batch at a time
    counted = simple and not plain and all_rep is None and group is None
    run_text: bytes | None = None  # the run still open at the end of a batch, with its delimiter

    def emitted(text: bytes, times: int) -> bytes:
        if (repeated and times < 2) or (unique and times > 1):
            return b""
        return b"%7d %s" % (times, text) if count else text

    try:
        async for batch in lines_of(ctx, fd, delim[0]):
            if counted and batch:
                texts = batch
                if not texts[-1].endswith(delim):
                    texts = [*texts[:-1], texts[-1] + delim]
                # where each run starts (a comprehension: this is the hot loop), and where it ends
                starts = [0, *[i for i, (a, b) in enumerate(zip(texts, texts[1:]), 1) if a != b]]
                ends = [*starts[1:], len(texts)]
                parts = []
                if texts[0] == run_text:
                    n += ends[0]
                else:
                    if run_text is not None:
                        parts.append(emitted(run_text, n))
                    n = ends[0]
                if len(starts) > 1:
                    parts.append(emitted(run_text if texts[0] == run_text else texts[0], n))
                    if count and not (repeated or unique):
                        parts += [b"%7d %s" % (e - s, texts[s]) for s, e in zip(starts[1:-1], ends[1:-1])]
                    else:
                        parts += [emitted(texts[s], e - s) for s, e in zip(starts[1:-1], ends[1:-1])]
                    run_text, n = texts[starts[-1]], ends[-1] - starts[-1]
                else:
                    run_text = texts[0]
                if parts:
                    await out.write(b"".join(parts))
                continue
            if plain:
                # the common 'uniq': keep each line that differs from the one before, in one pass
                texts = [raw if raw.endswith(delim) else raw + delim for raw in batch]
                kept = [b for a, b in zip([prev_key], texts[:1]) if a != b] + [
                    b for a, b in zip(texts, texts[1:]) if a != b
                ]
                if kept:
                    await out.write(b"".join(kept))
                prev_key = texts[-1]
                continue
            for raw in batch:
                line = raw[:-1] if raw.endswith(delim) else raw
                k = line if simple else keyof(line)
                if prev is not None and k == prev_key:
                    n += 1
                    if all_rep is not None or group is not None:
                        group_lines.append(line + delim)
                    continue
                await flush_group()
                prev, prev_key, n = line, k, 1
                group_lines = [line + delim] if (all_rep is not None or group is not None) else []
        if counted:
            if run_text is not None:
                await out.write(emitted(run_text, n))
        elif not plain:
            await flush_group()
        if group in ("append", "both") and not first_group:
            await out.write(delim)
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await run.file_err(src, e)
    finally:
        await run.close(fd)
    await out.flush()
    if out_fd != 1:
        await ctx.close(out_fd)
    return run.status


# ============================================================================ cut

CUT = Spec(
    "cut",
    "OPTION... [FILE]...",
    "Print selected parts of lines from each FILE to standard output.",
    [
        Opt("b", "bytes", arg="LIST", help="select only these bytes"),
        Opt("c", "characters", arg="LIST", help="select only these characters"),
        Opt("d", "delimiter", arg="DELIM", help="use DELIM instead of TAB for field delimiter"),
        Opt("f", "fields", arg="LIST", help="select only these fields"),
        Opt("n", None, help="(ignored)"),
        Opt(None, "complement", help="complement the set of selected bytes, characters or fields"),
        Opt("s", "only-delimited", help="do not print lines not containing delimiters"),
        Opt(None, "output-delimiter", arg="STRING", help="use STRING as the output delimiter"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)


def parse_list(text: str, what: str) -> list[tuple[int, int]]:
    """cut's LIST (``1,3-5,7-``) as sorted, merged 1-based inclusive ranges (hi may be huge)."""
    big = 1 << 62
    ranges = []
    for part in re.split(r"[, ]", text):
        if not part:
            raise ValueError("fields and positions are numbered from 1")
        if part == "-":
            raise ValueError("invalid range with no endpoint: -")
        m = re.fullmatch(r"(\d*)-(\d*)|(\d+)", part)
        if not m:
            raise ValueError(
                f"invalid {what} value {quote(part)}" if what != "field" else f"invalid field value {quote(part)}"
            )
        if m.group(3) is not None:
            lo = hi = int(m.group(3))
            if lo == 0:
                raise ValueError(
                    f"{what}s are numbered from 1" if what != "byte" else "byte/character positions are numbered from 1"
                )
        else:
            lo = int(m.group(1)) if m.group(1) else 1
            hi = int(m.group(2)) if m.group(2) else big
            if m.group(1) and lo == 0:
                raise ValueError(
                    f"{what}s are numbered from 1" if what != "byte" else "byte/character positions are numbered from 1"
                )
            if m.group(2) and hi == 0 and not m.group(1):
                raise ValueError("invalid range with no endpoint: -")
            if hi < lo:
                raise ValueError("invalid decreasing range")
        ranges.append((lo, hi))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:  # adjacent ranges stay apart: --output-delimiter goes between
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    big = 1 << 62
    out = []
    pos = 1
    for lo, hi in ranges:
        if lo > pos:
            out.append((pos, lo - 1))
        pos = hi + 1
    if pos <= big:
        out.append((pos, big))
    return out


async def prog_cut(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CUT)
    if isinstance(args, int):
        return args
    run = Run(ctx, "cut")
    modes = [k for k in ("bytes", "characters", "fields") if args.get(k) is not None]
    if not modes:
        return await run.usage("you must specify a list of bytes, characters, or fields")
    if len(modes) > 1:
        return await run.usage("only one type of list may be specified")
    mode = modes[0]
    fields = mode == "fields"
    if args.get("delimiter") is not None and not fields:
        return await run.usage("an input delimiter may be specified only when operating on fields")
    if args.get("only_delimited") and not fields:
        return await run.usage("suppressing non-delimited lines makes sense\n\tonly when operating on fields")
    try:
        ranges = parse_list(args[mode], "field" if fields else "byte")
    except ValueError as e:
        return await run.usage(str(e))
    if args.get("complement"):
        ranges = _complement(ranges)
    d = fsencode(args.get("delimiter", "\t"))
    if len(d) != 1:
        if d == b"":
            d = b"\0"
        else:
            return await run.usage("the delimiter must be a single character")
    out_delim = fsencode(args["output_delimiter"]) if args.get("output_delimiter") is not None else None
    eol = b"\0" if args.get("zero_terminated") else b"\n"
    only_delim = bool(args.get("only_delimited"))
    out = Writer(ctx)
    big = 1 << 62

    async def one_input(name: str, fd: int) -> None:
        async for batch in lines_of(ctx, fd, eol[0]):
            parts = []
            if fields and len(ranges) == 1:
                # one range of fields: a comprehension over the batch, splitting at most hi times
                lo, hi = ranges[0]
                od = out_delim if out_delim is not None else d
                cap = hi if hi < big else -1
                for raw in batch:
                    line = raw[:-1] if raw.endswith(eol) else raw
                    p = line.split(d, cap)
                    if len(p) > 1:
                        parts.append(od.join(p[lo - 1 : hi]) + eol)
                    elif not only_delim:
                        parts.append(line + eol)
                await out.write(b"".join(parts))
                continue
            for raw in batch:
                line = raw[:-1] if raw.endswith(eol) else raw
                if fields:
                    if d not in line:
                        if not only_delim:
                            parts.append(line + eol)
                        continue
                    cols = line.split(d)
                    sel = []
                    n = len(cols)
                    for lo, hi in ranges:
                        if lo > n:
                            break
                        sel.extend(cols[lo - 1 : min(hi, n)])
                    parts.append((out_delim if out_delim is not None else d).join(sel) + eol)
                else:
                    n = len(line)
                    pieces = []
                    for lo, hi in ranges:
                        if lo > n:
                            break
                        pieces.append(line[lo - 1 : min(hi, n) if hi < big else n])
                    if out_delim is not None:
                        parts.append(out_delim.join(pieces) + eol)
                    else:
                        parts.append(b"".join(pieces) + eol)
            await out.write(b"".join(parts))

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


# ============================================================================ tr

TR = Spec(
    "tr",
    "[OPTION]... STRING1 [STRING2]",
    "Translate, squeeze, and/or delete characters from standard input, writing to standard output.",
    [
        Opt("c", None, help="use the complement of STRING1", dest="complement"),
        Opt("C", None, help="use the complement of STRING1", dest="complement"),
        Opt(None, "complement", help="use the complement of STRING1", dest="complement"),
        Opt("d", "delete", help="delete characters in STRING1, do not translate"),
        Opt(
            "s",
            "squeeze-repeats",
            help="replace each sequence of a repeated character that is listed in the last "
            "specified SET, with a single occurrence of that character",
        ),
        Opt("t", "truncate-set1", help="first truncate STRING1 to length of STRING2"),
    ],
)

_CLASSES = {
    b"alnum": bytes(c for c in range(256) if chr(c).isascii() and chr(c).isalnum()),
    b"alpha": bytes(c for c in range(256) if chr(c).isascii() and chr(c).isalpha()),
    b"blank": b"\t ",
    b"cntrl": bytes(list(range(32)) + [127]),
    b"digit": b"0123456789",
    b"graph": bytes(range(33, 127)),
    b"lower": b"abcdefghijklmnopqrstuvwxyz",
    b"print": bytes(range(32, 127)),
    b"punct": bytes(c for c in range(33, 127) if not chr(c).isalnum()),
    b"space": b"\t\n\v\f\r ",
    b"upper": b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    b"xdigit": b"0123456789ABCDEFabcdef",
}


class TrError(Exception):
    pass


def _tr_unescape(s: bytes) -> list[tuple[int, bool]]:
    """(byte, was_escaped) items: backslash escapes resolved, escaped ones marked literal."""
    out = []
    i, n = 0, len(s)
    esc = {ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11}
    while i < n:
        c = s[i]
        if c == 0x5C and i + 1 < n:
            d = s[i + 1]
            if 48 <= d <= 55:
                j = i + 1
                v = 0
                while j < n and j < i + 4 and 48 <= s[j] <= 55:
                    nv = v * 8 + s[j] - 48
                    if nv > 255:
                        break
                    v = nv
                    j += 1
                out.append((v, True))
                i = j
                continue
            out.append((esc.get(d, d), True))
            i += 2
            continue
        out.append((c, False))
        i += 1
    return out


def tr_set(s: bytes, set2: bool = False) -> tuple[list[int], list[tuple[str, int]]]:
    """Expand a tr SET: the bytes, and where the classes/repeats sit (for the SET2 rules)."""
    items = _tr_unescape(s)
    out: list[int] = []
    marks: list[tuple[str, int]] = []
    i, n = 0, len(items)
    while i < n:
        c, escd = items[i]
        if c == 0x5B and not escd and i + 1 < n:
            # [:class:], [=c=], [c*n]
            if items[i + 1] == (0x3A, False):
                j = i + 2
                name = bytearray()
                while j + 1 < n and not (items[j] == (0x3A, False) and items[j + 1] == (0x5D, False)):
                    name.append(items[j][0])
                    j += 1
                if j + 1 < n:
                    cls = bytes(name)
                    if cls not in _CLASSES:
                        raise TrError(f"invalid character class {quote(cls.decode('latin-1'))}")
                    marks.append((cls.decode(), len(out)))
                    out.extend(_CLASSES[cls])
                    i = j + 2
                    continue
            if (
                items[i + 1] == (0x3D, False)
                and i + 3 < n
                and items[i + 3] == (0x3D, False)
                and i + 4 < n
                and items[i + 4] == (0x5D, False)
            ):
                out.append(items[i + 2][0])
                i += 5
                continue
            if i + 2 < n and items[i + 2] == (0x2A, False):
                j = i + 3
                num = bytearray()
                while j < n and items[j] != (0x5D, False):
                    num.append(items[j][0])
                    j += 1
                if j < n:
                    ch = items[i + 1][0]
                    text = bytes(num).decode("latin-1")
                    if text and not text.isdigit():
                        raise TrError(f"invalid repeat count {quote(text)} in [c*n] construct")
                    count = int(text, 8 if text.startswith("0") else 10) if text else 0
                    if not set2:
                        raise TrError("the [c*] repeat construct may not appear in string1")
                    if count == 0:
                        marks.append(("fill", len(out)))
                        out.append(ch)
                    else:
                        out.extend([ch] * count)
                    i = j + 1
                    continue
        if i + 2 < n and items[i + 1] == (0x2D, False):
            hi = items[i + 2][0]
            if hi < c:
                raise TrError(f"range-endpoints of '{chr(c)}-{chr(hi)}' are in reverse collating sequence order")
            out.extend(range(c, hi + 1))
            i += 3
            continue
        out.append(c)
        i += 1
    return out, marks


async def prog_tr(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TR)
    if isinstance(args, int):
        return args
    run = Run(ctx, "tr")
    ops = args.operands
    delete = bool(args.get("delete"))
    squeeze = bool(args.get("squeeze_repeats"))
    comp = bool(args.get("complement"))
    if not ops:
        return await run.usage("missing operand")
    need_two = not delete and not (squeeze and len(ops) == 1)
    if delete and squeeze:
        need_two = True
    if need_two and len(ops) < 2:
        if delete and squeeze:
            return await run.usage(
                f"missing operand after {quote(ops[0])}\nTwo strings must be given when both "
                "deleting and squeezing repeats."
            )
        return await run.usage(f"missing operand after {quote(ops[0])}\nTwo strings must be given when translating.")
    max_ops = 2 if (need_two or (squeeze and not delete)) else 1
    if len(ops) > max_ops:
        msg = f"extra operand {quote(ops[max_ops])}"
        if delete and not squeeze:
            msg += "\nOnly one string may be given when deleting without squeezing repeats."
        return await run.usage(msg)
    try:
        s1, marks1 = tr_set(fsencode(ops[0]))
        s2, marks2 = tr_set(fsencode(ops[1]), True) if len(ops) > 1 else ([], [])
    except TrError as e:
        await run.err(str(e))
        return 1
    if comp:
        present = set(s1)
        s1 = [c for c in range(256) if c not in present]
    translating = not delete and len(ops) > 1
    table = None
    if translating:
        for kind, _ in marks2:
            if kind not in ("fill", "upper", "lower"):
                await run.err("the only character classes that may appear in string2 are 'upper' and 'lower'")
                return 1
        fills = [pos for kind, pos in marks2 if kind == "fill"]
        if fills:
            pos = fills[0]
            need = len(s1) - (len(s2) - 1)
            s2 = s2[:pos] + [s2[pos]] * max(need, 0) + s2[pos + 1 :]
        if args.get("truncate_set1"):
            s1 = s1[: len(s2)]
        if not s2:
            await run.err("when not truncating set1, string2 must be non-empty")
            return 1
        if comp and any(k in ("upper", "lower") for k, _ in marks2):
            await run.err(
                "when translating with complemented character classes,\nstring2 must map all "
                "characters in the domain to one"
            )
            return 1
        # case conversion classes pair up
        up = [k for k, _ in marks1 if k in ("upper", "lower")]
        lo = [k for k, _ in marks2 if k in ("upper", "lower")]
        if lo and not up and not comp:
            await run.err("misaligned [:upper:] and/or [:lower:] construct")
            return 1
        if len(s2) < len(s1):
            s2 = s2 + [s2[-1]] * (len(s1) - len(s2))
        tbl = bytearray(range(256))
        for a, b in zip(s1, s2):
            tbl[a] = b
        table = bytes(tbl)
    deletes = bytes(sorted(set(s1))) if delete else None
    squeeze_set = None
    if squeeze:
        sq = s2 if (len(ops) > 1) else s1
        if len(ops) == 1 and comp:
            sq = s1
        squeeze_set = bytes(sorted(set(sq)))
    sq_re = None
    if squeeze_set:
        cls = b"".join(b"\\x%02x" % c for c in squeeze_set)
        sq_re = re.compile(b"([" + cls + b"])\\1+")
    last = -1
    while True:
        try:
            data = await ctx.read(0, CHUNK)
        except KernelError as e:
            await run.err(f"read error: {strerror(e)}")
            return 1
        if not data:
            break
        if deletes is not None:
            data = data.translate(None, deletes)
        elif table is not None:
            data = data.translate(table)
        if sq_re is not None and data:
            data = sq_re.sub(rb"\1", data)
            if last >= 0 and data[0] == last and squeeze_set and last in squeeze_set:
                data = data.lstrip(bytes([last]))
        if data:
            last = data[-1]
            await ctx.write_all(1, data)
    return 0


# ============================================================================ paste

PASTE = Spec(
    "paste",
    "[OPTION]... [FILE]...",
    "Write lines consisting of the sequentially corresponding lines "
    "from each FILE, separated by TABs, to standard output.",
    [
        Opt("d", "delimiters", arg="LIST", help="reuse characters from LIST instead of TABs"),
        Opt("s", "serial", help="paste one file at a time instead of in parallel"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)


def _paste_delims(text: bytes) -> list[bytes]:
    out = []
    i = 0
    while i < len(text):
        c = text[i : i + 1]
        if c == b"\\" and i + 1 < len(text):
            d = text[i + 1 : i + 2]
            out.append(
                {
                    b"n": b"\n",
                    b"t": b"\t",
                    b"\\": b"\\",
                    b"0": b"",
                    b"b": b"\b",
                    b"f": b"\f",
                    b"r": b"\r",
                    b"v": b"\v",
                }.get(d, d)
            )
            i += 2
            continue
        out.append(c)
        i += 1
    return out


async def prog_paste(ctx: Any) -> int:
    args = await parse_or_exit(ctx, PASTE)
    if isinstance(args, int):
        return args
    run = Run(ctx, "paste")
    raw = fsencode(args.get("delimiters", "\t"))
    if raw.endswith(b"\\") and not raw.endswith(b"\\\\"):
        await run.err(f"delimiter list ends with an unescaped backslash: {args['delimiters']}")
        return 1
    delims = _paste_delims(raw) or [b""]
    eol = b"\0" if args.get("zero_terminated") else b"\n"
    names = args.operands or ["-"]
    out = Writer(ctx)
    if args.get("serial"):
        for name in names:
            fd = await run.open(name)
            if fd is None:
                continue
            reader = Reader(ctx, fd)
            k = 0
            first = True
            any_line = False
            while True:
                line = await reader.readline(eol)
                if not line:
                    break
                any_line = True
                if not first:
                    await out.write(delims[k % len(delims)])
                    k += 1
                first = False
                await out.write(line[:-1] if line.endswith(eol) else line)
            if any_line:
                await out.write(eol)
            await run.close(fd)
        await out.flush()
        return run.status
    readers: list[Reader | None] = []
    stdin_reader = None
    fds: list[int] = []
    for name in names:
        if name == "-":
            if stdin_reader is None:
                stdin_reader = Reader(ctx, 0)
            readers.append(stdin_reader)
            continue
        fd = await run.open(name)
        if fd is None:
            return 1
        fds.append(fd)
        readers.append(Reader(ctx, fd))
    live = [r is not None for r in readers]
    while True:
        pieces = []
        got_any = False
        for i, r in enumerate(readers):
            line = b""
            if live[i] and r is not None:
                line = await r.readline(eol)
                if not line:
                    live[i] = False
                else:
                    got_any = True
                    if line.endswith(eol):
                        line = line[:-1]
            pieces.append(line)
        if not got_any:
            break
        row = []
        for i, p in enumerate(pieces):
            row.append(p)
            if i < len(pieces) - 1:
                row.append(delims[i % len(delims)])
        await out.write(b"".join(row) + eol)
    for fd in fds:
        await run.close(fd)
    await out.flush()
    return run.status


# ============================================================================ comm

COMM = Spec(
    "comm",
    "[OPTION]... FILE1 FILE2",
    "Compare sorted files FILE1 and FILE2 line by line.",
    [
        Opt("1", None, help="suppress column 1 (lines unique to FILE1)", dest="one"),
        Opt("2", None, help="suppress column 2 (lines unique to FILE2)", dest="two"),
        Opt("3", None, help="suppress column 3 (lines that appear in both files)", dest="three"),
        Opt(
            None,
            "check-order",
            help="check that the input is correctly sorted",
            dest="order",
            action="const",
            const=True,
        ),
        Opt(
            None,
            "nocheck-order",
            help="do not check that the input is correctly sorted",
            dest="order",
            action="const",
            const=False,
        ),
        Opt(None, "output-delimiter", arg="STR", help="separate columns with STR"),
        Opt(None, "total", help="output a summary"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)


async def prog_comm(ctx: Any) -> int:
    args = await parse_or_exit(ctx, COMM)
    if isinstance(args, int):
        return args
    run = Run(ctx, "comm")
    ops = args.operands
    if len(ops) < 2:
        if not ops:
            return await run.usage("missing operand")
        return await run.usage(f"missing operand after {quote(ops[0])}")
    if len(ops) > 2:
        return await run.usage(f"extra operand {quote(ops[2])}")
    eol = b"\0" if args.get("zero_terminated") else b"\n"
    sep = fsencode(args["output_delimiter"]) if args.get("output_delimiter") is not None else b"\t"
    show = [not args.get("one"), not args.get("two"), not args.get("three")]
    fds: list[int] = []
    for name in ops:
        fd = await run.open(name)
        if fd is None:
            for f in fds:
                await run.close(f)
            return 1
        fds.append(fd)
    r = [Reader(ctx, fds[0]), Reader(ctx, fds[1])]
    out = Writer(ctx)
    check = args.get("order")
    totals = [0, 0, 0]
    prev: list[bytes | None] = [None, None]
    disorder = [False, False]
    unpaired = False

    async def nextline(i: int) -> bytes | None:
        line = await r[i].readline(eol)
        if not line:
            return None
        line = line[:-1] if line.endswith(eol) else line
        if prev[i] is None:
            prev[i] = line
        return line

    async def col(i: int, line: bytes) -> None:
        totals[i] += 1
        if not show[i]:
            return
        prefix = sep * sum(show[:i])
        await out.write(prefix + line + eol)

    async def order_check(i: int, line: bytes) -> bool:
        p = prev[i]
        prev[i] = line
        if p is not None and p > line and not disorder[i]:
            if check is True or (check is None and unpaired):
                disorder[i] = True
                await out.flush()
                await run.err(f"file {i + 1} is not in sorted order")
                if check is True:
                    return False
        return True

    a = await nextline(0)
    b = await nextline(1)
    ok = True
    while a is not None or b is not None:
        if a is not None and (b is None or a < b):
            unpaired = True
            await col(0, a)
            a = await nextline(0)
            if a is not None and not await order_check(0, a):
                ok = False
                break
        elif b is not None and (a is None or b < a):
            unpaired = True
            await col(1, b)
            b = await nextline(1)
            if b is not None and not await order_check(1, b):
                ok = False
                break
        else:
            assert a is not None
            await col(2, a)
            a = await nextline(0)
            b = await nextline(1)
            if a is not None and not await order_check(0, a):
                ok = False
                break
            if b is not None and not await order_check(1, b):
                ok = False
                break
    if ok and args.get("total"):
        await out.write(b"%d%s%d%s%d%stotal%s" % (totals[0], sep, totals[1], sep, totals[2], sep, eol))
    await out.flush()
    for fd in fds:
        await run.close(fd)
    if any(disorder):
        if ok:
            await run.err("input is not in sorted order")
        return 1
    return run.status


# ============================================================================ join

JOIN = Spec(
    "join",
    "[OPTION]... FILE1 FILE2",
    "For each pair of input lines with identical join fields, write a line to standard output.",
    [
        Opt("a", None, arg="FILENUM", help="also print unpairable lines from file FILENUM", action="append", dest="a"),
        Opt("e", None, arg="STRING", help="replace missing (empty) input fields with STRING", dest="e"),
        Opt("i", "ignore-case", help="ignore differences in case when comparing fields"),
        Opt("j", None, arg="FIELD", help="equivalent to '-1 FIELD -2 FIELD'", dest="j"),
        Opt("o", None, arg="FORMAT", help="obey FORMAT while constructing output line", action="append", dest="o"),
        Opt("t", None, arg="CHAR", help="use CHAR as input and output field separator", dest="t"),
        Opt(
            "v",
            None,
            arg="FILENUM",
            help="like -a FILENUM, but suppress joined output lines",
            action="append",
            dest="v",
        ),
        Opt("1", None, arg="FIELD", help="join on this FIELD of file 1", dest="f1"),
        Opt("2", None, arg="FIELD", help="join on this FIELD of file 2", dest="f2"),
        Opt(
            None,
            "check-order",
            help="check that the input is correctly sorted",
            dest="order",
            action="const",
            const=True,
        ),
        Opt(
            None,
            "nocheck-order",
            help="do not check that the input is correctly sorted",
            dest="order",
            action="const",
            const=False,
        ),
        Opt(None, "header", help="treat the first line in each file as field headers"),
        Opt("z", "zero-terminated", help="line delimiter is NUL, not newline"),
    ],
)


def _join_fields(line: bytes, tab: bytes | None) -> list[bytes]:
    if tab is None:
        return line.split()
    if not line:
        return []
    return line.split(tab)


async def prog_join(ctx: Any) -> int:
    args = await parse_or_exit(ctx, JOIN)
    if isinstance(args, int):
        return args
    run = Run(ctx, "join")
    ops = args.operands
    if len(ops) < 2:
        if not ops:
            return await run.usage("missing operand")
        return await run.usage(f"missing operand after {quote(ops[-1])}")
    if len(ops) > 2:
        return await run.usage(f"extra operand {quote(ops[2])}")

    def field_num(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"invalid field number: {quote(text)}")
        return int(text) - 1

    try:
        f1 = f2 = 0
        if args.get("j") is not None:
            f1 = f2 = field_num(args["j"])
        if args.get("f1") is not None:
            f1 = field_num(args["f1"])
        if args.get("f2") is not None:
            f2 = field_num(args["f2"])
        unpaired = set()
        for v in (args.get("a") or []) + (args.get("v") or []):
            if v not in ("1", "2"):
                raise ValueError(f"invalid file number: {quote(v)}")
            unpaired.add(int(v))
        only_unpaired = {int(v) for v in args.get("v") or []}
        fmt: list[tuple[int, int]] | None = None
        auto = False
        if args.get("o"):
            spec = " ".join(args["o"])
            if spec == "auto":
                auto = True
            else:
                fmt = []
                for item in re.split(r"[ ,\t]+", spec.strip()):
                    if item == "0":
                        fmt.append((0, 0))
                        continue
                    m = re.fullmatch(r"([12])\.(\d+)", item)
                    if not m or int(m.group(2)) < 1:
                        raise ValueError(f"invalid field specifier: {quote(item)}")
                    fmt.append((int(m.group(1)), int(m.group(2)) - 1))
    except ValueError as e:
        return await run.usage(str(e))
    tab: bytes | None = None
    if args.get("t") is not None:
        t = fsencode(args["t"])
        if len(t) > 1:
            if t == b"\\0":
                t = b"\0"
            else:
                await run.err(f"multi-character tab {quote(args['t'])}")
                return 1
        tab = t if t else None
        if not t:
            tab = b"\n"  # -t '' : the whole line is the field
    empty = fsencode(args["e"]) if args.get("e") is not None else None
    icase = bool(args.get("ignore_case"))
    eol = b"\0" if args.get("zero_terminated") else b"\n"
    out_sep = tab if tab is not None and tab != b"\n" else b" "
    fds: list[int] = []
    for name in ops:
        fd = await run.open(name)
        if fd is None:
            for f in fds:
                await run.close(f)
            return 1
        fds.append(fd)
    readers = [Reader(ctx, fds[0]), Reader(ctx, fds[1])]
    out = Writer(ctx)
    check = args.get("order")
    keyf = [f1, f2]
    prevkey: list[bytes | None] = [None, None]
    disorder = [False, False]
    fatal = False
    saw_unpaired = [False]

    async def read(i: int) -> list[bytes] | None:
        line = await readers[i].readline(eol)
        if not line:
            return None
        if line.endswith(eol):
            line = line[:-1]
        return _join_fields(line, tab)

    def key(fields: list[bytes], i: int) -> bytes:
        k = fields[keyf[i]] if keyf[i] < len(fields) else b""
        return k.translate(_UPPER) if icase else k

    ncols = [0, 0]

    async def emit(a: list[bytes] | None, b: list[bytes] | None) -> None:
        if fmt is not None or auto:
            spec = fmt or []
            if auto:
                spec = (
                    [(0, 0)]
                    + [(1, j) for j in range(ncols[0]) if j != f1]
                    + [(2, j) for j in range(ncols[1]) if j != f2]
                )
            items = []
            for fnum, j in spec:
                if fnum == 0:
                    src, kf = (a, f1) if a is not None else (b, f2)
                    v = src[kf] if src is not None and kf < len(src) else None
                else:
                    src = a if fnum == 1 else b
                    v = src[j] if src is not None and j < len(src) else None
                items.append(v if v is not None and (v or empty is None) else (empty if empty is not None else b""))
            await out.write(out_sep.join(items) + eol)
            return
        items = []
        if a is not None:
            jk = a[f1] if f1 < len(a) else (empty or b"")
        else:
            assert b is not None
            jk = b[f2] if f2 < len(b) else (empty or b"")
        items.append(jk)
        if a is not None:
            items += [v for j, v in enumerate(a) if j != f1]
        if b is not None:
            items += [v for j, v in enumerate(b) if j != f2]
        await out.write(out_sep.join(items) + eol)

    async def advance(i: int) -> list[bytes] | None:
        nonlocal fatal
        row = await read(i)
        if row is not None:
            k = key(row, i)
            p = prevkey[i]
            if p is not None and k < p and not disorder[i]:
                if check is True or (check is None and saw_unpaired[0]):
                    disorder[i] = True
                    await out.flush()
                    await run.err(f"file {i + 1} is not in sorted order")
                    if check is True:
                        fatal = True
            prevkey[i] = k
        return row

    a = await advance(0)
    b = await advance(1)
    if a is not None:
        ncols[0] = len(a)
    if b is not None:
        ncols[1] = len(b)
    if args.get("header") and (a is not None or b is not None):
        await emit(a, b)
        prevkey = [None, None]
        a = await advance(0)
        b = await advance(1)
    while (a is not None or b is not None) and not fatal:
        if b is None or (a is not None and key(a, 0) < key(b, 1)):
            saw_unpaired[0] = True
            if 1 in unpaired:
                await emit(a, None)
            a = await advance(0)
            continue
        if a is None or key(b, 1) < key(a, 0):
            saw_unpaired[0] = True
            if 2 in unpaired:
                await emit(None, b)
            b = await advance(1)
            continue
        k = key(a, 0)
        group_a = [a]
        while True:
            a = await advance(0)
            if a is None or key(a, 0) != k or fatal:
                break
            group_a.append(a)
        group_b = [b]
        while True:
            b = await advance(1)
            if b is None or key(b, 1) != k or fatal:
                break
            group_b.append(b)
        if not only_unpaired:
            for ra in group_a:
                for rb in group_b:
                    await emit(ra, rb)
    await out.flush()
    for fd in fds:
        await run.close(fd)
    if any(disorder):
        if not fatal:
            await run.err("input is not in sorted order")
        return 1
    return run.status


# ============================================================================ nl

NL = Spec(
    "nl",
    "[OPTION]... [FILE]...",
    "Write each FILE to standard output, with line numbers added.",
    [
        Opt("b", "body-numbering", arg="STYLE", help="use STYLE for numbering body lines"),
        Opt("d", "section-delimiter", arg="CC", help="use CC for logical page delimiters"),
        Opt("f", "footer-numbering", arg="STYLE", help="use STYLE for numbering footer lines"),
        Opt("h", "header-numbering", arg="STYLE", help="use STYLE for numbering header lines"),
        Opt("i", "line-increment", arg="NUMBER", help="line number increment at each line"),
        Opt("l", "join-blank-lines", arg="NUMBER", help="group of NUMBER empty lines counted as one"),
        Opt("n", "number-format", arg="FORMAT", help="insert line numbers according to FORMAT"),
        Opt("p", "no-renumber", help="do not reset line numbers for each section"),
        Opt("s", "number-separator", arg="STRING", help="add STRING after (possible) line number"),
        Opt("v", "starting-line-number", arg="NUMBER", help="first line number for each section"),
        Opt("w", "number-width", arg="NUMBER", help="use NUMBER columns for line numbers"),
    ],
)


async def prog_nl(ctx: Any) -> int:
    args = await parse_or_exit(ctx, NL)
    if isinstance(args, int):
        return args
    run = Run(ctx, "nl")
    from kernel.programs import posixre

    styles: dict[str, tuple[str, Any]] = {}
    for key, default in (("body_numbering", "t"), ("header_numbering", "n"), ("footer_numbering", "n")):
        st = args.get(key, default)
        if st in ("a", "t", "n"):
            styles[key] = (st, None)
        elif st.startswith("p"):
            try:
                styles[key] = ("p", posixre.compile(st[1:], dialect="posix"))
            except KernelError as e:
                await run.err(e.message)
                return 1
        else:
            what = {"body_numbering": "body", "header_numbering": "header", "footer_numbering": "footer"}[key]
            await run.err(f"invalid {what} numbering style: {quote(st)}")
            return 1
    try:
        incr = int(args.get("line_increment", "1"))
        blank_join = int(args.get("join_blank_lines", "1"))
        start = int(args.get("starting_line_number", "1"))
        width = int(args.get("number_width", "6"))
        if width < 1:
            raise ValueError(args.get("number_width"))
        if blank_join < 1:
            raise ValueError(args.get("join_blank_lines"))
    except ValueError as e:
        await run.err(f"invalid number: {e}")
        return 1
    fmt = args.get("number_format", "rn")
    if fmt not in ("ln", "rn", "rz"):
        await run.err(f"invalid line number format: {quote(fmt)}")
        return 1
    sep = fsencode(args.get("number_separator", "\t"))
    delim = fsencode(args.get("section_delimiter", "\\:"))
    if len(delim) == 1:
        delim += b":"
    renumber = not args.get("no_renumber")
    header, body, footer = delim * 3, delim * 2, delim
    out = Writer(ctx)
    num = start
    section = "body_numbering"
    blanks = 0

    def numbered(n: int) -> bytes:
        s = str(n).encode()
        if fmt == "ln":
            return s.ljust(width)
        if fmt == "rz":
            return (b"-" + s[1:].rjust(width - 1, b"0")) if n < 0 else s.rjust(width, b"0")
        return s.rjust(width)

    blank_prefix = b" " * (width + len(sep))


    async def one_input(name: str, fd: int) -> None:
        nonlocal num, section, blanks  # numbering runs on across the files, as GNU nl
        async for batch in lines_of(ctx, fd):
            for raw in batch:
                line = raw[:-1] if raw.endswith(b"\n") else raw
                if line in (header, body, footer) and delim:
                    section = {header: "header_numbering", body: "body_numbering", footer: "footer_numbering"}[line]
                    if renumber:
                        num = start
                    await out.write(b"\n")
                    continue
                style, rx = styles[section]
                do = False
                if style == "a":
                    if line:
                        do = True
                        blanks = 0
                    else:
                        blanks += 1
                        if blanks >= blank_join:
                            do = True
                            blanks = 0
                elif style == "t":
                    do = bool(line)
                elif style == "p":
                    do = rx.search(line) is not None
                if do:
                    await out.write(numbered(num) + sep + line + b"\n")
                    num += incr
                else:
                    await out.write(blank_prefix + line + b"\n")

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


# ============================================================================ fold

FOLD = Spec(
    "fold",
    "[OPTION]... [FILE]...",
    "Wrap input lines in each FILE, writing to standard output.",
    [
        Opt("b", "bytes", help="count bytes rather than columns"),
        Opt("s", "spaces", help="break at spaces"),
        Opt("w", "width", arg="WIDTH", help="use WIDTH columns instead of 80"),
    ],
)


def _fold_line(line: bytes, width: int, count_bytes: bool, spaces: bool) -> bytes:
    """GNU fold's column rules: tab to the next multiple of 8, backspace back one, CR to 0."""
    out = []
    col = 0
    start = 0
    i = 0
    n = len(line)
    last_blank = -1
    while i < n:
        c = line[i]
        if count_bytes:
            ncol = col + 1
        elif c == 9:
            ncol = col + 8 - col % 8
        elif c == 8:
            ncol = col - 1 if col > 0 else 0
        elif c == 13:
            ncol = 0
        else:
            ncol = col + 1
        if ncol > width and i > start:
            if spaces and last_blank >= start:
                out.append(line[start : last_blank + 1] + b"\n")
                start = last_blank + 1
                # recompute the column of what carries over
                col = 0
                for ch in line[start:i]:
                    if count_bytes:
                        col += 1
                    elif ch == 9:
                        col += 8 - col % 8
                    elif ch == 8:
                        col = col - 1 if col > 0 else 0
                    elif ch == 13:
                        col = 0
                    else:
                        col += 1
                last_blank = -1
                continue
            out.append(line[start:i] + b"\n")
            start = i
            col = 0
            last_blank = -1
            continue
        if c in (32, 9):
            last_blank = i
        col = ncol
        i += 1
    out.append(line[start:])
    return b"".join(out)


async def prog_fold(ctx: Any) -> int:
    argv = list(ctx.argv)
    argv = [argv[0]] + [("-w" + a[1:]) if re.fullmatch(r"-\d+", a) else a for a in argv[1:]]
    args = await parse_or_exit(ctx, FOLD, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "fold")
    try:
        width = int(args.get("width", "80"))
        if width < 1:
            raise ValueError
    except ValueError:
        await run.err(f"invalid number of columns: {quote(args.get('width'))}")
        return 1
    count_bytes = bool(args.get("bytes"))
    spaces = bool(args.get("spaces"))
    out = Writer(ctx)

    async def one_input(name: str, fd: int) -> None:
        async for batch in lines_of(ctx, fd):
            parts = []
            for raw in batch:
                nl = raw.endswith(b"\n")
                line = raw[:-1] if nl else raw
                if len(line) <= width and b"\t" not in line and b"\b" not in line:
                    parts.append(raw)
                else:
                    parts.append(_fold_line(line, width, count_bytes, spaces) + (b"\n" if nl else b""))
            await out.write(b"".join(parts))

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


# ============================================================================ expand, unexpand

EXPAND = Spec(
    "expand",
    "[OPTION]... [FILE]...",
    "Convert tabs in each FILE to spaces, writing to standard output.",
    [
        Opt("i", "initial", help="do not convert tabs after non blanks"),
        Opt("t", "tabs", arg="N, LIST", help="have tabs N characters apart, not 8", action="append"),
    ],
)

UNEXPAND = Spec(
    "unexpand",
    "[OPTION]... [FILE]...",
    "Convert blanks in each FILE to tabs, writing to standard output.",
    [
        Opt("a", "all", help="convert all blanks, instead of just initial blanks"),
        Opt(None, "first-only", help="convert only leading sequences of blanks (overrides -a)"),
        Opt("t", "tabs", arg="N, LIST", help="have tabs N characters apart instead of 8 (enables -a)", action="append"),
    ],
)


class _Tabs:
    """Tab stops from ``-t``: a fixed size, a list, and GNU's ``/N`` and ``+N`` tails."""

    def __init__(self, specs: list[str]) -> None:
        stops: list[int] = []
        self.repeat = 0
        self.increment = 0
        for spec in specs:
            for item in re.split(r"[ ,]+", spec.strip()):
                if not item:
                    continue
                if item[0] in "/+":
                    if not item[1:].isdigit():
                        raise ValueError(f"tab size contains invalid character(s): {quote(item)}")
                    if item[0] == "/":
                        self.repeat = int(item[1:])
                    else:
                        self.increment = int(item[1:])
                    continue
                if not item.isdigit():
                    raise ValueError(f"tab size contains invalid character(s): {quote(item)}")
                v = int(item)
                if v == 0:
                    raise ValueError("tab size cannot be 0")
                if stops and v <= stops[-1]:
                    raise ValueError("tab sizes must be ascending")
                stops.append(v)
        if not stops and not self.repeat and not self.increment:
            stops = [8]
        self.size = stops[0] if len(stops) == 1 and not (self.repeat or self.increment) else 0
        self.stops = stops if not self.size else []

    def next_stop(self, col: int) -> int | None:
        """The column of the next tab stop after *col*; None past the last one (a list)."""
        if self.size:
            return col + self.size - col % self.size
        for s in self.stops:
            if s > col:
                return s
        last = self.stops[-1] if self.stops else 0
        if self.repeat:  # '/N': every multiple of N after the list
            return col + self.repeat - col % self.repeat
        if self.increment:  # '+N': every N counted from the last stop
            return col + self.increment - (col - last) % self.increment
        return None


async def prog_expand(ctx: Any) -> int:
    argv = list(ctx.argv)
    argv = [argv[0]] + [("-t" + a[1:]) if re.fullmatch(r"-\d+(,\d+)*", a) else a for a in argv[1:]]
    args = await parse_or_exit(ctx, EXPAND, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "expand")
    try:
        tabs = _Tabs(args.get("tabs") or [])
    except ValueError as e:
        await run.err(str(e))
        return 1
    initial = bool(args.get("initial"))
    out = Writer(ctx)

    async def one_input(name: str, fd: int) -> None:
        async for batch in lines_of(ctx, fd):
            parts = []
            for raw in batch:
                if b"\t" not in raw:
                    parts.append(raw)
                    continue
                if tabs.size and not initial and b"\b" not in raw:
                    parts.append(raw.expandtabs(tabs.size))
                    continue
                res = bytearray()
                col = 0
                leading = True
                for ch in raw:
                    if ch == 9 and (leading or not initial):
                        stop = tabs.next_stop(col)
                        if stop is None:
                            stop = col + 1
                        res += b" " * (stop - col)
                        col = stop
                        continue
                    if ch == 8:
                        col = max(col - 1, 0)
                    elif ch == 10:
                        col = 0
                    else:
                        col += 1
                    if ch not in (32, 9):
                        leading = False
                    res.append(ch)
                parts.append(bytes(res))
            await out.write(b"".join(parts))

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


def _unexpand_line(line: bytes, tabs: _Tabs, all_blanks: bool) -> bytes:
    """GNU unexpand's state machine: blanks are held until it is known whether they reach a tab
    stop; a single space just before a stop stays a space unless more blanks follow it."""
    out = bytearray()
    column = 0
    convert = True
    pending = bytearray()
    prev_blank = True
    one_blank_before_stop = False
    for c in line:
        blank = c in (32, 9)
        if blank and convert:
            stop = tabs.next_stop(column)
            if stop is None:
                convert = False
            else:
                if c == 9:
                    column = stop
                    if pending:
                        pending[0] = 9
                else:
                    column += 1
                    if not (prev_blank and column == stop):
                        if column == stop:
                            one_blank_before_stop = True
                        pending.append(c)
                        prev_blank = True
                        continue
                    if pending:
                        pending[0] = 9
                    c = 9
                del pending[1 if one_blank_before_stop and pending else 0 :]
        elif not blank:
            if c == 8:
                column = column - 1 if column else 0
            else:
                column += 1
        elif blank:
            column = (tabs.next_stop(column) or column + 1) if c == 9 else column + 1
        if pending:
            if len(pending) > 1 and one_blank_before_stop:
                pending[0] = 9
            out += pending
            pending.clear()
            one_blank_before_stop = False
        prev_blank = blank
        convert = convert and (all_blanks or blank)
        out.append(c)
    if pending:
        if len(pending) > 1 and one_blank_before_stop:
            pending[0] = 9
        out += pending
    return bytes(out)


async def prog_unexpand(ctx: Any) -> int:
    argv = list(ctx.argv)
    argv = [argv[0]] + [("-t" + a[1:]) if re.fullmatch(r"-\d+(,\d+)*", a) else a for a in argv[1:]]
    args = await parse_or_exit(ctx, UNEXPAND, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "unexpand")
    try:
        tabs = _Tabs(args.get("tabs") or [])
    except ValueError as e:
        await run.err(str(e))
        return 1
    all_blanks = (bool(args.get("all")) or bool(args.get("tabs"))) and not args.get("first_only")
    out = Writer(ctx)

    async def one_input(name: str, fd: int) -> None:
        async for batch in lines_of(ctx, fd):
            parts = []
            for raw in batch:
                nl = raw.endswith(b"\n")
                line = raw[:-1] if nl else raw
                parts.append(_unexpand_line(line, tabs, all_blanks) + (b"\n" if nl else b""))
            await out.write(b"".join(parts))

    await run.each_input(args.operands, one_input)
    await out.flush()
    return run.status


# ============================================================================ column

COLUMN = Spec(
    "column",
    "[options] [<file>...]",
    "Columnate lists.",
    [
        Opt("t", "table", help="create a table"),
        Opt("s", "separator", arg="string", help="possible table delimiters"),
        Opt("o", "output-separator", arg="string", help="columns separator for table output (default is two spaces)"),
        Opt("c", "output-width", arg="width", help="width of output in number of characters"),
        Opt("x", "fillrows", help="fill rows before columns"),
        Opt("R", "table-right", arg="columns", help="right align text in these columns"),
        Opt("L", "keep-empty-lines", help="don't ignore empty lines"),
        Opt("n", "table-name", arg="name", help="table name for JSON output"),
    ],
)


async def prog_column(ctx: Any) -> int:
    args = await parse_or_exit(ctx, COLUMN)
    if isinstance(args, int):
        return args
    run = Run(ctx, "column")
    lines: list[bytes] = []
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        try:
            data = await ctx.read_all(fd)
        except KernelError as e:
            await run.file_err(name, e)
            continue
        finally:
            await run.close(fd)
        parts = data.split(b"\n")
        if parts and parts[-1] == b"":
            parts.pop()
        lines.extend(parts)
    if run.status:
        return run.status
    keep_empty = bool(args.get("keep_empty_lines"))
    out = Writer(ctx)
    if args.get("table"):
        seps = fsencode(args["separator"]) if args.get("separator") is not None else None
        osep = fsencode(args.get("output_separator", "  "))
        rows = []
        for line in lines:
            if not line.strip(b" \t") and not keep_empty:
                continue
            if seps is None:
                rows.append(line.split())
            else:
                rows.append(re.split(b"[" + re.escape(seps) + b"]", line))
        ncol = max((len(r) for r in rows), default=0)
        widths = [0] * ncol
        for r in rows:
            for j, cell in enumerate(r):
                widths[j] = max(widths[j], len(cell))
        right = set()
        if args.get("table_right"):
            for item in args["table_right"].split(","):
                if item.isdigit():
                    right.add(int(item) - 1)
        for r in rows:
            cells = r + [b""] * (ncol - len(r))
            parts = []
            for j, cell in enumerate(cells):
                if j == ncol - 1:
                    parts.append(cell.rjust(widths[j]) if j in right else cell)
                else:
                    parts.append((cell.rjust(widths[j]) if j in right else cell.ljust(widths[j])) + osep)
            await out.write(b"".join(parts) + b"\n")
        await out.flush()
        return 0
    width = 80
    if args.get("output_width") is not None:
        try:
            width = int(args["output_width"])
        except ValueError:
            await run.err(f"invalid columns argument: '{args['output_width']}'")
            return 1
    else:
        env = ctx.getenv("COLUMNS")
        if env and env.isdigit():
            width = int(env)
        elif ctx.isatty(1):
            try:
                cols = ctx.get_winsize(1)[1]
            except KernelError:  # not a terminal after all: the default width
                cols = 0
            if cols > 0:
                width = cols
    entries = [ln for ln in lines if ln.strip() or keep_empty]
    if not entries:
        return 0
    maxlen = max(len(entry) for entry in entries)
    maxlen = (maxlen + 8) & ~7
    if width < maxlen:
        for entry in entries:
            await out.write(entry + b"\n")
        await out.flush()
        return 0
    numcols = max(width // maxlen, 1)
    if args.get("fillrows"):
        col = chcnt = 0
        endcol = maxlen
        for k, entry in enumerate(entries):
            await out.write(entry)
            chcnt += len(entry)
            col += 1
            if k == len(entries) - 1:
                break
            if col == numcols:
                chcnt = col = 0
                endcol = maxlen
                await out.write(b"\n")
            else:
                while True:
                    cnt = (chcnt + 8) & ~7
                    if cnt > endcol:
                        break
                    await out.write(b"\t")
                    chcnt = cnt
                endcol += maxlen
        if chcnt:
            await out.write(b"\n")
    else:
        numrows = (len(entries) + numcols - 1) // numcols
        for row in range(numrows):
            endcol = maxlen
            chcnt = 0
            base = row
            for _ in range(numcols):
                entry = entries[base]
                await out.write(entry)
                chcnt += len(entry)
                base += numrows
                if base >= len(entries):
                    break
                while True:
                    cnt = (chcnt + 8) & ~7
                    if cnt > endcol:
                        break
                    await out.write(b"\t")
                    chcnt = cnt
                endcol += maxlen
            await out.write(b"\n")
    await out.flush()
    return 0


# ============================================================================ fmt

FMT = Spec(
    "fmt",
    "[-WIDTH] [OPTION]... [FILE]...",
    "Reformat each paragraph in the FILE(s), writing to standard output.",
    [
        Opt("c", "crown-margin", help="preserve indentation of first two lines"),
        Opt(
            "p",
            "prefix",
            arg="STRING",
            help="reformat only lines beginning with STRING, reattaching the prefix to reformatted lines",
        ),
        Opt("s", "split-only", help="split long lines, but do not refill"),
        Opt("t", "tagged-paragraph", help="indentation of first line different from second"),
        Opt("u", "uniform-spacing", help="one space between words, two after sentences"),
        Opt("w", "width", arg="WIDTH", help="maximum line width (default of 75 columns)"),
        Opt("g", "goal", arg="WIDTH", help="goal width (default of 93% of width)"),
    ],
)


def _eq(n: int) -> int:
    return n * n


LINE_COST = _eq(70)
SENTENCE_BONUS = _eq(50)
NOBREAK_COST = _eq(600)
PUNCT_BONUS = _eq(40)
PAREN_BONUS = _eq(40)


class _Word:
    __slots__ = ("text", "length", "space", "paren", "period", "punct", "final", "best", "next", "line_len")

    def __init__(self, text: bytes, space: int, final: bool) -> None:
        self.text = text
        self.length = len(text)
        self.space = space
        self.paren = text[:1] in (b"(", b"[", b"'", b"`", b'"')
        stripped = text.rstrip(b")]'\"")
        self.period = stripped[-1:] in (b".", b"?", b"!")
        self.punct = bool(text) and chr(text[-1]) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
        self.final = final
        self.best = 0
        self.next = 0
        self.line_len = 0


def _fmt_words(lines: list[bytes], uniform: bool) -> list[_Word]:
    words: list[_Word] = []
    for line in lines:
        body = line.strip(b" \t")
        # words with the spacing after each; a line end counts as 1, or 2 after a sentence
        for m in re.finditer(rb"(\S+)([ \t]*)", body):
            text, gap = m.group(1), m.group(2)
            w = _Word(text, 0, False)
            at_end = m.end() == len(body)
            if at_end or uniform:
                w.final = w.period and (at_end or len(gap) > 1)
                w.space = 2 if w.final else 1
            else:
                w.final = w.period and len(gap.expandtabs(8)) > 1
                w.space = len(gap.expandtabs(8))
            words.append(w)
    if words:  # the paragraph's end is a sentence end for the costs
        words[-1].period = words[-1].final = True
    return words


def _fmt_paragraph(
    words: list[_Word], first_indent: int, other_indent: int, max_width: int, goal: int
) -> list[tuple[int, int]]:
    """GNU fmt's dynamic program: the cheapest set of breaks; returns (start, end) word ranges."""
    n = len(words)
    best = [0] * (n + 1)
    nxt = [n] * (n + 1)
    line_len = [0] * (n + 1)

    def line_cost(j: int, length: int) -> int:
        if j == n:
            return 0
        d = goal - length
        cost = _eq(d * 10)
        if nxt[j] != n:
            d2 = length - line_len[j]
            cost += _eq(d2 * 10) // 2
        return cost

    def base_cost(i: int) -> int:
        cost = LINE_COST
        if i > 0:
            prev = words[i - 1]
            if prev.period:
                cost += -SENTENCE_BONUS if prev.final else NOBREAK_COST
            elif prev.punct:
                cost -= PUNCT_BONUS
            elif i > 1 and words[i - 2].final:
                cost += _eq(200) // (prev.length + 2)
        w = words[i]
        if w.paren:
            cost -= PAREN_BONUS
        elif w.final:
            cost += _eq(150) // (w.length + 2)
        return cost

    for start in range(n - 1, -1, -1):
        bestcost = 1 << 62
        length = (first_indent if start == 0 else other_indent) + words[start].length
        j = start
        while True:
            j += 1
            wcost = line_cost(j, length) + best[j]
            if wcost < bestcost:
                bestcost = wcost
                nxt[start] = j
                line_len[start] = length
            if j == n:
                break
            length += words[j - 1].space + words[j].length
            if length >= max_width:
                break
        best[start] = bestcost + base_cost(start)
    out = []
    i = 0
    while i < n:
        out.append((i, nxt[i]))
        i = nxt[i]
    return out


async def prog_fmt(ctx: Any) -> int:
    argv = list(ctx.argv)
    if len(argv) > 1 and re.fullmatch(r"-\d+", argv[1]):
        argv = [argv[0], "-w", argv[1][1:]] + argv[2:]
    args = await parse_or_exit(ctx, FMT, argv)
    if isinstance(args, int):
        return args
    run = Run(ctx, "fmt")
    try:
        max_width = int(args.get("width", "75"))
        if max_width < 0 or max_width > 2500:
            raise ValueError
    except ValueError:
        await run.err(f"invalid width: {quote(args.get('width'))}")
        return 1
    goal = max_width * (2 * (100 - 7) + 1) // 200  # 93%, rounded as GNU
    if args.get("goal") is not None:
        try:
            goal = int(args["goal"])
        except ValueError:
            await run.err(f"invalid width: {quote(args['goal'])}")
            return 1
        if "width" not in args:
            max_width = goal + 10
    if goal > max_width:
        await run.err("invalid width")
        return 1
    split_only = bool(args.get("split_only"))
    uniform = bool(args.get("uniform_spacing"))
    crown = bool(args.get("crown_margin"))
    tagged = bool(args.get("tagged_paragraph"))
    prefix = fsencode(args.get("prefix", ""))
    out = Writer(ctx)
    data_lines: list[bytes] = []
    for name in args.operands or ["-"]:
        fd = await run.open(name)
        if fd is None:
            continue
        try:
            data = await ctx.read_all(fd)
        except KernelError as e:
            await run.file_err(name, e)
            continue
        finally:
            await run.close(fd)
        parts = data.split(b"\n")
        if parts[-1] == b"":
            parts.pop()
        data_lines.extend(parts)

    def indent_of(line: bytes) -> int:
        return (
            len(line) - len(line.lstrip(b" \t"))
            if b"\t" not in line
            else len(line[: len(line) - len(line.lstrip(b" \t"))].expandtabs(8))
        )

    last_other = [0]  # tagged one-line paragraphs reuse the previous secondary indent, as GNU

    async def put(paragraph: list[bytes], pfx: bytes) -> None:
        first_indent = indent_of(paragraph[0])
        if crown:
            other_indent = indent_of(paragraph[1]) if len(paragraph) > 1 else first_indent
        elif tagged:
            if len(paragraph) > 1:
                other_indent = indent_of(paragraph[1])
            else:
                other_indent = last_other[0]
                if other_indent == first_indent:
                    other_indent = 3 if first_indent == 0 else 0
        else:
            other_indent = first_indent
        last_other[0] = other_indent
        if split_only:
            for line in paragraph:
                await emit(_fmt_words([line], uniform), indent_of(line), indent_of(line), pfx)
            return
        await emit(_fmt_words(paragraph, uniform), first_indent, other_indent, pfx)

    async def emit(words: list[_Word], first_indent: int, other_indent: int, pfx: bytes) -> None:
        if not words:
            return
        for k, (s, e) in enumerate(_fmt_paragraph(words, first_indent, other_indent, max_width, goal)):
            ind = first_indent if k == 0 else other_indent
            text = bytearray(pfx + b" " * ind)
            for j in range(s, e):
                text += words[j].text
                if j < e - 1:
                    text += b" " * words[j].space
            await out.write(bytes(text) + b"\n")

    i = 0
    n = len(data_lines)
    while i < n:
        line = data_lines[i]
        if prefix and not line.lstrip(b" \t").startswith(prefix):
            await out.write(line + b"\n")
            i += 1
            continue
        pfx = b""
        body = line
        if prefix:
            lead = line[: len(line) - len(line.lstrip(b" \t"))]
            pfx = lead + prefix
            body = line[len(pfx) :]
        if not body.strip(b" \t"):
            await out.write(line.rstrip(b" \t") + b"\n" if not prefix else pfx.rstrip() + b"\n")
            i += 1
            continue
        para = [body]
        ind0 = indent_of(body)
        j = i + 1
        while j < n:
            nxt_line = data_lines[j]
            if prefix:
                if not nxt_line.lstrip(b" \t").startswith(prefix):
                    break
                lead = nxt_line[: len(nxt_line) - len(nxt_line.lstrip(b" \t"))]
                if lead + prefix != pfx:
                    break
                nb = nxt_line[len(pfx) :]
            else:
                nb = nxt_line
            if not nb.strip(b" \t"):
                break
            ind = indent_of(nb)
            if crown or tagged:
                if len(para) >= 2 and ind != indent_of(para[1]):
                    break
                if len(para) == 1 and tagged and ind == ind0:
                    break
            elif ind != ind0 and not split_only:
                break
            para.append(nb)
            j += 1
        await put(para, pfx)
        i = j
    await out.flush()
    return run.status


PROGRAMS = {
    "uniq": prog_uniq,
    "cut": prog_cut,
    "tr": prog_tr,
    "paste": prog_paste,
    "comm": prog_comm,
    "join": prog_join,
    "nl": prog_nl,
    "fold": prog_fold,
    "expand": prog_expand,
    "unexpand": prog_unexpand,
    "column": prog_column,
    "fmt": prog_fmt,
}
