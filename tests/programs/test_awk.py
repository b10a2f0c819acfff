"""awk beyond the differential corpus: error messages are one line (never a traceback), the
limits that keep a program from stalling or exhausting the sandbox, commands that run inside
the sandbox (not on the host), and input streamed in bounded memory."""

from __future__ import annotations

import importlib
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from kernel.errors import KernelError
from kernel.kernel import Kernel
from kernel.programs.registry import ProgramRegistry
from vfsfuse.storage.store import memory_vfs

_LINE = b"alpha 12 beta\n"


async def _gen(ctx: Any) -> int:
    """``gen MIB``: that many MiB of short lines."""
    block = _LINE * (65536 // len(_LINE))
    for _ in range(int(ctx.argv[1]) * (1 << 20) // len(block)):
        await ctx.write_all(1, block)
    return 0


async def _pipe2(ctx: Any) -> int:
    """``pipe2 A... -- B...``: run A | B; B's stdout is ours."""
    argv = list(ctx.argv)[1:]
    k = argv.index("--")
    from kernel.syscalls import O_CLOEXEC

    r, w = await ctx.pipe(O_CLOEXEC)
    await ctx.spawn(argv[:k], stdout=w)
    await ctx.spawn(argv[k + 1:], stdin=r)
    await ctx.close(r)
    await ctx.close(w)
    for _ in range(2):
        await ctx.waitpid(-1)
    return 0


@dataclass
class Ran:
    stdout: bytes
    stderr: bytes
    status: int
    files: dict[str, bytes]


def _registry() -> ProgramRegistry:
    """awk with what its commands use (sh, cat, echo...): the families awk depends on."""
    reg = ProgramRegistry()
    for mod in ("kernel.programs.files", "kernel.programs.text", "kernel.programs.awk", "kernel.shell.main"):
        for name, prog in importlib.import_module(mod).PROGRAMS.items():
            reg.register(name, prog)
    reg.register("gen", _gen)
    reg.register("pipe2", _pipe2)
    return reg


async def _run(argv: list[str], input: bytes | None = None, setup: dict[str, bytes] | None = None,
               timeout: float = 60) -> Ran:
    async with trio.open_nursery() as nursery:
        kernel = Kernel(memory_vfs(), programs=_registry(), env={"PATH": "/bin", "LC_ALL": "C"})
        await kernel.boot(nursery)
        try:
            await kernel.vfs.mkdir("/tmp/w", recursive=True)
            for path, data in (setup or {}).items():
                await kernel.vfs.write_file(path, data)
            r = await kernel.run(argv, input=input, cwd="/tmp/w", timeout=timeout)
            files = {p: await kernel.vfs.read_file(p) for p in ("/tmp/w/made",) if await _exists(kernel, p)}
            return Ran(r.stdout, r.stderr, r.status, files)
        finally:
            await kernel.shutdown()


async def _exists(kernel: Kernel, path: str) -> bool:
    try:
        await kernel.vfs.read_file(path)
    except Exception:
        return False
    return True


def _one_line_error(r: Any) -> str:
    text = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    assert text.count("\n") == 1 and text.startswith("awk: "), text
    return text


@pytest.mark.parametrize("program, status", [
    ("BEGIN { x = 1 +* 2 }", 1),
    ("BEGIN { print \"abc }", 1),
    ("/abc", 1),
    ("BEGIN { if (1 print }", 1),
    ("BEGIN { next }", 1),
    ("function f(a, a) {} BEGIN {}", 1),
    ("BEGIN { print foo(1) }", 2),
    ("BEGIN { a[1] = 1; a = 2 }", 2),
    ("BEGIN { x = 0; print 1 / x }", 2),
    ("BEGIN { x = 0; print 1 % x }", 2),
    ("BEGIN { printf \"%s %s\" , 1 }", 2),
    ("BEGIN { r = \"(\"; if (\"x\" ~ r) print }", 2),
    ("BEGIN { $(-1) = 1 }", 2),
    ("BEGIN { NF = -1 }", 2),
    ("BEGIN { print \"x\" > \"/tmp\" }", 2),
    ("BEGIN { printf \"%999999999d\", 1 }", 2),
    ("BEGIN { $99999999 = 1 }", 2),
    ("BEGIN { if (\"x\" ~ \"a{30000}{30000}\") print }", 2),
])
async def test_errors_are_one_line_with_gawks_status(program: str, status: int) -> None:
    r = await _run(["awk", program])
    assert r.status >> 8 == status, r.stderr
    _one_line_error(r)


async def test_runaway_recursion_is_an_error_not_a_crash() -> None:
    r = await _run(["awk", "function f(n) { return f(n + 1) } BEGIN { f(1) }"])
    assert r.status >> 8 == 2
    assert "nesting too deep" in _one_line_error(r)


async def test_pathological_regex_finishes_quickly() -> None:
    """``(a+)+$`` over 100 KiB: linear on re2, so well under a second of matching."""
    data = b"a" * 100_000 + b"b\n"
    t = time.perf_counter()
    r = await _run(["awk", "/(a+)+$/ { n++ } END { print n + 0; print match($0, /(a+)+b/), RLENGTH }"],
                   input=data)
    assert time.perf_counter() - t < 5
    assert r.stdout == b"0\n1 100001\n"


async def test_busy_loop_yields_and_can_be_killed() -> None:
    """``while (1)`` must not stall the kernel: the run's timeout kills it and the kernel goes on."""
    async with trio.open_nursery() as nursery:
        kernel = Kernel(memory_vfs(), programs=_registry(), env={"PATH": "/bin"})
        await kernel.boot(nursery)
        try:
            t = time.perf_counter()
            with pytest.raises(KernelError, match="timed out"):
                await kernel.run(["awk", "BEGIN { while (1) x++ }"], timeout=1)
            assert time.perf_counter() - t < 10
            r = await kernel.run(["awk", "BEGIN { print \"alive\" }"], timeout=10)
            assert r.stdout == b"alive\n"
        finally:
            await kernel.shutdown()


async def test_commands_run_inside_the_sandbox() -> None:
    """``cmd | getline``, ``print | cmd`` and ``system()`` run sandbox programs via sh."""
    prog = (
        'BEGIN {'
        ' while ((("cat /tmp/w/in.txt") | getline l) > 0) print "got " l;'
        ' print "to file" | "cat > /tmp/w/made"; close("cat > /tmp/w/made");'
        ' "pwd" | getline d; print d;'
        ' print system("test -f /tmp/w/made")'
        '}'
    )
    r = await _run(["awk", prog], setup={"/tmp/w/in.txt": b"one\ntwo\n"})
    assert r.stdout == b"got one\ngot two\n/tmp/w\n0\n", r.stderr
    assert r.files["/tmp/w/made"] == b"to file\n"


async def test_program_text_cannot_reach_python() -> None:
    """The compiler emits only its own code: awk strings and names stay data."""
    prog = 'BEGIN { s = "\\"); import os; print(\\""; print s; __import__ = 1; print __import__ }'
    r = await _run(["awk", prog])
    assert r.stdout == b'"); import os; print("\n1\n', r.stderr


async def test_invalid_utf8_passes_through() -> None:
    data = b"\xff\xfe a\x80b \xc3\n"
    r = await _run(["awk", "{ print length($0), $2; gsub(/b/, \"B\"); print }"], input=data)
    assert r.stdout == b"8 a\x80b\n\xff\xfe a\x80B \xc3\n"


async def test_big_input_streams_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        r = await _run(["pipe2", "gen", "8", "--", "awk", "{ n++; s += $2 } END { print n, s }"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    lines = (8 << 20) // len(_LINE) // (65536 // len(_LINE)) * (65536 // len(_LINE))
    assert r.stdout == b"%d %d\n" % (lines, lines * 12)
    assert peak < 24 << 20, f"awk peaked at {peak >> 20} MiB"


async def test_two_runs_do_not_share_state() -> None:
    """CONVFMT, RS and the random seed belong to one run (the compiled helpers are per run)."""
    r1 = await _run(["awk", 'BEGIN { CONVFMT = "%.2f"; x = 3.14159; print x "" }'])
    r2 = await _run(["awk", 'BEGIN { x = 3.14159; print x "" }'])
    assert (r1.stdout, r2.stdout) == (b"3.14\n", b"3.14159\n")


async def test_backtracking_regex_hits_the_time_limit() -> None:
    """A pattern re2 cannot take (a count over 1000) runs on the backtracking engine, whose
    time limit turns a pathological search into one fatal line instead of a hang."""
    t = time.perf_counter()
    r = await _run(["awk", "/(a|aa)*(a|aa){1001}b/ { print \"m\" }"], input=b"a" * 3000 + b"\n")
    assert time.perf_counter() - t < 30
    assert r.status >> 8 == 2
    assert "took too long" in _one_line_error(r)


async def test_long_expressions_compile_flat() -> None:
    """A 2,000-term sum (generated scripts do this) compiles without deep recursion; absurd
    nesting is one fatal line, not a crash."""
    r = await _run(["awk", "BEGIN { x = " + " + ".join(["1"] * 2000) + "; print x }"])
    assert r.stdout == b"2000\n", r.stderr
    r = await _run(["awk", "BEGIN { x = " + "(" * 3000 + "1" + ")" * 3000 + "; print x }"])
    assert r.status >> 8 == 2
    _one_line_error(r)
