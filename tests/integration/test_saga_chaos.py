"""The saga chaos run: 300 orders with a mix of outcomes while workers are killed, with
20% transient failures injected in every participant (no cap per record, so some
commands are dead-lettered; the sagas heal without an operator). The run without
injected failures is test_scale_chaos (every service scaled out, a kill -9 in each).

`streamapp loadgen` sends the orders; meanwhile the orchestrator (orders worker) is
kill -9'ed twice and the inventory service once, each restarted. Afterwards every saga
must be terminal and `streamapp verify` must pass: stock and money conserved, no
command applied twice, streams gapless.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.kafka_io import read_topic
from tests.integration.system import System

pytestmark = pytest.mark.integration

ORDERS, RATE = 300, 10


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        # Every participant fails this fraction of its commands transiently (retried
        # through the retry topics).
        inject_failure_rate="0.2",
        # No cap per record: now and then a command fails six times in a row and is
        # dead-lettered. The saga heals that without `dlq replay`: a forward step times
        # out and compensates, a compensation or the end command is sent again.
        inject_failure_max_per_record="0",
        # Commit rarely, so each kill leaves processed-but-uncommitted records to redeliver.
        consumer_commit_interval_ms="5000",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def test_300_orders_survive_kill9_of_the_orchestrator_twice_and_inventory_once(
    system: System, tmp_path: Path
) -> None:
    log_path = tmp_path / "loadgen.log"
    loadgen = system.start_load(ORDERS, RATE, 7, log_path)
    system.kill9_during_load(loadgen, (("orders", 6), ("inventory", 4), ("orders", 4)))
    system.finish_load(loadgen, ORDERS, log_path)
    assert system.get("orders", "/sagas?state=IN_FLIGHT")["sagas"] == []  # none stuck
    dead = {}
    for service in ("inventory", "payments", "shipping"):  # the failures did happen
        retried = read_topic(system.bootstrap, system.topic(f"{service}.commands.retry.1"))
        assert len(retried) > 10, service
        dlq = system.topic(f"{service}.commands.dlq")
        dead[service] = len(read_topic(system.bootstrap, dlq))
    print(f"dead-lettered commands, healed by the sagas: {dead}")
