"""Metadata-store conformance suite: seed cases M1-M51 (seed-behaviour §10.2) plus our additions.

Usage: in a test module, define three fixtures that return a fresh store per test --
``store`` (every configuration), ``versioned_store`` (configurations with versioning;
M42-M51 and the version refcount tests use it) and ``plain_store`` (without) -- then
``from tests.conformance.metadata_suite import *``.

Adaptations from the seed: names are bytes, chunk keys are short strings ("k0"),
times are ns, modes carry the type bits, and quirks are decided the Linux way
(docs/DECISIONS.md, "Metadata stores").
"""

from __future__ import annotations

import contextlib
import stat
import time

import pytest

from kernel.errors import KernelError, has_code
from vfsfuse.storage.metadata.base import CHUNKED, INLINE, NOT_LOADED, ChunkRef

ROOT = 1
NOW = 1_700_000_000_123_456_789


@contextlib.contextmanager
def expect_code(code: str):
    """Expect an exception carrying *code* (attribute or ``"CODE:"`` prefix, see §0.1)."""
    with pytest.raises(Exception) as info:
        yield info
    assert has_code(info.value, code), f"expected {code}, got {info.value!r}"


def new_file(store, mode: int = 0o644) -> int:
    return store.create_inode(stat.S_IFREG | mode, 1000, 1000, time.time_ns())


def new_dir(store) -> int:
    return store.create_inode(stat.S_IFDIR | 0o755, 1000, 1000, time.time_ns())


def new_symlink(store, target: bytes) -> int:
    return store.create_inode(stat.S_IFLNK | 0o777, 1000, 1000, time.time_ns(),
                              symlink_target=target)


def add(store, parent: int, name: bytes, ino: int) -> int:
    store.create_dentry(parent, name, ino)
    return ino


# Versioning cases take the ``versioned_store`` fixture (stores with the capability only) and
# the "versioning off" case takes ``plain_store``, so nothing is generated only to be skipped.


# -- M1-M6 inode lifecycle ----------------------------------------------------------------


def test_m01_create_inode_unique_numbers(store):
    inos = [new_file(store), new_file(store), new_dir(store)]
    assert len(set(inos)) == 3
    assert all(i > 1 for i in inos)


def test_m02_get_inode_fresh_file(store):
    ino = new_file(store, 0o600)
    r = store.get_inode(ino)
    assert r.ino == ino
    assert stat.S_ISREG(r.mode) and r.is_reg
    assert stat.S_IMODE(r.mode) == 0o600
    assert (r.uid, r.gid, r.size, r.nlink) == (1000, 1000, 0, 0)
    assert r.storage_mode == INLINE and r.inline_content is None
    assert r.atime_ns > 0 and r.mtime_ns > 0 and r.ctime_ns > 0 and r.birthtime_ns > 0


def test_m03_update_inode_partial(store):
    ino = new_file(store)
    store.update_inode(ino, size=100, nlink=2)
    r = store.get_inode(ino)
    assert (r.size, r.nlink) == (100, 2)
    assert r.is_reg and r.uid == 1000


def test_m04_delete_inode(store):
    ino = new_file(store)
    store.delete_inode(ino)
    assert store.get_inode(ino) is None


def test_m05_get_unknown_inode(store):
    assert store.get_inode(99999) is None


def test_m06_delete_inode_cleans_up(store):
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "chunk-0")
    store.set_chunk_key(ino, 1, "chunk-1")
    store.delete_inode(ino)
    assert store.get_inode(ino) is None
    assert store.get_chunk_key(ino, 0) is None and store.get_chunk_key(ino, 1) is None
    sl = new_symlink(store, b"/some/target")
    store.delete_inode(sl)
    assert store.get_inode(sl) is None
    with expect_code("EINVAL"):
        store.read_symlink(sl)


def test_delete_inodes_is_delete_inode_for_a_batch(store):
    a, b = new_file(store), new_file(store)
    store.set_chunk_key(a, 0, "shared-key")
    store.set_chunk_key(b, 0, "shared-key")
    store.set_chunk_key(b, 1, "own-key")
    store.set_xattr(a, b"user.x", b"1")
    sl = new_symlink(store, b"/t")
    d = new_dir(store)
    named = add(store, ROOT, b"named", new_file(store))
    with expect_code("EBUSY"):  # one named inode: nothing of the batch goes
        store.delete_inodes([a, named, b])
    assert store.get_inode(a) is not None and store.block_refcount("shared-key") == 2
    with expect_code("EBUSY"):
        store.delete_inodes([a, ROOT])
    store.delete_inodes([a, b, sl, d, 99999])  # an unknown inode is skipped, as with delete_inode
    assert [store.get_inode(i) for i in (a, b, sl, d)] == [None] * 4
    assert store.block_refcount("shared-key") == 0 and store.block_refcount("own-key") == 0
    assert store.get_xattr(a, b"user.x") is None and store.get_chunk_key(b, 1) is None
    assert sorted(store.commit()) == ["own-key", "shared-key"]
    assert store.get_inode(named) is not None
    assert store.check_refcounts() == []


# -- M7-M17 directory entries -------------------------------------------------------------


