"""Command outcomes and participant answers expire after state_retention_ms.

With a 3 s window: a repeated command inside the window is still a duplicate; after it,
every command outcome (c/...) on the event store's changelog and every participant
answer, closed per-saga record (r/...) and expiry entry (x/...) on the participants'
changelogs is a tombstone, while streams, stock levels, accounts and the open per-saga
records (the confirmed order's charge and shipment, and their event counters) stay; the views
are unchanged, `streamapp verify` passes, and a repeat after the window is decided again
(rejected: the order exists), never applied twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from streamapp.messages import Command, new_id
from streamapp.tools.repartition import place_changelog, records_of
from tests.integration.kafka_io import read_topic, replies_by_command, send_commands
from tests.integration.support import http_json, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

WINDOW_MS = 3000
PARTICIPANTS = ("inventory", "payments", "shipping")


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        state_retention_ms=str(WINDOW_MS),
        trace_retention_ms=str(WINDOW_MS),
        # The compensation horizon (x5) must exceed the default retry budget.
        saga_compensation_timeout_ms="8000",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def latest(records: list[Any]) -> dict[bytes, bytes | None]:
    """A compacted topic's content: the last value per key (None: a tombstone)."""
    found: dict[bytes, bytes | None] = {}
    for record in records:
        found[record.key] = record.value
    return found


def changelog(system: System, table: str) -> dict[bytes, bytes | None]:
    return latest(read_topic(system.bootstrap, f"{system.env['STREAMAPP_APP_ID']}-{table}"))


def order(system: System, command_id: str, order_id: str, sku: str, customer: str) -> Any:
    body = {
        "commandId": command_id,
        "orderId": order_id,
        "customerId": customer,
        "items": [{"sku": sku, "quantity": 1, "unitPrice": "5.00"}],
        "shippingAddress": {"country": "NL"},
    }
    return http_post_json(f"{system.url('orders')}/orders", body)


def live(content: dict[bytes, bytes | None], prefix: bytes) -> list[bytes]:
    return sorted(k for k, v in content.items() if k.startswith(prefix) and v is not None)


def test_outcomes_and_answers_expire_after_the_window(system: System) -> None:
    happy, soldout = f"cmd-{new_id()}", f"cmd-{new_id()}"
    status, first = order(system, happy, "order-keep-ok", "SKU-HAPPY", "cust-happy")
    assert status == 201, first
    status, again = order(system, happy, "order-keep-ok", "SKU-HAPPY", "cust-happy")
    assert (status, again["status"]) == (200, "duplicate"), again  # inside the window
    assert again["eventIds"] == first["eventIds"]
    status, body = order(system, soldout, "order-keep-soldout", "SKU-SOLDOUT", "cust-inv")
    assert status == 201, body
    # A rejection for a stream that does not exist records an outcome too.
    cancel = Command(f"cmd-{new_id()}", "CancelOrder", "order-keep-nobody", {})
    send_commands(system.bootstrap, system.topic("orders.commands"), [cancel])
    replies = system.topic("orders.replies")
    wait_for(
        lambda: cancel.command_id in replies_by_command(system.bootstrap, replies),
        30,
        "the rejection of the unknown order",
    )
    wait_for(
        lambda: (
            system.get("orders", "/orders/order-keep-ok")["status"] == "CONFIRMED"
            and system.get("orders", "/orders/order-keep-soldout")["status"] == "CANCELLED"
        ),
        60,
        "both sagas to end",
    )

    def outcomes_expired() -> dict[bytes, bytes | None] | None:
        content = changelog(system, "eventstore-changelog")
        gone = [k for k, v in content.items() if k.startswith(b"c/") and v is None]
        expected = {f"c/order-keep-nobody/{cancel.command_id}".encode(), b"c/order-keep-ok/"}
        done = all(any(k.startswith(e) for k in gone) for e in expected)
        return content if done and not live(content, b"c/") and not live(content, b"x/") else None

    content = wait_for(outcomes_expired, 60, "every command outcome to expire", every=1)

    # Traces expire too (trace_retention_ms): the trace's groups and index entry are
    # tombstones on the traces changelog, and the trace is no longer served.
    def traces_expired() -> dict[bytes, bytes | None] | None:
        content = changelog(system, "traces-changelog")
        groups = [k for k in content if k.startswith(f"e/{happy}\0".encode())]
        gone = bool(groups) and all(content[k] is None for k in groups)
        kept = any(live(content, family) for family in (b"e/", b"x/"))
        return content if gone and not kept else None

    traced = wait_for(traces_expired, 60, "every trace to expire", every=1)
    assert any(k.startswith(b"x/") for k in traced)  # they had index entries
    assert http_json(f"{system.url('orders')}/traces/{happy}")[0] == 404
    assert live(content, b"h/") == [b"h/order-keep-ok", b"h/order-keep-soldout"]  # streams stay

    # A committed reservation is closed; a payment stays CHARGED and a shipment SCHEDULED
    # (a compensation could still come): open records and their counter are kept.
    kept = {
        "inventory": [],
        "payments": [b"r/payment/order-keep-ok", b"r/seq/order-keep-ok"],
        "shipping": [b"r/seq/order-keep-ok", b"r/shipment/order-keep-ok"],
    }

    def answers_expired(service: str) -> dict[bytes, bytes | None] | None:
        content = changelog(system, f"{service}-{service}-state-changelog")
        answered = any(k.startswith(b"r/answer/") for k in content)
        quiet = live(content, b"r/") == kept[service] and not live(content, b"x/")
        return content if answered and quiet else None

    for service in PARTICIPANTS:
        state = wait_for(partial(answers_expired, service), 60, f"{service} answers to expire")
        assert any(k.startswith(b"x/") for k in state), service  # they had entries
        if service != "shipping":  # stock levels and accounts are kept
            assert live(state, b"e/"), service

    # Every live entry, the entities settled on housekeeping ticks included, names the
    # record key it belongs to: `streamapp repartition` can place all of it.
    for service in PARTICIPANTS:
        name = f"{system.env['STREAMAPP_APP_ID']}-{service}-{service}-state-changelog"
        placed = place_changelog(records_of(read_topic(system.bootstrap, name)), 4, 8)
        assert placed.targets and not placed.unplaceable, (service, placed.unplaceable[:5])

    # The views are what they were; the invariants hold from the topics.
    assert system.stock("SKU-HAPPY") == {
        "sku": "SKU-HAPPY",
        "available": 9,
        "reserved": 0,
        "committed": 1,
    }
    assert system.balance("cust-happy") == "5.00"
    status, _ = http_json(f"{system.url('orders')}/orders/order-keep-ok")
    assert status == 200
    # After the window the command is decided again: the order exists, nothing applied.
    status, late = order(system, happy, "order-keep-ok", "SKU-HAPPY", "cust-happy")
    assert status == 409 and late["error"]["type"] == "ConcurrencyError", late
    assert system.get("orders", "/orders/order-keep-ok")["version"] == first["version"] + 1
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
