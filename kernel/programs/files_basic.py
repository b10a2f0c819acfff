"""Small file programs: cat, basename, dirname, pwd, readlink, realpath, sync, mkdir, rmdir,
touch, truncate, mktemp — each a GNU coreutils look-alike over ``ctx`` only."""

from __future__ import annotations

import calendar
import re
import secrets
import time
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, Writer, fsencode, quote, strerror
from kernel.programs.files_base import (
    Tool,
    base_name,
    dir_name,
    join,
    lstat_or_none,
    parse_mode,
    parse_size,
)
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.syscalls import O_CREAT, O_EXCL, O_RDWR, O_WRONLY

# ============================================================================ cat

CAT = Spec("cat", "[OPTION]... [FILE]...", "Concatenate FILE(s) to standard output.", [
    Opt("A", "show-all", help="equivalent to -vET"),
    Opt("b", "number-nonblank", help="number nonempty output lines, overrides -n"),
    Opt("e", None, help="equivalent to -vE"),
    Opt("E", "show-ends", help="display $ at end of each line"),
    Opt("n", "number", help="number all output lines"),
    Opt("s", "squeeze-blank", help="suppress repeated empty output lines"),
    Opt("t", None, help="equivalent to -vT"),
    Opt("T", "show-tabs", help="display TAB characters as ^I"),
    Opt("u", None, help="(ignored)"),
    Opt("v", "show-nonprinting", help="use ^ and M- notation, except for LFD and TAB"),
])


def _nonprinting_table(tabs: bool) -> list[bytes]:
    """cat -v's rendering of each byte (``^X``, ``M-x``, ``^?``); newline is left alone."""
    table = []
    for c in range(256):
        prefix = b""
        low = c
        if c >= 128:
            prefix, low = b"M-", c - 128
        if low < 32:
            if c == 9 and not tabs:
                out = b"\t"
            elif c == 10:
                out = b"\n"
            else:
                out = prefix + b"^" + bytes([low + 64])
        elif low == 127:
            out = prefix + b"^?"
        else:
            out = prefix + bytes([low])
        table.append(out)
    return table


class _CatState:
    """Line numbering and blank squeezing carry over from one file to the next, as GNU's."""

    def __init__(self) -> None:
        self.number = 0
        self.at_start = True
        self.blank_run = 0


async def prog_cat(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CAT)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "cat")
    show_ends = bool(args.get("show_ends") or args.get("A") or args.get("e") or args.get("show_all"))
    show_tabs = bool(args.get("show_tabs") or args.get("t") or args.get("show_all"))
    nonprint = bool(args.get("show_nonprinting") or args.get("A") or args.get("show_all")
                    or args.get("e") or args.get("t"))
    nonblank = bool(args.get("number_nonblank"))
    number = nonblank or bool(args.get("number"))
    squeeze = bool(args.get("squeeze_blank"))
    plain = not (show_ends or show_tabs or nonprint or number or squeeze)
    table = _nonprinting_table(show_tabs) if nonprint else None
    state = _CatState()
    out = Writer(ctx)
    for name in args.operands or ["-"]:
        try:
            if name == "-":
                fd, own = 0, False
            else:
                fd, own = await ctx.open(name), True
        except KernelError as e:
            await tool.err(f"{fsencode(name).decode('utf-8', 'replace')}: {strerror(e)}")
            continue
        try:
            if plain:
                await out.flush()
                while True:
                    data = await ctx.read(fd, CHUNK)
                    if not data:
                        break
                    await ctx.write_all(1, data)
            else:
                reader = Reader(ctx, fd)
                async for line in reader:
                    await _cat_line(out, line, state, table, show_ends, show_tabs, number,
                                    nonblank, squeeze)
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await out.flush()
            await tool.err(f"{name}: {strerror(e)}")
        finally:
            if own:
                await ctx.close(fd)
    await out.flush()
    return tool.status


