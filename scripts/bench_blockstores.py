"""Block store throughput and per-call latency (prints figures; not a timed test).

Usage: .venv/bin/python scripts/bench_blockstores.py [DIR ...]   (default: a temp dir in /tmp)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import trio
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blockstores import HostBlockStore, MemoryBlockStore  # noqa: E402

MIB = 1 << 20


async def bench(store, report) -> None:
    blocks = [os.urandom(4 * MIB) for _ in range(32)]
    keys = [xxhash.xxh3_128_hexdigest(b) for b in blocks]
    total = len(blocks) * 4

    start = time.perf_counter()
    for key, data in zip(keys, blocks):
        await store.write(key, data)
    report("write 4 MiB, sequential", f"{total / (time.perf_counter() - start):7.0f} MiB/s")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for key, data in zip(keys, blocks):
            nursery.start_soon(store.write, key, data)
    report("write 4 MiB, 32 concurrent", f"{total / (time.perf_counter() - start):7.0f} MiB/s")

    start = time.perf_counter()
    for key in keys:
        await store.read(key)
    report("read 4 MiB, sequential", f"{total / (time.perf_counter() - start):7.0f} MiB/s")

    for name, call in (
        ("read_range 64 KiB", lambda i: store.read_range(keys[i % 32], 4096, 65536)),
        ("write 4 KiB", lambda i: store.write(f"small{i}", blocks[0][:4096])),
        ("read 4 KiB", lambda i: store.read(f"small{i}")),
        ("exists", lambda i: store.exists(f"small{i}")),
    ):
        start = time.perf_counter()
        for i in range(1000):
            await call(i)
        report(name, f"{(time.perf_counter() - start) * 1000:7.1f} us/call")

    start = time.perf_counter()
    count = 0
    async for _ in store.list_keys():
        count += 1
    report(f"list_keys ({count} keys)", f"{(time.perf_counter() - start) * 1e3:7.1f} ms")

    start = time.perf_counter()
    await store.sync(keys)
    report("sync 32 blocks", f"{(time.perf_counter() - start) * 1e3:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dirs", nargs="*", default=["/tmp"])
    args = parser.parse_args()

    def report(name: str, value: str) -> None:
        sys.stdout.write(f"  {name:32} {value}\n")

    sys.stdout.write("memory\n")
    trio.run(bench, MemoryBlockStore(), report)
    for parent in args.dirs:
        base = tempfile.mkdtemp(prefix="bench-blocks-", dir=parent)
        try:
            sys.stdout.write(f"host in {parent}\n")
            trio.run(bench, HostBlockStore(base), report)
        finally:
            shutil.rmtree(base)


if __name__ == "__main__":
    main()
