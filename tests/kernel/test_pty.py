"""PTYs: the line discipline compared byte for byte with a real Linux PTY (echo, erase,
kill, word-erase, EOF, control characters, ONLCR, raw mode), then job control through
the kernel: ^C ^Z ^\\ to the foreground group, SIGWINCH, hang-up, /dev/ptmx."""

from __future__ import annotations

import os
import select
import time
import tty

import pytest
import trio

from kernel import process as P
from kernel import signals as S
from kernel.errors import KernelError
from kernel.pty import PtyRegistry

from .ksupport import register, run_program

INPUTS = [b"hello\n", b"abc\x7fd\r", b"x\x15yz\n", b"\x04", b"ab\x04", b"a\x01b\n",
          b"foo bar\x17baz\n", b"abc\x03x\n", b"q\x1c", b"a\x08b\n", b"\x7f\n", b"l1\nl2\n",
          b"\x1a", b"tab\there\n", b"a\rb\r\n"]


def linux_pty(inp: bytes, raw: bool = False) -> tuple[bytes, list[bytes]]:
    m, s = os.openpty()
    try:
        if raw:
            tty.setraw(s)
        os.write(m, inp)
        time.sleep(0.02)
        echo = b""
        while select.select([m], [], [], 0.02)[0]:
            echo += os.read(m, 1000)
        reads = []
        os.set_blocking(s, False)
        for _ in range(6):
            try:
                reads.append(os.read(s, 1000))
            except BlockingIOError:
                break
        return echo, reads
    finally:
        os.close(m)
        os.close(s)


def our_pty(inp: bytes, raw: bool = False) -> tuple[bytes, list[bytes]]:
    reg = PtyRegistry()
    pty = reg.open_pty()
    pty.masters = pty.slaves = 1
    if raw:
        t = pty.termios.copy()
        t.make_raw()
        pty.set_termios(t)
    assert pty.master_write(inp) == len(inp)
    echo = pty.master_read(1 << 16) or b""
    reads = []
    for _ in range(6):
        d = pty.slave_read(1000)
        if d is None:
            break
        reads.append(d)
    return echo, reads


@pytest.mark.parametrize("inp", INPUTS)
def test_line_discipline_matches_linux(inp):
    assert our_pty(inp) == linux_pty(inp)


@pytest.mark.parametrize("inp", [b"a\rb\x03\x04", b"\x7fxyz\n"])
def test_raw_mode_matches_linux(inp):
    assert our_pty(inp, raw=True) == linux_pty(inp, raw=True)


def test_output_processing_matches_linux():
    m, s = os.openpty()
    os.write(s, b"one\ntwo\r\n")
    time.sleep(0.02)
    linux = os.read(m, 100)
    os.close(m)
    os.close(s)
    pty = PtyRegistry().open_pty()
    pty.masters = pty.slaves = 1
    pty.slave_write(b"one\ntwo\r\n")
    assert pty.master_read(100) == linux


def test_hangup_and_buffer_limits():
    reg = PtyRegistry(buffer_limit=8)
    pty = reg.open_pty()
    pty.masters = pty.slaves = 1
    assert reg.pty_names() == [0]
    assert pty.slave_write(b"0123456789") == 8      # bounded output queue
    assert pty.slave_write(b"x") is None             # would block
    assert pty.master_read(100) == b"01234567"
    pty.close_slave()
    with pytest.raises(KernelError) as e:
        pty.master_read(10)
    assert e.value.code == "EIO"
    pty.close_master()
    assert reg.pty_names() == []
    pty2 = reg.open_pty()
    assert pty2.index == 0                            # numbers are reused like devpts
    pty2.masters = pty2.slaves = 1
    pty2.close_master()
    assert pty2.slave_read(10) == b""                 # hung up: EOF for the slave
    with pytest.raises(KernelError):
        pty2.slave_write(b"x")


async def _read_until(h, needle: bytes, timeout: float = 3) -> bytes:
    buf = b""
    with trio.fail_after(timeout):
        while needle not in buf:
            d = await h.read()
            if not d:
                break
            buf += d
    return buf


async def test_cat_on_a_terminal_echo_and_eof(kernel):
    h = await kernel.open_terminal(["cat"])
    await h.write(b"hello\n")
    out = await _read_until(h, b"hello\r\nhello\r\n")
    assert out == b"hello\r\nhello\r\n"          # the echo, then cat's copy
    await h.write(b"\x04")
    with trio.fail_after(3):
        assert await h.wait() == 0
    await h.close()


@pytest.mark.parametrize("key,sig", [(b"\x03", S.SIGINT), (b"\x1c", S.SIGQUIT)])
async def test_control_keys_signal_foreground_group(kernel, key, sig):
    h = await kernel.open_terminal(["sleep", "10"])
    await trio.sleep(0.02)
    assert h.proc.tty == h.pty.path and h.pty.fg_pgid == h.pid
    await h.write(key)
    with trio.fail_after(3):
        status = await h.wait()
    assert P.WTERMSIG(status) == sig
    await h.close()


