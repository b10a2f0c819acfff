"""gzip/gunzip/zcat, bzip2/bunzip2/bzcat and xz/unxz/xzcat: one driver, three codec tables.

Files are streamed through ``ctx`` a chunk at a time (the codecs of ``archive_codec`` are fed
as the data arrives), so a file of any size takes one chunk of memory.  Behaviour is GNU's:
``FILE`` becomes ``FILE.gz`` (mode and times kept, the input removed unless ``-k``/``-c``),
an existing output is not overwritten without ``-f``, a wrong suffix or a directory is a
warning (status 2), unreadable or corrupt input an error (status 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from kernel.errors import KernelError
from kernel.programs.archive_codec import (
    CodecError,
    Decoder,
    Encoder,
    GzipDecoder,
    GzipEncoder,
    bzip2_encoder,
    decoder_for,
    parse_gzip_header,
    xz_encoder,
)
from kernel.programs.common import CHUNK, error, fsencode, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.registry import Program
from kernel.syscalls import O_CREAT, O_EXCL, O_TRUNC, O_WRONLY


@dataclass(frozen=True)
class Format:
    """What differs between gzip, bzip2 and xz."""

    tool: str                               # the program name in messages
    kind: str                               # codec name
    suffix: str
    decode_suffixes: tuple[tuple[str, str], ...]   # (suffix, replacement) for decompression
    default_level: int
    stdin_name: str                         # how messages name stdin


GZIP = Format("gzip", "gzip", ".gz", ((".gz", ""), ("-gz", ""), (".z", ""), ("-z", ""), ("_z", ""),
                                      (".Z", ""), (".tgz", ".tar"), (".taz", ".tar")), 6, "stdin")
BZIP2 = Format("bzip2", "bzip2", ".bz2", ((".bz2", ""), (".bz", ""), (".tbz2", ".tar"), (".tbz", ".tar")),
               9, "(stdin)")
XZ = Format("xz", "xz", ".xz", ((".xz", ""), (".txz", ".tar"), (".lzma", ""), (".tlz", ".tar")), 6, "(stdin)")


def _levels(maximum: int = 9, minimum: int = 1) -> list[Opt]:
    return [Opt(str(n), None, dest="level", action="const", const=n,
                help="compress faster" if n == minimum else "compress better" if n == maximum else "")
            for n in range(minimum, maximum + 1)]


def _spec(fmt: Format, prog: str) -> Spec:
    opts = [
        Opt("c", "stdout", help="write on standard output, keep original files unchanged"),
        Opt("d", "decompress", help="decompress"),
        Opt("z", "compress", help="force compression"),
        Opt("f", "force", help="force overwrite of output file"),
        Opt("k", "keep", help="keep (don't delete) input files"),
        Opt("q", "quiet", help="suppress all warnings"),
        Opt("t", "test", help="test compressed file integrity"),
        Opt("v", "verbose", help="verbose mode"),
        Opt(None, "fast", dest="level", action="const", const=1, help="compress faster"),
        Opt(None, "best", dest="level", action="const", const=9, help="compress better"),
    ]
    if fmt is GZIP:
        opts += [Opt("l", "list", help="list compressed file contents"),
                 Opt("n", "no-name", help="do not save or restore the original name and timestamp"),
                 Opt("N", "name", help="save or restore the original name and timestamp"),
                 Opt("r", "recursive", help="operate recursively on directories"),
                 Opt("S", "suffix", arg="SUF", help="use suffix SUF on compressed files")]
    elif fmt is BZIP2:
        opts += [Opt("s", "small", help="use less memory (accepted)")]
    else:
        opts += [Opt("e", "extreme", help="try to improve compression ratio by using more CPU time"),
                 Opt("T", "threads", arg="NUM", help="use at most NUM threads (accepted)")]
    opts += _levels(9, 0 if fmt is XZ else 1)
    summary = {"gzip": "Compress or uncompress FILEs (by default, compress FILES in-place).",
               "bzip2": "A block-sorting file compressor.",
               "xz": "Compress or decompress FILEs in the .xz format."}[fmt.tool]
    return Spec(prog, "[OPTION]... [FILE]...", summary, opts)


@dataclass
class Job:
    ctx: Any
    fmt: Format
    prog: str
    decompress: bool
    to_stdout: bool
    keep: bool
    force: bool
    quiet: bool
    verbose: bool
    test: bool
    level: int
    no_name: bool
    use_name: bool
    suffix: str
    extreme: bool = False
    status: int = 0

    async def err(self, text: str, status: int = 1) -> None:
        """An error: status 1 wins over the warnings' 2, as in GNU gzip."""
        await error(self.ctx, self.prog, text)
        if status == 1 or self.status != 1:
            self.status = 1 if status == 1 else max(self.status, status)

    async def warn(self, text: str) -> None:
        if not self.quiet:
            await error(self.ctx, self.prog, text)
        if self.status == 0:
            self.status = 2

    def encoder(self, name: bytes | None, mtime: int) -> Encoder:
        if self.fmt is GZIP:
            return GzipEncoder(self.level, None if self.no_name else name, 0 if self.no_name else mtime)
        if self.fmt is BZIP2:
            return bzip2_encoder(self.level)
        return xz_encoder(self.level, self.extreme)


