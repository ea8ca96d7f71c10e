"""Event streams with optimistic concurrency, snapshots and command outcomes (pure).

The store owns its record layout; callers use its methods and never its keys.
Everything of a stream lives in ONE key-value mapping (a faust table in the app, a dict
in tests) under five key families::

    e/<stream>/<version:010d>   one event per key (its envelope)
    s/<stream>/<version:010d>   a snapshot of the aggregate state at that version
    h/<stream>                  the head: current version, latest snapshot, last commit
    c/<stream>/<commandId>      the outcome of a command (idempotency)
    x/<expires at>/<key>        the retention index of outcomes (eventstore.retention)

An outcome is the caller's record (a mapping the store does not look into); the store
keys it by command id. The commit record in the head is the outcome of the command that
appended the stream's last events, so an outcome lost in a crash after its head was
written is still found.

Why one mapping: faust writes each table to its own changelog topic, and Kafka orders
records only within one partition of one topic. With one table, the writes of one
command reach the changelog in the order they were made (events, snapshot, head,
outcome), so a crash leaves a *prefix* of them: a restored head always has its events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streamapp.errors import ConcurrencyError
from streamapp.eventstore.retention import INDEX_PREFIX, expiry_key, expiry_target, tombstone
from streamapp.eventstore.upcasting import NONE, Upcasters
from streamapp.messages import Event

S = TypeVar("S")
KV = MutableMapping[bytes, Any]

VERSION_WIDTH = 10


def _versioned(family: str, stream_id: str, version: int) -> bytes:
    return f"{family}/{stream_id}/{version:0{VERSION_WIDTH}d}".encode()


def event_key(stream_id: str, version: int) -> bytes:
    return _versioned("e", stream_id, version)


def snapshot_key(stream_id: str, version: int) -> bytes:
    return _versioned("s", stream_id, version)


def head_key(stream_id: str) -> bytes:
    return f"h/{stream_id}".encode()


def outcome_key(stream_id: str, command_id: str) -> bytes:
    return f"c/{stream_id}/{command_id}".encode()


@dataclass(frozen=True)
class Commit:
    """The outcome of the command whose events an append writes (kept in the head)."""

    command_id: str
    outcome: Mapping[str, Any]


@dataclass(frozen=True)
class AppendResult:
    from_version: int
    to_version: int
    idempotent: bool = False  # the same events were already there: nothing written


class EventStore:
    """append_events / read_events / snapshots / command outcomes over one key-value
    mapping (private: its layout is this class's business)."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def head(self, stream_id: str) -> Mapping[str, Any] | None:
        head: Mapping[str, Any] | None = self._kv.get(head_key(stream_id))
        return head

    def version(self, stream_id: str) -> int:
        head = self.head(stream_id)
        return int(head["version"]) if head else 0

    def append_events(
        self,
        stream_id: str,
        events: Sequence[Event],
        expected_version: int | None,
        *,
        snapshots: Sequence[tuple[int, Mapping[str, Any]]] = (),
        commit: Commit | None = None,
    ) -> AppendResult:
        """Append events numbered current+1.. when the stream is at expected_version.

        expected_version None means "any", 0 "the stream must not exist", n "exactly n".
        Appending events whose ids already stand at those versions is a no-op (a retry),
        so an event id is never stored twice. The head is written last: it is the commit.
        """
        head = self.head(stream_id)
        current = int(head["version"]) if head else 0
        if not events:
            return AppendResult(current + 1, current)
        if expected_version is not None and expected_version != current:
            if self._already_appended(stream_id, expected_version, events):
                first = expected_version + 1
                return AppendResult(first, first + len(events) - 1, idempotent=True)
            raise ConcurrencyError(
                f"stream {stream_id} is at version {current}, expected {expected_version}",
                current_version=current,
            )
        for offset, event in enumerate(events, start=1):
            if event.version != current + offset or event.aggregate_id != stream_id:
                raise ValueError(
                    f"event {event.event_id} must be version {current + offset} of {stream_id}"
                )
        for event in events:
            self._kv[event_key(stream_id, event.version)] = event.to_dict()
        latest = int(head.get("snapshotVersion", 0)) if head else 0
        for version, state in snapshots:
            self._kv[snapshot_key(stream_id, version)] = {
                "version": version,
                "previous": latest,  # a chain for snapshot_versions(); loads never walk it
                "state": state,
            }
            latest = version
        self._kv[head_key(stream_id)] = {
            "version": events[-1].version,
            "snapshotVersion": latest,
            "commit": dict(commit.outcome) if commit else None,
            "commitCommandId": commit.command_id if commit else None,
        }
        return AppendResult(current + 1, events[-1].version)

    def _already_appended(self, stream_id: str, after: int, events: Sequence[Event]) -> bool:
        stored = self.read_events(stream_id, after + 1, after + len(events))
        return [e.event_id for e in stored] == [e.event_id for e in events]

    def rewrite(self, stream_id: str, from_version: int, to_version: int, command_id: str) -> None:
        """Write a command's records again, unchanged, in their original order.

        After a crash the local RocksDB may hold writes whose changelog records never
        left: rewriting sends them again, so a restore elsewhere sees them too. The head
        is rewritten only while its commit record is this command's (later commands,
        also redelivered, rewrite theirs).
        """
        for event in self.read_range(stream_id, from_version, to_version):
            self._kv[event_key(stream_id, event.version)] = event.to_dict()
        for version in range(max(from_version, 1), to_version + 1):
            snapshot = self._kv.get(snapshot_key(stream_id, version))
            if snapshot is not None:
                self._kv[snapshot_key(stream_id, version)] = snapshot
        head = self.head(stream_id)
        if head is not None and head.get("commit") and _commit_id(head) == command_id:
            self._kv[head_key(stream_id)] = dict(head)

    # -- command outcomes ---------------------------------------------------------------
    def outcome(self, stream_id: str, command_id: str) -> Mapping[str, Any] | None:
        """The recorded outcome of a command, also when only the head's commit has it
        (a crash between the head and the outcome record)."""
        known: Mapping[str, Any] | None = self._kv.get(outcome_key(stream_id, command_id))
        if known is None:
            head = self.head(stream_id)
            if head and head.get("commit") and _commit_id(head) == command_id:
                known = head["commit"]
        return known

    def record_outcome(
        self,
        stream_id: str,
        command_id: str,
        outcome: Mapping[str, Any],
        expires_at_ms: int | None = None,
    ) -> None:
        """Write a command's outcome, then (with ``expires_at_ms``) its retention index
        entry: a crash in between leaves an outcome that a rewrite indexes again."""
        key = outcome_key(stream_id, command_id)
        self._kv[key] = outcome
        if expires_at_ms is not None:
            self._kv[INDEX_PREFIX + expiry_key(expires_at_ms, key)] = 1

    def expire_outcomes(self, entries: Iterable[bytes]) -> int:
        """Remove the outcomes of due index entries (oldest first, from
        eventstore.retention.due_entries): the outcome, then its entry, so a crash in
        between leaves the entry to be processed again. Returns the entries removed."""
        removed = 0
        for entry in entries:
            tombstone(self._kv, expiry_target(entry))
            tombstone(self._kv, INDEX_PREFIX + entry)
            removed += 1
        return removed

    def read_events(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[Event]:
        """Events from_version..to_version (inclusive), clipped to the stream."""
        current = self.version(stream_id)
        last = current if to_version is None else min(to_version, current)
        return self.read_range(stream_id, from_version, last)

    def read_range(self, stream_id: str, from_version: int, to_version: int) -> list[Event]:
        """Events from_version..to_version that the caller knows exist (no head read)."""
        events = []
        for version in range(max(from_version, 1), to_version + 1):
            doc = self._kv.get(event_key(stream_id, version))
            if doc is None:  # cannot happen after a prefix-preserving crash; say so loudly
                raise LookupError(f"stream {stream_id} has no event at version {version}")
            events.append(Event.from_dict(doc))
        return events

    def latest_snapshot(
        self, stream_id: str, head: Mapping[str, Any] | None = None
    ) -> tuple[int, Mapping[str, Any]] | None:
        head = self.head(stream_id) if head is None else head
        version = int(head.get("snapshotVersion", 0)) if head else 0
        if not version:
            return None
        return version, self._kv[snapshot_key(stream_id, version)]["state"]

    def snapshot_versions(self, stream_id: str) -> list[int]:
        """Versions that have a snapshot, oldest first (walks the chain: operators only)."""
        head = self.head(stream_id)
        version = int(head.get("snapshotVersion", 0)) if head else 0
        found = []
        while version:
            found.append(version)
            version = int(self._kv[snapshot_key(stream_id, version)]["previous"])
        return found[::-1]


class Repository(Generic[S]):
    """Loads an aggregate from its latest snapshot plus the events after it, and appends
    with a snapshot at every multiple of ``snapshot_every``. Loads read events through
    ``upcasters`` (eventstore.upcasting), so ``apply`` only sees current shapes."""

    def __init__(
        self,
        store: EventStore,
        apply: Callable[[S | None, Event], S],
        to_snapshot: Callable[[S], Mapping[str, Any]],
        from_snapshot: Callable[[Mapping[str, Any]], S],
        snapshot_every: int,
        upcasters: Upcasters = NONE,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be >= 1")
        self.store = store
        self.apply = apply
        self.to_snapshot = to_snapshot
        self.from_snapshot = from_snapshot
        self.snapshot_every = snapshot_every
        self.upcasters = upcasters

    def load(self, stream_id: str) -> tuple[S | None, int]:
        """(state, version); (None, 0) for a stream that does not exist."""
        head = self.store.head(stream_id)
        if head is None:
            return None, 0
        version = int(head["version"])
        state: S | None = None
        start = 1
        snapshot = self.store.latest_snapshot(stream_id, head)
        if snapshot is not None:
            start = snapshot[0] + 1
            state = self.from_snapshot(snapshot[1])
        for event in self.store.read_range(stream_id, start, version):
            state = self.apply(state, self.upcasters.upcast(event))
        return state, version

    def read_events(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[Event]:
        """EventStore.read_events in the current shapes (through the upcasters)."""
        return self.upcasters.upcast_all(
            self.store.read_events(stream_id, from_version, to_version)
        )

    def append(
        self,
        stream_id: str,
        state: S | None,
        events: Sequence[Event],
        expected_version: int | None,
        commit: Commit | None = None,
    ) -> AppendResult:
        snapshots = []
        for event in events:
            state = self.apply(state, event)
            if event.version % self.snapshot_every == 0:
                snapshots.append((event.version, self.to_snapshot(state)))
        return self.store.append_events(
            stream_id, events, expected_version, snapshots=snapshots, commit=commit
        )


def _commit_id(head: Mapping[str, Any]) -> str | None:
    """The command id of the head's commit record."""
    command_id: str | None = head.get("commitCommandId")
    return command_id