async def test_ctrl_z_stops_and_sigcont_resumes(kernel):
    h = await kernel.open_terminal(["sleep", "0.3"])
    await trio.sleep(0.02)
    await h.write(b"\x1a")
    await trio.sleep(0.02)
    assert h.proc.state == "T"
    assert await _read_until(h, b"^Z") == b"^Z"
    kernel.kill(h.pid, S.SIGCONT)
    with trio.fail_after(3):
        assert await h.wait() == 0
    await h.close()


async def test_winsize_and_sigwinch(kernel):
    got = []

    async def prog(ctx):
        got.append(ctx.get_winsize(0))
        await ctx.signal(S.SIGWINCH, lambda s: got.append("winch"))
        try:
            await ctx.pause()
        except KernelError:
            pass
        got.append(ctx.get_winsize(1))
        return 0

    name = register(kernel, prog)
    h = await kernel.open_terminal([name], rows=30, cols=100)
    await trio.sleep(0.05)
    h.resize(40, 120)
    with trio.fail_after(3):
        assert await h.wait() == 0
    assert got == [(30, 100), "winch", (40, 120)]
    await h.close()


async def test_master_close_hangs_up_the_session(kernel):
    h = await kernel.open_terminal(["sleep", "10"])
    await trio.sleep(0.02)
    await h.close()
    with trio.fail_after(3):
        status = await h.wait()
    assert P.WTERMSIG(status) == S.SIGHUP
    await trio.sleep(0)
    assert kernel.pty_names() == []


async def test_openpty_ptmx_and_tty_calls(kernel):
    seen = {}

    async def prog(ctx):
        m, s = await ctx.openpty()
        seen["isatty"] = (ctx.isatty(m), ctx.isatty(s), ctx.isatty(0))
        name = ctx.ttyname(s)
        seen["listed"] = int(name.rsplit("/", 1)[1]) in kernel.pty_names()
        s2 = await ctx.open(name, os.O_RDWR)       # /dev/pts/N through devfs
        await ctx.write(m, b"typed\n")
        seen["slave_read"] = await ctx.read(s2, 100)
        await ctx.write(s, b"out\n")
        seen["master_read"] = await ctx.read(m, 100)
        pm = await ctx.open("/dev/ptmx", os.O_RDWR)  # a new pair
        seen["ptmx"] = ctx.isatty(pm)
        with pytest.raises(KernelError) as e:
            await ctx.tcsetpgrp(m, 987654)
        seen["tcsetpgrp"] = e.value.code
        with pytest.raises(KernelError) as e:
            ctx.tcgetattr(0)
        seen["notty"] = e.value.code
        t = ctx.tcgetattr(s)
        t.echo = False
        await ctx.tcsetattr(s, t)
        await ctx.write(m, b"secret\n")
        seen["noecho"] = (ctx.tcgetattr(m).echo, await ctx.poll([(m, 1)], 0), await ctx.read(s, 100))
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen["isatty"] == (True, True, False)
    assert seen["listed"] and seen["ptmx"]
    assert seen["slave_read"] == b"typed\n"
    assert seen["master_read"] == b"typed\r\nout\r\n"   # echo first, then output
    assert seen["tcsetpgrp"] == "EPERM" and seen["notty"] == "ENOTTY"
    assert seen["noecho"] == (False, [], b"secret\n")  # nothing echoed, line still delivered


async def test_background_read_from_terminal_gets_sigttin(kernel):
    seen = {}

    async def reader(ctx):
        data = await ctx.read(0, 100)
        seen["child_read"] = data
        return 0

    rname = register(kernel, reader)

    async def shell(ctx):
        pid = await ctx.spawn([rname], pgid=0)        # a background job
        seen["stopped"] = await ctx.waitpid(pid, P.WUNTRACED)
        await ctx.tcsetpgrp(0, pid)                  # bring it to the foreground...
        await ctx.kill(pid, S.SIGCONT)               # ...and continue it (like `fg`)
        seen["done"] = await ctx.waitpid(pid)
        return 0

    h = await kernel.open_terminal([register(kernel, shell)])
    await trio.sleep(0.05)
    await h.write(b"line\n")
    with trio.fail_after(3):
        assert await h.wait() == 0
    pid = seen["stopped"][0]
    assert seen["stopped"] == (pid, P.status_stopped(S.SIGTTIN))
    assert seen["done"] == (pid, 0) and seen["child_read"] == b"line\n"
    await h.close()


