"""The mount daemon: one process serving one store at one mount point.

Life of a mount
---------------
1. ``mount()`` (daemon mode) forks twice; the grandchild is the daemon and the
   command waits on a *ready pipe*: ``OK`` once the mount answers requests, or
   ``ERR <CODE> <message>`` (or EOF if the daemon died), so ``vfsfuse mount``
   returns only when the mount is usable or fails with the reason.
2. The daemon takes the store lock (``STORE/run/lock``: ``flock`` + our pid).  The
   kernel drops a ``flock`` when its holder dies, so a lock left by a daemon
   killed with ``kill -9`` is simply taken over.
3. It opens the store, boots the sandbox kernel when that layer exists (so the
   mount shows ``/dev`` and ``/proc``), mounts FUSE and serves until the kernel
   unmounts it (``vfsfuse umount`` / ``fusermount3 -u``) or a signal arrives.
4. Shutdown: drop the host kernel's references, flush every dirty chunk, commit,
   close the store, record ``clean`` in the runtime record, exit.

Runtime records (``RUNTIME_DIR/<hash of mount point>.json``) let ``vfsfuse
umount MOUNTPOINT`` find the daemon of a mount point (the kernel's mount table
cannot tell us a FUSE server's pid) and learn how its shutdown ended.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Callable

from kernel.errors import KernelError, unwrap_group

if TYPE_CHECKING:
    from kernel.kernel import Kernel
    from vfsfuse.daemon.fuse_adapter import FuseAdapter, HostCacheInvalidator
    from vfsfuse.storage.store import Store
from vfsfuse.daemon.config import (
    LOG_NAME,
    STATE_CLEAN,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_STOPPING,
    DaemonRecord,
    MountConfig,
    record_path,
    store_run_dir,
)
from vfsfuse.daemon.hostmount import (
    check_mountpoint,
    fusermount_unmount,
    is_dead_mount,
    is_vfsfuse_mount,
    pid_alive,
)
from vfsfuse.daemon.lock import StoreLock

log = logging.getLogger("vfsfuse.daemon")

def fuse_options(config: MountConfig) -> set[str]:
    opts = {"default_permissions", "nodev", "nosuid", "fsname=vfsfuse", "subtype=vfsfuse"}
    if config.allow_other:
        opts.add("allow_other")
    if config.read_only:
        opts.add("ro")
    return opts


def check_store_config(cfg: MountConfig) -> None:
    """Refuse a store that cannot be mounted, before anything is written (the CLI calls this
    before it starts the daemon, the daemon again in ``prepare``): a missing, empty, damaged,
    foreign or newer meta.db (``check_store``), and a store other users can read unless
    ``allow_shared_store``."""
    from vfsfuse.storage.store import check_private, check_store

    if cfg.store is None:
        return
    check_store(cfg.store)
    if not cfg.allow_shared_store:
        check_private(cfg.store)


class Daemon:
    """Serves one mount; ``run`` blocks until the mount is gone and the store is closed."""

    def __init__(self, config: MountConfig, on_ready: Callable[[], None] | None = None) -> None:
        self.config = config
        self.on_ready = on_ready
        self.record = DaemonRecord(os.getpid(), config.mountpoint, config.store)
        self.lock: StoreLock | None = None
        self.store: Store | None = None
        self.adapter: FuseAdapter | None = None
        self.kernel: Kernel | None = None
        self.invalidator: HostCacheInvalidator | None = None
        self._mounted = False
        self._stopping = False
        self._record_owned = False  # never overwrite the record of another daemon
        self._recycling = False  # glibc keeps big buffers (malloc_tuning): trim them when quiet

    # -- startup, in order; every failure is a KernelError with a clear message --

    def prepare(self) -> None:
        """Everything that can fail before FUSE is mounted."""
        cfg = self.config
        if cfg.store is not None:
            check_store_config(cfg)
            run_dir = store_run_dir(cfg.store)
            os.makedirs(run_dir, mode=0o700, exist_ok=True)
            self.lock = StoreLock(run_dir)
            self.lock.acquire(cfg.mountpoint)
            prev = self.lock.previous
            if prev and prev[0] != os.getpid():
                log.warning("took over the stale lock of dead daemon pid %d", prev[0])
                if prev[1] == cfg.mountpoint and is_vfsfuse_mount(cfg.mountpoint) and is_dead_mount(cfg.mountpoint):
                    ok, msg = fusermount_unmount(cfg.mountpoint, lazy=True)
                    log.warning("detached the dead mount left at %s: %s", cfg.mountpoint, "ok" if ok else msg)
        check_mountpoint(cfg.mountpoint)
        self.record.save()
        self._record_owned = True

    def _open_store(self) -> Store:
        from vfsfuse.storage.store import memory_store, open_store

        cfg = self.config
        if cfg.memory:
            return memory_store(cache_bytes=cfg.cache_bytes, capacity=cfg.memory_bytes)
        assert cfg.store is not None  # MountConfig: a store unless memory
        return open_store(cfg.store, cache_bytes=cfg.cache_bytes, direct_io=cfg.direct_io,
                          drop_behind=cfg.drop_behind)

    def run(self) -> None:
        import trio

        from vfsfuse.daemon.tuning.malloc_tuning import recycle_big_buffers

        self._recycling = recycle_big_buffers()
        try:
            self.prepare()
            trio.run(self._main)
        except BaseException as exc:
            leaf = _leaf(exc)
            self._set_state(STATE_FAILED, _describe(leaf))
            if leaf is not exc and isinstance(leaf, KernelError):
                raise leaf from None
            raise
        finally:
            if self.lock is not None:
                self.lock.release()

    async def _main(self) -> None:
        import pyfuse3
        import trio

        from vfsfuse.daemon.fuse_adapter import FuseAdapter, count_requests
        from vfsfuse.daemon.tuning.request_polling import fuse_device_fds

        cfg = self.config
        store = self.store = self._open_store()
        vfs = store.vfs
        vfs.update_atime = not cfg.read_only  # reading a read-only mount must not write atimes
        try:
            async with trio.open_nursery() as nursery:
                async with vfs.running():
                    fs = await self._build_fs(vfs, nursery)
                    adapter = self.adapter = FuseAdapter(fs, entry_timeout=cfg.entry_timeout,
                                                         attr_timeout=cfg.attr_timeout, read_only=cfg.read_only,
                                                         writeback_cache=cfg.writeback_cache, root=vfs)
                    stats_path = os.environ.get("VFSFUSE_FUSE_STATS")  # debugging: requests per op
                    op_table = count_requests(adapter) if stats_path else None
                    fds_before = fuse_device_fds()
                    try:
                        pyfuse3.init(adapter, cfg.mountpoint, fuse_options(cfg))
                    except RuntimeError as err:
                        raise KernelError("EIO", f"FUSE mount on {cfg.mountpoint} failed: {err}") from None
                    self._mounted = True
                    cpu_wake = self._cpu_wake_latency()
                    poller = self._request_poller(pyfuse3, fuse_device_fds() - fds_before, cpu_wake)
                    if poller is not None and cpu_wake is not None:
                        nursery.start_soon(cpu_wake.run)
                    if self.invalidator is not None:
                        self.invalidator.active = True
                        nursery.start_soon(self.invalidator.run)
                    if self._recycling:
                        from vfsfuse.daemon.tuning.malloc_tuning import KeptMemoryTrimmer

                        nursery.start_soon(KeptMemoryTrimmer().run)
                    try:
                        nursery.start_soon(self._signals)
                        if self.kernel is not None:
                            await nursery.start(self._control_socket)
                        if op_table is not None and stats_path is not None:
                            nursery.start_soon(self._dump_on_usr1, stats_path, op_table, poller)
                        nursery.start_soon(self._after_mount)
                        async with trio.open_nursery() as fuse_nursery:
                            fuse_nursery.start_soon(self._serve_fuse)
                    finally:
                        with trio.CancelScope(shield=True):
                            self._stopping = True
                            self._set_state(STATE_STOPPING)
                            if self.invalidator is not None:
                                self.invalidator.active = False
                            if poller is not None:
                                poller.uninstall()
                            pyfuse3.close(unmount=True)
                            self._mounted = False
                            await adapter.forget_all()
                            log.info("largest write request: %d bytes", adapter.max_write_seen)
                            if op_table is not None and stats_path is not None:
                                self._dump_op_table(stats_path, op_table, poller)
                            if self.kernel is not None:
                                await self.kernel.shutdown()
                    nursery.cancel_scope.cancel()
                # vfs.running() has flushed every dirty chunk and committed.
        finally:
            store.close()
        self._set_state(STATE_CLEAN)

    def _cpu_wake_latency(self):
        """Fast CPU wake-ups while requests flow (see cpu_wake), unless turned off."""
        from vfsfuse.daemon.tuning.cpu_wake import CpuWakeLatency

        return CpuWakeLatency() if self.config.fast_wakeups else None

    def _request_poller(self, module, new_fds: set[int], cpu_wake=None):
        """Poll the FUSE device briefly between requests and tell ``cpu_wake`` of each request
        (single worker only; see request_polling)."""
        from vfsfuse.daemon.tuning.request_polling import RequestPoller

        spin = max(0, self.config.poll_us)
        if (spin == 0 and cpu_wake is None) or self.config.workers != 1 or len(new_fds) != 1:
            return None
        poller = RequestPoller(module, new_fds.pop(), spin,
                               on_request=cpu_wake.note_request if cpu_wake is not None else None)
        poller.install()
        return poller

    async def _serve_fuse(self) -> None:
        """The FUSE main loop, in a task of its own: its workers inherit FROM_FUSE."""
        import pyfuse3

        from vfsfuse.daemon.fuse_adapter import FROM_FUSE

        FROM_FUSE.set(True)
        await pyfuse3.main(min_tasks=1, max_tasks=max(1, self.config.workers))

    async def _build_fs(self, vfs, nursery):
        """The filesystem to serve: the sandbox kernel's mount table, or the bare store."""
        if not self.config.use_kernel:
            return vfs
        from kernel.limits import Limits, with_values
        from kernel.net.policy import NetPolicy
        from vfsfuse.daemon.sandbox import boot_sandbox

        sandbox = await boot_sandbox(vfs, nursery, read_only=self.config.read_only,
                                     shm_bytes=self.config.shm_bytes, mountpoint=self.config.mountpoint,
                                     net=NetPolicy.parse(self.config.net_mode, self.config.net_rules),
                                     limits=with_values(Limits(), dict(self.config.limits)))
        self.kernel, self.invalidator = sandbox.kernel, sandbox.invalidator
        return sandbox.fuse_table

    async def _control_socket(self, task_status=None) -> None:
        """Serve shells and scripts to ``vfsfuse shell/exec`` and the API (see control.py)."""
        import trio

        from vfsfuse.daemon.control import ControlServer, socket_path

        cfg = self.config
        assert self.kernel is not None  # started only once the kernel runs
        server = ControlServer(self.kernel, socket_path(cfg.store, cfg.mountpoint), os.getuid())
        await server.serve(task_status=task_status or trio.TASK_STATUS_IGNORED)

    async def _after_mount(self) -> None:
        """Confirm the mount answers, tune read-ahead, then report ready."""
        import trio

        cfg = self.config
        st = await trio.to_thread.run_sync(os.stat, cfg.mountpoint)
        if cfg.read_ahead_kb:
            bdi = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
            try:
                with open(bdi, "w") as f:
                    f.write(str(cfg.read_ahead_kb))
            except OSError as err:
                log.info("could not set %s: %s", bdi, err)
        _tune_gc()
        self._set_state(STATE_RUNNING)
        log.info("serving %s on %s (pid %d)", cfg.store or "memory store", cfg.mountpoint, os.getpid())
        _sd_notify(b"READY=1")
        if self.on_ready is not None:
            self.on_ready()

    async def _signals(self) -> None:
        import pyfuse3
        import trio

        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:  # keep receiving: a second signal must not kill a flush
                log.warning("signal %d: unmounting %s", signum, self.config.mountpoint)
                if not self._stopping:
                    self._stopping = True
                    pyfuse3.terminate()

    async def _dump_on_usr1(self, path: str, table: dict, poller) -> None:
        """Debugging aid (VFSFUSE_FUSE_STATS): SIGUSR1 writes the request table and starts a new one,
        so one mount can be measured phase by phase."""
        import trio

        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async for _ in signals:
                self._dump_op_table(path, table, poller)
                table.clear()

    def _dump_op_table(self, path: str, table: dict, poller) -> None:
        record = {"ops": table, "max_write": self.adapter.max_write_seen if self.adapter is not None else 0,
                  "polled_requests": poller.fast_hits if poller is not None else 0}
        try:
            with open(path, "w") as f:
                json.dump(record, f, indent=1, sort_keys=True)
        except OSError as err:
            log.error("cannot write %s: %s", path, err)

    def _set_state(self, state: str, error: str = "") -> None:
        if not self._record_owned:
            return
        self.record.state = state
        self.record.error = error
        try:
            self.record.save()
        except OSError as err:
            log.error("cannot write runtime record: %s", err)