async def _pump(ctx: Any, src: int, dst: int | None, step: Callable[[bytes], bytes],
                last: Callable[[], bytes]) -> tuple[int, int]:
    """Read *src* to its end through *step*, writing to *dst* (None: nowhere); (in, out) sizes."""
    n_in = n_out = 0
    while True:
        data = await ctx.read(src, CHUNK)
        if not data:
            break
        n_in += len(data)
        out = step(data)
        if out and dst is not None:
            await ctx.write_all(dst, out)
        n_out += len(out)
    out = last()
    if out and dst is not None:
        await ctx.write_all(dst, out)
    return n_in, n_out + len(out)


def _ratio(num: int, den: int) -> str:
    return f"{(100.0 * num / den) if den else 0.0:5.1f}%"


async def _one(job: Job, name: str) -> None:
    ctx, fmt = job.ctx, job.fmt
    is_stdin = name == "-"
    shown = fmt.stdin_name if is_stdin else name
    attr = None
    if not is_stdin:
        try:
            attr = await ctx.stat(name)
        except KernelError as e:
            await job.err(_cannot_open(job, name, e))
            return
        if attr.is_dir:
            await job.warn(f"{name} is a directory -- ignored")
            return
        if not attr.is_reg:
            await job.warn(f"{name} is not a directory or a regular file - ignored")
            return
        if fmt is GZIP and not job.to_stdout and not job.test and not job.force:
            # GNU gzip will not replace a symlink or one name of a hard-linked file without -f
            link = await ctx.lstat(name)
            if link.is_symlink:
                await job.err(f"{name}: Too many levels of symbolic links")
                return
            if attr.nlink > 1:
                others = attr.nlink - 1
                await job.warn(f"{name} has {others} other link{'s' if others > 1 else ''} -- file ignored")
                return
    out_name: str | None = None
    if not is_stdin and not job.to_stdout and not job.test:
        if job.decompress:
            out_name = _strip_suffix(fmt, name, job.suffix)
            if out_name is None:
                await job.warn(f"{name}: unknown suffix -- ignored")
                return
        else:
            if any(name.endswith(s) for s, _ in fmt.decode_suffixes[:1]) or name.endswith(job.suffix):
                if not job.quiet:  # a notice only: GNU's status stays 0
                    await error(ctx, job.prog, f"{name} already has {job.suffix} suffix -- unchanged")
                return
            out_name = name + job.suffix
    try:
        src = 0 if is_stdin else await ctx.open(name)
    except KernelError as e:
        await job.err(_cannot_open(job, name, e))
        return
    dst: int | None = None
    try:
        if job.test:
            dst = None
        elif out_name is None:
            dst = 1
            if not job.decompress and not job.force and ctx.isatty(1):
                await job.err("compressed data not written to a terminal. Use -f to force compression.\n"
                              f"For help, type: {job.prog} -h")
                return
        else:
            flags = O_WRONLY | O_CREAT | (O_TRUNC if job.force else O_EXCL)
            try:
                dst = await ctx.open(out_name, flags, 0o600)
            except KernelError as e:
                if e.code == "EEXIST":
                    await job.warn(f"{out_name} already exists;\tnot overwritten")
                else:
                    await job.err(f"{out_name}: {strerror(e)}")
                return
        ok = await _code(job, src, dst, name, attr, shown)
        if dst is not None and dst > 2:
            await ctx.close(dst)
            dst = None
            if not ok:
                await ctx.unlink(out_name)
                return
            if attr is not None and out_name is not None:
                try:
                    await ctx.chmod(out_name, attr.mode & 0o7777)
                    await ctx.utimes(out_name, attr.atime_ns / 1e9, attr.mtime_ns / 1e9)
                except KernelError:
                    pass
                if not job.keep:
                    await ctx.unlink(name)
    finally:
        if dst is not None and dst > 2:
            await ctx.close(dst)
        if src:
            await ctx.close(src)


