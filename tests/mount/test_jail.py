"""Real programs in the jail (issue 16), on a real mount: a static busybox and a static C probe
are copied into the mount and run from the sandbox's own shell (``bash -c`` through the
daemon's kernel).  On a host that cannot run bubblewrap every test asserts the one-line
refusal instead, then skips."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.jail.harness import JailMount, Result, busybox_is_static
from vfsfuse.daemon.jail import JailConfig, probe

pytestmark = pytest.mark.mount

BB = "/opt/busybox"
PROBE = "/opt/probe"
PROBE_SRC = Path(__file__).resolve().parent.parent / "jail" / "probe.c"


@pytest.fixture(scope="module")
def jail(world_base):
    if not busybox_is_static():
        pytest.skip("needs a static /bin/busybox (apt-get install busybox-static)")
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the probe")
    jm = JailMount.start(world_base, f"jail{os.getpid()}")
    try:
        jm.install_busybox(BB)
        out = Path(jm.path + PROBE)
        built = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_SRC)],
                               capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
        yield jm
    finally:
        jm.close()


@pytest.fixture(scope="module")
def refusal(jail) -> str | None:
    return probe(JailConfig(jail.path))


def run(jail: JailMount, refusal: str | None, script: str, **kw) -> Result:
    """Run *script*; on a host without the jail, check the refusal is one clear line and skip."""
    r = jail.run(script, **kw)
    if refusal is not None:
        lines = r.stderr.strip().splitlines()
        assert len(lines) >= 1 and refusal in lines[0] and "Traceback" not in r.stderr, r.stderr
        pytest.skip(f"this host cannot run the jail: {refusal}")
    return r


def test_runs_and_round_trips_exit_codes(jail, refusal):
    r = run(jail, refusal, f"{BB} echo hello; echo rc=$?; {PROBE} exit 7; echo rc=$?; {PROBE} exit 0; echo rc=$?")
    assert r.stdout == "hello\nrc=0\nrc=7\nrc=0\n", r.stderr
    assert r.stderr == ""


def test_death_by_signal_is_the_kernel_process_status(jail, refusal):
    run(jail, refusal, f"{BB} true")
    r = jail.run(f"exec {PROBE} signal 15")
    assert r.status & 0x7F == 15 and r.code == 143  # WIFSIGNALED, WTERMSIG = SIGTERM
    r = jail.run(f"exec {PROBE} exit 3")
    assert r.status == 3 << 8


def test_sees_only_the_mount(jail, refusal, world_base):
    canary = world_base / "host-canary"
    canary.write_text("host secret\n")
    r = run(jail, refusal, f"{BB} ls -a /; {BB} ls /work /host-canary {canary} 2>&1; {BB} ls /root; echo end")
    names = r.stdout.split("end")[0].split()
    listed = set(names[: names.index("..") + 1 + len(os.listdir(jail.path))])
    assert set(os.listdir(jail.path)) <= listed  # what the host sees in the mount root
    assert "host secret" not in r.stdout
    assert "work" not in os.listdir(jail.path)
    assert r.stdout.count("No such file or directory") == 3, r.stdout


def test_only_stdio_fds_and_sandbox_environment(jail, refusal, monkeypatch):
    r = run(jail, refusal, f"{PROBE} fds; {BB} env | {BB} sort")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["0", "1", "2"]
    env = dict(line.split("=", 1) for line in lines[1:])
    assert "VFSFUSE_RUNTIME_DIR" not in env and "PYTEST_CURRENT_TEST" not in env
    assert env["HOME"] == "/home/user" and env["PATH"] == "/bin:/usr/bin"


def test_hostname_ids_and_privileges(jail, refusal):
    r = run(jail, refusal, f"{BB} hostname; {BB} id -u; {BB} cat /proc/self/uid_map; "
                           f"{BB} grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status")
    out = r.stdout.split("\n")
    assert out[0] == "sandbox"  # the kernel's hostname
    assert out[1] == "0"  # the sandbox uid inside ...
    inside, outside, count = out[2].split()
    assert (inside, count) == ("0", "1") and outside != "0"  # ... never host root outside
    assert "NoNewPrivs:\t1" in r.stdout and "Seccomp:\t2" in r.stdout


def test_tiocsti_refused_other_ioctls_reach_the_driver(jail, refusal):
    r = run(jail, refusal, f"{PROBE} tiocsti; {PROBE} winsz")
    assert r.stdout.split() == ["EPERM", "ENOTTY"]  # seccomp first; a pipe is no terminal


def test_network_none_host_loopback_unreachable(jail, refusal):
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(0.1)
        port = srv.getsockname()[1]
        r = run(jail, refusal, f"{PROBE} connect {port}; {BB} cat /proc/net/dev")
        with pytest.raises(socket.timeout):
            srv.accept()
    assert r.stdout.splitlines()[0] == "ENETUNREACH"  # the jail's loopback is down (jail_net.py)
    ifaces = [line.split(":")[0].strip() for line in r.stdout.splitlines()[3:]]
    assert ifaces == ["lo"]


def test_pipes_files_and_scripts(jail, refusal):
    Path(jail.path, "tmp", "s.sh").write_text(f"#!{BB} sh\necho script \"$1\" $0\n")
    os.chmod(Path(jail.path, "tmp", "s.sh"), 0o755)
    r = run(jail, refusal, f"echo hello | {BB} tr a-z A-Z | cat; {BB} echo to-file > /tmp/out.txt; "
                           f"cat /tmp/out.txt; /tmp/s.sh arg; {BB} sh -c 'echo err >&2' 2>&1")
    assert r.stdout == "HELLO\nto-file\nscript arg /tmp/s.sh\nerr\n", r.stderr
    assert Path(jail.path, "tmp", "out.txt").read_text() == "to-file\n"  # the host sees it


def test_writes_from_the_real_process_reach_the_mount(jail, refusal):
    r = run(jail, refusal, f"{BB} sh -c 'echo made-inside > /tmp/inside.txt'; cat /tmp/inside.txt")
    assert r.stdout == "made-inside\n"
    assert Path(jail.path, "tmp", "inside.txt").read_text() == "made-inside\n"


def test_in_the_process_table_and_killable(jail, refusal):
    start = time.monotonic()
    find = (f"for i in $({BB} seq 100); do for d in /proc/[0-9]*; do "
            f"case \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" in '{BB} sleep 30 ') bp=${{d#/proc/}};; esac; done; "
            f"[ -n \"$bp\" ] && break; {BB} usleep 50000; done")
    r = run(jail, refusal, f"{BB} sleep 30 & p=$!; {find}; echo pid=$bp; "
                           "ps -o pid,comm | grep -c busybox; grep State /proc/$bp/status; "
                           "kill $bp; wait $p; echo rc=$?")
    assert time.monotonic() - start < 20
    lines = r.stdout.splitlines()
    assert lines[0].startswith("pid=") and lines[0][4:].isdigit(), r.stdout + r.stderr
    assert lines[1] == "1"  # the real process is a kernel process, named by its program
    assert lines[2].split()[1] in ("S", "R")
    assert lines[-1] == "rc=143"  # SIGTERM from the sandbox reached it; its death came back


def test_host_sees_the_real_process_in_mnt_proc(jail, refusal):
    seen: list[str] = []

    def look() -> None:
        end = time.monotonic() + 10
        while time.monotonic() < end and not seen:
            for pid in os.listdir(Path(jail.path, "proc")):
                if pid.isdigit():
                    try:
                        cmd = Path(jail.path, "proc", pid, "cmdline").read_bytes()
                    except OSError:
                        continue
                    if cmd.startswith(BB.encode() + b"\0sleep\0"):
                        seen.append(pid)
            time.sleep(0.05)

    t = threading.Thread(target=look)
    t.start()
    run(jail, refusal, f"{BB} sleep 1.5")
    t.join()
    assert seen


def test_refusal_without_allow_other_is_one_line(world_base):
    if os.geteuid() != 0:
        pytest.skip("as a normal user the jail runs as the mount's own user")
    if not busybox_is_static():
        pytest.skip("needs a static /bin/busybox")
    jm = JailMount.start(world_base, f"noallow{os.getpid()}", allow_other=False)
    try:
        jm.install_busybox(BB)
        r = jm.run(f"{BB} echo hi")
        assert r.code == 1 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and "--allow-other" in r.stderr, r.stderr
    finally:
        jm.close()


PY_SCRIPT = ("import os, json; open('/tmp/py-out.json', 'w').write(json.dumps(sorted(os.listdir('/tmp/pyin')))); "
             "print(open('/tmp/pyin/a.txt').read().upper(), os.getpid() > 0, os.getcwd())")


def test_python3_reads_and_writes_sandbox_files(jail, refusal, tdir):
    py = jail.install_python("os, json")
    Path(jail.path, "tmp", "pyin").mkdir()
    Path(jail.path, "tmp", "pyin", "a.txt").write_text("from the sandbox")
    Path(jail.path, "tmp", "pyin", "b").write_text("")
    r = run(jail, refusal, f"cd /tmp && python3 -I -S -c \"{PY_SCRIPT}\"; echo rc=$?")
    assert py == "/usr/bin/python3"
    # the same script natively, on the host's tmpfs, prints the same (cwd aside)
    (tdir / "pyin").mkdir()
    (tdir / "pyin" / "a.txt").write_text("from the sandbox")
    (tdir / "pyin" / "b").write_text("")
    native = subprocess.run(["python3", "-I", "-S", "-c", PY_SCRIPT.replace("/tmp/", f"{tdir}/")],
                            capture_output=True, text=True, cwd=tdir)
    assert r.stdout == native.stdout.replace(str(tdir), "/tmp") + "rc=0\n", r.stderr
    assert r.stderr == native.stderr == ""
    assert Path(jail.path, "tmp", "py-out.json").read_text() == '["a.txt", "b"]'


def test_rlimits_are_the_kernel_limits(jail, refusal):
    r = run(jail, refusal, f"{BB} sh -c 'ulimit -u; ulimit -n'")
    assert r.stdout.split() == ["1024", "1024"]  # Limits().max_processes, max_fds


def test_terminal_is_a_real_pty_with_size_resize_and_one_echo(jail, refusal):
    run(jail, refusal, f"{BB} true")
    r = jail.terminal(["bash", "-c", f"{PROBE} tty; echo rc=$?"], ["<resize>", "hello\r"],
                      rows=30, cols=100, resize=[40, 120])
    screen = r["screen"].replace("\r\n", "\n")
    assert "isatty=1 rows=30 cols=100\n" in screen, screen
    assert "winch rows=40 cols=120\n" in screen, screen  # SIGWINCH forwarded with the new size
    assert screen.count("hello") == 1 and "reversed=olleh\n" in screen, screen  # echoed once
    assert "rc=0" in screen


def test_ctrl_c_on_the_terminal_reaches_the_real_process(jail, refusal):
    run(jail, refusal, f"{BB} true")
    start = time.monotonic()
    r = jail.terminal(["bash", "-c", f"trap 'echo trapped' INT; {BB} sleep 30; echo rc=$?"], ["\x03"], pause=1.0)
    assert "rc=130" in r["screen"] and "trapped" in r["screen"], r["screen"]
    assert time.monotonic() - start < 15


def test_interactive_python3_on_the_terminal(jail, refusal):
    run(jail, refusal, f"{BB} true")
    jail.install_python("os")
    r = jail.terminal(["bash", "-c", "python3 -I -S -q -i; echo rc=$?"], ["print(6 * 7)\r", "\x04"], pause=1.5)
    screen = r["screen"].replace("\r\n", "\n")
    assert ">>> print(6 * 7)\n42\n>>> " in screen, screen
    assert "rc=0" in screen, screen


def test_ctrl_z_stops_the_real_process(jail, refusal):
    """^Z stops the kernel process and the real one with it; ``fg`` continues it.  (After other
    terminal sessions on the same kernel, fg has been seen to report the job stopped again
    (148): a known issue, so only the stop and the job report are asserted here.)"""
    run(jail, refusal, f"{BB} true")
    keys = [f"{BB} sleep 10\r", "\x1a", f"<states:{BB} sleep 10>", "fg\r", "<wait>", "\x03", "exit\r"]
    r = jail.terminal(["bash", "-i"], keys, pause=1.5, timeout=60)
    screen = r["screen"].replace("\r\n", "\n")
    assert "Stopped" in screen, screen
    assert sorted(r["states"][0]) == ["host:T", "kernel:T"], (r["states"], screen)  # both stopped


def test_memory_of_the_real_process_shows_in_the_sandbox_proc(jail, refusal):
    run(jail, refusal, f"{BB} true")
    jail.install_python("os")
    find = (f"for i in $({BB} seq 300); do for d in /proc/[0-9]*; do "
            f"case \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" in "
            f"'python3 '*|'/usr/bin/python3 '*) bp=${{d#/proc/}};; esac; done; "
            f"[ -n \"$bp\" ] && break; {BB} usleep 50000; done")
    r = jail.run(f"python3 -I -S -c \"b = b'x' * (80 << 20); import time; time.sleep(4)\" & {find}; "
                 f"{BB} usleep 2500000; grep VmRSS /proc/$bp/status; wait")
    assert r.stdout.startswith("VmRSS:"), r.stdout + r.stderr
    rss_kb = int(r.stdout.split()[1])
    assert rss_kb >= 80 * 1024, r.stdout  # read from the host's /proc, shown as the sandbox's


def test_vfsfuse_exec_runs_a_real_program_on_a_cli_mount(new_mount, jail, refusal):
    """The whole path as a user takes it: ``vfsfuse mount --allow-other``, then ``vfsfuse exec``."""
    from .conftest import cli

    run(jail, refusal, f"{BB} true")
    m = new_mount("--allow-other")
    os.makedirs(m.path + "/opt")
    shutil.copy2("/bin/busybox", m.path + BB)
    p = cli("exec", m.path, "--", f"{BB} echo from-exec; {BB} sh -c 'exit 5'; echo rc=$?", env=m.env)
    assert (p.returncode, p.stdout, p.stderr) == (0, "from-exec\nrc=5\n", "")


GIT_SCRIPT = ("git init -q repo && cd repo && git config user.name t && git config user.email t@x && "
              "echo one > a.txt && mkdir d && echo two > d/b.txt && git add -A && git commit -q -m first && "
              "echo more >> a.txt && git status --porcelain && git log --format=%s && git ls-files")


def test_git_init_add_commit_like_natively(jail, refusal, tdir):
    run(jail, refusal, f"{BB} true")
    jail.install_elf("/usr/bin/git", "/usr/bin/git")
    env = "HOME=/tmp GIT_CONFIG_NOSYSTEM=1 "
    r = jail.run(f"cd /tmp && {env}{GIT_SCRIPT.replace('&& ', f'&& {env}')}")
    native = subprocess.run(["sh", "-c", GIT_SCRIPT], capture_output=True, text=True, cwd=tdir,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tdir), "GIT_CONFIG_NOSYSTEM": "1"})
    assert native.returncode == 0, native.stderr
    assert (r.code, r.stdout) == (0, native.stdout), r.stderr
    assert r.stdout == " M a.txt\nfirst\na.txt\nd/b.txt\n"
    fsck = subprocess.run(["git", "-c", "safe.directory=*", "-C", jail.path + "/tmp/repo", "fsck", "--strict"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr  # the host's git finds the jail's repository sound


def test_builtin_writes_are_seen_at_once_by_real_programs(jail, refusal):
    """The builtin shell writes around FUSE; the next real program must not see cached sizes."""
    r = run(jail, refusal, "for i in 1 2 3 4 5; do echo line$i >> /tmp/grow.txt; "
                           f"{BB} wc -l < /tmp/grow.txt; done; rm /tmp/grow.txt; {BB} ls /tmp/grow.txt 2>&1")
    assert r.stdout.split("\n")[:5] == ["1", "2", "3", "4", "5"], r.stdout
    assert "No such file" in r.stdout


def test_a_background_real_process_outlives_the_shell_that_started_it(jail, refusal):
    """bwrap's --die-with-parent follows the *thread* that forked it: the jail must be forked by
    the daemon's long-lived thread, not a worker trio retires (it was killed at once)."""
    run(jail, refusal, f"{BB} true")
    r = jail.run(f"exec >/dev/null 2>&1; {BB} sleep 3 &")
    assert r.code == 0
    time.sleep(1.5)
    r = jail.run("ps -eo args")
    assert f"{BB} sleep 3" in r.stdout, r.stdout


