"""``vfsfuse.Sandbox``: the same behaviour in process (memory, an unmounted store) and through a
mount's daemon: results, files, no state between plain runs, persistent sessions, per-call
limits (0 means 0), and nothing of the host reachable."""

from __future__ import annotations

import os

import pytest

import vfsfuse
from kernel.errors import KernelError
from tests.sessions.conftest import CANARY_ENV, CANARY_VALUE


@pytest.fixture(params=["memory", "store", pytest.param("mount", marks=pytest.mark.mount)])
def sb(request, store, new_mount, runtime_env, monkeypatch):
    # the API finds a mount's daemon through the runtime records, as the CLI does
    monkeypatch.setenv("VFSFUSE_RUNTIME_DIR", runtime_env["VFSFUSE_RUNTIME_DIR"])
    if request.param == "memory":
        target = None
    elif request.param == "store":
        target = store
    else:
        target = new_mount(store=store).path
    with vfsfuse.Sandbox(target) as box:
        yield box


def test_run_result(sb):
    sb.run("mkdir -p /src/pkg")
    sb.write_file("/src/a.py", "# TODO: one\nx = 1\n")
    sb.write_file("/src/pkg/b.py", b"# TODO: two\n")
    r = sb.run("grep -r TODO /src | wc -l")
    assert (r.stdout, r.stderr, r.exit_code) == ("2\n", "", 0)
    r = sb.run("echo to-err >&2; exit 9")
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("", "to-err\n", 9, False)
    assert sb.read_file("/src/a.py") == b"# TODO: one\nx = 1\n"


def test_input_and_env_and_cwd(sb):
    assert sb.run("tr a-z A-Z", input="shout\n").stdout == "SHOUT\n"
    assert sb.run("echo $GREETING", env={"GREETING": "hi"}).stdout == "hi\n"
    assert sb.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    with pytest.raises(KernelError) as e:
        sb.run("pwd", cwd="/no/such/dir")
    assert e.value.code == "ENOENT"


def test_no_state_between_plain_runs(sb):
    sb.run("x=leaked; f() { echo fn; }; cd /tmp; alias ll=ls; set -e; export Y=1")
    r = sb.run('echo "[${x-}][${Y-}]"; pwd; type f 2>/dev/null || echo nofn; alias ll 2>/dev/null || echo noalias; '
               'case $- in *e*) echo errexit;; *) echo noerrexit;; esac')
    assert r.stdout == "[][]\n/home/user\nnofn\nnoalias\nnoerrexit\n"


def test_files_persist_between_runs(sb):
    sb.run("echo kept > /tmp/state.txt")
    assert sb.run("cat /tmp/state.txt").stdout == "kept\n"


def test_session_keeps_state(sb):
    with sb.session() as s:
        s.run("counter=1; inc() { counter=$((counter+1)); }; cd /tmp; shopt -s nullglob")
        s.run("inc; inc")
        r = s.run('echo "$counter $PWD"; shopt -q nullglob && echo nullglob-on')
        assert r.stdout == "3 /tmp\nnullglob-on\n"
        r = s.run("echo oops >&2; false")
        assert (r.stderr, r.exit_code) == ("oops\n", 1)
        assert s.run("echo $?").stdout == "1\n"
        r = s.run("exit 4")
        assert r.exit_code == 4 and s.ended
        with pytest.raises(KernelError):
            s.run("echo after")
    # the session's state did not leak into plain runs
    assert sb.run('echo "[${counter-}]"').stdout == "[]\n"


def test_session_timeout_keeps_the_session(sb):
    with sb.session() as s:
        s.run("v=before")
        r = s.run("while :; do :; done", timeout=0.3)
        assert r.exit_code == 124 and r.timed_out
        assert r.stderr == "vfsfuse: timeout: the script ran longer than 0.3 s and was killed\n"
        assert s.run("echo $v").stdout == "before\n"


