"""Differential testing of the sandbox's programs against the host's GNU tools.

A case file is plain text a person can read and extend::

    # comments start with '#'
    @file words.txt          <- a file every case of this file starts with (until @end)
    banana
    apple
    @end

    ### sort reverse         <- a case: a name ...
    $ sort -r words.txt      <- ... the command line (shlex-split; no shell) ...
    < stdin line 1           <- ... optional stdin lines ...
    < stdin line 2

A case may hold several ``$`` lines: they run one after the other in the same directory (the
first gets the stdin), so a case can make a symlink or an empty directory first, or list what
a command left behind; their stdouts are concatenated and every exit status is compared.  A
``#@ sort`` line in a case compares stdout with its lines sorted (directory order differs
between filesystems, and ``find`` prints in that order).

Each case runs in a fresh directory holding the @file files: on the host with the real tool
(``LC_ALL=C``, a clean environment) and in a fresh sandbox directory through ``Kernel.run``.
Compared: stdout bytes, whether stderr is empty, and the exit status.  Programs that print
their own name in messages print the same text, so stderr could be compared too, but GNU's
wording of every message is not the goal; its presence is.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trio

from kernel.kernel import Kernel
from kernel.programs.registry import ProgramRegistry
from vfsfuse.storage.store import memory_vfs


@dataclass
class Case:
    """One command line with its stdin, from a case file."""

    name: str
    argv: list[str]
    stdin: bytes | None
    line: int
    more: list[list[str]] = field(default_factory=list)  # further command lines, in order
    sort: bool = False                                    # compare stdout lines sorted


@dataclass
class CaseFile:
    """The files every case starts with, and the cases."""

    path: Path
    files: dict[str, bytes] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)


@dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    status: int | tuple[int, ...]

    def comparable(self, sort: bool = False) -> tuple[bytes, bool, int | tuple[int, ...]]:
        out = b"".join(sorted(self.stdout.splitlines(keepends=True))) if sort else self.stdout
        return out, bool(self.stderr), self.status


def load(path: Path) -> CaseFile:
    """Parse a case file (format in the module docstring)."""
    cf = CaseFile(path)
    lines = path.read_text().split("\n")
    i = 0
    current: Case | None = None
    stdin: list[str] = []

    def finish() -> None:
        if current is not None:
            current.stdin = ("\n".join(stdin) + "\n").encode() if stdin else None
            cf.cases.append(current)

    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("@file "):
            name = line[6:].strip()
            body = []
            while i < len(lines) and lines[i] != "@end":
                body.append(lines[i])
                i += 1
            i += 1
            cf.files[name] = ("\n".join(body) + "\n").encode() if body else b""
        elif line.startswith("### "):
            finish()
            current = Case(line[4:].strip(), [], None, i)
            stdin = []
        elif line.startswith("$ ") and current is not None:
            if current.argv:
                current.more.append(shlex.split(line[2:]))
            else:
                current.argv = shlex.split(line[2:])
        elif line.strip() == "#@ sort" and current is not None:
            current.sort = True
        elif line.startswith("< ") and current is not None:
            stdin.append(line[2:])
        elif line == "<" and current is not None:
            stdin.append("")
    finish()
    for case in cf.cases:
        if not case.argv:
            raise ValueError(f"{path}:{case.line}: case {case.name!r} has no '$ command' line")
    return cf


HOST_ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TZ": "UTC"}
#: Host programs standing in for ours where the name may be another implementation (mawk).
HOST_PROGRAM = {"awk": "gawk"}


def run_host(cf: CaseFile, case: Case) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in cf.files.items():
            p = Path(tmp, name)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        outs, errs, codes = [], [], []
        for k, argv in enumerate([case.argv, *case.more]):
            stdin = case.stdin if case.stdin is not None and k == 0 else b""
            argv = [HOST_PROGRAM.get(argv[0], argv[0]), *argv[1:]]
            r = subprocess.run(argv, cwd=tmp, input=stdin, capture_output=True, env=HOST_ENV, timeout=20)
            outs.append(r.stdout)
            errs.append(r.stderr)
            codes.append(r.returncode if r.returncode >= 0 else 128 - r.returncode)  # as a shell's $?
        return Outcome(b"".join(outs), b"".join(errs), codes[0] if not case.more else tuple(codes))


async def run_sandbox(cf: CaseFile, registry: ProgramRegistry) -> list[Outcome]:
    """Every case of *cf* in one booted kernel, each in a fresh directory."""
    results: list[Outcome] = []
    async with trio.open_nursery() as nursery:
        kernel = Kernel(memory_vfs(), programs=registry, env={"PATH": "/bin:/usr/bin", "HOME": "/root",
                                                             "LC_ALL": "C", "TZ": "UTC"})
        await kernel.boot(nursery)
        try:
            for n, case in enumerate(cf.cases):
                cwd = f"/tmp/case{n}"
                await kernel.vfs.mkdir(cwd, recursive=True)
                for name, data in cf.files.items():
                    await kernel.vfs.write_file(f"{cwd}/{name}", data)
                outs, errs, codes = [], [], []
                for k, argv in enumerate([case.argv, *case.more]):
                    stdin = case.stdin if case.stdin is not None and k == 0 else b""
                    r = await kernel.run(argv, input=stdin, cwd=cwd, timeout=20)
                    outs.append(r.stdout)
                    errs.append(r.stderr)
                    codes.append(r.status >> 8 if r.status & 0x7F == 0 else 128 + (r.status & 0x7F))
                results.append(Outcome(b"".join(outs), b"".join(errs),
                                       codes[0] if not case.more else tuple(codes)))
        finally:
            await kernel.shutdown()
    return results


def differences(cf: CaseFile, registry: ProgramRegistry) -> list[str]:
    """One readable line per case where the sandbox and the host disagree."""
    ours = trio.run(run_sandbox, cf, registry)
    out = []
    for case, mine in zip(cf.cases, ours):
        host = run_host(cf, case)
        if host.comparable(case.sort) != mine.comparable(case.sort):
            shown = " ; ".join(shlex.join(a) for a in [case.argv, *case.more])
            out.append(f"{cf.path.name}:{case.line} {case.name!r} $ {shown}\n"
                       f"   host: status={host.status} stdout={host.stdout[:300]!r} stderr={host.stderr[:200]!r}\n"
                       f"   ours: status={mine.status} stdout={mine.stdout[:300]!r} stderr={mine.stderr[:200]!r}")
    return out


def case_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.txt"))


if __name__ == "__main__":  # python -m tests.programs.difftest FILE... : print the disagreements
    import sys

    from kernel.userland import standard_registry

    bad = 0
    for arg in sys.argv[1:]:
        cf = load(Path(arg))
        diffs = differences(cf, standard_registry())
        bad += len(diffs)
        print(f"{arg}: {len(cf.cases)} cases, {len(diffs)} differ")
        for d in diffs:
            print(d)
    sys.exit(1 if bad else 0)
