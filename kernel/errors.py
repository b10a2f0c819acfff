"""The one error type used inside vfsfuse.

Every layer (block stores, metadata stores, the VFS, the kernel) raises
``KernelError`` with a POSIX errno name.  ``str(err)`` is ``"CODE: message"`` so
a message alone is enough to recover the code, and ``err.errno`` is the numeric
value the FUSE adapter hands back to the Linux kernel.
"""

from __future__ import annotations

import errno as _errno


class KernelError(Exception):
    """An error with a POSIX code such as ``ENOENT``.

    >>> str(KernelError("ENOENT", "no such file: /a"))
    'ENOENT: no such file: /a'
    """

    def __init__(self, code: str, message: str = "") -> None:
        if not hasattr(_errno, code):
            raise ValueError(f"unknown errno name {code!r}")
        self.code = code
        self.errno: int = getattr(_errno, code)
        self.message = message or _default_message(code)
        super().__init__(f"{code}: {self.message}")

    def __reduce__(self):  # keep pickling (multiprocessing, trio threads) lossless
        return (KernelError, (self.code, self.message))

    @classmethod
    def from_os_error(cls, err: OSError, what: str = "") -> "KernelError":
        """Translate an OSError from the host into a KernelError without leaking host paths."""
        code = _errno.errorcode.get(err.errno or 0, "EIO")
        text = err.strerror or code
        return cls(code, f"{what}: {text}" if what else text)


def _default_message(code: str) -> str:
    import os

    return os.strerror(getattr(_errno, code))


def has_code(exc: BaseException, code: str) -> bool:
    """True if *exc* carries *code*, as an attribute or as a ``"CODE:"`` prefix."""
    return getattr(exc, "code", None) == code or str(exc).startswith(code + ":")


def unwrap_group(exc: BaseException, prefer: type[BaseException] | tuple[type[BaseException], ...] = KernelError
                 ) -> BaseException:
    """The error that matters inside trio's (nested) exception groups: the first exception of a
    *prefer* type found depth-first, else the first leaf; *exc* itself when it is no group.

    Nurseries wrap a child's KernelError in groups; callers want the error, not the wrapping."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    first: BaseException | None = None
    stack = [exc]
    while stack:
        group = stack.pop()
        for sub in group.exceptions:
            if isinstance(sub, BaseExceptionGroup):
                stack.append(sub)
                continue
            if isinstance(sub, prefer):
                return sub
            if first is None:
                first = sub
    return first if first is not None else exc
