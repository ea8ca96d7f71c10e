"""How the saga keys its commands: declared per step (Step.key_field), pure.

Payments commands are keyed by the order's customerId, so a customer's account and
charges stay in one partition of payments.commands; inventory commands fan out, one per
sku of the order, keyed by the sku; every other command (and every participant answer)
is keyed by the saga id.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.saga.definition import Step, order_fulfillment
from streamapp.saga.machine import SagaCommand, SagaMachine, SagaState, Transition
from streamapp.saga.orchestration import ORDERS, Incoming, react

DEFINITION = order_fulfillment(
    step_timeout_ms=1000, compensation_timeout_ms=500, max_compensation_attempts=3
)
MACHINE = SagaMachine(DEFINITION)
T0 = 1_000_000
ORDER = {
    "customerId": "cust-7",
    "items": [
        {"sku": "B", "quantity": 1},
        {"sku": "A", "quantity": 2},
        {"sku": "B", "quantity": 3},
    ],
    "totalAmount": "9.99",
}


def expected_key(command: SagaCommand) -> str:
    """The keying rule: payments by customer, inventory by sku, the rest by the saga id."""
    if command.topic == "payments.commands":
        return str(ORDER["customerId"])
    if command.topic == "inventory.commands":
        (sku,) = {item["sku"] for item in command.data["items"]}  # one sku per command
        return str(sku)
    return command.saga_id


def test_the_order_saga_declares_which_field_keys_each_step() -> None:
    keyed = {step.name: step.key_field for step in DEFINITION.steps}
    assert keyed == {
        "ReserveInventory": None,  # fans out per sku instead
        "ProcessPayment": "customerId",
        "ScheduleShipment": None,  # the order id
        "ConfirmOrder": None,
    }


def test_record_key_is_the_field_a_non_empty_string_else_the_saga_id() -> None:
    step = DEFINITION.step("ProcessPayment")
    assert step.record_key("order-1", {"customerId": "c1"}) == "c1"
    for data in ({}, {"customerId": ""}, {"customerId": 7}, {"customerId": None}):
        assert step.record_key("order-1", data) == "order-1"
    assert DEFINITION.step("ScheduleShipment").record_key("order-1", ORDER) == "order-1"


def test_a_keyed_step_must_carry_the_data_it_is_keyed_by() -> None:
    with pytest.raises(ValueError, match="key_field needs with_data"):
        Step("S", "S", "t", frozenset({"ok"}), frozenset(), 1000, with_data=False, key_field="x")


def test_a_refund_carries_the_customer_and_its_key_like_the_charge() -> None:
    t = MACHINE.start("order-1", ORDER, "corr", T0)
    reserve_a, reserve_b = t.commands
    t = MACHINE.on_event(t.state, "InventoryReserved", reserve_a.command_id, T0 + 1)
    t = MACHINE.on_event(t.state, "InventoryReserved", reserve_b.command_id, T0 + 1)
    (charge,) = t.commands
    assert (charge.command_type, charge.key) == ("ProcessPayment", "cust-7")
    t = MACHINE.on_event(t.state, "PaymentProcessed", charge.command_id, T0 + 2)
    (ship,) = t.commands
    assert ship.key == "order-1"
    t = MACHINE.on_event(t.state, "ShipmentFailed", ship.command_id, T0 + 3)
    (refund,) = t.commands
    assert refund.command_type == "RefundPayment" and refund.topic == "payments.commands"
    assert refund.key == "cust-7" and refund.data["customerId"] == "cust-7"
    # re-sent on its deadline and after a crash: the same key
    again = MACHINE.on_timeout(t.state, T0 + 3 + 500)
    assert [(c.command_type, c.key) for c in again.commands] == [("RefundPayment", "cust-7")]
    assert [(c.command_type, c.key) for c in MACHINE.outstanding(t.state)] == [
        ("RefundPayment", "cust-7")
    ]


def test_the_orchestrator_sends_each_command_with_its_steps_key() -> None:
    created = Incoming(ORDERS, "orders.events", 0, "OrderCreated", "ev-0", "cmd", "corr", ORDER)
    started = react(MACHINE, "order-1", None, created, T0)
    assert [(o.topic, o.key) for o in started.commands] == [
        ("inventory.commands", b"A"),
        ("inventory.commands", b"B"),
    ]
    record = started.record
    assert record is not None

    def answer(offset: int) -> Incoming:
        command_id = started.commands[offset].command.command_id
        return Incoming(
            "inventory",
            "inventory.events",
            offset,
            "InventoryReserved",
            f"ev-{offset}",
            command_id,
            "corr",
            {},
        )

    half = react(MACHINE, "order-1", record, answer(0), T0 + 1)
    assert half.record is not None and not half.commands  # B has not answered yet
    reserved = answer(1)
    paying = react(MACHINE, "order-1", half.record, reserved, T0 + 1)
    ((topic, key, command),) = paying.commands
    assert (topic, key, command.command_type) == ("payments.commands", b"cust-7", "ProcessPayment")
    assert command.aggregate_id == "order-1"  # the answer comes back keyed by the saga id
    assert paying.record is not None
    # a redelivered input re-sends what is awaited, with the same key
    again = react(MACHINE, "order-1", paying.record, reserved, T0 + 2)
    assert again.redelivered and [(o.topic, o.key) for o in again.commands] == [
        ("payments.commands", b"cust-7")
    ]


# -- any course of a saga ----------------------------------------------------------------
ANSWERS = (
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
    "InventoryCommitted",
)
inputs = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.sampled_from(ANSWERS), st.integers(0, 5)),
        st.tuples(st.just("timeout"), st.just(""), st.integers(0, 5)),
        st.tuples(st.just("cancel"), st.just(""), st.integers(0, 5)),
    ),
    max_size=30,
)


def step(
    state: SagaState, sent: list[SagaCommand], kind: str, event: str, pick: int, at: int
) -> Any:
    if kind == "timeout":
        return MACHINE.on_timeout(state, at)
    if kind == "cancel":
        return MACHINE.cancel(state, "changed my mind", at)
    causation = sent[pick % len(sent)].command_id if sent else None
    return MACHINE.on_event(state, event, causation, at)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_every_command_of_any_course_is_keyed_by_the_rule(course: list[Any]) -> None:
    t: Transition = MACHINE.start("order-1", ORDER, "corr", T0)
    sent = list(t.commands)
    at = T0
    for kind, event, pick in course:
        at += 600  # past any compensation deadline, sometimes past a step's
        t = step(t.state, sent, kind, event, pick, at)
        sent += t.commands
        sent += MACHINE.outstanding(t.state)  # what a crash would re-send
    for command in sent:
        assert command.key == expected_key(command), command
        if command.topic == "payments.commands":
            assert command.data["customerId"] == command.key  # it carries its key
