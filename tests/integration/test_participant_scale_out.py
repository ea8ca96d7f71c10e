"""Every participant scales out: two workers each on a multi-partition command topic.

inventory.commands is keyed by sku (the saga sends one ReserveInventory per sku of an
order), payments.commands by customerId (an account and its charges live in the
customer's partition), shipping.commands by order id; all have the configured partition
count (4 here). With two inventory, two payments and two shipping workers, orders of
several customers and 1-3 skus complete or are compensated (a refund must find its
charge; a multi-sku order with a sold-out sku releases every sku it reserved), each
worker processes commands of its own partitions, `streamapp verify` passes, and stock
and accounts restore exactly from the changelog after their workers lost their tables.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from streamapp.messages import new_id
from tests.integration.kafka_io import read_topic
from tests.integration.support import http_get, http_json, http_post_json, settle, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

CUSTOMERS = [f"cust-{n}" for n in range(1, 9)]  # cover all 4 partitions (murmur2)
SKUS = [f"SKU-{n}" for n in range(1, 9)]
INVENTORY = ("inventory", "inventory-2")
PAYMENTS, SHIPPING = ("payments", "payments-2"), ("shipping", "shipping-2")
ORDERS = 24
UNSHIPPABLE = {3, 10, 17}  # shipping fails: refunded and released
SOLD_OUT = {5, 13, 21}  # a sold-out sku after two that are reserved, then released
PRICE = Decimal("10.00")


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(bootstrap, tmp_path_factory.mktemp("scale-out"))
    try:
        deployment.start()
        for name in (INVENTORY[1], PAYMENTS[1], SHIPPING[1]):
            deployment.add_worker(name.split("-")[0], name)
        settle(*(deployment.workers[name] for name in INVENTORY))
        settle(*(deployment.workers[name] for name in PAYMENTS))
        settle(*(deployment.workers[name] for name in SHIPPING))
        yield deployment
    finally:
        deployment.stop()


def items(n: int) -> list[dict[str, Any]]:
    """1-3 skus (two more and a sold-out one for a SOLD_OUT order)."""
    count = 3 if n in SOLD_OUT else n % 3 + 1
    lines = [
        {"sku": SKUS[(n + k) % len(SKUS)], "quantity": k + 1, "unitPrice": str(PRICE)}
        for k in range(count)
    ]
    if n in SOLD_OUT:
        lines[-1] = {"sku": "SKU-SOLDOUT", "quantity": 1, "unitPrice": str(PRICE)}
    return lines


def total(n: int) -> Decimal:
    return sum((PRICE * line["quantity"] for line in items(n)), Decimal(0))


def place(system: System, n: int) -> str:
    order_id = f"order-{new_id()[:12]}"
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": order_id,
            "customerId": CUSTOMERS[n % len(CUSTOMERS)],
            "items": items(n),
            "paymentMethod": "card",
            "shippingAddress": {"country": "XX" if n in UNSHIPPABLE else "NL", "city": "Delft"},
        },
    )
    assert status == 201, body
    return order_id


def local_accounts(system: System, worker: str) -> dict[str, Decimal]:
    status, body = http_json(f"{system.url(worker)}/payments/accounts?local=1", timeout=10)
    assert status == 200, body
    return {a["customerId"]: Decimal(a["balance"]) for a in body["accounts"]}


def received(system: System, worker: str, topic: str) -> float:
    """faust's count of records this worker received from a topic (its /metrics)."""
    metrics = http_get(f"{system.url(worker)}/metrics", timeout=10)[1].decode()
    name = re.escape(system.topic(topic))
    found = re.search(rf'faust_messages_received_per_topic_total{{topic="{name}"}} (\S+)', metrics)
    return float(found.group(1)) if found else 0.0


def all_accounts(system: System, worker: str) -> Any:
    return system.get(worker, "/payments/accounts")["accounts"]


def all_stock(system: System, worker: str) -> Any:
    return system.get(worker, "/inventory")["items"]


