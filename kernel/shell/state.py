"""The shell's mutable state: variables (with attributes and local scopes), positional
parameters, options, functions, aliases and traps.

Why one object: a subshell (``( )``, a pipeline stage, ``$( )``) is a kernel process made
with ``ctx.fork``, and fork copies memory; :meth:`ShellState.fork_copy` is that copy, so a
child can change anything without the parent seeing it.  Variables are plain objects
in dicts (one dict per function scope, searched innermost first: bash's dynamic
scoping) so that the hot path of a loop (``x=$((x+i))``) is two dict lookups.

Dynamic variables (``$RANDOM``, ``$SECONDS``, ``$LINENO``, ``$BASHPID``…) are not
stored: :meth:`ShellState.special` computes them when read.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Var", "ShellState", "VarError", "OPTION_LETTERS", "LONG_OPTIONS", "SHOPT_NAMES"]

#: ``set -X`` letters and the long option each stands for.
OPTION_LETTERS = {
    "e": "errexit", "u": "nounset", "x": "xtrace", "f": "noglob", "C": "noclobber",
    "a": "allexport", "n": "noexec", "v": "verbose", "h": "hashall", "m": "monitor",
    "b": "notify", "B": "braceexpand", "H": "histexpand", "P": "physical", "T": "functrace",
    "E": "errtrace", "k": "keyword", "t": "onecmd",
}
LONG_OPTIONS = set(OPTION_LETTERS.values()) | {"pipefail", "posix", "vi", "emacs", "ignoreeof",
                                               "interactive-comments", "history", "nolog"}
SHOPT_NAMES = {
    "nullglob", "failglob", "globstar", "dotglob", "extglob", "nocaseglob", "nocasematch",
    "expand_aliases", "lastpipe", "inherit_errexit", "patsub_replacement", "xpg_echo",
    "sourcepath", "globasciiranges", "checkwinsize", "cmdhist", "histappend", "promptvars",
    "extquote", "progcomp", "interactive_comments", "hostcomplete", "complete_fullquote",
    "force_fignore", "shift_verbose", "localvar_inherit", "assoc_expand_once",
}
_SHOPT_DEFAULT_ON = {"extquote", "sourcepath", "globasciiranges", "checkwinsize", "cmdhist",
                     "promptvars", "progcomp", "interactive_comments", "hostcomplete",
                     "complete_fullquote", "force_fignore", "patsub_replacement"}


class VarError(Exception):
    """An assignment the shell refuses (``x: readonly variable``); the message is bash's."""


@dataclass(slots=True)
class Var:
    """One variable.  ``value`` is a str for scalars, ``dict[int, str]`` for indexed
    arrays (sparse, as bash's) and ``dict[str, str]`` for associative ones; None for a
    declared but unset variable (``declare x``, ``local x``)."""

    value: Any = None
    exported: bool = False
    readonly: bool = False
    integer: bool = False
    kind: str = "s"  # "s" scalar, "a" indexed array, "A" associative array
    lower: bool = False
    upper: bool = False
    nameref: bool = False
    #: ``declare -a x`` / ``local -A m`` with no value yet: an array, but unset (``set -u``,
    #: ``declare -p``) until something is assigned
    fresh: bool = False

    def copy(self) -> "Var":
        v = self.value
        if isinstance(v, dict):
            v = dict(v)
        return Var(v, self.exported, self.readonly, self.integer, self.kind, self.lower, self.upper,
                   self.nameref, self.fresh)

    def scalar(self) -> str | None:
        """What ``$name`` gives: element 0 of an array (key "0" of an associative one)."""
        v = self.value
        if v is None or type(v) is str:
            return v
        return v.get(0) if self.kind == "a" else v.get("0")


