"""Permissions (seed §9.5): path normalisation, prefix policies, EACCES with the path from
syscalls, spawn and env policies, network denied by default."""

from __future__ import annotations

import os

import pytest

from kernel.errors import KernelError
from kernel.permissions import Decision, Permissions, normalize_path, prefix_policy

from .ksupport import boot_kernel, register


@pytest.mark.parametrize("raw,norm", [
    ("/home/user/project/../../../etc/passwd", "/etc/passwd"),
    ("//a///b/", "/a/b"), ("/../..", "/"), ("/", "/"), ("a/./b/..", "a"), ("", "."),
    ("../x", "../x"), ("a/../..", ".."),
])
def test_normalize_path(raw, norm):
    assert normalize_path(raw) == norm


def test_prefix_policy_and_messages():
    perms = Permissions(fs=prefix_policy(allow=["/tmp", "/home/user"], deny=["/home/user/secret"]))
    perms.check_fs("read", "/tmp/x")
    perms.check_fs("write", "/home/user/a/b")
    for op, path in (("read", "/etc/passwd"), ("read", "/home/user/secret/k"),
                     ("write", "/tmp/../etc/shadow"), ("read", "/tmpfoo")):
        with pytest.raises(KernelError) as e:
            perms.check_fs(op, path)
        assert e.value.code == "EACCES"
        assert f"permission denied, {op} '{normalize_path(path)}'" in str(e.value)
    with pytest.raises(KernelError) as e:
        Permissions().check_fs("read", "/x")        # a policy object without fs callback denies
    assert e.value.code == "EACCES"
    Permissions.default().check_fs("read", "/x")     # no policy at all: fs open


def test_network_denied_by_default_and_allowed_explicitly():
    for perms in (Permissions.default(), Permissions()):
        with pytest.raises(KernelError) as e:
            perms.check_network("connect", hostname="example.com")
        assert e.value.code == "EACCES" and "example.com" in str(e.value)
    Permissions.allow_all().check_network("connect", hostname="example.com")
    only_local = Permissions(network=lambda req: Decision(req.hostname == "localhost", "loopback only"))
    only_local.check_network("connect", hostname="localhost")
    with pytest.raises(KernelError) as e:
        only_local.check_network("connect", hostname="evil.test")
    assert str(e.value).endswith(": loopback only")


def test_env_filter():
    env = {"PATH": "/bin", "SECRET": "x", "HOME": "/home/user"}
    assert Permissions().filter_env(env) == {}
    keep = Permissions(env=lambda req: req.key != "SECRET")
    assert keep.filter_env(env) == {"PATH": "/bin", "HOME": "/home/user"}
    assert Permissions.allow_all().filter_env(env) == env


async def test_syscalls_check_fs_policy(nursery):
    perms = Permissions(fs=prefix_policy(allow=["/tmp", "/bin", "/dev", "/home/user"], deny=["/tmp/private"]),
                        child_process=lambda req: req.command != "forbidden")
    k = await boot_kernel(nursery, permissions=perms)
    k.programs.register("forbidden", lambda ctx: None)
    seen = {}

    async def prog(ctx):
        async def attempt(label, coro):
            try:
                await coro
                seen[label] = "ok"
            except KernelError as e:
                seen[label] = str(e)

        await attempt("tmp", ctx.open("/tmp/a", os.O_CREAT | os.O_WRONLY))
        await attempt("private", ctx.open("/tmp/private", os.O_CREAT | os.O_WRONLY))
        await attempt("dotdot", ctx.open("/tmp/../etc/x", os.O_CREAT | os.O_WRONLY))
        await ctx.chdir("/tmp")
        await attempt("relative", ctx.stat("../etc"))
        await attempt("mkdir", ctx.mkdir("/private2"))
        await attempt("rename", ctx.rename("/tmp/a", "/tmp/private"))
        await attempt("spawn", ctx.spawn(["forbidden"]))
        await attempt("spawn_ok", ctx.spawn(["true"]))
        return 0

    r = await k.run([register(k, prog)])
    assert r.status == 0, r.stderr
    assert seen["tmp"] == "ok" and seen["spawn_ok"] == "ok"
    assert seen["private"] == "EACCES: permission denied, write '/tmp/private': denied by policy"
    assert seen["dotdot"] == "EACCES: permission denied, write '/etc/x'"
    assert seen["relative"] == "EACCES: permission denied, stat '/etc'"
    assert seen["mkdir"] == "EACCES: permission denied, mkdir '/private2'"
    assert seen["rename"] == "EACCES: permission denied, rename '/tmp/private': denied by policy"
    assert seen["spawn"] == "EACCES: permission denied, spawn 'forbidden'"
    assert not await k.vfs.exists("/tmp/private")
    await k.shutdown(grace=0.1)
