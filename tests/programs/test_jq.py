"""jq beyond the case file: the sandbox boundary (no host environment, no modules), number
layout, and one-line errors."""

from __future__ import annotations

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs.jq_cmd import format_number
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs


def run(argv: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    async def go() -> tuple[int, bytes, bytes]:
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=standard_registry(),
                            env=env or {"PATH": "/bin", "HOME": "/home/sandbox"})
            await kernel.boot(nursery)
            try:
                await kernel.vfs.mkdir("/tmp/w", recursive=True)
                r = await kernel.run(argv, input=stdin, cwd="/tmp/w", timeout=20)
                return r.status >> 8, r.stdout, r.stderr
            finally:
                await kernel.shutdown()
    return trio.run(go)


def test_env_is_the_sandbox_environment_not_the_hosts() -> None:
    status, out, _ = run(["jq", "-n", "-c", "[env.HOME, $ENV.HOME, (env | has(\"USER\"))]"],
                         env={"PATH": "/bin", "HOME": "/home/sandbox"})
    assert status == 0
    assert out == b'["/home/sandbox","/home/sandbox",false]\n'


@pytest.mark.parametrize("prog", ['include "x"; .', 'import "a" as $a; $a', 'import "m" as m; .'])
def test_modules_are_refused(prog: str) -> None:
    status, out, err = run(["jq", "-n", prog])
    assert status == 3 and out == b""
    assert b"not available in the sandbox" in err


@pytest.mark.parametrize("prog", ["get_search_list", "get_jq_origin", "[debug, stderr]"])
def test_host_facing_builtins_show_nothing_of_the_host(prog: str) -> None:
    status, out, err = run(["jq", "-n", "-c", prog])
    assert status == 0 and err == b""
    assert b"/" not in out


def test_inputs_and_input_see_the_stream() -> None:
    assert run(["jq", "-n", "-c", "[inputs]"], b"1 2 3")[1] == b"[1,2,3]\n"
    assert run(["jq", "-c", "[., input]"], b"1 2 3 4")[1] == b"[1,2]\n[3,4]\n"


def test_runtime_error_is_one_line_and_status_5() -> None:
    status, out, err = run(["jq", ".a"], b"1 {\"a\": 2}")
    assert status == 5 and out == b"2\n"
    assert err.count(b"\n") == 1 and (b"Traceback" not in err and b"internal error" not in err)


def test_bad_input_json_is_one_line() -> None:
    status, _, err = run(["jq", "."], b"{\"a\" 1}")
    assert status != 0 and err.count(b"\n") == 1 and err.startswith(b"parse error")


def test_input_across_chunk_boundaries() -> None:
    big = b"[" + b",".join(b'"%d"' % i for i in range(60000)) + b"]\n" + b"12345 " * 50000
    status, out, _ = run(["jq", "-c", "length"], big)
    assert status == 0
    assert out.split(b"\n")[0] == b"60000"
    assert out.count(b"\n") == 50001


def test_halt_error_status_and_message() -> None:
    assert run(["jq", "-n", '"bye\\n" | halt_error(1)']) == (1, b"", b"bye\n")


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (1e17, "1e+17"), (1e15, "1000000000000000"), (1e-5, "1e-05"), (0.0001, "0.0001"),
    (123456789012345678, "123456789012345680"), (float("inf"), "1.7976931348623157e+308"),
    (float("nan"), "null"), (-0.0, "-0"), (2.5e-10, "2.5e-10"), (10**400, "1.7976931348623157e+308"),
])
def test_number_layout_is_jq_16s(value: float, text: str) -> None:
    assert format_number(value) == text


def test_many_inputs_keep_order_around_an_error() -> None:
    """JSON lines go to the library in batches; an error in a batch still comes out in place."""
    lines = b"".join(b'{"a": %d}\n' % i if i != 700 else b"5\n" for i in range(1500))
    status, out, err = run(["jq", ".a"], lines)
    assert status == 5 and err.count(b"\n") == 1
    assert out.split(b"\n")[:-1] == [b"%d" % i for i in range(1500) if i != 700]


def test_halt_in_the_middle_of_many_inputs() -> None:
    lines = b"".join(b"%d\n" % i for i in range(1000))
    status, out, _ = run(["jq", "if . == 600 then halt else . end"], lines)
    assert status == 0 and out.split(b"\n")[:-1] == [b"%d" % i for i in range(600)]


def test_parse_error_after_many_values_prints_them_first() -> None:
    status, out, err = run(["jq", "-c", "."], b"[1]\n" * 300 + b"{bad")
    assert status == 4 and out == b"[1]\n" * 300 and err.startswith(b"parse error")


BIG = b"[" + b",".join(b'{"n": %d, "s": "%s"}' % (i, b"x" * 20) for i in range(40000)) + b"]"


def test_big_documents_read_whole() -> None:
    """Files whose first value does not fit a chunk go to the library whole; errors, a second
    document and a parse error after them still behave as value by value."""
    assert run(["jq", "length"], BIG) == (0, b"40000\n", b"")
    status, out, _ = run(["jq", "-c", ".[0].n"], BIG + b"\n" + BIG + b"\n[{\"n\": 7}]")
    assert (status, out) == (0, b"0\n0\n7\n")
    status, out, err = run(["jq", ".[0].n"], BIG + b" 5 " + BIG)
    assert status == 5 and out == b"0\n0\n" and err.count(b"\n") == 1
    status, out, err = run(["jq", "-c", ".[1].n"], BIG + b" {bad")
    assert status == 4 and out == b"1\n" and err.startswith(b"parse error")
    status, out, _ = run(["jq", "if type == \"number\" then halt_error else length end"], BIG + b" 3 " + BIG)
    assert status == 5 and out == b"40000\n"
