"""Participant answers expire after the window; the crash-safety reading stays right."""

from __future__ import annotations

from typing import Any

from streamapp.eventstore.retention import due_stop, partition_keys
from streamapp.inventory.rules import InventoryRules, reservation_key
from streamapp.messages import Command
from streamapp.participant.handler import (
    BY,
    ParticipantHandler,
    answer_key,
    reading,
    unwrap,
)
from streamapp.payments.rules import PaymentRules, payment_key

WINDOW = 3_000
T0 = 1_795_000_000_000
ITEMS = [{"sku": "A", "quantity": 2}]


def handler(rules: Any) -> ParticipantHandler:
    tables: dict[str, dict[bytes, Any]] = {"entities": {}, "records": {}}
    return ParticipantHandler(rules, tables, retention_ms=WINDOW, index={})  # type: ignore[arg-type]


def command(kind: str, saga: str = "order-1", cid: str | None = None, **data: Any) -> Command:
    return Command(cid or f"{saga}-{kind}", kind, saga, data, correlation_id="corr")


def expire(h: ParticipantHandler, now: int) -> int:
    return h.expire(partition_keys(h.index, 0, b"", due_stop(now), 1000))  # x/ stripped


def level(h: ParticipantHandler, sku: str = "A") -> dict[str, int]:
    return dict(reading(h.tables)["entities"][sku.encode()])


def test_a_repeat_within_the_window_is_a_duplicate_and_after_it_the_answer_is_gone() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    first = h.handle(command("ReserveInventory", items=ITEMS), T0)
    assert expire(h, T0 + WINDOW - 1) == 0  # the last millisecond of the window
    again = h.handle(command("ReserveInventory", items=ITEMS), T0 + WINDOW - 1)
    assert again.duplicate and again.event == first.event
    assert level(h)["reserved"] == 2  # applied once
    assert expire(h, T0 + WINDOW) == 2  # the seed's answer and the reservation's
    assert answer_key("order-1-ReserveInventory") not in h.records
    assert h.index == {}


def test_expiry_settles_entities_and_deletes_a_sagas_records_after_its_last_command() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    h.handle(command("ReleaseInventory"), T0 + 1_000)
    expire(h, T0 + WINDOW)  # the reservation's answer: its keys were re-stamped since
    assert reservation_key("order-1") in h.records
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}
    expire(h, T0 + 1_000 + WINDOW)  # the saga's last command
    assert h.records == {}  # answers, reservation and event counter: all gone
    stored = h.tables["entities"][b"A"]
    assert stored[BY] is None  # settled: reads as its value without any answer
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}


def test_a_value_stamped_by_an_expired_command_still_reads_as_applied() -> None:
    """Without settling, the stock would read as before the reservation (cut short)."""
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    expire(h, T0 + WINDOW)
    assert level(h) == {"sku": "A", "available": 3, "reserved": 0 + 2, "committed": 0}
    assert h.records == {}  # the reservation went with its saga's last command
    h.handle(command("ReserveInventory", "order-2", items=ITEMS), T0 + WINDOW)
    assert level(h)["available"] == 1


def test_a_command_cut_short_still_reads_as_not_applied_after_other_answers_expire() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    cut = command("ReserveInventory", items=ITEMS)
    h.handle(cut, T0)
    del h.records[answer_key(cut.command_id)]  # the crash: its answer never made it
    h.handle(command("ReserveInventory", "order-2", items=[{"sku": "A", "quantity": 1}]), T0)
    expire(h, T0 + WINDOW)  # the seed's and order-2's answers
    assert level(h)["reserved"] == 1  # order-2 only: the cut-short one has no effect
    h.handle(cut, T0 + WINDOW)  # processed again (in practice: seconds later)
    assert level(h) == {"sku": "A", "available": 2, "reserved": 3, "committed": 0}


def test_a_cut_short_command_that_decides_otherwise_leaves_no_stale_stamp() -> None:
    """Its first attempt stamped A; B went to another saga before it ran again."""
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5, "B": 1}), T0)
    cut = command("ReserveInventory", items=[*ITEMS, {"sku": "B", "quantity": 1}])
    seeded_b = h.tables["entities"][b"B"]
    h.handle(cut, T0)
    for key in (answer_key(cut.command_id), reservation_key("order-1"), b"seq/order-1"):
        del h.records[key]  # the crash: only the first write (A) made it
    h.tables["entities"][b"B"] = seeded_b
    h.handle(command("ReserveInventory", "order-2", items=[{"sku": "B", "quantity": 1}]), T0)
    failed = h.handle(cut, T0 + 1)  # B is gone now: the reservation fails
    assert failed.event is not None and failed.event.event_type == "InventoryReservationFailed"
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}
    expire(h, T0 + 1 + WINDOW)
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}


def test_payments_keep_the_balance_and_drop_the_payment_record() -> None:
    h = handler(PaymentRules())
    h.handle(command("SeedAccounts", "seed", limits={"c": "100"}), T0)
    h.handle(command("ProcessPayment", customerId="c", totalAmount="30"), T0)
    assert expire(h, T0 + WINDOW) == 2
    assert payment_key("order-1") not in h.records and h.records == {}
    assert unwrap(h.tables["entities"][b"c"])["balance"] == "30"
    assert reading(h.tables)["entities"][b"c"]["balance"] == "30"


def test_a_redelivered_answer_gets_its_entry_back_with_the_first_time() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    h.index.clear()  # the crash lost the entries (written last)
    h.handle(command("ReserveInventory", items=ITEMS), T0 + 500)  # redelivered
    assert expire(h, T0 + WINDOW) == 1  # due with the first processing's time
    assert answer_key("order-1-ReserveInventory") not in h.records
