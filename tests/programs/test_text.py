"""What the differential case files cannot express for the text family: pipelines between
sandbox processes (``head -n1`` ending an endless writer with SIGPIPE), big inputs streamed in
bounded memory, ``tail -f`` following appends, sort's external merge, invalid UTF-8."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
import trio

from kernel.errors import KernelError
from kernel.kernel import Kernel
from kernel.programs import text_sort
from kernel.programs.registry import ProgramRegistry
from kernel.syscalls import O_CLOEXEC
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs

SIGPIPE = 13


_BLOCK = b"".join(b"line %05d of the generated input\n" % i for i in range(1927))[:65536]
_BLOCK = _BLOCK[:_BLOCK.rfind(b"\n") + 1]


def _blocks(mib: int) -> int:
    return -(-(mib << 20) // len(_BLOCK))


async def _gen(ctx: Any) -> int:
    """``gen MIB``: that many MiB of numbered lines (whole 64 KiB-ish blocks of them)."""
    for _ in range(_blocks(int(ctx.argv[1]))):
        await ctx.write_all(1, _BLOCK)
    return 0


async def _pipe2(ctx: Any) -> int:
    """``pipe2 [-q] A... -- B...``: run A | B (B's output to /dev/null with -q); print both wait statuses."""
    argv = list(ctx.argv)[1:]
    quiet = argv[0] == "-q"
    if quiet:
        argv.pop(0)
    k = argv.index("--")
    left, right = argv[:k], argv[k + 1:]
    from kernel.syscalls import O_CLOEXEC

    r, w = await ctx.pipe(O_CLOEXEC)  # else each child would inherit the other end too
    a = await ctx.spawn(left, stdout=w)
    sink = await ctx.open("/dev/null", 1) if quiet else None
    b = await ctx.spawn(right, stdin=r, stdout=sink)
    if sink is not None:
        await ctx.close(sink)
    await ctx.close(r)
    await ctx.close(w)
    statuses = {}
    for _ in range(2):
        pid, status = await ctx.waitpid(-1)
        statuses[pid] = status
    await ctx.write_all(2, f"{statuses[a]} {statuses[b]}\n".encode())
    return 0


def _registry() -> ProgramRegistry:
    reg = standard_registry()
    reg.register("gen", _gen)
    reg.register("pipe2", _pipe2)
    return reg


async def _boot(nursery: trio.Nursery) -> Kernel:
    kernel = Kernel(memory_vfs(), programs=_registry(), env={"PATH": "/bin", "LC_ALL": "C"})
    await kernel.boot(nursery)
    return kernel


async def _run(argv: list[str], input: bytes | None = None, setup: dict[str, bytes] | None = None):
    async with trio.open_nursery() as nursery:
        kernel = await _boot(nursery)
        try:
            for path, data in (setup or {}).items():
                await kernel.vfs.write_file(path, data)
            return await kernel.run(argv, input=input, timeout=60)
        finally:
            await kernel.shutdown()


async def test_head_ends_an_endless_writer_with_sigpipe() -> None:
    r = await _run(["pipe2", "yes", "--", "head", "-n1"])
    assert r.stdout == b"y\n"
    writer, reader = (int(x) for x in r.stderr.split())
    assert writer & 0x7F == SIGPIPE  # yes was killed by SIGPIPE, not left running
    assert reader == 0


@pytest.mark.parametrize("argv", [
    ["wc", "-l"], ["grep", "-c", "line 0001"], ["sed", "s/line/LINE/g"], ["tr", "a-z", "A-Z"], ["tail", "-n", "2"],
    ["cut", "-d", " ", "-f", "2"], ["sha256sum"], ["head", "-n", "-3"], ["uniq"],
])
async def test_streaming_filters_hold_bounded_memory(argv: list[str]) -> None:
    """32 MiB through a filter: the Python heap peak stays a small multiple of the 64 KiB reads."""
    tracemalloc.start()
    try:
        quiet = ["-q"] if argv[0] in ("sed", "tr", "cut", "head", "uniq") else []
        mib = "4" if argv[0] in ("cut", "uniq") else "32"  # per-line tools are slow under tracemalloc
        r = await _run(["pipe2", *quiet, "gen", mib, "--", *argv])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status == 0
    assert r.stderr.split()[1] == b"0"
    assert peak < 24 << 20, f"{argv[0]} peaked at {peak >> 20} MiB"
    if argv[0] == "wc":
        assert int(r.stdout) == _BLOCK.count(b"\n") * _blocks(32)
    if argv[0] == "grep":
        assert int(r.stdout) == _BLOCK.count(b"line 0001") * _blocks(32)


async def test_sort_merges_sorted_runs_through_temp_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_sort, "MEMORY_BOUND", 4096)
    lines = [b"%d k%03d" % ((i * 7919) % 1000, i % 97) for i in range(3000)]
    data = b"\n".join(lines) + b"\n"
    r = await _run(["sort", "-n", "-k1,1", "-s"], input=data)
    assert r.status == 0
    expect = sorted(lines, key=lambda x: int(x.split()[0]))
    assert r.stdout == b"\n".join(expect) + b"\n"
    r = await _run(["sort", "-u", "-r"], input=data)
    assert r.stdout == b"\n".join(sorted(set(lines), reverse=True)) + b"\n"


