"""Confinement: a program names only sandbox paths.  Host paths (``/etc/passwd``, ``../..``,
symlinks to absolute host paths) resolve inside the sandbox tree, and no host file is
touched while programs run (host file APIs are watched during the test)."""

from __future__ import annotations

import builtins
import os

import pytest

from kernel.errors import KernelError

from .ksupport import run_program

CANARY = "CANARY-7f3a9c-host-only"


@pytest.fixture
def host_canary(tmp_path, monkeypatch):
    """A canary file on the host, and a record of every host file API call naming tmp_path."""
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY)
    (tmp_path / "dir").mkdir()
    touched: list[str] = []
    root = str(tmp_path)

    def watch(fn):
        def wrapper(path, *a, **kw):
            if root in os.fsdecode(path if not isinstance(path, int) else ""):
                touched.append(f"{fn.__name__}({path})")
            return fn(path, *a, **kw)
        return wrapper

    for name in ("open", "stat", "lstat", "listdir", "scandir", "readlink", "access"):
        monkeypatch.setattr(os, name, watch(getattr(os, name)))
    monkeypatch.setattr(builtins, "open", watch(builtins.open))
    return tmp_path, touched


async def test_host_paths_resolve_inside_the_sandbox(kernel, host_canary):
    tmp_path, touched = host_canary
    seen = {}

    async def prog(ctx):
        async def content(path):
            try:
                fd = await ctx.open(path)
            except KernelError as e:
                return e.code
            try:
                return (await ctx.read(fd, 1 << 16)).decode(errors="replace")
            finally:
                await ctx.close(fd)

        seen["passwd_missing"] = await content("/etc/passwd")
        fd = await ctx.open("/etc/passwd", os.O_CREAT | os.O_WRONLY)
        await ctx.write(fd, b"sandbox:x:0:0::/root:/bin/sh\n")
        await ctx.close(fd)
        seen["passwd"] = await content("/etc/passwd")
        await ctx.chdir("/home/user")
        seen["dotdot_list"] = sorted(await ctx.listdir("../../../../.."))
        seen["root_list"] = sorted(await ctx.listdir("/"))
        seen["dotdot_passwd"] = await content("../../../../../../etc/passwd")
        seen["host_abs"] = await content(str(tmp_path / "canary.txt"))
        await ctx.symlink(str(tmp_path), "/tmp/to-host-dir")
        await ctx.symlink(str(tmp_path / "canary.txt"), "/tmp/to-host-file")
        seen["via_dir_link"] = await content("/tmp/to-host-dir/canary.txt")
        seen["via_file_link"] = await content("/tmp/to-host-file")
        try:
            seen["link_listing"] = await ctx.listdir("/tmp/to-host-dir")
        except KernelError as e:
            seen["link_listing"] = e.code
        # the same absolute path built inside the sandbox gets sandbox content only
        path = str(tmp_path / "canary.txt")
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            try:
                await ctx.mkdir("/" + "/".join(parts[:i]))
            except KernelError:
                pass
        fd = await ctx.open(path, os.O_CREAT | os.O_WRONLY)
        await ctx.write(fd, b"inside")
        await ctx.close(fd)
        seen["same_path"] = await content("/tmp/to-host-file")
        seen["cwd_link"] = await ctx.readlink("/proc/self/cwd")
        seen["realpath"] = await ctx.realpath("/tmp/to-host-dir/../../..")
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0, r.stderr
    assert seen["passwd_missing"] == "ENOENT"
    assert seen["passwd"] == "sandbox:x:0:0::/root:/bin/sh\n"
    assert seen["dotdot_list"] == seen["root_list"]
    assert "proc" in seen["root_list"] and "dev" in seen["root_list"]
    assert seen["dotdot_passwd"] == seen["passwd"]
    assert seen["host_abs"] == seen["via_dir_link"] == seen["via_file_link"] == "ENOENT"
    assert seen["link_listing"] == "ENOENT"
    assert seen["same_path"] == "inside"
    assert seen["cwd_link"] == "/home/user"
    assert not seen["realpath"].startswith(str(tmp_path))
    assert touched == []
    os.stat(tmp_path / "canary.txt")  # the watch itself works
    assert touched


async def test_no_sandbox_file_reveals_the_canary(kernel, host_canary):
    """Walk the whole sandbox tree (but /dev's endless devices) and read every file."""
    tmp_path, touched = host_canary
    found = []

    async def prog(ctx):
        await ctx.symlink(str(tmp_path), "/tmp/host")

        async def walk(path):
            for name in await ctx.listdir(path):
                full = path.rstrip("/") + "/" + name
                try:
                    st = await ctx.lstat(full)
                except KernelError:
                    continue
                if full.startswith("/dev") or full.startswith("/proc/self"):
                    continue
                if st.is_dir:
                    if full.count("/") < 6:
                        await walk(full)
                elif st.is_reg:
                    try:
                        fd = await ctx.open(full)
                        data = await ctx.read(fd, 1 << 20)
                        await ctx.close(fd)
                    except KernelError:
                        continue
                    if CANARY.encode() in data or str(tmp_path).encode() in data:
                        found.append(full)
        await walk("/")
        return 0

    r = await run_program(kernel, prog, timeout=60)
    assert r.status == 0, r.stderr
    assert found == [] and touched == []
