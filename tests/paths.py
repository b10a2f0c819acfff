"""Where the checkout is, for tests that run the project's scripts (one definition, not one per test)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
