"""`streamapp dlq` against real dead letters, and replay applied exactly once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from streamapp.messages import Command, new_id
from streamapp.resilience.headers import Origin, dlq_headers
from tests.integration.kafka_io import events_on, read_topic, replies_by_command, send_records
from tests.integration.support import BIN, ROOT, Worker, http_json, wait_for

pytestmark = pytest.mark.integration

ORDER = {
    "customerId": "cust-7",
    "items": [{"sku": "SKU-1", "quantity": 1, "unitPrice": "5.00"}],
    "shippingAddress": {"country": "NL"},
}


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "streamapp"), "dlq", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_show_replay_twice_and_purge(
    bootstrap: str, worker_env: dict[str, str], start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_ready()
    env = {**os.environ, **worker_env}
    commands = worker_env["STREAMAPP_TOPIC_PREFIX"] + "orders.commands"
    dlq = f"{commands}.dlq"
    send_records(bootstrap, commands, [(b"order-p", b"{poison")])
    wait_for(lambda: len(read_topic(bootstrap, dlq)) == 1, 30, "the poison record in the DLQ")
    # A command that failed for a cause since fixed, dead-lettered after its retries.
    fixed = Command(new_id(), "CreateOrder", "order-fixed", ORDER, expected_version=0)
    headers = dlq_headers(
        [("traceparent", b"00-9-01")],
        Origin(commands, 0, 99),
        5,
        "TimeoutError",
        "participant down",
        "stack",
    )
    send_records(bootstrap, dlq, [(b"order-fixed", fixed.to_json(), headers)])
    letters = read_topic(bootstrap, dlq)
    fixed_letter = next(r for r in letters if r.key == b"order-fixed")

    listing = cli(env, "list", "orders.commands")
    assert f"{dlq}: 2 dead letter(s)" in listing
    assert "SchemaError" in listing and "TimeoutError" in listing
    shown = cli(
        env,
        "show",
        "orders.commands",
        "--partition",
        str(fixed_letter.partition),
        "--offset",
        str(fixed_letter.offset),
    )
    assert "error-message: participant down" in shown and "traceparent: 00-9-01" in shown

    selection = [
        "orders.commands",
        "--partition",
        str(fixed_letter.partition),
        "--offset",
        str(fixed_letter.offset),
    ]
    assert "1 dead letter(s) would be replayed" in cli(env, "replay", *selection, "--dry-run")
    assert http_json(f"{worker.url}/orders/order-fixed")[0] == 404

    assert "replayed 1 dead letter(s)" in cli(env, "replay", *selection)
    wait_for(lambda: http_json(f"{worker.url}/orders/order-fixed")[0] == 200, 30, "the order")
    cli(env, "replay", *selection)  # a second replay changes nothing
    replies_topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "orders.replies"
    replies = wait_for(
        lambda: (
            (r := replies_by_command(bootstrap, replies_topic).get(fixed.command_id))
            and len(r) == 2
            and r
        ),
        30,
        "two replies",
    )
    assert [r["status"] for r in replies] == ["accepted", "duplicate"]
    events = [
        e
        for e in events_on(bootstrap, worker_env["STREAMAPP_TOPIC_PREFIX"] + "orders.events")
        if e["aggregateId"] == "order-fixed"
    ]
    assert len(events) == 1
    status, order = http_json(f"{worker.url}/orders/order-fixed")
    assert status == 200 and order["version"] == 1

    purged = cli(env, "purge", "orders.commands", "--error-type", "SchemaError")
    assert "purged" in purged
    assert "1 dead letter(s)" in cli(env, "list", "orders.commands")
