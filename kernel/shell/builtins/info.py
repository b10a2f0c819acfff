"""Informational and configuration builtins: ``alias unalias help times ulimit trap shopt
history caller``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.shell.expand import shell_quote
from kernel.shell.interp import SIGNAL_NAMES, signal_number
from kernel.shell.state import SHOPT_NAMES


async def b_alias(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = [a for a in argv[1:] if a != "-p"]
    if not args:
        for k in sorted(st.aliases):
            await sh.out(f"alias {k}={shell_quote(st.aliases[k])}\n")
        return 0
    status = 0
    for a in args:
        if "=" in a:
            k, _, v = a.partition("=")
            st.aliases[k] = v
        elif a in st.aliases:
            await sh.out(f"alias {a}={shell_quote(st.aliases[a])}\n")
        else:
            await sh.error(f"alias: {a}: not found")
            status = 1
    return status


async def b_unalias(sh: Any, argv: list[str]) -> int:
    st = sh.st
    if "-a" in argv[1:]:
        st.aliases.clear()
        return 0
    status = 0
    for a in argv[1:]:
        if st.aliases.pop(a, None) is None:
            await sh.error(f"unalias: {a}: not found")
            status = 1
    return status


async def b_help(sh: Any, argv: list[str]) -> int:
    names = sorted(sh.builtins)
    if len(argv) > 1:
        hits = [n for n in names if n.startswith(argv[1])]
        if not hits:
            await sh.error(f"help: no help topics match `{argv[1]}'.")
            return 1
        await sh.out("".join(f"{n}: a shell builtin\n" for n in hits))
        return 0
    await sh.out("vfsfuse shell builtins:\n" + " ".join(names) + "\n")
    return 0


async def b_times(sh: Any, argv: list[str]) -> int:
    """The shell's and its children's CPU time (the sandbox counts it all as user time)."""
    own, children = sh.ctx.cpu_times()

    def f(t: float) -> str:
        m, sec = divmod(t, 60.0)
        return f"{int(m)}m{sec:.3f}s"

    await sh.out(f"{f(own)} {f(0.0)}\n{f(children)} {f(0.0)}\n")
    return 0


@dataclass(frozen=True)
class _Rlimit:
    letter: str
    resource: str
    label: str      # bash's description, padded by the table
    unit: str       # "(blocks, -f)" part without the letter
    scale: int      # bytes (or seconds) per unit shown


_RLIMITS = [_Rlimit(*r) for r in (
    ("R", "rttime", "real-time non-blocking time", "microseconds", 1),
    ("c", "core", "core file size", "blocks", 1024),
    ("d", "data", "data seg size", "kbytes", 1024),
    ("e", "nice", "scheduling priority", "", 1),
    ("f", "fsize", "file size", "blocks", 1024),
    ("i", "sigpending", "pending signals", "", 1),
    ("l", "memlock", "max locked memory", "kbytes", 1024),
    ("m", "rss", "max memory size", "kbytes", 1024),
    ("n", "nofile", "open files", "", 1),
    ("p", "pipe", "pipe size", "512 bytes", 512),
    ("q", "msgqueue", "POSIX message queues", "bytes", 1),
    ("r", "rtprio", "real-time priority", "", 1),
    ("s", "stack", "stack size", "kbytes", 1024),
    ("t", "cpu", "cpu time", "seconds", 1),
    ("u", "nproc", "max user processes", "", 1),
    ("v", "as", "virtual memory", "kbytes", 1024),
    ("x", "locks", "file locks", "", 1),
)]
_BY_LETTER = {r.letter: r for r in _RLIMITS}


def _row(r: _Rlimit) -> str:
    unit = f"({r.unit}, -{r.letter})" if r.unit else f"(-{r.letter})"
    return f"{r.label:<20} {unit:>19}"


def _get(sh: Any, r: _Rlimit, hard: bool) -> float | None:
    if r.resource == "pipe":
        return float(sh.ctx.kernel.limits.pipe_buffer)
    soft, hard_v = sh.ctx.getrlimit(r.resource)
    return hard_v if hard else soft


def _show(value: float | None, r: _Rlimit) -> str:
    if value is None:
        return "unlimited"
    return str(int(value // r.scale)) if r.scale > 1 else f"{value:g}" if value != int(value) else str(int(value))


async def b_ulimit(sh: Any, argv: list[str]) -> int:
    """``ulimit [-SHa] [-cdefilmnpqrstuvxR] [limit]``: the process's rlimits (the kernel's
    ``Limits`` are the hard ceiling; ``-t`` and ``-f`` are enforced as Linux does, with
    SIGXCPU and EFBIG/SIGXFSZ; ``-n`` bounds the fd table)."""
    soft_only = hard_only = show_all = False
    chosen: list[_Rlimit] = []
    value: str | None = None
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if len(a) > 1 and a[0] == "-" and not a[1:].isdigit():
            for c in a[1:]:
                if c == "S":
                    soft_only = True
                elif c == "H":
                    hard_only = True
                elif c == "a":
                    show_all = True
                elif c in _BY_LETTER:
                    chosen.append(_BY_LETTER[c])
                else:
                    await sh.error(f"ulimit: -{c}: invalid option")
                    await sh.out("ulimit: usage: ulimit [-SHabcdefiklmnpqrstuvxPRT] [limit]\n", 2)
                    return 2
            i += 1
            continue
        break
    rest = args[i:]
    if rest:
        value = rest[0]
    if show_all:
        for r in _RLIMITS:
            await sh.out(f"{_row(r)} {_show(_get(sh, r, hard_only and not soft_only), r)}\n")
        return 0
    if not chosen:
        chosen = [_BY_LETTER["f"]]
    if value is None:
        many = len(chosen) > 1
        for r in chosen:
            shown = _show(_get(sh, r, hard_only and not soft_only), r)
            await sh.out(f"{_row(r)} {shown}\n" if many else f"{shown}\n")
        return 0
    r = chosen[-1]
    soft, hard = sh.ctx.getrlimit(r.resource) if r.resource != "pipe" else (None, None)
    if value == "unlimited":
        new: float | None = None
    elif value == "hard":
        new = hard
    elif value == "soft":
        new = soft
    elif value.isdigit():
        if len(value) > 18:
            await sh.error(f"ulimit: {value}: limit out of range")
            return 1
        new = float(int(value) * r.scale)
    else:
        await sh.error(f"ulimit: {value}: invalid number")
        return 1
    if r.resource == "pipe":
        await sh.error(f"ulimit: {r.label}: cannot modify limit: Invalid argument")
        return 1
    new_soft = soft if hard_only and not soft_only else new
    new_hard = hard if soft_only and not hard_only else new
    try:
        sh.ctx.setrlimit(r.resource, new_soft, new_hard)
    except KernelError as e:
        text = "Operation not permitted" if e.code == "EPERM" else "Invalid argument"
        await sh.error(f"ulimit: {r.label}: cannot modify limit: {text}")
        return 1
    return 0


def _trap_key(spec: str) -> str | None:
    u = spec.upper()
    if u.startswith("SIG"):
        u = u[3:]
    if u in ("EXIT", "ERR", "DEBUG", "RETURN"):
        return u
    if u == "0":
        return "EXIT"
    n = signal_number(spec)
    if n is None:
        return None
    return "EXIT" if n == 0 else SIGNAL_NAMES[n]


async def b_trap(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] == "-p":
        keys = args[1:] if args else []
        table = st.shown_traps if st.shown_traps is not None else st.traps
        for k, v in table.items() if not keys else [(_trap_key(x), table.get(_trap_key(x) or "")) for x in keys]:
            if v is None or k is None:
                continue
            name = k if k in ("EXIT", "ERR", "DEBUG", "RETURN") else "SIG" + k
            await sh.out(f"trap -- {shell_quote(v)} {name}\n")
        return 0
    if args[0] == "-l":
        await sh.out(" ".join(f"{n}) SIG{SIGNAL_NAMES[n]}" for n in sorted(SIGNAL_NAMES)) + "\n")
        return 0
    if len(args) == 1 or args[0] == "-" or (args[0].isdigit() and signal_number(args[0]) is not None):
        action = None
        specs = args[1:] if args[0] == "-" else args
    else:
        action = args[0]
        specs = args[1:]
    status = 0
    st.shown_traps = None  # this subshell has traps of its own now
    for spec in specs:
        key = _trap_key(spec)
        if key is None:
            await sh.error(f"trap: {spec}: invalid signal specification")
            status = 1
            continue
        if key in ("KILL", "STOP"):
            await sh.error(f"trap: {spec}: cannot trap")
            if action is not None:
                st.traps[key] = action
            continue
        if action is None:
            st.traps.pop(key, None)
        else:
            st.traps[key] = action
        if key in ("EXIT", "ERR", "DEBUG", "RETURN"):
            continue
        sig = signal_number(key)
        try:
            if action is None:
                await sh.ctx.signal(sig, "default")
            elif action == "":
                await sh.ctx.signal(sig, "ignore")
            else:
                await sh.ctx.signal(sig, sh.trap_handler(key))
        except KernelError:
            pass
    return status


async def b_shopt(sh: Any, argv: list[str]) -> int:
    st = sh.st
    args = argv[1:]
    mode = None
    quiet = False
    use_o = False
    reusable = False
    while args and args[0].startswith("-"):
        for c in args[0][1:]:
            if c in "su":
                mode = c
            elif c == "q":
                quiet = True
            elif c == "o":
                use_o = True
            elif c == "p":
                reusable = True
            else:
                await sh.error(f"shopt: -{c}: invalid option")
                return 2
        args = args[1:]
    table = st.options if use_o else st.shopts

    def line(k: str, on: bool) -> str:
        if reusable:
            return f"set {'-' if on else '+'}o {k}\n" if use_o else f"shopt {'-s' if on else '-u'} {k}\n"
        return f"{k:<15}\t{'on' if on else 'off'}\n"

    if not args:
        for k in sorted(table):
            if mode is None or table[k] == (mode == "s"):
                await sh.out(line(k, bool(table[k])) if not quiet else "")
        return 0
    status = 0
    for name in args:
        if name not in table and not (not use_o and name in SHOPT_NAMES):
            await sh.error(f"shopt: {name}: invalid shell option name")
            status = 1
            continue
        if mode is None:
            on = bool(table.get(name, False))
            if not quiet:
                await sh.out(line(name, on))
            if not on:
                status = 1
        else:
            table[name] = mode == "s"
    return status


async def b_history(sh: Any, argv: list[str]) -> int:
    hist = getattr(sh, "history", [])
    if "-c" in argv[1:]:
        hist.clear()
        return 0
    await sh.out("".join(f"{i + 1:5d}  {h}\n" for i, h in enumerate(hist)))
    return 0


async def b_caller(sh: Any, argv: list[str]) -> int:
    st = sh.st
    if not st.funcnames:
        return 1
    n = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else None
    idx = 0 if n is None else n
    if idx >= len(st.call_lines):
        return 1
    line = st.call_lines[idx]
    fn = st.funcnames[idx + 1] if idx + 1 < len(st.funcnames) else "main"
    src = st.sources[0] if st.sources else "main" if False else sh.script_name
    if n is None:
        await sh.out(f"{line} {sh.script_name if not st.sources else st.sources[0]}\n")
    else:
        await sh.out(f"{line} {fn} {src}\n")
    return 0


async def b_enable(sh: Any, argv: list[str]) -> int:
    """``enable`` lists the builtins; ``enable -n NAME`` hides one (PATH finds NAME then),
    ``enable NAME`` brings it back.  Loading builtins from files (``-f``) is not offered."""
    args = argv[1:]
    off = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        for c in args[0][1:]:
            if c == "n":
                off = True
            elif c not in "aps":
                await sh.error(f"enable: -{c}: invalid option")
                return 2
        args = args[1:]
    table = sh.builtins
    every = table.every if isinstance(table, _OwnBuiltins) else table
    if not args:
        names = sorted(set(every) - set(table)) if off else sorted(table)
        await sh.out("".join(f"enable {'-n ' if off else ''}{n}\n" for n in names))
        return 0
    status = 0
    for name in args:
        if name not in every:
            await sh.error(f"enable: {name}: not a shell builtin")
            status = 1
            continue
        if not isinstance(sh.builtins, _OwnBuiltins):
            sh.builtins = _OwnBuiltins(sh.builtins)  # subshells forked later share it
        if off:
            sh.builtins.pop(name, None)
        else:
            sh.builtins[name] = sh.builtins.every[name]
    return status


class _OwnBuiltins(dict):
    """This shell's own copy of the builtin table (``enable -n`` must not touch other shells'),
    with every builtin (``every``) to bring one back."""

    def __init__(self, every: dict) -> None:
        super().__init__(every)
        self.every = dict(every)


_COMPGEN_ACTIONS = {"a": "alias", "b": "builtin", "c": "command", "d": "directory", "e": "export",
                    "f": "file", "k": "keyword", "v": "variable"}


async def b_compgen(sh: Any, argv: list[str]) -> int:
    """The completions of a word (``-W list``, ``-v``, ``-A function`` ...), one a line, as
    bash's programmable completion would give them; 1 when there is none."""
    from kernel.shell.parser import RESERVED_WORDS

    args = argv[1:]
    actions: list[str] = []
    words: str | None = None
    prefix = suffix = ""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        a = args[i]
        if a == "--":
            i += 1
            break
        for j, c in enumerate(a[1:]):
            if c in _COMPGEN_ACTIONS:
                actions.append(_COMPGEN_ACTIONS[c])
                continue
            if c in "AWPSXGFCo":
                val = a[j + 2:] or (args[i + 1] if i + 1 < len(args) else None)
                if val is None:
                    await sh.error(f"compgen: -{c}: option requires an argument")
                    return 2
                if not a[j + 2:]:
                    i += 1
                if c == "A":
                    actions.append(val)
                elif c == "W":
                    words = val
                elif c == "P":
                    prefix = val
                elif c == "S":
                    suffix = val
                break
            await sh.error(f"compgen: -{c}: invalid option")
            return 2
        i += 1
    word = args[i] if i < len(args) else ""
    st = sh.st
    found: list[str] = []
    if words is not None:
        found += [w for w in words.split() if w.startswith(word)]
    for act in actions:
        if act == "function":
            found += sorted(n for n in st.functions if n.startswith(word))
        elif act == "variable":
            found += sorted({k for sc in st.scopes for k, v in sc.items() if k.startswith(word)})
        elif act == "export":
            found += sorted({k for sc in st.scopes for k, v in sc.items() if v.exported and k.startswith(word)})
        elif act == "builtin":
            found += sorted(n for n in sh.builtins if n.startswith(word))
        elif act == "alias":
            found += sorted(n for n in st.aliases if n.startswith(word))
        elif act == "keyword":
            found += sorted(n for n in RESERVED_WORDS if n.startswith(word))
        elif act in ("file", "directory", "command"):
            found += await _compgen_paths(sh, act, word)
        else:
            await sh.error(f"compgen: {act}: invalid action name")
            return 2
    await sh.out("".join(f"{prefix}{w}{suffix}\n" for w in found))
    return 0 if found else 1


