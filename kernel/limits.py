"""Resource limits of one kernel, and the memory budget for generated files.

Hitting a limit raises ``KernelError`` to the caller that asked (EAGAIN for
processes, EMFILE for fds, ENOMEM for generated-file memory); the kernel itself
keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import KernelError


@dataclass(slots=True)
class Limits:
    max_processes: int = 1024          # live + zombie entries, init excluded (EAGAIN)
    max_fds: int = 1024                # per process (EMFILE)
    pipe_buffer: int = 65536           # bytes buffered in one pipe
    pty_buffer: int = 65536            # bytes buffered per PTY direction
    max_canon: int = 4096              # PTY canonical line length (MAX_CANON)
    max_generated_bytes: int = 64 << 20  # total of generated (/proc-style) file contents (ENOMEM)
    # the shell (kernel/shell): None is unlimited, 0 means 0; hitting one ends the script
    sh_function_depth: int | None = 256      # nested shell function calls
    sh_loop_iterations: int | None = None    # loop iterations per shell process
    sh_commands: int | None = None           # commands executed per shell process
    sh_brace_words: int = 1_000_000          # words one brace expansion may produce
    sh_glob_results: int = 100_000           # pathnames one glob may produce
    sh_var_bytes: int | None = 256 << 20     # size of one variable, $( ) output or here-doc
    sh_parse_depth: int = 200                # parser nesting ($( ( { [[ levels)
    sh_subst_depth: int = 64                 # nested $( ) processes


class MemoryBudget:
    """Counts bytes held by generated files; ``reserve`` fails with ENOMEM past the limit.

    procfs (or anything that materialises file contents at open) reserves the size
    of what it generated and releases it when the handle is released.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError("negative reservation")
        if self.used + nbytes > self.limit:
            raise KernelError("ENOMEM", f"generated files exceed {self.limit} bytes")
        self.used += nbytes

    def release(self, nbytes: int) -> None:
        self.used = max(0, self.used - nbytes)
