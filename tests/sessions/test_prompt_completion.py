"""PS1 expansion and Tab completion, unit level: a shell made inside a kernel process (so every
lookup goes through its ctx), without a terminal.  The PTY tests show the same on screen."""

from __future__ import annotations

import pytest
import trio

from kernel.shell.interactive import complete, expand_prompt
from kernel.shell.lineedit import common_prefix, display_width
from kernel.shell.main import make_shell
from vfsfuse.daemon.sessions import local_kernel


def in_shell(fn):
    """Run ``await fn(sh)`` in a shell inside a fresh memory sandbox; its result."""
    out: list = []

    async def main() -> None:
        async with local_kernel(None) as kernel:
            await kernel.vfs.mkdir("/tmp/comp")
            await kernel.vfs.mkdir("/tmp/comp/dir one")
            await kernel.vfs.write_file("/tmp/comp/file.txt", b"x")
            await kernel.vfs.write_file("/tmp/comp/.hidden", b"x")

            async def program(ctx) -> int:
                sh = make_shell(ctx, "bash", False)
                out.append(await fn(sh))
                return 0

            p = kernel.spawn_process(["bash"], parent=None, env=dict(kernel.env, PWD="/tmp/comp"),
                                     cwd="/tmp/comp", program=program, exe="/bin/bash")
            await p.exited.wait()

    trio.run(main)
    return out[0]


@pytest.mark.parametrize("ps1, want", [
    ("\\u@\\h:\\w\\$ ", "root@sandbox:/tmp/comp# "),
    ("\\W> ", "comp> "),
    ("\\s-\\v", "bash-5.2"),
    ("a\\nb", "a\nb"),
    ("\\101\\\\", "A\\"),
    ("\\[\\e[1m\\]x", "\x01\x1b[1m\x02x"),
    ("$((1+2)) ${PWD##*/}", "3 comp"),
    ("$(echo sub)", "sub"),
    ("\\$HOME", "#HOME"),  # \$ is the prompt sign, then literal text
])
def test_expand_prompt(ps1, want):
    assert in_shell(lambda sh: expand_prompt(sh, ps1)) == want


def test_prompt_values_are_not_expanded_again():
    async def go(sh):
        sh.st.set("PWD", "/tmp/$(echo no)")
        return await expand_prompt(sh, "\\w")

    assert in_shell(go) == "/tmp/$(echo no)"


def test_complete_command_names():
    start, cands = in_shell(lambda sh: complete(sh, "ec", 2))
    assert start == 0 and "echo " in cands
    _, cands = in_shell(lambda sh: complete(sh, "ls | gre", 8))
    assert "grep " in cands


def test_complete_paths():
    start, cands = in_shell(lambda sh: complete(sh, "cat /tmp/comp/f", 15))
    assert (start, cands) == (4, ["/tmp/comp/file.txt "])
    _, cands = in_shell(lambda sh: complete(sh, "cat ", 4))  # relative to the cwd, no dot files
    assert cands == ["dir\\ one/", "file.txt "]
    _, cands = in_shell(lambda sh: complete(sh, "cat .h", 6))
    assert cands == [".hidden "]
    _, cands = in_shell(lambda sh: complete(sh, "cd ", 3))  # cd: directories only
    assert cands == ["dir\\ one/"]
    _, cands = in_shell(lambda sh: complete(sh, "cat /nonexistent/x", 18))
    assert cands == []


def test_editor_helpers():
    assert display_width("\x01\x1b[31m\x02ab") == 2
    assert display_width("\x1b[1mab\x1b[0m") == 2
    assert display_width("日本") == 4
    assert common_prefix(["abc", "abd", "ab"]) == "ab"
