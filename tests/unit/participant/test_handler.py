"""The shared participant handler with each service's rules, over plain dict tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from streamapp.errors import SchemaError, UnknownCommand
from streamapp.inventory.rules import InventoryRules
from streamapp.messages import Command
from streamapp.participant.handler import ParticipantHandler, Prefixed, answer_key, unwrap
from streamapp.payments.rules import PaymentRules
from streamapp.shipping.rules import ShippingRules


class Recording(dict[bytes, Any]):
    """A table that remembers every assignment (as a changelog would)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def handler(rules: Any) -> ParticipantHandler:
    return ParticipantHandler(rules, {"entities": Recording(), "records": Recording()})


def command(kind: str, saga: str = "order-1", cid: str | None = None, **data: Any) -> Command:
    return Command(cid or f"{saga}-{kind}", kind, saga, data, correlation_id="corr")


def stock(h: ParticipantHandler, sku: str) -> dict[str, int]:
    return dict(unwrap(h.tables["entities"][sku.encode()]))


def test_inventory_reserve_commit_and_release_keep_stock_conserved() -> None:
    h = handler(InventoryRules())
    assert h.handle(command("SeedInventory", "seed", stock={"A": 5, "B": 1})).event is None
    items = [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    reserved = h.handle(command("ReserveInventory", items=items)).event
    assert reserved is not None and reserved.event_type == "InventoryReserved"
    assert reserved.causation_id == "order-1-ReserveInventory"
    assert reserved.correlation_id == "corr" and reserved.aggregate_type == "Inventory"
    assert stock(h, "A") == {"sku": "A", "available": 3, "reserved": 2, "committed": 0}
    failed = h.handle(command("ReserveInventory", "order-2", items=items)).event
    assert failed is not None and failed.event_type == "InventoryReservationFailed"
    assert failed.data["shortages"] == {"B": {"wanted": 1, "available": 0}}
    assert stock(h, "A")["available"] == 3  # all or nothing
    committed = h.handle(command("CommitInventory", items=items)).event
    assert committed is not None and committed.data["lines"] == [
        {"sku": "A", "quantity": 2},
        {"sku": "B", "quantity": 1},
    ]
    assert stock(h, "A") == {"sku": "A", "available": 3, "reserved": 0, "committed": 2}
    released = h.handle(
        command("ReleaseInventory", items=items)
    ).event  # after commit: nothing held
    assert released is not None and released.data["lines"] == []
    assert stock(h, "B") == {"sku": "B", "available": 0, "reserved": 0, "committed": 1}


def test_a_repeated_command_gets_the_same_answer_and_rewrites_its_keys() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", stock={"A": 5}))
    first = h.handle(command("ReserveInventory", items=[{"sku": "A", "quantity": 2}]))
    entities = h.tables["entities"]
    assert isinstance(entities, Recording)
    writes_before = len(entities.writes)
    again = h.handle(command("ReserveInventory", items=[{"sku": "A", "quantity": 2}]))
    assert again.duplicate and again.event == first.event
    assert stock(h, "A")["reserved"] == 2  # applied once
    assert entities.writes[writes_before:] == [b"A"]  # same value again, for the changelog


def test_seeding_adds_new_skus_and_restocks_but_never_takes_away() -> None:
    h = handler(InventoryRules())
    h.handle(command("SeedInventory", "seed", cid="s1", stock={"A": 5}))
    h.handle(command("ReserveInventory", items=[{"sku": "A", "quantity": 4}]))
    h.handle(command("SeedInventory", "seed", cid="s2", stock={"A": 8, "B": 2}))
    assert stock(h, "A") == {"sku": "A", "available": 4, "reserved": 4, "committed": 0}
    h.handle(command("SeedInventory", "seed", cid="s3", stock={"A": 1}))
    assert stock(h, "A")["available"] == 4 and stock(h, "B")["available"] == 2


def test_payments_charge_once_refund_once_within_the_limit() -> None:
    h = handler(PaymentRules())
    h.handle(command("SeedAccounts", "seed", limits={"c1": "100.00"}))
    charged = h.handle(command("ProcessPayment", customerId="c1", totalAmount="60.00")).event
    assert charged is not None and charged.event_type == "PaymentProcessed"
    declined = h.handle(
        command("ProcessPayment", "order-2", customerId="c1", totalAmount="50.00")
    ).event
    assert declined is not None and declined.event_type == "PaymentFailed"
    account = unwrap(h.tables["entities"][b"c1"])
    assert Decimal(account["balance"]) == Decimal("60.00")
    refunded = h.handle(command("RefundPayment")).event
    assert refunded is not None and refunded.data == {"customerId": "c1", "amount": "60.00"}
    again = h.handle(command("RefundPayment", cid="another-refund-id")).event
    assert again is not None and again.data["amount"] == "0"
    assert Decimal(unwrap(h.tables["entities"][b"c1"])["balance"]) == 0
    nothing = h.handle(command("RefundPayment", "order-2")).event  # was never charged
    assert nothing is not None and nothing.data["amount"] == "0"


def test_shipping_only_to_configured_countries() -> None:
    h = handler(ShippingRules(["NL"]))
    ok = h.handle(command("ScheduleShipment", shippingAddress={"country": "nl"})).event
    assert ok is not None and ok.event_type == "ShipmentScheduled" and ok.data["country"] == "NL"
    bad = h.handle(command("ScheduleShipment", "order-2", shippingAddress={"country": "XX"}))
    assert bad.event is not None and bad.event.event_type == "ShipmentFailed"
    cancelled = h.handle(command("CancelShipment")).event
    assert cancelled is not None and cancelled.data["cancelled"] is True
    assert unwrap(h.tables["records"][b"shipment/order-1"])["status"] == "CANCELLED"


def test_events_of_one_saga_are_numbered() -> None:
    h = handler(ShippingRules(["NL"]))
    first = h.handle(command("ScheduleShipment", shippingAddress={"country": "NL"})).event
    second = h.handle(command("CancelShipment")).event
    assert first is not None and second is not None
    assert (first.version, second.version) == (1, 2)


def test_bad_commands_are_rejected_without_effect() -> None:
    h = handler(InventoryRules())
    with pytest.raises(UnknownCommand):
        h.handle(command("TeleportInventory"))
    with pytest.raises(SchemaError):
        h.handle(command("ReserveInventory", items="lots"))
    with pytest.raises(SchemaError):
        handler(PaymentRules()).handle(command("ProcessPayment", customerId="c1"))
    assert not h.tables["records"]


@pytest.mark.parametrize("kept", range(0, 6))
def test_a_crash_after_any_prefix_of_a_commands_writes_is_repaired_by_processing_it_again(
    kept: int,
) -> None:
    """One table, writes in order, answer last: after a crash the changelog holds a
    prefix of the command's writes. Processing the command again gives the state of
    processing it once, whatever the prefix."""
    table = Recording()
    h = ParticipantHandler(
        InventoryRules(), {"entities": Prefixed(table, b"e/"), "records": Prefixed(table, b"r/")}
    )
    h.handle(command("SeedInventory", "seed", stock={"A": 5, "B": 3}))
    items = [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    before = dict(table)
    start = len(table.writes)
    once = h.handle(command("ReserveInventory", items=items))
    after_once = dict(table)
    written = table.writes[start:]
    assert written[-1] == b"r/" + answer_key("order-1-ReserveInventory")
    # The crash: only the first `kept` writes of the command reached the changelog.
    restored = Recording()
    restored.update(before)
    for key in written[:kept]:
        dict.__setitem__(restored, key, after_once[key])
    again = ParticipantHandler(
        InventoryRules(),
        {"entities": Prefixed(restored, b"e/"), "records": Prefixed(restored, b"r/")},
    )
    outcome = again.handle(command("ReserveInventory", items=items))
    assert outcome.event is not None and once.event is not None
    assert {**outcome.event.to_dict(), "timestamp": None} == {
        **once.event.to_dict(),
        "timestamp": None,
    }

    def state(table: dict[bytes, Any]) -> dict[bytes, Any]:
        """Values without stamps; answers without their processing time."""
        return {
            k: unwrap(v) if not k.startswith(b"r/answer/") else {**v["event"], "timestamp": None}
            for k, v in table.items()
            if v.get("event") is not None or not k.startswith(b"r/answer/")
        }

    assert state(restored) == state(after_once)


def test_a_command_cut_short_leaves_no_effect_when_another_touches_its_keys_first() -> None:
    """The chaos-test case: a kill -9 kept only the stock write of reservation X; after
    the restart a retried reservation Y of the same sku ran before X came again."""
    table = Recording()
    tables = {"entities": Prefixed(table, b"e/"), "records": Prefixed(table, b"r/")}
    ParticipantHandler(InventoryRules(), tables).handle(
        command("SeedInventory", "seed", stock={"A": 5})
    )
    before = dict(table)
    start = len(table.writes)
    x = command("ReserveInventory", "order-1", items=[{"sku": "A", "quantity": 2}])
    ParticipantHandler(InventoryRules(), tables).handle(x)
    first_write = table.writes[start]
    assert first_write == b"e/A"
    restored = Recording()
    restored.update(before)
    dict.__setitem__(restored, first_write, table[first_write])  # the cut-short prefix
    again = ParticipantHandler(
        InventoryRules(),
        {"entities": Prefixed(restored, b"e/"), "records": Prefixed(restored, b"r/")},
    )
    y = command("ReserveInventory", "order-2", items=[{"sku": "A", "quantity": 1}])
    assert again.handle(y).event.event_type == "InventoryReserved"  # type: ignore[union-attr]
    assert again.handle(x).event.event_type == "InventoryReserved"  # type: ignore[union-attr]
    assert stock(again, "A") == {"sku": "A", "available": 2, "reserved": 3, "committed": 0}
