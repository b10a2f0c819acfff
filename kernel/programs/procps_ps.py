"""``ps``: procps-ng's selection and formats (``-e -f -ef aux -o -p -u --sort --no-headers``)
over the sandbox's /proc.

procps mixes three option styles; so does this: UNIX options after ``-`` (``-ef``), BSD ones
without (``aux``), GNU long ones after ``--``.  Selections add up (a process shown by ``-p``
or ``-u`` is shown); without any, ps shows the processes of the caller's effective user on
the caller's terminal, as procps does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import IdNames, Writer, error
from kernel.programs.procps_fmt import Field, Layout, View, lookup, zone_of
from kernel.programs.procps_proc import Task, pid_max, read_machine, read_tasks, read_wchan, self_task

USAGE = """
Usage:
 ps [options]

 Basic options:
 -A, -e               all processes
 -a                   all with tty, except session leaders
  a                   all with tty, including other users
 -d                   all except session leaders
  x                   processes without controlling ttys

 Selection by list:
 -p, p, --pid <PID>   process id
 -u, U, --user <UID>  effective user id or name
 -U, --User <UID>     real user id or name
 -t, t, --tty <tty>   terminal
 -C <command>         command name

 Output formats:
 -f                   full-format
 -j                   jobs format
  u                   user-oriented format
 -o, o, --format <format>
                      user-defined format
 --sort <key>         sort by keys (+ ascending, - descending)
 --no-headers         do not print header at all
 -w, w                unlimited output width

 -h, --help           display this help and exit
 -V, --version        output version information and exit
