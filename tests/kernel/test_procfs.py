"""/proc: Linux formats (parsed with the same parsers as the host's real /proc), process
entries, access rules, no host leaks, and the cost of one generated read."""

from __future__ import annotations

import getpass
import os
import re
import socket
import stat

import pytest

from kernel.errors import KernelError
from kernel.fs import Caller
from kernel.pathvfs import PathVFS
from kernel.procfs import ProcConfig, ProcFS
from kernel.signals import SIG_IGN, SigAction
from tests.served import unmount_and_reap

from .conftest import add_process, as_pid, open_fd


@pytest.fixture
async def proc(table, procs, ptys):
    fs = ProcFS(procs, table, config=ProcConfig(hostname="sbx-host", mem_total=512 << 20, ncpu=2),
                ptys=ptys)
    await table.mount("/proc", fs, fstype="proc", source="proc")
    sh = add_process(procs, 42, parent=1, pgid=42, sid=1, uid=1000, gid=1000,
                     argv=["sh", "-c", "echo hi"], env={"HOME": "/home/user", "PWD": "/home/user"},
                     cwd="/home/user", exe="/bin/sh", tty="/dev/pts/0",
                     start_time_ns=1_500_000_000, state="S", rss_bytes=2 << 20)
    terminal = ptys.open_pty()                     # /dev/pts/0, with sh's group in the foreground
    terminal.sid, terminal.fg_pgid = 1, 42
    open_fd(sh, 0, "pty", "/dev/pts/0", os.O_RDWR)
    open_fd(sh, 1, "pipe", None, os.O_WRONLY, object_id=7)
    open_fd(sh, 2, "socket", None, os.O_RDWR, object_id=9)
    open_fd(sh, 3, "file", "/home/user/notes.txt", os.O_RDONLY | os.O_APPEND, pos=12, cloexec=True)
    sh.sig.blocked.add(2)
    sh.sig.actions[15] = SigAction(SIG_IGN)
    return fs


async def raises(code, coro):
    with pytest.raises(KernelError) as ei:
        await coro
    assert ei.value.code == code, str(ei.value)


def host(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode()


# ---- parsers shared by the host's /proc and ours -----------------------------------------------
def parse_pid_stat(text: str) -> list:
    head, _, rest = text.rstrip("\n").rpartition(")")
    pid, _, comm = head.partition(" (")
    state, *numbers = rest.split()
    assert len(state) == 1 and state.isalpha()
    return [int(pid), comm, state] + [int(v) for v in numbers]


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        assert sep and "\t" in line, line
        out[key] = value.strip()
    return out


def shape(value: str) -> str:
    """A coarse type of a status value, to compare ours with the host's."""
    if re.fullmatch(r"\d+ kB", value):
        return "kB"
    if re.fullmatch(r"[0-9a-f]{16}", value):
        return "mask"
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"(\d+\s+){3}\d+", value):
        return "4ints"
    if re.fullmatch(r"\d+/\d+", value):
        return "ratio"
    return "text"


def parse_meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([\w()]+):\s+(\d+)( kB)?", line)
        assert m, line
        out[m.group(1)] = int(m.group(2))
    return out


def parse_uptime(text: str) -> tuple[float, float]:
    a, b = text.split()
    return float(a), float(b)


def parse_loadavg(text: str) -> tuple:
    m = re.fullmatch(r"(\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) (\d+)/(\d+) (\d+)\n", text)
    assert m, text
    return m.groups()


def parse_mounts(text: str) -> list[list[str]]:
    rows = [line.split() for line in text.splitlines()]
    for r in rows:
        assert len(r) == 6 and r[1].startswith("/") and r[4:] == ["0", "0"], r
        assert r[3].split(",")[0] in ("rw", "ro")
    return rows


def parse_mountinfo(text: str) -> list[tuple]:
    rows = []
    for line in text.splitlines():
        left, right = line.split(" - ", 1)
        f = left.split()
        int(f[0]), int(f[1])
        major, minor = f[2].split(":")
        int(major), int(minor)
        assert f[3].startswith("/") and f[4].startswith("/")
        fstype, source, opts = right.split(" ", 2)
        rows.append((int(f[0]), int(f[1]), f[4], fstype))
    return rows


def parse_fdinfo(text: str) -> dict[str, int]:
    d = dict(line.split(":\t", 1) for line in text.splitlines())
    return {"pos": int(d["pos"]), "flags": int(d["flags"], 8), "mnt_id": int(d["mnt_id"])}


