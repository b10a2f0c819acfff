"""``vfsfuse mount`` and ``vfsfuse umount``: thin click wrappers over ``vfsfuse.daemon.serve``.

Errors need no handling here: the ``vfsfuse`` group (cli/main.py) turns a KernelError,
even one inside a trio exception group, into one line and exit code 8."""

from __future__ import annotations

import click

from cli.app import EXIT_USAGE, CliError, vfsfuse
from cli.params import SIZE, limits_epilog, net_policy, parse_limits

MOUNT_EPILOG = """\b
Exit codes:
  0  the mount is ready (daemon mode) / was unmounted cleanly (--foreground)
  2  usage error
  8  the mount failed; one line on stderr says why, "vfsfuse: CODE: message":
       EBUSY    the store is already mounted (by the pid shown), or MOUNTPOINT
                already holds a vfsfuse mount
       ENOENT   STORE is not a store (or its meta.db is missing), or MOUNTPOINT
                does not exist
       EINVAL   STORE/meta.db is empty, not a vfsfuse database, or of a newer
                schema; EIO: it is truncated or damaged (nothing is written:
                restore it from a backup, or 'vfsfuse load' a dump)
       EPERM    other users can read STORE (fsck --repair makes it private;
                or --allow-shared-store)
       ENOTCONN MOUNTPOINT holds a dead mount (fusermount3 -u -z MOUNTPOINT)
       EIO      the daemon failed (see STORE/run/daemon.log)

\b
A lock file STORE/run/lock holds the daemon's pid; a lock left behind by a
daemon that died (kill -9, power cut) is taken over automatically, and the
store needs no fsck: everything committed (every fsync, and all changes older
than about a second) is intact.
"""

UMOUNT_EPILOG = """\b
Exit codes:
  0  flushed, committed and unmounted; the daemon has exited
  2  usage error
  8  failed; one line on stderr says why, "vfsfuse: CODE: message":
       EBUSY     a process still uses the mount (open file, working directory)
       ENOSPC    flushing failed (full disk): the mount stays up, nothing
                 committed is lost; free space and run umount again
       EINVAL    MOUNTPOINT is not a vfsfuse mount
       ESRCH     the daemon had died; the dead mount was detached (committed
                 data is intact, uncommitted changes of its last second are lost)
       ETIMEDOUT the daemon is still flushing after --timeout seconds
       EIO       the daemon did not shut down cleanly (see its log)
"""

@vfsfuse.command("mount", epilog=MOUNT_EPILOG + "\n\n" + limits_epilog(run_limits=False))
@click.argument("paths", nargs=-1, required=True, metavar="STORE MOUNTPOINT")
@click.option("--foreground", "-f", is_flag=True, help="Serve in this process (for systemd and tests).")
@click.option("--allow-other", is_flag=True,
              help="Let other users use the mount (needs root or user_allow_other in /etc/fuse.conf).")
