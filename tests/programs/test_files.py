"""The file family where the differential corpus cannot reach: terminals, user names and
dates, random names, block counts, absolute paths, programs the host lacks (tree), big files."""

from __future__ import annotations

import re
import time

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs.common import human_size, mode_string, quote, quote_if_needed
from kernel.programs.files_base import parse_mode, parse_size
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs

ENV = {"PATH": "/bin:/usr/bin", "HOME": "/root", "LC_ALL": "C", "TZ": "UTC"}


def run_all(steps, files=None, env=None):
    """Boot one kernel, write *files*, run each argv of *steps* in /tmp/w; the results."""
    async def main():
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=standard_registry(), env=dict(env or ENV))
            await kernel.boot(nursery)
            try:
                await kernel.vfs.mkdir("/tmp/w", recursive=True)
                for name, data in (files or {}).items():
                    parent = name.rsplit("/", 1)[0] if "/" in name else ""
                    if parent:
                        await kernel.vfs.mkdir(f"/tmp/w/{parent}", recursive=True)
                    await kernel.vfs.write_file(f"/tmp/w/{name}", data)
                out = []
                for step in steps:
                    if callable(step):
                        out.append(await step(kernel))
                    else:
                        out.append(await kernel.run(step, input=b"", cwd="/tmp/w", timeout=30))
                return out
            finally:
                await kernel.shutdown()
    return trio.run(main)


def run1(argv, files=None, env=None):
    return run_all([argv], files, env)[0]


def on_tty(argv, cols=40, env=None):
    """Run *argv* on a terminal of *cols* columns in /tmp/w; the screen text (CRLF -> LF)."""
    async def step(kernel):
        h = await kernel.open_terminal(argv, cols=cols, cwd="/tmp/w", env=dict(env or ENV))
        chunks = []
        with trio.move_on_after(10):
            while True:
                try:
                    data = await h.read(65536)
                except Exception:
                    break
                if not data:
                    break
                chunks.append(data)
        await h.close()
        return b"".join(chunks).replace(b"\r\n", b"\n")
    return step


# ---------------------------------------------------------------- helpers

def test_human_size_rounds_up_like_gnu():
    assert [human_size(n) for n in (0, 1023, 1024, 1025, 10239, 10240, 1048576, 5 * 10**9)] == \
        ["0", "1023", "1.0K", "1.1K", "10K", "10K", "1.0M", "4.7G"]
    assert human_size(1500, si=True) == "1.5k"


def test_quoting_of_names():
    assert quote("x") == "'x'" and quote_if_needed("x") == "x"
    assert quote_if_needed("a b") == "'a b'"
    assert quote("it's") == '"it\'s"'  # GNU prefers double quotes around a single quote
    assert quote_if_needed("a\tb") == "'a'$'\\tb'"  # valid bash, one quote pair shorter than GNU's


def test_mode_strings_and_parsing():
    assert mode_string(0o100644) == "-rw-r--r--"
    assert mode_string(0o41777) == "drwxrwxrwt"
    assert mode_string(0o104644) == "-rwSr--r--"
    assert parse_mode("u+x,g-w", 0o664, False) == 0o744
    assert parse_mode("=rw", 0o777, False, umask=0o022) == 0o644
    assert parse_mode("a+X", 0o644, True) == 0o755
    assert parse_mode("o=u", 0o640, False) == 0o646
    with pytest.raises(ValueError):
        parse_mode("u+q", 0, False)
    assert parse_size("2K") == 2048 and parse_size("2KB") == 2000 and parse_size("1MiB") == 1 << 20


# ---------------------------------------------------------------- ls

def test_ls_columns_on_a_terminal_use_the_window_width():
    files = {f"file{i:02d}": b"" for i in range(12)}
    screen = run_all([on_tty(["ls"], cols=40)], files)[0]
    lines = screen.decode().splitlines()
    assert len(lines) == 3 and lines[0].split() == ["file00", "file03", "file06", "file09"]
    assert all(len(line) < 40 for line in lines)


def test_ls_columns_follow_COLUMNS_and_one_per_line_otherwise():
    files = {f"f{i}": b"" for i in range(6)}
    r1, r2 = run_all([["ls"], ["ls", "-C"]], files, env={**ENV, "COLUMNS": "12"})
    assert r1.stdout == b"f0\nf1\nf2\nf3\nf4\nf5\n"
    assert r2.stdout.decode().splitlines() == ["f0  f2\tf4", "f1  f3\tf5"]  # as GNU ls 9.1


