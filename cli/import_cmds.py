"""``vfsfuse import TARGET TARBALL``: fill a store from a root filesystem tarball (and the work
behind ``vfsfuse mkfs --from TARBALL``).

TARGET is an unmounted store (``STORE``, ``STORE:/dir``), opened directly under the store lock
as every offline command does, or a running mount (``MOUNT``, ``MOUNT/dir``, or the ``STORE``
of a mount): its daemon holds the store, so the tarball is read here and its members are sent
over the daemon's control socket, which writes them at the storage layer as the offline path
does (docs/DECISIONS.md, "Importing tarballs").  The reading and the writing are in
``vfsfuse/storage/importer.py``; this module opens the tarball, drives, shows progress and
turns a stop into one line that says how far the import got.
"""

from __future__ import annotations

import io
import os
import select
import stat as _stat
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import click
import trio

from cli.app import EXIT_INTERRUPTED, CliError, vfsfuse
from cli.paths import resolve_target
from cli.progress import Callback, progress, stderr_is_tty
from kernel.errors import KernelError, unwrap_group
from vfsfuse.storage.importer import (
    CountingReader,
    Importer,
    ImportStopped,
    Summary,
    as_async,
    open_tarball,
    read_members,
    tar_data,
)

PIECE = 1 << 20  # bytes of file data per frame sent to a daemon
TICK = 0.1  # seconds between progress updates


@dataclass
class Source:
    """An opened tarball: its name for messages, the counted stream, the tar reader."""

    name: str
    stream: CountingReader
    tar: tarfile.TarFile
    size: int | None  # bytes of the tarball when known (a file, not a pipe): the progress total
    file: BinaryIO | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def open_source(tarball: str) -> Source:
    """Open *tarball* (``-``: stdin) and read its first header: a missing file or one that is
    not a tarball is refused here, before any store is touched."""
    file: BinaryIO | None = None
    if tarball == "-":
        raw: Any = sys.stdin.buffer
        name = "stdin"
    else:
        try:
            file = raw = open(tarball, "rb")  # noqa: SIM115 - Source.close closes it
        except OSError as err:
            raise KernelError.from_os_error(err, tarball) from None
        name = tarball
    if not hasattr(raw, "peek"):
        try:
            raw = io.BufferedReader(raw)
        except (AttributeError, TypeError, ValueError):
            pass
    size = None
    try:
        st = os.fstat(raw.fileno())
        if _stat.S_ISREG(st.st_mode):
            size = st.st_size
        elif _stat.S_ISDIR(st.st_mode):
            raise KernelError("EISDIR", f"{name} is a directory, not a tarball")
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    stream = CountingReader(raw)
    try:
        tar = open_tarball(stream, name)
    except BaseException:
        if file is not None:
            file.close()
        raise
    return Source(name, stream, tar, size, file)


