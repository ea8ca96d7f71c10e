"""One handler at a time per consumer, due retries first.

A :class:`~streamapp.resilience.consumer.ResilientConsumer` runs two agents: one on its
main topics, one on their ``<topic>.retry.due`` topics. Each has its own Faust stream
buffer, so a due record no longer queues behind the main topic's buffered backlog; this
gate then keeps the handlers one at a time (they read and write the same tables) and
lets due records in first: a waiting due record before the next main record, and the
due agent's buffered records one after another (up to ``burst`` in a row) before the
main agent gets its turn back. Faust's stream iterator yields to the loop before it
takes the next record, so a due agent done with one record keeps the gate *reserved*
for a moment (``hold_s``) while its buffer holds more; a reservation nobody takes
expires, so a stopped due agent never blocks the main one.

What it cannot do: a due record Faust has not yet put in the due agent's buffer waits
for that — e.g. when the main agent's buffer (``stream_buffer_maxsize``) is full, Faust
delivers fetched records one by one as it frees up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable

#: due records in a row before a waiting main record gets a turn
BURST = 64
#: how long a due agent's next record keeps the gate (the stream's yield in between)
HOLD_S = 0.02


class DueFirst:
    """A lock with two classes of waiter: urgent ones (due retries) go first.

    Not re-entrant: a handler must not ask for a turn inside its own turn."""

    def __init__(self, *, burst: int = BURST, hold_s: float = HOLD_S) -> None:
        self.burst = burst
        self.hold_s = hold_s
        #: whether the urgent side has records buffered (set by the due agent)
        self.urgent_pending: Callable[[], bool] = lambda: False
        self._held = False
        self._urgent_in_a_row = 0
        self._reserved: asyncio.TimerHandle | None = None
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @property
    def held(self) -> bool:
        return self._held

    @property
    def reserved(self) -> bool:
        return self._reserved is not None

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        """Hold the gate for one record."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release(urgent)

    def _blocked(self, urgent: bool) -> bool:
        if self._held:
            return True
        if urgent:  # only a full burst makes a due record wait for a main one
            return self._urgent_in_a_row >= self.burst and bool(self._waiting[False])
        urgent_may_go = self._urgent_in_a_row < self.burst
        return self.reserved or (urgent_may_go and bool(self._waiting[True]))

    async def _acquire(self, urgent: bool) -> None:
        queue = self._waiting[urgent]
        while self._blocked(urgent):
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue.append(woken)
            try:
                await woken
            except BaseException:
                queue.remove(woken)
                self._wake()  # whatever woke us (or would have): pass it on
                raise
            queue.remove(woken)
        self._held = True
        self._unreserve()
        self._urgent_in_a_row = self._urgent_in_a_row + 1 if urgent else 0

    def _release(self, urgent: bool) -> None:
        self._held = False
        if urgent and self._urgent_in_a_row < self.burst and self.urgent_pending():
            loop = asyncio.get_running_loop()
            self._reserved = loop.call_later(self.hold_s, self._expire)
        self._wake()

    def _expire(self) -> None:
        self._reserved = None
        self._wake()

    def _unreserve(self) -> None:
        if self._reserved is not None:
            self._reserved.cancel()
            self._reserved = None

    def _wake(self) -> None:
        """Wake the waiter whose turn it is now (it re-checks when it runs)."""
        for urgent in (True, False):
            if self._blocked(urgent):
                continue
            for waiter in self._waiting[urgent]:
                if not waiter.done():
                    waiter.set_result(None)
                    return
