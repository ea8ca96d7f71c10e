"""Table state per 10,000 orders, without and with state retention (pure handlers).

Drives the order handler and the three participant handlers, over dict tables laid out
as the services lay out their one table each, with the commands one successful order's
saga causes: orders CreateOrder + ConfirmOrder; inventory ReserveInventory +
CommitInventory; payments ProcessPayment; shipping ScheduleShipment (plus the seeds).
Orders arrive at 100/s of simulated time. Then the window passes and (with retention)
the expiry runs. Bytes = sum of len(key) + len(JSON value) of every key left: what
RocksDB holds and, compacted, what the changelogs hold (a tombstone is dropped after
the topic's delete.retention.ms).

    .venv/bin/python -m bench.state_retention [--orders 10000] [--no-retention]

``--no-retention`` calls the handlers as the code before retention did, so it also runs
against that code (PYTHONPATH=<checkout of it>) for the true "before" figure.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import MutableMapping
from typing import Any

import orjson

from streamapp.eventstore.store import EventStore
from streamapp.inventory.rules import InventoryRules
from streamapp.messages import Command
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.participant.handler import ParticipantHandler, Prefixed
from streamapp.payments.rules import PaymentRules
from streamapp.shipping.rules import ShippingRules

T0 = 1_795_000_000_000
EVERY_MS = 10  # 100 orders/s
WINDOW_MS = 7 * 24 * 3600 * 1000  # the default state_retention_ms
SKUS = [f"SKU-{n}" for n in range(1, 9)]
CUSTOMERS = [f"cust-{n}" for n in range(1, 9)]
#: Key families that are dedupe state (expire) rather than the data itself.
DEDUPE = (b"c/", b"x/", b"r/")


def cid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


class Participant:
    """A participant's one table (e/ entities, r/ records, x/ expiry entries)."""

    def __init__(self, rules: Any, retention: bool) -> None:
        self.table: dict[bytes, Any] = {}
        tables: dict[str, MutableMapping[bytes, Any]] = {
            "entities": Prefixed(self.table, b"e/"),
            "records": Prefixed(self.table, b"r/"),
        }
        if retention:
            self.handler = ParticipantHandler(
                rules,
                tables,
                retention_ms=WINDOW_MS,
                index=Prefixed(self.table, b"x/"),
            )
        else:
            self.handler = ParticipantHandler(rules, tables)
        self.retention = retention

    def handle(self, command: Command, now: int) -> None:
        if self.retention:
            self.handler.handle(command, now)
        else:
            self.handler.handle(command)

    def expire(self, now: int) -> None:
        stop = b"x/%013d/" % (now + 1)
        due = sorted(k[2:] for k in self.table if k.startswith(b"x/") and k < stop)
        self.handler.expire(due)


def size(table: dict[bytes, Any]) -> tuple[int, int, int]:
    """(keys, total bytes, bytes in dedupe key families)."""
    total = dedupe = 0
    for key, value in table.items():
        n = len(key) + len(orjson.dumps(value))
        total += n
        dedupe += n if key.startswith(DEDUPE) else 0
    return len(table), total, dedupe


def run(orders: int, retention: bool, passed: bool = True) -> dict[str, tuple[int, int, int]]:
    """The tables' sizes after `orders` orders; with retention, once the window `passed`
    (else while every order is still inside it: the peak)."""
    kv: dict[bytes, Any] = {}
    store = EventStore(kv)
    if retention:
        order_handler = OrderCommandHandler(order_repository(store, 100), WINDOW_MS)
    else:
        order_handler = OrderCommandHandler(order_repository(store, 100))
    services = {
        "inventory": Participant(InventoryRules(), retention),
        "payments": Participant(PaymentRules(), retention),
        "shipping": Participant(ShippingRules(["NL"]), retention),
    }
    big = {sku: 10**12 for sku in SKUS}
    services["inventory"].handle(
        Command(cid("seed-i"), "SeedInventory", "seed", {"stock": big}), T0
    )
    limits = {c: "1000000000000" for c in CUSTOMERS}
    services["payments"].handle(
        Command(cid("seed-p"), "SeedAccounts", "seed", {"limits": limits}), T0
    )
    offset = 0

    def order_command(command: Command, now: int) -> None:
        nonlocal offset
        offset += 1
        source = SourceRecord(0, offset, now)
        if retention:
            order_handler.handle(command, source, now)
        else:
            order_handler.handle(command, source)

    for n in range(orders):
        now = T0 + n * EVERY_MS
        order_id = f"order-{uuid.uuid5(uuid.NAMESPACE_URL, str(n))}"
        sku, customer = SKUS[n % len(SKUS)], CUSTOMERS[n % len(CUSTOMERS)]
        items = [{"sku": sku, "quantity": 1, "unitPrice": "9.99"}]
        data = {
            "customerId": customer,
            "items": items,
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft"},
        }
        order_command(Command(cid(order_id, "create"), "CreateOrder", order_id, data, 0), now)

        def saga(
            service: str, kind: str, payload: dict[str, Any], oid: str = order_id, at: int = now
        ) -> None:
            command = Command(cid(oid, kind), kind, oid, payload, correlation_id=oid)
            services[service].handle(command, at)

        saga("inventory", "ReserveInventory", {"items": items})
        saga("payments", "ProcessPayment", {"customerId": customer, "totalAmount": "9.99"})
        saga("shipping", "ScheduleShipment", {"shippingAddress": {"country": "NL"}})
        order_command(Command(cid(order_id, "confirm"), "ConfirmOrder", order_id, {}), now)
        saga("inventory", "CommitInventory", {})
    later = T0 + orders * EVERY_MS + WINDOW_MS
    if retention and passed:
        order_handler.expire(
            sorted(k[2:] for k in kv if k.startswith(b"x/") and k < b"x/%013d/" % (later + 1))
        )
        for service in services.values():
            service.expire(later)
    return {"orders": size(kv), **{name: size(s.table) for name, s in services.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--no-retention", action="store_true")
    args = parser.parse_args()
    modes = [(False, True)] if args.no_retention else [(False, True), (True, False), (True, True)]
    for retention, passed in modes:
        figures = run(args.orders, retention, passed)
        label = "without retention"
        if retention:
            label = "with retention, " + ("after the window" if passed else "inside the window")
        print(f"{args.orders} orders, {label}:")
        print(f"  {'table':<10} {'keys':>8} {'bytes':>12} {'dedupe bytes':>13}")
        total = [0, 0, 0]
        for table, (keys, nbytes, dedupe) in figures.items():
            print(f"  {table:<10} {keys:>8} {nbytes:>12,} {dedupe:>13,}")
            total = [total[0] + keys, total[1] + nbytes, total[2] + dedupe]
        print(f"  {'all':<10} {total[0]:>8} {total[1]:>12,} {total[2]:>13,}")


if __name__ == "__main__":
    main()
