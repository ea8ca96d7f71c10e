"""Validation with the deployed schema versions: commands, and events before append."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamapp.eventstore.store import EventStore
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.registry.validation import Validators
from tests.unit.orders.factories import create

ROOT = Path(__file__).resolve().parents[3]


def repo_schema(subject: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ROOT / "config" / "schemas" / f"{subject}.json").read_text()
    )
    return loaded


def validators(**versions: int) -> Validators:
    found = Validators()
    for subject, version in versions.items():
        found.load(subject, version, repo_schema(subject))
    return found


def test_a_valid_command_passes_and_every_error_of_an_invalid_one_is_listed() -> None:
    schemas = validators(CreateOrder=3)
    command = create("o").to_dict()
    assert schemas.errors("CreateOrder", command) == []
    broken = {**command, "data": {**command["data"], "customerId": 7, "items": []}}
    problems = schemas.errors("CreateOrder", broken)
    assert len(problems) >= 2 and all(p.startswith("/data") for p in problems), problems
    assert schemas.version("CreateOrder") == 3


def test_an_unknown_subject_is_an_error_not_a_pass() -> None:
    assert Validators().errors("Nope", {}) == ["no schema is registered for 'Nope'"]


def test_a_version_is_compiled_once() -> None:
    schemas = validators(CreateOrder=1)
    compiled = schemas._compiled["CreateOrder"]
    schemas.load("CreateOrder", 1, repo_schema("CreateOrder"))
    assert schemas._compiled["CreateOrder"] is compiled
    schemas.load("CreateOrder", 2, repo_schema("CreateOrder"))
    assert schemas._compiled["CreateOrder"] is not compiled


def handler(schemas: Any) -> OrderCommandHandler:
    return OrderCommandHandler(order_repository(EventStore({}), 100), None, schemas)


def test_events_carry_their_schema_version_and_an_invalid_event_fails_the_command() -> None:
    good = handler(validators(OrderCreated=4)).handle(create("o"), SourceRecord(0, 1, 0))
    assert good.reply.status == "accepted" and good.events[0].schema_version == 4

    class Strict(Validators):
        """An OrderCreated schema the aggregate's events break (as a bug would)."""

        def errors(self, subject: str, document: Any) -> list[str]:
            return ["/data/totalAmount: the bug"] if subject == "OrderCreated" else []

    strict = handler(Strict())
    failed = strict.handle(create("o"), SourceRecord(0, 1, 0))
    assert failed.reply.status == "rejected" and failed.events == ()
    assert failed.reply.error is not None and failed.reply.error["type"] == "SchemaError"
    assert "the bug" in failed.reply.error["message"]
    assert strict.store.version("o") == 0  # nothing appended: the stream is untouched
