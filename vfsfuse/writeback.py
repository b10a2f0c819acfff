"""The write-back buffer: dirty chunks kept in memory until they are flushed.

Random small writes land here instead of rewriting a (up to 4 MiB) block each
time; a chunk becomes one new block when it is flushed (on fsync, on the last
close, every second, under memory pressure and at shutdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DirtyChunk:
    """The current bytes of one chunk.

    ``data`` may be longer than ``length`` (spare capacity, grown geometrically so a
    chunk filled by sequential writes is not re-copied at every write); bytes past
    ``length`` are always zero.
    """

    data: bytearray
    length: int
    generation: int = 0  # bumped on every change; lets a flush tell if it raced a write

    def view(self) -> memoryview:
        return memoryview(self.data)[:self.length]


@dataclass(slots=True)
class DirtyFile:
    chunks: dict[int, DirtyChunk] = field(default_factory=dict)


class WriteBackBuffer:
    """Dirty chunks of every inode, bounded by ``limit`` bytes in total."""

    def __init__(self, limit: int, chunk_size: int) -> None:
        self.limit = limit
        self.chunk_size = chunk_size
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
        chunk = f.chunks[idx] = DirtyChunk(data, len(data), self._gen)
        self.total += len(data)
        return chunk

    def write_into(self, chunk: DirtyChunk, offset: int, data: memoryview) -> None:
        """Copy *data* into *chunk* at *offset*, growing it (zero-filled) as needed."""
        end = offset + len(data)
        buf = chunk.data
        if end > len(buf):
            grow = min(self.chunk_size, max(end, 2 * len(buf), 65536)) - len(buf)
            buf.extend(bytes(grow))
            self.total += grow
        buf[offset:end] = data
        if end > chunk.length:
            chunk.length = end
        self._gen += 1
        chunk.generation = self._gen

    def truncate_chunk(self, chunk: DirtyChunk, length: int) -> None:
        if chunk.length > length:
            chunk.data[length:chunk.length] = bytes(chunk.length - length)
            chunk.length = length
            self._gen += 1
            chunk.generation = self._gen

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
