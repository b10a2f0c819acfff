"""Job builtins: ``jobs fg bg wait kill disown suspend``."""

from __future__ import annotations

from typing import Any

from kernel.errors import KernelError
from kernel.shell.interp import SIGNAL_NAMES, SIGNALS, errno_text, signal_number, wait_status_code


async def _wait_one(sh: Any, pid: int, quiet: bool = False) -> int:
    st = sh.jobs.done_status.pop(pid, None)
    if st is not None:
        return st
    while True:
        try:
            _, status = await sh.ctx.waitpid(pid, 0)
            break
        except KernelError as e:
            if e.code == "EINTR":
                if sh.pending_traps:
                    return 128 + 2
                continue
            if e.code == "ECHILD" and not quiet:
                await sh.error(f"wait: pid {pid} is not a child of this shell")
            return 127
    sh.jobs.forget_pid(pid)
    return wait_status_code(status)


async def b_wait(sh: Any, argv: list[str]) -> int:
    args = [a for a in argv[1:] if a not in ("-f",)]
    jobs = sh.jobs
    var = None  # ``-p VAR``: the pid waited for (with -n)
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "-p" and i + 1 < len(args):
            var = args[i + 1]
            i += 2
            continue
        rest.append(args[i])
        i += 1
    args = rest
    if args and args[0] == "-n":
        if var is not None:
            sh.st.unset(var)
        if not jobs.jobs:
            return 127
        try:
            pid, status = await sh.ctx.waitpid(-1, 0)
        except KernelError:
            return 127
        jobs.forget_pid(pid)
        if var is not None:
            sh.st.set(var, str(pid))
        return wait_status_code(status)
    if not args:
        for j in list(jobs.jobs.values()):
            await _wait_one(sh, j.pid, quiet=True)
        # reap anything else we started (coprocs, process substitutions)
        while True:
            try:
                pid, _ = await sh.ctx.waitpid(-1, 1)  # WNOHANG
            except KernelError:
                break
            if pid == 0:
                try:
                    await sh.ctx.waitpid(-1, 0)
                except KernelError:
                    break
        return 0
    status = 0
    for a in args:
        j = jobs.resolve(a)
        if j is None and a.isdigit():
            pid = int(a)
            status = await _wait_one(sh, pid)
            continue
        if j is None:
            await sh.error(f"wait: {a}: no such job" if a.startswith("%")
                           else f"wait: `{a}': not a pid or valid job spec")
            status = 127
            continue
        status = await _wait_one(sh, j.pid)
    return status


async def b_jobs(sh: Any, argv: list[str]) -> int:
    pflag = "-p" in argv[1:]
    lflag = "-l" in argv[1:]
    jobs = sh.jobs
    keys = sorted(jobs.jobs)
    specs = [a for a in argv[1:] if not a.startswith("-")]
    status = 0
    show = set(keys)
    if specs:
        show = set()
        for a in specs:
            j = jobs.resolve(a)
            if j is None:
                await sh.error(f"jobs: {a}: no such job")
                status = 1
                continue
            show.update(n for n in keys if jobs.jobs[n] is j)
    for n in keys:
        if n not in show:
            continue
        j = jobs.jobs[n]
        try:
            pid, status = await sh.ctx.waitpid(j.pid, 1)
        except KernelError:  # ECHILD: a job a subshell inherited; its state is as last known
            pid, status = 0, 0
        if pid == j.pid:
            j.state = "Done" if wait_status_code(status) == 0 else f"Exit {wait_status_code(status)}"
            jobs.done_status[j.pid] = wait_status_code(status)
        mark = "+" if n == keys[-1] else ("-" if len(keys) > 1 and n == keys[-2] else " ")
        text = j.text + " &" if j.state == "Running" else j.text  # bash marks what runs in the background
        if pflag:
            await sh.out(f"{j.pid}\n")
        elif lflag:
            await sh.out(f"[{n}]{mark} {j.pid} {j.state:<24}{text}\n")
        else:
            await sh.out(f"[{n}]{mark}  {j.state:<24}{text}\n")
        if j.state != "Running" and j.state != "Stopped":
            del jobs.jobs[n]
    return status


async def b_fg(sh: Any, argv: list[str]) -> int:
    if not sh.st.options.get("monitor"):
        await sh.error("fg: no job control")
        return 1
    jobs = sh.jobs
    j = jobs.resolve(argv[1] if len(argv) > 1 else "%%")
    if j is None:
        await sh.error(f"fg: {argv[1] if len(argv) > 1 else 'current'}: no such job")
        return 1
    await sh.out(j.text + "\n")
    sh.jobs.forget_pid(j.pid)
    if sh.job_control:
        # the terminal first, then SIGCONT (as bash): a job resumed while still in the
        # background that reads the terminal is stopped again at once by SIGTTIN
        await sh.set_terminal_group(j.pid)
        try:
            await sh.ctx.kill(-j.pid, SIGNALS["CONT"])
        except KernelError:
            pass
        return (await sh.wait_foreground([j.pid], j.text))[-1]
    try:
        await sh.ctx.kill(j.pid, SIGNALS["CONT"])
    except KernelError:
        pass
    return await _wait_one(sh, j.pid)