"""

FMT_DEFAULT = "pid,tname,time,ucmd"
FMT_FULL = "uid_hack,pid,ppid,c,stime,tname,time,cmd"
FMT_JOBS = "pid,pgid,sid,tname,time,ucmd"
FMT_BSD = "pid,tname,stat,bsdtime,args"
FMT_LONG = "f,s,uid,pid,ppid,c,opri,nice,addr_sz,wchan,tname,time,ucmd"
FMT_LONG_FULL = "f,s,uid_hack,pid,ppid,c,opri,nice,addr_sz,wchan,stime,tname,time,cmd"
FMT_LONG_Y = "s,uid,pid,ppid,c,opri,nice,rss,sz,wchan,tname,time,ucmd"
FMT_EXTRA = "uid_hack,pid,ppid,c,sz,rss,psr,stime,tname,time,cmd"
FMT_LONG_EXTRA = "f,s,uid_hack,pid,ppid,c,opri,nice,addr_sz,wchan,rss,psr,stime,tname,time,cmd"
FMT_BSD_LONG = "f,uid,pid,ppid,bsdpri,nice,vsz,rss,wchan,stat,tname,bsdtime,args"
FMT_BSD_JOBS = "ppid,pid,pgid,sid,tname,tpgid,stat,uid,bsdtime,args"
FMT_USER = "user,pid,%cpu,%mem,vsz,rss,tname,stat,start_time,bsdtime,args"


class PsError(Exception):
    """A bad command line; ``str`` is the message procps prints."""


@dataclass
class Options:
    every: bool = False
    all_tty_not_leaders: bool = False     # -a
    all_not_leaders: bool = False         # -d
    bsd_all_users: bool = False           # a
    bsd_no_tty: bool = False              # x
    bsd: bool = False                     # any BSD option seen
    full: bool = False
    jobs: bool = False
    long: bool = False
    extra: bool = False                   # -F
    rss_not_addr: bool = False            # -y
    user_fmt: bool = False
    formats: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    ppids: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    real_users: list[str] = field(default_factory=list)
    ttys: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    headers: bool = True
    forest: str = ""                      # "art" (--forest, f) or "indent" (-H)
    wide: int = 0
    help: bool = False
    version: bool = False


def _split(value: str) -> list[str]:
    return [x for x in value.replace(",", " ").split() if x]


def _pids(value: str) -> list[int]:
    out = []
    for x in _split(value):
        if not x.isdigit() or int(x) == 0:
            raise PsError("process ID list syntax error")
        out.append(int(x))
    if not out:
        raise PsError("process ID list syntax error")
    return out


_UNIX_ARG = {"o": "formats", "p": "pids", "u": "users", "U": "real_users", "t": "ttys",
             "C": "commands", "q": "pids", "g": "sid"}


def parse_args(argv: list[str]) -> Options:
    o = Options()
    i = 0

    def take(opt: str, rest: str) -> str:
        nonlocal i
        if rest:
            return rest
        if i < len(argv):
            i += 1
            return argv[i - 1]
        if opt == "--sort":
            raise PsError("long sort specification must follow --sort")
        if opt.startswith("--"):
            raise PsError(f"option {opt} requires an argument")
        if opt in "oO":
            raise PsError(f"format specification must follow -{opt}")
        what = {"p": "process IDs", "u": "users", "U": "users", "t": "terminals", "C": "commands"}
        raise PsError(f"list of {what.get(opt, 'values')} must follow -{opt}")

    def listed(kind: str, value: str) -> None:
        if kind == "formats":
            o.formats.append(value)
        elif kind == "pids":
            o.pids += _pids(value)
        elif kind == "ppids":
            o.ppids += _pids(value)
        elif kind == "users":
            o.users += _split(value)
        elif kind == "real_users":
            o.real_users += _split(value)
        elif kind == "ttys":
            o.ttys += _split(value)
        elif kind == "commands":
            o.commands += _split(value)

    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if name in ("no-headers", "no-heading", "noheaders", "noheader"):
                o.headers = False
            elif name in ("help",):
                o.help = True
            elif name in ("version", "info"):
                o.version = True
            elif name in ("sort",):
                o.sort += _split(value if eq else take(a, ""))
            elif name in ("format",):
                o.formats.append(value if eq else take(a, ""))
            elif name in ("pid", "ppid", "user", "User", "tty"):
                kind = {"pid": "pids", "ppid": "ppids", "user": "users", "User": "real_users",
                        "tty": "ttys"}[name]
                listed(kind, value if eq else take(a, ""))
            elif name == "forest":
                o.forest = "art"
            elif name in ("headers", "cols", "columns", "width"):
                if name in ("cols", "columns", "width"):
                    w = value if eq else take(a, "")
                    if not w.isdigit():
                        raise PsError(f"option --{name} requires an argument")
                    o.wide = int(w)
            else:
                raise PsError("unknown gnu long option")
            continue
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                if ch in "Ae":
                    o.every = True
                elif ch == "a":
                    o.all_tty_not_leaders = True
                elif ch == "d":
                    o.all_not_leaders = True
                elif ch == "f":
                    o.full = True
                elif ch == "j":
                    o.jobs = True
                elif ch == "l":
                    o.long = True
                elif ch == "F":
                    o.extra = True
                elif ch == "y":
                    o.rss_not_addr = True
                elif ch == "w":
                    o.wide = -1 if o.wide else 132
                elif ch == "H":
                    o.forest = "indent"
                elif ch in "MTLcN":
                    pass
                elif ch == "h":
                    o.headers = False
                elif ch == "V":
                    o.version = True
                elif ch in _UNIX_ARG or ch == "s":
                    value = take(ch, a[j:])
                    kind = "sid" if ch == "s" else _UNIX_ARG[ch]
                    if ch == "q":
                        listed("pids", value)
                    elif kind == "sid":
                        pass
                    else:
                        listed(kind, value)
                    break
                else:
                    raise PsError("unsupported SysV option")
            continue
        # BSD options
        if a.isdigit():
            o.pids += _pids(a)
            continue
        o.bsd = True
        j = 0
        while j < len(a):
            ch = a[j]
            j += 1
            if ch == "a":
                o.bsd_all_users = True
            elif ch == "x":
                o.bsd_no_tty = True
            elif ch == "u":
                o.user_fmt = True
            elif ch == "j":
                o.jobs = True
            elif ch == "l":
                o.long = True
            elif ch == "w":
                o.wide = -1 if o.wide else 132
            elif ch == "h":
                o.headers = False
            elif ch == "f":
                o.forest = "art"
            elif ch in "ecmrS":
                pass
            elif ch in "opUt":
                value = take(ch, a[j:])
                kind = {"o": "formats", "p": "pids", "U": "users", "t": "ttys"}[ch]
                listed(kind, value)
                break
            else:
                raise PsError("unsupported option (BSD syntax)")
    return o


def build_layout(o: Options) -> Layout:
    if o.formats:
        spec_list = o.formats
    elif o.user_fmt:
        spec_list = [FMT_USER]
    elif o.bsd and o.long:
        spec_list = [FMT_BSD_LONG]
    elif o.bsd and o.jobs:
        spec_list = [FMT_BSD_JOBS]
    elif o.long and o.rss_not_addr:
        spec_list = [FMT_LONG_Y]
    elif o.long and o.extra:
        spec_list = [FMT_LONG_EXTRA]
    elif o.long:
        spec_list = [FMT_LONG_FULL if o.full else FMT_LONG]
    elif o.extra:
        spec_list = [FMT_EXTRA]
    elif o.jobs:
        spec_list = [FMT_JOBS]
    elif o.full:
        spec_list = [FMT_FULL]
    elif o.bsd:
        spec_list = [FMT_BSD]
    else:
        spec_list = [FMT_DEFAULT]
    layout = Layout()
    for spec in spec_list:
        layout.fields += parse_format(spec, unix=not o.bsd or bool(o.formats))
    return layout


def parse_format(spec: str, unix: bool = True) -> list[Field]:
    """``pid,comm=NAME``: comma-separated keys, each with an optional ``=HEADER``."""
    out: list[Field] = []
    for key in spec.replace(" ", ",").split(","):
        if not key:
            continue
        name, eq, header = key.partition("=")
        if name == "uid_hack":
            col = lookup("user")
            assert col is not None
            out.append(Field("user", col, "UID"))
            continue
        col = lookup(name.lower())
        if col is None:
            raise PsError('unknown user-defined format specifier "' + name + '"')
        f = Field(name.lower(), col, header if eq else col.header)
        out.append(f)
    if not out:
        raise PsError("improper format list")
    return out


def _matches(t: Task, o: Options, me: Task | None, names: IdNames) -> bool:
    listed = bool(o.pids or o.ppids or o.users or o.real_users or o.ttys or o.commands)
    if listed:
        if t.pid in o.pids or t.ppid in o.ppids or t.comm in o.commands:
            return True
        if any(names.uid_of(u) == t.euid or _root(u) == t.euid for u in o.users):
            return True
        if any(names.uid_of(u) == t.uid or _root(u) == t.uid for u in o.real_users):
            return True
        if any(_tty_matches(t, x) for x in o.ttys):
            return True
        if not (o.every or o.bsd_all_users or o.bsd_no_tty or o.all_not_leaders
                or o.all_tty_not_leaders):
            return False
    if o.every or (o.bsd_all_users and o.bsd_no_tty):
        return True
    if o.all_not_leaders and t.sid != t.pid:
        return True
    if o.all_tty_not_leaders and t.sid != t.pid and t.tty_nr != 0:
        return True
    if o.bsd_all_users:
        return t.tty_nr != 0
    euid = me.euid if me else 0
    if o.bsd_no_tty:
        return t.euid == euid
    if listed or o.all_not_leaders or o.all_tty_not_leaders:
        return False
    return t.euid == euid and t.tty_nr == (me.tty_nr if me else 0)


def _root(name: str) -> int | None:
    return 0 if name == "root" else None


def _tty_matches(t: Task, name: str) -> bool:
    name = name.removeprefix("/dev/")
    if name in ("-", "?"):
        return t.tty_nr == 0
    return t.tty == name or t.tty == f"pts/{name}"


def _sort(tasks: list[Task], keys: list[str], view: View) -> list[Task]:
    for spec in reversed(keys):
        desc = spec.startswith("-")
        name = spec.lstrip("+-")
        col = lookup(name)
        if col is None or col.sort is None:
            raise PsError("unknown sort specifier")
        sort = col.sort
        tasks = sorted(tasks, key=lambda t: sort(t, view), reverse=desc)
    return tasks


def forest(tasks: list[Task], style: str) -> list[tuple[Task, str]]:
    """Tasks in tree order with the prefix of their command: procps's ``\\_`` art with
    ``|`` for ancestors that have later siblings (--forest), or two spaces a level (-H).
    A task whose parent is not listed is a root (with the art, so are init's children);
    children keep the listing's order."""
    shown = {t.pid for t in tasks}

    def is_root(t: Task) -> bool:  # procps's art does not hang init's children off it
        return t.ppid not in shown or t.ppid == t.pid or (style == "art" and t.ppid == 1)

    kids: dict[int, list[Task]] = {}
    for t in tasks:
        if not is_root(t):
            kids.setdefault(t.ppid, []).append(t)
    out: list[tuple[Task, str]] = []

    def walk(t: Task, bars: list[bool]) -> None:
        if style == "indent":
            prefix = "  " * len(bars)
        else:
            prefix = "".join(" |  " if more else "    " for more in bars[:-1]) + (" \\_ " if bars else "")
        out.append((t, prefix))
        children = kids.get(t.pid, [])
        for i, child in enumerate(children):
            walk(child, bars + [i < len(children) - 1])

    for t in tasks:
        if is_root(t):
            walk(t, [])
    return out


async def screen_width(ctx: Any) -> int:
    """COLUMNS, else the terminal's width on a tty; 0 (unlimited) for a pipe or file."""
    env = ctx.getenv("COLUMNS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    if ctx.isatty(1):
        try:
            return ctx.get_winsize(1)[1] or 80
        except KernelError:
            return 80
    return 0


async def prog_ps(ctx: Any) -> int:
    try:
        o = parse_args(list(ctx.argv[1:]))
        if o.help:
            await ctx.write_all(1, USAGE.lstrip("\n").replace("\nUsage", "Usage"))
            return 0
        if o.version:
            await ctx.write_all(1, "ps from procps-ng 4.0.2 (vfsfuse)\n")
            return 0
        layout = build_layout(o)
        if not layout.fields:
            raise PsError("improper format list")
    except PsError as e:
        await error(ctx, "error", f"{e}\n\nUsage:\n ps [options]\n\n Try 'ps --help <simple|list|output"
                                  "|threads|misc|all>'\n  or 'ps --help <s|l|o|t|m|a>'\n for additional"
                                  " help text.\n\nFor more details see ps(1).")
        return 1
    names = IdNames()
    await names.load(ctx)
    machine = await read_machine(ctx)
    width = len(str(await pid_max(ctx)))
    view = View(time.time(), machine, names, width, zone_of(ctx))
    layout.fit(width)
    if o.wide == -1:
        layout.max_width = 0
    else:
        layout.max_width = await screen_width(ctx)
        if o.wide and layout.max_width:
            layout.max_width = max(layout.max_width, o.wide)
    me = await self_task(ctx)
    tasks = [t for t in await read_tasks(ctx) if _matches(t, o, me, names)]
    if any(f.key == "wchan" for f in layout.fields):
        for t in tasks:
            await read_wchan(ctx, t)
    try:
        tasks = _sort(tasks, o.sort, view)
    except PsError as e:
        await error(ctx, "error", str(e))
        return 1
    out = Writer(ctx)
    if o.headers and any(f.header for f in layout.fields):
        await out.write(layout.header() + "\n")
    rows = forest(tasks, o.forest) if o.forest else [(t, "") for t in tasks]
    for t, prefix in rows:
        await out.write(layout.row(t, view, prefix) + "\n")
    await out.flush()
    return 0 if tasks else 1


PROGRAMS = {"ps": prog_ps}
