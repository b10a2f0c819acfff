"""The command line itself: help everywhere, size parsing, mkfs validation, one-line errors."""

from __future__ import annotations

import os

import pytest

from cli.main import vfsfuse
from cli.params import human, parse_duration, parse_size

from .conftest import assert_one_line_error, cli, script


def _all_command_paths(group=vfsfuse, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,)
        if hasattr(cmd, "commands"):
            yield from _all_command_paths(cmd, prefix + (name,))


@pytest.mark.parametrize("path", list(_all_command_paths()), ids=" ".join)
def test_help_on_every_command(path):
    res = cli(*path, "--help")
    assert res.code == 0
    assert res.out.startswith("Usage: vfsfuse " + " ".join(path))


def test_top_level_help_documents_exit_codes():
    res = script("--help")
    assert res.code == 0
    for line in ("0    success", "1    fsck --repair", "2    usage error", "4    problems left",
                 "8    the operation failed", "70   internal error", "130  interrupted"):
        assert line in res.out


@pytest.mark.parametrize("text,value", [("4096", 4096), ("64K", 65536), ("4M", 4 << 20),
                                        ("1G", 1 << 30), ("64KiB", 65536), ("2kb", 2048),
                                        ("1.5M", 3 << 19), ("0.5k", 512)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "4X", "-1", "1.5", "0.3K", "M", "1.M"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_human():
    assert [human(n) for n in (0, 1023, 1536, 5 << 30, 3 << 40)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 GiB", "3.0 TiB"]


def test_parse_duration():
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("2h") == 7200
    assert parse_duration("7d") == 7 * 86400


def test_mkfs_creates_store_with_sizes(tmp_path):
    path = str(tmp_path / "s")
    res = cli("mkfs", path, "--chunk-size", "64K", "--inline-threshold", "8K")
    assert res.code == 0, res.err
    assert os.path.isfile(os.path.join(path, "meta.db"))
    res = cli("stat", path, "--json")
    assert res.code == 0
    assert '"chunk_size": 65536' in res.out and '"inline_threshold": 8192' in res.out


@pytest.mark.parametrize("args", [["--chunk-size", "3000"], ["--chunk-size", "2K"],
                                  ["--chunk-size", "128M"],
                                  ["--chunk-size", "64K", "--inline-threshold", "64K"]])
def test_mkfs_validates_sizes(tmp_path, args):
    res = script("mkfs", str(tmp_path / "s"), *args)
    assert_one_line_error(res, "EINVAL")
    assert not os.path.exists(tmp_path / "s" / "meta.db")


def test_mkfs_bad_size_syntax_is_a_usage_error(tmp_path):
    res = script("mkfs", str(tmp_path / "s"), "--chunk-size", "lots")
    assert_one_line_error(res, "usage", 2)
    assert "not a size" in res.err and "'vfsfuse mkfs --help'" in res.err


def test_mkfs_refuses_existing_store_without_force(store):
    res = script("mkfs", store)
    assert_one_line_error(res, "EEXIST")
    assert cli("mkfs", store, "--force").code == 0
    stat = cli("stat", store, "--json")
    assert '"files": 0' in stat.out


@pytest.mark.parametrize("args,code", [
    (["info", "/nonexistent/x"], "ENOENT"),
    (["stat", "/nonexistent"], "ENOENT"),
    (["fsck", "/nonexistent"], "ENOENT"),
    (["gc", "/tmp"], "EINVAL"),
    (["dump", "/nonexistent"], "ENOENT"),
])
def test_errors_are_one_line_with_exit_8(args, code):
    assert_one_line_error(script(*args), code)


def test_info_on_missing_path_in_store(store):
    assert_one_line_error(script("info", f"{store}:/no/such/file"), "ENOENT")


def test_mounted_store_is_refused_offline(store):
    import fcntl

    lock = os.path.join(store, "run", "lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} /mnt/somewhere\n".encode())
        fcntl.flock(fd, fcntl.LOCK_EX)
        for args in (["fsck", store], ["gc", store], ["stat", store], ["info", f"{store}:/hello.txt"]):
            res = script(*args)
            assert_one_line_error(res, "EBUSY")
            assert str(os.getpid()) in res.err and "/mnt/somewhere" in res.err
    finally:
        os.close(fd)
    # a stale lock (no flock held, even with a live pid in it) does not block
    assert script("fsck", store).code == 0


def test_unknown_command_is_usage_error():
    res = script("frobnicate")
    assert_one_line_error(res, "usage", 2)
    assert_one_line_error(script("--bogus"), "usage", 2)
    res = script("versions")                   # a group alone shows its help
    assert res.code == 2 and res.err.startswith("Usage: vfsfuse versions")


def test_demo_runs_and_shows_dedup_and_chunk_map():
    res = script("demo")
    assert res.code == 0, res.err
    assert "dedup ratio:" in res.out
    assert "# index offset length hash refcount block_file" in res.out
    assert "\nclean:" in res.out
    assert "Traceback" not in res.err


def test_offline_work_holds_the_store_lock(store):
    """While one offline command works on a store, no daemon (or second fsck) can take it."""
    from vfsfuse.storage.fsck import exclusive_store

    with exclusive_store(store):
        assert_one_line_error(script("fsck", store), "EBUSY")
        assert_one_line_error(script("gc", store), "EBUSY")
    assert script("gc", store).code == 0


@pytest.mark.parametrize("module", ["cli", "cli.main"])
def test_python_dash_m_runs_the_same_command(module, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    helped = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                            cwd=root)
    assert helped.returncode == 0 and "mkfs" in helped.stdout and "mount" in helped.stdout
    made = subprocess.run([sys.executable, "-m", module, "mkfs", str(tmp_path / "s")], capture_output=True,
                          text=True, cwd=root)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "s" / "meta.db").exists()
    missing = subprocess.run([sys.executable, "-m", module, "stat", str(tmp_path / "nope")],
                             capture_output=True, text=True, cwd=root)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
