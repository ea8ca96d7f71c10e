"""Ended sagas' working state expires after state_retention_ms; the record stays.

With a 3 s window, a completed and a compensated saga disappear from the `sagas`,
`saga-deadlines` and `saga-expiries` (the expiry index) tables (tombstones on their
changelogs, 404 on GET /sagas/{id}); their events stay on sagas.events, from which
`streamapp verify` still proves the invariants.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamapp.saga.timers import entry_saga, is_index_entry
from tests.integration.kafka_io import events_on, read_topic
from tests.integration.support import http_json, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        state_retention_ms="3000",
        # a short resend interval; the compensation horizon (x5) still exceeds the
        # default retry budget, as the settings require
        saga_compensation_timeout_ms="8000",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def place(system: System, order_id: str, customer: str, sku: str) -> None:
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": order_id,
            "customerId": customer,
            "items": [{"sku": sku, "quantity": 1, "unitPrice": "5.00"}],
            "shippingAddress": {"country": "NL"},
        },
    )
    assert status == 201, body


def latest(records: list[Any]) -> dict[bytes, bytes | None]:
    """A compacted topic's content: the last value per key (None: a tombstone)."""
    found: dict[bytes, bytes | None] = {}
    for record in records:
        found[record.key] = record.value
    return found


def test_ended_sagas_expire_and_verify_still_passes(system: System) -> None:
    place(system, "order-ret-ok", "cust-happy", "SKU-HAPPY")
    place(system, "order-ret-soldout", "cust-inv", "SKU-SOLDOUT")
    ends = {"order-ret-ok": "SagaCompleted", "order-ret-soldout": "SagaCompensated"}

    def ended() -> bool:
        events = events_on(system.bootstrap, system.topic("sagas.events"))
        seen = {(e["aggregateId"], e["eventType"]) for e in events}
        return all((saga, end) in seen for saga, end in ends.items())

    wait_for(ended, 60, "both sagas to end")

    def expired() -> bool:
        return all(
            http_json(f"{system.url('orders')}/sagas/{saga}", timeout=10)[0] == 404 for saga in ends
        )

    wait_for(expired, 60, "the ended sagas to expire", every=0.5)
    assert system.get("orders", "/sagas")["sagas"] == []
    # the orders themselves are untouched
    assert system.get("orders", "/orders/order-ret-ok")["status"] == "CONFIRMED"
    assert system.get("orders", "/orders/order-ret-soldout")["status"] == "CANCELLED"
    app_id = system.env["STREAMAPP_APP_ID"]
    for table in ("sagas", "saga-deadlines", "saga-expiries"):
        content = latest(read_topic(system.bootstrap, f"{app_id}-{table}-changelog"))
        if table == "saga-expiries":
            # the time-ordered index: x/<expiresAtMs:013d>/<sagaId>, one per settled saga
            assert all(is_index_entry(k) for k in content), content
            assert sorted(entry_saga(k).decode() for k in content) == sorted(ends), table
        else:
            assert {k.decode() for k in content} == set(ends), table
        assert all(value is None for value in content.values()), table  # tombstones
    # the record stays: the saga events are still on sagas.events
    events = events_on(system.bootstrap, system.topic("sagas.events"))
    assert {e["aggregateId"] for e in events} == set(ends)
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 sagas" in result.stdout, result.stdout
