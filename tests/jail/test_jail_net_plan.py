"""The jail's network plan and the cgroup check without a jail: what bwrap is told per mode, the
environment, the refusals of an unprivileged daemon, the guard that keeps the daemon's own
namespace untouched, and the reading of the host's cgroup files (tests/jail/test_jail_net.py
runs the jail itself)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from kernel.errors import KernelError
from kernel.limits import Limits
from kernel.native import STDIO_PIPE, NativeSpec
from kernel.net.policy import NetPolicy
from vfsfuse.daemon import jail_net
from vfsfuse.daemon.jail import bwrap_args
from vfsfuse.daemon.jail_cgroup import delegated_v2


class Table:
    """What the plan needs of the kernel's socket table."""

    def __init__(self, policy: NetPolicy) -> None:
        self.policy = policy

        async def resolver(*args):
            return []
        self.resolver = resolver


def spec(policy: NetPolicy | None, env: dict[str, str] | None = None) -> NativeSpec:
    return NativeSpec(path="/bin/prog", argv=["prog"], env=env or {"PATH": "/bin"}, cwd="/", uid=0, gid=0,
                      hostname="sandbox", limits=Limits(), stdio=(STDIO_PIPE,) * 3,
                      net=Table(policy) if policy is not None else None)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy,blocks", [(None, True), (NetPolicy.none(), True), (NetPolicy.loopback(), False),
                                           (NetPolicy.allow("tcp:127.0.0.1:80"), True)])
def test_bwrap_waits_for_the_daemon_in_none_and_allow(policy, blocks, monkeypatch):
    monkeypatch.setattr(jail_net, "can_enter", lambda: True)
    net = jail_net.JailNet.plan(spec(policy))
    try:
        assert (net.options[:1] == ["--block-fd"]) == blocks
        assert len(net.child_fds()) == len(net.parent_fds()) == int(blocks)
        if blocks:
            assert net.options[1] == str(net.child_fds()[0])
    finally:
        for fd in net.child_fds():
            os.close(fd)
        net.close()


def test_allow_sets_the_proxy_variables_over_the_sandbox_ones():
    s = spec(NetPolicy.allow("tcp:127.0.0.1:80"), {"PATH": "/bin", "http_proxy": "http://elsewhere:1",
                                                   "NO_PROXY": "*"})
    env = jail_net.jail_env(s)
    assert env["PATH"] == "/bin"
    assert [env[k] for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")] == \
        ["http://127.0.0.1:3128"] * 4
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    args = bwrap_args(s, 3, 4, 5)
    assert ["--setenv", "http_proxy", "http://127.0.0.1:3128"] == args[args.index("http_proxy") - 1:][:3]


@pytest.mark.parametrize("policy", [NetPolicy.none(), NetPolicy.loopback()])
def test_other_modes_get_no_proxy_variables(policy):
    assert jail_net.jail_env(spec(policy, {"PATH": "/bin"})) == {"PATH": "/bin"}


def test_an_unprivileged_daemon_refuses_allow_in_one_line(monkeypatch):
    monkeypatch.setattr(jail_net, "can_enter", lambda: False)
    with pytest.raises(KernelError) as info:
        jail_net.JailNet.plan(spec(NetPolicy.allow("tcp:127.0.0.1:80")))
    assert info.value.code == "ENOSYS" and "root" in info.value.message and "\n" not in info.value.message


def test_an_unprivileged_daemon_leaves_none_a_private_loopback_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(jail_net, "can_enter", lambda: False)
    monkeypatch.setattr(jail_net, "_said_unprivileged", False)
    with caplog.at_level(logging.INFO, logger="vfsfuse.daemon.jail"):
        for _ in range(3):
            net = jail_net.JailNet.plan(spec(NetPolicy.none()))
            assert net.options == [] and net.child_fds() == []
    said = [r for r in caplog.records if "cannot take a jail's loopback down" in r.getMessage()]
    assert len(said) == 1


def test_the_daemons_own_namespace_is_never_entered():
    """A pid sharing the daemon's namespace (its own) is refused before any setns: nothing here
    can take the host's loopback down."""
    called = []
    with pytest.raises(OSError) as info:
        jail_net.in_netns(os.getpid(), lambda: called.append(1))
    assert info.value.errno == errno.EPERM and called == []


# -- cgroups -------------------------------------------------------------------------------

def mountinfo(v2_at: str | None) -> str:
    lines = ["22 1 0:21 / /sys/fs/cgroup rw - tmpfs tmpfs rw",
             "25 22 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"]
    if v2_at is not None:
        lines.append(f"30 22 0:27 / {v2_at} rw - cgroup2 cgroup2 rw")
    return "\n".join(lines) + "\n"


def test_a_v1_host_has_no_delegated_subtree():
    where, why = delegated_v2(mountinfo(None), "4:memory:/x\n")
    assert where is None and "no cgroup v2 mount" in why


def test_a_hybrid_host_offers_no_memory_or_pids(tmp_path: Path):
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    where, why = delegated_v2(mountinfo(str(tmp_path)), "4:memory:/x\n0::/\n")
    assert where is None and "no memory or pids controller" in why


def test_a_delegated_v2_subtree_is_found(tmp_path: Path):
    sub = tmp_path / "user.slice" / "daemon"
    sub.mkdir(parents=True)
    (sub / "cgroup.controllers").write_text("cpu io memory pids\n")
    where, why = delegated_v2(mountinfo(str(tmp_path)), "0::/user.slice/daemon\n")
    assert where == str(sub) and why == ""


def test_this_hosts_note_is_one_line():
    from vfsfuse.daemon.jail_cgroup import limits_note

    note = limits_note()
    assert "\n" not in note and "rlimits" in note
