"""A fix for faust-streaming waiting forever at stop when two agents read one topic.

Before a rebalance hands partitions over, and when a worker stops, faust clears every
stream's queue and then waits (``Consumer.wait_empty``) until each message a stream has
*started* is acknowledged, so that no record is half processed while another worker
takes its partition. A message is tracked as started when the first stream dequeues
it, but it is delivered to every channel subscribed to its topic, each holding one
reference count. When two agents read one topic — the saga orchestrator and the tracer
both read ``orders.events`` and the participants' events until the tracer moved into the
orchestrator; none does now, the fix stays for the next one — the faster one dequeues and
acknowledges its copy, the slower one's copy is cleared from its queue, never
acknowledged, and ``wait_empty`` waits for it for ever (seen: SIGTERM of an orders worker
with a backlog never returned; ``tests/integration/test_stop.py``).

The fix waits for what the check is for — records a stream is processing right now
(its ``current_event``, or a batch an agent declared with ``StreamApp.in_flight``) — and
not for copies nobody will process. Offsets are still
committed only up to the first unacknowledged record, so the cleared copy is processed
again after the hand-over (at least once), as faust intends for cleared queues.

It looks again after each commit: an ack wakes ``_wait_for_ack`` only once that wait
has begun, so a record acknowledged during the commit (the usual case: the handler was
finishing its sends) left the wait to run its whole second — seen as a 1.0 s pause
before LeaveGroup in most SIGTERM runs of bench/failover.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)

_PATCHED = "_streamapp_waits_for_in_flight_only"
ACK_WAIT_S = 1.0


def in_flight(app: Any) -> list[Any]:
    """Messages an agent's stream is processing now and has not acknowledged."""
    found = []
    for agent in list(app.agents.values()):
        for actor in list(getattr(agent, "_actors", ())):
            stream = getattr(actor, "stream", None)
            event = getattr(stream, "current_event", None)
            if event is not None and not event.message.acked:
                found.append(event.message)
    # batches agents process (StreamApp.in_flight): their records are no stream's current
    found.extend(m for m in getattr(app, "messages_in_flight", ()) if not m.acked)
    return found


async def wait_for_in_flight(consumer: Any) -> None:
    """faust's wait_empty, waiting only for records being processed."""
    waits = 0
    while not consumer.should_stop:
        busy = in_flight(consumer.app)
        if not busy:
            break
        waits += 1
        if not waits % 10:
            log.warning("waiting for %d record(s) in flight: %r", len(busy), busy[:5])
        await consumer.commit()
        if not in_flight(consumer.app):  # acknowledged during the commit: no ack to wait for
            break
        await consumer._wait_for_ack(timeout=ACK_WAIT_S)
    await consumer.commit_and_end_transactions()


def apply() -> None:
    """Patch faust's consumer once per process (idempotent)."""
    if getattr(Consumer.wait_empty, _PATCHED, False):
        return
    for name in ("commit", "_wait_for_ack", "commit_and_end_transactions"):
        if not hasattr(Consumer, name):  # faust changed: re-check the bug before porting
            raise RuntimeError(f"faust Consumer has no {name}: review {__name__}")

    async def wait_empty(self: Any) -> None:
        await wait_for_in_flight(self)

    setattr(wait_empty, _PATCHED, True)
    Consumer.wait_empty = wait_empty  # type: ignore[method-assign]
