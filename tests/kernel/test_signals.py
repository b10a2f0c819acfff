"""Signals: default actions, handlers, EINTR vs SA_RESTART, SIGKILL, stop/continue,
process groups, blocking masks, SIGPIPE."""

from __future__ import annotations

import os

import pytest
import trio

from kernel import process as P
from kernel import signals as S
from kernel.errors import KernelError
from kernel.syscalls import O_CLOEXEC

from .ksupport import register, run_program


def test_names_and_parsing():
    assert S.parse_signal("KILL") == S.parse_signal("sigkill") == S.parse_signal("9") == 9
    assert S.signal_name(15) == "SIGTERM"
    with pytest.raises(KernelError):
        S.parse_signal("NOPE")
    assert S.default_action(S.SIGCHLD) == "ign"
    assert S.default_action(S.SIGTSTP) == "stop"
    assert S.default_action(S.SIGQUIT) == "core"
    assert S.default_action(S.SIGTERM) == "term"


@pytest.mark.parametrize("sig", [S.SIGTERM, S.SIGINT, S.SIGHUP, S.SIGKILL, S.SIGUSR1])
async def test_default_action_terminates(kernel, sig):
    h = await kernel.spawn(["sleep", "10"])
    await trio.sleep(0.01)
    h.kill(sig)
    status = await h.wait()
    assert P.WIFSIGNALED(status) and P.WTERMSIG(status) == sig


async def test_sigquit_reports_core_flag(kernel):
    h = await kernel.spawn(["sleep", "10"])
    await trio.sleep(0.01)
    h.kill(S.SIGQUIT)
    status = await h.wait()
    assert P.WTERMSIG(status) == S.SIGQUIT and P.WCOREDUMP(status)


async def test_ignored_default_signals_do_nothing(kernel):
    h = await kernel.spawn(["sleep", "0.1"])
    for sig in (S.SIGCHLD, S.SIGWINCH, S.SIGURG, S.SIGCONT):
        h.kill(sig)
    assert await h.wait() == 0


async def test_handler_runs_and_sleep_gets_eintr(kernel):
    seen = []

    async def prog(ctx):
        await ctx.signal(S.SIGUSR1, lambda sig: seen.append(sig))
        try:
            await ctx.sleep(5)
        except KernelError as e:
            seen.append(e.code)
        return 0

    name = register(kernel, prog)
    h = await kernel.spawn([name])
    await trio.sleep(0.05)
    h.kill(S.SIGUSR1)
    with trio.fail_after(2):
        assert await h.wait() == 0
    assert seen == [S.SIGUSR1, "EINTR"]


async def test_sa_restart_restarts_pipe_read_and_eintr_without_it(kernel):
    seen = []

    async def prog(ctx):
        r, w = await ctx.pipe()
        await ctx.signal(S.SIGUSR1, lambda s: seen.append("h1"))          # SA_RESTART
        await ctx.signal(S.SIGUSR2, lambda s: seen.append("h2"), flags=0)  # no restart
        try:
            await ctx.read(r, 10)
        except KernelError as e:
            seen.append(e.code)
        return 0

    name = register(kernel, prog)
    h = await kernel.spawn([name])
    await trio.sleep(0.05)
    h.kill(S.SIGUSR1)   # handler runs, read restarts
    await trio.sleep(0.05)
    assert seen == ["h1"]
    h.kill(S.SIGUSR2)   # handler runs, read fails with EINTR
    with trio.fail_after(2):
        assert await h.wait() == 0
    assert seen == ["h1", "h2", "EINTR"]


async def test_async_handler_and_resethand(kernel):
    seen = []

    async def prog(ctx):
        async def handler(sig):
            await ctx.write_all(1, f"got {sig}\n")
        await ctx.sigaction(S.SIGUSR1, S.SigAction(handler, flags=S.SA_RESETHAND))
        await ctx.kill(ctx.getpid(), S.SIGUSR1)
        seen.append((await ctx.sigaction(S.SIGUSR1)).handler)
        await ctx.kill(ctx.getpid(), S.SIGUSR1)  # default now: terminates
        return 0

    r = await run_program(kernel, prog)
    assert r.stdout == b"got 10\n"
    assert seen == [S.SIG_DFL]
    assert P.WTERMSIG(r.status) == S.SIGUSR1


