"""The daemon keeps big buffers in glibc's heap (vfsfuse/malloc_tuning.py): a process that
builds and frees chunk-sized buffers over and over stops page-faulting for each of them,
and what it keeps after a burst stays bounded."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.paths import REPO

ROOT = REPO

# Run in a fresh interpreter: malloc settings are per process.  argv[1] "tuned" applies ours.
# chunks(n) is what a write-heavy daemon does: n 4 MiB chunks filled from 1 MiB requests.
PRELUDE = textwrap.dedent("""
    import os, resource, sys, threading
    sys.path.insert(0, {root!r})
    if sys.argv[1] == "tuned":
        from vfsfuse.daemon.tuning.malloc_tuning import recycle_big_buffers
        assert recycle_big_buffers()
    piece = os.urandom(1 << 20)

    def chunks(n):
        out = []
        for _ in range(n):
            chunk = bytearray()
            for _ in range(4):
                chunk += piece
            out.append(chunk)
        return out
""").format(root=str(ROOT))

CHURN = PRELUDE + textwrap.dedent("""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        held = chunks(3)
        del held
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")

# Eight I/O threads holding 32 MiB each at once, then freeing it all.
THREADS = PRELUDE + textwrap.dedent("""
    barrier = threading.Barrier(8)

    def work():
        held = chunks(8)
        barrier.wait()
        del held

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print([line for line in open("/proc/self/status") if line.startswith("VmRSS")][0].split()[1])
""")


def _run(script: str, mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_recycled_buffers_stop_the_page_faults():
    plain, tuned = _run(CHURN, "plain"), _run(CHURN, "tuned")
    # 30 rounds x 12 MiB = 92k pages touched; recycled, only the first round faults.
    assert plain > 30_000
    assert tuned * 10 < plain


def test_memory_kept_after_a_burst_is_bounded_whatever_the_thread_count():
    """256 MiB held by eight threads at once: afterwards at most two arenas keep up to the
    trim threshold each (glibc's default would keep up to 8 per CPU, ~270 MiB here)."""
    rss_mib = _run(THREADS, "tuned") // 1024
    assert rss_mib < 2 * 64 + 48  # two arenas of 64 MiB, and the interpreter
