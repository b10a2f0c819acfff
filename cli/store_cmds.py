"""Store commands: mkfs, fsck, info, stat, gc, versions, dump, load, demo.

A command names either an unmounted store (``STORE`` or ``STORE:/path``),
worked on directly, or a path inside a mount, reached through the mount's
``/.vfs`` tree (``stats``, ``chunks/<path>``, ``control``), so no command ever
opens a store that a daemon has open.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import tempfile
from typing import Any, Awaitable, Callable

import click
import trio

from cli.app import EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, CliError, vfsfuse
from cli.params import DURATION, SIZE, human
from cli.paths import Inside, MountView, Target, resolve_in_mount, resolve_inside, resolve_target, type_name
from cli.progress import progress
from kernel.errors import KernelError

# What a path argument names, and how a path inside a store is resolved: cli/paths.py.


# -- running work on an unmounted store --------------------------------------------------------


def with_store(store_path: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open the unmounted store, run ``await work(store)``, flush and close it."""
    from vfsfuse.storage.fsck import exclusive_store
    from vfsfuse.storage.store import check_store, open_store

    check_store(store_path)  # before the lock file is made: a refused store stays untouched

    async def main():
        with exclusive_store(store_path):
            store = open_store(store_path)
            try:
                result = await work(store)
                await store.vfs.close()
                return result
            finally:
                store.close()

    return trio.run(main)


# -- talking to a mounted store through /.vfs ----------------------------------------------------


