"""ps's output columns: the procps format keys (``pid``, ``stat``, ``etime``, ...), their
headers, widths and alignment, and how each renders a ``Task``.  The table follows procps-ng
4's; pid-like columns are as wide as the digits of ``pid_max``, as procps sizes them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kernel.programs.common import IdNames
from kernel.programs.procps_proc import HZ, Machine, Task


@dataclass
class View:
    """What every column may need besides the task: the clock, the machine, the names."""

    now: float
    machine: Machine
    names: IdNames
    pid_width: int = 5
    tz: Any = None

    def user(self, uid: int) -> str:
        return user_name(self.names, uid)

    def group(self, gid: int) -> str:
        name = (self.names.groups or {}).get(gid)
        return name if name is not None else ("root" if gid == 0 else str(gid))

    def elapsed(self, t: Task) -> float:
        return max(0.0, self.machine.uptime - t.start_ticks / HZ)

    def started(self, t: Task) -> float:
        return self.machine.btime + t.start_ticks / HZ

    def localtime(self, epoch: float) -> time.struct_time:
        return local_struct(epoch, self.tz)


def user_name(names: IdNames, uid: int) -> str:
    """The sandbox's name for *uid* (its /etc/passwd; uid 0 is root without one), else the number."""
    name = (names.users or {}).get(uid)
    if name is not None:
        return name
    return "root" if uid == 0 else str(uid)


def local_struct(epoch: float, tz: Any) -> time.struct_time:
    """*epoch* broken down in the process's zone (a ``tzinfo``; None is UTC)."""
    from datetime import datetime, timezone
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    if tz is not None:
        dt = dt.astimezone(tz)
    return dt.timetuple()


def zone_of(ctx: Any) -> Any:
    """The ``tzinfo`` of ``$TZ`` (names from the zone database; unset or unknown is UTC)."""
    tz = (ctx.getenv("TZ") or "").lstrip(":")
    if not tz or tz in ("UTC", "UTC0", "GMT"):
        return None
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(tz)
    except Exception:  # noqa: BLE001 - glibc treats an unknown zone as UTC
        return None


# ---- value renderers ---------------------------------------------------------------------
def cputime(secs: int) -> str:
    """``[DD-]HH:MM:SS`` (TIME of the UNIX formats)."""
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def bsdtime(secs: int) -> str:
    """``MMM:SS`` (TIME of the BSD formats)."""
    return f"{secs // 60}:{secs % 60:02d}"


def etime(secs: int) -> str:
    """``[[DD-]hh:]mm:ss``."""
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}-{h:02d}:{m:02d}:{s:02d}"
    if h:
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}"


def stat_flags(t: Task) -> str:
    """STAT: the state and procps's flags (``<`` ``N`` ``s`` ``l`` ``+``)."""
    out = t.state
    if t.nice < 0:
        out += "<"
    elif t.nice > 0:
        out += "N"
    if t.sid == t.pid:
        out += "s"
    if t.nthreads > 1:
        out += "l"
    if t.tpgid != -1 and t.pgid == t.tpgid:
        out += "+"
    return out


def pcpu_permille(t: Task, v: View) -> int:
    secs = v.elapsed(t)
    if secs <= 0:
        return 0
    return int(t.cpu_ticks * 1000 / HZ / secs)


def pmem_permille(t: Task, v: View) -> int:
    total = v.machine.mem("MemTotal")
    return t.vm_rss_kb * 1000 // total if total else 0


def stime(t: Task, v: View) -> str:
    """STIME/START: ``HH:MM`` today, ``MonDD`` this year, else the year (procps's rule)."""
    now = v.localtime(v.now)
    then = v.localtime(v.started(t))
    if then.tm_year != now.tm_year:
        return time.strftime("%Y", then)
    if then.tm_yday != now.tm_yday:
        return time.strftime("%b%d", then)
    return time.strftime("%H:%M", then)


def lstart(t: Task, v: View) -> str:
    """LSTART: ctime(3)'s ``Fri Dec  4 01:02:03 2026``."""
    return time.strftime("%a %b %e %H:%M:%S %Y", v.localtime(v.started(t)))


def start(t: Task, v: View) -> str:
    """STARTED: ``HH:MM:SS`` within the last 24 hours, else ``Mon DD`` (procps's rule)."""
    then = v.started(t)
    fmt = "%H:%M:%S" if then + 86400 > v.now else "%b %d"
    return time.strftime(fmt, v.localtime(then))


