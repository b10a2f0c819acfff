"""Niceness: inherited, shown in /proc like Linux, set by ``nice``, and it scales the time slice."""

from __future__ import annotations

from typing import Any

from kernel.errors import KernelError
from kernel.kernel import Kernel
from kernel.syscalls._base import SLICE_BY_NICE, SLICE_S
from tests.kernel.ksupport import run_program
from tests.programs.test_system import in_kernel, run


def test_nice_adds_to_the_inherited_niceness_and_clamps():
    code, out, err = run("nice; nice -n 5 nice; nice nice -n 3 nice; nice -n 30 nice;"
                         " nice -n 5 sh -c 'nice -n -2 nice'; nice -4 nice")
    assert (code, err) == (0, "")
    assert out.split() == ["0", "5", "13", "19", "3", "4"]  # GNU nice as root gives the same


def test_proc_shows_priority_and_nice_as_linux_does():
    code, out, _ = run("nice -n 6 cut -d' ' -f18,19 /proc/self/stat; nice -n 6 ps -o ni=,pri= -p 1;"
                       " nice -n 6 sh -c 'ps -o ni= -p $$'")
    assert out.split("\n")[:3] == ["26 6", "  0  19", "  6"], out


def test_only_root_lowers_a_niceness():
    seen: dict[str, Any] = {}

    async def as_user(ctx: Any) -> int:
        ctx.setpriority(5)
        ctx.proc.uid = 1000  # an ordinary user from here on
        ctx.setpriority(7)   # raising is anyone's right
        try:
            ctx.setpriority(6)
        except KernelError as e:
            seen["lower"] = e.code
        seen["now"] = ctx.getpriority()
        return 0

    async def body(kernel: Kernel) -> None:
        r = await run_program(kernel, as_user)
        assert r.status == 0, r.stderr

    in_kernel(body)
    assert seen == {"lower": "EACCES", "now": 7}


def test_a_nicer_process_gets_a_shorter_slice():
    assert SLICE_BY_NICE[0] == SLICE_S
    assert SLICE_BY_NICE[19] < SLICE_BY_NICE[10] < SLICE_S < SLICE_BY_NICE[-5]
    assert SLICE_BY_NICE[-20] == 4 * SLICE_S  # capped: nothing holds the FUSE loop for long
