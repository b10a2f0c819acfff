"""Who and where: id, whoami, groups, hostname, uname, nproc, tty, which, mount, umount.

Everything comes from the kernel (``ctx``) and the sandbox's own files (``/etc/passwd``,
``/etc/group``, ``/proc``): the host's names, ids and machine never show.  uid and gid 0 are
``root`` even without an ``/etc/passwd`` (the sandbox ships none), as every Linux names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import Reader, error, read_file, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.syscalls import X_OK


# ---- the sandbox's user database ---------------------------------------------------------
@dataclass
class User:
    name: str
    uid: int
    gid: int


@dataclass
class Db:
    """``/etc/passwd`` and ``/etc/group`` of the sandbox, read once."""

    users: list[User] = field(default_factory=list)
    groups: list[tuple[str, int, list[str]]] = field(default_factory=list)

    def user_by_uid(self, uid: int) -> User | None:
        for u in self.users:
            if u.uid == uid:
                return u
        return User("root", 0, 0) if uid == 0 else None

    def user_by_name(self, name: str) -> User | None:
        for u in self.users:
            if u.name == name:
                return u
        return User("root", 0, 0) if name == "root" else None

    def group_name(self, gid: int) -> str | None:
        for name, num, _ in self.groups:
            if num == gid:
                return name
        return "root" if gid == 0 else None

    def member_of(self, user: str) -> list[int]:
        return [num for _, num, members in self.groups if user in members]


async def _lines(ctx: Any, path: str) -> list[list[str]]:
    try:
        fd = await ctx.open(path)
    except KernelError:
        return []
    out = []
    try:
        async for line in Reader(ctx, fd):
            out.append(line.decode(errors="surrogateescape").rstrip("\n").split(":"))
    except KernelError:
        pass
    finally:
        await ctx.close(fd)
    return out


async def load_db(ctx: Any) -> Db:
    db = Db()
    for f in await _lines(ctx, "/etc/passwd"):
        if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
            db.users.append(User(f[0], int(f[2]), int(f[3])))
    for f in await _lines(ctx, "/etc/group"):
        if len(f) >= 3 and f[2].isdigit():
            db.groups.append((f[0], int(f[2]), [m for m in (f[3] if len(f) > 3 else "").split(",") if m]))
    return db


async def process_groups(ctx: Any) -> list[int]:
    """The supplementary groups of this process (``Groups:`` of /proc/self/status)."""
    data = await read_file(ctx, "/proc/self/status")
    for line in (data or b"").decode(errors="replace").splitlines():
        if line.startswith("Groups:"):
            return [int(x) for x in line[7:].split() if x.isdigit()]
    return []


# ---- id ----------------------------------------------------------------------------------
ID = Spec("id", "[OPTION]... [USER]...", "Print user and group information for each specified USER,\n"
          "or (when USER omitted) for the current process.", [
              Opt("a", None, help="ignore, for compatibility with other versions"),
              Opt("g", "group", help="print only the effective group ID"),
              Opt("G", "groups", help="print all group IDs"),
              Opt("n", "name", help="print a name instead of a number, for -ugG"),
              Opt("r", "real", help="print the real ID instead of the effective ID, with -ugG"),
              Opt("u", "user", help="print only the effective user ID"),
              Opt("z", "zero", help="delimit entries with NUL characters, not whitespace"),
          ])


async def prog_id(ctx: Any) -> int:
    args = await parse_or_exit(ctx, ID)
    if isinstance(args, int):
        return args
    only = [k for k in ("user", "group", "groups") if args.get(k)]
    if len(only) > 1:
        await error(ctx, "id", "cannot print \"only\" of more than one choice")
        return 1
    if not only and (args.get("name") or args.get("real")):
        await error(ctx, "id", "cannot print only names or real IDs in default format")
        return 1
    if not only and args.get("zero"):
        await error(ctx, "id", "option --zero not permitted in default format")
        return 1
    db = await load_db(ctx)
    targets: list[tuple[int, int, list[int], str | None]] = []
    status = 0
    if not args.operands:
        uid, gid = ctx.getuid(), ctx.getgid()
        groups = [gid] + [g for g in await process_groups(ctx) if g != gid]
        targets.append((uid, gid, groups, None))
    for op in args.operands:
        user = db.user_by_name(op) or (db.user_by_uid(int(op)) if op.isdigit() else None)
        if user is None:
            await error(ctx, "id", f"'{op}': no such user")
            status = 1
            continue
        groups = [user.gid] + [g for g in db.member_of(user.name) if g != user.gid]
        targets.append((user.uid, user.gid, groups, user.name))
    out = []
    for uid, gid, groups, _ in targets:
        if only:
            kind = only[0]
            ids = [uid] if kind == "user" else [gid] if kind == "group" else groups
            names = []
            for num in ids:
                if not args.get("name"):
                    names.append(str(num))
                    continue
                found = db.user_by_uid(num)
                nm = (found.name if found else None) if kind == "user" else db.group_name(num)
                if nm is None:
                    await error(ctx, "id", f"cannot find name for {'user' if kind == 'user' else 'group'} ID {num}")
                    status = 1
                    nm = str(num)
                names.append(nm)
            out.append("".join(n + "\0" for n in names) if args.get("zero") else " ".join(names) + "\n")
        else:
            u = db.user_by_uid(uid)
            text = f"uid={uid}" + (f"({u.name})" if u else "")
            gn = db.group_name(gid)
            text += f" gid={gid}" + (f"({gn})" if gn else "")
            text += " groups=" + ",".join(f"{g}" + (f"({db.group_name(g)})" if db.group_name(g) else "")
                                          for g in groups)
            out.append(text + "\n")
    await ctx.write_all(1, "".join(out).encode(errors="surrogateescape"))
    return status


WHOAMI = Spec("whoami", "[OPTION]...", "Print the user name associated with the current effective user ID.", [])


async def prog_whoami(ctx: Any) -> int:
    args = await parse_or_exit(ctx, WHOAMI)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "whoami", f"extra operand '{args.operands[0]}'\n"
                                   "Try 'whoami --help' for more information.")
        return 1
    db = await load_db(ctx)
    uid = ctx.getuid()
    user = db.user_by_uid(uid)
    if user is None:
        await error(ctx, "whoami", f"cannot find name for user ID {uid}")
        return 1
    await ctx.write_all(1, user.name + "\n")
    return 0


GROUPS = Spec("groups", "[OPTION]... [USERNAME]...", "Print group memberships for each USERNAME or, "
              "if no USERNAME is specified, for\nthe current process.", [])


async def prog_groups(ctx: Any) -> int:
    args = await parse_or_exit(ctx, GROUPS)
    if isinstance(args, int):
        return args
    db = await load_db(ctx)

    def names(ids: list[int]) -> str:
        return " ".join(db.group_name(g) or str(g) for g in ids)

    if not args.operands:
        gid = ctx.getgid()
        ids = [gid] + [g for g in await process_groups(ctx) if g != gid]
        await ctx.write_all(1, names(ids) + "\n")
        return 0
    status = 0
    for op in args.operands:
        user = db.user_by_name(op)
        if user is None:
            await error(ctx, "groups", f"'{op}': no such user")
            status = 1
            continue
        ids = [user.gid] + [g for g in db.member_of(user.name) if g != user.gid]
        await ctx.write_all(1, f"{op} : {names(ids)}\n")
    return status


# ---- hostname, uname, nproc --------------------------------------------------------------
HOSTNAME = Spec("hostname", "[-s|-f|-d] [NAME]", "Show or set the system's host name.", [
    Opt("s", "short", help="short host name"),
    Opt("f", "fqdn", help="long host name (FQDN)"),
    Opt("d", "domain", help="DNS domain name"),
    Opt("F", "file", arg="FILE", help="read the host name from FILE"),
])


async def prog_hostname(ctx: Any) -> int:
    args = await parse_or_exit(ctx, HOSTNAME)
    if isinstance(args, int):
        return args
    new = args.operands[0] if args.operands else None
    if "file" in args:
        data = await read_file(ctx, args["file"])
        if data is None:
            await error(ctx, "hostname", f"{args['file']}: No such file or directory")
            return 1
        new = next((x.strip() for x in data.decode(errors="replace").splitlines()
                    if x.strip() and not x.startswith("#")), "")
    if new is not None:
        try:
            await ctx.sethostname(new)
        except KernelError as e:
            await error(ctx, "hostname", "you must be root to change the host name" if e.code == "EPERM"
                        else f"{strerror(e)}")
            return 1
        return 0
    name = ctx.gethostname()
    if args.get("short"):
        name = name.split(".", 1)[0]
    elif args.get("domain"):
        name = name.split(".", 1)[1] if "." in name else ""
    await ctx.write_all(1, name + "\n")
    return 0


UNAME = Spec("uname", "[OPTION]...", "Print certain system information.  With no OPTION, same as -s.", [
    Opt("a", "all", help="print all information, in the following order,\n"
        "                             except omit -p and -i if unknown:"),
    Opt("s", "kernel-name", help="print the kernel name"),
    Opt("n", "nodename", help="print the network node hostname"),
    Opt("r", "kernel-release", help="print the kernel release"),
    Opt("v", "kernel-version", help="print the kernel version"),
    Opt("m", "machine", help="print the machine hardware name"),
    Opt("p", "processor", help="print the processor type (non-portable)"),
    Opt("i", "hardware-platform", help="print the hardware platform (non-portable)"),
    Opt("o", "operating-system", help="print the operating system"),
])

MACHINE = "x86_64"  # the sandbox's own, fixed: never the host's


async def _proc_line(ctx: Any, path: str, default: str) -> str:
    data = await read_file(ctx, path)
    return data.decode(errors="replace").strip() if data else default


async def prog_uname(ctx: Any) -> int:
    args = await parse_or_exit(ctx, UNAME)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "uname", f"extra operand '{args.operands[0]}'\nTry 'uname --help' for more information.")
        return 1
    everything = bool(args.get("all"))
    wanted = [k for k in ("kernel_name", "nodename", "kernel_release", "kernel_version", "machine",
                          "processor", "hardware_platform", "operating_system")
              if args.get(k) or (everything and k not in ("processor", "hardware_platform"))]
    if not wanted:
        wanted = ["kernel_name"]
    version = await _proc_line(ctx, "/proc/sys/kernel/version", "")
    if not version:
        full = await _proc_line(ctx, "/proc/version", "")
        version = full.rsplit(") ", 1)[-1] if full else "#1"
    values = {
        "kernel_name": await _proc_line(ctx, "/proc/sys/kernel/ostype", "Linux"),
        "nodename": ctx.gethostname(),
        "kernel_release": await _proc_line(ctx, "/proc/sys/kernel/osrelease", "unknown"),
        "kernel_version": version,
        "machine": MACHINE,
        "processor": "unknown",
        "hardware_platform": "unknown",
        "operating_system": "GNU/Linux",
    }
    await ctx.write_all(1, " ".join(values[k] for k in wanted) + "\n")
    return 0


NPROC = Spec("nproc", "[OPTION]...", "Print the number of processing units available to the current process,\n"
             "which may be less than the number of online processors", [
                 Opt(None, "all", help="print the number of installed processors"),
                 Opt(None, "ignore", arg="N", help="if possible, exclude N processing units"),
             ])


async def cpu_count(ctx: Any, every: bool) -> int:
    """Processors of /proc/cpuinfo, or (the default) those this process may use."""
    if not every:
        data = await read_file(ctx, "/proc/self/status")
        for line in (data or b"").decode(errors="replace").splitlines():
            if line.startswith("Cpus_allowed:"):
                try:
                    return max(1, bin(int(line.split()[1].replace(",", ""), 16)).count("1"))
                except (IndexError, ValueError):
                    break
    data = await read_file(ctx, "/proc/cpuinfo")
    n = sum(1 for line in (data or b"").decode(errors="replace").splitlines()
            if line.startswith("processor"))
    return max(1, n)


async def prog_nproc(ctx: Any) -> int:
    args = await parse_or_exit(ctx, NPROC)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "nproc", f"extra operand '{args.operands[0]}'\nTry 'nproc --help' for more information.")
        return 1
    ignore = 0
    if "ignore" in args:
        value = args["ignore"]
        if not value.isdigit():
            await error(ctx, "nproc", f"invalid number: '{value}'")
            return 1
        ignore = int(value)
    n = await cpu_count(ctx, bool(args.get("all")))
    if not args.get("all"):
        for var in ("OMP_NUM_THREADS",):
            value = (ctx.getenv(var) or "").split(",")[0].strip()
            if value.isdigit() and int(value) > 0:
                n = int(value)
        limit = (ctx.getenv("OMP_THREAD_LIMIT") or "").strip()
        if limit.isdigit() and int(limit) > 0:
            n = min(n, int(limit))
    await ctx.write_all(1, f"{max(1, n - ignore)}\n")
    return 0


# ---- tty ---------------------------------------------------------------------------------
TTY = Spec("tty", "[OPTION]...", "Print the file name of the terminal connected to standard input.", [
    Opt("s", "silent", help="print nothing, only return an exit status"),
], usage_status=2)


async def prog_tty(ctx: Any) -> int:
    args = await parse_or_exit(ctx, TTY)
    if isinstance(args, int):
        return args
    if args.operands:
        await error(ctx, "tty", f"extra operand '{args.operands[0]}'\nTry 'tty --help' for more information.")
        return 2
    try:
        name = ctx.ttyname(0)
    except KernelError:
        if not args.get("silent"):
            await ctx.write_all(1, "not a tty\n")
        return 1
    if not args.get("silent"):
        await ctx.write_all(1, name + "\n")
    return 0


# ---- which -------------------------------------------------------------------------------
async def _executable(ctx: Any, path: str) -> bool:
    try:
        attr = await ctx.stat(path)
        if not attr.is_reg:
            return False
        await ctx.access(path, X_OK)
        return True
    except KernelError:
        return False


async def prog_which(ctx: Any) -> int:
    """debianutils' which: ``-a`` every match; 1 if any name is not found, 2 for a bad option."""
    argv = list(ctx.argv[1:])
    every = False
    while argv and argv[0].startswith("-") and argv[0] != "-":
        a = argv.pop(0)
        if a == "--":
            break
        for ch in a[1:]:
            if ch == "a":
                every = True
            else:
                await ctx.write_all(2, f"Illegal option -{ch}\n")
                await ctx.write_all(1, f"Usage: {ctx.argv[0]} [-a] args\n")
                return 2
    if not argv:
        return 1
    path = ctx.getenv("PATH") or ""
    status = 0
    out = []
    for name in argv:
        found = False
        if "/" in name:
            if await _executable(ctx, name):
                out.append(name)
                found = True
        else:
            for d in path.split(":"):
                candidate = f"{d or '.'}/{name}"
                if await _executable(ctx, candidate):
                    out.append(candidate)
                    found = True
                    if not every:
                        break
        if not found:
            status = 1
    if out:
        await ctx.write_all(1, "\n".join(out) + "\n")
    return status