async def test_sigkill_and_sigstop_cannot_be_caught(kernel):
    codes = []

    async def prog(ctx):
        for sig in (S.SIGKILL, S.SIGSTOP):
            try:
                await ctx.signal(sig, S.SIG_IGN)
            except KernelError as e:
                codes.append(e.code)
        await ctx.sigprocmask(S.SIG_BLOCK, {S.SIGKILL, S.SIGTERM})
        await ctx.sleep(10)
        return 0

    name = register(kernel, prog)
    h = await kernel.spawn([name])
    await trio.sleep(0.05)
    h.kill(S.SIGTERM)         # blocked: stays pending
    await trio.sleep(0.05)
    assert h.proc.state != "Z" and S.SIGTERM in h.proc.sig.pending
    h.kill(S.SIGKILL)         # cannot be blocked
    status = await h.wait()
    assert P.WTERMSIG(status) == S.SIGKILL
    assert codes == ["EINVAL", "EINVAL"]


async def test_sigkill_ends_a_program_that_ignores_everything(kernel):
    async def prog(ctx):
        for sig in (S.SIGTERM, S.SIGINT, S.SIGHUP):
            await ctx.signal(sig, S.SIG_IGN)
        while True:
            try:
                await ctx.sleep(1)
            except KernelError:
                pass

    name = register(kernel, prog)
    h = await kernel.spawn([name])
    await trio.sleep(0.02)
    for sig in (S.SIGTERM, S.SIGINT, S.SIGHUP):
        h.kill(sig)
    await trio.sleep(0.02)
    assert h.proc.state != "Z"
    h.kill(S.SIGKILL)
    with trio.fail_after(2):
        assert P.WTERMSIG(await h.wait()) == S.SIGKILL


async def test_unblocking_delivers_pending(kernel):
    seen = []

    async def prog(ctx):
        await ctx.signal(S.SIGUSR1, lambda s: seen.append("usr1"))
        await ctx.sigprocmask(S.SIG_BLOCK, {S.SIGUSR1})
        await ctx.kill(ctx.getpid(), S.SIGUSR1)
        await ctx.kill(ctx.getpid(), S.SIGUSR1)   # coalesces
        seen.append(("pending", ctx.sigpending()))
        await ctx.sigprocmask(S.SIG_UNBLOCK, {S.SIGUSR1})
        seen.append("after")
        return 0

    await run_program(kernel, prog)
    assert seen == [("pending", {S.SIGUSR1}), "usr1", "after"]


async def test_stop_and_continue_with_wuntraced_wcontinued(kernel):
    seen = []

    async def parent(ctx):
        pid = await ctx.spawn(["sleep", "0.2"])
        await ctx.sleep(0.02)
        await ctx.kill(pid, S.SIGSTOP)
        seen.append(await ctx.waitpid(pid, P.WUNTRACED))
        seen.append(kernel.processes.get(pid).state)
        await ctx.sleep(0.3)                      # stopped: the sleep cannot finish
        seen.append(await ctx.waitpid(pid, P.WNOHANG))
        await ctx.kill(pid, S.SIGCONT)
        seen.append(await ctx.waitpid(pid, P.WCONTINUED))
        seen.append(await ctx.waitpid(pid))
        return 0

    assert (await run_program(kernel, parent)).status == 0
    pid = seen[0][0]
    assert seen[0] == (pid, P.status_stopped(S.SIGSTOP))
    assert seen[1] == "T"
    assert seen[2] == (0, 0)
    assert seen[3] == (pid, P.STATUS_CONTINUED)
    assert seen[4] == (pid, 0)


async def test_sigtstp_default_stops_and_handler_can_catch(kernel):
    seen = []

    async def parent(ctx):
        pid = await ctx.spawn(["sleep", "5"])
        await ctx.sleep(0.02)
        await ctx.kill(pid, S.SIGTSTP)
        seen.append(await ctx.waitpid(pid, P.WUNTRACED))
        await ctx.kill(pid, S.SIGKILL)            # kills a stopped process too
        seen.append(await ctx.waitpid(pid))
        return 0

    await run_program(kernel, parent)
    assert P.WSTOPSIG(seen[0][1]) == S.SIGTSTP
    assert P.WTERMSIG(seen[1][1]) == S.SIGKILL


