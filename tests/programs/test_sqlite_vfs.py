"""sqlite3 pages its database through the kernel (kernel/programs/sqlite_vfs.py).

What the differential corpus (cases/sqlite.txt) cannot show: the file SQLite writes is a real
database file of the VFS (readable by apsw on the host once copied out), two sqlite3 processes
lock each other as on Linux, a killed writer leaves a hot journal that the next one rolls back,
and nothing is staged in memory (a database bigger than one write shows up page by page).
"""

from __future__ import annotations

import apsw
import trio

from kernel.kernel import Kernel
from kernel.userland import standard_registry
from vfsfuse.storage.store import memory_vfs


async def _kernel(nursery: trio.Nursery) -> Kernel:
    kernel = Kernel(memory_vfs(), programs=standard_registry(),
                    env={"PATH": "/bin:/usr/bin", "HOME": "/root", "LC_ALL": "C"})
    await kernel.boot(nursery)
    await kernel.vfs.mkdir("/w", recursive=True)
    return kernel


async def _sh(kernel: Kernel, script: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    r = await kernel.run(["sh", "-c", script], input=stdin, cwd="/w", timeout=60)
    return r.status >> 8, r.stdout, r.stderr


def test_the_database_is_a_real_file_of_the_vfs(tmp_path) -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = await _kernel(nursery)
            try:
                code, out, err = await _sh(kernel, (
                    "sqlite3 app.db 'create table t(n integer, s text);"
                    " with recursive c(i) as (select 1 union all select i+1 from c where i < 20000)"
                    " insert into t select i, printf(\"row %05d\", i) from c'"
                    " && sqlite3 app.db 'select count(*), sum(n) from t' && ls app.db*"))
                assert (code, err) == (0, b""), err
                assert out == b"20000|200010000\napp.db\n"  # no journal left behind
                data = await kernel.vfs.read_file("/w/app.db")
            finally:
                await kernel.shutdown()
        assert len(data) > 100_000 and data.startswith(b"SQLite format 3\0")
        copy = tmp_path / "copy.db"
        copy.write_bytes(data)
        conn = apsw.Connection(str(copy), flags=apsw.SQLITE_OPEN_READONLY)
        assert conn.execute("select s from t where n = 777").get == "row 00777"
        assert conn.execute("pragma integrity_check").get == "ok"
        conn.close()

    trio.run(go)


def test_two_processes_lock_each_other() -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = await _kernel(nursery)
            try:
                code, _out, err = await _sh(kernel, "sqlite3 db 'create table t(a); insert into t values (1)'")
                assert code == 0, err
                code, out, err = await _sh(kernel, (
                    "(echo 'begin exclusive; insert into t values (2);'; sleep 2; echo 'commit;')"
                    " | sqlite3 db & sleep 0.7;"
                    " sqlite3 db 'insert into t values (3)'; echo \"writer: $?\";"
                    " wait; sqlite3 db 'select group_concat(a) from t'"))
                assert b"writer: 5" in out, (out, err)  # SQLITE_BUSY, as sqlite3 exits on Linux
                assert b"database is locked" in err
                assert out.endswith(b"1,2\n"), out  # the holder's transaction went in, the other not
            finally:
                await kernel.shutdown()

    trio.run(go)


def test_a_killed_writer_leaves_a_hot_journal_the_next_open_rolls_back() -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = await _kernel(nursery)
            try:
                code, _out, err = await _sh(kernel, (
                    "sqlite3 db 'pragma cache_size=10; create table t(a, b);"
                    " insert into t values (1, zeroblob(1000))'"))
                assert code == 0, err
                # A transaction big enough to spill pages into the database file, then SIGKILL.
                code, out, err = await _sh(kernel, (
                    "(echo 'pragma cache_size=10; begin;"
                    " with recursive c(i) as (select 1 union all select i+1 from c where i < 3000)"
                    " insert into t select i, zeroblob(1000) from c;'; sleep 30) | sqlite3 db &"
                    " sleep 1.5; ls db-journal; pkill -9 -x sqlite3; pkill -x sleep; wait;"
                    " sqlite3 db 'select count(*) from t; pragma integrity_check'; ls"))
                assert out.startswith(b"db-journal\n"), (out, err)  # the writer was mid-transaction
                assert out.endswith(b"1\nok\ndb\n"), (out, err)  # rolled back; the journal is gone
            finally:
                await kernel.shutdown()

    trio.run(go)


def test_a_directory_or_a_missing_readonly_file_cannot_be_opened() -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = await _kernel(nursery)
            try:
                code, _out, err = await _sh(kernel, "mkdir d; sqlite3 d 'select 1'")
                assert code == 1 and err == b'Error: unable to open database "d": unable to open database file\n'
                code, _out, err = await _sh(kernel, "sqlite3 -readonly nope.db 'select 1'; ls")
                assert code == 0 and b"unable to open database" in err
            finally:
                await kernel.shutdown()

    trio.run(go)