async def _cat_line(out: Writer, line: bytes, st: _CatState, table: list[bytes] | None,
                    ends: bool, tabs: bool, number: bool, nonblank: bool, squeeze: bool) -> None:
    has_nl = line.endswith(b"\n")
    body = line[:-1] if has_nl else line
    if st.at_start:
        if not body and has_nl:
            st.blank_run += 1
            if squeeze and st.blank_run > 1:
                return
        else:
            st.blank_run = 0
        if number and not (nonblank and not body and has_nl):
            st.number += 1
            await out.write(f"{st.number:6d}\t")
    if table is not None:
        body = b"".join(table[c] for c in body)
    elif tabs:
        body = body.replace(b"\t", b"^I")
    await out.write(body + ((b"$\n" if ends else b"\n") if has_nl else b""))
    st.at_start = has_nl


# ============================================================================ basename, dirname

BASENAME = Spec("basename", "NAME [SUFFIX]\n  or:  basename OPTION... NAME...",
                "Print NAME with any leading directory components removed.", [
    Opt("a", "multiple", help="support multiple arguments and treat each as a NAME"),
    Opt("s", "suffix", arg="SUFFIX", help="remove a trailing SUFFIX; implies -a"),
    Opt("z", "zero", help="end each output line with NUL, not newline"),
])


async def prog_basename(ctx: Any) -> int:
    args = await parse_or_exit(ctx, BASENAME)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "basename")
    names = args.operands
    if not names:
        return await tool.usage("missing operand")
    suffix = args.get("suffix")
    multiple = bool(args.get("multiple")) or suffix is not None
    if not multiple:
        if len(names) > 2:
            return await tool.usage(f"extra operand {quote(names[2])}")
        if len(names) == 2:
            suffix = names[1]
        names = names[:1]
    end = "\0" if args.get("zero") else "\n"
    out = []
    for n in names:
        b = base_name(n)
        if suffix and b.endswith(suffix) and b != suffix and "/" not in b.rstrip("/") and b != "/":
            b = b[: -len(suffix)]
        out.append(b + end)
    await ctx.write_all(1, fsencode("".join(out)))
    return 0


DIRNAME = Spec("dirname", "[OPTION] NAME...", "Output each NAME with its last non-slash component "
               "and trailing slashes removed.", [
    Opt("z", "zero", help="end each output line with NUL, not newline"),
])


async def prog_dirname(ctx: Any) -> int:
    args = await parse_or_exit(ctx, DIRNAME)
    if isinstance(args, int):
        return args
    if not args.operands:
        return await Tool(ctx, "dirname").usage("missing operand")
    end = "\0" if args.get("zero") else "\n"
    await ctx.write_all(1, fsencode("".join(dir_name(n) + end for n in args.operands)))
    return 0


# ============================================================================ pwd

PWD = Spec("pwd", "[OPTION]...", "Print the full filename of the current working directory.", [
    Opt("L", "logical", help="use PWD from environment, even if it contains symlinks"),
    Opt("P", "physical", help="avoid all symlinks (the default)"),
])


async def prog_pwd(ctx: Any) -> int:
    args = await parse_or_exit(ctx, PWD)
    if isinstance(args, int):
        return args
    cwd = ctx.getcwd()
    logical = False
    for key, _ in args.order:
        if key in ("logical", "physical"):
            logical = key == "logical"
    if logical:
        env = ctx.getenv("PWD")
        if env and env.startswith("/") and not any(p in (".", "..") for p in env.split("/")):
            try:
                a, b = await ctx.stat(env), await ctx.stat(".")
                if a.ino == b.ino:
                    cwd = env
            except KernelError:
                pass
    if args.operands:
        await Tool(ctx, "pwd").err("ignoring non-option arguments")
    await ctx.write_all(1, fsencode(cwd + "\n"))
    return 0


# ============================================================================ readlink, realpath