def test_ls_color_auto_colors_only_on_a_terminal():
    files = {"d/x": b"", "plain": b""}
    env = {**ENV, "TERM": "xterm"}
    screen, piped = run_all([on_tty(["ls", "--color=auto"], env=env), ["ls", "--color=auto"]], files, env)
    assert b"\x1b[01;34md\x1b[0m" in screen and b"plain" in screen
    assert piped.stdout == b"d\nplain\n"


def test_ls_quotes_odd_names_on_a_terminal_only():
    files = {"a b": b""}
    screen, piped = run_all([on_tty(["ls"]), ["ls"]], files)
    assert b"'a b'" in screen and piped.stdout == b"a b\n"


def test_ls_long_names_dates_and_total():
    old = 1_000_000_000  # 2001-09-09 01:46:40 UTC: more than six months ago
    steps = [
        ["touch", "-d", f"@{old}", "f"],
        ["ls", "-l", "f"],
        ["ln", "-s", "f", "lnk"],
        ["ls", "-l", "lnk"],
        ["ls", "-ls"],
    ]
    r = run_all(steps, {"f": b"x" * 5000})
    assert r[1].stdout == b"-rw-r--r-- 1 0 0 5000 Sep  9  2001 f\n"
    line = r[3].stdout.decode()
    assert re.fullmatch(r"lrwxrwxrwx 1 0 0 1 \w{3} [ \d]\d \d\d:\d\d lnk -> f\n", line), line
    assert r[4].stdout.startswith(b"total ")


def test_ls_long_uses_etc_passwd_names_from_the_sandbox():
    async def write_passwd(kernel):
        await kernel.vfs.write_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                    b"alice:x:1000:100::/home/alice:/bin/sh\n")
        await kernel.vfs.write_file("/etc/group", b"root:x:0:\nusers:x:100:\n")
    r = run_all([write_passwd, ["chown", "alice:users", "f"], ["ls", "-l", "--time-style=+", "f"],
                 ["stat", "-c", "%U %G", "f"], ["find", ".", "-user", "alice"]], {"f": b""})
    assert r[1].returncode == 0, r[1].stderr
    assert r[2].stdout == b"-rw-r--r-- 1 alice users 0  f\n"
    assert r[3].stdout == b"alice users\n"
    assert r[4].stdout == b"./f\n"


def test_ls_recent_file_shows_the_time():
    r = run1(["ls", "-l", "f"], {"f": b""})
    stamp = time.strftime("%b %e %H:", time.gmtime())
    assert stamp[:7] in r.stdout.decode()


def test_ls_inode_and_invalid_utf8_names():
    async def odd(kernel):
        await kernel.vfs.write_file(b"/tmp/w/caf\xe9", b"")
    r = run_all([odd, ["ls"], ["ls", "-i"], ["find", "."], ["stat", "-c", "%n", "caf\udce9"]])
    assert r[1].stdout == b"caf\xe9\n"
    assert re.fullmatch(rb"\d+ caf\xe9\n", r[2].stdout)
    assert b"./caf\xe9\n" in r[3].stdout
    assert r[4].stdout == b"caf\xe9\n"


# ---------------------------------------------------------------- stat, du, df, tree

def test_stat_default_format():
    r = run1(["stat", "f"], {"f": b"hello"})
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "  File: f"
    assert re.fullmatch(r"  Size: 5         \tBlocks: \d+ +IO Block: \d+ +regular file", lines[1]), lines[1]
    assert re.fullmatch(r"Device: \d+,\d+\tInode: \d+ +Links: 1", lines[2]), lines[2]
    assert lines[3] == "Access: (0644/-rw-r--r--)  Uid: (    0/       0)   Gid: (    0/       0)"
    assert re.fullmatch(r"Modify: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000", lines[5])
    assert lines[7].startswith(" Birth: ")


def test_stat_terse_and_symlink_name():
    r = run_all([["ln", "-s", "f", "l"], ["stat", "-t", "f"], ["stat", "l"]], {"f": b"abc"})
    fields = r[1].stdout.split()
    assert fields[0] == b"f" and fields[1] == b"3" and fields[3] == b"81a4"
    assert r[2].stdout.startswith(b"  File: 'l' -> 'f'\n")


def test_du_counts_allocated_blocks_and_human_sizes():
    r = run_all([["du", "-s", "d"], ["du", "-sh", "big"], ["du", "-c", "big", "d"]],
                {"d/a": b"x" * 100, "d/b": b"y" * 3000, "big": b"z" * (3 << 20)})
    size = int(r[0].stdout.split()[0])
    assert size >= 4 and r[0].stdout.endswith(b"\td\n")
    assert r[1].stdout == b"3.0M\tbig\n"
    assert r[2].stdout.splitlines()[-1].endswith(b"\ttotal")


