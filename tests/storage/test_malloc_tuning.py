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
    def rss_kib():
        return int([line for line in open("/proc/self/status") if line.startswith("VmRSS")][0].split()[1])
    if len(sys.argv) > 2:  # "trimmed": the daemon's trimmer samples the quiet heap twice
        from vfsfuse.daemon.tuning.malloc_tuning import KeptMemoryTrimmer
        trimmer = KeptMemoryTrimmer(slack_bytes=0)
        kept = rss_kib()
        trimmer.check()
        assert trimmer.check(), "a quiet heap holding free memory was not trimmed"
        assert not trimmer.check(), "a trimmed heap was trimmed again"
        print(kept, rss_kib())
    else:
        print(rss_kib())
""")


def _run(script: str, *modes: str) -> int:
    return _run_all(script, *modes)[0]


def _run_all(script: str, *modes: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", script, *modes], capture_output=True, text=True, check=True)
    return [int(word) for word in out.stdout.split()]


def test_recycled_buffers_stop_the_page_faults():
    plain, tuned = _run(CHURN, "plain"), _run(CHURN, "tuned")
    # 30 rounds x 12 MiB = 92k pages touched; recycled, only the first round faults.
    assert plain > 30_000
    assert tuned * 10 < plain


def test_memory_kept_after_a_burst_is_bounded_and_goes_back_once_quiet():
    """256 MiB held by eight threads at once: the one heap keeps at most the trim threshold
    of it, whatever the thread count, and the daemon's trimmer gives that back once nothing
    allocates."""
    kept_kib, trimmed_kib = _run_all(THREADS, "tuned", "trimmed")
    assert kept_kib // 1024 < 64 + 32, (kept_kib, trimmed_kib)  # the trim threshold, the interpreter
    assert trimmed_kib // 1024 < 32, (kept_kib, trimmed_kib)  # the interpreter and the last pieces
