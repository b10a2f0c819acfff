"""The procps family in one kernel: ps formats and selections, kill/pkill/pgrep on real
sandbox processes, pstree, uptime, free, top -b, and canaries that nothing of the host shows.
(The comparison with the host's own procps over the same /proc is tests/mount/test_procps_programs.py.)"""

from __future__ import annotations

import os
import re
import shlex
import socket
from typing import Any, Awaitable, Callable

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs.procps_fmt import bsdtime, cputime, etime
from kernel.programs.procps_proc import parse_stat, tty_name
from kernel.programs.procps_sys import pretty_uptime, scale
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs

ENV = {"PATH": "/bin:/usr/bin", "HOME": "/root", "LC_ALL": "C", "TZ": "UTC"}

Step = Callable[[Kernel], Awaitable[Any]]


def in_kernel(body: Step, env: dict | None = None) -> Any:
    async def main() -> Any:
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=standard_registry(), env=dict(env or ENV),
                            hostname="box")
            await kernel.boot(nursery)
            try:
                return await body(kernel)
            finally:
                await kernel.shutdown()
    return trio.run(main)


async def sh(kernel: Kernel, script: str) -> tuple[int, str, str]:
    """Run *script* with sh, or directly when it has no shell syntax (so that no parent
    shell's command line shows up in what pgrep -f or ps see)."""
    argv = shlex.split(script) if not set(script) & set(";|&$<>()`*?") else ["sh", "-c", script]
    r = await kernel.run(argv, timeout=30)
    code = r.status >> 8 if r.status & 0x7F == 0 else 128 + (r.status & 0x7F)
    return code, r.stdout.decode(), r.stderr.decode()


def run(script: str, spawn: tuple[list[str], ...] = ()) -> tuple[int, str, str]:
    async def body(kernel: Kernel) -> tuple[int, str, str]:
        for argv in spawn:
            await kernel.spawn(argv, stdin="pipe")
        if spawn:
            await trio.sleep(0.3)  # let shells start their children
        return await sh(kernel, script)
    return in_kernel(body)


# ---- pure helpers ------------------------------------------------------------------------
def test_time_formats():
    assert cputime(0) == "00:00:00" and cputime(3661) == "01:01:01" and cputime(90061) == "1-01:01:01"
    assert bsdtime(0) == "0:00" and bsdtime(3725) == "62:05"
    assert etime(5) == "00:05" and etime(3605) == "01:00:05" and etime(86400 + 5) == "1-00:00:05"


def test_parse_stat_takes_the_comm_up_to_the_last_paren():
    t = parse_stat(b"7 (a) b)) S 1 7 7 34816 7 4194304 0 0 0 0 3 4 0 0 20 0 1 0 55 9437184 256 0\n")
    assert t is not None and t.comm == "a) b)" and t.ppid == 1 and t.tty == "pts/0"
    assert t.utime == 3 and t.stime == 4 and t.start_ticks == 55 and t.rss_pages == 256
    assert parse_stat(b"garbage") is None
    assert tty_name(0) == "?" and tty_name((136 << 8) | 5) == "pts/5"


def test_free_scaling_as_procps():
    assert scale(9756, 0, True, False) == "9.5Mi"
    assert scale(491532, 0, True, False) == "480Mi"
    assert scale(23806900, 0, True, False) == "22Gi"
    assert scale(0, 0, True, False) == "0B"
    assert scale(1048576, 0, False, False) == "1048576" and scale(1024, 1, False, False) == "1048576"
    assert scale(1048576, 3, False, False) == "1024"
    assert pretty_uptime(0) == "up 0 minutes" and pretty_uptime(3 * 3600 + 60) == "up 3 hours, 1 minute"


# ---- ps ----------------------------------------------------------------------------------
def test_ps_ef_lists_every_process_with_its_parent_and_args():
    code, out, err = run("ps -ef", spawn=(["sleep", "30"], ["cat", "-", "a b"]))
    assert code == 0 and not err
    lines = out.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert re.fullmatch(r"UID {10}PID {4}PPID  C STIME TTY {10}TIME CMD", lines[0])  # pid_max: 7 digits
    rows = {line.split(None, 7)[7]: line.split() for line in lines[1:]}
    assert rows["init"][1] == "1" and rows["init"][2] == "0"
    assert rows["sleep 30"][0] == "root" and rows["sleep 30"][2] == "1"
    assert "cat - a b" in rows and any(k.endswith("ps -ef") for k in rows)


