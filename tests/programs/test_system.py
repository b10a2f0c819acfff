"""The system family where the differential corpus cannot reach: signals during sleep and
timeout, terminals (stty, tty, nohup), the sandbox's own identity (hostname, uname, users from
its /etc/passwd), refusals (date -s, mount, umount) and the vfs tool over /.vfs."""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Awaitable, Callable

import trio

from kernel.kernel import Kernel
from kernel.programs.system_datefmt import Moment, format_time, zone_named
from kernel.programs.system_run import duration
from kernel.userland import standard_registry
from vfsfuse.inspect.inspectfs import InspectFS
from vfsfuse.storage.store import memory_vfs

ENV = {"PATH": "/bin:/usr/bin", "HOME": "/root", "LC_ALL": "C", "TZ": "UTC", "TERM": "xterm"}
Body = Callable[[Kernel], Awaitable[Any]]


def in_kernel(body: Body, *, inspect: bool = False) -> Any:
    async def main() -> Any:
        async with trio.open_nursery() as nursery:
            vfs = memory_vfs(versioning=True)
            kernel = Kernel(vfs, programs=standard_registry(), env=dict(ENV), hostname="box")
            await kernel.boot(nursery)
            if inspect:
                await kernel.mount_table.mount("/.vfs", InspectFS(vfs), read_only=False, hidden=True,
                                               fstype="vfsinspect", source="vfs")
            try:
                return await body(kernel)
            finally:
                await kernel.shutdown()
    return trio.run(main)


async def sh(kernel: Kernel, script: str, cwd: str = "/tmp") -> tuple[int, str, str]:
    r = await kernel.run(["sh", "-c", script], cwd=cwd, timeout=30)
    code = r.status >> 8 if r.status & 0x7F == 0 else 128 + (r.status & 0x7F)
    return code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def run(script: str, files: dict[str, bytes] | None = None) -> tuple[int, str, str]:
    async def body(kernel: Kernel) -> tuple[int, str, str]:
        for path, data in (files or {}).items():
            await kernel.vfs.write_file(path, data)
        return await sh(kernel, script)
    return in_kernel(body)


