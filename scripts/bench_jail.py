"""Real programs in the jail beside the same programs on the host's own disk (see scripts/bench-jail).

Both sides run the very same binaries: the Debian root filesystem of ``scripts/make-rootfs`` is
imported once into a vfsfuse mount (``vfsfuse mount --allow-other``; programs run from the
sandbox's shell through the Python API, so each real program is one jail) and extracted into a temp
dir on the host disk, where each program runs under a plain ``bwrap --bind DIR /`` as the same
unprivileged user.  Workloads (issue 16 §4): ``python3 -c pass`` start-up, ``git status`` and
``git add -A && git commit`` on a 1,000-file repository, ``make -j2`` of 20 C files,
``python3 -m compileall`` of the stdlib tree.  Each pair is printed with its ratio (target 1.5x).
The jail figure has the API's round trip for an empty script taken off (printed apart).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_rootfs  # noqa: E402

import vfsfuse  # noqa: E402

VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))
NOBODY = 65534
TARGET = 1.5
ENV = {"PATH": "/bin:/usr/bin", "HOME": "/home/user", "LC_ALL": "C"}
WORK = "/tmp/bench"
GIT = "git -c user.name=b -c user.email=b@x -c commit.gpgsign=false"

# Setup scripts (python3, run on each side as the jail's user, so both own their files alike).
MAKE_REPO = f"""
import os
os.makedirs('{WORK}/repo', exist_ok=True)
for i in range(1000):
    d = '{WORK}/repo/d%02d' % (i // 50)
    os.makedirs(d, exist_ok=True)
    open('%s/f%04d.txt' % (d, i), 'w').write(''.join('line %d of file %d\\n' % (k, i) for k in range(20)))
"""
MAKE_C = f"""
import os
os.makedirs('{WORK}/cc', exist_ok=True)
names = []
for i in range(20):
    body = ''.join('int f%d_%d(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * %d ^ (s >> 3); return s; }}\\n'
                   % (i, j, j + 1) for j in range(40))
    open('{WORK}/cc/m%02d.c' % i, 'w').write('#include <stdio.h>\\n#include <string.h>\\n' + body)
    names.append('m%02d.o' % i)
open('{WORK}/cc/main.c', 'w').write('int main(void) {{ return 0; }}\\n')
open('{WORK}/cc/Makefile', 'w').write(
    'OBJS = ' + ' '.join(names) + ' main.o\\nprog: $(OBJS)\\n\\tgcc -o prog $(OBJS)\\n'
    '%.o: %.c\\n\\tgcc -O2 -c $< -o $@\\n')
"""


@dataclass
class Step:
    """One real program: what is timed (one jail in the sandbox, one bwrap natively)."""

    argv: list[str]
    cwd: str = WORK
    env: dict[str, str] = field(default_factory=dict)

    def script(self) -> str:
        env = "".join(f"{k}={shlex.quote(v)} " for k, v in self.env.items())
        return f"cd {shlex.quote(self.cwd)} && {env}{shlex.join(self.argv)}"


@dataclass
class Workload:
    name: str
    steps: list[Step]
    reps: int
    prepare: list[str] = field(default_factory=list)   # before each rep, not timed
    unit: str = "ms"


def workloads(quick: bool) -> list[Workload]:
    r = 1 if quick else 3
    repo, cc = f"{WORK}/repo", f"{WORK}/cc"
    return [
        Workload("python3 -c pass", [Step(["python3", "-c", "pass"])], 10 if quick else 30),
        Workload("git status (1,000 files)", [Step(["git", "status", "--porcelain"], repo)], 3 * r),
        Workload("git add -A && git commit (1,000 files)",
                 [Step(["git", "add", "-A"], repo), Step([*GIT.split(), "commit", "-q", "-m", "bench"], repo)], r,
                 prepare=[f"cd {repo} && rm -rf .git && git init -q"], unit="s"),
        Workload("make -j2 (20 C files)", [Step(["make", "-s", "-j2"], cc)], r,
                 prepare=[f"cd {cc} && rm -f prog *.o"], unit="s"),
        Workload("python3 -m compileall stdlib",
                 [Step(["python3", "-m", "compileall", "-q", "-f", "/usr/lib/python3.11"],
                       env={"PYTHONPYCACHEPREFIX": f"{WORK}/pyc"})], 1,
                 prepare=[f"rm -rf {WORK}/pyc"], unit="s"),
    ]


# ------------------------------------------------------------------------------ the two sides
class Native:
    """The rootfs on the host's disk; every command in its own ``bwrap --bind DIR /``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def argv(self, command: str) -> list[str]:
        env = [a for k, v in ENV.items() for a in ("--setenv", k, v)]
        return ["bwrap", "--unshare-all", "--unshare-user", "--uid", "0", "--gid", "0", "--die-with-parent",
                "--bind", str(self.root), "/", "--dev", "/dev", "--proc", "/proc", "--clearenv", *env,
                "--", "/bin/sh", "-c", command]

    def run(self, command: str) -> float:
        t = time.perf_counter()
        p = subprocess.run(self.argv(command), user=NOBODY, group=NOBODY, extra_groups=[],
                           capture_output=True, text=True, timeout=1800)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"bench-jail: natively, {command!r} failed: {p.stderr.strip()[-400:]}")
        return dt

    def timed(self, step: Step) -> float:
        """One real program, exec'd by bwrap itself (no shell around it), as the jail does."""
        argv = self.argv("")
        env = [a for k, v in step.env.items() for a in ("--setenv", k, v)]
        argv = argv[:argv.index("--")] + env + ["--chdir", step.cwd, "--", *step.argv]
        t = time.perf_counter()
        p = subprocess.run(argv, user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True,
                           timeout=1800)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"bench-jail: natively, {step!r} failed: {p.stderr.strip()[-400:]}")
        return dt


