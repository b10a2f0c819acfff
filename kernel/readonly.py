"""The read-only rule, written once: which requests change a filesystem, and the refusal.

Three layers apply it, each where requests enter it: the kernel's mount table (a read-only
mount inside the sandbox), the daemon's cache invalidator (``--read-only``: the sandbox's view
of the store), and the FUSE adapter (the host's view of the same store).  They differ only in
*where* they stand; what counts as a change and what the caller sees come from here.
"""

from __future__ import annotations

import os

from kernel.errors import KernelError

# FileSystem operations that change names, data or attributes (the FUSE handlers of the same
# names change the same things).
MUTATING_OPS: frozenset[str] = frozenset({
    "setattr", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "create", "write",
    "setxattr", "removexattr",
})
# ... and what a store's own filesystem adds: versions and garbage collection.
STORE_MUTATING_OPS: frozenset[str] = MUTATING_OPS | {"restore_version", "create_version", "prune_versions", "gc"}


def opens_for_writing(flags: int) -> bool:
    """Whether open(2) with *flags* may change the file (write access or O_TRUNC)."""
    return (flags & os.O_ACCMODE) != os.O_RDONLY or bool(flags & os.O_TRUNC)


def refusal(where: str = "") -> KernelError:
    """The EROFS every layer raises; *where* names the read-only mount in the message."""
    return KernelError("EROFS", f"read-only filesystem: {where}" if where else "read-only filesystem")
