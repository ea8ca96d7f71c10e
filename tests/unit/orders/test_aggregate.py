from __future__ import annotations

from typing import Any

import pytest

from streamapp.errors import InvalidTransition, UnknownCommand, ValidationError
from streamapp.messages import Event
from streamapp.orders.aggregate import (
    CANCELLED,
    CONFIRMED,
    PENDING,
    NewEvent,
    OrderState,
    apply,
    decide,
    replay,
)
from tests.unit.orders.factories import ITEMS, command, create


def stored(order_id: str, drafts: list[NewEvent], start: int = 1) -> list[Event]:
    return [
        Event(
            f"e{start + n}",
            d.event_type,
            order_id,
            "Order",
            start + n,
            f"2026-11-26T12:00:0{n % 10}.000Z",
            "corr",
            "cause",
            "orders",
            d.data,
        )
        for n, d in enumerate(drafts)
    ]


def test_create_computes_the_total_as_a_decimal_string() -> None:
    [created] = decide(None, create())
    assert created.event_type == "OrderCreated"
    assert created.data["totalAmount"] == "20.00"
    state = apply(None, stored("order-1", [created])[0])
    assert state.status == PENDING and state.version == 1 and state.customer_id == "cust-7"
    assert state.to_view()["totalAmount"] == "20.00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": []}, "at least one item"),
        ({"items": [{"sku": "A", "quantity": 0, "unitPrice": "1"}]}, "positive integer"),
        ({"items": [{"sku": "A", "quantity": -2, "unitPrice": "1"}]}, "positive integer"),
        ({"items": [{"sku": "A", "quantity": 1.5, "unitPrice": "1"}]}, "positive integer"),
        ({"items": [{"sku": "A", "quantity": True, "unitPrice": "1"}]}, "positive integer"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": 9.99}]}, "never a float"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": "-1"}]}, "non-negative"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": "abc"}]}, "not a decimal"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": "NaN"}]}, "non-negative"),
        ({"items": [{"sku": "", "quantity": 1, "unitPrice": "1"}]}, "sku"),
        # Decimal() takes these; the contract's money strings (and OpenAPI) do not.
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": "1e3"}]}, "digits"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": " 5"}]}, "digits"),
        ({"items": [{"sku": "A", "quantity": 1, "unitPrice": "1_000"}]}, "digits"),
        ({"customerId": ""}, "customerId is required"),
        ({"customerId": None}, "customerId is required"),
        ({"shippingAddress": {"city": "Delft"}}, "country"),
    ],
)
def test_invalid_create_orders_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        decide(None, create(**data))


def test_an_integral_json_number_is_an_integer_quantity() -> None:
    [created] = decide(None, create(items=[{"sku": "A", "quantity": 2.0, "unitPrice": "1.5"}]))
    assert created.data["items"][0]["quantity"] == 2
    assert isinstance(created.data["items"][0]["quantity"], int)
    assert created.data["totalAmount"] == "3.0"


def test_state_transitions() -> None:
    events = stored("order-1", decide(None, create()))
    state = replay(events)
    assert state is not None
    confirmed = apply(state, stored("order-1", decide(state, command("ConfirmOrder")), 2)[0])
    assert confirmed.status == CONFIRMED and confirmed.version == 2
    with pytest.raises(InvalidTransition, match="CONFIRMED"):
        decide(confirmed, command("CancelOrder"))
    cancelled = apply(state, stored("order-1", decide(state, command("CancelOrder")), 2)[0])
    assert cancelled.status == CANCELLED and cancelled.cancel_reason == "cancelled by client"
    with pytest.raises(InvalidTransition):
        decide(cancelled, command("ConfirmOrder"))
    with pytest.raises(InvalidTransition, match="already exists"):
        decide(state, create(expected=None))
    with pytest.raises(InvalidTransition, match="does not exist"):
        decide(None, command("CancelOrder"))
    noted = apply(
        cancelled, stored("order-1", decide(cancelled, command("AddOrderNote", note="hi")), 3)[0]
    )
    assert noted.notes == 1 and noted.status == CANCELLED


def test_unknown_commands_and_bad_notes() -> None:
    with pytest.raises(UnknownCommand):
        decide(None, command("ShipIt"))
    state = replay(stored("order-1", decide(None, create())))
    with pytest.raises(ValidationError):
        decide(state, command("AddOrderNote", note=""))


def test_snapshot_round_trip() -> None:
    state = replay(stored("order-1", decide(None, create())))
    assert state is not None
    assert OrderState.from_snapshot(state.to_snapshot()) == state
    assert state.to_view()["items"] == ITEMS


def test_absurd_prices_are_rejected_not_overflowed() -> None:
    for price in ("1E+999999", "1E+12", "1000000000000"):
        with pytest.raises(ValidationError, match="below 10"):
            decide(None, create(items=[{"sku": "A", "quantity": 10, "unitPrice": price}]))
    [ok] = decide(None, create(items=[{"sku": "A", "quantity": 1, "unitPrice": "999999999999.99"}]))
    assert ok.data["totalAmount"] == "999999999999.99"
