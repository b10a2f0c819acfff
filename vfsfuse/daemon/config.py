"""What a mount is: its configuration, its runtime record (how ``vfsfuse umount`` finds the
daemon of a mount point), and where a store keeps its run files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field

LOCK_NAME = "lock"
LOG_NAME = "daemon.log"
STATE_STARTING = "starting"
STATE_RUNNING = "running"
STATE_STOPPING = "stopping"
STATE_CLEAN = "clean"
STATE_FAILED = "failed"




@dataclass
class MountConfig:
    """Everything ``vfsfuse mount`` decides; the daemon needs nothing else."""

    mountpoint: str
    store: str | None = None  # None with memory=True
    memory: bool = False
    allow_other: bool = False
    read_only: bool = False
    cache_bytes: int = 64 << 20
    log_level: str = "WARNING"
    # Every change reaches the host's caches (its own requests, or HostCacheInvalidator for
    # the sandbox's), so names and attributes can be cached long; /proc gets 0 regardless.
    entry_timeout: float = 10.0
    attr_timeout: float = 10.0
    read_ahead_kb: int = 4096  # with 4 chunk-sized read-aheads in the daemon: cold reads +15%
    writeback_cache: bool = True  # host page cache gathers small writes (see fuse_adapter.py)
    workers: int = 1  # concurrent FUSE requests; each extra worker costs a lock hand-off per request
    poll_us: int = 50  # poll /dev/fuse this long after a request before sleeping (0: never)
    fast_wakeups: bool = True  # PM QoS: idle CPUs poll while many small requests flow (cpu_wake.py)
    direct_io: bool = False  # write big blocks with O_DIRECT (around the host page cache)
    shm_bytes: int = 64 << 20  # size of the sandbox's /dev/shm (a memory filesystem)
    memory_bytes: int | None = None  # with memory=True: its size (None: unbounded)
    # Big blocks leave the host page cache once on disk: the host caches the file above us.
    drop_behind: bool = True
    use_kernel: bool = True  # serve the sandbox kernel's mount table when it exists
    allow_shared_store: bool = False  # mount a store other users can read (see check_private)
    net_mode: str = "none"  # the sandbox's network policy (kernel/net/policy.py): none, loopback, allow
    net_rules: tuple[str, ...] = ()  # with "allow": rules and publish:PORT
    limits: tuple[tuple[str, int | float | None], ...] = ()  # --limit: the kernel's (kernel/limits.py)

    def __post_init__(self) -> None:
        self.mountpoint = os.path.abspath(self.mountpoint)
        if self.store is not None:
            self.store = os.path.abspath(self.store)


@dataclass
class DaemonRecord:
    """What a running (or finished) daemon tells ``vfsfuse umount`` about itself."""

    pid: int
    mountpoint: str
    store: str | None
    state: str = STATE_STARTING
    error: str = ""
    log: str = ""
    started_ns: int = field(default_factory=time.time_ns)

    def save(self) -> None:
        path = record_path(self.mountpoint)
        tmp = f"{path}.{self.pid}.tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, path)

    @staticmethod
    def load(mountpoint: str) -> "DaemonRecord | None":
        try:
            with open(record_path(mountpoint)) as f:
                return DaemonRecord(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None


# ---------------------------------------------------------------------------- paths

def runtime_dir() -> str:
    """Where runtime records live: $VFSFUSE_RUNTIME_DIR, /run/vfsfuse (root), $XDG_RUNTIME_DIR, /tmp."""
    d = os.environ.get("VFSFUSE_RUNTIME_DIR")
    if not d:
        if os.geteuid() == 0:
            d = "/run/vfsfuse"
        elif os.environ.get("XDG_RUNTIME_DIR"):
            d = os.path.join(os.environ["XDG_RUNTIME_DIR"], "vfsfuse")
        else:
            d = f"/tmp/vfsfuse-{os.geteuid()}"
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def record_path(mountpoint: str) -> str:
    digest = hashlib.sha1(os.path.abspath(mountpoint).encode()).hexdigest()[:20]
    return os.path.join(runtime_dir(), digest + ".json")


def store_run_dir(store: str) -> str:
    from vfsfuse.storage.store import RUN_NAME

    return os.path.join(store, RUN_NAME)


# ------------------------------------------------------------------- mount table
