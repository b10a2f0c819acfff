"""``vfsfuse import`` and ``mkfs --from``: real tarballs made by host tar (or tarfile, for what
tar will not write), imported, then checked against the tree they were made from.

The check is differential: every entry of the source tree, as the host's ``lstat`` sees it
(type and mode bits, numeric owner, mtime to the nanosecond, size, link count, device
number, symlink text, xattrs, bytes, which names share an inode), must be what the store
holds, read back through the store's own metadata (and, in the mount tests, through a real
FUSE mount with host ``stat``, ``getfattr`` and ``readlink``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat as S
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from tests.mount.conftest import VFSFUSE, new_mount, runtime_env, world_base  # noqa: F401  (fixtures)
from vfsfuse.daemon.control import MOUNT_IMPORT_BATCH
from vfsfuse.storage.fsck import exclusive_store, fsck_store
from vfsfuse.storage.store import create_store, open_store

from .conftest import assert_one_line_error, cli

CHUNK = 64 << 10
INLINE = 4 << 10
IS_ROOT = os.geteuid() == 0
BIG = bytes((i * 7919 + 13) % 251 for i in range(3 * CHUNK + 1234))  # 4 chunks


# -- the source tree and the views compared ---------------------------------------------------


def make_tree(root: Path) -> Path:
    """A small root filesystem with every kind of member tar stores."""
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib/deep/er").mkdir(parents=True)
    (root / "etc/hostname").write_bytes(b"sandbox\n")
    (root / "etc/empty").write_bytes(b"")
    (root / "usr/lib/big.bin").write_bytes(BIG)
    (root / "usr/lib/zeros").write_bytes(bytes(2 * CHUNK) + b"end")  # a hole, then data
    (root / "usr/lib/deep/er/leaf.txt").write_bytes(b"leaf\n" * 100)
    os.link(root / "usr/lib/big.bin", root / "usr/lib/deep/big-again")  # hard link
    os.link(root / "etc/hostname", root / "etc/hostname.2")
    os.symlink("../lib/big.bin", root / "usr/lib/deep/rel-link")
    os.symlink("/etc/hostname", root / "usr/abs-link")
    os.mkfifo(root / "usr/fifo")
    (root / "usr/lib/setuid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "usr/lib/setuid", 0o4755)
    os.chmod(root / "usr/lib/deep", 0o2750)
    (root / "etc/secret").write_bytes(b"x")
    os.chmod(root / "etc/secret", 0o600)
    subprocess.run(["setfattr", "-n", "user.note", "-v", "héllo", str(root / "etc/hostname")], check=True)
    subprocess.run(["setfattr", "-n", "user.bin", "-v", "0xff00fe", str(root / "usr/lib/big.bin")], check=True)
    subprocess.run(["setfattr", "-n", "user.dir", "-v", "d", str(root / "usr/lib")], check=True)
    if IS_ROOT:
        os.mknod(root / "usr/null", S.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(root / "usr/sda", S.S_IFBLK | 0o660, os.makedev(8, 0))
        os.chown(root / "etc/secret", 1234, 5678)
        os.lchown(root / "usr/abs-link", 42, 43)
        os.chown(root / "usr/lib/deep", 7, 8)
    for i, p in enumerate(sorted(root.rglob("*"), reverse=True)):
        ns = 1_600_000_000_123_456_789 + i * 1_000_000_007
        os.utime(p, ns=(ns, ns), follow_symlinks=False)
    os.utime(root, ns=(1_500_000_000_000_000_001,) * 2)
    return root


def make_tar(src: Path, out: Path, compress: str = "") -> Path:
    """Host GNU tar, POSIX format (nanosecond mtimes, xattrs), of the whole tree as ./..."""
    flag = {"": "", "gz": "z", "bz2": "j", "xz": "J"}[compress]
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--format=posix", f"-c{flag}f", str(out),
                    "-C", str(src), "."], check=True, capture_output=True)
    return out


@dataclass(frozen=True)
class Entry:
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int | None
    nlink: int
    rdev: int
    target: bytes | None
    xattrs: tuple[tuple[bytes, bytes], ...]
    digest: str | None
    group: str  # the first path (sorted) naming the same inode: hard links share it


def host_view(root: Path) -> dict[str, Entry]:
    paths = [""] + sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    first: dict[int, str] = {}
    out = {}
    for rel in paths:
        p = root / rel if rel else root
        st = os.lstat(p)
        first.setdefault(st.st_ino, rel)
        names = [n for n in os.listxattr(p, follow_symlinks=False) if n.startswith("user.")]
        xattrs = tuple(sorted((n.encode(), os.getxattr(p, n, follow_symlinks=False)) for n in names))
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if S.S_ISREG(st.st_mode) else None
        out[rel] = Entry(st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns,
                         None if S.S_ISDIR(st.st_mode) else st.st_size, st.st_nlink, st.st_rdev,
                         os.readlink(p).encode() if S.S_ISLNK(st.st_mode) else None, xattrs, digest,
                         first[st.st_ino])
    return out


def store_view(store: str, at: str = "/") -> dict[str, Entry]:
    """The same view read from the store's metadata (and its file bytes through the VFS)."""

    async def main() -> dict[str, Entry]:
        from kernel.pathvfs import PathVFS

        s = open_store(store)
        try:
            meta = s.metadata
            fs = PathVFS(s.vfs)
            first: dict[int, str] = {}
            out: dict[str, Entry] = {}

            async def walk(ino: int, rel: str) -> None:
                node = meta.get_inode(ino)
                assert node is not None
                first.setdefault(ino, rel)
                path = at.rstrip("/") + "/" + rel
                xattrs = tuple(sorted((n, meta.get_xattr(ino, n) or b"") for n in meta.list_xattrs(ino)))
                digest = hashlib.sha256(await fs.read_file(path)).hexdigest() if S.S_ISREG(node.mode) else None
                out[rel] = Entry(node.mode, node.uid, node.gid, node.mtime_ns,
                                 None if S.S_ISDIR(node.mode) else node.size, node.nlink, node.rdev,
                                 meta.read_symlink(ino) if S.S_ISLNK(node.mode) else None, xattrs, digest,
                                 first[ino])
                if S.S_ISDIR(node.mode):
                    for d in sorted(meta.list_dir(ino), key=lambda d: d.name):
                        name = d.name.decode()
                        await walk(d.ino, f"{rel}/{name}" if rel else name)

            await walk(meta.resolve_path(at), "")
            await s.vfs.close()
            return out
        finally:
            s.close()

    return trio.run(main)