def test_ps_o_keys_headers_and_no_headers():
    code, out, _ = run("ps -o pid=,comm=NAME -p 1")
    assert code == 0 and out == "        NAME\n      1 init\n"
    code, out, _ = run("ps --no-headers -o pid,stat -p 1")
    assert re.fullmatch(r"      1 [RS]s\n", out)
    code, out, _ = run("ps -p 1 -o pid,ppid,pgid,sid,uid,user,tty,stat,time,etime,nice,pri,rss,vsz,%cpu,%mem,comm")
    head, row = out.splitlines()
    assert head.split() == ["PID", "PPID", "PGID", "SID", "UID", "USER", "TT", "STAT", "TIME", "ELAPSED",
                            "NI", "PRI", "RSS", "VSZ", "%CPU", "%MEM", "COMMAND"]
    f = row.split()
    assert f[:7] == ["1", "0", "1", "1", "0", "root", "?"] and f[7][1:] == "s" and f[10:12] == ["0", "19"]
    assert f[-1] == "init" and re.fullmatch(r"\d+\.\d", f[-3]) and re.fullmatch(r"\d+\.\d", f[-2])


def test_ps_selection_sort_and_errors():
    spawn = (["sleep", "30"], ["sleep", "31"])
    code, out, _ = run("ps -e -o pid= --sort=-pid | head -3", spawn)
    pids = [int(x) for x in out.split()]
    assert pids == sorted(pids, reverse=True)
    code, out, _ = run("ps -u root -o comm= | sort -u", spawn)
    assert "sleep" in out.split() and "init" in out.split()
    code, out, _ = run("ps -u nobody-here -o pid=")
    assert code == 1 and out == ""
    code, out, err = run("ps -p 999999")
    assert code == 1 and out.split() == ["PID", "TTY", "TIME", "CMD"]
    code, out, err = run("ps -o nosuchkey")
    assert code == 1 and 'unknown user-defined format specifier "nosuchkey"' in err
    code, out, err = run("ps --sort=bogus -e")
    assert code == 1 and err
    code, out, err = run("ps -p abc")
    assert code == 1 and "process ID list syntax error" in err


def test_ps_aux_and_bsd_forms():
    code, out, _ = run("ps aux", spawn=(["sleep", "30"],))
    assert out.splitlines()[0].split() == ["USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT",
                                            "START", "TIME", "COMMAND"]
    assert any(line.endswith(" sleep 30") for line in out.splitlines())
    code, out, _ = run("ps ax")
    assert out.splitlines()[0].split() == ["PID", "TTY", "STAT", "TIME", "COMMAND"]


def test_ps_default_shows_the_callers_terminal_and_user():
    """Without options: same euid and same terminal as ps itself (procps's rule)."""
    async def body(kernel: Kernel) -> str:
        await kernel.spawn(["sleep", "30"])  # no terminal: not shown on the terminal's ps
        h = await kernel.open_terminal(["sh", "-c", "ps; sleep 0.2"], cols=80)
        out = b""
        with trio.move_on_after(10):
            while True:
                try:
                    data = await h.read(65536)
                except Exception:
                    break
                if not data:
                    break
                out += data
        return out.decode().replace("\r\n", "\n")
    out = in_kernel(body)
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "TTY", "TIME", "CMD"]
    cmds = [line.split()[-1] for line in lines[1:]]
    assert "ps" in cmds and "sh" in cmds and "sleep" not in cmds
    assert all(" pts/" in line for line in lines[1:])


def test_ps_truncates_to_columns():
    async def body(kernel: Kernel) -> tuple[int, str, str]:
        await kernel.spawn(["cat", "-", "x" * 200], stdin="pipe")
        return await sh(kernel, "env COLUMNS=60 ps -ef")
    code, out, _ = in_kernel(body)
    assert max(len(line) for line in out.splitlines()) == 60


# ---- kill, pgrep, pkill --------------------------------------------------------------------
def test_kill_signals_a_sandbox_process():
    async def body(kernel: Kernel) -> tuple:
        h = await kernel.spawn(["sleep", "30"])
        r = await sh(kernel, f"kill -0 {h.pid} && kill -s USR1 {h.pid}")
        status = await h.wait()
        h2 = await kernel.spawn(["sleep", "30"])
        r2 = await sh(kernel, f"kill -9 {h2.pid}")
        status2 = await h2.wait()
        return r, status, r2, status2
    r, status, r2, status2 = in_kernel(body)
    assert r[0] == 0 and status & 0x7F == 10
    assert r2[0] == 0 and status2 & 0x7F == 9


