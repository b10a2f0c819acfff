"""The one argument parser of the kernel's programs: GNU getopt_long rules from a flag spec.

Every program declares its options once, as a ``Spec`` of ``Opt`` records; ``parse`` applies
GNU's rules (short options cluster, ``-n5`` / ``-n 5``, long options take ``--lines=5`` or
``--lines 5`` and may be abbreviated to any unique prefix, options and operands may be mixed
unless the spec says ``permute=False``, ``--`` ends options, ``-`` is an operand) and the
``--help`` text is generated from the same records, so the two cannot drift apart.  Errors use
getopt's wording (``invalid option -- 'x'``) so scripts and people see what GNU tools print.

Typical use inside a program::

    SPEC = Spec("head", "[OPTION]... [FILE]...", "Print the first 10 lines of each FILE.",
                [Opt("n", "lines", arg="NUM", help="print the first NUM lines"), ...])

    async def main(ctx) -> int:
        args = await parse_or_exit(ctx, SPEC)   # prints --help/--version/usage errors itself
        if isinstance(args, int):
            return args
        n = args.get("lines", "10")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from kernel.errors import KernelError

Action = Literal["store", "append", "count", "true", "false", "const"]

VERSION = "vfsfuse 0.1"


class UsageError(Exception):
    """A command line the spec rejects; ``str`` is getopt's one-line message."""


@dataclass(frozen=True)
class Opt:
    """One option.  *arg* names the argument (``NUM``) when the option takes one;
    ``optional_arg`` makes it ``--color[=WHEN]`` (long form only takes it after ``=``)."""

    short: str | None
    long: str | None = None
    arg: str | None = None
    help: str = ""
    dest: str | None = None
    action: Action | None = None
    const: Any = None
    optional_arg: bool = False

    @property
    def key(self) -> str:
        """Where the value lands: *dest*, else the long name (``-`` -> ``_``), else the letter."""
        if self.dest:
            return self.dest
        if self.long:
            return self.long.replace("-", "_")
        assert self.short
        return self.short

    @property
    def kind(self) -> Action:
        if self.action is not None:
            return self.action
        return "store" if self.arg is not None else "true"

    @property
    def takes_arg(self) -> bool:
        return self.kind in ("store", "append")


@dataclass
class Spec:
    """A program's whole command-line interface."""

    prog: str
    usage: str
    summary: str
    options: list[Opt] = field(default_factory=list)
    epilog: str = ""
    permute: bool = True        # GNU mixes options and operands; False stops at the first operand
    usage_status: int = 1       # exit status for a bad command line (grep, diff, cmp use 2)
    help_option: bool = True    # --help / --version exist (``echo`` and ``test`` have none)

    def __post_init__(self) -> None:
        self._short: dict[str, Opt] = {}
        self._long: dict[str, Opt] = {}
        for opt in self.options:
            if opt.short:
                if opt.short in self._short:
                    raise ValueError(f"{self.prog}: option -{opt.short} declared twice")
                self._short[opt.short] = opt
            if opt.long:
                if opt.long in self._long:
                    raise ValueError(f"{self.prog}: option --{opt.long} declared twice")
                self._long[opt.long] = opt
        if self.help_option:
            self._long.setdefault("help", Opt(None, "help", help="display this help and exit"))
            self._long.setdefault("version", Opt(None, "version", help="output version information and exit"))

    def find_long(self, name: str) -> Opt:
        """The option called *name* or uniquely abbreviated by it (getopt_long's rule)."""
        opt = self._long.get(name)
        if opt is not None:
            return opt
        hits = [o for n, o in self._long.items() if n.startswith(name)]
        distinct = {id(o): o for o in hits}
        if len(distinct) == 1:
            return hits[0]
        if not hits:
            raise UsageError(f"unrecognized option '--{name}'")
        names = " ".join(f"'--{o.long}'" for o in distinct.values())
        raise UsageError(f"option '--{name}' is ambiguous; possibilities: {names}")

    def help_text(self) -> str:
        """``--help`` output in coreutils' layout, generated from the option records."""
        lines = [f"Usage: {self.prog} {self.usage}".rstrip(), self.summary, ""]
        rows = []
        for opt in self.options + ([self._long["help"], self._long["version"]] if self.help_option else []):
            parts = []
            if opt.short:
                parts.append(f"-{opt.short}")
            if opt.long:
                if opt.arg and opt.optional_arg:
                    parts.append(f"--{opt.long}[={opt.arg}]")
                elif opt.arg:
                    parts.append(f"--{opt.long}={opt.arg}")
                else:
                    parts.append(f"--{opt.long}")
            elif opt.arg:
                parts[-1] += f" {opt.arg}"
            left = ", ".join(parts)
            if not opt.short:
                left = "    " + left
            rows.append((left, opt.help))
        width = min(30, max((len(a) for a, _ in rows), default=0) + 2)
        for left, text in rows:
            if len(left) + 2 > width:
                lines.append(f"  {left}")
                lines.append(" " * (width + 2) + text)
            else:
                lines.append(f"  {left.ljust(width)}{text}")
        if self.epilog:
            lines += ["", self.epilog.rstrip()]
        return "\n".join(lines) + "\n"


