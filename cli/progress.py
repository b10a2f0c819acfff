"""Progress bars for long CLI work (fsck, gc, verify, load).

Bars go to stderr and only when stderr is a terminal, so scripts, pipes and
``vfsfuse dump > file`` never see control characters.  The library code below
``cli/`` reports progress through a plain callback; this module turns that
callback into a ``click.progressbar``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import click

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

Callback = Callable[[str, int, int], None]
"""``callback(phase, done, total)``: *done* items of *total* finished in *phase*."""


@dataclass
class _BarState:
    phase: str | None = None
    bar: ProgressBar[int] | None = None
    done: int = 0


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(enabled: bool | None = None) -> Iterator[Callback]:
    """Yield a progress callback that drives one bar per phase on stderr.

    With *enabled* None the bar shows only when stderr is a terminal.
    """
    if enabled is None:
        enabled = stderr_is_tty()
    if not enabled:
        yield _noop
        return
    state = _BarState()

    def close() -> None:
        bar = state.bar
        if bar is not None:
            bar.render_finish()
            state.bar = None

    def callback(phase: str, done: int, total: int) -> None:
        if phase != state.phase:
            close()
            state.phase = phase
            state.done = 0
            new_bar = click.progressbar(length=max(total, 1), label=phase, file=sys.stderr,
                                        show_pos=True, width=30)
            new_bar.__enter__()
            state.bar = new_bar
        bar = state.bar
        step = done - int(state.done)
        if step > 0 and bar is not None:
            bar.update(step)
            state.done = done

    try:
        yield callback
    finally:
        close()


def _noop(phase: str, done: int, total: int) -> None:
    return None
