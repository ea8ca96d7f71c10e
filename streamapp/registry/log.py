"""The registry's log: every orders worker follows ``_schemas`` and folds it.

A plain aiokafka consumer without a group reads the one partition from its start, so
each worker holds the whole state (a global view) and rebuilds it from Kafka after
losing its disk. A request is produced with acks=all and answered once this worker's
fold has passed the request's offset: read-your-writes, whichever worker folded first.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from streamapp.messages import new_id
from streamapp.registry.state import Checker, Outcome, RegistryState, request
from streamapp.tracing.context import outgoing

log = logging.getLogger(__name__)

#: The broker's own limit for one record is far above any schema we accept.
MAX_SCHEMA_BYTES = 256 * 1024
#: How long a request may wait for the fold to reach it before the client gets a 503.
SEND_TIMEOUT_S = 10.0


class RegistryLog(Service):
    """Follows ``_schemas`` into a :class:`RegistryState`; sends requests to it."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        check: Checker,
        topics_exist: asyncio.Event,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.topic = topic
        self.folded = RegistryState(check)
        self.topics_exist = topics_exist
        self.caught_up = asyncio.Event()  # the log read to its end as of start-up
        self._advanced = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @Service.task
    async def _follow(self) -> None:
        await self.topics_exist.wait()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await self._consumer.start()
        tp = TopicPartition(self.topic, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_beginning(tp)
        end = (await self._consumer.end_offsets([tp]))[tp]
        if end == 0:
            self.caught_up.set()
        while not self.should_stop:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:  # a broker hiccup: poll again
                log.warning("schema log: %r", exc)
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for record in records:
                    self._apply(record)
            if batches:
                async with self._advanced:
                    self._advanced.notify_all()
            if not self.caught_up.is_set() and self.folded.position >= end - 1:
                self.caught_up.set()

    def _apply(self, record: Any) -> None:
        try:
            key = orjson.loads(record.key or b"{}")
            value = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            key, value = {"keytype": "UNREADABLE"}, None
        if not isinstance(key, dict) or (value is not None and not isinstance(value, dict)):
            key, value = {"keytype": "UNREADABLE"}, None
        self.folded.apply(record.offset, key, value)

    async def send(self, kind: str, **fields: Any) -> Outcome:
        """Append a request and wait until this worker's fold has decided it."""
        producer = self._producer
        if producer is None or not self.caught_up.is_set():
            raise RegistryUnavailable("the schema log is still being read")
        request_id = new_id()
        key, value = request(kind, request_id, **fields)
        if len(value) > MAX_SCHEMA_BYTES:
            raise ValueError(f"schema larger than {MAX_SCHEMA_BYTES} bytes")
        meta = await producer.send_and_wait(
            self.topic, value, key=key, partition=0, headers=outgoing()
        )
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                async with self._advanced:
                    await self._advanced.wait_for(lambda: self.folded.position >= meta.offset)
        except TimeoutError:
            raise RegistryUnavailable("the schema log did not catch up in time") from None
        return self.folded.outcomes[request_id]


class RegistryUnavailable(Exception):
    """The registry cannot answer yet (still reading its log, or the broker is slow)."""
