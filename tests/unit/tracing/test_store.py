"""The traces table's layout (streamapp.tracing.store): groups, index entries, sweep."""

from __future__ import annotations

from typing import Any

from streamapp.eventstore.retention import INDEX_PREFIX, partition_keys
from streamapp.tracing import store
from streamapp.tracing.store import correlation_key, events_range
from streamapp.tracing.trace import COMPLETED, TracedEvent

T0 = 1_764_676_800_000
RETENTION = 60_000
CID = b"cmd-1"


def ev(event_id: str, event_type: str, service: str, at: int, cause: str | None) -> TracedEvent:
    offset = None if service == "saga" else at
    return TracedEvent(
        event_id, event_type, service, f"{service}.events", 3, offset, T0 + at, cause, "o1"
    )


def keys_in(table: dict[bytes, Any]) -> store.KeysIn:
    return lambda start, stop, limit: partition_keys(table, 3, start, stop, limit)


#: What the orchestrator records per record it processes: the event it read, the saga
#: events it sent in answer.
GROUPS = [
    [ev("e1", "OrderCreated", "orders", 0, "cmd-1"), ev("s1", "SagaStarted", "saga", 5, "e1")],
    [
        ev("i1", "InventoryReserved", "inventory", 20, None),
        ev("s2", "SagaStepCompleted", "saga", 25, "i1"),
    ],
    [
        ev("p1", "PaymentProcessed", "payments", 40, None),
        ev("s3", "SagaCompleted", "saga", 45, "p1"),
    ],
]


def index(table: dict[bytes, Any]) -> list[bytes]:
    return sorted(k for k in table if k.startswith(INDEX_PREFIX))


def test_a_trace_is_one_key_per_group_and_one_index_entry_from_its_opening_group() -> None:
    table: dict[bytes, Any] = {}
    assert store.record(table, CID, GROUPS[0], RETENTION, stray=False) is False
    assert index(table) == [INDEX_PREFIX + b"%013d/cmd-1" % (T0 + RETENTION)]
    assert store.record(table, CID, GROUPS[1], RETENTION, stray=False) is False
    assert store.record(table, CID, GROUPS[2], RETENTION, stray=False) is True  # SagaCompleted
    trace = store.load(table, CID, keys_in(table))
    assert trace is not None and trace.terminal == COMPLETED
    assert [e.event_id for e in trace.ordered()] == ["e1", "s1", "i1", "s2", "p1", "s3"]
    assert trace.view(T0 + 100, 30_000)["durationMs"] == 45
    # one key per group, each a few hundred bytes at most, never a growing document,
    # and nothing else: one write per processed record
    start, stop = events_range(CID)
    assert len([k for k in table if start <= k < stop]) == 3
    assert len(table) == 3 + 1


def test_a_redelivered_record_writes_the_same_keys_again_and_adds_no_event() -> None:
    table: dict[bytes, Any] = {}
    for events in GROUPS[:2]:
        store.record(table, CID, events, RETENTION, stray=False)
    before = dict(table)
    store.record(table, CID, GROUPS[0], RETENTION, stray=False)
    assert table == before
    trace = store.load(table, CID, keys_in(table))
    assert trace is not None and len(trace.events) == 4


def test_a_group_no_saga_owns_indexes_its_trace_so_that_it_expires() -> None:
    table: dict[bytes, Any] = {}
    stray = [ev("z1", "PaymentProcessed", "payments", 7, None)]
    store.record(table, b"lost", stray, RETENTION, stray=True)
    assert index(table) == [INDEX_PREFIX + b"%013d/lost" % (T0 + 7 + RETENTION)]
    store.record(table, CID, GROUPS[1], RETENTION, stray=False)  # a saga's: no entry
    assert len(index(table)) == 1
    assert store.sweep(table, 3, T0 + 7 + RETENTION) == 1
    assert store.load(table, b"lost", keys_in(table)) is None


def test_sweep_deletes_every_key_of_an_expired_trace_and_keeps_the_others() -> None:
    table: dict[bytes, Any] = {}
    for events in GROUPS:
        store.record(table, CID, events, RETENTION, stray=False)
    later = [ev("e9", "OrderCreated", "orders", 10_000, "cmd-2")]
    store.record(table, b"cmd-2", later, RETENTION, stray=False)
    assert store.sweep(table, 3, T0 + RETENTION - 1) == 0
    assert store.sweep(table, 3, T0 + RETENTION) == 1
    assert store.load(table, CID, keys_in(table)) is None
    assert all(b"cmd-1" not in k for k in table)
    assert store.load(table, b"cmd-2", keys_in(table)) is not None


def test_a_correlation_id_with_a_nul_byte_is_not_a_key() -> None:
    assert correlation_key("a\x00b") is None
    assert correlation_key("cmd-1") == CID


def test_the_previous_layout_is_still_read() -> None:
    table: dict[bytes, Any] = {}
    old = store.Trace.of("cmd-1", GROUPS[0])
    assert old is not None
    table[b"t/cmd-1"] = old.to_dict()
    trace = store.load(table, CID, keys_in(table))
    assert trace is not None and [e.event_id for e in trace.events] == ["e1", "s1"]
