"""Plain aiokafka clients for tests: send records, read whole topics (from outside)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamapp.messages import Command
from streamapp.tools.records import read_all

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
    return asyncio.run(read_all(bootstrap, topic))


def replies_by_command(bootstrap: str, topic: str) -> dict[str, list[dict[str, Any]]]:
    """Every reply on the replies topic, grouped by command id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in read_topic(bootstrap, topic):
        reply = orjson.loads(record.value)
        found.setdefault(reply["commandId"], []).append(reply)
    return found


def events_on(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(record.value) for record in read_topic(bootstrap, topic)]
