"""kernel.shell.arith against bash itself, plus the limits bash does not test.

The corpus (``arith_cases.txt``) is run through ``/bin/bash`` once, as one
generated script, so the whole comparison costs about a second.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernel.shell import arith
from kernel.shell.arith import ArithError, SimpleVars, compile_arith, evaluate

CASES = Path(__file__).with_name("arith_cases.txt")
BASH = "/bin/bash"


@dataclass
class Case:
    line: int
    setup: list[str]
    expr: str


@dataclass
class Outcome:
    value: str | None  # None: an error
    message: str  # bash's stderr text without "bash: line N: "
    state: list[str]  # NAME[KEY]=VALUE lines, sorted


def load_cases() -> list[Case]:
    cases = []
    for no, raw in enumerate(CASES.read_text().split("\n"), 1):
        if not raw or raw.startswith("#"):
            continue
        setup, sep, expr = raw.partition(" ;; ")
        if not sep:
            setup, expr = "", raw
        cases.append(Case(no, shlex.split(setup), expr))
    return cases


def names_of(case: Case) -> list[str]:
    # identifiers, but not the letters inside numbers such as 1e3 or 64#_
    names = set(re.findall(r"(?<![0-9A-Za-z_#@])[A-Za-z_][A-Za-z0-9_]*", case.expr))
    names |= {w.lstrip("@%").split("=", 1)[0] for w in case.setup}
    return sorted(names - {"_"})


def build_vars(case: Case) -> SimpleVars:
    v = SimpleVars()
    for word in case.setup:
        name, _, value = word.partition("=")
        if name.startswith("@"):
            v.arrays[name[1:]] = dict(enumerate(value.split(",")))
        elif name.startswith("%"):
            v.assoc[name[1:]] = dict(kv.split(":", 1) for kv in value.split(","))
        else:
            v.scalars[name] = value
    return v


def bash_setup(case: Case) -> str:
    out = []
    for word in case.setup:
        name, _, value = word.partition("=")
        if name.startswith("@"):
            out.append(f"{name[1:]}=({' '.join(shlex.quote(x) for x in value.split(','))})")
        elif name.startswith("%"):
            items = " ".join(
                f"[{shlex.quote(k)}]={shlex.quote(x)}" for k, x in (kv.split(":", 1) for kv in value.split(","))
            )
            out.append(f"declare -A {name[1:]}=({items})")
        else:
            out.append(f"{name}={shlex.quote(value)}")
    return "; ".join(out)


def run_bash(cases: list[Case]) -> list[Outcome]:
    # the dump's own loop variables must not be names the corpus uses
    parts = [
        (
            "dump() { for _dn in \"$@\"; do eval 'for _dk in \"${!'$_dn'[@]}\"; do "
            "printf \"S:%s[%s]=%s\\n\" '$_dn' \"$_dk\" \"${'$_dn'[$_dk]}\"; done'; done; }"
        )
    ]
    for i, case in enumerate(cases):
        names = " ".join(names_of(case))
        setup = bash_setup(case)
        parts.append(
            f"echo '@@BEGIN {i}'; ( {setup + ';' if setup else ''} trap 'dump {names}' EXIT; "
            f"e={shlex.quote(case.expr)}; r=$(($e)); echo \"R:$r\" ) 2>&1; echo '@@END'"
        )
    proc = subprocess.run(
        ["bash", "-s"], check=False, executable=BASH, input="\n".join(parts), capture_output=True, text=True, timeout=60
    )
    outcomes: list[Outcome] = []
    current: list[str] | None = None
    for line in proc.stdout.split("\n"):
        if line.startswith("@@BEGIN "):
            current = []
        elif line == "@@END":
            assert current is not None
            value = next((x[2:] for x in current if x.startswith("R:")), None)
            errors = [re.sub(r"^bash: (line \d+: )?", "", x) for x in current if x.startswith("bash: ")]
            state = sorted(x[2:] for x in current if x.startswith("S:"))
            outcomes.append(Outcome(value, "\n".join(errors), state))
            current = None
        elif current is not None:
            current.append(line)
    assert len(outcomes) == len(cases), proc.stderr
    return outcomes


def dump_vars(v: SimpleVars, names: list[str]) -> list[str]:
    out = []
    for n in names:
        if n in v.arrays:
            out += [f"{n}[{k}]={x}" for k, x in v.arrays[n].items()]
        elif n in v.assoc:
            out += [f"{n}[{k}]={x}" for k, x in v.assoc[n].items()]
        elif n in v.scalars:
            out.append(f"{n}[0]={v.scalars[n]}")
    return sorted(out)


def run_ours(case: Case) -> Outcome:
    v = build_vars(case)
    try:
        value: str | None = str(evaluate(case.expr, v))
        message = ""
    except ArithError as e:
        value, message = None, str(e)
    return Outcome(value, message, dump_vars(v, names_of(case)))


# Where we knowingly differ: bash reports these and goes on with 0.
KNOWN_DIFFERENCES: set[str] = set()


@pytest.fixture(scope="module")
def corpus() -> list[tuple[Case, Outcome]]:
    cases = load_cases()
    return list(zip(cases, run_bash(cases)))


def test_corpus_is_large(corpus):
    assert len(corpus) >= 500
    errors = sum(1 for _, b in corpus if b.value is None)
    assert errors >= 80  # the error paths are exercised, not only values


def test_differential_against_bash(corpus):
    mismatches = []
    for case, want in corpus:
        if case.expr in KNOWN_DIFFERENCES:
            continue
        got = run_ours(case)
        if (got.value, got.message, got.state) != (want.value, want.message, want.state):
            mismatches.append(f"line {case.line}: {case.expr!r}\n  bash: {want}\n  ours: {got}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:40])


# --- limits and properties bash cannot check for us -------------------------


def test_deep_parentheses_are_an_arith_error():
    text = "(" * 10_000 + "1" + ")" * 10_000
    with pytest.raises(ArithError) as info:
        evaluate(text, SimpleVars())
    assert info.value.reason == "expression recursion level exceeded"


def test_deep_unary_chain_is_an_arith_error():
    with pytest.raises(ArithError, match="recursion level exceeded"):
        evaluate("-" * 5000 + "1", SimpleVars())


def test_nesting_below_the_limit_works_from_a_deep_stack():
    depth = arith.MAX_NESTING // 3
    text = "1+(" * depth + "1" + ")" * depth

    def recurse(n: int) -> int:
        return evaluate(text, SimpleVars()) if n == 0 else recurse(n - 1)

    assert recurse(sys.getrecursionlimit() // 3) == depth + 1


def test_long_flat_sum_is_not_limited_by_the_stack():
    assert evaluate("+".join(["1"] * 5_000), SimpleVars()) == 5_000
    assert evaluate("-".join(["1"] * 5_000), SimpleVars()) == 1 - 4_999


def test_self_reference_reports_bash_message():
    with pytest.raises(ArithError) as info:
        evaluate("x", SimpleVars(scalars={"x": "x"}))
    assert str(info.value) == 'x: expression recursion level exceeded (error token is "x")'


def test_compiled_expressions_are_cached_and_reentrant():
    assert compile_arith("x+i") is compile_arith("x+i")
    v = SimpleVars(scalars={"x": "0"})
    for i in range(100):
        v.scalars["i"] = str(i)
        v.scalars["x"] = str(evaluate("x+i", v))
    assert v.scalars["x"] == str(sum(range(100)))


def test_errors_repeat_identically():
    # A cached failing expression raises a fresh, identical error every time.
    msgs = set()
    for _ in range(3):
        with pytest.raises(ArithError) as info:
            evaluate("0 && 2**-1", SimpleVars())
        msgs.add(str(info.value))
    assert msgs == {'0 && 2**-1: exponent less than 0 (error token is "1")'}


def test_error_attributes():
    with pytest.raises(ArithError) as info:
        evaluate("  7 / 0", SimpleVars())
    e = info.value
    assert (e.reason, e.token) == ("division by 0", "0")
    assert str(e) == '7 / 0: division by 0 (error token is "0")'


class Recording(SimpleVars):
    """Counts the calls, to show that skipped operands touch nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, name):
        self.calls.append("get " + name)
        return super().get(name)

    def set(self, name, value):
        self.calls.append("set " + name)
        super().set(name, value)


