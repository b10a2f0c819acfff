"""Programs about file contents: dd (block copying with its statistics), file (a small magic
table), split (by lines, bytes or chunk count)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from kernel.errors import KernelError
from kernel.programs.common import CHUNK, Reader, fsencode, quote, strerror
from kernel.programs.files_base import Tool, parse_size
from kernel.programs.flags import VERSION, Opt, Spec, parse_or_exit
from kernel.syscalls import O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_WRONLY, SEEK_CUR, SEEK_SET

# ============================================================================ dd

_DD_UNITS = {"c": 1, "w": 2, "b": 512, "kB": 1000, "K": 1024, "k": 1024, "KiB": 1024, "MB": 1000 ** 2,
             "M": 1024 ** 2, "MiB": 1024 ** 2, "GB": 1000 ** 3, "G": 1024 ** 3, "GiB": 1024 ** 3,
             "TB": 1000 ** 4, "T": 1024 ** 4}


def dd_number(text: str) -> int:
    """dd's numbers: suffixes c w b kB K MB M GB G and ``x`` products (``2x512``)."""
    total = 1
    for part in text.split("x"):
        i = 0
        while i < len(part) and part[i].isdigit():
            i += 1
        if i == 0:
            raise ValueError(text)
        unit = part[i:]
        if unit and unit not in _DD_UNITS:
            raise ValueError(text)
        total *= int(part[:i]) * (_DD_UNITS[unit] if unit else 1)
    return total


@dataclass
class DdOpts:
    inp: str | None = None
    out: str | None = None
    ibs: int = 512
    obs: int = 512
    bs: int | None = None
    count: int | None = None
    skip: int = 0
    seek: int = 0
    conv: frozenset[str] = frozenset()
    iflag: frozenset[str] = frozenset()
    oflag: frozenset[str] = frozenset()
    status: str = "default"


_CONVS = {"notrunc", "noerror", "sync", "ucase", "lcase", "excl", "nocreat", "fsync", "fdatasync",
          "swab", "block", "unblock", "sparse"}
_FLAGS = {"append", "direct", "dsync", "sync", "fullblock", "nonblock", "noatime", "nocache", "noctty",
          "nofollow", "count_bytes", "skip_bytes", "seek_bytes", "binary", "text", "directory"}


def _dd_parse(argv: list[str]) -> DdOpts:
    o = DdOpts()
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise ValueError(f"unrecognized operand {quote(arg)}")
        try:
            if key == "if":
                o.inp = value
            elif key == "of":
                o.out = value
            elif key in ("bs", "ibs", "obs", "count", "skip", "seek", "iseek", "oseek"):
                n = dd_number(value)
                if key in ("bs", "ibs", "obs") and n == 0:
                    raise ValueError(f"invalid number: {quote(value)}")
                if key == "bs":
                    o.bs = n
                elif key == "ibs":
                    o.ibs = n
                elif key == "obs":
                    o.obs = n
                elif key == "count":
                    o.count = n
                elif key in ("skip", "iseek"):
                    o.skip = n
                else:
                    o.seek = n
            elif key == "conv":
                words = frozenset(value.split(","))
                bad = words - _CONVS
                if bad:
                    raise ValueError(f"invalid conversion: {quote(sorted(bad)[0])}")
                o.conv |= words
            elif key in ("iflag", "oflag"):
                words = frozenset(value.split(","))
                bad = words - _FLAGS
                if bad:
                    raise ValueError(f"invalid input flag: {quote(sorted(bad)[0])}" if key == "iflag"
                                     else f"invalid output flag: {quote(sorted(bad)[0])}")
                if key == "iflag":
                    o.iflag |= words
                else:
                    o.oflag |= words
            elif key == "status":
                if value not in ("none", "noxfer", "progress"):
                    raise ValueError(f"invalid status level: {quote(value)}")
                o.status = value
            else:
                raise ValueError(f"unrecognized operand {quote(arg)}")
        except ValueError as e:
            if str(e) == value or str(e) == arg:
                raise ValueError(f"invalid number: {quote(value)}") from None
            raise
    if o.bs is not None:
        o.ibs = o.obs = o.bs
    for a, b in (("lcase", "ucase"), ("excl", "nocreat"), ("block", "unblock")):
        if a in o.conv and b in o.conv:
            raise ValueError(f"cannot combine {a} and {b}")
    return o