def assert_same_tree(store: str, src: Path, at: str = "/") -> None:
    want, got = host_view(src), store_view(store, at)
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], rel


def assert_fsck_clean(store: str) -> None:
    result = trio.run(lambda: fsck_store(store))
    assert result.final.errors == 0, result.final.counts
    assert result.before.counts.get("unreferenced_blocks", 0) == 0


@pytest.fixture
def src(tmp_path) -> Path:
    return make_tree(tmp_path / "src")


@pytest.fixture
def store(tmp_path) -> str:
    path = str(tmp_path / "store")
    create_store(path, chunk_size=CHUNK, inline_threshold=INLINE)
    return path


def pax_tar(out: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A tarball tar itself would not write (escapes, odd xattrs), made with tarfile."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def info(name: str, kind: bytes = tarfile.REGTYPE, **kw) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    ti.mtime = kw.pop("mtime", 1_600_000_000)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


# -- offline imports ----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["", "gz", "bz2", "xz"])
def test_every_member_kind_as_the_source(src, store, tmp_path, compress):
    tarball = make_tar(src, tmp_path / f"root.tar{'.' + compress if compress else ''}", compress)
    res = cli("import", store, str(tarball))
    assert res.code == 0, res.err
    files = len({p.lstat().st_ino for p in src.rglob("*") if S.S_ISREG(p.lstat().st_mode)})  # names beyond: links
    assert res.out.startswith(f"imported {files} files, ")
    assert res.out.rstrip().endswith(" s") and res.err == ""
    assert_same_tree(store, src)
    assert_fsck_clean(store)


def test_hard_links_are_one_inode_and_holes_cost_nothing(src, store, tmp_path):
    assert cli("import", store, str(make_tar(src, tmp_path / "r.tar"))).code == 0
    s = open_store(store)
    try:
        meta = s.metadata
        a, b = meta.resolve_path("/usr/lib/big.bin"), meta.resolve_path("/usr/lib/deep/big-again")
        assert a == b and meta.get_inode(a).nlink == 2
        assert len(meta.get_all_chunk_keys(a)) == 4
        zeros = meta.resolve_path("/usr/lib/zeros")
        assert [c.chunk_index for c in meta.get_all_chunk_keys(zeros)] == [2]  # two holes, one block
        small = meta.get_inode(meta.resolve_path("/etc/hostname"))
        assert small.storage_mode == "inline" and small.inline_content == b"sandbox\n"
    finally:
        s.close()


def test_at_makes_the_directory_and_fills_it(src, store, tmp_path):
    tarball = make_tar(src, tmp_path / "r.tar.gz", "gz")
    assert cli("import", store, str(tarball), "--at", "/srv/root").code == 0
    assert_same_tree(store, src, at="/srv/root")
    res = cli("import", f"{store}:/other", str(tarball))  # the same, spelled STORE:/dir
    assert res.code == 0, res.err
    assert_same_tree(store, src, at="/other")
    assert_fsck_clean(store)
    assert_one_line_error(cli("import", f"{store}:/other", str(tarball), "--at", "/x"), "usage", 2)


def test_stdin_and_absolute_member_names(store, tmp_path):
    tarball = pax_tar(tmp_path / "abs.tar", [(info("/etc/motd"), b"hi\n"), (info("./a/./b"), b"b")])
    with open(tarball, "rb") as f:  # a pipe: no size, so read as a stream
        proc = subprocess.run(f"cat | {VFSFUSE} import {store} - --at /r", shell=True, stdin=f,
                              capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("imported 2 files, 2 dirs, 0 links, 4 bytes in ")
    s = open_store(store)
    try:
        assert s.metadata.resolve_path("/r/etc/motd") and s.metadata.resolve_path("/r/a/b")
    finally:
        s.close()


def test_pax_xattrs_binary_and_libarchive(store, tmp_path):
    ti = info("f")
    ti.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff".encode("latin-1")
                      .decode("utf-8", "surrogateescape"),
                      "SCHILY.xattr.user.text": "ünï",
                      "LIBARCHIVE.xattr.user.b%2Fx": "AAEC",
                      "mtime": "1600000000.000000007"}
    assert cli("import", store, str(pax_tar(tmp_path / "x.tar", [(ti, b"data")]))).code == 0
    s = open_store(store)
    try:
        ino = s.metadata.resolve_path("/f")
        assert s.metadata.get_xattr(ino, b"security.capability") == b"\x01\x00\x00\x02\xff"
        assert s.metadata.get_xattr(ino, b"user.text") == "ünï".encode()
        assert s.metadata.get_xattr(ino, b"user.b/x") == b"\x00\x01\x02"
        assert s.metadata.get_inode(ino).mtime_ns == 1_600_000_000_000_000_007
    finally:
        s.close()


def test_import_over_an_existing_tree_replaces_as_tar_does(store, tmp_path):
    first = pax_tar(tmp_path / "1.tar", [(info("d", tarfile.DIRTYPE), None), (info("d/f"), b"old"),
                                          (info("x"), b"file"), (info("e", tarfile.DIRTYPE), None)])
    second = pax_tar(tmp_path / "2.tar", [(info("d", tarfile.DIRTYPE, mode=0o700, uid=5), None),
                                           (info("d/f"), b"new!"), (info("x", tarfile.DIRTYPE), None),
                                           (info("e", tarfile.SYMTYPE, linkname="d"), None)])
    assert cli("import", store, str(first)).code == 0
    assert cli("import", store, str(second)).code == 0
    s = open_store(store)
    try:
        m = s.metadata
        d = m.get_inode(m.resolve_path("/d"))
        assert (S.S_IMODE(d.mode), d.uid) == (0o700, 5)
        assert m.get_inode(m.resolve_path("/d/f")).inline_content == b"new!"
        assert S.S_ISDIR(m.get_inode(m.resolve_path("/x")).mode)
        assert m.read_symlink(m.resolve_path("/e", follow=False)) == b"d"
    finally:
        s.close()
    assert_fsck_clean(store)


def test_exclude_is_anchored_and_covers_what_is_below(src, store, tmp_path):
    tarball = make_tar(src, tmp_path / "r.tar")
    res = cli("import", store, str(tarball), "--exclude", "./usr/lib/deep/er", "--exclude", "etc/s*",
              "--exclude", "*.txt", "--exclude", "fifo")  # fifo: anchored, so usr/fifo stays
    assert res.code == 0, res.err
    want = {rel for rel in host_view(src) if not rel.startswith(("usr/lib/deep/er", "etc/s"))}
    assert set(store_view(store)) == want and "usr/fifo" in want
    with tarfile.open(tarball) as tar:
        left_out = sum(1 for m in tar if m.name.startswith(("./usr/lib/deep/er", "./etc/s")))
    assert f", {left_out} members excluded in " in res.out, res.out
    assert_fsck_clean(store)


# -- refusals: one line, exit 8, and how far it got ----------------------------------------------


def _stopped(res, code: str, member: int, imported: int, where: str = "at") -> None:
    assert_one_line_error(res, code)
    assert f"import stopped {where} member {member}" in res.err, res.err
    if imported:
        assert f"the first {imported} members are in the store" in res.err, res.err
    else:
        assert "nothing was imported" in res.err, res.err


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "a/.."])
def test_escaping_members_are_refused(store, tmp_path, name):
    tarball = pax_tar(tmp_path / "e.tar", [(info("ok"), b"1"), (info(name), b"x")])
    res = cli("import", store, str(tarball), "--at", "/jail")
    _stopped(res, "EPERM", 2, 1)
    assert "'..'" in res.err
    s = open_store(store)
    try:
        assert s.metadata.resolve_path("/jail/ok")
        assert s.metadata.lookup(1, b"evil") is None
    finally:
        s.close()
    assert_fsck_clean(store)


