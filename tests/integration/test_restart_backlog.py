"""A worker restarted with a backlog waiting processes every record of it.

Regression test for faust-streaming 0.15.3 losing records fetched while a recovery
seeks stream partitions to their committed offsets (see streamapp/faust_fixes.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.integration.kafka_io import replies_by_command
from tests.integration.support import Worker, http_json, wait_for
from tests.integration.test_orders import Orders, create

pytestmark = pytest.mark.integration


def test_restart_with_a_backlog_processes_every_record(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    orders = Orders(bootstrap, worker_env)
    worker_env["STREAMAPP_CONSUMER_COMMIT_INTERVAL_MS"] = "500"
    worker = start_worker()
    worker.wait_ready()
    # Every partition of orders.commands and orders.events gets a committed offset.
    first = [create(f"first-{n:02d}") for n in range(16)]
    orders.send(*first)
    orders.wait_replies([c.command_id for c in first], timeout=60)
    wait_for(
        lambda: all(http_json(f"{worker.url}/sagas/{c.aggregate_id}")[0] == 200 for c in first),
        60,
        "sagas of the first orders",
    )
    worker.stop()  # graceful: commits what it processed
    # Without local tables the restart restores them from the changelogs, so faust's
    # fetcher is already running when it seeks the stream partitions.
    shutil.rmtree(worker.table_dir)

    backlog = [create(f"backlog-{n:03d}") for n in range(400)]
    orders.send(*backlog)  # waits while the worker is down
    worker = start_worker(port=worker.port)
    worker.wait_ready()

    ids = [c.command_id for c in backlog]

    def replied() -> bool:
        found = replies_by_command(orders.bootstrap, orders.replies)
        return all(i in found for i in ids)

    wait_for(replied, 90, "replies to the whole backlog", 1.0)
    missing = lambda: [  # noqa: E731
        c.aggregate_id
        for c in backlog
        if http_json(f"{worker.url}/sagas/{c.aggregate_id}")[0] != 200
    ]
    wait_for(lambda: not missing(), 60, "a saga for every backlog order", 1.0)
