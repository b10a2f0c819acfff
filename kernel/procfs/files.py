"""Generators of the /proc files, in the exact Linux formats (see proc(5)).

Each function is pure: it takes the records it needs (a process, the process
table, a ``ProcConfig``) and returns bytes.  Nothing here may reveal the host:
figures are synthetic or derived from the sandbox's own configuration, names come
from the sandbox (hostname from the kernel config), paths are sandbox paths.

The process fields used are those of ``kernel.process.Process``.  CPU time is what the
syscall layer charged each process (all user time); threads and supplementary groups are
not modelled: processes are trio tasks sharing one host thread, so those read 1 and nothing.
"""

from __future__ import annotations

import os
import stat as _stat
import time
from dataclasses import dataclass

from ..pty import PTS_MAJOR
from ..signals import SIG_DFL, SIG_IGN

HZ = 100  # USER_HZ: the unit of every "ticks" field
PAGE = 4096
KERNEL_RELEASE = "6.1.0-sandbox"
KERNEL_VERSION = "#1 SMP PREEMPT_DYNAMIC"
_TASK_STATE = {"R": "R (running)", "S": "S (sleeping)", "D": "D (disk sleep)", "T": "T (stopped)",
               "t": "t (tracing stop)", "Z": "Z (zombie)", "X": "X (dead)", "I": "I (idle)"}
O_CLOEXEC = os.O_CLOEXEC


@dataclass(slots=True)
class ProcConfig:
    """What /proc says about the machine: all synthetic, never read from the host."""

    hostname: str = "sandbox"
    ostype: str = "Linux"
    osrelease: str = KERNEL_RELEASE
    version: str = KERNEL_VERSION
    mem_total: int = 1 << 30  # bytes
    ncpu: int = 1
    cpu_mhz: float = 2000.0
    pid_max: int = 4194304
    fd_size: int = 1024  # FDSize in status (the per-process fd limit)
    # What /proc/self means for callers without a sandbox pid (host processes through FUSE,
    # pid 0): 0 = nothing (ENOENT, the default).  Host tools such as procps ``ps`` refuse to
    # run without /proc/self; setting e.g. 1 lets them read the sandbox's /proc.
    host_self_pid: int = 0


# ---- helpers ----------------------------------------------------------------------------
def _kb(nbytes: int) -> int:
    return max(0, nbytes) // 1024


def _ticks(ns: int) -> int:
    return max(0, ns) * HZ // 1_000_000_000


def tty_nr(tty: str | None) -> int:
    """Linux's encoding of a terminal device number (``/dev/pts/N`` -> 136:N)."""
    if not tty or not tty.startswith("/dev/pts/") or not tty[9:].isdigit():
        return 0
    minor = int(tty[9:])
    return (PTS_MAJOR << 8) | (minor & 0xFF) | ((minor & ~0xFF) << 12)


def _sigmask(sigs) -> int:
    m = 0
    for s in sigs or ():
        if 1 <= s <= 64:
            m |= 1 << (s - 1)
    return m


def _signals(p) -> tuple[int, int, int, int]:
    """(pending, blocked, ignored, caught) bitmasks."""
    st = p.sig
    ign, cgt = set(), set()
    for s, a in st.actions.items():
        if a.handler == SIG_IGN:
            ign.add(s)
        elif a.handler != SIG_DFL:
            cgt.add(s)
    return _sigmask(st.pending), _sigmask(st.blocked), _sigmask(ign), _sigmask(cgt)


def _rss(p) -> int:
    return max(PAGE, p.rss_bytes)


def _vsize(p) -> int:
    return _rss(p) + (8 << 20)  # a plausible address space: rss plus an 8 MiB stack reserve


def _cpu_ticks(p) -> tuple[int, int, int, int]:
    """(utime, stime, cutime, cstime): the CPU the kernel charged the process and its reaped
    children (all as user time: trio cannot tell user from system time)."""
    rl = getattr(p, "rlimits", None)
    if rl is None:
        return 0, 0, 0, 0
    return int(rl.cpu_used * HZ), 0, int(rl.children_cpu * HZ), 0


def _is_zombie(p) -> bool:
    return p.state == "Z"


def comm(p) -> str:
    return p.comm.replace("\n", "?")


# ---- per-process files ------------------------------------------------------------------
def pid_cmdline(p) -> bytes:
    if _is_zombie(p) or not p.argv:
        return b""
    return b"".join(a.encode(errors="surrogateescape") + b"\0" for a in p.argv)


