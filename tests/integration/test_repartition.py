"""More partitions for a deployment: drain, stop, ``streamapp repartition``, start the new one.

A deployment on 2 partitions completes a load and passes ``streamapp verify``. The tool
refuses while its workers run; once they are stopped it copies the history and the
table changelogs onto the topics of a new app id and prefix with 4 partitions. The new
deployment starts from there: ``verify`` passes on the copied history, stock and
accounts are what they were, no copied command is processed again, a resent old command
is answered as a duplicate, a dead letter moved with its replay aimed at the new topic,
and a second load completes with ``verify`` passing over both loads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamapp.kafka.source_key import SOURCE_KEY
from streamapp.kafka.topics import describe_topics
from streamapp.tools.repartition import partition_for
from tests.integration.kafka_io import read_topic, replies_by_command, send_records
from tests.integration.support import run_cli, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

FIRST, SECOND = 40, 20


@pytest.fixture
def deployments(bootstrap: str, tmp_path: Path) -> Iterator[tuple[System, System]]:
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
    old = System(bootstrap, tmp_path / "old", partitions="2")
    new = System(bootstrap, tmp_path / "new", partitions="4")
    try:
        yield old, new
    finally:
        old.kill()
        new.kill()


def verified(system: System, sagas: int) -> str:
    """`streamapp verify` output once it passes over `sagas` sagas (bounded retries: effects
    after a saga's end may still wait in a retry topic)."""
    deadline = time.monotonic() + 90
    result = system.verify()
    while (result.returncode != 0 or f"{sagas} sagas" not in result.stdout) and (
        time.monotonic() < deadline
    ):
        time.sleep(3)
        result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{sagas} sagas" in result.stdout, result.stdout
    return result.stdout


def test_a_drained_deployment_moves_to_four_partitions_and_keeps_working(
    bootstrap: str, tmp_path: Path, deployments: tuple[System, System]
) -> None:
    old, new = deployments
    old.start()
    load = old.start_load(FIRST, 40, 1, tmp_path / "load-1.log")
    assert load.wait(300) == 0, (tmp_path / "load-1.log").read_text()[-3000:] + old.logs()
    # a dead letter to carry over: undecodable, so it goes to orders.commands.dlq at once
    send_records(bootstrap, old.topic("orders.commands"), [(b"poison", b"not json")])
    wait_for(lambda: read_topic(bootstrap, old.topic("orders.commands.dlq")), 30, "the dead letter")
    verified(old, FIRST)  # drained: every saga ended and its end commands applied
    stock, accounts = old.get("inventory", "/inventory"), old.get("payments", "/payments/accounts")
    app_id, prefix = new.env["STREAMAPP_APP_ID"], new.prefix
    move = ["repartition", "--partitions", "4", "--to-app-id", app_id, "--to-prefix", prefix]

    running = run_cli(move, old.env)
    assert running.returncode == 1, running.stdout + running.stderr
    assert "member(s): stop its workers" in running.stderr, running.stderr
    old.stop()
    moved = run_cli(move, old.env)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "repartition: OK" in moved.stdout, moved.stdout
    assert "Error" not in moved.stderr, moved.stderr  # e.g. no NotLeader retries logged

    infos = {i.name: i for i in asyncio.run(describe_topics(bootstrap))}
    for name in ("orders.commands", "inventory.commands", "payments.events", "sagas.events"):
        assert infos[new.topic(name)].partitions == 4, name
    assert infos[new.topic("_schemas")].partitions == 1
    changelog = read_topic(bootstrap, f"{app_id}-inventory-inventory-state-changelog")
    # every entry where its source record key lands now (the seeds' skus use 3 of the 4)
    assert changelog
    assert all(r.partition == partition_for(dict(r.headers)[SOURCE_KEY], 4) for r in changelog)
    assert len({r.partition for r in changelog}) == 3
    replies_before = len(read_topic(bootstrap, new.topic("orders.replies")))
    assert replies_before == len(read_topic(bootstrap, old.topic("orders.replies")))

    new.start()
    verified(new, FIRST)
    # the dead letter moved once (not dead-lettered again), its replay aims at the new topic
    [letter] = read_topic(bootstrap, new.topic("orders.commands.dlq"))
    assert letter.key == b"poison"
    assert dict(letter.headers)["original-topic"] == new.topic("orders.commands").encode()
    replay = run_cli(["dlq", "replay", "orders.commands", "--dry-run"], new.env)
    assert f"-> {new.topic('orders.commands')}" in replay.stdout, replay.stdout + replay.stderr
    assert new.get("inventory", "/inventory") == stock
    assert new.get("payments", "/payments/accounts") == accounts
    # the copied commands were not processed again (no second reply to any of them)
    assert len(read_topic(bootstrap, new.topic("orders.replies"))) == replies_before

    # an old command sent again is recognised: answered as a duplicate, not applied twice
    first = read_topic(bootstrap, new.topic("orders.commands"))[0]
    command_id = orjson.loads(first.value)["commandId"]
    send_records(bootstrap, new.topic("orders.commands"), [(first.key, first.value)])

    def answers() -> list[dict[str, Any]] | None:
        found = replies_by_command(bootstrap, new.topic("orders.replies"))[command_id]
        return found if len(found) == 2 else None

    again = wait_for(answers, 30, "a reply to the resent command")
    assert [r["status"] for r in again] == ["accepted", "duplicate"], again
    assert again[0]["version"] == again[1]["version"], again
    load = new.start_load(SECOND, 40, 2, tmp_path / "load-2.log")
    assert load.wait(300) == 0, (tmp_path / "load-2.log").read_text()[-3000:] + new.logs()
    verified(new, FIRST + SECOND)
