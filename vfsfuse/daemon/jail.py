"""The jail real programs run in: bubblewrap over the store's own FUSE mount (issue 16).

The kernel finds an ELF file and hands a ``NativeSpec`` to ``JailLauncher.launch``; this module
turns it into one ``bwrap`` process:

- root: the FUSE mount, bound from a directory fd the daemon opened (``--bind-fd``), so every
  file access of the real process goes through our filesystem and no host path is named;
- the only mount points are ``/dev`` (bubblewrap's minimal one, a tmpfs ``/dev/shm`` in it) and
  ``/proc`` (a real procfs of the jail's pid namespace).  Both are the kernel's own mounts in the
  VFS, checked before every start, so bubblewrap never creates or follows anything in the
  user's tree (its setup-time symlink following is a known escape class);
- namespaces: user (the sandbox uid/gid inside, an unprivileged host id outside: bwrap runs as
  that host user, never as host root), mount, pid, ipc, uts (the kernel's hostname), cgroup and
  net (``jail_net.py``: a down loopback for ``none``, a private one for ``loopback``, the
  daemon's policy-checked proxy for ``allow``); ``--new-session``, ``--die-with-parent``;
- a seccomp filter refusing TIOCSTI and TIOCLINUX (compiled once with libseccomp through
  pyseccomp; bwrap sets PR_SET_NO_NEW_PRIVS before loading it);
- rlimits from the kernel's ``Limits`` (``setpriv`` then ``prlimit`` before bwrap, so no
  Python runs in the forked child), the sandbox's environment only, no host fd beyond stdio
  (bwrap closes the fds it reads its arguments, seccomp program, root and info from).

What the host cannot do (no bwrap, user namespaces off, a mount without ``allow_other`` while
the jail's host id differs from the daemon's) is found by ``probe`` and reported as one line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import termios
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import trio

from kernel.errors import KernelError
from kernel.native import (
    ELF_MAGIC,
    STDIO_NULL,
    STDIO_SAME_AS_STDOUT,
    NativeChild,
    NativeSpec,
    NativeStreams,
    NativeUsage,
)
from kernel.pathvfs import PathVFS
from kernel.process import status_exited, status_signaled
from vfsfuse.daemon import jail_cgroup, jail_net
from vfsfuse.daemon.jail_proxy import JailProxy

log = logging.getLogger("vfsfuse.daemon.jail")

NOBODY = 65534
# Mount points bwrap mounts on; they must be the kernel's own mounts (not user files).
MOUNT_POINTS = ("/dev", "/proc")
TIOCLINUX = 0x541C


@dataclass
class JailConfig:
    """Where the jail's root is and which host ids it runs as."""

    mountpoint: str
    host_uid: int | None = None       # None: nobody (65534) when the daemon is root, else our uid
    host_gid: int | None = None
    bwrap: str = "bwrap"
    prlimit: str = "prlimit"
    setpriv: str = "setpriv"

    def ids(self) -> tuple[int, int]:
        if os.geteuid() != 0:
            return os.geteuid(), os.getegid()  # an unprivileged daemon cannot switch ids
        return (NOBODY if self.host_uid is None else self.host_uid,
                NOBODY if self.host_gid is None else self.host_gid)


class JailUnavailable(KernelError):
    """The host cannot run the jail; the message is the one line the user sees."""


def _mount_options(mountpoint: str) -> set[str] | None:
    """The FUSE mount's options from mountinfo (super options included), None if not mounted."""
    target = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        parts = line.split()
        if len(parts) > 4 and parts[4] == target:
            sep = parts.index("-")
            found = set(parts[5].split(",")) | set(parts[sep + 3].split(","))
    return found


