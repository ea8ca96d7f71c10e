"""Order commands in, versioned events and exactly one outcome out (pure).

Crash consistency under at-least-once delivery (see docs/eventstore.md):

* Events are deterministic: ids are uuid5(commandId, n) and timestamps come from the
  command record, so processing a command again yields byte-identical events.
* The commit record (in the head, written after the events) and the outcome record say
  which source record (partition, offset) produced which outcome.
* A command id seen before, from the *same* source record, is a redelivery after a crash:
  its events and reply are published again (they may not have left before the crash;
  a copy that did is identical). From another record it is a retry: the reply repeats
  the first outcome as ``duplicate`` and nothing is appended; a retried ConfirmOrder or
  CancelOrder (which the saga re-sends until it sees the event) also publishes its events
  again, identical, so a saga that lost its copy heals.

Retention: an outcome record carries the time it was first written (``at``) and, with a
``retention_ms``, an expiry index entry (eventstore.retention) written after it; `expire`
removes due outcomes. A command id repeated within the window is a duplicate; after it,
the command is decided again (a repeated CreateOrder is then rejected by the aggregate).
The head's commit record, which names the stream's last command, is never expired.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from streamapp.errors import CommandRejected, ConcurrencyError, SchemaError
from streamapp.eventstore.store import Commit, EventStore, Repository
from streamapp.eventstore.upcasting import Upcasters
from streamapp.messages import Command, Event, Reply, derived_id, iso_from_millis
from streamapp.orders import aggregate
from streamapp.orders.aggregate import OrderState
from streamapp.orders.upcasters import ORDER_UPCASTERS

SOURCE = "orders"
#: Commands the saga sends again until their event reaches it (see `handle`).
RESENT_UNTIL_SEEN = frozenset({"ConfirmOrder", "CancelOrder"})


class StoreObserver(Protocol):
    """Told how long each append took and of each concurrency conflict (metrics)."""

    def appended(self, seconds: float) -> None: ...

    def conflict(self) -> None: ...


class EventSchemas(Protocol):
    """The registered schemas events are written with (registry.validation.Validators)."""

    def version(self, subject: str) -> int | None: ...

    def errors(self, subject: str, document: Any) -> list[str]: ...

    def deprecated(self, subject: str) -> bool: ...


def _stamped(event: Event, schemas: EventSchemas) -> Event:
    """The event with the registered version of its type's schema as schemaVersion."""
    version = schemas.version(event.event_type)
    if version is None or version == event.schema_version:
        return event  # (dataclasses.replace costs more than the validation itself)
    return replace(event, schema_version=version)


@dataclass(frozen=True)
class SourceRecord:
    """Where a command came from: its position is its identity across redeliveries."""

    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class Outcome:
    """What to publish for one command record: its reply and the events to (re)send."""

    reply: Reply
    events: tuple[Event, ...] = ()
    redelivered: bool = False


def order_repository(
    store: EventStore, snapshot_every: int, upcasters: Upcasters = ORDER_UPCASTERS
) -> Repository[OrderState]:
    return Repository(
        store,
        aggregate.apply,
        OrderState.to_snapshot,
        OrderState.from_snapshot,
        snapshot_every,
        upcasters,
    )