def test_m07_create_dentry_and_lookup(store):
    child = add(store, ROOT, b"hello.txt", new_file(store))
    assert store.lookup(ROOT, b"hello.txt") == child


def test_m08_lookup_missing(store):
    assert store.lookup(ROOT, b"nonexistent") is None


def test_m09_list_dir(store):
    add(store, ROOT, b"a.txt", new_file(store))
    add(store, ROOT, b"b.txt", new_file(store))
    sub = add(store, ROOT, b"subdir", new_dir(store))
    entries = store.list_dir(ROOT)
    assert len(entries) == 3
    assert sorted(e.name for e in entries) == [b"a.txt", b"b.txt", b"subdir"]
    (d,) = [e for e in entries if e.name == b"subdir"]
    assert d.ino == sub and stat.S_ISDIR(d.mode)


def test_m10_list_empty_dir(store):
    assert store.list_dir(new_dir(store)) == []


def test_m11_list_dir_with_stats(store):
    child = new_file(store)
    store.update_inode(child, size=42, nlink=1)
    add(store, ROOT, b"file.txt", child)
    rows = store.list_dir_with_stats(ROOT)
    assert len(rows) == 1
    entry, st = rows[0]
    assert (entry.name, entry.ino) == (b"file.txt", child) and stat.S_ISREG(entry.mode)
    assert st.ino == child and st.size == 42 and st.nlink == 1


def test_m12_remove_dentry(store):
    add(store, ROOT, b"x", new_file(store))
    store.remove_dentry(ROOT, b"x")
    assert store.lookup(ROOT, b"x") is None


def test_m13_remove_dentry_keeps_inode(store):
    child = add(store, ROOT, b"x", new_file(store))
    store.remove_dentry(ROOT, b"x")
    assert store.get_inode(child) is not None


def test_m14_create_dentry_eexist(store):
    add(store, ROOT, b"dup", new_file(store))
    other = new_file(store)
    with expect_code("EEXIST"):
        store.create_dentry(ROOT, b"dup", other)


def test_m15_rename_same_parent(store):
    child = add(store, ROOT, b"old.txt", new_file(store))
    store.rename_dentry(ROOT, b"old.txt", ROOT, b"new.txt")
    assert store.lookup(ROOT, b"old.txt") is None
    assert store.lookup(ROOT, b"new.txt") == child


def test_m16_rename_across_dirs(store):
    sub = add(store, ROOT, b"subdir", new_dir(store))
    child = add(store, ROOT, b"file.txt", new_file(store))
    store.rename_dentry(ROOT, b"file.txt", sub, b"moved.txt")
    assert store.lookup(ROOT, b"file.txt") is None
    assert store.lookup(sub, b"moved.txt") == child


def test_m17_rename_over_existing(store):
    ino1 = add(store, ROOT, b"src.txt", new_file(store))
    ino2 = add(store, ROOT, b"dst.txt", new_file(store))
    replaced = store.rename_dentry(ROOT, b"src.txt", ROOT, b"dst.txt")
    assert store.lookup(ROOT, b"src.txt") is None
    assert store.lookup(ROOT, b"dst.txt") == ino1
    assert replaced == ino2
    assert store.get_inode(ino2) is not None  # the store never deletes inodes on its own


# -- M18-M29 path resolution --------------------------------------------------------------


def test_m18_resolve_root(store):
    assert store.resolve_path("/") == ROOT
    assert store.resolve_path("") == ROOT


def test_m19_resolve_file(store):
    f = add(store, ROOT, b"hello.txt", new_file(store))
    assert store.resolve_path("/hello.txt") == f


def test_m20_resolve_nested(store):
    a = add(store, ROOT, b"a", new_dir(store))
    b = add(store, a, b"b.txt", new_file(store))
    assert store.resolve_path("/a/b.txt") == b


def test_m21_resolve_symlink(store):
    real = add(store, ROOT, b"real.txt", new_file(store))
    add(store, ROOT, b"link.txt", new_symlink(store, b"/real.txt"))
    assert store.resolve_path("/link.txt") == real


def test_m22_missing_intermediate(store):
    with expect_code("ENOENT"):
        store.resolve_path("/nonexistent/file.txt")


def test_m23_missing_final(store):
    add(store, ROOT, b"dir", new_dir(store))
    with expect_code("ENOENT"):
        store.resolve_path("/dir/missing.txt")


def test_m24_symlink_loop(store):
    add(store, ROOT, b"a", new_symlink(store, b"/b"))
    add(store, ROOT, b"b", new_symlink(store, b"/a"))
    with expect_code("ELOOP"):
        store.resolve_path("/a")


def test_m25_41_symlinks_eloop_40_ok(store):
    target = add(store, ROOT, b"target", new_file(store))
    add(store, ROOT, b"link40", new_symlink(store, b"/target"))
    for i in range(39, -1, -1):
        add(store, ROOT, b"link%d" % i, new_symlink(store, b"/link%d" % (i + 1)))
    with expect_code("ELOOP"):
        store.resolve_path("/link0")  # 41 links to follow
    assert store.resolve_path("/link1") == target  # 40 links: fine


