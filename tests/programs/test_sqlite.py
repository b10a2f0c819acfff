"""sqlite3 beyond the case file: nothing of the host is reachable (ATTACH, VACUUM INTO, temp
files), the database goes back through the kernel only when it changed, files cross with the
host's sqlite3, and SQLite 3.40's long-double float text is reproduced."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs import sqlite_cmd
from kernel.programs.registry import ProgramRegistry
from kernel.programs.sqlite_cmd import sqlite_g
from vfsfuse.storage.store import memory_vfs


def sandbox(test: Any) -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            registry = ProgramRegistry(sqlite_cmd.PROGRAMS.items())
            kernel = Kernel(memory_vfs(), programs=registry, env={"PATH": "/bin", "HOME": "/root"})
            await kernel.boot(nursery)
            try:
                await kernel.vfs.mkdir("/w", recursive=True)
                await test(kernel)
            finally:
                await kernel.shutdown()
    trio.run(go)


async def sql(kernel: Kernel, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    r = await kernel.run(["sqlite3", *argv], input=stdin, cwd="/w", timeout=60)
    return r.status >> 8, r.stdout, r.stderr


@pytest.mark.parametrize("statement", [
    "ATTACH '{p}' AS x",
    "ATTACH 'file:{p}?vfs=unix' AS x",
    "VACUUM INTO '{p}'",
])
def test_sql_cannot_reach_host_files(statement: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        victim = os.path.join(tmp, "victim.db")

        async def t(kernel: Kernel) -> None:
            status, _, err = await sql(kernel, "db", "create table t(x); insert into t values (1)",
                                       statement.format(p=victim))
            assert status != 0 and err and (b"Traceback" not in err and b"internal error" not in err)
        sandbox(t)
        assert not os.path.exists(victim)


def test_big_sort_works_without_temp_files() -> None:
    async def t(kernel: Kernel) -> None:
        status, out, err = await sql(kernel, ":memory:",
                                     "with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000) "
                                     "select count(*) from (select i from n order by random())")
        assert (status, out, err) == (0, b"200000\n", b"")
    sandbox(t)


def test_unchanged_database_is_not_rewritten_and_changes_are() -> None:
    async def t(kernel: Kernel) -> None:
        assert (await sql(kernel, "db", "create table t(x)"))[0] == 0
        before = await kernel.vfs.stat("/w/db")
        await kernel.vfs.utimes("/w/db", 1000, 1000)
        assert (await sql(kernel, "db", "select count(*) from t"))[1] == b"0\n"
        assert (await kernel.vfs.stat("/w/db")).mtime_ns == 1000 * 10**9
        assert (await sql(kernel, "db", "insert into t values (42)"))[0] == 0
        after = await kernel.vfs.stat("/w/db")
        assert after.mtime_ns != 1000 * 10**9 and before.ino == after.ino
    sandbox(t)


def test_files_cross_with_the_host_sqlite3() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host_db = Path(tmp, "host.db")
        con = sqlite3.connect(host_db)
        con.execute("create table t(a, b)")
        con.executemany("insert into t values (?, ?)", [(i, f"row {i}" * 10) for i in range(5000)])
        con.commit()
        con.execute("pragma journal_mode=wal")
        con.execute("insert into t values (-1, 'wal row')")
        con.commit()
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()
        data = host_db.read_bytes()
        got: dict[str, bytes] = {}

        async def t(kernel: Kernel) -> None:
            await kernel.vfs.write_file("/w/host.db", data)
            status, out, err = await sql(kernel, "host.db", "select count(*), min(a) from t",
                                         "insert into t values (99999, 'from the sandbox')")
            assert (status, out, err) == (0, b"5001|-1\n", b"")
            got["db"] = bytes(await kernel.vfs.read_file("/w/host.db"))
        sandbox(t)
        host_db.write_bytes(got["db"])
        out = subprocess.run(["sqlite3", str(host_db), "select b from t where a = 99999", "pragma integrity_check"],
                             capture_output=True, check=True).stdout
        assert out == b"from the sandbox\nok\n"


def test_corrupt_database_is_one_line() -> None:
    async def t(kernel: Kernel) -> None:
        await kernel.vfs.write_file("/w/bad.db", b"SQLite format 3\0" + os.urandom(8000))
        status, _, err = await sql(kernel, "bad.db", "select * from sqlite_schema")
        assert status != 0 and err.count(b"\n") == 1 and (b"Traceback" not in err and b"internal error" not in err)
    sandbox(t)


def test_read_and_output_go_through_the_kernel() -> None:
    async def t(kernel: Kernel) -> None:
        await kernel.vfs.write_file("/w/q.sql", b"create table t(x);\ninsert into t values (7);\n")
        status, _, err = await sql(kernel, "db", ".read q.sql", ".output out.txt", "select x * 6 from t")
        assert (status, err) == (0, b"")
        assert bytes(await kernel.vfs.read_file("/w/out.txt")) == b"42\n"
        status, _, err = await sql(kernel, "db", ".read /nonexistent.sql")
        assert status == 1 and err.count(b"\n") == 1
    sandbox(t)


@pytest.mark.parametrize(("value", "digits", "text"), [
    (91.5, 20, "91.499999999999999996"), (77.0, 20, "76.999999999999999998"),
    (0.1, 20, "0.10000000000000000555"), (3.14159265358979, 20, "3.1415926535897900073"),
    (1e300, 20, "1.0000000000000000047e+300"), (5e-324, 20, "4.9406564584124654428e-324"),
    (1e-5, 15, "1.0e-05"), (1e15, 15, "1.0e+15"), (0.0, 20, "0.0"), (-2.5, 15, "-2.5"),
])
def test_long_double_printf(value: float, digits: int, text: str) -> None:
    assert sqlite_g(value, digits) == text


def test_on_a_terminal_it_prompts() -> None:
    """Interactive use: the banner, ``sqlite> `` and the continuation prompt, results between."""
    from kernel.programs.registry import ProgramRegistry as Registry

    seen: dict[str, bytes] = {}

    async def driver(ctx: Any) -> int:
        m, s = await ctx.openpty()
        pid = await ctx.spawn(["sqlite3"], stdin=s, stdout=s, stderr=s)
        await ctx.close(s)
        out = b""
        while b"sqlite> " not in out:  # type only once it prompts, as a person does
            chunk = await ctx.read(m, 4096)
            if not chunk:
                break
            out += chunk
        await ctx.write_all(m, b"select 6 *\n7;\n.quit\n")
        while b"42" not in out or out.count(b"sqlite> ") < 2:
            chunk = await ctx.read(m, 4096)
            if not chunk:
                break
            out += chunk
        await ctx.waitpid(pid)
        seen["out"] = out
        return 0

    async def go() -> None:
        async with trio.open_nursery() as nursery:
            registry = Registry(list(sqlite_cmd.PROGRAMS.items()) + [("driver", driver)])
            kernel = Kernel(memory_vfs(), programs=registry, env={"PATH": "/bin", "HOME": "/root"})
            await kernel.boot(nursery)
            try:
                r = await kernel.run(["driver"], timeout=30)
                assert r.status == 0
            finally:
                await kernel.shutdown()
    trio.run(go)
    out = seen["out"].replace(b"\r\n", b"\n")
    banner, rest = out.split(b"sqlite> ", 1)
    assert banner.startswith(b"SQLite version ")
    assert banner.endswith(b"Connected to a transient in-memory database.\n")
    echo, answer = rest.split(b".quit\n", 1)   # the terminal echoes the input as it arrives
    assert echo == b"select 6 *\n7;\n"
    assert answer == b"   ...> 42\nsqlite> "


def test_database_that_is_a_directory_is_one_line() -> None:
    async def t(kernel: Kernel) -> None:
        await kernel.vfs.mkdir("/w/db")
        status, _, err = await sql(kernel, "db", "create table u(x)")
        assert status == 1 and err.count(b"\n") == 1
        assert b"internal error" not in err and b"Traceback" not in err
    sandbox(t)
