"""Differential test: random operation sequences give identical results in both stores.

The memory and SQLite stores must agree on every observable result (return
values, error codes, listings in seq order, refcounts, dead keys at commit), and
refcounts must always match the chunk and version rows.
"""

from __future__ import annotations

import stat

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kernel.errors import KernelError
from vfsfuse.storage.metadata import MemoryMetadataStore, SqliteMetadataStore

NAMES = st.sampled_from([b"a", b"b", b"c", b"d"])
KEYS = st.sampled_from(["k0", "k1", "k2", "k3"])
NOW = 1_700_000_000_000_000_000


def outcome(fn):
    try:
        return ("ok", fn())
    except KernelError as err:
        return ("err", err.code)


class BothStores(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mem = MemoryMetadataStore(versioning=True, now_ns=NOW)
        self.sql = SqliteMetadataStore(":memory:", versioning=True, now_ns=NOW)
        self.inos = [1]

    def teardown(self) -> None:
        self.sql.close()

    def both(self, method, *args):
        a = outcome(lambda: getattr(self.mem, method)(*args))
        b = outcome(lambda: getattr(self.sql, method)(*args))
        assert a == b, (method, args, a, b)
        return a

    def pick(self, data):
        return data.draw(st.sampled_from(self.inos + [999]))

    @rule(is_dir=st.booleans())
    def create(self, is_dir):
        mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
        kind, ino = self.both("create_inode", mode, 0, 0, NOW)
        self.inos.append(ino)

    @rule(data=st.data(), name=NAMES)
    def link(self, data, name):
        self.both("create_dentry", self.pick(data), name, self.pick(data))

    @rule(data=st.data(), name=NAMES)
    def unlink(self, data, name):
        self.both("remove_dentry", self.pick(data), name)

    @rule(data=st.data(), n1=NAMES, n2=NAMES)
    def rename(self, data, n1, n2):
        self.both("rename_dentry", self.pick(data), n1, self.pick(data), n2)

    @rule(data=st.data(), n1=NAMES, n2=NAMES)
    def exchange(self, data, n1, n2):
        self.both("exchange_dentries", self.pick(data), n1, self.pick(data), n2)

    @rule(data=st.data())
    def delete(self, data):
        self.both("delete_inode", self.pick(data))

    @rule(data=st.data(), idx=st.integers(0, 3), key=KEYS)
    def set_chunk(self, data, idx, key):
        self.both("set_chunk_key", self.pick(data), idx, key, 10)

    @rule(data=st.data(), start=st.integers(0, 4))
    def truncate(self, data, start):
        ino = self.pick(data)
        a = sorted(self.mem.delete_chunks_from(ino, start))
        b = sorted(self.sql.delete_chunks_from(ino, start))
        assert a == b

    @rule(data=st.data())
    def snapshot(self, data):
        self.both("create_version", self.pick(data), NOW)

    @rule(data=st.data(), n=st.integers(1, 3))
    def drop_version(self, data, n):
        ino = self.pick(data)
        assert sorted(self.mem.delete_versions(ino, [n])) == sorted(
            self.sql.delete_versions(ino, [n]))

    @rule(data=st.data(), n=st.integers(1, 3))
    def restore(self, data, n):
        self.both("restore_version", self.pick(data), n, NOW)

    @rule()
    def commit(self):
        assert sorted(self.mem.commit()) == sorted(self.sql.commit())

    @rule(data=st.data())
    def observe(self, data):
        ino = self.pick(data)
        for method in ("get_inode", "list_dir", "list_dir_with_stats", "get_all_chunk_keys",
                       "has_children", "list_versions"):
            self.both(method, ino)
        assert sorted(self.mem.parents_of(ino)) == sorted(self.sql.parents_of(ino))

    @invariant()
    def blocks_agree(self):
        assert sorted(self.mem.iter_blocks()) == sorted(self.sql.iter_blocks())
        assert self.mem.check_refcounts() == [] and self.sql.check_refcounts() == []
        assert self.mem.stats() == self.sql.stats()


BothStores.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestBothStores = BothStores.TestCase
