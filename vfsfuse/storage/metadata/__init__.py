"""Metadata stores: the contract (``base``), an in-memory and a SQLite implementation."""

from vfsfuse.storage.metadata.base import (
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
from vfsfuse.storage.metadata.memory import MemoryMetadataStore
from vfsfuse.storage.metadata.sqlite import SqliteMetadataStore

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
