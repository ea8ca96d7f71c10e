"""Order commands in, versioned events and exactly one outcome out (pure).

Crash consistency under at-least-once delivery (see docs/eventstore.md):

* Events are deterministic: ids are uuid5(commandId, n) and timestamps come from the
  command record, so processing a command again yields byte-identical events.
* The commit record (in the head, written after the events) and the outcome record say
  which source record (partition, offset) produced which outcome.
* A command id seen before, from the *same* source record, is a redelivery after a crash:
  its events and reply are published again (they may not have left before the crash;
  a copy that did is identical). From another record it is a client retry: the reply
  repeats the first outcome as ``duplicate`` and nothing is appended or published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamapp.errors import CommandRejected, ConcurrencyError
from streamapp.eventstore.store import EventStore, Repository, outcome_key
from streamapp.messages import Command, Event, Reply, derived_id, iso_from_millis
from streamapp.orders import aggregate
from streamapp.orders.aggregate import OrderState

SOURCE = "orders"


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


def order_repository(store: EventStore, snapshot_every: int) -> Repository[OrderState]:
    return Repository(
        store,
        aggregate.apply,
        OrderState.to_snapshot,
        OrderState.from_snapshot,
        snapshot_every,
    )


class OrderCommandHandler:
    """Applies order commands to the event store, idempotently."""

    def __init__(self, repository: Repository[OrderState]) -> None:
        self.repository = repository
        self.store = repository.store

    def handle(self, command: Command, source: SourceRecord) -> Outcome:
        stream = command.aggregate_id
        known = self._known_outcome(command)
        if known is not None:
            reply = Reply.from_dict(known["reply"])
            if (known["partition"], known["offset"]) != (source.partition, source.offset):
                return Outcome(reply.as_duplicate())
            # A redelivery: this worker may have died with writes and sends in flight.
            first, last = known["fromVersion"], known["toVersion"]
            self.store.rewrite(stream, first, last, command.command_id)
            self.store.kv[outcome_key(stream, command.command_id)] = dict(known)
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
            reply = Reply.rejected(command.command_id, stream, rejection.with_version(version))
            self.store.kv[outcome_key(stream, command.command_id)] = _record(reply, source)
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
        reply = Reply.accepted(command, events[-1].version, tuple(e.event_id for e in events))
        record = _record(reply, source, version + 1, events[-1].version)
        self.repository.append(stream, state, events, version, commit=record)
        self.store.kv[outcome_key(stream, command.command_id)] = record
        return Outcome(reply, events)

    def _known_outcome(self, command: Command) -> Mapping[str, Any] | None:
        """The recorded outcome of this command id, also when only the head has it."""
        key = outcome_key(command.aggregate_id, command.command_id)
        known: Mapping[str, Any] | None = self.store.kv.get(key)
        if known is None:
            head = self.store.head(command.aggregate_id)
            commit = head.get("commit") if head else None
            if commit and commit["reply"]["commandId"] == command.command_id:
                known = commit  # crashed between head and outcome: the head says it
        return known


def _record(
    reply: Reply, source: SourceRecord, from_version: int = 0, to_version: int = -1
) -> dict[str, Any]:
    return {
        "reply": reply.to_dict(),
        "partition": source.partition,
        "offset": source.offset,
        "fromVersion": from_version,
        "toVersion": to_version,
    }
