"""Directory builtins: ``cd pwd pushd popd dirs umask``."""

from __future__ import annotations

from typing import Any

from kernel.errors import KernelError
from kernel.shell.interp import errno_text


def _normalize(path: str) -> str:
    """Logical ``cd``: fold ``.`` and ``..`` textually, as bash does without ``-P``."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)


async def chdir(sh: Any, target: str, physical: bool = False) -> str | None:
    """Change directory; returns the new PWD or None after printing the error."""
    st = sh.st
    pwd = st.get("PWD") or sh.ctx.getcwd()
    if not target.startswith("/"):
        cdpath = st.get("CDPATH")
        base = pwd
        if cdpath and not target.startswith(".") and "/" not in target[:1]:
            for d in cdpath.split(":"):
                cand = _normalize(f"{d or pwd}/{target}") if (d or pwd).startswith("/") else f"{d}/{target}"
                try:
                    a = await sh.ctx.stat(cand)
                    if a.is_dir:
                        base = None
                        target = cand
                        if d:
                            await sh.out(cand + "\n")
                        break
                except KernelError:
                    continue
        if base is not None:
            target = f"{base}/{target}"
    new = target if physical else _normalize(target)
    try:
        await sh.ctx.chdir(new)
    except KernelError as e:
        await sh.error(f"cd: {target if not target.startswith(pwd + '/') else target[len(pwd) + 1:]}: {errno_text(e)}")
        return None
    if physical:
        new = sh.ctx.getcwd()
    try:
        st.set("OLDPWD", pwd)
        st.set("PWD", new)
    except Exception:  # noqa: BLE001 - readonly PWD: bash still changes directory
        pass
    return new


async def b_cd(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    physical = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        if args[0] == "--":
            args = args[1:]
            break
        if all(c in "LPe@" for c in args[0][1:]):
            physical = "P" in args[0]
            args = args[1:]
            continue
        break
    if len(args) > 1:
        await sh.error("cd: too many arguments")
        return 1
    if not args:
        home = sh.st.get("HOME")
        if not home:
            await sh.error("cd: HOME not set")
            return 1
        target = home
    elif args[0] == "-":
        old = sh.st.get("OLDPWD")
        if not old:
            await sh.error("cd: OLDPWD not set")
            return 1
        target = old
        new = await chdir(sh, target, physical)
        if new is None:
            return 1
        await sh.out(new + "\n")
        return 0
    else:
        target = args[0]
    if await chdir(sh, target, physical) is None:
        return 2 if sh.st.posix else 1
    return 0


async def b_pwd(sh: Any, argv: list[str]) -> int:
    if "-P" in argv[1:]:
        await sh.out(sh.ctx.getcwd() + "\n")
        return 0
    pwd = sh.st.get("PWD")
    if not pwd or _normalize(pwd) != pwd:
        pwd = sh.ctx.getcwd()
    await sh.out(pwd + "\n")
    return 0


def _home_short(sh: Any, p: str) -> str:
    home = sh.st.get("HOME")
    if home and (p == home or p.startswith(home + "/")):
        return "~" + p[len(home):]
    return p


async def _print_dirs(sh: Any, long: bool = False, vertical: bool = False) -> None:
    cur = sh.st.get("PWD") or sh.ctx.getcwd()
    items = [cur] + sh.st.dirstack
    if not long:
        items = [_home_short(sh, p) for p in items]
    if vertical:
        await sh.out("".join(f"{i:2d}  {p}\n" for i, p in enumerate(items)))
    else:
        await sh.out(" ".join(items) + "\n")


async def b_pushd(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    st = sh.st
    cur = st.get("PWD") or sh.ctx.getcwd()
    if not args:
        if not st.dirstack:
            await sh.error("pushd: no other directory")
            return 1
        target = st.dirstack[0]
        if await chdir(sh, target) is None:
            return 1
        st.dirstack[0] = cur
        await _print_dirs(sh)
        return 0
    if await chdir(sh, args[0]) is None:
        return 1
    st.dirstack.insert(0, cur)
    await _print_dirs(sh)
    return 0


async def b_popd(sh: Any, argv: list[str]) -> int:
    st = sh.st
    if not st.dirstack:
        await sh.error("popd: directory stack empty")
        return 1
    target = st.dirstack[0]
    if await chdir(sh, target) is None:
        return 1
    st.dirstack.pop(0)
    await _print_dirs(sh)
    return 0


async def b_dirs(sh: Any, argv: list[str]) -> int:
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    if "c" in flags:
        sh.st.dirstack.clear()
        return 0
    await _print_dirs(sh, "l" in flags, "v" in flags or "p" in flags)
    return 0


async def b_umask(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    symbolic = False
    if args and args[0] == "-S":
        symbolic = True
        args = args[1:]
    if not args:
        m = sh.ctx.umask()
        sh.ctx.umask(m)
        if symbolic:
            perm = 0o777 & ~m
            parts = []
            for who, shift in (("u", 6), ("g", 3), ("o", 0)):
                bits = (perm >> shift) & 7
                perms = ("r" if bits & 4 else "") + ("w" if bits & 2 else "") + ("x" if bits & 1 else "")
                parts.append(who + "=" + perms)
            await sh.out(",".join(parts) + "\n")
        else:
            await sh.out(f"{m:04o}\n")
        return 0
    try:
        sh.ctx.umask(int(args[0], 8))
    except ValueError:
        await sh.error(f"umask: {args[0]}: octal number out of range")
        return 1
    return 0


BUILTINS = {"cd": b_cd, "pwd": b_pwd, "pushd": b_pushd, "popd": b_popd, "dirs": b_dirs, "umask": b_umask}
