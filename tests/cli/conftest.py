"""Fixtures for the CLI tests: a populated store on disk and two ways to run ``vfsfuse``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
import trio
from click.testing import CliRunner

from cli.main import vfsfuse
from kernel.errors import KernelError
from kernel.pathvfs import PathVFS
from vfsfuse.storage.store import create_store, open_store

VENV_BIN = os.path.dirname(sys.executable)
SCRIPT = os.path.join(VENV_BIN, "vfsfuse")

CHUNK = 4096
RANDOM_A = bytes((i * 7919 + 13) % 251 for i in range(3 * CHUNK + 100))  # 4 chunks
SHARED = b"S" * CHUNK  # one chunk that two files share

TREE: dict[str, bytes] = {
    "/hello.txt": b"hello\n",
    "/d/a.bin": RANDOM_A,
    "/d/shared1": SHARED * 2 + b"tail1",
    "/d/sub/shared2": SHARED + b"tail2" * 300,
    "/d/sub/empty": b"",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, input: str | None = None) -> Result:
    """Run the click group in-process (CliRunner)."""
    res = CliRunner().invoke(vfsfuse, list(args), input=input, prog_name="vfsfuse")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Result(res.exit_code, res.stdout, res.stderr)


def script(*args: str, input: str | None = None, cwd: str | None = None) -> Result:
    """Run the installed console script in a subprocess."""
    proc = subprocess.run([SCRIPT, *args], input=input, capture_output=True, text=True,
                          cwd=cwd, timeout=60)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(res: Result, code: str, exit_code: int = 8) -> None:
    assert res.code == exit_code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert lines[0].startswith(f"vfsfuse: {code}:"), res.err


async def populate(path: str) -> None:
    store = open_store(path)
    try:
        fs = PathVFS(store.vfs)
        for name, data in TREE.items():
            parent = os.path.dirname(name)
            if parent != "/":
                await fs.mkdir(parent, recursive=True)
            await fs.write_file(name, data)
        await fs.symlink("d/a.bin", "/link")
        await fs.link("/d/a.bin", "/d/sub/a-hardlink")
        await store.vfs.setxattr(store.metadata.resolve_path("/hello.txt"), b"user.note", b"\xffhi")
        await store.vfs.close()
    finally:
        store.close()


async def read_tree(path: str) -> dict[str, bytes]:
    """Every regular file's bytes, keyed by path (symlinks as b'-> target')."""
    store = open_store(path)
    try:
        fs = PathVFS(store.vfs)
        out: dict[str, bytes] = {}

        async def walk(d: str) -> None:
            for name in await fs.read_dir(d):
                p = f"{d.rstrip('/')}/{name}"
                st = await fs.lstat(p)
                if st.is_symbolic_link:
                    out[p] = b"-> " + os.fsencode(await fs.readlink(p))
                elif st.is_directory:
                    await walk(p)
                else:
                    try:
                        out[p] = await fs.read_file(p)
                    except KernelError as exc:
                        out[p] = f"<{exc.code}>".encode()

        await walk("/")
        await store.vfs.close()
        return out
    finally:
        store.close()


@pytest.fixture
def store(tmp_path) -> str:
    path = str(tmp_path / "store")
    create_store(path, chunk_size=CHUNK, inline_threshold=1024)
    trio.run(populate, path)
    return path
