"""Permission policies (seed §9.5): fs, network, child-process and env checks.

A policy is a callback that receives a request record and returns a ``Decision``
(or a plain bool).  ``Permissions()`` with no callbacks is the "no policy"
setting of the seed: the filesystem and spawning are allowed, the network is
denied.  A denial is ``KernelError("EACCES", "permission denied, <op> '<path>'")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from .errors import KernelError

FS_OPS = frozenset({
    "read", "write", "mkdir", "createDir", "readdir", "stat", "rm", "rename", "exists",
    "symlink", "readlink", "link", "chmod", "chown", "utimes", "truncate",
})
NETWORK_OPS = frozenset({"fetch", "http", "dns", "listen", "connect"})


@dataclass(slots=True, frozen=True)
class Decision:
    allow: bool
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class FsRequest:
    op: str
    path: str


@dataclass(slots=True, frozen=True)
class NetworkRequest:
    op: str
    url: str | None = None
    method: str | None = None
    hostname: str | None = None


@dataclass(slots=True, frozen=True)
class ChildProcessRequest:
    command: str
    args: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] | None = None


@dataclass(slots=True, frozen=True)
class EnvRequest:
    op: str  # "read" | "write"
    key: str
    value: str | None = None


Policy = Callable[[object], "Decision | bool"]


def _allow(_req: object) -> Decision:
    return Decision(True)


def _deny(_req: object) -> Decision:
    return Decision(False)


@dataclass(slots=True)
class Permissions:
    """The four callbacks; ``None`` means "not configured" (see ``check_*`` for what that implies)."""

    fs: Policy | None = None
    network: Policy | None = None
    child_process: Policy | None = None
    env: Policy | None = None
    # When False (the kernel got no permissions at all) fs checks are skipped entirely.
    enforce_fs: bool = True

    # -- presets ----------------------------------------------------------------
    @classmethod
    def allow_all(cls) -> "Permissions":
        return cls(fs=_allow, network=_allow, child_process=_allow, env=_allow)

    @classmethod
    def default(cls) -> "Permissions":
        """What a kernel built without a policy uses: fs and spawn open, network denied."""
        return cls(enforce_fs=False)

    @classmethod
    def deny_all(cls) -> "Permissions":
        return cls(fs=_deny, network=_deny, child_process=_deny, env=_deny)

    # -- checks -----------------------------------------------------------------
    def check_fs(self, op: str, path: str) -> None:
        """EACCES unless the fs policy allows *op* on the normalised *path*."""
        if not self.enforce_fs:
            return
        norm = normalize_path(path)
        if self.fs is None:
            raise KernelError("EACCES", f"permission denied, {op} '{norm}'")
        _raise_if_denied(self.fs(FsRequest(op, norm)), f"{op} '{norm}'")

    def check_network(self, op: str, *, url: str | None = None, method: str | None = None,
                      hostname: str | None = None) -> None:
        """Deny by default: a missing network policy refuses every external operation."""
        what = f"{op} '{url or hostname or ''}'"
        if self.network is None:
            raise KernelError("EACCES", f"permission denied, {what}")
        _raise_if_denied(self.network(NetworkRequest(op, url, method, hostname)), what)

    def check_spawn(self, command: str, args: tuple[str, ...] = (), cwd: str | None = None,
                    env: Mapping[str, str] | None = None) -> None:
        """A missing child-process policy allows (seed behaviour)."""
        if self.child_process is None:
            return
        _raise_if_denied(self.child_process(ChildProcessRequest(command, tuple(args), cwd, env)),
                         f"spawn '{command}'")

    def filter_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """Only the keys the env policy allows to read; no policy gives ``{}``."""
        if self.env is None:
            return {}
        return {k: v for k, v in env.items() if _allowed(self.env(EnvRequest("read", k, v)))}


def _allowed(decision: "Decision | bool") -> bool:
    return decision if isinstance(decision, bool) else bool(decision.allow)


def _raise_if_denied(decision: "Decision | bool", what: str) -> None:
    if _allowed(decision):
        return
    reason = None if isinstance(decision, bool) else decision.reason
    raise KernelError("EACCES", f"permission denied, {what}" + (f": {reason}" if reason else ""))


def normalize_path(path: str) -> str:
    """Collapse ``//``, resolve ``.``/``..`` lexically (clamped at ``/``), strip a trailing ``/``.

    Used only for policy checks, so ``/home/u/../../etc/passwd`` cannot slip past a
    prefix rule; relative paths stay relative (``""`` -> ``"."``).
    """
    absolute = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not absolute:
                out.append("..")
            continue
        out.append(part)
    if absolute:
        return "/" + "/".join(out)
    return "/".join(out) or "."


def prefix_policy(allow: list[str] | tuple[str, ...] = (), deny: list[str] | tuple[str, ...] = ()) -> Policy:
    """An fs policy from path prefixes: deny wins over allow, nothing allowed by default."""
    allow_n = [normalize_path(p) for p in allow]
    deny_n = [normalize_path(p) for p in deny]

    def under(path: str, prefix: str) -> bool:
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def policy(req: object) -> Decision:
        path = getattr(req, "path", "")
        if any(under(path, d) for d in deny_n):
            return Decision(False, "denied by policy")
        return Decision(any(under(path, a) for a in allow_n), None)

    return policy
