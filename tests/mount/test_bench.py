"""scripts/bench-mount --quick runs end to end (a smoke test, not a measurement)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mount, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_mount_quick_smoke():
    p = subprocess.run([str(ROOT / "scripts" / "bench-mount"), "--quick"], capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    for label in ("seq write", "cold read", "random 4 KiB", "create", "walk + lstat", "unlink",
                  "untar stdlib", "md5sum", "git init", "rm -rf", "daemon peak RSS",
                  "(store's disk itself, no FUSE) cold read", "(the file's block files, 3 at a time"):
        assert label in out, out
    block_row = next(line for line in out.splitlines() if line.startswith("(the file's block files"))
    assert float(block_row.split()[-2]) > 0, block_row  # the reference row measured something
    assert "target" in out and "vs tmpfs" in out


def test_bench_handlers_smoke():
    p = subprocess.run([str(ROOT / "scripts" / "bench-handlers"), "--files", "50"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = {line[:30].strip(): line.split() for line in p.stdout.splitlines()[1:]}
    for op in ("create", "write 20 KB", "setattr (times)", "unlink", "forget (destroys)"):
        assert rows[op][-2] == "50" and float(rows[op][-1]) > 0, p.stdout


def test_bench_mount_repeat_reports_medians_and_the_peak_rss_maximum():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("bench_mount", ROOT / "scripts" / "bench_mount.py")
    bm = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_mount", bm)  # dataclasses look their module up by name
    spec.loader.exec_module(bm)
    runs = [[bm.Result("create", "files/s", True, t, o, 2000), bm.Result("daemon peak RSS", "MiB", False, 0, r, 300)]
            for t, o, r in ((100.0, 1900.0, 150.0), (300.0, 2500.0, 170.0), (200.0, 2100.0, 160.0))]
    create, rss = bm.median_results(runs)
    assert (create.tmpfs, create.ours, create.meets) == (200.0, 2100.0, True)
    assert rss.ours == 170.0
