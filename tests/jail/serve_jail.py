"""The real mount daemon in this process, running sandbox commands on request (jail tests).

One JSON request per line on stdin: ``{"argv": [...], "input": "...", "timeout": s}``; one JSON
answer per line on stdout: ``{"status": wait status, "code": $?, "stdout", "stderr"}`` or
``{"error": "CODE: message"}``.  Commands run through the daemon's own kernel (``Kernel.run``),
so ELF files start in the jail exactly as from a session's shell.
Usage: python serve_jail.py STORE MOUNTPOINT [--no-allow-other] [--max-processes N] [--net MODE [--allow RULE]...]
"""

from __future__ import annotations

import json
import os
import sys

import trio

from kernel.errors import KernelError
from vfsfuse.daemon.config import MountConfig
from vfsfuse.daemon.serve import Daemon


class JailTestDaemon(Daemon):
    max_processes: int | None = None

    async def _after_mount(self) -> None:
        await super()._after_mount()
        if self.max_processes is not None and self.kernel is not None:
            self.kernel.limits.max_processes = self.max_processes
        stdin = trio.lowlevel.FdStream(0)
        buf = b""
        while True:
            data = await stdin.receive_some(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                req = json.loads(line)
                try:
                    assert self.kernel is not None
                    if "tty" in req:
                        print(json.dumps(await self._terminal(req)), flush=True)
                        continue
                    res = await self.kernel.run(req["argv"], req.get("input"), timeout=req.get("timeout", 60),
                                                env=req.get("env"))
                    reply = {"status": res.status, "code": res.shell_code,
                             "stdout": res.stdout.decode("utf-8", "replace"),
                             "stderr": res.stderr.decode("utf-8", "replace")}
                except KernelError as err:
                    reply = {"error": str(err)}
                print(json.dumps(reply), flush=True)


    async def _terminal(self, req: dict) -> dict:
        """``{"tty": argv, "keys": [...], "rows", "cols", "resize": [rows, cols]}``: run *argv* on
        a new kernel PTY, type each of *keys* after a pause, collect the screen until hang-up."""
        assert self.kernel is not None
        h = await self.kernel.open_terminal(req["tty"], rows=req.get("rows", 24), cols=req.get("cols", 80))
        screen: list[bytes] = []
        states: list[list[str]] = []

        async def typing() -> None:
            for key in req.get("keys", []):
                await trio.sleep(req.get("pause", 0.5))
                if key.startswith("<states:"):  # kernel and host states of processes running ARGV
                    states.append(_states(self.kernel, key[8:-1]))
                elif key == "<wait>":
                    await trio.sleep(2)  # let a foreground program finish: it would read typeahead
                elif key == "<resize>":
                    h.resize(*req["resize"])
                else:
                    await h.write(key.encode())

        with trio.move_on_after(req.get("timeout", 30)):
            async with trio.open_nursery() as n:
                n.start_soon(typing)
                while True:
                    data = await h.read()
                    if not data:
                        break
                    screen.append(data)
                n.cancel_scope.cancel()
        status = await h.wait() if h.proc.exited.is_set() else None
        await h.close()
        return {"screen": b"".join(screen).decode("utf-8", "replace"), "status": status, "states": states}


def _states(kernel, cmdline: str) -> list[str]:
    """``kernel:S`` for each kernel process whose argv is *cmdline*, ``host:S`` for each host one."""
    want = cmdline.split()
    out = [f"kernel:{p.state}" for p in kernel.processes.processes() if p.argv == want]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[:-1] != [w.encode() for w in want]:
                    continue
            with open(f"/proc/{pid}/stat") as f:
                out.append("host:" + f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
    return out


if __name__ == "__main__":
    opts = sys.argv[3:]
    net_mode = opts[opts.index("--net") + 1] if "--net" in opts else "none"
    net_rules = tuple(opts[i + 1] for i, a in enumerate(opts) if a == "--allow")
    config = MountConfig(mountpoint=sys.argv[2], store=sys.argv[1], allow_other="--no-allow-other" not in opts,
                         net_mode=net_mode, net_rules=net_rules)
    daemon = JailTestDaemon(config, lambda: print("ready", flush=True))
    if "--max-processes" in opts:
        daemon.max_processes = int(opts[opts.index("--max-processes") + 1])
    daemon.run()