def test_m26_resolve_parent(store):
    d = add(store, ROOT, b"dir", new_dir(store))
    add(store, d, b"file.txt", new_file(store))
    assert store.resolve_parent_path("/dir/file.txt") == (d, b"file.txt")


def test_m27_resolve_parent_keeps_final_symlink(store):
    add(store, ROOT, b"real.txt", new_file(store))
    add(store, ROOT, b"link.txt", new_symlink(store, b"/real.txt"))
    assert store.resolve_parent_path("/link.txt") == (ROOT, b"link.txt")


def test_m28_resolve_parent_missing_intermediate(store):
    with expect_code("ENOENT"):
        store.resolve_parent_path("/nonexistent/file.txt")


def test_m29_relative_symlink(store):
    d = add(store, ROOT, b"dir", new_dir(store))
    real = add(store, d, b"real.txt", new_file(store))
    add(store, d, b"link.txt", new_symlink(store, b"real.txt"))
    assert store.resolve_path("/dir/link.txt") == real


# -- M30-M37 chunk mapping ----------------------------------------------------------------


def test_m30_set_get_chunk(store):
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "block-key-0")
    assert store.get_chunk_key(ino, 0) == "block-key-0"


def test_m31_missing_chunk(store):
    assert store.get_chunk_key(new_file(store), 5) is None


def test_m32_all_chunk_keys_ordered(store):
    ino = new_file(store)
    for i in (2, 0, 1):
        store.set_chunk_key(ino, i, f"key-{i}")
    assert store.get_all_chunk_keys(ino) == [ChunkRef(0, "key-0"), ChunkRef(1, "key-1"),
                                             ChunkRef(2, "key-2")]


def test_m33_no_chunks(store):
    assert store.get_all_chunk_keys(new_file(store)) == []


def test_m34_replace_chunk(store):
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "old-key")
    store.set_chunk_key(ino, 0, "new-key")
    assert store.get_chunk_key(ino, 0) == "new-key"


def test_m35_delete_all_chunks(store):
    ino = new_file(store)
    for i in range(3):
        store.set_chunk_key(ino, i, f"k{i}")
    assert sorted(store.delete_all_chunks(ino)) == ["k0", "k1", "k2"]
    assert all(store.get_chunk_key(ino, i) is None for i in range(3))


def test_m36_delete_chunks_from(store):
    ino = new_file(store)
    for i in range(4):
        store.set_chunk_key(ino, i, f"k{i}")
    assert sorted(store.delete_chunks_from(ino, 2)) == ["k2", "k3"]
    assert [store.get_chunk_key(ino, i) for i in range(4)] == ["k0", "k1", None, None]


def test_m37_delete_chunks_from_past_end(store):
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "k0")
    assert store.delete_chunks_from(ino, 10) == []
    assert store.get_chunk_key(ino, 0) == "k0"


# -- M38-M39 transactions -----------------------------------------------------------------


def test_m38_transaction_commits(store):
    with store.transaction():
        ino = new_file(store)
        store.create_dentry(ROOT, b"txn-file.txt", ino)
    store.commit()
    assert store.get_inode(ino) is not None
    assert store.lookup(ROOT, b"txn-file.txt") == ino


def test_m39_transaction_reraises_same_error(store):
    err = KernelError("EIO", "boom")
    with pytest.raises(KernelError) as info:
        with store.transaction():
            new_file(store)
            raise err
    assert info.value is err


# -- M40-M41 symlinks ---------------------------------------------------------------------


def test_m40_read_symlink(store):
    sl = new_symlink(store, b"/some/target")
    assert store.read_symlink(sl) == b"/some/target"


def test_m41_read_symlink_on_file(store):
    with expect_code("EINVAL"):
        store.read_symlink(new_file(store))


# -- M42-M51 versioning -------------------------------------------------------------------


def test_m42_version_numbers(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=100, inline_content=bytes(100))
    assert [store.create_version(ino, NOW) for _ in range(3)] == [1, 2, 3]


def test_m43_list_versions_newest_first(versioned_store):
    store = versioned_store
    ino = new_file(store)
    for size in (10, 20, 30):
        store.update_inode(ino, size=size)
        store.create_version(ino, NOW)
    vs = store.list_versions(ino)
    assert [v.version for v in vs] == [3, 2, 1]
    assert [v.size for v in vs] == [30, 20, 10]


def test_m44_get_version(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=5, inline_content=bytes([1, 2, 3, 4, 5]))
    v = store.create_version(ino, NOW)
    meta = store.get_version(ino, v)
    assert meta.version == v and meta.size == 5
    assert meta.storage_mode == INLINE and meta.inline_content == bytes([1, 2, 3, 4, 5])
    assert meta.created_at_ns == NOW


def test_m45_get_missing_version(versioned_store):
    store = versioned_store
    assert store.get_version(new_file(store), 999) is None


def test_m46_version_chunk_map(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=2048, storage_mode=CHUNKED)
    store.set_chunk_key(ino, 1, "ino/1/def")
    store.set_chunk_key(ino, 0, "ino/0/abc")
    v = store.create_version(ino, NOW)
    assert store.get_version_chunk_map(ino, v) == [ChunkRef(0, "ino/0/abc"),
                                                   ChunkRef(1, "ino/1/def")]


