"""``kill``, ``pgrep`` and ``pkill``: signals by pid or by name, procps's options and exit
statuses (kill 0/1; pgrep 0 matched, 1 none, 2 bad usage, 3 fatal).

A pid outside the sandbox does not exist for it: ``kill`` of one is ESRCH like any other.
"""

from __future__ import annotations

from typing import Any

from kernel.errors import KernelError
from kernel.programs import posixre
from kernel.programs import procps_signals as sigs
from kernel.programs.common import IdNames, Writer, error, strerror
from kernel.programs.procps_proc import Task, read_tasks

KILL_USAGE = """
Usage:
 kill [options] <pid> [...]

Options:
 <pid> [...]            send signal to every <pid> listed
 -<signal>, -s, --signal <signal>
                        specify the <signal> to be sent
 -q, --queue <value>    integer value to be sent with the signal
 -l, --list=[<signal>]  list all signal names, or convert one to a name
 -L, --table            list all signal names in a nice table

 -h, --help     display this help and exit
 -V, --version  output version information and exit

For more details see kill(1).
"""


async def _list_one(ctx: Any, spec: str) -> int:
    """``kill -l SPEC``: a number gives its name, a name its number."""
    if spec.isdigit():
        n = int(spec)
        nm = sigs.name(n)
        if nm is None:
            await error(ctx, "kill", f"unknown signal name {spec}")
            return 0
        await ctx.write_all(1, nm + "\n")
        return 0
    n2 = sigs.number(spec)
    if n2 is None or n2 == 0 or spec.isdigit():
        await error(ctx, "kill", f"unknown signal name {spec}")
        return 0
    await ctx.write_all(1, f"{n2}\n")
    return 0


async def prog_kill(ctx: Any) -> int:
    argv = list(ctx.argv[1:])
    sig = 15
    i = 0

    async def usage() -> int:
        await ctx.write_all(2, KILL_USAGE)
        return 1

    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        if a in ("-l", "--list") or a.startswith("--list=") or (a.startswith("-l") and len(a) > 2):
            spec = a[2:] if a.startswith("-l") and len(a) > 2 else a.partition("=")[2]
            if not spec and i + 1 < len(argv):
                spec = argv[i + 1]
            if spec:
                return await _list_one(ctx, spec)
            await ctx.write_all(1, sigs.list_text())
            return 0
        if a in ("-L", "--table"):
            await ctx.write_all(1, sigs.table_text())
            return 0
        if a in ("-h", "--help"):
            await ctx.write_all(1, KILL_USAGE)
            return 0
        if a in ("-V", "--version"):
            await ctx.write_all(1, "kill from procps-ng 4.0.2 (vfsfuse)\n")
            return 0
        if a in ("-s", "--signal") or a.startswith("--signal=") or (a.startswith("-s") and len(a) > 2):
            if a.startswith("--signal="):
                spec = a.partition("=")[2]
            elif a.startswith("-s") and len(a) > 2:
                spec = a[2:]
            else:
                if i + 1 >= len(argv) or i + 2 >= len(argv):
                    return await usage()
                i += 1
                spec = argv[i]
            n = sigs.number(spec)
            if n is None:
                await error(ctx, "kill", f"unknown signal name {spec}")
                return 1
            sig = n
            i += 1
            continue
        if a in ("-q", "--queue"):
            i += 2
            continue
        n = sigs.number(a[1:])
        if n is None:
            if a[1:].lstrip("-").isdigit():
                break  # a negative pid: a process group
            await error(ctx, "kill", f"invalid argument {a[1]}")
            return await usage()
        sig = n
        i += 1
    pids = argv[i:]
    if not pids:
        return await usage()
    status = 0
    for p in pids:
        try:
            pid = int(p)
        except ValueError:
            await error(ctx, "kill", f"failed to parse argument: '{p}'")
            status = 1
            continue
        try:
            await ctx.kill(pid, sig)
        except KernelError as e:
            await error(ctx, "kill", f"({pid}): {strerror(e)}")
            status = 1
    return status


# ---- pgrep / pkill -----------------------------------------------------------------------
class PgrepError(Exception):
    """Bad usage: the message, exit status 2."""


