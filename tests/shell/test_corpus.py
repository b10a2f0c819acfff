"""The differential corpus: every case in ``tests/shell/cases/*.txt`` runs under the host's
``bash`` (and ``dash`` for ``#@ posix`` cases) and under our shell in a fresh sandbox; stdout,
whether stderr is empty, and the exit status must agree.

Case file format (plain text, one case per block)::

    ### name of the case
    #@ posix                 (optional: also compare our ``sh`` against dash)
    #@ stdin: text\\n        (optional: stdin for the script, backslash escapes decoded)
    script line 1
    script line 2

Everything up to the next ``### `` line is the script (trailing blank lines dropped).
Scripts may use builtins and the kernel's test programs (``true false echo cat sleep
yes``) only.  One kernel is booted per file; each case runs in its own directory.

Run ``python tests/shell/test_corpus.py [FILE...]`` to see each difference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

HERE = Path(__file__).parent
#: The corpus may only grow (issue 13 asks for at least 800 cases).
MIN_CASES = 800
CASES = sorted((HERE / "cases").glob("*.txt"))


@dataclass
class Case:
    name: str
    script: str
    posix: bool = False
    stdin: str | None = None
    file: str = ""
    line: int = 0


def load(path: Path) -> list[Case]:
    cases: list[Case] = []
    cur: Case | None = None
    body: list[str] = []

    def flush() -> None:
        if cur is not None:
            while body and not body[-1].strip():
                body.pop()
            cur.script = "\n".join(body) + "\n"
            cases.append(cur)

    for i, line in enumerate(path.read_text().split("\n"), 1):
        if line.startswith("### "):
            flush()
            cur = Case(line[4:].strip(), "", file=path.name, line=i)
            body = []
        elif cur is not None and not body and line.startswith("#@ "):
            opt = line[3:]
            if opt.strip() == "posix":
                cur.posix = True
            elif opt.startswith("stdin:"):
                cur.stdin = opt[6:].lstrip().encode().decode("unicode_escape")
        elif cur is not None:
            body.append(line)
    flush()
    return cases


@dataclass
class Result:
    status: int
    stdout: bytes
    stderr: bytes = field(repr=False)


def host_run(shell: str, case: Case) -> Result:
    with tempfile.TemporaryDirectory() as d:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/home/user", "LC_ALL": "C", "TERM": "xterm", "SHELL": "/bin/sh"}
        p = subprocess.run(
            [shell, "-c", case.script, "sh" if shell == "dash" else shell],
            cwd=d,
            env=env,
            capture_output=True,
            input=(case.stdin or "").encode(),
            timeout=20,
        )
        return Result(p.returncode if p.returncode >= 0 else 128 - p.returncode, p.stdout, p.stderr)


async def sandbox_run_all(cases: list[Case], shell: str) -> list[Result]:
    from tests.shell.shellsupport import boot

    out: list[Result] = []
    async with trio.open_nursery() as n:
        k = await boot(n, env={"PATH": "/bin:/usr/bin", "HOME": "/home/user", "TERM": "xterm", "SHELL": "/bin/sh"})
        for i, c in enumerate(cases):
            d = f"/tmp/case{i}"
            await k.vfs.mkdir(d) if hasattr(k.vfs, "mkdir") else None
            try:
                r = await k.run([shell, "-c", c.script, shell], input=(c.stdin or "").encode(), cwd=d, timeout=20)
                out.append(Result(r.shell_code if r.returncode >= 0 else 128 - r.returncode, r.stdout, r.stderr))
            except Exception as e:  # noqa: BLE001 - a timeout is a failure of that case
                out.append(Result(-1, b"", str(e).encode()))
        await k.shutdown()
        n.cancel_scope.cancel()
    return out


def compare(case: Case, ours: Result, ref: Result, ref_name: str) -> str | None:
    problems = []
    if ours.stdout != ref.stdout:
        problems.append(f"stdout: ours {ours.stdout!r} {ref_name} {ref.stdout!r}")
    if bool(ours.stderr) != bool(ref.stderr):
        problems.append(f"stderr: ours {ours.stderr!r} {ref_name} {ref.stderr!r}")
    if ours.status != ref.status:
        problems.append(f"status: ours {ours.status} {ref_name} {ref.status}")
    if problems:
        return f"{case.file}:{case.line} {case.name} [{ref_name}]\n  " + "\n  ".join(problems)
    return None


def check_file(path: Path) -> tuple[int, list[str]]:
    cases = load(path)
    failures: list[str] = []
    ours = trio.run(sandbox_run_all, cases, "bash")
    for c, r in zip(cases, ours):
        msg = compare(c, r, host_run("bash", c), "bash")
        if msg:
            failures.append(msg)
    posix = [c for c in cases if c.posix]
    if posix:
        ours_sh = trio.run(sandbox_run_all, posix, "sh")
        for c, r in zip(posix, ours_sh):
            msg = compare(c, r, host_run("dash", c), "dash")
            if msg:
                failures.append(msg)
    return len(cases) + len(posix), failures


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_file(path: Path) -> None:
    _n, failures = check_file(path)
    assert not failures, "\n".join(failures)


def test_corpus_size() -> None:
    total = sum(len(load(p)) for p in CASES)
    assert total >= MIN_CASES, total


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    paths = [Path(a) for a in sys.argv[1:]] or CASES
    total = bad = 0
    for p in paths:
        n, f = check_file(p)
        total += n
        bad += len(f)
        for m in f:
            print(m)
    print(f"{total - bad}/{total} passed")
    os._exit(1 if bad else 0)