def test_m47_restore_version(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=1024, storage_mode=CHUNKED)
    store.set_chunk_key(ino, 0, "ino/0/v1key")
    v1 = store.create_version(ino, NOW)
    store.set_chunk_key(ino, 0, "ino/0/v2key")
    store.set_chunk_key(ino, 1, "ino/1/v2key")
    store.update_inode(ino, size=2048)
    store.restore_version(ino, v1, NOW + 5)
    assert store.get_all_chunk_keys(ino) == [ChunkRef(0, "ino/0/v1key")]
    r = store.get_inode(ino)
    assert r.size == 1024 and r.mtime_ns == r.ctime_ns == NOW + 5


def test_m48_delete_versions(versioned_store):
    store = versioned_store
    ino = new_file(store)
    v1, v2, v3 = (store.create_version(ino, NOW) for _ in range(3))
    store.delete_versions(ino, [v1, v2])
    assert [v.version for v in store.list_versions(ino)] == [v3]


def test_m49_delete_versions_returns_orphans(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=1024, storage_mode=CHUNKED)
    store.set_chunk_key(ino, 0, "ino/0/v1key")
    v1 = store.create_version(ino, NOW)
    store.set_chunk_key(ino, 0, "ino/0/v2key")
    orphans = store.delete_versions(ino, [v1])
    assert "ino/0/v1key" in orphans and "ino/0/v2key" not in orphans


def test_m50_shared_key_not_orphaned(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=1024, storage_mode=CHUNKED)
    store.set_chunk_key(ino, 0, "ino/0/sharedkey")
    v1 = store.create_version(ino, NOW)
    store.create_version(ino, NOW)
    store.set_chunk_key(ino, 0, "ino/0/other")
    assert "ino/0/sharedkey" not in store.delete_versions(ino, [v1])
    assert store.block_refcount("ino/0/sharedkey") == 1  # v2 still holds it


def test_m51_writes_do_not_create_versions(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, size=10, inline_content=bytes(10))
    v1 = store.create_version(ino, NOW)
    store.update_inode(ino, size=50, inline_content=bytes(50))
    assert store.get_version(ino, v1).size == 10
    assert len(store.list_versions(ino)) == 1


# == additions ===========================================================================

# -- root and inode numbers ---------------------------------------------------------------


def test_root_inode(store):
    r = store.get_inode(ROOT)
    assert r.mode == stat.S_IFDIR | 0o755
    assert (r.uid, r.gid, r.nlink) == (0, 0, 2)
    assert store.list_dir(ROOT) == []


def test_inode_numbers_never_reused(store):
    a = new_file(store)
    b = new_file(store)
    store.delete_inode(b)
    store.delete_inode(a)
    store.commit()
    c = new_file(store)
    assert a >= 2 and c > b > a


