"""/proc/net in Linux's format: the headers are the host's own, and the host's ``ss`` (reading
files instead of netlink when PROC_ROOT is set) lists the sandbox's sockets from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.kernel.ksupport import run_program

NAMES = ("tcp", "tcp6", "udp", "udp6", "unix")


async def _snapshot(kernel) -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    async def prog(ctx):
        s = await ctx.socket(2, 1)
        await ctx.bind(s, ("127.0.0.1", 8080))
        await ctx.listen(s, 5)
        c = await ctx.socket(2, 1)
        await ctx.connect(c, ("127.0.0.1", 8080))
        await ctx.send(c, b"xyz")
        s6 = await ctx.socket(10, 1)
        await ctx.bind(s6, ("::", 8081))
        await ctx.listen(s6)
        c6 = await ctx.socket(10, 1)
        await ctx.connect(c6, ("::1", 8081))
        u = await ctx.socket(2, 2)
        await ctx.bind(u, ("127.0.0.1", 5353))
        u6 = await ctx.socket(10, 2)
        await ctx.bind(u6, ("::1", 5354))
        x = await ctx.socket(1, 1)
        await ctx.bind(x, "/tmp/x.sock")
        await ctx.listen(x)
        y = await ctx.socket(1, 2)
        await ctx.bind(y, b"\0abs")
        for name in NAMES:
            fd = await ctx.open(f"/proc/net/{name}")
            files[name] = await ctx.read_all(fd)
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 0, r.stderr
    return files


@pytest.mark.parametrize("name", NAMES)
async def test_header_is_the_hosts(kernel, name):
    host = Path(f"/proc/net/{name}")
    if not host.exists():
        pytest.skip(f"the host has no /proc/net/{name}")
    files = await _snapshot(kernel)
    assert files[name].split(b"\n", 1)[0] == host.read_bytes().split(b"\n", 1)[0]


async def test_lines_have_linux_widths(kernel):
    files = await _snapshot(kernel)
    tcp = files["tcp"].decode().splitlines()
    assert len(tcp) == 4 and all(len(line) == 149 for line in tcp)
    assert tcp[1].split()[1:4] == ["0100007F:1F90", "00000000:0000", "0A"]
    assert tcp[1].split()[4] == "00000000:00000001"  # one connection waits in the backlog
    udp = files["udp"].decode().splitlines()
    assert len(udp) == 2 and all(len(line) == 127 for line in udp)
    tcp6 = files["tcp6"].decode().splitlines()
    assert tcp6[1].split()[1] == "00000000000000000000000000000000:1F91"
    assert tcp6[2].split()[1].startswith("00000000000000000000000001000000:")  # ::1
    unix = files["unix"].decode().splitlines()
    assert unix[1].endswith(" /tmp/x.sock") and " 00010000 0001 01 " in unix[1]
    assert unix[2].endswith(" @abs") and " 0002 01 " in unix[2]


@pytest.mark.skipif(shutil.which("ss") is None, reason="no ss on this host")
async def test_host_ss_reads_them(kernel, tmp_path):
    files = await _snapshot(kernel)
    (tmp_path / "net").mkdir()
    for name, data in files.items():
        (tmp_path / "net" / name).write_bytes(data)
    env = {**os.environ, "PROC_ROOT": str(tmp_path)}
    out = subprocess.run(["ss", "-tuanx"], env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert ["tcp", "LISTEN", "1", "0", "127.0.0.1:8080", "0.0.0.0:*"] in rows
    assert ["tcp", "ESTAB", "3", "0", "127.0.0.1:8080"] in [r[:5] for r in rows]
    assert ["tcp", "LISTEN", "1", "0", "*:8081", "*:*"] in rows
    assert ["udp", "UNCONN", "0", "0", "127.0.0.1:5353", "0.0.0.0:*"] in rows
    assert ["udp", "UNCONN", "0", "0", "[::1]:5354", "*:*"] in rows
    assert ["u_str", "LISTEN", "0", "0", "/tmp/x.sock"] in [r[:5] for r in rows]
    assert ["u_dgr", "UNCONN", "0", "0", "@abs"] in [r[:5] for r in rows]
