# Shared by scripts/test and scripts/run: make this checkout runnable on a fresh
# Debian/Ubuntu machine.  Idempotent and quiet; prints what to do when it cannot.
# Sourced, not executed: sets $VENV and $PY.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

_say() { printf 'vfsfuse setup: %s\n' "$*" >&2; }
_die() { _say "$*"; exit 2; }

_need_apt=()
command -v fusermount3 >/dev/null 2>&1 || _need_apt+=(fuse3)
pkg-config --exists fuse3 2>/dev/null || _need_apt+=(libfuse3-dev)
command -v pkg-config >/dev/null 2>&1 || _need_apt+=(pkg-config)
command -v sqlite3 >/dev/null 2>&1 || _need_apt+=(sqlite3)
command -v getfattr >/dev/null 2>&1 || _need_apt+=(attr)
command -v git >/dev/null 2>&1 || _need_apt+=(git)
command -v gcc >/dev/null 2>&1 || _need_apt+=(gcc)
command -v xxhsum >/dev/null 2>&1 || _need_apt+=(xxhash)   # the README's way to check a block
# the distribution's python3 is the one the venv is made from (below), when it has venv
[ ! -x /usr/bin/python3 ] || /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || _need_apt+=(python3-venv)
command -v dash >/dev/null 2>&1 || _need_apt+=(dash)       # the shell corpus runs POSIX cases in dash too
command -v jq >/dev/null 2>&1 || _need_apt+=(jq)           # differential jq cases
command -v zip >/dev/null 2>&1 || _need_apt+=(zip)         # differential archive cases: Info-ZIP zip/unzip,
command -v unzip >/dev/null 2>&1 || _need_apt+=(unzip)
command -v xz >/dev/null 2>&1 || _need_apt+=(xz-utils)     # xz and bzip2 beside GNU tar and gzip
command -v bzip2 >/dev/null 2>&1 || _need_apt+=(bzip2)
command -v gawk >/dev/null 2>&1 || _need_apt+=(gawk)       # the awk corpus runs against gawk
command -v bwrap >/dev/null 2>&1 || _need_apt+=(bubblewrap)  # the jail real programs run in (issue 16)
[ -x /bin/busybox ] || _need_apt+=(busybox-static)          # a static ELF the jail tests copy into the mount
command -v mmdebstrap >/dev/null 2>&1 || _need_apt+=(mmdebstrap)  # scripts/make-rootfs: the jail tests' Debian root
command -v make >/dev/null 2>&1 || _need_apt+=(make)              # tests/jail/cases/rootfs.txt runs make on the host too
if ((${#_need_apt[@]})); then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
            _die "missing system packages: ${_need_apt[*]}. Run as root or install them: sudo apt-get install ${_need_apt[*]}"
        fi
    fi
    command -v apt-get >/dev/null 2>&1 || _die "missing ${_need_apt[*]} and no apt-get here; install them with your package manager"
    _say "installing system packages: ${_need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    $SUDO apt-get install -y -qq "${_need_apt[@]}" >/dev/null 2>&1 \
        || _die "apt-get install ${_need_apt[*]} failed; run it by hand to see why"
fi

# The distribution's python3 first: Debian builds it with PGO and LTO, and the whole stack
# (FUSE handlers, the shell, every program) runs 20-45% faster on it than on a plain
# source build such as pyenv's.  Any python3 >= 3.11 with venv does.
_base_python() {
    local p
    for p in /usr/bin/python3 "$(command -v python3 || true)"; do
        [ -n "$p" ] && [ -x "$p" ] || continue
        "$p" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo "$p"; return; }
    done
    _die "no python3 >= 3.11 with venv found (install python3 and python3-venv)"
}
if [ ! -x "$PY" ]; then
    _base="$(_base_python)"
    _say "creating virtualenv in .venv ($_base)"
    "$_base" -m venv "$VENV" || _die "$_base -m venv failed (install python3-venv)"
fi
_stamp="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
if [ ! -f "$_stamp" ]; then
    _say "installing Python packages into .venv (first run only)"
    "$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$PY" -m pip install -q -e "$ROOT[test]" >/dev/null 2>"$VENV/pip-error.log" \
        || { cat "$VENV/pip-error.log" >&2; _die "pip install failed (log above)"; }
    rm -f "$VENV"/.installed-*
    touch "$_stamp"
fi
