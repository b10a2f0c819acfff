"""``--limit NAME=VALUE`` on the command line: the names are listed in --help, values take
units, and a bad name or value is one clear line (exit 2), never a traceback."""

from __future__ import annotations

import pytest

from kernel.errors import KernelError
from kernel.limits import LIMIT_SPECS, Limits, lowered, parse_limit
from tests.cli.conftest import cli


@pytest.mark.parametrize("command", ["exec", "shell"])
def test_help_lists_every_limit(command):
    r = cli(command, "--help")
    assert r.code == 0
    for name in [*LIMIT_SPECS, "timeout", "max_output"]:
        assert f"{name} (" in r.out, name


@pytest.mark.parametrize("text, want", [
    ("output_bytes=10", ("output_bytes", 10)),
    ("output_bytes=0", ("output_bytes", 0)),
    ("file_bytes=64K", ("file_bytes", 65536)),
    ("file_bytes=1.5KiB", ("file_bytes", 1536)),
    ("sh_var_bytes=2M", ("sh_var_bytes", 2 << 20)),
    ("sh_commands=10k", ("sh_commands", 10_000)),
    ("cpu_seconds=500ms", ("cpu_seconds", 0.5)),
    ("wall_seconds=2m", ("wall_seconds", 120.0)),
    ("wall_seconds=1.5", ("wall_seconds", 1.5)),
    ("sh_loop_iterations=unlimited", ("sh_loop_iterations", None)),
    ("sh-loop-iterations=3", ("sh_loop_iterations", 3)),
])
def test_values_and_units(text, want):
    assert parse_limit(text) == want


@pytest.mark.parametrize("args, says", [
    (("--limit", "nosuch=1"), "unknown limit 'nosuch'"),
    (("--limit", "output_bytes"), "wants NAME=VALUE"),
    (("--limit", "output_bytes=lots"), "output_bytes=lots: not a bytes value"),
    (("--limit", "output_bytes=-1"), "not a bytes value"),
    (("--limit", "sh_commands=1.5"), "not a whole number"),
    (("--limit", "cpu_seconds=5x"), "not a seconds value"),
    (("--limit", "max_fds=unlimited"), "max_fds cannot be unlimited"),
    (("--limit", "max_output=1Q"), "not a bytes value"),
])
@pytest.mark.parametrize("command", ["exec", "shell"])
def test_bad_limits_are_one_line(tmp_path, command, args, says):
    extra = ["--", "true"] if command == "exec" else []
    r = cli(command, str(tmp_path / "nostore"), *args, *extra)
    lines = r.err.strip().splitlines()
    assert r.code == 2, r.err
    assert len(lines) == 1 and lines[0].startswith("vfsfuse: --limit: ") and says in lines[0], r.err


def test_a_session_may_only_lower():
    ceiling = Limits()
    got = lowered(ceiling, {"output_bytes": 10, "sh_function_depth": 3})
    assert (got.output_bytes, got.sh_function_depth, got.max_fds) == (10, 3, ceiling.max_fds)
    for values, code in (({"output_bytes": ceiling.output_bytes + 1}, "EPERM"),
                         ({"sh_var_bytes": None}, "EPERM"),
                         ({"max_processes": 5}, "EINVAL"),
                         ({"nosuch": 5}, "EINVAL"),
                         ({"max_fds": "many"}, "EINVAL")):
        with pytest.raises(KernelError) as err:
            lowered(ceiling, values)
        assert err.value.code == code
    # unlimited where the kernel is unlimited is no raise
    assert lowered(ceiling, {"cpu_seconds": None}).cpu_seconds is None
