"""flock(2): advisory whole-file locks owned by open file descriptions.

Locks are keyed by the file's global inode number (Linux keys them by inode; the
seed used the path string, which breaks with hard links and renames).  The owner
is the open file description id, so fds sharing a description through dup or
spawn share the lock, and the last close of the description releases it.
Waiters are served in FIFO order; conversion (SH <-> EX) by the holder is allowed.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import trio

from .errors import KernelError

LOCK_SH = 1
LOCK_EX = 2
LOCK_NB = 4
LOCK_UN = 8

log = logging.getLogger("vfsfuse.kernel.flock")


@dataclass(slots=True)
class _FileLocks:
    holders: dict[int, int] = field(default_factory=dict)   # owner -> LOCK_SH | LOCK_EX
    queue: deque = field(default_factory=deque)              # (owner, mode, trio.Event)


class FlockTable:
    """All flock state of one kernel."""

    def __init__(self) -> None:
        self._files: dict[int, _FileLocks] = {}
        self._by_owner: dict[int, set[int]] = {}

    def _conflicts(self, fl: _FileLocks, owner: int, mode: int) -> bool:
        for other, held in fl.holders.items():
            if other != owner and (mode == LOCK_EX or held == LOCK_EX):
                return True
        return False

    def try_lock(self, key: int, owner: int, op: int, fair: bool = True) -> bool:
        """Apply *op* without waiting; False if it conflicts (the caller decides EAGAIN or wait).

        With *fair*, a new request also yields to queued conflicting waiters (FIFO)."""
        mode = op & ~LOCK_NB
        if mode == LOCK_UN:
            self.unlock(key, owner)
            return True
        if mode not in (LOCK_SH, LOCK_EX):
            raise KernelError("EINVAL", f"invalid flock operation {op}")
        fl = self._files.setdefault(key, _FileLocks())
        # FIFO fairness: a new request also waits behind queued conflicting waiters.
        queued = fair and any(o != owner and (mode == LOCK_EX or m == LOCK_EX) for o, m, _ in fl.queue)
        if self._conflicts(fl, owner, mode) or (fair and queued and owner not in fl.holders):
            if not fl.holders and not fl.queue:
                self._files.pop(key, None)
            return False
        if fl.holders.get(owner) == LOCK_EX and mode == LOCK_SH:
            fl.holders[owner] = LOCK_SH
            self._wake(key, fl)  # a downgrade may let shared waiters in
        fl.holders[owner] = mode
        self._by_owner.setdefault(owner, set()).add(key)
        return True

    async def lock(self, key: int, owner: int, op: int, wait=None) -> None:
        """Blocking flock; *wait(event)* is the caller's interruptible waiter (EINTR on signals)."""
        fair = True
        while not self.try_lock(key, owner, op, fair):
            fair = False
            if op & LOCK_NB:
                raise KernelError("EAGAIN", "resource temporarily unavailable")
            fl = self._files.setdefault(key, _FileLocks())
            ev = trio.Event()
            entry = (owner, op & ~LOCK_NB, ev)
            fl.queue.append(entry)
            try:
                if wait is None:
                    await ev.wait()
                else:
                    await wait(ev)
            except BaseException:
                self._leave_queue(key, fl, entry)
                if ev.is_set():
                    self._wake(key, fl)  # pass the wake-up on instead of losing it
                raise
            self._leave_queue(key, fl, entry)

    def _leave_queue(self, key: int, fl: _FileLocks, entry: tuple) -> None:
        try:
            fl.queue.remove(entry)
        except ValueError:
            pass
        if not fl.holders and not fl.queue:
            self._files.pop(key, None)

    def unlock(self, key: int, owner: int) -> None:
        fl = self._files.get(key)
        if fl is None or owner not in fl.holders:
            return
        del fl.holders[owner]
        keys = self._by_owner.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_owner[owner]
        self._wake(key, fl)

    def _wake(self, key: int, fl: _FileLocks) -> None:
        if fl.queue:
            # wake the head; if it is shared, also the shared run behind it
            first = fl.queue[0]
            first[2].set()
            if first[1] == LOCK_SH:
                for _owner, m, ev in fl.queue:
                    if m != LOCK_SH:
                        break
                    ev.set()
        elif not fl.holders:
            self._files.pop(key, None)

    def release_owner(self, owner: int) -> None:
        """Drop every lock held by an open file description (its last close)."""
        for key in list(self._by_owner.get(owner, ())):
            self.unlock(key, owner)

    def holds(self, owner: int) -> bool:
        return bool(self._by_owner.get(owner))

    def mode(self, key: int, owner: int) -> int | None:
        fl = self._files.get(key)
        return None if fl is None else fl.holders.get(owner)