def pid_comm(p) -> bytes:
    return (comm(p) + "\n").encode(errors="surrogateescape")


def pid_environ(p) -> bytes:
    if _is_zombie(p):
        return b""
    return b"".join(f"{k}={v}".encode(errors="surrogateescape") + b"\0" for k, v in p.env.items())


def pid_stat(p, tpgid: int = -1) -> bytes:
    """The 52 fields of /proc/<pid>/stat, in proc(5) order; *tpgid* is the foreground
    group of the process's controlling terminal (-1 without one)."""
    zombie = _is_zombie(p)
    pend, blk, ign, cgt = _signals(p)
    tty = tty_nr(p.tty)
    vsize = 0 if zombie else _vsize(p)
    rss = 0 if zombie else _rss(p) // PAGE
    code = 0 if zombie else 0x400000
    exit_code = (p.exit_status or 0) if zombie else 0
    fields = (
        p.pid, f"({comm(p)})", p.state, p.ppid, p.pgid, p.sid, tty, tpgid,
        0x400000,  # flags: PF_RANDOMIZE, like an ordinary user process
        0, 0, 0, 0,  # minflt cminflt majflt cmajflt
        *_cpu_ticks(p),  # utime stime cutime cstime
        20 + p.nice, p.nice, 1, 0,  # priority nice num_threads itrealvalue
        _ticks(p.start_time_ns), vsize, rss, 18446744073709551615,  # starttime vsize rss rsslim
        code, code + (1 << 16) if code else 0, 0x7FFC0000 if code else 0, 0, 0,
        pend, blk, ign, cgt,  # signal blocked sigignore sigcatch
        0, 0, 0, 17, 0, 0, 0, 0, 0, 0,  # wchan nswap cnswap exit_signal processor rt_prio policy
        # delayacct_blkio_ticks guest_time cguest_time
        0, 0, 0, 0, 0, 0, 0, exit_code,  # start/end_data start_brk arg/env start/end, exit_code
    )
    return (" ".join(map(str, fields)) + "\n").encode(errors="surrogateescape")


def pid_statm(p) -> bytes:
    if _is_zombie(p):
        return b"0 0 0 0 0 0 0\n"
    size, res = _vsize(p) // PAGE, _rss(p) // PAGE
    return f"{size} {res} 0 16 0 {res} 0\n".encode()


def pid_status(p, cfg: ProcConfig) -> bytes:
    zombie = _is_zombie(p)
    pend, blk, ign, cgt = _signals(p)
    lines = [
        f"Name:\t{comm(p)}",
        f"Umask:\t{p.umask:04o}",
        f"State:\t{_TASK_STATE.get(p.state, p.state)}",
        f"Tgid:\t{p.pid}",
        "Ngid:\t0",
        f"Pid:\t{p.pid}",
        f"PPid:\t{p.ppid}",
        "TracerPid:\t0",
        f"Uid:\t{p.uid}\t{p.uid}\t{p.uid}\t{p.uid}",
        f"Gid:\t{p.gid}\t{p.gid}\t{p.gid}\t{p.gid}",
        f"FDSize:\t{cfg.fd_size}",
        "Groups:\t ",
        f"NStgid:\t{p.pid}",
        f"NSpid:\t{p.pid}",
        f"NSpgid:\t{p.pgid}",
        f"NSsid:\t{p.sid}",
        "Kthread:\t0",
    ]
    if not zombie:
        vm, rss = _kb(_vsize(p)), _kb(_rss(p))
        lines += [
            f"VmPeak:\t{vm:8d} kB", f"VmSize:\t{vm:8d} kB", f"VmLck:\t{0:8d} kB",
            f"VmPin:\t{0:8d} kB", f"VmHWM:\t{rss:8d} kB", f"VmRSS:\t{rss:8d} kB",
            f"RssAnon:\t{rss:8d} kB", f"RssFile:\t{0:8d} kB", f"RssShmem:\t{0:8d} kB",
            f"VmData:\t{rss:8d} kB", f"VmStk:\t{132:8d} kB", f"VmExe:\t{4:8d} kB",
            f"VmLib:\t{0:8d} kB", f"VmPTE:\t{4:8d} kB", f"VmSwap:\t{0:8d} kB",
            f"HugetlbPages:\t{0:8d} kB", "CoreDumping:\t0", "THP_enabled:\t0",
        ]
    nsig = len(p.sig.pending)
    caps = "000001ffffffffff" if p.uid == 0 else "0000000000000000"
    lines += [
        "Threads:\t1",
        f"SigQ:\t{nsig}/{cfg.pid_max}",
        f"SigPnd:\t{pend:016x}",
        f"ShdPnd:\t{0:016x}",
        f"SigBlk:\t{blk:016x}",
        f"SigIgn:\t{ign:016x}",
        f"SigCgt:\t{cgt:016x}",
        f"CapInh:\t{0:016x}",
        f"CapPrm:\t{caps}",
        f"CapEff:\t{caps}",
        "CapBnd:\t000001ffffffffff",
        f"CapAmb:\t{0:016x}",
        "NoNewPrivs:\t1",
        "Seccomp:\t0",
        "Seccomp_filters:\t0",
        f"Cpus_allowed:\t{(1 << cfg.ncpu) - 1:x}",
        f"Cpus_allowed_list:\t{'0' if cfg.ncpu == 1 else f'0-{cfg.ncpu - 1}'}",
        "Mems_allowed:\t" + ",".join(["00000000"] * 31 + ["00000001"]),
        "Mems_allowed_list:\t0",
        "voluntary_ctxt_switches:\t0",
        "nonvoluntary_ctxt_switches:\t0",
    ]
    return ("\n".join(lines) + "\n").encode(errors="surrogateescape")


