"""Unit tests of the interpreter: what the differential corpus cannot show (limits, signals,
scheduling, the VFS command lookup, never a traceback)."""

from __future__ import annotations

import time

import pytest
import trio

from kernel.errors import KernelError
from kernel.limits import Limits
from tests.shell.shellsupport import boot, run_sh


async def _run(script: str, limits: Limits | None = None, shell: str = "bash", **kw):
    async with trio.open_nursery() as n:
        k = await boot(n, limits=limits)
        try:
            return await run_sh(k, script, shell=shell, **kw)
        finally:
            await k.shutdown()
            n.cancel_scope.cancel()


def _out(r) -> str:
    return r.stdout.decode()


def _err(r) -> str:
    return r.stderr.decode()


# ---------------------------------------------------------------- basics
async def test_echo_and_status():
    r = await _run("echo hi; exit 3")
    assert _out(r) == "hi\n" and r.returncode == 3


async def test_syntax_error_exit_2_no_traceback():
    r = await _run("echo a\nif then\n")
    assert r.returncode == 2
    assert "syntax error" in _err(r) and "Traceback" not in _err(r)
    assert _out(r) == "a\n"


@pytest.mark.parametrize("script", [
    "echo ${x!}", "echo $((1/0))", "cat < /nonexistent", "exec 99<&-; echo x >&99",
    "declare -A a; a=(x)", "readonly r=1; unset r", "echo $(( 2 ** -1 ))", "[[ a =~ ( ]]",
    "printf '%d' x", "shift 99", "f() { f; }; f", "set -o nosuch", "trap x NOSIG", "kill -NOSIG 1",
    "x=(1 2); echo ${x[abc-]}", "cd /nonexistent", "read -t x", "wait %9", "fg %3",
])
async def test_errors_never_traceback(script):
    r = await _run(script)
    assert "Traceback" not in _err(r) and "internal error" not in _err(r), _err(r)


async def test_command_not_found():
    r = await _run("nosuch")
    assert r.returncode == 127
    assert _err(r) == "bash: line 1: nosuch: command not found\n"


# ---------------------------------------------------------------- programs in the VFS
async def test_path_lookup_and_command_v():
    r = await _run("command -v cat; type -p echo; hash cat; echo $?")
    assert _out(r) == "/bin/cat\n0\n"


async def test_script_without_shebang_runs_as_script():
    async with trio.open_nursery() as n:
        k = await boot(n)
        await k.vfs.write_file("/tmp/s", b"echo from script $1\nexit 4\n")
        await k.vfs.chmod("/tmp/s", 0o755)
        r = await run_sh(k, "/tmp/s arg; echo $?")
        assert _out(r) == "from script arg\n4\n"
        await k.vfs.write_file("/tmp/h", b"#!/bin/sh\necho shebang $0\n")
        await k.vfs.chmod("/tmp/h", 0o755)
        r = await run_sh(k, "/tmp/h")
        assert _out(r) == "shebang /tmp/h\n"
        await k.vfs.write_file("/tmp/nx", b"echo x\n")
        await k.vfs.chmod("/tmp/nx", 0o644)
        r = await run_sh(k, "/tmp/nx; echo $?")
        assert _out(r) == "126\n" and "Permission denied" in _err(r)
        await k.shutdown()
        n.cancel_scope.cancel()


async def test_sh_file_and_stdin_script():
    async with trio.open_nursery() as n:
        k = await boot(n)
        await k.vfs.write_file("/tmp/f.sh", b"echo $0 $#\n")
        r = await k.run(["sh", "/tmp/f.sh", "a", "b"])
        assert r.stdout == b"/tmp/f.sh 2\n"
        r = await k.run(["bash"], input=b"echo from stdin\n")
        assert r.stdout == b"from stdin\n"
        r = await k.run(["sh", "/tmp/missing.sh"])
        assert r.returncode == 127
        await k.shutdown()
        n.cancel_scope.cancel()


