"""Memory-store specifics: documented no-op transactions, no aliasing of internal state."""

from __future__ import annotations

import stat

import pytest

from kernel.errors import KernelError
from vfsfuse.storage.metadata import MemoryMetadataStore

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


def test_inode_and_name_limits_give_enospc_and_change_nothing():
    s = MemoryMetadataStore(max_inodes=3)  # the root is one
    a = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"a", a)
    b = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"b", b)
    with pytest.raises(KernelError) as err:
        s.create_inode(REG, 0, 0, NOW)
    assert err.value.code == "ENOSPC"
    s.create_dentry(1, b"a2", a)  # a hard link costs a name: three names now
    with pytest.raises(KernelError) as err:
        s.create_dentry(1, b"a3", a)
    assert err.value.code == "ENOSPC" and s.lookup(1, b"a3") is None
    s.rename_dentry(1, b"a2", 1, b"b")  # replacing a name frees one
    s.delete_inode(b)
    c = s.create_inode(REG, 0, 0, NOW)
    s.create_dentry(1, b"c", c)
    assert s.names == 3


def test_inode_data_limit_counts_inline_bytes_symlinks_and_xattrs():
    s = MemoryMetadataStore(max_bytes=1000)
    f = s.create_inode(REG, 0, 0, NOW)
    s.update_inode(f, inline_content=b"x" * 600, size=600)
    with pytest.raises(KernelError) as err:
        s.create_inode(stat.S_IFLNK | 0o777, 0, 0, NOW, symlink_target=b"t" * 500)
    assert err.value.code == "ENOSPC"
    with pytest.raises(KernelError):
        s.set_xattr(f, b"user.k", b"v" * 400)
    assert s.get_xattr(f, b"user.k") is None
    with pytest.raises(KernelError):
        s.update_inode(f, inline_content=b"y" * 1001, size=1001)
    assert s.get_inode(f).inline_content == b"x" * 600 and s.get_inode(f).size == 600  # unchanged
    s.update_inode(f, inline_content=b"x" * 100, size=100)  # shrinking frees space
    s.set_xattr(f, b"user.k", b"v" * 400)
    link = s.create_inode(stat.S_IFLNK | 0o777, 0, 0, NOW, symlink_target=b"t" * 400)
    assert s.payload_bytes == 100 + 6 + 400 + 400
    s.remove_xattr(f, b"user.k")
    s.delete_inode(link)
    s.delete_inode(f)
    assert s.payload_bytes == 0