# ---- mount, umount -----------------------------------------------------------------------
@dataclass
class MountEntry:
    source: str
    target: str
    fstype: str
    options: str


def _unescape(field_: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as ``\\040`` and the like."""
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and field_[i + 1:i + 4].isdigit() and len(field_[i + 1:i + 4]) == 3:
            out.append(chr(int(field_[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


async def mount_table(ctx: Any) -> list[MountEntry]:
    data = await read_file(ctx, "/proc/self/mounts") or await read_file(ctx, "/proc/mounts") or b""
    out = []
    for line in data.decode(errors="surrogateescape").splitlines():
        f = line.split()
        if len(f) >= 4:
            out.append(MountEntry(_unescape(f[0]), _unescape(f[1]), f[2], f[3]))
    return out


MOUNT = Spec("mount", "[-lhV] [-t type]", "List the mounted filesystems (the sandbox's mounts are fixed).", [
    Opt("l", "show-labels", help="show also filesystem labels"),
    Opt("t", "types", arg="LIST", help="limit the set of filesystem types"),
    Opt("a", "all", help="mount all filesystems mentioned in fstab"),
    Opt("o", "options", arg="LIST", help="comma-separated list of mount options"),
    Opt("r", "read-only", help="mount the filesystem read-only"),
    Opt("w", "rw", help="mount the filesystem read-write (default)"),
    Opt("B", "bind", help="mount a subtree somewhere else"),
])


async def prog_mount(ctx: Any) -> int:
    args = await parse_or_exit(ctx, MOUNT)
    if isinstance(args, int):
        return args
    if args.operands or args.get("all"):
        target = args.operands[-1] if args.operands else "fstab"
        await error(ctx, "mount", f"{target}: mounting is not possible inside the sandbox "
                                  "(its mounts are set up by the host).")
        return 32
    types = None
    if "types" in args:
        types = set(args["types"].split(","))
    negate = types is not None and all(t.startswith("no") for t in types)
    lines = []
    for m in await mount_table(ctx):
        if types is not None:
            if negate and ("no" + m.fstype) in types:
                continue
            if not negate and m.fstype not in types:
                continue
        lines.append(f"{m.source} on {m.target} type {m.fstype} ({m.options})\n")
    await ctx.write_all(1, "".join(lines).encode(errors="surrogateescape"))
    return 0


UMOUNT = Spec("umount", "[-lf] <directory>", "Unmount filesystems (the sandbox's mounts are fixed).", [
    Opt("l", "lazy", help="detach the filesystem now, clean up things later"),
    Opt("f", "force", help="force unmount (in case of an unreachable NFS system)"),
    Opt("a", "all", help="unmount all filesystems"),
    Opt("R", "recursive", help="recursively unmount a target with all its children"),
])


async def prog_umount(ctx: Any) -> int:
    args = await parse_or_exit(ctx, UMOUNT)
    if isinstance(args, int):
        return args
    if args.get("all"):
        await error(ctx, "umount", "unmounting is not possible inside the sandbox (its mounts are "
                                   "set up by the host).")
        return 32
    if not args.operands:
        await ctx.write_all(2, "Usage:\n umount [-hV]\n umount -a [options]\n"
                               " umount [options] <source> | <directory>\n")
        return 1
    status = 0
    table = await mount_table(ctx)
    for op in args.operands:
        try:
            path = await ctx.realpath(op)
        except KernelError:
            await error(ctx, "umount", f"{op}: no mount point specified.")
            status = 32
            continue
        if not any(m.target == path or m.source == op for m in table):
            await error(ctx, "umount", f"{op}: not mounted.")
            status = 32
            continue
        await error(ctx, "umount", f"{op}: not allowed: the sandbox's mounts are set up by the host "
                                   "and stay for its lifetime.")
        status = 32
    return status


PROGRAMS = {
    "id": prog_id, "whoami": prog_whoami, "groups": prog_groups, "hostname": prog_hostname,
    "uname": prog_uname, "nproc": prog_nproc, "tty": prog_tty, "which": prog_which,
    "mount": prog_mount, "umount": prog_umount,
}
