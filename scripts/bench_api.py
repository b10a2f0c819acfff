"""Short agent-style scripts through the Python API (``vfsfuse.Sandbox.run``), beside the host's
bash running the same scripts on the same tree in tmpfs.

100 scripts of the kind AI agents send (look around a project, grep, count, edit a file, small
loops and pipelines), each run as a fresh script: ours through ``Sandbox.run`` (in process over
a memory store, and with ``--mount`` through a real mount's control socket), bash as ``bash -c``
in a new process.  Prints median and p99 ms per script; target (issue 13): median <= 1 ms
through the API.

    scripts/bench-api [--rounds N] [--mount]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vfsfuse  # noqa: E402

# The project tree both sides start from (relative paths, created in /work and in tmpfs).
TREE = {
    "README.md": "# demo\nA small project.\nTODO: write docs\n",
    "src/app.py": "import os\n\n# TODO: handle errors\ndef main():\n    print('hi')\n\nmain()\n",
    "src/util.py": "def add(a, b):\n    return a + b\n# FIXME: types\n",
    "src/data.json": '{"name": "demo", "version": 3, "deps": ["a", "b", "c"]}\n',
    "tests/test_app.py": "def test_main():\n    assert True\n",
    "notes.txt": "alpha\nbeta\ngamma\nalpha\ndelta\n",
    "data/numbers.csv": "id,value\n1,10\n2,20\n3,30\n4,40\n",
}

_BASE = [
    "echo hello",
    "pwd",
    "ls",
    "ls src",
    "cat README.md",
    "wc -l notes.txt",
    "grep -n TODO src/app.py",
    "grep -r TODO . | wc -l",
    "grep -rl FIXME src",
    "head -n 2 notes.txt",
    "tail -n 1 notes.txt",
    "sort notes.txt | uniq -c",
    "sort -u notes.txt",
    "cut -d, -f2 data/numbers.csv | tail -n +2",
    "awk -F, 'NR>1 {s+=$2} END {print s}' data/numbers.csv",
    "sed -n 2p notes.txt",
    "sed 's/alpha/ALPHA/g' notes.txt",
    "tr a-z A-Z < notes.txt",
    "find . -name '*.py' | sort",
    "find src -type f | wc -l",
    "jq .version src/data.json",
    "jq -r '.deps[]' src/data.json",
    "x=3; y=4; echo $((x*y))",
    "for f in src/*.py; do echo $f; done",
    "for i in 1 2 3 4 5; do echo $i; done | paste -sd+",
    "a=(one two three); echo ${#a[@]} ${a[1]}",
    "[[ -f README.md ]] && echo exists",
    "test -d src && echo dir",
    "case $(uname) in Linux) echo linux;; *) echo other;; esac",
    "f() { echo \"arg:$1\"; }; f value",
    "printf '%s=%d\\n' a 1 b 2",
    "echo $(( $(wc -l < notes.txt) + 1 ))",
    "mkdir -p out && echo done > out/status && cat out/status",
    "echo 'line' >> notes.txt; wc -l < notes.txt",
    "cp README.md out/README.copy 2>/dev/null || { mkdir -p out; cp README.md out/README.copy; }; ls out",
    "grep -c alpha notes.txt",
    "grep -v alpha notes.txt | head -n 2",
    "basename src/app.py .py",
    "dirname src/app.py",
    "cat src/*.py | wc -c",
    "ls -1 src | wc -l",
    "du -s src >/dev/null && echo measured",
    "stat -c %s README.md",
    "md5sum README.md | cut -c1-8",
    "seq 10 | tail -n 3",
    "seq 1 5 | awk '{s+=$1} END {print s}'",
    "echo a,b,c | tr , '\\n'",
    "name=world; echo \"hello ${name^^}\"",
    "s='abc.txt'; echo ${s%.txt}",
    "set -- x y z; echo $#",
]


def scripts() -> list[str]:
    """The 100 scripts: the 50 above, then each with a little variation (another argument)."""
    more = [s.replace("notes.txt", "README.md") if "notes.txt" in s else s + " # again" for s in _BASE]
    return _BASE + more


def make_host_tree(root: str) -> None:
    for rel, text in TREE.items():
        p = Path(root, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def make_sandbox_tree(sb: vfsfuse.Sandbox) -> None:
    dirs = sorted({str(Path("/work", rel).parent) for rel in TREE})
    sb.run("rm -rf /work; mkdir -p " + " ".join(dirs))
    for rel, text in TREE.items():
        sb.write_file(f"/work/{rel}", text)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


@dataclass
class Figures:
    """Wall-clock and CPU ms per script, and how many scripts exited non-zero."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: int = 0


