"""/proc for the sandbox kernel: ``ProcFS`` (the filesystem) and ``ProcConfig``
(the synthetic machine it describes).  File formats live in ``files.py``."""

from .files import ProcConfig
from .fs import ProcFS

__all__ = ["ProcConfig", "ProcFS"]
