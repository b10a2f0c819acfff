"""Sessions on a real mount: the control socket (where, its mode, who may use it), several
shells attached at once with their processes in MOUNTPOINT/proc, ``vfsfuse ps``, memory
mounts, and the daemon surviving clients that vanish."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time

import pytest

from tests.sessions.conftest import NOBODY, Term, proc_pids, run_cli

pytestmark = pytest.mark.mount


def test_socket_in_run_dir_private(new_mount):
    m = new_mount()
    sock = os.path.join(m.store, "run", "control.sock")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    m.umount()
    assert not os.path.exists(sock)  # removed at unmount


def test_other_user_cannot_connect(new_mount, host_env):
    m = new_mount("--allow-other")
    r = run_cli("exec", m.path, "--", "echo hi", env=host_env, user=NOBODY)
    assert r.returncode == 8, r.stdout
    line = r.stderr.decode().strip()
    assert line.startswith("vfsfuse: EACCES:") and len(line.splitlines()) == 1, line


@pytest.mark.allow_log_warnings
def test_peer_credentials_refuse_another_uid(new_mount, host_env):
    """Even when the file modes would let another user in, the daemon checks SO_PEERCRED."""
    m = new_mount("--allow-other")
    run = os.path.join(m.store, "run")
    sock = os.path.join(run, "control.sock")
    modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in (m.store, run, sock)}
    try:
        for p in modes:
            os.chmod(p, 0o777)
        r = run_cli("exec", m.path, "--", "echo hi", env=host_env, user=NOBODY)
    finally:
        for p, mode in modes.items():
            os.chmod(p, mode)
    assert r.returncode == 8 and r.stdout == b""
    assert r.stderr.decode().strip() == (f"vfsfuse: EACCES: uid {NOBODY} may not use this mount's sandbox "
                                         "(only the user who mounted it, or root)")
    # the owner still gets in
    r = run_cli("exec", m.path, "--", "echo hi", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"hi\n")


def test_two_shells_at_once_visible_in_proc(new_mount, host_env):
    m = new_mount()
    t1 = Term(m.path, dict(host_env)).start()
    t2 = Term(m.path, dict(host_env)).start()
    try:
        t1.run("echo $$ > /tmp/pid1", "root@sandbox:~#")
        t2.run("echo $$ > /tmp/pid2", "root@sandbox:~#")
        p1 = int(open(os.path.join(m.path, "tmp/pid1")).read())
        p2 = int(open(os.path.join(m.path, "tmp/pid2")).read())
        assert p1 != p2
        procs = proc_pids(m.path)
        assert procs.get(p1) == "bash" and procs.get(p2) == "bash", procs
        # each shell has its own terminal
        t1.run("tty", "/dev/pts/")
        t2.run("tty", "/dev/pts/")
        tty1 = [ln for ln in t1.lines() if ln.startswith("/dev/pts/")][0]
        tty2 = [ln for ln in t2.lines() if ln.startswith("/dev/pts/")][0]
        assert tty1 != tty2
        # vfsfuse ps lists both with the host's procps
        r = run_cli("ps", m.path, "-eo", "pid,comm", env=host_env)
        assert r.returncode == 0, r.stderr
        rows = {int(ln.split()[0]): ln.split()[1] for ln in r.stdout.decode().splitlines()[1:]}
        assert rows.get(p1) == "bash" and rows.get(p2) == "bash", r.stdout
        assert rows.get(1) == "init"
        # closing one leaves the other working
        t1.close()
        t2.run("echo still-here", "still-here")
        deadline = time.monotonic() + 10
        while p1 in proc_pids(m.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p1 not in proc_pids(m.path)
    finally:
        t1.close()
        t2.close()


def test_ps_options_pass_through(new_mount, host_env):
    m = new_mount()
    r = run_cli("ps", m.path, "-o", "pid=,comm=", "-p", "1", env=host_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["1", "init"]


def test_ps_of_a_non_mount_is_one_line(tmp_path, host_env):
    r = run_cli("ps", str(tmp_path), env=host_env)
    assert r.returncode == 8
    assert r.stderr.decode().startswith("vfsfuse: ENOENT:") and len(r.stderr.decode().splitlines()) == 1


def test_memory_mount_has_a_socket(new_mount, host_env):
    m = new_mount(memory=True)
    r = run_cli("exec", m.path, "--", "echo in-memory > /tmp/f; cat /tmp/f", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"in-memory\n"), r.stderr
    runtime = host_env["VFSFUSE_RUNTIME_DIR"]
    socks = [n for n in os.listdir(runtime) if n.endswith(".sock")]
    assert socks and all(stat.S_IMODE(os.stat(os.path.join(runtime, n)).st_mode) == 0o600 for n in socks)


def test_daemon_survives_clients_that_vanish(new_mount, host_env):
    m = new_mount()
    sock_path = os.path.join(m.store, "run", "control.sock")
    for junk in (b"", b"garbage that is not a frame", b"J\x00\x00\x00\x05{bad}", b"J\xff\xff\xff\xff"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        s.sendall(junk)
        s.close()
    p = subprocess.Popen([run_cli.__globals__["VFSFUSE"], "exec", m.path, "--", "while :; do :; done"],
                         env=host_env)
    time.sleep(1)
    p.kill()
    p.wait()
    r = run_cli("exec", m.path, "--", "echo alive", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"alive\n"), r.stderr


def test_session_client_leaving_mid_run_ends_it(new_mount, host_env):
    """A persistent session whose client vanishes while a script runs: the shell and the script
    are gone from MNT/proc, and the daemon serves the next client."""
    import json
    import struct

    m = new_mount()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(m.store, "run", "control.sock"))

    def send(obj: dict) -> None:
        body = json.dumps(obj).encode()
        s.sendall(struct.pack(">BI", ord("J"), len(body)) + body)

    send({"op": "session"})
    send({"op": "run", "script": "echo $$ > /tmp/session-pid; while :; do :; done"})
    pid_file = os.path.join(m.path, "tmp/session-pid")
    deadline = time.monotonic() + 20
    while not (os.path.exists(pid_file) and open(pid_file).read().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(open(pid_file).read())
    assert pid in proc_pids(m.path)
    s.close()
    deadline = time.monotonic() + 10
    while pid in proc_pids(m.path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid not in proc_pids(m.path)
    r = run_cli("exec", m.path, "--", "echo next", env=host_env)
    assert (r.returncode, r.stdout) == (0, b"next\n")


def test_ps_unprivileged(new_mount, host_env, world_base):
    """As another user (a user namespace owns the private mounts): the list, or one clear line."""
    m = new_mount("--allow-other")
    os.chmod(m.path, 0o755)
    r = run_cli("ps", m.path, "-o", "pid=,comm=", env=host_env, user=NOBODY)
    if r.returncode == 0:
        assert r.stdout.decode().split()[:2] == ["1", "init"]
    else:
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vfsfuse: EPERM: cannot give ps a private /proc"), lines


def test_unmount_while_a_shell_is_attached(new_mount, host_env):
    """The daemon going away ends the attached shell; the host terminal comes back cooked."""
    import pexpect

    from tests.sessions.conftest import VFSFUSE

    m = new_mount()
    child = pexpect.spawn("sh", ["-c", f"{VFSFUSE} shell {m.path}; echo rc=$?; stty -a"], env=host_env,
                          dimensions=(24, 80), timeout=60)
    child.expect("sandbox:")
    r = m.umount()
    assert r.returncode == 0, r.stderr
    child.expect(r"rc=(\d+)")
    assert int(child.match.group(1)) != 0
    child.expect(pexpect.EOF)
    assert "-icanon" not in child.before.decode()


def test_mounted_store_named_by_its_path(new_mount, host_env):
    """``vfsfuse exec STORE`` of a mounted store goes to its daemon, found through the store
    (its lock and run directory) even without the runtime records."""
    m = new_mount()
    env = {k: v for k, v in host_env.items() if k != "VFSFUSE_RUNTIME_DIR"}
    r = run_cli("exec", m.store, "--", "echo $$ > /tmp/through-daemon; cat /proc/1/comm", env=env)
    assert (r.returncode, r.stdout) == (0, b"init\n"), r.stderr
    assert os.path.exists(os.path.join(m.path, "tmp/through-daemon"))  # the mount's own kernel ran it
