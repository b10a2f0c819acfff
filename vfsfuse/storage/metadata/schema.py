"""SQL schema of the SQLite metadata store, and its migrations.

Every table and column carries a ``--`` comment.  SQLite keeps the text of each
CREATE statement, comments included, so ``sqlite3 -readonly meta.db .schema``
shows a reader what every column means (S3QL's habit).

Migrations: ``MIGRATIONS[v]`` upgrades a database from schema version ``v`` to
``v + 1``; an empty file is version 0, so ``MIGRATIONS[0]`` creates the first
schema.  ``SqliteMetadataStore`` runs the missing ones on open, inside one
transaction, and records the result in ``schema_version``.
"""

from __future__ import annotations

from typing import Callable

import apsw

# Stat type bits, repeated here so SQL can test them: (mode & S_IFMT) = S_IFDIR.
S_IFMT = 0o170000
S_IFDIR = 0o040000

SCHEMA_V1 = """
-- schema_version: one row, the schema version this file is at (see MIGRATIONS)
CREATE TABLE schema_version (
    version INTEGER NOT NULL  -- number of migrations applied to this file
);

-- config: settings fixed at mkfs (chunk size, inline threshold, fs uuid, ...)
CREATE TABLE config (
    key TEXT PRIMARY KEY,  -- setting name, e.g. 'chunk_size'
    value TEXT NOT NULL    -- setting value, as text
) WITHOUT ROWID;

-- counters: store-wide counters that must survive a reopen
CREATE TABLE counters (
    name TEXT PRIMARY KEY,    -- counter name, e.g. 'dentry_seq'
    value INTEGER NOT NULL    -- last value handed out
) WITHOUT ROWID;

-- inodes: one row per file, directory, symlink, fifo, socket or device node
CREATE TABLE inodes (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,  -- inode number; 1 is the root, never reused
    mode INTEGER NOT NULL,                  -- st_mode: S_IF* type bits | permission bits
    uid INTEGER NOT NULL DEFAULT 0,         -- owner user id
    gid INTEGER NOT NULL DEFAULT 0,         -- owner group id
    size INTEGER NOT NULL DEFAULT 0,        -- st_size in bytes (symlink: target length)
    nlink INTEGER NOT NULL DEFAULT 0,       -- hard link count, maintained by the VFS
    rdev INTEGER NOT NULL DEFAULT 0,        -- device number of a character/block device node
    atime_ns INTEGER NOT NULL,              -- last access, ns since the epoch
    mtime_ns INTEGER NOT NULL,              -- last content change, ns since the epoch
    ctime_ns INTEGER NOT NULL,              -- last inode change, ns since the epoch
    birthtime_ns INTEGER NOT NULL,          -- creation time, ns since the epoch
    storage_mode TEXT NOT NULL DEFAULT 'inline'
        CHECK (storage_mode IN ('inline', 'chunked')),  -- where the bytes live: this row or chunks
    inline_content BLOB                     -- the file bytes when storage_mode = 'inline' (NULL: empty)
);

-- dentries: directory entries; '.' and '..' are never stored
CREATE TABLE dentries (
    parent_ino INTEGER NOT NULL REFERENCES inodes(ino),  -- the directory holding the entry
    name BLOB NOT NULL,                                  -- entry name, raw bytes (no '/', no NUL)
    child_ino INTEGER NOT NULL REFERENCES inodes(ino),   -- the inode the name points at
    seq INTEGER NOT NULL,   -- listing order and readdir cookie; store-wide counter, new on rename
    PRIMARY KEY (parent_ino, name)
) WITHOUT ROWID;
-- dentries_by_seq: readdir in seq order, resumable after a cookie
CREATE UNIQUE INDEX dentries_by_seq ON dentries (parent_ino, seq, child_ino);
-- dentries_by_child: parents_of(ino) and the "still linked" check
CREATE INDEX dentries_by_child ON dentries (child_ino);

-- symlinks: the target of each symbolic link
CREATE TABLE symlinks (
    ino INTEGER PRIMARY KEY REFERENCES inodes(ino),  -- the symlink inode
    target BLOB NOT NULL                             -- link target, raw bytes as given to symlink(2)
);

-- blocks: every block (content-addressed chunk) that something references
CREATE TABLE blocks (
    key TEXT PRIMARY KEY,       -- block key: hex xxh3-128 of the block bytes
    refcount INTEGER NOT NULL,  -- refcount: chunk rows + version rows that name this block
    length INTEGER NOT NULL     -- block size in bytes (0 if the writer did not say)
) WITHOUT ROWID;

-- chunks: the chunk map of each chunked file
CREATE TABLE chunks (
    ino INTEGER NOT NULL REFERENCES inodes(ino),  -- the file
    chunk_index INTEGER NOT NULL,                 -- chunk number: byte offset / chunk_size
    key TEXT NOT NULL,                            -- block holding the chunk (blocks.key)
    PRIMARY KEY (ino, chunk_index)
) WITHOUT ROWID;

-- xattrs: extended attributes
CREATE TABLE xattrs (
    ino INTEGER NOT NULL REFERENCES inodes(ino),  -- the inode carrying the attribute
    name BLOB NOT NULL,                           -- attribute name, e.g. 'user.comment'
    value BLOB NOT NULL,                          -- attribute value, raw bytes
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;

-- versions: saved versions of a file (snapshots of size, storage and chunk map)
CREATE TABLE versions (
    ino INTEGER NOT NULL REFERENCES inodes(ino),  -- the file
    version INTEGER NOT NULL,                     -- version number, 1 + highest existing
    size INTEGER NOT NULL,                        -- file size when the version was taken
    created_at_ns INTEGER NOT NULL,               -- when the version was taken, ns since the epoch
    storage_mode TEXT NOT NULL,                   -- 'inline' or 'chunked' at that time
    inline_content BLOB,                          -- inline bytes at that time (NULL: none)
    PRIMARY KEY (ino, version)
) WITHOUT ROWID;

-- version_chunks: the chunk map of each version; each row holds a block reference
CREATE TABLE version_chunks (
    ino INTEGER NOT NULL,          -- the file (versions.ino)
    version INTEGER NOT NULL,      -- the version (versions.version)
    chunk_index INTEGER NOT NULL,  -- chunk number: byte offset / chunk_size
    key TEXT NOT NULL,             -- block holding the chunk (blocks.key)
    PRIMARY KEY (ino, version, chunk_index),
    FOREIGN KEY (ino, version) REFERENCES versions (ino, version)
) WITHOUT ROWID;
"""


def _migrate_0_to_1(cur: apsw.Cursor) -> None:
    """Create the first schema in an empty file."""
    cur.execute(SCHEMA_V1)
    cur.execute("INSERT INTO schema_version (version) VALUES (0)")
    cur.execute("INSERT INTO counters (name, value) VALUES ('dentry_seq', 0)")


# MIGRATIONS[v] takes a cursor on a database at version v and brings it to v + 1.
MIGRATIONS: list[Callable[[apsw.Cursor], None]] = [_migrate_0_to_1]


def current_version() -> int:
    """The schema version this code writes (read at call time so tests can extend MIGRATIONS)."""
    return len(MIGRATIONS)
