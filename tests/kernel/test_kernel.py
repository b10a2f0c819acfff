"""The kernel facade: boot layout, /dev and /proc wiring, host-side spawn/run/terminal,
shutdown, logging, and the bench smoke test."""

from __future__ import annotations

import logging
import os
import stat
import subprocess

import pytest
import trio

from kernel import process as P
from kernel import signals as S
from kernel.errors import KernelError
from kernel.kernel import PIPE
from kernel.pathvfs import PathVFS

from .ksupport import boot_kernel, register, run_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_boot_layout(kernel):
    vfs = kernel.vfs
    for d in ("/tmp", "/home/user", "/bin", "/etc", "/usr/bin", "/var/tmp"):
        assert (await vfs.stat(d)).is_directory, d
    assert stat.S_IMODE((await vfs.stat("/tmp")).mode) == 0o1777
    stub = await vfs.stat("/bin/cat")
    assert stub.is_file and stat.S_IMODE(stub.mode) == 0o755
    assert (await vfs.read_file("/bin/cat")).startswith(b"#!/bin/sh")
    paths = [m.path for m in kernel.mount_table.mounts()]
    assert paths[:3] == ["/", "/dev", "/proc"]
    init = kernel.processes.get(1)
    assert init is not None and init.comm == "init" and init.ppid == 0


async def test_dev_shm_is_a_writable_memory_directory(nursery):
    """With a memory filesystem from the host, /dev/shm is a sticky world-writable tmpfs
    where any user may create files; without one, creating there fails cleanly."""
    from vfsfuse.storage.store import memory_vfs

    root, shm = memory_vfs(), memory_vfs()
    k = await boot_kernel(nursery, shm=shm, uid=1000, gid=1000)  # host-started programs: uid 1000
    try:
        st = await k.vfs.stat("/dev/shm")
        assert st.is_directory and stat.S_IMODE(st.mode) == 0o1777
        assert "tmpfs /dev/shm tmpfs rw,relatime 0 0\n" in k.mount_table.mounts_text()

        async def user(ctx):
            fd = await ctx.open("/dev/shm/seg", os.O_CREAT | os.O_RDWR, 0o600)
            await ctx.write(fd, b"shared")
            await ctx.close(fd)
            return 0

        assert (await k.run([register(k, user)])).status == 0
        st = await k.vfs.stat("/dev/shm/seg")
        assert (st.uid, stat.S_IMODE(st.mode)) == (1000, 0o600)
        assert await k.vfs.read_file("/dev/shm/seg") == b"shared"
        assert await PathVFS(shm).read_file("/seg") == b"shared"     # in the memory fs
        assert not await PathVFS(root).exists("/dev/shm/seg")         # not in the store
    finally:
        await k.shutdown(grace=0.1)
    k = await boot_kernel(nursery)
    try:
        with pytest.raises(KernelError) as e:
            await k.vfs.write_file("/dev/shm/seg", b"x")
        assert e.value.code == "EPERM"
    finally:
        await k.shutdown(grace=0.1)


async def test_boot_twice_is_refused(kernel, nursery):
    with pytest.raises(KernelError) as e:
        await kernel.boot(nursery)
    assert e.value.code == "EBUSY"


async def test_proc_shows_live_processes(kernel):
    h = await kernel.spawn(["sleep", "5", "1"], stdout=PIPE)
    await trio.sleep(0.02)  # let it reach its sleep
    r = await kernel.run(["cat", f"/proc/{h.pid}/cmdline", f"/proc/{h.pid}/status"])
    assert r.stdout.startswith(b"sleep\x005\x001\x00")
    assert b"\nState:\tS (sleeping)" in r.stdout and b"\nPPid:\t1\n" in r.stdout
    fds = await kernel.vfs.read_dir(f"/proc/{h.pid}/fd")
    assert sorted(fds) == ["0", "1", "2"]
    link = await kernel.vfs.readlink(f"/proc/{h.pid}/fd/1")
    assert link.startswith("pipe:[")
    h.kill(S.SIGKILL)
    assert P.WTERMSIG(await h.wait()) == S.SIGKILL
    await h.aclose()


async def test_proc_self_inside_a_program(kernel):
    seen = {}

    async def prog(ctx):
        fd = await ctx.open("/proc/self/status")
        text = (await ctx.read(fd, 8192)).decode()
        seen["pid_line"] = [ln for ln in text.splitlines() if ln.startswith("Pid:")][0]
        seen["pid"] = ctx.getpid()
        seen["self"] = await ctx.readlink("/proc/self")
        return 0

    await run_program(kernel, prog)
    assert seen["pid_line"] == f"Pid:\t{seen['pid']}" and seen["self"] == str(seen["pid"])


async def test_run_collects_output_and_status(kernel):
    r = await kernel.run(["cat"], input=b"x" * 200_000)
    assert r.status == 0 and r.stdout == b"x" * 200_000
    r = await kernel.run(["cat", "/nope"])
    assert r.returncode == 1 and b"/nope" in r.stderr
    with pytest.raises(KernelError) as e:
        await kernel.run(["nonexistent"])
    assert e.value.code == "ENOENT"
    with pytest.raises(KernelError) as e:
        await kernel.run(["sleep", "5"], timeout=0.05)
    assert e.value.code == "ETIMEDOUT"


