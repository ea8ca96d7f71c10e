"""The trace fold (streamapp.tracing.trace): causal order, hops, status, bounds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from streamapp.tracing.trace import (
    ACTIVE,
    COMPLETED,
    FAILED,
    MAX_EVENTS,
    STALLED,
    Trace,
    TracedEvent,
    epoch_ms,
    kind_of,
    read_event,
)

T0 = 1_764_676_800_000  # 2025-12-02T12:00:00Z
STALL = 30_000
CORR = "cmd-1"


def ev(
    event_id: str, event_type: str, service: str, at: int, cause: str | None, offset: int = 0
) -> TracedEvent:
    return TracedEvent(
        event_id, event_type, service, f"{service}.events", 1, offset, T0 + at, cause, "order-1"
    )


#: A completed saga as the services write it (causation ids as the code sets them).
COMPLETED_SAGA = [
    ev("e1", "OrderCreated", "orders", 0, CORR),
    ev("s1", "SagaStarted", "saga", 5, "e1"),
    ev("i1", "InventoryReserved", "inventory", 20, "cmd-reserve"),
    ev("s2", "SagaStepCompleted", "saga", 25, "i1"),
    ev("p1", "PaymentProcessed", "payments", 40, "cmd-pay"),
    ev("s3", "SagaStepCompleted", "saga", 45, "p1"),
    ev("h1", "ShipmentScheduled", "shipping", 60, "cmd-ship"),
    ev("s4", "SagaStepCompleted", "saga", 65, "h1"),
    ev("e2", "OrderConfirmed", "orders", 80, "cmd-confirm"),
    ev("s5", "SagaCompleted", "saga", 85, "e2"),
    ev("i2", "InventoryCommitted", "inventory", 90, "cmd-commit"),
]


def fold(events: list[TracedEvent]) -> Trace:
    trace = Trace.first(CORR, events[0])
    for event in events[1:]:
        trace = trace.add(event)
    return trace


def test_a_completed_saga_lists_every_hop_in_causal_order_with_its_services() -> None:
    view = fold(COMPLETED_SAGA).view(T0 + 100, STALL)
    assert view["status"] == COMPLETED
    assert [e["eventId"] for e in view["events"]] == [e.event_id for e in COMPLETED_SAGA]
    hops = [(h["from"], h["to"], h["eventType"]) for h in view["edges"]]
    assert hops == [
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
    ]
    assert view["hops"] == len(COMPLETED_SAGA)
    assert view["services"] == ["orders", "saga", "inventory", "payments", "shipping"]
    assert [n["id"] for n in view["nodes"]] == ["client", *view["services"]]
    assert view["durationMs"] == 90 == view["events"][-1]["atMs"]
    assert view["startedAt"] == "2025-12-02T12:00:00.000Z"
    assert view["initiatingEvent"] == "OrderCreated"


def test_causal_order_wins_over_timestamps_and_arrival_order() -> None:
    # The saga's clock is behind: SagaStarted claims to be earlier than its cause.
    skewed = [
        ev("s1", "SagaStarted", "saga", -3, "e1"),
        ev("e1", "OrderCreated", "orders", 0, CORR),
        ev("s2", "SagaStepCompleted", "saga", 10, "i1"),
        ev("i1", "InventoryReserved", "inventory", 10, "cmd"),
    ]
    for arrival in itertools.permutations(skewed):
        ordered = [e.event_id for e in fold(list(arrival)).ordered()]
        assert ordered.index("e1") < ordered.index("s1")
        assert ordered.index("i1") < ordered.index("s2")


def test_a_compensated_saga_shows_its_failure_and_compensations() -> None:
    events = [
        ev("e1", "OrderCreated", "orders", 0, CORR),
        ev("s1", "SagaStarted", "saga", 5, "e1"),
        ev("i1", "InventoryReserved", "inventory", 20, "cmd-reserve"),
        ev("s2", "SagaStepCompleted", "saga", 25, "i1"),
        ev("p1", "PaymentFailed", "payments", 40, "cmd-pay"),
        ev("s3", "SagaCompensating", "saga", 45, "p1"),
        ev("i2", "InventoryReleased", "inventory", 60, "cmd-release"),
        ev("s4", "SagaStepCompensated", "saga", 65, "i2"),
        ev("e2", "OrderCancelled", "orders", 80, "cmd-cancel"),
        ev("s5", "SagaCompensated", "saga", 85, "e2"),
    ]
    view = fold(events).view(T0 + 100, STALL)
    assert view["status"] == FAILED
    kinds = {e["eventType"]: e["kind"] for e in view["events"]}
    assert kinds["PaymentFailed"] == "failure"
    assert kinds["InventoryReleased"] == kinds["SagaCompensating"] == "compensation"
    assert kinds["OrderCancelled"] == "compensation" and kinds["SagaCompensated"] == "terminal"
    assert (view["edges"][8]["from"], view["edges"][8]["to"]) == ("saga", "orders")


@pytest.mark.parametrize(
    ("events", "now", "status"),
    [
        (COMPLETED_SAGA[:4], 25 + STALL - 1, ACTIVE),
        (COMPLETED_SAGA[:4], 25 + STALL, STALLED),  # no event for the stall time
        (COMPLETED_SAGA[:1], STALL * 3, STALLED),  # OrderCreated but the saga never started
        (COMPLETED_SAGA, STALL * 9, COMPLETED),  # ended: never stalls
        # a client's cancel of an order whose saga is over: no saga to wait for
        ([ev("c1", "OrderCancelled", "orders", 0, CORR)], STALL * 9, COMPLETED),
    ],
)
def test_status(events: list[TracedEvent], now: int, status: str) -> None:
    assert fold(events).status(T0 + now, STALL) == status


def test_a_stalled_trace_completes_when_its_events_come() -> None:
    stalled = fold(COMPLETED_SAGA[:5])
    assert stalled.status(T0 + 40 + STALL, STALL) == STALLED
    later = stalled
    for event in COMPLETED_SAGA[5:]:
        later = later.add(event)
    assert later.status(T0 + 40 + STALL, STALL) == COMPLETED


def test_storage_round_trip_and_duplicates() -> None:
    trace = fold(COMPLETED_SAGA)
    again = Trace.from_dict(trace.to_dict())
    assert again == trace and again.has("s5") and not again.has("nope")


def test_a_runaway_trace_stays_bounded() -> None:
    trace = Trace.first(CORR, ev("e0", "OrderCreated", "orders", 0, CORR))
    for n in range(1, MAX_EVENTS + 50):
        trace = trace.add(ev(f"x{n}", "SagaStepCompleted", "saga", n, f"e{n - 1}"))
    assert len(trace.events) == MAX_EVENTS and trace.dropped == 50
    assert trace.view(T0, STALL)["droppedEvents"] == 50


def test_a_causation_cycle_does_not_lose_events() -> None:
    cyclic = [ev("a", "X", "saga", 0, "b"), ev("b", "Y", "saga", 1, "a")]
    assert sorted(e.event_id for e in fold(cyclic).ordered()) == ["a", "b"]


@pytest.mark.parametrize(
    ("doc", "read"),
    [
        ({"eventId": "e", "eventType": "T", "correlationId": "c"}, True),
        ({"eventId": "e", "eventType": "T"}, False),  # no correlation: nothing to trace
        ({"eventId": 1, "eventType": "T", "correlationId": "c"}, False),
        ({"eventId": "e", "eventType": "T", "correlationId": ""}, False),
    ],
)
def test_read_event(doc: dict[str, Any], read: bool) -> None:
    assert (read_event(doc, "orders", "t", 0, 0, T0) is not None) is read


def test_times() -> None:
    assert epoch_ms("2025-12-02T12:00:00.250Z", 0) == T0 + 250
    assert epoch_ms("not a time", 7) == 7 and epoch_ms(None, 8) == 8
    assert kind_of("ShipmentFailed") == "failure" and kind_of("SagaFailed") == "terminal"
