from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.saga.definition import Compensation, SagaDefinition, Step, order_fulfillment
from streamapp.saga.machine import (
    COMPENSATED,
    COMPENSATING,
    COMPLETED,
    EXECUTING,
    FAILED,
    STARTED,
    TERMINAL,
    SagaMachine,
    SagaState,
    Transition,
)

DEFINITION = order_fulfillment(
    step_timeout_ms=1000, compensation_timeout_ms=500, max_compensation_attempts=3
)
MACHINE = SagaMachine(DEFINITION)
T0 = 1_000_000


def start() -> Transition:
    return MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)


def reply(t: Transition, event_type: str, at: int = T0 + 10) -> Transition:
    """The participant answers the (last) command of the previous transition."""
    return MACHINE.on_event(t.state, event_type, t.commands[-1].command_id, at)


def names(t: Transition) -> list[str]:
    return [c.command_type for c in t.commands]


def test_happy_path_confirms_the_order() -> None:
    t = start()
    assert t.state.state == STARTED and names(t) == ["ReserveInventory"]
    assert t.commands[0].topic == "inventory.commands" and t.commands[0].saga_id == "order-1"
    t = reply(t, "InventoryReserved")
    assert t.state.state == EXECUTING and names(t) == ["ProcessPayment"]
    t = reply(t, "PaymentProcessed")
    assert names(t) == ["ScheduleShipment"]
    t = reply(t, "ShipmentScheduled")
    assert t.state.state == EXECUTING and names(t) == ["ConfirmOrder"]
    assert t.commands[0].topic == "orders.commands" and t.commands[0].data == {}
    # no timeout (the order decides), but a deadline to send it again
    assert t.state.next_deadline() == T0 + 10 + 500
    t = reply(t, "OrderConfirmed")
    assert t.state.state == COMPLETED and names(t) == ["CommitInventory"]
    assert [e.event_type for e in t.events] == ["SagaStepCompleted", "SagaCompleted"]
    assert t.state.end is not None and t.state.end.status == "AWAITING"
    t = reply(t, "InventoryCommitted")
    assert t.state.end is not None and t.state.end.status == "CONFIRMED"
    assert t.state.next_deadline() is None and not t.commands  # kept: no retention set


def test_a_cancel_that_beats_the_confirmation_compensates_every_step() -> None:
    confirming = reply(
        reply(reply(start(), "InventoryReserved"), "PaymentProcessed"), "ShipmentScheduled"
    )
    t = MACHINE.cancel(confirming.state, "cancelled by client", T0 + 20)
    assert names(t) == ["CancelShipment"] and t.state.step("ConfirmOrder").status == "ABANDONED"
    t = reply(reply(reply(t, "ShipmentCancelled"), "PaymentRefunded"), "InventoryReleased")
    # the client's cancel already cancelled the order: no CancelOrder of the saga's own
    assert t.state.state == COMPENSATED and names(t) == []
    assert t.state.end is not None and t.state.end.status == "CONFIRMED"


def test_outstanding_commands_are_the_ones_still_awaited() -> None:
    t = start()
    assert MACHINE.outstanding(t.state) == t.commands
    t = reply(t, "InventoryReserved")
    assert MACHINE.outstanding(t.state) == t.commands  # ReserveInventory is answered
    t = reply(t, "PaymentFailed")
    assert names(t) == ["ReleaseInventory"] and MACHINE.outstanding(t.state) == t.commands
    t = reply(t, "InventoryReleased")
    assert t.state.state == COMPENSATED and MACHINE.outstanding(t.state) == t.commands


def test_inventory_failure_cancels_without_compensations() -> None:
    t = reply(start(), "InventoryReservationFailed")
    assert t.state.state == COMPENSATED and names(t) == ["CancelOrder"]
    assert [e.event_type for e in t.events] == ["SagaCompensating", "SagaCompensated"]


def test_payment_failure_releases_inventory() -> None:
    t = reply(reply(start(), "InventoryReserved"), "PaymentFailed")
    assert t.state.state == COMPENSATING and names(t) == ["ReleaseInventory"]
    t = reply(t, "InventoryReleased")
    assert t.state.state == COMPENSATED and names(t) == ["CancelOrder"]
    assert t.state.step("ReserveInventory").status == "COMPENSATED"


def test_shipping_failure_compensates_in_reverse_order() -> None:
    t = reply(reply(reply(start(), "InventoryReserved"), "PaymentProcessed"), "ShipmentFailed")
    assert names(t) == ["RefundPayment"]
    t = reply(t, "PaymentRefunded")
    assert names(t) == ["ReleaseInventory"]
    t = reply(t, "InventoryReleased")
    assert t.state.state == COMPENSATED and names(t) == ["CancelOrder"]


def test_timeout_compensates_and_a_late_success_is_undone_too() -> None:
    reserved = reply(start(), "InventoryReserved")
    payment_command = reserved.commands[-1]
    t = MACHINE.on_timeout(reserved.state, T0 + 999)  # not yet
    assert t.state == reserved.state and not t.commands
    t = MACHINE.on_timeout(reserved.state, T0 + 10 + 1000)
    assert t.state.step("ProcessPayment").status == "TIMED_OUT"
    assert names(t) == ["ReleaseInventory"]
    t = reply(t, "InventoryReleased")
    assert t.state.state == COMPENSATED
    late = MACHINE.on_event(t.state, "PaymentProcessed", payment_command.command_id, T0 + 5000)
    assert late.state.state == COMPENSATED and names(late) == ["RefundPayment"]
    done = reply(late, "PaymentRefunded")
    assert done.state.state == COMPENSATED and not done.commands
    assert done.state.step("ProcessPayment").status == "COMPENSATED"