def test_create_inode_keeps_type_bits_and_rdev(store):
    for fmt in (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
        ino = store.create_inode(fmt | 0o640, 5, 6, NOW, rdev=0x0801)
        r = store.get_inode(ino)
        assert stat.S_IFMT(r.mode) == fmt and stat.S_IMODE(r.mode) == 0o640
        assert r.rdev == 0x0801 and (r.uid, r.gid) == (5, 6)
        assert r.atime_ns == r.mtime_ns == r.ctime_ns == r.birthtime_ns == NOW


def test_get_inode_returns_a_copy(store):
    ino = new_file(store)
    r = store.get_inode(ino)
    r.size = 12345
    r.nlink = 9
    assert store.get_inode(ino).size == 0 and store.get_inode(ino).nlink == 0
    add(store, ROOT, b"f", ino)
    _, st = store.list_dir_with_stats(ROOT)[0]
    st.size = 777
    assert store.get_inode(ino).size == 0


def test_inline_content_round_trip(store):
    ino = new_file(store)
    store.update_inode(ino, inline_content=b"", size=0)
    assert store.get_inode(ino).inline_content == b""  # empty stays empty, not None
    buf = bytearray(b"hello")
    store.update_inode(ino, inline_content=buf, size=5)
    buf[:] = b"XXXXX"
    assert store.get_inode(ino).inline_content == b"hello"
    store.update_inode(ino, inline_content=None)
    assert store.get_inode(ino).inline_content is None


def test_attributes_without_the_inline_bytes(store):
    ino = new_file(store)
    store.update_inode(ino, inline_content=b"x" * 5000, size=5000, nlink=1)
    add(store, ROOT, b"f", ino)
    full = store.get_inode(ino)
    attrs = store.get_inode_attrs(ino)
    assert attrs.inline_content is NOT_LOADED
    assert (attrs.ino, attrs.mode, attrs.size, attrs.nlink, attrs.mtime_ns, attrs.storage_mode) == \
        (full.ino, full.mode, full.size, full.nlink, full.mtime_ns, full.storage_mode)
    (_, listed), = store.list_dir_with_stats(ROOT)
    assert listed == attrs
    assert store.get_inline_content(ino) == b"x" * 5000
    with pytest.raises(TypeError):  # using bytes that were never read is a loud bug
        bool(attrs.inline_content)
    assert store.get_inode_attrs(99999) is None and store.get_inline_content(99999) is None


def test_update_unknown_inode_is_noop(store):
    store.update_inode(99999, size=1)
    assert store.get_inode(99999) is None


def test_update_inode_rejects_unknown_field(store):
    with pytest.raises(TypeError):
        store.update_inode(new_file(store), colour="red")


def test_delete_unknown_inode_is_noop(store):
    store.delete_inode(99999)


def test_delete_root_refused(store):
    with expect_code("EBUSY"):
        store.delete_inode(ROOT)
    assert store.get_inode(ROOT) is not None


def test_delete_linked_inode_refused(store):
    f = add(store, ROOT, b"f", new_file(store))
    with expect_code("EBUSY"):
        store.delete_inode(f)
    assert store.get_inode(f) is not None and store.lookup(ROOT, b"f") == f
    store.remove_dentry(ROOT, b"f")
    store.delete_inode(f)
    assert store.get_inode(f) is None


def test_delete_dir_inode_drops_its_entries(store):
    d = new_dir(store)
    f = add(store, d, b"inner", new_file(store))
    store.delete_inode(d)
    assert store.list_dir(d) == [] and store.lookup(d, b"inner") is None
    assert store.parents_of(f) == []
    store.delete_inode(f)  # no longer linked
    assert store.get_inode(f) is None


# -- dentry errors and ordering -----------------------------------------------------------


def test_create_dentry_unknown_parent_or_child(store):
    f = new_file(store)
    with expect_code("ENOENT"):
        store.create_dentry(99999, b"x", f)
    with expect_code("ENOENT"):
        store.create_dentry(ROOT, b"x", 99999)
    assert store.lookup(ROOT, b"x") is None


def test_create_dentry_in_file_is_enotdir(store):
    f = new_file(store)
    with expect_code("ENOTDIR"):
        store.create_dentry(f, b"x", new_file(store))


def test_lookup_in_file_or_unknown_parent(store):
    f = new_file(store)
    assert store.lookup(f, b"x") is None
    assert store.lookup(99999, b"x") is None
    assert store.list_dir(99999) == []


def test_names_are_raw_bytes(store):
    weird = [b"\xff\xfe", "é".encode(), b"a b", b"x" * 255, b"\x01"]
    inos = {n: add(store, ROOT, n, new_file(store)) for n in weird}
    assert {n: store.lookup(ROOT, n) for n in weird} == inos
    assert store.lookup(ROOT, "é".encode("latin-1")) is None
    assert [e.name for e in store.list_dir(ROOT)] == weird


def test_rename_missing_source_keeps_destination(store):
    dst = add(store, ROOT, b"dst", new_file(store))
    with expect_code("ENOENT"):
        store.rename_dentry(ROOT, b"nope", ROOT, b"dst")
    assert store.lookup(ROOT, b"dst") == dst


def test_rename_to_bad_destination_parent(store):
    f = add(store, ROOT, b"f", new_file(store))
    g = add(store, ROOT, b"g", new_file(store))
    with expect_code("ENOTDIR"):
        store.rename_dentry(ROOT, b"f", g, b"x")
    with expect_code("ENOENT"):
        store.rename_dentry(ROOT, b"f", 99999, b"x")
    assert store.lookup(ROOT, b"f") == f


def test_rename_onto_itself_is_noop(store):
    f = add(store, ROOT, b"f", new_file(store))
    assert store.rename_dentry(ROOT, b"f", ROOT, b"f") is None
    assert store.lookup(ROOT, b"f") == f


def test_exchange_dentries(store):
    d = add(store, ROOT, b"d", new_dir(store))
    a = add(store, ROOT, b"a", new_file(store))
    b = add(store, d, b"b", new_dir(store))
    store.exchange_dentries(ROOT, b"a", d, b"b")
    assert store.lookup(ROOT, b"a") == b and store.lookup(d, b"b") == a
    assert store.parents_of(a) == [(d, b"b")] and store.parents_of(b) == [(ROOT, b"a")]
    (ea,) = [e for e in store.list_dir(ROOT) if e.name == b"a"]
    assert stat.S_ISDIR(ea.mode)
    with expect_code("ENOENT"):
        store.exchange_dentries(ROOT, b"a", ROOT, b"missing")
    assert store.lookup(ROOT, b"a") == b


def test_has_children(store):
    d = new_dir(store)
    assert not store.has_children(d)
    add(store, d, b"x", new_file(store))
    assert store.has_children(d)
    store.remove_dentry(d, b"x")
    assert not store.has_children(d)


def test_parents_of_hard_links(store):
    d = add(store, ROOT, b"d", new_dir(store))
    f = add(store, ROOT, b"one", new_file(store))
    store.create_dentry(d, b"two", f)
    assert sorted(store.parents_of(f)) == sorted([(ROOT, b"one"), (d, b"two")])
    store.remove_dentry(ROOT, b"one")
    assert store.parents_of(f) == [(d, b"two")]
    store.rename_dentry(d, b"two", ROOT, b"three")
    assert store.parents_of(f) == [(ROOT, b"three")]
    assert store.parents_of(99999) == []


def test_list_dir_in_seq_order(store):
    names = [b"zeta", b"alpha", b"mid", b"beta"]
    for n in names:
        add(store, ROOT, n, new_file(store))
    entries = store.list_dir(ROOT)
    assert [e.name for e in entries] == names  # insertion order, not name order
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] > 0
    store.rename_dentry(ROOT, b"alpha", ROOT, b"alpha2")  # a rename moves it to the end
    assert [e.name for e in store.list_dir(ROOT)] == [b"zeta", b"mid", b"beta", b"alpha2"]
    assert [e.name for e, _st in store.list_dir_with_stats(ROOT)] == [
        b"zeta", b"mid", b"beta", b"alpha2"]