def control(mount: str, command: str) -> str:
    """Run one ``/.vfs/control`` command in the mount; return the reply text."""
    path = os.path.join(mount, ".vfs", "control")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise CliError(f"EROFS: {path} is read-only in this mount, so control commands "
                           "(gc, versions) cannot run; the daemon must mount /.vfs writable") from None
        raise
    try:
        try:
            os.write(fd, (command + "\n").encode("utf-8", "surrogateescape"))
        except OSError:
            reply = _read_all(fd).strip()
            if reply.startswith("error: "):
                raise CliError(reply[len("error: "):]) from None
            raise
        return _read_all(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> str:
    parts, offset = [], 0
    while True:
        data = os.pread(fd, 1 << 20, offset)
        if not data:
            break
        parts.append(data)
        offset += len(data)
    return b"".join(parts).decode("utf-8", "replace")


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# -- mkfs ------------------------------------------------------------------------------------------


@vfsfuse.command("mkfs")
@click.argument("store", type=click.Path(file_okay=False))
@click.option("--chunk-size", type=SIZE, default="4M", show_default=True,
              help="Chunk size: a power of two from 4K to 64M (fixed for the store's life).")
@click.option("--inline-threshold", type=SIZE, default=None,
              help="Files up to this size live in the inode row; must be below the chunk size.  "
                   "[default: 64K, or half the chunk size if that is smaller]")
@click.option("--force", is_flag=True, help="Overwrite an existing store (its data is lost).")
@click.option("--from", "from_tarball", metavar="TARBALL", default=None,
              help="Fill the new store from a root filesystem tarball ('-': stdin), as 'vfsfuse import'.")
def mkfs_command(store: str, chunk_size: int, inline_threshold: int | None, force: bool,
                 from_tarball: str | None) -> None:
    """Create an empty store in directory STORE (filled from TARBALL with --from)."""
    from vfsfuse.storage.fsck import require_unmounted
    from vfsfuse.storage.store import create_store, validate_sizes

    if inline_threshold is None:
        inline_threshold = min(64 << 10, chunk_size // 2)
    validate_sizes(chunk_size, inline_threshold)
    if force:
        require_unmounted(store)
    source = None
    if from_tarball is not None:  # a bad tarball is refused before the store is made
        from cli.import_cmds import open_source

        source = open_source(from_tarball)
    create_store(store, chunk_size=chunk_size, inline_threshold=inline_threshold, force=force)
    click.echo(f"created store {store} (chunk size {human(chunk_size)}, "
               f"inline threshold {human(inline_threshold)})")
    if source is not None:
        from cli.import_cmds import import_after_mkfs

        import_after_mkfs(store, source)


# -- fsck ------------------------------------------------------------------------------------------


@vfsfuse.command("fsck")
@click.argument("store", type=click.Path(file_okay=False))
@click.option("--repair", is_flag=True, help="Fix what can be fixed without losing data.")
@click.option("--verify-data", is_flag=True, help="Re-hash every block file (xxh3-128 must equal its name).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def fsck_command(ctx: click.Context, store: str, repair: bool, verify_data: bool, as_json: bool) -> None:
    """Check an unmounted store's metadata and blocks (and --repair them).

    \b
    Checks: entries <-> inodes (dangling entries, orphan and unlinked inodes,
    directory hard links, reachability), link counts, sizes vs chunk maps,
    block refcounts vs references, referenced blocks missing from the block
    store, block files nothing references, store files other users may read
    (--repair clears their group/other bits), and with --verify-data the hash of
    every block.  --repair recomputes link counts and refcounts, drops dangling
    entries, moves nameless or damaged files to /lost+found/#<ino>, moves
    corrupt block files to STORE/corrupt/ and deletes unreferenced blocks.
    Unreferenced blocks and leftovers of a crash are notices, not errors.
    Exit status: 0 clean, 1 errors repaired, 4 errors left.
    """
    from vfsfuse.storage.fsck import fsck_store
    from vfsfuse.storage.store import check_store

    check_store(store)  # missing, empty, damaged or newer meta.db: one line, nothing written
    with progress() as bar:
        result = trio.run(lambda: fsck_store(store, repair=repair, verify_data=verify_data,
                                             progress=bar))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        _print_fsck(store, result, verify_data)
    before, final = result.before, result.final
    if final.errors:
        ctx.exit(EXIT_PROBLEMS)
    ctx.exit(EXIT_REPAIRED if repair and before.errors else EXIT_OK)


def _print_fsck(store: str, result, verify_data: bool) -> None:
    from vfsfuse.storage.fsck import CLASSES

    rep = result.before
    s = rep.scanned
    verified = f", {s.get('verified_blocks', 0)} verified" if verify_data else ""
    click.echo(f"fsck {store}: {s.get('inodes', 0)} inodes, {s.get('dentries', 0)} entries, "
               f"{s.get('chunks', 0)} chunks, {s.get('referenced_blocks', 0)} referenced blocks, "
               f"{s.get('block_files', 0)} block files{verified}")
    for kind, (severity, desc) in CLASSES.items():
        n = rep.counts[kind]
        click.echo(f"{n:>8}  {kind:<20} {severity:<6}  {desc}")
        for sample in rep.samples.get(kind, [])[:3] if n else []:
            click.echo(f"{'':>10}e.g. {sample}")
    if result.actions:
        done = ", ".join(f"{k} {v}" for k, v in sorted(result.actions.items()))
        click.echo(f"repaired: {done}")
    final = result.final
    if final.errors:
        hint = "" if result.after is not None else " (--repair fixes what it can)"
        left = ", ".join(f"{k} {n}" for k, n in final.counts.items()
                         if n and CLASSES[k][0] == "error")
        click.echo(f"result: {final.errors} errors left: {left}{hint}")
    elif result.after is not None and rep.errors:
        click.echo(f"result: repaired ({rep.errors} errors fixed)")
    else:
        notes = f" ({rep.notices} notices)" if final.notices else ""
        click.echo(f"result: clean{notes}")


# -- info ------------------------------------------------------------------------------------------


@vfsfuse.command("info")
@click.argument("paths", nargs=-1, required=True)
def info_command(paths: tuple[str, ...]) -> None:
    """Show inode, size, storage mode and chunk map of files.

    \b
    PATH is STORE:/path, resolved inside the store ("/.." is "/", absolute
    symlinks mean the store's "/"), mounted or not, or a file inside a
    mount (MOUNT/path; refused if the host resolves it outside the mount).
    A final symlink is followed.  Chunk lines read
    "index offset length hash refcount block_file"; a missing index is a hole.
    """
    first = True
    for arg in paths:
        target = resolve_target(arg)
        text = _info_text(target, arg)
        if not first:
            click.echo("")
        first = False
        click.echo(text, nl=False)


def _info_text(target: Target, arg: str) -> str:
    if target.mount is not None:
        return _mounted_info(target.mount, target.path, arg)

    from vfsfuse.inspect.inspectfs import chunk_map_text

    async def work(store):
        inside = await resolve_inside(store.vfs, target.path, what=arg)
        if not inside.attr.is_reg:
            return _not_regular_text(inside)
        return chunk_map_text(store.vfs, inside.ino, path=inside.path, host_paths=True)

    return with_store(target.unmounted_store, work)


def _mounted_info(mount: str, path: str, arg: str) -> str:
    """Resolve *path* in the mount (PathVFS over a MountView), then read the chunk map from
    ``/.vfs/chunks/<canonical path>``, opened beneath the mount one plain name at a time."""
    from vfsfuse.inspect.inspectfs import parse_kv

    with MountView(mount) as view:
        inside: Inside = trio.run(lambda: resolve_inside(view, path, what=arg))
        attr = inside.attr
        if attr.is_reg:
            try:
                fd = view.open_beneath("/.vfs/chunks" + inside.path.rstrip("/"))
            except FileNotFoundError:
                raise KernelError("ENOENT", f"{arg}: vanished while reading its chunk map") from None
            try:
                text = _read_all(fd)
            finally:
                os.close(fd)
            if parse_kv(text).get("inode") != str(inside.ino):
                raise KernelError("EAGAIN", f"{arg}: changed while reading its chunk map; try again")
            return f"path {inside.path}\n" + text
    return _not_regular_text(inside)


def _not_regular_text(inside: Inside) -> str:
    """What ``info`` says of a directory, device, ...: the same text mounted or not."""
    return (f"path {inside.path}\ninode {inside.ino}\ntype {type_name(inside.attr.mode)}\n"
            f"size {inside.attr.size}\n(not a regular file: no chunk map)\n")


# -- stat ------------------------------------------------------------------------------------------


@vfsfuse.command("stat")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
def stat_command(target: str, as_json: bool) -> None:
    """Show store totals: inodes, logical and stored bytes, dedup ratio, blocks, versions."""
    from vfsfuse.inspect.inspectfs import parse_kv

    t = resolve_target(target)
    if t.mount is not None:
        stats: dict[str, Any] = {k: _number(v) for k, v in
                                 parse_kv(_read_text(os.path.join(t.mount, ".vfs", "stats"))).items()}
    else:
        async def work(store):
            return store.vfs.stats()

        stats = with_store(t.unmounted_store, work)
    if as_json:
        click.echo(json.dumps(stats, indent=2, sort_keys=True))
        return
    click.echo(stats_table(stats), nl=False)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def stats_table(stats: dict) -> str:
    rows = []
    byte_keys = {"logical_bytes", "stored_bytes", "dirty_bytes", "chunk_size", "inline_threshold"}
    for key, value in stats.items():
        label = key.replace("_", " ")
        if key in byte_keys and isinstance(value, int):
            shown = f"{value} ({human(value)})"
        elif isinstance(value, float):
            shown = f"{value:.2f}"
        else:
            shown = str(value)
        rows.append(f"{label + ':':<18}{shown}")
    return "\n".join(rows) + "\n"


# -- gc --------------------------------------------------------------------------------------------


@vfsfuse.command("gc")
@click.argument("target")
def gc_command(target: str) -> None:
    """Delete blocks nothing references (STORE, or a mount via MOUNT/.vfs/control)."""
    from vfsfuse.inspect.inspectfs import parse_kv

    t = resolve_target(target)
    if t.mount is not None:
        reply = parse_kv(control(t.mount, "gc"))
        removed, size = int(reply.get("removed_blocks", 0)), int(reply.get("removed_bytes", 0))
    else:
        async def work(store):
            report = await store.vfs.gc()
            return report.removed_blocks, report.removed_bytes

        removed, size = with_store(t.unmounted_store, work)
    click.echo(f"gc: removed {removed} blocks ({human(size)})")


# -- versions --------------------------------------------------------------------------------------


@vfsfuse.group("versions")
def versions_group() -> None:
    """Per-file versions: list, create, restore, prune.

    \b
    PATH is STORE:/path (unmounted) or a file inside a mount (runs
    "version ..." commands through MOUNT/.vfs/control).
    """


def _version_run(path: str, command: str, offline: Callable[[Any, int], Awaitable[Any]],
                 extra: str = "") -> Any:
    """``version COMMAND PATH EXTRA`` through the mount's control file, or *offline* on the store.

    Mounted, PATH is first resolved in the mount by ``resolve_inside`` and the daemon is sent
    the canonical path (plain names from "/"), which every walker reads the same way."""
    t = resolve_target(path)
    if t.mount is not None:
        inside = resolve_in_mount(t.mount, t.path, what=path)
        return control(t.mount, f"version {command} {_quote(inside.path)}{extra}")

    async def work(store):
        inside = await resolve_inside(store.vfs, t.path, what=path)
        return await offline(store, inside.ino)

    return with_store(t.unmounted_store, work)


def _quote(path: str) -> str:
    return shlex.quote(path)


@versions_group.command("list")
@click.argument("path")
def versions_list(path: str) -> None:
    """List the versions of PATH, newest first."""
    import datetime as _dt

    async def offline(store, ino):
        rows = await store.vfs.list_versions(ino)
        return "".join(f"{v.version} {v.size} {v.created_at_ns} {v.storage_mode}\n" for v in rows)

    text = _version_run(path, "list", offline)
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        click.echo("no versions")
        return
    click.echo(f"{'version':>7}  {'size':>12}  {'created (UTC)':<19}  storage")
    for version, size, created, storage in lines:
        when = _dt.datetime.fromtimestamp(int(created) / 1e9, _dt.timezone.utc)
        click.echo(f"{version:>7}  {size:>12}  {when:%Y-%m-%d %H:%M:%S}  {storage}")


@versions_group.command("create")
@click.argument("path")
def versions_create(path: str) -> None:
    """Save the current content of PATH as a new version."""
    async def offline(store, ino):
        return f"version {await store.vfs.create_version(ino)}\n"

    reply = _version_run(path, "create", offline)
    click.echo(f"created {reply.strip()}")


@versions_group.command("restore")
@click.argument("path")
@click.argument("version", type=click.IntRange(min=1))
def versions_restore(path: str, version: int) -> None:
    """Make VERSION the current content of PATH."""
    async def offline(store, ino):
        await store.vfs.restore_version(ino, version)
        return ""

    _version_run(path, "restore", offline, f" {version}")
    click.echo(f"restored version {version} of {path}")


@versions_group.command("prune")
@click.argument("path")
@click.option("--keep", type=click.IntRange(min=0), help="Keep the N newest versions.")
@click.option("--max-age", type=DURATION, help="Drop versions older than this (30s, 15m, 2h, 7d).")
def versions_prune(path: str, keep: int | None, max_age: float | None) -> None:
    """Drop old versions of PATH (give exactly one of --keep / --max-age)."""
    from vfsfuse.inspect.inspectfs import parse_policy

    if (keep is None) == (max_age is None):
        raise click.UsageError("give exactly one of --keep N or --max-age DURATION")
    spec = f"keep={keep}" if keep is not None else f"max_age={max_age}"

    async def offline(store, ino):
        return f"pruned {await store.vfs.prune_versions(ino, parse_policy(spec))}\n"

    reply = _version_run(path, "prune", offline, f" {spec}")
    click.echo(f"{reply.strip()} versions")


# -- dump / load -----------------------------------------------------------------------------------


@vfsfuse.command("dump")
@click.argument("store", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.File("w"), default="-", help="Write here instead of stdout.")
def dump_command(store: str, output) -> None:
    """Write the store's metadata as JSON (inodes, entries, symlinks, chunk maps, xattrs,
    versions, config).  Blocks are not included: copy STORE/blocks alongside.
    Works on a mounted store too (it reads one committed snapshot)."""
    from vfsfuse.storage.dumpload import dump_store

    data = dump_store(store)
    json.dump(data, output, separators=(",", ":"))
    output.write("\n")


@vfsfuse.command("load")
@click.argument("store", type=click.Path(file_okay=False))
@click.option("-i", "--input", "source", type=click.File("r"), default="-", help="Read here instead of stdin.")
@click.option("--allow-missing", is_flag=True, help="Load even if referenced blocks are missing.")
@click.pass_context
def load_command(ctx: click.Context, store: str, source, allow_missing: bool) -> None:
    """Load a JSON dump into a fresh store (created if absent; it must hold no files).

    Put the blocks in STORE/blocks first: every referenced block is checked, and
    the load is refused if any is missing (exit status 4) unless --allow-missing.
    """
    from vfsfuse.storage.dumpload import load_store

    try:
        data = json.load(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"EINVAL: not a vfsfuse dump: {exc}") from None
    with progress() as bar:
        report = trio.run(lambda: load_store(store, data, allow_missing=allow_missing, progress=bar))
    if not report.loaded:
        raise CliError(f"EIO: {len(report.missing)} referenced blocks are missing from "
                       f"{os.path.join(store, 'blocks')} (first: {report.missing[0]}); nothing "
                       "loaded (copy the blocks there, or use --allow-missing)", EXIT_PROBLEMS)
    click.echo(f"loaded {report.inodes} inodes, {report.dentries} entries, "
               f"{report.chunks} chunks into {store}")
    if report.missing:
        click.echo(f"vfsfuse: warning: {len(report.missing)} referenced blocks are missing "
                   f"(first: {report.missing[0]})", err=True)
        ctx.exit(EXIT_PROBLEMS)


# -- demo ------------------------------------------------------------------------------------------


@vfsfuse.command("demo")
@click.option("--keep", is_flag=True, help="Keep the demo store instead of deleting it.")
def demo_command(keep: bool) -> None:
    """Make a small store in a temp dir, write a few files (one deduplicated),
    and show its totals and a chunk map."""
    from kernel.pathvfs import PathVFS
    from vfsfuse.inspect.inspectfs import chunk_map_text
    from vfsfuse.storage.fsck import fsck_store
    from vfsfuse.storage.store import create_store, open_store

    tmp = tempfile.mkdtemp(prefix="vfsfuse-demo-")
    store_path = os.path.join(tmp, "store")
    try:
        create_store(store_path, chunk_size=64 << 10, inline_threshold=4 << 10)
        click.echo(f"$ vfsfuse mkfs {store_path} --chunk-size 64K --inline-threshold 4K")
        payload = bytes(range(256)) * 1024 + os.urandom(40 << 10)  # 296 KiB: 5 chunks

        async def main():
            store = open_store(store_path)
            try:
                fs = PathVFS(store.vfs)
                await fs.write_file("/hello.txt", b"hello from vfsfuse\n")
                await fs.mkdir("/data")
                await fs.write_file("/data/original.bin", payload)
                await fs.write_file("/data/copy.bin", payload)  # same chunks: stored once
                await fs.symlink("data/original.bin", "/latest")
                await store.vfs.sync()
                ino = store.metadata.resolve_path("/data/copy.bin")
                text = chunk_map_text(store.vfs, ino, path="/data/copy.bin")
                stats = store.vfs.stats()
                await store.vfs.close()
                return stats, text
            finally:
                store.close()

        stats, text = trio.run(main)
        click.echo("wrote /hello.txt (inline), /data/original.bin and /data/copy.bin "
                   f"({human(len(payload))} each, same bytes), /latest -> data/original.bin")
        click.echo(f"\n$ vfsfuse stat {store_path}")
        click.echo(stats_table(stats), nl=False)
        click.echo(f"\n$ vfsfuse info {store_path}:/data/copy.bin")
        click.echo(text, nl=False)
        result = trio.run(lambda: fsck_store(store_path))
        click.echo(f"\n$ vfsfuse fsck {store_path}\n"
                   f"{'clean' if result.final.errors == 0 else 'ERRORS'}: "
                   f"{result.before.scanned.get('inodes', 0)} inodes, "
                   f"{result.before.scanned.get('block_files', 0)} block files")
        click.echo(f"\nBlocks are plain files: xxhsum -H128 {store_path}/blocks/*/*/* shows "
                   "each name is its hash;\nsqlite3 -readonly "
                   f"{store_path}/meta.db .schema shows the metadata.")
    finally:
        if keep:
            click.echo(f"\nkept {store_path}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
