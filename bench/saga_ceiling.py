"""The raw saga ceiling: the records one saga moves, with plain aiokafka and no logic.

bench/saga's backlog run counts the records each topic gained per completed saga (its
capacity figures) and this samples their sizes. The ceiling replays that traffic on
fresh topics of the same partition count: one aiokafka producer (acks=all, linger 5 ms,
idempotent, as the workers) writes every record of N sagas, keyed by saga, and one
aiokafka consumer reads every record of the topics the services consume (not the
changelogs, which a worker only writes while running, nor sagas.events, which only
clients read). Sagas/s = N / the time from the
first send to the last record read; one process on the same two cores as the broker,
so it also prices the Python clients' per-record cost, not only the broker's.

Called by bench/saga after its backlog (same run); alone:

    .venv/bin/python -m bench.saga_ceiling   # a saga-shaped mix from the last bench/saga
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from bench.common import OUT_DIR, delete_topics_starting, kafka
from streamapp.kafka.topics import admin_client, describe_topics

SAMPLE = 200


#: Written by the orchestrator, read by clients (loadgen, verify), by no service.
CLIENT_ONLY = (".sagas.events",)


def consumed(topic: str) -> bool:
    """Whether a service reads the topic while running (changelogs are only written)."""
    return not topic.endswith("-changelog") and topic not in CLIENT_ONLY


async def record_sizes(bootstrap: str, prefix: str, topics: list[str]) -> dict[str, int]:
    """Mean key + value bytes of up to SAMPLE records of each topic (`prefix` + name)."""
    infos = {i.name: i.partitions for i in await describe_topics(bootstrap)}
    sizes = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for topic in topics:
            name = prefix + topic
            tps = [TopicPartition(name, p) for p in range(infos.get(name, 0))]
            if not tps:
                continue
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            seen: list[int] = []
            batch = await consumer.getmany(timeout_ms=2000, max_records=SAMPLE)
            for records in batch.values():
                seen += [len(r.key or b"") + len(r.value or b"") for r in records]
            sizes[topic] = round(sum(seen) / len(seen)) if seen else 500
    finally:
        await consumer.stop()
    return sizes


def counts(per_saga: float, sagas: int) -> list[int]:
    """Records of each saga for a topic with `per_saga` on average (fractions spread)."""
    return [round((i + 1) * per_saga) - round(i * per_saga) for i in range(sagas)]


async def ceiling(
    bootstrap: str,
    run: str,
    per_saga: Mapping[str, float],
    sizes: Mapping[str, int],
    sagas: int,
    partitions: int,
) -> dict[str, Any]:
    """Move `sagas` sagas' records (per_saga: topic -> records per saga) through fresh
    topics ``<run>-ceiling.<n>``; the figures."""
    names = {topic: f"{run}-ceiling.{n}" for n, topic in enumerate(sorted(per_saga))}
    plan = {topic: counts(per_saga[topic], sagas) for topic in per_saga}
    expected = sum(sum(plan[t]) for t in plan if consumed(t))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=True
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        async with admin_client(bootstrap) as admin:
            await admin.create_topics(
                [NewTopic(name, partitions, 1) for name in names.values()], timeout_ms=30_000
            )
        await producer.start()
        await consumer.start()
        tps = [
            TopicPartition(names[t], p) for t in per_saga if consumed(t) for p in range(partitions)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)

        async def read() -> None:
            got = 0
            while got < expected:
                batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                got += sum(len(records) for records in batch.values())

        started = time.monotonic()
        reader = asyncio.ensure_future(read())
        values = {t: b"x" * max(1, sizes.get(t, 500) - 12) for t in per_saga}
        pending = []
        for i in range(sagas):
            key = b"saga-%07d" % i
            for topic, per in plan.items():
                for _ in range(per[i]):
                    pending.append(await producer.send(names[topic], values[topic], key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        produced_s = time.monotonic() - started
        await asyncio.wait_for(reader, 600)
        elapsed = time.monotonic() - started
    finally:
        for client in (consumer, producer):
            with contextlib.suppress(Exception):  # one that never started
                await client.stop()
        await delete_topics_starting(bootstrap, f"{run}-ceiling.")
    records = sum(sum(c) for c in plan.values())
    return {
        "sagas": sagas,
        "records_per_saga": round(records / sagas, 2),
        "consumed_per_saga": round(expected / sagas, 2),
        "produce_seconds": round(produced_s, 2),
        "seconds": round(elapsed, 2),
        "sagas_per_s": round(sagas / elapsed, 1),
    }


def measure(
    bootstrap: str, run: str, per_saga: Mapping[str, float], sagas: int, partitions: int
) -> dict[str, Any]:
    """Sizes from the run's own topics (`run` + name), then the ceiling."""
    sizes = asyncio.run(record_sizes(bootstrap, run, list(per_saga)))
    found = asyncio.run(ceiling(bootstrap, run, per_saga, sizes, sagas, partitions))
    print(
        f"(R) raw saga ceiling: {found['sagas_per_s']} sagas/s "
        f"({found['records_per_saga']} records per saga, {found['consumed_per_saga']} read)"
    )
    return {**found, "record_bytes": sizes}


def last_mix() -> dict[str, float] | None:
    """Records per saga by topic of the newest bench/saga result in bench/out."""
    for path in sorted(OUT_DIR.glob("saga-*.json"), key=lambda p: p.stat().st_mtime)[::-1]:
        doc = json.loads(Path(path).read_text())
        if "records_per_saga" in doc:
            return dict(doc["records_per_saga"])
    return None


def main() -> int:
    per_saga = last_mix()
    if per_saga is None:
        raise SystemExit("run bench/saga first: its records per saga shape the ceiling")
    with kafka() as bootstrap:
        run = f"bench-ceiling-{int(time.time())}"
        found = asyncio.run(ceiling(bootstrap, run, per_saga, {}, 1000, 4))
    print(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
