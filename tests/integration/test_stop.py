"""SIGTERM stops a worker promptly even with a backlog that two agents read.

orders.events is read by the saga orchestrator and by the tracer: at stop, faust clears
the slower agent's queue, and its wait for "started" records used to wait for ever for
a copy nobody would process (streamapp.kafka.stop_wait). Nothing is lost: the restarted
worker processes what was cleared.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streamapp.messages import Command, new_id
from tests.integration.kafka_io import replies_by_command, send_commands
from tests.integration.support import Worker, wait_for

pytestmark = pytest.mark.integration

BACKLOG = 1500
STOP_WITHIN_S = 20.0


def create(order_id: str) -> Command:
    return Command(
        new_id(),
        "CreateOrder",
        order_id,
        {
            "customerId": "cust-1",
            "items": [{"sku": "SKU-1", "quantity": 1, "unitPrice": "1.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft", "line1": "x"},
        },
        expected_version=0,
    )


def test_sigterm_with_a_backlog_stops_promptly_and_loses_nothing(
    start_worker: Callable[..., Worker], worker_env: dict[str, str]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    bootstrap, prefix = (
        worker_env["STREAMAPP_BOOTSTRAP_SERVERS"],
        worker_env["STREAMAPP_TOPIC_PREFIX"],
    )
    commands = [create(f"order-{new_id()[:12]}") for _ in range(BACKLOG)]
    send_commands(bootstrap, f"{prefix}orders.commands", commands)
    replies = f"{prefix}orders.replies"
    wait_for(lambda: len(replies_by_command(bootstrap, replies)) >= 100, 60, "processing to start")
    started = time.monotonic()
    worker.stop(timeout=60)
    took = time.monotonic() - started
    assert took < STOP_WITHIN_S, f"stop took {took:.1f} s\n{worker.log(40)}"
    assert "wait_empty" not in worker.log(400)

    again = start_worker(worker.port)
    again.wait_ready()
    wanted = {c.command_id for c in commands}
    wait_for(
        lambda: wanted <= set(replies_by_command(bootstrap, replies)),
        120,
        "a reply to every command after the restart",
        every=1,
    )
