"""Tiny programs for the kernel's own tests and benchmarks: ``true false echo cat sleep yes``.

Not registered in production (``standard_registry`` is); ``test_registry()`` gives them to a
test kernel.  They only use the syscall context (``ctx``)."""

from __future__ import annotations

from kernel.errors import KernelError
from kernel.programs.registry import ProgramRegistry


async def prog_true(ctx) -> int:
    return 0


async def prog_false(ctx) -> int:
    return 1


async def prog_echo(ctx) -> int:
    args = ctx.argv[1:]
    newline = True
    if args and args[0] == "-n":
        newline = False
        args = args[1:]
    await ctx.write_all(1, " ".join(args) + ("\n" if newline else ""))
    return 0


async def prog_cat(ctx) -> int:
    """cat [FILE|-]...: copy to stdout in 64 KiB reads, reporting errors per file."""
    status = 0
    names = ctx.argv[1:] or ["-"]
    for name in names:
        if name == "-":
            fd, own = 0, False
        else:
            try:
                fd, own = await ctx.open(name), True
            except KernelError as e:
                await ctx.write_all(2, f"cat: {name}: {e.message}\n")
                status = 1
                continue
        try:
            while True:
                data = await ctx.read(fd, 65536)
                if not data:
                    break
                await ctx.write_all(1, data)
        except KernelError as e:
            if e.code == "EPIPE":
                raise
            await ctx.write_all(2, f"cat: {name}: {e.message}\n")
            status = 1
        finally:
            if own:
                await ctx.close(fd)
    return status


async def prog_sleep(ctx) -> int:
    try:
        seconds = sum(float(a) for a in ctx.argv[1:])
    except ValueError:
        await ctx.write_all(2, "sleep: invalid time interval\n")
        return 1
    await ctx.sleep(seconds)
    return 0


async def prog_yes(ctx) -> int:
    word = (" ".join(ctx.argv[1:]) or "y") + "\n"
    block = (word * max(1, 8192 // len(word))).encode()
    while True:
        await ctx.write_all(1, block)


PROGRAMS = {
    "true": prog_true,
    "false": prog_false,
    "echo": prog_echo,
    "cat": prog_cat,
    "sleep": prog_sleep,
    "yes": prog_yes,
}


def test_registry() -> ProgramRegistry:
    """A fresh registry holding the test programs (tests add their own inline programs to it)."""
    return ProgramRegistry(PROGRAMS.items())
