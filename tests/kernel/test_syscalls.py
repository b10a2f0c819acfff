"""The syscall surface: paths relative to cwd, umask, directory and link calls, env,
exit semantics, dup2 closing what it displaces, non-blocking pipes."""

from __future__ import annotations

import os
import stat

import pytest

from kernel import process as P
from kernel.errors import KernelError
from kernel.syscalls import O_NONBLOCK, R_OK, W_OK, X_OK

from .ksupport import register, run_program


async def test_cwd_relative_paths_and_chdir(kernel):
    seen = {}

    async def prog(ctx):
        seen["start"] = ctx.getcwd()
        await ctx.mkdir("/w")
        await ctx.mkdir("/w/sub")
        await ctx.chdir("/w/sub")
        fd = await ctx.open("f", os.O_CREAT | os.O_WRONLY)
        await ctx.close(fd)
        seen["abs"] = (await ctx.stat("/w/sub/f")).is_reg
        await ctx.chdir("..")
        seen["after_dotdot"] = (ctx.getcwd(), ctx.getenv("PWD"))
        await ctx.symlink("/w/sub", "/w/link")
        await ctx.chdir("link")
        seen["via_link"] = ctx.getcwd()              # physical path, like chdir + getcwd
        with pytest.raises(KernelError) as e:
            await ctx.chdir("/w/sub/f")
        seen["notdir"] = e.value.code
        with pytest.raises(KernelError) as e:
            await ctx.chdir("/nope")
        seen["noent"] = e.value.code
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"start": "/home/user", "abs": True, "after_dotdot": ("/w", "/w"),
                    "via_link": "/w/sub", "notdir": "ENOTDIR", "noent": "ENOENT"}


async def test_umask_modes_links_and_renames(kernel):
    seen = {}

    async def prog(ctx):
        old = ctx.umask(0o027)
        seen["old_umask"] = old
        fd = await ctx.open("/tmp/m", os.O_CREAT | os.O_WRONLY, 0o666)
        await ctx.close(fd)
        await ctx.mkdir("/tmp/d", 0o777)
        seen["modes"] = (stat.S_IMODE((await ctx.stat("/tmp/m")).mode),
                         stat.S_IMODE((await ctx.stat("/tmp/d")).mode))
        await ctx.symlink("m", "/tmp/sl")
        seen["readlink"] = await ctx.readlink("/tmp/sl")
        seen["lstat_is_link"] = (await ctx.lstat("/tmp/sl")).is_symlink
        seen["stat_follows"] = (await ctx.stat("/tmp/sl")).is_reg
        await ctx.link("/tmp/m", "/tmp/hard")
        seen["nlink"] = (await ctx.stat("/tmp/m")).nlink
        await ctx.rename("/tmp/hard", "/tmp/d/moved")
        seen["listing"] = sorted(await ctx.listdir("/tmp/d"))
        await ctx.unlink("/tmp/d/moved")
        with pytest.raises(KernelError) as e:
            await ctx.rmdir("/tmp/nope")
        seen["rmdir_noent"] = e.value.code
        await ctx.rmdir("/tmp/d")
        await ctx.chmod("/tmp/m", 0o600)
        await ctx.truncate("/tmp/m", 10)
        st = await ctx.stat("/tmp/m")
        seen["chmod_truncate"] = (stat.S_IMODE(st.mode), st.size)
        await ctx.access("/tmp/m", R_OK | W_OK)
        with pytest.raises(KernelError) as e:
            await ctx.access("/tmp/m", X_OK)
        seen["access_x"] = e.value.code
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"old_umask": 0o022, "modes": (0o640, 0o750), "readlink": "m", "lstat_is_link": True,
                    "stat_follows": True, "nlink": 2, "listing": ["moved"], "rmdir_noent": "ENOENT",
                    "chmod_truncate": (0o600, 10), "access_x": "EACCES"}


async def test_environment_is_per_process(kernel):
    seen = {}

    async def child(ctx):
        seen["child"] = (ctx.getenv("A"), ctx.getenv("B"), ctx.getenv("PATH"))
        ctx.setenv("A", "changed")
        return 0

    cname = register(kernel, child)

    async def prog(ctx):
        ctx.setenv("A", "1")
        ctx.unsetenv("PATH")
        await ctx.waitpid(await ctx.spawn([cname]))
        seen["parent_after"] = ctx.getenv("A")
        await ctx.waitpid(await ctx.spawn([cname], env={"B": "only"}))
        with pytest.raises(KernelError):
            ctx.setenv("BAD=NAME", "x")
        return 0

    await run_program(kernel, prog)
    assert seen["parent_after"] == "1"
    assert seen["child"] == (None, "only", None)


