"""`streamapp kafka up --nodes 3`: a real 3-node KRaft cluster survives a kill -9 of one node.

Its own cluster on its own ports (STREAMAPP_TEST_CLUSTER_PORT, default 29992: clients on
29992/29994/29996, controllers on 29993/29995/29997) and state dir, stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamapp.kafka.topics import admin_client, describe_topics, ensure_topics
from streamapp.settings import Settings, load_settings
from streamapp.topics import TopicSpec
from tests.integration.kafka_io import read_topic
from tests.integration.support import processes_matching, run_cli, unique_id, wait_for

pytestmark = pytest.mark.integration

CLUSTER_PORT = int(os.environ.get("STREAMAPP_TEST_CLUSTER_PORT", "29992"))
PARTITIONS = 6


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a 3-node cluster; whatever runs of it is stopped at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_LOCAL_KAFKA_PORT": str(CLUSTER_PORT),
            "STREAMAPP_LOCAL_KAFKA_CONTROLLER_PORT": str(CLUSTER_PORT + 1),
            "STREAMAPP_LOCAL_KAFKA_STATE_DIR": str(tmp_path / "kafka"),
            "STREAMAPP_LOCAL_KAFKA_HEAP": "320m",
        }
    )
    try:
        yield env
    finally:
        run_cli(["kafka", "down", "--nodes", "3"], env)
        assert processes_matching(str(tmp_path / "kafka")) == []


def isr_sizes(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> number of in-sync replicas."""

    async def go() -> dict[int, int]:
        async with admin_client(bootstrap) as admin:
            [described] = await admin.describe_topics([topic])
        return {p["partition"]: len(p["isr"]) for p in described["partitions"]}

    return asyncio.run(go())


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send with acks=all and idempotence, one per partition in turn; wait for every ack."""

    async def go() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            async with asyncio.timeout(90):
                sent = [
                    await producer.send(topic, v, partition=i % PARTITIONS)
                    for i, v in enumerate(values)
                ]
                await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(go())


def consume(bootstrap: str, topic: str, group: str, expected: int) -> list[bytes]:
    """Read the topic from the start in a consumer group (its coordinator, offsets topic
    and all) until `expected` values came, and commit them."""

    async def go() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            async with asyncio.timeout(90):
                while len(values) < expected:
                    batches = await consumer.getmany(timeout_ms=500)
                    values += [r.value for records in batches.values() for r in records]
                await consumer.commit()
        finally:
            await consumer.stop()
        return values

    return asyncio.run(go())


def committed(bootstrap: str, topic: str, group: str) -> int:
    async def go() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await consumer.start()
        try:
            return sum(
                [await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)]
            )
        finally:
            await consumer.stop()

    return asyncio.run(go())


def min_insync(bootstrap: str, topic: str) -> Any:
    [info] = asyncio.run(describe_topics(bootstrap, [topic]))
    return info.replication_factor, info.config.get("min.insync.replicas")


def test_three_nodes_replicate_and_survive_a_kill_9(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    settings: Settings = load_settings(environ={**cluster_env, "STREAMAPP_LOCAL_KAFKA_NODES": "3"})
    bootstrap = settings.bootstrap
    assert bootstrap == ",".join(f"127.0.0.1:{CLUSTER_PORT + d}" for d in (0, 2, 4))
    assert settings.topic_replication_factor == 3  # automatic: every node, up to 3

    up = run_cli(["kafka", "up", "--nodes", "3"], cluster_env)
    assert up.returncode == 0, up.stderr
    assert "cluster running (3/3 nodes)" in up.stdout
    status = run_cli(["kafka", "status", "--nodes", "3"], cluster_env)
    assert status.returncode == 0 and status.stdout.count(" running pid=") == 3
    single = run_cli(["kafka", "status"], cluster_env)  # forgot --nodes: a pointer
    assert single.returncode == 3 and "add --nodes 3" in single.stdout

    topic = unique_id("replicated")
    spec = TopicSpec(topic, PARTITIONS, settings.topic_replication_factor)
    asyncio.run(ensure_topics(bootstrap, [spec]))
    assert min_insync(bootstrap, topic) == (3, "2")
    wait_for(lambda: set(isr_sizes(bootstrap, topic).values()) == {3}, 30, "3 in-sync replicas")

    before = [f"before-{i}".encode() for i in range(60)]
    produce(bootstrap, topic, before)

    # kill -9 node 2: it leads some partitions and follows the others.
    config = tmp_path / "kafka" / "cluster" / "node-2" / "server.properties"
    [victim] = processes_matching(str(config))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not processes_matching(str(config)), 10, "node 2 to die")

    after = [f"after-{i}".encode() for i in range(60)]
    produce(bootstrap, topic, after)  # acks=all: the 2 live replicas meet min.insync 2
    wait_for(lambda: set(isr_sizes(bootstrap, topic).values()) == {2}, 30, "ISR shrunk to 2")
    group = unique_id("group")
    values = consume(bootstrap, topic, group, len(before) + len(after))
    assert sorted(values) == sorted(before + after)  # each exactly once
    assert committed(bootstrap, topic, group) == len(before) + len(after)

    degraded = run_cli(["kafka", "status", "--nodes", "3"], cluster_env)
    assert degraded.returncode == 3
    assert "cluster degraded (2/3 nodes)" in degraded.stdout
    assert "node 2 stopped" in degraded.stdout and "stale pid file" in degraded.stdout

    # `up` again starts only the dead node; it catches up and rejoins every ISR.
    survivors = processes_matching(str(tmp_path / "kafka" / "cluster"))
    again = run_cli(["kafka", "up", "--nodes", "3"], cluster_env)
    assert again.returncode == 0, again.stderr
    assert set(survivors) < set(processes_matching(str(tmp_path / "kafka" / "cluster")))
    wait_for(lambda: set(isr_sizes(bootstrap, topic).values()) == {3}, 90, "ISR back to 3")
    assert len(consume(bootstrap, topic, unique_id("group"), 120)) == 120
    # The group-less reader of verify, loadgen and the dlq tools reads every partition
    # whole, whichever node leads it (it once lost a race with its own automatic reset
    # and read some partitions from their end, i.e. not at all).
    for _ in range(5):
        assert sorted(r.value for r in read_topic(bootstrap, topic)) == sorted(before + after)

    down = run_cli(["kafka", "down", "--nodes", "3"], cluster_env)
    assert down.returncode == 0 and "kafka stopped" in down.stdout
    assert processes_matching(str(tmp_path / "kafka")) == []
