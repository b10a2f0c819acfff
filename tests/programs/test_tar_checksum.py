"""tar's C-speed header checksums give exactly what tarfile's own function gives."""

from __future__ import annotations

import random
import struct
import tarfile

import pytest

from kernel.programs import tar_checksum


def _reference(block: bytes) -> tuple[int, int]:
    """tarfile's definition, written out: the checksum field counts as eight spaces."""
    unsigned = 256 + sum(block[:148]) + sum(block[156:512])
    signed = 256 + sum(struct.unpack_from("148b8x356b", block))
    return unsigned, signed


def _blocks() -> list[bytes]:
    rnd = random.Random(5)
    blocks = [bytes(512), b"\xff" * 512, b"\x7f" * 512, b"\x80" * 512]
    blocks += [rnd.randbytes(512) for _ in range(300)]
    for name in ("f", "tree/d1/f2.txt", "é" * 40, "x" * 99):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = 12345, 0o644, 1_700_000_000
        blocks.append(ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")[:512])
    return blocks


@pytest.mark.parametrize("block", _blocks(), ids=lambda b: f"{sum(b)}")
def test_checksums_match_tarfiles_definition(block: bytes) -> None:
    assert tar_checksum.header_checksums(block) == _reference(block)
    assert tar_checksum.header_checksums(bytearray(block)) == _reference(block)


def test_tarfile_uses_them_and_round_trips() -> None:
    from kernel.programs import archive_tar  # noqa: F401  (installs them)

    assert tarfile.calc_chksums is tar_checksum.header_checksums
    ti = tarfile.TarInfo("dir/ünï")
    ti.size, ti.uid, ti.uname = 7, 1000, "user"
    buf = ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    back = tarfile.TarInfo.frombuf(buf[:512], "utf-8", "surrogateescape")
    assert (back.name, back.size, back.uid, back.uname) == ("dir/ünï", 7, 1000, "user")
    corrupt = bytearray(buf[:512])
    corrupt[0] ^= 1
    with pytest.raises(tarfile.InvalidHeaderError):
        tarfile.TarInfo.frombuf(bytes(corrupt), "utf-8", "surrogateescape")
