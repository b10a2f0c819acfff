"""``ProcFS``: the /proc tree as a ``SyntheticFS``, generated from the process table.

Layout (Linux names and formats, see files.py)::

    self -> <caller pid>   mounts uptime loadavg meminfo version cpuinfo stat filesystems
    sys/kernel/{hostname,ostype,osrelease,version,pid_max}   net/{tcp,tcp6,udp,udp6,unix}
    tty/drivers
    <pid>/{cmdline,comm,environ,stat,statm,status,cwd,exe,root,fd/,fdinfo/,mounts,mountinfo}

Every file is generated when it is opened and the handle keeps that snapshot;
``st_size`` is 0 as on Linux, so the FUSE adapter must open them with ``direct_io``
(``wants_direct_io``).  ``/proc/<pid>`` entries are interned per pid (stable inode
numbers while the process lives) and answer ENOENT once it is reaped; their nodes
are dropped the next time ``/proc`` is listed or a lookup misses.

Ownership and access follow Linux: ``/proc/<pid>`` and its files belong to the
process's uid; ``environ`` is 0400; ``cwd``/``exe``/``root`` and ``fd/`` are readable
only by the same uid or root (EACCES otherwise).  ``self`` resolves to the caller's
pid; host callers (pid 0, from FUSE) get ENOENT when following it, unless
``ProcConfig.host_self_pid`` names a process for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import KernelError
from ..fs import Caller
from ..synthetic import DynamicDir, File, Node, StaticDir, Symlink, SyntheticFS
from . import files as F
from .files import ProcConfig

if TYPE_CHECKING:
    from ..process import Process

NetProvider = Callable[[str], bytes | None]


class ProcFS(SyntheticFS):
    """/proc for one kernel.

    * ``processes``: a ``ProcessTable`` (``get``, ``pids``, ``boot_time_ns``,
      ``monotonic_boot_ns``), read at open time.
    * ``mount_table``: for ``mounts``/``mountinfo``/``filesystems`` and fdinfo's mnt_id.
    * ``config``: hostname and the synthetic machine figures (mutable: the kernel may
      change ``config.hostname`` at run time).
    * ``net``: optional ``net(name) -> bytes | None`` giving the full content of
      ``net/<name>`` once a socket table exists; None keeps the header-only file.
    * ``ptys``: the ``PtyRegistry``, for the foreground group of a process's terminal
      (``tpgid`` in ``stat``, which ``ps`` shows as ``+``).
    """

    create_error = "ENOENT"
    getxattr_error = "ENOTSUP"

    def __init__(self, processes, mount_table=None, *, config: ProcConfig | None = None,
                 hostname: str | None = None, net: NetProvider | None = None, budget=None,
                 ptys=None) -> None:
        self.processes = processes
        self._ptys = ptys
        self.mount_table = mount_table
        self.config = config or ProcConfig()
        if hostname is not None:
            self.config.hostname = hostname
        self._net = net
        self._interned_pids: set[int] = set()
        cfg = self.config
        top = StaticDir()
        top.add(b"self", Symlink(self._self_target))
        top.add(b"mounts", File(lambda c: self._mounts(c.pid)))
        top.add(b"uptime", File(lambda c: F.uptime(self.processes, cfg)))
        top.add(b"loadavg", File(lambda c: F.loadavg(self._procs())))
        top.add(b"meminfo", File(lambda c: F.meminfo(self._procs(), cfg)))
        top.add(b"version", File(lambda c: F.version(cfg)))
        top.add(b"cpuinfo", File(lambda c: F.cpuinfo(cfg)))
        top.add(b"stat", File(lambda c: F.stat(self.processes, self._procs(), cfg)))
        top.add(b"filesystems", File(lambda c: F.filesystems(self._fstypes())))
        sys_ = top.add(b"sys", StaticDir())
        kern = sys_.add(b"kernel", StaticDir())
        kern.add(b"hostname", File(lambda c: (cfg.hostname + "\n").encode(), 0o644))
        kern.add(b"ostype", File(lambda c: (cfg.ostype + "\n").encode()))
        kern.add(b"osrelease", File(lambda c: (cfg.osrelease + "\n").encode()))
        kern.add(b"version", File(lambda c: (cfg.version + "\n").encode()))
        kern.add(b"pid_max", File(lambda c: f"{cfg.pid_max}\n".encode(), 0o644))
        top.add(b"tty", StaticDir()).add(b"drivers", File(lambda c: F.tty_drivers()))
        net_dir = top.add(b"net", StaticDir())
        for name, header in (("tcp", F.NET_TCP), ("tcp6", F.NET_TCP6), ("udp", F.NET_UDP),
                             ("udp6", F.NET_UDP6), ("unix", F.NET_UNIX)):
            net_dir.add(name.encode(), File(self._net_gen(name, header)))
        self._top = top
        root = DynamicDir(self._list_root, self._lookup_root)
        super().__init__(root, budget=budget)
        for node in top.children.values():
            node.parent = root
            self.register(node)
            if isinstance(node, StaticDir):
                self._register_tree(node)

    # ---- helpers -------------------------------------------------------------------------
    def _procs(self) -> list:
        get = self.processes.get
        return [p for p in (get(pid) for pid in self.processes.pids()) if p is not None]

    def _proc(self, pid: int) -> Process:
        p = self.processes.get(pid)
        if p is None:
            raise KernelError("ENOENT", f"no such process {pid}")
        return p

    def _tpgid(self, p) -> int:
        """The foreground group of *p*'s controlling terminal: -1 without a terminal,
        0 when the terminal has no foreground group (as Linux)."""
        if p.tty is None:
            return -1
        pty = self._ptys.get(int(p.tty.rsplit("/", 1)[1])) if self._ptys is not None else None
        return pty.fg_pgid if pty is not None else 0

    def _mounts(self, pid: int) -> bytes:
        if self.mount_table is None:
            return b"rootfs / rootfs rw 0 0\n"
        return self.mount_table.mounts_text(pid).encode(errors="surrogateescape")

    def _mountinfo(self, pid: int) -> bytes:
        if self.mount_table is None:
            return b"1 0 0:20 / / rw,relatime - rootfs rootfs rw\n"
        return self.mount_table.mountinfo_text(pid).encode(errors="surrogateescape")

    def _fstypes(self) -> list[str]:
        if self.mount_table is None:
            return []
        return [m.fstype for m in self.mount_table.mounts()]

    def _mnt_id(self, path: str | None) -> int:
        if self.mount_table is None:
            return 1
        if not path or not path.startswith("/"):
            return self.mount_table.mounts()[0].mnt_id
        return self.mount_table.mount_for_path(path).mnt_id

    def _net_gen(self, name: str, header: bytes) -> Callable[[Caller], bytes]:
        def gen(caller: Caller) -> bytes:
            if self._net is not None:
                data = self._net(name)
                if data is not None:
                    return data
            return header
        return gen

    def _self_target(self, caller: Caller) -> bytes:
        pid = caller.pid if caller.pid > 0 else self.config.host_self_pid
        if pid <= 0 or self.processes.get(pid) is None:
            raise KernelError("ENOENT", "the caller is not a sandbox process")
        return str(pid).encode()

    # ---- the root directory --------------------------------------------------------------
    def _has_self(self, caller: Caller) -> bool:
        """Whether ``self`` exists for *caller*: only sandbox processes (or the configured
        host pid) have one; host users browsing the mount see no ``self`` at all."""
        pid = caller.pid if caller.pid > 0 else self.config.host_self_pid
        return pid > 0 and self.processes.get(pid) is not None

    def _list_root(self, fs, caller):
        out = [(n, node) for n, node in self._top.children.items()
               if n != b"self" or self._has_self(caller)]
        pids = self.processes.pids()
        dead = self._interned_pids.difference(pids)
        if dead:  # forget reaped processes
            self._interned_pids -= dead
            self.drop_keys(lambda k: k[1] in dead)
        out += [(str(pid).encode(), self._pid_dir(pid)) for pid in pids]
        return out

    def _lookup_root(self, fs, name: bytes, caller):
        node = self._top.children.get(name)
        if node is not None:
            return None if name == b"self" and not self._has_self(caller) else node
        if not name.isdigit() or name[:1] == b"0":
            return None
        pid = int(name)
        p = self.processes.get(pid)
        if p is None:
            if pid in self._interned_pids:
                self._interned_pids.discard(pid)
                self.drop_keys(lambda k: k[1] == pid)
            return None
        node = self._pid_dir(pid)
        node.uid, node.gid = p.uid, p.gid
        return node

    # ---- /proc/<pid> ---------------------------------------------------------------------
    def _pid_dir(self, pid: int) -> StaticDir:
        self._interned_pids.add(pid)
        return self.intern(("pid", pid), lambda: self._make_pid_dir(pid), parent=self.root)

    def _make_pid_dir(self, pid: int) -> StaticDir:
        p = self._proc(pid)
        table = self.processes
        live = lambda: table.get(pid) is not None  # noqa: E731
        t = table.boot_time_ns + p.start_time_ns
        own = dict(uid=p.uid, gid=p.gid, time_ns=t, live=live)
        proc = lambda: self._proc(pid)  # noqa: E731
        cfg = self.config

        def private(fn: Callable[[Process], bytes]) -> Callable[[Caller], bytes]:
            """Only the owner (or root) may follow these links (Linux: ptrace access)."""
            def gen(caller: Caller) -> bytes:
                q = proc()
                if caller.uid != 0 and caller.uid != q.uid:
                    raise KernelError("EACCES", "permission denied")
                return fn(q)
            return gen

        d = StaticDir(**own)
        d.add(b"cmdline", File(lambda c: F.pid_cmdline(proc()), **own))
        d.add(b"comm", File(lambda c: F.pid_comm(proc()), **own))
        d.add(b"environ", File(private(F.pid_environ), 0o400, **own))
        d.add(b"stat", File(lambda c: F.pid_stat(q := proc(), self._tpgid(q)), **own))
        d.add(b"statm", File(lambda c: F.pid_statm(proc()), **own))
        d.add(b"status", File(lambda c: F.pid_status(proc(), cfg), **own))
        d.add(b"cwd", Symlink(private(lambda q: q.cwd.encode(errors="surrogateescape")), **own))
        d.add(b"exe", Symlink(private(lambda q: q.exe.encode(errors="surrogateescape")), **own))
        d.add(b"root", Symlink(private(lambda q: b"/"), **own))
        d.add(b"fd", DynamicDir(lambda fs, c: self._list_fds(pid, c, False),
                                lambda fs, n, c: self._lookup_fd(pid, n, c, False), 0o500, **own))
        d.add(b"fdinfo", DynamicDir(lambda fs, c: self._list_fds(pid, c, True),
                                    lambda fs, n, c: self._lookup_fd(pid, n, c, True), 0o500, **own))
        d.add(b"mounts", File(lambda c: self._mounts(pid), **own))
        d.add(b"mountinfo", File(lambda c: self._mountinfo(pid), **own))
        return d

    # ---- /proc/<pid>/fd and fdinfo -------------------------------------------------------
    def _fd_items(self, pid: int) -> list:
        return self._proc(pid).fds.items()

    def _ofd(self, pid: int, n: int):
        for fd, ofd in self._fd_items(pid):
            if fd == n:
                return ofd
        return None

    def _fd_node(self, pid: int, n: int, info: bool) -> Node:
        parent = self._pid_dir(pid).children[b"fdinfo" if info else b"fd"]
        assert isinstance(parent, DynamicDir)
        p = self._proc(pid)
        live = lambda: self.processes.get(pid) is not None and self._ofd(pid, n) is not None  # noqa: E731
        own = dict(uid=p.uid, gid=p.gid, live=live)

        def make() -> Node:
            if info:
                return File(lambda c: self._fdinfo(pid, n), 0o400, **own)

            def target(c: Caller) -> bytes:
                q = self._proc(pid)
                if c.uid != 0 and c.uid != q.uid:
                    raise KernelError("EACCES", "permission denied")
                ofd = self._ofd(pid, n)
                if ofd is None:
                    raise KernelError("ENOENT", f"fd {n} is not open")
                return F.fd_target(ofd).encode(errors="surrogateescape")
            return Symlink(target, 0o700, **own)

        node = self.intern(("fdinfo" if info else "fd", pid, n), make, parent=parent)
        if not info:
            ofd = self._ofd(pid, n)
            if ofd is not None:
                node.mode = F.fd_link_mode(ofd.flags)
        return node

    def _fdinfo(self, pid: int, n: int) -> bytes:
        p = self._proc(pid)
        ofd = self._ofd(pid, n)
        if ofd is None:
            raise KernelError("ENOENT", f"fd {n} is not open")
        return F.fdinfo(ofd, p.fds.get_cloexec(n), self._mnt_id(ofd.path))

    def _list_fds(self, pid: int, caller: Caller, info: bool):
        return [(str(fd).encode(), self._fd_node(pid, fd, info)) for fd, _ in self._fd_items(pid)]

    def _lookup_fd(self, pid: int, name: bytes, caller: Caller, info: bool):
        if not name.isdigit() or (len(name) > 1 and name[:1] == b"0"):
            return None
        n = int(name)
        if self._ofd(pid, n) is None:
            return None
        return self._fd_node(pid, n, info)
