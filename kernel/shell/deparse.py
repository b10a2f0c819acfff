"""Commands back to text the way bash prints them (``declare -f``, ``type``).

bash does not keep a function's source: it prints its own canonical form of the parsed
command (four-space indents, ``;`` after each command, ``name () `` and ``{ `` lines, ``elif``
as a nested ``if``, ``$( )`` reprinted on one line).  Words keep the text they were written
with (``Word.text``), except ``$'…'`` (printed single-quoted) and ``$( )`` inside them."""

from __future__ import annotations

from typing import Any

from kernel.shell.ast import (
    DQ,
    AndOr,
    ArithCommand,
    ArithFor,
    Case,
    CmdSub,
    CommandList,
    CondAnd,
    CondBinary,
    CondCommand,
    CondNot,
    CondOr,
    CondUnary,
    CondWord,
    Coproc,
    DollarSQ,
    For,
    FunctionDef,
    Group,
    If,
    Pipeline,
    Redir,
    Select,
    SimpleCommand,
    Subshell,
    While,
    Word,
)

_IND = "    "


def function_text(fn: FunctionDef) -> str:
    """``declare -f NAME``'s text of *fn* (no trailing newline)."""
    return _function(fn, "", nested=False)


def _function(fn: FunctionDef, ind: str, nested: bool) -> str:
    body = fn.body
    if isinstance(body, Group):
        inner, redirs = body.body, list(body.redirs) + list(fn.redirs)
    else:
        inner, redirs = CommandList([(AndOr(Pipeline([body])), False)]), list(fn.redirs)
    head = ("function " if nested else "") + f"{fn.name} () \n{ind}{{ \n"
    text = head + ind + _IND + _list(inner, ind + _IND, semi=False) + "\n" + ind + "}"
    return text + _redirs_text(redirs)


class _Out:
    """Here-documents wait for the end of the line their command is on."""

    def __init__(self) -> None:
        self.heredocs: list[str] = []


def _list(cl: CommandList, ind: str, semi: bool, inline: bool = False) -> str:
    """The items of *cl*, the first not indented (the caller is at the line's start)."""
    out: list[str] = []
    items = cl.items
    for i, (ao, bg) in enumerate(items):
        o = _Out()
        out.append(_and_or(ao, ind, o))
        last = i == len(items) - 1
        if bg:
            out.append(" &" if last else " & ")
            if o.heredocs:
                out.append("\n" + "".join(o.heredocs) + ("" if last else ind))
            continue
        if o.heredocs:
            out.append("\n" + "".join(o.heredocs))
            if not last:
                out.append("\n" + ind)
            continue
        if not last:
            out.append("; " if inline else ";\n" + ind)
        elif semi:
            out.append(";")
    return "".join(out)


def _and_or(ao: AndOr, ind: str, o: _Out) -> str:
    parts = [_pipeline(ao.first, ind, o)]
    for op, p in ao.rest:
        parts.append(f" {op} " + _pipeline(p, ind, o))
    return "".join(parts)


def _pipeline(p: Pipeline, ind: str, o: _Out) -> str:
    texts = []
    for i, c in enumerate(p.commands):
        t = _command(c, ind, o)
        if i < len(p.pipe_stderr) and p.pipe_stderr[i]:
            t += " 2>&1"
        texts.append(t)
    text = " | ".join(texts)
    if p.negate:
        text = "! " + text
    if p.time:
        text = ("time -p " if p.time_posix else "time ") + text
    return text


def _command(c: Any, ind: str, o: _Out) -> str:
    inner = ind + _IND
    if isinstance(c, SimpleCommand):
        words = [_assign_text(a) for a in c.assigns] + [word_text(w) for w in c.words]
        return " ".join(words) + _redirs_text(c.redirs, o)
    if isinstance(c, Group):
        return "{ \n" + inner + _list(c.body, inner, semi=False) + "\n" + ind + "}" + _redirs_text(c.redirs, o)
    if isinstance(c, Subshell):
        return "( " + _list(c.body, ind, semi=False) + " )" + _redirs_text(c.redirs, o)
    if isinstance(c, If):
        cond, body = c.clauses[0]
        text = "if " + _list(cond, ind, semi=False) + "; then\n" + inner + _list(body, inner, semi=True)
        rest = c.else_body
        if len(c.clauses) > 1:
            rest = CommandList([(AndOr(Pipeline([If(c.clauses[1:], c.else_body)])), False)])
        if rest is not None:
            text += "\n" + ind + "else\n" + inner + _list(rest, inner, semi=True)
        return text + "\n" + ind + "fi" + _redirs_text(c.redirs, o)
    if isinstance(c, While):
        kw = "until " if c.until else "while "
        return (kw + _list(c.cond, ind, semi=False) + "; do\n" + inner + _list(c.body, inner, semi=True)
                + "\n" + ind + "done" + _redirs_text(c.redirs, o))
    if isinstance(c, (For, Select)):
        kw = "for " if isinstance(c, For) else "select "
        wtext = '"$@"' if c.words is None else " ".join(word_text(w) for w in c.words)
        return (kw + c.var + " in " + wtext + ";\n" + ind + "do\n" + inner + _list(c.body, inner, semi=True)
                + "\n" + ind + "done" + _redirs_text(c.redirs, o))
    if isinstance(c, ArithFor):
        exprs = "; ".join(e.strip() for e in c.text.split(";")) if c.text else ""
        return ("for ((" + exprs + "))\n" + ind + "do\n" + inner + _list(c.body, inner, semi=True)
                + "\n" + ind + "done" + _redirs_text(c.redirs, o))
    if isinstance(c, Case):
        deeper = inner + _IND
        lines = ["case " + word_text(c.word) + " in "]
        for item in c.items:
            pats = " | ".join(word_text(w) for w in item.patterns)
            btext = deeper + _list(item.body, deeper, semi=False) if item.body.items else ""
            lines.append(inner + pats + ")\n" + btext + "\n" + inner + item.terminator)
        return "\n".join(lines) + "\n" + ind + "esac" + _redirs_text(c.redirs, o)
    if isinstance(c, ArithCommand):
        return "((" + c.text + "))" + _redirs_text(c.redirs, o)
    if isinstance(c, CondCommand):
        return "[[ " + _cond(c.expr) + " ]]" + _redirs_text(c.redirs, o)
    if isinstance(c, FunctionDef):
        return _function(c, ind, nested=True)
    if isinstance(c, Coproc):
        return f"coproc {c.name} " + _command(c.body, ind, o)
    return ":"