def _ids(value: str, names: IdNames, users: bool) -> set[int]:
    out = set()
    for item in value.split(","):
        if not item:
            continue
        if item.isdigit():
            out.add(int(item))
            continue
        num = names.uid_of(item) if users else names.gid_of(item)
        if num is None and item == "root":
            num = 0
        if num is None:
            raise PgrepError(f"invalid user name: {item}" if users else f"invalid group name: {item}")
        out.add(num)
    return out


def _nums(value: str, what: str) -> set[int]:
    out = set()
    for item in value.split(","):
        if item == "" or not item.lstrip("-").isdigit():
            raise PgrepError(f"invalid {what}: {value}" if what else value)
        out.add(int(item))
    return out


PGREP_LONG = {"delimiter": "d", "list-name": "l", "list-full": "a", "inverse": "v", "count": "c",
              "full": "f", "pgroup": "g", "group": "G", "ignore-case": "i", "newest": "n",
              "oldest": "o", "parent": "P", "session": "s", "terminal": "t", "euid": "u",
              "uid": "U", "exact": "x", "echo": "e", "signal": "SIG", "runstates": "r",
              "help": "h", "version": "V", "lightweight": "w"}
_WITH_ARG = set("dgGPstuUr") | {"SIG"}


async def _pgrep(ctx: Any, kill: bool) -> int:
    prog = "pkill" if kill else "pgrep"
    argv = list(ctx.argv[1:])
    opts: dict[str, Any] = {"d": "\n"}
    sig = 15
    sig_seen = False
    pattern: str | None = None
    names = IdNames()
    await names.load(ctx)
    try:
        i = 0
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--":
                if i < len(argv) and pattern is None:
                    pattern = argv[i]
                    i += 1
                if i < len(argv):
                    raise PgrepError("only one pattern can be provided")
                break
            if a.startswith("--") and len(a) > 2:
                name, eq, value = a[2:].partition("=")
                letter = PGREP_LONG.get(name)
                if letter is None:
                    raise PgrepError(f"unrecognized option '{a}'")
                if letter in _WITH_ARG and not eq:
                    if i >= len(argv):
                        raise PgrepError(f"option '{a}' requires an argument")
                    value = argv[i]
                    i += 1
                if letter == "SIG":
                    n = sigs.number(value)
                    if n is None:
                        raise PgrepError(f"Unknown signal \"{value}\".")
                    sig = n
                else:
                    opts[letter] = value if letter in _WITH_ARG else True
                continue
            if a.startswith("-") and len(a) > 1:
                if kill and not sig_seen and sigs.number(a[1:]) is not None:
                    sig, sig_seen = sigs.number(a[1:]) or 0, True
                    continue
                j = 1
                while j < len(a):
                    ch = a[j]
                    j += 1
                    allowed = "dlavcfgGinoPstuUxrhVw" if not kill else "cfgGinoPstuUxervhVw"
                    if ch not in allowed:
                        raise PgrepError(f"invalid option -- '{ch}'")
                    if ch in _WITH_ARG:
                        if j < len(a):
                            value = a[j:]
                        elif i < len(argv):
                            value = argv[i]
                            i += 1
                        else:
                            raise PgrepError(f"option requires an argument -- '{ch}'")
                        opts[ch] = value
                        break
                    opts[ch] = True
                continue
            if pattern is not None:
                raise PgrepError("only one pattern can be provided")
            pattern = a
        if opts.get("h"):
            await ctx.write_all(1, f"\nUsage:\n {prog} [options] <pattern>\n")
            return 0
        if opts.get("V"):
            await ctx.write_all(1, f"{prog} from procps-ng 4.0.2 (vfsfuse)\n")
            return 0
        criteria = {k: opts[k] for k in "gGPstuUr" if k in opts}
        if pattern is None and not criteria:
            raise PgrepError("no matching criteria specified")
        sel = _Selection(opts, criteria, names)
        rx = None
        if pattern is not None:
            try:
                rx = posixre.compile(pattern, extended=True, dialect="posix", icase=bool(opts.get("i")))
            except KernelError as e:
                await error(ctx, prog, e.message)
                return 2
    except PgrepError as e:
        await error(ctx, prog, f"{e}\nTry `{prog} --help' for more information.")
        return 2
    me = ctx.getpid()
    tasks = [t for t in await read_tasks(ctx) if t.pid != me]
    invert = bool(opts.get("v"))  # -v negates the whole match, criteria included (procps)
    matched = [t for t in tasks if (sel.matches(t) and _name_matches(rx, t, opts)) != invert]
    if opts.get("n") and matched:
        matched = [max(matched, key=lambda t: (t.start_ticks, t.pid))]
    elif opts.get("o") and matched:
        matched = [min(matched, key=lambda t: (t.start_ticks, t.pid))]
    out = Writer(ctx)
    if not matched and pattern is not None and len(pattern) > 15 and not opts.get("f"):
        await error(ctx, prog, "pattern that searches for process name longer than 15 characters will "
                               f"result in zero matches\nTry `{prog} -f' option to match against the "
                               "complete command line.")
    if kill:
        status = 1
        for t in matched:
            try:
                await ctx.kill(t.pid, sig)
            except KernelError as e:
                await out.flush()
                await error(ctx, prog, f"killing pid {t.pid} failed: {strerror(e)}")
                continue
            status = 0
            if opts.get("e"):
                await out.write(f"{t.comm} killed (pid {t.pid})\n")
        if opts.get("c"):
            await out.write(f"{len(matched)}\n")
        await out.flush()
        return status if matched else 1
    if opts.get("c"):
        await out.write(f"{len(matched)}\n")
    else:
        items = []
        for t in matched:
            if opts.get("a"):
                items.append(f"{t.pid} {' '.join(t.cmdline) if t.cmdline else t.comm}")
            elif opts.get("l"):
                items.append(f"{t.pid} {t.comm}")
            else:
                items.append(str(t.pid))
        if items:
            await out.write(opts["d"].join(items) + "\n")
    await out.flush()
    return 0 if matched else 1