def _rate(nbytes: int, secs: float) -> str:
    if secs <= 0:
        return "Infinity B/s"
    rate = nbytes / secs
    for unit in ("B/s", "kB/s", "MB/s", "GB/s", "TB/s"):
        if rate < 1000 or unit == "TB/s":
            return f"{rate:.3g} {unit}" if unit != "B/s" else f"{rate:.0f} B/s"
        rate /= 1000
    return ""


def _si(n: int) -> str:
    """``1.0 kB, 1.0 KiB`` style figures of dd's statistics."""
    def fmt(value: float, base: int, units: list[str]) -> str:
        v = value
        for u in units:
            v /= base
            if v < base or u == units[-1]:
                return f"{v:.1f} {u}" if v < 10 else f"{v:.0f} {u}"
        return ""
    return f"{fmt(n, 1000, ['kB', 'MB', 'GB', 'TB'])}, {fmt(n, 1024, ['KiB', 'MiB', 'GiB', 'TiB'])}"


async def prog_dd(ctx: Any) -> int:
    argv = list(ctx.argv[1:])
    tool = Tool(ctx, "dd")
    if argv and argv[0] == "--help":
        await ctx.write_all(1, "Usage: dd [OPERAND]...\n  or:  dd OPTION\nCopy a file, converting and "
                               "formatting according to the operands.\n")
        return 0
    if argv and argv[0] == "--version":
        await ctx.write_all(1, f"dd ({VERSION})\n")
        return 0
    if argv and argv[0] == "--":
        argv = argv[1:]
    try:
        o = _dd_parse(argv)
    except ValueError as e:
        await tool.err(str(e))
        if "unrecognized" in str(e):
            await ctx.write_all(2, "Try 'dd --help' for more information.\n")
        return 1
    try:
        ifd = await ctx.open(o.inp) if o.inp is not None else 0
    except KernelError as e:
        await tool.fail("failed to open", o.inp or "", e)
        return 1
    ofd = 1
    if o.out is not None:
        flags = O_WRONLY | O_CREAT
        if "excl" in o.conv:
            flags |= O_EXCL
        if "nocreat" in o.conv:
            flags &= ~O_CREAT
        if "notrunc" not in o.conv and o.seek == 0 and "append" not in o.oflag:
            flags |= O_TRUNC
        try:
            if "append" in o.oflag:
                flags |= O_APPEND
            ofd = await ctx.open(o.out, flags, 0o666)
        except KernelError as e:
            await tool.fail("failed to open", o.out, e)
            return 1
    start = time.monotonic()
    full_in = part_in = full_out = part_out = 0
    total = 0
    try:
        # skip input blocks: seek when the input can, else read them away
        skip_bytes = o.skip if "skip_bytes" in o.iflag else o.skip * o.ibs
        if skip_bytes:
            try:
                await ctx.lseek(ifd, skip_bytes, SEEK_CUR)
            except KernelError:
                left = skip_bytes
                while left:
                    data = await ctx.read(ifd, min(left, CHUNK))
                    if not data:
                        break
                    left -= len(data)
        seek_bytes = o.seek if "seek_bytes" in o.oflag else o.seek * o.obs
        if seek_bytes:
            try:
                await ctx.lseek(ofd, seek_bytes, SEEK_SET)
                if "notrunc" not in o.conv and o.out is not None:
                    await ctx.ftruncate(ofd, seek_bytes)
            except KernelError:
                pass
        pending = bytearray()
        count_bytes = "count_bytes" in o.iflag
        remaining = o.count * (1 if count_bytes else 1) if o.count is not None else None
        while remaining is None or remaining > 0:
            want = o.ibs
            if count_bytes and remaining is not None:
                want = min(want, remaining)
            data = await ctx.read(ifd, want)
            if "fullblock" in o.iflag:
                while data and len(data) < want:
                    more = await ctx.read(ifd, want - len(data))
                    if not more:
                        break
                    data += more
            if not data:
                break
            if len(data) == o.ibs:
                full_in += 1
            else:
                part_in += 1
                if "sync" in o.conv:
                    data = data + b"\0" * (o.ibs - len(data))
            if remaining is not None:
                remaining -= len(data) if count_bytes else 1
            if "ucase" in o.conv:
                data = data.upper()
            elif "lcase" in o.conv:
                data = data.lower()
            if "swab" in o.conv:
                b = bytearray(data)
                b[0:len(b) - 1:2], b[1::2] = b[1::2], b[0:len(b) - 1:2]
                data = bytes(b)
            if o.bs is not None:
                await ctx.write_all(ofd, data)
                total += len(data)
                if len(data) == o.obs:
                    full_out += 1
                else:
                    part_out += 1
                continue
            pending += data
            while len(pending) >= o.obs:
                await ctx.write_all(ofd, bytes(pending[:o.obs]))
                del pending[:o.obs]
                total += o.obs
                full_out += 1
        if pending:
            await ctx.write_all(ofd, bytes(pending))
            total += len(pending)
            part_out += 1
        if "fsync" in o.conv or "fdatasync" in o.conv:
            try:
                await ctx.fsync(ofd)
            except KernelError:
                pass
    except KernelError as e:
        if e.code == "EPIPE":
            raise
        await tool.err(f"error {'reading' if True else ''} {quote(o.inp or 'standard input')}: {strerror(e)}")
    finally:
        if o.inp is not None:
            await ctx.close(ifd)
        if o.out is not None:
            await ctx.close(ofd)
    if o.status != "none":
        secs = time.monotonic() - start
        text = f"{full_in}+{part_in} records in\n{full_out}+{part_out} records out\n"
        if o.status != "noxfer":
            size = f"{total} byte{'s' if total != 1 else ''}"
            if total >= 1000:
                size += f" ({_si(total)})"
            text += f"{size} copied, {secs:.6g} s, {_rate(total, secs)}\n"
        await ctx.write_all(2, text)
    return tool.status


