"""The schema registry against a real Confluent client, two workers and a restart.

confluent-kafka's own ``SchemaRegistryClient`` registers, lists, fetches, checks and
sets levels against a live orders worker, and gets its own exception type with
Confluent's codes for errors. Two workers answer alike, concurrent registrations on
both get distinct ids, the state survives deleted table directories (it lives in
``_schemas``), and a worker whose repo schema breaks its subject refuses to start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streamapp.messages import Command, new_id
from tests.integration.kafka_io import read_topic, replies_by_command, send_commands, send_records
from tests.integration.support import BIN, ROOT, Worker, http_json, http_post_json, wait_for

pytestmark = pytest.mark.integration

V1 = {
    "type": "object",
    "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}},
    "required": ["orderId"],
}
#: Backward compatible with V1 (an optional property in an open model is not: Confluent
#: refuses it; dropping a constraint is fine).
V2 = {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}
#: Backward incompatible with V2: orderId becomes an integer.
BREAKING = {"type": "object", "properties": {"orderId": {"type": "integer"}}}


def client(worker: Worker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": worker.url})


def json_schema(doc: dict[str, Any]) -> Schema:
    return Schema(json.dumps(doc), "JSON")


def test_a_confluent_client_works_against_a_worker(start_worker: Callable[..., Worker]) -> None:
    worker = start_worker()
    worker.wait_ready()
    sr = client(worker)
    assert "OrderCreated" in sr.get_subjects()  # the repo's schemas, registered at start

    first = sr.register_schema("test.Order", json_schema(V1))
    assert sr.register_schema("test.Order", json_schema(V1)) == first  # idempotent
    assert json.loads(sr.get_schema(first).schema_str) == V1
    assert sr.get_latest_version("test.Order").version == 1
    assert sr.test_compatibility("test.Order", json_schema(V2)) is True
    second = sr.register_schema("test.Order", json_schema(V2))
    assert second != first and sr.get_versions("test.Order") == [1, 2]
    assert sr.get_version("test.Order", 2).schema_id == second
    assert sr.lookup_schema("test.Order", json_schema(V1)).version == 1

    assert sr.test_compatibility("test.Order", json_schema(BREAKING)) is False
    with pytest.raises(SchemaRegistryError) as refused:
        sr.register_schema("test.Order", json_schema(BREAKING))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    assert "TYPE" in refused.value.error_message  # the reasons, not just "incompatible"

    assert sr.set_compatibility("test.Order", "NONE") == {"compatibility": "NONE"}
    assert sr.get_compatibility("test.Order") == "NONE"
    third = sr.register_schema("test.Order", json_schema(BREAKING))
    assert third not in (first, second)
    assert sr.get_compatibility() == "BACKWARD"  # the global level is untouched

    assert sr.delete_version("test.Order", 1) == 1
    assert sr.get_versions("test.Order") == [2, 3]
    assert json.loads(sr.get_schema(first).schema_str) == V1  # ids still resolve

    for call, code in [
        (lambda: sr.get_latest_version("no.Such"), 40401),
        (lambda: sr.get_version("test.Order", 9), 40402),
        (lambda: sr.get_schema(7), 40403),
        (lambda: sr.register_schema("test.Order", Schema("{not json", "JSON")), 42201),
        (lambda: sr.set_compatibility("test.Order", "SIDEWAYS"), 42203),
    ]:
        with pytest.raises(SchemaRegistryError) as error:
            call()
        assert error.value.error_code == code
        assert error.value.http_status_code == int(str(code)[:3])


def test_two_workers_answer_alike_and_concurrent_registrations_get_distinct_ids(
    start_worker: Callable[..., Worker],
) -> None:
    one, two = start_worker(), start_worker()
    one.wait_ready()
    two.wait_ready()
    schemas = [
        {"type": "object", "properties": {f"field{n}": {"type": "string"}}} for n in range(12)
    ]

    for n in range(3):  # any schema is accepted: the test is about ids and versions
        client(one).set_compatibility(f"concurrent.S{n}", "NONE")

    def register(n: int) -> int:
        worker = (one, two)[n % 2]  # both workers, at once
        return int(client(worker).register_schema(f"concurrent.S{n % 3}", json_schema(schemas[n])))

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(register, range(12)))
    assert len(set(ids)) == 12, ids
    for worker in (one, two):  # both have folded everything
        wait_for(
            lambda w=worker: len(client(w).get_versions("concurrent.S0")) == 4 or None,
            30,
            "every registration folded",
        )
    for path in [
        "/subjects",
        "/config",
        *(f"/subjects/concurrent.S{n}/versions" for n in range(3)),
        *(f"/subjects/concurrent.S{n}/versions/{v}" for n in range(3) for v in range(1, 5)),
        *(f"/schemas/ids/{i}" for i in ids),
    ]:
        assert http_json(one.url + path) == http_json(two.url + path), path
        assert http_json(one.url + path)[0] == 200, path


def test_the_registry_survives_deleted_tables_and_a_breaking_repo_schema_stops_the_worker(
    start_worker: Callable[..., Worker], worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker()
    worker.wait_ready()
    registered = client(worker).register_schema("kept.Order", json_schema(V1))
    before = {path: http_json(worker.url + path) for path in ("/subjects", "/schemas/ids/1")}
    worker.stop()
    shutil.rmtree(worker.table_dir, ignore_errors=True)
    again = start_worker(worker.port)
    again.wait_ready()
    assert client(again).get_latest_version("kept.Order").schema_id == registered
    assert {path: http_json(again.url + path) for path in before} == before
    again.stop()

    # A repo schema that breaks its subject: OrderCreated's data gains a required field.
    changed = tmp_path / "schemas"
    shutil.copytree(ROOT / "config" / "schemas", changed)
    doc = json.loads((changed / "OrderCreated.json").read_text())
    data = doc["$defs"]["order"]  # OrderCreated's data
    data["properties"]["loyaltyTier"] = {"type": "string"}
    data["required"] = [*data.get("required", []), "loyaltyTier"]
    (changed / "OrderCreated.json").write_text(json.dumps(doc))
    worker_env["STREAMAPP_SCHEMAS_DIR"] = str(changed)
    refused = start_worker()
    assert refused.proc is not None
    assert refused.proc.wait(120) != 0
    log = refused.log(400)
    assert "OrderCreated" in log and "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" in log

    # The operator's check says the same, without registering, exit 1.
    worker_env["STREAMAPP_SCHEMAS_DIR"] = str(ROOT / "config" / "schemas")
    env = dict(worker_env)
    checker = start_worker()
    checker.wait_ready()
    result = subprocess.run(
        [
            *(str(BIN / "streamapp"), "schemas", "check"),
            *(str(changed / "OrderCreated.json"), "--url", checker.url),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1 and "incompatible" in result.stdout, result
    assert "loyaltyTier" in result.stdout
    assert client(checker).get_latest_version("OrderCreated").version == 1


def test_a_schema_invalid_participant_event_is_dead_lettered(
    start_worker: Callable[..., Worker], worker_env: dict[str, str], bootstrap: str
) -> None:
    worker = start_worker()
    worker.wait_ready()
    topic = worker_env["STREAMAPP_TOPIC_PREFIX"] + "inventory.events"
    # Parses as an event (type and id are strings) but breaks InventoryReserved's schema.
    bad = {"eventId": "e-bad", "eventType": "InventoryReserved", "aggregateId": "order-x"}
    send_records(bootstrap, topic, [(b"order-x", json.dumps(bad).encode())])
    dead = wait_for(
        lambda: read_topic(bootstrap, f"{topic}.dlq") or None, 30, "the event dead-lettered"
    )
    headers = dict(dead[0].headers)
    assert headers["error-type"] == b"SchemaError" and headers["retry-count"] == b"0"
    assert b"InventoryReserved breaks its schema" in headers["error-message"]


def test_a_deprecated_version_is_refused_on_write_and_readable_on_replay(
    start_worker: Callable[..., Worker], worker_env: dict[str, str], bootstrap: str
) -> None:
    worker = start_worker()
    worker.wait_ready()
    prefix = worker_env["STREAMAPP_TOPIC_PREFIX"]
    commands, replies = f"{prefix}orders.commands", f"{prefix}orders.replies"
    order = {
        "customerId": "cust-7",
        "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"}],
        "shippingAddress": {"country": "NL"},
    }
    written = [
        Command(new_id(), "CreateOrder", "order-dep", order, expected_version=0),
        Command(new_id(), "AddOrderNote", "order-dep", {"note": "before"}),
    ]
    send_commands(bootstrap, commands, written)

    def replied(ids: list[str]) -> dict[str, Any] | None:
        found = replies_by_command(bootstrap, replies)
        return found if all(found.get(i) for i in ids) else None

    answers = wait_for(lambda: replied([c.command_id for c in written]), 60, "replies")
    assert all(answers[c.command_id][0]["status"] == "accepted" for c in written)

    deployed = client(worker).get_latest_version("OrderNoteAdded").version
    url = f"{worker.url}/subjects/OrderNoteAdded/versions/{deployed}/deprecate"
    assert http_post_json(url, {}) == (
        200,
        {"subject": "OrderNoteAdded", "version": deployed, "deprecated": True},
    )
    assert http_json(f"{worker.url}/subjects/OrderNoteAdded/versions/{deployed}")[1]["deprecated"]
    assert http_post_json(f"{worker.url}/subjects/no.Such/versions/1/deprecate", {}) == (
        404,
        {"error_code": 40401, "message": "Subject 'no.Such' not found."},
    )
    assert (
        http_post_json(f"{worker.url}/subjects/OrderNoteAdded/versions/99/deprecate", {})[1][
            "error_code"
        ]
        == 40402
    )

    refused = Command(new_id(), "AddOrderNote", "order-dep", {"note": "after"})
    send_commands(bootstrap, commands, [refused])
    reply = wait_for(lambda: replied([refused.command_id]), 60, "the refusal")[refused.command_id][
        0
    ]
    assert reply["status"] == "rejected" and reply["error"]["type"] == "SchemaError"
    assert f"OrderNoteAdded schema version {deployed} is deprecated" in reply["error"]["message"]

    status, events = http_json(f"{worker.url}/orders/order-dep/events")
    assert status == 200
    assert [(e["eventType"], e["schemaVersion"]) for e in events["events"]] == [
        ("OrderCreated", client(worker).get_latest_version("OrderCreated").version),
        ("OrderNoteAdded", deployed),
    ]
    status, state = http_json(f"{worker.url}/orders/order-dep")
    assert (status, state["notes"], state["version"]) == (200, 1, 2)