async def canonicalize(ctx: Any, path: str, need: str, follow: bool = True) -> str:
    """An absolute path without ``.``, ``..`` or (if *follow*) symlinks.  *need*: ``e`` every
    component exists, ``f`` all but the last, ``m`` none need exist (GNU's -e/-f/-m)."""
    if not path:
        raise KernelError("ENOENT", "empty path")
    parts = path.split("/")
    done: list[str] = [] if path.startswith("/") else [p for p in ctx.getcwd().split("/") if p]
    todo = [p for p in parts if p]
    todo.reverse()
    links = 0
    missing = False
    while todo:
        comp = todo.pop()
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join(done + [comp])
        if missing:
            done.append(comp)
            continue
        attr = await lstat_or_none(ctx, current)
        if attr is None:
            if need == "m" or (need == "f" and not todo):
                done.append(comp)
                missing = True
                continue
            try:
                await ctx.lstat(current)
            except KernelError:
                raise
            raise KernelError("ENOENT", current)
        if follow and attr.is_symlink:
            links += 1
            if links > 40:
                raise KernelError("ELOOP", current)
            target = await ctx.readlink(current)
            if target.startswith("/"):
                done = []
            rest = [p for p in target.split("/") if p]
            todo.extend(reversed(rest))
            continue
        done.append(comp)
        if todo and not attr.is_dir and not attr.is_symlink:
            if need == "m":
                missing = True
                continue
            raise KernelError("ENOTDIR", current)
    if need == "e" and not missing:
        pass
    result = "/" + "/".join(done)
    if need != "m" and not missing and path.endswith("/"):
        attr = await lstat_or_none(ctx, result, follow=True)
        if attr is not None and not attr.is_dir:
            raise KernelError("ENOTDIR", result)
    return result


def _lexical(ctx: Any, path: str) -> str:
    """realpath -s: ``.`` and ``..`` removed textually, symlinks kept."""
    done: list[str] = [] if path.startswith("/") else [p for p in ctx.getcwd().split("/") if p]
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if done:
                done.pop()
        else:
            done.append(comp)
    return "/" + "/".join(done)


READLINK = Spec("readlink", "[OPTION]... FILE...", "Print value of a symbolic link or "
                "canonical file name", [
    Opt("f", "canonicalize", help="canonicalize by following every symlink; all but the last "
        "component must exist"),
    Opt("e", "canonicalize-existing", help="canonicalize; all components must exist"),
    Opt("m", "canonicalize-missing", help="canonicalize; without requirements on existence"),
    Opt("n", "no-newline", help="do not output the trailing delimiter"),
    Opt("q", "quiet", help="suppress most error messages (on by default)"),
    Opt("s", "silent", dest="quiet", help="suppress most error messages (on by default)"),
    Opt("v", "verbose", help="report error messages"),
    Opt("z", "zero", help="end each output line with NUL, not newline"),
])


async def prog_readlink(ctx: Any) -> int:
    args = await parse_or_exit(ctx, READLINK)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "readlink")
    if not args.operands:
        return await tool.usage("missing operand")
    need = None
    for key, _ in args.order:
        if key in ("canonicalize", "canonicalize_existing", "canonicalize_missing"):
            need = {"canonicalize": "f", "canonicalize_existing": "e", "canonicalize_missing": "m"}[key]
    verbose = bool(args.get("verbose"))
    end = "\0" if args.get("zero") else "\n"
    no_newline = bool(args.get("no_newline"))
    if no_newline and len(args.operands) > 1:
        await tool.err("ignoring --no-newline with multiple arguments", 0)
        no_newline = False
    out = []
    for name in args.operands:
        try:
            value = await ctx.readlink(name) if need is None else await canonicalize(ctx, name, need)
        except KernelError as e:
            tool.status = 1
            if verbose:
                await tool.err(f"{name}: {strerror(e)}")
            continue
        out.append(value + ("" if no_newline else end))
    await ctx.write_all(1, fsencode("".join(out)))
    return tool.status


REALPATH = Spec("realpath", "[OPTION]... FILE...", "Print the resolved absolute file name;\n"
                "all but the last component must exist", [
    Opt("e", "canonicalize-existing", help="all components of the path must exist"),
    Opt("m", "canonicalize-missing", help="no path components need exist or be a directory"),
    Opt("L", "logical", help="resolve '..' components before symlinks"),
    Opt("P", "physical", help="resolve symlinks as encountered (default)"),
    Opt("q", "quiet", help="suppress most error messages"),
    Opt(None, "relative-to", arg="DIR", help="print the resolved path relative to DIR"),
    Opt(None, "relative-base", arg="DIR", help="print absolute paths unless paths below DIR"),
    Opt("s", "strip", help="don't expand symlinks", dest="strip"),
    Opt(None, "no-symlinks", dest="strip", help="don't expand symlinks"),
    Opt("z", "zero", help="end each output line with NUL, not newline"),
])


