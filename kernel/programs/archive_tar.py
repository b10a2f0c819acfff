"""tar: create, extract and list GNU tar archives, streamed through ``ctx``.

Headers are made and parsed by the standard library (``tarfile.TarInfo.tobuf``/``frombuf``,
GNU format, long names as GNU ``L``/``K`` records, pax ``x`` records read); the data of each
member goes through in chunks, so neither side holds more than a chunk.  Compression (-z -j -J,
or by the archive's first bytes when reading) is ``archive_stream``'s.

Extraction refuses what tarfile's ``data`` filter refuses, one line each (status 2 at the end):
absolute member names, names that climb out of the target with ``..``, a path through a
symlink that leads out, symlinks with absolute targets or targets outside the tree, hard links
to outside, device nodes.  An existing non-directory is unlinked before it is replaced, so a
planted symlink is never written through.
"""

from __future__ import annotations

import fnmatch
import posixpath
import stat as _stat
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from kernel.errors import KernelError
from kernel.programs.archive_codec import CodecError, encoder_for
from kernel.programs.archive_stream import Sink, Source
from kernel.programs.common import CHUNK, IdNames, error, fsencode, mode_string, strerror
from kernel.programs.files_ls import tz_offset
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.tar_checksum import header_checksums, install
from kernel.syscalls import O_CREAT, O_EXCL, O_TRUNC, O_WRONLY

BLOCK = 512
RECORD = 20 * BLOCK
ENC = "utf-8"
ERRORS = "surrogateescape"
install()  # tarfile checksums its headers in C (see tar_checksum.py)

SPEC = Spec("tar", "[OPTION...] [FILE]...", "GNU 'tar' saves many files together into a single tape or "
            "disk archive, and can restore individual files from the archive.", usage_status=64, options=[
    Opt("c", "create", help="create a new archive"),
    Opt("x", "extract", help="extract files from an archive"),
    Opt(None, "get", dest="extract", help="same as --extract"),
    Opt("t", "list", help="list the contents of an archive"),
    Opt("f", "file", arg="ARCHIVE", help="use archive file or device ARCHIVE"),
    Opt("z", "gzip", help="filter the archive through gzip"),
    Opt(None, "gunzip", dest="gzip", help="same as --gzip"),
    Opt("j", "bzip2", help="filter the archive through bzip2"),
    Opt("J", "xz", help="filter the archive through xz"),
    Opt("a", "auto-compress", help="use archive suffix to determine the compression program"),
    Opt("C", "directory", arg="DIR", help="change to directory DIR"),
    Opt("v", "verbose", action="count", help="verbosely list files processed"),
    Opt(None, "strip-components", arg="NUMBER", help="strip NUMBER leading components from file names on extraction"),
    Opt("O", "to-stdout", help="extract files to standard output"),
    Opt(None, "exclude", arg="PATTERN", action="append", help="exclude files, given as a PATTERN"),
    Opt("X", "exclude-from", arg="FILE", action="append", help="exclude patterns listed in FILE"),
    Opt("p", "preserve-permissions", help="extract information about file permissions"),
    Opt(None, "same-permissions", dest="preserve_permissions", help="same as -p"),
    Opt(None, "no-same-owner", help="extract files as yourself"),
    Opt(None, "same-owner", help="try extracting files with the same ownership as exists in the archive"),
    Opt("T", "files-from", arg="FILE", action="append", help="get names to extract or create from FILE"),
    Opt(None, "null", help="-T reads null-terminated names"),
    Opt(None, "wildcards", help="use wildcards in member names given on the command line"),
    Opt(None, "no-wildcards", help="match member names literally (the default)"),
    Opt("k", "keep-old-files", help="don't replace existing files when extracting"),
    Opt(None, "overwrite", help="overwrite existing files when extracting"),
    Opt("h", "dereference", help="follow symlinks; archive and dump the files they point to"),
    Opt(None, "no-recursion", help="avoid descending automatically in directories"),
    Opt(None, "mtime", arg="DATE", help="set mtime for added files from DATE"),
    Opt(None, "owner", arg="NAME", help="force NAME as owner for added files"),
    Opt(None, "group", arg="NAME", help="force NAME as group for added files"),
    Opt(None, "numeric-owner", help="always use numbers for user/group names"),
    Opt(None, "sort", arg="ORDER", help="directory sorting order: none (the directory's order), name"),
    Opt("m", "touch", help="don't extract file modified time"),
    Opt("P", "absolute-names", help="don't strip leading '/'s from file names (creating only)"),
    Opt("H", "format", arg="FORMAT", help="create archive of the given format (gnu, ustar, pax)"),
    Opt("b", "blocking-factor", arg="BLOCKS", help="BLOCKS x 512 bytes per record"),
])

