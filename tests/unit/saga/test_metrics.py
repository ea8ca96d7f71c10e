"""Saga step latencies from the states before and after a transition; sagas by state."""

from __future__ import annotations

from typing import Any

from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import SagaMachine, SagaState, Transition
from streamapp.saga.metrics import STATES, in_flight_by_state, step_latencies
from streamapp.saga.orchestration import SagaRecord

MACHINE = SagaMachine(
    order_fulfillment(
        step_timeout_ms=1000, compensation_timeout_ms=500, max_compensation_attempts=2
    )
)
T0 = 1_000_000


def start() -> Transition:
    return MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)


def answer(t: Transition, event_type: str, at: int) -> Transition:
    return MACHINE.on_event(t.state, event_type, t.commands[-1].command_id, at)


def test_each_answered_step_is_timed_from_its_command_to_its_answer() -> None:
    t0 = start()
    t1 = answer(t0, "InventoryReserved", T0 + 250)
    assert step_latencies(t0.state, t1.state, T0 + 250) == [("ReserveInventory", "succeeded", 0.25)]
    t2 = answer(t1, "PaymentProcessed", T0 + 1250)
    assert step_latencies(t1.state, t2.state, T0 + 1250) == [("ProcessPayment", "succeeded", 1.0)]
    assert step_latencies(None, t0.state, T0) == []  # a start settles nothing


def test_a_failure_then_its_compensation_are_timed_separately() -> None:
    t1 = answer(start(), "InventoryReserved", T0 + 100)
    failed = answer(t1, "PaymentFailed", T0 + 400)
    assert step_latencies(t1.state, failed.state, T0 + 400) == [("ProcessPayment", "failed", 0.3)]
    assert [c.command_type for c in failed.commands] == ["ReleaseInventory"]
    released = answer(failed, "InventoryReleased", T0 + 450)
    assert step_latencies(failed.state, released.state, T0 + 450) == [
        ("ReserveInventory", "compensated", 0.05)
    ]


def test_timeouts_cancels_and_given_up_compensations_have_their_outcomes() -> None:
    t0 = start()
    timed_out = MACHINE.on_timeout(t0.state, T0 + 1000)
    assert step_latencies(t0.state, timed_out.state, T0 + 1000) == [
        ("ReserveInventory", "timed_out", 1.0)
    ]
    cancelled = MACHINE.cancel(t0.state, "client", T0 + 20)
    assert step_latencies(t0.state, cancelled.state, T0 + 20) == [
        ("ReserveInventory", "abandoned", 0.02)
    ]
    t1 = answer(start(), "InventoryReserved", T0 + 100)
    compensating = answer(t1, "PaymentFailed", T0 + 200).state
    retried = MACHINE.on_timeout(compensating, T0 + 700).state  # attempt 2, same clock
    assert step_latencies(compensating, retried, T0 + 700) == []
    gave_up = MACHINE.on_timeout(retried, T0 + 1200).state
    assert step_latencies(retried, gave_up, T0 + 1200) == [
        ("ReserveInventory", "compensation_failed", 1.0)
    ]


def test_the_send_time_survives_the_table_record() -> None:
    state = start().state
    assert state.steps[0].sent_ms == T0
    assert SagaState.from_dict(state.to_dict()) == state
    old = state.to_dict()
    for step in old["steps"]:
        del step["sentMs"]  # a record written before the field: nothing to time
    assert SagaState.from_dict(old).steps[0].sent_ms is None


def test_sagas_in_flight_are_counted_by_state_with_every_state_listed() -> None:
    running = SagaRecord(start().state).to_dict()
    records: dict[bytes, Any] = {b"a": running, b"b": running}
    counts = in_flight_by_state([b"a", b"b", b"gone"], records.get)
    assert counts == {**dict.fromkeys(STATES, 0), "STARTED": 2}
    assert in_flight_by_state([], records.get) == dict.fromkeys(STATES, 0)