def test_hard_link_escape_and_missing_target(store, tmp_path):
    out = pax_tar(tmp_path / "h.tar", [(info("f"), b"1"), (info("l", tarfile.LNKTYPE, linkname="../f"), None)])
    _stopped(cli("import", store, str(out)), "EPERM", 2, 1)
    out = pax_tar(tmp_path / "m.tar", [(info("l", tarfile.LNKTYPE, linkname="nowhere"), None)])
    _stopped(cli("import", store, str(out)), "ENOENT", 1, 0)


def test_members_never_go_through_a_symlink(store, tmp_path):
    tarball = pax_tar(tmp_path / "s.tar", [(info("up", tarfile.SYMTYPE, linkname="/"), None),
                                            (info("up/etc/passwd"), b"root::0:0\n")])
    res = cli("import", store, str(tarball), "--at", "/jail")
    _stopped(res, "ELOOP", 2, 1)
    s = open_store(store)
    try:
        assert s.metadata.lookup(1, b"etc") is None  # nothing written at the store's own /etc
    finally:
        s.close()
    assert_fsck_clean(store)


def test_bad_tarballs(store, tmp_path, src):
    _missing = cli("import", store, str(tmp_path / "nope.tar"))
    assert_one_line_error(_missing, "ENOENT")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    assert_one_line_error(cli("import", store, str(junk)), "EINVAL")
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    res = cli("import", store, str(empty))
    assert_one_line_error(res, "EINVAL")
    assert "is empty" in res.err
    assert_one_line_error(cli("import", store, str(tmp_path)), "EISDIR")
    assert_one_line_error(cli("import", str(tmp_path / "nostore"), str(junk)), "ENOENT")
    assert store_view(store).keys() == {""}  # nothing of all that reached the store