def _cannot_open(job: Job, name: str, e: KernelError) -> str:
    if job.fmt is BZIP2:
        return f"Can't open input file {name}: {strerror(e)}."
    return f"{name}: {strerror(e)}"


def _strip_suffix(fmt: Format, name: str, suffix: str) -> str | None:
    pairs = ((suffix, ""),) + fmt.decode_suffixes
    base = name.rsplit("/", 1)[-1]
    for suf, repl in pairs:
        if base.endswith(suf) and len(base) > len(suf):
            return name[: -len(suf)] + repl
    if fmt is BZIP2:
        return name + ".out"
    return None


async def _code(job: Job, src: int, dst: int | None, name: str, attr: Any, shown: str) -> bool:
    """Compress or decompress *src* into *dst*; False after printing why it failed."""
    ctx = job.ctx
    if job.decompress or job.test:
        dec: Decoder = decoder_for(job.fmt.kind)
        try:
            n_in, n_out = await _pump(ctx, src, dst, dec.feed, dec.finish)
        except CodecError as e:
            text = _codec_message(job, shown, str(e))
            await job.err(text, job.status or 1)
            return False
        if getattr(dec, "trailing_garbage", False):
            await job.warn(f"{shown}: decompression OK, trailing garbage ignored")
        if job.verbose:
            if job.test:
                await ctx.write_all(2, fsencode(f"{shown}:\t OK\n"))
            else:
                await ctx.write_all(2, fsencode(f"{shown}:\t{_ratio(n_out - n_in, n_out)} -- replaced with "
                                                 f"{_strip_suffix(job.fmt, name, job.suffix) or '-'}\n"))
        return True
    base = fsencode(name.rsplit("/", 1)[-1]) if name != "-" else None
    mtime = int(attr.mtime_ns // 1_000_000_000) if attr is not None else await _stdin_mtime(ctx)
    enc = job.encoder(base, mtime)
    n_in, n_out = await _pump(ctx, src, dst, enc.compress, enc.flush)
    if job.verbose:
        await ctx.write_all(2, fsencode(f"{shown}:\t{_ratio(n_in - n_out, n_in)} -- replaced with "
                                         f"{name}{job.suffix}\n"))
    return True


async def _stdin_mtime(ctx: Any) -> int:
    try:
        st = await ctx.fstat(0)
    except KernelError:
        return 0
    return int(st.mtime_ns // 1_000_000_000) if st.is_reg else 0


def _codec_message(job: Job, shown: str, text: str) -> str:
    if job.fmt is BZIP2 and text.startswith("bad magic"):
        job.status = 2
        return f"{shown} is not a bzip2 file."
    return f"{shown}: {text}"


async def _list(job: Job, names: list[str]) -> int:
    """gzip -l: sizes from the file and its trailer, the ratio as GNU computes it."""
    ctx = job.ctx
    rows = ["         compressed        uncompressed  ratio uncompressed_name"]
    tot_c = tot_u = 0
    header_bytes = 0
    count = 0
    for name in names:
        try:
            fd = await ctx.open(name)
        except KernelError as e:
            await job.err(f"{name}: {strerror(e)}")
            continue
        try:
            st = await ctx.fstat(fd)
            head = await ctx.pread(fd, 4096, 0)
            try:
                header = parse_gzip_header(head)
            except CodecError as e:
                await job.err(f"{name}: {e}")
                continue
            if header is None or st.size < header.size + 8:
                await job.err(f"{name}: unexpected end of file")
                continue
            trailer = await ctx.pread(fd, 8, st.size - 8)
        finally:
            await ctx.close(fd)
        usize = struct.unpack("<II", trailer)[1]
        header_bytes = header.size + 8
        shown = _strip_suffix(job.fmt, name, job.suffix) or name
        if job.use_name and header.name:
            shown = header.name.decode("utf-8", "surrogateescape")
        rows.append(f"{st.size:19d} {usize:19d} {_ratio(usize - (st.size - header_bytes), usize)} {shown}")
        tot_c += st.size
        tot_u += usize
        count += 1
    if count > 1:
        rows.append(f"{tot_c:19d} {tot_u:19d} {_ratio(tot_u - (tot_c - header_bytes), tot_u)} (totals)")
    if count:
        await ctx.write_all(1, fsencode("\n".join(rows) + "\n"))
    return job.status


async def _walk(ctx: Any, top: str) -> list[str]:
    out: list[str] = []
    for n in await ctx.listdir(top):
        p = f"{top.rstrip('/')}/{n}"
        a = await ctx.lstat(p)
        if a.is_dir:
            out += await _walk(ctx, p)
        elif a.is_reg:
            out.append(p)
    return out


def make(fmt: Format, prog: str, decompress: bool = False, to_stdout: bool = False) -> Program:
    spec = _spec(fmt, prog)

    async def main(ctx: Any) -> int:
        args = await parse_or_exit(ctx, spec)
        if isinstance(args, int):
            return args
        dec = decompress or bool(args.get("decompress"))
        if args.get("compress"):
            dec = False
        level = args.get("level", fmt.default_level)
        job = Job(ctx, fmt, prog, dec, to_stdout or bool(args.get("stdout")), bool(args.get("keep")),
                  bool(args.get("force")), bool(args.get("quiet")), bool(args.get("verbose")),
                  bool(args.get("test")), level, bool(args.get("no_name")), bool(args.get("name")),
                  args.get("suffix") or fmt.suffix, bool(args.get("extreme")))
        names = args.operands or ["-"]
        if args.get("list"):
            return await _list(job, names)
        if args.get("recursive"):
            expanded: list[str] = []
            for n in names:
                try:
                    is_dir = n != "-" and (await ctx.stat(n)).is_dir
                except KernelError:
                    is_dir = False
                expanded += await _walk(ctx, n) if is_dir else [n]
            names = expanded
        for name in names:
            await _one(job, name)
        return job.status

    main.__doc__ = f"{prog}: {spec.summary}"
    return main


PROGRAMS: dict[str, Program] = {
    "gzip": make(GZIP, "gzip"),
    "gunzip": make(GZIP, "gunzip", decompress=True),
    "zcat": make(GZIP, "zcat", decompress=True, to_stdout=True),
    "bzip2": make(BZIP2, "bzip2"),
    "bunzip2": make(BZIP2, "bunzip2", decompress=True),
    "bzcat": make(BZIP2, "bzcat", decompress=True, to_stdout=True),
    "xz": make(XZ, "xz"),
    "unxz": make(XZ, "unxz", decompress=True),
    "xzcat": make(XZ, "xzcat", decompress=True, to_stdout=True),
}

__all__ = ["PROGRAMS", "GzipDecoder"]
