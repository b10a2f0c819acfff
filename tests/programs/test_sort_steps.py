"""sort in bounded steps (kernel/programs/text_sort_steps.py): the same order as one stable
``sorted``, whatever the step size, and the GNU cases still match when every step is tiny."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.programs import text_sort, text_sort_steps
from kernel.programs.text_sort_steps import KMerge, Plan, Steps, sorted_pieces
from kernel.userland import standard_registry
from tests.programs.difftest import differences, load

CASES = Path(__file__).with_name("cases")


class FixedSteps(Steps):
    """Steps of a fixed size (the real ones adapt to the clock)."""

    def done(self, n: int) -> None:
        pass


def _plans() -> st.SearchStrategy[tuple[Plan, Any]]:
    """A plan and the key ``sorted`` should use for the same order (keys with many ties)."""
    def first(line: bytes) -> bytes:  # few distinct keys: long runs of equal ones
        return line[:1]

    def then_line(line: bytes) -> tuple[bytes, bytes]:  # GNU's last resort: the line breaks ties
        return line[:1], line

    def by_first(a: bytes, b: bytes) -> int:
        return (a[:1] > b[:1]) - (a[:1] < b[:1])

    cmp = functools.cmp_to_key(by_first)
    return st.sampled_from([
        (Plan(None, False), None),
        (Plan(None, True), None),
        (Plan(first, False), first),
        (Plan(first, True), first),
        (Plan(then_line, False, key_ends_with_line=True), then_line),
        (Plan(then_line, True, key_ends_with_line=True), then_line),
        (Plan(cmp, False), cmp),
    ])


lines_st = st.lists(st.binary(min_size=0, max_size=3).map(lambda b: bytes(97 + c % 3 for c in b)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(lines=lines_st, plan=_plans(), size=st.integers(1, 40))
def test_sorted_pieces_is_a_stable_sort(lines: list[bytes], plan: tuple[Plan, Any], size: int) -> None:
    p, key = plan
    items = p.decorate(list(lines))
    out: list[bytes] = []
    for piece in sorted_pieces(items, p, FixedSteps(size)):
        if piece:
            out.extend(p.lines(piece))
    assert out == sorted(lines, key=key, reverse=p.desc)


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(lines_st, min_size=1, max_size=5), plan=_plans(), size=st.integers(1, 30),
       block=st.integers(1, 7))
def test_open_ended_merge_reads_runs_in_blocks(runs: list[list[bytes]], plan: tuple[Plan, Any],
                                               size: int, block: int) -> None:
    """Runs fed *block* items at a time, as the temporary files of an external sort are."""
    p, key = plan
    runs = [sorted(r, key=key, reverse=p.desc) for r in runs]
    fed = [0] * len(runs)
    m = KMerge([[] for _ in runs], p, open_ended=True)
    out: list[bytes] = []
    for _ in range(100_000):
        piece = m.step(size)
        if m.finished:
            break
        if piece is None:
            r = m.want
            assert r is not None
            m.more(r, p.decorate(runs[r][fed[r]: fed[r] + block]))
            fed[r] += block
            continue
        assert len(piece) <= max(size, 1) * 2 + len(runs)
        out.extend(p.lines(piece))
    assert m.finished
    expect = sorted((line for r in runs for line in r), key=key, reverse=p.desc)
    assert out == expect


def test_gnu_cases_match_in_tiny_steps_and_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sort case against GNU with 7-item steps and a memory bound of a few lines, so
    the chunk sorts, the merge levels and the external merge of temporary runs all take part."""
    monkeypatch.setattr(text_sort_steps, "FAN_IN", 3)
    monkeypatch.setattr(text_sort, "Steps", lambda: FixedSteps(7))
    monkeypatch.setattr(text_sort, "MEMORY_BOUND", 400)
    cf = load(CASES / "text_sort.txt")
    diffs = differences(cf, standard_registry())
    assert not diffs, f"{len(diffs)} of {len(cf.cases)} cases differ:\n" + "\n".join(diffs)