def test_kill_of_a_host_pid_is_esrch():
    """The test's own pid (a host process) does not exist inside the sandbox."""
    host_pid = os.getpid()
    code, out, err = run(f"/bin/kill -0 {host_pid}; echo $?; /bin/kill {host_pid}")
    if host_pid < 50:  # would collide with a sandbox pid
        pytest.skip("host pid too small to be distinct")
    assert out == "1\n" and code == 1 and f"({host_pid}): No such process" in err


def test_kill_listings_and_usage():
    assert run("kill -l 9")[1] == "KILL\n" and run("kill -l TERM")[1] == "15\n"
    assert run("kill -l")[1].split()[:3] == ["HUP", "INT", "QUIT"]
    code, out, err = run("kill")
    assert code == 1 and "Usage:" in err
    code, out, err = run("kill -FOO 1")
    assert code == 1 and err


def test_pgrep_and_pkill():
    async def body(kernel: Kernel) -> tuple:
        a = await kernel.spawn(["sleep", "30"])
        b = await kernel.spawn(["sleep", "31"])
        c = await kernel.spawn(["cat", "-", "marker"], stdin="pipe")
        res = {
            "plain": await sh(kernel, "pgrep sleep"),
            "l": await sh(kernel, "pgrep -l sle"),
            "x": await sh(kernel, "pgrep -x slee"),
            "f": await sh(kernel, "pgrep -a -f marker"),
            "n": await sh(kernel, "pgrep -n sleep"),
            "o": await sh(kernel, "pgrep -o sleep"),
            "c": await sh(kernel, "pgrep -c sleep"),
            "d": await sh(kernel, "pgrep -d, sleep"),
            "u": await sh(kernel, "pgrep -u root -x cat"),
            "none": await sh(kernel, "pgrep no-such-process"),
            "v": await sh(kernel, "pgrep -v -x sleep"),
            "bad": await sh(kernel, "pgrep"),
            "kill": await sh(kernel, "pkill -HUP -x sleep"),
        }
        sa, sb = await a.wait(), await b.wait()
        res["e"] = await sh(kernel, "pkill -e -f marker")
        sc = await c.wait()
        return res, (a.pid, b.pid, c.pid), (sa, sb, sc)
    res, (a, b, c), (sa, sb, sc) = in_kernel(body)
    assert res["plain"] == (0, f"{a}\n{b}\n", "")
    assert res["l"][1] == f"{a} sleep\n{b} sleep\n"
    assert res["x"][0] == 1
    assert res["f"][1] == f"{c} cat - marker\n"
    assert res["n"][1] == f"{b}\n" and res["o"][1] == f"{a}\n"
    assert res["c"][1] == "2\n" and res["d"][1] == f"{a},{b}\n"
    assert res["u"][1] == f"{c}\n"
    assert res["none"][0] == 1 and res["bad"][0] == 2
    inverted = {int(x) for x in res["v"][1].split()}  # -v negates the whole match
    assert c in inverted and 1 in inverted and not {a, b} & inverted
    assert res["kill"][0] == 0 and sa & 0x7F == 1 and sb & 0x7F == 1
    assert res["e"] == (0, f"cat killed (pid {c})\n", "") and sc & 0x7F == 15


# ---- pstree, uptime, free, top -------------------------------------------------------------
def test_pstree_layouts():
    spawn = (["sleep", "30"], ["sleep", "30"], ["sh", "-c", "sleep 40; true"])
    code, out, _ = run("pstree", spawn)
    lines = out.splitlines()
    assert lines[0].startswith("init-+-") and "2*[sleep]" in out and "sh---sleep" in out
    code, out, _ = run("pstree -p 1", spawn)
    assert out.startswith("init(1)-+-") and re.search(r"sleep\(\d+\)", out)
    code, out, _ = run("pstree -a", spawn)
    assert out.splitlines()[0] == "init" and "  |-sleep 30" in out
    assert run("pstree 999999") == (0, "", "")