# ============================================================================ file

FILE = Spec("file", "[OPTION...] [FILE...]", "Determine type of FILEs.", [
    Opt("b", "brief", help="do not prepend filenames to output lines"),
    Opt("i", "mime", help="output MIME type strings"),
    Opt(None, "mime-type", help="output the MIME type"),
    Opt(None, "mime-encoding", help="output the MIME encoding"),
    Opt("L", "dereference", help="follow symlinks"),
    Opt("h", "no-dereference", help="don't follow symlinks (default)"),
    Opt("N", "no-pad", help="do not pad output"),
    Opt("z", "uncompress", help="(ignored)"),
    Opt("f", "files-from", arg="FILE", help="read the filenames to be examined from FILE"),
    Opt("F", "separator", arg="STRING", help="use string as separator instead of ':'"),
    Opt("0", "print0", help="terminate filenames with ASCII NUL"),
])

_SCRIPTS = {"sh": "POSIX shell script", "bash": "Bourne-Again shell script", "dash": "POSIX shell script",
            "zsh": "Paul Falstad's zsh script", "python": "Python script", "python3": "Python script",
            "python2": "Python script", "perl": "Perl script text", "ruby": "Ruby script",
            "node": "Node.js script", "awk": "awk script", "gawk": "GNU awk script", "tcsh": "Tenex C shell script",
            "csh": "C shell script", "ksh": "Korn shell script", "php": "PHP script", "make": "makefile script",
            "lua": "Lua script", "tclsh": "Tcl script"}


def _text_kind(data: bytes) -> tuple[str, str] | None:
    """(description, charset) for text, or None for binary data."""
    if b"\0" in data:
        return None
    if all(b < 128 for b in data):
        ctrl = set(range(0, 32)) - {7, 8, 9, 10, 11, 12, 13, 27}
        if any(b in ctrl or b == 127 for b in data):
            return None
        return "ASCII text", "us-ascii"
    try:
        data.decode("utf-8")
        return "Unicode text, UTF-8 text", "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3 and len(data) >= 65536:
            return "Unicode text, UTF-8 text", "utf-8"
    if all(b >= 32 or b in (9, 10, 13, 12, 27) for b in data if b < 128) and \
            not any(0x80 <= b < 0xA0 for b in data):
        return "ISO-8859 text", "iso-8859-1"
    if not any(b < 32 and b not in (9, 10, 13, 12, 27) for b in data):
        return "Non-ISO extended-ASCII text", "unknown-8bit"
    return None


def _text_details(data: bytes, complete: bool) -> str:
    notes = []
    if b"\r\n" in data:
        notes.append("with CRLF line terminators")
    elif b"\r" in data and b"\n" not in data:
        notes.append("with CR line terminators")
    elif b"\n" not in data and complete:
        notes.append("with no line terminators")
    if b"\x1b" in data:
        notes.append("with escape sequences")
    if b"\x08" in data:
        notes.append("with overstriking")
    longest = max((len(x) for x in data.split(b"\n")), default=0)
    if longest > 300:
        notes.insert(0, "with very long lines" + (f" ({longest})" if True else ""))
    return ", ".join(notes)


