"""Payment rules (pure): charge within the credit limit, refund at most once.

balance = the amount currently charged; a payment raises it, a refund lowers it; it
never exceeds creditLimit. A payment is per saga: charging again for the same saga and
refunding twice change nothing.

Every payments command is keyed by the customer it charges, refunds or seeds (the saga
definition keys ProcessPayment and RefundPayment by the order's customerId; seeds by
``account_seeds``), so everything a command writes — the account, the saga's payment,
its answer and event counter — lands in the customer's partition, and RefundPayment
finds the charge there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from streamapp.errors import SchemaError, UnknownCommand
from streamapp.messages import Command
from streamapp.participant.handler import Reaction, Tables

CHARGED, REFUNDED = "CHARGED", "REFUNDED"


class PaymentDeclined(Exception):
    """The charge would take the balance above the credit limit."""


@dataclass(frozen=True)
class Account:
    customer_id: str
    credit_limit: Decimal
    balance: Decimal = Decimal(0)

    def to_view(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "creditLimit": str(self.credit_limit),
            "balance": str(self.balance),
        }


@dataclass(frozen=True)
class Payment:
    saga_id: str
    customer_id: str
    amount: Decimal
    status: str = CHARGED


def charge(
    account: Account | None, existing: Payment | None, saga_id: str, amount: Decimal
) -> tuple[Account | None, Payment]:
    """The charged account and the payment; PaymentDeclined if over the limit."""
    if existing is not None:
        return None, existing
    if account is None:
        raise PaymentDeclined("unknown customer account")
    if amount < 0:
        raise PaymentDeclined(f"negative amount {amount}")
    if account.balance + amount > account.credit_limit:
        raise PaymentDeclined(
            f"{account.customer_id}: balance {account.balance} + {amount} exceeds credit "
            f"limit {account.credit_limit}"
        )
    charged = replace(account, balance=account.balance + amount)
    return charged, Payment(saga_id, account.customer_id, amount)


def refund(account: Account, payment: Payment | None) -> tuple[Account | None, Payment | None]:
    """Give a CHARGED payment back; anything else refunds nothing."""
    if payment is None or payment.status != CHARGED:
        return None, payment
    return replace(account, balance=account.balance - payment.amount), replace(
        payment, status=REFUNDED
    )


# -- the service's rules over its tables (see participants.handler) ----------------------
def account_key(customer_id: str) -> bytes:
    return customer_id.encode()


PAYMENT = b"payment/"


def payment_key(saga_id: str) -> bytes:
    return PAYMENT + saga_id.encode()


def _account(doc: Mapping[str, Any] | None) -> Account | None:
    if doc is None:
        return None
    return Account(doc["customerId"], Decimal(doc["creditLimit"]), Decimal(doc["balance"]))


def _payment(doc: Mapping[str, Any] | None) -> Payment | None:
    if doc is None:
        return None
    return Payment(doc["sagaId"], doc["customerId"], Decimal(doc["amount"]), doc["status"])


def _payment_doc(payment: Payment) -> dict[str, Any]:
    return {
        "sagaId": payment.saga_id,
        "customerId": payment.customer_id,
        "amount": str(payment.amount),
        "status": payment.status,
    }


def account_seeds(limits: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SeedAccounts commands for seeded credit limits, as (record key, data): one per
    customer, keyed by it like every payments command, so that an account is written
    only in its customer's partition."""
    return [
        (customer, {"limits": {customer: str(limit)}}) for customer, limit in sorted(limits.items())
    ]


def set_limit(account: Account | None, customer_id: str, limit: Decimal) -> Account:
    """Seeding: a new account, or a new limit (never below what is charged now)."""
    if account is None:
        return Account(customer_id, limit)
    return replace(account, credit_limit=max(limit, account.balance))


