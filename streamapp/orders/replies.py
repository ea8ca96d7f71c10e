"""Waiting for the reply to a command sent from an HTTP request.

Every worker runs one plain consumer (no group) over all partitions of orders.replies,
starting at the end: the reply to a command may be written by whichever worker owns the
order, and any worker may have taken the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from streamapp.kafka.topics import topic_partitions
from streamapp.messages import Reply

log = logging.getLogger(__name__)


class ReplyWaiter(Service):
    """Resolves a future per pending command id when its reply arrives."""

    def __init__(self, bootstrap: str, topic: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.topic = topic
        # Waiters per command id, oldest first: two requests with one commandId each get
        # a reply (the first the outcome, the second its duplicate), in arrival order.
        self._pending: dict[str, deque[asyncio.Future[Reply]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self.positioned = asyncio.Event()

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        partitions = await topic_partitions(self.bootstrap, self.topic)
        consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        await consumer.seek_to_end()
        for tp in consumer.assignment():  # resolve the lazy seek now, before any request
            await consumer.position(tp)
        self._consumer = consumer
        self.positioned.set()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        for waiters in self._pending.values():
            for future in waiters:
                future.cancel()

    @Service.task
    async def _consume(self) -> None:
        await self.positioned.wait()
        assert self._consumer is not None
        while not self.should_stop:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    waiters = self._pending.get((record.key or b"").decode(errors="replace"))
                    while waiters and waiters[0].done():  # timed out meanwhile
                        waiters.popleft()
                    if not waiters:
                        continue
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        reply = Reply.from_dict(orjson.loads(record.value))
                        waiters.popleft().set_result(reply)

    async def request(
        self, command_id: str, send: Callable[[], Awaitable[Any]], wait_s: float
    ) -> Reply | None:
        """Send (via the callback) and wait for the reply; None after `wait_s` seconds."""
        if not self.positioned.is_set():
            raise RuntimeError("reply consumer is not positioned yet")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiters = self._pending.setdefault(command_id, deque())
        waiters.append(future)
        try:
            await send()
            return await asyncio.wait_for(future, wait_s)
        except TimeoutError:
            return None
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._pending.pop(command_id, None)
