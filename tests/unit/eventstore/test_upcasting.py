"""Upcasters: stored old-shape events replay in the current shape (issue 12.6).

The worked example of docs/schemas.md, with a test chain (production's is empty):

* ``OrderNoteAdded`` v1 ``{"note"}`` was renamed to v2 ``{"text"}`` (a new version under
  FORWARD or NONE); an event stored with schemaVersion 1 is upcast on replay.
* ``OrderCreated`` v1's ``shippingAddress.line1`` "street number" was split into
  ``street`` and ``number`` in a new event type, ``OrderCreated_v2``; a stored v1 event
  is upcast to ``OrderCreated_v2`` v1.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from streamapp.eventstore.store import EventStore, Repository
from streamapp.eventstore.upcasting import UpcastError, Upcasters
from streamapp.messages import Event
from streamapp.orders import aggregate
from streamapp.orders.aggregate import OrderState
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.orders.upcasters import ORDER_UPCASTERS
from tests.unit.orders.factories import command, create


def rename_note(doc: dict[str, Any]) -> dict[str, Any]:
    """OrderNoteAdded v1 -> v2: ``note`` renamed ``text``."""
    data = dict(doc["data"])
    data["text"] = data.pop("note")
    return {**doc, "data": data}


def split_line1(doc: dict[str, Any]) -> dict[str, Any]:
    """OrderCreated v1 -> OrderCreated_v2 v1: ``line1`` split into street and number."""
    address = dict(doc["data"]["shippingAddress"])
    street, _, number = address.pop("line1", "").rpartition(" ")
    address.update(street=street, number=number)
    data = {**doc["data"], "shippingAddress": address}
    return {**doc, "eventType": "OrderCreated_v2", "schemaVersion": 1, "data": data}


def example_chain() -> Upcasters:
    chain = Upcasters()
    chain.register("OrderNoteAdded", 1, rename_note)
    chain.register("OrderCreated", 1, split_line1)
    return chain


#: The current aggregate of the example: it knows only the current shapes.
def current_apply(state: OrderState | None, event: Event) -> OrderState:
    if event.event_type == "OrderCreated_v2":
        address = event.data["shippingAddress"]
        assert set(address) >= {"street", "number"} and "line1" not in address
        return aggregate.apply(state, replace(event, event_type="OrderCreated"))
    if event.event_type == "OrderNoteAdded":
        assert (event.schema_version, set(event.data)) == (2, {"text"}), event
    return aggregate.apply(state, event)


def stored_old_stream(every: int) -> tuple[dict[bytes, Any], list[Event]]:
    """An order written by the old code: OrderCreated v1, OrderNoteAdded v1 x3."""
    kv: dict[bytes, Any] = {}
    old = OrderCommandHandler(order_repository(EventStore(kv), every))
    commands = [create("o"), *[command("AddOrderNote", "o", note=f"n{i}") for i in range(3)]]
    for n, c in enumerate(commands):
        assert old.handle(c, SourceRecord(0, n, 1_000 + n)).reply.status == "accepted"
    stored = old.store.read_events("o")
    assert [(e.event_type, e.schema_version) for e in stored] == [
        ("OrderCreated", 1),
        *[("OrderNoteAdded", 1)] * 3,
    ]
    return kv, stored


def test_an_old_shape_event_replays_through_its_upcaster() -> None:
    kv, stored = stored_old_stream(every=100)
    repository = Repository(
        EventStore(kv),
        current_apply,
        OrderState.to_snapshot,
        OrderState.from_snapshot,
        100,
        example_chain(),
    )
    state, version = repository.load("o")
    assert state is not None and (state.notes, version) == (3, 4)
    assert state.shipping_address == {
        "country": "NL",
        "city": "Delft",
        "street": "",
        "number": "x",
    }
    read = repository.read_events("o")
    assert [(e.event_type, e.schema_version) for e in read] == [
        ("OrderCreated_v2", 1),
        *[("OrderNoteAdded", 2)] * 3,
    ]
    assert read[1].data == {"text": "n0"}
    # The store still holds what was written: events are facts, never rewritten.
    assert EventStore(kv).read_events("o") == stored
    assert [e.event_id for e in read] == [e.event_id for e in stored]


def test_without_the_upcaster_the_current_aggregate_would_see_the_old_shape() -> None:
    kv, _ = stored_old_stream(every=100)
    repository = Repository(
        EventStore(kv), current_apply, OrderState.to_snapshot, OrderState.from_snapshot, 100
    )
    with pytest.raises(AssertionError):
        repository.load("o")


def test_upcasting_applies_after_a_snapshot_too() -> None:
    kv, _ = stored_old_stream(every=2)  # a snapshot at version 2; events 3, 4 replayed
    chain = example_chain()
    repository = Repository(
        EventStore(kv), current_apply, OrderState.to_snapshot, OrderState.from_snapshot, 2, chain
    )
    state, version = repository.load("o")
    assert state is not None and (state.notes, version) == (3, 4)


def test_a_chain_steps_through_every_version_and_stops_at_the_current_one() -> None:
    chain = Upcasters()
    chain.register("E", 1, lambda d: {**d, "data": {**d["data"], "b": d["data"]["a"]}})

    @chain.step("E", 2)
    def _drop_a(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "data": {k: v for k, v in doc["data"].items() if k != "a"}}

    doc = {"eventType": "E", "schemaVersion": 1, "data": {"a": 1}}
    assert chain.upcast_dict(doc) == {"eventType": "E", "schemaVersion": 3, "data": {"b": 1}}
    assert doc == {"eventType": "E", "schemaVersion": 1, "data": {"a": 1}}  # not changed
    current = {"eventType": "E", "schemaVersion": 3, "data": {"b": 1}}
    assert chain.upcast_dict(current) == current
    with pytest.raises(ValueError, match="registered"):
        chain.register("E", 1, lambda d: d)


def test_a_looping_chain_is_an_error() -> None:
    chain = Upcasters()
    chain.register("A", 1, lambda d: {**d, "eventType": "B", "schemaVersion": 1})
    chain.register("B", 1, lambda d: {**d, "eventType": "A", "schemaVersion": 1})
    with pytest.raises(UpcastError, match="loops"):
        chain.upcast_dict({"eventType": "A", "schemaVersion": 1, "data": {}})


def test_production_reads_events_as_stored_and_redeliveries_republish_them_unchanged() -> None:
    """The order chain is empty today; the handler republishes stored records as they
    were written (a redelivery must send identical records), whatever the chain."""
    assert len(ORDER_UPCASTERS) == 0
    kv, stored = stored_old_stream(every=100)
    h = OrderCommandHandler(order_repository(EventStore(kv), 100, example_chain()))
    assert h.repository.read_events("o")[1].data == {"text": "n0"}
    first = create("o")
    again = h.handle(replace(first, command_id=stored[0].causation_id), SourceRecord(0, 0, 1_000))
    assert again.redelivered and again.events == (stored[0],)
