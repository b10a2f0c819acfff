"""Word expansion, in bash's order: brace, tilde, parameter / arithmetic / command
substitution (left to right), field splitting by IFS, pathname expansion, quote removal.

Why chunks: after the substitutions a word is a list of ``(text, quoted)`` chunks.
Only unquoted chunks that came from an expansion are split, only unquoted chunks glob,
and ``"$@"`` must break a quoted word into several fields; keeping the quoting per
chunk until the end is the simplest way to honour all three.  Nothing is re-parsed:
the parser already made the parts.

The :class:`Expander` is a mixin of the interpreter (``interp.Shell``): it needs the
state, the syscall context (globbing, ``$( )``) and the interpreter (command
substitution runs commands), and one object keeps the hot path free of indirection.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from kernel.shell import arith, braces, pattern
from kernel.shell.ast import (
    DQ,
    SQ,
    ArithSub,
    BraceExp,
    BraceRange,
    CmdSub,
    DollarSQ,
    Escaped,
    ExtGlob,
    Lit,
    Param,
    ProcSub,
    Tilde,
    Word,
)
from kernel.shell.state import ShellState, VarError

if TYPE_CHECKING:
    pass

__all__ = ["ExpansionError", "FatalExpansion", "Expander", "ArithAdapter", "shell_quote"]

_GLOB_CHARS = frozenset("*?[")
_SPECIAL_FIRST = frozenset("?$!#@*-0123456789")
_SPLIT_OR_GLOB = re.compile(r"[ \t\n*?\[(]")
_SPECIAL_ONE = frozenset("?$!#@*-0123456789")


class ExpansionError(Exception):
    """An expansion error that fails the command (status 1) but not the shell."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class FatalExpansion(ExpansionError):
    """An error that ends a non-interactive shell (``${x:?}``, ``set -u``), as bash does.

    ``line_only``: bash (not in POSIX mode) abandons just the current top-level command and
    reads on (``$((1/0))``, a bad substitution, a negative substring length)."""

    def __init__(self, message: str, status: int = 1, line_only: bool = False) -> None:
        super().__init__(message, status)
        self.line_only = line_only


class ArithAdapter:
    """:class:`kernel.shell.arith.ArithVars` over the shell's state."""

    __slots__ = ("st", "sh")

    def __init__(self, sh: Any) -> None:
        self.sh = sh
        self.st: ShellState = sh.st

    def get(self, name: str) -> str | None:
        v = self.st.get(name)
        if v is None and self.st.options.get("nounset") and not self.st.is_set(name):
            raise FatalExpansion(f"{name}: unbound variable", 127)
        return v

    def set(self, name: str, value: str) -> None:
        try:
            self.st.set(name, value)
        except VarError as e:
            raise arith.ArithError(str(e)) from None

    def get_index(self, name: str, index: str | int) -> str | None:
        v = self.st.lookup(name)
        if v is None:
            arr = self.st.special_array(name)
            return None if arr is None or not isinstance(index, int) else arr.get(index)
        if v.kind == "s":
            return v.value if index in (0, "0") else None
        if v.kind == "a" and isinstance(index, int) and index < 0:
            if not v.value:
                return None
            index += max(v.value) + 1
        return v.value.get(index)

    def set_index(self, name: str, index: str | int, value: str) -> None:
        try:
            self.st.set_index(name, index, value)
        except VarError as e:
            raise arith.ArithError(str(e)) from None

    def is_assoc(self, name: str) -> bool:
        v = self.st.lookup(name)
        return v is not None and v.kind == "A"


def shell_quote(s: str) -> str:
    """``${x@Q}`` / ``printf %q``-like quoting (bash's single-quote style)."""
    if s == "":
        return "''"
    if any(c in s for c in "\n\t\r\x1b\a") or any(ord(c) < 32 for c in s):
        out = []
        for c in s:
            if c == "\n":
                out.append("\\n")
            elif c == "\t":
                out.append("\\t")
            elif c == "\r":
                out.append("\\r")
            elif c == "'":
                out.append("\\'")
            elif c == "\\":
                out.append("\\\\")
            elif ord(c) < 32 or c == "\x7f":
                out.append(f"\\{ord(c):03o}")
            else:
                out.append(c)
        return "$'" + "".join(out) + "'"
    return "'" + s.replace("'", "'\\''") + "'"


