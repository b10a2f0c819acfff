"""Informational and configuration builtins: ``alias unalias help times ulimit trap shopt
history caller``."""

from __future__ import annotations

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
    await sh.out("0m0.000s 0m0.000s\n0m0.000s 0m0.000s\n")
    return 0


async def b_ulimit(sh: Any, argv: list[str]) -> int:
    kl = sh.ctx.kernel.limits
    args = argv[1:]
    if not args or args == ["-f"] or args == ["-a"]:
        if args == ["-a"]:
            await sh.out(f"open files                          (-n) {kl.max_fds}\n"
                         f"max user processes                  (-u) {kl.max_processes}\n")
        else:
            await sh.out("unlimited\n")
        return 0
    if args[0] == "-n" and len(args) == 1:
        await sh.out(f"{kl.max_fds}\n")
        return 0
    if args[0] == "-u" and len(args) == 1:
        await sh.out(f"{kl.max_processes}\n")
        return 0
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
        for k, v in st.traps.items() if not keys else [(_trap_key(x), st.traps.get(_trap_key(x) or "")) for x in keys]:
            if v is None:
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
    while args and args[0].startswith("-"):
        for c in args[0][1:]:
            if c in "su":
                mode = c
            elif c == "q":
                quiet = True
            elif c == "o":
                use_o = True
            elif c == "p":
                pass
            else:
                await sh.error(f"shopt: -{c}: invalid option")
                return 2
        args = args[1:]
    table = st.options if use_o else st.shopts
    if not args:
        for k in sorted(table):
            if mode is None or table[k] == (mode == "s"):
                await sh.out(f"{k:<15}\t{'on' if table[k] else 'off'}\n" if not quiet else "")
        return 0
    status = 0
    for name in args:
        if name not in table and not (not use_o and name in SHOPT_NAMES):
            await sh.error(f"shopt: {name}: invalid shell option name")
            status = 1
            continue
        if mode is None:
            on = table.get(name, False)
            if not quiet:
                await sh.out(f"{name:<15}\t{'on' if on else 'off'}\n")
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


BUILTINS = {"alias": b_alias, "unalias": b_unalias, "help": b_help, "times": b_times, "ulimit": b_ulimit,
            "trap": b_trap, "shopt": b_shopt, "history": b_history, "caller": b_caller}
