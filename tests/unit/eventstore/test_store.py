from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.errors import ConcurrencyError
from streamapp.eventstore.store import EventStore, event_key, head_key
from streamapp.messages import Command, Event
from streamapp.orders.aggregate import replay
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from tests.unit.orders.factories import command, create


def ev(stream: str, version: int, event_id: str | None = None) -> Event:
    return Event(
        event_id or f"{stream}-{version}",
        "Thing",
        stream,
        "T",
        version,
        "2026-11-26T00:00:00.000Z",
        "c",
        None,
        "test",
        {"n": version},
    )


def test_expected_version_any_none_and_exact() -> None:
    store = EventStore({})
    assert store.append_events("s", [ev("s", 1)], 0).to_version == 1  # no stream yet
    with pytest.raises(ConcurrencyError) as error:
        store.append_events("s", [ev("s", 2)], 0)
    assert error.value.current_version == 1
    assert error.value.to_error() == {
        "type": "ConcurrencyError",
        "currentVersion": 1,
        "message": "stream s is at version 1, expected 0",
    }
    store.append_events("s", [ev("s", 2)], 1)  # exact
    store.append_events("s", [ev("s", 3), ev("s", 4)], None)  # any
    assert [e.version for e in store.read_events("s")] == [1, 2, 3, 4]
    assert [e.version for e in store.read_events("s", 2, 3)] == [2, 3]
    assert store.read_events("s", 3, 99)[-1].version == 4
    assert store.read_events("missing") == []


def test_same_event_ids_are_never_appended_twice() -> None:
    store = EventStore({})
    store.append_events("s", [ev("s", 1), ev("s", 2)], 0)
    again = store.append_events("s", [ev("s", 1), ev("s", 2)], 0)
    assert again.idempotent and store.version("s") == 2
    with pytest.raises(ConcurrencyError):
        store.append_events("s", [ev("s", 1, "other-id")], 0)


def test_events_must_continue_the_stream() -> None:
    store = EventStore({})
    with pytest.raises(ValueError, match="must be version 1"):
        store.append_events("s", [ev("s", 2)], None)
    with pytest.raises(ValueError):
        store.append_events("s", [ev("other", 1)], None)


def handler(
    kv: dict[bytes, Any], every: int, retention_ms: int | None = None
) -> OrderCommandHandler:
    return OrderCommandHandler(order_repository(EventStore(kv), every), retention_ms)


def run(h: OrderCommandHandler, commands: list[Any]) -> list[Any]:
    return [h.handle(c, SourceRecord(0, n, 1_795_000_000_000 + n)) for n, c in enumerate(commands)]


def order_commands(notes: int) -> list[Any]:
    return [create("o"), *[command("AddOrderNote", "o", note=f"n{i}") for i in range(notes)]]


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=260), every=st.integers(min_value=1, max_value=120)
)
def test_snapshot_plus_tail_equals_full_replay(length: int, every: int) -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv, every)
    run(h, order_commands(length - 1))
    loaded, version = h.repository.load("o")
    full = replay(h.store.read_events("o"))
    assert version == length and loaded == full and loaded is not None
    assert loaded.version == length and loaded.notes == length - 1
    assert h.store.snapshot_versions("o") == list(range(every, length + 1, every))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["note", "cancel", "confirm", "create"]), max_size=30))
def test_replaying_stored_events_rebuilds_the_state_the_handler_reached(kinds: list[str]) -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv, 7)
    script = {
        "note": lambda: command("AddOrderNote", "o", note="x"),
        "cancel": lambda: command("CancelOrder", "o"),
        "confirm": lambda: command("ConfirmOrder", "o"),
        "create": lambda: create("o", expected=None),
    }
    run(h, [create("o"), *[script[k]() for k in kinds]])
    state, version = h.repository.load("o")
    assert replay(h.store.read_events("o")) == state
    assert [e.version for e in h.store.read_events("o")] == list(range(1, version + 1))


def test_duplicate_command_gets_the_first_outcome_and_appends_nothing() -> None:
    h = handler({}, 100)
    first = create("o")
    outcomes = [h.handle(first, SourceRecord(0, n, 1_795_000_000_000)) for n in range(3)]
    assert [o.reply.status for o in outcomes] == ["accepted", "duplicate", "duplicate"]
    assert {o.reply.event_ids for o in outcomes} == {outcomes[0].reply.event_ids}
    assert outcomes[1].events == () and h.store.version("o") == 1


def test_a_resent_confirm_publishes_its_event_again_for_a_saga_that_lost_it() -> None:
    h = handler({}, 100)
    confirm = command("ConfirmOrder", "o")
    first, again = run(h, [create("o"), confirm, confirm])[1:]
    assert again.reply.status == "duplicate" and h.store.version("o") == 2
    assert again.events == first.events and first.events[0].event_type == "OrderConfirmed"