# ---- differential: same parser on the host and on ours -----------------------------------------
async def test_pid_stat_like_host(proc, vfs):
    ours = parse_pid_stat(await vfs.read_text_file("/proc/42/stat"))
    theirs = parse_pid_stat(host("/proc/self/stat"))
    assert len(ours) == len(theirs) == 52
    assert ours[:8] == [42, "sh", "S", 1, 42, 1, (136 << 8) | 0, 42]
    assert ours[21] == 150  # starttime: 1.5 s after boot, in 100 Hz ticks
    assert ours[22] > 0 and ours[23] > 0  # vsize bytes, rss pages: not a kernel thread for ps
    assert ours[31] == 1 << 1  # blocked: SIGINT
    assert ours[32] == 1 << 14  # ignored: SIGTERM


async def test_pid_status_like_host(proc, vfs):
    ours = parse_status(await vfs.read_text_file("/proc/42/status"))
    theirs = parse_status(host("/proc/self/status"))
    required = ["Name", "Umask", "State", "Tgid", "Ngid", "Pid", "PPid", "TracerPid", "Uid", "Gid",
                "FDSize", "Groups", "VmPeak", "VmSize", "VmRSS", "Threads", "SigQ", "SigPnd",
                "ShdPnd", "SigBlk", "SigIgn", "SigCgt"]
    assert set(required) <= set(ours)
    for key, value in ours.items():
        assert key in theirs, key
        assert shape(value) == shape(theirs[key]), (key, value, theirs[key])
    order = [k for k in theirs if k in ours]
    assert list(ours) == order  # same order as Linux
    assert ours["Name"] == "sh" and ours["Pid"] == "42" and ours["PPid"] == "1"
    assert ours["Uid"].split() == ["1000"] * 4
    assert ours["State"] == "S (sleeping)" and ours["Umask"] == "0022"
    assert int(ours["SigBlk"], 16) == 2


async def test_statm(proc, vfs):
    ours = (await vfs.read_text_file("/proc/42/statm")).split()
    assert len(ours) == len(host("/proc/self/statm").split()) == 7
    assert all(x.isdigit() for x in ours) and int(ours[1]) == (2 << 20) // 4096


async def test_meminfo_like_host(proc, vfs):
    ours = parse_meminfo(await vfs.read_text_file("/proc/meminfo"))
    theirs = parse_meminfo(host("/proc/meminfo"))
    assert set(ours) <= set(theirs)
    for key in ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal",
                "SwapFree", "Shmem", "SReclaimable"]:
        assert key in ours
    assert ours["MemTotal"] == 512 * 1024
    assert ours["MemFree"] <= ours["MemTotal"]
    assert list(ours) == [k for k in theirs if k in ours]  # Linux order


async def test_uptime_loadavg_like_host(proc, vfs, procs):
    up, idle = parse_uptime(await vfs.read_text_file("/proc/uptime"))
    parse_uptime(host("/proc/uptime"))
    assert 4.9 < up < 60 and idle >= 0
    ours = parse_loadavg(await vfs.read_text_file("/proc/loadavg"))
    parse_loadavg(host("/proc/loadavg"))
    assert ours[4] == "2" and ours[5] == "42"  # 2 processes, last pid 42


async def test_mounts_like_host(proc, vfs):
    ours = parse_mounts(await vfs.read_text_file("/proc/mounts"))
    parse_mounts(host("/proc/mounts"))
    assert [r[1] for r in ours] == ["/", "/proc"]
    assert await vfs.read_file("/proc/42/mounts") == await vfs.read_file("/proc/mounts")
    mi = parse_mountinfo(await vfs.read_text_file("/proc/42/mountinfo"))
    parse_mountinfo(host("/proc/self/mountinfo"))
    by_point = {r[2]: r for r in mi}
    assert by_point["/proc"][1] == by_point["/"][0] and by_point["/proc"][3] == "proc"
    assert "//" not in await vfs.read_text_file("/proc/mounts")