def half_of_memory() -> int:
    """tmpfs's default size: half of the machine's physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def _tune_gc() -> None:
    """Every FUSE request allocates a few dozen short-lived objects; with the default
    thresholds the cyclic collector runs every few hundred requests and walks every
    long-lived object (the kernel, caches) each time.  Freeze what boot allocated and
    collect young objects less often: the garbage of a request is freed by refcount."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


_leaf = unwrap_group  # the KernelError (or first error) inside trio's exception groups


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KernelError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "EINTR: interrupted"
    return f"EIO: {type(exc).__name__}: {exc}"


def _sd_notify(msg: bytes) -> None:
    """Tell systemd (Type=notify) that we are ready; a no-op elsewhere."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(msg, addr)
    except OSError:
        pass


def setup_logging(level: str, path: str | None = None) -> None:
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))


# --------------------------------------------------------------- entry points

def serve_foreground(config: MountConfig, on_ready: Callable[[], None] | None = None) -> None:
    """Run the daemon in this process until unmounted (``--foreground``)."""
    Daemon(config, on_ready).run()


def spawn(config: MountConfig, timeout: float | None = None) -> int:
    """Start a background daemon; return its pid once the mount is ready.

    Raises KernelError with the daemon's own reason when it could not start.
    """
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _daemon_child(config, write_fd)
    os.close(write_fd)
    try:
        os.waitpid(child, 0)  # the intermediate child exits at once
        buf = b""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in buf:
            if deadline is not None:
                import select

                left = deadline - time.monotonic()
                if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                    raise KernelError("ETIMEDOUT", "the daemon did not become ready in time")
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            buf += chunk
    finally:
        os.close(read_fd)
    line = buf.decode(errors="replace").strip()
    if line.startswith("OK"):
        return int(line.split()[1])
    if line.startswith("ERR "):
        code, _, message = line[4:].partition(" ")
        raise KernelError(code if hasattr(errno, code) else "EIO", message)
    raise KernelError("EIO", "the daemon exited during startup"
                      + (f"; see {config.store}/run/{LOG_NAME}" if config.store else ""))


def _daemon_child(config: MountConfig, ready_fd: int) -> None:  # pragma: no cover - child process
    """Become the daemon (second fork, new session, stdio detached) and run."""
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")
        os.umask(0o022)
        log_path = _log_path(config)
        null = os.open(os.devnull, os.O_RDWR)
        out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if log_path else null
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        setup_logging(config.log_level)
        os.set_inheritable(ready_fd, False)

        pipe = [ready_fd]  # emptied once used: the fd number may be reused afterwards

        def ready() -> None:
            fd = pipe.pop()
            os.write(fd, f"OK {os.getpid()}\n".encode())
            os.close(fd)

        daemon = Daemon(config, ready)
        daemon.record.log = log_path or ""
        try:
            daemon.run()
            code = 0
        except KernelError as err:
            log.error("mount failed: %s", err)
            if pipe:
                _report(pipe[0], err.code, err.message)
        except BaseException as exc:
            log.exception("daemon crashed")
            leaf = _leaf(exc)
            if pipe:
                _report(pipe[0], "EIO", f"{type(leaf).__name__}: {leaf}")
    finally:
        os._exit(code)


def _report(fd: int, code: str, message: str) -> None:
    try:
        os.write(fd, f"ERR {code} {message}\n".encode())
    except OSError:
        pass  # already reported ready, or the parent is gone


def _log_path(config: MountConfig) -> str | None:
    if config.store:
        try:
            run = store_run_dir(config.store)
            if os.path.isdir(run):
                return os.path.join(run, LOG_NAME)
        except OSError:
            return None
    return os.path.splitext(record_path(config.mountpoint))[0] + ".log"


# ---------------------------------------------------------------------- umount

def _flush_before_unmount(mnt: str, timeout: float, warn: Callable[[str], None]) -> None:
    """Push the host's dirty pages to the daemon, then have it flush and commit everything.

    Done while still mounted so that a failure (a full disk) leaves the mount up, with
    nothing lost, and the user can free space and try again.
    """
    import threading

    result: list[BaseException | None] = []

    def work() -> None:
        try:
            fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
            try:
                try:
                    _syncfs(fd)
                except OSError as err:
                    # Linux reports a write-back error once more to the first syncfs after it,
                    # even when the writer's own fsync already got it; only a second failure
                    # is about data still waiting.
                    _syncfs(fd)
                    warn(f"{mnt} had a write-back error earlier "
                         f"({errno.errorcode.get(err.errno or 0, 'EIO')}): data a program wrote "
                         "and did not fsync may be lost")
            finally:
                os.close(fd)
            try:
                with open(os.path.join(mnt, ".vfs", "control"), "w") as f:
                    f.write("sync\n")
            except FileNotFoundError:  # no /.vfs (served without the kernel layer)
                pass
            except OSError as err:
                if err.errno != errno.EROFS:  # a read-only mount has nothing to flush
                    raise
            result.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result.append(exc)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        raise KernelError("ETIMEDOUT", f"the daemon did not finish flushing {mnt} within {timeout:.0f} s; "
                          "it stays mounted")
    exc = result[0]
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        raise KernelError(code, f"could not flush {mnt}: {exc.strerror}; it stays mounted, "
                          "nothing committed is lost (free space and retry)")
    if exc is not None:
        raise KernelError("EIO", f"could not flush {mnt}: {exc}")


def _syncfs(fd: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def unmount(mountpoint: str, *, timeout: float = 300.0,
            warn: Callable[[str], None] = log.warning) -> DaemonRecord:
    """Unmount, wait for the daemon to flush, commit and exit; raise if that did not happen cleanly.
    *warn* receives what the user should hear about although the unmount succeeds."""
    mnt = os.path.abspath(mountpoint)
    rec = DaemonRecord.load(mnt)
    mounted = is_vfsfuse_mount(mnt)
    if rec is None or rec.state in (STATE_CLEAN, STATE_FAILED) and not mounted:
        if not mounted:
            raise KernelError("EINVAL", f"{mnt} is not a vfsfuse mount")
        ok, msg = fusermount_unmount(mnt)
        raise KernelError("ESRCH", f"no daemon is known for {mnt}; "
                          + ("detached the mount" if ok else f"could not detach it: {msg}"))
    if not pid_alive(rec.pid):
        if mounted:
            ok, msg = fusermount_unmount(mnt)
            if not ok:
                ok, msg = fusermount_unmount(mnt, lazy=True)
            detached = "detached the dead mount" if ok else f"could not detach the mount: {msg}"
        else:
            detached = "nothing was mounted"
        if rec.state == STATE_CLEAN:
            return rec
        raise KernelError("ESRCH", f"the daemon (pid {rec.pid}) was not running; {detached}. "
                          "Changes it had not committed are lost; committed data is intact")
    if mounted:
        _flush_before_unmount(mnt, timeout, warn)
        ok, msg = fusermount_unmount(mnt)
        if not ok:
            if "busy" in msg.lower():
                raise KernelError("EBUSY", f"{mnt} is busy: a process has a file open or its working directory there")
            if is_vfsfuse_mount(mnt):
                raise KernelError("EIO", f"could not unmount {mnt}: {msg}")
    else:  # already detached but the daemon still runs (e.g. lazy unmount): ask it to stop
        try:
            os.kill(rec.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    delay = 0.005
    while pid_alive(rec.pid):
        if time.monotonic() > deadline:
            raise KernelError("ETIMEDOUT", f"the daemon (pid {rec.pid}) is still flushing after {timeout:.0f} s; "
                              "it keeps running, check again with 'vfsfuse umount' later")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    final = DaemonRecord.load(mnt) or rec
    if final.state != STATE_CLEAN:
        why = final.error or f"it stopped in state '{final.state}'"
        where = f" (log: {final.log})" if final.log else ""
        raise KernelError("EIO", f"the daemon did not shut down cleanly: {why}{where}")
    return final