def test_truncated_tarball_says_how_far(store, tmp_path, src):
    whole = make_tar(src, tmp_path / "r.tar")
    cut = tmp_path / "cut.tar"
    data = whole.read_bytes()
    with tarfile.open(whole) as tar:
        big = next(m for m in tar.getmembers() if m.isreg() and m.size > CHUNK)
        before = sum(1 for m in tar.getmembers() if m.offset < big.offset)
    cut.write_bytes(data[:big.offset_data + 1000])  # in the middle of its data
    res = cli("import", store, str(cut))
    _stopped(res, "EIO", before + 1, before)
    assert "truncated" in res.err
    assert_fsck_clean(store)
    gz = tmp_path / "cut.tar.gz"
    gz.write_bytes(make_tar(src, tmp_path / "r.tgz", "gz").read_bytes()[:3000])
    res = cli("import", store, str(gz), "--at", "/gz")
    assert_one_line_error(res, "EIO")
    assert "import stopped" in res.err
    assert_fsck_clean(store)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs zstd")
def test_zstd_says_what_to_do(store, tmp_path, src):
    tarball = make_tar(src, tmp_path / "r.tar")
    subprocess.run(["zstd", "-q", str(tarball), "-o", str(tmp_path / "r.tar.zst")], check=True)
    res = cli("import", store, str(tmp_path / "r.tar.zst"))
    assert_one_line_error(res, "ENOTSUP")
    assert "zstd -dc" in res.err


