"""Participant answers expire after the window; the crash-safety reading stays right."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from streamapp.eventstore.retention import due_stop, expiry_key, partition_keys
from streamapp.inventory.rules import InventoryRules, reservation_key
from streamapp.messages import Command
from streamapp.participant.handler import (
    BEFORE,
    BY,
    VALUE,
    ParticipantHandler,
    Prefixed,
    answer_key,
    reading,
    unwrap,
)
from streamapp.payments.rules import PaymentRules, payment_key
from streamapp.shipping.rules import ShippingRules, shipment_key

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
    h.handle(command("ReleaseInventory", items=ITEMS), T0 + 1_000)
    expire(h, T0 + WINDOW)  # the reservation's answer: its keys were re-stamped since
    assert reservation_key("order-1/A") in h.records
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
    assert sorted(h.records) == [b"reservation/order-1/A", b"seq/order-1/A"]  # still held
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
    for key in (answer_key(cut.command_id), reservation_key("order-1/A,B"), b"seq/order-1/A,B"):
        del h.records[key]  # the crash: only the first write (A) made it
    h.tables["entities"][b"B"] = seeded_b
    h.handle(command("ReserveInventory", "order-2", items=[{"sku": "B", "quantity": 1}]), T0)
    failed = h.handle(cut, T0 + 1)  # B is gone now: the reservation fails
    assert failed.event is not None and failed.event.event_type == "InventoryReservationFailed"
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}
    expire(h, T0 + 1 + WINDOW)
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}


def test_payments_keep_the_balance_and_drop_a_refunded_payment_record() -> None:
    h = handler(PaymentRules())
    h.handle(command("SeedAccounts", "seed", limits={"c": "100"}), T0)
    h.handle(command("ProcessPayment", customerId="c", totalAmount="30"), T0)
    h.handle(command("RefundPayment"), T0)
    assert expire(h, T0 + WINDOW) == 3
    assert payment_key("order-1") not in h.records and h.records == {}
    assert unwrap(h.tables["entities"][b"c"])["balance"] == "0"
    assert reading(h.tables)["entities"][b"c"]["balance"] == "0"


def test_a_redelivered_answer_gets_its_entry_back_with_the_first_time() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    h.index.clear()  # the crash lost the entries (written last)
    h.handle(command("ReserveInventory", items=ITEMS), T0 + 500)  # redelivered
    assert expire(h, T0 + WINDOW) == 1  # due with the first processing's time
    assert answer_key("order-1-ReserveInventory") not in h.records


# -- open per-saga records are live state: an answer's expiry keeps them -----------------
LATER = T0 + 10 * WINDOW  # a saga that lives far longer than the window


def records(h: ParticipantHandler) -> list[bytes]:
    return sorted(h.records)


def test_an_open_reservation_outlives_its_answer_and_a_late_release_gives_the_units_back() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    assert expire(h, T0 + WINDOW) == 2
    assert records(h) == [reservation_key("order-1/A"), b"seq/order-1/A"]
    assert h.records[reservation_key("order-1/A")][BY] is None  # settled: no answer needed
    assert reading(h.tables)["records"][reservation_key("order-1/A")]["status"] == "RESERVED"
    released = h.handle(command("ReleaseInventory", items=ITEMS), LATER).event
    assert released is not None and released.event_type == "InventoryReleased"
    assert released.data["lines"] == [{"sku": "A", "quantity": 2}]
    assert released.version == 2  # the counter was kept: no version written twice
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}
    assert expire(h, LATER + WINDOW) == 1  # the release's answer: the saga is closed here
    assert h.records == {} and h.index == {}
    assert level(h) == {"sku": "A", "available": 5, "reserved": 0, "committed": 0}


def test_an_open_payment_outlives_its_answer_and_a_late_refund_returns_the_money() -> None:
    h = handler(PaymentRules())
    h.handle(command("SeedAccounts", "seed", limits={"c": "100"}), T0)
    h.handle(command("ProcessPayment", customerId="c", totalAmount="30"), T0)
    assert expire(h, T0 + WINDOW) == 2
    assert records(h) == [payment_key("order-1"), b"seq/order-1"]
    assert reading(h.tables)["entities"][b"c"]["balance"] == "30"
    refunded = h.handle(command("RefundPayment"), LATER).event
    assert refunded is not None and refunded.data == {"customerId": "c", "amount": "30"}
    assert refunded.version == 2
    assert reading(h.tables)["entities"][b"c"]["balance"] == "0"  # money conserved
    expire(h, LATER + WINDOW)
    assert h.records == {} and h.index == {}
    assert reading(h.tables)["entities"][b"c"]["balance"] == "0"


def test_a_scheduled_shipment_outlives_its_answer_and_can_still_be_cancelled() -> None:
    h = handler(ShippingRules(["NL"]))
    h.handle(command("ScheduleShipment", shippingAddress={"country": "NL"}), T0)
    expire(h, T0 + WINDOW)
    assert records(h) == [b"seq/order-1", shipment_key("order-1")]
    cancelled = h.handle(command("CancelShipment"), LATER).event
    assert cancelled is not None and cancelled.data["cancelled"] is True
    assert cancelled.version == 2
    expire(h, LATER + WINDOW)
    assert h.records == {}


def test_a_closed_record_goes_with_its_answer_and_its_counter_with_it() -> None:
    inventory = handler(InventoryRules())
    inventory.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    inventory.handle(command("ReserveInventory", items=ITEMS), T0)
    inventory.handle(command("CommitInventory", items=ITEMS), T0)
    expire(inventory, T0 + WINDOW)
    assert inventory.records == {}
    assert level(inventory) == {"sku": "A", "available": 3, "reserved": 0, "committed": 2}
    failed = handler(InventoryRules())  # nothing reserved: only the counter was written
    failed.handle(command("ReserveInventory", items=ITEMS), T0)
    assert records(failed) == [answer_key("order-1-ReserveInventory"), b"seq/order-1/A"]
    expire(failed, T0 + WINDOW)
    assert failed.records == {}


def test_the_counter_stays_while_a_record_of_its_saga_is_open_and_goes_with_the_last() -> None:
    """Two sagas: one open record keeps its own counter only."""
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    h.handle(command("ReserveInventory", "order-2", items=ITEMS), T0)
    h.handle(command("ReleaseInventory", "order-2", items=ITEMS), T0)
    expire(h, T0 + WINDOW)
    assert records(h) == [reservation_key("order-1/A"), b"seq/order-1/A"]
    assert h.records[b"seq/order-1/A"] == {"value": 1, BY: None, "before": None}
    h.handle(command("CommitInventory", items=ITEMS), LATER)
    assert unwrap(h.records[b"seq/order-1/A"]) == 2
    expire(h, LATER + WINDOW)
    assert h.records == {}
    assert level(h) == {"sku": "A", "available": 3, "reserved": 0, "committed": 2}


def test_a_counter_stays_while_a_command_cut_short_stamped_a_record_of_its_saga() -> None:
    """A commit cut short after its stock and reservation writes: it writes the counter
    when it is processed again, and must not number its event 1 again."""
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    commit = command("CommitInventory", items=ITEMS)
    counter = h.records[b"seq/order-1/A"]
    h.handle(commit, T0 + 1)
    # The crash: neither the counter, nor the answer, nor its entry made it.
    h.records[b"seq/order-1/A"] = counter
    del h.records[answer_key(commit.command_id)]
    for entry in [e for e in h.index if e.endswith(answer_key(commit.command_id))]:
        del h.index[entry]
    assert h.records[reservation_key("order-1/A")][BY] == commit.command_id
    expire(h, T0 + WINDOW)  # the reservation's answer: it stamped the counter last
    assert h.records[b"seq/order-1/A"] == {"value": 1, BY: None, "before": None}
    again = h.handle(commit, T0 + WINDOW)  # processed again
    assert again.event is not None and again.event.version == 2
    assert level(h) == {"sku": "A", "available": 3, "reserved": 0, "committed": 2}
    expire(h, T0 + 2 * WINDOW)
    assert h.records == {}


class Log(dict[bytes, Any]):
    """One table that logs every write and deletion in order (as its changelog would)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[bytes, Any]] = []

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.log.append((key, None))
        super().__delitem__(key)