@click.option("--read-only", "--ro", "read_only", is_flag=True, help="Mount read-only.")
@click.option("--cache-size", type=SIZE, default="64M", show_default=True,
              help="Write-back buffer for dirty chunks (the clean block cache gets up to half of it).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              default="warning", show_default=True, help="Daemon log level (log: STORE/run/daemon.log).")
@click.option("--memory", is_flag=True, help="Mount an ephemeral in-memory store: 'vfsfuse mount --memory MOUNTPOINT'.")
@click.option("--size", "memory_size", type=SIZE, default=None, metavar="SIZE",
              help="With --memory: how much it may hold; past it, writes give ENOSPC (like tmpfs's "
                   "size=). Default: half of the machine's memory, as tmpfs.")
@click.option("--shm-size", type=SIZE, default="64M", show_default=True,
              help="Size of the sandbox's /dev/shm, a memory filesystem: past it, writes there give "
                   "ENOSPC (as with docker run --shm-size).")
@click.option("--writeback-cache/--no-writeback-cache", default=True, show_default=True,
              help="Let the host kernel gather small writes in its page cache.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="FUSE requests served concurrently.")
@click.option("--poll-us", default=50, show_default=True, type=click.IntRange(0, 10_000), metavar="US",
              help="After a request, poll for the next one this many microseconds before sleeping "
                   "(saves a CPU wake-up per request; 0 turns it off; single worker only).")
@click.option("--fast-wakeups/--no-fast-wakeups", default=True, show_default=True,
              help="While many small requests flow (untar, git, rm -rf), ask Linux to keep idle CPUs "
                   "polling instead of halting (PM QoS, /dev/cpu_dma_latency), so each answer wakes "
                   "its caller quickly: about half the time of small-file work on virtual machines. "
                   "Lifted as soon as the pace drops; costs CPU power meanwhile; needs root; single "
                   "worker only.")
@click.option("--direct-io", is_flag=True,
              help="Write blocks of 1 MiB or more with O_DIRECT, around the host page cache (by default "
                   "they are written through it, then dropped from it once on disk).")
@click.option("--allow-shared-store", is_flag=True,
              help="Mount even if other users can read STORE (its directory, meta.db or blocks "
                   "have group/other permission bits); by default that is refused, as ssh "
                   "refuses a readable private key.")
@click.option("--net", "net_mode", type=click.Choice(["none", "loopback", "allow"]), default="none",
              show_default=True,
              help="The sandbox's network: none (nothing leaves the kernel, not even DNS), loopback "
                   "(sockets between sandbox processes only), allow (also the --allow rules). "
                   "Shown in MOUNTPOINT/.vfs/net; the sandbox cannot change it.")
@click.option("--allow", "net_rules", multiple=True, metavar="RULE",
              help="With --net allow: [tcp:|udp:]ADDR[/LEN][:PORT[-PORT]] the sandbox may connect to "
                   "(names resolve through the policy), or publish:PORT to make a sandbox listener "
                   "reachable on the host's 127.0.0.1. Repeat for more.")
@click.option("--limit", "limit_pairs", multiple=True, metavar="NAME=VALUE",
              help="A limit of the sandbox's kernel (repeat; names below); sessions may lower the "
                   "per-command ones (vfsfuse exec --limit), never raise them.")
@click.option("--no-kernel", is_flag=True, hidden=True, help="Serve the store alone, without /dev and /proc.")
def mount_command(paths: tuple[str, ...], foreground: bool, allow_other: bool, read_only: bool,
                  cache_size: int, log_level: str, memory: bool, memory_size: int | None, shm_size: int,
                  writeback_cache: bool, workers: int, poll_us: int, fast_wakeups: bool, direct_io: bool,
                  allow_shared_store: bool, net_mode: str, net_rules: tuple[str, ...],
                  limit_pairs: tuple[str, ...], no_kernel: bool) -> None:
    """Mount STORE on MOUNTPOINT with FUSE.

    Runs a daemon in the background and returns once the mount is ready (or
    fails with the reason). Unmount with 'vfsfuse umount MOUNTPOINT'.
    """
    from vfsfuse.daemon.config import MountConfig
    from vfsfuse.daemon.serve import check_store_config, half_of_memory, serve_foreground, spawn

    if memory_size is not None and not memory:
        raise click.UsageError("--size is for --memory mounts (a store's size is its disk's)")
    if memory:
        if len(paths) != 1:
            raise click.UsageError("with --memory give only MOUNTPOINT")
        store, mountpoint = None, paths[0]
    else:
        if len(paths) != 2:
            raise click.UsageError("give STORE and MOUNTPOINT")
        store, mountpoint = paths
    net_policy(net_mode, net_rules)  # a bad rule is a usage error here, before any daemon
    limits, run = parse_limits(limit_pairs)
    if run:
        raise CliError(f"--limit: {next(iter(run))} is per run: give it to vfsfuse exec", EXIT_USAGE)
    config = MountConfig(mountpoint=mountpoint, store=store, memory=memory, allow_other=allow_other,
                         read_only=read_only, cache_bytes=cache_size, log_level=log_level.upper(),
                         use_kernel=not no_kernel, writeback_cache=writeback_cache, workers=workers,
                         poll_us=poll_us, fast_wakeups=fast_wakeups, direct_io=direct_io,
                         shm_bytes=shm_size, allow_shared_store=allow_shared_store,
                         net_mode=net_mode, net_rules=net_rules, limits=tuple(limits.items()),
                         memory_bytes=(memory_size or half_of_memory()) if memory else None)
    check_store_config(config)  # here too, so a refused store does not even get a daemon log
    if foreground:
        from vfsfuse.daemon.serve import setup_logging

        setup_logging(config.log_level)

        def ready() -> None:
            click.echo(f"vfsfuse: mounted {store or 'memory store'} on {config.mountpoint}", err=True)

        serve_foreground(config, ready)
    else:
        spawn(config)


@vfsfuse.command("umount", epilog=UMOUNT_EPILOG)
@click.argument("mountpoint")
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for the daemon to flush and exit.")
def umount_command(mountpoint: str, timeout: float) -> None:
    """Flush everything, unmount MOUNTPOINT and wait until the daemon has exited with the store clean."""
    from vfsfuse.daemon.serve import unmount

    unmount(mountpoint, timeout=timeout, warn=lambda text: click.echo(f"vfsfuse: warning: {text}", err=True))