def test_a_late_failure_needs_nothing() -> None:
    reserved = reply(start(), "InventoryReserved")
    payment = reserved.commands[-1]
    t = reply(MACHINE.on_timeout(reserved.state, T0 + 5000), "InventoryReleased")
    late = MACHINE.on_event(t.state, "PaymentFailed", payment.command_id, T0 + 6000)
    assert not late.commands and late.state.step("ProcessPayment").status == "FAILED"


def test_compensation_is_retried_with_the_same_id_then_fails() -> None:
    t = reply(reply(start(), "InventoryReserved"), "PaymentFailed")
    release = t.commands[0]
    state, sent = t.state, [release]
    for n in range(1, 4):
        t = MACHINE.on_timeout(state, T0 + 10 + 500 * n + 1)
        state, sent = t.state, sent + list(t.commands)
    assert [c.command_id for c in sent] == [release.command_id] * 3
    assert state.state == FAILED and state.step("ReserveInventory").status == "COMPENSATION_FAILED"
    assert [e.event_type for e in t.events] == ["SagaFailed"]


def test_client_cancel_mid_saga() -> None:
    paying = reply(start(), "InventoryReserved")
    t = MACHINE.cancel(paying.state, "cancelled by client", T0 + 20)
    assert t.state.state == COMPENSATING and names(t) == ["ReleaseInventory"]
    assert t.state.step("ProcessPayment").status == "ABANDONED"
    t = reply(t, "InventoryReleased")
    assert t.state.state == COMPENSATED and not t.commands  # the order is cancelled already
    late = MACHINE.on_event(t.state, "PaymentProcessed", paying.commands[-1].command_id, T0 + 99)
    assert names(late) == ["RefundPayment"]
    assert MACHINE.cancel(late.state, "again", T0 + 100).state == late.state


def test_stale_and_duplicate_events_change_nothing() -> None:
    t = reply(start(), "InventoryReserved")
    assert MACHINE.on_event(t.state, "PaymentProcessed", "someone-else", T0).state == t.state
    again = MACHINE.on_event(t.state, "InventoryReserved", start().commands[0].command_id, T0 + 50)
    assert again.state == t.state and not again.commands


def test_state_round_trips_through_json_shapes() -> None:
    t = reply(reply(start(), "InventoryReserved"), "PaymentFailed")
    assert SagaState.from_dict(t.state.to_dict()) == t.state


def test_definitions_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        SagaDefinition("Empty", ())
    step = Step(
        "A",
        "DoA",
        "a.commands",
        frozenset({"ADone"}),
        frozenset({"AFailed"}),
        10,
        Compensation("UndoA", frozenset({"AUndone"})),
    )
    with pytest.raises(ValueError, match="unique"):
        SagaDefinition("Twice", (step, step))
    with pytest.raises(ValueError, match="success and failure"):
        replace(step, failed_by=frozenset({"ADone"}))


EVENTS = [
    "InventoryReserved",
    "InventoryReservationFailed",
    "InventoryReleased",
    "PaymentProcessed",
    "PaymentFailed",
    "PaymentRefunded",
    "ShipmentScheduled",
    "ShipmentFailed",
    "ShipmentCancelled",
    "OrderConfirmed",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["event", "timeout", "cancel"]),
            st.sampled_from(EVENTS),
            st.integers(0, 10),
        ),
        max_size=25,
    )
)
def test_any_history_keeps_the_saga_consistent(history: list[tuple[str, str, int]]) -> None:
    """Whatever arrives in whatever order, a terminal saga stays terminal (COMPENSATED
    may only turn FAILED), COMPLETED never compensates, and commands are re-sent only
    with the ids already used for that step."""
    t = start()
    ids: dict[tuple[str, str], str] = {}
    now = T0
    for kind, event_type, pick in history:
        now += 300
        before = t.state
        if kind == "event":
            sent = [s for s in t.state.steps if s.command_id] + [
                s for s in t.state.steps if s.compensation_id
            ]
            ids_known = [s.command_id for s in sent] + [s.compensation_id for s in sent]
            causation = ids_known[pick % len(ids_known)] if ids_known else None
            t = MACHINE.on_event(t.state, event_type, causation, now)
        elif kind == "timeout":
            t = MACHINE.on_timeout(t.state, now + 2000)
        else:
            t = MACHINE.cancel(t.state, "client", now)
        for command in t.commands:
            key = (command.command_type, command.saga_id)
            assert ids.setdefault(key, command.command_id) == command.command_id
        if before.state in TERMINAL:
            assert t.state.state == before.state or (before.state, t.state.state) == (
                COMPENSATED,
                FAILED,
            )
        if t.state.state == COMPLETED:
            assert all(s.status == "SUCCEEDED" for s in t.state.steps)