def test_seq_is_store_wide(store):
    d = add(store, ROOT, b"d", new_dir(store))
    add(store, d, b"x", new_file(store))
    add(store, ROOT, b"y", new_file(store))
    (x,) = store.list_dir(d)
    y = store.list_dir(ROOT)[-1]
    assert y.seq > x.seq


def test_list_dir_paging_survives_changes(store):
    for i in range(10):
        add(store, ROOT, b"f%d" % i, new_file(store))
    page1 = store.list_dir(ROOT, limit=4)
    assert [e.name for e in page1] == [b"f0", b"f1", b"f2", b"f3"]
    cookie = page1[-1].seq
    # Others come and go between two readdir calls.
    store.remove_dentry(ROOT, b"f3")  # the cookie entry itself
    store.remove_dentry(ROOT, b"f1")  # already listed
    store.remove_dentry(ROOT, b"f6")  # not yet listed: must not appear
    add(store, ROOT, b"new", new_file(store))  # created later: appears at the end
    page2 = store.list_dir(ROOT, after_seq=cookie, limit=3)
    assert [e.name for e in page2] == [b"f4", b"f5", b"f7"]
    page3 = store.list_dir(ROOT, after_seq=page2[-1].seq)
    assert [e.name for e in page3] == [b"f8", b"f9", b"new"]
    assert store.list_dir(ROOT, after_seq=page3[-1].seq) == []
    assert store.list_dir(ROOT, limit=0) == []


def test_list_dir_with_stats_paging(store):
    for i in range(5):
        ino = add(store, ROOT, b"f%d" % i, new_file(store))
        store.update_inode(ino, size=i)
    rows = store.list_dir_with_stats(ROOT, after_seq=store.list_dir(ROOT)[1].seq, limit=2)
    assert [(e.name, st.size) for e, st in rows] == [(b"f2", 2), (b"f3", 3)]


def test_paging_many_entries(store):
    for i in range(300):
        add(store, ROOT, b"n%03d" % i, new_file(store))
    for i in range(0, 300, 3):
        store.remove_dentry(ROOT, b"n%03d" % i)
    seen, cookie = [], 0
    while page := store.list_dir(ROOT, after_seq=cookie, limit=7):
        seen.extend(e.name for e in page)
        cookie = page[-1].seq
    assert seen == [b"n%03d" % i for i in range(300) if i % 3]


# -- path resolution (Linux rules) --------------------------------------------------------


def test_dot_and_dotdot(store):
    a = add(store, ROOT, b"a", new_dir(store))
    b = add(store, a, b"b", new_dir(store))
    f = add(store, ROOT, b"f", new_file(store))
    assert store.resolve_path("/a/./b") == b
    assert store.resolve_path("/a/b/..") == a
    assert store.resolve_path("/a/b/../../f") == f
    assert store.resolve_path("/../../a") == a  # '..' at the root stays at the root
    assert store.resolve_path(b"//a//b/") == b


def test_relative_symlink_with_dotdot(store):
    a = add(store, ROOT, b"a", new_dir(store))
    x = add(store, ROOT, b"x", new_file(store))
    add(store, a, b"up", new_symlink(store, b"../x"))
    assert store.resolve_path("/a/up") == x
    sub = add(store, a, b"sub", new_dir(store))
    deep = add(store, sub, b"deep", new_dir(store))
    add(store, ROOT, b"l", new_symlink(store, b"a/sub/deep"))
    assert store.resolve_path("/l") == deep
    assert store.resolve_path("/l/..") == sub  # '..' of the target, not of the link
    add(store, sub, b"abs", new_symlink(store, b"/a"))
    assert store.resolve_path("/a/sub/abs/sub/deep/../..") == a


def test_symlink_not_followed_when_asked(store):
    sl = add(store, ROOT, b"l", new_symlink(store, b"/nowhere"))
    assert store.resolve_path("/l", follow=False) == sl
    with expect_code("ENOENT"):
        store.resolve_path("/l")  # dangling


def test_enotdir_on_file_component(store):
    add(store, ROOT, b"f", new_file(store))
    with expect_code("ENOTDIR"):
        store.resolve_path("/f/x")
    with expect_code("ENOTDIR"):
        store.resolve_path("/f/..")
    with expect_code("ENOTDIR"):
        store.resolve_path("/f/")
    with expect_code("ENOTDIR"):
        store.resolve_parent_path("/f/x")


def test_trailing_slash_follows_symlink(store):
    d = add(store, ROOT, b"d", new_dir(store))
    sl = add(store, ROOT, b"l", new_symlink(store, b"d"))
    assert store.resolve_path("/l", follow=False) == sl
    assert store.resolve_path("/l/", follow=False) == d