def test_df_lists_the_root_mount_and_hides_empty_pseudo_filesystems():
    r = run_all([["df"], ["df", "-h", "/tmp"], ["df", "-a", "-T"], ["df", "nope"]])
    lines = r[0].stdout.decode().splitlines()
    assert lines[0].split() == ["Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted", "on"]
    assert [ln.split()[-1] for ln in lines[1:]] == ["/"]
    assert r[1].stdout.decode().splitlines()[0].split()[:3] == ["Filesystem", "Size", "Used"]
    assert {ln.split()[-1] for ln in r[2].stdout.decode().splitlines()[1:]} >= {"/", "/proc", "/dev"}
    assert r[3].returncode == 1 and r[3].stderr


def test_tree_draws_like_tree_2():
    files = {"a": b"", "sub/b": b"", "sub/deep/c": b"", ".hid": b""}
    r = run_all([["tree"], ["tree", "-a", "-L", "1"], ["tree", "-d", "--charset=ascii"], ["tree", "nope"]], files)
    assert r[0].stdout.decode() == (".\n├── a\n└── sub\n    ├── b\n    └── deep\n        └── c\n"
                                    "\n2 directories, 3 files\n")
    assert r[1].stdout.decode() == ".\n├── .hid\n├── a\n└── sub\n\n1 directory, 2 files\n"
    assert r[2].stdout.decode() == ".\n`-- sub\n    `-- deep\n\n2 directories\n"
    assert r[3].returncode == 2


# ---------------------------------------------------------------- mktemp, touch, pwd, readlink -f

def test_mktemp_files_and_directories():
    r = run_all([["mktemp"], ["mktemp", "-d"], ["mktemp", "-p", "/tmp/w", "fooXXXX.txt"],
                 ["mktemp", "-t", "barXXXXXX"], ["mktemp", "-u", "zzXXX"], ["ls", "-ld", "--time-style=+", "/tmp"]],
                env={**ENV, "TMPDIR": "/tmp"})
    name = r[0].stdout.decode().strip()
    assert re.fullmatch(r"/tmp/tmp\.[A-Za-z0-9]{10}", name)
    d = r[1].stdout.decode().strip()
    assert re.fullmatch(r"/tmp/tmp\.[A-Za-z0-9]{10}", d)
    assert re.fullmatch(r"/tmp/w/foo[A-Za-z0-9]{4}\.txt", r[2].stdout.decode().strip())
    assert re.fullmatch(r"/tmp/bar[A-Za-z0-9]{6}", r[3].stdout.decode().strip())
    assert re.fullmatch(r"zz[A-Za-z0-9]{3}", r[4].stdout.decode().strip())

    async def check(kernel):
        f = (await kernel.run(["mktemp", "-p", "/tmp"], input=b"")).stdout.decode().strip()
        d = (await kernel.run(["mktemp", "-d", "-p", "/tmp"], input=b"")).stdout.decode().strip()
        return (await kernel.run(["stat", "-c", "%a %F", f, d], input=b"")).stdout
    assert run_all([check])[0] == b"600 regular empty file\n700 directory\n"


def test_touch_dates_and_timestamps():
    r = run_all([["touch", "-d", "2020-05-06 07:08:09.5", "f"], ["stat", "-c", "%y", "f"],
                 ["touch", "-t", "200102030405.06", "f"], ["stat", "-c", "%Y", "f"],
                 ["touch", "f"], ["stat", "-c", "%Y", "f"]], {"f": b""})
    assert r[1].stdout == b"2020-05-06 07:08:09.500000000 +0000\n"
    assert r[3].stdout == b"981173106\n"
    assert abs(int(r[5].stdout) - time.time()) < 5


def test_touch_respects_tz():
    r = run_all([["touch", "-d", "2020-01-01 00:00", "f"], ["stat", "-c", "%Y", "f"]], {"f": b""},
                env={**ENV, "TZ": "Europe/Paris"})
    assert r[1].stdout == b"1577833200\n"


def test_pwd_readlink_realpath_absolute():
    r = run_all([["pwd"], ["ln", "-s", "d", "l"], ["readlink", "-f", "l/x"], ["realpath", "l"],
                 ["readlink", "-m", "nope/../y"], ["realpath", "-s", "l"]], {"d/x": b""})
    assert r[0].stdout == b"/tmp/w\n"
    assert r[2].stdout == b"/tmp/w/d/x\n"
    assert r[3].stdout == b"/tmp/w/d\n"
    assert r[4].stdout == b"/tmp/w/y\n"
    assert r[5].stdout == b"/tmp/w/l\n"