def printf_q(s: str) -> str:
    """``printf %q``: backslash style, as bash prints it."""
    if s == "":
        return "''"
    if any(ord(c) < 32 or c == "\x7f" for c in s):
        return shell_quote(s)
    out = []
    for i, c in enumerate(s):
        if c.isalnum() or c in "_-./:=@%+,":
            if c == "~" and i == 0:
                out.append("\\~")
            else:
                out.append(c)
        elif c == "~":
            out.append("\\~" if i == 0 else c)
        else:
            out.append("\\" + c)
    return "".join(out)


def _escape(s: str) -> str:
    """Escaped form of quoted text for the pattern module."""
    return "".join("\\" + c if not c.isalnum() else c for c in s)


class Expander:
    """Word expansion (mixed into the interpreter; see the module docstring)."""

    st: ShellState
    ctx: Any

    async def error(self, msg: str, lineno: int | None = None) -> None:
        """A message on stderr (the interpreter's ``Shell.error``)."""

    # ------------------------------------------------------------------ entry points
    async def expand_words(self, words: list[Word]) -> list[str]:
        """Command arguments: every expansion, splitting and globbing."""
        out: list[str] = []
        for w in words:
            parts = w.parts
            if len(parts) == 1:
                p = parts[0]
                if type(p) is Lit and not (_GLOB_CHARS.intersection(p.text)):
                    out.append(p.text)
                    continue
                if type(p) is SQ:
                    out.append(p.text)
                    continue
                if type(p) is Param and p.op is None and p.subscript is None and not p.length and not p.indirect \
                        and p.name[0] not in _SPECIAL_FIRST:
                    # the hot path of loops: a lone unquoted $name
                    val = self.st.get(p.name)
                    if val is None:
                        if self.st.options.get("nounset"):
                            self._unbound(p)
                        continue
                    ifs = self.st.get("IFS")
                    if ifs == " \t\n" and not _SPLIT_OR_GLOB.search(val):
                        if val:
                            out.append(val)
                        continue
                elif type(p) is DQ and len(p.parts) == 1:
                    q = p.parts[0]
                    if type(q) is Param and q.op is None and q.subscript is None and not q.length \
                            and not q.indirect and q.name[0] not in _SPECIAL_FIRST:
                        val = self.st.get(q.name)
                        if val is not None or not self.st.options.get("nounset"):
                            out.append(val or "")
                            continue
                    elif type(q) is Lit:
                        out.append(q.text)
                        continue
            if any(type(p) in (BraceExp, BraceRange) for p in parts) and self.st.options.get("braceexpand", True):
                try:
                    ws = braces.expand_braces(w, self.limits_brace())
                except braces.BraceError as e:
                    raise FatalExpansion(str(e), 1) from None
                for bw in ws:
                    out.extend(await self._expand_full(bw))
            else:
                out.extend(await self._expand_full(w))
        return out

    def limits_brace(self) -> int:
        return braces.DEFAULT_MAX_WORDS

    async def expand_str(self, w: Word) -> str:
        """One string: no splitting, no globbing (assignments, here-docs, ``case`` words)."""
        parts = w.parts
        if len(parts) == 1:
            p = parts[0]
            if type(p) is Lit or type(p) is SQ:
                return p.text
            if type(p) is ArithSub:
                return str(await self.arith_subst(p.expr))
        chunks: list = []
        await self._parts(parts, chunks, False, assign=True)
        return "".join(" " if c is _BREAK else c[0] for c in chunks if c is not _FORCE)

    async def expand_pattern(self, w: Word) -> str:
        """A pattern in escaped form: quoted parts match literally."""
        chunks: list = []
        await self._parts(w.parts, chunks, False, assign=True)
        out = []
        for c in chunks:
            if c is _BREAK:  # between the fields of "$@": joined by a space
                out.append(" ")
                continue
            text, quoted, _exp = c
            out.append(_escape(text) if quoted else text)
        return "".join(out)

    async def expand_regex(self, w: Word) -> tuple[str, list[tuple[str, bool]]]:
        chunks: list = []
        await self._parts(w.parts, chunks, False, assign=True)
        return "", [(" ", True) if c is _BREAK else (c[0], c[1]) for c in chunks]

    async def _expand_full(self, w: Word) -> list[str]:
        chunks: list = []
        await self._parts(w.parts, chunks, False)
        fields = self._split(chunks)
        if self.st.options.get("noglob"):
            return ["".join(t for t, _q in f) for f in fields]
        out: list[str] = []
        for f in fields:
            magic = False
            for t, q in f:
                if not q and (_GLOB_CHARS.intersection(t) or ("(" in t and self.st.shopts.get("extglob"))):
                    magic = True
                    break
            if not magic:
                out.append("".join(t for t, _q in f))
                continue
            pat = "".join(_escape(t) if q else t for t, q in f)
            out.extend(await self.glob(pat))
        return out

    async def glob(self, pat: str) -> list[str]:
        sh = self.st.shopts
        if not pattern.has_magic(pat, extglob=sh.get("extglob", False)):
            return [pattern.unescape(pat)]
        ctx = self.ctx

        async def listdir(path: str) -> list[str] | None:
            return await ctx.listdir(path)

        async def exists(path: str) -> bool:
            try:
                await ctx.lstat(path)
                return True
            except Exception:  # noqa: BLE001 - a failed lstat means "no such file"
                return False

        try:
            res = await pattern.glob_expand(
                pat, listdir, exists=exists, dotglob=sh.get("dotglob", False),
                nullglob=sh.get("nullglob", False), globstar=sh.get("globstar", False),
                extglob=sh.get("extglob", False), nocase=sh.get("nocaseglob", False),
                max_results=self.glob_limit())
        except pattern.GlobError as e:
            raise FatalExpansion(str(e), 1) from None
        if sh.get("failglob") and res == [pattern.unescape(pat)]:
            raise FatalExpansion(f"no match: {pattern.unescape(pat)}", 1)
        return res

    def glob_limit(self) -> int:
        return 100_000

    # ------------------------------------------------------------------ splitting
    def _split(self, chunks: list) -> list[list[tuple[str, bool]]]:
        ifs = self.st.get("IFS")
        if ifs is None:
            ifs = " \t\n"
        fields: list[list[tuple[str, bool]]] = []
        cur: list[tuple[str, bool]] = []
        has = False
        ws = "".join(c for c in ifs if c in " \t\n")
        rx = _ifs_regex(ifs) if ifs else None
        for c in chunks:
            if c is _BREAK:
                if has:
                    fields.append(cur)
                cur, has = [], False
                continue
            if c is _FORCE:
                has = True
                continue
            text, quoted, expanded = c
            if quoted or not expanded or rx is None:
                if text or quoted:
                    has = True
                cur.append((text, quoted))
                continue
            pos = 0
            for m in rx.finditer(text):
                if m.start() > pos:
                    cur.append((text[pos:m.start()], False))
                    has = True
                d = m.group(0)
                if d.strip(ws):
                    fields.append(cur)
                    cur, has = [], False
                elif has:
                    fields.append(cur)
                    cur, has = [], False
                pos = m.end()
            if pos < len(text):
                cur.append((text[pos:], False))
                has = True
        if has:
            fields.append(cur)
        return fields

    # ------------------------------------------------------------------ parts
    async def _parts(self, parts: list, out: list, in_dq: bool, assign: bool = False) -> None:
        for p in parts:
            t = type(p)
            if t is Lit:
                out.append((p.text, in_dq, False))
            elif t is SQ or t is DollarSQ:
                out.append((p.text, True, False))
            elif t is Escaped:
                out.append((p.char, True, False))
            elif t is DQ:
                if not p.parts:
                    out.append(("", True, False))
                    continue
                start = len(out)
                await self._parts(p.parts, out, True, assign)
                if len(out) == start:
                    # "$@" with no parameters: nothing, unless something else is there
                    if not any(type(x) is Param and (x.name in "@" or _is_at(x)) for x in p.parts):
                        out.append(("", True, False))
            elif t is Param:
                await self._param(p, out, in_dq, assign)
            elif t is ArithSub:
                out.append((str(await self.arith_subst(p.expr)), in_dq, True))
            elif t is CmdSub:
                text = await self.command_subst(p)
                out.append((text, in_dq, True))
            elif t is Tilde:
                out.append((self._tilde(p.user), True, False))
            elif t is ProcSub:
                out.append((await self.process_subst(p), True, False))
            elif t is ExtGlob:
                out.append((p.text, in_dq, False))
            elif t is BraceExp or t is BraceRange:
                # no brace expansion here (assignments): the text as written
                out.append((_brace_text(p), in_dq, False))
            else:  # pragma: no cover - the parser makes no other parts
                raise ExpansionError(f"unknown word part {t.__name__}")

    def _tilde(self, user: str) -> str:
        st = self.st
        if user == "":
            home = st.get("HOME")
            return home if home is not None else "/home/user"
        if user == "+":
            return st.get("PWD") or self.ctx.getcwd()
        if user == "-":
            old = st.get("OLDPWD")
            return old if old is not None else "~-"
        if user == "root":
            return "/root"
        if user.lstrip("+-").isdigit() and len(user) - len(user.lstrip("+-")) <= 1:
            # ~N ~+N ~-N: entries of the directory stack (``dirs -l +N`` / ``-N``)
            stack = [st.get("PWD") or self.ctx.getcwd()] + list(st.dirstack)
            n = int(user.lstrip("+-"))
            if user.startswith("-"):
                n = len(stack) - 1 - n
            if 0 <= n < len(stack):
                return stack[n]
        return "~" + user

    async def arith_subst(self, w: Word) -> int:
        """``$(( ))``: its errors abandon the current top-level command (see FatalExpansion)."""
        try:
            return await self.arith_word(w)
        except FatalExpansion as e:
            e.line_only = True
            raise

    async def arith_word(self, w: Word) -> int:
        parts = w.parts
        if len(parts) == 1 and type(parts[0]) is Lit:
            text = parts[0].text
        else:
            text = await self.expand_str_arith(w)
        return self.arith_eval(text)

    async def expand_str_arith(self, w: Word) -> str:
        chunks: list = []
        await self._parts(w.parts, chunks, True, assign=True)
        return "".join(c[0] for c in chunks if c is not _BREAK and c is not _FORCE)

    def arith_eval(self, text: str) -> int:
        try:
            return arith.compile_arith(text)(self._arith_vars)
        except arith.ArithError as e:
            raise FatalExpansion(str(e), 1) from None
        except RecursionError:
            raise FatalExpansion(f"{text}: expression recursion level exceeded", 1) from None

    # ------------------------------------------------------------------ parameters
    def _positional_or_array(self, p: Param) -> tuple[list[str] | None, bool]:
        """(values, is-list) for ``$@ $* ${a[@]} ${a[*]}``; (None, False) otherwise."""
        if p.name in ("@", "*") and p.subscript is None:
            return list(self.st.positional), True
        sub = p.subscript
        if sub is not None and len(sub.parts) == 1 and type(sub.parts[0]) is Lit and sub.parts[0].text in ("@", "*"):
            v = self.st.lookup(p.name)
            if v is not None and v.nameref:  # ``local -n r=arr; ${r[@]}``
                v = self.st.lookup(self.st.resolve_ref(p.name))
            if v is None:
                arr = self.st.special_array(p.name)
                return (list(arr[k] for k in sorted(arr)) if arr else []), True
            if v.value is None:
                return [], True
            if v.kind == "s":
                return [v.value], True
            if v.kind == "a":
                return [v.value[k] for k in sorted(v.value)], True
            return list(v.value.values()), True
        return None, False

    async def _scalar(self, name: str, sub: Word | None) -> str | None:
        st = self.st
        if sub is None:
            if name.isdigit():
                if name == "0":
                    return st.arg0
                i = int(name)
                return st.positional[i - 1] if i <= len(st.positional) else None
            if len(name) == 1 and name in _SPECIAL_ONE:
                return self._special_param(name)
            return st.get(name)
        v = st.lookup(name)
        if v is not None and v.kind == "A":
            key = await self.expand_str(sub)
            return v.value.get(key) if isinstance(v.value, dict) else None
        idx = await self.arith_word(sub)
        if v is None:
            arr = st.special_array(name)
            if arr is None:
                return None
            if idx < 0:
                idx += len(arr)
            return arr.get(idx)
        if v.kind == "s":
            return v.value if idx in (0, -1) else None
        if idx < 0:
            idx += (max(v.value) + 1) if v.value else 0
            if idx < 0:  # bash says so (with no line number) and expands to nothing
                await self.error(f"{name}: bad array subscript", 0)
                return None
        return v.value.get(idx) if v.value else None

    def _special_param(self, name: str) -> str | None:
        st = self.st
        if name == "?":
            return str(st.last_status)
        if name == "$":
            return str(st.shell_pid)
        if name == "#":
            return str(len(st.positional))
        if name == "!":
            return None if st.last_bg is None else str(st.last_bg)
        if name == "-":
            return st.option_flags()
        if name == "*":
            return self._join_star(st.positional)
        if name == "@":
            return " ".join(st.positional)
        return None

    def _join_star(self, values: list[str]) -> str:
        ifs = self.st.get("IFS")
        sep = " " if ifs is None else ifs[:1]
        return sep.join(values)

    def _has_value(self, name: str) -> bool:
        """The variable has a value (an array, even empty, counts; ``declare -a x`` does not)."""
        v = self.st.lookup(name)
        return v is not None and v.value is not None and not v.fresh

    def _unbound(self, p: Param) -> None:
        if self.st.options.get("nounset"):
            name = p.name
            if p.subscript is not None:
                name = f"{p.name}[{_word_text(p.subscript)}]"
            elif name.isdigit():
                name = f"${name}"  # bash: "$1: unbound variable"
            raise FatalExpansion(f"{name}: unbound variable", 127)

    async def _param(self, p: Param, out: list, in_dq: bool, assign: bool) -> None:
        op = p.op
        name = p.name
        if not p.indirect and p.subscript is not None or op == "keys":
            v = self.st.lookup(name)
            if v is not None and v.nameref:  # ``local -n r=arr``: ${r[1]} ${!r[@]} ${#r[@]} are arr's
                ref_name = self.st.resolve_ref(name)
                if ref_name != name:
                    p = dataclasses.replace(p, name=ref_name)
                    name = ref_name
        if op == "bad":
            raise FatalExpansion(f"${{{_word_text(p.arg) if p.arg else name}}}: bad substitution", 1, line_only=True)
        if op in ("prefix*", "prefix@"):
            names = sorted(k for s in self.st.scopes for k, v in s.items()
                           if k.startswith(name) and v.value is not None)
            names = sorted(set(names))
            self._emit_list(names, out, in_dq, op == "prefix*", assign)
            return
        if op == "keys":
            v = self.st.lookup(name)
            keys: list[str] = []
            if v is not None and v.value is not None:
                keys = [str(k) for k in (sorted(v.value) if v.kind == "a" else v.value)] if v.kind != "s" else ["0"]
            star = _word_text(p.subscript) == "*"
            self._emit_list(keys, out, in_dq, star, assign)
            return
        if p.indirect:
            ref = await self._scalar(name, p.subscript)
            if ref is None:
                if self.st.options.get("nounset"):
                    raise FatalExpansion(f"{name}: unbound variable", 127)
                ref = ""
            if not ref:
                if op is None or op in ("#", "##", "%", "%%", "/", "//", "/#", "/%", ":", "^", "^^", ",", ",,",
                                        "~", "~~", "@"):
                    raise FatalExpansion(f"{name}: invalid indirect expansion", 1, line_only=True)
            target = _indirect_param(p, ref)
            if target is None:
                raise FatalExpansion(f"{ref}: invalid variable name", 1, line_only=True)
            p = target
            name = p.name
        values, is_list = self._positional_or_array(p)
        star = is_list and (p.name == "*" or (p.subscript is not None and _word_text(p.subscript) == "*"))
        if p.length:
            if values is not None:
                if (not values and p.subscript is not None and self.st.options.get("nounset")
                        and not self._has_value(name)):
                    raise FatalExpansion(f"{name}: unbound variable", 1)  # ${#nope[@]}, as bash 5.2
                out.append((str(len(values)), in_dq, True))
            else:
                val = await self._scalar(name, p.subscript)
                if val is None:
                    self._unbound(p)
                    val = ""
                out.append((str(len(val)), in_dq, True))
            return
        if is_list:
            assert values is not None
            unset = not values
            if op is None:
                # (set -u never fires for ${a[@]} / ${a[*]}, unset or empty: bash 5.2)
                self._emit_list(values, out, in_dq, star, assign)
                return
            if op in (":-", "-", ":=", "=", ":?", "?", ":+", "+"):
                empty = unset or (op[0] == ":" and (len(values) == 1 and values[0] == "" or
                                                   (star and self._join_star(values) == "")))
                if op in ("-", "=", "?", "+"):
                    empty = unset
                await self._default_op(p, op, empty, lambda: self._emit_list(values, out, in_dq, star, assign),
                                       out, in_dq)
                return
            newvals = [await self._apply_op(p, v) for v in values]
            if op == ":":
                newvals = await self._slice_list(p, values)
            self._emit_list(newvals, out, in_dq, star, assign)
            return
        val = await self._scalar(name, p.subscript)
        if op is None:
            if val is None:
                self._unbound(p)
                val = ""
            out.append((val, in_dq, True))
            return
        if op in (":-", "-", ":=", "=", ":?", "?", ":+", "+"):
            empty = val is None or (op[0] == ":" and val == "")

            def emit_val() -> None:
                out.append((val or "", in_dq, True))

            await self._default_op(p, op, empty, emit_val, out, in_dq)
            return
        if val is None:
            self._unbound(p)
            if op == "@":
                out.append(("", in_dq, True))
                return
            val = ""
        out.append((await self._apply_op(p, val), in_dq, True))

    async def _default_op(self, p: Param, op: str, empty: bool, emit_val, out: list, in_dq: bool) -> None:
        base = op.lstrip(":")
        if base == "+":
            if not empty:
                if p.arg is not None:
                    await self._arg_parts(p.arg, out, in_dq)
            elif in_dq:
                out.append(("", True, False))
            return
        if not empty:
            emit_val()
            return
        if base == "-":
            if p.arg is not None:
                if in_dq and not p.arg.parts:
                    out.append(("", True, False))
                await self._arg_parts(p.arg, out, in_dq)
            elif in_dq:
                out.append(("", True, False))
            return
        if base == "=":
            value = await self.expand_str(p.arg) if p.arg is not None else ""
            if p.name in _SPECIAL_ONE or p.name.isdigit() and p.subscript is None:
                raise FatalExpansion(f"${p.name}: cannot assign in this way", 1)
            try:
                if p.subscript is not None:
                    v = self.st.lookup(p.name)
                    if v is not None and v.kind == "A":
                        self.st.set_index(p.name, await self.expand_str(p.subscript), value)
                    else:
                        self.st.set_index(p.name, await self.arith_word(p.subscript), value)
                else:
                    self.assign_scalar(p.name, value)
            except VarError as e:
                raise FatalExpansion(str(e), 1) from None
            out.append((value, in_dq, True))
            return
        # ?
        msg = await self.expand_str(p.arg) if p.arg is not None else ""
        if not msg:
            msg = "parameter null or not set" if op == ":?" else "parameter not set"
        raise FatalExpansion(f"{p.name}: {msg}", 127)

    async def _arg_parts(self, arg: Word, out: list, in_dq: bool) -> None:
        """The word of ``${x:-word}``: unquoted, its literal text splits too (bash)."""
        if in_dq:
            await self._parts(arg.parts, out, True)
            return
        tmp: list = []
        await self._parts(arg.parts, tmp, False)
        for c in tmp:
            if c is _BREAK or c is _FORCE or c[1]:
                out.append(c)
            else:
                out.append((c[0], False, True))

    def assign_scalar(self, name: str, value: str) -> None:
        v = self.st.lookup(name)
        if v is not None and v.integer:
            value = str(self.arith_eval(value))
        self.st.set(name, value)

    def _emit_list(self, values: list[str], out: list, in_dq: bool, star: bool, assign: bool = False) -> None:
        if assign and not in_dq:
            # no field splitting here (an assignment, a [[ ]] operand): $* joins with IFS's
            # first character, $@ with a space, as bash does
            if values:
                out.append((self._join_star(values) if star else " ".join(values), False, True))
            return
        if in_dq:
            if star:
                out.append((self._join_star(values), True, True))
                return
            for i, v in enumerate(values):
                if i:
                    out.append(_BREAK)
                out.append((v, True, True))
            return
        ifs = self.st.get("IFS")
        if ifs == "":  # no splitting: each value its own field (empty ones dropped)
            for i, v in enumerate(values):
                if i:
                    out.append(_BREAK)
                out.append((v, False, True))
            return
        # unquoted: the values joined by IFS's first character, then split like any unquoted
        # expansion, which is how bash keeps the empty ones with a non-blank IFS (``a::b``)
        if values:
            out.append(((" " if ifs is None else ifs[0]).join(values), False, True))

    async def _slice_list(self, p: Param, values: list[str]) -> list[str]:
        off = await self.arith_word(p.arg) if p.arg is not None and p.arg.parts else 0
        if p.name in ("@", "*") and p.subscript is None:
            values = [self.st.arg0] + values
        n = len(values)
        if off < 0:
            off += n
            if off < 0:
                return []
        if p.arg2 is not None:
            ln = await self.arith_word(p.arg2) if p.arg2.parts else 0
            if ln < 0:
                raise FatalExpansion(f"{ln}: substring expression < 0", 1, line_only=True)
            return values[off:off + ln]
        return values[off:]

    async def _apply_op(self, p: Param, val: str) -> str:
        op = p.op
        sh = self.st.shopts
        ext = sh.get("extglob", False)
        if op in ("#", "##"):
            pat = await self.expand_pattern(p.arg) if p.arg else ""
            return pattern.remove_prefix(val, pat, op == "##", extglob=ext)
        if op in ("%", "%%"):
            pat = await self.expand_pattern(p.arg) if p.arg else ""
            return pattern.remove_suffix(val, pat, op == "%%", extglob=ext)
        if op in ("/", "//", "/#", "/%"):
            pat = await self.expand_pattern(p.arg) if p.arg else ""
            repl = await self.expand_str(p.arg2) if p.arg2 is not None else ""
            mode = {"/": "first", "//": "all", "/#": "prefix", "/%": "suffix"}[op]
            return pattern.replace(val, pat, repl, mode, extglob=ext)  # type: ignore[arg-type]
        if op == ":":
            off = await self.arith_word(p.arg) if p.arg is not None and p.arg.parts else 0
            n = len(val)
            if off < 0:
                off += n
                if off < 0:
                    return ""
            if p.arg2 is not None:
                ln = await self.arith_word(p.arg2) if p.arg2.parts else 0
                if ln < 0:
                    end = n + ln
                    if end < off:
                        raise FatalExpansion(f"{ln}: substring expression < 0", 1, line_only=True)
                    return val[off:end]
                return val[off:off + ln]
            return val[off:]
        if op in ("^", "^^", ",", ",,", "~", "~~"):
            case_pat = await self.expand_pattern(p.arg) if p.arg is not None and p.arg.parts else None
            kind = op[0]
            allc = len(op) == 2
            chars = list(val)
            for i, c in enumerate(chars):
                if not allc and i > 0:
                    break
                if case_pat is None or pattern.match(case_pat, c, extglob=ext):
                    if kind == "~":  # bash's (undocumented) case toggle
                        chars[i] = c.lower() if c.isupper() else c.upper()
                    else:
                        chars[i] = c.upper() if kind == "^" else c.lower()
            return "".join(chars)
        if op == "@":
            what = _word_text(p.arg) if p.arg else ""
            if what == "Q":
                return shell_quote(val)
            if what == "U":
                return val.upper()
            if what == "L":
                return val.lower()
            if what == "u":
                return val[:1].upper() + val[1:]
            if what == "E":
                from kernel.shell.lexer import decode_ansi_c
                return decode_ansi_c(val)
            if what == "P":
                return val
            if what == "A":  # with its attributes as declare would give them (bash's order)
                v = self.st.lookup(p.name)
                flags = ""
                if v is not None:
                    flags = ((v.kind if v.kind != "s" else "") + ("i" if v.integer else "")
                             + ("l" if v.lower else "") + ("n" if v.nameref else "") + ("r" if v.readonly else "")
                             + ("u" if v.upper else "") + ("x" if v.exported else ""))
                return (f"declare -{flags} " if flags else "") + f"{p.name}={shell_quote(val)}"
            if what == "a":
                v = self.st.lookup(p.name)
                if v is None:
                    return ""
                return (v.kind if v.kind != "s" else "") + ("i" if v.integer else "") + \
                    ("r" if v.readonly else "") + ("x" if v.exported else "")
            if what == "K":
                return shell_quote(val)
            raise FatalExpansion(f"${{{p.name}@{what}}}: bad substitution", 1, line_only=True)
        raise FatalExpansion(f"${{{p.name}}}: bad substitution", 1, line_only=True)

    # hooks the interpreter provides
    async def command_subst(self, node: CmdSub) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    async def process_subst(self, node: ProcSub) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def _arith_vars(self) -> ArithAdapter:  # pragma: no cover - overridden
        raise NotImplementedError


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A field boundary inside one word (between the elements of ``"$@"``).
_BREAK = _Marker("BREAK")
#: Forces a field to exist even if empty.
_FORCE = _Marker("FORCE")