def test_empty_symlink_target_is_enoent(store):
    add(store, ROOT, b"empty", new_symlink(store, b""))
    with expect_code("ENOENT"):
        store.resolve_path("/empty")
    with expect_code("ENOENT"):
        store.resolve_path("/empty/x")


def test_resolve_parent_of_root(store):
    with expect_code("ENOENT"):
        store.resolve_parent_path("/")


def test_resolve_parent_through_symlinked_dir(store):
    d = add(store, ROOT, b"d", new_dir(store))
    add(store, ROOT, b"l", new_symlink(store, b"/d"))
    assert store.resolve_parent_path("/l/new") == (d, b"new")


# -- refcounts and dead keys --------------------------------------------------------------


def test_refcounts_count_chunk_rows(store):
    a, b = new_file(store), new_file(store)
    store.set_chunk_key(a, 0, "k0", 100)
    store.set_chunk_key(a, 1, "k0")
    store.set_chunk_key(b, 0, "k0")
    store.set_chunk_key(b, 1, "k1", 7)
    assert store.block_refcount("k0") == 3 and store.block_refcount("k1") == 1
    assert store.block_length("k0") == 100 and store.block_length("k1") == 7
    assert store.block_refcount("nope") == 0 and store.block_length("nope") is None
    assert sorted(store.iter_blocks()) == [("k0", 3, 100), ("k1", 1, 7)]
    store.set_chunk_key(a, 0, "k0")  # same key again: no change
    assert store.block_refcount("k0") == 3
    assert store.check_refcounts() == []


def test_replaced_key_dies_at_commit(store):
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "old", 10)
    store.commit()
    store.set_chunk_key(ino, 0, "new", 10)
    assert store.block_refcount("old") == 0 and store.block_length("old") is None
    assert store.commit() == ["old"]
    assert store.commit() == []  # reported once


def test_deleted_chunks_die(store):
    a, b = new_file(store), new_file(store)
    for i in range(4):
        store.set_chunk_key(a, i, f"k{i}")
    store.set_chunk_key(b, 0, "k1")  # shared with b
    store.commit()
    store.delete_chunks_from(a, 2)
    store.delete_all_chunks(a)
    assert sorted(store.commit()) == ["k0", "k2", "k3"]
    assert store.block_refcount("k1") == 1
    store.delete_inode(b)
    assert store.commit() == ["k1"]
    assert list(store.iter_blocks()) == []


def test_dedup_keys_decref_per_reference(store):
    ino = new_file(store)
    for i in range(5):
        store.set_chunk_key(ino, i, "zero")
    assert store.block_refcount("zero") == 5
    store.delete_chunks_from(ino, 3)
    assert store.block_refcount("zero") == 3
    assert store.commit() == []
    assert store.delete_all_chunks(ino) == ["zero"] * 3
    assert store.commit() == ["zero"]


def test_dead_key_revived_before_commit(store):
    a, b = new_file(store), new_file(store)
    store.set_chunk_key(a, 0, "k", 42)
    store.commit()
    store.delete_all_chunks(a)
    assert store.block_refcount("k") == 0
    store.set_chunk_key(b, 0, "k")  # referenced again before the commit
    assert store.block_refcount("k") == 1
    assert store.block_length("k") == 42  # the length survives the round trip
    assert store.commit() == []
    assert store.check_refcounts() == []


def test_key_dead_twice_reported_once(store):
    a = new_file(store)
    store.set_chunk_key(a, 0, "k")
    store.delete_all_chunks(a)
    store.set_chunk_key(a, 0, "k")
    store.delete_all_chunks(a)
    assert store.commit() == ["k"]


def test_set_chunk_on_unknown_inode(store):
    with expect_code("ENOENT"):
        store.set_chunk_key(99999, 0, "k")
    assert store.block_refcount("k") == 0