def _relative(path: str, base: str) -> str:
    p = [x for x in path.split("/") if x]
    b = [x for x in base.split("/") if x]
    i = 0
    while i < len(p) and i < len(b) and p[i] == b[i]:
        i += 1
    rel = [".."] * (len(b) - i) + p[i:]
    return "/".join(rel) or "."


async def prog_realpath(ctx: Any) -> int:
    args = await parse_or_exit(ctx, REALPATH)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "realpath")
    if not args.operands:
        return await tool.usage("missing operand")
    need = "f"
    for key, _ in args.order:
        if key == "canonicalize_existing":
            need = "e"
        elif key == "canonicalize_missing":
            need = "m"
    strip = bool(args.get("strip"))
    end = "\0" if args.get("zero") else "\n"

    async def resolve(p: str) -> str:
        if strip:
            r = _lexical(ctx, p)
            if need != "m":
                await canonicalize(ctx, r, need, follow=True)
            return r
        return await canonicalize(ctx, p, need)

    rel_to = args.get("relative_to")
    rel_base = args.get("relative_base")
    try:
        if rel_to is not None:
            rel_to = await resolve(rel_to)
        if rel_base is not None:
            rel_base = await resolve(rel_base)
    except KernelError as e:
        await tool.err(f"{rel_to or rel_base}: {strerror(e)}")
        return 1
    if rel_base is not None and rel_to is None:
        rel_to = rel_base
    out = []
    for name in args.operands:
        try:
            r = await resolve(name)
        except KernelError as e:
            if not args.get("quiet"):
                await tool.err(f"{name}: {strerror(e)}")
            else:
                tool.status = 1
            continue
        if rel_to is not None:
            base = rel_base if rel_base is not None else rel_to
            if rel_base is None or r == base or r.startswith(base.rstrip("/") + "/"):
                r = _relative(r, rel_to)
        out.append(r + end)
    await ctx.write_all(1, fsencode("".join(out)))
    return tool.status


# ============================================================================ sync

SYNC = Spec("sync", "[OPTION] [FILE]...", "Synchronize cached writes to persistent storage", [
    Opt("d", "data", help="sync only file data, no unneeded metadata"),
    Opt("f", "file-system", help="sync the file systems that contain the files"),
])


async def prog_sync(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SYNC)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "sync")
    for name in args.operands:
        try:
            fd = await ctx.open(name)
        except KernelError as e:
            await tool.fail("error opening", name, e)
            continue
        try:
            await ctx.fsync(fd)
        except KernelError as e:
            if e.code != "EINVAL":
                await tool.fail("error syncing", name, e)
        finally:
            await ctx.close(fd)
    return tool.status


# ============================================================================ mkdir, rmdir

MKDIR = Spec("mkdir", "[OPTION]... DIRECTORY...", "Create the DIRECTORY(ies), if they do not "
             "already exist.", [
    Opt("m", "mode", arg="MODE", help="set file mode (as in chmod), not a=rwx - umask"),
    Opt("p", "parents", help="no error if existing, make parent directories as needed"),
    Opt("v", "verbose", help="print a message for each created directory"),
])


async def prog_mkdir(ctx: Any) -> int:
    args = await parse_or_exit(ctx, MKDIR)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "mkdir")
    if not args.operands:
        return await tool.usage("missing operand")
    umask = ctx.umask()
    mode = None
    if args.get("mode") is not None:
        try:
            mode = parse_mode(args["mode"], 0o777 & ~umask, True, umask)
        except ValueError:
            await tool.err(f"invalid mode {quote(args['mode'])}")
            return 1
    verbose = bool(args.get("verbose"))
    parents = bool(args.get("parents"))
    for name in args.operands:
        try:
            if parents:
                await mkdir_parents(ctx, tool if verbose else None, name, mode)
            else:
                await ctx.mkdir(name, 0o777)
                if mode is not None:
                    await ctx.chmod(name, mode)
                if verbose:
                    await ctx.write_all(1, fsencode(f"mkdir: created directory {quote(name)}\n"))
        except KernelError as e:
            await tool.fail("cannot create directory", name, e)
    return tool.status


