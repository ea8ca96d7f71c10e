from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamapp.inventory import rules as inventory
from streamapp.inventory.rules import ReservationFailed, StockLevel
from streamapp.payments import rules as payments
from streamapp.shipping import rules as shipping

LEVELS = {"A": StockLevel("A", 5), "B": StockLevel("B", 1)}


def apply(levels: dict[str, StockLevel], changed: dict[str, StockLevel]) -> dict[str, StockLevel]:
    return {**levels, **changed}


def test_reserve_all_or_nothing() -> None:
    items = [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}]
    changed, reservation = inventory.reserve(LEVELS, None, "s1", items)
    assert changed["A"] == StockLevel("A", 2, 3) and changed["B"] == StockLevel("B", 0, 1)
    assert reservation.lines == (("A", 3), ("B", 1))
    with pytest.raises(ReservationFailed) as failed:
        inventory.reserve(
            apply(LEVELS, changed),
            None,
            "s2",
            [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
        )
    assert failed.value.shortages == {"B": (1, 0)}
    with pytest.raises(ReservationFailed, match="Z: wanted 1, available 0"):
        inventory.reserve(LEVELS, None, "s3", [{"sku": "Z", "quantity": 1}])


def test_reserve_release_commit_are_idempotent_per_saga() -> None:
    changed, reservation = inventory.reserve(LEVELS, None, "s1", [{"sku": "A", "quantity": 2}])
    levels = apply(LEVELS, changed)
    assert inventory.reserve(levels, reservation, "s1", [{"sku": "A", "quantity": 2}]) == (
        {},
        reservation,
    )
    released, after = inventory.release(levels, reservation)
    levels = apply(levels, released)
    assert levels["A"] == StockLevel("A", 5) and after is not None and after.status == "RELEASED"
    assert inventory.release(levels, after) == ({}, after)
    assert inventory.commit(levels, after) == ({}, after)
    assert inventory.release(levels, None) == ({}, None)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reserve", "release", "commit"]), st.integers(0, 4), st.integers(1, 3)
        ),
        max_size=40,
    )
)
def test_stock_is_conserved(script: list[tuple[str, int, int]]) -> None:
    levels = {"A": StockLevel("A", 6), "B": StockLevel("B", 3)}
    reservations: dict[str, inventory.Reservation] = {}
    for action, saga, quantity in script:
        saga_id = f"s{saga}"
        existing = reservations.get(saga_id)
        try:
            if action == "reserve":
                changed, res = inventory.reserve(
                    levels,
                    existing,
                    saga_id,
                    [{"sku": "A", "quantity": quantity}, {"sku": "B", "quantity": 1}],
                )
            elif action == "release":
                changed, res = inventory.release(levels, existing)  # type: ignore[assignment]
            else:
                changed, res = inventory.commit(levels, existing)  # type: ignore[assignment]
        except ReservationFailed:
            continue
        levels = apply(levels, changed)
        if res is not None:
            reservations[saga_id] = res
        assert levels["A"].total == 6 and levels["B"].total == 3
        assert all(lv.available >= 0 and lv.reserved >= 0 for lv in levels.values())


def test_payments_respect_the_credit_limit_and_refund_once() -> None:
    account = payments.Account("c", Decimal("100.00"), Decimal("90.00"))
    with pytest.raises(payments.PaymentDeclined, match="exceeds credit limit"):
        payments.charge(account, None, "s1", Decimal("10.01"))
    charged, payment = payments.charge(account, None, "s1", Decimal("10.00"))
    assert charged is not None and charged.balance == Decimal("100.00")
    assert payments.charge(charged, payment, "s1", Decimal("10.00")) == (None, payment)
    refunded, after = payments.refund(charged, payment)
    assert refunded is not None and refunded.balance == Decimal("90.00")
    assert after is not None and payments.refund(refunded, after) == (None, after)
    with pytest.raises(payments.PaymentDeclined, match="unknown"):
        payments.charge(None, None, "s2", Decimal(1))
    assert charged.to_view() == {"customerId": "c", "creditLimit": "100.00", "balance": "100.00"}


def test_shipping_countries() -> None:
    assert shipping.check_destination({"country": "nl"}, ["NL", "BE"]) == "NL"
    with pytest.raises(shipping.ShipmentRejected, match="no shipments to US"):
        shipping.check_destination({"country": "US"}, ["NL"])
    with pytest.raises(shipping.ShipmentRejected, match="unknown country"):
        shipping.check_destination(None, ["NL"])


@pytest.mark.parametrize(
    ("rules", "key", "value", "closed"),
    [
        (inventory.InventoryRules(), b"reservation/s", {"status": "RESERVED"}, False),
        (inventory.InventoryRules(), b"reservation/s", {"status": "RELEASED"}, True),
        (inventory.InventoryRules(), b"reservation/s", {"status": "COMMITTED"}, True),
        (payments.PaymentRules(), b"payment/s", {"status": "CHARGED"}, False),
        (payments.PaymentRules(), b"payment/s", {"status": "REFUNDED"}, True),
        (shipping.ShippingRules(["NL"]), b"shipment/s", {"status": "SCHEDULED"}, False),
        (shipping.ShippingRules(["NL"]), b"shipment/s", {"status": "CANCELLED"}, True),
        (payments.PaymentRules(), b"unknown/s", {"status": "REFUNDED"}, False),  # kept
    ],
)
def test_only_final_per_saga_records_are_closed(
    rules: Any, key: bytes, value: dict[str, str], closed: bool
) -> None:
    assert rules.closed(key, value) is closed
    assert list(rules.saga_records("s")) == [key] or key.startswith(b"unknown/")
