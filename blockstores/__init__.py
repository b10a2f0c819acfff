"""Key -> bytes block stores: in memory and in a host directory."""

from blockstores.base import BlockStore
from blockstores.host import HostBlockStore
from blockstores.keys import check_key
from blockstores.memory import MemoryBlockStore

__all__ = ["BlockStore", "HostBlockStore", "MemoryBlockStore", "check_key"]
