"""zip and unzip over ``zipfile``, with every byte moved through ``ctx``.

Writing streams: ``zipfile`` writes into a small in-memory buffer that is drained through
``ctx`` after each chunk (the buffer cannot seek, so zipfile writes data descriptors, which
every unzip reads).  Reading needs random access to the central directory at the end, so the
archive is read into memory first; members are then inflated a chunk at a time onto the
sandbox's files.  Messages and listings are Info-ZIP's (``  adding: f (deflated 57%)``,
``unzip -l``'s columns); extraction refuses what tar refuses (absolute names, ``..``, links out).
"""

from __future__ import annotations

import io
import posixpath
import stat as _stat
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, error, fsencode, strerror
from kernel.programs.files_ls import tz_offset
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.registry import Program
from kernel.syscalls import O_CREAT, O_EXCL, O_TRUNC, O_WRONLY

ZIP_SPEC = Spec("zip", "[-options] zipfile list", "zip: package and compress (archive) files.", [
    Opt("r", "recurse-paths", help="recurse into directories"),
    Opt("j", "junk-paths", help="junk (don't record) directory names"),
    Opt("q", "quiet", help="quiet operation"),
    Opt("y", "symlinks", help="store symbolic links as the link instead of the referenced file"),
    Opt("D", "no-dir-entries", help="do not add directory entries"),
    Opt("0", None, dest="level", action="const", const=0, help="store only"),
    *[Opt(str(n), None, dest="level", action="const", const=n, help="compress better" if n == 9 else "")
      for n in range(1, 10)],
])

UNZIP_SPEC = Spec("unzip", "[-opts] file[.zip] [list] [-d exdir]", "Extract, list or test files in a ZIP archive.", [
    Opt("l", None, dest="list", help="list files (short format)"),
    Opt("o", None, dest="overwrite", help="overwrite files WITHOUT prompting"),
    Opt("n", None, dest="never", help="never overwrite existing files"),
    Opt("d", None, dest="exdir", arg="DIR", help="extract files into exdir"),
    Opt("q", None, dest="quiet", action="count", help="quiet mode (-qq => quieter)"),
    Opt("p", None, dest="pipe", help="extract files to pipe, no messages"),
    Opt("j", None, dest="junk", help="junk paths (do not make directories)"),
    Opt("t", None, dest="test", help="test compressed archive data"),
], help_option=False)