def test_timeout(sb):
    r = sb.run("echo start; while :; do :; done", timeout=0.3)
    assert (r.exit_code, r.timed_out, r.stdout) == (124, True, "start\n")
    assert sb.run("echo ok").stdout == "ok\n"


@pytest.mark.parametrize("limit", [0, 1, 100])
def test_output_limit(sb, limit):
    r = sb.run("while :; do echo 0123456789; done", max_output=limit)
    assert r.exit_code == 125 and r.output_limited
    assert len(r.stdout_bytes) == limit
    assert r.stderr.endswith(f"more than {limit} bytes and was killed\n")
    assert sb.run("echo small", max_output=6).stdout == "small\n"


def test_sandbox_defaults_apply_per_call():
    with vfsfuse.Sandbox(timeout=0.3, max_output=5) as box:
        assert box.run("while :; do :; done").exit_code == 124
        assert box.run("echo 123456789").stdout == "12345"
        assert box.run("echo 123456789", max_output=100).stdout == "123456789\n"


def test_no_host_env_or_paths(sb, tmp_path, monkeypatch):
    monkeypatch.setenv(CANARY_ENV, CANARY_VALUE)
    canary = tmp_path / "canary.txt"
    canary.write_text("host file\n")
    r = sb.run(f"export -p; cat {canary}; ls {tmp_path}; echo $$ $PPID")
    assert CANARY_VALUE not in r.stdout + r.stderr
    assert "host file" not in r.stdout
    pids = r.stdout.split("\n")[-2].split()
    assert str(os.getpid()) not in pids


def test_memory_sandbox_is_gone_after_close():
    with vfsfuse.Sandbox() as a:
        a.write_file("/tmp/x", "1")
    with vfsfuse.Sandbox() as b:
        assert b.run("test -e /tmp/x").exit_code == 1


def test_store_changes_are_kept(store):
    with vfsfuse.Sandbox(store) as a:
        a.run("echo saved > /home/user/notes")
    with vfsfuse.Sandbox(store) as b:
        assert b.read_file("/home/user/notes") == b"saved\n"


def test_bad_target_is_an_error(tmp_path):
    with pytest.raises(KernelError) as e:
        vfsfuse.Sandbox(str(tmp_path))
    assert e.value.code == "EINVAL"


def _live_pids(sb) -> set[str]:
    r = sb.run("ls /proc")
    return {n for n in r.stdout.split() if n.isdigit()}


def test_background_jobs_do_not_outlive_a_run(sb):
    base = _live_pids(sb)
    r = sb.run("sleep 30 & echo $!")
    assert r.exit_code == 0 and r.stdout.strip().isdigit()
    assert r.stdout.strip() not in _live_pids(sb)
    assert len(_live_pids(sb)) == len(base)


def test_fork_bomb_leaves_the_sandbox_usable(sb):
    r = sb.run(":(){ :|:& };:", timeout=5)
    assert r.exit_code in (0, 124, 254) or r.stderr
    assert sb.run("echo alive").stdout == "alive\n"
    assert len(_live_pids(sb)) <= 4  # init + the ls of _live_pids and its shell (+ one spare)


def test_kernel_limits_of_an_in_process_sandbox(store):
    with vfsfuse.Sandbox(store, limits=vfsfuse.Limits(sh_loop_iterations=50)) as box:
        r = box.run("while :; do :; done")
        assert r.exit_code != 0 and "maximum loop iterations exceeded (50)" in r.stderr
        assert box.run("for i in 1 2 3; do :; done; echo fine").stdout == "fine\n"


@pytest.mark.mount
def test_kernel_limits_are_refused_for_a_mount(new_mount, runtime_env, monkeypatch):
    monkeypatch.setenv("VFSFUSE_RUNTIME_DIR", runtime_env["VFSFUSE_RUNTIME_DIR"])
    m = new_mount()
    with pytest.raises(KernelError) as e:
        vfsfuse.Sandbox(m.path, limits=vfsfuse.Limits())
    assert e.value.code == "EINVAL"
