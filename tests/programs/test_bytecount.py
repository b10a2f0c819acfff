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


def test_assembling_the_userland_starts_the_import() -> None:
    """A fresh process has numpy by its first wc: standard_registry() starts the import."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys\n"
        "from kernel.programs import bytecount\n"
        "assert 'numpy' not in sys.modules and bytecount._loader is None\n"
        "from kernel.userland import standard_registry\n"
        "standard_registry()\n"
        "assert bytecount._loader is not None\n"
        "bytecount._loader.join(30)\n"
        "assert 'numpy' in sys.modules and bytecount._numpy is not None\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
