"""Sizes and durations on the command line: one parser each, shared by every command."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kernel.net.policy import NetPolicy

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``4M`` -> 4194304, ``1.5G`` -> 1610612736; K, M, G, T are powers of 1024
    (``KiB``/``KB`` accepted too); the result must be a whole number of bytes."""
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 4096, 64K, 4M, 1G)")
    number, factor = m.group(1), _UNITS[m.group(2).lower()]
    if "." not in number:
        return int(number) * factor
    whole, _, frac = number.partition(".")
    scale = 10 ** len(frac)
    value, rest = divmod((int(whole) * scale + int(frac)) * factor, scale)
    if rest:
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return value


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``15m`` / ``2h`` / ``7d`` / ``1w`` -> seconds."""
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d)")
    return float(m.group(1)) * _SECONDS[m.group(2).lower()]


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()
DURATION = DurationType()


def human(n: float) -> str:
    """Bytes for people: ``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def net_policy(mode: str, rules: tuple[str, ...]) -> NetPolicy:
    """The sandbox's network policy from ``--net MODE --allow RULE...``: one parser for every
    command that boots a kernel; a bad rule is a usage error (exit 2) naming it."""
    from kernel.net.policy import NetPolicy

    if rules and mode != "allow":
        raise click.UsageError("--allow rules need --net allow")
    try:
        return NetPolicy.parse(mode, list(rules))
    except ValueError as err:
        raise click.UsageError(str(err)) from None


#: ``--limit`` names of one run besides the kernel's ``Limits`` fields (the same as --timeout and
#: --max-output): the run ends, exit 124 or 125, with one line saying why.
def _run_specs() -> dict:
    from kernel.limits import LimitSpec

    return {"timeout": LimitSpec("timeout", "seconds", True, "wall time of the run (exit 124)"),
            "max_output": LimitSpec("max_output", "bytes", True,
                                    "bytes of stdout + stderr of the run, cut there (exit 125)")}


def limits_epilog(run_limits: bool = True) -> str:
    """The ``--limit`` names for --help (click keeps a ``\\b`` paragraph as written);
    *run_limits*: list those of one run too (exec and shell, not mount)."""
    from kernel.limits import limit_help

    run = "\n".join(f"{s.name} ({s.unit}): {s.help}" for s in _run_specs().values()) if run_limits else ""
    return ("\b\n--limit NAME=VALUE (repeat; sizes 64K 1M 1G, counts 100 10k, times 30s 500ms 5m, "
            "0 means 0, 'unlimited'):\n" + (run + "\n" if run else "") + limit_help())


def parse_limits(pairs: tuple[str, ...]) -> tuple[dict[str, int | float | None], dict[str, int | float | None]]:
    """``--limit`` values: ``(kernel limits, run limits)``; a bad name or value is one line
    (exit 2) saying which."""
    from cli.app import EXIT_USAGE, CliError
    from kernel.limits import parse_limit

    run_specs = _run_specs()
    kernel: dict[str, int | float | None] = {}
    run: dict[str, int | float | None] = {}
    for text in pairs:
        try:
            name, value = parse_limit(text, run_specs)
        except ValueError as err:
            raise CliError(f"--limit: {err}", EXIT_USAGE) from None
        (run if name in run_specs else kernel)[name] = value
    return kernel, run