def probe(config: JailConfig) -> str | None:
    """Why real programs cannot run on this host, as one line; None when they can."""
    if shutil.which(config.bwrap) is None:
        return "real programs need bubblewrap (bwrap), which is not installed (apt-get install bubblewrap)"
    if shutil.which(config.prlimit) is None:
        return "real programs need prlimit (util-linux), which is not installed"
    if os.geteuid() == 0 and shutil.which(config.setpriv) is None:
        return "real programs need setpriv (util-linux), which is not installed"
    opts = _mount_options(config.mountpoint)
    if opts is None:
        return f"real programs need the store mounted; {config.mountpoint} is not a mount"
    uid, gid = config.ids()
    if uid != os.geteuid() and "allow_other" not in opts:
        return (f"real programs run as the unprivileged host user {uid}: mount with --allow-other "
                "so that user may use the mount")
    try:
        p = subprocess.run([config.bwrap, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"],
                           user=uid, group=gid, extra_groups=[] if os.geteuid() == 0 else None,
                           capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.SubprocessError) as err:
        return f"real programs cannot run here: bwrap failed to start ({err})"
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        why = why.removeprefix("bwrap: ")
        return f"real programs cannot run here: this host refuses bubblewrap's namespaces ({why})"
    return None


_SECCOMP: bytes | None = None


def seccomp_program() -> bytes:
    """The BPF program bwrap loads: ioctl TIOCSTI and TIOCLINUX fail with EPERM (the request
    number compared under a 32-bit mask, as the kernel does), everything else is allowed."""
    global _SECCOMP
    if _SECCOMP is None:
        import tempfile

        import pyseccomp as sc  # type: ignore[import-untyped]

        filt = sc.SyscallFilter(defaction=sc.ALLOW)
        for request in (termios.TIOCSTI, TIOCLINUX):
            filt.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        with tempfile.TemporaryFile() as f:
            filt.export_bpf(f)
            f.seek(0)
            _SECCOMP = f.read()
    return _SECCOMP


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def rlimit_args(spec: NativeSpec) -> list[str]:
    """prlimit options for the kernel's Limits (soft = hard: the jail cannot raise them)."""
    lim = spec.limits
    out = [f"--nproc={lim.max_processes}", f"--nofile={lim.max_fds}"]
    cpu = getattr(lim, "rlimit_cpu", None)
    if cpu is not None:
        out.append(f"--cpu={max(1, int(cpu))}")
    fsize = getattr(lim, "rlimit_fsize", None)
    if fsize is not None:
        out.append(f"--fsize={int(fsize)}")
    return out


def bwrap_args(spec: NativeSpec, root_fd: int, seccomp_fd: int, info_fd: int,
               bin_fd: int | None = None) -> list[str]:
    """bwrap's options (read from a memfd, so the jail's pid 1 shows none of them); *bin_fd*:
    the tree's /usr/bin, shown on /bin (see ``JailLauncher._system_bin``)."""
    args = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--uid", str(spec.uid), "--gid", str(spec.gid),
            "--hostname", spec.hostname,
            "--bind-fd", str(root_fd), "/"]
    if bin_fd is not None:
        args += ["--bind-fd", str(bin_fd), "/bin"]
    args += ["--dev", "/dev", "--tmpfs", "/dev/shm",
            "--proc", "/proc",
            "--seccomp", str(seccomp_fd),
            "--info-fd", str(info_fd),
            "--chdir", spec.cwd,
            "--clearenv"]
    for key, value in jail_net.jail_env(spec).items():
        args += ["--setenv", key, value]
    return args


@dataclass(eq=False)
class Child:
    """The bwrap process, started from the event loop's own thread.

    Not ``trio.lowlevel.open_process``: that forks in a worker thread, and bwrap's
    ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that forked it ends, so a
    jail died with SIGKILL whenever trio retired that idle worker.  The main thread lives as
    long as the daemon; waiting is on a pidfd."""

    popen: subprocess.Popen[bytes]
    pidfd: int

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    async def wait(self) -> int:
        while self.popen.poll() is None:
            await trio.lowlevel.wait_readable(self.pidfd)
        return self.popen.returncode

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


