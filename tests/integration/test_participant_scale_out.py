"""Payments and shipping scale out: two workers each on a multi-partition command topic.

payments.commands is keyed by customerId (an account and its charges live in the
customer's partition), shipping.commands by order id; both have the configured
partition count (4 here). With two payments and two shipping workers, orders of several
customers complete or are compensated (a refund must find its charge), each worker
processes commands of its own partitions, `streamapp verify` passes, and the accounts
restore exactly from the changelog after both payments workers lost their tables.
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
from tests.integration.support import http_get, http_json, http_post_json, settle
from tests.integration.system import System

pytestmark = pytest.mark.integration

CUSTOMERS = [f"cust-{n}" for n in range(1, 9)]  # cover all 4 partitions (murmur2)
PAYMENTS, SHIPPING = ("payments", "payments-2"), ("shipping", "shipping-2")
ORDERS = 24
UNSHIPPABLE = {3, 10, 17}  # shipping fails: refunded and released
PRICE = Decimal("10.00")


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(bootstrap, tmp_path_factory.mktemp("scale-out"))
    try:
        deployment.start()
        for name in (PAYMENTS[1], SHIPPING[1]):
            deployment.add_worker(name.split("-")[0], name)
        settle(*(deployment.workers[name] for name in PAYMENTS))
        settle(*(deployment.workers[name] for name in SHIPPING))
        yield deployment
    finally:
        deployment.stop()


def place(system: System, n: int) -> str:
    order_id = f"order-{new_id()[:12]}"
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": order_id,
            "customerId": CUSTOMERS[n % len(CUSTOMERS)],
            "items": [{"sku": f"SKU-{n % 8 + 1}", "quantity": 1, "unitPrice": str(PRICE)}],
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


def test_two_payments_and_two_shipping_workers_share_the_orders(system: System) -> None:
    placed = [place(system, n) for n in range(ORDERS)]
    for n, order_id in enumerate(placed):
        system.wait_saga(order_id, "COMPENSATED" if n in UNSHIPPABLE else "COMPLETED")
    expected = dict.fromkeys(CUSTOMERS, Decimal(0))
    for n in range(ORDERS):
        if n not in UNSHIPPABLE:
            expected[CUSTOMERS[n % len(CUSTOMERS)]] += PRICE

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
            if n in UNSHIPPABLE:
                assert status == 404, shipment
            else:
                assert status == 200 and shipment["status"] == "SCHEDULED", shipment

    listing = all_accounts(system, PAYMENTS[0])
    assert listing == all_accounts(system, PAYMENTS[1])  # gathered from both
    assert {a["customerId"] for a in listing} >= set(CUSTOMERS)
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr

    # Both payments workers lose their tables: the changelog restores every account.
    for worker in PAYMENTS:
        system.workers[worker].stop()
        shutil.rmtree(system.workers[worker].table_dir, ignore_errors=True)
    system.start("payments")
    system.add_worker("payments", PAYMENTS[1])
    settle(*(system.workers[name] for name in PAYMENTS))
    assert all_accounts(system, PAYMENTS[0]) == listing
    assert all_accounts(system, PAYMENTS[1]) == listing
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