def bsdstart(t: Task, v: View) -> str:
    """BSD START: ``HH:MM`` within the last 24 hours, else ``Mon DD``."""
    then = v.started(t)
    return time.strftime("%H:%M" if then + 86400 > v.now else "%b %d", v.localtime(then))


def _c(t: Task, v: View) -> str:
    return str(min(99, pcpu_permille(t, v) // 10))


# ---- the table ---------------------------------------------------------------------------
Render = Callable[[Task, View], str]
SortKey = Callable[[Task, View], Any]


@dataclass(frozen=True)
class Column:
    """One format key: header, width, right alignment, renderer and sort key."""

    header: str
    width: int
    right: bool
    render: Render
    sort: SortKey | None = None
    pidlike: bool = False
    text: bool = False       # long free text (truncated to the width unless last)


def _pid(field_: str) -> Column:
    return Column(field_.upper(), 5, True, lambda t, v: str(getattr(t, field_)),
                  lambda t, v: getattr(t, field_), pidlike=True)


COLUMNS: dict[str, Column] = {
    "pid": _pid("pid"),
    "ppid": _pid("ppid"),
    "pgid": _pid("pgid"),
    "sid": Column("SID", 5, True, lambda t, v: str(t.sid), lambda t, v: t.sid, pidlike=True),
    "tpgid": _pid("tpgid"),
    "uid": Column("UID", 5, True, lambda t, v: str(t.euid), lambda t, v: t.euid),
    "ruid": Column("RUID", 5, True, lambda t, v: str(t.uid), lambda t, v: t.uid),
    "gid": Column("GID", 5, True, lambda t, v: str(t.egid), lambda t, v: t.egid),
    "rgid": Column("RGID", 5, True, lambda t, v: str(t.gid), lambda t, v: t.gid),
    "user": Column("USER", 8, False, lambda t, v: v.user(t.euid), lambda t, v: v.user(t.euid)),
    "ruser": Column("RUSER", 8, False, lambda t, v: v.user(t.uid), lambda t, v: v.user(t.uid)),
    "group": Column("GROUP", 8, False, lambda t, v: v.group(t.egid), lambda t, v: v.group(t.egid)),
    "rgroup": Column("RGROUP", 8, False, lambda t, v: v.group(t.gid), lambda t, v: v.group(t.gid)),
    "tty": Column("TT", 8, False, lambda t, v: t.tty, lambda t, v: t.tty_nr),
    "tname": Column("TTY", 8, False, lambda t, v: t.tty, lambda t, v: t.tty_nr),
    "stat": Column("STAT", 4, False, lambda t, v: stat_flags(t), lambda t, v: stat_flags(t)),
    "s": Column("S", 1, False, lambda t, v: t.state, lambda t, v: t.state),
    "time": Column("TIME", 8, True, lambda t, v: cputime(t.cpu_ticks // HZ), lambda t, v: t.cpu_ticks),
    "bsdtime": Column("TIME", 6, True, lambda t, v: bsdtime(t.cpu_ticks // HZ), lambda t, v: t.cpu_ticks),
    "etime": Column("ELAPSED", 11, True, lambda t, v: etime(int(v.elapsed(t))), lambda t, v: -t.start_ticks),
    "etimes": Column("ELAPSED", 7, True, lambda t, v: str(int(v.elapsed(t))), lambda t, v: -t.start_ticks),
    "cmd": Column("CMD", 27, False, lambda t, v: t.args, lambda t, v: t.args, text=True),
    "args": Column("COMMAND", 27, False, lambda t, v: t.args, lambda t, v: t.args, text=True),
    "comm": Column("COMMAND", 15, False, lambda t, v: t.comm, lambda t, v: t.comm, text=True),
    "ucmd": Column("CMD", 15, False, lambda t, v: t.comm, lambda t, v: t.comm, text=True),
    "fname": Column("COMMAND", 8, False, lambda t, v: t.comm[:8], lambda t, v: t.comm, text=True),
    "%cpu": Column("%CPU", 4, True, lambda t, v: f"{pcpu_permille(t, v) / 10:.1f}",
                   lambda t, v: pcpu_permille(t, v)),
    "%mem": Column("%MEM", 4, True, lambda t, v: f"{pmem_permille(t, v) / 10:.1f}",
                   lambda t, v: t.vm_rss_kb),
    "c": Column("C", 2, True, _c, lambda t, v: pcpu_permille(t, v)),
    "rss": Column("RSS", 5, True, lambda t, v: str(t.vm_rss_kb), lambda t, v: t.vm_rss_kb),
    "vsz": Column("VSZ", 6, True, lambda t, v: str(t.vsize // 1024), lambda t, v: t.vsize),
    "sz": Column("SZ", 5, True, lambda t, v: str(t.vsize // 4096), lambda t, v: t.vsize),
    "nice": Column("NI", 3, True, lambda t, v: str(t.nice), lambda t, v: t.nice),
    "pri": Column("PRI", 3, True, lambda t, v: str(39 - t.priority), lambda t, v: -t.priority),
    "priority": Column("PRI", 3, True, lambda t, v: str(t.priority), lambda t, v: t.priority),
    "nlwp": Column("NLWP", 4, True, lambda t, v: str(t.nthreads), lambda t, v: t.nthreads),
    "stime": Column("STIME", 5, False, stime, lambda t, v: t.start_ticks),
    "start_time": Column("START", 5, False, stime, lambda t, v: t.start_ticks),
    "lstart": Column("STARTED", 24, True, lstart, lambda t, v: t.start_ticks),
    "bsdstart": Column("START", 6, True, bsdstart, lambda t, v: t.start_ticks),
    "start": Column("STARTED", 8, True, start, lambda t, v: t.start_ticks),
    "cls": Column("CLS", 3, True, lambda t, v: "TS", None),
    "rtprio": Column("RTPRIO", 6, True, lambda t, v: "-", None),
    "opri": Column("PRI", 3, True, lambda t, v: str(60 + t.priority), lambda t, v: t.priority),
    "bsdpri": Column("PRI", 3, True, lambda t, v: str(t.priority), lambda t, v: t.priority),
    "addr_sz": Column("ADDR SZ", 7, False, lambda t, v: "- " + str(t.vsize // 4096).rjust(5), None),
    "f": Column("F", 1, True, lambda t, v: "0", None),
    "wchan": Column("WCHAN", 6, False, lambda t, v: t.wchan, None),
    "psr": Column("PSR", 3, True, lambda t, v: "0", None),
}

ALIASES = {
    "pgrp": "pgid", "sess": "sid", "session": "sid", "euid": "uid", "egid": "gid",
    "euser": "user", "uname": "user", "egroup": "group", "tt": "tty", "state": "s",
    "cputime": "time", "command": "args", "ucomm": "comm", "pcpu": "%cpu", "pmem": "%mem",
    "rssize": "rss", "rsz": "rss", "vsize": "vsz", "ni": "nice", "thcount": "nlwp",
    "flags": "f", "class": "cls", "policy": "cls", "lwp": "pid", "spid": "pid", "tid": "pid", "tgid": "pid",
}


def lookup(key: str) -> Column | None:
    return COLUMNS.get(ALIASES.get(key, key))


@dataclass
class Field:
    """A column as requested (``-o pid=PROCESS`` renames the header)."""

    key: str
    column: Column
    header: str
    width: int = 0

    def __post_init__(self) -> None:
        if not self.width:
            self.width = max(self.column.width, len(self.header))


@dataclass
class Layout:
    """The fields of one ps run, and how wide a line may be (0: unlimited)."""

    fields: list[Field] = field(default_factory=list)
    max_width: int = 0

    def fit(self, pid_width: int) -> None:
        for f in self.fields:
            if f.column.pidlike:
                f.width = max(pid_width, len(f.header))

    def header(self) -> str:
        return self._line([f.header for f in self.fields])

    def row(self, t: Task, v: View, prefix: str = "") -> str:
        """One process's line; *prefix* (the forest's art) goes before its command."""
        values = [f.column.render(t, v) for f in self.fields]
        if prefix:
            for i, f in enumerate(self.fields):
                if f.key in ("cmd", "args", "comm", "ucmd", "command", "ucomm"):
                    values[i] = prefix + values[i]
                    break
        return self._line(values)

    def _line(self, values: list[str]) -> str:
        parts = []
        last = len(self.fields) - 1
        for i, (f, value) in enumerate(zip(self.fields, values)):
            if f.column.right:
                parts.append(value.rjust(f.width))
            elif i == last:
                parts.append(value)
            elif f.column.text or f.key in ("user", "ruser", "group", "rgroup", "tty", "tname"):
                parts.append(value[:f.width].ljust(f.width) if len(value) <= f.width
                             else _cut(value, f))
            else:
                parts.append(value.ljust(f.width))
        line = " ".join(parts)
        if self.max_width and len(line) > self.max_width:
            line = line[:self.max_width]
        return line


def _cut(value: str, f: Field) -> str:
    """A value too wide for its column: names end in ``+`` (procps), text is cut."""
    if f.key in ("user", "ruser", "group", "rgroup"):
        return value[:f.width - 1] + "+"
    return value[:f.width]
