"""Bash brace expansion: recognising ``{a,b}`` / ``{1..10..2}`` in a word's parts, and expanding them.

Bash expands braces before any other expansion, on the word as written, and
only where the braces and commas are unquoted; ``$x`` or ``"…"`` inside an
alternative are carried along untouched (``{a,$x}`` gives ``a`` and ``$x``).
So recognition works on the parsed parts: the unquoted literal text is looked
at character by character and every other part is an opaque atom.  The parser
calls :func:`parse_braces` for words that get brace expansion; the
interpreter calls :func:`expand_braces` before the other expansions.

Counting comes before generating, so ``{1..100000000}`` fails with
:class:`BraceError` at once instead of filling memory.
"""

from __future__ import annotations

import re
from typing import Union

from kernel.shell.ast import SQ, BraceExp, BraceRange, Lit, Param, Word, WordPart

__all__ = ["BraceError", "parse_braces", "expand_braces", "count_words", "range_items", "DEFAULT_MAX_WORDS"]

#: Default ceiling on the number of words one word may expand to.
DEFAULT_MAX_WORDS = 1_000_000

_INT_RANGE = re.compile(r"([+-]?[0-9]+)\.\.([+-]?[0-9]+)(?:\.\.([+-]?[0-9]+))?")
_CHAR_RANGE = re.compile(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.([+-]?[0-9]+))?")


class BraceError(Exception):
    """The expansion of a word would exceed ``max_words``."""


# An item is a single unquoted character (str) or an opaque part.
_Item = Union[str, WordPart]


def _items(parts: list[WordPart]) -> tuple[list[_Item], list[tuple[int, int]]]:
    items: list[_Item] = []
    pos: list[tuple[int, int]] = []
    for p in parts:
        if type(p) is Lit:
            for k, ch in enumerate(p.text):
                items.append(ch)
                pos.append((p.line, p.col + k))
        else:
            items.append(p)
            pos.append((p.line, p.col))
    return items, pos


#: Deepest brace nesting recognised (expansion recurses once per level).
MAX_NESTING = 200


def parse_braces(parts: list[WordPart]) -> list[WordPart]:
    """Replace brace expressions in ``parts`` by :class:`BraceExp` /
    :class:`BraceRange` parts (``parts`` itself when there are none).
    Raises :class:`BraceError` beyond :data:`MAX_NESTING` levels."""
    if not (any(type(p) is Lit and "{" in p.text for p in parts)
            and any(type(p) is Lit and "}" in p.text for p in parts)):
        return parts
    items, pos = _items(parts)
    # One pass pairs every "{" with its "}" and collects its top-level commas;
    # that is what counting depth from each "{" would find, in linear time.
    match: dict[int, int] = {}
    commas: dict[int, list[int]] = {}
    stack: list[int] = []
    for j, it in enumerate(items):
        if it == "{":
            stack.append(j)
        elif it == "}":
            if stack:
                match[stack.pop()] = j
        elif it == "," and stack:
            commas.setdefault(stack[-1], []).append(j)
    return _parse(items, pos, 0, len(items), match, commas, 0)


def _flush(buf: list[str], bpos: tuple[int, int] | None, out: list[WordPart]) -> None:
    if buf:
        line, col = bpos or (0, 0)
        if out and type(out[-1]) is Lit:
            prev = out[-1]
            out[-1] = Lit(prev.text + "".join(buf), line=prev.line, col=prev.col)
        else:
            out.append(Lit("".join(buf), line=line, col=col))
        buf.clear()


def _parse(items: list[_Item], pos: list[tuple[int, int]], lo: int, hi: int, match: dict[int, int],
           commas: dict[int, list[int]], depth: int) -> list[WordPart]:
    """Parts for ``items[lo:hi]`` with brace expressions recognised (recursively
    in alternatives)."""
    if depth > MAX_NESTING:
        raise BraceError("maximum nesting depth exceeded")
    out: list[WordPart] = []
    buf: list[str] = []
    bpos: tuple[int, int] | None = None
    i = lo
    while i < hi:
        it = items[i]
        if it == "{":
            close = match.get(i)
            if close is not None and close < hi:
                node = _brace_node(items, pos, i, close, commas.get(i, []), match, commas, depth)
                if node is not None:
                    _flush(buf, bpos, out)
                    out.append(node)
                    i = close + 1
                    continue
        if isinstance(it, str):
            if not buf:
                bpos = pos[i]
            buf.append(it)
        else:
            _flush(buf, bpos, out)
            out.append(it)
        i += 1
    _flush(buf, bpos, out)
    return out