class Jail:
    """The rootfs in a vfsfuse mount; commands through the API's sandbox shell."""

    def __init__(self, mnt: str) -> None:
        self.sb = vfsfuse.Sandbox(mnt, timeout=1800)
        self.baseline = 0.0

    def run(self, command: str) -> float:
        t = time.perf_counter()
        r = self.sb.run(command)
        dt = time.perf_counter() - t
        if r.exit_code != 0:
            raise SystemExit(f"bench-jail: in the jail, {command!r} failed ({r.exit_code}): {r.stderr.strip()[-400:]}")
        return dt

    def timed(self, step: Step) -> float:
        return self.run(step.script()) - self.baseline

    def measure_baseline(self) -> float:
        self.baseline = statistics.median(self.run(f"cd {WORK} && true") for _ in range(15))
        return self.baseline

    def close(self) -> None:
        self.sb.close()


def measure(sides: tuple[Jail, Native], w: Workload) -> tuple[float, float]:
    """Median times of *w* on each side; the sides take turns rep by rep, so the load of a busy
    machine falls on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    pairs: list[tuple[Jail | Native, list[float]]] = [(sides[0], times[0]), (sides[1], times[1])]
    for _ in range(w.reps):
        for side, out in pairs:
            for p in w.prepare:
                side.run(p)
            out.append(sum(side.timed(s) for s in w.steps))
    return statistics.median(times[0]), statistics.median(times[1])


# ------------------------------------------------------------------------------ setup
def extract(tarball: Path, dest: str) -> None:
    argv = ["tar", "-x", "--numeric-owner", "-C", dest, "-f", str(tarball)]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench-jail: tar -x into {dest} failed: {p.stderr.strip()[-400:]}")


def prepare(side: Native | Jail) -> None:
    side.run(f"python3 -c {shlex.quote(f'import os; os.makedirs({WORK!r}, exist_ok=True)')}")  # the jail's user owns it
    side.run(f"python3 -c {shlex.quote(MAKE_REPO)}")
    side.run(f"cd {WORK}/repo && git init -q && git add -A && {GIT} commit -q -m setup")
    side.run(f"python3 -c {shlex.quote(MAKE_C)}")


def _say(msg: str) -> None:
    print(f"bench-jail: {msg}", file=sys.stderr, flush=True)


def fmt(seconds: float, unit: str) -> str:
    return f"{seconds * 1000:8.1f} ms" if unit == "ms" else f"{seconds:8.2f} s "


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench-jail", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--only", help="run only workloads whose name contains this")
    ap.add_argument("--keep", action="store_true", help="leave the mount and dirs (printed) for profiling")
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--mount-option", action="append", default=[],
                    help="extra option for vfsfuse mount (repeatable), e.g. --mount-option=--workers=2")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-jail: needs root (it mounts with --allow-other and runs both sides as nobody)")
    tarball = make_rootfs.make_rootfs("bookworm", list(make_rootfs.DEFAULT_PACKAGES))
    base = Path(tempfile.mkdtemp(prefix="bench-jail-", dir="/var/tmp"))  # the host disk, not a tmpfs
    os.chmod(base, 0o755)
    store, mnt, native_root = base / "store", base / "mnt", base / "native"
    for d in (mnt, native_root):
        d.mkdir()
    env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(base / "runtime"))
    os.environ["VFSFUSE_RUNTIME_DIR"] = env["VFSFUSE_RUNTIME_DIR"]
    jail: Jail | None = None
    try:
        subprocess.run([VFSFUSE, "mkfs", str(store)], check=True, capture_output=True, env=env)
        subprocess.run([VFSFUSE, "mount", "--allow-other", *args.mount_option, str(store), str(mnt)],
                       check=True, env=env)
        _say(f"importing {tarball.name} into the mount, extracting it into {native_root} (ext4)")
        t = time.perf_counter()
        imported = subprocess.run([VFSFUSE, "import", str(mnt), str(tarball), "--exclude", "./dev", "--exclude",
                                   "./proc", "--exclude", "./bin"], capture_output=True, text=True, env=env)
        if imported.returncode != 0:
            raise SystemExit(f"bench-jail: vfsfuse import failed: {imported.stderr.strip()[-400:]}")
        t_mnt = time.perf_counter() - t
        t = time.perf_counter()
        extract(tarball, str(native_root))
        t_host = time.perf_counter() - t
        _say(f"vfsfuse import into the mount {t_mnt:.1f} s, tar -x on the host disk {t_host:.1f} s")
        native = Native(native_root)
        jail = Jail(str(mnt))
        _say("making the 1,000-file repository and the C files on both sides")
        prepare(native)
        prepare(jail)
        base_s = jail.measure_baseline()
        _say(f"the API's round trip for an empty script: {base_s * 1000:.1f} ms (taken off the jail figures)")
        rows = []
        print(f"{'workload':42} {'jail':>11} {'native':>11} {'ratio':>6}  target {TARGET}x")
        for w in workloads(args.quick):
            if args.only and args.only not in w.name:
                continue
            j, n = measure((jail, native), w)
            ratio = j / n if n > 0 else float("inf")
            mark = "ok" if ratio <= TARGET else "over"
            print(f"{w.name:42} {fmt(j, w.unit):>11} {fmt(n, w.unit):>11} {ratio:5.2f}x  {mark}", flush=True)
            rows.append({"workload": w.name, "jail_s": j, "native_s": n, "ratio": ratio})
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "baseline_s": base_s,
                                                   "extract_mount_s": t_mnt, "extract_host_s": t_host}, indent=2))
    finally:
        if jail is not None:
            jail.close()
        if args.keep:
            _say(f"kept: mount {mnt}, native root {native_root} (vfsfuse umount {mnt}; rm -rf {base})")
        else:
            subprocess.run([VFSFUSE, "umount", str(mnt)], capture_output=True, env=env)
            if subprocess.run(["mountpoint", "-q", str(mnt)]).returncode == 0:
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