async def mkdir_parents(ctx: Any, verbose: Tool | None, name: str, mode: int | None,
                        parent_mode: int | None = None) -> None:
    """``mkdir -p``: every missing component, parents with u+wx added (as GNU), the last one
    with *mode* (chmod after creation so the umask does not narrow it)."""
    parts = name.split("/")
    prefix = "/" if name.startswith("/") else ""
    comps = [p for p in parts if p]
    for i, comp in enumerate(comps):
        path = prefix + "/".join(comps[: i + 1])
        last = i == len(comps) - 1
        attr = await lstat_or_none(ctx, path, follow=True)
        if attr is not None:
            if not attr.is_dir:
                if last:
                    raise KernelError("EEXIST", path)
                raise KernelError("ENOTDIR", path)
            continue
        if comp in (".", ".."):
            continue
        try:
            await ctx.mkdir(path, 0o777)
        except KernelError as e:
            if e.code == "EEXIST" and is_dir_or_none(await lstat_or_none(ctx, path, follow=True)):
                continue
            raise
        if last and mode is not None:
            await ctx.chmod(path, mode)
        elif not last:
            if parent_mode is not None:
                await ctx.chmod(path, parent_mode)
            else:
                m = (await ctx.stat(path)).mode & 0o7777
                if m & 0o300 != 0o300:
                    await ctx.chmod(path, m | 0o300)
        if verbose is not None:
            verb = "creating" if verbose.prog == "install" else "created"
            await ctx.write_all(1, fsencode(f"{verbose.prog}: {verb} directory {quote(path)}\n"))


def is_dir_or_none(attr: Any) -> bool:
    return attr is not None and attr.is_dir


RMDIR = Spec("rmdir", "[OPTION]... DIRECTORY...", "Remove the DIRECTORY(ies), if they are empty.", [
    Opt(None, "ignore-fail-on-non-empty", help="ignore each failure to remove a non-empty directory"),
    Opt("p", "parents", help="remove DIRECTORY and its ancestors"),
    Opt("v", "verbose", help="output a diagnostic for every directory processed"),
])


async def prog_rmdir(ctx: Any) -> int:
    args = await parse_or_exit(ctx, RMDIR)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "rmdir")
    if not args.operands:
        return await tool.usage("missing operand")
    ignore = bool(args.get("ignore_fail_on_non_empty"))
    verbose = bool(args.get("verbose"))

    async def remove(path: str) -> bool:
        if verbose:
            await ctx.write_all(1, fsencode(f"rmdir: removing directory, {quote(path)}\n"))
        try:
            await ctx.rmdir(path)
            return True
        except KernelError as e:
            if ignore and e.code in ("ENOTEMPTY", "EEXIST"):
                return False
            await tool.fail("failed to remove", path, e)
            return False

    for name in args.operands:
        if not await remove(name):
            continue
        if args.get("parents"):
            path = name.rstrip("/")
            while "/" in path:
                path = path.rsplit("/", 1)[0].rstrip("/")
                if not path:
                    break
                if not await remove(path):
                    break
    return tool.status


# ============================================================================ touch

TOUCH = Spec("touch", "[OPTION]... FILE...", "Update the access and modification times of each "
             "FILE to the current time.", [
    Opt("a", None, help="change only the access time"),
    Opt("c", "no-create", help="do not create any files"),
    Opt("d", "date", arg="STRING", help="parse STRING and use it instead of current time"),
    Opt("f", None, help="(ignored)"),
    Opt("h", "no-dereference", help="affect each symbolic link instead of any referenced file"),
    Opt("m", None, help="change only the modification time"),
    Opt("r", "reference", arg="FILE", help="use this file's times instead of current time"),
    Opt("t", None, arg="STAMP", help="use [[CC]YY]MMDDhhmm[.ss] instead of current time"),
    Opt(None, "time", arg="WORD", help="change the specified time: access, atime, use, modify, mtime"),
])

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


def _tz_offset(ctx: Any, epoch: float) -> float:
    """Seconds east of UTC for the process's $TZ at *epoch* (UTC when unknown)."""
    tz = ctx.getenv("TZ") or "UTC"
    try:
        from datetime import datetime, timezone
        from zoneinfo import ZoneInfo
        off = datetime.fromtimestamp(epoch, timezone.utc).astimezone(ZoneInfo(tz.lstrip(":"))).utcoffset()
        return off.total_seconds() if off else 0.0
    except Exception:  # an unknown zone name behaves as UTC, as glibc does
        return 0.0