async def test_exit_is_not_swallowed_by_except_exception(kernel):
    async def prog(ctx):
        try:
            ctx.exit(4)
        except Exception:
            return 99
        return 98

    assert (await run_program(kernel, prog)).status == P.status_exited(4)


async def test_dup2_closing_last_write_end_gives_eof(kernel):
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe()
        null = await ctx.open("/dev/null", os.O_WRONLY)
        await ctx.write(w, b"data")
        await ctx.dup2(null, w)          # displaces the only write end
        seen["read"] = (await ctx.read(r, 10), await ctx.read(r, 10))
        seen["same"] = await ctx.dup2(null, null)
        with pytest.raises(KernelError) as e:
            await ctx.dup2(77, 5)
        seen["badf"] = e.value.code
        return 0

    await run_program(kernel, prog)
    assert seen["read"] == (b"data", b"")
    assert seen["badf"] == "EBADF"


async def test_nonblocking_pipe_read_and_write(kernel):
    seen = {}

    async def prog(ctx):
        r, w = await ctx.pipe(O_NONBLOCK)
        with pytest.raises(KernelError) as e:
            await ctx.read(r, 1)
        seen["read"] = e.value.code
        seen["partial"] = await ctx.write(w, b"x" * 100_000)
        with pytest.raises(KernelError) as e:
            await ctx.write(w, b"y")
        seen["write"] = e.value.code
        return 0

    await run_program(kernel, prog)
    assert seen == {"read": "EAGAIN", "partial": 65536, "write": "EAGAIN"}


async def test_spawn_errors(kernel):
    seen = {}

    async def prog(ctx):
        for argv in (["no-such-program"], ["/tmp/true"], []):
            try:
                await ctx.spawn(argv)
            except KernelError as e:
                seen[" ".join(argv) or "empty"] = e.code
        with pytest.raises(KernelError) as e:
            await ctx.spawn(["true"], stdout=55)
        seen["badfd"] = e.value.code
        seen["bin_path"] = (await ctx.waitpid(await ctx.spawn(["/bin/false"])))[1]
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"no-such-program": "ENOENT", "/tmp/true": "ENOENT", "empty": "EINVAL",
                    "badfd": "EBADF", "bin_path": P.status_exited(1)}


async def test_dev_stdio_and_proc_self_fd_reopen(kernel):
    seen = {}

    async def prog(ctx):
        fd = await ctx.open("/dev/stdout", os.O_WRONLY)
        await ctx.write(fd, b"via /dev/stdout\n")
        fd = await ctx.open("/dev/fd/2", os.O_WRONLY)
        await ctx.write(fd, b"via /dev/fd/2\n")
        fd = await ctx.open("//dev/./fd/1", os.O_WRONLY)   # a pipe: the path names only the fd
        await ctx.write(fd, b"via //dev/./fd/1\n")
        data = await ctx.read(await ctx.open("/dev/stdin"), 100)
        seen["stdin"] = data
        f = await ctx.open("/tmp/re", os.O_RDWR | os.O_CREAT)
        await ctx.write(f, b"abcdef")
        g = await ctx.open(f"/proc/self/fd/{f}")
        seen["own_offset"] = await ctx.read(g, 3)       # a file is reopened: offset 0
        h = await ctx.open(f"/proc/{ctx.getpid()}/fd/{f}")
        seen["pid_path"] = await ctx.read(h, 2)
        with pytest.raises(KernelError) as e:
            await ctx.open("/dev/fd/77")
        seen["bad"] = e.value.code
        with pytest.raises(KernelError) as e:  # ".." applies to what fd f is: a file, not a dir
            await ctx.open(f"/proc/self/fd/{f}/../{f}")
        seen["dotdot"] = e.value.code
        return 0

    r = await run_program(kernel, prog, input=b"from stdin")
    assert r.status == 0, r.stderr
    assert r.stdout == b"via /dev/stdout\nvia //dev/./fd/1\n" and r.stderr == b"via /dev/fd/2\n"
    assert seen == {"stdin": b"from stdin", "own_offset": b"abc", "pid_path": b"ab", "bad": "ENOENT",
                    "dotdot": "ENOTDIR"}


