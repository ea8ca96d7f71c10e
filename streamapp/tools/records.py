"""Reading topics from outside any consumer group (operator tools, tests): the one
group-less reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamapp.kafka.topics import topic_partitions

READ_TIMEOUT_S = 60.0


@contextlib.asynccontextmanager
async def reader(
    bootstrap: str, topic: str, since: Mapping[int, int] | None = None
) -> AsyncIterator[tuple[Any, list[Any]]]:
    """A consumer without a group (nothing committed) assigned every partition of
    `topic`, at the `since` offset of a partition, else at its beginning; with the
    partitions (TopicPartitions)."""
    tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
    # auto_offset_reset="earliest": assign() starts an automatic reset of every partition
    # (nothing is committed without a group); with "latest" its answer can come after
    # seek_to_beginning's and win, and the partition is then read from its end, i.e. not
    # at all. On one broker the two answers come in order; on a cluster, where partition
    # leaders are on different nodes, verify missed whole partitions.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        for tp in tps:
            if since is not None and tp.partition in since:
                consumer.seek(tp, since[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        yield consumer, tps
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`: read from there to see only what
    comes next."""
    async with reader(bootstrap, topic) as (consumer, tps):
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from its beginning to its end as of now (ConsumerRecords);
    TopicError if it does not exist."""
    partitions = len(await topic_partitions(bootstrap, topic))
    return (await read_topics(bootstrap, {topic: partitions}))[topic]


async def read_topics(bootstrap: str, partitions: Mapping[str, int]) -> dict[str, list[Any]]:
    """Every record of several topics (name → partition count) up to their ends as of
    now, through one consumer: per topic, in partition then offset order."""
    tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
    found: dict[str, list[Any]] = {name: [] for name in partitions}
    if not tps:
        return found
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",  # see reader(): with "latest" a partition can be missed
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        open_ = {tp for tp in tps if ends[tp] > 0}
        async with asyncio.timeout(READ_TIMEOUT_S * max(1, len(partitions) // 10)):
            while open_:
                for tp in [tp for tp in open_ if await consumer.position(tp) >= ends[tp]]:
                    open_.discard(tp)
                if not open_:
                    break
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    found[tp.topic].extend(r for r in batch if r.offset < ends[tp])
    finally:
        await consumer.stop()
    for records in found.values():
        records.sort(key=lambda r: (r.partition, r.offset))
    return found
