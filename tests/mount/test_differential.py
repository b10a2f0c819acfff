"""Differential tests: the same syscalls on tmpfs and on the mount give the same results.

Each scenario of ``probe.py`` runs once in a fresh tmpfs directory and once in a fresh directory of
the shared mount, as root or as the unprivileged user 65534; the JSON traces (results, errno names,
stat fields, file bytes) must be identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NOBODY, sh

pytestmark = pytest.mark.mount

PROBE = str(Path(__file__).with_name("probe.py"))


def probe(scenario: str, cwd: Path, user: int | None = None) -> list:
    argv = [sys.executable, PROBE, scenario]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"probe {scenario} failed in {cwd}: {p.stderr}"
    return json.loads(p.stdout)


def compare(a: list, b: list) -> None:
    """Assert equal traces, reporting the first differing step readably."""
    for x, y in zip(a, b):
        assert x == y, f"tmpfs: {x}\nvfsfuse: {y}"
    assert len(a) == len(b)


@pytest.mark.parametrize("scenario", ["errnos", "links_and_modes"])
def test_root_scenarios_match_tmpfs(scenario, tdir, mdir):
    compare(probe(scenario, tdir), probe(scenario, mdir))


def _prepare_for_nobody(d: Path) -> None:
    """Root-owned fixtures the unprivileged scenarios act on (same on both filesystems)."""
    r = sh("""
        set -e
        chmod 0777 .
        mkdir sg && chown 0:1234 sg && chmod 2777 sg
        mkdir sticky && chmod 1777 sticky
        echo r > sticky/rootfile && chmod 666 sticky/rootfile
        echo r > rootfile && chmod 666 rootfile
        echo p > private && chmod 600 private
        echo s > suid && chmod 4777 suid
        echo g > sgid && chmod 2777 sgid
        mkdir rootdir && chmod 755 rootdir
    """, d)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("scenario", ["owner_umask", "setgid_dir", "sticky", "not_owner"])
def test_unprivileged_scenarios_match_tmpfs(scenario, tdir, mdir):
    for d in (tdir, mdir):
        _prepare_for_nobody(d)
    compare(probe(scenario, tdir, NOBODY), probe(scenario, mdir, NOBODY))
    # and the end state, seen by root
    compare(_tree(tdir), _tree(mdir))


def _tree(d: Path) -> list:
    out = []
    for top, dirs, files in os.walk(d):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            s = os.lstat(p)
            out.append([os.path.relpath(p, d), oct(s.st_mode), s.st_uid, s.st_gid, s.st_nlink,
                        s.st_size if not os.path.isdir(p) else 0])
    return out


def test_shell_session_matches_tmpfs(tdir, mdir):
    script = r"""
        set -e
        mkdir -p a/b/c
        printf 'one\ntwo\nthree\n' > a/f
        cp a/f a/b/g
        ln a/f a/hard
        ln -s ../f a/b/soft
        mv a/b/g a/b/c/h
        chmod 640 a/f
        touch -d '2001-02-03 04:05:06' a/b/c/h
        cat a/b/soft
        ls -l --time-style=+%Y a | grep -v '^total' | awk '{print $1, $2, ($1 ~ /^d/ ? "-" : $5), $NF}'
        stat -c '%n %a %h %s %F' a/hard a/b/c/h a/b/soft
        date -r a/b/c/h +%s
        find . | sort
        find a -type f -exec stat -c '%s %n' {} + | sort
        wc -c a/f
        sed -i 's/two/2/' a/f && cat a/hard
        echo appended >> a/hard && tail -1 a/f
        rm -r a/b && ls a
        : > trunc && stat -c %s trunc
        dd if=/dev/zero of=sparse bs=1 count=1 seek=10000000 2>/dev/null && stat -c %s sparse
        mkfifo p && stat -c %F p
        { ls nosuch 2>&1 || true; } | sed 's/.*: //'
        rmdir a 2>&1 | sed 's/.*: //' || true
    """
    a, b = sh(script, tdir), sh(script, mdir)
    assert a.returncode == 0, a.stderr
    assert b.stdout.splitlines() == a.stdout.splitlines()
    assert (b.returncode, b.stderr) == (a.returncode, a.stderr)
