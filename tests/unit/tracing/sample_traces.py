"""Trace JSON documents as GET /traces/{id} answers them, for the picture's tests."""

from __future__ import annotations

from typing import Any

T0 = "2026-12-02T12:00:00.000Z"

#: (from, to, eventType, atMs, kind) of a completed order saga.
COMPLETED_HOPS = [
    ("client", "orders", "OrderCreated", 0, "normal"),
    ("orders", "saga", "SagaStarted", 5, "normal"),
    ("saga", "inventory", "InventoryReserved", 20, "normal"),
    ("inventory", "saga", "SagaStepCompleted", 25, "normal"),
    ("saga", "payments", "PaymentProcessed", 40, "normal"),
    ("payments", "saga", "SagaStepCompleted", 45, "normal"),
    ("saga", "shipping", "ShipmentScheduled", 60, "normal"),
    ("shipping", "saga", "SagaStepCompleted", 65, "normal"),
    ("saga", "orders", "OrderConfirmed", 80, "normal"),
    ("orders", "saga", "SagaCompleted", 85, "terminal"),
    ("saga", "inventory", "InventoryCommitted", 90, "normal"),
]

#: A payment refused: the reservation is released, the order cancelled; plus a timeout
#: (the saga to itself).
COMPENSATED_HOPS = [
    ("client", "orders", "OrderCreated", 0, "normal"),
    ("orders", "saga", "SagaStarted", 4, "normal"),
    ("saga", "inventory", "InventoryReserved", 18, "normal"),
    ("inventory", "saga", "SagaStepCompleted", 22, "normal"),
    ("saga", "payments", "PaymentFailed", 37, "failure"),
    ("payments", "saga", "SagaStepFailed", 41, "failure"),
    ("saga", "saga", "SagaTimedOut", 48, "failure"),
    ("saga", "saga", "SagaCompensating", 50, "compensation"),
    ("saga", "inventory", "InventoryReleased", 63, "compensation"),
    ("inventory", "saga", "SagaStepCompensated", 66, "compensation"),
    ("saga", "orders", "OrderCancelled", 80, "compensation"),
    ("orders", "saga", "SagaCompensated", 84, "terminal"),
]


def trace_doc(
    hops: list[tuple[str, str, str, int, str]], status: str = "COMPLETED", cid: str = "c-1"
) -> dict[str, Any]:
    """The contract's trace JSON for a list of hops (event ids e0, e1, ...)."""
    lanes: dict[str, None] = {}
    events, edges = [], []
    for index, (source, target, event_type, at, kind) in enumerate(hops):
        lanes.setdefault(source, None)
        lanes.setdefault(target, None)
        event_id = f"e{index}"
        events.append(
            {
                "eventId": event_id,
                "eventType": event_type,
                "service": target,
                "from": source,
                "topic": f"p.{target}.events",
                "partition": 1,
                "offset": index,
                "timestamp": T0,
                "atMs": at,
                "causationId": f"e{index - 1}" if index else "cmd-1",
                "aggregateId": "order-1",
                "kind": kind,
            }
        )
        edges.append(
            {
                "from": source,
                "to": target,
                "eventId": event_id,
                "eventType": event_type,
                "atMs": at,
                "kind": kind,
            }
        )
    services = list(dict.fromkeys(target for _s, target, *_ in hops))
    return {
        "correlationId": cid,
        "status": status,
        "startedAt": T0,
        "endedAt": T0,
        "durationMs": hops[-1][3] if hops else 0,
        "initiatingEvent": hops[0][2] if hops else None,
        "aggregateIds": ["order-1"],
        "services": services,
        "hops": len(edges),
        "events": events,
        "nodes": [{"id": lane, "label": lane} for lane in lanes],
        "edges": edges,
    }