def test_uptime_free_top_formats():
    code, out, _ = run("uptime")
    assert re.fullmatch(r" \d\d:\d\d:\d\d up +\d+ min, +0 user,  load average: \d\.\d\d, \d\.\d\d, \d\.\d\d\n", out)
    code, out, _ = run("free")
    lines = out.splitlines()
    assert lines[0].split() == ["total", "used", "free", "shared", "buff/cache", "available"]
    mem = lines[1].split()
    assert mem[0] == "Mem:" and mem[1] == str(1 << 20) and int(mem[2]) + int(mem[3]) == 1 << 20
    assert lines[2].split() == ["Swap:", "0", "0", "0"]
    assert run("free -h")[1].splitlines()[1].split()[1] == "1.0Gi"
    assert run("free -m -t")[1].splitlines()[3].split()[:2] == ["Total:", "1024"]
    code, out, err = run("free -c 2 -s 0.01")
    assert code == 0 and out.count("Mem:") == 2
    code, out, _ = run("top -b -n 1", spawn=(["sleep", "30"],))
    lines = out.splitlines()
    assert lines[0].startswith("top - ") and lines[1].startswith("Tasks:")
    assert lines[2].startswith("%Cpu(s):") and lines[3].startswith("MiB Mem :")
    assert lines[6].split()[:3] == ["PID", "USER", "PR"]
    assert any(line.split()[-1] == "sleep" for line in lines[7:])
    code, out, _ = run("top -b -n 2 -d 0.01 -p 1")
    assert out.count("top - ") == 2 and out.count(" init\n") == 2
    assert run("top -n 1")[0] == 1  # not batch and not a terminal


# ---- canaries: nothing of the host ---------------------------------------------------------
def test_no_host_identity_shows():
    host = socket.gethostname()
    try:
        import pwd
        host_users = {p.pw_name for p in pwd.getpwall()} - {"root"}
    except ImportError:  # pragma: no cover
        host_users = set()
    code, out, err = run("ps -ef; ps aux; pstree -a; top -b -n 1; uptime; free; uname -a; hostname; id; "
                         "whoami; groups; mount", spawn=(["sleep", "30"],))
    assert code == 0, err
    text = out + err
    assert "box" in text
    if host not in ("box", "sandbox", "localhost") and len(host) > 3:
        assert host not in text
    assert not {u for u in host_users if len(u) > 3 and re.search(rf"\b{re.escape(u)}\b", text)}
    pids = {int(x) for x in run("ps -e -o pid=")[1].split()}
    assert pids and max(pids) < 100 and os.getpid() not in pids or os.getpid() < 100
    assert os.uname().release not in text or os.uname().release == "6.1.0-sandbox"


def test_cpu_time_shows_in_stat_ps_and_top():
    """utime is the CPU the kernel charged the process: a busy shell loop shows up."""
    code, out, err = run("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
                         "cat /proc/$$/stat; ps -o pcpu= -p $$")
    stat_line, pcpu = out.splitlines()
    utime = int(stat_line.rsplit(")", 1)[1].split()[11])
    assert utime > 10 and float(pcpu) > 10.0


def test_top_on_a_terminal_draws_frames_until_q():
    async def body(kernel: Kernel) -> tuple[str, int]:
        h = await kernel.open_terminal(["sh", "-c", "top -d 0.2; stty; echo done"], rows=10, cols=50)
        out = b""
        with trio.move_on_after(15):
            while b"top - " not in out or out.count(b"\x1b[2J") < 2:
                out += await h.read(65536)
            await h.write(b"q")
            while b"done" not in out:
                data = await h.read(65536)
                if not data:
                    break
                out += data
        return out.decode(errors="replace"), await h.wait()
    text, status = in_kernel(body)
    frames = text.split("\x1b[H\x1b[2J")[1:]
    assert len(frames) >= 2 and status == 0
    first = frames[0].replace("\r\n", "\n").split("\n")
    assert first[0].startswith("top - ") and len(first) <= 10 and max(map(len, first)) <= 50
    assert "-echo" not in text.split("\x1b[2J")[-1]  # the terminal's settings are back
    assert text.rstrip().endswith("done")


def test_proc_tty_drivers_names_the_pty_major():
    """procps finds a terminal's name through /proc/tty/drivers (136:N is pts/N)."""
    code, out, _ = run("cat /proc/tty/drivers")
    assert "pty_slave            /dev/pts      136 0-1048575 pty:slave\n" in out
