"""``scripts/run``: mkfs + mount + a sandbox shell, the mount left up afterwards (or, with
``--ephemeral``, a memory store gone at exit); an old 0755 store is made private first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pexpect
import pytest

from tests.mount.conftest import mounted_here

pytestmark = pytest.mark.mount

RUN = str(Path(__file__).resolve().parents[2] / "scripts" / "run")


def _spawn(args: list[str], env: dict) -> pexpect.spawn:
    return pexpect.spawn(RUN, args, env=env, dimensions=(40, 100), timeout=60)


@pytest.fixture
def run_env(world_base, runtime_env, request):
    n = abs(hash(request.node.name)) % 10**8
    store, mnt = world_base / f"run-store-{n}", world_base / f"run-mnt-{n}"
    env = dict(runtime_env, VFSFUSE_STORE=str(store), VFSFUSE_MOUNT=str(mnt))
    yield env, str(store), str(mnt)
    if mounted_here(str(mnt)):
        pexpect.run(f"{RUN} umount {mnt}", env=env, timeout=60)


def test_run_makes_mounts_and_leaves_it_up(run_env):
    env, store, mnt = run_env
    c = _spawn([], env)
    c.expect(f"store {store} is mounted on {mnt}")
    c.expect("sandbox:~# ")
    c.send("echo made-in-sandbox > /tmp/f; cat /proc/1/comm\r")
    c.expect("init")
    c.send("exit\r")
    c.expect(f"the mount stays up at {mnt}")
    c.expect(f"unmount with: scripts/run umount {mnt}")
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 0
    assert mounted_here(mnt)
    assert Path(mnt, "tmp/f").read_text() == "made-in-sandbox\n"
    # a second run attaches to the same mount
    c = _spawn([], env)
    c.expect("is already mounted")
    c.expect("sandbox:~# ")
    c.send("cat /tmp/f\r")
    c.expect("made-in-sandbox")
    c.send("exit 3\r")
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 3


def test_run_repairs_an_old_world_readable_store(run_env):
    env, store, mnt = run_env
    pexpect.run(f"{RUN} mkfs {store}", env=env, timeout=60)
    os.chmod(store, 0o755)
    c = _spawn([], env)
    c.expect("making it private")
    c.expect("sandbox:~# ")
    c.send("exit\r")
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 0
    assert stat.S_IMODE(os.stat(store).st_mode) & 0o077 == 0


def test_run_ephemeral_is_gone_at_exit(run_env):
    env, _store, _mnt = run_env
    c = _spawn(["--ephemeral"], env)
    c.expect(r"a memory store is mounted on (\S+) ")
    where = c.match.group(1).decode()
    c.expect("sandbox:~# ")
    assert mounted_here(where)
    c.send("exit\r")
    c.expect("the memory store is gone")
    c.expect(pexpect.EOF)
    c.close()
    assert not mounted_here(where) and not os.path.exists(where)
