"""The write-back buffer: dirty chunks kept in memory until they are flushed.

Random small writes land here instead of rewriting a (up to 4 MiB) block each
time; a chunk becomes one new block when it is flushed (on fsync, on the last
close, every second, under memory pressure and at shutdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DirtyChunk:
    """The current bytes of one chunk, up to its furthest written byte."""

    data: bytearray
    generation: int = 0  # bumped on every change; lets a flush tell if it raced a write
    # A flush is storing a view of ``data``: the next change copies it first (copy-on-write),
    # so the bytes being hashed and written never change under the block's name.
    frozen: bool = False

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class DirtyFile:
    chunks: dict[int, DirtyChunk] = field(default_factory=dict)


class WriteBackBuffer:
    """Dirty chunks of every inode, bounded by ``limit`` bytes in total."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.files: dict[int, DirtyFile] = {}
        self.total = 0
        self._gen = 0

    def get(self, ino: int, idx: int) -> DirtyChunk | None:
        f = self.files.get(ino)
        return f.chunks.get(idx) if f else None

    def put(self, ino: int, idx: int, data: bytearray) -> DirtyChunk:
        f = self.files.get(ino)
        if f is None:
            f = self.files[ino] = DirtyFile()
        old = f.chunks.get(idx)
        if old is not None:
            self.total -= len(old.data)
        self._gen += 1
        chunk = f.chunks[idx] = DirtyChunk(data, self._gen)
        self.total += len(data)
        return chunk

    def write_into(self, chunk: DirtyChunk, offset: int, data: memoryview) -> None:
        """Copy *data* into *chunk* at *offset*, zero-filling any gap before it.

        Appends (the sequential-write case) go through ``+=``, which copies each byte
        once and lets the allocator grow the buffer in place."""
        buf = self._thawed(chunk)
        size = len(buf)
        end = offset + len(data)
        if end <= size:
            buf[offset:end] = data
        else:
            if offset > size:
                buf += bytes(offset - size)
            elif offset < size:
                del buf[offset:]
            buf += data
            self.total += len(buf) - size
        self._gen += 1
        chunk.generation = self._gen

    def truncate_chunk(self, chunk: DirtyChunk, length: int) -> None:
        if len(chunk.data) > length:
            self.total -= len(chunk.data) - length
            del self._thawed(chunk)[length:]
            self._gen += 1
            chunk.generation = self._gen

    @staticmethod
    def _thawed(chunk: DirtyChunk) -> bytearray:
        """The chunk's buffer, copied first if a flush holds a view of it."""
        if chunk.frozen:
            chunk.data = bytearray(chunk.data)
            chunk.frozen = False
        return chunk.data

    def drop(self, ino: int, idx: int, generation: int | None = None) -> None:
        """Forget a chunk (after it was flushed, unless it changed since *generation*)."""
        f = self.files.get(ino)
        if f is None:
            return
        chunk = f.chunks.get(idx)
        if chunk is None or (generation is not None and chunk.generation != generation):
            return
        del f.chunks[idx]
        self.total -= len(chunk.data)
        if not f.chunks:
            del self.files[ino]

    def drop_from(self, ino: int, first_idx: int) -> None:
        f = self.files.get(ino)
        if f is None:
            return
        for idx in [i for i in f.chunks if i >= first_idx]:
            self.drop(ino, idx)

    def drop_file(self, ino: int) -> None:
        self.drop_from(ino, 0)

    def dirty_indices(self, ino: int) -> list[int]:
        f = self.files.get(ino)
        return sorted(f.chunks) if f else []

    @property
    def over_limit(self) -> bool:
        return self.total > self.limit
