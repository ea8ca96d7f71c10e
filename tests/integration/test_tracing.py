"""Event-flow tracing through the four real services: traceparent on every record, the
trace of a completed and of a compensated saga, STALLED while a participant is down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streamapp.messages import new_id
from streamapp.tracing.context import parse
from tests.integration.kafka_io import read_topic
from tests.integration.support import http_get, http_json, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

STALL_MS = 3000
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path_factory.mktemp("tracing"),
        trace_stall_ms=str(STALL_MS),
        retry_base_ms="500",
        retry_max_attempts="3",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def place(system: System, customer: str, sku: str, **headers: str) -> dict[str, Any]:
    """POST /orders; the reply (orderId, commandId = the correlation id)."""
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": f"order-{new_id()[:12]}",
            "customerId": customer,
            "items": [{"sku": sku, "quantity": 1, "unitPrice": "10.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
        },
        headers=headers,
    )
    assert status == 201, body
    return dict(body)


def trace_of(system: System, correlation_id: str) -> Any:
    status, body = http_json(f"{system.url('orders')}/traces/{correlation_id}", timeout=10)
    return body if status == 200 else None


def wait_trace(system: System, correlation_id: str, status: str, *types: str) -> Any:
    """The trace once it has `status` and every event type of `types`."""

    def reached() -> Any:
        trace = trace_of(system, correlation_id)
        if trace is None or trace["status"] != status:
            return None
        seen = {e["eventType"] for e in trace["events"]}
        return trace if set(types) <= seen else None

    try:
        return wait_for(reached, 60, f"trace {correlation_id} {status} with {types}", 0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast: {trace_of(system, correlation_id)}") from None


def assert_causal(trace: Any) -> None:
    """Every event after the event that caused it; times consistent with durationMs."""
    position = {e["eventId"]: n for n, e in enumerate(trace["events"])}
    for n, event in enumerate(trace["events"]):
        cause = event["causationId"]
        if cause in position:
            assert position[cause] < n, (event, trace["events"])
    times = [e["atMs"] for e in trace["events"]]
    assert times[0] == 0 or min(times) == 0
    assert trace["durationMs"] == max(times) - min(times)
    assert trace["hops"] == len(trace["edges"]) == len(trace["events"])
    assert [(h["to"], h["eventId"]) for h in trace["edges"]] == [
        (e["service"], e["eventId"]) for e in trace["events"]
    ]


def test_a_completed_saga_is_traced_hop_by_hop_in_the_clients_trace(system: System) -> None:
    reply = place(
        system, "cust-happy", "SKU-HAPPY", traceparent=f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"
    )
    trace = wait_trace(
        system, reply["commandId"], "COMPLETED", "SagaCompleted", "InventoryCommitted"
    )
    assert_causal(trace)
    hops = [(h["from"], h["to"], h["eventType"]) for h in trace["edges"]]
    for expected in [
        ("client", "orders", "OrderCreated"),
        ("orders", "saga", "SagaStarted"),
        ("saga", "inventory", "InventoryReserved"),
        ("inventory", "saga", "SagaStepCompleted"),
        ("saga", "payments", "PaymentProcessed"),
        ("payments", "saga", "SagaStepCompleted"),
        ("saga", "shipping", "ShipmentScheduled"),
        ("shipping", "saga", "SagaStepCompleted"),
        ("saga", "orders", "OrderConfirmed"),
        ("orders", "saga", "SagaCompleted"),
        ("saga", "inventory", "InventoryCommitted"),
    ]:
        assert expected in hops, (expected, hops)
    chain = [e["eventType"] for e in trace["events"]]
    main = [
        "OrderCreated",
        "SagaStarted",
        "InventoryReserved",
        "PaymentProcessed",
        "ShipmentScheduled",
        "OrderConfirmed",
        "SagaCompleted",
    ]
    assert [t for t in chain if t in main] == main, chain
    assert set(trace["services"]) == {"orders", "saga", "inventory", "payments", "shipping"}
    assert trace["nodes"][0]["id"] == "client"
    assert trace["aggregateIds"] == [reply["orderId"]]

    # Every record of this conversation carries the client's trace id (W3C traceparent).
    for topic in (
        "orders.commands",
        "orders.events",
        "sagas.events",
        "inventory.commands",
        "inventory.events",
        "payments.events",
        "shipping.events",
    ):
        records = [
            r
            for r in read_topic(system.bootstrap, system.topic(topic))
            if r.key == reply["orderId"].encode() or reply["orderId"].encode() in (r.value or b"")
        ]
        assert records, topic
        for record in records:
            header = dict(record.headers).get("traceparent")
            parsed = parse(header)
            assert parsed is not None and parsed[0] == CLIENT_TRACE, (topic, record.headers)

    listed = http_json(f"{system.url('orders')}/traces?status=COMPLETED&limit=100")[1]
    assert reply["commandId"] in {t["correlationId"] for t in listed["traces"]}


def test_a_compensated_saga_shows_its_failure_and_compensations(system: System) -> None:
    reply = place(system, "cust-broke", "SKU-PAY")
    trace = wait_trace(
        system, reply["commandId"], "FAILED", "PaymentFailed", "InventoryReleased", "OrderCancelled"
    )
    assert_causal(trace)
    kinds = {e["eventType"]: e["kind"] for e in trace["events"]}
    assert kinds["PaymentFailed"] == "failure"
    assert kinds["InventoryReleased"] == "compensation"
    assert kinds["SagaCompensated"] == "terminal"
    types = [e["eventType"] for e in trace["events"]]
    assert types.index("PaymentFailed") < types.index("InventoryReleased")
    assert types.index("InventoryReleased") < types.index("SagaCompensated")


def test_a_trace_stalls_while_payments_is_down_and_completes_when_it_returns(
    system: System,
) -> None:
    system.kill9("payments")
    try:
        reply = place(system, "cust-late", "SKU-LATE")
        stalled = wait_trace(system, reply["commandId"], "STALLED", "InventoryReserved")
        assert "payments" not in stalled["services"]
        listed = http_json(f"{system.url('orders')}/traces?status=STALLED")[1]["traces"]
        assert reply["commandId"] in {t["correlationId"] for t in listed}
        metrics = http_json_text(f"{system.url('orders')}/metrics")
        assert any(
            line.startswith("streamapp_flows_stalled ") and float(line.split()[1]) >= 1
            for line in metrics.splitlines()
        ), metrics
    finally:
        system.start("payments")
    done = wait_trace(system, reply["commandId"], "COMPLETED", "PaymentProcessed")
    assert_causal(done)


def http_json_text(url: str) -> str:
    status, body = http_get(url, timeout=10)
    assert status == 200
    return body.decode()
