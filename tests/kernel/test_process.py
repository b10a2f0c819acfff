"""Processes: wait status encoding (against real Linux statuses), spawn/wait, zombies,
orphans re-parented to init, waitpid selectors, limits and a fork bomb."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import trio

from kernel import process as P
from kernel.errors import KernelError
from kernel.limits import Limits
from kernel.programs.registry import ProgramRegistry

from .ksupport import boot_kernel, register, run_program


# ---------------------------------------------------------------- wait status vs Linux
def _real_status(action: str) -> int:
    """A raw wait status produced by the host kernel."""
    p = subprocess.Popen(["sleep", "30"]) if action != "exit3" else subprocess.Popen(["sh", "-c", "exit 3"])
    try:
        if action == "exit3":
            return os.waitpid(p.pid, 0)[1]
        if action == "term":
            os.kill(p.pid, signal.SIGTERM)
            return os.waitpid(p.pid, 0)[1]
        if action == "kill":
            os.kill(p.pid, signal.SIGKILL)
            return os.waitpid(p.pid, 0)[1]
        os.kill(p.pid, signal.SIGSTOP)
        stopped = os.waitpid(p.pid, os.WUNTRACED)[1]
        if action == "stop":
            return stopped
        os.kill(p.pid, signal.SIGCONT)
        return os.waitpid(p.pid, os.WCONTINUED)[1]
    finally:
        if p.poll() is None:
            p.kill()
            try:
                os.waitpid(p.pid, 0)
            except ChildProcessError:
                pass
        p.returncode = 0


@pytest.mark.parametrize("action,ours", [
    ("exit3", P.status_exited(3)),
    ("term", P.status_signaled(signal.SIGTERM)),
    ("kill", P.status_signaled(signal.SIGKILL)),
    ("stop", P.status_stopped(signal.SIGSTOP)),
    ("cont", P.STATUS_CONTINUED),
])
def test_wait_status_matches_linux(action, ours):
    real = _real_status(action)
    assert ours == real
    for name in ("WIFEXITED", "WEXITSTATUS", "WIFSIGNALED", "WTERMSIG", "WIFSTOPPED", "WSTOPSIG",
                 "WIFCONTINUED", "WCOREDUMP"):
        assert getattr(P, name)(ours) == getattr(os, name)(real), name


@pytest.mark.parametrize("code", [0, 1, 42, 255, 256 + 7])
def test_exit_codes_roundtrip(code):
    s = P.status_exited(code)
    assert os.WIFEXITED(s) and os.WEXITSTATUS(s) == code & 0xFF
    assert P.shell_code(s) == code & 0xFF


def test_shell_code_of_signal_death():
    assert P.shell_code(P.status_signaled(13)) == 141


def test_registry_resolves_names_and_bin_paths():
    reg = ProgramRegistry()

    async def prog(ctx):
        return 0
    reg.register("ls", prog)
    assert reg.resolve("ls") == ("/bin/ls", prog)
    assert reg.resolve("/usr/bin/ls")[0] == "/usr/bin/ls"
    assert reg.resolve("/bin/./ls")[0] == "/bin/ls"
    for bad in ("/tmp/ls", "nope", "/bin/nope", "./ls"):
        with pytest.raises(KernelError) as e:
            reg.resolve(bad)
        assert e.value.code == "ENOENT"


# ---------------------------------------------------------------- spawn / wait
async def test_exit_status_from_return_exit_and_exception(kernel):
    async def ret(ctx):
        return 7

    async def ex(ctx):
        ctx.exit(9)

    async def boom(ctx):
        raise KernelError("ENOENT", "nope")

    async def crash(ctx):
        return 1 // 0
    assert (await run_program(kernel, ret)).status == P.status_exited(7)
    assert (await run_program(kernel, ex)).status == P.status_exited(9)
    r = await run_program(kernel, boom)
    assert r.status == P.status_exited(1) and b"ENOENT: nope" in r.stderr
    r = await run_program(kernel, crash)
    assert r.status == P.status_exited(1) and b"ZeroDivisionError" in r.stderr
    # the kernel is still fine
    assert (await kernel.run(["true"])).status == 0


async def test_spawn_wait_and_identity(kernel):
    seen = {}

    async def child(ctx):
        seen["child"] = (ctx.getpid(), ctx.getppid(), ctx.getpgid(), ctx.getsid(), ctx.argv,
                         ctx.getcwd(), ctx.environ.get("X"))
        return 5

    cname = register(kernel, child)

    async def parent(ctx):
        pid = await ctx.spawn([cname, "a", "b"], env={"X": "1"}, cwd="/tmp")
        seen["pid"] = pid
        seen["wait"] = await ctx.waitpid(pid)
        seen["me"] = (ctx.getpid(), ctx.getpgid(), ctx.getsid())
        with pytest.raises(KernelError) as e:
            await ctx.waitpid(pid)
        seen["again"] = e.value.code
        return 0

    assert (await run_program(kernel, parent)).status == 0
    me, mpgid, msid = seen["me"]
    assert seen["wait"] == (seen["pid"], P.status_exited(5))
    assert seen["child"] == (seen["pid"], me, mpgid, msid, [cname, "a", "b"], "/tmp", "1")
    assert seen["again"] == "ECHILD"


async def test_zombie_until_reaped_and_wnohang(kernel):
    seen = {}

    async def parent(ctx):
        pid = await ctx.spawn(["sleep", "0.05"])
        seen["nohang"] = await ctx.waitpid(pid, P.WNOHANG)
        seen["state_running"] = kernel.processes.get(pid).state
        await ctx.sleep(0.2)
        seen["zombie"] = kernel.processes.get(pid).state
        seen["in_pids"] = pid in kernel.processes.pids()
        seen["wait"] = await ctx.waitpid(pid, P.WNOHANG)
        seen["gone"] = kernel.processes.get(pid)
        return 0

    assert (await run_program(kernel, parent)).status == 0
    assert seen["nohang"] == (0, 0)
    assert seen["state_running"] in ("R", "S")
    assert seen["zombie"] == "Z" and seen["in_pids"]
    assert seen["wait"][1] == 0
    assert seen["gone"] is None


async def test_waitpid_selectors(kernel):
    seen = {}

    async def parent(ctx):
        a = await ctx.spawn(["false"])                 # same group as parent
        b = await ctx.spawn(["true"], pgid=0)          # own group
        await ctx.sleep(0.05)
        with pytest.raises(KernelError) as e:
            await ctx.waitpid(-12345)
        seen["nogroup"] = e.value.code
        seen["grp"] = await ctx.waitpid(-b)            # group of b
        seen["mine"] = await ctx.waitpid(0)            # my group: a
        with pytest.raises(KernelError) as e:
            await ctx.waitpid(-1)
        seen["none"] = e.value.code
        seen["ab"] = (a, b)
        return 0

    assert (await run_program(kernel, parent)).status == 0
    a, b = seen["ab"]
    assert seen["grp"] == (b, 0)
    assert seen["mine"] == (a, P.status_exited(1))
    assert seen["nogroup"] == seen["none"] == "ECHILD"


async def test_orphans_are_reparented_to_init_and_reaped(kernel):
    seen = {}

    async def grandchild(ctx):
        await ctx.sleep(0.1)
        seen["ppid_after"] = ctx.getppid()
        return 0

    gname = register(kernel, grandchild)

    async def middle(ctx):
        seen["gc"] = await ctx.spawn([gname])
        return 0  # exits without waiting

    mname = register(kernel, middle)

    async def top(ctx):
        pid = await ctx.spawn([mname])
        await ctx.waitpid(pid)
        await ctx.sleep(0.3)
        return 0

    assert (await run_program(kernel, top)).status == 0
    assert seen["ppid_after"] == 1
    assert kernel.processes.get(seen["gc"]) is None  # init reaped it


async def test_sigchld_ignored_autoreaps(kernel):
    from kernel.signals import SIG_IGN, SIGCHLD
    seen = {}

    async def parent(ctx):
        await ctx.signal(SIGCHLD, SIG_IGN)
        pid = await ctx.spawn(["true"])
        await ctx.sleep(0.05)
        seen["gone"] = kernel.processes.get(pid) is None
        return 0

    await run_program(kernel, parent)
    assert seen["gone"]


async def test_setpgid_and_setsid_rules(kernel):
    seen = {}

    async def parent(ctx):
        pid = await ctx.spawn(["sleep", "1"])
        await ctx.setpgid(pid, pid)
        seen["child_pgid"] = (pid, ctx.getpgid(pid))
        with pytest.raises(KernelError) as e:
            await ctx.setpgid(pid, 99999)
        seen["bad_group"] = e.value.code
        with pytest.raises(KernelError) as e:
            await ctx.setpgid(424242, 0)
        seen["not_child"] = e.value.code
        seen["sid"] = await ctx.setsid()       # host-started processes lead their session...
        return 0

    r = await run_program(kernel, parent)
    # ...so setsid fails with EPERM (already a group leader) and the program dies with it
    assert r.status == P.status_exited(1) and b"EPERM" in r.stderr
    assert seen["bad_group"] == "EPERM" and seen["not_child"] == "ESRCH"
    pid, pgid = seen["child_pgid"]
    assert pgid == pid


async def test_process_limit_gives_eagain_and_kernel_survives(nursery):
    k = await boot_kernel(nursery, limits=Limits(max_processes=10))
    seen = {}

    async def parent(ctx):
        pids, err = [], None
        try:
            for _ in range(20):
                pids.append(await ctx.spawn(["sleep", "10"]))
        except KernelError as e:
            err = e.code
        seen["n"], seen["err"] = len(pids), err
        for p in pids:
            await ctx.kill(p, 9)
            await ctx.waitpid(p)
        seen["after"] = await ctx.spawn(["true"])
        seen["after_status"] = (await ctx.waitpid(seen["after"]))[1]
        return 0

    assert (await run_program(k, parent)).status == 0
    assert seen["err"] == "EAGAIN" and seen["n"] == 9  # 10 minus the parent itself (init is not counted)
    assert seen["after_status"] == 0
    await k.shutdown(grace=0.1)


async def test_fork_bomb_hits_limit_and_kernel_stays_usable(nursery):
    k = await boot_kernel(nursery, limits=Limits(max_processes=40))
    hits = []

    async def bomb(ctx):
        while True:
            try:
                await ctx.spawn(["bomb"])
            except KernelError as e:
                hits.append(e.code)
                await ctx.sleep(0.01)

    k.programs.register("bomb", bomb)
    h = await k.spawn(["bomb"], stdout=None, stderr=None)
    with trio.fail_after(30):
        while len(hits) < 20:
            await trio.sleep(0.01)
    assert set(hits) == {"EAGAIN"}
    assert len(k.processes) <= 41
    k.kill(-h.pid, 9)  # the whole group: every bomb inherited it
    with trio.fail_after(30):
        while len(k.processes) > 1:
            await trio.sleep(0.01)
    r = await k.run(["echo", "alive"])
    assert r.stdout == b"alive\n"
    await k.shutdown(grace=0.1)
