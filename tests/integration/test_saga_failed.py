"""A compensation that keeps failing ends the saga FAILED: visible and counted.

Inventory's ReleaseInventory is made to fail every time (failure injection, straight to
the DLQ); a payment failure then needs that release, which the saga sends again with the
same id until it gives up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import http_get, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        inject_failure_rate="1",
        inject_failure_commands="ReleaseInventory",
        retry_max_attempts="0",  # a failed release goes to the DLQ at once
        saga_compensation_timeout_ms="1500",
        saga_max_compensation_attempts="2",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def test_a_compensation_that_keeps_failing_ends_failed_and_is_counted(system: System) -> None:
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": "order-failed-1",
            "customerId": "cust-broke",
            "items": [{"sku": "SKU-PAY", "quantity": 3, "unitPrice": "10.00"}],
            "shippingAddress": {"country": "NL"},
        },
    )
    assert status == 201, body
    saga = system.wait_saga("order-failed-1", "FAILED", timeout=60)
    steps = {s["name"]: s for s in saga["steps"]}
    assert steps["ProcessPayment"]["status"] == "FAILED"
    assert steps["ReserveInventory"]["status"] == "COMPENSATION_FAILED"
    assert steps["ReserveInventory"]["compensationAttempts"] == 2
    assert [e["eventType"] for e in saga["events"]][-1] == "SagaFailed"
    listed = system.get("orders", "/sagas?state=FAILED")["sagas"]
    assert [s["sagaId"] for s in listed] == ["order-failed-1"]
    metrics = http_get(f"{system.url('orders')}/metrics")[1].decode()
    assert 'streamapp_sagas_ended_total{outcome="SagaFailed"} 1.0' in metrics
    # What stays held is visible too: the reservation was never released.
    assert system.stock("SKU-PAY")["reserved"] == 3
    # Both sends of the release were dead-lettered (never retried: max attempts 0).
    dead = (
        'streamapp_dead_letters_total{error_type="TransientFailure",'
        f'topic="{system.topic("inventory.commands")}"}} 2.0'
    )

    wait_for(
        lambda: dead in http_get(f"{system.url('inventory')}/metrics")[1].decode(),
        10,
        "the two dead-lettered releases to be counted",
    )
