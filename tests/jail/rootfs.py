"""The Debian root filesystem the real-program tests run on, and getting it into a mount.

``build(packages)`` runs ``scripts/make-rootfs`` (cached in ``~/.cache/vfsfuse``, so only the first
session on a machine pays the ~35 s build) and fails the test session with make-rootfs's own
one-line reason when it cannot (no network, no mmdebstrap): never a skip.  ``install(tarball,
jm)`` puts it into the running mount with ``vfsfuse import``, as a user would; the tarball's
``/dev``, ``/proc`` and its ``bin -> usr/bin`` symlink are left out (the first two are the
kernel's own mounts, ``/bin`` holds the kernel's command stubs; the jail shows real programs
``/usr/bin`` there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.jail.harness import JailMount

ROOT = Path(__file__).resolve().parent.parent.parent
MAKE_ROOTFS = ROOT / "scripts" / "make_rootfs.py"
# The default set of make-rootfs: the cold build takes ~35 s on a 2-core machine, cheap enough for CI.
PACKAGES = ("python3", "git", "gcc", "libc6-dev", "make", "busybox")
# What the kernel owns in the sandbox's tree (mounts and the stub directory).
LEFT_OUT = ("./dev", "./proc", "./bin")
VFSFUSE = str(Path(sys.executable).with_name("vfsfuse"))


def build(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached tarball (built now if needed); fails the caller with make-rootfs's reason."""
    p = subprocess.run([sys.executable, str(MAKE_ROOTFS), "--include", ",".join(packages)],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("make-rootfs:")]
        why = lines[-1] if lines else p.stderr.strip()[-500:]
        pytest.fail(f"cannot build the test root filesystem: {why}", pytrace=False)
    return Path(p.stdout.strip())


def install(tarball: Path, jm: JailMount) -> None:
    """``vfsfuse import MNT TARBALL`` into the running mount of *jm* (owners kept numerically)."""
    argv = [VFSFUSE, "import", jm.path, str(tarball), *(a for p in LEFT_OUT for a in ("--exclude", p))]
    env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(Path(jm.path).parent / "jail-runtime"))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, f"vfsfuse import into the mount failed: {p.stderr[-2000:]}"


def world_dir() -> Path:
    """A temp dir the jail's unprivileged host user can traverse (the mount lives in it)."""
    d = Path(tempfile.mkdtemp(prefix="vfsfuse-rootfs-"))
    os.chmod(d, 0o755)
    return d


def start(base: Path, name: str, tarball: Path) -> JailMount:
    """A fresh store mounted for real with *tarball* extracted into it."""
    jm = JailMount.start(base, name)
    try:
        install(tarball, jm)
    except BaseException:
        jm.close()
        raise
    return jm


def remove(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)
