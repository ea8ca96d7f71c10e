"""The Order aggregate: ``decide`` turns a command into new events, ``apply`` folds an
event into the state. Pure: no Faust, no I/O, no clock (timestamps come with events)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any

from streamapp.errors import InvalidTransition, UnknownCommand, ValidationError
from streamapp.messages import Command, Event, decimal_string

AGGREGATE_TYPE = "Order"

PENDING, CONFIRMED, CANCELLED = "PENDING", "CONFIRMED", "CANCELLED"

#: Commands clients send on orders.commands; ConfirmOrder comes from the saga.
COMMAND_TYPES = ("CreateOrder", "CancelOrder", "ConfirmOrder", "AddOrderNote")

MAX_ITEMS = 100
MAX_QUANTITY = 1_000_000
MAX_PRICE_DECIMALS = 4
MAX_PRICE_DIGITS = 12  # before the decimal point: 10^12 is beyond any unit price
MAX_NOTE_CHARS = 2000
#: Plain decimal notation only: Decimal() also takes "1e3", " 5 " and "1_000".
MONEY = re.compile(rf"[0-9]{{1,{MAX_PRICE_DIGITS}}}(\.[0-9]{{1,{MAX_PRICE_DECIMALS}}})?")


@dataclass(frozen=True)
class NewEvent:
    """An event decided but not yet stored: the store gives it id, version and time."""

    event_type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class OrderState:
    """An order as its events made it; ``version`` is the number of events applied."""

    order_id: str
    version: int
    status: str
    customer_id: str
    items: tuple[Mapping[str, Any], ...]
    total_amount: str
    payment_method: str | None
    shipping_address: Mapping[str, Any]
    created_at: str
    updated_at: str
    notes: int = 0
    cancel_reason: str | None = None

    def to_view(self) -> dict[str, Any]:
        """The contract's ``GET /orders/{orderId}`` body."""
        return {
            "orderId": self.order_id,
            "status": self.status,
            "version": self.version,
            "customerId": self.customer_id,
            "items": [dict(item) for item in self.items],
            "totalAmount": self.total_amount,
            "paymentMethod": self.payment_method,
            "shippingAddress": dict(self.shipping_address),
            "notes": self.notes,
            "cancelReason": self.cancel_reason,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def to_snapshot(self) -> dict[str, Any]:
        return {**asdict(self), "items": [dict(i) for i in self.items]}

    @classmethod
    def from_snapshot(cls, doc: Mapping[str, Any]) -> OrderState:
        return cls(**{**doc, "items": tuple(doc["items"])})


# -- validation -----------------------------------------------------------------------
def _money(value: Any, where: str) -> Decimal:
    try:
        amount = decimal_string(value)
    except ValueError as exc:
        raise ValidationError(f"{where} {exc}") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(f"{where} must be a non-negative decimal, got {value!r}")
    if amount and amount.adjusted() >= MAX_PRICE_DIGITS:
        raise ValidationError(f"{where} must be below 10^{MAX_PRICE_DIGITS}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PRICE_DECIMALS:
        raise ValidationError(f"{where} has more than {MAX_PRICE_DECIMALS} decimals")
    if not MONEY.fullmatch(value):
        raise ValidationError(
            f"{where} must be digits with an optional '.' and at most {MAX_PRICE_DECIMALS} "
            f"decimals (e.g. '9.99'), got {value!r}"
        )
    return amount


def _items(raw: Any) -> tuple[list[dict[str, Any]], Decimal]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError("an order needs at least one item")
    if len(raw) > MAX_ITEMS:
        raise ValidationError(f"an order has at most {MAX_ITEMS} items")
    items, total = [], Decimal(0)
    for n, item in enumerate(raw):
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{where} must be an object")
        sku, quantity = item.get("sku"), item.get("quantity")
        if not isinstance(sku, str) or not sku.strip():
            raise ValidationError(f"{where}.sku must be a non-empty string")
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)  # 2.0 is the integer 2 in JSON (and JSON Schema)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationError(f"{where}.quantity must be a positive integer")
        if quantity > MAX_QUANTITY:
            raise ValidationError(f"{where}.quantity must be at most {MAX_QUANTITY}")
        price = _money(item.get("unitPrice"), f"{where}.unitPrice")
        items.append({"sku": sku, "quantity": quantity, "unitPrice": item["unitPrice"]})
        total += price * quantity
    return items, total


def _create(command: Command) -> NewEvent:
    data = command.data
    customer = data.get("customerId")
    if not isinstance(customer, str) or not customer.strip():
        raise ValidationError("customerId is required")
    items, total = _items(data.get("items"))
    address = data.get("shippingAddress")
    if (
        not isinstance(address, dict)
        or not isinstance(address.get("country"), str)
        or not (address["country"].strip())
    ):
        raise ValidationError("shippingAddress with a country is required")
    method = data.get("paymentMethod")
    if method is not None and not isinstance(method, str):
        raise ValidationError("paymentMethod must be a string")
    return NewEvent(
        "OrderCreated",
        {
            "customerId": customer,
            "items": items,
            "totalAmount": format(total, "f"),
            "paymentMethod": method,
            "shippingAddress": address,
        },
    )


# -- decide / apply ---------------------------------------------------------------------
def decide(state: OrderState | None, command: Command) -> list[NewEvent]:
    """The events a command causes, or a CommandRejected saying why not."""
    kind = command.command_type
    if kind not in COMMAND_TYPES:
        raise UnknownCommand(f"unknown commandType {kind!r} for orders")
    if kind == "CreateOrder":
        if state is not None:
            raise InvalidTransition(f"order {command.aggregate_id} already exists")
        return [_create(command)]
    if state is None:
        raise InvalidTransition(f"{kind}: order {command.aggregate_id} does not exist")
    if kind == "AddOrderNote":
        note = command.data.get("note")
        if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE_CHARS:
            raise ValidationError(f"note must be a non-empty string of at most {MAX_NOTE_CHARS}")
        return [NewEvent("OrderNoteAdded", {"note": note})]
    if state.status != PENDING:
        raise InvalidTransition(f"{kind}: order {state.order_id} is {state.status}")
    if kind == "CancelOrder":
        reason = command.data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ValidationError("reason must be a string")
        return [NewEvent("OrderCancelled", {"reason": reason or "cancelled by client"})]
    return [NewEvent("OrderConfirmed", {})]  # ConfirmOrder


def _created(event: Event) -> OrderState:
    data = event.data
    return OrderState(
        order_id=event.aggregate_id,
        version=event.version,
        status=PENDING,
        customer_id=data["customerId"],
        items=tuple(data["items"]),
        total_amount=data["totalAmount"],
        payment_method=data.get("paymentMethod"),
        shipping_address=data["shippingAddress"],
        created_at=event.timestamp,
        updated_at=event.timestamp,
    )


_APPLY: dict[str, Callable[[OrderState, Event], OrderState]] = {
    "OrderNoteAdded": lambda s, e: replace(s, notes=s.notes + 1),
    "OrderCancelled": lambda s, e: replace(s, status=CANCELLED, cancel_reason=e.data["reason"]),
    "OrderConfirmed": lambda s, e: replace(s, status=CONFIRMED),
}


def apply(state: OrderState | None, event: Event) -> OrderState:
    """Fold one stored event into the state (events are facts: no validation here)."""
    if event.event_type == "OrderCreated":
        return _created(event)
    if state is None:
        raise ValueError(f"{event.event_type} v{event.version} before OrderCreated")
    transition = _APPLY.get(event.event_type)
    changed = transition(state, event) if transition else state  # unknown: newer schema
    return replace(changed, version=event.version, updated_at=event.timestamp)


def replay(events: Iterable[Event], state: OrderState | None = None) -> OrderState | None:
    for event in events:
        state = apply(state, event)
    return state
