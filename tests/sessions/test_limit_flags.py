"""``vfsfuse exec|shell --limit NAME=VALUE``: each class of limit takes effect from the command
line, on an unmounted store (the in-process kernel's limits) and on a real mount (the session's
limits, sent over the control socket, which may only lower the daemon's)."""

from __future__ import annotations

import pytest

from tests.sessions.conftest import run_cli


@pytest.fixture(params=["store", pytest.param("mount", marks=pytest.mark.mount)])
def target(request, store, new_mount) -> str:
    if request.param == "store":
        return store
    return new_mount(store=store).path


def _exec(target: str, env: dict, *limits: str, script: str, input: bytes = b""):
    args = [a for lim in limits for a in ("--limit", lim)]
    return run_cli("exec", target, *args, "--", script, env=env, input=input)


def _err_lines(r) -> list[str]:
    return r.stderr.decode().strip().splitlines()


# (limit, script, exit status, stdout, the one stderr line)
CASES = [
    ("max_output=10", "while :; do echo 0123456789; done", 125, b"0123456789",
     "vfsfuse: output limit: the script wrote more than 10 bytes and was killed"),
    ("max_output=0", "echo hi", 125, b"",
     "vfsfuse: output limit: the script wrote more than 0 bytes and was killed"),
    ("timeout=300ms", "echo started; while :; do :; done", 124, b"started\n",
     "vfsfuse: timeout: the script ran longer than 0.3 s and was killed"),
    ("wall_seconds=0.3", "echo started; sleep 5; echo late", None, b"started\n", None),
    ("sh_function_depth=5", "f() { echo $1; f $(($1+1)); }; f 1", None, b"1\n2\n3\n4\n5\n", None),
    ("cpu_seconds=0.2", "echo started; while :; do :; done", 137, b"started\n",
     "bash: CPU time limit exceeded (0.2s)"),
    ("output_bytes=5", "echo 0123456789; echo more", 137, None, "bash: output limit exceeded (5 bytes)"),
    ("file_bytes=100", "echo start; yes > /tmp/f; echo after", 137, b"start\n",
     "bash: file write limit exceeded (100 bytes)"),
    # SIGXFSZ ends the shell whose builtin wrote past RLIMIT_FSIZE, as in bash (see below)
    ("rlimit_fsize=4", "echo 0123456789 > /tmp/g", 128 + 25, b"", None),
    ("sh_loop_iterations=3", "for i in 1 2 3 4 5; do echo $i; done", 2, b"1\n2\n3\n",
     "bash: line 1: maximum loop iterations exceeded (3)"),
    ("sh_function_depth=5", "f() { f; }; f; echo after", None, None,
     "bash: line 1: f: maximum function nesting level exceeded (5)"),
    ("sh_commands=2", "echo a; echo b; echo c", None, b"a\nb\n", None),
    ("sh_brace_words=3", "echo {1..3}; echo {1..4}; echo after", 1, b"1 2 3\n",
     "bash: line 1: brace expansion: 4 words exceed the limit of 3"),
    ("sh_var_bytes=8", "x=$(echo 0123456789); echo \"[$x]\"", None, None, None),
    ("sh_parse_depth=3", "echo $( ( ( ( echo deep ) ) ) )", 2, b"", None),
    ("sh_script_bytes=10", "echo this script is longer than ten bytes", None, b"", None),
    ("sh_subst_depth=1", "echo $(echo $(echo in))", None, None, None),
    ("max_fds=5", "exec 5</dev/null 6</dev/null 7</dev/null 8</dev/null; echo no", 1, b"", None),
]


@pytest.mark.parametrize("limit, script, code, out, line", CASES, ids=[c[0] for c in CASES])
def test_limit_takes_effect(target, host_env, limit, script, code, out, line):
    r = _exec(target, host_env, limit, script=script)
    assert b"Traceback" not in r.stderr
    if code is not None:
        assert r.returncode == code, (r.stdout, r.stderr)
    if out is not None:
        assert r.stdout == out, r.stderr
    if line is not None:
        assert line in _err_lines(r), r.stderr
    # and the sandbox is still usable
    after = _exec(target, host_env, script="echo fine")
    assert (after.returncode, after.stdout) == (0, b"fine\n"), after.stderr


def test_sigxfsz_ends_the_shell_before_it_writes_again(store, host_env):
    """bash -c 'ulimit -f 0; echo x > f' dies of SIGXFSZ on that write's return: status 153 and
    no "write error" message (the kernel ends a killed process at its next syscall entry)."""
    for _ in range(5):  # it used to depend on the time slice whether the message got out
        r = _exec(store, host_env, "rlimit_fsize=4", script="echo 0123456789 > /tmp/g; echo never")
        assert (r.returncode, r.stdout, r.stderr) == (153, b"", b"")


def test_a_limit_of_zero_means_zero(target, host_env):
    r = _exec(target, host_env, "sh_commands=0", script="echo hi")
    assert r.stdout == b"" and r.returncode != 0
    r = _exec(target, host_env, "sh_loop_iterations=0", script="for i in 1; do echo $i; done")
    assert r.stdout == b"" and r.returncode != 0