def test_short_circuit_touches_no_variable():
    v = Recording()
    assert evaluate("0 && (a = b++ + c[d])", v) == 0
    assert evaluate("1 || (a = b++)", v) == 1
    assert evaluate("1 ? e : (f = 1)", v) == 0
    assert v.calls == ["get e"]


def test_assoc_subscript_is_literal_and_indexed_is_evaluated():
    v = SimpleVars(scalars={"k": "1"}, arrays={"a": {0: "10", 1: "11"}}, assoc={"A": {"k": "5", "1": "9"}})
    assert evaluate("A[k]", v) == 5
    assert evaluate("a[k]", v) == 11
    evaluate("A[k+1] = 3", v)
    assert v.assoc["A"]["k+1"] == "3"


def test_speed_of_a_loop_body():
    """x=$((x+i)) in a 100,000-iteration loop must cost microseconds per evaluation."""
    v = SimpleVars(scalars={"x": "0", "i": "0"})
    scalars = v.scalars
    n = 100_000
    t0 = time.perf_counter()
    for i in range(n):
        scalars["i"] = str(i)
        scalars["x"] = str(evaluate("x+i", v))
    per_eval = (time.perf_counter() - t0) / n
    assert scalars["x"] == str(n * (n - 1) // 2)
    print(f"x=$((x+i)): {per_eval * 1e6:.2f} us per iteration")
    assert per_eval < 20e-6
