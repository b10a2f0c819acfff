"""Hypothesis: random words (quoting, parameter expansions, arithmetic, braces, IFS) through our
parser and expander and through the host's bash; ``printf '<%s>\\n'`` of the resulting fields
must agree, and so must the status and whether anything went to stderr.

Each example is a batch of words run in one script, so a kernel boot serves many words; a
failing batch shrinks to the word that differs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.shell.shellsupport import boot

#: more examples for a long hunt: VFSFUSE_HYPOTHESIS_EXAMPLES=2000
EXAMPLES = int(os.environ.get("VFSFUSE_HYPOTHESIS_EXAMPLES", "60"))

PRELUDE = ("x='a b*c'; y=; z='hello world'; n=5; m=-3; p=/usr/local/lib.so.1; "
           "arr=(1 '2 3' '' 4); HOME=/home/u; set -- one 'two  three' ''; ")

SAFE = "abcxyz019_-.,:=@%+/"
VARS = ["x", "y", "z", "n", "m", "p", "nope", "1", "2", "3", "#", "?"]
PATTERNS = ["a", "*", "?", "a*", "*b", "[a-c]", "l*", "*.", "o", "\\*", "' '", "w*d"]


def _lit(alphabet: str = SAFE) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=1, max_size=4)


def _param() -> st.SearchStrategy[str]:
    v = st.sampled_from(VARS)
    word = st.sampled_from(["w", "", "d e", "$n", "'q r'", "\"$z\""])
    pat = st.sampled_from(PATTERNS)
    return st.one_of(
        v.map(lambda n: "$" + n if len(n) > 1 or not n.isalpha() else "$" + n),
        v.map(lambda n: "${" + n + "}"),
        v.map(lambda n: "${#" + n + "}"),
        st.tuples(v, st.sampled_from([":-", "-", ":+", "+", ":=", "="]), word).map(
            lambda t: "${" + t[0] + t[1] + t[2] + "}" if t[0].isalpha() else "${" + t[0] + t[1][-1] + t[2] + "}"),
        st.tuples(st.sampled_from(["x", "z", "p", "y"]), st.sampled_from(["#", "##", "%", "%%"]), pat).map(
            lambda t: "${" + t[0] + t[1] + t[2] + "}"),
        st.tuples(st.sampled_from(["x", "z", "p"]), st.sampled_from(["/", "//", "/#", "/%"]), pat,
                  st.sampled_from(["", "_", "<>", "$n"])).map(
            lambda t: "${" + t[0] + t[1] + t[2] + "/" + t[3] + "}"),
        st.tuples(st.sampled_from(["x", "z", "p"]), st.integers(-4, 6), st.integers(0, 4)).map(
            lambda t: "${" + t[0] + ":" + (f" {t[1]}" if t[1] < 0 else str(t[1])) + ":" + str(t[2]) + "}"),
        st.tuples(st.sampled_from(["x", "z"]), st.sampled_from(["^^", ",,", "^", ","])).map(
            lambda t: "${" + t[0] + t[1] + "}"),
        st.sampled_from(["${arr[@]}", "${arr[*]}", "${#arr[@]}", "${arr[1]}", "${!arr[@]}", "$@", "$*", "$#"]),
        # (not ${@:2} or ${a[@]:1:2}: bash 5.2 joins those with IFS's first character in an
        # assignment, a quirk our shell does not copy)
    )


def _arith() -> st.SearchStrategy[str]:
    atom = st.one_of(st.integers(0, 20).map(str), st.sampled_from(["n", "m", "x1", "$n", "(n+1)"]))
    op = st.sampled_from(["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", ">=", "==", "!=", "&&", "||"])
    expr = st.tuples(atom, op, atom, st.sampled_from(["", "-", "!", "~"])).map(
        lambda t: f"{t[3]}{t[0]} {t[1]} {t[2]}")
    return expr.map(lambda e: "$((" + e + "))")


def _part() -> st.SearchStrategy[str]:
    inner_dq = st.lists(st.one_of(_lit(SAFE + " *?"), _param(), st.just("\\$"), st.just("\\\"")), min_size=0,
                        max_size=3).map("".join)
    return st.one_of(
        _lit(),
        _lit(SAFE + " *?$\"\\").map(lambda s: "'" + s + "'"),
        inner_dq.map(lambda s: '"' + s + '"'),
        _param(),
        _arith(),
        st.sampled_from(["{a,b}", "{1..3}", "{c..a}", "x{,y}", "{1..7..3}", "{a,b{c,d}}", "{}", "{a}"]),
        st.sampled_from(["\\ ", "\\*", "\\'", "\\\\", "~/d", "\"~\"", "$'a\\tb'", "$'\\x41'", "*", "?", "[z]"]),
        st.sampled_from(["$(echo s)", "`echo b`", "$(printf '%s ' 1 2)", "$(echo \"$z\")"]),
        st.sampled_from(["${x@Q}", "${z@U}", "${z@u}", "${x@L}", "${!q}", "${q:-x}", "\"$@\"", "\"${arr[@]}\"",
                         "\"$*\"", "\"${arr[*]}\"", "${z:?}", "${nope:?msg}", "\"${nope-\"a b\"}\"",
                         "\"${x//\\*/-}\"", "${x// /_}", "$((n+=2))", "$((i=7, i*2))", "${#z}"]),
    )


WORD = st.lists(_part(), min_size=1, max_size=4).map("".join)


IFS_CHOICES = ["", "IFS=:; ", "IFS=' :'; ", "IFS=; ", "unset IFS; ", "IFS='*'; "]


def _script(words: list[str], ifs: str = "") -> str:
    return PRELUDE + "q=z; " + ifs + "printf '<%s>\\n' " + " ".join(words) + "\n"


def _assign_script(words: list[str], ifs: str) -> str:
    """The same words as assignment values (no splitting, no globbing) and in ``[[ ]]``."""
    lines = [PRELUDE + "q=z; " + ifs]
    for w in words:
        if "${!arr[@]}" in w:  # bash joins it with IFS's first character in an assignment only
            continue
        same = "" if "@" in w or "*}" in w or "$*" in w else f"; [[ $v == {w} ]] && echo same"
        # (lists in a [[ ]] pattern next to other text join in ways bash does not document)
        lines.append(f"v={w}; printf '<%s>\\n' \"$v\"{same}")
    return "\n".join(lines) + "\n"


def _bash(script: str) -> tuple[int, bytes, bool]:
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["bash", "-c", script, "bash"], cwd=d, capture_output=True, timeout=20,
                           env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    return p.returncode, p.stdout, bool(p.stderr)


def _ours(scripts: list[str]) -> list[tuple[int, bytes, bool]]:
    async def run() -> list[tuple[int, bytes, bool]]:
        out = []
        async with trio.open_nursery() as n:
            k = await boot(n, env={"PATH": "/bin:/usr/bin"})
            await k.vfs.mkdir("/tmp/h")
            for s in scripts:
                r = await k.run(["bash", "-c", s, "bash"], cwd="/tmp/h", timeout=20)
                out.append((r.returncode, r.stdout, bool(r.stderr)))
            await k.shutdown()
            n.cancel_scope.cancel()
        return out
    return trio.run(run)


# the shell sets Python's recursion limit to fit its nesting limits, which Hypothesis notes
@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WORD, min_size=1, max_size=12))
def test_words_expand_as_bash(words: list[str]) -> None:
    script = _script(words)
    (ours,) = _ours([script])
    ref = _bash(script)
    assert ours == ref, f"script: {script!r}\nours {ours!r}\nbash {ref!r}"


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WORD, min_size=1, max_size=8), st.sampled_from(IFS_CHOICES))
def test_words_under_ifs_and_in_assignments(words: list[str], ifs: str) -> None:
    scripts = [_script(words, ifs), _assign_script(words, ifs)]
    ours = _ours(scripts)
    for script, got in zip(scripts, ours):
        ref = _bash(script)
        assert got == ref, f"script: {script!r}\nours {got!r}\nbash {ref!r}"
