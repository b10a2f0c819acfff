"""``vfsfuse exec``: the script's status is ours, stdio passes through, the environment is the
sandbox's (plus --env, never the host's), --cwd is a directory inside, limits end the script
with one line.  Run on an unmounted store (in-process kernel) and on a real mount."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.sessions.conftest import CANARY_ENV, CANARY_VALUE, run_cli

CASES = [
    # (script, stdin): run by the host's bash in an empty directory and by ``vfsfuse exec``;
    # status and stdout must match, and stderr must be empty in both or in neither
    ("exit 3", None),
    ("true", None),
    ("false", None),
    ("echo out; echo err >&2", None),
    ("cat", b"piped in\n"),
    ("read a b; echo \"$b $a\"", b"one two\n"),
    ("nosuchcommand", None),
    ("echo ${", None),
    ("for i in 1 2 3; do echo $i; done | wc -l", None),
    ("f() { return 42; }; f", None),
    ("kill -9 $$", None),
    ("set -e; false; echo not reached", None),
    ("(exit 5); echo $?", None),
    ("head -c 5", b"abcdefgh"),
    ("exit 300", None),
]


def host_bash(script: str, stdin: bytes | None, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], input=stdin or b"", capture_output=True, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, timeout=30)


@pytest.fixture(params=["store", pytest.param("mount", marks=pytest.mark.mount)])
def target(request, store, new_mount) -> str:
    """An unmounted store (kernel in the CLI's process) or a real mount (the daemon's kernel)."""
    if request.param == "store":
        return store
    return new_mount(store=store).path


@pytest.mark.parametrize("script, stdin", CASES, ids=[c[0][:30] for c in CASES])
def test_exec_status_and_stdio_match_bash(target, host_env, tmp_path, script, stdin):
    want = host_bash(script, stdin, tmp_path)
    r = run_cli("exec", target, "--", script, env=host_env, input=stdin if stdin is not None else b"")
    code = want.returncode if want.returncode >= 0 else 128 - want.returncode  # killed: as a shell says
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout == want.stdout
    assert bool(r.stderr) == bool(want.stderr), (r.stderr, want.stderr)
    assert b"Traceback" not in r.stderr


def test_exec_sees_the_sandbox_environment_only(target, host_env):
    r = run_cli("exec", target, "--env", "ADDED=yes", "--", "export -p; echo \"[$HOME][$PWD]\"",
                env=host_env)
    text = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert CANARY_ENV not in text and CANARY_VALUE not in text
    assert 'ADDED="yes"' in text
    assert "[/home/user][/home/user]" in text
    assert os.getcwd() not in text.replace("/home/user", "")  # the host's cwd is never passed in
    for name in ("VFSFUSE_RUNTIME_DIR", "LC_ALL", "XDG_RUNTIME_DIR"):
        assert f"{name}=" not in text


def test_exec_cwd_is_inside(target, host_env):
    r = run_cli("exec", target, "--cwd", "/tmp", "--", "pwd", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"/tmp\n"), r.stderr
    r = run_cli("exec", target, "--cwd", "/tmp/../etc/..", "--", "pwd", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"/\n"), r.stderr
    r = run_cli("exec", target, "--cwd", "/no/such", "--", "pwd", env=host_env)
    assert r.returncode == 8
    assert r.stderr.decode().strip() == "vfsfuse: ENOENT: --cwd /no/such: no such file or directory"


def test_exec_timeout(target, host_env):
    r = run_cli("exec", target, "--timeout", "0.5", "--", "echo started; while :; do :; done", env=host_env)
    assert r.returncode == 124
    assert r.stdout == b"started\n"
    assert r.stderr.decode().strip().splitlines() == [
        "vfsfuse: timeout: the script ran longer than 0.5 s and was killed"]
    # the sandbox is still usable afterwards
    r = run_cli("exec", target, "--", "echo fine", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"fine\n")


def test_exec_output_limit(target, host_env):
    r = run_cli("exec", target, "--max-output", "10", "--", "while :; do echo 0123456789; done", env=host_env)
    assert r.returncode == 125
    assert r.stdout == b"0123456789"
    assert r.stderr.decode().strip() == "vfsfuse: output limit: the script wrote more than 10 bytes and was killed"


def test_exec_no_host_paths_reachable(target, host_env, tmp_path):
    canary = tmp_path / "host-canary.txt"
    canary.write_text("host secret\n")
    r = run_cli("exec", target, "--", f"cat {canary}; ls /; cat /etc/hostname 2>&1", env=host_env)
    assert b"host secret" not in r.stdout
    assert str(tmp_path).encode() not in r.stdout.replace(str(canary).encode() + b": No such", b"")


def test_exec_usage_errors_are_one_line(store, host_env):
    r = run_cli("exec", store, "--env", "novalue", "--", "true", env=host_env)
    assert r.returncode == 2 and len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
    r = run_cli("exec", "/nonexistent-target", "--", "true", env=host_env)
    assert r.returncode == 8 and r.stderr.decode().startswith("vfsfuse: ENOENT:"), r.stderr


def test_shell_with_piped_commands_runs_them(target, host_env):
    """``vfsfuse shell X < script``: no terminal, so a plain shell reads the commands (as ssh)."""
    r = run_cli("shell", target, env=host_env, input=b"echo piped-$((1+2))\nx=4; echo $x\nexit 6\n")
    assert (r.returncode, r.stdout, r.stderr) == (6, b"piped-3\n4\n", b"")
