"""Build a small Debian root filesystem tarball for real programs in the jail (issue 16 §3).

``scripts/make-rootfs [--out FILE] [--include PKGS] [--suite SUITE] [--rebuild]``: mmdebstrap (or,
where it is missing, debootstrap) installs the essential packages plus PKGS from this machine's
own apt sources into a tarball, cached as ``~/.cache/vfsfuse/rootfs-<hash>.tar`` (the hash covers
the suite, the package set and this recipe), so the second run takes no time.  Prints a few
progress lines on stderr and the tarball's path on stdout.  Needs root (or mmdebstrap's unshare
mode) and the network to the mirror; says so in one line when it cannot.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACKAGES = ("python3", "git", "gcc", "libc6-dev", "make", "busybox")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bumped when the recipe below changes, so cached tarballs of an older recipe are not reused.
RECIPE = "2"
# Files no program needs: documentation, manuals, translations (a smaller tarball, a faster import).
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
            "/usr/share/lintian/*", "/usr/share/doc-base/*")


class Refusal(Exception):
    """What stops the build, as the one line the user sees."""


@dataclass(frozen=True)
class Source:
    """One apt source line: ``deb [signed-by=KEY] URI SUITE COMPONENTS``."""

    uri: str
    suite: str
    components: tuple[str, ...]
    signed_by: str | None = None

    def line(self) -> str:
        opts = f"[signed-by={self.signed_by}] " if self.signed_by else ""
        return f"deb {opts}{self.uri} {self.suite} {' '.join(self.components)}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vfsfuse"


def cache_key(suite: str, packages: list[str]) -> str:
    text = "\n".join([RECIPE, suite, *sorted(set(packages))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _deb822(text: str) -> list[dict[str, str]]:
    """The stanzas of a ``.sources`` file (comments dropped, continuation lines joined)."""
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = ""
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, ""
        elif raw[0] in " \t" and key:
            cur[key] += "\n" + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            cur[key] = value.strip()
    return stanzas


def _one_line(line: str) -> list[Source]:
    words = line.split("#", 1)[0].split()
    if len(words) < 3 or words[0] != "deb":
        return []
    signed = None
    rest = words[1:]
    if rest[0].startswith("["):
        opts: list[str] = []
        while rest:
            w = rest.pop(0)
            opts.append(w.strip("[]"))
            if w.endswith("]"):
                break
        for o in opts:
            if o.startswith("signed-by="):
                signed = o.split("=", 1)[1]
    if len(rest) < 2:
        return []
    return [Source(rest[0], rest[1], tuple(rest[2:]), signed)]


def host_sources(etc: str = "/etc/apt") -> list[Source]:
    """The ``deb`` entries of this machine's apt configuration (sources.list and sources.list.d)."""
    out: list[Source] = []
    files = [f"{etc}/sources.list", *sorted(glob.glob(f"{etc}/sources.list.d/*.list"))]
    for name in files:
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            out += _one_line(line)
    for name in sorted(glob.glob(f"{etc}/sources.list.d/*.sources")):
        try:
            stanzas = _deb822(Path(name).read_text())
        except OSError:
            continue
        for st in stanzas:
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes").lower() == "no":
                continue
            signed = st.get("signed-by")
            if signed and "\n" in signed:  # an inline key: mmdebstrap's keyring search finds it anyway
                signed = None
            for uri in st.get("uris", "").split():
                for suite in st.get("suites", "").split():
                    out.append(Source(uri, suite, tuple(st.get("components", "main").split()), signed))
    return out


def host_codename() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip('"') or None
    except OSError:
        pass
    return None


def sources_for(suite: str, sources: list[Source], codename: str | None) -> list[Source]:
    """The host's entries of *suite*'s family (``bookworm``, ``bookworm-updates``,
    ``bookworm-security``); for another suite, the host's Debian entries renamed to it; else
    deb.debian.org."""
    def family(s: str, name: str) -> bool:
        return s == name or s.startswith(name + "-") or s.startswith(name + "/")

    mine = [s for s in sources if family(s.suite, suite)]
    if not mine and codename and codename != suite:
        mine = [Source(s.uri, suite + s.suite[len(codename):], s.components, s.signed_by)
                for s in sources if family(s.suite, codename)]
    if not any(s.suite == suite for s in mine):
        mine.insert(0, Source(DEFAULT_MIRROR, suite, ("main",)))
    return mine