@dataclass
class ShellState:
    """Everything a fork copies (see the module docstring)."""

    scopes: list[dict[str, Var]] = field(default_factory=lambda: [{}])
    positional: list[str] = field(default_factory=list)
    arg0: str = "sh"
    options: dict[str, bool] = field(default_factory=dict)
    shopts: dict[str, bool] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)  # name -> ast.FunctionDef
    readonly_functions: set[str] = field(default_factory=set)  # ``readonly -f``
    dash_c: bool = False  # started with ``-c`` (``$-`` shows ``c``)
    local_options: dict[int, dict[str, Any]] = field(default_factory=dict)  # ``local -`` per call depth
    aliases: dict[str, str] = field(default_factory=dict)
    traps: dict[str, str] = field(default_factory=dict)   # "EXIT", "INT", "ERR"... -> command
    hashed: dict[str, str] = field(default_factory=dict)  # name -> path (``hash``)
    funcnames: list[str] = field(default_factory=list)    # FUNCNAME, innermost first
    sources: list[str] = field(default_factory=list)      # BASH_SOURCE
    call_lines: list[int] = field(default_factory=list)   # BASH_LINENO
    last_status: int = 0
    last_bg: int | None = None
    shell_pid: int = 0
    bash_pid: int = 0
    ppid: int = 0
    lineno: int = 0
    start_time: float = field(default_factory=time.monotonic)
    seconds_base: int = 0
    posix: bool = False
    interactive: bool = False
    dirstack: list[str] = field(default_factory=list)
    pipestatus: list[int] = field(default_factory=lambda: [0])
    subshell: int = 0
    rng: random.Random = field(default_factory=random.Random)
    last_arg: str = ""  # ``$_``: the last argument of the previous simple command
    #: In a subshell that set no trap yet: the parent's traps, which ``trap -p`` shows (bash)
    shown_traps: dict[str, str] | None = None

    def __post_init__(self) -> None:
        for name in SHOPT_NAMES:
            self.shopts.setdefault(name, name in _SHOPT_DEFAULT_ON)
        for name in LONG_OPTIONS:
            self.options.setdefault(name, name in ("braceexpand", "hashall", "interactive-comments"))

    # ------------------------------------------------------------------ fork
    def fork_copy(self) -> "ShellState":
        """The state of a subshell: an independent deep copy of what a child may change."""
        new = ShellState.__new__(ShellState)
        new.__dict__.update(self.__dict__)
        new.scopes = [{k: v.copy() for k, v in s.items()} for s in self.scopes]
        new.positional = list(self.positional)
        new.options = dict(self.options)
        new.shopts = dict(self.shopts)
        new.functions = dict(self.functions)
        new.readonly_functions = set(self.readonly_functions)
        new.local_options = dict(self.local_options)
        new.aliases = dict(self.aliases)
        new.traps = dict(self.traps)
        new.hashed = dict(self.hashed)
        new.funcnames = list(self.funcnames)
        new.sources = list(self.sources)
        new.call_lines = list(self.call_lines)
        new.dirstack = list(self.dirstack)
        new.pipestatus = list(self.pipestatus)
        new.subshell = self.subshell + 1
        new.rng = random.Random(self.rng.random())
        return new

    # ------------------------------------------------------------------ lookup
    def lookup(self, name: str) -> Var | None:
        """The visible variable called *name* (innermost scope first), or None."""
        scopes = self.scopes
        if len(scopes) == 1:
            return scopes[0].get(name)
        for s in reversed(scopes):
            v = s.get(name)
            if v is not None:
                return v
        return None

    def resolve_ref(self, name: str) -> str:
        """Follow ``declare -n`` references (a bounded chain)."""
        for _ in range(8):
            v = self.lookup(name)
            if v is None or not v.nameref or not isinstance(v.value, str) or not v.value:
                return name
            name = v.value.split("[", 1)[0]
        return name

    def get(self, name: str) -> str | None:
        """The scalar value of *name* as ``$name`` reads it (specials included)."""
        v = self.lookup(name)
        if v is not None:
            if v.nameref:
                return self.get(self.resolve_ref(name)) if self.resolve_ref(name) != name else v.value
            return v.scalar()
        return self.special(name)

    def special(self, name: str) -> str | None:
        """The dynamic variables bash computes when read."""
        if name == "LINENO":
            return str(self.lineno)
        if name == "_":
            return self.last_arg
        if name == "RANDOM":
            return str(self.rng.randrange(32768))
        if name == "SECONDS":
            return str(self.seconds_base + int(time.monotonic() - self.start_time))
        if name == "BASHPID":
            return str(self.bash_pid)
        if name == "EPOCHSECONDS":
            return str(int(time.time()))
        if name == "EPOCHREALTIME":
            return f"{time.time():.6f}"
        if name == "FUNCNAME":
            return self.funcnames[0] if self.funcnames else None
        if name == "PIPESTATUS":
            return str(self.pipestatus[0]) if self.pipestatus else None
        if name == "BASH_SUBSHELL":
            return str(self.subshell)
        if name == "SHLVL":
            return None
        return None

    def special_array(self, name: str) -> dict[int, str] | None:
        if name == "FUNCNAME":
            return dict(enumerate(self.funcnames)) if self.funcnames else None
        if name == "PIPESTATUS":
            return {i: str(s) for i, s in enumerate(self.pipestatus)}
        if name == "BASH_SOURCE":
            return dict(enumerate(self.sources)) if self.sources else None
        if name == "BASH_LINENO":
            return {i: str(n) for i, n in enumerate(self.call_lines)} if self.call_lines else None
        if name == "DIRSTACK":
            return dict(enumerate(self.dirstack))
        return None

    def is_set(self, name: str) -> bool:
        v = self.lookup(name)
        if v is not None:
            return v.scalar() is not None
        return self.special(name) is not None

    # ------------------------------------------------------------------ assignment
    def _target(self, name: str, local: bool = False) -> Var:
        if local and len(self.scopes) > 1:
            s = self.scopes[-1]
            v = s.get(name)
            if v is None:
                v = s[name] = Var()
            return v
        v = self.lookup(name)
        if v is None:
            v = self.scopes[0][name] = Var()
        return v

    def set(self, name: str, value: str, *, local: bool = False, export: bool | None = None) -> Var:
        """``name=value`` (element 0 for an array); VarError on a readonly variable."""
        v = self.lookup(name) if not local else None
        if v is None:
            v = self._target(name, local)
        if v.nameref and not local:
            target = self.resolve_ref(name)
            if target != name:
                return self.set(target, value)
        if v.readonly:
            raise VarError(f"{name}: readonly variable")
        if v.lower:
            value = value.lower()
        elif v.upper:
            value = value.upper()
        v.fresh = False
        if v.kind == "s":
            v.value = value
        elif v.kind == "a":
            v.value[0] = value
        else:
            v.value["0"] = value
        if export:
            v.exported = True
        elif self.options.get("allexport"):
            v.exported = True
        return v

    def set_index(self, name: str, key: int | str, value: str) -> None:
        """``name[key]=value``: makes *name* an indexed array unless it is associative."""
        v = self.lookup(name)
        if v is None:
            v = self._target(name)
        if v.readonly:
            raise VarError(f"{name}: readonly variable")
        if v.kind == "s":
            old = v.value
            v.kind = "a"
            v.value = {} if old is None else {0: old}
        if v.kind == "a":
            if not isinstance(key, int):
                raise VarError(f"{name}: bad array subscript")
            if key < 0:
                n = (max(v.value) + 1) if v.value else 0
                if key + n < 0:
                    raise VarError(f"{name}[{key}]: bad array subscript")
                key += n
        v.fresh = False
        v.value[key] = value

    def set_array(self, name: str, items: dict, assoc: bool = False, *, local: bool = False) -> Var:
        v = self.lookup(name) if not local else None
        if v is None:
            v = self._target(name, local)
        if v.readonly:
            raise VarError(f"{name}: readonly variable")
        if v.kind == "A" or assoc:
            v.kind = "A"
        else:
            v.kind = "a"
        v.value = items
        v.fresh = False
        return v

    def unset(self, name: str) -> None:
        """``unset name``: removes the innermost visible variable; VarError if readonly."""
        for s in reversed(self.scopes):
            v = s.get(name)
            if v is not None:
                if v.readonly:
                    raise VarError(f"{name}: cannot unset: readonly variable")
                if s is self.scopes[0] or s is not self.scopes[-1]:
                    del s[name]
                else:
                    # a local unset in its own scope stays local (and unset), as in bash
                    s[name] = Var()
                return

    def env(self) -> dict[str, str]:
        """The environment of a program the shell runs: every exported, set scalar."""
        out: dict[str, str] = {}
        for s in self.scopes:
            for k, v in s.items():
                if v.exported:
                    val = v.scalar()
                    if val is not None and v.kind == "s":
                        out[k] = val
                    elif val is None:
                        out.pop(k, None)
                elif k in out:
                    del out[k]
        return out

    def option_flags(self) -> str:
        """``$-``: the single-letter options that are on, in bash's order."""
        on = {c for c, n in OPTION_LETTERS.items() if self.options.get(n)}
        if self.interactive:
            on.add("i")
        return "".join(c for c in "abefhikmnptuvxBCEHPT" if c in on) + ("c" if self.dash_c else "")

    def aliases_get(self, name: str) -> str | None:
        if not self.shopts.get("expand_aliases") and not self.interactive and not self.posix:
            return None  # (POSIX shells expand aliases in scripts too, as dash does)
        return self.aliases.get(name)
