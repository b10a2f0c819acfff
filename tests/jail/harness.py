"""A real mount served by ``serve_jail.py`` with sandbox commands run through its kernel.

``JailMount.start(base)`` makes a store, mounts it for real (``/dev/fuse``), waits for the mount
and returns; ``run(script)`` runs ``bash -c SCRIPT`` in the sandbox's own shell and returns
(code, stdout, stderr); ``close()`` unmounts and always leaves no mount or daemon behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSYBOX = "/bin/busybox"


@dataclass
class Result:
    code: int
    status: int
    stdout: str
    stderr: str


@dataclass
class JailMount:
    store: str
    path: str
    proc: subprocess.Popen

    @classmethod
    def start(cls, base: Path, name: str, *, allow_other: bool = True,
              max_processes: int | None = None, net: tuple[str, ...] = ()) -> "JailMount":
        """*net*: the network mode then its rules (``("allow", "tcp:127.0.0.1:8000")``)."""
        from vfsfuse.storage.store import create_store

        store, mnt = base / f"{name}-store", base / f"{name}-mnt"
        store.mkdir()
        mnt.mkdir()
        create_store(str(store))
        args = [sys.executable, str(HERE / "serve_jail.py"), str(store), str(mnt)]
        if not allow_other:
            args.append("--no-allow-other")
        if max_processes is not None:
            args += ["--max-processes", str(max_processes)]
        if net:
            args += ["--net", net[0], *(a for rule in net[1:] for a in ("--allow", rule))]
        env = dict(os.environ, VFSFUSE_RUNTIME_DIR=str(base / "jail-runtime"))
        os.makedirs(env["VFSFUSE_RUNTIME_DIR"], exist_ok=True)
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=str(HERE.parent.parent))
        jm = cls(str(store), str(mnt), proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            why = proc.stderr.read() if proc.stderr else ""
            jm.close()
            raise AssertionError(f"jail daemon did not start: {line}{why}")
        return jm

    def run(self, script: str, *, input: str | None = None, timeout: float = 60) -> Result:
        """``bash -c SCRIPT`` in the sandbox (the kernel's shell)."""
        return self.run_argv(["bash", "-c", script], input=input, timeout=timeout)

    def run_argv(self, argv: list[str], *, input: str | None = None, timeout: float = 60) -> Result:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "input": input, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("jail daemon died: " + (self.proc.stderr.read() if self.proc.stderr else ""))
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"kernel refused {argv}: {reply['error']}")
        return Result(reply["code"], reply["status"], reply["stdout"], reply["stderr"])

    def terminal(self, argv: list[str], keys: list[str], **kw: object) -> dict:
        """Run *argv* on a kernel PTY, typing *keys*; returns ``{"screen", "status"}``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"tty": argv, "keys": keys, **kw}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise AssertionError(f"kernel refused {argv}: {reply['error']}")
        return reply

    def install_busybox(self, where: str = "/opt/busybox") -> str:
        """Copy the host's static busybox into the mount (through FUSE, as a user would)."""
        dest = self.path + where
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(BUSYBOX, dest)
        return where

    def install_python(self, imports: str = "os, json") -> str:
        """Copy the host's python3, its shared libraries and the stdlib files that
        ``import IMPORTS`` loads into the mount (``python3 -I -S`` needs nothing else)."""
        exe = os.path.realpath(sys.executable if "python3" in os.path.basename(sys.executable)
                               and sys.executable.startswith("/usr/") else "/usr/bin/python3")
        listing = subprocess.run(
            [exe, "-I", "-S", "-c", f"import sys, {imports}; print(*sorted({{m.__file__ for m in "
             "list(sys.modules.values()) if getattr(m, '__file__', None)}), sep='\\n')"],
            capture_output=True, text=True, check=True).stdout.split()
        ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
        libs = [w for w in ldd.split() if w.startswith("/")]
        for src in [*listing, *libs]:
            self._copy_in(src, src)
        self._copy_in(exe, "/usr/bin/python3")
        stdlib = next(os.path.dirname(f) for f in listing if f.endswith("/os.py"))
        os.makedirs(self.path + stdlib + "/lib-dynload", exist_ok=True)  # sys.exec_prefix's landmark
        return "/usr/bin/python3"

    def install_elf(self, host_path: str, where: str) -> str:
        """Copy a dynamically linked host program and the libraries ``ldd`` names."""
        ldd = subprocess.run(["ldd", host_path], capture_output=True, text=True, check=True).stdout
        for lib in (w for w in ldd.split() if w.startswith("/")):
            self._copy_in(lib, lib)
        self._copy_in(host_path, where)
        if os.path.basename(host_path) == "git":
            os.makedirs(self.path + "/usr/share/git-core/templates", exist_ok=True)
        return where

    def _copy_in(self, src: str, where: str) -> None:
        dest = self.path + where
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.realpath(src), dest)

    def close(self) -> None:
        if _mounted(self.path):
            subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if _mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == os.path.abspath(path) for line in f)


def busybox_is_static() -> bool:
    if not os.path.exists(BUSYBOX):
        return False
    p = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True)
    return "statically linked" in p.stdout or p.returncode != 0 and os.path.getsize(BUSYBOX) > 1_000_000