def _local_to_epoch(ctx: Any, y: int, mo: int, d: int, h: int, mi: int, s: float) -> float:
    naive = calendar.timegm((y, mo, d, h, mi, int(s), 0, 0, 0)) + (s - int(s))
    return naive - _tz_offset(ctx, naive)


_DATE_RE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$")


def parse_date(ctx: Any, text: str, now: float) -> float:
    """The subset of GNU's date strings people pass to ``touch -d`` and ``find -newermt``:
    ``@EPOCH``, ``now``, ``today``, ``yesterday``, ``tomorrow``, ISO ``YYYY-MM-DD[ HH:MM[:SS[.f]]]``
    with an optional ``Z``/``+HH:MM``, ``N days ago``, ``HH:MM``.  ValueError otherwise."""
    t = text.strip()
    low = t.lower()
    if t.startswith("@"):
        return float(t[1:])
    if low in ("now", "today", ""):
        return now
    if low == "yesterday":
        return now - 86400
    if low == "tomorrow":
        return now + 86400
    m = re.match(r"^(\d+)\s+(second|minute|hour|day|week)s?\s+ago$", low)
    if m:
        unit = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}[m.group(2)]
        return now - int(m.group(1)) * unit
    m = _DATE_RE.match(t)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        h, mi = int(m.group(4) or 0), int(m.group(5) or 0)
        s = float((m.group(6) or "0") + (m.group(7) or ""))
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
            raise ValueError(text)
        zone = m.group(8)
        if zone:
            naive = calendar.timegm((y, mo, d, h, mi, int(s), 0, 0, 0)) + (s - int(s))
            if zone in ("Z", "UTC"):
                return naive
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            return naive - sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return _local_to_epoch(ctx, y, mo, d, h, mi, s)
    m = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", t)
    if m:
        tm = time.gmtime(now + _tz_offset(ctx, now))
        return _local_to_epoch(ctx, tm.tm_year, tm.tm_mon, tm.tm_mday, int(m.group(1)),
                               int(m.group(2)), float(m.group(3) or 0))
    raise ValueError(text)


def parse_stamp(ctx: Any, text: str, now: float) -> float:
    """touch -t ``[[CC]YY]MMDDhhmm[.ss]``."""
    main, _, secs = text.partition(".")
    if not main.isdigit() or (secs and (not secs.isdigit() or len(secs) != 2)):
        raise ValueError(text)
    if len(main) == 8:
        year = time.gmtime(now).tm_year
    elif len(main) == 10:
        yy = int(main[:2])
        year = 1900 + yy if yy >= 69 else 2000 + yy
        main = main[2:]
    elif len(main) == 12:
        year = int(main[:4])
        main = main[4:]
    else:
        raise ValueError(text)
    mo, d, h, mi = int(main[:2]), int(main[2:4]), int(main[4:6]), int(main[6:8])
    s = int(secs or 0)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        raise ValueError(text)
    return _local_to_epoch(ctx, year, mo, d, h, mi, s)


