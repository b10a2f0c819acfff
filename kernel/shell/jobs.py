"""The job table: background jobs started with ``&``, for ``jobs fg bg wait kill %N disown``.

A job here is one process: ``cmd &`` is cmd itself, and for ``a | b &`` a forked child that
starts ``a`` and then becomes ``b`` (so, as in bash, ``$!`` is b's pid; with pipefail the child
stays a shell and reports the pipeline's status).  Under job control that pid is the job's
process group, holding every stage: ``fg`` hands the terminal to the group with
``tcsetpgrp`` and ``kill %N`` signals the whole group.  Statuses of jobs reaped by ``wait`` are kept
until asked for, as POSIX requires for ``wait $!``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Job", "JobTable"]


@dataclass
class Job:
    num: int
    pid: int
    text: str
    state: str = "Running"      # Running, Stopped, Done
    status: int | None = None


@dataclass
class JobTable:
    jobs: dict[int, Job] = field(default_factory=dict)
    done_status: dict[int, int] = field(default_factory=dict)  # pid -> $? of reaped jobs
    _next: int = 1

    def add(self, pid: int, text: str) -> Job:
        num = max(self.jobs, default=0) + 1
        job = Job(num, pid, text)
        self.jobs[num] = job
        return job

    def inherited(self) -> "JobTable":
        """What a subshell starts with: its parent's jobs, to list (``$(jobs -p)`` prints them,
        as in bash) but not to wait for (they are its siblings, not its children)."""
        return JobTable({n: Job(j.num, j.pid, j.text, j.state, j.status) for n, j in self.jobs.items()})

    def forget_pid(self, pid: int) -> None:
        for num, j in list(self.jobs.items()):
            if j.pid == pid:
                del self.jobs[num]

    def by_pid(self, pid: int) -> Job | None:
        for j in self.jobs.values():
            if j.pid == pid:
                return j
        return None

    def resolve(self, spec: str) -> Job | None:
        """``%N``, ``%%``, ``%+``, ``%-``, ``%name``, or a pid."""
        if spec.startswith("%"):
            s = spec[1:]
            if s in ("", "%", "+"):
                return self.jobs[max(self.jobs)] if self.jobs else None
            if s == "-":
                keys = sorted(self.jobs)
                return self.jobs[keys[-2]] if len(keys) > 1 else (self.jobs[keys[0]] if keys else None)
            if s.isdigit():
                return self.jobs.get(int(s))
            for j in self.jobs.values():
                if j.text.startswith(s):
                    return j
            return None
        if spec.isdigit():
            return self.by_pid(int(spec))
        return None
