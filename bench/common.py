"""Shared by the benchmarks: the broker, output-rate measurement, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamapp.kafka.topics import admin_client
from streamapp.local.cluster import local_kafka
from streamapp.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "out"


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    """Bootstrap servers from the settings; the local broker is started (and stopped
    again afterwards) unless it already runs or external servers are configured."""
    settings = load_settings()
    broker = local_kafka(settings) if settings.uses_local_kafka else None
    started = broker is not None and broker.status().state == "stopped"
    if broker is not None:
        broker.up()
    try:
        yield settings.bootstrap
    finally:
        if broker is not None and started:
            broker.down()


async def end_total(bootstrap: str, topic: str, partitions: int) -> int:
    """Records in a topic (sum of end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def wait_for_records(
    bootstrap: str,
    topic: str,
    partitions: int,
    records: int,
    timeout: float,
    alive: Any = None,
) -> None:
    """Block until `topic` holds `records` records; fail after timeout or if alive() is false."""
    deadline = time.monotonic() + timeout
    while asyncio.run(end_total(bootstrap, topic, partitions)) < records:
        if alive is not None and not alive():
            raise SystemExit(f"the process writing {topic} exited early")
        if time.monotonic() > deadline:
            raise SystemExit(f"{topic} did not reach {records} records in {timeout:.0f} s")
        time.sleep(1.0)


async def output_rate(bootstrap: str, topic: str, records: int) -> float:
    """records/s between the first and the last record's CreateTime (start-up excluded)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=10000,
    )
    await consumer.start()
    first, last, seen = None, None, 0
    try:
        while seen < records:
            for messages in (await consumer.getmany(timeout_ms=2000)).values():
                for message in messages:
                    first = message.timestamp if first is None else min(first, message.timestamp)
                    last = message.timestamp if last is None else max(last, message.timestamp)
                    seen += 1
    finally:
        await consumer.stop()
    assert first is not None and last is not None
    return (records - 1) / max((last - first) / 1000.0, 1e-3)


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    async with admin_client(bootstrap) as admin:
        await admin.delete_topics(names)


def save(run: str, result: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{run}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


async def delete_topics_starting(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a benchmark run's topics)."""
    async with admin_client(bootstrap) as admin:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    return names
