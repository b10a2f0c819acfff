"""Block key validation shared by every store.

Keys become host file names in the host store, so they are checked once here
with one rule for all stores: a store behaves the same whichever one the VFS
is given, and no key can name anything outside the store's directory.
"""

from __future__ import annotations

import re

from kernel.errors import KernelError

MAX_KEY_LEN = 200
_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


def check_key(key: str) -> str:
    """Return *key* if it is a valid block key, else raise ``KernelError("EINVAL")``.

    Valid: 1-200 characters from ``[A-Za-z0-9_.-]`` and not starting with ``.``
    (which rules out ``.``, ``..`` and our own ``.tmp.*`` files). The character
    set already excludes ``/``, ``\\``, NUL and absolute paths.
    """
    if type(key) is not str or not _KEY_RE.fullmatch(key) or key[0] == ".":
        raise KernelError("EINVAL", f"invalid block key: {key!r:.60}")
    return key