def test_version_references_keep_blocks_alive(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.update_inode(ino, storage_mode=CHUNKED, size=10)
    store.set_chunk_key(ino, 0, "v1", 10)
    store.set_chunk_key(ino, 1, "v1")
    v = store.create_version(ino, NOW)
    assert store.block_refcount("v1") == 4  # two chunk rows + two version rows
    store.set_chunk_key(ino, 0, "v2")
    store.delete_chunks_from(ino, 1)
    assert store.block_refcount("v1") == 2
    assert store.commit() == []
    assert store.check_refcounts() == []
    assert store.delete_versions(ino, [v]) == ["v1"]
    assert store.commit() == ["v1"]


def test_restore_version_refcounts(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "a")
    v = store.create_version(ino, NOW)
    store.set_chunk_key(ino, 0, "b")
    store.restore_version(ino, v, NOW)
    assert store.block_refcount("a") == 2 and store.block_refcount("b") == 0
    assert store.commit() == ["b"]
    assert store.check_refcounts() == []


def test_restore_missing_version(versioned_store):
    store = versioned_store
    ino = new_file(store)
    with expect_code("ENOENT"):
        store.restore_version(ino, 3, NOW)
    with expect_code("ENOENT"):
        store.create_version(99999, NOW)


def test_version_number_after_deleting_newest(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.create_version(ino, NOW)
    v2 = store.create_version(ino, NOW)
    store.delete_versions(ino, [v2])
    assert store.create_version(ino, NOW) == 2  # 1 + highest existing
    assert store.delete_versions(ino, []) == []


def test_delete_inode_cascades_versions(versioned_store):
    store = versioned_store
    ino = new_file(store)
    store.set_chunk_key(ino, 0, "k")
    store.create_version(ino, NOW)
    store.create_version(ino, NOW)
    store.delete_inode(ino)  # seed quirk Q12: must not fail
    assert store.get_inode(ino) is None
    assert store.list_versions(ino) == []
    assert store.commit() == ["k"]


def test_versioning_disabled_is_enotsup(plain_store):
    store = plain_store
    ino = new_file(store)
    for call in (lambda: store.create_version(ino, NOW), lambda: store.get_version(ino, 1),
                 lambda: store.list_versions(ino), lambda: store.get_version_chunk_map(ino, 1),
                 lambda: store.delete_versions(ino, [1]),
                 lambda: store.restore_version(ino, 1, NOW)):
        with expect_code("ENOTSUP"):
            call()


# -- xattrs, config, stats ----------------------------------------------------------------


def test_xattrs(store):
    ino = new_file(store)
    assert store.get_xattr(ino, b"user.a") is None and store.list_xattrs(ino) == []
    store.set_xattr(ino, b"user.b", b"2")
    store.set_xattr(ino, b"user.a", b"\x00\xff")
    store.set_xattr(ino, b"user.b", b"")
    assert store.get_xattr(ino, b"user.a") == b"\x00\xff"
    assert store.get_xattr(ino, b"user.b") == b""
    assert store.list_xattrs(ino) == [b"user.a", b"user.b"]
    assert store.remove_xattr(ino, b"user.a") is True
    assert store.remove_xattr(ino, b"user.a") is False
    assert store.list_xattrs(ino) == [b"user.b"]
    with expect_code("ENOENT"):
        store.set_xattr(99999, b"user.a", b"x")


def test_xattrs_deleted_with_inode(store):
    ino = new_file(store)
    store.set_xattr(ino, b"user.a", b"1")
    store.delete_inode(ino)
    assert store.get_xattr(ino, b"user.a") is None and store.list_xattrs(ino) == []


def test_config(store):
    assert store.get_config("chunk_size") is None
    store.set_config("chunk_size", "4194304")
    store.set_config("fs_uuid", "abc")
    store.set_config("chunk_size", "1024")
    store.commit()
    assert store.get_config("chunk_size") == "1024"
    assert store.get_config("fs_uuid") == "abc"


def test_stats(store):
    base = store.stats()
    assert (base.inodes, base.files, base.directories, base.blocks) == (1, 0, 1, 0)
    d = add(store, ROOT, b"d", new_dir(store))
    f1 = add(store, d, b"f1", new_file(store))
    f2 = add(store, d, b"f2", new_file(store))
    add(store, d, b"l", new_symlink(store, b"/x"))
    store.update_inode(f1, size=100)
    store.update_inode(f2, size=5000)
    store.set_chunk_key(f2, 0, "a", 4000)
    store.set_chunk_key(f2, 1, "b", 1000)
    store.set_chunk_key(f1, 0, "a")
    s = store.stats()
    assert (s.inodes, s.files, s.directories) == (5, 2, 2)
    assert s.logical_bytes == 5100
    assert (s.blocks, s.stored_bytes, s.references) == (2, 5000, 3)
    assert s.versions == 0
    if store.versioning:
        store.create_version(f2, NOW)
        s = store.stats()
        assert s.versions == 1 and s.references == 5


# -- single-chunk unmap and orphans (used by ChunkedVFS) -----------------------------------


def test_delete_chunk_unmaps_one_index_and_decrefs(store):
    ino = new_file(store)
    for i, key in enumerate(["k0", "k1", "k2"]):
        store.set_chunk_key(ino, i, key, 10)
    assert store.delete_chunk(ino, 1) == "k1"
    assert store.delete_chunk(ino, 1) is None
    assert [(c.chunk_index, c.key) for c in store.get_all_chunk_keys(ino)] == [(0, "k0"), (2, "k2")]
    assert store.block_refcount("k1") == 0
    assert store.commit() == ["k1"]


def test_orphan_inodes_are_unnamed_with_nlink_zero(store):
    named = add(store, 1, b"named", new_file(store))
    store.update_inode(named, nlink=1)
    orphan = new_file(store)  # nlink 0, no name: what a crash leaves of an open, unlinked file
    linked_zero = add(store, 1, b"zero", new_file(store))  # a name still points at it: not orphan
    assert store.orphan_inodes() == [orphan]
    assert linked_zero not in store.orphan_inodes()


def test_stored_bytes_sums_mapped_block_lengths(store):
    ino = new_file(store)
    assert store.stored_bytes(ino) == 0
    store.set_chunk_key(ino, 0, "a", 100)
    store.set_chunk_key(ino, 5, "b", 7)
    assert store.stored_bytes(ino) == 107