async def b_bg(sh: Any, argv: list[str]) -> int:
    if not sh.st.options.get("monitor"):
        await sh.error("bg: no job control")
        return 1
    j = sh.jobs.resolve(argv[1] if len(argv) > 1 else "%%")
    if j is None:
        await sh.error("bg: no current job")
        return 1
    try:
        await sh.ctx.kill(-j.pid if sh.job_control else j.pid, SIGNALS["CONT"])
    except KernelError:
        pass
    j.state = "Running"
    await sh.out(f"[{j.num}]+ {j.text} &\n")
    return 0


async def b_kill(sh: Any, argv: list[str]) -> int:
    args = argv[1:]
    sig = SIGNALS["TERM"]
    if not args:
        await sh.out("kill: usage: kill [-s sigspec | -n signum | -sigspec] pid | jobspec ... "
                     "or kill -l [sigspec]\n", 2)
        return 2
    if args[0] in ("-l", "-L"):
        if len(args) > 1:
            for a in args[1:]:
                if a.isdigit():
                    num = int(a)
                    num = num - 128 if num > 128 else num
                    name = SIGNAL_NAMES.get(num)
                    if name is None:
                        await sh.error(f"kill: {a}: invalid signal specification")
                        return 1
                    await sh.out(name + "\n")
                else:
                    n = signal_number(a)
                    if n is None:
                        await sh.error(f"kill: {a}: invalid signal specification")
                        return 1
                    await sh.out(f"{n}\n")
            return 0
        await sh.out(" ".join(f"{n}) SIG{SIGNAL_NAMES[n]}" for n in sorted(SIGNAL_NAMES)) + "\n")
        return 0
    if args[0] in ("-s", "-n"):
        if len(args) < 2:
            await sh.error(f"kill: {args[0]}: option requires an argument")
            return 2
        n = signal_number(args[1])
        if n is None:
            await sh.error(f"kill: {args[1]}: invalid signal specification")
            return 1
        sig = n
        args = args[2:]
    elif args[0].startswith("-") and args[0] != "--" and len(args[0]) > 1:
        n = signal_number(args[0][1:])
        if n is None:
            await sh.error(f"kill: {args[0][1:]}: invalid signal specification")
            return 1
        sig = n
        args = args[1:]
    if args and args[0] == "--":
        args = args[1:]
    status = 0
    for a in args:
        if a.startswith("%"):
            j = sh.jobs.resolve(a)
            if j is None:
                await sh.error(f"kill: {a}: no such job")
                status = 1
                continue
            # under job control a job is a process group (all of ``a | b &``), as bash signals it
            pid = -j.pid if sh.job_control else j.pid
        else:
            try:
                pid = int(a)
            except ValueError:
                await sh.error(f"kill: {a}: arguments must be process or job IDs")
                status = 1
                continue
        try:
            await sh.ctx.kill(pid, sig)
        except KernelError as e:
            await sh.error(f"kill: ({pid}) - {errno_text(e) if e.code != 'ESRCH' else 'No such process'}")
            status = 1
    # a signal the shell sent itself is handled before kill returns, as on Linux: its trap
    # runs now, not at the next command (there may be none)
    await sh.ctx.preempt_point()
    if sh.pending_traps and not sh.in_trap:
        await sh.run_pending_traps()
    return status


async def b_disown(sh: Any, argv: list[str]) -> int:
    jobs = sh.jobs
    args = [a for a in argv[1:] if not a.startswith("-")]
    if "-a" in argv[1:] or not args and not jobs.jobs:
        jobs.jobs.clear()
        return 0
    if not args:
        args = ["%%"]
    for a in args:
        j = jobs.resolve(a)
        if j is None:
            await sh.error(f"disown: {a}: no such job")
            return 1
        del jobs.jobs[j.num]
    return 0


async def b_suspend(sh: Any, argv: list[str]) -> int:
    if not sh.st.interactive or "-f" in argv:
        try:
            await sh.ctx.kill(sh.ctx.getpid(), SIGNALS["STOP"])
        except KernelError:
            return 1
        return 0
    await sh.error("suspend: cannot suspend a login shell")
    return 1


BUILTINS = {"wait": b_wait, "jobs": b_jobs, "fg": b_fg, "bg": b_bg, "kill": b_kill, "disown": b_disown,
            "suspend": b_suspend}