async def test_startup_ignores_env_and_exported_functions():
    async with trio.open_nursery() as n:
        k = await boot(n)
        await k.vfs.write_file("/tmp/rc", b"echo SOURCED\n")
        r = await k.run(["bash", "-c", "echo ok; type f 2>/dev/null; echo ${SHELLOPTS-unset}"],
                        env={"ENV": "/tmp/rc", "BASH_ENV": "/tmp/rc", "BASH_FUNC_f%%": "() { echo evil; }",
                             "SHELLOPTS": "xtrace"})
        assert r.stdout == b"ok\nunset\n"
        await k.shutdown()
        n.cancel_scope.cancel()


# ---------------------------------------------------------------- limits
async def test_function_depth_limit():
    r = await _run("f() { f; }; f; echo never", Limits(sh_function_depth=50))
    assert r.returncode != 0 and _out(r) == ""
    assert _err(r).strip().endswith("maximum function nesting level exceeded (50)")


async def test_loop_limit_zero_means_zero():
    r = await _run("while :; do :; done; echo never", Limits(sh_loop_iterations=0))
    assert r.returncode != 0 and "maximum loop iterations exceeded (0)" in _err(r)


async def test_loop_limit_holds_through_eval_source_trap_alias():
    lim = Limits(sh_loop_iterations=100)
    for script in ("eval 'while :; do :; done'",
                   "echo 'while :; do :; done' > /tmp/l; . /tmp/l",
                   "trap 'while :; do :; done' USR1; kill -USR1 $$; :",
                   "shopt -s expand_aliases\nalias spin='while :; do :; done'\nspin"):
        r = await _run(script, lim)
        assert "maximum loop iterations exceeded (100)" in _err(r), script


async def test_command_limit():
    r = await _run("i=0; while :; do i=$((i+1)); done", Limits(sh_commands=1000))
    assert r.returncode != 0 and "maximum number of commands exceeded (1000)" in _err(r)


async def test_brace_expansion_limit():
    r = await _run("echo {1..100000000}; echo never")
    assert r.returncode != 0 and _out(r) == "" and "brace expansion" in _err(r)


async def test_variable_size_limit():
    r = await _run("x=$(yes); echo never", Limits(sh_var_bytes=1 << 20))
    assert r.returncode != 0 and _out(r) == "" and "size limit" in _err(r)


async def test_deep_nesting_is_a_syntax_error():
    r = await _run("echo " + "$(" * 10000 + "x" + ")" * 10000)
    assert r.returncode == 2 and "nesting" in _err(r)
    r = await _run("echo $((" + "(" * 10000 + "1" + ")" * 10000 + "))")
    assert r.returncode != 0 and "Traceback" not in _err(r)


async def test_fork_bomb_is_contained():
    """The bomb hits the process limit (forks fail with a message, not a traceback); the
    kernel keeps working and one group kill ends it."""
    from kernel.kernel import DEVNULL
    async with trio.open_nursery() as n:
        k = await boot(n, limits=Limits(max_processes=64))
        h = await k.spawn(["bash", "-c", ":(){ :|:& };:"], stdout=DEVNULL, stderr=DEVNULL)
        assert await h.wait() == 0
        await trio.sleep(0.3)
        k.kill(-h.proc.pid, 9)
        r = None
        for _ in range(50):  # killed processes leave the table as they are reaped
            await trio.sleep(0.1)
            try:
                r = await run_sh(k, "echo still working")
                break
            except KernelError as e:
                assert e.code == "EAGAIN", e
        assert r is not None and r.stdout == b"still working\n"
        await k.shutdown()
        n.cancel_scope.cancel()


async def test_readonly_vs_unset_declare_export():
    r = await _run("readonly r=1; unset r; declare r=2; export r=3; r=4; echo $r")
    assert "readonly" in _err(r)
    assert _out(r) == ""  # the plain assignment error ends a non-interactive shell