async def test_sort_buffer_size_sets_the_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """-S 64K on 1 MiB of numbers spills sorted runs (the default bound would hold it all)."""
    spills = 0
    spill = text_sort._Sorter.spill

    async def counting_spill(self: text_sort._Sorter) -> None:
        nonlocal spills
        spills += 1
        await spill(self)

    monkeypatch.setattr(text_sort._Sorter, "spill", counting_spill)
    lines = [b"%d" % ((i * 7919) % 100003 - 50000) for i in range(150000)]
    data = b"\n".join(lines) + b"\n"
    r = await _run(["sort", "-S", "64K", "-n"], input=data)
    assert r.status == 0
    assert r.stdout == b"\n".join(sorted(lines, key=int)) + b"\n"
    assert spills > 10
    spills = 0
    r = await _run(["sort", "-n"], input=data)
    assert r.status == 0 and spills == 0


async def test_sort_n_batch_falls_back_for_lines_that_are_not_integers() -> None:
    """The whole-batch integer path of -n gives way to the per-line one for decimals, blanks,
    signs alone and digit strings too long for int(), and sorts them as GNU does."""
    big = b"9" * 5000
    lines = [b"10", b"-3", b"2.5", b"", b"-", b" 7", b"\t-8", big, b"-" + big, b"abc", b"1e3", b"0"]
    r = await _run(["sort", "-n", "-s"], input=b"\n".join(lines) + b"\n")
    assert r.status == 0
    assert r.stdout.split(b"\n")[:-1] == [
        b"-" + big, b"\t-8", b"-3", b"", b"-", b"abc", b"0", b"1e3", b"2.5", b" 7", b"10", big,
    ]


async def test_sort_external_merge_leaves_no_temp_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_sort, "MEMORY_BOUND", 1024)
    async with trio.open_nursery() as nursery:
        kernel = await _boot(nursery)
        try:
            await kernel.vfs.mkdir("/tmp", recursive=True)
            before = set(await kernel.vfs.listdir("/tmp")) if hasattr(kernel.vfs, "listdir") else set()
            r = await kernel.run(["sort"], input=b"".join(b"%d\n" % (i % 313) for i in range(5000)), timeout=60)
            assert r.status == 0
            assert r.stdout.count(b"\n") == 5000
            if hasattr(kernel.vfs, "listdir"):
                assert set(await kernel.vfs.listdir("/tmp")) == before
        finally:
            await kernel.shutdown()


async def test_tail_follows_appends() -> None:
    async with trio.open_nursery() as nursery:
        kernel = await _boot(nursery)
        try:
            await kernel.vfs.write_file("/log.txt", b"one\ntwo\n")
            h = await kernel.spawn(["tail", "-f", "-s", "0.05", "-n", "1", "/log.txt"])
            got = b""
            with trio.fail_after(10):
                while b"two\n" not in got:
                    got += await h.stdout.read()
                fd_h = await kernel.spawn(["tee", "-a", "/log.txt"], stdin=__import__("kernel.kernel").kernel.PIPE)
                await fd_h.stdin.write_all(b"three\n")
                await fd_h.stdin.close()
                await fd_h.wait()
                while b"three\n" not in got:
                    got += await h.stdout.read()
            assert got == b"two\nthree\n"
            h.kill()
            await h.wait()
            await h.aclose()
            await fd_h.aclose()
        finally:
            await kernel.shutdown()


@pytest.mark.parametrize("argv", [
    ["grep", "-c", "b"], ["sed", "s/b/X/"], ["sort"], ["wc"], ["tr", "a-z", "A-Z"], ["rev"], ["cut", "-c1-3"],
    ["uniq", "-c"], ["head", "-n1"], ["tail", "-n1"], ["fold", "-w2"], ["nl"], ["tac"], ["od", "-c"], ["base64"],
])
async def test_invalid_utf8_is_just_bytes(argv: list[str]) -> None:
    data = b"ab\xff\xfe\n\xc3(b\n\x80abc\n"
    r = await _run(argv, input=data, setup=None)
    assert r.status == 0, r.stderr
    assert not r.stderr


