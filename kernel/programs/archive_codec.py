"""The stream codecs of the archive family: gzip, bzip2 and xz over zlib/bz2/lzma, push style.

``ctx`` is async and the stdlib codecs are sync, so nothing here reads or writes: a decoder is
fed the compressed bytes as they arrive (``feed``) and hands back what it could decode, an
encoder likewise; the programs move the chunks through ``ctx``.  Memory stays at one chunk plus
the codec's window, whatever the size of the data.

Concatenated streams (``cat a.gz b.gz``) decode as one, as GNU gzip/bzip2/xz do.  The gzip
encoder writes GNU gzip's exact header (OS 3, XFL by level) around zlib's raw deflate, which
at the same level is GNU gzip's own output byte for byte.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Protocol


class CodecError(Exception):
    """Input that is not (or not entirely) in the format: one line for the user."""


class Decoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
LZMA_ALONE = b"\x5d\x00\x00"


def sniff(head: bytes) -> str | None:
    """Which compression the first bytes of a stream announce (``gzip``, ``bzip2``, ``xz``)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return None


# ---------------------------------------------------------------------------- gzip


@dataclass
class GzipHeader:
    """What a gzip member's header says (for ``gzip -l``/``-N``)."""

    mtime: int = 0
    name: bytes | None = None
    size: int = 10


def parse_gzip_header(data: bytes) -> GzipHeader | None:
    """The header at the start of *data*, or None if *data* is too short to hold it all."""
    if data[:2] != GZIP_MAGIC[: len(data[:2])] or (len(data) >= 2 and data[:2] != GZIP_MAGIC):
        raise CodecError("not in gzip format")
    if len(data) < 10:
        return None
    if data[2] != 8:
        raise CodecError(f"unknown method {data[2]} -- not supported")
    flags = data[3]
    mtime = struct.unpack_from("<I", data, 4)[0]
    pos = 10
    if flags & 4:  # FEXTRA
        if len(data) < pos + 2:
            return None
        pos += 2 + struct.unpack_from("<H", data, pos)[0]
    name = None
    for bit in (8, 16):  # FNAME, FCOMMENT
        if flags & bit:
            end = data.find(b"\0", pos)
            if end < 0:
                return None
            if bit == 8:
                name = data[pos:end]
            pos = end + 1
    if flags & 2:  # FHCRC
        pos += 2
    if len(data) < pos:
        return None
    return GzipHeader(mtime, name, pos)


class GzipDecoder:
    """gunzip: members one after the other, CRC and length checked; zero padding after the
    last member is allowed, other trailing bytes are ``trailing garbage``."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._state = "header"          # header -> body -> trailer -> header ...
        self._pending = b""
        self._crc = 0
        self._size = 0
        self.members = 0
        self.trailing_garbage = False
        self.first_header: GzipHeader | None = None

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        if self._pending:
            data, self._pending = self._pending + data, b""
        while data and not self.trailing_garbage:
            if self._state == "header":
                if self.members and not data.startswith(GZIP_MAGIC[: len(data)]):
                    if data.strip(b"\0"):
                        self.trailing_garbage = True
                    break
                try:
                    header = parse_gzip_header(data)
                except CodecError:
                    if not self.members:
                        raise
                    self.trailing_garbage = True
                    break
                if header is None:
                    self._pending = data
                    break
                if self.first_header is None:
                    self.first_header = header
                data = data[header.size:]
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._crc = self._size = 0
                self._state = "body"
            elif self._state == "body":
                try:
                    chunk = self._z.decompress(data)
                except zlib.error:
                    raise CodecError("invalid compressed data--format violated") from None
                if chunk:
                    self._crc = zlib.crc32(chunk, self._crc)
                    self._size += len(chunk)
                    out.append(chunk)
                if not self._z.eof:
                    break
                data = self._z.unused_data
                self._state = "trailer"
            else:
                if len(data) < 8:
                    self._pending = data
                    break
                crc, size = struct.unpack_from("<II", data)
                if crc != self._crc:
                    raise CodecError("invalid compressed data--crc error")
                if size != self._size & 0xFFFFFFFF:
                    raise CodecError("invalid compressed data--length error")
                self.members += 1
                data = data[8:]
                self._state = "header"
        return b"".join(out)

    def finish(self) -> bytes:
        if self._state != "header" or not self.members:
            raise CodecError("unexpected end of file")
        return b""


class GzipEncoder:
    """gzip: GNU's header (name and mtime unless -n), raw deflate, CRC-32 and size."""

    def __init__(self, level: int = 6, name: bytes | None = None, mtime: int = 0) -> None:
        flags = 8 if name else 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self._header: bytes | None = (GZIP_MAGIC + bytes([8, flags]) + struct.pack("<I", mtime & 0xFFFFFFFF)
                                      + bytes([xfl, 3]) + ((name + b"\0") if name else b""))
        self._z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
        self._crc = 0
        self._size = 0

    def _head(self) -> bytes:
        h, self._header = self._header or b"", None
        return h

    def compress(self, data: bytes) -> bytes:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return self._head() + self._z.compress(data)

    def flush(self) -> bytes:
        return self._head() + self._z.flush() + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF)