class OrderCommandHandler:
    """Applies order commands to the event store, idempotently.

    ``retention_ms`` None keeps outcomes forever (no index entries)."""

    def __init__(
        self,
        repository: Repository[OrderState],
        retention_ms: int | None = None,
        schemas: EventSchemas | None = None,
        observer: StoreObserver | None = None,
    ) -> None:
        self.repository = repository
        self.store = repository.store
        self.retention_ms = retention_ms
        self.schemas = schemas
        self.observer = observer

    def handle(self, command: Command, source: SourceRecord, now_ms: int | None = None) -> Outcome:
        """``now_ms`` (default: the wall clock) starts a new outcome's retention window."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        stream = command.aggregate_id
        known = self.store.outcome(stream, command.command_id)
        if known is not None:
            reply = Reply.from_dict(known["reply"])
            if (known["partition"], known["offset"]) != (source.partition, source.offset):
                # The saga re-sends ConfirmOrder / CancelOrder until it sees their event: a
                # retry of one publishes its events again (identical records), so a saga
                # whose copy was dead-lettered heals. Other retries publish nothing.
                again = command.command_type in RESENT_UNTIL_SEEN
                return Outcome(
                    reply.as_duplicate(), self._published(stream, known) if again else ()
                )
            # A redelivery: this worker may have died with writes and sends in flight.
            first, last = known["fromVersion"], known["toVersion"]
            self.store.rewrite(stream, first, last, command.command_id)
            self._keep(stream, command.command_id, known)
            stored = tuple(self.store.read_range(stream, first, last))
            return Outcome(reply, stored, redelivered=True)

        state, version = self.repository.load(stream)
        try:
            if command.expected_version is not None and command.expected_version != version:
                raise ConcurrencyError(
                    f"order {stream} is at version {version}, expected {command.expected_version}",
                    current_version=version,
                )
            drafts = aggregate.decide(state, command)
        except CommandRejected as rejection:
            if isinstance(rejection, ConcurrencyError) and self.observer is not None:
                self.observer.conflict()
            reply = Reply.rejected(command.command_id, stream, rejection.with_version(version))
            self._keep(stream, command.command_id, _record(reply, source, now))
            return Outcome(reply)

        timestamp = iso_from_millis(source.timestamp_ms)
        events = tuple(
            Event(
                event_id=derived_id(stream, command.command_id, str(n)),
                event_type=draft.event_type,
                aggregate_id=stream,
                aggregate_type=aggregate.AGGREGATE_TYPE,
                version=version + n,
                timestamp=timestamp,
                correlation_id=command.correlation_id,
                causation_id=command.command_id,
                source=SOURCE,
                data=draft.data,
            )
            for n, draft in enumerate(drafts, start=1)
        )
        if self.schemas is not None:
            # A bug that would write an invalid event fails this command, never the stream.
            events = tuple(_stamped(e, self.schemas) for e in events)
            # A deprecated version: new writes refuse it (reads and replays still work).
            problems = [
                f"{e.event_type} schema version {e.schema_version} is deprecated"
                for e in events
                if self.schemas.deprecated(e.event_type)
            ]
            problems += [p for e in events for p in self.schemas.errors(e.event_type, e.to_dict())]
            if problems:
                error = SchemaError(
                    "the command's events break their schemas: " + "; ".join(problems)
                )
                reply = Reply.rejected(command.command_id, stream, error.with_version(version))
                self._keep(stream, command.command_id, _record(reply, source, now))
                return Outcome(reply)
        reply = Reply.accepted(command, events[-1].version, tuple(e.event_id for e in events))
        record = _record(reply, source, now, version + 1, events[-1].version)
        started = time.perf_counter()
        self.repository.append(
            stream, state, events, version, commit=Commit(command.command_id, record)
        )
        if self.observer is not None:
            self.observer.appended(time.perf_counter() - started)
        self._keep(stream, command.command_id, record)
        return Outcome(reply, events)

    def _published(self, stream: str, known: Mapping[str, Any]) -> tuple[Event, ...]:
        """The events an accepted command appended (none for a rejection)."""
        first, last = known.get("fromVersion"), known.get("toVersion")
        if not isinstance(first, int) or not isinstance(last, int) or first > last:
            return ()
        return tuple(self.store.read_range(stream, first, last))

    def _keep(self, stream: str, command_id: str, record: Mapping[str, Any]) -> None:
        """Record an outcome with its expiry (same on a rewrite: the expiry comes from
        the record). A record without ``at`` (written before retention existed) is kept."""
        at = record.get("at")
        expires = (
            at + self.retention_ms
            if self.retention_ms is not None and isinstance(at, int)
            else None
        )
        self.store.record_outcome(stream, command_id, dict(record), expires)

    def expire(self, entries: Iterable[bytes]) -> int:
        """Remove the outcomes of due index entries (see EventStore.expire_outcomes)."""
        return self.store.expire_outcomes(entries)


def _record(
    reply: Reply, source: SourceRecord, at: int, from_version: int = 0, to_version: int = -1
) -> dict[str, Any]:
    return {
        "at": at,  # epoch ms of the first processing: the retention window starts here
        "reply": reply.to_dict(),
        "partition": source.partition,
        "offset": source.offset,
        "fromVersion": from_version,
        "toVersion": to_version,
    }
