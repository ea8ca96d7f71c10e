"""The order saga through the four real services: outcomes, timeouts, cancels, restore.

One deployment serves the whole module (starting four workers is the expensive part);
every test uses its own skus and customers (see system.TEST_SEEDS), so they are
independent of each other's effects. The last test restarts everything with deleted
table directories and checks that every view still shows the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from streamapp.messages import Command, new_id
from tests.integration.kafka_io import events_on, send_commands
from tests.integration.support import http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

STEP_TIMEOUT_S = 8


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path_factory.mktemp("saga"),
        saga_step_timeout_ms=str(STEP_TIMEOUT_S * 1000),
        saga_compensation_timeout_ms="3000",
        # The step deadline must cover the retry budget: 0.5 + 1 + 2 s (+10 %) < 8 s.
        retry_base_ms="500",
        retry_max_attempts="3",
    )
    deployment.start()
    yield deployment
    deployment.kill()


def place(system: System, customer: str, sku: str, quantity: int = 2, country: str = "NL") -> str:
    """POST /orders; the order id."""
    order_id = f"order-{new_id()[:12]}"
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": order_id,
            "customerId": customer,
            "items": [{"sku": sku, "quantity": quantity, "unitPrice": "10.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": country, "city": "Delft", "line1": "Mekelweg 4"},
        },
    )
    assert status == 201, body
    return order_id


def statuses(saga: Any) -> dict[str, str]:
    return {step["name"]: step["status"] for step in saga["steps"]}


def order_status(system: System, order_id: str) -> str:
    return str(system.get("orders", f"/orders/{order_id}")["status"])


def test_happy_path_confirms_the_order_and_commits_stock_and_money(system: System) -> None:
    order_id = place(system, "cust-happy", "SKU-HAPPY", quantity=3)
    saga = system.wait_saga(order_id, "COMPLETED")
    assert set(statuses(saga).values()) == {"SUCCEEDED"}
    assert saga["sagaType"] == "OrderFulfillment" and saga["currentStep"] is None
    assert [e["eventType"] for e in saga["events"]][-1] == "SagaCompleted"
    assert order_status(system, order_id) == "CONFIRMED"
    wait_for(lambda: system.stock("SKU-HAPPY")["committed"] == 3, 20, "stock committed")
    assert system.stock("SKU-HAPPY") == {
        "sku": "SKU-HAPPY",
        "available": 7,
        "reserved": 0,
        "committed": 3,
    }
    assert Decimal(system.balance("cust-happy")) == Decimal("30.00")
    listed = system.get("orders", "/sagas?state=COMPLETED&limit=50")["sagas"]
    assert order_id in {s["sagaId"] for s in listed}


def test_inventory_failure_cancels_the_order_without_charging(system: System) -> None:
    order_id = place(system, "cust-inv", "SKU-SOLDOUT", quantity=1)
    saga = system.wait_saga(order_id, "COMPENSATED")
    assert statuses(saga)["ReserveInventory"] == "FAILED"
    assert statuses(saga)["ProcessPayment"] == "PENDING"
    assert "InventoryReservationFailed" in saga["reason"]
    wait_for(lambda: order_status(system, order_id) == "CANCELLED", 20, "order cancelled")
    assert system.stock("SKU-SOLDOUT")["available"] == 0
    assert Decimal(system.balance("cust-inv")) == 0


def test_payment_failure_releases_the_inventory(system: System) -> None:
    order_id = place(system, "cust-broke", "SKU-PAY", quantity=4)
    saga = system.wait_saga(order_id, "COMPENSATED")
    assert statuses(saga)["ProcessPayment"] == "FAILED"
    assert statuses(saga)["ReserveInventory"] == "COMPENSATED"
    wait_for(lambda: order_status(system, order_id) == "CANCELLED", 20, "order cancelled")
    assert system.stock("SKU-PAY") == {
        "sku": "SKU-PAY",
        "available": 10,
        "reserved": 0,
        "committed": 0,
    }
    assert Decimal(system.balance("cust-broke")) == 0


def test_shipping_failure_refunds_and_releases_in_reverse_order(system: System) -> None:
    order_id = place(system, "cust-ship", "SKU-SHIP", quantity=2, country="XX")
    saga = system.wait_saga(order_id, "COMPENSATED")
    assert statuses(saga) == {
        "ReserveInventory": "COMPENSATED",
        "ProcessPayment": "COMPENSATED",
        "ScheduleShipment": "FAILED",
        "ConfirmOrder": "PENDING",
    }
    compensated = [
        e["data"]["step"] for e in saga["events"] if e["eventType"] == "SagaStepCompensated"
    ]
    assert compensated == ["ProcessPayment", "ReserveInventory"]  # reverse order
    wait_for(lambda: order_status(system, order_id) == "CANCELLED", 20, "order cancelled")
    assert system.stock("SKU-SHIP")["available"] == 10 and system.stock("SKU-SHIP")["reserved"] == 0
    assert Decimal(system.balance("cust-ship")) == 0
    refunds = [
        e
        for e in events_on(system.bootstrap, system.topic("payments.events"))
        if e["aggregateId"] == order_id and e["eventType"] == "PaymentRefunded"
    ]
    assert {r["eventId"] for r in refunds} and {r["data"]["amount"] for r in refunds} == {"20.00"}


def test_client_cancel_mid_saga_compensates_and_a_late_shipment_is_cancelled(
    system: System,
) -> None:
    shipping = system.workers["shipping"]
    # ScheduleShipment waits. A pause past the 3 s session drops the worker from its
    # group; it rejoins on resume and then answers late, which is what this test needs.
    shipping.pause()
    try:
        order_id = place(system, "cust-cancel", "SKU-CANCEL", quantity=1)
        wait_for(
            lambda: (system.saga(order_id) or {}).get("currentStep") == "ScheduleShipment",
            STEP_TIMEOUT_S - 2,
            "the saga to wait for shipping",
        )
        cancel = Command(new_id(), "CancelOrder", order_id, {"reason": "changed my mind"})
        send_commands(system.bootstrap, system.topic("orders.commands"), [cancel])
        saga = system.wait_saga(order_id, "COMPENSATED", timeout=STEP_TIMEOUT_S - 3)
    finally:
        shipping.resume()
    assert saga["reason"] == "changed my mind"
    assert statuses(saga)["ScheduleShipment"] == "ABANDONED"
    assert order_status(system, order_id) == "CANCELLED"
    # The shipment scheduled after the cancel is cancelled too.
    wait_for(
        lambda: statuses(system.saga(order_id))["ScheduleShipment"] == "COMPENSATED",
        30,
        "the late shipment to be cancelled",
    )
    shipment = system.get("shipping", f"/shipping/shipments/{order_id}")
    assert shipment["status"] == "CANCELLED"
    assert system.stock("SKU-CANCEL")["available"] == 10
    assert Decimal(system.balance("cust-cancel")) == 0
    assert system.saga(order_id)["state"] == "COMPENSATED"


def test_step_timeout_compensates_and_a_late_payment_is_refunded(system: System) -> None:
    system.kill9("payments")
    order_id = place(system, "cust-late", "SKU-LATE", quantity=5)
    wait_for(
        lambda: (
            order_id
            in {s["sagaId"] for s in system.get("orders", "/sagas?state=IN_FLIGHT")["sagas"]}
        ),
        10,
        "the saga to be listed in flight",
    )
    saga = system.wait_saga(order_id, "COMPENSATED", timeout=STEP_TIMEOUT_S + 20)
    assert statuses(saga)["ProcessPayment"] == "TIMED_OUT"
    assert saga["reason"] == "ProcessPayment timed out"
    wait_for(lambda: system.stock("SKU-LATE")["available"] == 10, 20, "stock released")
    system.restart("payments")
    # The payment service now charges (the command waited in Kafka); the saga refunds it.
    wait_for(
        lambda: statuses(system.saga(order_id))["ProcessPayment"] == "COMPENSATED",
        60,
        "the late payment to be refunded",
    )
    kinds = [
        e["eventType"]
        for e in events_on(system.bootstrap, system.topic("payments.events"))
        if e["aggregateId"] == order_id
    ]
    assert kinds[:2] == ["PaymentProcessed", "PaymentRefunded"]
    assert Decimal(system.balance("cust-late")) == 0
    assert system.saga(order_id)["state"] == "COMPENSATED"


def test_state_survives_restart_with_deleted_table_directories(system: System) -> None:
    sagas = system.get("orders", "/sagas?limit=1000")["sagas"]
    assert len(sagas) >= 6
    before = {
        "sagas": {s["sagaId"]: system.saga(s["sagaId"]) for s in sagas},
        "inventory": system.get("inventory", "/inventory"),
        "accounts": system.get("payments", "/payments/accounts"),
    }
    system.restart(*system.workers, wipe_tables=True)  # all stopped, then all started
    after = {
        "sagas": {s: system.saga(s) for s in before["sagas"]},
        "inventory": system.get("inventory", "/inventory"),
        "accounts": system.get("payments", "/payments/accounts"),
    }
    assert after == before
