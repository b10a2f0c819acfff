"""Reading /proc the way procps's library does: one ``Task`` per ``/proc/<pid>`` from its
``stat``, ``status`` and ``cmdline``, and the machine figures from ``uptime``, ``meminfo``,
``loadavg`` and ``stat``.  Only ``ctx`` calls: the tools see exactly the sandbox's /proc, so
what they print is what host procps prints over the same files.

A process that vanishes between ``listdir`` and the reads is skipped, as procps does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import read_file

HZ = 100          # USER_HZ: the unit of every tick field of /proc
PTS_MAJOR = 136   # /dev/pts/N


@dataclass
class Task:
    """One process as procps sees it (the fields the tools print or select on)."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int
    tty_nr: int
    tpgid: int
    utime: int
    stime: int
    priority: int
    nice: int
    nthreads: int
    start_ticks: int
    vsize: int          # bytes
    rss_pages: int
    uid: int = 0
    euid: int = 0
    gid: int = 0
    egid: int = 0
    vm_rss_kb: int = 0
    vm_size_kb: int = 0
    cmdline: list[str] = field(default_factory=list)
    wchan: str = "?"    # read only when a format shows it (``read_wchan``)

    @property
    def tty(self) -> str:
        """``pts/3``, or ``?`` without a terminal (ps's TTY column)."""
        return tty_name(self.tty_nr)

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def args(self) -> str:
        """``cmd``/``args``: the command line, ``[comm]`` when empty, ``<defunct>`` for zombies."""
        if self.state == "Z":
            return f"[{self.comm}] <defunct>"
        if not self.cmdline:
            return f"[{self.comm}]"
        return " ".join(self.cmdline)


def tty_name(nr: int) -> str:
    """The device name for a ``tty_nr`` (Linux's encoding: major in bits 8-15)."""
    if nr == 0:
        return "?"
    major = (nr >> 8) & 0xFFF
    minor = (nr & 0xFF) | ((nr >> 12) & 0xFFF00)
    if major == PTS_MAJOR:
        return f"pts/{minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if major == 5 and minor == 1:
        return "console"
    return "?"


def parse_stat(data: bytes) -> Task | None:
    """``/proc/<pid>/stat``: the comm is between the first ``(`` and the *last* ``)``."""
    text = data.decode(errors="surrogateescape")
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < left:
        return None
    rest = text[right + 2:].split()
    if len(rest) < 22:
        return None
    try:
        n = [int(x) for x in rest[1:22]]
        return Task(pid=int(text[:left]), comm=text[left + 1:right], state=rest[0], ppid=n[0],
                    pgid=n[1], sid=n[2], tty_nr=n[3], tpgid=n[4], utime=n[10], stime=n[11],
                    priority=n[14], nice=n[15], nthreads=n[16], start_ticks=n[18], vsize=n[19],
                    rss_pages=n[20])
    except ValueError:
        return None


def parse_status(data: bytes, task: Task) -> None:
    """The ids and the memory figures of ``/proc/<pid>/status`` into *task*."""
    for line in data.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key == "Uid" and len(parts) >= 2:
            task.uid, task.euid = int(parts[0]), int(parts[1])
        elif key == "Gid" and len(parts) >= 2:
            task.gid, task.egid = int(parts[0]), int(parts[1])
        elif key == "VmRSS" and parts:
            task.vm_rss_kb = int(parts[0])
        elif key == "VmSize" and parts:
            task.vm_size_kb = int(parts[0])


async def read_task(ctx: Any, pid: int | str) -> Task | None:
    """One process, or None if it is gone."""
    stat = await read_file(ctx, f"/proc/{pid}/stat")
    if stat is None:
        return None
    task = parse_stat(stat)
    if task is None:
        return None
    status = await read_file(ctx, f"/proc/{pid}/status")
    if status is not None:
        parse_status(status, task)
    cmdline = await read_file(ctx, f"/proc/{pid}/cmdline")
    if cmdline:
        task.cmdline = [os.fsdecode(a) for a in cmdline.rstrip(b"\0").split(b"\0")]
    return task


async def read_wchan(ctx: Any, task: Task) -> None:
    """WCHAN as procps shows it: ``?`` when /proc/<pid>/wchan cannot be read, ``-`` for 0."""
    data = await read_file(ctx, f"/proc/{task.pid}/wchan")
    if data is not None:
        text = data.decode(errors="replace").strip()
        task.wchan = "-" if text in ("", "0") else text


async def read_tasks(ctx: Any) -> list[Task]:
    """Every process in ``/proc``, by pid."""
    try:
        names = await ctx.listdir("/proc")
    except KernelError:
        return []
    out = []
    for pid in sorted(int(n) for n in names if n.isdigit()):
        task = await read_task(ctx, pid)
        if task is not None:
            out.append(task)
    return out


@dataclass
class Machine:
    """The machine-wide figures the tools print (uptime, load, memory, boot time)."""

    uptime: float = 0.0
    loads: tuple[float, float, float] = (0.0, 0.0, 0.0)
    btime: int = 0
    meminfo: dict[str, int] = field(default_factory=dict)   # kB, by /proc/meminfo key
    cpu: list[int] = field(default_factory=list)            # the "cpu" line of /proc/stat

    def mem(self, key: str) -> int:
        return self.meminfo.get(key, 0)


async def read_machine(ctx: Any) -> Machine:
    m = Machine()
    data = await read_file(ctx, "/proc/uptime")
    if data:
        try:
            m.uptime = float(data.split()[0])
        except (ValueError, IndexError):
            pass
    data = await read_file(ctx, "/proc/loadavg")
    if data:
        try:
            a, b, c = (float(x) for x in data.split()[:3])
            m.loads = (a, b, c)
        except ValueError:
            pass
    data = await read_file(ctx, "/proc/stat")
    for line in (data or b"").decode(errors="replace").splitlines():
        parts = line.split()
        if parts and parts[0] == "btime" and len(parts) > 1 and parts[1].isdigit():
            m.btime = int(parts[1])
        elif parts and parts[0] == "cpu":
            m.cpu = [int(x) for x in parts[1:] if x.isdigit()]
    data = await read_file(ctx, "/proc/meminfo")
    for line in (data or b"").decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            m.meminfo[key] = int(parts[0])
    return m


async def pid_max(ctx: Any) -> int:
    """``/proc/sys/kernel/pid_max``: procps sizes its pid columns by its digits."""
    data = await read_file(ctx, "/proc/sys/kernel/pid_max")
    try:
        return int(data or b"32768")
    except ValueError:
        return 32768


async def self_task(ctx: Any) -> Task | None:
    return await read_task(ctx, "self")