def describe(data: bytes, complete: bool) -> tuple[str, str]:
    """(human description, MIME type; charset) of a file's first bytes."""
    if not data:
        return "empty", "inode/x-empty; charset=binary"
    if data.startswith(b"\x7fELF") and len(data) >= 20:
        bits = {1: "32-bit", 2: "64-bit"}.get(data[4], "")
        endian = {1: "LSB", 2: "MSB"}.get(data[5], "")
        order: Literal["little", "big"] = "little" if data[5] == 1 else "big"
        etype = int.from_bytes(data[16:18], order)
        kind = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core file"}.get(etype, "")
        mach = int.from_bytes(data[18:20], order)
        arch = {0x3E: "x86-64", 0x03: "Intel 80386", 0xB7: "ARM aarch64", 0x28: "ARM", 0xF3: "UCB RISC-V",
                0x08: "MIPS"}.get(mach, "")
        text = f"ELF {bits} {endian} {kind}".strip()
        if arch:
            text += f", {arch}"
        mime = {"relocatable": "application/x-object", "shared object": "application/x-sharedlib",
                "core file": "application/x-coredump"}.get(kind, "application/x-executable")
        return text, mime + "; charset=binary"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        text = "PNG image data"
        if len(data) >= 26 and data[12:16] == b"IHDR":
            w = int.from_bytes(data[16:20], "big")
            h = int.from_bytes(data[20:24], "big")
            depth, color = data[24], data[25]
            colors = {0: "grayscale", 2: "RGB", 3: "colormap", 4: "gray+alpha", 6: "RGBA"}.get(color, "")
            inter = "interlaced" if len(data) > 28 and data[28] else "non-interlaced"
            text += f", {w} x {h}, {depth}-bit/color {colors}, {inter}" if color in (2, 6) else \
                f", {w} x {h}, {depth}-bit {colors}, {inter}"
        return text, "image/png; charset=binary"
    if data.startswith(b"\xff\xd8\xff"):
        text = "JPEG image data"
        if data[6:11] == b"JFIF\0":
            text += ", JFIF standard"
        return text, "image/jpeg; charset=binary"
    if data.startswith(b"GIF87a") or data.startswith(b"GIF89a"):
        return f"GIF image data, version {data[3:6].decode()}", "image/gif; charset=binary"
    if data.startswith(b"\x1f\x8b"):
        return "gzip compressed data", "application/gzip; charset=binary"
    if data.startswith(b"BZh"):
        return "bzip2 compressed data", "application/x-bzip2; charset=binary"
    if data.startswith(b"\xfd7zXZ\0"):
        return "XZ compressed data", "application/x-xz; charset=binary"
    if data.startswith(b"PK\x03\x04") and len(data) >= 30:
        return "Zip archive data", "application/zip; charset=binary"
    if data.startswith(b"%PDF-"):
        version = data[5:8].decode("ascii", "replace")
        return f"PDF document, version {version}", "application/pdf; charset=binary"
    if len(data) >= 262 and data[257:262] == b"ustar":
        kind = "POSIX tar archive (GNU)" if data[257:265] == b"ustar  \0" else "POSIX tar archive"
        return kind, "application/x-tar; charset=binary"
    if data.startswith(b"SQLite format 3\0"):
        return "SQLite 3.x database", "application/vnd.sqlite3; charset=binary"
    text_kind = _text_kind(data)
    if text_kind is None:
        return "data", "application/octet-stream; charset=binary"
    desc, charset = text_kind
    mime = "text/plain"
    if data.startswith(b"#!"):
        line = data[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        words = line.split()
        interp = ""
        if words:
            interp = words[0].rsplit("/", 1)[-1]
            if interp == "env" and len(words) > 1:
                interp = words[1]
        script = _SCRIPTS.get(interp) or _SCRIPTS.get(interp.rstrip("0123456789."))
        if script:
            mime = {"Python script": "text/x-script.python", "POSIX shell script": "text/x-shellscript",
                    "Bourne-Again shell script": "text/x-shellscript"}.get(script, "text/plain")
            sep = " " if script.endswith("text") else ", "
            tail = "executable" if script.endswith("text") else f"{desc} executable"
            text = f"{script}{sep}{tail}"
            details = _text_details(data, complete)
            return text + (", " + details if details else ""), f"{mime}; charset={charset}"
        desc = f"a {words[0] if words else ''} script, {desc} executable".replace("  ", " ")
    details = _text_details(data, complete)
    return desc + (", " + details if details else ""), f"{mime}; charset={charset}"


async def prog_file(ctx: Any) -> int:
    args = await parse_or_exit(ctx, FILE)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "file")
    names = list(args.operands)
    if args.get("files_from") is not None:
        try:
            fd = 0 if args["files_from"] == "-" else await ctx.open(args["files_from"])
            async for line in Reader(ctx, fd):
                n = line.rstrip(b"\n").decode("utf-8", "surrogateescape")
                if n:
                    names.append(n)
        except KernelError as e:
            await tool.err(f"Cannot open `{args['files_from']}' ({strerror(e)})")
            return 1
    if not names:
        await ctx.write_all(2, "Usage: file [-bcCdEhikLlNnprsSvzZ0] [--apple] [--extension] [--mime-encoding]\n"
                               "            [--mime-type] [-e <testname>] [-F <separator>]  [-f <namefile>]\n"
                               "            [-m <magicfiles>] [-P <parameter=value>] [--exclude-quiet]\n"
                               "            <file> ...\n       file -C [-m <magicfiles>]\n       file [--help]\n")
        return 1
    sep = args.get("separator", ":")
    shown = ["/dev/stdin" if n == "-" else n for n in names]
    pad = 0 if args.get("no_pad") or args.get("brief") else max(len(fsencode(s)) + len(sep) for s in shown)
    mime = args.get("mime") or args.get("mime_type") or args.get("mime_encoding")
    out = []
    for name, label in zip(names, shown):
        desc, mtype = await _classify(ctx, name, bool(args.get("dereference")))
        if args.get("mime_type"):
            result = mtype.split(";")[0]
        elif args.get("mime_encoding"):
            result = mtype.split("charset=")[-1]
        else:
            result = mtype if mime else desc
        if args.get("brief"):
            out.append(result + "\n")
        elif args.get("print0"):
            out.append(f"{label}\0{result}\n")
        else:
            head = label + sep
            out.append(head + " " * max(0, pad - len(fsencode(head))) + " " + result + "\n")
    await ctx.write_all(1, fsencode("".join(out)))
    return 0


