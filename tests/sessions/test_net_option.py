"""The network policy of kernels booted outside a mount: ``vfsfuse exec|shell STORE --net``
and ``vfsfuse.Sandbox(net=..., allow=...)``; a mount's policy is fixed at mount time."""

from __future__ import annotations

import os

import pytest

import vfsfuse
from kernel.errors import KernelError
from tests.sessions.conftest import run_cli

# A listener and a client in the same kernel: works only where the policy lets inet through.
LOOP = ("nc -l -p 7100 > /tmp/got & until ss -ltn | grep -q ':7100 '; do :; done; "
        "echo over-loopback | nc -q 0 127.0.0.1 7100; wait; cat /tmp/got")


def test_the_api_defaults_to_none_and_takes_loopback():
    with vfsfuse.Sandbox() as sb:
        r = sb.run("echo x > /dev/tcp/127.0.0.1/7100; echo rc=$?")
        assert r.stdout == "rc=1\n" and "Permission denied" in r.stderr
    with vfsfuse.Sandbox(net="loopback") as sb:
        r = sb.run(LOOP, timeout=30)
        assert r.stdout == "over-loopback\n", r.stderr


def test_the_api_refuses_bad_policies():
    with pytest.raises(KernelError) as err:
        vfsfuse.Sandbox(net="allow", allow=["tcp:999.0.0.1:80"])
    assert err.value.code == "EINVAL"
    with pytest.raises(KernelError):
        vfsfuse.Sandbox(allow=["tcp:127.0.0.1:80"])  # rules without net="allow"


def test_exec_on_a_store_takes_net(store):
    env = dict(os.environ)
    r = run_cli("exec", store, "--net", "loopback", "--", LOOP, env=env)
    assert r.returncode == 0 and r.stdout == b"over-loopback\n", r.stderr
    r = run_cli("exec", store, "--", "echo x > /dev/tcp/127.0.0.1/7100; echo rc=$?", env=env)
    assert r.stdout == b"rc=1\n" and b"Permission denied" in r.stderr
    r = run_cli("exec", store, "--net", "loopback", "--allow", "tcp:1.2.3.4:80", "--", "true", env=env)
    assert r.returncode == 2 and b"--net allow" in r.stderr and b"Traceback" not in r.stderr


@pytest.mark.mount
def test_a_mounts_policy_cannot_change_from_exec(new_mount, runtime_env):
    m = new_mount()
    r = run_cli("exec", m.path, "--net", "loopback", "--", "true", env=m.env)
    assert r.returncode == 2 and b"mount --net" in r.stderr, r.stderr
