"""Memory-store specifics: documented no-op transactions, no aliasing of internal state."""

from __future__ import annotations

import stat

import pytest

from vfsfuse.metadata import MemoryMetadataStore

NOW = 1_700_000_000_000_000_000
REG = stat.S_IFREG | 0o644


def test_transaction_is_a_noop_without_rollback():
    s = MemoryMetadataStore()
    with pytest.raises(RuntimeError):
        with s.transaction():
            f = s.create_inode(REG, 0, 0, NOW)
            s.create_dentry(1, b"x", f)
            raise RuntimeError
    # documented: partial effects of a failed section remain in the memory store
    assert s.lookup(1, b"x") == f


def test_records_are_not_aliased():
    s = MemoryMetadataStore(versioning=True)
    f = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"f", f)
    s.list_dir(1)[0].ino = 999
    assert s.lookup(1, b"f") == f
    s.get_all_chunk_keys(f)  # empty, but make sure a later mutation does not leak in
    s.set_chunk_key(f, 0, "k")
    refs = s.get_all_chunk_keys(f)
    refs[0].key = "evil"
    assert s.get_chunk_key(f, 0) == "k"
    v = s.create_version(f, NOW)
    s.get_version(f, v).size = 99
    assert s.get_version(f, v).size == 0
    s.get_version_chunk_map(f, v)[0].key = "evil"
    assert s.get_version_chunk_map(f, v)[0].key == "k"
    s.parents_of(f).append((5, b"x"))
    assert s.parents_of(f) == [(1, b"f")]


def test_commit_and_close_are_cheap_and_idempotent():
    s = MemoryMetadataStore()
    assert s.commit() == []
    s.close()
    s.close()
