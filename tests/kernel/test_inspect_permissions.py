"""Confidentiality of ``/.vfs`` for sandbox processes (issue 17): the same rules as through
the FUSE mount, checked by InspectFS against the process's ``Caller``.  And ``/root`` is
0700 as on Linux."""

from __future__ import annotations

import os
import stat

from kernel.errors import KernelError
from kernel.kernel import Kernel
from kernel.programs.testprogs import test_registry as _programs
from tests.kernel.ksupport import register
from vfsfuse.inspect.inspectfs import InspectFS
from vfsfuse.storage.store import memory_vfs

DATA = bytes((i * 7 + 3) % 251 for i in range(20_000))


async def _boot(nursery, uid: int) -> Kernel:
    vfs = memory_vfs(chunk_size=4096, inline_threshold=1024)
    k = Kernel(vfs, programs=_programs(), uid=uid, gid=uid)
    await k.boot(nursery)
    await k.mount_table.mount("/.vfs", InspectFS(vfs), read_only=False, hidden=True,
                              fstype="vfsinspect", source="vfs")
    fs = k.vfs  # the host's view: root
    await fs.mkdir("/pub")
    await fs.write_file("/pub/open", DATA)
    await fs.chmod("/pub/open", 0o644)
    await fs.write_file("/pub/secret", DATA[::-1])
    await fs.chmod("/pub/secret", 0o600)
    await fs.mkdir("/closed")
    await fs.chmod("/closed", 0o700)
    await fs.write_file("/closed/file", DATA[5:])
    await fs.chmod("/closed/file", 0o644)
    await vfs.sync()
    return k


async def _keys(k: Kernel, path: str) -> list[str]:
    text = (await k.vfs.read_file("/.vfs/chunks" + path)).decode()
    return [line.split()[3] for line in text.splitlines() if line[:1].isdigit()]


async def _read_as_process(k: Kernel, paths: list[str]) -> dict[str, str]:
    """What a sandbox process (the kernel's uid) gets reading each path: 'ok' or the errno."""
    results: dict[str, str] = {}

    async def prog(ctx):
        for path in paths:
            try:
                if path.endswith("/"):
                    await ctx.listdir(path.rstrip("/"))
                else:
                    fd = await ctx.open(path, os.O_RDONLY)
                    try:
                        while await ctx.read(fd, 65536):
                            pass
                    finally:
                        await ctx.close(fd)
                results[path] = "ok"
            except KernelError as exc:
                results[path] = exc.code
        return 0

    done = await k.run([register(k, prog)], timeout=20)
    assert done.status == 0, done.stderr
    return results


async def test_a_sandbox_user_learns_nothing_about_files_it_may_not_read(nursery):
    k = await _boot(nursery, uid=1000)
    try:
        secret = await _keys(k, "/pub/secret")
        closed = await _keys(k, "/closed/file")
        public = await _keys(k, "/pub/open")
        got = await _read_as_process(k, [
            "/pub/secret", "/.vfs/chunks/pub/secret", f"/.vfs/blocks/{secret[0]}",
            "/closed/file", "/.vfs/chunks/closed/file", f"/.vfs/blocks/{closed[0]}",
            "/.vfs/chunks/closed/",
            "/pub/open", "/.vfs/chunks/pub/open", f"/.vfs/blocks/{public[0]}", "/.vfs/blocks/",
            "/.vfs/stats", "/.vfs/version", "/.vfs/chunks/pub/",
        ])
        assert got == {
            "/pub/secret": "EACCES", "/.vfs/chunks/pub/secret": "EACCES",
            f"/.vfs/blocks/{secret[0]}": "EACCES",
            "/closed/file": "EACCES", "/.vfs/chunks/closed/file": "EACCES",
            f"/.vfs/blocks/{closed[0]}": "EACCES", "/.vfs/chunks/closed/": "EACCES",
            # readable file: its chunk map is readable; raw blocks are the mount owner's only
            "/pub/open": "ok", "/.vfs/chunks/pub/open": "ok",
            f"/.vfs/blocks/{public[0]}": "EACCES", "/.vfs/blocks/": "EACCES",
            "/.vfs/stats": "ok", "/.vfs/version": "ok", "/.vfs/chunks/pub/": "ok",
        }
        # chmod is seen at once (no stale permission on the mirrored node)
        await k.vfs.chmod("/pub/secret", 0o604)
        assert (await _read_as_process(k, ["/.vfs/chunks/pub/secret"])) == {"/.vfs/chunks/pub/secret": "ok"}
        await k.vfs.chmod("/pub/secret", 0o600)
        assert (await _read_as_process(k, ["/.vfs/chunks/pub/secret"])) == {"/.vfs/chunks/pub/secret": "EACCES"}
        st = await k.vfs.stat("/.vfs/chunks/pub/secret")
        assert (stat.S_IMODE(st.mode), st.uid) == (0o400, 0)
    finally:
        await k.shutdown(grace=0.1)


async def test_the_sandbox_root_reads_everything(nursery):
    k = await _boot(nursery, uid=0)
    try:
        keys = await _keys(k, "/pub/secret")
        got = await _read_as_process(k, ["/pub/secret", "/.vfs/chunks/pub/secret",
                                         f"/.vfs/blocks/{keys[0]}", "/.vfs/blocks/",
                                         "/.vfs/chunks/closed/file"])
        assert set(got.values()) == {"ok"}, got
        assert await k.vfs.read_file(f"/.vfs/blocks/{keys[0]}") == DATA[::-1][:4096]
    finally:
        await k.shutdown(grace=0.1)


async def test_root_home_is_0700(nursery):
    k = Kernel(memory_vfs(), programs=_programs(), uid=1000, gid=1000)
    await k.boot(nursery)
    try:
        st = await k.vfs.stat("/root")
        assert stat.S_IMODE(st.mode) == 0o700 and st.uid == 0
        assert stat.S_IMODE((await k.vfs.stat("/home/user")).mode) == 0o755
        got = await _read_as_process(k, ["/root/"])
        assert got == {"/root/": "EACCES"}
    finally:
        await k.shutdown(grace=0.1)