class _Progress:
    """Progress on stderr when it is a terminal: a bar over the tarball's bytes when its size
    is known, else a counter line (a pipe has no size)."""

    def __init__(self, src: Source, bar: Callback) -> None:
        self.src, self.bar = src, bar
        self.last = 0.0
        self.counter = src.size is None and stderr_is_tty()

    def tick(self, members: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < TICK:
            return
        self.last = now
        if self.src.size is not None:
            self.bar("importing", self.src.stream.position(), self.src.size)
        elif self.counter:
            end = "\n" if final else ""
            click.echo(f"\rimporting: {members} members, {self.src.stream.count / 1e6:.1f} MB read",
                       err=True, nl=False)
            if end:
                click.echo("", err=True)


def _stopped(src: Source, exc: BaseException, summary: Summary, seen: int) -> BaseException:
    """The one error line of an import that stopped, with how far it got."""
    exc = unwrap_group(exc, (ImportStopped, KeyboardInterrupt, KernelError))
    if isinstance(exc, ImportStopped):
        return CliError(f"{exc.code}: {src.name}: import stopped at {exc.where}: {exc.reason}; "
                        f"{summary.how_far()}")
    if isinstance(exc, KeyboardInterrupt):
        return CliError(f"interrupted at member {seen}; {summary.how_far()}", EXIT_INTERRUPTED)
    if isinstance(exc, KernelError):
        return CliError(f"{exc.code}: {src.name}: import stopped at member {seen}: {exc.message}; "
                        f"{summary.how_far()}")
    return exc


# -- an unmounted store -------------------------------------------------------------------------


def import_into_store(store_path: str, at: str, src: Source, bar: Callback,
                      exclude: tuple[str, ...] = ()) -> Summary:
    """Import *src* into the unmounted store (under its lock) below *at*."""
    from cli.store_cmds import with_store

    async def work(store: Any) -> Summary:
        importer = Importer(store.vfs, at, exclude=exclude)
        importer.start()
        shown = _Progress(src, bar)
        try:
            async with importer.writing():
                for member, info in read_members(src.tar, lambda: importer.seen):
                    data = as_async(tar_data(src.tar, info, importer.chunk_size)) if member.kind == "file" else None
                    await importer.add(member, data)
                    shown.tick(importer.seen)
                summary = await importer.finish()
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await importer.abort()
            raise _stopped(src, exc, importer.summary, importer.seen) from None
        shown.tick(importer.seen, final=True)
        return summary

    return with_store(store_path, work)


# -- a running mount ------------------------------------------------------------------------------


def import_into_mount(sock: str, at: str, src: Source, bar: Callback, exclude: tuple[str, ...] = ()) -> Summary:
    """Send *src* member by member to the daemon listening on *sock* (control.py, op "import")."""
    from vfsfuse.daemon import control

    client = control.ControlClient.connect(sock)
    try:
        client.send_json({"op": "import", "at": at, "exclude": list(exclude)})
        _reply(client, control)  # ready (or the daemon's refusal: read-only, bad --at)
        shown = _Progress(src, bar)
        seen = 0

        def sent() -> int:
            return seen

        try:
            for member, info in read_members(src.tar, sent):
                seen += 1
                client.send_json({"m": member.to_json()})
                if member.kind == "file":
                    try:
                        for piece in tar_data(src.tar, info, PIECE):
                            client.send(control.DATA, piece)
                    except KernelError as err:
                        raise ImportStopped(err.code, err.message, f"member {seen} ({member.name})") from None
                _early_reply(client, control)
                shown.tick(seen)
        except BaseException as exc:
            exc = unwrap_group(exc, (_DaemonStopped, KernelError, KeyboardInterrupt))
            if isinstance(exc, _DaemonStopped):
                raise CliError(f"{exc.code}: {src.name}: import stopped at {exc.message}; "
                               f"{exc.summary.how_far()}") from None
            client.send_json({"op": "abort"})
            summary = _final_summary(client, control)
            raise _stopped(src, exc, summary, seen) from None
        client.send_json({"op": "end"})
        try:
            reply = _reply(client, control)
        except _DaemonStopped as exc:
            raise CliError(f"{exc.code}: {src.name}: import stopped at {exc.message}; "
                           f"{exc.summary.how_far()}") from None
        shown.tick(seen, final=True)
        return Summary.from_json(reply.get("summary"))
    finally:
        client.close()


class _DaemonStopped(KernelError):
    def __init__(self, code: str, message: str, summary: Summary) -> None:
        super().__init__(code, message)
        self.summary = summary


def _reply(client: Any, control: Any) -> dict[str, Any]:
    """The daemon's next JSON frame; its error as _DaemonStopped (with the summary it sent)."""
    import json

    while True:
        got = client.recv()
        if got is None:
            raise KernelError("EPIPE", "the mount's daemon hung up during the import (see its log)")
        kind, payload = got
        if kind != control.JSON:
            continue
        msg = json.loads(payload)
        err = control.error_of(msg)
        if err is not None:
            raise _DaemonStopped(err.code, err.message, Summary.from_json(msg.get("summary")))
        return msg


def _early_reply(client: Any, control: Any) -> None:
    """A daemon that stopped the import says so at once: read it without waiting."""
    if client.broken or select.select([client.sock], [], [], 0)[0]:
        _reply(client, control)
        raise KernelError("EPROTO", "the daemon answered in the middle of the import")


def _final_summary(client: Any, control: Any) -> Summary:
    try:
        return Summary.from_json(_reply(client, control).get("summary"))
    except _DaemonStopped as exc:
        return exc.summary
    except KernelError:
        return Summary()


# -- the command ----------------------------------------------------------------------------------


def run_import(target: str, tarball: str, at: str | None, exclude: tuple[str, ...] = ()) -> tuple[Summary, float]:
    """Resolve TARGET, open TARBALL, import; ``(summary, seconds)``."""
    from vfsfuse.storage.store import is_store

    t = resolve_target(target)
    if at is not None and t.path != "/":
        raise click.UsageError("give the directory once: TARGET/dir (or STORE:/dir), or --at DIR")
    where = at if at is not None else t.path
    src = open_source(tarball)
    start = time.monotonic()
    try:
        with progress() as bar:
            if t.mount is None:
                summary = import_into_store(t.unmounted_store, where, src, bar, exclude)
            else:
                from vfsfuse.daemon import control

                store = target.partition(":")[0]
                if is_store(store):  # a mounted store named by its store: its socket is beside it
                    sock = control.socket_path(os.path.abspath(store), t.mount)
                else:
                    sock = control.socket_for_mount(t.mount)
                summary = import_into_mount(sock, where, src, bar, exclude)
    finally:
        src.close()
    return summary, time.monotonic() - start


@vfsfuse.command("import")
@click.argument("target")
@click.argument("tarball")
@click.option("--at", "at", metavar="DIR", default=None,
              help="Directory of the store to import into (made if missing).  [default: /]")
@click.option("--exclude", "exclude", metavar="PATTERN", multiple=True,
              help="Leave out members whose path below DIR (or a leading directory of it) matches "
                   "the shell pattern, e.g. ./dev or '*.pyc'; repeatable.  Into a running mount at /: "
                   "--exclude ./bin keeps the kernel's /bin (a Debian bin -> usr/bin link would stop "
                   "the import there).")
def import_command(target: str, tarball: str, at: str | None, exclude: tuple[str, ...]) -> None:
    """Fill a store from a root filesystem tarball (plain, gzip, bzip2 or xz; '-' reads stdin).

    \b
    TARGET is a store (STORE, STORE:/dir) or a running mount (MOUNT, MOUNT/dir).
    Kept: modes (set-id bits too), numeric owners, mtimes to the nanosecond,
    hard links (one inode), symlinks (never followed), devices and fifos (as
    entries), xattrs (PAX SCHILY.xattr.*).  Member paths are taken below DIR: a
    leading / is dropped, '..' is refused, and nothing is written through a
    symlink already in the tree.  Existing files of the same name are replaced
    and existing directories updated, as tar -x does.  A member that cannot be
    imported stops the import: the members before it stay imported, and the
    error line says how many.
    """
    summary, seconds = run_import(target, tarball, at, exclude)
    click.echo(summary.line(seconds))


def import_after_mkfs(store: str, src: Source) -> None:
    """``mkfs --from``: fill the new store from the tarball opened before it was made."""
    start = time.monotonic()
    try:
        with progress() as bar:
            summary = import_into_store(store, "/", src, bar)
    finally:
        src.close()
    click.echo(summary.line(time.monotonic() - start))