def test_unlimited_lifts_a_limit_on_a_store(store, host_env):
    r = _exec(store, host_env, "sh_function_depth=unlimited",
              script="f() { if [ $1 -lt 300 ]; then f $(($1+1)); else echo $1; fi; }; f 0")
    assert (r.returncode, r.stdout) == (0, b"300\n"), r.stderr


def test_shell_reading_a_pipe_takes_limits(target, host_env):
    r = run_cli("shell", target, "--limit", "sh_loop_iterations=2", env=host_env,
                input=b"for i in a b c; do echo $i; done\n")
    assert r.stdout == b"a\nb\n", r.stderr
    assert "maximum loop iterations exceeded (2)" in r.stderr.decode()
    r = run_cli("shell", target, "--timeout", "0.3", env=host_env, input=b"echo go\nwhile :; do :; done\n")
    assert r.returncode == 124 and r.stdout == b"go\n"


@pytest.mark.mount
def test_a_session_may_only_lower_the_daemons_limits(store, new_mount, host_env):
    mnt = new_mount(store=store).path
    for limit, code in (("output_bytes=2G", "EPERM"), ("sh_function_depth=unlimited", "EPERM"),
                        ("max_processes=10", "EINVAL"), ("pipe_buffer=1K", "EINVAL")):
        r = _exec(mnt, host_env, limit, script="echo no")
        lines = _err_lines(r)
        assert r.returncode == 8 and len(lines) == 1 and lines[0].startswith(f"vfsfuse: {code}:"), r.stderr
        assert r.stdout == b""
    r = _exec(mnt, host_env, "output_bytes=1G", "sh_function_depth=256", script="echo same")
    assert (r.returncode, r.stdout) == (0, b"same\n"), r.stderr
    # the limits were the session's: the next one has the daemon's again
    r = _exec(mnt, host_env, "sh_loop_iterations=1", script="for i in 1 2; do :; done")
    assert r.returncode == 2
    r = _exec(mnt, host_env, script="for i in 1 2; do :; done; echo ok")
    assert (r.returncode, r.stdout) == (0, b"ok\n")


def test_kernel_wide_limits_on_a_store(store, host_env):
    r = _exec(store, host_env, "max_processes=3", script="(sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait); echo done")
    assert b"fork: Resource temporarily unavailable" in r.stderr, r.stderr
    r = _exec(store, host_env, "pipe_buffer=1K", script="ulimit -p")
    assert r.stdout == b"2\n", r.stderr  # ulimit -p counts 512-byte blocks


@pytest.mark.mount
def test_mount_limits_are_the_daemons_ceilings(store, new_mount, host_env):
    mnt = new_mount("--limit", "sh_loop_iterations=4", "--limit", "max_processes=6",
                    "--limit", "output_bytes=1M", store=store).path
    r = _exec(mnt, host_env, script="for i in 1 2 3 4 5; do echo $i; done")
    assert (r.returncode, r.stdout) == (2, b"1\n2\n3\n4\n"), r.stderr
    assert "maximum loop iterations exceeded (4)" in r.stderr.decode()
    # a session lowers it further, and may not raise it
    r = _exec(mnt, host_env, "sh_loop_iterations=2", script="for i in 1 2 3; do echo $i; done")
    assert r.stdout == b"1\n2\n"
    r = _exec(mnt, host_env, "sh_loop_iterations=5", script="echo no")
    assert r.returncode == 8 and _err_lines(r)[0].startswith("vfsfuse: EPERM: sh_loop_iterations=5 is above")
    r = _exec(mnt, host_env, "output_bytes=unlimited", script="echo no")
    assert r.returncode == 8 and "EPERM" in r.stderr.decode()
    r = _exec(mnt, host_env, script="(sleep 1 & sleep 1 & sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait)")
    assert b"fork: Resource temporarily unavailable" in r.stderr, r.stderr


def test_mount_usage_errors_for_limits(store, host_env, tmp_path):
    r = run_cli("mount", "--limit", "nosuch=1", store, str(tmp_path), env=host_env)
    assert r.returncode == 2 and r.stderr.decode().strip() == \
        "vfsfuse: --limit: unknown limit 'nosuch' (see --help for the names)"
    r = run_cli("mount", "--limit", "timeout=1", store, str(tmp_path), env=host_env)
    assert r.returncode == 2 and r.stderr.decode().strip() == \
        "vfsfuse: --limit: timeout is per run: give it to vfsfuse exec"


@pytest.mark.parametrize("where", ["store", pytest.param("mount", marks=pytest.mark.mount)])
def test_interactive_shell_takes_limits(where, store, new_mount, term_factory):
    from tests.sessions.conftest import VFSFUSE

    target = store if where == "store" else new_mount(store=store).path
    t = term_factory(target, argv=[VFSFUSE, "shell", target, "--limit", "sh_loop_iterations=2"])
    t.run("for i in a b c; do echo item-$i; done; echo after", "maximum loop iterations exceeded (2)")
    text = t.text()
    assert "item-a" in text and "item-b" in text and "item-c" not in text