def service_handler(rules: Any, table: dict[bytes, Any]) -> ParticipantHandler:
    """The service's layout: one table, three key spaces."""
    tables = {"entities": Prefixed(table, b"e/"), "records": Prefixed(table, b"r/")}
    return ParticipantHandler(
        rules,
        tables,  # type: ignore[arg-type]
        retention_ms=WINDOW,
        index=Prefixed(table, b"x/"),
    )


def view(h: ParticipantHandler) -> dict[str, dict[bytes, Any]]:
    """What commands read (answers aside: their expiry is the point)."""
    seen = reading(h.tables)
    return {
        role: {k: seen[role].get(k) for k in seen[role] if not k.startswith(b"answer/")}
        for role in seen
    }


def crash_scenario() -> tuple[Log, Log]:
    """Before and after one expiry that settles stock, keeps an open reservation and its
    counter, and deletes a committed one and its counter."""
    table = Log()
    h = service_handler(InventoryRules(), table)
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0)
    h.handle(command("ReserveInventory", items=ITEMS), T0)
    h.handle(command("ReserveInventory", "order-2", items=ITEMS), T0)
    h.handle(command("CommitInventory", "order-2", items=ITEMS), T0)
    before = Log()
    dict.update(before, table)
    table.log.clear()
    expire(h, T0 + WINDOW)
    return before, table


