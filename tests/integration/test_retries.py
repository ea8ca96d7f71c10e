"""Delayed retry topics, dead letters and replay, through a real participant worker.

The payment service is the subject: its failure-injection settings make a handler fail
on purpose (its first N attempts, or always), and its dedupe by command id makes a
replayed or re-sent command apply once. Each test starts its own payments worker only.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from streamapp.messages import Command, new_id
from streamapp.resilience.headers import Origin, header, retry_headers
from tests.integration.kafka_io import events_on, read_topic, send_records
from tests.integration.support import BIN, ROOT, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration


def payments(bootstrap: str, root: Path, **settings: str) -> System:
    system = System(bootstrap, root, **{"retry_base_ms": "300", **settings})
    system.start("payments")
    return system


@pytest.fixture
def deployments() -> Iterator[list[System]]:
    started: list[System] = []
    yield started
    for system in started:
        system.stop()


def charge(order_id: str, amount: str = "10.00", customer: str = "cust-1") -> Command:
    return Command(
        new_id(), "ProcessPayment", order_id, {"customerId": customer, "totalAmount": amount}
    )


def send(system: System, *commands: Command, headers: Any = None) -> None:
    """Keyed by customerId, as the orchestrator keys payments commands (the account lives
    in its customer's partition)."""
    send_records(
        system.bootstrap,
        system.topic("payments.commands"),
        [(c.data["customerId"].encode(), c.to_json(), headers or []) for c in commands],
    )


def partition_of(key: bytes, partitions: int = 4) -> int:
    """The partition a Kafka client sends a record key to (murmur2)."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))


def processed(system: System, order_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events_on(system.bootstrap, system.topic("payments.events"))
        if e["aggregateId"] == order_id and e["eventType"] == "PaymentProcessed"
    ]


def test_fails_twice_then_succeeds_never_before_its_retry_after(
    bootstrap: str, tmp_path: Path, deployments: list[System]
) -> None:
    system = payments(bootstrap, tmp_path, inject_failures_first_attempts="2")
    deployments.append(system)
    command = charge("order-retry-1")
    send(system, command)
    wait_for(lambda: processed(system, "order-retry-1"), 30, "the payment after two retries")

    retries = [read_topic(bootstrap, system.topic(f"payments.commands.retry.{n}")) for n in (1, 2)]
    assert [len(r) for r in retries] == [1, 1]
    for attempt, [record] in enumerate(retries, start=1):
        assert record.value == command.to_json() and record.key == b"cust-1"
        headers = list(record.headers)
        assert header(headers, "retry-count") == str(attempt).encode()
        assert header(headers, "original-topic") == system.topic("payments.commands").encode()
        assert header(headers, "error-type") == b"TransientFailure"
    assert read_topic(bootstrap, system.topic("payments.commands.retry.3")) == []
    # Attempt 2 failed (writing retry.2) after retry.1's retry-after; the success
    # (the PaymentProcessed record) came after retry.2's.
    due_1 = int(header(list(retries[0][0].headers), "retry-after") or 0)
    due_2 = int(header(list(retries[1][0].headers), "retry-after") or 0)
    assert retries[1][0].timestamp >= due_1
    events = [
        r
        for r in read_topic(bootstrap, system.topic("payments.events"))
        if orjson.loads(r.value)["aggregateId"] == "order-retry-1"
    ]
    assert len(events) == 1 and events[0].timestamp >= due_2  # processed once
    assert Decimal(system.balance("cust-1")) == Decimal("10.00")


def test_always_failing_record_is_dead_lettered_byte_for_byte_then_replayed_once(
    bootstrap: str, tmp_path: Path, deployments: list[System]
) -> None:
    system = payments(bootstrap, tmp_path, inject_failure_rate="1", retry_max_attempts="2")
    deployments.append(system)
    command = charge("order-dlq-1", "25.00")
    send(system, command, headers=[("trace-id", b"\x00abc\xff")])
    dlq = system.topic("payments.commands.dlq")
    [letter] = wait_for(lambda: read_topic(bootstrap, dlq), 30, "the dead letter")
    assert letter.key == b"cust-1" and letter.value == command.to_json()
    headers = list(letter.headers)
    assert headers[0] == ("trace-id", b"\x00abc\xff")  # the original header, byte for byte
    assert header(headers, "retry-count") == b"2"
    assert header(headers, "error-type") == b"TransientFailure"
    assert header(headers, "original-topic") == system.topic("payments.commands").encode()
    assert header(headers, "original-partition") == str(partition_of(b"cust-1")).encode()
    assert header(headers, "original-offset") is not None
    assert b"TransientFailure" in (header(headers, "error-stack") or b"")
    assert header(headers, "failed-at") is not None
    assert not processed(system, "order-dlq-1")

    # The cause is fixed: the service runs without the failure.
    system.workers["payments"].stop()
    system.env["STREAMAPP_INJECT_FAILURE_RATE"] = "0"
    system.start("payments")

    def replay() -> None:
        done = subprocess.run(
            [str(BIN / "streamapp"), "dlq", "replay", "payments.commands"],
            cwd=ROOT,
            env={**system.env, "STREAMAPP_SERVICE": "payments"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "replayed 1" in done.stdout, done.stdout + done.stderr

    replay()
    wait_for(lambda: processed(system, "order-dlq-1"), 30, "the replayed payment")
    replay()  # a second replay is answered from the stored answer: nothing new
    wait_for(lambda: len(processed(system, "order-dlq-1")) == 2, 30, "the second answer")
    assert {e["eventId"] for e in processed(system, "order-dlq-1")} == {
        processed(system, "order-dlq-1")[0]["eventId"]
    }
    assert Decimal(system.balance("cust-1")) == Decimal("25.00")


def test_poison_goes_to_the_dlq_at_once_and_the_next_record_flows(
    bootstrap: str, tmp_path: Path, deployments: list[System]
) -> None:
    system = payments(bootstrap, tmp_path)
    deployments.append(system)
    good = charge("order-after-poison")
    sent_at = int(time.time() * 1000)
    send_records(
        bootstrap,
        system.topic("payments.commands"),
        # One partition (the customer's): the poison record comes right before the good one.
        [(b"cust-1", b"\xff\xfe not json"), (b"cust-1", good.to_json())],
    )
    wait_for(lambda: processed(system, "order-after-poison"), 30, "the good record")
    [letter] = read_topic(bootstrap, system.topic("payments.commands.dlq"))
    assert letter.value == b"\xff\xfe not json"
    assert header(list(letter.headers), "retry-count") == b"0"
    assert header(list(letter.headers), "error-type") == b"SchemaError"
    assert read_topic(bootstrap, system.topic("payments.commands.retry.1")) == []
    [event] = [
        r
        for r in read_topic(bootstrap, system.topic("payments.events"))
        if orjson.loads(r.value)["aggregateId"] == "order-after-poison"
    ]
    assert event.timestamp - sent_at < 1000, event.timestamp - sent_at


def test_kill9_with_records_waiting_in_retry_topics_loses_and_repeats_nothing(
    bootstrap: str, tmp_path: Path, deployments: list[System]
) -> None:
    system = payments(
        bootstrap,
        tmp_path,
        inject_failures_first_attempts="1",
        retry_base_ms="4000",
        # 4+8+16+32+64 s (+10 %) of retries: the (unused) saga deadlines must still cover it.
        saga_step_timeout_ms="200000",
        saga_compensation_timeout_ms="30000",
    )
    deployments.append(system)
    commands = [charge(f"order-wait-{n:02d}", "1.00") for n in range(20)]
    send(system, *commands)
    retry_1 = system.topic("payments.commands.retry.1")
    wait_for(lambda: len(read_topic(bootstrap, retry_1)) == 20, 30, "20 records waiting")
    system.kill9("payments")
    system.start("payments")
    wait_for(lambda: all(processed(system, c.aggregate_id) for c in commands), 90, "every payment")
    for command in commands:  # at most re-sent identically, never charged twice
        assert len({e["eventId"] for e in processed(system, command.aggregate_id)}) == 1
    assert Decimal(system.balance("cust-1")) == Decimal("20.00")
    assert read_topic(bootstrap, system.topic("payments.commands.dlq")) == []


def test_a_due_retry_goes_before_the_main_topic_backlog(tmp_path: Path, bootstrap: str) -> None:
    """A record whose retry-after has passed is handled before the main topic's backlog
    that was waiting when it became due (its agent and stream buffer are its own, and the
    gate lets it in first), not after every main record buffered ahead of it."""
    system = System(bootstrap, tmp_path)
    system.start("shipping")
    try:
        main = system.topic("shipping.commands")

        def ship(order_id: str) -> Command:
            return Command(
                new_id(), "ScheduleShipment", order_id, {"shippingAddress": {"country": "NL"}}
            )

        backlog = [ship(f"backlog-{n:05d}") for n in range(BACKLOG)]
        send_records(bootstrap, main, [(c.aggregate_id.encode(), c.to_json()) for c in backlog])
        retried = ship("retried-00000")
        # parked as the agent parks a failed record; due now (origin offset of no real record)
        headers = retry_headers([], Origin(main, 0, 10**12), 1, int(time.time() * 1000), "T", "t")
        send_records(
            bootstrap,
            system.topic("shipping.commands.retry.1"),
            [(retried.aggregate_id.encode(), retried.to_json(), headers)],
        )

        def answers() -> list[str] | None:
            seen = [e["aggregateId"] for e in events_on(bootstrap, system.topic("shipping.events"))]
            return seen if len(set(seen)) == BACKLOG + 1 else None

        order = wait_for(answers, 180, "every shipment answered", every=1.0)
        # events_on reads partition by partition: rank the answers by record time instead
        times = {
            orjson.loads(r.value)["aggregateId"]: r.timestamp
            for r in read_topic(bootstrap, system.topic("shipping.events"))
        }
        assert len(order) == BACKLOG + 1
        behind = sum(
            1
            for k, t in times.items()
            if k != retried.aggregate_id and t <= times[retried.aggregate_id]
        )
        # it waited behind every main record buffered before it (929 of 1,500 here with
        # one agent for both topics); now behind those the worker handled before the relay
        # moved it (117 here: the relay's fetch wait and send)
        assert behind < BACKLOG // 3, (behind, BACKLOG)
    finally:
        system.stop()


BACKLOG = 1500
