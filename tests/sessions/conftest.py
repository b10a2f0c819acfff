"""Fixtures for sessions: stores, real mounts (the fixtures of tests/mount, which mount through
/dev/fuse and always unmount), and ``Term``, a ``vfsfuse shell`` driven through a real PTY
(pexpect) whose screen is kept by a terminal emulator (pyte) for assertions on what a person
would see."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.mount import conftest as _mount
from tests.mount.conftest import NOBODY, VFSFUSE, _have_fuse, make_store

# the real-mount fixtures of tests/mount (mount through /dev/fuse, always unmount, log check)
world_base = _mount.world_base
runtime_env = _mount.runtime_env
new_mount = _mount.new_mount
__all__ = ["NOBODY", "VFSFUSE", "make_store", "world_base", "runtime_env", "new_mount"]

CANARY_ENV = "VFSFUSE_HOST_CANARY"
CANARY_VALUE = "host-secret-5a1f"


def pytest_collection_modifyitems(config, items):
    if _have_fuse():
        return
    skip = pytest.mark.skip(reason="needs /dev/fuse and fusermount3")
    for item in items:
        if "tests/sessions/" in str(item.fspath) and item.get_closest_marker("mount"):
            item.add_marker(skip)


@pytest.fixture
def store(world_base) -> str:
    """A fresh unmounted store."""
    d = world_base / f"sstore-{time.monotonic_ns()}"
    return make_store(d)


@pytest.fixture
def host_env(runtime_env) -> dict:
    """The environment of the CLI under test, with a canary the sandbox must never see."""
    env = dict(runtime_env)
    env[CANARY_ENV] = CANARY_VALUE
    env["LC_ALL"] = "C"
    return env


def run_cli(*args: str, env: dict, input: bytes | None = None, timeout: float = 60,
            user: int | None = None) -> subprocess.CompletedProcess:
    argv = [VFSFUSE, *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, input=input, capture_output=True, env=env, timeout=timeout)


@dataclass
class Term:
    """``vfsfuse shell TARGET`` on a real PTY, with a pyte screen of what it drew."""

    target: str
    env: dict
    rows: int = 40
    cols: int = 80
    argv: list[str] = field(default_factory=list)
    child: pexpect.spawn | None = None

    def __post_init__(self) -> None:
        self.screen = pyte.Screen(self.cols, self.rows)
        self.stream = pyte.ByteStream(self.screen)

    def start(self, expect_prompt: str = "@sandbox:") -> "Term":
        argv = self.argv or [VFSFUSE, "shell", self.target]
        self.child = pexpect.spawn(argv[0], argv[1:], env=self.env, dimensions=(self.rows, self.cols),
                                   timeout=20)
        self.wait_for(lambda: any(expect_prompt in ln for ln in self.lines()), "a prompt")
        return self

    def pump(self, seconds: float = 0.05) -> None:
        assert self.child is not None
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=max(0.0, end - time.monotonic()))
                self.stream.feed(data)
            except pexpect.TIMEOUT:
                return
            except pexpect.EOF:
                return
            if time.monotonic() >= end:
                return

    def wait_for(self, cond, what: str, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.05)
            if cond():
                return
        raise AssertionError(f"timed out waiting for {what}; screen:\n" + self.text())

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines()).rstrip()

    def prompt_line(self) -> str | None:
        """The last line that shows a prompt (``...$ `` or ``...# ``)."""
        for line in reversed(self.lines()):
            if "@sandbox:" in line:
                return line
        return None

    def cursor_line(self) -> str:
        return self.lines()[self.screen.cursor.y]

    def send(self, data: str | bytes) -> None:
        assert self.child is not None
        self.child.send(data)

    def run(self, line: str, expect: str, timeout: float = 20) -> None:
        """Type *line* and Enter; wait until *expect* shows on a line other than the typed one
        and the cursor sits after a new prompt."""
        self.send(line + "\r")

        def done() -> bool:
            typed = tuple(p + line for p in ("# ", "$ ", "> ")) if line else ()
            shown = any(expect in ln and not (typed and ln.endswith(typed)) for ln in self.lines())
            return shown and self.at_prompt()

        self.wait_for(done, repr(expect), timeout)

    def at_prompt(self) -> bool:
        cur = self.cursor_line()
        head = cur[: self.screen.cursor.x].rstrip()
        return head.endswith(("#", "$", ">")) and cur[self.screen.cursor.x:].strip() == ""

    def count_prompts(self) -> int:
        """Prompts on the screen (tests stay shorter than the screen, so none scrolls away)."""
        return sum(1 for line in self.lines() if "@sandbox:" in line)

    def resize(self, rows: int, cols: int) -> None:
        assert self.child is not None
        self.rows, self.cols = rows, cols
        self.screen.resize(rows, cols)
        self.child.setwinsize(rows, cols)

    def close(self) -> int | None:
        if self.child is None:
            return None
        if self.child.isalive():
            self.send("\x04")
            try:
                self.child.expect(pexpect.EOF, timeout=10)
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
        self.child.close(force=True)
        return self.child.exitstatus


@pytest.fixture
def term_factory(host_env):
    made: list[Term] = []

    def factory(target: str, expect_prompt: str = "@sandbox:", **kw) -> Term:
        t = Term(target, dict(host_env), **kw)
        made.append(t)
        return t.start(expect_prompt)

    yield factory
    for t in made:
        t.close()


def proc_pids(mnt: str) -> dict[int, str]:
    """pid -> comm of the sandbox processes seen by the host in MNT/proc."""
    out = {}
    for name in os.listdir(Path(mnt) / "proc"):
        if name.isdigit():
            try:
                out[int(name)] = (Path(mnt) / "proc" / name / "comm").read_text().strip()
            except OSError:
                pass
    return out
