"""The archive family beyond the case file: extraction that would escape the target is refused
(one line each, nothing written outside), corrupt input is one line and no traceback, binary
data survives every codec, and archives cross between our tools and the host's."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import trio

from kernel.kernel import Kernel
from kernel.programs import archive
from kernel.programs.registry import ProgramRegistry
from kernel.shell import main as shell_main
from vfsfuse.storage.store import memory_vfs

BLOB = os.urandom(300_000) + bytes(100_000) + b"text\n" * 20_000


def registry() -> ProgramRegistry:
    r = ProgramRegistry()
    for family in (archive.PROGRAMS, shell_main.PROGRAMS):
        for name, prog in family.items():
            r.register(name, prog)
    from kernel.programs import files, text
    for family in (files.PROGRAMS, text.PROGRAMS):
        for name, prog in family.items():
            r.register(name, prog)
    return r


class Box:
    """One booted kernel over a memory store; ``run`` returns (status, stdout, stderr)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def run(self, *argv: str, stdin: bytes = b"", cwd: str = "/w") -> tuple[int, bytes, bytes]:
        r = await self.kernel.run(list(argv), input=stdin, cwd=cwd, timeout=60)
        return r.status >> 8, r.stdout, r.stderr

    async def put(self, path: str, data: bytes) -> None:
        await self.kernel.vfs.write_file(path, data)

    async def get(self, path: str) -> bytes:
        return bytes(await self.kernel.vfs.read_file(path))

    async def exists(self, path: str) -> bool:
        r = await self.kernel.run(["sh", "-c", f"test -e '{path}' || test -L '{path}'"], cwd="/")
        return r.status == 0


def sandbox(test: Any) -> None:
    async def go() -> None:
        async with trio.open_nursery() as nursery:
            kernel = Kernel(memory_vfs(), programs=registry(), env={"PATH": "/bin", "HOME": "/root", "TZ": "UTC"})
            await kernel.boot(nursery)
            try:
                await kernel.vfs.mkdir("/w/out", recursive=True)
                await test(Box(kernel))
            finally:
                await kernel.shutdown()
    trio.run(go)


