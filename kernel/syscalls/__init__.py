"""The syscall surface: the one object (``ctx``) a sandbox program receives.

A program is ``async def main(ctx) -> int``.  Everything it can do to the world
goes through ``ctx``: files (paths are sandbox paths resolved against the
process's cwd through ``PathVFS`` over the mount table, never host paths), fds,
pipes, PTYs, processes and signals.  Errors are ``KernelError`` with a POSIX code.

Signals: a syscall first runs pending signal handlers (and waits while the
process is stopped).  A syscall that blocks (read/write on pipes and PTYs,
waitpid, flock, poll, sleep, pause) parks in an interruptible scope; when a
signal arrives its handler runs, and the call either restarts (handler installed
with ``SA_RESTART``, the default of ``ctx.signal``) or fails with EINTR (poll,
sleep and pause always do, as on Linux).  Default actions that terminate end the
process through trio cancellation, so SIGKILL always works.

Calls (all ``async`` unless noted):

* files: ``open(path, flags=O_RDONLY, mode=0o666)``, ``close``, ``read(fd, n)``,
  ``write(fd, data)``, ``write_all``, ``read_all``, ``pread(fd, n, off)``,
  ``pwrite(fd, data, off)``, ``lseek(fd, off, whence)``, ``dup``, ``dup2``, ``dup3``,
  ``fcntl(fd, cmd, arg)``, ``fstat``, ``ftruncate``, ``fsync``, ``getdents(fd)``, ``flock``,
  ``poll([(fd, events)], timeout)``, ``pipe(flags)``;
* paths: ``stat``, ``lstat``, ``access``, ``mkdir``, ``mknod``, ``mkfifo``, ``rmdir``, ``unlink``, ``rename``,
  ``symlink``, ``readlink``, ``link``, ``chmod``, ``chown``, ``truncate``, ``utimes``,
  ``realpath``, ``listdir``, ``chdir``, ``getcwd`` (sync), ``umask`` (sync), ``statfs``;
* processes: ``spawn(argv, ...)``, ``execve(argv, env)``, ``waitpid(pid, options)``, ``exit(code)`` (raises),
  ``kill(pid, sig)``, ``getpid``/``getppid``/``getpgid``/``getsid``/``getuid``/``getgid`` (sync),
  ``setpgid``, ``setsid``, ``sleep``, ``pause``, ``sched_yield``, ``alarm``, ``gethostname`` (sync),
  ``sethostname``;
* signals: ``signal(sig, handler, flags=SA_RESTART)``, ``sigaction``, ``sigprocmask``;
* terminals: ``openpty``, ``isatty`` (sync), ``ttyname``, ``tcgetattr``, ``tcsetattr``,
  ``tcgetpgrp``, ``tcsetpgrp``, ``get_winsize``, ``set_winsize``, ``tiocsctty``;
* sockets: ``socket``, ``socketpair``, ``bind``, ``listen``, ``accept``, ``accept4``, ``connect``,
  ``send``, ``sendto``, ``sendmsg``, ``recv``, ``recvfrom``, ``recvmsg``, ``shutdown``,
  ``getsockname``, ``getpeername``, ``setsockopt``, ``getsockopt``, ``getaddrinfo`` (addresses
  as Python's ``socket`` module; see ``kernel/syscalls/sockets.py`` and ``kernel/net``);
* environment: ``environ`` (the live dict), ``argv``, ``getenv``, ``setenv``, ``unsetenv``.
"""

from kernel.fdtable import O_ACCMODE, O_APPEND, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from kernel.syscalls._base import (
    DT_BLK,
    DT_CHR,
    DT_DIR,
    DT_FIFO,
    DT_LNK,
    DT_REG,
    DT_SOCK,
    DT_UNKNOWN,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_OK,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOFOLLOW,
    O_PATH,
    O_TRUNC,
    R_OK,
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
    SLICE,
    W_OK,
    X_OK,
    CtxBase,
    Dirent,
    ExecImage,
    ProcessExit,
)
from kernel.syscalls.files import FileCalls
from kernel.syscalls.paths import PathCalls
from kernel.syscalls.procs import ProcCalls
from kernel.syscalls.signals import SignalCalls
from kernel.syscalls.sockets import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    AF_UNSPEC,
    IPPROTO_TCP,
    MSG_DONTWAIT,
    MSG_NOSIGNAL,
    MSG_PEEK,
    MSG_WAITALL,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SO_ERROR,
    SO_REUSEADDR,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_NONBLOCK,
    SOCK_SEQPACKET,
    SOCK_STREAM,
    SOL_SOCKET,
    TCP_NODELAY,
    SocketCalls,
)
from kernel.syscalls.tty import TtyCalls


class Ctx(FileCalls, PathCalls, ProcCalls, SignalCalls, TtyCalls, SocketCalls, CtxBase):
    """The syscall context of one process: every call family mixed over one ``CtxBase``."""



__all__ = [
    "Ctx",
    "AF_INET",
    "AF_INET6",
    "AF_UNIX",
    "AF_UNSPEC",
    "IPPROTO_TCP",
    "MSG_DONTWAIT",
    "MSG_NOSIGNAL",
    "MSG_PEEK",
    "MSG_WAITALL",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SO_ERROR",
    "SO_REUSEADDR",
    "SOCK_CLOEXEC",
    "SOCK_DGRAM",
    "SOCK_NONBLOCK",
    "SOCK_SEQPACKET",
    "SOCK_STREAM",
    "SOL_SOCKET",
    "TCP_NODELAY",
    "Dirent",
    "ExecImage",
    "ProcessExit",
    "SLICE",
    "O_ACCMODE",
    "O_APPEND",
    "O_CLOEXEC",
    "O_NONBLOCK",
    "O_RDONLY",
    "O_RDWR",
    "O_WRONLY",
    "O_CREAT",
    "O_DIRECTORY",
    "O_EXCL",
    "O_NOFOLLOW",
    "O_PATH",
    "O_TRUNC",
    "F_DUPFD",
    "F_DUPFD_CLOEXEC",
    "F_GETFD",
    "F_GETFL",
    "F_SETFD",
    "F_SETFL",
    "FD_CLOEXEC",
    "F_OK",
    "R_OK",
    "W_OK",
    "X_OK",
    "SEEK_SET",
    "SEEK_CUR",
    "SEEK_END",
    "SEEK_DATA",
    "SEEK_HOLE",
    "DT_UNKNOWN",
    "DT_FIFO",
    "DT_CHR",
    "DT_DIR",
    "DT_BLK",
    "DT_REG",
    "DT_LNK",
    "DT_SOCK",
]