def test_a_duplicate_of_a_rejection_repeats_the_rejection() -> None:
    h = handler({}, 100)
    bad = command("CancelOrder", "o")
    first, second = run(h, [bad, bad])
    assert first.reply.status == "rejected" and second.reply.status == "duplicate"
    assert second.reply.error == first.reply.error
    assert first.reply.error is not None and first.reply.error["type"] == "InvalidTransition"


def test_concurrent_creates_one_accepted_one_concurrency_error() -> None:
    h = handler({}, 100)
    a, b = run(h, [create("o", expected=0), create("o", expected=0)])
    assert a.reply.status == "accepted"
    assert b.reply.status == "rejected" and b.reply.error is not None
    assert b.reply.error["type"] == "ConcurrencyError" and b.reply.error["currentVersion"] == 1


def test_redelivery_after_a_crash_republishes_identical_events() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv, 100)
    cmd = create("o")
    source = SourceRecord(3, 41, 1_795_000_000_000)
    first = h.handle(cmd, source)
    again = h.handle(cmd, source)  # the same record, re-read after a crash
    assert again.redelivered and again.reply == first.reply and again.events == first.events


@pytest.mark.parametrize("lost", ["outcome", "outcome+head", "everything"])
def test_a_crash_between_writes_neither_appends_twice_nor_loses_events(lost: str) -> None:
    """Replay the command after losing a suffix of its table writes (changelog prefix)."""
    kv: dict[bytes, Any] = {}
    h = handler(kv, 100)
    cmd, source = create("o"), SourceRecord(0, 7, 1_795_000_000_000)
    first = h.handle(cmd, source)
    written = list(kv)  # insertion order is the write order: events, head, outcome
    drop = {"outcome": 1, "outcome+head": 2, "everything": len(written)}[lost]
    crashed = {k: kv[k] for k in written[: len(written) - drop]}
    recovered = handler(crashed, 100).handle(cmd, source)
    assert recovered.reply.status == "accepted" and recovered.events == first.events
    assert recovered.reply == first.reply
    assert [e.event_id for e in EventStore(crashed).read_events("o")] == list(first.reply.event_ids)
    assert crashed[head_key("o")]["version"] == 1 and event_key("o", 2) not in crashed


class Recording(dict):  # type: ignore[type-arg]
    """A mapping that logs every write: stands in for the table's changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[bytes, Any]] = []

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)


def test_redelivery_writes_every_record_again_so_the_changelog_catches_up() -> None:
    """Local RocksDB can be ahead of the changelog after kill -9: a redelivered command
    re-sends all its records, in the original order and unchanged."""
    kv = Recording()
    h = handler(kv, 1)  # a snapshot at every version: snapshots are part of the writes
    create_cmd, note_cmd = create("o"), command("AddOrderNote", "o", note="n")
    sources = [SourceRecord(0, 7, 1_795_000_000_000), SourceRecord(0, 8, 1_795_000_000_001)]
    h.handle(create_cmd, sources[0])
    create_writes = list(kv.log)
    h.handle(note_cmd, sources[1])
    note_writes = kv.log[len(create_writes) :]
    kv.log.clear()
    h.handle(create_cmd, sources[0])  # both redelivered, in order
    h.handle(note_cmd, sources[1])
    rewritten_create = [w for w in create_writes if w[0] != head_key("o")]  # head moved on
    assert kv.log == rewritten_create + note_writes


def test_a_lost_snapshot_and_head_are_restored_by_redelivery() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv, 1, retention_ms=1000)
    cmd, source = create("o"), SourceRecord(0, 7, 1_795_000_000_000)
    now = 1_795_000_000_500  # the same clock: outcomes record when they were first made
    first = h.handle(cmd, source, now)
    written = list(kv)  # event, snapshot, head, outcome, its expiry entry
    assert [k[:2] for k in written] == [b"e/", b"s/", b"h/", b"c/", b"x/"]
    for keep in range(len(written)):
        crashed = {k: kv[k] for k in written[:keep]}
        # Same clock: a command whose head was lost is decided anew, its window from then.
        again = handler(crashed, 1, retention_ms=1000).handle(cmd, source, now)
        assert again.reply == first.reply and again.events == first.events
        assert crashed == kv


def test_event_ids_differ_per_order_for_the_same_command_id() -> None:
    h = handler({}, 100)
    source = SourceRecord(0, 1, 1_795_000_000_000)
    a = h.handle(Command("same-id", "CreateOrder", "a", create().data, 0), source)
    b = h.handle(Command("same-id", "CreateOrder", "b", create().data, 0), source)
    assert a.reply.event_ids != b.reply.event_ids
