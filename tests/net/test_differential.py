"""Every case of tests/net/cases/*.txt run on the host's sockets and on ours (see sockdiff.py)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.kernel.ksupport import run_program

from .sockdiff import load, run_host, run_kernel

CASES = [(f"{p.stem}: {c.name}", c) for p in sorted((Path(__file__).parent / "cases").glob("*.txt"))
         for c in load(p)]
_runs = itertools.count(1)


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[n for n, _ in CASES])
async def test_same_as_host(kernel, case):
    n = next(_runs)
    tag = f"sd{os.getpid()}x{n}"
    host_dir = tempfile.mkdtemp(prefix="sd", dir="/tmp")
    try:
        want = run_host(case, host_dir, tag)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
    got: list[list[str]] = []
    kdir = f"/tmp/{tag}"

    async def prog(ctx):
        await ctx.mkdir(kdir)
        got.append(await run_kernel(ctx, case, kdir, tag))
        return 0

    r = await run_program(kernel, prog, timeout=10)
    assert r.stderr == b""
    assert got, "the kernel program did not finish"
    # the directories differ; both print DIR
    assert "\n".join(got[0]) == "\n".join(want).replace(host_dir, "DIR")