def bench_ours(sb: vfsfuse.Sandbox, rounds: int, *, cpu_of_this_process: bool = True) -> Figures:
    """CPU is this process's (both threads: the caller and the kernel's); through a mount the
    daemon's CPU is not counted, so only wall time is shown there."""
    f = Figures()
    for _ in range(rounds):
        make_sandbox_tree(sb)
        for script in scripts():
            c, t = time.process_time(), time.perf_counter()
            r = sb.run(script, cwd="/work")
            f.wall.append((time.perf_counter() - t) * 1000)
            f.cpu.append((time.process_time() - c) * 1000)
            f.failures += r.exit_code != 0
    if not cpu_of_this_process:
        f.cpu = []
    return f


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_bash(rounds: int) -> Figures:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    f = Figures()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/tmp"}
    for _ in range(rounds):
        tmp = tempfile.mkdtemp(dir=base)
        try:
            make_host_tree(tmp)
            for script in scripts():
                c, t = _children_cpu(), time.perf_counter()
                r = subprocess.run(["bash", "-c", script], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                f.wall.append((time.perf_counter() - t) * 1000)
                f.cpu.append((_children_cpu() - c) * 1000)
                f.failures += r.returncode != 0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return f


def row(name: str, f: Figures, note: str = "") -> None:
    cpu = f"{statistics.median(f.cpu):9.3f}" if f.cpu else f"{'-':>9}"
    print(f"{name:40} {statistics.median(f.wall):9.3f} {pct(f.wall, 0.99):9.3f} {cpu} {len(f.wall):6}"
          f" {f.failures:6}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="times each of the 100 scripts runs (default 3)")
    ap.add_argument("--mount", action="store_true", help="also through a real mount's control socket")
    args = ap.parse_args()
    print(f"{'100 short agent-style scripts':40} {'median ms':>9} {'p99 ms':>9} {'cpu ms':>9} {'runs':>6}"
          f" {'exit>0':>6}")
    with vfsfuse.Sandbox() as sb:
        row("ours: Sandbox.run in process (memory)", bench_ours(sb, args.rounds), "target: median <= 1 ms")
    if args.mount:
        row("ours: Sandbox.run through a mount", _through_mount(args.rounds), "cpu: the daemon's, mean")
    row("bash -c (a new process each)", bench_bash(args.rounds), "same scripts, tmpfs")
    print("wall times are of a shared machine; cpu ms (median, this process + its children) is steadier")


def _daemon_cpu(pid: int) -> float:
    """utime + stime of the daemon, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _through_mount(rounds: int) -> Figures:
    from vfsfuse.daemon.config import DaemonRecord

    vf = str(Path(sys.executable).with_name("vfsfuse"))
    mnt = tempfile.mkdtemp(prefix="vfsfuse-bench-api-")
    subprocess.run([vf, "mount", "--memory", mnt], check=True)
    try:
        rec = DaemonRecord.load(mnt)
        with vfsfuse.Sandbox(mnt) as sb:
            before = _daemon_cpu(rec.pid) if rec else 0.0
            f = bench_ours(sb, rounds, cpu_of_this_process=False)
            if rec:  # the daemon's CPU per script (clock ticks: an average, shown as the median)
                f.cpu = [(_daemon_cpu(rec.pid) - before) * 1000 / len(f.wall)]
            return f
    finally:
        subprocess.run([vf, "umount", mnt], check=False)
        os.rmdir(mnt)


if __name__ == "__main__":
    main()