def _brace_node(items: list[_Item], pos: list[tuple[int, int]], start: int, close: int, mine: list[int],
                match: dict[int, int], commas: dict[int, list[int]], depth: int) -> WordPart | None:
    line, col = pos[start]
    if mine:
        bounds = [start] + mine + [close]
        alts = []
        for a, b in zip(bounds, bounds[1:]):
            sub = _parse(items, pos, a + 1, b, match, commas, depth + 1)
            wl, wc = pos[a + 1] if a + 1 < b else pos[a]
            alts.append(Word(sub, line=wl, col=wc))
        return BraceExp(alts, line=line, col=col)
    inner = items[start + 1:close]
    if not all(isinstance(x, str) for x in inner):
        return None
    text = "".join(inner)  # type: ignore[arg-type]
    m = _INT_RANGE.fullmatch(text)
    kind = "int"
    if not m:
        m = _CHAR_RANGE.fullmatch(text)
        kind = "char"
    if not m:
        return None
    step = int(m.group(3)) if m.group(3) is not None else None
    return BraceRange(m.group(1), m.group(2), step, kind, line=line, col=col)


def range_items(r: BraceRange) -> tuple[int, int, int, int]:
    """(first, last, step, width) of an integer range, or code points for a
    character range; ``step`` is signed toward ``last``, ``width`` is the
    zero-padding width (0: none)."""
    if r.kind == "char":
        a, b = ord(r.start), ord(r.end)
        width = 0
    else:
        a, b = int(r.start), int(r.end)
        width = 0
        for s in (r.start, r.end):
            digits = s.lstrip("+-")
            if len(digits) > 1 and digits.startswith("0"):
                width = max(len(r.start), len(r.end))
    step = abs(r.step) if r.step else 1
    if a > b:
        step = -step
    return a, b, step, width


def _range_len(r: BraceRange) -> int:
    a, b, step, _ = range_items(r)
    return abs(b - a) // abs(step) + 1


def _range_text(r: BraceRange, value: int, width: int) -> str:
    if r.kind == "char":
        return chr(value)
    if width:
        return ("-" + str(-value).zfill(width - 1)) if value < 0 else str(value).zfill(width)
    return str(value)


def _range_part(r: BraceRange, value: int, width: int) -> WordPart:
    if r.kind == "char" and value == 92:
        # Bash's quote removal later eats the backslash a range like {Z..a}
        # produces, leaving an empty but quoted argument; SQ("") is exactly that.
        return SQ("", line=r.line, col=r.col)
    return Lit(_range_text(r, value, width), line=r.line, col=r.col)


def count_words(parts: list[WordPart]) -> int:
    """How many words ``parts`` expands to (computed without generating them)."""
    total = 1
    for p in parts:
        if type(p) is BraceExp:
            total *= sum(count_words(alt.parts) for alt in p.alternatives)
        elif type(p) is BraceRange:
            total *= _range_len(p)
    return total


def expand_braces(word: Word, max_words: int = DEFAULT_MAX_WORDS) -> list[Word]:
    """The words ``word`` expands to, in bash's order, with no brace parts
    left; the other parts are kept as they are (adjacent literal text merged).
    An alternative may leave a word with no parts (``{,a}``): like any
    unquoted empty field the interpreter drops it, as bash does.
    Raises :class:`BraceError` when there would be more than ``max_words``."""
    if not any(type(p) in (BraceExp, BraceRange) for p in word.parts):
        return [word]
    n = count_words(word.parts)
    if n > max_words:
        raise BraceError(f"brace expansion: {n} words exceed the limit of {max_words}")
    return [Word(_merge_lits(parts), line=word.line, col=word.col) for parts in _gen(word.parts)]


def _gen(parts: list[WordPart]) -> list[list[WordPart]]:
    results: list[list[WordPart]] = [[]]
    for p in parts:
        if type(p) is BraceExp:
            options: list[list[WordPart]] = []
            for alt in p.alternatives:
                options.extend(_gen(alt.parts))
        elif type(p) is BraceRange:
            a, b, step, width = range_items(p)
            options = [[_range_part(p, v, width)] for v in range(a, b + (1 if step > 0 else -1), step)]
        else:
            for r in results:
                r.append(p)
            continue
        results = [r + o for r in results for o in options]
    return results


_NAME_CHARS = re.compile(r"[A-Za-z0-9_]*")


def _merge_lits(parts: list[WordPart]) -> list[WordPart]:
    """Join adjacent literal text; and, because bash expands braces on the text as written,
    name characters an alternative puts right after a bare ``$name`` extend the name
    (``$x{a,b}`` is ``$xa $xb``)."""
    out: list[WordPart] = []
    for p in parts:
        if type(p) is Lit and out and type(out[-1]) is Param:
            prev_p = out[-1]
            assert isinstance(prev_p, Param)
            if not prev_p.braced and prev_p.op is None and (prev_p.name[0].isalpha() or prev_p.name[0] == "_"):
                m = _NAME_CHARS.match(p.text)
                k = m.end() if m else 0
                if k:
                    out[-1] = Param(prev_p.name + p.text[:k], line=prev_p.line, col=prev_p.col)
                    p = Lit(p.text[k:], line=p.line, col=p.col)
                    if not p.text:
                        continue
        if type(p) is Lit and out and type(out[-1]) is Lit:
            prev = out[-1]
            out[-1] = Lit(prev.text + p.text, line=prev.line, col=prev.col)
        elif type(p) is Lit and not p.text:
            continue
        else:
            out.append(p)
    return out
