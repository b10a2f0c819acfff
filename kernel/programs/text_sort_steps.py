"""sort's work in bounded steps, so a big sort never holds the event loop for long.

A kernel program runs on the event loop that also serves the FUSE mount, and one ``list.sort``
of a few million lines is one C call of a second or more (the GIL held throughout: a worker
thread does not help).  So sort sorts chunks of a size that takes about ``STEP_S`` each, then
merges the sorted chunks (and the runs of an external sort, read back in blocks) in steps of
the same size: each step sorts, in C, the items of every run that come before a pivot, then
emits the items equal to the pivot run by run without comparing them.  Between steps the
program reaches a preempt point.  The result is what one stable ``list.sort`` would give.

Items are the lines themselves when the line is the key, else ``(key, line)`` pairs sorted by
the key alone (``itemgetter(0)``), so each key is computed once however many merges follow.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

#: Wall time one step of sorting or merging should take (the loop's wait for the rest).
STEP_S = 0.001
#: The most items one step takes, however fast they sort.
MAX_ITEMS = 1 << 15
#: Runs merged at once while sorting in memory (more means fewer passes but shorter shares).
FAN_IN = 16

_first = itemgetter(0)
_second = itemgetter(1)
_last = itemgetter(-1)


class Steps:
    """How many items one step may take to last about ``STEP_S``, learnt from the steps so far
    (a byte comparison and a Python cmp differ a hundredfold)."""

    def __init__(self, items: int = 4096) -> None:
        self.items = items
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def done(self, n: int) -> None:
        """*n* items were worked on since ``start``: size the next steps from that rate."""
        dt = time.perf_counter() - self._t0
        if n < 64 or dt <= 0:
            return
        want = n * STEP_S / dt
        # halfway to the new estimate: one preempted (long) step does not swing it.  The cap
        # holds for sorted input, which sorts in linear time but must still be written out
        self.items = int(min(max((self.items + want) / 2, 256), MAX_ITEMS))


class Plan:
    """What the items are and how they order: *key* makes a line's key (None: the line is
    its key), *desc* sorts in reverse (stable, as ``list.sort(reverse=True)``).  With
    *key_ends_with_line* the key is a tuple whose last entry is the line (GNU's last-resort
    comparison), and is the item itself: one tuple per line, not two (tuples are what the
    cyclic garbage collector walks, and its pauses hold the loop as long sorts do)."""

    def __init__(
        self,
        key: Callable[[bytes], Any] | None,
        desc: bool,
        *,
        key_ends_with_line: bool = False,
        batch: Callable[[list[bytes]], list[Any]] | None = None,
    ) -> None:
        self.key = key
        self.batch = batch  # makes the items of many lines at once, as decorate would
        self.desc = desc
        self.paired = key is not None and not key_ends_with_line
        self.sort_key: Callable[[Any], Any] | None = _first if self.paired else None
        self.item_key: Callable[[Any], Any] = _first if self.paired else _identity
        self._line: Callable[[Any], bytes] | None = _second if self.paired else _last if key is not None else None

    def decorate(self, lines: list[bytes]) -> list[Any]:
        if self.key is None:
            return lines
        if self.batch is not None:
            return self.batch(lines)
        if self.paired:
            return list(zip(map(self.key, lines), lines))
        return list(map(self.key, lines))

    def lines(self, items: list[Any]) -> list[bytes]:
        if self._line is None:
            return items
        return list(map(self._line, items))

    def sort(self, items: list[Any]) -> None:
        items.sort(key=self.sort_key, reverse=self.desc)

    def before(self, a: Any, b: Any) -> bool:
        """Key *a* sorts strictly before key *b*."""
        return b < a if self.desc else a < b

    def first_not_before(self, items: list[Any], lo: int, pivot: Any) -> int:
        """The first index from *lo* whose key does not sort before *pivot* (items sorted)."""
        if not self.desc:
            return bisect.bisect_left(items, pivot, lo, key=self.sort_key)
        key, hi = self.item_key, len(items)
        while lo < hi:
            mid = (lo + hi) // 2
            if pivot < key(items[mid]):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def first_after(self, items: list[Any], lo: int, pivot: Any) -> int:
        """The first index from *lo* whose key sorts after *pivot*."""
        if not self.desc:
            return bisect.bisect_right(items, pivot, lo, key=self.sort_key)
        key, hi = self.item_key, len(items)
        while lo < hi:
            mid = (lo + hi) // 2
            if key(items[mid]) < pivot:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _identity(x: Any) -> Any:
    return x


class KMerge:
    """A k-way merge of sorted runs in bounded steps; equal keys come out run by run, earlier
    runs first (so merging the chunks of a stable sort stays stable).

    Runs given as complete lists need nothing else.  With ``open_ended`` a run's list is only
    what has been read of it so far: ``step`` returns None when run ``want`` needs more, and
    the caller passes it to ``more`` (an empty list: the run has ended)."""

    def __init__(self, runs: list[list[Any]], plan: Plan, *, open_ended: bool = False) -> None:
        self.bufs = runs
        self.pos = [0] * len(runs)
        self.ended = [not open_ended] * len(runs)
        self.plan = plan
        self.want: int | None = None
        self.finished = False
        self._ties: tuple[int, Any] | None = None  # (run, key) while emitting items equal to a pivot

    def more(self, r: int, items: list[Any]) -> None:
        """The next items of run *r* (none: it has ended)."""
        if items:
            buf = self.bufs[r]
            p = self.pos[r]
            self.bufs[r] = buf[p:] + items if p < len(buf) else items
            self.pos[r] = 0
        else:
            self.ended[r] = True
        self.want = None

    def step(self, budget: int) -> list[Any] | None:
        """The next piece of the output (about *budget* items at most); None if ``want`` must
        be given ``more`` first.  ``finished`` is set once every run is used up."""
        if self.want is not None:
            return None
        bufs, pos, ended, plan = self.bufs, self.pos, self.ended, self.plan
        for r, p in enumerate(pos):
            if p >= 4 * budget and ended[r]:
                del bufs[r][:p]  # free what is merged a little at a time, not all at the end
                pos[r] = 0
        if self._ties is not None:
            return self._tie_step(budget, [])
        active = []
        for r in range(len(bufs)):
            if pos[r] < len(bufs[r]):
                active.append(r)
            elif not ended[r]:
                self.want = r
                return None
        if not active:
            self.finished = True
            return []
        if len(active) == 1 and ended[active[0]]:
            r = active[0]
            p = pos[r]
            rest = bufs[r][p : p + budget]
            pos[r] = p + len(rest)
            return rest
        # the pivot: the earliest of the items *share* places into each run
        share = max(1, budget // len(active))
        key = plan.item_key
        pivot: Any = None
        for i, r in enumerate(active):
            k = key(bufs[r][min(pos[r] + share, len(bufs[r])) - 1])
            if i == 0 or plan.before(k, pivot):
                pivot = k
        # every run's items before the pivot (each fewer than *share*): one C sort of them
        piece: list[Any] = []
        parts = 0
        for r in active:
            p = pos[r]
            j = plan.first_not_before(bufs[r], p, pivot)
            if j > p:
                piece.extend(bufs[r][p:j])
                pos[r] = j
                parts += 1
        if parts > 1:
            plan.sort(piece)
        self._ties = (0, pivot)
        return self._tie_step(budget, piece)

    def _tie_step(self, budget: int, out: list[Any]) -> list[Any] | None:
        """The items equal to the pivot, run after run (no comparisons: they are in order)."""
        assert self._ties is not None
        r, pivot = self._ties
        bufs, pos, ended, plan = self.bufs, self.pos, self.ended, self.plan
        while r < len(bufs):
            buf, p = bufs[r], pos[r]
            if p == len(buf):
                if ended[r]:
                    r += 1
                    continue
                self._ties, self.want = (r, pivot), r  # its equal items may go on past the buffer
                return out or None
            j = min(plan.first_after(buf, p, pivot), p + max(budget - len(out), 1))
            out.extend(buf[p:j])
            pos[r] = j
            if j < len(buf) and plan.before(pivot, plan.item_key(buf[j])):
                r += 1  # this run's equal items are done
            elif j < len(buf) or len(out) >= budget:
                self._ties = (r, pivot)  # the step is full: go on next time
                return out
        self._ties = None
        return out


def sorted_pieces(items: list[Any], plan: Plan, steps: Steps) -> Iterator[list[Any] | None]:
    """Sort *items* in bounded steps: yields the sorted output in pieces, or None after a step
    that produced nothing to output yet (a preempt point is due after each)."""
    runs: list[list[Any]] = []
    n = len(items)
    i = 0
    while i < n:
        size = steps.items
        steps.start()
        chunk = items[i : i + size]
        plan.sort(chunk)
        steps.done(len(chunk))
        runs.append(chunk)
        i += size
        yield None
    items.clear()  # the caller's list: its lines live on in the runs
    while len(runs) > FAN_IN:
        merged: list[list[Any]] = []
        for g in range(0, len(runs), FAN_IN):
            group = runs[g : g + FAN_IN]
            if len(group) == 1:
                merged.append(group[0])
                continue
            out: list[Any] = []
            for piece in _merge(group, plan, steps):
                out.extend(piece)
                yield None
            merged.append(out)
            for j in range(g, min(g + FAN_IN, len(runs))):
                runs[j] = []  # free the merged runs as we go
        runs = merged
    yield from _merge(runs, plan, steps)


def _merge(runs: list[list[Any]], plan: Plan, steps: Steps) -> Iterator[list[Any]]:
    m = KMerge(runs, plan)
    while True:
        steps.start()
        piece = m.step(steps.items)
        if m.finished:
            return
        assert piece is not None  # complete runs never want more
        steps.done(len(piece))
        yield piece
