"""The exec path for ELF files without a mount, and the jail launcher's host checks and
arguments (no mount needed; the jail itself runs in tests/mount/test_jail.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernel.errors import KernelError
from kernel.limits import Limits
from kernel.native import STDIO_NULL, STDIO_PIPE, STDIO_SAME_AS_STDOUT, NativeSpec
from tests.kernel.ksupport import boot_kernel, run_program
from vfsfuse.daemon.jail import (
    JailConfig,
    JailLauncher,
    JailUnavailable,
    bwrap_args,
    probe,
    rlimit_args,
    seccomp_program,
)

ELF = b"\x7fELF\x02\x01\x01" + bytes(57)


@pytest.fixture
async def kernel(nursery):
    k = await boot_kernel(nursery)
    await k.vfs.write_file("/tmp/prog", ELF)
    await k.vfs.chmod("/tmp/prog", 0o755)
    await k.vfs.write_file("/tmp/script", b"#!/tmp/prog -x\n")
    await k.vfs.chmod("/tmp/script", 0o755)
    yield k
    await k.shutdown(grace=0.2)


@pytest.mark.parametrize("path", ["/tmp/prog", "/tmp/script"])
async def test_elf_without_a_launcher_is_enoexec_saying_why(kernel, path):
    seen: list[KernelError] = []

    async def prog(ctx):
        for call in (ctx.spawn, ctx.execve):
            try:
                await call([path, "arg"])
            except KernelError as e:
                seen.append(e)
        return 0

    r = await run_program(kernel, prog)
    assert r.status == 0
    assert [e.code for e in seen] == ["ENOEXEC", "ENOEXEC"]
    assert all("mount" in e.message and "/tmp/prog" in e.message for e in seen)  # the ELF file named


async def test_not_elf_stays_plain_enoexec(kernel):
    await kernel.vfs.write_file("/tmp/data", b"\x00\x01binary")
    await kernel.vfs.chmod("/tmp/data", 0o755)
    seen: list[KernelError] = []

    async def prog(ctx):
        try:
            await ctx.spawn(["/tmp/data"])
        except KernelError as e:
            seen.append(e)
        return 0

    await run_program(kernel, prog)
    assert seen[0].code == "ENOEXEC" and "mount" not in seen[0].message


async def test_host_without_bwrap_gives_one_line_on_stderr(kernel, tmp_path):
    """A launcher whose host lacks bubblewrap: the program fails with one line, no traceback."""
    kernel.native = JailLauncher(kernel.vfs, JailConfig(str(tmp_path), bwrap=str(tmp_path / "no-bwrap")))

    async def prog(ctx):
        await ctx.execve(["/tmp/prog"])
        return 0

    r = await run_program(kernel, prog)
    assert r.returncode == 1 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "bubblewrap" in lines[0] and "Traceback" not in lines[0], lines


def test_probe_lines(tmp_path):
    missing = probe(JailConfig(str(tmp_path), bwrap=str(tmp_path / "nothing")))
    assert missing is not None and "\n" not in missing and "apt-get install bubblewrap" in missing
    if probe(JailConfig(str(tmp_path), bwrap="/bin/true")) is not None:  # bwrap found: not a mount
        assert "not a mount" in (probe(JailConfig(str(tmp_path), bwrap="/bin/true")) or "")


async def test_launch_raises_the_refusal(tmp_path):
    launcher = JailLauncher(None, JailConfig(str(tmp_path), bwrap=str(tmp_path / "nothing")))  # type: ignore[arg-type]
    spec = NativeSpec("/bin/x", ["/bin/x"], {}, "/", 0, 0, "sandbox", Limits(), (STDIO_PIPE,) * 3)
    with pytest.raises(JailUnavailable) as info:
        await launcher.launch(spec)
    assert info.value.code == "ENOSYS" and "bubblewrap" in info.value.message


def test_bwrap_arguments_name_no_host_path():
    spec = NativeSpec("/usr/bin/python3", ["python3", "-c", "pass"], {"PATH": "/bin", "HOME": "/home/user"},
                      "/home/user", 0, 0, "box", Limits(), (STDIO_PIPE, STDIO_PIPE, STDIO_SAME_AS_STDOUT))
    args = bwrap_args(spec, 5, 6, 7)
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in args
    assert args[args.index("--hostname") + 1] == "box"
    assert args[args.index("--bind-fd"):][:3] == ["--bind-fd", "5", "/"]
    assert args[args.index("--seccomp") + 1] == "6"
    assert "--share-net" not in args and "--bind" not in args  # nothing of the host is bound in
    assert [args[i + 1] for i, a in enumerate(args) if a == "--setenv"] == ["PATH", "HOME"]
    assert not any(a.startswith(os.path.expanduser("~")) or a.startswith("/work") for a in args)


def test_rlimits_follow_the_kernel_limits():
    spec = NativeSpec("/x", ["/x"], {}, "/", 0, 0, "h", Limits(max_processes=50, max_fds=99), (STDIO_NULL,) * 3)
    assert rlimit_args(spec)[:2] == ["--nproc=50", "--nofile=99"]


def test_seccomp_program_is_bpf():
    prog = seccomp_program()
    assert prog and len(prog) % 8 == 0  # struct sock_filter is 8 bytes
    assert seccomp_program() is prog  # compiled once


def test_probe_source_is_kept_with_the_tests():
    assert (Path(__file__).parent / "probe.c").exists()