async def test_a_crashing_program_reports_one_line_without_host_paths(kernel):
    """A program bug ends the process with status 1 and one line on its stderr; a host
    OSError loses its file names on the way (nothing host-side reaches the sandbox)."""
    async def crash(ctx):
        raise FileNotFoundError(2, "No such file or directory", "/host/secret/dir")

    async def bug(ctx):
        raise ValueError("bad value")

    r = await run_program(kernel, crash)
    assert r.returncode == 1 and b"/host/secret" not in r.stderr
    assert r.stderr.count(b"\n") == 1 and b"internal error: ENOENT" in r.stderr
    r = await run_program(kernel, bug)
    assert r.returncode == 1 and r.stderr.endswith(b": internal error: ValueError: bad value\n")
    assert (await kernel.run(["echo", "ok"])).stdout == b"ok\n"


async def test_shutdown_terminates_everything(nursery):
    k = await boot_kernel(nursery)

    async def stubborn(ctx):
        await ctx.signal(S.SIGTERM, S.SIG_IGN)
        await ctx.sleep(100)

    name = register(k, stubborn)
    a = await k.spawn(["sleep", "100"])
    b = await k.spawn([name])
    await trio.sleep(0.02)
    with trio.fail_after(30):
        await k.shutdown(grace=0.1)
    assert P.WTERMSIG(a.proc.exit_status) == S.SIGTERM
    assert P.WTERMSIG(b.proc.exit_status) == S.SIGKILL
    with pytest.raises(KernelError):
        await k.run(["true"])


async def test_limits_for_generated_files_give_enomem(nursery):
    from kernel.limits import Limits
    k = await boot_kernel(nursery, limits=Limits(max_generated_bytes=64))
    seen = {}

    async def prog(ctx):
        try:
            await ctx.open("/proc/1/status")
        except KernelError as e:
            seen["code"] = e.code
        return 0

    await k.run([register(k, prog)])
    assert seen["code"] == "ENOMEM"
    assert (await k.run(["echo", "ok"])).stdout == b"ok\n"   # the kernel is fine
    await k.shutdown(grace=0.1)


def test_logging_is_silent_by_default():
    """No handler of ours prints: the package logger only has a NullHandler."""
    handlers = logging.getLogger("vfsfuse").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


async def test_logging_uses_subsystem_loggers(nursery, caplog):
    k = await boot_kernel(nursery)
    with caplog.at_level(logging.DEBUG, logger="vfsfuse.kernel"):
        await k.run(["true"])
    names = {r.name for r in caplog.records}
    assert "vfsfuse.kernel.process" in names
    await k.shutdown(grace=0.1)


def test_bench_kernel_quick_smoke():
    r = subprocess.run([os.path.join(ROOT, "scripts", "bench-kernel"), "--quick"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("open+read+close 1 KiB:") and "/s" in lines[0]
    assert lines[1].startswith("spawn+wait no-op:")
    assert lines[2].startswith("pipe 64 KiB writes:") and "MB/s" in lines[2]
    assert lines[3].startswith("cat /proc/<pid>/status via FUSE:")


async def test_killed_processes_release_their_files(kernel):
    """A process killed while holding files on a mount leaves no handle behind: unmount works."""
    from vfsfuse.storage.store import memory_vfs
    await kernel.mount("/mnt/x", memory_vfs())

    async def holder(ctx):
        fds = [await ctx.open(f"/mnt/x/f{i}", os.O_CREAT | os.O_RDWR) for i in range(5)]
        fds.append(await ctx.open("/mnt/x", os.O_RDONLY | os.O_DIRECTORY))
        await ctx.write(fds[0], b"partial")
        await ctx.sleep(100)

    h = await kernel.spawn([register(kernel, holder)])
    await trio.sleep(0.05)
    with pytest.raises(KernelError) as e:
        await kernel.unmount("/mnt/x")
    assert e.value.code == "EBUSY"
    h.kill(S.SIGKILL)
    await h.wait()
    await kernel.unmount("/mnt/x")


async def test_stress_pipelines_with_random_kills(kernel):
    import random
    rnd = random.Random(7)

    async def pipeline(ctx):
        r, w = await ctx.pipe(os.O_CLOEXEC)
        a = await ctx.spawn(["yes"], stdout=w, pgid=0)
        null = await ctx.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        b = await ctx.spawn(["cat"], stdin=r, stdout=null, pgid=a)
        await ctx.close(r)
        await ctx.close(w)
        await ctx.sleep(rnd.random() * 0.02)
        await ctx.kill(-a, rnd.choice([S.SIGTERM, S.SIGKILL, S.SIGINT, S.SIGPIPE]))
        s1 = (await ctx.waitpid(a))[1]
        s2 = (await ctx.waitpid(b))[1]
        return 0 if P.WIFSIGNALED(s1) and P.WIFSIGNALED(s2) else 1

    name = register(kernel, pipeline)
    handles = [await kernel.spawn([name], stdout=None, stderr=None) for _ in range(20)]
    with trio.fail_after(20):
        statuses = [await h.wait() for h in handles]
    assert statuses == [0] * 20
    with trio.fail_after(30):
        while len(kernel.processes) > 1:
            await trio.sleep(0.01)
    assert kernel.processes.pids() == [1]
    assert (await kernel.run(["echo", "ok"])).stdout == b"ok\n"


async def test_install_program_after_boot(kernel):
    async def hello(ctx):
        await ctx.write_all(1, "hi\n")
        return 0

    await kernel.install_program("hello", hello)
    assert (await kernel.vfs.stat("/bin/hello")).mode & 0o777 == 0o755
    assert (await kernel.run(["/bin/hello"])).stdout == b"hi\n"
