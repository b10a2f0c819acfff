"""Metadata stores: the contract (``base``), an in-memory and a SQLite implementation."""

from .base import (
    CHUNKED,
    INLINE,
    INODE_FIELDS,
    NOT_LOADED,
    ChunkRef,
    DentryRecord,
    InodeRecord,
    MetadataStore,
    StoreStats,
    VersionMeta,
)
from .memory import MemoryMetadataStore
from .sqlite import SqliteMetadataStore

__all__ = [
    "CHUNKED",
    "INLINE",
    "INODE_FIELDS",
    "NOT_LOADED",
    "ChunkRef",
    "DentryRecord",
    "InodeRecord",
    "MetadataStore",
    "MemoryMetadataStore",
    "SqliteMetadataStore",
    "StoreStats",
    "VersionMeta",
]
