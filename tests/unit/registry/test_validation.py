"""Validation with the deployed schema versions: commands, and events before append."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from streamapp.eventstore.store import EventStore
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.registry.state import DEPRECATE, SCHEMA, RegistryState, request
from streamapp.registry.validation import Validators
from streamapp.settings import load_settings
from tests.unit.orders.factories import command, create

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


def test_a_deprecated_version_refuses_new_writes_and_stays_readable() -> None:
    """Issue 12.6: "deprecated version -> refused on write, readable on replay". The
    deprecation is asked live (here a set; in the app the registry's fold)."""
    deprecated: set[tuple[str, int]] = set()
    schemas = Validators(lambda subject, version: (subject, version) in deprecated)
    for subject in ("OrderCreated", "OrderNoteAdded", "OrderCancelled"):
        schemas.load(subject, 2, repo_schema(subject))
    h = handler(schemas)
    assert h.handle(create("o"), SourceRecord(0, 1, 0)).reply.status == "accepted"
    written = h.handle(command("AddOrderNote", "o", note="before"), SourceRecord(0, 2, 0))
    assert written.reply.status == "accepted" and not schemas.deprecated("OrderNoteAdded")

    deprecated.add(("OrderNoteAdded", 2))  # registered later, on any worker
    assert schemas.deprecated("OrderNoteAdded") and not schemas.deprecated("OrderCreated")
    refused = h.handle(command("AddOrderNote", "o", note="after"), SourceRecord(0, 3, 0))
    assert refused.reply.status == "rejected" and refused.events == ()
    assert refused.reply.error is not None and refused.reply.error["type"] == "SchemaError"
    assert "OrderNoteAdded schema version 2 is deprecated" in refused.reply.error["message"]
    assert h.store.version("o") == 2  # nothing appended

    # Reads and replays of events written with the deprecated version keep working.
    state, version = h.repository.load("o")
    assert state is not None and (state.notes, version) == (1, 2)
    stored = h.repository.read_events("o")
    assert [(e.event_type, e.schema_version) for e in stored] == [
        ("OrderCreated", 2),
        ("OrderNoteAdded", 2),
    ]
    # Other event types are still written.
    cancelled = h.handle(command("CancelOrder", "o"), SourceRecord(0, 4, 0))
    assert cancelled.reply.status == "accepted"


def test_deprecation_comes_from_the_registry_fold_as_it_moves() -> None:
    """A DEPRECATE request folded after the validators were built reaches them."""
    state = RegistryState(check=lambda level, new, existing: [])
    subject, schema = "OrderNoteAdded", repo_schema("OrderNoteAdded")

    def fold(offset: int, kind: str, **fields: Any) -> None:
        key, value = request(kind, f"r{offset}", **fields)
        state.apply(offset, orjson.loads(key), orjson.loads(value))

    fold(0, SCHEMA, subject=subject, schema=schema)

    def live(subject: str, version: int) -> bool:
        found = state.version(subject, version)
        return found is not None and found.deprecated

    schemas = Validators(live)
    schemas.load(subject, 1, schema)
    assert not schemas.deprecated(subject)
    fold(1, DEPRECATE, subject=subject, version=1)
    assert schemas.deprecated(subject)
    assert not Validators().deprecated(subject)  # no registry: nothing is deprecated


def test_the_schema_validation_setting_switches_validation_only() -> None:
    """``schema_validation = false`` (only to measure, bench/eventstore): an invalid
    command, an event before append and a participant event all pass; on (the default)
    each is reported. Versions and deprecation stay the registry's either way."""
    config = ROOT / "config" / "streamapp.toml"
    assert load_settings(config, environ={}).schema_validation is True
    # OrderCreated with a field the aggregate never writes: every OrderCreated breaks it.
    needs_bug = {**repo_schema("OrderCreated"), "required": ["bug"]}
    reserved = {"eventType": "InventoryReserved", "data": {"quantity": "many"}}
    for raw in ("true", "false"):
        enabled = load_settings(config, environ={"STREAMAPP_SCHEMA_VALIDATION": raw})
        schemas = Validators(lambda subject, version: False, enabled=enabled.schema_validation)
        schemas.load("CreateOrder", 1, repo_schema("CreateOrder"))
        schemas.load("InventoryReserved", 1, repo_schema("InventoryReserved"))
        schemas.load("OrderCreated", 5, needs_bug)
        on = raw == "true"
        broken = {**create("o").to_dict(), "data": {"customerId": 7}}
        assert bool(schemas.errors("CreateOrder", broken)) is on  # a command on consume
        assert bool(schemas.errors("InventoryReserved", reserved)) is on  # participant event
        assert bool(schemas.errors("NotRegistered", {})) is on

        outcome = handler(schemas).handle(create("o"), SourceRecord(0, 1, 0))  # before append
        assert outcome.reply.status == ("rejected" if on else "accepted"), outcome.reply
        if not on:
            assert outcome.events[0].schema_version == 5  # still the registered version
