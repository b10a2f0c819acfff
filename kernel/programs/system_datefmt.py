"""Time zones and GNU date's ``+FORMAT`` conversions (C locale), written once for ``date``.

A ``Zone`` is what ``$TZ`` names: a zone of the tz database (``Europe/Paris``), a POSIX
fixed zone (``EST5``, ``<+03>-3``, ``UTC0``), or UTC when unset or unknown, as glibc falls
back.  ``Moment`` is one instant seen in one zone: the broken-down fields ``%`` needs.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

_POSIX_TZ = re.compile(r"^(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})?$")


@dataclass
class Zone:
    """A zone: a ``tzinfo`` and, for fixed ones, the abbreviation ``%Z`` prints."""

    tz: tzinfo
    name: str | None = None

    def offset(self, epoch: float) -> int:
        """Seconds east of UTC at *epoch*."""
        off = datetime.fromtimestamp(epoch, timezone.utc).astimezone(self.tz).utcoffset()
        return int(off.total_seconds()) if off else 0

    def abbrev(self, epoch: float) -> str:
        if self.name is not None:
            return self.name
        return datetime.fromtimestamp(epoch, timezone.utc).astimezone(self.tz).tzname() or "UTC"


UTC = Zone(timezone.utc, "UTC")


def zone_named(spec: str | None) -> Zone:
    """The zone ``$TZ`` names (unset, empty or unknown: UTC)."""
    if not spec:
        return UTC
    spec = spec.lstrip(":")
    if spec in ("UTC", "UTC0", "GMT", "GMT0", "UTC+0", "UTC-0", "Z"):
        return Zone(timezone.utc, "GMT" if spec.startswith("GMT") else "UTC")
    m = _POSIX_TZ.match(spec)
    if m and m.group(2) is not None:
        name = m.group(1).strip("<>")
        sign = -1 if not m.group(2).startswith("-") else 1  # POSIX: hours *west* of UTC
        parts = [int(x) for x in m.group(2).lstrip("+-").split(":")] + [0, 0]
        secs = parts[0] * 3600 + parts[1] * 60 + parts[2]
        return Zone(timezone(timedelta(seconds=sign * secs)), name)
    try:
        from zoneinfo import ZoneInfo
        return Zone(ZoneInfo(spec))
    except Exception:  # noqa: BLE001 - glibc treats an unknown zone as UTC
        return Zone(timezone.utc, "UTC")


@dataclass
class Moment:
    """An instant (``epoch`` seconds, ``nanos`` within the second) in a zone."""

    epoch: int
    nanos: int
    zone: Zone

    def fields(self) -> datetime:
        return datetime.fromtimestamp(self.epoch, timezone.utc) + timedelta(seconds=self.zone.offset(self.epoch))


def _iso_week(d: datetime) -> tuple[int, int]:
    y, w, _ = d.date().isocalendar()
    return y, w


def _zone_text(off: int, colons: int) -> str:
    sign = "-" if off < 0 else "+"
    off = abs(off)
    h, m, s = off // 3600, off % 3600 // 60, off % 60
    if colons == 0:
        return f"{sign}{h:02d}{m:02d}"
    if colons == 1:
        return f"{sign}{h:02d}:{m:02d}"
    if colons == 2:
        return f"{sign}{h:02d}:{m:02d}:{s:02d}"
    if s:
        return f"{sign}{h:02d}:{m:02d}:{s:02d}"
    return f"{sign}{h:02d}" + (f":{m:02d}" if m else "")


def conversion(c: str, mo: Moment, d: datetime, colons: int = 0) -> tuple[str, str]:
    """(text, kind) for one ``%c``; kind is ``0`` (number, zero padded), ``_`` (number,
    space padded) or ``a`` (text)."""
    wd = d.weekday()  # Monday 0
    yday = d.timetuple().tm_yday
    hour12 = d.hour % 12 or 12
    if c == "a":
        return DAYS[wd][:3], "a"
    if c == "A":
        return DAYS[wd], "a"
    if c in "bh":
        return MONTHS[d.month - 1][:3], "a"
    if c == "B":
        return MONTHS[d.month - 1], "a"
    if c == "c":
        return format_time("%a %b %e %H:%M:%S %Y", mo), "a"
    if c == "C":
        return f"{d.year // 100:02d}", "0"
    if c == "d":
        return f"{d.day:02d}", "0"
    if c == "D":
        return format_time("%m/%d/%y", mo), "a"
    if c == "e":
        return f"{d.day:2d}", "_"
    if c == "F":
        return format_time("%Y-%m-%d", mo), "a"
    if c == "g":
        return f"{_iso_week(d)[0] % 100:02d}", "0"
    if c == "G":
        return str(_iso_week(d)[0]), "0"
    if c == "H":
        return f"{d.hour:02d}", "0"
    if c == "I":
        return f"{hour12:02d}", "0"
    if c == "j":
        return f"{yday:03d}", "0"
    if c == "k":
        return f"{d.hour:2d}", "_"
    if c == "l":
        return f"{hour12:2d}", "_"
    if c == "m":
        return f"{d.month:02d}", "0"
    if c == "M":
        return f"{d.minute:02d}", "0"
    if c == "n":
        return "\n", "a"
    if c == "N":
        return f"{mo.nanos:09d}", "0"
    if c == "p":
        return ("AM" if d.hour < 12 else "PM"), "a"
    if c == "P":
        return ("am" if d.hour < 12 else "pm"), "a"
    if c == "q":
        return str((d.month - 1) // 3 + 1), "0"
    if c == "r":
        return format_time("%I:%M:%S %p", mo), "a"
    if c == "R":
        return format_time("%H:%M", mo), "a"
    if c == "s":
        return str(mo.epoch), "0"
    if c == "S":
        return f"{d.second:02d}", "0"
    if c == "t":
        return "\t", "a"
    if c == "T":
        return format_time("%H:%M:%S", mo), "a"
    if c == "u":
        return str(wd + 1), "0"
    if c == "U":
        return f"{(yday + 6 - (wd + 1) % 7) // 7:02d}", "0"
    if c == "V":
        return f"{_iso_week(d)[1]:02d}", "0"
    if c == "w":
        return str((wd + 1) % 7), "0"
    if c == "W":
        return f"{(yday + 6 - wd) // 7:02d}", "0"
    if c == "x":
        return format_time("%m/%d/%y", mo), "a"
    if c == "X":
        return format_time("%H:%M:%S", mo), "a"
    if c == "y":
        return f"{d.year % 100:02d}", "0"
    if c == "Y":
        return str(d.year), "0"
    if c == "z":
        return _zone_text(mo.zone.offset(mo.epoch), colons), "a"
    if c == "Z":
        return mo.zone.abbrev(mo.epoch), "a"
    raise KeyError(c)


def format_time(fmt: str, mo: Moment) -> str:
    """GNU date's ``+FORMAT``: conversions with the ``-_0^#`` flags and a width."""
    d = mo.fields()
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch != "%" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        start = i
        i += 1
        flags = ""
        while i < n and fmt[i] in "-_0^#":
            flags += fmt[i]
            i += 1
        width = ""
        while i < n and fmt[i].isdigit():
            width += fmt[i]
            i += 1
        colons = 0
        while i < n and fmt[i] == ":":
            colons += 1
            i += 1
        if i >= n:
            out.append(fmt[start:])
            break
        c = fmt[i]
        i += 1
        if c == "%":
            out.append("%")
            continue
        if colons and c != "z":
            out.append(fmt[start:i])
            continue
        try:
            text, kind = conversion(c, mo, d, colons)
        except KeyError:
            out.append(fmt[start:i])
            continue
        out.append(_dress(text, kind, flags, width, c))
    return "".join(out)


