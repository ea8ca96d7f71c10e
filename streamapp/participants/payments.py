"""Payment rules (pure): charge within the credit limit, refund at most once.

balance = the amount currently charged; a payment raises it, a refund lowers it; it
never exceeds creditLimit. A payment is per saga: charging again for the same saga and
refunding twice change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

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
