"""``date``: show the time in GNU's formats (``+FORMAT``, ``-R``, ``-I``, ``--rfc-3339``), of
a file (``-r``) or of a date string (``-d``, ``-f``); setting the clock is refused.

The ``-d`` strings understood are the common ones of GNU's grammar: ``@EPOCH``, ISO 8601
dates and times (``2024-01-02``, ``2024-01-02T03:04:05.5+01:00``, ``20240102``), ``Jan 2
2024``, ``2 January 2024``, ``01/02/2024``, times with ``am``/``pm`` and zones (``UTC``,
``Z``, ``+0100``, ``EST``...), ``now today yesterday tomorrow noon midnight``, weekdays
(``monday``, ``next friday``, ``last sunday``) and relative items (``3 days ago``,
``+2 hours``, ``next month``, ``1 year 2 months``), in any sensible order.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import Reader, error, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.system_datefmt import (
    DAYS,
    MONTHS,
    UTC,
    Moment,
    Zone,
    broken_down,
    epoch_of,
    format_time,
    zone_named,
)

_MONTH = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
_MONTH.update({m.lower(): i + 1 for i, m in enumerate(MONTHS)})
_MONTH["sept"] = 9
_WDAY = {d[:3].lower(): i for i, d in enumerate(DAYS)}
_WDAY.update({d.lower(): i for i, d in enumerate(DAYS)})
_WDAY.update({"tues": 1, "wednes": 2, "thur": 3, "thurs": 3})
_UNIT = {"year": ("months", 12), "month": ("months", 1), "fortnight": ("days", 14),
         "week": ("days", 7), "day": ("days", 1), "hour": ("secs", 3600), "minute": ("secs", 60),
         "min": ("secs", 60), "second": ("secs", 1), "sec": ("secs", 1)}
_ZONES = {"utc": 0, "ut": 0, "gmt": 0, "z": 0, "wet": 0, "bst": 3600, "cet": 3600, "cest": 7200,
          "eet": 7200, "eest": 10800, "est": -18000, "edt": -14400, "cst": -21600,
          "cdt": -18000, "mst": -25200, "mdt": -21600, "pst": -28800, "pdt": -25200,
          "jst": 32400, "ist": 19800, "msk": 10800, "hst": -36000, "akst": -32400}
_ORD = {"last": -1, "this": 0, "next": 1, "first": 1, "third": 3, "fourth": 4, "fifth": 5,
        "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11,
        "twelfth": 12}

_MON_RE = "|".join(sorted(_MONTH, key=len, reverse=True))
_WDAY_RE = "|".join(sorted(_WDAY, key=len, reverse=True))
_UNIT_RE = "years?|months?|fortnights?|weeks?|days?|hours?|minutes?|mins?|seconds?|secs?"
_ORD_RE = "|".join(_ORD)

P = re.compile
PATTERNS = [
    ("iso", P(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:T(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?(?![\d:])")),
    ("isobasic", P(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?(?!\d)")),
    ("us", P(r"(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?(?!\d)")),
    ("mdy", P(rf"({_MON_RE})\.?\s*(\d{{1,2}})(?:,?\s+(\d{{4}}))?(?![\d:])", re.I)),
    ("dmy", P(rf"(\d{{1,2}})[\s-]*({_MON_RE})\.?(?:[\s-]*(\d{{4}}))?(?![\d:])", re.I)),
    ("my", P(rf"({_MON_RE})\.?(?:\s+(\d{{4}}))?(?![\w])", re.I)),
    ("time", P(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:\s*([ap])\.?m\.?(?![a-z]))?", re.I)),
    ("ampm", P(r"(\d{1,2})\s*([ap])\.?m\.?(?![a-z])", re.I)),
    ("numzone", P(r"([+-])(\d{1,4})(?::(\d{2}))?(?!\d)")),
    ("rel", P(rf"([+-]?\s*\d+)?\s*({_UNIT_RE})\b(\s+ago\b)?", re.I)),
    ("ordrel", P(rf"({_ORD_RE})\s+({_UNIT_RE})\b(\s+ago\b)?", re.I)),
    ("wday", P(rf"(?:({_ORD_RE}|[+-]?\d+)\s+)?({_WDAY_RE})\b\.?,?", re.I)),
    ("word", P(r"(now|today|yesterday|tomorrow|ago)\b", re.I)),
    ("namezone", P(r"([a-z]{1,5})\b", re.I)),
    ("number", P(r"(\d+)(?!\d)")),
]


class DateError(ValueError):
    """A date string GNU's grammar would refuse (``invalid date``)."""


