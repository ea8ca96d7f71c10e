"""react(): the orchestrator's decisions for one record, without Kafka."""

from __future__ import annotations

from typing import Any

from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import SagaMachine
from streamapp.saga.orchestration import (
    ORDERS,
    TIMEOUTS,
    Incoming,
    Reaction,
    SagaRecord,
    cancel_command_id,
    react,
    view,
)

MACHINE = SagaMachine(order_fulfillment(step_timeout_ms=1000))
T0 = 1_000_000
ORDER = {"customerId": "c1", "items": [{"sku": "A", "quantity": 1}], "totalAmount": "9.99"}


class Saga:
    """Feeds records to react() like the agent does, keeping offsets per topic."""

    def __init__(self) -> None:
        self.record: SagaRecord | None = None
        self.offsets: dict[str, int] = {}

    def feed(
        self,
        source: str,
        event_type: str,
        causation: str | None = None,
        at: int = T0,
        offset: int | None = None,
        **data: Any,
    ) -> Reaction:
        topic = f"{source}.events"
        if offset is None:
            offset = self.offsets.get(topic, -1) + 1
            self.offsets[topic] = offset
        incoming = Incoming(
            source, topic, offset, event_type, f"ev-{source}-{offset}", causation, "corr", data
        )
        reaction = react(MACHINE, "order-1", self.record, incoming, at)
        if reaction.record is not None:
            self.record = reaction.record
        return reaction

    def answer(self, reaction: Reaction, event_type: str, at: int = T0) -> Reaction:
        topic, _, command = reaction.commands[-1]
        return self.feed(topic.split(".")[0], event_type, command.command_id, at)


def kinds(reaction: Reaction) -> list[str]:
    return [out.command.command_type for out in reaction.commands]


def test_order_created_starts_the_saga_and_commands_carry_the_conversation() -> None:
    saga = Saga()
    r = saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    assert kinds(r) == ["ReserveInventory"] and r.changed
    topic, key, command = r.commands[0]
    assert topic == "inventory.commands" and command.aggregate_id == "order-1"
    assert key == b"A"  # one inventory command per sku, keyed by the sku
    assert command.correlation_id == "corr" and command.causation_id == "ev-orders-0"
    assert command.data["totalAmount"] == "9.99"
    assert [e.event_type for e in r.events] == ["SagaStarted"]
    assert r.events[0].version == 1 and r.events[0].aggregate_type == "OrderFulfillment"


def test_happy_path_to_completion() -> None:
    saga = Saga()
    r = saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    for answer in ("InventoryReserved", "PaymentProcessed", "ShipmentScheduled"):
        r = saga.answer(r, answer)
    assert kinds(r) == ["ConfirmOrder"] and r.commands[0].topic == "orders.commands"
    r = saga.answer(r, "OrderConfirmed")
    assert kinds(r) == ["CommitInventory"]
    assert saga.record is not None and saga.record.state.state == "COMPLETED"
    versions = [e["version"] for e in saga.record.history]
    assert versions == list(range(1, len(versions) + 1))
    shown = view(saga.record)
    assert (
        shown["state"] == "COMPLETED" and [s["status"] for s in shown["steps"]] == ["SUCCEEDED"] * 4
    )


def test_a_redelivered_record_resends_what_is_awaited_and_changes_nothing() -> None:
    saga = Saga()
    started = saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    paying = saga.answer(started, "InventoryReserved")
    before = saga.record
    again = saga.feed(ORDERS, "OrderCreated", "cmd-1", offset=0, **ORDER)
    assert again.redelivered and not again.changed and saga.record == before
    assert kinds(again) == ["ProcessPayment"]  # still awaited; ReserveInventory is answered
    assert again.commands[0].command.command_id == paying.commands[0].command.command_id
    assert [e.event_type for e in again.events] == ["SagaStarted", "SagaStepCompleted"]


def test_client_cancel_compensates_and_needs_no_cancel_of_the_sagas_own() -> None:
    saga = Saga()
    r = saga.answer(saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER), "InventoryReserved")
    r = saga.feed(ORDERS, "OrderCancelled", "client-cmd", reason="changed my mind")
    assert kinds(r) == ["ReleaseInventory"]
    r = saga.answer(r, "InventoryReleased")
    assert kinds(r) == []  # the order is cancelled: a CancelOrder would be rejected
    assert saga.record is not None and saga.record.state.state == "COMPENSATED"
    assert saga.record.state.reason == "changed my mind"
    assert view(saga.record)["end"]["status"] == "CONFIRMED"