# ---------------------------------------------------------------- signals and scheduling
async def test_busy_loop_is_killable_and_does_not_starve():
    async with trio.open_nursery() as n:
        k = await boot(n)
        await run_sh(k, "true")  # the first run imports the shell
        h = await k.spawn(["bash", "-c", "while :; do :; done"])
        await trio.sleep(0.05)
        lags = []
        for _ in range(50):
            t = time.perf_counter()
            await trio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)
        lags.sort()
        # the loop yields every few dozen commands; the tail allows for a loaded test machine
        assert lags[len(lags) * 9 // 10] < 0.02, lags
        assert lags[-1] < 0.2, lags
        h.kill(9)
        status = await h.wait()
        assert status & 0x7F == 9
        h2 = await k.spawn(["bash", "-c", "while :; do :; done"])
        await trio.sleep(0.05)
        h2.kill(2)
        assert (await h2.wait()) & 0x7F == 2
        await k.shutdown()
        n.cancel_scope.cancel()


async def test_int_trap_runs_after_foreground_command():
    r = await _run("trap 'echo caught; exit 5' INT; (sleep 0.05; kill -INT $$) & sleep 0.3; echo after")
    assert _out(r) == "caught\n" and r.returncode == 5


async def test_pipeline_stages_are_processes_and_pipestatus():
    r = await _run("echo $BASHPID > /tmp/p; (echo $BASHPID) | cat > /tmp/q; "
                   "[ \"$(cat /tmp/p)\" != \"$(cat /tmp/q)\" ] && echo differ; "
                   "true | false | (exit 3); echo ${PIPESTATUS[*]}")
    assert _out(r) == "differ\n0 1 3\n"


async def test_heredoc_larger_than_a_pipe_buffer():
    body = "".join(f"line {i}\n" for i in range(20000))
    r = await _run(f"cat <<'EOF' | {{ n=0; while read l; do n=$((n+1)); done; echo $n; }}\n{body}EOF\n")
    assert _out(r) == "20000\n"


async def test_jobs_and_wait():
    r = await _run("sleep 0.05 & jobs; wait %1; echo $?; kill %1 2>/dev/null; echo $?")
    out = _out(r).splitlines()
    assert out[0].startswith("[1]+") and out[1] == "0" and out[2] == "1"


# ---------------------------------------------------------------- speed
async def test_builtin_loop_speed():
    """A loop of builtins stays cheap (the bench compares with bash; this only guards
    against falling off a cliff): 20,000 iterations well under 3 s."""
    t = time.perf_counter()
    r = await _run("x=0; for ((i=1;i<=20000;i++)); do x=$((x+i)); done; echo $x", timeout=60)
    dt = time.perf_counter() - t
    assert _out(r) == "200010000\n"
    assert dt < 3, dt


async def test_a_binary_file_is_refused_and_programs_see_the_word_typed():
    """bash's rule: a file exec refuses (ENOEXEC) runs as a script unless a NUL comes before
    its first newline; and argv[0] is the command word, not the path found for it."""
    async with trio.open_nursery() as n:
        k = await boot(n)
        await k.vfs.write_file("/tmp/bin", b"\x7fELF\x02\x01\x01\x00\x00\x00\nrest")
        await k.vfs.chmod("/tmp/bin", 0o755)
        r = await run_sh(k, "/tmp/bin; echo $?")
        assert _out(r) == "126\n" and _err(r) == "bash: /tmp/bin: cannot execute binary file: Exec format error\n"
        await k.vfs.write_file("/tmp/argv0", b"#!/bin/sh\necho \"$0\"\n")
        await k.vfs.chmod("/tmp/argv0", 0o755)
        r = await run_sh(k, "cd /tmp && ./argv0; PATH=/tmp:$PATH argv0")
        assert _out(r) == "./argv0\n/tmp/argv0\n"  # a script gets the path it was run by
        await k.shutdown()


async def test_a_background_command_is_its_own_job():
    """``cmd &``: $! is the command's pid (kill reaches it, not a shell around it), and no
    shell lingers holding the caller's output after the command redirected its own."""
    async with trio.open_nursery() as n:
        k = await boot(n)
        t = time.monotonic()
        r = await run_sh(k, "sleep 3 >/dev/null 2>&1 & echo started")
        assert _out(r) == "started\n" and time.monotonic() - t < 2.5
        r = await run_sh(k, "sleep 30 & kill %1; wait %1; echo $?; sleep 30 & kill $!; wait $!; echo $?")
        assert _out(r) == "143\n143\n"
        procs = [p for p in k.processes.processes() if p.argv[1:] == ["30"] and p.state != "Z"]
        assert procs == []  # killed, not orphaned behind a wrapper
        await k.shutdown()