@dataclass
class Parsed:
    date: tuple[int, int, int] | None = None
    clock: tuple[int, int, int, int] | None = None   # h m s nanos
    offset: int | None = None                          # a zone given in the string
    months: int = 0
    days: int = 0
    secs: int = 0
    weekday: tuple[int, int] | None = None             # (ordinal, weekday)
    epoch: tuple[int, int] | None = None


def _year(text: str | None, default: int) -> int:
    if not text:
        return default
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < 69 else 1900
    return y


def parse_date(text: str, now: float, zone: Zone) -> tuple[int, int]:
    """(epoch seconds, nanoseconds) of a GNU-style date string; DateError otherwise."""
    s = text.strip()
    if s.startswith("TZ=\""):
        end = s.find("\"", 4)
        if end < 0:
            raise DateError(text)
        zone = zone_named(s[4:end])
        s = s[end + 1:].strip()
    m = re.fullmatch(r"@\s*([+-]?\d+)(?:[.,](\d+))?", s)
    if m:
        return int(m.group(1)), int((m.group(2) or "0")[:9].ljust(9, "0"))
    p = Parsed()
    if not s:
        p.clock = (0, 0, 0, 0)  # GNU: the empty string is the start of today
    now_local = broken_down(int(now), zone)
    pos = 0
    while True:
        while pos < len(s) and (s[pos].isspace() or s[pos] == ","):
            pos += 1
        if pos >= len(s):
            break
        for kind, rx in PATTERNS:
            m = rx.match(s, pos)
            if m and m.end() > pos and _take(kind, m, p, now_local.year):
                pos = m.end()
                break
        else:
            raise DateError(text)
    return _resolve(p, now, zone)


