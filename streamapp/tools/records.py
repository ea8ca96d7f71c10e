"""Reading a whole topic from outside any consumer group (operator tools, tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamapp.kafka.topics import topic_partitions

READ_TIMEOUT_S = 60.0


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from its beginning to its end as of now (ConsumerRecords)."""
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

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        async with asyncio.timeout(READ_TIMEOUT_S):
            while await behind():
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(
                        r for r in batch if r.offset < ends[TopicPartition(topic, r.partition)]
                    )
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
