"""Housekeeping ticks: run state expiry inside an agent, once per partition.

faust writes a table deletion's tombstone to the changelog partition of the record being
processed, so expired keys of partition p can only be removed while the agent processes
a record of partition p. A timer on every worker sends a tick record to each partition
of the agent's main topic that the worker owns; the agent recognises it and removes that
partition's due keys (eventstore.retention).

The ticks go to the topic's ``.retry.due`` (records due for processing now), not to the
main topic: ``orders.commands`` is a contract topic that clients read, and a retry of a
failed tick comes back through ``.retry.due`` anyway. The consumer subscribes the main
and due topics together, so partition p of both belongs to the same worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamapp.kafka.source_key import not_a_routing_key
from streamapp.resilience.consumer import Delivery
from streamapp.resilience.headers import header
from streamapp.topics import due_topic, is_due

if TYPE_CHECKING:
    from streamapp.app import StreamApp

log = logging.getLogger(__name__)

#: Marks a tick record (a header: the value stays a plain JSON object).
TICK_HEADER = "streamapp-housekeeping"
TICK_KEY = not_a_routing_key(b"housekeeping")  # sent to each partition
TICK_VALUE = b'{"housekeeping": "expire"}'

#: Deletions per tick; a tick that hits it sends the next one at once.
TICK_LIMIT = 1000


def tick_interval_s(retention_ms: int) -> float:
    """A tenth of the window, within 0.5 s .. 60 s: a record is removed at most this
    long after it expired, and an idle partition costs one small record per interval."""
    return min(60.0, max(0.5, retention_ms / 10_000))


def is_tick(delivery: Delivery) -> bool:
    return is_due(delivery.topic) and header(delivery.headers, TICK_HEADER) is not None


#: expire(partition, limit) -> keys removed (called inside the agent).
Expire = Callable[[int, int], int]


class Housekeeping:
    """The ticks of one agent: a timer sends them, the agent hands them to `handle`."""

    def __init__(self, app: StreamApp, main_topic: str, expire: Expire) -> None:
        self.app = app
        self.main_topic = main_topic
        self.expire = expire
        self.due = app.topic(
            due_topic(main_topic),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        async def tick() -> None:
            await self.tick()

        interval = tick_interval_s(app.settings.state_retention_ms)
        app.timer(interval, name=f"{main_topic}-housekeeping")(tick)

    is_tick = staticmethod(is_tick)

    def owned(self) -> list[int]:
        """Partitions of the main topic this worker actively owns."""
        return self.app.owned_partitions(self.main_topic)

    async def tick(self) -> None:
        if self.app.rebalancing:
            return
        for partition in self.owned():
            await self.send(partition)

    async def send(self, partition: int) -> None:
        await self.due.send(
            key=TICK_KEY,
            value=TICK_VALUE,
            partition=partition,
            headers=[(TICK_HEADER, b"expire")],
        )

    async def handle(self, delivery: Delivery) -> int:
        """Expire the tick's partition; more than a tick's worth due: tick it again."""
        partition = delivery.event.message.partition
        started = time.perf_counter()
        removed = self.expire(partition, TICK_LIMIT)
        if removed:
            log.debug(
                "%s[%d]: expired %d record(s) in %.3f s",
                self.main_topic,
                partition,
                removed,
                time.perf_counter() - started,
            )
        if removed >= TICK_LIMIT:
            await self.send(partition)
        return removed
