"""A real faust worker subprocess against the real broker: processing, HTTP, restore."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer

from streamapp.kafka import local_state
from streamapp.kafka.topics import admin_client
from streamapp.probe.model import encode_probe
from tests.integration.kafka_io import read_topic
from tests.integration.support import Worker, http_get, http_json, settle, wait_for

pytestmark = pytest.mark.integration


def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())


def probe_count(worker: Worker, key: str) -> int:
    status, body = http_json(f"{worker.url}/probes/{key}")
    return int(body["count"]) if status == 200 else 0


def test_worker_processes_records_and_serves_health_ready_metrics(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "streamapp.probes"

    # Poison first: not JSON, JSON but not an object, a wrong field; then good probes.
    send(
        bootstrap,
        topic,
        [
            (b"k1", b"\xff\xfenot json"),
            (b"k1", b"[1, 2]"),
            (b"k1", b'{"probeId": 7, "sentAt": "x"}'),
            *[(b"k1", encode_probe(f"p{i}")) for i in range(5)],
            (b"k2", encode_probe("q0")),
        ],
    )
    wait_for(lambda: probe_count(worker, "k1") == 5, 30, "5 probes counted for k1")
    status, body = http_json(f"{worker.url}/probes/k1")
    assert status == 200 and body["lastProbeId"] == "p4" and body["count"] == 5
    assert wait_for(lambda: probe_count(worker, "k2") == 1, 30, "probe for k2") == 1

    status, missing = http_json(f"{worker.url}/probes/never-sent")
    assert status == 404 and missing["error"]["type"] == "NotFound"

    status, health = http_json(f"{worker.url}/health")
    assert status == 200 and health["status"] == "ok"
    status, ready = http_json(f"{worker.url}/ready")
    assert status == 200 and ready["ready"] is True
    assert ready["assignmentReceived"] and not ready["inRecovery"]
    assert ready["assignedPartitions"] > 0

    status, raw = http_get(f"{worker.url}/metrics")
    metrics = raw.decode()
    assert status == 200
    assert "streamapp_ready 1.0" in metrics
    assert 'streamapp_records_processed_total{agent="probe"} 6.0' in metrics
    assert 'streamapp_records_rejected_total{agent="probe",reason="undecodable"} 1.0' in metrics
    assert 'streamapp_records_rejected_total{agent="probe",reason="invalid"} 2.0' in metrics
    assert "faust_messages_received_total" in metrics  # faust's own sensor
    assert "process_resident_memory_bytes" in metrics


def committed(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the group's committed offsets on topic (records it will not see again)."""

    async def go() -> int:
        async with admin_client(bootstrap) as admin:
            offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)

    return asyncio.run(go())


def metric(worker: Worker, line_start: str) -> float:
    for line in http_get(f"{worker.url}/metrics")[1].decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


KEYS = [f"key-{n}" for n in range(12)]  # spread over all partitions
REPLAYED = 'streamapp_records_replayed_total{agent="probe"}'


def fill(bootstrap: str, worker: Worker, topic: str, app_id: str) -> None:
    """Three probes per key, counted, and their 36 table writes acknowledged by the
    changelog: a kill -9 after this loses none of them (the producer may still hold the
    last writes when the view already shows them)."""
    send(bootstrap, topic, [(k.encode(), encode_probe(f"{k}-{i}")) for k in KEYS for i in range(3)])
    for key in KEYS:
        wait_for(lambda key=key: probe_count(worker, key) == 3, 30, f"3 probes for {key}")
    changelog = f"{app_id}-probes-changelog"
    wait_for(
        lambda: len(read_topic(bootstrap, changelog)) >= 3 * len(KEYS), 30, "changelog written"
    )


def test_table_restored_from_changelog_after_kill9_and_deleted_table_directory(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "streamapp.probes"
    fill(bootstrap, worker, topic, worker_env["STREAMAPP_APP_ID"])
    # Once every offset is committed, nothing is redelivered after the restart: the
    # values can only come back from the changelog.
    group = worker_env["STREAMAPP_APP_ID"]
    wait_for(lambda: committed(bootstrap, group, topic) == 3 * len(KEYS), 30, "offset commit")

    worker.kill9()
    assert worker.table_dir.exists()
    shutil.rmtree(worker.table_dir)

    restarted = start_worker(port=worker.port)
    restarted.wait_ready()
    assert {k: probe_count(restarted, k) for k in KEYS} == {k: 3 for k in KEYS}
    assert metric(restarted, REPLAYED) == 0
    # It goes on counting from the restored state.
    send(bootstrap, topic, [(b"key-0", encode_probe("after-restart"))])
    wait_for(lambda: probe_count(restarted, "key-0") == 4, 30, "count 4 after restart")


def test_records_replayed_after_kill9_are_not_applied_twice(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    # No commit before the kill: the restarted worker gets every record again.
    worker_env["STREAMAPP_CONSUMER_COMMIT_INTERVAL_MS"] = "600000"
    worker = start_worker()
    worker.wait_ready()
    topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "streamapp.probes"
    fill(bootstrap, worker, topic, worker_env["STREAMAPP_APP_ID"])
    worker.kill9()
    assert (worker.table_dir / local_state.MARK).exists()  # it did not stop cleanly

    restarted = start_worker(port=worker.port)
    restarted.wait_ready()
    # so its local tables were not trusted: restored from the changelog instead
    assert "did not stop cleanly" in restarted.log_path.read_text()
    try:
        wait_for(lambda: metric(restarted, REPLAYED) == 3 * len(KEYS), 30, "all replayed")
    except AssertionError as exc:  # say which: fewer replays, or nothing processed at all
        counts = {k: probe_count(restarted, k) for k in KEYS}
        replayed = metric(restarted, REPLAYED)
        raise AssertionError(
            f"{exc}: replayed {replayed}, counts {counts}\n{restarted.log(60)}"
        ) from None
    assert {k: probe_count(restarted, k) for k in KEYS} == {k: 3 for k in KEYS}
    restarted.stop()  # SIGTERM: a clean stop leaves no mark
    assert restarted.table_dir.exists() and not (restarted.table_dir / local_state.MARK).exists()


def test_any_worker_answers_for_any_key_by_forwarding_to_its_owner(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    first, second = start_worker(), start_worker()
    settle(first, second)
    topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "streamapp.probes"
    send(bootstrap, topic, [(k.encode(), encode_probe(f"{k}-0")) for k in KEYS])
    partitions = set()
    for key in KEYS:
        for worker in (first, second):
            wait_for(
                lambda w=worker, key=key: probe_count(w, key) == 1, 30, f"{key} via {worker.url}"
            )
        partitions.add(http_json(f"{first.url}/probes/{key}")[1]["partition"])
    assert len(partitions) > 1  # the keys really are spread over both workers' partitions