def fd_target(ofd) -> str:
    """The /proc/<pid>/fd/<n> link target of an open file description."""
    kind = ofd.kind
    if kind == "pipe":
        return f"pipe:[{ofd.object_id}]"
    if kind == "socket":
        return f"socket:[{ofd.object_id}]"
    path = ofd.path
    if path:
        return path
    return f"anon_inode:[{kind}]"


def fd_link_mode(flags: int) -> int:
    """Linux shows the access mode of an fd in its link's permission bits (lr-x, l-wx, lrwx)."""
    acc = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
    mode = 0
    if acc in (os.O_RDONLY, os.O_RDWR):
        mode |= 0o500
    if acc in (os.O_WRONLY, os.O_RDWR):
        mode |= 0o300
    return _stat.S_IFLNK | mode


def fdinfo(ofd, cloexec: bool, mnt_id: int) -> bytes:
    flags = ofd.flags | O_CLOEXEC if cloexec else ofd.flags & ~O_CLOEXEC
    return f"pos:\t{ofd.pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ofd.ino}\n".encode()


# ---- machine-wide files -----------------------------------------------------------------
def uptime_seconds(processes) -> float:
    return max(0, time.monotonic_ns() - processes.monotonic_boot_ns) / 1e9


def uptime(processes, cfg: ProcConfig) -> bytes:
    up = uptime_seconds(processes)
    idle = up * cfg.ncpu * 0.99
    return f"{up:.2f} {idle:.2f}\n".encode()


def loadavg(procs: list) -> bytes:
    running = sum(1 for p in procs if p.state == "R")
    last = max((p.pid for p in procs), default=0)
    load = min(running, 99) / 1.0
    return f"{load:.2f} {load:.2f} {load:.2f} {running}/{len(procs)} {last}\n".encode()


def meminfo(procs: list, cfg: ProcConfig) -> bytes:
    total = _kb(cfg.mem_total)
    used = min(total, sum(_kb(_rss(p)) for p in procs if p.state != "Z"))
    free = total - used
    rows = [
        ("MemTotal", total), ("MemFree", free), ("MemAvailable", free), ("Buffers", 0),
        ("Cached", 0), ("SwapCached", 0), ("Active", used), ("Inactive", 0),
        ("Active(anon)", used), ("Inactive(anon)", 0), ("Active(file)", 0), ("Inactive(file)", 0),
        ("Unevictable", 0), ("Mlocked", 0), ("SwapTotal", 0), ("SwapFree", 0), ("Zswap", 0),
        ("Zswapped", 0), ("Dirty", 0), ("Writeback", 0), ("AnonPages", used), ("Mapped", 0),
        ("Shmem", 0), ("KReclaimable", 0), ("Slab", 0), ("SReclaimable", 0), ("SUnreclaim", 0),
        ("KernelStack", 0), ("PageTables", 0), ("SecPageTables", 0), ("NFS_Unstable", 0),
        ("Bounce", 0), ("WritebackTmp", 0), ("CommitLimit", total), ("Committed_AS", used),
        ("VmallocTotal", 34359738367), ("VmallocUsed", 0), ("VmallocChunk", 0), ("Percpu", 0),
        ("AnonHugePages", 0), ("ShmemHugePages", 0), ("ShmemPmdMapped", 0), ("FileHugePages", 0),
        ("FilePmdMapped", 0),
    ]
    out = [f"{k + ':':<16}{v:8d} kB\n" for k, v in rows]
    out += ["HugePages_Total:       0\n", "HugePages_Free:        0\n",
            "HugePages_Rsvd:        0\n", "HugePages_Surp:        0\n",
            f"{'Hugepagesize:':<16}{2048:8d} kB\n", f"{'Hugetlb:':<16}{0:8d} kB\n"]
    return "".join(out).encode()


