"""One handler at a time per consumer, due retries first.

A :class:`~streamapp.resilience.consumer.ResilientConsumer` runs two agents: one on its
main topics, one on their ``<topic>.retry.due`` topics. Each has its own Faust stream
buffer, so a due record no longer queues behind the main topic's buffered backlog; this
gate then keeps the handlers one at a time (they read and write the same tables) and,
when both agents wait, lets the due record in first. A record whose ``retry-after`` has
passed is therefore handled after at most the main record being handled now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class DueFirst:
    """A lock with two classes of waiter: urgent ones (due retries) go first.

    Released synchronously, so an urgent holder that asks again at once (its next due
    record was buffered) keeps the gate before a woken plain waiter gets to run."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @property
    def held(self) -> bool:
        return self._held

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        """Hold the gate for one record. An urgent caller waits only for the holder; a
        plain one also for every urgent caller waiting."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._held = False
            self._wake()

    async def _acquire(self, urgent: bool) -> None:
        while self._held or (not urgent and self._waiting[True]):
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue = self._waiting[urgent]
            queue.append(woken)
            try:
                await woken
            except BaseException:
                if woken.done() and not woken.cancelled():
                    self._wake()  # woken but leaving: pass the turn on
                raise
            finally:
                queue.remove(woken)
        self._held = True

    def _wake(self) -> None:
        if self._held:
            return
        for urgent in (True, False):
            for waiter in self._waiting[urgent]:
                if not waiter.done():
                    waiter.set_result(None)
                    return
