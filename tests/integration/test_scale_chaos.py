"""Chaos with every service scaled out: 3 orders, 2 inventory, 2 payments and 2 shipping
workers on 8 partitions, orders of 1-4 skus with the usual outcome mix, and one kill -9
of a worker of every service while they flow (each restarted at once).

Afterwards every order has its outcome and `streamapp verify` passes: every saga ended
once; stock conserved per sku, every sku of a completed order reserved and committed,
nothing of a compensated one still reserved or committed (per saga and sku); money
conserved; no command applied twice; every command answered.

Nine workers and the broker on two cores: ~75 s. It replaces test_saga_chaos's run
without injected failures in `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.kafka_io import read_topic
from tests.integration.support import settle
from tests.integration.system import System

pytestmark = pytest.mark.integration

ORDERS, RATE = 200, 6
EXTRA = {"orders": 2, "inventory": 1, "payments": 1, "shipping": 1}


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        partitions="8",
        # Commit rarely, so each kill leaves processed-but-uncommitted records to redeliver.
        consumer_commit_interval_ms="5000",
    )
    try:
        deployment.start()
        for service, count in EXTRA.items():
            for n in range(2, count + 2):
                deployment.add_worker(service, f"{service}-{n}")
        for service in EXTRA:
            settle(*(w for name, w in deployment.workers.items() if name.startswith(service)))
        yield deployment
    finally:
        deployment.stop()


def test_a_kill9_in_every_scaled_out_service_loses_nothing(system: System, tmp_path: Path) -> None:
    log_path = tmp_path / "loadgen.log"
    loadgen = system.start_load(ORDERS, RATE, 11, log_path)
    victims = ("orders", "inventory", "payments", "shipping")
    system.kill9_during_load(loadgen, [(victim, 5) for victim in victims])
    system.finish_load(loadgen, ORDERS, log_path)
    assert system.get("orders", "/sagas?state=IN_FLIGHT")["sagas"] == []  # none stuck

    # The orders had 1-4 skus, and each sku's commands went to its own key.
    created = [
        orjson.loads(r.value) for r in read_topic(system.bootstrap, system.topic("orders.events"))
    ]
    sizes = {
        len({i["sku"] for i in e["data"]["items"]})
        for e in created
        if e["eventType"] == "OrderCreated"
    }
    assert sizes == {1, 2, 3, 4}, sizes
    commands = read_topic(system.bootstrap, system.topic("inventory.commands"))
    partitions: dict[bytes, set[int]] = {}
    for record in commands:
        doc = orjson.loads(record.value)
        skus = {i["sku"] for i in doc["data"].get("items", ())} or set(doc["data"]["stock"])
        assert {record.key} == {sku.encode() for sku in skus}, doc
        partitions.setdefault(record.key, set()).add(record.partition)
    # a sku's commands stay in one partition (its stock's), and the skus are spread
    assert all(len(found) == 1 for found in partitions.values()), partitions
    assert len(set().union(*partitions.values())) > 4