def test_two_workers_of_every_participant_share_the_orders(system: System) -> None:
    placed = [place(system, n) for n in range(ORDERS)]
    failing = UNSHIPPABLE | SOLD_OUT
    for n, order_id in enumerate(placed):
        system.wait_saga(order_id, "COMPENSATED" if n in failing else "COMPLETED")
    expected = dict.fromkeys(CUSTOMERS, Decimal(0))
    committed = dict.fromkeys(SKUS, 0)
    for n in range(ORDERS):
        if n not in failing:
            expected[CUSTOMERS[n % len(CUSTOMERS)]] += total(n)
            for line in items(n):
                committed[line["sku"]] += line["quantity"]

    # On the wire: one inventory command per sku of an order, keyed by the sku.
    inventory = [
        orjson.loads(r.value) | {"key": r.key}
        for r in read_topic(system.bootstrap, system.topic("inventory.commands"))
    ]
    for doc in inventory:
        skus = {i["sku"] for i in doc["data"].get("items", [])} or set(doc["data"].get("stock", {}))
        assert {doc["key"]} == {sku.encode() for sku in skus}, doc
    reserves = [d for d in inventory if d["commandType"] == "ReserveInventory"]
    assert len(reserves) == sum(len({i["sku"] for i in items(n)}) for n in range(ORDERS))
    released = {
        d["data"]["items"][0]["sku"] for d in inventory if d["commandType"] == "ReleaseInventory"
    }
    assert released  # the sold-out orders gave back the skus they had reserved
    for worker in INVENTORY:
        assert received(system, worker, "inventory.commands") > 0, worker
    expected_stock = {
        sku: {
            "sku": sku,
            "available": 100000 - committed[sku],
            "reserved": 0,
            "committed": committed[sku],
        }
        for sku in SKUS
    }

    def stock_settled() -> bool:
        # a saga is COMPLETED before its CommitInventory (per sku) has been processed
        found = {level["sku"]: level for level in all_stock(system, INVENTORY[0])}
        return all(found[sku] == expected_stock[sku] for sku in SKUS)

    wait_for(stock_settled, 30, "every completed order's skus to be committed")
    stock = {level["sku"]: level for level in all_stock(system, INVENTORY[0])}
    assert all_stock(system, INVENTORY[1]) == list(stock.values())  # gathered from both
    for sku in SKUS:
        for worker in INVENTORY:  # any worker answers for any sku (forwarded)
            assert system.get(worker, f"/inventory/{sku}") == stock[sku]

    # On the wire: payments commands keyed by their customer, shipping's by the order.
    commands = read_topic(system.bootstrap, system.topic("payments.commands"))
    saga_commands = [(r.key, orjson.loads(r.value)) for r in commands]
    kinds = {doc["commandType"] for _, doc in saga_commands}
    assert {"ProcessPayment", "RefundPayment", "SeedAccounts"} <= kinds
    for key, doc in saga_commands:
        customer = (
            doc["data"]["customerId"]
            if doc["commandType"] != "SeedAccounts"
            else next(iter(doc["data"]["limits"]))
        )
        assert key == customer.encode(), doc
    assert len({r.partition for r in commands}) == 4
    for record in read_topic(system.bootstrap, system.topic("shipping.commands")):
        assert record.key == orjson.loads(record.value)["aggregateId"].encode()

    # Each payments worker answers for its own customers, and charged some of them.
    owned = {worker: local_accounts(system, worker) for worker in PAYMENTS}
    assert not set(owned[PAYMENTS[0]]) & set(owned[PAYMENTS[1]])
    assert set(owned[PAYMENTS[0]]) | set(owned[PAYMENTS[1]]) >= set(CUSTOMERS)
    for worker in PAYMENTS:
        charged = [c for c in CUSTOMERS if owned[worker].get(c, Decimal(0)) > 0]
        assert charged, f"{worker} processed no charge: {owned}"
        assert received(system, worker, "payments.commands") > 0
    for customer in CUSTOMERS:
        balance = next(o[customer] for o in owned.values() if customer in o)
        assert balance == expected[customer], customer
        # any worker answers for any customer (forwarded to the owner)
        for worker in PAYMENTS:
            account = system.get(worker, f"/payments/accounts/{customer}")
            assert Decimal(account["balance"]) == expected[customer]
    # Each shipping worker scheduled shipments; any worker shows any order's shipment.
    for worker in SHIPPING:
        assert received(system, worker, "shipping.commands") > 0, worker
    for n, order_id in enumerate(placed):
        for worker in SHIPPING:
            status, shipment = http_json(f"{system.url(worker)}/shipping/shipments/{order_id}")
            if n in UNSHIPPABLE | SOLD_OUT:  # cancelled, or never scheduled
                assert status == 404, shipment
            else:
                assert status == 200 and shipment["status"] == "SCHEDULED", shipment

    listing = all_accounts(system, PAYMENTS[0])
    assert listing == all_accounts(system, PAYMENTS[1])  # gathered from both
    assert {a["customerId"] for a in listing} >= set(CUSTOMERS)
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr

    # Both payments and both inventory workers lose their tables: the changelogs
    # restore every account and every sku's stock.
    for worker in (*PAYMENTS, *INVENTORY):
        system.workers[worker].stop()
        shutil.rmtree(system.workers[worker].table_dir, ignore_errors=True)
    system.start("payments", "inventory")
    system.add_worker("payments", PAYMENTS[1])
    system.add_worker("inventory", INVENTORY[1])
    settle(*(system.workers[name] for name in PAYMENTS))
    settle(*(system.workers[name] for name in INVENTORY))
    assert all_accounts(system, PAYMENTS[0]) == listing
    assert all_accounts(system, PAYMENTS[1]) == listing
    assert all_stock(system, INVENTORY[1]) == list(stock.values())
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