async def test_grep_binary_file_message_and_sed_bytes() -> None:
    r = await _run(["grep", "ab"], input=b"ab\x00\xff\n")
    assert r.status == 0 and r.stdout == b"" and b"binary file matches" in r.stderr
    r = await _run(["sed", "s/\udcff/<ff>/"], input=b"a\xffb\n")  # argv is surrogate-escaped
    assert r.stdout == b"a<ff>b\n"
    r = await _run(["tr", "-d", "\\377"], input=b"a\xffb\n")
    assert r.stdout == b"ab\n"


_SHAPES = [[], ["--help"], ["-"], ["f.txt"], ["-x"], ["-z", "f.txt"], ["-n", "x", "f.txt"], ["f.txt", "g.txt"],
           ["d"], ["missing"], ["-s", "x", "f.txt"], ["-t", "q", "f.txt"]]


async def test_no_text_program_crashes_on_common_argument_shapes() -> None:
    """Every text program answers odd command lines with a message, never an internal error."""
    from kernel.programs import text

    async with trio.open_nursery() as nursery:
        kernel = await _boot(nursery)
        try:
            await kernel.vfs.mkdir("/w/d", recursive=True)
            await kernel.vfs.write_file("/w/f.txt", b"b 2\na 1\n\xff\x00c 3\nlast")
            await kernel.vfs.write_file("/w/g.txt", b"a 1\nb 2\n")
            crashes = []
            for prog in sorted(text.PROGRAMS):
                if prog == "yes":
                    continue
                for shape in _SHAPES:
                    r = await kernel.run([prog, *shape], input=b"in 1\nput\n", cwd="/w", timeout=10)
                    if b"internal error" in r.stderr:
                        crashes.append(f"{prog} {shape}: {r.stderr[-200:]!r}")
            assert not crashes, "\n".join(crashes)
        finally:
            await kernel.shutdown()


async def test_tac_of_a_big_pipe_goes_through_a_temp_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from kernel.programs import text

    monkeypatch.setattr(text, "TAC_MEMORY_BOUND", 1000)
    data = b"".join(b"%d\n" % i for i in range(5000))
    async with trio.open_nursery() as nursery:
        kernel = await _boot(nursery)
        try:
            await kernel.vfs.mkdir("/tmp", recursive=True)
            r = await kernel.run(["tac"], input=data + b"tail", timeout=60)
            assert r.stdout == b"tail" + b"".join(b"%d\n" % i for i in reversed(range(5000)))
        finally:
            await kernel.shutdown()


def test_column_fills_the_terminal_it_writes_to():
    """On a PTY without $COLUMNS, ``column`` lays entries out for the terminal's width."""
    seen: dict[int, bytes] = {}

    async def driver(ctx: Any) -> int:
        for cols in (30, 80):
            m, s = await ctx.openpty(O_CLOEXEC)
            await ctx.set_winsize(m, 24, cols)
            r, w = await ctx.pipe(O_CLOEXEC)  # the child must not hold its own stdin's writer
            pid = await ctx.spawn(["column"], stdin=r, stdout=s, stderr=s)
            await ctx.close(s)
            await ctx.close(r)
            await ctx.write_all(w, b"".join(b"word%02d\n" % i for i in range(12)))
            await ctx.close(w)
            await ctx.waitpid(pid)
            out = b""
            try:
                while chunk := await ctx.read(m, 4096):
                    out += chunk
            except KernelError as e:  # EIO: the slave side is closed and drained, as on Linux
                assert e.code == "EIO"
            await ctx.close(m)
            seen[cols] = out
        return 0

    async def go() -> None:
        async with trio.open_nursery() as nursery:
            registry = standard_registry()
            registry.register("driver", driver)
            kernel = Kernel(memory_vfs(), programs=registry, env={"PATH": "/bin"})
            await kernel.boot(nursery)
            try:
                r = await kernel.run(["driver"], timeout=30)
                assert r.status == 0, r.stderr
            finally:
                await kernel.shutdown()

    trio.run(go)
    narrow = seen[30].replace(b"\r\n", b"\n").splitlines()
    wide = seen[80].replace(b"\r\n", b"\n").splitlines()
    assert max(len(line) for line in narrow) < 30 < max(len(line) for line in wide)
    assert len(narrow) > len(wide) >= 2
