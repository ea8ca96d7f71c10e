"""Plain aiokafka clients for tests: send records, read whole topics (from outside)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamapp.kafka.topics import topic_partitions
from streamapp.messages import Command

Record = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def send_records(bootstrap: str, topic: str, records: Iterable[Record], **producer: Any) -> None:
    """Produce (key, value[, headers]) records in order and wait for every ack."""

    async def go() -> None:
        client = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **producer)
        await client.start()
        try:
            futures = [
                await client.send(topic, r[1], key=r[0], headers=r[2] if len(r) > 2 else None)
                for r in records
            ]
            await asyncio.gather(*futures)
        finally:
            await client.stop()

    asyncio.run(go())


def send_commands(bootstrap: str, topic: str, commands: Iterable[Command]) -> None:
    send_records(bootstrap, topic, ((c.aggregate_id.encode(), c.to_json()) for c in commands))


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from the beginning to its current end."""

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            records: list[Any] = []
            deadline = time.monotonic() + 60

            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in tps])

            while await behind():
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not read {topic} to its end")
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(go())


def replies_by_command(bootstrap: str, topic: str) -> dict[str, list[dict[str, Any]]]:
    """Every reply on the replies topic, grouped by command id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in read_topic(bootstrap, topic):
        reply = orjson.loads(record.value)
        found.setdefault(reply["commandId"], []).append(reply)
    return found


def events_on(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(record.value) for record in read_topic(bootstrap, topic)]