async def _job_on_terminal(kernel, job, *, tostop: bool, fg_after_stop: bool = True) -> dict:
    """A session leader (the 'shell') starts *job* in a background group on its terminal
    (TOSTOP as given) and reports what waitpid saw; a stopped job is brought to the
    foreground and continued, like `fg`."""
    seen: dict = {}
    jname = register(kernel, job)

    async def shell(ctx):
        t = ctx.tcgetattr(0)
        t.tostop = tostop
        await ctx.tcsetattr(0, t)
        pid = await ctx.spawn([jname], pgid=0)
        seen["first"] = await ctx.waitpid(pid, P.WUNTRACED)
        if P.WIFSTOPPED(seen["first"][1]) and fg_after_stop:
            await ctx.tcsetpgrp(0, pid)
            await ctx.kill(pid, S.SIGCONT)
            seen["then"] = await ctx.waitpid(pid)
        return 0

    h = await kernel.open_terminal([register(kernel, shell)])
    with trio.fail_after(3):
        assert await h.wait() == 0
        screen = b""
        while True:
            d = await h.read()
            if not d:
                break
            screen += d
    seen["screen"] = screen
    await h.close()
    return seen


async def test_background_write_with_tostop_gets_sigttou(kernel):
    async def writer(ctx):
        await ctx.write(1, b"from the job\n")
        return 0

    seen = await _job_on_terminal(kernel, writer, tostop=True)
    pid = seen["first"][0]
    assert seen["first"] == (pid, P.status_stopped(S.SIGTTOU))
    assert seen["then"] == (pid, 0) and b"from the job\r\n" in seen["screen"]

    seen = await _job_on_terminal(kernel, writer, tostop=False)  # the Linux default
    assert seen["first"][1] == 0 and b"from the job\r\n" in seen["screen"]


async def test_sigttou_ignored_lets_background_writes_through(kernel):
    async def writer(ctx):
        await ctx.signal(S.SIGTTOU, S.SIG_IGN)
        await ctx.write(1, b"ignored it\n")
        return 0

    seen = await _job_on_terminal(kernel, writer, tostop=True)
    assert seen["first"][1] == 0 and b"ignored it\r\n" in seen["screen"]


async def test_background_tcsetattr_and_tcsetpgrp_get_sigttou(kernel):
    async def setter(ctx):
        t = ctx.tcgetattr(0)
        t.echo = False
        await ctx.tcsetattr(0, t)
        return 0

    seen = await _job_on_terminal(kernel, setter, tostop=False)
    assert seen["first"][1] == P.status_stopped(S.SIGTTOU) and seen["then"][1] == 0

    async def grabber(ctx):
        await ctx.tcsetpgrp(0, ctx.getpgid())
        return 0

    seen = await _job_on_terminal(kernel, grabber, tostop=False)
    assert seen["first"][1] == P.status_stopped(S.SIGTTOU) and seen["then"][1] == 0


async def test_orphaned_background_job_gets_eio_instead_of_stopping(kernel):
    """Its parent gone (the job re-parented to init), nobody could continue the job: EIO."""
    codes: dict = {}

    async def leaf(ctx):
        while ctx.getppid() != 1:             # wait until its parent has exited
            await ctx.sleep(0.01)
        for what, call in (("write", ctx.write(1, b"x\n")), ("read", ctx.read(0, 10))):
            try:
                await call
                codes[what] = "ok"
            except KernelError as e:
                codes[what] = e.code
        return 0

    lname = register(kernel, leaf)

    async def middle(ctx):
        await ctx.spawn([lname])              # same (background) group as the middle
        return 0

    mname = register(kernel, middle)

    async def shell(ctx):                     # stays the controlling process meanwhile
        t = ctx.tcgetattr(0)
        t.tostop = True
        await ctx.tcsetattr(0, t)
        await ctx.waitpid(await ctx.spawn([mname], pgid=0))
        while len(codes) < 2:
            await ctx.sleep(0.01)
        return 0

    h = await kernel.open_terminal([register(kernel, shell)])
    with trio.fail_after(3):
        assert await h.wait() == 0
    assert codes == {"write": "EIO", "read": "EIO"}
    await h.close()


async def test_fstat_of_pty_ends_like_linux(kernel):
    """Master: the /dev/ptmx device (5:2); slave: /dev/pts/N (136:N); both character devices."""
    import stat as _stat
    m, s = os.openpty()
    try:
        host = [os.fstat(m), os.fstat(s)]
        host_index = int(os.ttyname(s).rsplit("/", 1)[1])
    finally:
        os.close(m)
        os.close(s)
    seen = {}

    async def prog(ctx):
        mfd, sfd = await ctx.openpty()
        seen["attrs"] = [await ctx.fstat(mfd), await ctx.fstat(sfd)]
        seen["index"] = int(ctx.ttyname(sfd).rsplit("/", 1)[1])
        return 0

    assert (await run_program(kernel, prog)).status == 0
    for ours, theirs, index in zip(seen["attrs"], host, (None, seen["index"])):
        assert _stat.S_ISCHR(ours.mode) and _stat.S_ISCHR(theirs.st_mode)
        assert os.major(ours.rdev) == os.major(theirs.st_rdev)
        if index is None:
            assert os.minor(ours.rdev) == os.minor(theirs.st_rdev)
        else:
            assert os.minor(ours.rdev) == index and os.minor(theirs.st_rdev) == host_index