_ifs_cache: dict[str, re.Pattern] = {}


def _ifs_regex(ifs: str) -> re.Pattern:
    rx = _ifs_cache.get(ifs)
    if rx is None:
        ws = "".join(c for c in ifs if c in " \t\n")
        other = "".join(c for c in ifs if c not in " \t\n")
        wsc = f"[{re.escape(ws)}]" if ws else None
        alts = []
        if other:
            oc = f"[{re.escape(other)}]"
            alts.append(f"{wsc}*{oc}{wsc}*" if wsc else oc)
        if wsc:
            alts.append(f"{wsc}+")
        rx = re.compile("|".join(alts))
        _ifs_cache[ifs] = rx
    return rx


def _is_at(p: Param) -> bool:
    sub = p.subscript
    return p.op in (None, ":", "#", "##", "%", "%%", "/", "//", "/#", "/%", "^", "^^", ",", ",,", "~", "~~", "@") and (
        p.name == "@" or (sub is not None and len(sub.parts) == 1 and type(sub.parts[0]) is Lit
                          and sub.parts[0].text == "@")) and not p.length


def _word_text(w: Word | None) -> str:
    """The source-ish text of a word (for messages and ``@`` subscripts)."""
    if w is None:
        return ""
    out = []
    for p in w.parts:
        if isinstance(p, (Lit, SQ, DollarSQ)):
            out.append(p.text)
        elif type(p) is Escaped:
            out.append(p.char)
        elif type(p) is DQ:
            out.append(_word_text(Word(p.parts)))
        elif type(p) is Param:
            out.append("$" + p.name)
    return "".join(out)


def _brace_text(p: Any) -> str:
    if type(p) is BraceRange:
        return "{" + p.start + ".." + p.end + (f"..{p.step}" if p.step is not None else "") + "}"
    return "{" + ",".join(_word_text(a) for a in p.alternatives) + "}"


_NAME_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!\-])(?:\[(.*)\])?$", re.S)


def _indirect_param(p: Param, ref: str) -> Param | None:
    m = _NAME_RE.match(ref)
    if m is None:
        return None
    sub = None
    name = ref
    if m.group(1) is not None:
        name = ref[:ref.index("[")]
        sub = Word([Lit(m.group(1))])
    return Param(name, p.op, p.arg, p.arg2, sub, p.length, False, True, line=p.line, col=p.col)