def _cond(e: Any) -> str:
    """A ``[[ ]]`` expression; the parentheses are where they were written."""
    if isinstance(e, CondWord):
        text = word_text(e.word)
    elif isinstance(e, CondUnary):
        text = e.op + " " + word_text(e.operand)
    elif isinstance(e, CondBinary):
        text = word_text(e.left) + " " + e.op + " " + word_text(e.right)
    elif isinstance(e, CondNot):
        text = "! " + _cond(e.operand)
    elif isinstance(e, CondAnd):
        text = _cond(e.left) + " && " + _cond(e.right)
    elif isinstance(e, CondOr):
        text = _cond(e.left) + " || " + _cond(e.right)
    else:
        text = ""
    return f"( {text} )" if getattr(e, "paren", False) else text


def _redirs_text(redirs: list[Redir], o: _Out | None = None) -> str:
    return "".join(" " + _redir(r, o) for r in redirs)


def _redir(r: Redir, o: _Out | None) -> str:
    op = r.op
    fd = f"{{{r.fd_var}}}" if r.fd_var else ("" if r.fd is None else str(r.fd))
    target = word_text(r.target)
    if op in ("<<", "<<-"):
        hd = r.heredoc
        if hd is not None and o is not None:
            o.heredocs.append(hd.raw + hd.delimiter + "\n")
        return fd + op + target
    if op in (">&", "<&"):
        return (fd or ("1" if op == ">&" else "0")) + op + target
    return fd + op + " " + target


def _assign_text(a: Any, text: str = "") -> str:
    text = text or a.text
    if not text:
        return a.name + "=" + (word_text(a.value) if a.value is not None else "")
    if a.array is not None:
        head, _, rest = text.partition("(")
        body = rest[:-1] if rest.endswith(")") else rest
        return head + "(" + " ".join(_split_top(body)) + ")"
    return _rewrite(text, _collect(a.value) if a.value is not None else [])


def word_text(w: Word | None) -> str:
    """A word as bash prints it: as written, with ``$( )`` reprinted and ``$'…'`` single-quoted."""
    if w is None:
        return ""
    if not w.text:
        return _from_parts(w)
    if w.assign is not None and w.assign.array is not None:
        return _assign_text(w.assign, w.text)
    return _rewrite(w.text, _collect(w))


def _collect(w: Word) -> list[Any]:
    """The ``$( )`` and ``$'…'`` parts of *w*, in source order (inside double quotes too)."""
    found: list[Any] = []

    def walk(parts: list[Any]) -> None:
        for p in parts:
            if isinstance(p, CmdSub) and not p.backquote:
                found.append(p)
            elif isinstance(p, DollarSQ):
                found.append(p)
            elif isinstance(p, DQ):
                walk(p.parts)
            elif isinstance(p, Word):
                walk(p.parts)
            else:
                for attr in ("alternatives",):
                    for sub in getattr(p, attr, None) or []:
                        walk(sub.parts)
    walk(w.parts)
    return found


def _rewrite(text: str, subs: list[Any]) -> str:
    """*text* with each ``$( )`` / ``$'…'`` replaced by bash's form (matched to *subs* in order)."""
    if not subs or ("$(" not in text and "$'" not in text):
        return text
    out: list[str] = []
    i, n, k = 0, len(text), 0
    in_dq = False
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
            continue
        if c == "'" and not in_dq:
            j = text.find("'", i + 1)
            j = n if j < 0 else j + 1
            out.append(text[i:j])
            i = j
            continue
        if c == '"':
            in_dq = not in_dq
        if c == "$" and text.startswith("$'", i) and not in_dq and k < len(subs) and isinstance(subs[k], DollarSQ):
            j = i + 2
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            decoded = subs[k].text
            k += 1
            out.append(f"'{decoded}'" if "'" not in decoded else text[i:j + 1])
            i = j + 1
            continue
        if (c == "$" and text.startswith("$(", i) and not text.startswith("$((", i)
                and k < len(subs) and isinstance(subs[k], CmdSub)):
            end = _close_paren(text, i + 2)
            sub = subs[k]
            k += 1
            if end < 0 or sub.error:
                out.append(text[i:])
                break
            out.append("$(" + _list(sub.body, "", semi=False, inline=True) + ")")
            i = end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _close_paren(text: str, i: int) -> int:
    """Index of the ``)`` closing the ``$(`` whose body starts at *i* (-1 if none)."""
    depth, n = 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return -1
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_top(text: str) -> list[str]:
    """Words of *text* split at unquoted blanks and newlines (an array assignment's body)."""
    words: list[str] = []
    cur: list[str] = []
    i, n = 0, len(text)
    quote = ""
    while i < n:
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and quote == '"' and i + 1 < n:
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c == "\\" and i + 1 < n:
            cur.append(text[i:i + 2])
            i += 1
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c in " \t\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def _from_parts(w: Word) -> str:
    from kernel.shell.expand import _word_text

    return _word_text(w)