def _dress(text: str, kind: str, flags: str, width: str, c: str) -> str:
    """Apply the flags (``-`` no padding, ``_`` spaces, ``0`` zeros, ``^`` upper case,
    ``#`` swapped case) and the width to one conversion's text."""
    if c == "N" and width:
        return text[:int(width)]
    if "^" in flags:
        text = text.upper()
    elif "#" in flags:
        text = text.lower() if c in "pPZ" else text.upper()
    numeric = kind in "0_"
    if numeric and "-" in flags:
        text = text.lstrip(" ")
        if kind == "0" and len(text) > 1 and c not in "sz":
            text = text.lstrip("0") or "0"
    elif numeric and "_" in flags:
        stripped = text.lstrip(" ").lstrip("0") if kind == "0" else text.lstrip(" ")
        text = (stripped or "0").rjust(len(text))
    elif numeric and "0" in flags:
        text = text.lstrip(" ").rjust(len(text), "0")
    if width and "-" not in flags:
        w = int(width)
        if "_" in flags:
            pad = " "
        elif "0" in flags:
            pad = "0"
        else:
            pad = "0" if kind == "0" else " "
        if pad == "0" and text[:1] in "+-":
            text = text[0] + text[1:].rjust(w - 1, "0")
        else:
            text = text.rjust(w, pad)
    return text


def epoch_of(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: Zone | None,
             offset: int | None = None) -> int:
    """Local time (in *zone*, or at a fixed *offset*) to seconds since the epoch; months
    and days out of range carry over as mktime does."""
    y += (mo - 1) // 12
    mo = (mo - 1) % 12 + 1
    naive = calendar.timegm((y, mo, 1, 0, 0, 0, 0, 0, 0)) + (d - 1) * 86400 + h * 3600 + mi * 60 + s
    if offset is not None:
        return naive - offset
    z = zone or UTC
    guess = naive - z.offset(naive)
    return naive - z.offset(guess)


def broken_down(epoch: int, zone: Zone) -> Any:
    return Moment(epoch, 0, zone).fields()
