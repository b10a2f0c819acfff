"""wc's byte counts: numpy's path agrees with bytes.count at every size edge."""

from __future__ import annotations

import random

import pytest

from kernel.programs import bytecount


@pytest.mark.parametrize("size", [0, 1, 100, bytecount.NUMPY_FROM - 1, bytecount.NUMPY_FROM,
                                  (1 << 18) - 1, 1 << 18, (1 << 18) + 1, (1 << 22) + 7])
def test_counts_match_bytes_count(size: int) -> None:
    assert bytecount.wait_for_numpy()
    data = random.Random(size).randbytes(size)
    assert bytecount.count_byte(data, 10) == data.count(b"\n")
    assert bytecount.count_byte(data, 0) == data.count(b"\0")
    starts = len(data) - sum(data.count(bytes([b])) for b in range(0x80, 0xC0))
    assert bytecount.count_utf8_starts(data) == starts


def test_utf8_starts_count_characters() -> None:
    assert bytecount.wait_for_numpy()
    text = ("héllo wörld ✓ 𝄞\n" * 10000).encode()
    assert bytecount.count_utf8_starts(text) == len(text.decode())


def test_numpy_loads_in_a_thread_and_counts_agree_before_it() -> None:
    """Before the import is done a big buffer is counted by bytes.count, with the same answer."""
    data = random.Random(1).randbytes(1 << 20)
    first = bytecount.count_byte(data, 10)  # may start the import, must not wait for it
    assert bytecount.wait_for_numpy()
    assert first == bytecount.count_byte(data, 10) == data.count(b"\n")