def _take(kind: str, m: re.Match[str], p: Parsed, this_year: int) -> bool:
    g = m.groups()
    if kind in ("iso", "isobasic"):
        if p.date is not None:
            return False
        y, mo, d = int(g[0]), int(g[1]), int(g[2])
        p.date = (y, mo, d)
        if g[3] is not None:
            if p.clock is not None:
                return False
            frac = (g[6] if kind == "iso" else None) or "0"
            p.clock = (int(g[3]), int(g[4]), int(g[5] or 0), int(frac[:9].ljust(9, "0")))
        return True
    if kind == "us":
        if p.date is not None:
            return False
        p.date = (_year(g[2], this_year), int(g[0]), int(g[1]))
        return True
    if kind in ("mdy", "dmy", "my"):
        if p.date is not None:
            return False
        if kind == "mdy":
            p.date = (_year(g[2], this_year), _MONTH[g[0].lower()], int(g[1]))
        elif kind == "dmy":
            p.date = (_year(g[2], this_year), _MONTH[g[1].lower()], int(g[0]))
        else:
            p.date = (_year(g[1], this_year), _MONTH[g[0].lower()], 1)
        return True
    if kind == "time":
        if p.clock is not None:
            return False
        h, mi = int(g[0]), int(g[1])
        if g[4]:
            if not 1 <= h <= 12:
                raise DateError(m.group(0))
            h = h % 12 + (12 if g[4].lower() == "p" else 0)
        p.clock = (h, mi, int(g[2] or 0), int((g[3] or "0")[:9].ljust(9, "0")))
        return True
    if kind == "ampm":
        if p.clock is not None:
            return False
        h = int(g[0])
        if not 1 <= h <= 12:
            raise DateError(m.group(0))
        p.clock = (h % 12 + (12 if g[1].lower() == "p" else 0), 0, 0, 0)
        return True
    if kind in ("rel", "ordrel"):
        if kind == "rel":
            n = int(g[0].replace(" ", "")) if g[0] else 1
        else:
            n = _ORD[g[0].lower()]
        unit = g[1].lower().rstrip("s") if g[1].lower() not in ("mins", "secs") else g[1].lower()[:-1]
        if unit == "minute" or unit == "min":
            unit = "minute"
        field_, size = _UNIT[unit]
        if g[2]:
            n = -n
        setattr(p, field_, getattr(p, field_) + n * size)
        return True
    if kind == "wday":
        if p.weekday is not None:
            return False
        ordinal = g[0]
        n = 0 if ordinal is None else (_ORD[ordinal.lower()] if ordinal.lower() in _ORD else int(ordinal))
        p.weekday = (n, _WDAY[g[1].lower()])
        return True
    if kind == "word":
        w = g[0].lower()
        if w == "yesterday":
            p.days -= 1
        elif w == "tomorrow":
            p.days += 1
        elif w == "ago":
            p.months, p.days, p.secs = -p.months, -p.days, -p.secs
        return True
    if kind == "numzone":  # GNU: a signed number right after a time is its zone
        if p.offset is not None or p.clock is None:
            return False
        sign = 1 if g[0] == "+" else -1
        digits = g[1]
        if g[2] is not None:
            hours, mins = int(digits), int(g[2])
        elif len(digits) <= 2:
            hours, mins = int(digits), 0
        else:
            hours, mins = int(digits[:-2]), int(digits[-2:])
        if hours > 24 or mins > 59:
            raise DateError(m.group(0))
        p.offset = sign * (hours * 3600 + mins * 60)
        return True
    if kind == "namezone":
        name = g[0].lower()
        if name not in _ZONES or p.offset is not None:
            return False
        p.offset = _ZONES[name]
        return True
    if kind == "number":
        digits = g[0]
        if p.date is not None and p.clock is None and len(digits) <= 4:
            v = int(digits)
            if len(digits) <= 2:
                p.clock = (v, 0, 0, 0)
            else:
                p.clock = (v // 100, v % 100, 0, 0)
            return True
        if p.date is not None and p.clock is not None and len(digits) == 4 and p.date[0] == this_year:
            p.date = (int(digits), p.date[1], p.date[2])  # "Jan 2 10:00 2024"
            return True
        return False
    return False


def _resolve(p: Parsed, now: float, zone: Zone) -> tuple[int, int]:
    cur = broken_down(int(now), zone)
    nanos = int((now - int(now)) * 1e9) if p.date is None and p.clock is None and p.weekday is None else 0
    if p.date is None and p.clock is None and p.weekday is None:
        y, mo, d, h, mi, sec = cur.year, cur.month, cur.day, cur.hour, cur.minute, cur.second
    else:
        y, mo, d = p.date if p.date is not None else (cur.year, cur.month, cur.day)
        h, mi, sec, nanos = p.clock if p.clock is not None else (0, 0, 0, 0)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 24 and 0 <= mi <= 59 and 0 <= sec <= 60):
        raise DateError("out of range")
    if h == 24 and (mi or sec):
        raise DateError("out of range")
    if p.date is not None:
        import calendar
        if d > calendar.monthrange(y, mo)[1]:
            raise DateError("no such day")
    if p.weekday is not None and p.date is None:  # GNU: a calendar date wins over a weekday
        n, wday = p.weekday
        base = broken_down(epoch_of(y, mo, d, 12, 0, 0, zone), zone)
        ahead = (wday - base.weekday()) % 7
        if n > 0:
            ahead += 7 * (n - 1) if ahead else 7 * n
        elif n < 0:
            ahead = ahead - 7 if ahead else -7
            ahead += 7 * (n + 1)
        d += ahead
    mo += p.months
    d += p.days
    epoch = epoch_of(y, mo, d, h, mi, sec, zone, p.offset)
    return epoch + p.secs, nanos


# ---- the program -------------------------------------------------------------------------
DATE = Spec("date", "[OPTION]... [+FORMAT]", "Display date and time in the given FORMAT.", [
    Opt("d", "date", arg="STRING", help="display time described by STRING, not 'now'"),
    Opt("f", "file", arg="DATEFILE", help="like --date; once for each line of DATEFILE"),
    Opt("I", "iso-8601", arg="FMT", optional_arg=True, help="output date/time in ISO 8601 format"),
    Opt("R", "rfc-email", help="output date and time in RFC 5322 format"),
    Opt(None, "rfc-3339", arg="FMT", help="output date/time in RFC 3339 format"),
    Opt("r", "reference", arg="FILE", help="display the last modification time of FILE"),
    Opt("s", "set", arg="STRING", help="set time described by STRING"),
    Opt("u", "utc", help="print or set Coordinated Universal Time (UTC)"),
    Opt(None, "universal", dest="utc", help="same as --utc"),
    Opt(None, "debug", help="annotate the parsed date"),
])

