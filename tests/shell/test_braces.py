"""Brace expansion compared with bash: recognition by the parser, expansion by kernel.shell.braces."""

from __future__ import annotations

import subprocess
import time

import pytest

from kernel.shell import ast as A
from kernel.shell.braces import BraceError, count_words, expand_braces, parse_braces
from kernel.shell.parser import parse

BASH = "/bin/bash"

# Words without expansions other than braces (quotes and escapes are fine:
# the comparison removes them, as bash's output has them removed).
CASES = [
    "{a,b}", "{a,b,c}", "x{a,b}y", "{a,b}{1,2}", "{a,b}{1,2}{x,y}", "{a,{b,c}}", "{a,{b,{c,d}}e}",
    "{,a}", "{a,}", "{,}", "x{,}y", "{a}", "{}", "{a", "a}", "}{a,b}", "{a,b", "a,b}", "{a,b}}",
    "{{a,b}", "{a,{b}", "{x{a,b}y}", "{a,b}c{d,e}", "a{b,c{d,e}f}g", "{1..5}", "{5..1}", "{-2..2}",
    "{1..10..2}", "{10..1..3}", "{1..10..-2}", "{1..3..0}", "{01..10}", "{1..010}", "{-01..3}",
    "{001..3}", "{-5..-1}", "{a..e}", "{e..a}", "{a..k..3}", "{Z..a}", "{X..c..2}", "{a..A}", "{1..a}",
    "{a..1}", "{1..}", "{..3}", "{1...3}", "{1..3}{a..b}", "x{1..3}y", "{a,b{1..3}}", "{1..2}{,x}",
    "'{a,b}'", '"{a,b}"', "\\{a,b}", "{a\\,b,c}", "{'a,b',c}", '{"a b",c}', "{a,b}'{c,d}'",
    "{ab,cd}{ef,gh}", "{+1..+3}", "{0..0}", "{0..-3}", "{9..11}", "{98..101..2}", "{a..a}",
    "{a,b}{}", "{a,b}{c}", "a{,b}c", "{{a,b},{c,d}}", "{{1..2},{a..b}}", "{a..c}{1..2}{x,y}",
    "pre{a,b}post{1,2}end", "{1..20..7}", "{00..3}", "{1..03}", "{-10..10..5}", "{10..-10..5}",
]


def bash_expansions(words: list[str]) -> list[list[str]]:
    script = "".join(f"for x in {w}; do printf '%s\\n' \"$x\"; done; echo ---\n" for w in words)
    out = subprocess.run([BASH, "-c", script], capture_output=True, text=True, check=True).stdout
    groups = out.split("---\n")
    return [g.splitlines() for g in groups[:-1]]


def unquote(w: A.Word) -> str:
    out = []
    for p in w.parts:
        if isinstance(p, (A.Lit, A.SQ)):
            out.append(p.text)
        elif isinstance(p, A.Escaped):
            out.append(p.char)
        elif isinstance(p, A.DQ):
            out.append(unquote(A.Word(p.parts)))
        else:
            raise AssertionError(f"unexpected part {p!r}")
    return "".join(out)


def ours(src: str) -> list[str]:
    cmd = parse("printf '%s\\n' " + src).body.items[0][0].first.commands[0]
    assert isinstance(cmd, A.SimpleCommand)
    result = []
    for w in cmd.words[2:]:
        # a word left with no parts is an unquoted empty field, which bash drops
        result.extend(unquote(x) for x in expand_braces(w) if x.parts)
    return result


BASH_RESULTS = dict(zip(CASES, bash_expansions(CASES)))


@pytest.mark.parametrize("src", CASES)
def test_expansion_matches_bash(src: str) -> None:
    assert ours(src) == BASH_RESULTS[src]


def test_count_matches_expansion() -> None:
    for src in CASES:
        cmd = parse("echo " + src).body.items[0][0].first.commands[0]
        w = cmd.words[1]  # type: ignore[union-attr]
        assert count_words(w.parts) == len(expand_braces(w)), src


def test_other_parts_are_carried_along() -> None:
    cmd = parse('echo {a,$x}"$y"').body.items[0][0].first.commands[0]
    got = expand_braces(cmd.words[1])  # type: ignore[union-attr]
    assert got == [A.Word([A.Lit("a"), A.DQ([A.Param("y")])]),
                   A.Word([A.Param("x"), A.DQ([A.Param("y")])])]


def test_word_without_braces_is_returned_as_is() -> None:
    w = A.Word([A.Lit("plain")])
    assert expand_braces(w) == [w]
    assert expand_braces(w)[0] is w


def test_limit_is_checked_before_generating() -> None:
    cmd = parse("echo {1..100000000}").body.items[0][0].first.commands[0]
    w = cmd.words[1]  # type: ignore[union-attr]
    t = time.perf_counter()
    with pytest.raises(BraceError, match="100000000 words exceed the limit of 1000"):
        expand_braces(w, max_words=1000)
    assert time.perf_counter() - t < 0.1


def test_limit_counts_products() -> None:
    cmd = parse("echo {1..100}{1..100}{1..100}").body.items[0][0].first.commands[0]
    w = cmd.words[1]  # type: ignore[union-attr]
    assert count_words(w.parts) == 1_000_000
    with pytest.raises(BraceError):
        expand_braces(w, max_words=999_999)
    assert len(expand_braces(A.Word(parse_braces([A.Lit("{1..10}{1..10}")])), max_words=100)) == 100


def test_parse_braces_positions() -> None:
    parts = parse_braces([A.Lit("x{a,b}", line=3, col=5)])
    assert parts[0] == A.Lit("x") and (parts[0].line, parts[0].col) == (3, 5)
    assert (parts[1].line, parts[1].col) == (3, 6)
