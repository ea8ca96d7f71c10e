"""How traces are kept in the ``traces`` table: small per-record keys, never a growing doc.

The saga orchestrator records a trace while it processes each record (the event it read
and the saga events it wrote in answer: one *group*). A group is one key, so a
redelivered record writes the same key again, and a trace's changelog records stay a few
hundred bytes each however long the conversation grows. Key families (``cid`` is the
correlation id, which never contains a NUL byte)::

    e/<cid>\\0<first eventId of the group>   the group's events (TracedEvent rows)
    x/<expiresAtMs>/<cid>                   expiry index (eventstore.retention); also
                                            the newest-first order of GET /traces

One write per processed record, and no read: the index entry is written with the group
that opens the conversation (it holds SAGA_START), or with a group that no saga owns
(nothing else would index that trace; a trace may then have several entries, and the
first one due deletes it whole). Which conversations are open is the orchestrator's to
say (its in-flight sagas), not the trace table's: a table write per start and end of a
saga, read only by an operator's query, cost the orders worker more than the rest of
tracing (bench/RESULTS.md).

All of a trace lives in the partition of its order (every topic the orchestrator reads is
keyed by the order id), and every write is made while processing a record of that
partition, so it goes to that changelog partition. ``t/<cid>`` (a whole trace as one
value) is the previous layout: still read, and swept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any

from streamapp.eventstore.retention import (
    INDEX_PREFIX,
    due_entries,
    expiry_key,
    expiry_target,
    partition_keys,
    tombstone,
)
from streamapp.tracing.trace import SAGA_START, TERMINAL, Trace, TracedEvent

EVENTS, LEGACY = b"e/", b"t/"
SEP = b"\x00"
#: Groups read for one trace at most (a runaway conversation stays a bounded read).
MAX_GROUPS = 1000
#: Traces deleted per sweep of one partition.
SWEEP_LIMIT = 1000

Table = MutableMapping[bytes, Any]


def correlation_key(correlation_id: str) -> bytes | None:
    """The id as stored; None for one that cannot be a key (a NUL byte: hostile input)."""
    raw = correlation_id.encode()
    return None if SEP in raw else raw


def events_range(cid: bytes) -> tuple[bytes, bytes]:
    """[start, stop) of a trace's group keys."""
    return EVENTS + cid + SEP, EVENTS + cid + b"\x01"


def index_entry(started_ms: int, retention_ms: int, cid: bytes) -> bytes:
    return INDEX_PREFIX + expiry_key(started_ms + retention_ms, cid)


def group(rows: Iterable[tuple[str, TracedEvent]]) -> dict[str, list[TracedEvent]]:
    """Events by correlation id, in the order given."""
    found: dict[str, list[TracedEvent]] = {}
    for correlation, event in rows:
        found.setdefault(correlation, []).append(event)
    return found


def record(
    table: Table, cid: bytes, events: Sequence[TracedEvent], retention_ms: int, *, stray: bool
) -> bool:
    """Write one group of a trace, with its index entry when the group opens the
    conversation or is `stray` (no saga owns it); True when it ends the trace's saga."""
    start, _ = events_range(cid)
    table[start + events[0].event_id.encode()] = [e.to_list() for e in events]
    types = {e.event_type for e in events}
    if stray or SAGA_START in types:
        first = min(e.at_ms for e in events)
        table[index_entry(first, retention_ms, cid)] = first + retention_ms
    return bool(types & TERMINAL.keys())


KeysIn = Callable[[bytes, bytes, int], list[bytes]]


def load(table: Table, cid: bytes, keys_in: KeysIn) -> Trace | None:
    """A trace from its groups (``keys_in(start, stop, limit)`` lists one partition's keys)."""
    start, stop = events_range(cid)
    events: list[TracedEvent] = []
    for key in keys_in(start, stop, MAX_GROUPS):
        rows = table.get(key)
        if rows is not None:
            events.extend(TracedEvent.from_list(row) for row in rows)
    if events:
        return Trace.of(cid.decode("utf-8", errors="replace"), events)
    legacy = table.get(LEGACY + cid)
    return Trace.from_dict(legacy) if legacy is not None else None


def sweep(table: Table, partition: int, now_ms: int) -> int:
    """Delete the traces of one partition past their retention (at most SWEEP_LIMIT):
    every key of each, its index entry last (a crash midway leaves the entry, and the
    next sweep finishes). The number of traces deleted."""
    entries = due_entries(table, partition, now_ms, SWEEP_LIMIT)
    for entry in entries:
        cid = expiry_target(entry)
        start, stop = events_range(cid)
        for key in partition_keys(table, partition, start, stop, 100 * MAX_GROUPS):
            tombstone(table, key)
        for key in (LEGACY + cid, INDEX_PREFIX + entry):
            tombstone(table, key)
    return len(entries)