def test_the_sagas_own_cancel_confirms_its_cancel_order() -> None:
    saga = Saga()
    r = saga.answer(saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER), "InventoryReserved")
    r = saga.answer(r, "PaymentFailed")
    r = saga.answer(r, "InventoryReleased")
    assert kinds(r) == ["CancelOrder"]
    assert saga.record is not None and view(saga.record)["end"]["status"] == "AWAITING"
    own = saga.feed(ORDERS, "OrderCancelled", cancel_command_id("order-1", MACHINE))
    assert own.changed and not own.commands and not own.events
    assert view(saga.record)["end"]["status"] == "CONFIRMED"
    assert saga.record.state.state == "COMPENSATED"
    assert saga.record.state.reason == "ProcessPayment: PaymentFailed"


def test_timeouts_and_strays() -> None:
    saga = Saga()
    assert react(
        MACHINE,
        "order-1",
        None,
        Incoming("inventory", "inventory.events", 0, "InventoryReserved", "e", "x", None, {}),
        T0,
    ) == Reaction(None)
    r = saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    assert not saga.feed(TIMEOUTS, "Timeout", at=T0 + 999).changed  # not due yet
    r = saga.feed(TIMEOUTS, "Timeout", at=T0 + 1000)
    assert saga.record is not None and saga.record.state.state == "COMPENSATED"
    assert kinds(r) == ["CancelOrder"]
    assert not saga.feed(ORDERS, "OrderNoteAdded", "note").changed


def test_record_round_trips() -> None:
    saga = Saga()
    saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    assert saga.record is not None
    assert SagaRecord.from_dict(saga.record.to_dict()) == saga.record


def test_a_cancel_overtaking_its_retried_order_created_ends_the_saga_first() -> None:
    saga = Saga()
    r = saga.feed(ORDERS, "OrderCancelled", "client-cmd", offset=5, reason="too slow")
    assert saga.record is not None and saga.record.state.state == "COMPENSATED"
    assert not r.commands and [e.event_type for e in r.events] == ["SagaCompensated"]
    late = saga.feed(ORDERS, "OrderCreated", "cmd-1", offset=4, **ORDER)  # the retry
    assert not late.changed and saga.record.state.state == "COMPENSATED"
    assert kinds(late) == []  # nothing awaited: the order was cancelled by its client


def test_an_expired_saga_is_deleted_and_a_stray_tick_deletes_its_deadline() -> None:
    machine = SagaMachine(order_fulfillment(step_timeout_ms=1000, retention_ms=5000))
    record = None
    offsets = iter(range(100))

    def feed(source: str, kind: str, causation: str | None, at: int) -> Reaction:
        nonlocal record
        incoming = Incoming(
            source, f"{source}.events", next(offsets), kind, f"ev-{kind}", causation, "c", ORDER
        )
        reaction = react(machine, "order-1", record, incoming, at)
        record = reaction.record if not reaction.delete else None
        return reaction

    r = feed(ORDERS, "OrderCreated", "cmd-1", T0)
    r = feed("inventory", "InventoryReservationFailed", r.commands[0].command.command_id, T0 + 1)
    assert kinds(r) == ["CancelOrder"] and record is not None
    assert record.state.next_deadline() == T0 + 1 + 10_000  # the CancelOrder's re-send
    r = feed(ORDERS, "OrderCancelled", r.commands[0].command.command_id, T0 + 2)
    assert record is not None and record.state.next_deadline() is None
    assert record.state.expires_ms == T0 + 2 + 5000
    assert view(record)["expiresAt"] is not None
    assert not feed(TIMEOUTS, "Timeout", None, T0 + 4000).changed
    gone = feed(TIMEOUTS, "Timeout", None, T0 + 5002)
    assert gone.delete and gone.record is None and not gone.commands and not gone.events
    again = feed(TIMEOUTS, "Timeout", None, T0 + 6000)  # a deadline left behind
    assert again.delete and not again.changed
    # other records for the expired saga are strays
    assert react(
        machine,
        "order-1",
        None,
        Incoming("inventory", "inventory.events", 99, "InventoryReleased", "e", "x", None, {}),
        T0,
    ) == Reaction(None)


def test_a_redelivery_resends_the_unconfirmed_end_command() -> None:
    saga = Saga()
    r = saga.feed(ORDERS, "OrderCreated", "cmd-1", **ORDER)
    for answer in ("InventoryReserved", "PaymentProcessed", "ShipmentScheduled"):
        r = saga.answer(r, answer)
    done = saga.answer(r, "OrderConfirmed")
    assert kinds(done) == ["CommitInventory"]
    again = saga.feed(ORDERS, "OrderCreated", "cmd-1", offset=0, **ORDER)
    assert kinds(again) == ["CommitInventory"]
    assert again.commands[0].command.command_id == done.commands[0].command.command_id
    saga.answer(done, "InventoryCommitted")
    assert kinds(saga.feed(ORDERS, "OrderCreated", "cmd-1", offset=0, **ORDER)) == []