async def test_stat_cpuinfo_version(proc, vfs, procs):
    text = await vfs.read_text_file("/proc/stat")
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    hostlines = dict(line.split(" ", 1) for line in host("/proc/stat").splitlines())
    assert set(lines) <= set(hostlines)
    assert len(lines["cpu"].split()) == len(hostlines["cpu"].split()) == 10
    assert "cpu0" in lines and "cpu1" in lines and "cpu2" not in lines
    assert int(lines["btime"]) == procs.boot_time_ns // 10**9
    cpu = await vfs.read_text_file("/proc/cpuinfo")
    assert cpu.count("processor\t: ") == 2 and "model name\t: " in cpu
    hostkeys = {line.split(":")[0].strip() for line in host("/proc/cpuinfo").splitlines() if ":" in line}
    ourkeys = {line.split(":")[0].strip() for line in cpu.splitlines() if ":" in line}
    assert ourkeys <= hostkeys
    ver = await vfs.read_text_file("/proc/version")
    assert ver.startswith("Linux version 6.") and ver != host("/proc/version")


async def test_sys_kernel_and_filesystems(proc, vfs):
    assert await vfs.read_text_file("/proc/sys/kernel/hostname") == "sbx-host\n"
    proc.config.hostname = "renamed"
    assert await vfs.read_text_file("/proc/sys/kernel/hostname") == "renamed\n"
    assert await vfs.read_text_file("/proc/sys/kernel/ostype") == "Linux\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", await vfs.read_text_file("/proc/sys/kernel/osrelease"))
    assert int(await vfs.read_text_file("/proc/sys/kernel/pid_max")) >= 32768
    fss = await vfs.read_text_file("/proc/filesystems")
    assert "nodev\tproc\n" in fss and all("\t" in line for line in fss.splitlines())


@pytest.mark.parametrize("name", ["tcp", "tcp6", "udp", "udp6", "unix"])
async def test_net_headers_like_host(proc, vfs, name):
    ours = await vfs.read_text_file(f"/proc/net/{name}")
    assert ours.count("\n") == 1
    assert ours.split() == host(f"/proc/net/{name}").splitlines()[0].split()


# ---- process entries ---------------------------------------------------------------------------
async def test_root_listing(proc, vfs):
    names = await vfs.read_dir("/proc")
    for n in ["mounts", "uptime", "loadavg", "meminfo", "version", "cpuinfo", "stat",
              "filesystems", "sys", "net", "1", "42"]:
        assert n in names
    assert names.index("1") < names.index("42")
    assert "self" not in names  # a host caller (pid 0) has no self: it is not listed either
    assert "self" in await as_pid(vfs, 42, 1000, 1000).read_dir("/proc")
    st = await vfs.stat("/proc/42")
    assert st.is_directory and (st.uid, st.gid) == (1000, 1000)
    assert sorted(await vfs.read_dir("/proc/42")) == sorted(
        ["cmdline", "comm", "environ", "stat", "statm", "status", "cwd", "exe", "root", "fd",
         "fdinfo", "mounts", "mountinfo"])


async def test_self(proc, vfs):
    assert await as_pid(vfs, 42, 1000, 1000).readlink("/proc/self") == "42"
    assert await as_pid(vfs, 42, 1000, 1000).read_file("/proc/self/comm") == b"sh\n"
    await raises("ENOENT", vfs.readlink("/proc/self"))  # host callers have no pid here
    await raises("ENOENT", vfs.lstat("/proc/self"))  # not even the link itself
    await raises("ENOENT", vfs.read_file("/proc/self/status"))
    assert (await as_pid(vfs, 42, 1000, 1000).lstat("/proc/self")).is_symbolic_link
    await raises("ENOENT", as_pid(vfs, 99).readlink("/proc/self"))  # unknown pid


async def test_cmdline_comm_environ(proc, vfs, procs):
    assert await vfs.read_file("/proc/42/cmdline") == b"sh\0-c\0echo hi\0"
    assert await vfs.read_file("/proc/42/comm") == b"sh\n"
    assert await vfs.read_file("/proc/42/environ") == b"HOME=/home/user\0PWD=/home/user\0"
    add_process(procs, 50, argv=["/usr/bin/a-very-long-command-name"])
    assert await vfs.read_file("/proc/50/comm") == b"a-very-long-com\n"
    assert await vfs.read_file("/proc/50/environ") == b""


