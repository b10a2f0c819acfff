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


# Eight I/O threads holding 32 MiB each at once, then freeing it all.
THREADS = textwrap.dedent("""
    import os, sys, threading
    sys.path.insert(0, {root!r})
    from vfsfuse.malloc_tuning import recycle_big_buffers
    assert recycle_big_buffers()
    piece = os.urandom(1 << 20)
    barrier = threading.Barrier(8)

    def work():
        buffers = []
        for _ in range(8):
            chunk = bytearray()
            for _ in range(4):
                chunk += piece
            buffers.append(chunk)
        barrier.wait()
        del buffers

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print([line for line in open("/proc/self/status") if line.startswith("VmRSS")][0].split()[1])
""").format(root=str(ROOT))


def test_memory_kept_after_a_burst_is_bounded_whatever_the_thread_count():
    """256 MiB held by eight threads at once: afterwards at most two arenas keep up to the
    trim threshold each (glibc's default would keep up to 8 per CPU, ~270 MiB here)."""
    out = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, check=True)
    rss_mib = int(out.stdout) // 1024
    assert rss_mib < 2 * 64 + 48  # two arenas of 64 MiB, and the interpreter