async def _compgen_paths(sh: Any, act: str, word: str) -> list[str]:
    """Files, directories or commands (builtins, functions, aliases, PATH) starting with *word*."""
    if act == "command" and "/" not in word:
        names = set(sh.builtins) | set(sh.st.functions) | set(sh.st.aliases)
        for d in (sh.st.get("PATH") or "").split(":"):
            try:
                names.update(await sh.ctx.listdir(d or "."))
            except KernelError:
                continue
        return sorted(n for n in names if n.startswith(word))
    head, _, base = word.rpartition("/")
    d = (head or "/") if "/" in word else "."
    try:
        entries = await sh.ctx.listdir(d)
    except KernelError:
        return []
    out = []
    for e in sorted(entries):
        if not e.startswith(base) or (e.startswith(".") and not base.startswith(".")):
            continue
        path = f"{head}/{e}" if "/" in word else e
        if act == "directory":
            try:
                if not (await sh.ctx.stat(path)).is_dir:
                    continue
            except KernelError:
                continue
        out.append(path)
    return out


BUILTINS = {"compgen": b_compgen, "alias": b_alias, "unalias": b_unalias, "help": b_help, "times": b_times,
            "ulimit": b_ulimit, "trap": b_trap, "shopt": b_shopt, "history": b_history, "caller": b_caller,
            "enable": b_enable}
