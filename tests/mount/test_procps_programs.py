"""Our ps/pgrep/pstree/free/uptime/top beside the host's procps over the same /proc.

A real store is mounted by the real daemon (run in a child process with a small JSON command
channel on stdin: spawn a sandbox process, run a sandbox command).  The host's tools read the
mount's ``/proc`` (and ``/dev``: procps checks a terminal's name against ``/dev/pts/N``) in a
private mount and pid namespace (``unshare``; they need /proc/self, which
``ProcConfig.host_self_pid`` gives them); ours run inside the sandbox.  Ours see one
process more (themselves): that row is removed before comparing, and the figures it changes
(its memory, the load it adds) are checked as differences of exactly that process.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_store

pytestmark = pytest.mark.mount

SERVER = r'''
import base64, json, sys
import trio
from kernel.errors import KernelError
from vfsfuse.daemon.config import MountConfig
from vfsfuse.daemon.serve import Daemon


class ProcpsDaemon(Daemon):
    async def _after_mount(self) -> None:
        await super()._after_mount()
        k = self.kernel
        k.procfs.config.host_self_pid = 1  # host procps needs /proc/self (it is pid 1 in its namespace)
        handles = []
        stdin = trio.lowlevel.FdStream(0)
        buf = b""
        while True:
            data = await stdin.receive_some(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                try:
                    if req["op"] == "spawn":
                        h = await k.spawn(req["argv"], stdin="pipe")
                        handles.append(h)
                        reply = {"pid": h.pid}
                    elif req["op"] == "terminal":
                        t = await k.open_terminal(req["argv"])
                        handles.append(t)
                        reply = {"pid": t.pid}
                    elif req["op"] == "signal":
                        k.kill(req["pid"], req["sig"])
                        reply = {}
                    elif req["op"] == "run":
                        r = await k.run(req["argv"], env=req.get("env"), timeout=60)
                        reply = {"status": r.status, "stdout": base64.b64encode(r.stdout).decode(),
                                 "stderr": base64.b64encode(r.stderr).decode()}
                    elif req["op"] == "sleep":
                        await trio.sleep(req["seconds"])
                        reply = {}
                    else:
                        for h in handles:
                            h.kill(9)
                        reply = {}
                except KernelError as e:
                    reply = {"error": e.code}
                print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    ProcpsDaemon(MountConfig(mountpoint=sys.argv[2], store=sys.argv[1]),
                 lambda: print("ready", flush=True)).run()
'''

HOST_ENV = {"TZ": "UTC", "LC_ALL": "C", "PATH": "/usr/bin:/bin"}


class Sandbox:
    """The daemon child and its command channel."""

    def __init__(self, base: Path) -> None:
        repo = Path(__file__).resolve().parents[2]
        self.store = make_store(base / "store")
        self.mnt = base / "mnt"
        self.mnt.mkdir()
        script = base / "serve.py"
        script.write_text(SERVER)
        env = dict(os.environ, PYTHONPATH=str(repo), VFSFUSE_RUNTIME_DIR=str(base))
        self.proc = subprocess.Popen([sys.executable, str(script), self.store, str(self.mnt)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=str(repo))
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            self.close()
            raise AssertionError("daemon did not start: " + (self.proc.stderr.read() if self.proc.stderr else ""))

    def request(self, **kw) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def spawn(self, *argv: str) -> int:
        return self.request(op="spawn", argv=list(argv))["pid"]

    def ours(self, cmd: str) -> tuple[int, str, str]:
        r = self.request(op="run", argv=shlex.split(cmd), env=HOST_ENV)
        assert "error" not in r, r
        return (r["status"] >> 8, base64.b64decode(r["stdout"]).decode(),
                base64.b64decode(r["stderr"]).decode())

    def host(self, cmd: str) -> tuple[int, str, str]:
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--propagation", "private",
                            "sh", "-c", f"mount --bind {self.mnt}/proc /proc && "
                            f"mount --bind {self.mnt}/dev /dev && exec {cmd}"],
                           capture_output=True, text=True, timeout=60, env=HOST_ENV)
        return r.returncode, r.stdout, r.stderr

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.request(op="stop")
        except (OSError, ValueError, json.JSONDecodeError):
            pass
        subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True)
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("needs /dev/fuse and fusermount3")
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ps"):
        pytest.skip("needs root, unshare and procps")
    base = tmp_path_factory.mktemp("procps")
    os.chmod(base, 0o755)
    box = Sandbox(base)
    try:
        box.spawn("sleep", "600")
        box.spawn("sleep", "600")
        box.spawn("cat", "-", "two words")
        box.pid_sh = box.spawn("sh", "-c", "sleep 601 & sleep 602; wait")
        box.spawn("sh", "-c", "true & exec cat")  # cat never waits: its child stays a zombie
        box.request(op="terminal", argv=["sh", "-c", "sleep 603; true"])  # pts/0, foreground: S+
        box.request(op="signal", pid=box.spawn("sleep", "604"), sig=19)  # stopped: T
        for _ in range(100):  # until every shell has started its children
            _, out, _ = box.ours("ps -e -o stat=,args=")
            if all(x in out for x in ("sleep 601", "sleep 602", "sleep 603", "<defunct>", "\nT")):
                break
            box.request(op="sleep", seconds=0.1)
        box.request(op="sleep", seconds=0.2)
        yield box
    finally:
        box.close()


def mask_cpu(text: str) -> str:
    """Blank the %CPU and C columns: they divide CPU ticks by the time since a process
    started, and the host's ps and ours read /proc a fraction of a second apart.  Both are
    right-aligned and fixed-width (4 and 2), so their characters sit under their headers."""
    lines = text.splitlines()
    if not lines:
        return text
    spans = [(m.end() - (4 if m.group() == "%CPU" else 2), m.end())
             for m in re.finditer(r"(?<!\S)(%CPU|C)(?!\S)", lines[0])]
    out = [lines[0]]
    for line in lines[1:]:
        for start, end in spans:
            line = line[:start] + "#" * (end - start) + line[end:]
        out.append(line)
    return "\n".join(out) + "\n"


def without_self(ours: str, host: str, name: str) -> list[str]:
    """Our lines minus the one row of our own process (which the host cannot see); where the
    format shows a command, that row names *name*."""
    mine = ours.splitlines()
    theirs = host.splitlines()
    extra = [line for line in mine if line not in theirs]
    assert len(extra) == 1, (ours, host)
    if re.search(r"CMD|COMMAND", mine[0] if mine else ""):
        assert re.search(rf"\b{name}\b", extra[0]), extra
    mine.remove(extra[0])
    return mine


PS_CASES = [
    "ps -ef", "ps -e", "ps aux", "ps ax", "ps -ej", "ps -e -f --sort=-pid",
    "ps -eo pid,ppid,pgid,sid,uid,user,tty,stat,time,cmd,comm,args,%cpu,%mem,rss,vsz,nice,pri",
    "ps -eo pid=,comm=NAME,args", "ps -e --no-headers -o pid,stat,ucmd", "ps -u root -o pid,user,comm",
    "ps -eo user=USERNAME_LONG,pid,tname,s,sz,c,nlwp,stime", "ps -e -o pid,args --sort=args",
    "ps -e -o comm,pid --sort=comm,-pid", "ps -eo pid,ppid,cmd -ww",
    "ps -ef --forest", "ps axf", "ps auxf", "ps -ejH", "ps -eH -o pid,args",
    "ps -el", "ps -elf", "ps -eF", "ps -ely", "ps -elF", "ps axl", "ps axj", "ps -eo pid,wchan,opri",
    "ps -eo pid,lstart,start,bsdstart,cls,rtprio,comm",
    "ps -eo pid,ucmd,comm,ucomm,fname,args,stat,vsz,rss",
]


@pytest.mark.parametrize("cmd", PS_CASES)
def test_ps_matches_host_procps(sandbox, cmd):
    for attempt in range(3):  # STIME/START are minutes: retry across a minute boundary
        hcode, host, herr = sandbox.host(cmd)
        ocode, ours, oerr = sandbox.ours(cmd)
        assert hcode == 0 and ocode == 0, (herr, oerr)
        try:
            assert without_self(ours, host, "ps") == host.splitlines()
            return
        except AssertionError:
            pass
        try:  # the same but for %CPU / C (see mask_cpu); their arithmetic is unit-tested
            assert without_self(mask_cpu(ours), mask_cpu(host), "ps") == mask_cpu(host).splitlines()
            return
        except AssertionError:
            if attempt == 2:
                raise
            sandbox.request(op="sleep", seconds=0.3)


@pytest.mark.parametrize("cmd", ["ps -p 1 -o pid,comm", "ps -p 999999", "ps -o foo", "ps -p 1,2 -o pid="])
def test_ps_selected_rows_and_errors_match_host(sandbox, cmd):
    hcode, host, herr = sandbox.host(cmd)
    ocode, ours, oerr = sandbox.ours(cmd)
    assert (ocode, ours, bool(oerr)) == (hcode, host, bool(herr))


@pytest.mark.parametrize("cmd", ["pgrep sleep", "pgrep -l sleep", "pgrep -a -f words", "pgrep -x slee",
                                 "pgrep -c sleep", "pgrep -n sleep", "pgrep -o -l sleep", "pgrep -u root -x cat",
                                 "pgrep -d, -x sleep", "pgrep -f -l 'sleep 60[12]'", "pgrep", "pgrep -P 1 -x sh"])
def test_pgrep_matches_host(sandbox, cmd):
    hcode, host, herr = sandbox.host(cmd)
    ocode, ours, oerr = sandbox.ours(cmd)  # (no -v: the host's pgrep is pid 1 in its namespace)
    assert (ocode, ours, bool(oerr)) == (hcode, host, bool(herr))


def test_pstree_of_a_subtree_matches_host(sandbox):
    for flags in ("", "-p", "-a", "-c", "-n -p"):
        cmd = f"pstree {flags} {sandbox.pid_sh}".replace("  ", " ")
        assert sandbox.ours(cmd)[1] == sandbox.host(cmd)[1], cmd


def test_free_matches_host_but_for_its_own_memory(sandbox):
    for flags in ("", "-k", "-m", "-b", "-h", "-w", "-t", "--si -h"):
        _, host, _ = sandbox.host(f"free {flags}")
        _, ours, _ = sandbox.ours(f"free {flags}")
        h, o = host.splitlines(), ours.splitlines()
        assert h[0] == o[0] and h[2] == o[2], flags
        assert h[1].split()[1] == o[1].split()[1], flags  # total
        if flags in ("", "-k"):
            hu, ou = int(h[1].split()[2]), int(o[1].split()[2])
            rss = 1024  # our free's own resident set, as /proc/<pid>/status says
            assert ou - hu == rss and int(h[1].split()[3]) - int(o[1].split()[3]) == rss


def _mask_clock(text: str) -> str:
    text = re.sub(r"\d\d:\d\d:\d\d", "HH:MM:SS", text)
    text = re.sub(r"load average: [\d., ]+", "load average: L", text)
    return text


def test_uptime_matches_host(sandbox):
    for flags in ("", "-p", "-s"):
        _, host, _ = sandbox.host(f"uptime {flags}")
        _, ours, _ = sandbox.ours(f"uptime {flags}")
        if flags == "-p" and host != ours:  # a minute may tick between the two
            continue
        assert _mask_clock(ours) == _mask_clock(host), flags


def test_top_batch_matches_host(sandbox):
    _, host, _ = sandbox.host("top -b -n 1")
    _, ours, _ = sandbox.ours("top -b -n 1")
    h, o = host.splitlines(), ours.splitlines()
    assert _mask_clock(o[0]) == _mask_clock(h[0])
    assert o[2] == h[2]  # %Cpu(s)
    assert o[5:7] == h[5:7]  # the blank line and the column header
    hrows, orows = sorted(h[7:]), sorted(o[7:])
    extra = [r for r in orows if r not in hrows]
    assert len(extra) == 1 and extra[0].endswith(" top")
    assert [r for r in orows if r != extra[0]] == hrows


def test_the_process_set_has_a_zombie_a_terminal_and_a_stopped_process(sandbox):
    """The comparisons above cover a zombie (``[sh] <defunct>``, no memory), processes on a
    terminal (``pts/0``, ``+`` for its foreground group) and a stopped one too."""
    _, ours, _ = sandbox.ours("ps -e -o stat=,tty=,args=")
    rows = [line.split(None, 2) for line in ours.splitlines()]
    assert any(r[0] == "Z" and r[2].endswith("<defunct>") for r in rows), ours
    assert any(r[0] == "Ss+" and r[1] == "pts/0" for r in rows), ours
    assert any(r[0].startswith("T") and r[2] == "sleep 604" for r in rows), ours


def test_nothing_of_the_host_in_our_process_list(sandbox):
    _, ours, _ = sandbox.ours("ps -e -o comm=")
    names = set(ours.split())
    assert names <= {"init", "sleep", "cat", "sh", "true", "ps"}, names
    _, ours, _ = sandbox.ours("ps -e -o pid=")
    assert os.getpid() not in {int(x) for x in ours.split()} or os.getpid() < 20


def test_vfs_tool_prints_what_the_host_cli_prints(sandbox):
    """`vfs stat`/`vfs info` inside the sandbox and `vfsfuse stat`/`info` on the host, same mount."""
    vfsfuse = str(Path(sys.executable).with_name("vfsfuse"))
    (sandbox.mnt / "data.txt").write_bytes(b"hello\n" * 1000)
    (sandbox.mnt / "big.bin").write_bytes(os.urandom(300_000))
    os.sync()
    env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(sandbox.mnt.parent))
    for ours_cmd, host_args in (("vfs info /data.txt /big.bin", ["info", f"{sandbox.mnt}/data.txt",
                                                                f"{sandbox.mnt}/big.bin"]),
                                ("vfs stat", ["stat", str(sandbox.mnt)])):
        host = subprocess.run([vfsfuse, *host_args], capture_output=True, text=True, env=env, timeout=60)
        code, ours, err = sandbox.ours(ours_cmd)
        assert host.returncode == 0 and code == 0, (host.stderr, err)
        assert ours == host.stdout, ours_cmd
        assert ("path /big.bin\n" in ours and "chunks " in ours) or "inodes:" in ours