async def test_links(proc, vfs):
    assert await vfs.readlink("/proc/42/cwd") == "/home/user"
    assert await vfs.readlink("/proc/42/exe") == "/bin/sh"
    assert await vfs.readlink("/proc/42/root") == "/"
    assert await vfs.readlink("/proc/42/fd/0") == "/dev/pts/0"
    assert await vfs.readlink("/proc/42/fd/1") == "pipe:[7]"
    assert await vfs.readlink("/proc/42/fd/2") == "socket:[9]"
    assert await vfs.readlink("/proc/42/fd/3") == "/home/user/notes.txt"
    assert await vfs.read_dir("/proc/42/fd") == ["0", "1", "2", "3"]
    modes = {n: stat.S_IMODE((await vfs.lstat(f"/proc/42/fd/{n}")).mode) for n in "0123"}
    assert modes == {"0": 0o700, "1": 0o300, "2": 0o700, "3": 0o500}  # lrwx, l-wx, lrwx, lr-x
    await raises("ENOENT", vfs.readlink("/proc/42/fd/9"))
    await raises("ENOENT", vfs.lstat("/proc/42/fd/01"))


async def test_fdinfo_like_host(proc, vfs, table):
    ours = parse_fdinfo(await vfs.read_text_file("/proc/42/fdinfo/3"))
    parse_fdinfo(host("/proc/self/fdinfo/0"))
    assert ours["pos"] == 12
    assert ours["flags"] == os.O_RDONLY | os.O_APPEND | os.O_CLOEXEC
    root_id = table.mounts()[0].mnt_id
    assert ours["mnt_id"] == root_id
    assert parse_fdinfo(await vfs.read_text_file("/proc/42/fdinfo/1"))["flags"] & os.O_CLOEXEC == 0
    assert await vfs.read_dir("/proc/42/fdinfo") == ["0", "1", "2", "3"]


async def test_other_users_cannot_see_private_entries(proc, vfs):
    other = as_pid(vfs, 1, uid=2000, gid=2000)
    await raises("EACCES", other.read_file("/proc/42/environ"))
    await raises("EACCES", other.readlink("/proc/42/cwd"))
    await raises("EACCES", other.read_dir("/proc/42/fd"))
    assert await other.read_file("/proc/42/cmdline") == b"sh\0-c\0echo hi\0"  # public
    owner = as_pid(vfs, 42, uid=1000, gid=1000)
    assert await owner.read_file("/proc/42/environ")
    assert await owner.readlink("/proc/42/cwd") == "/home/user"


async def test_zombie_and_reaped(proc, vfs, table, procs):
    p = procs.get(42)
    ino = (await vfs.stat("/proc/42/status")).ino
    fh = await table.open(ino, os.O_RDONLY)  # a snapshot survives the process
    p.state, p.exit_status = "Z", 3 << 8
    assert await vfs.read_file("/proc/42/cmdline") == b""
    st = parse_pid_stat(await vfs.read_text_file("/proc/42/stat"))
    assert st[2] == "Z" and st[51] == 3 << 8 and st[22] == 0
    assert "VmRSS" not in parse_status(await vfs.read_text_file("/proc/42/status"))
    procs.reap(p)
    await raises("ENOENT", vfs.stat("/proc/42"))
    await raises("ENOENT", table.getattr(ino))
    assert "42" not in await vfs.read_dir("/proc")
    assert b"Name:\tsh" in await table.read(fh, 0, 4096)
    await table.release(fh)


async def test_snapshot_per_handle(proc, vfs, table, procs):
    ino = (await vfs.stat("/proc/42/status")).ino
    fh = await table.open(ino, os.O_RDONLY)
    first = await table.read(fh, 0, 10)
    procs.get(42).argv = ["renamed"]
    rest = await table.read(fh, 10, 1 << 16)
    assert (first + rest).startswith(b"Name:\tsh\n")
    await table.release(fh)
    assert (await vfs.read_file("/proc/42/status")).startswith(b"Name:\trenamed\n")
    assert (await vfs.stat("/proc/42/status")).size == 0  # like Linux
    assert table.wants_direct_io(ino)
    assert not table.wants_direct_io((await vfs.stat("/proc/42")).ino)
    assert table.is_volatile(ino) and not table.is_volatile(table.root_ino)