async def screen(kernel: Kernel, script: str, rows: int = 24, cols: int = 80) -> str:
    h = await kernel.open_terminal(["sh", "-c", script], rows=rows, cols=cols, cwd="/tmp")
    out = b""
    with trio.move_on_after(15):
        while True:
            try:
                data = await h.read(65536)
            except Exception:  # noqa: BLE001 - EIO once the terminal's last user is gone
                break
            if not data:
                break
            out += data
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_durations():
    assert duration("1.5") == 1.5 and duration("2m") == 120 and duration("1d") == 86400
    assert duration(".5s") == 0.5 and duration("inf") == float("inf")
    for bad in ("", "x", "1x", "-1", "nan", "1ss"):
        try:
            duration(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_sleep_survives_a_handled_signal_and_dies_of_term():
    async def body(kernel: Kernel) -> tuple[int, float, int]:
        start = trio.current_time()
        h = await kernel.spawn(["sleep", "0.5"])
        await trio.sleep(0.1)
        h.kill(28)  # SIGWINCH: ignored by default, sleep goes on
        first = await h.wait()
        took = trio.current_time() - start
        h2 = await kernel.spawn(["sleep", "30"])
        await trio.sleep(0.1)
        h2.kill(15)
        return first, took, await h2.wait()
    first, took, second = in_kernel(body)
    assert first == 0 and took >= 0.45
    assert second & 0x7F == 15


def test_timeout_kill_after_a_child_that_ignores_term():
    code, out, err = run("timeout -k 0.2 0.2 sh -c 'trap \"\" TERM; sleep 5'; echo $?")
    assert out.strip().endswith("137")
    code, out, err = run("timeout -v 0.1 sleep 5; echo $?")
    assert out == "124\n" and "sending signal TERM" in err


def test_stty_on_the_kernel_pty():
    async def body(kernel: Kernel) -> list[str]:
        return [
            await screen(kernel, "stty size", rows=30, cols=100),
            await screen(kernel, "stty -echo; stty; stty echo; stty"),
            await screen(kernel, "stty -a | head -1", rows=24, cols=80),
            await screen(kernel, "stty rows 40 cols 90; stty size"),
            await screen(kernel, "stty raw; stty -g; stty sane; stty -g"),
            await screen(kernel, "stty bogus; echo $?"),
            await screen(kernel, "stty intr ^X; stty"),
            await screen(kernel, "tty; tty -s; echo $?"),
        ]
    size, echo, full, resized, raw, bad, intr, tty = in_kernel(body)
    assert size == "30 100\n"
    assert echo == "speed 38400 baud; line = 0;\n-echo\nspeed 38400 baud; line = 0;\n"
    assert full == "speed 38400 baud; rows 24; columns 80; line = 0;\n"
    assert resized == "40 90\n"
    assert raw.startswith("-icrnl:-opost") and "\nicrnl:opost:onlcr:icanon:echo" in raw
    assert "invalid argument 'bogus'" in bad and bad.endswith("1\n")
    assert "intr = ^X;" in intr
    assert re.fullmatch(r"/dev/pts/\d+\n0\n", tty)
    code, out, err = run("stty")
    assert code == 1 and "'standard input'" in err


def test_nohup_on_a_terminal_appends_to_nohup_out():
    async def body(kernel: Kernel) -> tuple[str, bytes]:
        text = await screen(kernel, "nohup echo hi; nohup echo again")
        return text, await kernel.vfs.read_file("/tmp/nohup.out")
    text, data = in_kernel(body)
    assert "ignoring input and appending output to 'nohup.out'" in text
    assert data == b"hi\nagain\n"


def test_clear_and_time():
    assert run("clear")[1] == "\x1b[H\x1b[2J\x1b[3J"
    code, out, err = run("/bin/time -p sleep 0.1")
    assert code == 0 and re.match(r"real 0\.\d\d\nuser ", err) and float(err.split()[1]) >= 0.09
    code, out, err = run("/bin/time false")
    assert code == 1 and "Command exited with non-zero status 1" in err
    code, out, err = run("/bin/time -f '%C=%x' sh -c 'exit 3'")
    assert code == 3 and err == "sh -c exit 3=3\n"
    assert run("/bin/time no-such-cmd")[0] == 127


def test_identity_is_the_sandboxs_own():
    passwd = b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:A:/home/alice:/bin/sh\n"
    group = b"root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n"
    files = {"/etc/passwd": passwd, "/etc/group": group}
    code, out, err = run("id alice; id -Gn alice; groups alice; id -un 1000; whoami", files)
    assert out == ("uid=1000(alice) gid=1000(alice) groups=1000(alice),50(staff)\n"
                   "alice staff\nalice : alice staff\nalice\nroot\n")
    code, out, err = run("hostname; uname -n; hostname new.example; hostname; hostname -s; hostname -d; uname -n")
    assert out == "box\nbox\nnew.example\nnew\nexample\nnew.example\n"
    code, out, err = run("uname -a; uname -r; uname -v; uname -m")
    assert out == ("Linux box 6.1.0-sandbox #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\n6.1.0-sandbox\n"
                   "#1 SMP PREEMPT_DYNAMIC\nx86_64\n")
    host = socket.gethostname()
    if host not in ("box", "sandbox") and len(host) > 3:
        assert host not in out
    assert os.uname().release != "6.1.0-sandbox"  # the canary above means something
    assert run("nproc; nproc --all")[1] == "1\n1\n"


def test_refusals():
    code, out, err = run("date -s 2020-01-01; echo $?; date 010203042020; echo $?")
    assert out == "1\n1\n" and err.count("cannot set date: Operation not permitted") == 2
    code, out, err = run("mount /dev/x /mnt; echo $?; umount /proc; echo $?; umount /tmp; echo $?")
    assert out == "32\n32\n32\n" and "not mounted" in err and "not allowed" in err
    code, out, err = run("mount; mount -t proc")
    assert out.splitlines()[0].endswith(" on / type vfsfuse (rw,relatime)")
    assert out.splitlines()[-1] == "proc on /proc type proc (rw,relatime)"


def test_which_over_the_vfs_path():
    code, out, err = run("which ls sh; which -a cat; which nope; echo $?")
    assert out == "/bin/ls\n/bin/sh\n/bin/cat\n1\n"
    code, out, err = run("mkdir -p /opt/x && printf '#!/bin/sh\\necho hi\\n' > /opt/x/tool && "
                         "chmod +x /opt/x/tool && PATH=/opt/x:/bin which tool; chmod -x /opt/x/tool; "
                         "PATH=/opt/x:/bin which tool; echo $?")
    assert out == "/opt/x/tool\n1\n"


def test_env_exec_and_its_failures():
    code, out, err = run("env -i A=1 sh -c 'echo $A:$PATH'")
    assert out == "1:\n" or out.startswith("1:")
    assert run("env -C /proc pwd")[1] == "/proc\n"
    assert run("env /tmp")[0] == 126
    assert run("env no-such")[0] == 127


def test_date_formatting_helpers():
    mo = Moment(1700000000, 123456789, zone_named("Europe/Paris"))
    assert format_time("%F %T %Z %z %:z %N %3N %-d %e %j", mo) == \
        "2023-11-14 23:13:20 CET +0100 +01:00 123456789 123 14 14 318"
    assert format_time("%s", Moment(0, 0, zone_named("EST5"))) == "0"
    assert zone_named("Nowhere/Land").abbrev(0) == "UTC"


def test_vfs_tool_over_dot_vfs():
    """The host CLI's formats (vfsfuse stat / info / gc / versions), read through /.vfs."""
    async def body(kernel: Kernel) -> list[tuple[int, str, str]]:
        await kernel.vfs.write_file("/tmp/f", b"hello\n")
        return [await sh(kernel, c) for c in (
            "vfs stat", "vfs info /tmp/f", "vfs chunks /proc/uptime", "vfs info /nope", "vfs info /tmp",
            "vfs gc", "vfs versions /tmp/f",
            "vfs versions create /tmp/f; echo bye > /tmp/f; vfs versions create /tmp/f; vfs versions list /tmp/f",
            "vfs versions restore /tmp/f 1; cat /tmp/f", "vfs versions prune /tmp/f --keep 1",
            "vfs versions prune /tmp/f", "vfs bogus", "vfs version")]
    (stat, info, proc, nope, dir_, gc, none, listed, restored, pruned, bad_prune, bogus,
     version) = in_kernel(body, inspect=True)
    assert stat[0] == 0 and re.search(r"^inodes:\s+\d+$", stat[1], re.M)
    assert re.search(r"^logical bytes:\s+\d+ \(\d+(\.\d)? (B|KiB)\)$", stat[1], re.M)
    assert re.search(r"^dedup ratio:\s+\d+\.\d\d$", stat[1], re.M)
    assert info[0] == 0 and info[1].startswith("path /tmp/f\ninode ") and "size 6\n" in info[1]
    assert proc[0] == 1 and "no chunk map" in proc[2]
    assert nope[0] == 1 and "No such file or directory" in nope[2]
    assert dir_[0] == 0 and "type directory\n" in dir_[1] and "(not a regular file: no chunk map)" in dir_[1]
    assert gc == (0, "gc: removed 0 blocks (0 B)\n", "")
    assert none == (0, "no versions\n", "")
    lines = listed[1].splitlines()
    assert lines[:2] == ["created version 1", "created version 2"]
    assert lines[2].split() == ["version", "size", "created", "(UTC)", "storage"] and len(lines) == 5
    assert restored == (0, "restored version 1 of /tmp/f\nhello\n", "")
    assert pruned[0] == 0 and re.fullmatch(r"pruned \d+ versions\n", pruned[1])
    assert bad_prune[0] == 1 and "--keep" in bad_prune[2]
    assert bogus[0] == 2 and version[0] == 0
    code, out, err = run("vfs stats")
    assert code == 1 and "/.vfs is not available" in err


def test_env_shows_only_the_sandboxs_environment(monkeypatch):
    """A variable of the host process (this test's) never reaches env/printenv inside."""
    monkeypatch.setenv("VFSFUSE_HOST_CANARY", "leaked")
    code, out, err = run("env; printenv; printenv VFSFUSE_HOST_CANARY; echo $?")
    assert "VFSFUSE_HOST_CANARY" not in out and "leaked" not in out
    assert out.endswith("\n1\n") and "PATH=/bin:/usr/bin\n" in out
    home = os.environ.get("HOME", "")
    if home and home not in ("/root", "/"):
        assert f"HOME={home}\n" not in out