class PaymentRules:
    """ProcessPayment, RefundPayment; SeedAccounts (internal)."""

    service = "payments"
    aggregate_type = "Payment"

    def _customer(self, tables: Tables, command: Command) -> str | None:
        held = _payment(tables["records"].get(payment_key(command.aggregate_id)))
        if held is not None:
            return held.customer_id
        customer = command.data.get("customerId")
        return customer if isinstance(customer, str) else None

    def decide(self, tables: Tables, command: Command) -> Reaction:
        kind, saga = command.command_type, command.aggregate_id
        entities, records = tables["entities"], tables["records"]
        if kind == "SeedAccounts":
            limits = command.data.get("limits")
            if not isinstance(limits, dict):
                raise SchemaError("SeedAccounts needs data.limits {customerId: limit}")
            seeded: list[tuple[str, bytes, Any]] = []
            for customer, raw in limits.items():
                before = _account(entities.get(account_key(customer)))
                after = set_limit(before, customer, Decimal(str(raw)))
                if after != before:
                    seeded.append(("entities", account_key(customer), after.to_view()))
            return Reaction(None, writes=tuple(seeded))
        held = _payment(records.get(payment_key(saga)))
        customer = self._customer(tables, command)
        if kind == "ProcessPayment":
            amount = _amount(command.data)
            if customer is None:
                raise SchemaError("ProcessPayment needs data.customerId")
            account = _account(entities.get(account_key(customer)))
            try:
                charged, payment = charge(account, held, saga, amount)
            except PaymentDeclined as exc:
                data = {"customerId": customer, "amount": str(amount), "reason": str(exc)}
                return Reaction("PaymentFailed", data)
            charges: list[tuple[str, bytes, Any]] = [
                ("records", payment_key(saga), _payment_doc(payment))
            ]
            if charged is not None:
                charges.append(("entities", account_key(customer), charged.to_view()))
            data = {"customerId": customer, "amount": str(payment.amount)}
            return Reaction("PaymentProcessed", data, tuple(charges))
        if kind == "RefundPayment":
            account = _account(entities.get(account_key(customer))) if customer else None
            if account is None or held is None:
                return Reaction("PaymentRefunded", {"customerId": customer, "amount": "0"})
            refunded, settled = refund(account, held)
            writes: list[tuple[str, bytes, Any]] = []
            if refunded is not None and settled is not None:
                writes = [
                    ("entities", account_key(account.customer_id), refunded.to_view()),
                    ("records", payment_key(saga), _payment_doc(settled)),
                ]
            returned = str(held.amount) if refunded is not None else "0"
            data = {"customerId": account.customer_id, "amount": returned}
            return Reaction("PaymentRefunded", data, tuple(writes))
        raise UnknownCommand(f"unknown commandType {kind!r} for payments")

    def touched(self, tables: Tables, command: Command) -> list[tuple[str, bytes]]:
        keys = [("records", payment_key(command.aggregate_id))]
        customer = self._customer(tables, command)
        if customer is not None:
            keys.append(("entities", account_key(customer)))
        if command.command_type == "SeedAccounts":
            keys += [("entities", account_key(c)) for c in command.data.get("limits", {})]
        return keys

    def stream(self, command: Command) -> str:
        return command.aggregate_id  # one command of each kind per saga

    def saga_records(self, saga_id: str) -> tuple[bytes, ...]:
        return (payment_key(saga_id),)

    def closed(self, key: bytes, value: Any) -> bool:
        """A refunded payment owes nothing back; a CHARGED one may still be refunded
        (a compensation can come however late: it is kept)."""
        return key.startswith(PAYMENT) and value.get("status") == REFUNDED


def _amount(data: Mapping[str, Any]) -> Decimal:
    try:
        amount = Decimal(str(data["totalAmount"]))
    except (KeyError, InvalidOperation):
        raise SchemaError("ProcessPayment needs data.totalAmount (a decimal string)") from None
    if not amount.is_finite():
        raise SchemaError("totalAmount must be finite")
    return amount
