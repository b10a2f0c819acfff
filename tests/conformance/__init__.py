"""Reusable conformance suites (block store, metadata store, path-level VFS).

Each module exposes a ``define_*_tests`` style set of test functions parametrised by
a factory, so any implementation can be plugged in (see seed-behaviour §10).
"""