@dataclass(eq=False)
class JailProcess:
    """One running jail (the kernel's ``NativeProcess``)."""

    process: Child
    streams: NativeStreams
    init_pid: int | None = None        # host pid of bwrap's init in the jail's pid namespace
    pidfd: int | None = None           # the real program (bwrap's init's child)
    signalled: set[int] = field(default_factory=set)
    terminal: trio.lowlevel.FdStream | None = None   # the pty master (``NativeSpec.terminal``)
    proxy: JailProxy | None = None     # mode allow: served while the jail runs (``wait``)
    _kid_fds: dict[int, int] = field(default_factory=dict)   # pidfds of the descendants
    _closed: bool = False

    def send_signal(self, sig: int) -> None:
        self.signalled.add(sig)
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
                return
            except ProcessLookupError:
                return
            except OSError as err:
                log.debug("pidfd_send_signal: %s", err)
        if sig in (signal.SIGKILL, signal.SIGTERM) and self.process.returncode is None:
            self.process.send_signal(sig)

    async def wait(self) -> int:
        if self.proxy is not None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.proxy.serve)
                rc = await self.process.wait()
                nursery.cancel_scope.cancel()
        else:
            rc = await self.process.wait()
        if rc < 0:
            return status_signaled(-rc)
        # bwrap's init reports a death by signal N as 128 + N, as a shell does
        if 128 < rc < 128 + 65:
            return status_signaled(rc - 128)
        return status_exited(rc)

    def resize(self, rows: int, cols: int) -> None:
        if self.terminal is not None:
            try:
                _set_winsize(self.terminal.fileno(), (rows, cols))
            except OSError as err:
                log.debug("resize: %s", err)

    def children(self) -> list[NativeChild]:
        """The command's descendants, breadth first, from the host's /proc (host pids stay
        keys: the kernel shows its own pids)."""
        if self.process.returncode is not None or self.init_pid is None:
            return []
        top = _first_child(self.init_pid)
        if top is None:
            return []
        out: list[NativeChild] = []
        queue: list[tuple[int, int | None]] = [(k, None) for k in _children_of(top)]
        while queue and len(out) < 4096:
            pid, parent = queue.pop(0)
            usage = _usage_of(pid)
            if usage is None:
                continue
            out.append(NativeChild(pid, parent, _argv_of(pid), usage))
            queue += [(k, pid) for k in _children_of(pid)]
        live = {c.key for c in out}
        for key in [k for k in self._kid_fds if k not in live]:
            os.close(self._kid_fds.pop(key))
        for key in live - set(self._kid_fds):
            try:
                self._kid_fds[key] = os.pidfd_open(key)
            except OSError:
                pass
        return out

    def signal_child(self, key: int, sig: int) -> None:
        fd = self._kid_fds.get(key)
        if fd is None:
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass

    def usage(self) -> NativeUsage | None:
        if self.process.returncode is not None or self.pidfd is None or self.init_pid is None:
            return None
        pid = _first_child(self.init_pid)
        return _usage_of(pid) if pid is not None else None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.process.returncode is None:
            try:
                self.process.send_signal(signal.SIGKILL)  # --die-with-parent takes the jail down
            except ProcessLookupError:
                pass
            with trio.move_on_after(5):
                await self.process.wait()
        for s in (self.streams.stdin, self.streams.stdout, self.streams.stderr, *self.streams.extra):
            if s is not None:
                await s.aclose()
        self.process.close()
        if self.proxy is not None:
            self.proxy.close()
        for fd in self._kid_fds.values():
            os.close(fd)
        self._kid_fds.clear()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _set_winsize(fd: int, size: tuple[int, int]) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(k) for k in f.read().split()]
    except OSError:
        return []


def _first_child(pid: int) -> int | None:
    kids = _children_of(pid)
    return kids[0] if kids else None


def _usage_of(pid: int) -> NativeUsage | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return NativeUsage(state=fields[0], rss_bytes=int(fields[21]) * os.sysconf("SC_PAGE_SIZE"))


