"""RetryRelay's batch handling, with stand-ins for the aiokafka consumer and producer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from streamapp.resilience.relay import RetryRelay

A = TopicPartition("t.retry.1", 0)
B = TopicPartition("t.retry.1", 1)


@dataclass
class Record:
    offset: int
    due_ms: int
    key: bytes = b"k"
    value: bytes = b"v"

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        # "o" lets the stand-in producer tell the records apart.
        return [("retry-after", str(self.due_ms).encode()), ("o", str(self.offset).encode())]


@dataclass
class Consumer:
    batch: dict[TopicPartition, list[Record]]
    seeks: dict[TopicPartition, int] = field(default_factory=dict)
    paused: set[TopicPartition] = field(default_factory=set)
    committed: dict[TopicPartition, int] = field(default_factory=dict)

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        return self.batch

    def assignment(self) -> set[TopicPartition]:
        return {A, B}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(tp)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.committed.update({tp: meta.offset for tp, meta in offsets.items()})


@dataclass
class Producer:
    fail_offsets: set[int] = field(default_factory=set)
    sent: list[tuple[str, int, bytes]] = field(default_factory=list)

    async def send(self, topic: str, value: bytes, key: bytes, partition: int, headers: Any) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        offset = int(dict(headers)["o"])
        if offset in self.fail_offsets:
            future.set_exception(RuntimeError("broker unavailable"))
        else:
            self.sent.append((topic, partition, value))
            future.set_result(None)
        return future


def relay(consumer: Consumer, producer: Producer) -> RetryRelay:
    r = RetryRelay("unused:9092", "g", lambda: ["t.retry.1"], asyncio.Event())
    r._consumer, r._producer = consumer, producer  # type: ignore[assignment]
    return r


def records(*specs: tuple[int, int]) -> list[Record]:
    return [Record(offset, due) for offset, due in specs]


def test_due_records_move_to_the_due_topic_and_a_not_due_partition_pauses() -> None:
    now = int(time.time() * 1000)
    consumer = Consumer(
        {A: records((5, now - 10), (6, now + 60_000), (7, now)), B: records((0, 0))}
    )
    producer = Producer()

    async def go() -> None:
        await relay(consumer, producer).relay_once()

    asyncio.run(go())
    assert producer.sent == [("t.retry.due", 0, b"v"), ("t.retry.due", 1, b"v")]
    assert consumer.committed == {A: 6, B: 1}  # offset 6 waits: committed up to it
    assert consumer.seeks == {A: 6} and consumer.paused == {A}  # fetched again when due


def test_a_failed_send_puts_every_polled_partition_back() -> None:
    consumer = Consumer({A: records((5, 0), (6, 0)), B: records((3, 0))})
    producer = Producer(fail_offsets={6})

    async def go() -> None:
        await relay(consumer, producer).relay_once()

    with pytest.raises(RuntimeError):
        asyncio.run(go())
    assert consumer.committed == {}  # nothing committed past an unsent record
    assert consumer.seeks == {A: 5, B: 3}  # the whole batch is fetched again