_ARG_LETTERS = set("fCTXbH")


def expand_old_style(argv: list[str]) -> list[str]:
    """``tar cvf a.tar d`` -> ``tar -c -v -f a.tar d``: the first word's letters are options and
    the ones that take an argument take the next words in order (traditional tar syntax)."""
    if len(argv) < 2 or argv[1].startswith("-") or not argv[1]:
        return argv
    letters = argv[1]
    rest = argv[2:]
    out = [argv[0]]
    for ch in letters:
        out.append("-" + ch)
        if ch in _ARG_LETTERS and rest:
            out.append(rest.pop(0))
    return out + rest


@dataclass
class Tar:
    """One tar run: its messages, exit status, and the listing's column width."""

    ctx: Any
    verbose: int = 0
    status: int = 0
    names: IdNames = field(default_factory=IdNames)
    ugswidth: int = 19
    numeric: bool = False

    async def err(self, text: str, status: int = 2) -> None:
        await error(self.ctx, "tar", text)
        self.status = max(self.status, status)

    async def listing(self, ti: tarfile.TarInfo, name: str) -> str:
        """One ``tar tv`` line, GNU's columns (the owner/size column only ever widens)."""
        user = ti.uname or str(ti.uid)
        group = ti.gname or str(ti.gid)
        if self.numeric:
            user, group = str(ti.uid), str(ti.gid)
        kind = {tarfile.DIRTYPE: _stat.S_IFDIR, tarfile.SYMTYPE: _stat.S_IFLNK, tarfile.CHRTYPE: _stat.S_IFCHR,
                tarfile.BLKTYPE: _stat.S_IFBLK, tarfile.FIFOTYPE: _stat.S_IFIFO}.get(ti.type, _stat.S_IFREG)
        modes = mode_string(kind | (ti.mode & 0o7777))
        if ti.type == tarfile.LNKTYPE:
            modes = "h" + modes[1:]
        size = f"{ti.devmajor},{ti.devminor}" if ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE) else str(
            ti.size if ti.type not in (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE) else 0)
        ug = f"{user}/{group}"
        pad = len(ug) + 1 + len(size)
        if pad > self.ugswidth:
            self.ugswidth = pad
        secs = int(ti.mtime)
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(secs + tz_offset(self.ctx, secs)))
        line = f"{modes} {ug} {size.rjust(self.ugswidth - len(ug) - 1)} {stamp} {name}"
        if ti.type == tarfile.SYMTYPE:
            line += f" -> {ti.linkname}"
        elif ti.type == tarfile.LNKTYPE:
            line += f" link to {ti.linkname}"
        return line


def _display_name(ti: tarfile.TarInfo) -> str:
    return ti.name + "/" if ti.type == tarfile.DIRTYPE and not ti.name.endswith("/") else ti.name


# ---------------------------------------------------------------------------- reading


class ArchiveError(Exception):
    """The archive cannot be read on: GNU's message, status 2."""


@dataclass
class Member:
    info: tarfile.TarInfo
    remaining: int


