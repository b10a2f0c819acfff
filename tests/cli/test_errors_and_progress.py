"""The CLI's error boundary and progress bars."""

from __future__ import annotations

import io

import pytest

import cli.store_cmds as store_cmds
from cli.progress import progress

from .conftest import assert_one_line_error, cli


def test_unexpected_exception_is_one_line_exit_70(monkeypatch, store):
    def boom(arg):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(store_cmds, "resolve_target", boom)
    res = cli("stat", store)
    assert res.code == 70
    assert res.err.strip().splitlines() == [
        "vfsfuse: internal error: RuntimeError: simulated bug (set VFSFUSE_DEBUG=1 for a traceback)"]


def test_debug_env_shows_the_real_exception(monkeypatch, store):
    monkeypatch.setattr(store_cmds, "resolve_target", lambda arg: 1 / 0)
    monkeypatch.setenv("VFSFUSE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli("stat", store)


def test_interrupt_is_exit_130(monkeypatch, store):
    def interrupted(arg):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_cmds, "resolve_target", interrupted)
    res = cli("stat", store)
    assert res.code == 130 and res.err.strip() == "vfsfuse: interrupted"


def test_host_oserror_is_one_line(monkeypatch, store):
    def denied(arg):
        raise PermissionError(13, "Permission denied", "/some/where")

    monkeypatch.setattr(store_cmds, "resolve_target", denied)
    res = cli("stat", store)
    assert res.code == 8
    assert res.err.strip() == "vfsfuse: EACCES: /some/where: Permission denied"


def test_progress_is_silent_when_disabled(capsys):
    with progress(enabled=False) as bar:
        bar("phase", 1, 2)
    assert capsys.readouterr().err == ""


def test_progress_draws_on_stderr_when_enabled(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress(enabled=True) as bar:
        for i in range(1, 11):
            bar("verifying blocks", i, 10)
        bar("deleting", 1, 1)
    text = err.getvalue()
    assert "verifying blocks" in text and "deleting" in text


def test_no_progress_when_stderr_is_not_a_tty(store):
    res = cli("fsck", store, "--verify-data")
    assert res.code == 0 and res.err == ""


def test_mount_and_umount_failures_are_one_line(tmp_path):
    """mount/umount errors come through the group's error boundary like every command's."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    assert_one_line_error(cli("mount", str(tmp_path / "no-store"), str(mnt)), "ENOENT")
    assert_one_line_error(cli("umount", str(mnt)), "EINVAL")
    res = cli("mount", "--cache-size", "1.5", str(tmp_path / "no-store"), str(mnt))
    assert res.code == 2 and "not a whole number of bytes" in res.err