async def _classify(ctx: Any, name: str, follow: bool) -> tuple[str, str]:
    if name == "-":
        data = await Reader(ctx, 0).read(65536)
        return describe(data, len(data) < 65536)
    try:
        a = await (ctx.stat(name) if follow else ctx.lstat(name))
    except KernelError as e:
        if follow and e.code in ("ENOENT", "ELOOP"):
            try:
                target = await ctx.readlink(name)
                return f"broken symbolic link to {target}", "inode/symlink; charset=binary"
            except KernelError:
                pass
        return f"cannot open `{name}' ({strerror(e)})", "cannot open"
    if a.is_symlink:
        target = await ctx.readlink(name)
        try:
            await ctx.stat(name)
            return f"symbolic link to {target}", "inode/symlink; charset=binary"
        except KernelError:
            return f"broken symbolic link to {target}", "inode/symlink; charset=binary"
    if a.is_dir:
        return "directory", "inode/directory; charset=binary"
    import stat as _st
    if _st.S_ISFIFO(a.mode):
        return "fifo (named pipe)", "inode/fifo; charset=binary"
    if _st.S_ISCHR(a.mode):
        return f"character special ({(a.rdev >> 8) & 0xFFF}/{a.rdev & 0xFF})", "inode/chardevice; charset=binary"
    if _st.S_ISBLK(a.mode):
        return f"block special ({(a.rdev >> 8) & 0xFFF}/{a.rdev & 0xFF})", "inode/blockdevice; charset=binary"
    if _st.S_ISSOCK(a.mode):
        return "socket", "inode/socket; charset=binary"
    try:
        fd = await ctx.open(name)
    except KernelError as e:
        return f"cannot open `{name}' ({strerror(e)})", "cannot open"
    try:
        data = await ctx.read(fd, 65536)
    finally:
        await ctx.close(fd)
    return describe(data, a.size <= len(data))


# ============================================================================ split

