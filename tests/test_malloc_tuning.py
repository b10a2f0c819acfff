"""The daemon keeps big buffers in glibc's heap (vfsfuse/malloc_tuning.py): a process that
builds and frees chunk-sized buffers over and over stops page-faulting for each of them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a write-heavy daemon does: fill 4 MiB chunks from 1 MiB requests, free them, repeat.
CHURN = textwrap.dedent("""
    import os, resource, sys
    sys.path.insert(0, {root!r})
    if sys.argv[1] == "tuned":
        from vfsfuse.malloc_tuning import recycle_big_buffers
        assert recycle_big_buffers()
    piece = os.urandom(1 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        chunks = []
        for _ in range(3):
            chunk = bytearray()
            for _ in range(4):
                chunk += piece
            chunks.append(chunk)
        del chunks
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""").format(root=str(ROOT))


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_recycled_buffers_stop_the_page_faults():
    plain, tuned = _faults("plain"), _faults("tuned")
    # 30 rounds x 12 MiB = 92k pages touched; recycled, only the first round faults.
    assert plain > 30_000
    assert tuned * 10 < plain
