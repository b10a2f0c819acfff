"""grep searches each read in pieces of whole lines with a preempt point between (so a 64 KiB
read of short lines is not one long stretch of the loop): the GNU cases still match when every
piece is a line or two, and a big input gives the same lines as one piece would."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.programs import text_grep
from kernel.userland import standard_registry
from tests.programs.difftest import differences, load

CASES = Path(__file__).with_name("cases")


@pytest.mark.parametrize("piece", [1, 7])
def test_gnu_cases_match_in_tiny_pieces(monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    monkeypatch.setattr(text_grep, "_PIECE", piece)
    cf = load(CASES / "text_grep.txt")
    diffs = differences(cf, standard_registry())
    assert not diffs, f"{len(diffs)} of {len(cf.cases)} cases differ:\n" + "\n".join(diffs)


def test_pieces_cut_after_line_ends() -> None:
    buf = b"".join(b"line %d\n" % i for i in range(5000))
    pieces = list(text_grep._pieces(buf, b"\n"))
    assert b"".join(p for p, _ in pieces) == buf
    assert all(p.endswith(b"\n") for p, _ in pieces)
    assert [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
    assert len(pieces) > 1 and all(len(p) <= text_grep._PIECE + 16 for p, _ in pieces)
    long_line = b"x" * 40000 + b"\n" + b"y\n"
    assert [p for p, _ in text_grep._pieces(long_line, b"\n")] == [b"x" * 40000 + b"\n", b"y\n"]