async def test_kill_process_group(kernel):
    seen = []

    async def parent(ctx):
        a = await ctx.spawn(["sleep", "5"], pgid=0)
        b = await ctx.spawn(["sleep", "5"], pgid=a)
        c = await ctx.spawn(["sleep", "0.1"])     # stays in the parent's group
        await ctx.kill(-a, S.SIGTERM)
        for pid in (a, b, c):
            seen.append(await ctx.waitpid(pid))
        with pytest.raises(KernelError) as e:
            await ctx.kill(-a, 0)
        seen.append(e.value.code)
        with pytest.raises(KernelError) as e:
            await ctx.kill(99999, S.SIGTERM)
        seen.append(e.value.code)
        return 0

    assert (await run_program(kernel, parent)).status == 0
    assert P.WTERMSIG(seen[0][1]) == P.WTERMSIG(seen[1][1]) == S.SIGTERM
    assert seen[2][1] == 0
    assert seen[3:] == ["ESRCH", "ESRCH"]


async def test_sigchld_handler_runs_when_child_exits(kernel):
    seen = []

    async def parent(ctx):
        await ctx.signal(S.SIGCHLD, lambda s: seen.append("chld"))
        await ctx.spawn(["true"])
        try:
            await ctx.pause()
        except KernelError as e:
            seen.append(e.code)
        seen.append((await ctx.wait())[1])
        return 0

    await run_program(kernel, parent)
    assert seen == ["chld", "EINTR", 0]


async def test_sigpipe_kills_writer_with_141(kernel):
    seen = []

    async def writer(ctx):
        r, w = await ctx.pipe(O_CLOEXEC)
        await ctx.close(r)
        await ctx.write(w, b"x")
        seen.append("survived")
        return 0

    r = await run_program(kernel, writer)
    assert P.WTERMSIG(r.status) == S.SIGPIPE and P.shell_code(r.status) == 141
    assert seen == []

    async def ignoring(ctx):
        await ctx.signal(S.SIGPIPE, S.SIG_IGN)
        r, w = await ctx.pipe()
        await ctx.close(r)
        try:
            await ctx.write(w, b"x")
        except KernelError as e:
            seen.append(e.code)
        return 0

    assert (await run_program(kernel, ignoring)).status == 0
    assert seen == ["EPIPE"]


async def test_stopped_process_blocks_at_next_syscall(kernel):
    ticks = []

    async def ticker(ctx):
        while True:
            ticks.append(1)
            await ctx.sched_yield()
            await ctx.sleep(0.005)

    name = register(kernel, ticker)
    h = await kernel.spawn([name])
    await trio.sleep(0.05)
    h.kill(S.SIGSTOP)
    await trio.sleep(0.02)
    n = len(ticks)
    await trio.sleep(0.1)
    assert len(ticks) == n and h.proc.state == "T"
    h.kill(S.SIGCONT)
    await trio.sleep(0.05)
    assert len(ticks) > n
    h.kill(S.SIGKILL)
    await h.wait()


async def test_every_syscall_honours_a_stop(kernel):
    """A stopped process makes no progress, even in a loop of non-blocking calls
    (chmod, fstat, lseek, dup/close): each syscall entry waits while it is stopped."""
    count = [0]

    async def busy(ctx):
        fd = await ctx.open("/tmp/busy", os.O_CREAT | os.O_RDWR)
        while True:
            await ctx.chmod("/tmp/busy", 0o600)
            await ctx.fstat(fd)
            await ctx.lseek(fd, 0)
            await ctx.close(await ctx.dup(fd))
            count[0] += 1

    h = await kernel.spawn([register(kernel, busy)])
    with trio.fail_after(30):
        while count[0] < 3:
            await trio.sleep(0.01)
    h.kill(S.SIGSTOP)
    await trio.sleep(0.02)
    stopped_at = count[0]
    await trio.sleep(0.1)
    assert count[0] == stopped_at and h.proc.state == "T"
    h.kill(S.SIGCONT)
    with trio.fail_after(30):
        while count[0] < stopped_at + 3:
            await trio.sleep(0.01)
    h.kill(S.SIGKILL)
    assert P.WTERMSIG(await h.wait()) == S.SIGKILL
    await h.aclose()


async def test_a_busy_program_neither_starves_others_nor_escapes_sigkill(kernel):
    """Writes to /dev/null never block; the kernel still lets other tasks run and the
    SIGKILL lands (trio cannot preempt: the syscall layer yields every few calls)."""
    async def busy(ctx):
        fd = await ctx.open("/dev/null", os.O_WRONLY)
        while True:
            await ctx.write(fd, b"y\n")

    h = await kernel.spawn([register(kernel, busy)])
    with trio.fail_after(30):
        assert (await kernel.run(["echo", "still here"])).stdout == b"still here\n"
        h.kill(S.SIGKILL)
        assert P.WTERMSIG(await h.wait()) == S.SIGKILL
    await h.aclose()