# ---------------------------------------------------------------------------- bzip2 and xz


class _MultiStream:
    """bz2/lzma decompressors restarted on each concatenated stream."""

    name = ""

    def __init__(self) -> None:
        self._d = self._new()
        self._started = False
        self.trailing_garbage = False

    def _new(self) -> bz2.BZ2Decompressor | lzma.LZMADecompressor:
        raise NotImplementedError

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            if self._d.eof:
                if not data.strip(b"\0"):
                    return b"".join(out)
                self._d = self._new()
                self._started = False
            try:
                out.append(self._d.decompress(data))
            except (OSError, EOFError, lzma.LZMAError) as e:
                if self._started or not out:
                    raise CodecError(self._message(e)) from None
                self.trailing_garbage = True
                return b"".join(out)
            self._started = True
            data = self._d.unused_data if self._d.eof else b""
        return b"".join(out)

    def _message(self, e: Exception) -> str:
        return str(e)

    def finish(self) -> bytes:
        if not self._d.eof:
            raise CodecError("unexpected end of input" if self.name == "bzip2" else "Unexpected end of input")
        return b""


class Bzip2Decoder(_MultiStream):
    name = "bzip2"

    def _new(self) -> bz2.BZ2Decompressor:
        return bz2.BZ2Decompressor()

    def _message(self, e: Exception) -> str:
        return "data integrity (CRC) error in data" if self._started else "bad magic number (file not created by bzip2)"


class XzDecoder(_MultiStream):
    name = "xz"

    def _new(self) -> lzma.LZMADecompressor:
        return lzma.LZMADecompressor(lzma.FORMAT_AUTO)

    def _message(self, e: Exception) -> str:
        return "Compressed data is corrupt" if self._started else "File format not recognized"


def bzip2_encoder(level: int = 9) -> Encoder:
    return bz2.BZ2Compressor(max(1, min(level, 9)))


def xz_encoder(level: int = 6, extreme: bool = False) -> Encoder:
    preset = max(0, min(level, 9)) | (lzma.PRESET_EXTREME if extreme else 0)
    return lzma.LZMACompressor(lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)


def decoder_for(kind: str) -> Decoder:
    if kind == "gzip":
        return GzipDecoder()
    if kind == "bzip2":
        return Bzip2Decoder()
    if kind == "xz":
        return XzDecoder()
    raise ValueError(kind)


def encoder_for(kind: str, level: int | None = None) -> Encoder:
    if kind == "gzip":
        return GzipEncoder(6 if level is None else level)
    if kind == "bzip2":
        return bzip2_encoder(9 if level is None else level)
    if kind == "xz":
        return xz_encoder(6 if level is None else level)
    raise ValueError(kind)
