"""vfsfuse: a sandbox filesystem (FUSE mount + userspace kernel + shell).

``vfsfuse.Sandbox`` (vfsfuse/api.py) is the embedding API; it is imported on first use so that
``import vfsfuse.storage`` stays light."""

from __future__ import annotations

from typing import Any

__all__ = ["Sandbox", "Session", "Result", "Limits"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vfsfuse import api

        return getattr(api, name)
    raise AttributeError(f"module 'vfsfuse' has no attribute {name!r}")