class _DrainBuffer(io.RawIOBase):
    """What zipfile writes into: bytes wait here until the program drains them through ctx;
    ``tell`` counts every byte, ``seek`` is refused so zipfile streams (data descriptors)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []
        self.pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("not seekable")

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def _percent(n: int, m: int) -> int:
    """Info-ZIP's ratio: uncompressed *n*, compressed *m*, rounded half up, 0 if no gain."""
    if n > 0xFFFFFF:
        n = (n + 0x80) >> 8
        m = (m + 0x80) >> 8
    return (1 + (200 * (n - m) // n)) // 2 if n > m else 0


def _dos_time(ctx: Any, secs: int) -> tuple[int, int, int, int, int, int]:
    tm = time.gmtime(secs + tz_offset(ctx, secs))
    if tm.tm_year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec & ~1)


def _ut_extra(mtime: int) -> bytes:
    return b"UT" + struct.pack("<HBI", 5, 1, mtime & 0xFFFFFFFF)


def _ut_mtime(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x5455 and size >= 5 and extra[pos + 4] & 1:
            return int(struct.unpack_from("<I", extra, pos + 5)[0])
        pos += 4 + size
    return None


@dataclass
class ZipRun:
    ctx: Any
    quiet: bool
    status: int = 0

    async def say(self, text: str) -> None:
        if not self.quiet:
            await self.ctx.write_all(1, fsencode(text + "\n"))


async def _read_all(ctx: Any, path: str) -> bytes:
    fd = await ctx.open(path)
    try:
        parts: list[bytes] = []
        while True:
            data = await ctx.read(fd, CHUNK * 4)
            if not data:
                return b"".join(parts)
            parts.append(data)
    finally:
        await ctx.close(fd)


async def zip_main(ctx: Any) -> int:
    """zip [-rjqy0-9] zipfile file...: add (or update) entries, Info-ZIP's messages."""
    args = await parse_or_exit(ctx, ZIP_SPEC)
    if isinstance(args, int):
        return args
    if len(args.operands) < 1:
        await ctx.write_all(2, b"zip error: Nothing to do! (no zip file named)\n")
        return 12
    archive, *names = args.operands
    if not archive.endswith(".zip") and "." not in posixpath.basename(archive):
        archive += ".zip"
    run = ZipRun(ctx, bool(args.get("quiet")))
    level = args.get("level", 6)
    old: zipfile.ZipFile | None = None
    try:
        old_bytes = await _read_all(ctx, archive)
    except KernelError:
        old_bytes = None
    if old_bytes is not None:
        try:
            old = zipfile.ZipFile(io.BytesIO(old_bytes))
        except zipfile.BadZipFile:
            await ctx.write_all(2, fsencode(f"\nzip error: Zip file structure invalid ({archive})\n"))
            return 3
    entries: list[tuple[str, str, Any]] = []      # (member name, path, attr)
    seen: set[str] = set()
    for name in names:
        await _collect(run, name, bool(args.get("recurse_paths")), bool(args.get("junk_paths")),
                       bool(args.get("symlinks")), bool(args.get("no_dir_entries")), entries, seen)
    if not entries:
        await ctx.write_all(1, fsencode(f"\nzip error: Nothing to do! ({archive})\n"))
        return 12
    tmp = f"{archive}.vfszip{ctx.getpid()}"
    try:
        fd = await ctx.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    except KernelError as e:
        await ctx.write_all(2, fsencode(f"zip I/O error: {strerror(e)}\n"
                                        f"zip error: Could not create output file ({archive})\n"))
        return 15
    buf = _DrainBuffer()
    ok = False
    try:
        zf = zipfile.ZipFile(buf, "w")
        by_name = {e[0]: e for e in entries}
        order: list[tuple[str, Any]] = []       # ("copy", info) or ("add", entry), Info-ZIP's order
        existing: set[str] = set()
        if old is not None:
            for info in old.infolist():
                existing.add(info.filename)
                order.append(("add", by_name[info.filename]) if info.filename in by_name else ("copy", info))
        order += [("add", e) for e in entries if e[0] not in existing]
        for what, item in order:
            if what == "copy":
                assert old is not None
                with old.open(item) as src, zf.open(_copy_info(item), "w") as dst:
                    while True:
                        data = src.read(CHUNK)
                        if not data:
                            break
                        dst.write(data)
                        await ctx.write_all(fd, buf.take())
                continue
            member, path, attr = item
            verb = "updating" if member in existing else "  adding"
            try:
                usize, csize, method = await _add(ctx, zf, buf, fd, member, path, attr, level)
            except KernelError:
                await ctx.write_all(2, fsencode(f"\tzip warning: could not open for reading: {path}\n"))
                run.status = 18
                continue
            how = "stored 0%" if method == zipfile.ZIP_STORED else f"deflated {_percent(usize, csize)}%"
            await run.say(f"{verb}: {member} ({how})")
        zf.close()
        await ctx.write_all(fd, buf.take())
        ok = True
    finally:
        await ctx.close(fd)
        if ok:
            await ctx.rename(tmp, archive)
        else:
            try:
                await ctx.unlink(tmp)
            except KernelError:
                pass
    return run.status


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    new = zipfile.ZipInfo(info.filename, info.date_time)
    new.external_attr = info.external_attr
    new.compress_type = info.compress_type
    new.extra = info.extra
    new.create_system = info.create_system
    return new


async def _collect(run: ZipRun, name: str, recurse: bool, junk: bool, symlinks: bool, no_dirs: bool,
                   out: list[tuple[str, str, Any]], seen: set[str]) -> None:
    ctx = run.ctx
    try:
        attr = await (ctx.lstat(name) if symlinks else ctx.stat(name))
    except KernelError:
        await ctx.write_all(1, fsencode(f"\tzip warning: name not matched: {name}\n"))
        run.status = max(run.status, 12) if run.status else 0
        return
    member = name.lstrip("/")
    while member.startswith("./"):
        member = member[2:]
    if junk:
        member = posixpath.basename(name.rstrip("/"))
    if attr.is_dir:
        if not junk and not no_dirs and member:
            m = member.rstrip("/") + "/"
            if m not in seen:
                seen.add(m)
                out.append((m, name, attr))
        if recurse:
            for child in await ctx.listdir(name):
                await _collect(run, f"{name.rstrip('/')}/{child}", recurse, junk, symlinks, no_dirs, out, seen)
        return
    if member not in seen:
        seen.add(member)
        out.append((member, name, attr))


async def _add(ctx: Any, zf: zipfile.ZipFile, buf: _DrainBuffer, fd: int, member: str, path: str,
               attr: Any, level: int) -> tuple[int, int, int]:
    """One entry: deflated unless deflate does not make it smaller (then stored, as zip does)."""
    mtime = attr.mtime_ns // 1_000_000_000
    info = zipfile.ZipInfo(member, _dos_time(ctx, mtime))
    info.external_attr = (attr.mode & 0xFFFF) << 16 | (0x10 if attr.is_dir else 0)
    info.extra = _ut_extra(mtime)
    if attr.is_dir:
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, b"")
        await ctx.write_all(fd, buf.take())
        return 0, 0, zipfile.ZIP_STORED
    if attr.is_symlink:
        data = fsencode(await ctx.readlink(path))
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, data)
        await ctx.write_all(fd, buf.take())
        return len(data), len(data), zipfile.ZIP_STORED
    # deflate first into a probe to learn whether it pays; small files are decided in memory
    src = await ctx.open(path)
    try:
        if attr.size <= CHUNK * 16:
            parts = []
            while True:
                data = await ctx.read(src, CHUNK)
                if not data:
                    break
                parts.append(data)
            whole = b"".join(parts)
            z = zlib.compressobj(level or 6, zlib.DEFLATED, -15)
            csize = len(z.compress(whole) + z.flush())
            stored = level == 0 or csize >= len(whole)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, whole, compress_type=info.compress_type,
                        compresslevel=None if stored else level)
            await ctx.write_all(fd, buf.take())
            return len(whole), len(whole) if stored else csize, info.compress_type
        info.compress_type = zipfile.ZIP_STORED if level == 0 else zipfile.ZIP_DEFLATED
        info.file_size = attr.size
        with zf.open(info, "w", force_zip64=attr.size > 0x7FFFFFFF) as dst:
            while True:
                data = await ctx.read(src, CHUNK)
                if not data:
                    break
                dst.write(data)
                await ctx.write_all(fd, buf.take())
        await ctx.write_all(fd, buf.take())
        return info.file_size, info.compress_size, info.compress_type
    finally:
        await ctx.close(src)