SPLIT = Spec("split", "[OPTION]... [FILE [PREFIX]]", "Output pieces of FILE to PREFIXaa, PREFIXab, ...;\n"
             "default size is 1000 lines, and default PREFIX is 'x'.", [
    Opt("a", "suffix-length", arg="N", help="generate suffixes of length N (default 2)"),
    Opt(None, "additional-suffix", arg="SUFFIX", help="append an additional SUFFIX to file names"),
    Opt("b", "bytes", arg="SIZE", help="put SIZE bytes per output file"),
    Opt("C", "line-bytes", arg="SIZE", help="put at most SIZE bytes of records per output file"),
    Opt("d", None, dest="numeric", action="const", const="0", help="use numeric suffixes from 0"),
    Opt(None, "numeric-suffixes", arg="FROM", optional_arg=True, dest="numeric", help="-d from FROM"),
    Opt("x", None, dest="hex", action="const", const="0", help="use hex suffixes from 0"),
    Opt(None, "hex-suffixes", arg="FROM", optional_arg=True, dest="hex", help="-x from FROM"),
    Opt("e", "elide-empty-files", help="do not generate empty output files with '-n'"),
    Opt("l", "lines", arg="NUMBER", help="put NUMBER lines/records per output file"),
    Opt("n", "number", arg="CHUNKS", help="generate CHUNKS output files"),
    Opt("t", "separator", arg="SEP", help="use SEP instead of newline as the record separator"),
    Opt(None, "verbose", help="print a diagnostic just before each output file is opened"),
])


class _Namer:
    """Suffixes aa, ab, ... (or 00, 01, ...); without -a they widen like GNU's (yz -> zaaa)."""

    def __init__(self, prefix: str, extra: str, alphabet: str, length: int | None, start: int) -> None:
        self.prefix, self.extra, self.alphabet = prefix, extra, alphabet
        self.fixed = length
        self.index = start

    def next(self) -> str | None:
        a = len(self.alphabet)
        i = self.index
        self.index += 1
        if self.fixed is not None:
            if i >= a ** self.fixed:
                return None
            return self.prefix + self._digits(i, self.fixed) + self.extra
        level = 0
        while True:
            width = 2 + level
            count = (a - 1) * a ** (width - 1)
            if i < count:
                return self.prefix + self.alphabet[-1] * level + self._digits(i, width) + self.extra
            i -= count
            level += 1

    def _digits(self, i: int, width: int) -> str:
        a = len(self.alphabet)
        out = []
        for _ in range(width):
            out.append(self.alphabet[i % a])
            i //= a
        return "".join(reversed(out))


