"""The order event store through real workers, Kafka topics and HTTP."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streamapp.messages import Command, new_id
from tests.integration.kafka_io import (
    events_on,
    read_topic,
    replies_by_command,
    send_commands,
    send_records,
)
from tests.integration.support import (
    BIN,
    ROOT,
    Worker,
    http_json,
    http_post_json,
    settle,
    wait_for,
)

pytestmark = pytest.mark.integration

ORDER = {
    "customerId": "cust-7",
    "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"}],
    "paymentMethod": "card",
    "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
}


class Orders:
    """The test's view of one streamapp deployment: topic names and helpers."""

    def __init__(self, bootstrap: str, env: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        prefix = env["STREAMAPP_TOPIC_PREFIX"]
        self.commands = f"{prefix}orders.commands"
        self.replies = f"{prefix}orders.replies"
        self.events = f"{prefix}orders.events"

    def send(self, *commands: Command) -> None:
        send_commands(self.bootstrap, self.commands, commands)

    def wait_replies(
        self, command_ids: list[str], timeout: float = 60, each: int = 1
    ) -> dict[str, Any]:
        """All replies, once every command id has at least `each` of them."""

        def all_replied() -> dict[str, Any] | None:
            found = replies_by_command(self.bootstrap, self.replies)
            return found if all(len(found.get(c, ())) >= each for c in command_ids) else None

        return wait_for(all_replied, timeout, f"replies to {len(command_ids)} commands", 0.5)


@pytest.fixture
def orders(bootstrap: str, worker_env: dict[str, str]) -> Orders:
    return Orders(bootstrap, worker_env)


def create(order_id: str, expected: int | None = 0, **data: Any) -> Command:
    return Command(new_id(), "CreateOrder", order_id, {**ORDER, **data}, expected_version=expected)


def note(order_id: str, text: str) -> Command:
    return Command(new_id(), "AddOrderNote", order_id, {"note": text})


def post(url: str, body: Any) -> tuple[int, Any]:
    """POST; a 503 NotReady (e.g. the reply consumer still starting) is retried, as a
    client would, for up to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        request = urllib.request.Request(
            url,
            data=orjson.dumps(body),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            answer = exc.code, orjson.loads(exc.read())
        if answer[0] != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_concurrent_creates_duplicates_and_http_answers(
    orders: Orders, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    # Ready means ready for HTTP commands too (the reply consumer is positioned): the
    # first POST is answered, not told to come back (503).
    status, first = http_post_json(f"{worker.url}/orders", {**ORDER, "orderId": "order-first"})
    assert status == 201, first
    # Two clients race to create the same order, expecting version 0.
    racers = [create("order-race"), create("order-race")]
    threads = [threading.Thread(target=orders.send, args=(c,)) for c in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # One client sends the same command three times.
    same = create("order-same")
    for _ in range(3):
        orders.send(same)
    orders.wait_replies([same.command_id], each=3)
    replies = orders.wait_replies([c.command_id for c in racers])

    race = sorted((replies[c.command_id][0] for c in racers), key=lambda r: r["status"])
    assert [r["status"] for r in race] == ["accepted", "rejected"]
    assert race[1]["error"]["type"] == "ConcurrencyError"
    assert race[1]["error"]["currentVersion"] == 1
    assert [r["status"] for r in replies[same.command_id]] == ["accepted", "duplicate", "duplicate"]
    assert len({tuple(r["eventIds"]) for r in replies[same.command_id]}) == 1

    events = [e for e in events_on(orders.bootstrap, orders.events)]
    assert sorted((e["aggregateId"], e["version"]) for e in events) == [
        ("order-first", 1),
        ("order-race", 1),
        ("order-same", 1),
    ]

    status, order = http_json(f"{worker.url}/orders/order-same")
    assert status == 200
    assert order["status"] == "PENDING" and order["version"] == 1
    assert order["totalAmount"] == "19.98" and order["customerId"] == "cust-7"

    # POST /orders: 201 accepted, 200 duplicate, 409 concurrency, 422 invalid
    body = {**ORDER, "orderId": "order-http", "commandId": "cmd-http-1"}
    assert post(f"{worker.url}/orders", body)[0] == 201
    status, again = post(f"{worker.url}/orders", body)
    assert status == 200 and again["status"] == "duplicate"
    status, clash = post(f"{worker.url}/orders", {**body, "commandId": "cmd-http-2"})
    assert status == 409 and clash["error"]["type"] == "ConcurrencyError"
    status, clash = post(f"{worker.url}/orders", {**body, "commandId": "cmd-http-2"})
    assert status == 409 and clash["status"] == "duplicate"  # a rejection stays a rejection
    status, bad = post(f"{worker.url}/orders", {**ORDER, "items": []})
    assert status == 422 and bad["error"]["type"] == "SchemaError"  # CreateOrder's schema
    # A retry that only names its commandId (e.g. after a 504) targets the same order.
    first = post(f"{worker.url}/orders", {**ORDER, "commandId": "cmd-http-3"})
    retry = post(f"{worker.url}/orders", {**ORDER, "commandId": "cmd-http-3"})
    assert (first[0], retry[0]) == (201, 200)
    assert first[1]["orderId"] == retry[1]["orderId"] and retry[1]["status"] == "duplicate"
    status, bad = post(f"{worker.url}/orders", ["not", "an", "object"])
    assert status == 422 and bad["error"]["type"] == "SchemaError"
    status, missing = http_json(f"{worker.url}/orders/no-such-order")
    assert status == 404 and missing["error"]["type"] == "NotFound"


def test_250_events_snapshots_and_event_ranges(
    orders: Orders, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    commands = [create("order-long"), *[note("order-long", f"note {n}") for n in range(2, 251)]]
    orders.send(*commands)
    replies = orders.wait_replies([c.command_id for c in commands], timeout=120)
    assert all(replies[c.command_id][0]["status"] == "accepted" for c in commands)

    status, order = http_json(f"{worker.url}/orders/order-long")
    assert status == 200 and order["version"] == 250 and order["notes"] == 249
    assert order["status"] == "PENDING"
    status, snapshots = http_json(f"{worker.url}/orders/order-long/snapshots")
    assert status == 200 and snapshots["snapshots"] == [100, 200]
    status, page = http_json(f"{worker.url}/orders/order-long/events?fromVersion=120&toVersion=130")
    assert status == 200
    assert [e["version"] for e in page["events"]] == list(range(120, 131))
    assert page["events"][0]["data"] == {"note": "note 120"}
    assert page["events"][0]["causationId"] == commands[119].command_id

    # The snapshots are in the changelog too, at exactly those versions.
    changelog = read_topic(
        orders.bootstrap, f"{worker_env['STREAMAPP_APP_ID']}-eventstore-changelog"
    )
    snapshot_keys = sorted({r.key for r in changelog if r.key.startswith(b"s/order-long/")})
    assert snapshot_keys == [b"s/order-long/0000000100", b"s/order-long/0000000200"]


def test_bad_records_never_stop_the_partition(
    orders: Orders, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    key = b"order-bad"
    unknown = Command(new_id(), "ShipItNow", "order-bad", {})
    missing = {"commandId": new_id(), "commandType": "CreateOrder", "data": ORDER}  # no aggregateId
    negative = create("order-bad", items=[{"sku": "A", "quantity": -1, "unitPrice": "1.00"}])
    huge = create("order-bad", paymentMethod="x" * (1024 * 1024))
    good = create("order-bad")
    trace = [("traceparent", b"00-4bf92f3577b34da6-01")]
    poison = [
        (key, b"{not json", trace),
        (key, b"\xff\xfe\x00", trace),
        (key, unknown.to_json(), trace),
        (key, orjson.dumps(missing), trace),
        (key, negative.to_json(), trace),
        (key, huge.to_json(), trace),
        (key, good.to_json(), trace),
    ]
    send_records(orders.bootstrap, orders.commands, poison, max_request_size=4 * 1024 * 1024)
    replies = orders.wait_replies(
        [
            unknown.command_id,
            missing["commandId"],
            negative.command_id,
            huge.command_id,
            good.command_id,
        ]
    )
    assert replies[unknown.command_id][0]["error"]["type"] == "UnknownCommand"
    assert replies[missing["commandId"]][0]["error"]["type"] == "SchemaError"
    assert replies[negative.command_id][0]["error"]["type"] == "SchemaError"  # quantity >= 1
    assert replies[huge.command_id][0]["error"]["type"] == "SchemaError"
    assert replies[good.command_id][0]["status"] == "accepted"
    status, order = http_json(f"{worker.url}/orders/order-bad")
    assert status == 200 and order["version"] == 1

    # Never-retryable records are in the DLQ at once, byte for byte, with the headers;
    # the negative quantity breaks CreateOrder's registered schema, so it is one of them.
    dead = wait_for(
        lambda: (r := read_topic(orders.bootstrap, f"{orders.commands}.dlq")) and len(r) >= 6 and r,
        30,
        "6 dead letters",
    )
    assert [(r.key, r.value) for r in dead] == [(k, v) for k, v, _ in poison if v != good.to_json()]
    for record in dead:
        headers = dict(record.headers)
        assert headers["traceparent"] == trace[0][1]
        assert headers["original-topic"] == orders.commands.encode()
        assert headers["retry-count"] == b"0" and headers["failed-at"].endswith(b"Z")
        assert headers["error-type"] in (b"SchemaError", b"UnknownCommand")
    offsets = [int(dict(r.headers)["original-offset"]) for r in dead]
    assert offsets == sorted(offsets) and len(set(offsets)) == 6

    metrics = urllib.request.urlopen(f"{worker.url}/metrics", timeout=5).read().decode()
    assert 'streamapp_records_rejected_total{agent="orders",reason="invalid"} 6.0' in metrics
    for kind, count in (("SchemaError", 5.0), ("UnknownCommand", 1.0)):
        line = f'streamapp_dead_letters_total{{error_type="{kind}",topic="{orders.commands}"}}'
        found = [m for m in metrics.splitlines() if m.startswith("streamapp_dead_letters")]
        assert f"{line} {count}" in found, found
    assert worker.proc is not None and worker.proc.poll() is None


def test_any_worker_answers_for_any_order(
    orders: Orders, start_worker: Callable[..., Worker]
) -> None:
    first, second = start_worker(), start_worker()
    settle(first, second)
    ids = [f"order-{n}" for n in range(8)]
    for n, order_id in enumerate(ids):  # POST through either worker
        worker = (first, second)[n % 2]
        status, reply = post(f"{worker.url}/orders", {**ORDER, "orderId": order_id})
        assert status == 201, reply
    for order_id in ids:
        for worker in (first, second):
            status, order = http_json(f"{worker.url}/orders/{order_id}")
            assert status == 200 and order["orderId"] == order_id and order["version"] == 1
            status, page = http_json(f"{worker.url}/orders/{order_id}/events")
            assert status == 200 and len(page["events"]) == 1


def test_kill9_during_1000_commands_loses_and_duplicates_nothing(
    orders: Orders, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    # Commit rarely, so each kill leaves processed-but-uncommitted commands to redeliver.
    worker_env["STREAMAPP_CONSUMER_COMMIT_INTERVAL_MS"] = "10000"
    worker = start_worker()
    worker.wait_ready()
    order_ids = [f"order-{n:03d}" for n in range(100)]
    rounds = [[create(o) for o in order_ids]] + [
        [note(o, f"round {r}") for o in order_ids] for r in range(1, 10)
    ]
    commands = [c for batch in rounds for c in batch]  # per order: create, then 9 notes

    def send_steadily() -> None:  # ~10 s of traffic, so the kills land mid-stream
        for start in range(0, len(commands), 50):
            orders.send(*commands[start : start + 50])
            threading.Event().wait(0.5)

    sender = threading.Thread(target=send_steadily)
    sender.start()
    try:
        for replied_before_kill in (150, 500):
            wait_for(
                lambda n=replied_before_kill: (
                    len(replies_by_command(orders.bootstrap, orders.replies)) >= n
                ),
                120,
                f"{replied_before_kill} replies",
            )
            worker.kill9()
            worker = start_worker(port=worker.port)
            worker.wait_ready()
    finally:
        sender.join(120)
    replies = orders.wait_replies([c.command_id for c in commands], timeout=180)

    # Every command has a reply; a re-published reply is identical to the first.
    for command in commands:
        assert {orjson.dumps(r) for r in replies[command.command_id]} == {
            orjson.dumps(replies[command.command_id][0])
        }
        assert replies[command.command_id][0]["status"] == "accepted", replies[command.command_id]

    # The kills did hit processed-but-uncommitted commands: their replies went out again.
    assert any(len(replies[c.command_id]) > 1 for c in commands)

    # orders.events: no two different events share (aggregateId, version); gapless 1..10.
    by_position: dict[tuple[str, int], set[bytes]] = {}
    for event in events_on(orders.bootstrap, orders.events):
        by_position.setdefault((event["aggregateId"], event["version"]), set()).add(
            orjson.dumps(event)
        )
    assert all(len(copies) == 1 for copies in by_position.values())
    assert set(by_position) == {(o, v) for o in order_ids for v in range(1, 11)}
    # Each command was applied once: its event ids are at exactly one position.
    event_ids = [orjson.loads(next(iter(c)))["eventId"] for c in by_position.values()]
    assert len(event_ids) == len(set(event_ids)) == 1000

    assert worker.proc is not None and worker.proc.poll() is None  # still serving

    # The changelog alone (a fresh worker, empty table directory) holds every order whole:
    # the fresh worker restores while verify reads the topics.
    worker.stop()
    fresh = start_worker()

    # `streamapp verify` (topics only) agrees: invariant 4 holds, every command replied.
    verdict = subprocess.run(
        [str(BIN / "streamapp"), "verify", "--invariant", "4"],
        cwd=ROOT,
        env={**os.environ, **worker_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert verdict.stdout.startswith("verify: OK (1000 events, ")
    assert "100 streams, 1000 commands)" in verdict.stdout

    fresh.wait_ready()
    for order_id in order_ids:
        status, order = http_json(f"{fresh.url}/orders/{order_id}")
        assert status == 200 and order["version"] == 10 and order["notes"] == 9, order
    for order_id in order_ids[::20]:
        status, page = http_json(f"{fresh.url}/orders/{order_id}/events")
        assert [e["version"] for e in page["events"]] == list(range(1, 11))