def build(suite: str, packages: list[str], sources: list[Source], dest: Path) -> None:
    """Run mmdebstrap (debootstrap when it is missing) into the tarball *dest*."""
    if shutil.which("mmdebstrap"):
        argv = ["mmdebstrap", "--variant=essential", f"--include={','.join(packages)}",
                "--format=tar", "--aptopt=Acquire::Languages \"none\""]
        argv += [f"--dpkgopt=path-exclude={p}" for p in EXCLUDES]
        if os.geteuid() != 0:
            argv.append("--mode=unshare")
        argv += [suite, str(dest), *(s.line() for s in sources)]
        _run_logged(argv)
    elif shutil.which("debootstrap"):
        if os.geteuid() != 0:
            raise Refusal("debootstrap needs root (or install mmdebstrap: apt-get install mmdebstrap)")
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            root = Path(tmp) / "root"
            _run_logged(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                         suite, str(root), sources[0].uri])
            _say("packing the tarball")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(dest), "."], check=True)
    else:
        raise Refusal("needs mmdebstrap (or debootstrap): apt-get install mmdebstrap")


def _run_logged(argv: list[str]) -> None:
    """Run the bootstrapper, turning its ``I:`` lines into progress lines; on failure, show
    its last lines of output and say what failed in one line."""
    started = time.monotonic()
    tail: list[str] = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as p:
        assert p.stdout is not None
        for line in p.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-15:]
            if line.startswith("I: "):
                _say(f"[{time.monotonic() - started:5.0f}s] {line[3:]}")
    if p.returncode != 0:
        print("\n".join(tail), file=sys.stderr)
        network = any(w in "\n".join(tail) for w in ("Could not resolve", "Temporary failure", "Failed to fetch",
                                                     "Unable to connect", "Network is unreachable"))
        why = "the mirror is unreachable (needs the network)" if network else "see its output above"
        raise Refusal(f"{os.path.basename(argv[0])} failed with status {p.returncode}: {why}")


def _say(msg: str) -> None:
    print(f"make-rootfs: {msg}", file=sys.stderr, flush=True)


def make_rootfs(suite: str, packages: list[str], *, rebuild: bool = False) -> Path:
    """The cached tarball for *suite* and *packages*, built first if it is not there."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"rootfs-{cache_key(suite, packages)}.tar"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (parallel test workers wait here)
        if target.exists() and not rebuild:
            return target
        sources = sources_for(suite, host_sources(), host_codename())
        _say(f"building {suite} with {' '.join(packages)} from {', '.join(s.uri + ' ' + s.suite for s in sources)}")
        started = time.monotonic()
        tmp = target.with_name(target.name + f".part{os.getpid()}")
        try:
            build(suite, packages, sources, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _say(f"built {target} ({target.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make-rootfs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="copy the tarball here too (else only its cached path is printed)")
    ap.add_argument("--include", default=",".join(DEFAULT_PACKAGES),
                    help="packages beside the essential set, comma or space separated "
                         "(default: %(default)s)")
    ap.add_argument("--suite", default="bookworm", help="Debian suite (default: %(default)s)")
    ap.add_argument("--rebuild", action="store_true", help="build again even when cached")
    args = ap.parse_args(argv)
    packages = [p for p in args.include.replace(",", " ").split() if p]
    try:
        path = make_rootfs(args.suite, packages, rebuild=args.rebuild)
        if args.out:
            out = Path(args.out)
            tmp = out.with_name(out.name + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, out)
            path = out
    except Refusal as err:
        _say(str(err))
        return 1
    except OSError as err:
        _say(f"{err.filename or ''}: {err.strerror}" if err.strerror else str(err))
        return 1
    except KeyboardInterrupt:
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