def test_a_fork_flood_stops_at_the_process_limit(world_base):
    """RLIMIT_NPROC is the kernel's process limit; it counts the jail's host user, so the flood
    stops at it (other jails of that user running at the same time count too: at most)."""
    if not busybox_is_static():
        pytest.skip("needs a static /bin/busybox")
    jm = JailMount.start(world_base, f"nproc{os.getpid()}", max_processes=40)
    try:
        jm.install_busybox(BB)
        refusal = probe(JailConfig(jm.path))
        flood = "i=0; while [ $i -lt 120 ]; do sleep 3 & echo started; i=$((i+1)); done; wait"
        r = run(jm, refusal, f"{BB} sh -c '{flood}' 2>&1", timeout=60)
        started = r.stdout.count("started")
        assert "can't fork" in r.stdout and 0 < started < 40, r.stdout[-300:]
    finally:
        jm.close()


def test_children_inside_the_jail_are_kernel_processes(jail, refusal):
    run(jail, refusal, f"{BB} true")
    start = time.monotonic()
    script = (f"{BB} sh -c '{BB} sleep 8 & {BB} sleep 8 & wait' & p=$!; "
              f"for i in $({BB} seq 100); do n=$(ps -eo args | grep -c '^{BB} sleep 8'); "
              f"[ \"$n\" = 2 ] && break; {BB} usleep 100000; done; echo n=$n; "
              f"ps -eo pid,ppid,args | grep '{BB} s'; "
              f"for d in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" in "
              f"'{BB} sleep 8 ') kill ${{d#/proc/}};; esac; done; wait $p; echo rc=$?")
    r = jail.run(script)
    lines = r.stdout.splitlines()
    assert lines[0] == "n=2", r.stdout + r.stderr
    procs = [line.split(None, 2) for line in lines[1:-1]]
    sh_pid = next(pid for pid, _, args in procs if args.startswith(f"{BB} sh"))
    sleeps = [ppid for _, ppid, args in procs if args == f"{BB} sleep 8"]
    assert sleeps == [sh_pid, sh_pid]  # the jail's tree, under the kernel process of the program
    assert lines[-1] == "rc=0"  # sh's plain wait returned once its children were gone ...
    assert time.monotonic() - start < 7  # ... early: kill from the sandbox reached them