async def test_mutations_like_linux(proc, vfs, table):
    await raises("ENOENT", vfs.write_file("/proc/newfile", b""))  # Linux: touch -> ENOENT
    await raises("ENOENT", vfs.mkdir("/proc/newdir"))
    await raises("ENOENT", vfs.symlink("x", "/proc/lnk"))
    await raises("EPERM", vfs.remove_file("/proc/uptime"))
    await raises("EPERM", vfs.remove_dir("/proc/sys"))
    ino = (await vfs.stat("/proc/uptime")).ino
    fh = await table.open(ino, os.O_WRONLY)  # root passes DAC, the file refuses: EIO
    await raises("EIO", table.write(fh, 0, b"1"))
    await table.release(fh)
    await raises("EACCES", table.open(ino, os.O_WRONLY, Caller(uid=1000, pid=42)))
    await raises("ENOTSUP", table.getxattr(ino, b"user.x"))
    await raises("ENOTSUP", table.setxattr(ino, b"user.x", b"1"))


async def test_no_host_leaks(tmp_path, procs):
    """Plant canaries (host name, host pid, the store's host path, host user) and grep
    every file and link of /proc for them."""
    from kernel.mounts import MountTable
    from vfsfuse.storage.store import create_store, open_store

    create_store(str(tmp_path))
    store = open_store(str(tmp_path))
    try:
        table = MountTable(store.vfs)
        await table.mount("/proc", ProcFS(procs, table), fstype="proc", source="proc")
        p = add_process(procs, 7, argv=["cat"], cwd="/tmp")
        open_fd(p, 0, "device", "/dev/null")
        open_fd(p, 5, "file", "/tmp/x", os.O_RDWR)
        vfs = PathVFS(table, Caller(pid=7))
        canaries = [socket.gethostname(), str(os.getpid()), str(tmp_path), getpass.getuser(),
                    os.uname().release, host("/proc/version").strip()]
        pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(c)}(?![\w.-])" for c in canaries))
        seen = 0

        async def walk(path: str) -> None:
            nonlocal seen
            for e in await vfs.read_dir_with_types(path):
                child = f"{path}/{e.name}"
                st = await vfs.lstat(child)
                if st.is_symbolic_link:
                    try:
                        text = await vfs.readlink(child)
                    except KernelError:
                        continue
                elif st.is_directory:
                    await walk(child)
                    continue
                else:
                    text = (await vfs.read_file(child)).decode(errors="replace")
                seen += 1
                m = pattern.search(text)
                assert m is None, (child, m.group(0))

        await walk("/proc")
        assert seen > 40
    finally:
        await store.vfs.close()
        store.close()


async def test_generated_file_survives_repeated_open_cycles(proc, table, vfs):
    """lookup + getattr + open + read + release of /proc/<pid>/status, as FUSE does them, many
    times over (speed: scripts/bench-kernel)."""
    root = table.root_ino
    for _ in range(200):
        pa = await table.lookup(root, b"proc")
        pid = await table.lookup(pa.ino, b"42")
        st = await table.lookup(pid.ino, b"status")
        await table.getattr(st.ino)
        fh = await table.open(st.ino, os.O_RDONLY)
        assert await table.read(fh, 0, 131072)
        await table.release(fh)


# ---- through a real FUSE mount -------------------------------------------------------------------
SERVER = r'''
import os, sys, trio, pyfuse3
from kernel.devfs import DevFS
from kernel.mounts import MountTable
from kernel.procfs import ProcConfig, ProcFS
from vfsfuse.daemon.fuse_adapter import FuseAdapter
from vfsfuse.storage.store import memory_vfs
from kernel.process import ProcessTable
from tests.kernel.conftest import add_process, open_fd

procs = ProcessTable()
add_process(procs, 1, argv=["/sbin/init"], exe="/sbin/init", state="S")
p = add_process(procs, 42, parent=1, pgid=42, sid=42, argv=["sh", "-c", "sleep 5"], uid=1000,
                gid=1000, state="S", start_time_ns=2_000_000_000, env={"A": "b"}, tty="/dev/pts/0")
open_fd(p, 0, "pty", "/dev/pts/0", os.O_RDWR)

async def main():
    table = MountTable(memory_vfs())
    await table.mount("/dev", DevFS(), fstype="devtmpfs", source="devtmpfs")
    await table.mount("/proc", ProcFS(procs, table, config=ProcConfig(host_self_pid=1)),
                      fstype="proc", source="proc")
    opts = set(pyfuse3.default_options)
    opts.add("fsname=vfsfuse-proctest")
    pyfuse3.init(FuseAdapter(table), sys.argv[1], opts)
    print("ready", flush=True)
    try:
        await pyfuse3.main()
    finally:
        pyfuse3.close(unmount=True)

trio.run(main)
'''


