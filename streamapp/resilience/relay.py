"""The retry relay: moves a record from ``<topic>.retry.<n>`` to ``<topic>.retry.due``
once its ``retry-after`` has passed.

A plain aiokafka consumer (its own group, ``<app id>-retry-relay``; every worker of the
service runs one and they share the partitions) with manual commits. A partition whose
next record is not due is sought back to it and *paused* until then; every other
partition and retry topic keeps flowing, and nothing sleeps. A record is committed only
after its copy on the due topic is acknowledged, so a crash re-sends it at worst (the
handlers deduplicate) and never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from streamapp.resilience.headers import retry_after
from streamapp.topics import due_topic, main_topic

log = logging.getLogger(__name__)

POLL_MS = 200


class RetryRelay(Service):
    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Callable[[], Sequence[str]],
        topics_exist: asyncio.Event,
        *,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        **kwargs: Any,
    ) -> None:
        """The group timing is the app's (its dead worker's retry partitions move as soon
        as its main ones); the defaults are aiokafka's."""
        super().__init__(**kwargs)
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self.topics_exist = topics_exist
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._timers: dict[TopicPartition, asyncio.TimerHandle] = {}

    async def _connect(self) -> bool:
        """Subscribe once the app has created its topics; False if it has no retries."""
        await self.topics_exist.wait()
        topics = list(self.topics())
        if not topics:
            return False
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            # A resumed partition is fetched by the next fetch request: keep the long poll
            # short so a due record does not wait for the current one (default 500 ms).
            fetch_max_wait_ms=50,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
        )
        await self._consumer.start()
        return True

    async def on_stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @Service.task
    async def _relay(self) -> None:
        if not await self._connect():
            return
        while not self.should_stop:
            try:
                await self.relay_once()
            except KafkaError as exc:  # a rebalance or a broker hiccup: poll again
                log.warning("retry relay: %r", exc)
                await asyncio.sleep(0.5)

    async def relay_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        batches = await consumer.getmany(timeout_ms=POLL_MS)
        try:
            await self._forward(batches)
        except BaseException:
            # getmany moved the position past the whole batch: put every partition back
            # to the batch's first record, so nothing unsent is skipped (records sent
            # already are sent again; the handlers deduplicate).
            for tp, records in batches.items():
                if records and tp in consumer.assignment():
                    consumer.seek(tp, records[0].offset)
            raise

    async def _forward(self, batches: dict[TopicPartition, list[Any]]) -> None:
        consumer, producer = self._consumer, self._producer
        assert consumer is not None and producer is not None
        sent, done = [], {}
        now = int(time.time() * 1000)
        for tp, records in batches.items():
            for record in records:
                due = retry_after(list(record.headers or ()))
                if due is not None and due > now:
                    consumer.seek(tp, record.offset)  # fetch it again when resumed
                    self._pause_until(tp, due - now)
                    break
                sent.append(
                    await producer.send(
                        due_topic(main_topic(tp.topic)),
                        value=record.value,
                        key=record.key,
                        partition=tp.partition,
                        headers=list(record.headers or ()),
                    )
                )
                done[tp] = OffsetAndMetadata(record.offset + 1, "")
        if sent:
            await asyncio.gather(*sent)
        if done:
            await consumer.commit(done)

    def _pause_until(self, tp: TopicPartition, delay_ms: int) -> None:
        assert self._consumer is not None
        self._consumer.pause(tp)
        old = self._timers.pop(tp, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[tp] = loop.call_later(delay_ms / 1000.0, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        self._timers.pop(tp, None)
        consumer = self._consumer
        if consumer is not None and tp in consumer.assignment():
            consumer.resume(tp)
