"""The store: ChunkedVFS over a metadata store and a block store, with write-back, fsck and dump/load.

Nothing here imports pyfuse3: the same storage serves the FUSE mount, the in-process kernel
(``vfsfuse shell STORE``) and the command-line tools that work on an unmounted store.
"""