async def members(src: Source) -> AsyncIterator[Member]:
    """The members of the archive in order; the caller may read ``Member.remaining`` bytes of
    data with ``src.read_exact`` before asking for the next (the rest is skipped)."""
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    first = True
    while True:
        try:
            block = await src.read_exact(BLOCK)
        except CodecError as e:
            raise ArchiveError(f"Child returned status 1 ({e})") from None
        if not block:
            if first:
                raise ArchiveError("This does not look like a tar archive")
            return
        if len(block) < BLOCK:
            if first:
                raise ArchiveError("This does not look like a tar archive")
            return  # a cut-off last header: GNU tar ends there without a word
        if block == bytes(BLOCK):
            return
        try:
            ti = tarfile.TarInfo.frombuf(block, ENC, ERRORS)
        except tarfile.HeaderError:
            raise ArchiveError("This does not look like a tar archive" if first
                               else "Skipping to next header") from None
        first = False
        size = ti.size
        padded = -(-size // BLOCK) * BLOCK
        if ti.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE):
            data = await src.read_exact(padded)
            if len(data) < padded:
                raise ArchiveError("Unexpected EOF in archive")
            body = data[:size]
            if ti.type == tarfile.GNUTYPE_LONGNAME:
                long_name = body.split(b"\0", 1)[0].decode(ENC, ERRORS)
            elif ti.type == tarfile.GNUTYPE_LONGLINK:
                long_link = body.split(b"\0", 1)[0].decode(ENC, ERRORS)
            elif ti.type == tarfile.XHDTYPE:
                pax = _pax_records(body)
            continue
        if long_name is not None:
            ti.name = long_name.rstrip("/") if ti.type == tarfile.DIRTYPE else long_name
        if long_link is not None:
            ti.linkname = long_link
        for key, value in pax.items():
            if key == "path":
                ti.name = value.rstrip("/") if ti.type == tarfile.DIRTYPE else value
            elif key == "linkpath":
                ti.linkname = value
            elif key in ("uid", "gid", "size") and value.isdigit():
                setattr(ti, key, int(value))
            elif key == "mtime":
                try:
                    ti.mtime = int(float(value))
                except ValueError:
                    pass
            elif key in ("uname", "gname"):
                setattr(ti, key, value)
        long_name = long_link = None
        pax = {}
        has_data = ti.type not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                   tarfile.BLKTYPE, tarfile.FIFOTYPE)
        size = ti.size if has_data else 0
        member = Member(ti, size)
        yield member
        left = member.remaining + (-size % BLOCK)
        if left and await src.skip(left) < left:
            raise ArchiveError("Unexpected EOF in archive")


