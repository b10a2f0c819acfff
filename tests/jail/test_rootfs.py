"""Real programs from a Debian root filesystem (``scripts/make-rootfs``) in the jail (issue 16 §3-4).

The tarball is built once per machine (cached) and extracted into a real mount; every case of
``cases/rootfs.txt`` runs there from the sandbox's own shell and from ``vfsfuse exec``, and the same
script runs on the host with its own programs: stdout, whether stderr is empty and the exit
status must agree.  A separate mount checks that what ``python3`` writes is seen by host tools
and that ``fsck`` finds the store clean afterwards.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jail import rootfs
from tests.jail.harness import JailMount
from tests.programs.difftest import Case, CaseFile, Outcome, load, run_host
from vfsfuse.daemon.jail import JailConfig, probe

pytestmark = [pytest.mark.mount, pytest.mark.slow]

CASES = load(Path(__file__).resolve().parent / "cases" / "rootfs.txt")
VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))


@pytest.fixture(scope="session")
def tarball() -> Path:
    return rootfs.build()


@pytest.fixture(scope="module")
def base():
    d = rootfs.world_dir()
    yield d
    rootfs.remove(d)


@pytest.fixture(scope="module")
def jail(tarball, base):
    jm = rootfs.start(base, "rootfs", tarball)
    try:
        refusal = probe(JailConfig(jm.path))
        if refusal is not None:
            pytest.fail(f"this host cannot run the jail: {refusal}", pytrace=False)
        yield jm
    finally:
        jm.close()


_dirs = iter(range(1 << 30))


def case_dir(jm: JailMount, cf: CaseFile) -> str:
    """A fresh directory in the sandbox's /tmp holding the case file's files, writable by the
    jail (its host user is not the one that writes them here)."""
    where = f"/tmp/case{next(_dirs)}"
    os.mkdir(jm.path + where)
    os.chmod(jm.path + where, 0o777)
    for name, data in cf.files.items():
        p = Path(jm.path + where, name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return where


def host_status(code: int) -> int:
    return code if code >= 0 else 128 - code


def in_shell(jm: JailMount, case: Case) -> Outcome:
    where = case_dir(jm, CASES)
    r = jm.run(f"cd {where} && {shlex.join(case.argv)}", timeout=120)
    return Outcome(r.stdout.encode(), r.stderr.encode(), r.code)


def in_exec(jm: JailMount, case: Case) -> Outcome:
    where = case_dir(jm, CASES)
    env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(Path(jm.path).parent / "jail-runtime"))
    p = subprocess.run([VFSFUSE, "exec", "--cwd", where, jm.path, "--", shlex.join(case.argv)],
                       capture_output=True, env=env, timeout=120)
    return Outcome(p.stdout, p.stderr, host_status(p.returncode))


def show(o: Outcome) -> str:
    return f"status={o.status} stdout={o.stdout[:400]!r} stderr={o.stderr[:400]!r}"


@pytest.mark.parametrize("how", ["shell", "exec"])
@pytest.mark.parametrize("case", CASES.cases, ids=[c.name for c in CASES.cases])
def test_case_against_the_host(jail, case, how):
    assert not case.more, "one script per case"
    host = run_host(CASES, case)
    assert host.status != 127 and b"not found" not in host.stderr, f"the host lacks a program: {show(host)}"
    ours = (in_shell if how == "shell" else in_exec)(jail, case)
    assert ours.comparable(case.sort) == host.comparable(case.sort), f"\n host: {show(host)}\n ours: {show(ours)}"


def test_the_pipeline_mixes_real_and_builtin_programs(jail):
    """In ``python3 | grep | wc``, only python3 is a real process: grep and wc are the sandbox's
    own (their /bin stubs come first in PATH), so each stage shows the program it is."""
    r = jail.run("python3 -c 'print(1)' | grep 1 | wc -l; type grep wc; head -c 2 /bin/grep; echo; "
                 "head -c 4 /usr/bin/python3 | od -c | head -1")
    lines = r.stdout.splitlines()
    assert lines[0] == "1", r.stderr
    assert lines[1:3] == ["grep is /bin/grep", "wc is /bin/wc"]
    assert lines[3] == "#!"  # a kernel command stub, not a real grep
    assert "E   L   F" in lines[4]  # python3 is the rootfs's ELF file


def test_real_programs_see_the_rootfs_bin(jail):
    """Inside the jail /bin is the rootfs's /usr/bin (as on merged-/usr Debian), so hard-coded
    /bin/sh and a PATH lookup of cat by a real program find real programs, not the kernel's
    stubs (which only the sandbox can run)."""
    r = jail.run("python3 -c \"import os, subprocess; print(os.path.realpath('/bin/sh'), flush=True); "
                 "subprocess.run(['cat', '/etc/debian_version'])\"; head -c 2 /bin/cat; echo")
    lines = r.stdout.splitlines()
    assert r.code == 0 and lines[0] == "/bin/dash", r.stdout + r.stderr  # the rootfs's sh -> dash
    assert lines[1].startswith("12."), r.stdout  # a real cat, found by PATH inside the jail
    assert lines[2] == "#!"  # while the sandbox's own /bin/cat is still the kernel's stub


def test_python3_writes_host_sees_it_fsck_clean(tarball, base):
    """What python3 writes in the jail is there for host tools through the mount, and the store
    it leaves behind is sound (``vfsfuse fsck`` after unmounting exits 0)."""
    jm = rootfs.start(base, "fsck", tarball)
    try:
        os.chmod(jm.path + "/home/user", 0o777)
        script = ("import os, hashlib; os.makedirs('out/deep', exist_ok=True); "
                  "data = b''.join(b'%06d\\n' % i for i in range(200000)); "
                  "open('out/deep/big.txt', 'wb').write(data); open('out/small', 'w').write('hi\\n'); "
                  "os.symlink('deep/big.txt', 'out/link'); os.rename('out/small', 'out/renamed'); "
                  "print(hashlib.sha256(data).hexdigest())")
        r = jm.run(f"cd /home/user && python3 -c {shlex.quote(script)}")
        assert r.code == 0, r.stderr
        out = Path(jm.path, "home", "user", "out")
        digest = subprocess.run(["sha256sum", str(out / "link")], capture_output=True, text=True).stdout.split()[0]
        assert digest == r.stdout.strip()  # the host's sha256sum reads the same bytes
        assert (out / "renamed").read_text() == "hi\n" and not (out / "small").exists()
        assert subprocess.run(["wc", "-l"], stdin=open(out / "deep" / "big.txt"), capture_output=True,
                              text=True).stdout.strip() == "200000"
        if os.geteuid() == 0:
            assert os.stat(out / "deep" / "big.txt").st_uid == 65534  # the jail's unprivileged host user
    finally:
        jm.close()
    p = subprocess.run([VFSFUSE, "fsck", jm.store], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