async def prog_split(ctx: Any) -> int:
    args = await parse_or_exit(ctx, SPLIT)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "split")
    ops = args.operands
    if len(ops) > 2:
        return await tool.usage(f"extra operand {quote(ops[2])}")
    src = ops[0] if ops else "-"
    prefix = ops[1] if len(ops) > 1 else "x"
    modes = [k for k, _ in args.order if k in ("lines", "bytes", "line_bytes", "number")]
    if len(set(modes)) > 1:
        return await tool.usage("cannot split in more than one way")
    length = None
    if args.get("suffix_length") is not None:
        try:
            length = int(args["suffix_length"])
            if length < 0:
                raise ValueError
        except ValueError:
            await tool.err(f"invalid suffix length: {quote(args['suffix_length'])}")
            return 1
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    start = 0
    for key in ("numeric", "hex"):
        if key in args:
            alphabet = "0123456789" if key == "numeric" else "0123456789abcdef"
            value = args[key]
            if value not in (None, "0"):
                try:
                    start = int(value, 10 if key == "numeric" else 16)
                except ValueError:
                    await tool.err(f"invalid start value for numerical suffix: {quote(value)}")
                    return 1
                if length is None:
                    length = max(2, len(value))
    namer = _Namer(prefix, args.get("additional_suffix") or "", alphabet, length, start)
    sep = b"\n"
    if args.get("separator") is not None:
        s = args["separator"]
        sep = b"\0" if s == "\\0" else fsencode(s)
        if len(sep) != 1:
            await tool.err(f"multi-character separator {quote(s)}")
            return 1
    try:
        fd = 0 if src == "-" else await ctx.open(src)
    except KernelError as e:
        await tool.fail("cannot open", src, e)
        await ctx.write_all(2, b"") if False else None
        return 1
    verbose = bool(args.get("verbose"))
    state = {"fd": None}

    async def open_next() -> bool:
        if state["fd"] is not None:
            await ctx.close(state["fd"])
        name = namer.next()
        if name is None:
            await tool.err("output file suffixes exhausted")
            return False
        if verbose:
            await ctx.write_all(1, fsencode(f"creating file {quote(name)}\n"))
        state["fd"] = await ctx.open(name, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        return True

    try:
        try:
            if args.get("number") is not None:
                return await _split_chunks(ctx, tool, fd, args["number"], open_next, state,
                                           bool(args.get("elide_empty_files")))
            if args.get("bytes") is not None or args.get("line_bytes") is not None:
                text = args.get("bytes") or args.get("line_bytes")
                try:
                    size = parse_size(text)
                    if size <= 0:
                        raise ValueError
                except ValueError:
                    await tool.err(f"invalid number of bytes: {quote(text)}")
                    return 1
                if args.get("line_bytes") is not None:
                    return await _split_line_bytes(ctx, fd, size, sep, open_next, state)
                left = 0
                while True:
                    data = await ctx.read(fd, CHUNK)
                    if not data:
                        break
                    view = memoryview(data)
                    while view:
                        if left == 0:
                            if not await open_next():
                                return 1
                            left = size
                        piece = view[:left]
                        await ctx.write_all(state["fd"], bytes(piece))
                        left -= len(piece)
                        view = view[len(piece):]
                return 0
            count = 1000
            if args.get("lines") is not None:
                try:
                    count = int(args["lines"])
                    if count <= 0:
                        raise ValueError
                except ValueError:
                    await tool.err(f"invalid number of lines: {quote(args['lines'])}")
                    return 1
            n = 0
            reader = Reader(ctx, fd)
            while True:
                line = await reader.readline(sep)
                if not line:
                    break
                if n == 0:
                    if not await open_next():
                        return 1
                await ctx.write_all(state["fd"], line)
                n = (n + 1) % count
            return 0
        finally:
            if state["fd"] is not None:
                await ctx.close(state["fd"])
    except KernelError as e:
        await tool.fail("", src, e)
        return 1
    finally:
        if src != "-":
            await ctx.close(fd)


async def _split_line_bytes(ctx: Any, fd: int, size: int, sep: bytes, open_next: Any, state: dict) -> int:
    reader = Reader(ctx, fd)
    used = size
    while True:
        line = await reader.readline(sep)
        if not line:
            return 0
        while line:
            if used + len(line) > size and used > 0:
                if not await open_next():
                    return 1
                used = 0
            piece = line[:size - used] if len(line) > size - used else line
            await ctx.write_all(state["fd"], piece)
            used += len(piece)
            line = line[len(piece):]


async def _split_chunks(ctx: Any, tool: Tool, fd: int, spec: str, open_next: Any, state: dict,
                        elide: bool) -> int:
    kind, _, rest = spec.partition("/") if "/" in spec else ("", "", spec)
    if kind not in ("", "l"):
        await tool.err(f"invalid number of chunks: {quote(spec)}")
        return 1
    try:
        chunks = int(rest)
        if chunks <= 0:
            raise ValueError
    except ValueError:
        await tool.err(f"invalid number of chunks: {quote(spec)}")
        return 1
    parts = []
    while True:
        data = await ctx.read(fd, CHUNK)
        if not data:
            break
        parts.append(data)
    data = b"".join(parts)
    total = len(data)
    step = total // chunks or 1  # fewer bytes than chunks: one byte each, then empty chunks
    bounds = [min(k * step, total) for k in range(chunks)] + [total]  # the last takes the rest
    if kind == "l":
        # each chunk ends at the end of the line that crosses its nominal boundary
        new = [0]
        for k in range(1, chunks):
            b = max(bounds[k], new[-1])
            if b > 0 and b <= total and data[b - 1:b] != b"\n":
                nl = data.find(b"\n", b)
                b = total if nl < 0 else nl + 1
            new.append(min(b, total))
        new.append(total)
        bounds = new
    for k in range(chunks):
        piece = data[bounds[k]:bounds[k + 1]]
        if elide and not piece:
            continue
        if not await open_next():
            return 1
        await ctx.write_all(state["fd"], piece)
    return 0


PROGRAMS = {"dd": prog_dd, "file": prog_file, "split": prog_split}