def _pax_records(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        space = body.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(body[pos:space])
        except ValueError:
            break
        record = body[space + 1: pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode(ENC, ERRORS)] = value.decode(ENC, ERRORS)
        pos += length
        if length <= 0:
            break
    return out


def _matches(name: str, wanted: list[str], wildcards: bool = False) -> str | None:
    """The operand that selects member *name*: the member itself or a directory above it;
    patterns only with ``--wildcards`` (GNU's default for -t and -x is literal names)."""
    n = name.rstrip("/")
    for w in wanted:
        ws = w.rstrip("/")
        if n == ws or n.startswith(ws + "/"):
            return w
        if wildcards and (fnmatch.fnmatchcase(n, ws) or fnmatch.fnmatchcase(n, ws + "/*")):
            return w
    return None


def _strip(name: str, n: int) -> str | None:
    if n <= 0:
        return name
    parts = [p for p in name.split("/") if p]
    if len(parts) <= n:
        return None
    return "/".join(parts[n:]) + ("/" if name.endswith("/") else "")


class Extractor:
    """Writes members under *dest*, refusing the ones that would land outside it."""

    def __init__(self, tar: Tar, dest: str, args: Any) -> None:
        self.tar, self.ctx = tar, tar.ctx
        self.dest = dest
        self.real_dest = ""
        self.preserve = bool(args.get("preserve_permissions"))
        self.keep = bool(args.get("keep_old_files"))
        self.touch = bool(args.get("touch"))
        self.same_owner = (self.ctx.getuid() == 0 and not args.get("no_same_owner")) or bool(args.get("same_owner"))
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.known_dirs: set[str] = set()
        self.fresh_dirs: set[str] = set()   # made by this run: nothing in them to replace yet

    async def start(self) -> None:
        self.real_dest = await self.ctx.realpath(self.dest)

    def _inside(self, real: str) -> bool:
        root = self.real_dest.rstrip("/")
        return real == root or real.startswith(root + "/") or root == ""

    async def refuse(self, name: str, why: str) -> None:
        await self.tar.err(f"{name}: {why}; not extracted")

    def _lexical(self, name: str) -> str | None:
        """The member's path relative to the target, or None if it climbs out."""
        norm = posixpath.normpath(name)
        if norm == ".." or norm.startswith("../"):
            return None
        return norm

    async def _parent_ok(self, rel: str) -> bool:
        """Make the parent directories of *rel*; False if one of them is (or leads) outside.
        Directories checked once are remembered (until something is replaced)."""
        parts = rel.split("/")[:-1]
        path = self.dest
        for part in parts:
            if part in ("", "."):
                continue
            path = f"{path.rstrip('/')}/{part}"
            if path in self.known_dirs:
                continue
            self.known_dirs.add(path)
            try:
                a = await self.ctx.lstat(path)
            except KernelError:
                await self.ctx.mkdir(path, 0o755)
                self.fresh_dirs.add(path)
                continue
            if a.is_symlink:
                try:
                    real = await self.ctx.realpath(path)
                except KernelError:
                    return False
                if not self._inside(real):
                    return False
            elif not a.is_dir:
                await self.ctx.unlink(path)
                await self.ctx.mkdir(path, 0o755)
        return True

    async def extract(self, src: Source, m: Member, name: str, fast: bool = True) -> bool:
        ti = m.info
        ctx = self.ctx
        if name.startswith("/"):
            await self.refuse(name, "Member name is an absolute path")
            return False
        rel = self._lexical(name)
        if rel is None:
            await self.refuse(name, "Member name climbs out of the target directory ('..')")
            return False
        if rel == ".":
            if ti.type == tarfile.DIRTYPE:
                self.dirs.append((self.dest, ti))
            return True
        target = f"{self.dest.rstrip('/')}/{rel}" if self.dest != "/" else "/" + rel
        if ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            await self.refuse(name, "Member is a device file")
            return False
        if ti.type == tarfile.SYMTYPE:
            link = ti.linkname
            if link.startswith("/"):
                await self.refuse(name, f"Symlink to an absolute path ({link})")
                return False
            if self._lexical(posixpath.join(posixpath.dirname(rel), link)) is None:
                await self.refuse(name, f"Symlink points outside the target directory ({link})")
                return False
        if ti.type == tarfile.LNKTYPE:
            link = ti.linkname
            if link.startswith("/") or self._lexical(link) is None:
                await self.refuse(name, f"Hard link points outside the target directory ({link})")
                return False
        try:
            if not await self._parent_ok(rel):
                await self.refuse(name, "Path leads outside the target directory through a symlink")
                return False
            existing = None
            fresh = fast and posixpath.dirname(target) in self.fresh_dirs
            if not fresh:
                try:
                    existing = await ctx.lstat(target)
                except KernelError:
                    pass
            if ti.type == tarfile.DIRTYPE:
                if existing is not None and not existing.is_dir:
                    await ctx.unlink(target)
                    existing = None
                self.known_dirs.discard(target)
                if existing is None:
                    try:
                        await ctx.mkdir(target, 0o700)
                    except KernelError as e:
                        if fresh and e.code == "EEXIST":   # a second member of that name
                            return await self.extract(src, m, name, fast=False)
                        raise
                    self.known_dirs.add(target)
                    self.fresh_dirs.add(target)
                self.dirs.append((target, ti))
                return True
            if existing is not None:
                if self.keep:
                    await self.tar.err(f"{name}: Cannot open: File exists")
                    return False
                self.known_dirs.discard(target)
                if existing.is_dir:
                    try:
                        await ctx.rmdir(target)
                    except KernelError as e:
                        await self.tar.err(f"{name}: Cannot unlink: {strerror(e)}")
                        return False
                else:
                    await ctx.unlink(target)
            if ti.type == tarfile.SYMTYPE:
                try:
                    await ctx.symlink(ti.linkname, target)
                except KernelError as e:
                    if fresh and e.code == "EEXIST":
                        return await self.extract(src, m, name, fast=False)
                    raise
                return True
            if ti.type == tarfile.LNKTYPE:
                source = f"{self.dest.rstrip('/')}/{posixpath.normpath(ti.linkname)}"
                try:
                    real = await ctx.realpath(source)   # the file the link would share
                except KernelError:
                    real = self.real_dest                # missing: link() itself says so
                if not self._inside(real):
                    await self.refuse(name, f"Hard link points outside the target directory ({ti.linkname})")
                    return False
                try:
                    await ctx.link(source, target)
                except KernelError as e:
                    if fresh and e.code == "EEXIST":
                        return await self.extract(src, m, name, fast=False)
                    raise
                return True
            if ti.type == tarfile.FIFOTYPE:
                await ctx.mkfifo(target, 0o600)
            else:
                try:
                    fd = await ctx.open(target, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, self._mode(ti) & 0o777)
                except KernelError as e:
                    if fresh and e.code == "EEXIST":
                        return await self.extract(src, m, name, fast=False)
                    raise
                try:
                    while m.remaining:
                        data = await src.read_exact(min(m.remaining, CHUNK))
                        if not data:
                            raise ArchiveError("Unexpected EOF in archive")
                        m.remaining -= len(data)
                        await ctx.write_all(fd, data)
                    await self._attrs(target, ti, created=True, fd=fd)
                finally:
                    await ctx.close(fd)
                return True
            await self._attrs(target, ti)  # a FIFO
            return True
        except KernelError as e:
            await self.tar.err(f"{name}: Cannot open: {strerror(e)}")
            return False

    def _mode(self, ti: tarfile.TarInfo) -> int:
        if self.preserve or self.ctx.getuid() == 0:
            return ti.mode & 0o7777
        return ti.mode & 0o777 & ~self.ctx.umask()

    async def _attrs(self, target: str, ti: tarfile.TarInfo, created: bool = False,
                     fd: int | None = None) -> None:
        """Owner, mode and mtime of an extracted member; a file just created already has
        our owner and its mode less the umask, so those calls are made only when they change it.
        With the member's open *fd*, the times are set through it (no path walk)."""
        ctx = self.ctx
        try:
            if self.same_owner and not (created and ti.uid == ctx.getuid() and ti.gid == ctx.getgid()):
                await ctx.chown(target, ti.uid, ti.gid)
            mode = self._mode(ti)
            if not created or mode != mode & 0o777 & ~ctx.umask():
                await ctx.chmod(target, mode)
            if not self.touch:
                if fd is not None:
                    await ctx.futimes(fd, time.time(), float(ti.mtime))
                else:
                    await ctx.utimes(target, time.time(), float(ti.mtime))
        except KernelError:
            pass

    async def finish(self) -> None:
        """Directory modes and times last, deepest first, as GNU tar does."""
        for target, ti in reversed(self.dirs):
            await self._attrs(target, ti)


async def read_archive(tar: Tar, args: Any, mode: str) -> int:
    ctx = tar.ctx
    archive = args.get("file") or "-"
    try:
        fd = 0 if archive == "-" else await ctx.open(archive)
    except KernelError as e:
        await tar.err(f"{archive}: Cannot open: {strerror(e)}")
        await tar.err("Error is not recoverable: exiting now")
        return 2
    codec = "gzip" if args.get("gzip") else "bzip2" if args.get("bzip2") else "xz" if args.get("xz") else None
    src = Source(ctx, fd, codec)
    wanted = list(args.operands)
    found: set[str] = set()
    strip = int(args.get("strip_components") or 0)
    excludes = await _exclude_patterns(tar, args)
    to_stdout = bool(args.get("to_stdout"))
    ext: Extractor | None = None
    if mode == "x" and not to_stdout:
        ext = Extractor(tar, args.get("directory") or ".", args)
        try:
            await ext.start()
        except KernelError as e:
            await tar.err(f"{ext.dest}: Cannot open: {strerror(e)}")
            return 2
    out = 2 if archive == "-" and mode == "c" else 1
    try:
        async for m in members(src):
            name = _display_name(m.info)
            if wanted:
                hit = _matches(name, wanted, bool(args.get("wildcards")))
                if hit is None:
                    continue
                found.add(hit)
            if _excluded(name, excludes):
                continue
            shown = name
            if strip:
                stripped = _strip(name, strip)
                if stripped is None:
                    continue
                shown = stripped
                if m.info.type == tarfile.LNKTYPE:
                    m.info.linkname = _strip(m.info.linkname, strip) or m.info.linkname
            if mode == "t":
                line = await tar.listing(m.info, name) if tar.verbose else name
                await ctx.write_all(out, fsencode(line + "\n"))
                continue
            if tar.verbose:
                line = await tar.listing(m.info, name) if tar.verbose > 1 else name
                await ctx.write_all(out if not to_stdout else 2, fsencode(line + "\n"))
            if to_stdout:
                if m.info.type not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                    while m.remaining:
                        data = await src.read_exact(min(m.remaining, CHUNK))
                        if not data:
                            raise ArchiveError("Unexpected EOF in archive")
                        m.remaining -= len(data)
                        await ctx.write_all(1, data)
                continue
            assert ext is not None
            await ext.extract(src, m, shown)
    except ArchiveError as e:
        await tar.err(str(e))
        if "does not look" in str(e) or "status" in str(e):
            await tar.err("Exiting with failure status due to previous errors")
            return 2
    except CodecError as e:
        await tar.err(f"Child returned status 1 ({e})")
    finally:
        if fd:
            await ctx.close(fd)
    if ext is not None:
        await ext.finish()
    for w in wanted:
        if w not in found:
            if not args.get("wildcards") and not args.get("no_wildcards") and any(c in w for c in "*?["):
                await tar.err("Pattern matching characters used in file names")
                await tar.err("Use --wildcards to enable pattern matching, or --no-wildcards to suppress this warning")
            await tar.err(f"{w}: Not found in archive")
    if tar.status:
        await error(ctx, "tar", "Exiting with failure status due to previous errors")
    return tar.status


async def _exclude_patterns(tar: Tar, args: Any) -> list[str]:
    pats = list(args.get("exclude") or [])
    for f in args.get("exclude_from") or []:
        pats += [p for p in (await _read_names(tar, f, False)) if p]
    return pats


def _excluded(name: str, pats: list[str]) -> bool:
    if not pats:
        return False
    n = name.rstrip("/")
    parts = n.split("/")
    for p in pats:
        p = p.rstrip("/")
        for k in range(len(parts)):
            if fnmatch.fnmatchcase("/".join(parts[k:]), p) or fnmatch.fnmatchcase(parts[k], p):
                return True
    return False


async def _read_names(tar: Tar, name: str, null: bool) -> list[str]:
    ctx = tar.ctx
    try:
        fd = 0 if name == "-" else await ctx.open(name)
    except KernelError as e:
        await tar.err(f"{name}: Cannot open: {strerror(e)}")
        return []
    parts: list[bytes] = []
    try:
        while True:
            data = await ctx.read(fd, CHUNK)
            if not data:
                break
            parts.append(data)
    finally:
        if fd:
            await ctx.close(fd)
    raw = b"".join(parts)
    items = raw.split(b"\0" if null else b"\n")
    return [i.decode(ENC, ERRORS) for i in items if i]


# ---------------------------------------------------------------------------- creating


class Creator:
    """Walks the named files and writes their headers and data to the sink."""

    def __init__(self, tar: Tar, sink: Sink, args: Any, out: int) -> None:
        self.tar, self.ctx, self.sink = tar, tar.ctx, sink
        self.deref = bool(args.get("dereference"))
        self.recurse = not args.get("no_recursion")
        self.absolute = bool(args.get("absolute_names"))
        self.mtime = _parse_date(args.get("mtime")) if args.get("mtime") else None
        self.owner = args.get("owner")
        self.group = args.get("group")
        self.numeric = bool(args.get("numeric_owner"))
        fmt = (args.get("format") or "gnu").lower()
        self.format = {"ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT,
                       "posix": tarfile.PAX_FORMAT}.get(fmt, tarfile.GNU_FORMAT)
        self.sort_names = (args.get("sort") or "none") == "name"
        self.links: dict[int, str] = {}
        self.excludes: list[str] = []
        self.out = out
        self.warned_slash = False
        self.archive_real: str | None = None

    async def add(self, path: str, top: bool = True) -> None:
        ctx, tar = self.ctx, self.tar
        try:
            a = await (ctx.stat(path) if self.deref else ctx.lstat(path))
        except KernelError as e:
            await tar.err(f"{path}: Cannot stat: {strerror(e)}")
            return
        name = path
        if not self.absolute:
            stripped = name.lstrip("/")
            if stripped != name:
                if not self.warned_slash:
                    await error(ctx, "tar", "Removing leading `/' from member names")
                    self.warned_slash = True
                name = stripped or "."
                if name == ".":
                    name = "./"
        if _excluded(name, self.excludes):
            return
        ti = tarfile.TarInfo(name)
        ti.mode = a.mode & 0o7777
        ti.uid, ti.gid = a.uid, a.gid
        ti.mtime = self.mtime if self.mtime is not None else a.mtime_ns // 1_000_000_000
        await self.tar.names.load(ctx)
        users = self.tar.names.users or {}
        ti.uname = "" if self.numeric else users.get(a.uid, "")
        ti.gname = "" if self.numeric else self.tar.names.groups.get(a.gid, "")
        if self.owner is not None:
            name_part, _, num = self.owner.partition(":")
            ti.uname = "" if name_part.isdigit() else name_part
            uid = self.tar.names.uid_of(name_part)
            ti.uid = int(num) if num.isdigit() else uid if uid is not None else 0
        if self.group is not None:
            name_part, _, num = self.group.partition(":")
            ti.gname = "" if name_part.isdigit() else name_part
            gid = self.tar.names.gid_of(name_part)
            ti.gid = int(num) if num.isdigit() else gid if gid is not None else 0
        if a.is_dir:
            ti.type = tarfile.DIRTYPE
            if not ti.name.endswith("/"):
                ti.name += "/"
            await self._header(ti)
            if not self.recurse:
                return
            try:
                children = list(await ctx.listdir(path))
                if self.sort_names:
                    children.sort(key=fsencode)
            except KernelError as e:
                await tar.err(f"{path}: Cannot open: {strerror(e)}")
                return
            for child in children:
                await self.add(path.rstrip("/") + "/" + child if path != "/" else "/" + child, False)
            return
        if a.is_symlink:
            ti.type = tarfile.SYMTYPE
            ti.linkname = await ctx.readlink(path)
            await self._header(ti)
            return
        if a.is_reg and a.nlink > 1:
            first = self.links.get(a.ino)
            if first is not None:
                ti.type = tarfile.LNKTYPE
                ti.linkname = first
                await self._header(ti)
                return
            self.links[a.ino] = name
        if a.is_reg:
            await self._file(path, ti, a.size)
            return
        fmt = _stat.S_IFMT(a.mode)
        if fmt == _stat.S_IFIFO:
            ti.type = tarfile.FIFOTYPE
        elif fmt in (_stat.S_IFCHR, _stat.S_IFBLK):
            ti.type = tarfile.CHRTYPE if fmt == _stat.S_IFCHR else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = a.rdev >> 8, a.rdev & 0xFF
        else:
            await tar.err(f"{path}: socket ignored", 0)
            return
        await self._header(ti)

    async def _header(self, ti: tarfile.TarInfo) -> None:
        tar = self.tar
        if tar.verbose:
            shown = _display_name(ti)
            if tar.verbose > 1:
                shown = await tar.listing(ti, shown)
            await self.ctx.write_all(self.out, fsencode(shown + "\n"))
        buf = ti.tobuf(self.format, ENC, ERRORS)  # type: ignore[arg-type]
        if self.format == tarfile.GNU_FORMAT and ti.type not in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            buf = _blank_devices(buf)
        await self.sink.write(buf)

    async def _file(self, path: str, ti: tarfile.TarInfo, size: int) -> None:
        ctx = self.ctx
        try:
            fd = await ctx.open(path)
        except KernelError as e:
            await self.tar.err(f"{path}: Cannot open: {strerror(e)}")
            return
        try:
            ti.size = size
            await self._header(ti)
            left = size
            while left > 0:
                data = await ctx.read(fd, min(CHUNK, left))
                if not data:
                    await self.tar.err(f"{path}: File shrank by {left} bytes; padding with zeros")
                    while left > 0:
                        pad = min(CHUNK, left)
                        await self.sink.write(bytes(pad))
                        left -= pad
                    break
                await self.sink.write(data)
                left -= len(data)
            if size % BLOCK:
                await self.sink.write(bytes(BLOCK - size % BLOCK))
        finally:
            await ctx.close(fd)


def _blank_devices(buf: bytes) -> bytes:
    """GNU tar leaves the device number fields of other members empty (tarfile writes zeros):
    blank them in each header block of *buf* and redo the checksum, so archives match GNU's."""
    out = bytearray(buf)
    pos = 0
    while pos + BLOCK <= len(out):
        block = out[pos:pos + BLOCK]
        out[pos + 329:pos + 345] = bytes(16)
        chk = header_checksums(out[pos:pos + BLOCK])[0]
        out[pos + 148:pos + 156] = b"%06o\0 " % chk
        size = int(bytes(block[124:136]).rstrip(b"\0 ") or b"0", 8) if block[156:157] in (b"L", b"K") else 0
        pos += BLOCK + -(-size // BLOCK) * BLOCK
    return bytes(out)


def _parse_date(text: str) -> int:
    """``--mtime``: ``@EPOCH``, ``YYYY-MM-DD[ HH:MM[:SS]]`` (in UTC)."""
    text = text.strip()
    if text.startswith("@"):
        return int(float(text[1:]))
    import calendar
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            continue
    raise ValueError(text)


async def create_archive(tar: Tar, args: Any) -> int:
    ctx = tar.ctx
    names = list(args.operands)
    for f in args.get("files_from") or []:
        names += await _read_names(tar, f, bool(args.get("null")))
    if not names:
        await error(ctx, "tar", "Cowardly refusing to create an empty archive\n"
                                "Try 'tar --help' or 'tar --usage' for more information.")
        return 2
    if args.get("mtime"):
        try:
            _parse_date(args["mtime"])
        except ValueError:
            await tar.err(f"Invalid date format '{args['mtime']}'")
            return 2
    archive = args.get("file") or "-"
    codec = "gzip" if args.get("gzip") else "bzip2" if args.get("bzip2") else "xz" if args.get("xz") else None
    if codec is None and args.get("auto_compress"):
        for suf, kind in ((".tgz", "gzip"), (".gz", "gzip"), (".taz", "gzip"), (".tbz2", "bzip2"),
                          (".tbz", "bzip2"), (".bz2", "bzip2"), (".txz", "xz"), (".xz", "xz")):
            if archive.endswith(suf):
                codec = kind
                break
    if archive == "-" and ctx.isatty(1):
        await tar.err("Refusing to write archive contents to terminal (missing -f option?)")
        await tar.err("Error is not recoverable: exiting now")
        return 2
    try:
        fd = 1 if archive == "-" else await ctx.open(archive, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    except KernelError as e:
        await tar.err(f"{archive}: Cannot open: {strerror(e)}")
        await tar.err("Error is not recoverable: exiting now")
        return 2
    cwd = args.get("directory")
    try:
        if cwd:
            try:
                await ctx.chdir(cwd)
            except KernelError as e:
                await tar.err(f"{cwd}: Cannot open: {strerror(e)}")
                return 2
        sink = Sink(ctx, fd, encoder_for(codec) if codec else None)
        creator = Creator(tar, sink, args, 2 if archive == "-" else 1)
        creator.excludes = await _exclude_patterns(tar, args)
        for name in names:
            await creator.add(name)
        await sink.write(bytes(2 * BLOCK))
        factor = args.get("blocking_factor")
        record = int(factor) * BLOCK if factor and str(factor).isdigit() and int(factor) > 0 else RECORD
        if sink.written % record:
            await sink.write(bytes(record - sink.written % record))
        await sink.close()
    finally:
        if fd != 1:
            await ctx.close(fd)
    if tar.status:
        await error(ctx, "tar", "Exiting with failure status due to previous errors")
    return tar.status


async def main(ctx: Any) -> int:
    """tar -c/-x/-t; status 2 on any error, as GNU tar."""
    args = await parse_or_exit(ctx, SPEC, expand_old_style(list(ctx.argv)))
    if isinstance(args, int):
        return args
    modes = [m for m in ("create", "extract", "list") if args.get(m)]
    if len(modes) != 1:
        text = ("You must specify one of the '-Acdtrux', '--delete' or '--test-label' options" if not modes
                else "You may not specify more than one '-Acdtrux', '--delete' or  '--test-label' option")
        await error(ctx, "tar", f"{text}\nTry 'tar --help' or 'tar --usage' for more information.")
        return 2
    strip = args.get("strip_components")
    if strip is not None and not str(strip).isdigit():
        await error(ctx, "tar", f"Invalid number of elements: '{strip}'")
        return 2
    tar = Tar(ctx, int(args.get("verbose") or 0))
    tar.numeric = bool(args.get("numeric_owner"))
    if modes[0] == "create":
        return await create_archive(tar, args)
    return await read_archive(tar, args, "x" if modes[0] == "extract" else "t")