def test_locked_store_is_refused_untouched(store, tmp_path, src):
    tarball = make_tar(src, tmp_path / "r.tar")
    with exclusive_store(store):  # fsck, load or another import holds it
        res = cli("import", store, str(tarball))
    assert_one_line_error(res, "EBUSY")
    assert store_view(store).keys() == {""}


def test_progress_on_a_terminal_only(src, store, tmp_path):
    """A bar over the tarball's bytes on a tty (a counter for a pipe); nothing without one."""
    import pexpect

    tarball = make_tar(src, tmp_path / "r.tar")
    child = pexpect.spawn(VFSFUSE, ["import", store, str(tarball), "--at", "/a"], timeout=60)
    child.expect(pexpect.EOF)
    screen = child.before.decode()
    assert "importing" in screen and "imported " in screen, screen
    child = pexpect.spawn("sh", ["-c", f"cat {tarball} | {VFSFUSE} import {store} - --at /b"], timeout=60)
    child.expect(pexpect.EOF)
    screen = child.before.decode()
    assert "importing: " in screen and " members, " in screen and "imported " in screen, screen
    res = cli("import", store, str(tarball), "--at", "/c")  # no terminal: the summary alone
    assert res.err == "" and res.out.count("\n") == 1


def test_interrupt_keeps_what_was_imported(store, tmp_path, src):
    """^C in the middle (the import waits for a pipe): exit 130, one line, the store sound."""
    import signal
    import time

    (src / "usr/random").write_bytes(os.urandom(2 << 20))
    data = make_tar(src, tmp_path / "r.tar").read_bytes()
    p = subprocess.Popen([VFSFUSE, "import", store, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert len(data) // 2 > 4 * 65536  # more than a pipe holds: written only once the import reads
    p.stdin.write(data[:len(data) // 2])
    p.stdin.flush()
    time.sleep(0.5)  # it reads the rest of that half, then waits for more
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and out == b"", err
    assert err.decode().startswith("vfsfuse: interrupted at member ") and err.count(b"\n") == 1, err
    assert b"members are in the store" in err
    assert_fsck_clean(store)


# -- mkfs --from --------------------------------------------------------------------------------


def test_mkfs_from(src, tmp_path):
    tarball = make_tar(src, tmp_path / "r.tar.xz", "xz")
    new = str(tmp_path / "new")
    res = cli("mkfs", new, "--chunk-size", "64K", "--from", str(tarball))
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith(f"created store {new} ") and lines[1].startswith("imported ")
    assert_same_tree(new, src)
    assert_fsck_clean(new)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tarball at all" * 100)
    assert_one_line_error(cli("mkfs", str(tmp_path / "new2"), "--from", str(bad)), "EINVAL")
    assert not os.path.exists(tmp_path / "new2")  # refused before the store was made


# -- through real mounts ---------------------------------------------------------------------------


def _stat_lines(root: Path) -> list[str]:
    """Host tools over a tree: stat of every entry, readlink of links, getfattr of user.*."""
    paths = ["."] + sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    out = subprocess.run(["stat", "-c", "%n %A %u %g %h %t:%T %y %s", *paths], cwd=root,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    dirs = {p for p in paths if (root / p).is_dir() and not (root / p).is_symlink()}
    out = [" ".join(w for i, w in enumerate(line.split()) if not (i == 8 and line.split()[0] in dirs))
           for line in out]  # directory sizes differ between filesystems
    links = [p for p in paths if (root / p).is_symlink()]
    out += subprocess.run(["readlink", *links], cwd=root, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    out += subprocess.run(["getfattr", "-h", "-d", "-m", "^user\\.", *paths], cwd=root,
                          capture_output=True, text=True).stdout.splitlines()
    return out


@pytest.mark.mount
def test_offline_import_seen_through_a_mount(src, tmp_path, new_mount):  # noqa: F811
    tarball = make_tar(src, tmp_path / "r.tar.gz", "gz")
    m = new_mount(start=False)
    assert cli("import", m.store, str(tarball), "--at", "/imported").code == 0
    m.start()
    seen = Path(m.path) / "imported"
    assert _stat_lines(seen) == _stat_lines(src)
    assert (seen / "usr/lib/big.bin").read_bytes() == BIG


@pytest.mark.mount
def test_import_into_a_running_mount(src, tmp_path, new_mount, runtime_env):  # noqa: F811
    tarball = make_tar(src, tmp_path / "r.tar")
    m = new_mount()
    target = Path(m.path) / "opt"
    assert not target.exists()  # the host now caches "no such name"
    env = dict(runtime_env)
    p = subprocess.run([VFSFUSE, "import", m.path,
                        str(tarball), "--at", "/opt"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("imported ")
    assert _stat_lines(target) == _stat_lines(src)  # at once: the host's caches were told
    # a refused member stops it, says how far, and the daemon lives on
    bad = pax_tar(tmp_path / "bad.tar", [(info("a"), b"1"), (info("b"), b"22"), (info("../c"), b"3")])
    p = subprocess.run([VFSFUSE, "import",
                        str(target), str(bad)], capture_output=True, text=True, env=env)
    assert p.returncode == 8 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "import stopped at member 3 (../c)" in p.stderr and "the first 2 members" in p.stderr, p.stderr
    assert (target / "b").read_bytes() == b"22"
    # refused by the daemon (only it sees the tree), mid-stream: after its first batch of
    # MOUNT_IMPORT_BATCH members it answers while the client is still sending; it is not lost
    many = [(info("up", tarfile.SYMTYPE, linkname="/"), None), (info("up/x"), b"x")]
    many += [(info(f"n{i}"), b"") for i in range(4 * MOUNT_IMPORT_BATCH)]
    p = subprocess.run([VFSFUSE, "import", str(target), str(pax_tar(tmp_path / "many.tar", many))],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 8 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "ELOOP" in p.stderr and "import stopped at member 2 (up/x)" in p.stderr, p.stderr
    assert "the first 1 members are in the store" in p.stderr, p.stderr
    assert not (target / "n0").exists() and os.path.islink(target / "up")
    # the same store, named by its store directory, goes through the daemon too
    p = subprocess.run([VFSFUSE, "import",
                        f"{m.store}:/second", str(tarball)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert _stat_lines(Path(m.path) / "second") == _stat_lines(src)
    assert m.umount().returncode == 0
    assert_fsck_clean(m.store)


@pytest.mark.mount
def test_a_root_filesystem_into_a_mount_at_its_root(tmp_path, new_mount, runtime_env):  # noqa: F811
    """A Debian-style root (bin -> usr/bin) meets the kernel's own /bin: refused, then excluded;
    a read-only mount refuses imports."""
    root = pax_tar(tmp_path / "root.tar", [(info(".", tarfile.DIRTYPE), None),
                                           (info("bin", tarfile.SYMTYPE, linkname="usr/bin"), None),
                                           (info("usr/bin/tool", mode=0o755), b"#!/bin/sh\necho tool\n")])
    m = new_mount()
    env = dict(runtime_env)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([VFSFUSE, "import", m.path, str(root), *args], capture_output=True,
                              text=True, env=env)

    p = run()
    assert p.returncode == 8 and "EEXIST" in p.stderr and "member 2 (bin)" in p.stderr, p.stderr
    assert "a non-empty directory of that name is in the way" in p.stderr
    p = run("--exclude", "./bin")
    assert p.returncode == 0, p.stderr
    assert ", 1 members excluded in " in p.stdout
    assert os.path.isdir(os.path.join(m.path, "bin")) and not os.path.islink(os.path.join(m.path, "bin"))
    assert Path(m.path, "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho tool\n"
    ro = new_mount("--read-only")
    p = subprocess.run([VFSFUSE, "import", ro.path, str(root)], capture_output=True, text=True, env=env)
    assert p.returncode == 8 and p.stderr.startswith("vfsfuse: EROFS: "), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