@pytest.fixture
def fuse_mnt(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("needs /dev/fuse and fusermount3")
    repo = Path(__file__).resolve().parents[2]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, str(script), str(mnt)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=str(repo), text=True)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            pytest.fail(f"FUSE server did not start: {proc.stderr.read()[-2000:]}")
        yield mnt
    finally:
        unmount_and_reap(mnt, proc, timeout=10)


@pytest.mark.mount
def test_fuse_cat_reads_generated_files_to_eof(fuse_mnt):
    """Speed is measured by scripts/bench-kernel, not here; this checks repeated opens work."""
    import subprocess
    status = fuse_mnt / "proc/42/status"
    out = subprocess.run(["cat", str(status)], capture_output=True, text=True, check=True).stdout
    assert out.startswith("Name:\tsh\n") and "\nPPid:\t1\n" in out  # direct_io: cat reads to EOF
    assert os.stat(status).st_size == 0
    for _ in range(50):
        with open(status, "rb", buffering=0) as f:
            assert f.read(65536) == out.encode()


@pytest.mark.mount
def test_fuse_dev_nodes(fuse_mnt):
    st = os.stat(fuse_mnt / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert os.readlink(fuse_mnt / "dev/stdin") == "/proc/self/fd/0"
    assert set(os.listdir(fuse_mnt)) >= {"dev", "proc"}


@pytest.mark.mount
def test_fuse_procps_tools(fuse_mnt):
    """The host's own ps/free/uptime, run on our /proc in a private mount+pid namespace
    (``exec ps`` is pid 1 there, and procps reads /proc/<getpid()>)."""
    import shutil
    import subprocess
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ps"):
        pytest.skip("needs root, unshare and procps")
    proc = fuse_mnt / "proc"

    def run(cmd: str) -> str:
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--propagation", "private",
                            "sh", "-c", f"mount --bind {proc} /proc && exec {cmd}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    rows = [line.split(None, 4) for line in run("ps -eo pid,ppid,stat,comm,args").splitlines()[1:]]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("1", "0", "init", "/sbin/init"), ("42", "1", "sh", "sh -c sleep 5")]
    assert rows[1][2].startswith("S")
    mem = run("free -k").splitlines()[1].split()
    assert mem[0] == "Mem:" and mem[1] == str(1 << 20)
    assert "load average: 0.00" in run("uptime")


# ---- with the real kernel -------------------------------------------------------------------------
async def test_real_kernel_processes(nursery):
    from kernel.kernel import Kernel
    from kernel.programs.testprogs import test_registry
    from vfsfuse.storage.store import memory_vfs

    k = Kernel(memory_vfs(), hostname="box", programs=test_registry())
    await k.boot(nursery)
    try:
        r = await k.run(["cat", "/proc/self/status"])
        status = parse_status(r.stdout.decode())
        assert status["Name"] == "cat" and status["State"][0] in "RS"
        assert int(status["Pid"]) > 1 and status["Pid"] == status["Tgid"]
        r = await k.run(["cat", "/proc/self/cmdline", "/proc/sys/kernel/hostname"])
        assert r.stdout == b"cat\0/proc/self/cmdline\0/proc/sys/kernel/hostname\0box\n"
        h = await k.spawn(["sleep", "30"])
        pid = h.pid
        st = parse_pid_stat(await k.vfs.read_text_file(f"/proc/{pid}/stat"))
        assert st[0] == pid and st[1] == "sleep" and len(st) == 52
        assert await k.vfs.read_file(f"/proc/{pid}/cmdline") == b"sleep\x0030\x00"
        assert await k.vfs.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert re.fullmatch(r"pipe:\[\d+\]", await k.vfs.readlink(f"/proc/{pid}/fd/1"))
        assert await k.vfs.read_text_file("/proc/1/comm") == "init\n"
        assert str(pid) in await k.vfs.read_dir("/proc")
        points = [row[1] for row in parse_mounts(await k.vfs.read_text_file("/proc/mounts"))]
        assert points[:3] == ["/", "/dev", "/proc"]
        h.kill()
        await h.wait()
        await h.aclose()
        import trio
        with trio.fail_after(30):  # reaping may be asynchronous (init collects orphans)
            while await k.vfs.exists(f"/proc/{pid}"):
                assert parse_pid_stat(await k.vfs.read_text_file(f"/proc/{pid}/stat"))[2] == "Z"
                await trio.sleep(0.01)
        assert str(pid) not in await k.vfs.read_dir("/proc")
    finally:
        await k.shutdown()


async def test_real_kernel_zombies_have_proc_entries(kernel):
    """A child that exited but was not waited for keeps /proc/<pid> (State Z, no cmdline,
    no fds) until its parent reaps it; then the entry is gone."""
    import trio

    from .ksupport import register
    state: dict = {}
    reap = trio.Event()

    async def parent(ctx):
        state["child"] = await ctx.spawn(["true"])
        while kernel.processes.get(state["child"]).state != "Z":
            await ctx.sleep(0.01)
        state["zombie"] = True
        while not reap.is_set():
            await ctx.sleep(0.01)
        await ctx.waitpid(state["child"])
        return 0

    h = await kernel.spawn([register(kernel, parent)])
    with trio.fail_after(30):
        while "zombie" not in state:
            await trio.sleep(0.01)
    pid = state["child"]
    vfs = kernel.vfs
    assert str(pid) in await vfs.read_dir("/proc")
    status = parse_status(await vfs.read_text_file(f"/proc/{pid}/status"))
    assert status["State"] == "Z (zombie)" and status["PPid"] == str(h.pid)
    assert parse_pid_stat(await vfs.read_text_file(f"/proc/{pid}/stat"))[2] == "Z"
    assert await vfs.read_file(f"/proc/{pid}/cmdline") == b""
    assert await vfs.read_dir(f"/proc/{pid}/fd") == []
    reap.set()
    with trio.fail_after(30):
        assert await h.wait() == 0
    assert str(pid) not in await vfs.read_dir("/proc")
    assert not await vfs.exists(f"/proc/{pid}")


async def test_real_kernel_tpgid_is_the_terminals_foreground_group(kernel):
    """stat's tpgid (ps shows '+' when it equals the pgid) comes from the terminal."""
    import trio

    from .ksupport import register
    pids: dict = {}

    async def shell(ctx):
        pids["job"] = await ctx.spawn(["sleep", "5"], pgid=0)    # a background job
        await ctx.sleep(5)

    h = await kernel.open_terminal([register(kernel, shell)])
    try:
        with trio.fail_after(30):
            while "job" not in pids:
                await trio.sleep(0.01)
        vfs = kernel.vfs
        sh = parse_pid_stat(await vfs.read_text_file(f"/proc/{h.pid}/stat"))
        job = parse_pid_stat(await vfs.read_text_file(f"/proc/{pids['job']}/stat"))
        assert sh[4] == sh[7] == h.pid                   # pgid == tpgid: foreground
        assert job[4] == pids["job"] and job[7] == h.pid  # background: tpgid is the shell's
        init = parse_pid_stat(await vfs.read_text_file("/proc/1/stat"))
        assert init[6] == 0 and init[7] == -1            # no terminal
    finally:
        kernel.kill(-pids.get("job", h.pid), 9)
        h.kill(9)
        await h.wait()
        await h.close()


def test_fd_reference():
    from kernel.procfs import fd_reference
    assert fd_reference("/dev/fd/3", 7) == (7, 3)
    assert fd_reference("/dev/stdin", 7) == (7, 0)
    assert fd_reference("/dev/./stderr", 7) == (7, 2)
    assert fd_reference("/proc/self/fd/12", 7) == (7, 12)
    assert fd_reference("/proc/42/fd/1", 7) == (42, 1)
    for bad in ["/dev/fd/abc", "/dev/fd/-1", "/dev/fd/01", "/dev/fd/", "/dev/fd/1.5",
                "/proc/self/fdinfo/1", "/proc/x/fd/1", "/dev/null", "/tmp/dev/fd/1",
                "/proc/self/fd/1/../1", "/dev/fd/3/..", "/dev/x/../fd/3"]:
        assert fd_reference(bad, 7) is None, bad


async def test_reaped_nodes_are_forgotten(proc, vfs, procs):
    for pid in range(100, 150):
        add_process(procs, pid)
        await vfs.read_file(f"/proc/{pid}/status")
    before = len(proc._nodes)
    for pid in range(100, 150):
        procs.reap(procs.get(pid))
    await vfs.read_dir("/proc")
    assert len(proc._nodes) < before - 50 * 10