DEFAULT_FORMAT = "%a %b %e %H:%M:%S %Z %Y"
_ISO = {"date": "%Y-%m-%d", "hours": "%Y-%m-%dT%H%:z", "minutes": "%Y-%m-%dT%H:%M%:z",
        "seconds": "%Y-%m-%dT%H:%M:%S%:z", "ns": "%Y-%m-%dT%H:%M:%S,%N%:z"}
_RFC3339 = {"date": "%Y-%m-%d", "seconds": "%Y-%m-%d %H:%M:%S%:z", "ns": "%Y-%m-%d %H:%M:%S.%N%:z"}


def _pick(value: str, table: dict[str, str], what: str) -> str:
    hits = [k for k in table if k.startswith(value)] if value else []
    if len(hits) != 1 and value not in table:
        raise DateError(f"invalid argument '{value}' for '--{what}'")
    return table[value if value in table else hits[0]]


async def prog_date(ctx: Any) -> int:
    args = await parse_or_exit(ctx, DATE)
    if isinstance(args, int):
        return args
    zone = UTC if args.get("utc") else zone_named(ctx.getenv("TZ"))
    fmt = DEFAULT_FORMAT
    ops = list(args.operands)
    try:
        chosen = [k for k in ("iso_8601", "rfc_email", "rfc_3339") if k in args]
        if len(chosen) > 1:
            raise DateError("multiple output formats specified")
        if "iso_8601" in args:
            fmt = _pick(args["iso_8601"] or "date", _ISO, "iso-8601")
        elif args.get("rfc_email"):
            fmt = "%a, %d %b %Y %H:%M:%S %z"
        elif "rfc_3339" in args:
            fmt = _pick(args["rfc_3339"], _RFC3339, "rfc-3339")
        if ops and ops[0].startswith("+"):
            if chosen:
                raise DateError("multiple output formats specified")
            fmt = ops.pop(0)[1:]
    except DateError as e:
        await error(ctx, "date", f"{e}\nTry 'date --help' for more information.")
        return 1
    if ops:
        if len(ops) == 1 and "set" not in args and ops[0].isdigit():
            await error(ctx, "date", "cannot set date: Operation not permitted")
            return 1
        await error(ctx, "date", f"extra operand '{ops[-1]}'\nTry 'date --help' for more information.")
        return 1
    if "set" in args:
        await error(ctx, "date", "cannot set date: Operation not permitted")
        return 1
    sources = [k for k in ("date", "file", "reference") if k in args]
    if len(sources) > 1:
        await error(ctx, "date", "the options to specify dates for printing are mutually exclusive\n"
                                 "Try 'date --help' for more information.")
        return 1
    now = time.time()
    if "reference" in args:
        try:
            attr = await ctx.stat(args["reference"])
        except KernelError as e:
            await error(ctx, "date", f"{args['reference']}: {strerror(e)}")
            return 1
        secs, nanos = divmod(attr.mtime_ns, 1_000_000_000)
        await ctx.write_all(1, format_time(fmt, Moment(secs, nanos, zone)) + "\n")
        return 0
    if "file" in args:
        return await _date_file(ctx, args["file"], fmt, zone, now)
    if "date" in args:
        try:
            secs, nanos = parse_date(args["date"], now, zone)
        except (DateError, OverflowError, ValueError):
            await error(ctx, "date", f"invalid date '{args['date']}'")
            return 1
    else:
        secs, nanos = int(now), int((now - int(now)) * 1e9)
    try:
        text = format_time(fmt, Moment(secs, nanos, zone))
    except (OverflowError, ValueError, OSError):
        await error(ctx, "date", f"time {secs} is out of range")
        return 1
    await ctx.write_all(1, text + "\n")
    return 0


async def _date_file(ctx: Any, name: str, fmt: str, zone: Zone, now: float) -> int:
    try:
        fd = 0 if name == "-" else await ctx.open(name)
    except KernelError as e:
        await error(ctx, "date", f"{name}: {strerror(e)}")
        return 1
    status = 0
    try:
        async for raw in Reader(ctx, fd):
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                secs, nanos = parse_date(line, now, zone)
            except (DateError, OverflowError, ValueError):
                await error(ctx, "date", f"invalid date '{line}'")
                status = 1
                continue
            await ctx.write_all(1, format_time(fmt, Moment(secs, nanos, zone)) + "\n")
    finally:
        if fd != 0:
            await ctx.close(fd)
    return status


PROGRAMS = {"date": prog_date}