# ---------------------------------------------------------------------------- unzip


async def unzip_main(ctx: Any) -> int:
    """unzip [-l|-p|-t] [-oqnj] archive [member...] [-d dir]; Info-ZIP's statuses (9, 11)."""
    args = await parse_or_exit(ctx, UNZIP_SPEC)
    if isinstance(args, int):
        return 10 if args else 0
    if not args.operands:
        await ctx.write_all(1, fsencode(UNZIP_SPEC.help_text()))
        return 0
    archive, *wanted = args.operands
    data = None
    for cand in (archive, archive + ".zip", archive + ".ZIP"):
        try:
            data = await _read_all(ctx, cand)
            archive = cand
            break
        except KernelError:
            continue
    if data is None:
        await ctx.write_all(2, fsencode(f"unzip:  cannot find or open {archive}, {archive}.zip or {archive}.ZIP.\n"))
        return 9
    quiet = int(args.get("quiet") or 0)
    pipe = bool(args.get("pipe"))
    if not pipe and quiet < 1 or (args.get("list") and quiet < 2):
        await ctx.write_all(1, fsencode(f"Archive:  {archive}\n"))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError):
        await ctx.write_all(2, fsencode(
            "  End-of-central-directory signature not found.  Either this file is not\n"
            "  a zipfile, or it constitutes one disk of a multi-part archive.  In the\n"
            "  latter case the central directory and zipfile comment will be found on\n"
            f"  the last disk(s) of this archive.\nunzip:  cannot find zipfile directory in one of {archive} or\n"
            f"        {archive}.zip, and cannot find {archive}.ZIP, period.\n"))
        return 9
    infos = zf.infolist()
    if wanted:
        import fnmatch
        chosen = [i for i in infos if any(fnmatch.fnmatchcase(i.filename, w) for w in wanted)]
        missing = [w for w in wanted if not any(fnmatch.fnmatchcase(i.filename, w) for i in infos)]
    else:
        chosen, missing = infos, []
    status = 0
    if args.get("list"):
        await _list(ctx, chosen, quiet)
    elif args.get("test"):
        bad = 0
        for info in chosen:
            try:
                with zf.open(info) as f:
                    while f.read(CHUNK):
                        pass
                if not quiet:
                    await ctx.write_all(1, fsencode(f"    testing: {info.filename:<22s}   OK\n"))
            except (zipfile.BadZipFile, zlib.error, OSError) as e:
                bad += 1
                await ctx.write_all(1, fsencode(f"    testing: {info.filename:<22s}   bad ({e})\n"))
        if not bad and not quiet:
            await ctx.write_all(1, fsencode(f"No errors detected in compressed data of {archive}.\n"))
        status = 2 if bad else 0
    else:
        status = await _extract(ctx, zf, chosen, args, quiet, pipe)
    for w in missing:
        if not args.get("list"):
            await ctx.write_all(2, fsencode(f"caution: filename not matched:  {w}\n"))
    if missing and status == 0:
        status = 11
    return status