async def prog_touch(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TOUCH)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "touch")
    if not args.operands:
        return await tool.usage("missing file operand")
    now = time.time()
    atime: float | None = None
    mtime: float | None = None
    given = False
    try:
        if args.get("reference") is not None:
            ref = await ctx.stat(args["reference"])
            atime, mtime = ref.atime_ns / 1e9, ref.mtime_ns / 1e9
            given = True
        if args.get("date") is not None:
            base = mtime if mtime is not None else now
            atime = mtime = parse_date(ctx, args["date"], base)
            given = True
        if args.get("t") is not None:
            atime = mtime = parse_stamp(ctx, args["t"], now)
            given = True
    except KernelError as e:
        await tool.fail("failed to get attributes of", args["reference"], e)
        return 1
    except ValueError:
        what = args.get("t") if args.get("t") is not None else args.get("date")
        await tool.err(f"invalid date format {quote(what)}")
        return 1
    only_a = bool(args.get("a"))
    only_m = bool(args.get("m"))
    word = args.get("time")
    if word is not None:
        if word in ("access", "atime", "use"):
            only_a = True
        elif word in ("modify", "mtime"):
            only_m = True
        else:
            await tool.err(f"invalid argument {quote(word)} for '--time'\nValid arguments are:\n"
                           "  - 'atime', 'access', 'use'\n  - 'mtime', 'modify'\n"
                           "Try 'touch --help' for more information.")
            return 1
    if only_a and only_m:
        only_a = only_m = False
    for name in args.operands:
        try:
            if name == "-":
                continue
            attr = await lstat_or_none(ctx, name, follow=True)
            if attr is None:
                if args.get("no_create") or args.get("no_dereference"):
                    continue
                fd = await ctx.open(name, O_WRONLY | O_CREAT, 0o666)
                await ctx.close(fd)
                if not given:
                    continue
                attr = await ctx.stat(name)
            a = atime if given else None
            m = mtime if given else None
            if only_m:
                a = attr.atime_ns / 1e9
            if only_a:
                m = attr.mtime_ns / 1e9
            if not given and (only_a or only_m):
                t = time.time()
                a = t if only_a else a
                m = t if only_m else m
            await ctx.utimes(name, a, m)
        except KernelError as e:
            await tool.fail("cannot touch", name, e)
    return tool.status


# ============================================================================ truncate

TRUNCATE = Spec("truncate", "OPTION... FILE...", "Shrink or extend the size of each FILE to the "
                "specified size", [
    Opt("c", "no-create", help="do not create any files"),
    Opt("o", "io-blocks", help="treat SIZE as number of IO blocks instead of bytes"),
    Opt("r", "reference", arg="RFILE", help="base size on RFILE"),
    Opt("s", "size", arg="SIZE", help="set or adjust the file size by SIZE bytes"),
])


