"""Commands for tests of the order core."""

from __future__ import annotations

from typing import Any

from streamapp.messages import Command, new_id

ITEMS = [
    {"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"},
    {"sku": "SKU-2", "quantity": 1, "unitPrice": "0.02"},
]


def create(order_id: str = "order-1", expected: int | None = 0, **data: Any) -> Command:
    payload = {
        "customerId": "cust-7",
        "items": ITEMS,
        "paymentMethod": "card",
        "shippingAddress": {"country": "NL", "city": "Delft", "line1": "x"},
        **data,
    }
    return Command(new_id(), "CreateOrder", order_id, payload, expected_version=expected)


def command(
    kind: str, order_id: str = "order-1", expected: int | None = None, **data: Any
) -> Command:
    return Command(new_id(), kind, order_id, data, expected_version=expected)