async def _list(ctx: Any, infos: list[zipfile.ZipInfo], quiet: int) -> None:
    rows = []
    if quiet < 2:
        rows += ["  Length      Date    Time    Name", "---------  ---------- -----   ----"]
    total = 0
    for i in infos:
        y, mo, d, h, mi, _ = i.date_time
        rows.append(f"{i.file_size:9d}  {y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}   {i.filename}")
        total += i.file_size
    if quiet < 2:
        n = len(infos)
        rows += ["---------                     -------",
                 f"{total:9d}                     {n} file{'' if n == 1 else 's'}"]
    await ctx.write_all(1, fsencode("\n".join(rows) + "\n"))


async def _extract(ctx: Any, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], args: Any, quiet: int,
                   pipe: bool) -> int:
    dest = args.get("exdir") or "."
    status = 0
    overwrite = bool(args.get("overwrite"))
    never = bool(args.get("never"))
    ask_all: str | None = None
    say = (lambda text: ctx.write_all(1, fsencode(text + "\n"))) if not quiet and not pipe else None
    if not pipe and dest != ".":
        try:
            await ctx.stat(dest)
        except KernelError:
            try:
                await ctx.mkdir(dest, 0o755)
            except KernelError as e:
                await error(ctx, "unzip", f"cannot create extraction directory: {dest}: {strerror(e)}")
                return 3
    real_dest = await ctx.realpath(dest) if not pipe else ""
    stdin = Reader(ctx, 0, 1)
    dirs: list[tuple[str, int | None, int]] = []
    for info in infos:
        name = info.filename
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        is_link = _stat.S_ISLNK(mode)
        if pipe:
            if not info.is_dir() and not is_link:
                with zf.open(info) as f:
                    while True:
                        data = f.read(CHUNK)
                        if not data:
                            break
                        await ctx.write_all(1, data)
            continue
        rel = name if not args.get("junk") else posixpath.basename(name.rstrip("/"))
        if not rel:
            continue
        norm = posixpath.normpath(rel)
        if rel.startswith("/") or norm == ".." or norm.startswith("../"):
            await error(ctx, "unzip", f"{name}: refusing to extract outside the target directory; skipped")
            status = max(status, 1)
            continue
        target = norm if dest == "." else f"{dest.rstrip('/')}/{norm}"
        shown = target + ("/" if info.is_dir() else "")
        if not await _parents(ctx, real_dest, dest, norm):
            await error(ctx, "unzip", f"{name}: path leads outside the target directory through a symlink; skipped")
            status = max(status, 1)
            continue
        mtime = _ut_mtime(info.extra)
        if mtime is None:
            y, mo, d, h, mi, s = info.date_time
            import calendar
            mtime = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
            mtime -= tz_offset(ctx, mtime)
        if info.is_dir():
            try:
                await ctx.mkdir(target, 0o755)
                if say:
                    await say(f"   creating: {shown}")
            except KernelError:
                pass
            dirs.append((target, (mode & 0o7777) or None, mtime))
            continue
        try:
            exists = await ctx.lstat(target)
        except KernelError:
            exists = None
        if exists is not None and not exists.is_dir:
            if never:
                continue
            if not overwrite and ask_all != "A":
                if ask_all == "N":
                    continue
                await ctx.write_all(1, fsencode(f"replace {target}? [y]es, [n]o, [A]ll, [N]one, [r]ename: "))
                line = (await stdin.readline()).strip()
                if not line:
                    await ctx.write_all(1, b" NULL\n(EOF or read error, treating as \"[N]one\" ...)\n")
                    ask_all = "N"
                    status = max(status, 1)
                    continue
                answer = line[:1].decode("ascii", "replace")
                if answer in ("A", "N"):
                    ask_all = answer
                if answer in ("n", "N"):
                    continue
            await ctx.unlink(target)
        try:
            with zf.open(info) as f:
                if is_link:
                    link = f.read().decode("utf-8", "surrogateescape")
                    if link.startswith("/") or posixpath.normpath(posixpath.join(posixpath.dirname(norm), link)
                                                                  ).startswith(".."):
                        await error(ctx, "unzip", f"{name}: symlink points outside the target directory; skipped")
                        status = max(status, 1)
                        continue
                    await ctx.symlink(link, target)
                    if say:
                        await say(f"    linking: {shown:<22s}  -> {link} ")
                    continue
                if say:
                    verb = " extracting" if info.compress_type == zipfile.ZIP_STORED else "  inflating"
                    await say(f"{verb}: {shown:<22s}  ")
                out = await ctx.open(target, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0o600)
                try:
                    while True:
                        data = f.read(CHUNK)
                        if not data:
                            break
                        await ctx.write_all(out, data)
                finally:
                    await ctx.close(out)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            await error(ctx, "unzip", f"{name}: bad zipfile data ({e})")
            status = 2
            continue
        except KernelError as e:
            await error(ctx, "unzip", f"{target}: {strerror(e)}")
            status = max(status, 1)
            continue
        try:
            await ctx.chmod(target, (mode & 0o777) or 0o644)
            await ctx.utimes(target, time.time(), float(mtime))
        except KernelError:
            pass
    for target, dmode, mtime in reversed(dirs):
        try:
            if dmode:
                await ctx.chmod(target, dmode & 0o777)
            await ctx.utimes(target, time.time(), float(mtime))
        except KernelError:
            pass
    return status


async def _parents(ctx: Any, real_dest: str, dest: str, rel: str) -> bool:
    path = dest
    root = real_dest.rstrip("/")
    for part in rel.split("/")[:-1]:
        path = f"{path.rstrip('/')}/{part}"
        try:
            a = await ctx.lstat(path)
        except KernelError:
            await ctx.mkdir(path, 0o755)
            continue
        if a.is_symlink:
            try:
                real = await ctx.realpath(path)
            except KernelError:
                return False
            if not (real == root or real.startswith(root + "/") or root == ""):
                return False
    return True


PROGRAMS: dict[str, Program] = {"zip": zip_main, "unzip": unzip_main}