# ---------------------------------------------------------------- streaming and processes

def test_cat_cp_dd_stream_a_large_file():
    big = bytes(range(256)) * 8192  # 2 MiB
    r = run_all([["cp", "big", "copy"], ["cat", "copy"], ["dd", "if=big", "of=dd", "bs=64K", "status=none"],
                 ["cat", "dd"], ["dd", "if=big", "bs=1M", "count=1", "of=half"], ["stat", "-c", "%s", "half"]],
                {"big": big})
    assert r[1].stdout == big and r[3].stdout == big
    assert b"1+0 records in\n1+0 records out\n1048576 bytes (1.0 MB, 1.0 MiB) copied" in r[4].stderr
    assert r[5].stdout == b"1048576\n"


def test_find_exec_and_xargs_spawn_programs():
    files = {"a.txt": b"A\n", "b.txt": b"B\n", "c.md": b"C\n"}
    r = run_all([["find", ".", "-name", "*.txt", "-exec", "cat", "{}", "+"],
                 ["find", ".", "-name", "c.md", "-execdir", "pwd", ";"],
                 ["xargs", "-a", "a.txt", "-I", "{}", "stat", "-c", "%n", "/tmp/w/c.md"]], files)
    assert sorted(r[0].stdout.splitlines()) == [b"A", b"B"]
    assert r[1].stdout == b"/tmp/w\n"
    assert r[2].stdout == b"/tmp/w/c.md\n"


def test_rm_refuses_root_and_cp_into_itself():
    r = run_all([["rm", "-rf", "/"], ["cp", "-r", "d", "d/e"], ["ls", "/bin/ls"]], {"d/e/f": b""})
    assert r[0].returncode == 1 and b"dangerous" in r[0].stderr
    assert r[1].returncode == 1 and b"into itself" in r[1].stderr
    assert r[2].returncode == 0


def test_file_magic_on_binary_formats():
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + (2).to_bytes(2, "little") + (0x3E).to_bytes(2, "little") + b"\0" * 40
    gz = b"\x1f\x8b\x08\x00" + b"\0" * 16
    tar = b"f" + b"\0" * 256 + b"ustar\x0000" + b"\0" * 250
    r = run1(["file", "-b", "elf", "gz", "tar", "zip", "png", "bin"],
             {"elf": elf, "gz": gz, "tar": tar, "zip": b"PK\x03\x04" + b"\0" * 40,
              "png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x20\x08\x02\0\0\0", "bin": b"\0\1\2\3"})
    assert r.stdout.decode().splitlines() == [
        "ELF 64-bit LSB executable, x86-64", "gzip compressed data", "POSIX tar archive",
        "Zip archive data", "PNG image data, 16 x 32, 8-bit/color RGB, non-interlaced", "data"]


def test_help_and_version_come_from_the_spec():
    r = run_all([["ls", "--help"], ["cp", "--version"], ["find", "--version"], ["dd", "--help"]])
    assert r[0].stdout.startswith(b"Usage: ls [OPTION]... [FILE]...\n") and b"--all" in r[0].stdout
    assert r[1].stdout.startswith(b"cp (")
    assert r[2].returncode == 0 and r[3].returncode == 0


def test_xargs_children_read_dev_null_not_the_argument_stream():
    async def step(kernel):
        return await kernel.run(["xargs", "-n", "1", "cat", "-"], input=b"a.txt\nb.txt\n", cwd="/tmp/w")
    r = run_all([step], {"a.txt": b"A\n", "b.txt": b"B\n"})[0]
    assert r.stdout == b"A\nB\n" and r.returncode == 0


def test_xargs_streams_many_lines_in_batches():
    names = b"".join(b"f%d\n" % i for i in range(3000))

    async def step(kernel):
        return await kernel.run(["xargs", "-n", "1000", "basename", "-a"], input=names, cwd="/tmp/w")
    r = run_all([step])[0]
    assert r.stdout == names and r.returncode == 0


def test_stat_mount_point_and_device_of_proc():
    r = run1(["stat", "-c", "%m %D", "f", "/proc/self/status", "/dev/null"], {"f": b""})
    lines = r.stdout.decode().splitlines()
    assert [ln.split()[0] for ln in lines] == ["/", "/proc", "/dev"]
    assert len({ln.split()[1] for ln in lines}) == 3