def _argv_of(pid: int) -> list[str]:
    """Its command line (paths in it are the jail's own, since the jail's root is the mount)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[:-1]]


def settle_invalidations(invalidator: Any) -> Callable[[], Awaitable[None]]:
    """A wait until the host's caches have dropped what sandbox processes changed around FUSE.

    The real program reads through the mount, so a file the builtin shell wrote a moment ago
    must not be seen with the host's cached size (``echo >> f; git status``).  The invalidator
    (``fuse_adapter.HostCacheInvalidator``) batches for ``interval`` seconds and has no barrier
    of its own yet, so this waits while it holds pending work, then one more batch time for the
    one being delivered."""
    async def settle() -> None:
        interval = float(getattr(invalidator, "interval", 0.05))
        waited = False
        for _ in range(200):
            if not (getattr(invalidator, "_entries", None) or getattr(invalidator, "_inodes", None)):
                break
            waited = True
            await trio.sleep(interval / 2)
        if waited:
            await trio.sleep(interval)

    return settle


class JailLauncher:
    """The daemon's ``NativeLauncher``: checks the host once, then starts one bwrap per exec."""

    def __init__(self, vfs: PathVFS, config: JailConfig,
                 settle: Callable[[], Awaitable[None]] | None = None) -> None:
        self.vfs = vfs
        self.config = config
        self.settle = settle
        self._refusal: str | None = None
        self._probed = False

    async def _check_host(self) -> None:
        if not self._probed:
            self._refusal = await trio.to_thread.run_sync(probe, self.config)
            self._probed = True
            if self._refusal:
                log.info("jail unavailable: %s", self._refusal)
            else:
                log.info("jail: %s", jail_cgroup.limits_note())
        if self._refusal:
            raise JailUnavailable("ENOSYS", self._refusal)

    async def _check_mount_points(self) -> None:
        """/dev and /proc must be the kernel's directories, never something a user made."""
        for path in MOUNT_POINTS:
            try:
                attr = await self.vfs.lstat(path)
            except KernelError:
                attr = None
            if attr is None or not attr.is_directory:
                raise KernelError("EPERM", f"refusing to start a real program: {path} in the sandbox "
                                  "is not the kernel's directory")

    async def _system_bin(self) -> bool:
        """Whether /usr/bin holds a real system (its ``sh`` is an ELF file, as after importing a
        root filesystem).  Then real programs see it on /bin too, as on merged-/usr Debian:
        the sandbox's /bin holds the kernel's command stubs, which only the kernel can run (a
        real ``/bin/sh`` or a PATH lookup of ``cat`` by a real program would hit one)."""
        try:
            for path in ("/bin", "/usr", "/usr/bin"):
                if not (await self.vfs.lstat(path)).is_directory:
                    return False
            return await self.vfs.pread("/usr/bin/sh", 0, 4) == ELF_MAGIC
        except KernelError:
            return False

    async def launch(self, spec: NativeSpec) -> JailProcess:
        await self._check_host()
        await self._check_mount_points()
        if self.settle is not None:
            await self.settle()
        # opened in a thread: a lookup on our own mount is a request this thread must serve
        bin_fd = await trio.to_thread.run_sync(_open_below, self.config.mountpoint, ("usr", "bin")) \
            if await self._system_bin() else None
        cfg = self.config
        uid, gid = cfg.ids()
        mine: list[int] = [] if bin_fd is None else [bin_fd]   # fds we close once bwrap has them
        keep: list[int] = []        # our ends of the stdio pipes
        child_stdio: list[int] = []
        streams = NativeStreams()
        try:
            net = jail_net.JailNet.plan(spec)
            net_fds = net.child_fds()
            mine += net_fds
            keep += net.parent_fds()
            root_fd = os.open(cfg.mountpoint, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            mine.append(root_fd)
            seccomp_fd = _memfd("jail-seccomp", seccomp_program())
            mine.append(seccomp_fd)
            info_r, info_w = os.pipe2(os.O_CLOEXEC)
            keep.append(info_r)
            mine.append(info_w)
            args_fd = _memfd("jail-args", b"\0".join(
                a.encode() for a in net.options + bwrap_args(spec, root_fd, seccomp_fd, info_w, bin_fd)) + b"\0")
            mine.append(args_fd)
            out_w: int | None = None
            if spec.terminal:
                master, slave = os.openpty()
                keep.append(master)
                mine.append(slave)
                _set_winsize(slave, spec.winsize or (24, 80))
                child_stdio = [slave, slave, slave]
                streams.stdout = trio.lowlevel.FdStream(master)
                streams.stdin = trio.lowlevel.FdStream(os.dup(master))
            for fd, plan in enumerate(spec.stdio if not spec.terminal else ()):
                if plan == STDIO_NULL:
                    n = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    mine.append(n)
                    child_stdio.append(n)
                elif plan == STDIO_SAME_AS_STDOUT and out_w is not None:
                    child_stdio.append(out_w)
                else:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    ours, theirs = (w, r) if fd == 0 else (r, w)
                    keep.append(ours)
                    mine.append(theirs)
                    child_stdio.append(theirs)
                    stream = trio.lowlevel.FdStream(ours)
                    if fd == 0:
                        streams.stdin = stream
                    elif fd == 1:
                        streams.stdout = stream
                        out_w = w
                    else:
                        streams.stderr = stream
            argv = [cfg.prlimit, *rlimit_args(spec), "--", cfg.bwrap, "--args", str(args_fd), "--",
                    spec.path, *spec.argv[1:]]
            if os.geteuid() == 0:
                # setpriv switches ids, not Popen(user=, group=): those make CPython fork instead
                # of vfork, and copying the daemon's page tables cost ~10 ms per start
                argv = [cfg.setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
            popen = subprocess.Popen(
                argv, stdin=child_stdio[0], stdout=child_stdio[1], stderr=child_stdio[2],
                pass_fds=(root_fd, seccomp_fd, info_w, args_fd, *net_fds, *([] if bin_fd is None else [bin_fd])),
                close_fds=True, env={}, start_new_session=True)
            process = Child(popen, os.pidfd_open(popen.pid))
        except OSError as err:
            for fd in mine + keep:
                _close(fd)
            raise KernelError.from_os_error(err) from None
        for fd in mine:
            _close(fd)
        info = trio.lowlevel.FdStream(info_r)
        jail = JailProcess(process, streams)
        if spec.terminal and isinstance(streams.stdout, trio.lowlevel.FdStream):
            jail.terminal = streams.stdout
        try:
            jail.init_pid = await _read_child_pid(info)
        finally:
            await info.aclose()
        try:
            jail.proxy = await net.setup(jail.init_pid, lambda: process.popen.poll() is None)
        except OSError as err:
            with trio.CancelScope(shield=True):
                await jail.aclose()  # bwrap still waits for us: it must not go on
            raise KernelError("EIO", f"cannot set up the real program's network ({err.strerror or err})") from None
        finally:
            net.close()
        if jail.init_pid is not None:
            jail.pidfd = await _open_command(jail.init_pid, process)
        return jail


async def _read_child_pid(info: trio.lowlevel.FdStream) -> int | None:
    """bwrap's --info-fd JSON ({"child-pid": N, ...}); None if bwrap failed before writing it."""
    buf = b""
    with trio.move_on_after(30):
        while True:
            data = await info.receive_some(4096)
            if not data:
                break
            buf += data
            try:
                return int(json.loads(buf)["child-pid"])
            except (ValueError, KeyError):
                continue
    return None


async def _open_command(init_pid: int, process: Child) -> int | None:
    """A pidfd of the command (the child of bwrap's init), waited for while bwrap sets up (on a
    loaded machine that takes seconds: its mounts are requests to this very daemon)."""
    delay = 0.002
    deadline = trio.current_time() + 60
    while trio.current_time() < deadline:
        pid = _first_child(init_pid)
        if pid is not None:
            try:
                return os.pidfd_open(pid)
            except OSError:
                return None
        if process.returncode is not None or process.popen.poll() is not None:
            return None
        await trio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return None


def _open_below(top: str, names: tuple[str, ...]) -> int | None:
    """An O_PATH fd of the directory *names* under *top*, one component at a time and never
    through a symlink (a user's ``usr -> /etc`` must not bind the host's /etc into the jail)."""
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(top, flags)
    except OSError as err:
        log.debug("no system /bin: %s", err)
        return None
    try:
        for name in names:
            nxt = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as err:
        os.close(fd)
        log.debug("no system /bin: %s", err)
        return None
    return fd


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