async def prog_truncate(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TRUNCATE)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "truncate")
    size_arg = args.get("size")
    ref = args.get("reference")
    if size_arg is None and ref is None:
        return await tool.usage("you must specify either '--size' or '--reference'")
    if not args.operands:
        return await tool.usage("missing file operand")
    op = ""
    number = 0
    if size_arg is not None:
        text = size_arg.strip()
        if text[:1] in "+-<>/%" and text:
            op, text = text[0], text[1:]
        try:
            number = parse_size(text)
        except ValueError:
            await tool.err(f"Invalid number: {quote(size_arg)}")
            return 1
        if op in "/%" and op and number == 0:
            await tool.err("division by zero")
            return 1
    ref_size = None
    if ref is not None:
        try:
            ref_size = (await ctx.stat(ref)).size
        except KernelError as e:
            await tool.fail("cannot stat", ref, e)
            return 1
        if size_arg is None:
            number, op = ref_size, ""
    for name in args.operands:
        try:
            attr = await lstat_or_none(ctx, name, follow=True)
            if attr is None:
                if args.get("no_create"):
                    continue
                fd = await ctx.open(name, O_WRONLY | O_CREAT, 0o666)
                await ctx.close(fd)
                cur = 0
            else:
                cur = attr.size
            if ref_size is not None and size_arg is not None:
                cur = ref_size
            if op == "":
                new = number
            elif op == "+":
                new = cur + number
            elif op == "-":
                new = max(0, cur - number)
            elif op == "<":
                new = min(cur, number)
            elif op == ">":
                new = max(cur, number)
            elif op == "/":
                new = cur // number * number
            else:
                new = -(-cur // number) * number
            await ctx.truncate(name, new)
        except KernelError as e:
            if e.code == "EISDIR" or (e.code == "EINVAL"):
                await tool.fail("cannot open", name, KernelError("EISDIR"))
            else:
                await tool.fail("cannot open", name, e)
    return tool.status


# ============================================================================ mktemp

MKTEMP = Spec("mktemp", "[OPTION]... [TEMPLATE]", "Create a temporary file or directory, safely, "
              "and print its name.", [
    Opt("d", "directory", help="create a directory, not a file"),
    Opt("u", "dry-run", help="do not create anything; merely print a name (unsafe)"),
    Opt("q", "quiet", help="suppress diagnostics about file/dir-creation failure"),
    Opt(None, "suffix", arg="SUFF", help="append SUFF to TEMPLATE"),
    Opt("p", None, arg="DIR", dest="tmpdir", help="interpret TEMPLATE relative to DIR"),
    Opt(None, "tmpdir", arg="DIR", optional_arg=True, help="likewise; without DIR, $TMPDIR or /tmp"),
    Opt("t", None, help="interpret TEMPLATE as a single file name component, relative to a directory"),
])

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


async def prog_mktemp(ctx: Any) -> int:
    args = await parse_or_exit(ctx, MKTEMP)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "mktemp")
    quiet = bool(args.get("quiet"))

    async def fail(text: str) -> int:
        if not quiet:
            await tool.err(text)
        return 1

    if len(args.operands) > 1:
        return await tool.usage("too many templates")
    template = args.operands[0] if args.operands else None
    implied_tmpdir = template is None
    if template is None:
        template = "tmp.XXXXXXXXXX"
    suffix = args.get("suffix")
    if suffix is None:
        # without --suffix, whatever follows the last X of the last component is the suffix
        last = template.rfind("X")
        if last >= 0 and "/" not in template[last + 1:]:
            suffix, template = template[last + 1:], template[: last + 1]
        else:
            suffix = ""
    elif "/" in suffix:
        return await fail(f"invalid suffix {quote(suffix)}, contains directory separator")
    base = template
    n_x = len(base) - len(base.rstrip("X"))
    if n_x < 3:
        await tool.err(f"too few X's in template {quote(template + (suffix or ''))}")
        return 1
    use_dir = "tmpdir" in args or args.get("t") or implied_tmpdir
    if use_dir:
        if args.get("t"):
            directory = ctx.getenv("TMPDIR") or args.get("tmpdir") or "/tmp"
            if "/" in base:
                return await fail(f"invalid template, {quote(base)}, contains directory separator")
        else:
            directory = args.get("tmpdir") or ctx.getenv("TMPDIR") or "/tmp"
            if base.startswith("/") and not implied_tmpdir:
                return await fail(f"invalid template, {quote(base)}; with --tmpdir, it may not be absolute")
        base = join(directory, base)
    stem = base[: len(base) - n_x]
    for _ in range(100):
        name = stem + "".join(secrets.choice(_ALNUM) for _ in range(n_x)) + (suffix or "")
        try:
            if args.get("dry_run"):
                if await lstat_or_none(ctx, name) is not None:
                    continue
            elif args.get("directory"):
                await ctx.mkdir(name, 0o700)
            else:
                fd = await ctx.open(name, O_RDWR | O_CREAT | O_EXCL, 0o600)
                await ctx.close(fd)
        except KernelError as e:
            if e.code == "EEXIST":
                continue
            kind = "directory" if args.get("directory") else "file"
            return await fail(f"failed to create {kind} via template "
                              f"{quote(stem + 'X' * n_x + (suffix or ''))}: {strerror(e)}")
        await ctx.write_all(1, fsencode(name + "\n"))
        return 0
    return await fail("cannot create a unique name")


MKFIFO = Spec("mkfifo", "[OPTION]... NAME...", "Create named pipes (FIFOs) with the given NAMEs.", [
    Opt("m", "mode", arg="MODE", help="set file permission bits to MODE, not a=rw - umask"),
])


async def prog_mkfifo(ctx: Any) -> int:
    args = await parse_or_exit(ctx, MKFIFO)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "mkfifo")
    if not args.operands:
        return await tool.usage("missing operand")
    mode = None
    if args.get("mode") is not None:
        try:
            mode = parse_mode(args["mode"], 0o666, False)
        except ValueError:
            await tool.err("invalid mode")
            return 1
    for name in args.operands:
        try:
            await ctx.mkfifo(name, 0o666)
            if mode is not None:
                await ctx.chmod(name, mode)
        except KernelError as e:
            await tool.fail("cannot create fifo", name, e)
    return tool.status


PROGRAMS = {
    "mkfifo": prog_mkfifo,
    "cat": prog_cat,
    "basename": prog_basename,
    "dirname": prog_dirname,
    "pwd": prog_pwd,
    "readlink": prog_readlink,
    "realpath": prog_realpath,
    "sync": prog_sync,
    "mkdir": prog_mkdir,
    "rmdir": prog_rmdir,
    "touch": prog_touch,
    "truncate": prog_truncate,
    "mktemp": prog_mktemp,
}
