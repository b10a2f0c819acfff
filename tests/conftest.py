"""Shared pytest configuration.

Every test fails when the project's own loggers (``vfsfuse.*``: the storage, the kernel, the
daemon) record a warning or an error it did not expect, the way S3QL's test suite does: a
warning nobody asserts on is a bug report nobody reads.  A test that provokes one on purpose
says so with ``@pytest.mark.allow_log_warnings`` (and usually asserts on ``caplog``).
Daemons running in other processes are checked through their log file (tests/mount/conftest.py).
"""

from __future__ import annotations

import logging

import pytest


def unexpected_log_lines(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records
            if r.levelno >= logging.WARNING and r.name.startswith("vfsfuse")]


@pytest.fixture(autouse=True)
def _fail_on_unexpected_log_warnings(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture):
    yield
    if request.node.get_closest_marker("allow_log_warnings"):
        return
    bad = unexpected_log_lines(caplog.get_records("setup") + caplog.get_records("call"))
    if bad:
        pytest.fail("unexpected log warnings/errors (mark the test allow_log_warnings if intended):\n  "
                    + "\n  ".join(bad[:20]), pytrace=False)