def version(cfg: ProcConfig) -> bytes:
    return (f"{cfg.ostype} version {cfg.osrelease} (build@sandbox) (gcc (GCC) 12.2.0, "
            f"GNU ld (GNU Binutils) 2.40) {cfg.version}\n").encode()


def cpuinfo(cfg: ProcConfig) -> bytes:
    out = []
    for i in range(cfg.ncpu):
        out.append(
            f"processor\t: {i}\nvendor_id\t: SandboxVirtual\ncpu family\t: 6\nmodel\t\t: 0\n"
            f"model name\t: Sandbox Virtual CPU\nstepping\t: 0\ncpu MHz\t\t: {cfg.cpu_mhz:.3f}\n"
            f"cache size\t: 1024 KB\nphysical id\t: 0\nsiblings\t: {cfg.ncpu}\ncore id\t\t: {i}\n"
            f"cpu cores\t: {cfg.ncpu}\napicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\n"
            f"fpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\n"
            f"flags\t\t: fpu tsc cx8 cmov mmx fxsr sse sse2 syscall nx lm pni ssse3 sse4_1 sse4_2\n"
            f"bogomips\t: {cfg.cpu_mhz * 2:.2f}\nclflush size\t: 64\ncache_alignment\t: 64\n"
            f"address sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n")
    return "".join(out).encode()


def stat(processes, procs: list, cfg: ProcConfig) -> bytes:
    up = uptime_seconds(processes)
    busy = 0  # CPU time is not modelled (see the module docstring)
    idle = max(0, int(up * HZ) * cfg.ncpu - busy)
    out = [f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n"]
    for i in range(cfg.ncpu):
        out.append(f"cpu{i} {busy // cfg.ncpu} 0 0 {idle // cfg.ncpu} 0 0 0 0 0 0\n")
    running = sum(1 for p in procs if p.state == "R")
    blocked = 0
    out += [
        "intr 0\n", "ctxt 0\n",
        f"btime {processes.boot_time_ns // 1_000_000_000}\n",
        f"processes {max((p.pid for p in procs), default=0)}\n",
        f"procs_running {running}\n", f"procs_blocked {blocked}\n",
        "softirq 0 0 0 0 0 0 0 0 0 0 0\n",
    ]
    return "".join(out).encode()


def tty_drivers() -> bytes:
    """/proc/tty/drivers as Linux writes it (procps maps a tty_nr to its name with it:
    136:N is ``pts/N``)."""
    rows = [("/dev/tty", "tty", "5", "0", "system:/dev/tty"),
            ("/dev/console", "console", "5", "1", "system:console"),
            ("/dev/ptmx", "ptmx", "5", "2", "system"),
            ("pty_slave", "pts", str(PTS_MAJOR), "0-1048575", "pty:slave"),
            ("pty_master", "ptm", "128", "0-1048575", "pty:master")]
    return "".join(f"{name:<20} /dev/{dev:<8} {major:>3} {minor:>7} {kind}\n"
                   for name, dev, major, minor, kind in rows).encode()


def filesystems(fstypes: list[str]) -> bytes:
    seen: dict[str, None] = {}
    for t in ["proc", "devtmpfs", "tmpfs", *fstypes]:
        seen.setdefault(t, None)
    return "".join(f"nodev\t{t}\n" for t in seen).encode()


NET_TCP = (b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
           b"  timeout inode                                                     \n")
NET_TCP6 = (b"  sl  local_address                         remote_address                       "
            b" st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
NET_UDP = (b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
           b"  timeout inode ref pointer drops            \n")
NET_UDP6 = (b"  sl  local_address                         remote_address                       "
            b" st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n")
NET_UNIX = b"Num       RefCount Protocol Flags    Type St Inode Path\n"
