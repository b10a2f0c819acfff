"""Every case file in tests/programs/cases/ against the host's GNU tools (see difftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.userland import standard_registry
from tests.programs.difftest import case_files, differences, load

CASES = Path(__file__).with_name("cases")


@pytest.mark.parametrize("path", case_files(CASES), ids=lambda p: p.stem)
def test_case_file_matches_gnu(path: Path) -> None:
    cf = load(path)
    assert cf.cases, f"{path} has no cases"
    diffs = differences(cf, standard_registry())
    assert not diffs, f"{len(diffs)} of {len(cf.cases)} cases differ:\n" + "\n".join(diffs)