EXPIRY_WRITES = len(crash_scenario()[1].log)


@pytest.mark.parametrize("kept", range(EXPIRY_WRITES + 1))
def test_a_crash_after_any_prefix_of_an_expiry_reads_correctly_and_is_finished_later(
    kept: int,
) -> None:
    before, after = crash_scenario()
    restored = Log()
    dict.update(restored, before)
    for key, value in after.log[:kept]:  # the prefix that reached the changelog
        if value is None:
            dict.pop(restored, key, None)
        else:
            dict.__setitem__(restored, key, value)
    crashed = service_handler(InventoryRules(), restored)
    first = view(service_handler(InventoryRules(), before))
    last = view(service_handler(InventoryRules(), after))
    closed = {b"reservation/order-2/A", b"seq/order-2/A"}  # the only reads an expiry changes
    assert last == {
        **first,
        "records": {k: v for k, v in first["records"].items() if k not in closed},
    }
    now = view(crashed)
    assert now["entities"] == first["entities"]
    assert now["records"].keys() <= first["records"].keys()
    for key, value in first["records"].items():  # as before, or deleted if closed
        assert now["records"].get(key) == value or (key in closed and key not in now["records"])
    expire(crashed, T0 + WINDOW)  # the entries left are processed again
    assert dict(restored) == dict(after)
    released = crashed.handle(command("ReleaseInventory", items=ITEMS), LATER).event
    assert released is not None and released.version == 2
    assert level(crashed) == {"sku": "A", "available": 3, "reserved": 0, "committed": 2}


def test_an_expiry_settles_on_behalf_of_the_record_key_that_wrote_the_entities() -> None:
    """A housekeeping tick settles the entities; their changelog records must name the
    command record's key (streamapp repartition places them by it), not the tick's."""
    on_behalf: list[bytes | None] = []
    writes: list[tuple[bytes | None, bytes]] = []

    class Recorded(dict[bytes, Any]):
        def __setitem__(self, key: bytes, value: Any) -> None:
            writes.append((on_behalf[-1] if on_behalf else None, key))
            super().__setitem__(key, value)

    @contextlib.contextmanager
    def writing_for(key: bytes | None) -> Iterator[None]:
        on_behalf.append(key)
        try:
            yield
        finally:
            on_behalf.pop()

    tables: dict[str, Any] = {"entities": Recorded(), "records": Recorded()}
    h = ParticipantHandler(
        InventoryRules(), tables, retention_ms=WINDOW, index={}, writing_for=writing_for
    )
    h.handle(command("SeedInventory", "seed", stock={"A": 5}), T0, record_key=b"A")
    h.handle(command("ReserveInventory", items=ITEMS), T0 + 1, record_key=b"A")
    writes.clear()
    expire(h, T0 + WINDOW + 1)
    settled = [(by, key) for by, key in writes if key == b"A"]
    assert settled and all(by == b"A" for by, _ in settled), writes
    # an answer stored without its record key (older code) settles with none named
    tables["records"][answer_key("x")] = {"event": None, "at": T0, "wrote": [["entities", "A"]]}
    tables["entities"][b"A"] = {VALUE: {"sku": "A"}, BY: "x", BEFORE: None}
    writes.clear()
    assert h.expire([expiry_key(T0, answer_key("x"))]) == 1
    assert writes == [(None, b"A")]
