"""Byte streams over ``ctx`` with an optional codec in the middle: what tar and the compressors
read archives from and write them to.

``Source`` reads a fd in chunks and, when asked (or when the first bytes say so), pipes them
through a decoder; ``read_exact`` hands out exactly the bytes asked for.  ``Sink`` gathers
writes into 64 KiB syscalls, through an encoder when there is one.  Neither ever holds more
than a chunk or two.
"""

from __future__ import annotations

from typing import Any

from kernel.programs.archive_codec import Decoder, Encoder, decoder_for, sniff
from kernel.programs.common import CHUNK


class Source:
    """Reads of exact sizes from a fd, decoded on the fly."""

    def __init__(self, ctx: Any, fd: int, codec: str | None = None, autodetect: bool = True) -> None:
        self.ctx, self.fd = ctx, fd
        self.codec = codec
        self.autodetect = autodetect
        self._dec: Decoder | None = None
        self._buf = bytearray()
        self._eof = False
        self._started = False
        self.consumed = 0          # decoded bytes handed out

    async def _raw(self) -> bytes:
        return bytes(await self.ctx.read(self.fd, CHUNK))

    async def _fill(self) -> bool:
        if self._eof:
            return False
        data = await self._raw()
        if not self._started:
            self._started = True
            while data and len(data) < 8:
                more = await self._raw()
                if not more:
                    break
                data += more
            kind = self.codec or (sniff(data) if self.autodetect else None)
            if kind:
                self.codec = kind
                self._dec = decoder_for(kind)
        if not data:
            self._eof = True
            if self._dec is not None:
                self._buf += self._dec.finish()
            return False
        self._buf += self._dec.feed(data) if self._dec is not None else data
        return True

    async def read_exact(self, n: int) -> bytes:
        """*n* bytes, fewer only at the end of the stream."""
        while len(self._buf) < n:
            if not await self._fill():
                break
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += len(out)
        return out

    async def skip(self, n: int) -> int:
        """Drop *n* bytes; how many there were."""
        done = 0
        while done < n:
            piece = await self.read_exact(min(n - done, CHUNK))
            if not piece:
                break
            done += len(piece)
        return done


class Sink:
    """Buffered writes to a fd, encoded on the way when there is an encoder."""

    def __init__(self, ctx: Any, fd: int, encoder: Encoder | None = None) -> None:
        self.ctx, self.fd, self.encoder = ctx, fd, encoder
        self._parts: list[bytes] = []
        self._size = 0
        self.written = 0           # bytes given to ``write`` (before encoding)

    async def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.encoder is not None:
            data = self.encoder.compress(data)
            if not data:
                return
        self._parts.append(data)
        self._size += len(data)
        if self._size >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts, self._size = [], 0
            await self.ctx.write_all(self.fd, data)

    async def close(self) -> None:
        if self.encoder is not None:
            tail = self.encoder.flush()
            if tail:
                self._parts.append(tail)
        await self._flush()