class Args:
    """Parsed options (by key) and operands.  ``args["lines"]`` is the last value given,
    ``args.get("lines", default)``; counts and appends accumulate; ``order`` keeps every
    option in command-line order for programs where order matters (``find``-style, ``sort -k``)."""

    __slots__ = ("values", "operands", "order")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.operands: list[str] = []
        self.order: list[tuple[str, Any]] = []

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def _set(self, opt: Opt, value: Any) -> None:
        key = opt.key
        kind = opt.kind
        if kind == "count":
            self.values[key] = self.values.get(key, 0) + 1
        elif kind == "append":
            self.values.setdefault(key, []).append(value)
        elif kind == "true":
            self.values[key] = True
        elif kind == "false":
            self.values[key] = False
        elif kind == "const":
            self.values[key] = opt.const
        else:
            self.values[key] = value
        self.order.append((key, self.values[key] if kind != "append" else value))


def parse(spec: Spec, argv: list[str]) -> Args:
    """Parse ``argv[1:]`` by *spec*; raises ``UsageError`` with getopt's message."""
    args = Args()
    i = 1
    n = len(argv)
    while i < n:
        a = argv[i]
        i += 1
        if a == "--":
            args.operands.extend(argv[i:])
            break
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            opt = spec.find_long(name)
            if opt.takes_arg:
                if eq:
                    args._set(opt, value)
                elif opt.optional_arg:
                    args._set(opt, None)
                elif i < n:
                    args._set(opt, argv[i])
                    i += 1
                else:
                    raise UsageError(f"option '--{opt.long}' requires an argument")
            elif eq:
                raise UsageError(f"option '--{opt.long}' doesn't allow an argument")
            else:
                args._set(opt, None)
            continue
        if a.startswith("-") and a != "-":
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                short = spec._short.get(ch)
                if short is None:
                    raise UsageError(f"invalid option -- '{ch}'")
                opt = short
                if opt.takes_arg:
                    if j < len(a):
                        args._set(opt, a[j:])
                    elif opt.optional_arg:
                        args._set(opt, None)
                    elif i < n:
                        args._set(opt, argv[i])
                        i += 1
                    else:
                        raise UsageError(f"option requires an argument -- '{ch}'")
                    break
                args._set(opt, None)
            continue
        args.operands.append(a)
        if not spec.permute:
            args.operands.extend(argv[i:])
            break
    return args


async def parse_or_exit(ctx: Any, spec: Spec, argv: list[str] | None = None) -> Args | int:
    """Parse the process's argv; print ``--help``/``--version`` or a usage error the GNU way
    and return the exit status instead of ``Args`` in those cases."""
    try:
        args = parse(spec, list(ctx.argv) if argv is None else argv)
    except UsageError as e:
        hint = f"Try '{spec.prog} --help' for more information.\n" if spec.help_option else ""
        await ctx.write_all(2, f"{spec.prog}: {e}\n{hint}")
        return spec.usage_status
    if spec.help_option:
        if args.get("help"):
            await ctx.write_all(1, spec.help_text())
            return 0
        if args.get("version"):
            await ctx.write_all(1, f"{spec.prog} ({VERSION})\n")
            return 0
    return args


def int_arg(spec: Spec, value: str, what: str, *, minimum: int | None = None,
            convert: Callable[[str], int] = int) -> int:
    """An integer option value, or a one-line ``UsageError``-style ``KernelError`` (EINVAL)."""
    try:
        number = convert(value)
    except (TypeError, ValueError):
        raise KernelError("EINVAL", f"invalid {what}: '{value}'") from None
    if minimum is not None and number < minimum:
        raise KernelError("EINVAL", f"invalid {what}: '{value}'")
    return number