def make_tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """An archive with hostile members: (kind, name, data-or-link-target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for kind, name, payload in entries:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                ti.size = len(payload)
                tf.addfile(ti, io.BytesIO(payload))
                continue
            ti.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE,
                       "chr": tarfile.CHRTYPE}[kind]
            if kind in ("sym", "hard"):
                assert isinstance(payload, str)
                ti.linkname = payload
            tf.addfile(ti)
    return buf.getvalue()


ESCAPES = [
    ("absolute path", [("file", "/w/evil", b"x")], "/w/evil"),
    ("dot-dot", [("file", "../evil", b"x")], "/w/evil"),
    ("dot-dot inside", [("file", "a/../../evil", b"x")], "/w/evil"),
    ("absolute symlink", [("sym", "ln", "/etc")], "/w/out/ln"),
    ("symlink out", [("sym", "ln", "../..")], "/w/out/ln"),
    ("through symlink planted in the archive", [("sym", "ln", "."), ("sym", "ln2", "ln/../.."),
                                                ("file", "ln2/evil", b"x")], "/w/evil"),
    ("hard link out", [("hard", "h", "../secret")], "/w/out/h"),
    ("device", [("chr", "dev", b"")], "/w/out/dev"),
]


@pytest.mark.parametrize(("what", "entries", "victim"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_extraction_refuses_escapes(what: str, entries: list[tuple[str, str, Any]], victim: str) -> None:
    async def t(box: Box) -> None:
        await box.put("/w/secret", b"secret")
        await box.put("/w/x.tar", make_tar(entries))
        status, _, err = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert status == 2
        refusals = [line for line in err.decode().splitlines() if "not extracted" in line]
        assert refusals, err
        assert (b"Traceback" not in err and b"internal error" not in err)
        assert not await box.exists(victim)
        assert await box.get("/w/secret") == b"secret"
    sandbox(t)


def test_symlink_already_in_target_is_not_written_through() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/secret", b"secret")
        status, _, _ = await box.run("ln", "-s", "/w/secret", "/w/out/f")
        assert status == 0
        await box.put("/w/x.tar", make_tar([("file", "f", b"new")]))
        status, _, _ = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert status == 0
        assert await box.get("/w/secret") == b"secret"
        assert await box.get("/w/out/f") == b"new"
    sandbox(t)


def test_hard_link_through_a_symlink_already_in_target_is_refused() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/secret", b"secret")
        assert (await box.run("ln", "-s", "/w", "/w/out/up"))[0] == 0
        await box.put("/w/x.tar", make_tar([("hard", "h", "up/secret")]))
        status, _, err = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert status == 2 and b"not extracted" in err
        assert not await box.exists("/w/out/h")
    sandbox(t)


def test_safe_members_still_extract_beside_refused_ones() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/x.tar", make_tar([("file", "../evil", b"x"), ("file", "good/f", b"ok"),
                                             ("sym", "good/l", "f")]))
        status, _, err = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert status == 2 and err.count(b"not extracted") == 1
        assert await box.get("/w/out/good/f") == b"ok"
    sandbox(t)


@pytest.mark.parametrize("argv", [
    ["gzip", "-d"], ["gunzip", "-c"], ["bzip2", "-d"], ["xz", "-d"], ["tar", "tf", "-"], ["tar", "xzf", "-"],
    ["tar", "tjf", "-"], ["zcat"],
])
@pytest.mark.parametrize("data", [b"garbage data here", b"\x1f\x8b\x08\x00" + b"\xff" * 40, b"BZh9" + b"\x00" * 50,
                                  b"\xfd7zXZ\x00" + b"\x01" * 50, b""])
def test_corrupt_input_is_one_line(argv: list[str], data: bytes) -> None:
    async def t(box: Box) -> None:
        status, _, err = await box.run(*argv, stdin=data)
        if not data and argv[0] != "tar":
            return  # empty input: compressors report it or not, as GNU's do
        assert status != 0
        assert (b"Traceback" not in err and b"internal error" not in err)
        lines = [ln for ln in err.decode(errors="replace").splitlines()
                 if ln.strip() and "Exiting with failure" not in ln and "not recoverable" not in ln]
        assert len(lines) == 1, err
    sandbox(t)


def test_corrupt_zip_is_one_message() -> None:
    async def t(box: Box) -> None:
        good = io.BytesIO()
        with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("f", BLOB[:50_000])
        raw = bytearray(good.getvalue())
        raw[60:90] = b"\x00" * 30   # the deflate stream
        await box.put("/w/bad.zip", bytes(raw))
        status, _, err = await box.run("unzip", "-o", "bad.zip")
        assert status != 0 and (b"Traceback" not in err and b"internal error" not in err)
    sandbox(t)


@pytest.mark.parametrize("tool", [("gzip", "gunzip"), ("bzip2", "bunzip2"), ("xz", "unxz")])
def test_binary_round_trip_through_files(tool: tuple[str, str]) -> None:
    comp, decomp = tool

    async def t(box: Box) -> None:
        await box.put("/w/blob", BLOB)
        assert (await box.run(comp, "blob"))[0] == 0
        assert not await box.exists("/w/blob")
        assert (await box.run(decomp, "blob." + {"gzip": "gz", "bzip2": "bz2", "xz": "xz"}[comp]))[0] == 0
        assert await box.get("/w/blob") == BLOB
    sandbox(t)


def test_binary_round_trip_tar_and_zip() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/d/blob", BLOB)
        await box.put("/w/d/empty", b"")
        for create, extract in ((["tar", "cJf", "a.txz", "d"], ["tar", "xf", "../a.txz"]),
                                (["zip", "-qr", "a.zip", "d"], ["unzip", "-q", "../a.zip"])):
            status, _, err = await box.run(*create)
            assert status == 0, err
            await box.run("rm", "-rf", "/w/out")
            await box.run("mkdir", "/w/out")
            status, _, err = await box.run(*extract, cwd="/w/out")
            assert status == 0, err
            assert await box.get("/w/out/d/blob") == BLOB
            assert await box.get("/w/out/d/empty") == b""
    sandbox(t)


def test_host_tools_read_our_archives_and_we_read_theirs() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host = Path(tmp)
        (host / "d").mkdir()
        (host / "d" / "blob").write_bytes(BLOB)
        os.symlink("blob", host / "d" / "link")
        subprocess.run(["tar", "czf", "host.tgz", "d"], cwd=host, check=True)
        subprocess.run(["zip", "-qry", "host.zip", "d"], cwd=host, check=True)
        subprocess.run(["xz", "-k", "d/blob"], cwd=host, check=True)
        host_tgz = (host / "host.tgz").read_bytes()
        host_zip = (host / "host.zip").read_bytes()
        host_xz = (host / "d" / "blob.xz").read_bytes()
        ours: dict[str, bytes] = {}

        async def t(box: Box) -> None:
            await box.put("/w/host.tgz", host_tgz)
            await box.put("/w/host.zip", host_zip)
            await box.put("/w/blob.xz", host_xz)
            assert (await box.run("tar", "xzf", "../host.tgz", cwd="/w/out"))[0] == 0
            assert await box.get("/w/out/d/blob") == BLOB
            status, out, _ = await box.run("sh", "-c", "readlink out/d/link")
            assert out == b"blob\n"
            assert (await box.run("unzip", "-qo", "host.zip", "-d", "z"))[0] == 0
            assert await box.get("/w/z/d/blob") == BLOB
            assert (await box.run("xz", "-d", "blob.xz"))[0] == 0
            assert await box.get("/w/blob") == BLOB
            assert (await box.run("tar", "cjf", "ours.tbz", "out/d"))[0] == 0
            assert (await box.run("zip", "-q", "ours.zip", "blob"))[0] == 0
            assert (await box.run("gzip", "-k", "blob"))[0] == 0
            for name in ("ours.tbz", "ours.zip", "blob.gz"):
                ours[name] = await box.get(f"/w/{name}")
        sandbox(t)
        for name, data in ours.items():
            (host / name).write_bytes(data)
        subprocess.run(["tar", "xjf", "ours.tbz"], cwd=host, check=True)
        assert (host / "out" / "d" / "blob").read_bytes() == BLOB
        assert os.readlink(host / "out" / "d" / "link") == "blob"
        got = subprocess.run(["unzip", "-p", "ours.zip", "blob"], cwd=host, check=True, capture_output=True).stdout
        assert got == BLOB
        got = subprocess.run(["gzip", "-dc", "blob.gz"], cwd=host, check=True, capture_output=True).stdout
        assert got == BLOB


def test_big_stream_is_not_held_in_memory_at_once() -> None:
    """10 MiB through gzip -c | gunzip -c in the sandbox: what comes out is what went in."""
    async def t(box: Box) -> None:
        data = (BLOB * 30)[:10 * 1024 * 1024]
        await box.put("/w/big", data)
        status, out, err = await box.run("sh", "-c", "gzip -c big | gunzip -c | cmp - big && echo same")
        assert (status, out, err) == (0, b"same\n", b"")
    sandbox(t)


def test_member_twice_in_one_archive_replaces_the_first() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/x.tar", make_tar([("dir", "d", b""), ("file", "d/f", b"one"), ("file", "d/f", b"two"),
                                             ("sym", "d/l", "f"), ("sym", "d/l", "f2")]))
        status, _, err = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert (status, err) == (0, b"")
        assert await box.get("/w/out/d/f") == b"two"
        assert (await box.run("readlink", "/w/out/d/l"))[1] == b"f2\n"
    sandbox(t)


def test_hard_link_to_a_symlink_pointing_out_is_refused() -> None:
    async def t(box: Box) -> None:
        await box.put("/w/secret", b"secret")
        assert (await box.run("ln", "-s", "/w/secret", "/w/out/s"))[0] == 0
        await box.put("/w/x.tar", make_tar([("hard", "h", "s")]))
        status, _, err = await box.run("tar", "xf", "../x.tar", cwd="/w/out")
        assert status == 2 and b"not extracted" in err
        assert not await box.exists("/w/out/h")
    sandbox(t)


@pytest.mark.parametrize("cmd", ["gzip -c big > /dev/null", "gzip -dc big.gz > /dev/null", "bzip2 -1c big > /dev/null",
                                 "tar czf /dev/null d", "tar tzvf d.tgz > /dev/null", "tar xzOf d.tgz > /dev/null"])
def test_streaming_memory_is_bounded(cmd: str) -> None:
    """32 MiB through the codecs and tar: the Python heap grows by a few MiB, not the data."""
    import gzip as host_gzip
    import tracemalloc

    data = (BLOB * 100)[:32 << 20]
    packed = host_gzip.compress(data, 1)

    async def t(box: Box) -> None:
        await box.put("/w/big", data)
        await box.put("/w/big.gz", packed)
        await box.put("/w/d/big", data)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
            info = tarfile.TarInfo("d/big")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        await box.put("/w/d.tgz", buf.getvalue())
        del buf
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            status, _, err = await box.run("sh", "-c", cmd)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert (status, err) == (0, b"")
        assert peak < 8 << 20, f"{cmd}: peak {peak >> 10} KiB over the data already stored"
    sandbox(t)
