"""Confidentiality through a real mount (issue 17): a user who may not read a file learns
nothing about it through ``/.vfs/chunks``, ``/.vfs/blocks``, the ``user.vfs.chunks`` xattr or
``vfsfuse info``; the store on the host is private and ``mount`` refuses one that is not."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.mount.conftest import NOBODY, cli, make_store, sh

DATA = bytes((i * 7 + 3) % 251 for i in range(200_000))  # chunked (above the 64K inline threshold)


def _block_keys(mnt: str, rel: str) -> list[str]:
    text = Path(mnt, ".vfs", "chunks", rel).read_text()
    return [line.split()[3] for line in text.splitlines() if line[:1].isdigit()]


def _as_nobody(mnt: str, script: str) -> subprocess.CompletedProcess:
    return sh(script, mnt, user=NOBODY)


def _vfsfuse_as_nobody(*args: str) -> tuple[int, str]:
    """``vfsfuse ARGS`` as uid/gid 65534 without supplementary groups: (exit code, output).

    In a forked child that drops privileges (os.setuid): the venv's interpreter may live
    where 65534 cannot execute it, so the console script cannot simply be run as nobody."""
    import sys

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            # import before dropping privileges: the stdlib may be where 65534 cannot read
            import importlib

            from cli.main import vfsfuse
            for name in ("cli.paths", "vfsfuse.inspect.inspectfs", "vfsfuse.storage.fsck",
                         "vfsfuse.storage.store", "kernel.pathvfs", "datetime", "json"):
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

            try:
                vfsfuse.main(list(args), prog_name="vfsfuse")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            sys.stderr.write(f"child failed: {exc!r}\n")
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


@pytest.fixture
def tree(new_mount):
    m = new_mount("--allow-other")
    root = Path(m.path)
    (root / "pub").mkdir(mode=0o755)
    (root / "pub" / "open").write_bytes(DATA)
    (root / "pub" / "open").chmod(0o644)
    (root / "pub" / "secret").write_bytes(DATA[::-1])
    (root / "pub" / "secret").chmod(0o600)
    (root / "closed").mkdir()
    (root / "closed").chmod(0o700)
    (root / "closed" / "file").write_bytes(DATA[1000:] + b"x")
    (root / "closed" / "file").chmod(0o644)
    return m


DENIED = ["pub/secret", "closed/file"]


@pytest.mark.parametrize("rel", DENIED)
def test_every_inspection_path_is_denied_to_whoever_cannot_read_the_file(tree, rel):
    mnt = tree.path
    keys = _block_keys(mnt, rel)
    assert keys
    checks = {
        "file": f"cat {rel}",
        "chunk map": f"cat .vfs/chunks/{rel}",
        "xattr": f"getfattr --only-values -n user.vfs.chunks {rel}",
        "block": f"cat .vfs/blocks/{keys[0]}",
        "block list": "ls .vfs/blocks",
    }
    for what, script in checks.items():
        p = _as_nobody(mnt, script)
        assert p.returncode != 0, f"{what}: nobody read it: {p.stdout[:200]!r}"
        assert "Permission denied" in p.stderr or "EACCES" in p.stderr, f"{what}: {p.stderr}"
        assert "inode" not in p.stdout and keys[0] not in p.stdout, what
    code, out = _vfsfuse_as_nobody("info", f"{mnt}/{rel}")
    assert code == 8, out
    assert len(out.strip().splitlines()) == 1 and out.startswith("vfsfuse: EACCES:"), out
    assert keys[0] not in out


def test_a_readable_file_shows_its_chunk_map_but_raw_blocks_stay_the_owners(tree):
    mnt = tree.path
    keys = _block_keys(mnt, "pub/open")
    p = _as_nobody(mnt, "cat .vfs/chunks/pub/open && getfattr --only-values -n user.vfs.chunks pub/open"
                        " && cat .vfs/stats .vfs/version")
    assert p.returncode == 0, p.stderr
    assert keys[0] in p.stdout and "logical_bytes" in p.stdout
    code, out = _vfsfuse_as_nobody("info", f"{mnt}/pub/open")
    assert code == 0 and keys[0] in out, out
    # decided in docs/DECISIONS.md: /.vfs/blocks belongs to the mount's owner (and root)
    for script in (f"cat .vfs/blocks/{keys[0]}", "ls .vfs/blocks"):
        p = _as_nobody(mnt, script)
        assert p.returncode != 0 and "Permission denied" in p.stderr, (script, p.stderr)
    block = Path(mnt, ".vfs", "blocks", keys[0]).read_bytes()
    assert block == DATA[:len(block)]
    st = os.stat(Path(mnt, ".vfs", "blocks", keys[0]))
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_uid == os.getuid()


def test_a_chunk_map_follows_chmod_and_chown_of_its_file(tree):
    mnt = tree.path
    secret = Path(mnt, "pub", "secret")
    assert _as_nobody(mnt, "cat .vfs/chunks/pub/secret").returncode != 0
    secret.chmod(0o644)
    p = _as_nobody(mnt, "cat .vfs/chunks/pub/secret")
    assert p.returncode == 0 and "inode" in p.stdout, p.stderr
    secret.chmod(0o600)
    assert _as_nobody(mnt, "cat .vfs/chunks/pub/secret").returncode != 0
    os.chown(secret, NOBODY, NOBODY)
    p = _as_nobody(mnt, "cat .vfs/chunks/pub/secret")
    assert p.returncode == 0, p.stderr
    st = os.stat(Path(mnt, ".vfs", "chunks", "pub", "secret"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o400)
    # a directory closed to others hides its names in chunks/ too
    p = _as_nobody(mnt, "ls .vfs/chunks/closed")
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr


def test_root_still_reads_everything(tree):
    mnt = tree.path
    for rel in DENIED + ["pub/open"]:
        keys = _block_keys(mnt, rel)
        got = b"".join(Path(mnt, ".vfs", "blocks", k).read_bytes() for k in dict.fromkeys(keys))
        assert Path(mnt, rel).read_bytes().startswith(got[:4096])
        p = subprocess.run(["getfattr", "--only-values", "-n", "user.vfs.chunks", str(Path(mnt, rel))],
                           capture_output=True, text=True)
        assert p.returncode == 0 and keys[0] in p.stdout, p.stderr


# -- the store on the host -------------------------------------------------------------------------


def _modes(store: str) -> dict[str, int]:
    out = {}
    for top, dirs, files in os.walk(store):
        for name in [""] + dirs + files:
            path = os.path.join(top, name) if name else top
            out[os.path.relpath(path, store)] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


def test_blocks_written_through_the_mount_are_private_under_umask_000(new_mount, world_base):
    old = os.umask(0)
    try:
        store = make_store(world_base / "private-store")
        m = new_mount(store=store)
    finally:
        os.umask(old)
    p = sh("head -c 3000000 /dev/urandom > big && echo hi > small && sync", m.path, umask=0)
    assert p.returncode == 0, p.stderr
    assert cli("gc", m.path).returncode == 0
    modes = _modes(store)
    assert any(rel.startswith("blocks/") and len(rel) > 20 for rel in modes)
    for rel, mode in modes.items():
        want = 0o700 if os.path.isdir(os.path.join(store, rel)) else 0o600
        if rel.startswith("run/") and rel != "run":
            continue  # the daemon's lock and log: inside the 0700 run dir
        assert mode == want, f"{rel} is {mode:04o} while mounted"
    # the owner's tools work while mounted: sqlite3 -readonly (WAL and -shm included)
    if shutil.which("sqlite3"):
        q = subprocess.run(["sqlite3", "-readonly", os.path.join(store, "meta.db"),
                            "SELECT count(*) FROM inodes"], capture_output=True, text=True)
        assert q.returncode == 0 and int(q.stdout) >= 3, q.stderr
    p = subprocess.run(["getfattr", "-n", "user.vfs.chunks", os.path.join(m.path, "big")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "chunks" in p.stdout
    # nobody on the host reads the store, whatever the mount shows
    q = sh(f"cat {store}/meta.db", "/", user=NOBODY)
    assert q.returncode != 0 and "Permission denied" in q.stderr
    assert m.umount().returncode == 0
    r = cli("fsck", store)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "open_modes" in r.stdout and " 0  open_modes" in r.stdout, r.stdout


@pytest.mark.parametrize("what", [".", "meta.db", "blocks"])
def test_mount_refuses_a_store_others_can_read(new_mount, world_base, what):
    store = make_store(world_base / f"shared-{what.strip('.') or 'dir'}")
    os.chmod(os.path.join(store, what), 0o755 if what != "meta.db" else 0o644)
    m = new_mount(store=store, start=False)
    p = cli("mount", store, m.path, env=m.env)
    assert p.returncode == 8, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfsfuse: EPERM:"), p.stderr
    assert "--allow-shared-store" in p.stderr and "fsck --repair" in p.stderr
    assert not os.path.ismount(m.path)
    assert not os.path.exists(os.path.join(store, "run", "daemon.log"))
    m.options = ("--allow-shared-store",)
    m.start()
    assert Path(m.path, ".vfs", "stats").read_text()
    assert m.umount().returncode == 0
    r = cli("fsck", "--repair", store)
    assert r.returncode == 0, r.stdout + r.stderr
    m.options = ()
    m.start()  # private again
    assert m.umount().returncode == 0


def test_mount_refuses_an_empty_meta_db_and_writes_nothing(new_mount, world_base):
    store = make_store(world_base / "empty-meta")
    os.truncate(os.path.join(store, "meta.db"), 0)
    before = _modes(store), sorted(os.listdir(store)), os.stat(os.path.join(store, "meta.db")).st_mtime_ns
    m = new_mount(store=store, start=False)
    for args in (("mount", store, m.path), ("mount", "--foreground", store, m.path)):
        p = cli(*args, env=m.env, timeout=30)
        assert p.returncode == 8, p.stderr
        assert p.stderr.startswith("vfsfuse: EINVAL:") and "is empty" in p.stderr, p.stderr
        assert not os.path.ismount(m.path)
    after = _modes(store), sorted(os.listdir(store)), os.stat(os.path.join(store, "meta.db")).st_mtime_ns
    assert after == before
    assert os.path.getsize(os.path.join(store, "meta.db")) == 0