def _name_matches(rx: Any, t: Task, opts: dict[str, Any]) -> bool:
    if rx is None:
        return True
    text = " ".join(t.cmdline) if opts.get("f") and t.cmdline else t.comm
    data = text.encode(errors="surrogateescape")
    if opts.get("x"):
        return rx.fullmatch(data) is not None
    return rx.search(data) is not None


class _Selection:
    """pgrep's criteria other than the pattern (all must hold)."""

    def __init__(self, opts: dict[str, Any], criteria: dict[str, str], names: IdNames) -> None:
        self.euids = _ids(criteria["u"], names, True) if "u" in criteria else None
        self.uids = _ids(criteria["U"], names, True) if "U" in criteria else None
        self.gids = _ids(criteria["G"], names, False) if "G" in criteria else None
        self.ppids = _nums(criteria["P"], "") if "P" in criteria else None
        self.pgids = _nums(criteria["g"], "") if "g" in criteria else None
        self.sids = _nums(criteria["s"], "") if "s" in criteria else None
        self.ttys = set(criteria["t"].split(",")) if "t" in criteria else None
        self.states = criteria.get("r")
        self.names = names

    def matches(self, t: Task) -> bool:
        if self.euids is not None and t.euid not in self.euids:
            return False
        if self.uids is not None and t.uid not in self.uids:
            return False
        if self.gids is not None and t.gid not in self.gids:
            return False
        if self.ppids is not None and t.ppid not in self.ppids:
            return False
        if self.pgids is not None and t.pgid not in self.pgids:
            return False
        if self.sids is not None and t.sid not in self.sids:
            return False
        if self.ttys is not None and t.tty.removeprefix("/dev/") not in {
                x.removeprefix("/dev/") for x in self.ttys}:
            return False
        if self.states is not None and t.state not in self.states:
            return False
        return True


async def prog_pgrep(ctx: Any) -> int:
    return await _pgrep(ctx, kill=False)


async def prog_pkill(ctx: Any) -> int:
    return await _pgrep(ctx, kill=True)


PROGRAMS = {"kill": prog_kill, "pgrep": prog_pgrep, "pkill": prog_pkill}