async def test_execve_replaces_the_program_in_place(kernel):
    seen = {}

    async def before(ctx):
        seen["pid"] = ctx.getpid()
        keep = await ctx.open("/tmp/kept", os.O_CREAT | os.O_WRONLY)
        gone = await ctx.open("/tmp/gone", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC)
        seen["fds"] = (keep, gone)
        await ctx.signal(15, lambda s: None)
        with pytest.raises(KernelError) as e:
            await ctx.execve(["no-such"])
        seen["enoent"] = e.value.code
        await ctx.execve(["after", "x"], env={"E": "1"})
        seen["returned"] = True
        return 9

    async def after(ctx):
        seen["after"] = (ctx.getpid(), ctx.argv, ctx.environ, ctx.fds.fds(),
                         (await ctx.sigaction(15)).handler)
        return 3

    register(kernel, after, "after")
    r = await run_program(kernel, before)
    keep, gone = seen["fds"]
    assert r.status == P.status_exited(3) and "returned" not in seen
    pid, argv, env, fds, handler = seen["after"]
    assert pid == seen["pid"] and argv == ["after", "x"] and env == {"E": "1"}
    assert keep in fds and gone not in fds and handler == "default"
    assert seen["enoent"] == "ENOENT"


async def test_alarm_and_hostname(kernel):
    import trio
    seen = {}

    async def prog(ctx):
        seen["host"] = ctx.gethostname()
        await ctx.sethostname("box")
        fd = await ctx.open("/proc/sys/kernel/hostname")
        seen["proc_host"] = await ctx.read(fd, 100)
        await ctx.signal(14, lambda s: seen.setdefault("alarm", trio.current_time()))
        t = trio.current_time()
        assert await ctx.alarm(10) == 0
        seen["left"] = await ctx.alarm(0.05)     # replaces the first: about 10 s were left
        try:
            await ctx.sleep(5)
        except KernelError as e:
            seen["sleep"] = e.code
        seen["elapsed"] = seen["alarm"] - t
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen["host"] == "sandbox" and seen["proc_host"] == b"box\n"
    assert seen["left"] == 10 and seen["sleep"] == "EINTR" and 0.04 <= seen["elapsed"] < 1

    async def unhandled(ctx):
        await ctx.alarm(0.02)
        await ctx.sleep(5)
        return 0

    r = await run_program(kernel, unhandled)
    assert P.WTERMSIG(r.status) == 14


async def test_spawn_and_execve_run_a_path_under_another_argv0(kernel):
    """posix_spawn(path, argv): the program runs from *path* and sees argv as given; /proc
    shows that argv (``ps`` lists ``sleep 5``, not ``/bin/sleep 5``)."""
    seen = {}

    async def prog(ctx):
        pid = await ctx.spawn(["zzz", "5"], path="/bin/sleep")
        fd = await ctx.open(f"/proc/{pid}/cmdline")
        seen["cmdline"] = await ctx.read(fd, 100)
        await ctx.close(fd)
        await ctx.kill(pid, 9)
        await ctx.waitpid(pid)
        r, w = await ctx.pipe()

        async def child(cctx):
            await cctx.execve(["named", "hi"], path="/bin/echo")

        pid = await ctx.fork(child, stdout=w)
        await ctx.close(w)
        seen["echo"] = await ctx.read(r, 100)
        seen["status"] = (await ctx.waitpid(pid))[1]
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen == {"cmdline": b"zzz\x005\x00", "echo": b"hi\n", "status": 0}


async def test_exclusive_create_errors_are_linuxs(nursery):
    """open(O_CREAT|O_EXCL) creates first and looks the name up only when that fails; the
    errors are still Linux's: an existing name is EEXIST even where the caller may not write
    (and on /dev and /proc), a new name there is EACCES (ENOENT in /proc, as on Linux)."""
    from .ksupport import boot_kernel

    k = await boot_kernel(nursery, uid=1000, gid=1000)
    try:
        await k.vfs.mkdir("/ro")
        await k.vfs.write_file("/ro/there", b"x")
        await k.vfs.chmod("/ro", 0o555)
        seen = {}

        async def user(ctx):
            for path in ("/ro/there", "/ro/new", "/dev/null", "/proc/self", "/proc/new", "/tmp"):
                try:
                    fd = await ctx.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                    await ctx.close(fd)
                    seen[path] = "created"
                except KernelError as e:
                    seen[path] = e.code
            return 0

        assert (await k.run([register(k, user)])).status == 0
        assert seen == {"/ro/there": "EEXIST", "/ro/new": "EACCES", "/dev/null": "EEXIST",
                        "/proc/self": "EEXIST", "/proc/new": "ENOENT", "/tmp": "EEXIST"}
    finally:
        await k.shutdown(grace=0.1)
