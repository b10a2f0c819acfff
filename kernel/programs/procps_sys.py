"""``uptime``, ``free``, ``pstree`` and ``top -b``: the machine and the process tree from
/proc, in procps-ng 4's (and psmisc's) layouts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import IdNames, Writer, error, read_file
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.procps_fmt import local_struct, user_name, zone_of
from kernel.programs.procps_proc import HZ, Machine, Task, pid_max, read_machine, read_tasks


# ---- uptime ------------------------------------------------------------------------------
def uptime_line(now: float, m: Machine, tz: Any, users: int = 0) -> str:
    """`` 01:02:03 up 1 day,  2:03,  0 user,  load average: 0.00, 0.00, 0.00``."""
    t = local_struct(now, tz)
    up = int(m.uptime)
    days, rem = divmod(up, 86400)
    hours, mins = rem // 3600, rem % 3600 // 60
    out = f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} up "
    if days:
        out += f"{days} day{'s' if days > 1 else ''}, "
    out += f"{hours:2d}:{mins:02d}, " if hours else f"{mins} min, "
    a, b, c = m.loads
    return out + f"{users:2d} user{'s' if users > 1 else ''},  load average: {a:.2f}, {b:.2f}, {c:.2f}"


def pretty_uptime(secs: int) -> str:
    """``uptime -p``: ``up 1 week, 2 days, 3 hours, 4 minutes``."""
    parts = []
    for unit, size in (("year", 31536000), ("week", 604800), ("day", 86400), ("hour", 3600),
                       ("minute", 60)):
        n, secs = divmod(secs, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n > 1 else ''}")
    return "up " + (", ".join(parts) if parts else "0 minutes")


UPTIME = Spec("uptime", "[options]", "Tell how long the system has been running.", [
    Opt("p", "pretty", help="show uptime in pretty format"),
    Opt("s", "since", help="system up since"),
])


async def prog_uptime(ctx: Any) -> int:
    args = await parse_or_exit(ctx, UPTIME)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "uptime", f"invalid argument '{args.operands[0]}'")
        return 1
    m = await read_machine(ctx)
    now = time.time()
    tz = zone_of(ctx)
    if args.get("since"):
        boot = local_struct(now - m.uptime, tz)
        await ctx.write_all(1, time.strftime("%Y-%m-%d %H:%M:%S", boot) + "\n")
    elif args.get("pretty"):
        await ctx.write_all(1, pretty_uptime(int(m.uptime)) + "\n")
    else:
        await ctx.write_all(1, uptime_line(now, m, tz) + "\n")
    return 0


# ---- free --------------------------------------------------------------------------------
FREE = Spec("free", "[options]", "Display amount of free and used memory in the system.", [
    Opt("b", "bytes", help="show output in bytes"),
    Opt(None, "kilo", help="show output in kilobytes"),
    Opt(None, "mega", help="show output in megabytes"),
    Opt(None, "giga", help="show output in gigabytes"),
    Opt("k", "kibi", help="show output in kibibytes"),
    Opt("m", "mebi", help="show output in mebibytes"),
    Opt("g", "gibi", help="show output in gibibytes"),
    Opt(None, "tebi", help="show output in tebibytes"),
    Opt("h", "human", help="show human-readable output"),
    Opt(None, "si", help="use powers of 1000 not 1024"),
    Opt("w", "wide", help="wide output"),
    Opt("t", "total", help="show total for RAM + swap"),
    Opt("s", "seconds", arg="N", help="repeat printing every N seconds"),
    Opt("c", "count", arg="N", help="repeat printing N times, then exit"),
])


def scale(kb: int, exponent: int, human: bool, si: bool) -> str:
    """One figure as procps's free prints it (``-h``: ``9.5Mi``, ``480Mi``, ``0B``)."""
    base = 1000 if si else 1024
    nbytes = kb * 1024
    if not human:
        if exponent == 0:
            return str(nbytes // base)
        if exponent == 1:
            return str(nbytes)
        return str(nbytes // base ** (exponent - 1))
    if len(f"{nbytes}B") <= 4:
        return f"{nbytes}B"
    for i, unit in enumerate("KMGTPE", start=1):
        value = nbytes / base ** i
        suffix = unit if si else unit + "i"
        limit = 4 if si else 5
        text = f"{value:.1f}{suffix}"
        if len(text) <= limit:
            return text
        text = f"{int(value)}{suffix}"
        if len(text) <= limit:
            return text
    return f"{nbytes}B"


@dataclass
class MemFigures:
    total: int
    used: int
    free: int
    shared: int
    buffers: int
    cache: int
    available: int
    swap_total: int
    swap_free: int


def mem_figures(m: Machine) -> MemFigures:
    """procps 4's arithmetic: used = total - available, cache counts SReclaimable."""
    total = m.mem("MemTotal")
    free = m.mem("MemFree")
    cache = m.mem("Cached") + m.mem("SReclaimable")
    buffers = m.mem("Buffers")
    available = m.meminfo.get("MemAvailable", free)
    if available > total:
        available = free
    used = total - available
    if used < 0:
        used = total - free
    return MemFigures(total, used, free, m.mem("Shmem"), buffers, cache, available,
                      m.mem("SwapTotal"), m.mem("SwapFree"))


async def prog_free(ctx: Any) -> int:
    args = await parse_or_exit(ctx, FREE)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "free", f"extra operand '{args.operands[0]}'\nTry 'free --help' for more information.")
        return 1
    exponent, si = 0, bool(args.get("si"))
    for key, exp, is_si in (("bytes", 1, False), ("kilo", 2, True), ("mega", 3, True),
                            ("giga", 4, True), ("kibi", 2, False), ("mebi", 3, False),
                            ("gibi", 4, False), ("tebi", 5, False)):
        if args.get(key):
            exponent, si = exp, si or is_si
    human = bool(args.get("human"))
    count, delay = 1, 1.0
    if "count" in args:
        text = args["count"]
        if not text.isdigit():
            await error(ctx, "free", f"failed to parse count argument: '{text}'")
            return 1
        count = int(text)
        if count < 1:
            await error(ctx, "free", f"failed to parse count argument: '{text}': Numerical result out of range")
            return 1
    if "seconds" in args:
        text = args["seconds"]
        try:
            delay = float(text)
        except ValueError:
            await error(ctx, "free", f"seconds argument failed: '{text}': Invalid argument")
            return 1
        if not delay > 0:
            await error(ctx, "free", f"seconds argument `{text}' is not positive number")
            return 1
    repeat = "count" in args or "seconds" in args
    n = 0
    while True:
        m = await read_machine(ctx)
        await ctx.write_all(1, free_text(mem_figures(m), exponent, human, si,
                                         bool(args.get("wide")), bool(args.get("total"))))
        n += 1
        if not repeat or ("count" in args and n >= count):
            return 0
        await ctx.write_all(1, "\n")
        await ctx.sleep(delay)


def free_text(f: MemFigures, exponent: int, human: bool, si: bool, wide: bool, total: bool) -> str:
    def s(kb: int) -> str:
        return f"{scale(kb, exponent, human, si):>12}"
    if wide:
        head = ["total", "used", "free", "shared", "buffers", "cache", "available"]
        mem = [f.total, f.used, f.free, f.shared, f.buffers, f.cache, f.available]
    else:
        head = ["total", "used", "free", "shared", "buff/cache", "available"]
        mem = [f.total, f.used, f.free, f.shared, f.buffers + f.cache, f.available]
    lines = [" " * 8 + "".join(f"{h:>12}" for h in head),
             f"{'Mem:':<8}" + "".join(s(x) for x in mem)]
    swap_used = f.swap_total - f.swap_free
    lines.append(f"{'Swap:':<8}" + s(f.swap_total) + s(swap_used) + s(f.swap_free))
    if total:
        lines.append(f"{'Total:':<8}" + s(f.total + f.swap_total) + s(f.used + swap_used)
                     + s(f.free + f.swap_free))
    return "\n".join(lines) + "\n"


# ---- pstree ------------------------------------------------------------------------------
PSTREE = Spec("pstree", "[-acglpsStTuZ] [ -h | -H PID ] [ -n | -N type ] [ -A | -G | -U ] [ PID | USER ]",
              "Display a tree of processes.", [
                  Opt("a", "arguments", help="show command line arguments"),
                  Opt("A", "ascii", help="use ASCII line drawing characters"),
                  Opt("c", "compact-not", help="don't compact identical subtrees"),
                  Opt("g", "show-pgids", help="show process group ids; implies -c"),
                  Opt("G", "vt100", help="use VT100 line drawing characters"),
                  Opt("l", "long", help="don't truncate long lines"),
                  Opt("n", "numeric-sort", help="sort output by PID"),
                  Opt("p", "show-pids", help="show PIDs; implies -c"),
                  Opt("s", "show-parents", help="show parents of the selected process"),
                  Opt("T", "hide-threads", help="hide threads, show only processes"),
                  Opt("u", "uid-changes", help="show uid transitions"),
                  Opt("U", "unicode", help="use UTF-8 (Unicode) line drawing characters"),
              ], usage_status=1)


@dataclass
class _Node:
    task: Task
    kids: list["_Node"] = field(default_factory=list)


@dataclass
class _Style:
    pids: bool
    pgids: bool
    args: bool
    compact: bool
    numeric: bool
    uid_changes: bool
    names: IdNames
    unicode: bool = False

    @property
    def bar(self) -> str:
        return "│" if self.unicode else "|"

    @property
    def tee(self) -> str:
        return "├─" if self.unicode else "|-"

    @property
    def corner(self) -> str:
        return "└─" if self.unicode else "`-"

    @property
    def single(self) -> str:
        return "───" if self.unicode else "---"

    @property
    def first(self) -> str:
        return "─┬─" if self.unicode else "-+-"


def _label(n: _Node, st: _Style, parent: _Node | None) -> str:
    t = n.task
    name = t.comm
    if st.args and t.cmdline:
        name = " ".join([t.comm, *t.cmdline[1:]])
    ids = []
    if st.pids:
        ids.append(str(t.pid))
    if st.pgids:
        ids.append(str(t.pgid))
    if st.uid_changes and parent is not None and parent.task.euid != t.euid:
        ids.append(user_name(st.names, t.euid))
    return name + (f"({','.join(ids)})" if ids else "")


def _render(n: _Node, st: _Style, parent: _Node | None = None) -> list[str]:
    """The lines of *n*'s subtree, psmisc's layout (children hang off the first line)."""
    label = _label(n, st, parent)
    kids = sorted(n.kids, key=lambda k: k.task.pid if st.numeric else (k.task.comm, k.task.pid))
    groups: list[tuple[int, list[str]]] = []
    for k in kids:
        lines = _render(k, st, n)
        if st.compact and groups and groups[-1][1] == lines:
            groups[-1] = (groups[-1][0] + 1, lines)
        else:
            groups.append((1, lines))
    subs = []
    for count, lines in groups:
        if count > 1:
            lines = [f"{count}*[{lines[0]}"] + ["   " + x for x in lines[1:]]
            lines[-1] += "]"
        subs.append(lines)
    if not subs:
        return [label]
    if st.args:
        out = [label]
        for i, lines in enumerate(subs):
            last = i == len(subs) - 1
            out.append("  " + (st.corner if last else st.tee) + lines[0])
            out += ["  " + ("  " if last else st.bar + " ") + x for x in lines[1:]]
        return out
    if len(subs) == 1:
        lines = subs[0]
        return [label + st.single + lines[0]] + [" " * (len(label) + 3) + x for x in lines[1:]]
    pad = " " * (len(label) + 1)
    out = []
    for i, lines in enumerate(subs):
        last = i == len(subs) - 1
        if i == 0:
            out.append(label + st.first + lines[0])
        else:
            out.append(pad + (st.corner if last else st.tee) + lines[0])
        out += [pad + ("  " if last else st.bar + " ") + x for x in lines[1:]]
    return out


async def prog_pstree(ctx: Any) -> int:
    args = await parse_or_exit(ctx, PSTREE)
    if isinstance(args, int):
        return args
    names = IdNames()
    await names.load(ctx)
    tasks = await read_tasks(ctx)
    nodes = {t.pid: _Node(t) for t in tasks}
    for t in tasks:
        parent = nodes.get(t.ppid)
        if parent is not None and t.ppid != t.pid:
            parent.kids.append(nodes[t.pid])
    roots: list[_Node] = []
    if len(args.operands) > 1:
        await ctx.write_all(2, f"Usage: pstree {PSTREE.usage}\n")
        return 1
    if args.operands:
        op = args.operands[0]
        if op.isdigit():
            node = nodes.get(int(op))
            roots = [node] if node is not None else []  # psmisc: no such pid prints nothing
        else:
            uid = names.uid_of(op)
            if uid is None and op == "root":
                uid = 0
            if uid is None:
                await error(ctx, "pstree", "No such user name: " + op)
                return 1
            roots = _user_roots(nodes, uid)
    else:
        roots = [nodes[1]] if 1 in nodes else [n for n in nodes.values() if n.task.ppid not in nodes]
    st = _Style(pids=bool(args.get("show_pids")), pgids=bool(args.get("show_pgids")),
                args=bool(args.get("arguments")), numeric=bool(args.get("numeric_sort")),
                compact=not (args.get("compact_not") or args.get("show_pids") or args.get("show_pgids")
                             or args.get("arguments")),
                uid_changes=bool(args.get("uid_changes")), names=names,
                unicode=bool(args.get("unicode")) and not args.get("ascii"))
    out = Writer(ctx)
    for root in roots:
        for line in _render(root, st):
            await out.write(line + "\n")
    await out.flush()
    return 0


def _user_roots(nodes: dict[int, _Node], uid: int) -> list[_Node]:
    """``pstree USER``: the topmost processes of *uid* (whose parent is someone else's)."""
    out = []
    for n in sorted(nodes.values(), key=lambda n: n.task.pid):
        parent = nodes.get(n.task.ppid)
        if n.task.euid == uid and (parent is None or parent.task.euid != uid):
            out.append(n)
    return out


# ---- top -b ------------------------------------------------------------------------------
TOP = Spec("top", "-hv | -bcEeHiOSs1 -d secs -n max -u|U user -p pid(s) -o field -w [cols]",
           "Display Linux processes.", [
               Opt("b", None, help="batch mode"),
               Opt("n", None, arg="max", help="number of iterations"),
               Opt("d", None, arg="secs", help="delay between updates"),
               Opt("p", None, arg="pids", dest="pids", action="append", help="monitor these pids"),
               Opt("u", None, arg="user", help="only processes of this effective user"),
               Opt("U", None, arg="user", help="only processes of this user"),
               Opt("c", None, help="show command lines"),
               Opt("o", None, arg="field", help="sort on this field"),
               Opt("w", None, arg="cols", optional_arg=True, help="output width"),
               Opt("i", None, help="idle processes are not shown"),
               Opt("E", None, arg="unit", help="memory unit of the summary (k m g t p e)"),
               Opt("H", None, help="threads mode"),
               Opt("S", None, help="cumulative time mode"),
               Opt("1", None, help="per-cpu states"),
           ], help_option=False)

_STATE_GROUP = {"R": "running", "S": "sleeping", "D": "sleeping", "I": "sleeping", "T": "stopped",
                "t": "stopped", "Z": "zombie"}
_UNITS = {"k": ("KiB", 0), "m": ("MiB", 1), "g": ("GiB", 2), "t": ("TiB", 3), "p": ("PiB", 4),
          "e": ("EiB", 5)}


def _cpu_line(cpu: list[int], prev: list[int] | None) -> str:
    now = (cpu + [0] * 8)[:8]
    delta = [a - b for a, b in zip(now, prev)] if prev else now
    total = sum(delta) or 1
    us, ni, sy, idle, wa, hi, si, st = (100 * x / total for x in delta)
    if not sum(delta):
        idle = 100.0
    return (f"%Cpu(s):{us:5.1f} us,{sy:5.1f} sy,{ni:5.1f} ni,{idle:5.1f} id,{wa:5.1f} wa,"
            f"{hi:5.1f} hi,{si:5.1f} si,{st:5.1f} st ")


def _top_time(ticks: int) -> str:
    secs, hundredths = divmod(ticks * 100 // HZ, 100)
    return f"{secs // 60}:{secs % 60:02d}.{hundredths:02d}"


async def top_frame(ctx: Any, tasks: list[Task], m: Machine, prev_cpu: list[int] | None,
                    names: IdNames, pid_width: int, unit: str, full: bool, tz: Any,
                    shared: dict[int, int], sort: str, pcpu: dict[int, float]) -> list[str]:
    """One frame; *pcpu* is each task's CPU share since the previous frame (top's %CPU:
    none yet on the first, as top shows 0.0 there)."""
    label, power = _UNITS.get(unit, _UNITS["m"])
    div = 1024 ** power

    def mem(kb: int) -> float:
        return kb / div

    f = mem_figures(m)
    counts = {"running": 0, "sleeping": 0, "stopped": 0, "zombie": 0}
    for t in tasks:
        group = _STATE_GROUP.get(t.state)
        if group:
            counts[group] += 1
    lines = [
        "top - " + uptime_line(time.time(), m, tz).lstrip(),
        f"Tasks:{len(tasks):4d} total,{counts['running']:4d} running,{counts['sleeping']:4d} sleeping,"
        f"{counts['stopped']:4d} stopped,{counts['zombie']:4d} zombie",
        _cpu_line(m.cpu, prev_cpu),
        f"{label} Mem :{mem(f.total):9.1f} total,{mem(f.free):9.1f} free,{mem(f.used):9.1f} used,"
        f"{mem(f.buffers + f.cache):9.1f} buff/cache     ",
        f"{label} Swap:{mem(f.swap_total):9.1f} total,{mem(f.swap_free):9.1f} free,"
        f"{mem(f.swap_total - f.swap_free):9.1f} used.{mem(f.available):9.1f} avail Mem ",
        "",
        f"{'PID':>{pid_width}} USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND",
    ]
    total_kb = f.total or 1
    keyed = {
        "PID": lambda t: -t.pid, "%MEM": lambda t: t.vm_rss_kb, "RES": lambda t: t.vm_rss_kb,
        "VIRT": lambda t: t.vsize, "TIME+": lambda t: t.cpu_ticks, "%CPU": lambda t: pcpu.get(t.pid, 0.0),
        "COMMAND": lambda t: t.comm,
    }
    order = sorted(tasks, key=lambda t: t.pid)
    if sort in keyed:
        order = sorted(order, key=keyed[sort], reverse=sort != "COMMAND")
    for t in order:
        pr = str(t.priority) if t.priority >= -99 else "rt"
        cmd = (" ".join(t.cmdline) if full and t.cmdline else t.comm)
        lines.append(f"{t.pid:>{pid_width}} {user_name(names, t.euid)[:8]:<8} {pr:>3} {t.nice:>3} "
                     f"{t.vsize // 1024:>7} {t.vm_rss_kb:>6} {shared.get(t.pid, 0):>6} {t.state} "
                     f"{pcpu.get(t.pid, 0.0):5.1f} {100 * t.vm_rss_kb / total_kb:5.1f} "
                     f"{_top_time(t.cpu_ticks):>9} {cmd}")
    return lines


async def _shared_kb(ctx: Any, pid: int) -> int:
    data = await read_file(ctx, f"/proc/{pid}/statm")
    try:
        return int((data or b"").split()[2]) * 4
    except (IndexError, ValueError):
        return 0


async def prog_top(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TOP)
    if isinstance(args, int):
        return args
    try:
        frames = int(args.get("n", "0"))
        delay = float(args.get("d", "3"))
        if delay < 0:
            raise ValueError
    except ValueError:
        await error(ctx, "top", "bad iterations or delay argument")
        return 1
    if not args.get("b") and not ctx.isatty(1):
        await error(ctx, "top", "failed tty get")
        return 1
    names = IdNames()
    await names.load(ctx)
    pids: set[int] = set()
    for value in args.get("pids", []):
        for item in value.split(","):
            if not item.isdigit():
                await error(ctx, "top", f"bad pid '{item}'")
                return 1
            pids.add(int(item))
    who = args.get("u") or args.get("U")
    uid = None
    if who is not None:
        uid = 0 if who == "root" else names.uid_of(who)
        if uid is None:
            await error(ctx, "top", f"Invalid user: {who}")
            return 1
    width = len(str(await pid_max(ctx)))
    tz = zone_of(ctx)
    unit = str(args.get("E", "m")).lower()
    sort = str(args.get("o", "%CPU")).lstrip("+-").upper()
    me = ctx.getpid()
    out = Writer(ctx)
    screen = None if args.get("b") else await _Screen.open(ctx)
    try:
        return await _top_loop(ctx, args, screen, frames, delay, pids, uid, names, width, tz, unit,
                               sort, me, out)
    finally:
        if screen is not None:
            await screen.close()


class _Screen:
    """top's full-screen mode on a terminal: no echo, keys one at a time, each frame drawn
    from the top-left corner and cut to the window; ``q`` (or ^C, ^D) quits."""

    def __init__(self, ctx: Any, saved: Any) -> None:
        self.ctx, self.saved = ctx, saved

    @classmethod
    async def open(cls, ctx: Any) -> "_Screen":
        saved = ctx.tcgetattr(0) if ctx.isatty(0) else None
        if saved is not None:
            raw = ctx.tcgetattr(0)
            raw.icanon = raw.echo = False
            await ctx.tcsetattr(0, raw)
        return cls(ctx, saved)

    def size(self) -> tuple[int, int]:
        try:
            rows, cols = self.ctx.get_winsize(1)
            return rows or 24, cols or 80
        except KernelError:
            return 24, 80

    async def draw(self, lines: list[str]) -> None:
        rows, cols = self.size()
        body = "\n".join(line[:cols] for line in lines[:rows])
        await self.ctx.write_all(1, "\x1b[H\x1b[2J" + body)

    async def wait_key(self, delay: float) -> bool:
        """Wait up to *delay* seconds for a key; True when it asks to quit."""
        if self.saved is None:
            await self.ctx.sleep(delay)
            return False
        try:
            ready = await self.ctx.poll([(0, 0x001)], delay)  # POLLIN
        except KernelError:
            return False
        if not ready:
            return False
        key = await self.ctx.read(0, 64)
        return not key or key[:1] in (b"q", b"Q", b"\x03", b"\x04")

    async def close(self) -> None:
        await self.ctx.write_all(1, "\n")
        if self.saved is not None:
            await self.ctx.tcsetattr(0, self.saved)


async def _top_loop(ctx: Any, args: Any, screen: _Screen | None, frames: int, delay: float,
                    pids: set[int], uid: int | None, names: IdNames, width: int, tz: Any, unit: str,
                    sort: str, me: int, out: Writer) -> int:
    prev: list[int] | None = None
    prev_ticks: dict[int, int] | None = None
    prev_uptime = 0.0
    n = 0
    while True:
        m = await read_machine(ctx)
        tasks = [t for t in await read_tasks(ctx)
                 if (not pids or t.pid in pids) and (uid is None or t.euid == uid or t.uid == uid)
                 and (not args.get("i") or t.state != "S" or t.pid == me)]
        shared = {t.pid: await _shared_kb(ctx, t.pid) for t in tasks}
        pcpu: dict[int, float] = {}
        if prev_ticks is not None and m.uptime > prev_uptime:
            span = (m.uptime - prev_uptime) * HZ
            pcpu = {t.pid: 100.0 * max(0, t.cpu_ticks - prev_ticks.get(t.pid, 0)) / span for t in tasks}
        lines = await top_frame(ctx, tasks, m, prev, names, width, unit, bool(args.get("c")),
                                tz, shared, sort, pcpu)
        if screen is not None:
            await screen.draw(lines)
        else:
            for line in lines:
                await out.write(line + "\n")
        prev = m.cpu
        prev_ticks, prev_uptime = {t.pid: t.cpu_ticks for t in tasks}, m.uptime
        n += 1
        if frames and n >= frames:
            break
        if screen is not None:
            if await screen.wait_key(delay):
                break
            continue
        await out.write("\n")
        await out.flush()
        await (ctx.sched_yield() if delay == 0 else ctx.sleep(delay))
    await out.flush()
    return 0


PROGRAMS = {"uptime": prog_uptime, "free": prog_free, "pstree": prog_pstree, "top": prog_top}
