"""Signal dispositions and masks: signal, sigaction, sigprocmask, sigpending."""

from __future__ import annotations

from typing import Iterable

from kernel import signals as S
from kernel.syscalls._base import CtxBase


class SignalCalls(CtxBase):
    """signal system calls (mixed into ``Ctx``)."""

    # ---------------------------------------------------------------- signals
    async def signal(self, sig: int, handler: S.Handler, flags: int = S.SA_RESTART) -> S.Handler:
        """Install *handler* (callable ``handler(sig)``, sync or async, or SIG_DFL/SIG_IGN)."""
        old = self._table.sigaction(self.proc, sig, S.SigAction(handler, frozenset(), flags))
        return old.handler

    async def sigaction(self, sig: int, action: S.SigAction | None = None) -> S.SigAction:
        return self._table.sigaction(self.proc, sig, action)

    async def sigprocmask(self, how: int, sigs: Iterable[int] | None = None) -> set[int]:
        old = self._table.sigprocmask(self.proc, how, set(sigs) if sigs is not None else None)
        await self._enter()  # newly unblocked pending signals are delivered now
        return old

    def sigpending(self) -> set[int]:
        return set(self.proc.sig.pending)
