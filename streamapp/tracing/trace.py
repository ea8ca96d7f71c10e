"""One trace per correlation id, folded from the events of every event topic (pure).

The tracer adds each event it reads (orders, sagas and the participants' event topics)
to the trace of its ``correlationId``; the view puts the events in causal order and
draws one *hop* per event: an arrow from the service that caused it to the service that
wrote it. Causes the tracer never sees (commands are not event topics) are inferred from
the topology: a participant answers a command of the saga orchestrator; an order event
answers the client's command when its causation is the conversation's first command
(causationId = correlationId, or OrderCreated), else the saga's.

A trace's status: COMPLETED or FAILED once its saga ended (SagaCompleted; SagaCompensated
or SagaFailed), STALLED when a saga is expected or running and no event came for the
stall time, ACTIVE otherwise. A conversation that never involves a saga (e.g. a client's
cancel of a settled order) is COMPLETED with its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ACTIVE, COMPLETED, FAILED, STALLED = "ACTIVE", "COMPLETED", "FAILED", "STALLED"
STATUSES = (ACTIVE, COMPLETED, FAILED, STALLED)

CLIENT, SAGA, ORDERS = "client", "saga", "orders"

#: A saga's terminal events and the status they give the trace.
TERMINAL = {"SagaCompleted": COMPLETED, "SagaCompensated": FAILED, "SagaFailed": FAILED}
COMPENSATIONS = frozenset(
    {
        "SagaCompensating",
        "SagaStepCompensated",
        "InventoryReleased",
        "PaymentRefunded",
        "ShipmentCancelled",
        "OrderCancelled",
    }
)
#: Events that start or belong to a saga: a trace with one of them waits for its end.
SAGA_START = "OrderCreated"

#: A trace keeps at most this many events (a runaway conversation stays bounded); the
#: rest are counted.
MAX_EVENTS = 400


def kind_of(event_type: str) -> str:
    """How the picture marks an event: terminal, failure, compensation or normal."""
    if event_type in TERMINAL:
        return "terminal"
    if event_type.endswith("Failed"):
        return "failure"
    if event_type in COMPENSATIONS:
        return "compensation"
    return "normal"


def epoch_ms(timestamp: Any, fallback_ms: int) -> int:
    """An envelope's ISO-8601 timestamp in epoch ms; the record's time if unreadable."""
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return fallback_ms
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return fallback_ms


def iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TracedEvent:
    """What a trace keeps of one event (and of the record that carried it)."""

    event_id: str
    event_type: str
    service: str
    topic: str
    partition: int
    offset: int | None  # None: an event recorded as it was sent (the saga's own)
    at_ms: int
    causation_id: str | None
    aggregate_id: str | None

    def to_list(self) -> list[Any]:
        return [
            self.event_id,
            self.event_type,
            self.service,
            self.topic,
            self.partition,
            self.offset,
            self.at_ms,
            self.causation_id,
            self.aggregate_id,
        ]

    @classmethod
    def from_list(cls, row: list[Any]) -> TracedEvent:
        return cls(*row)


def read_event(
    doc: Mapping[str, Any],
    service: str,
    topic: str,
    partition: int,
    offset: int | None,
    record_ms: int,
) -> tuple[str, TracedEvent] | None:
    """(correlationId, event) of an event envelope, or None if it is not one."""
    event_id, event_type = doc.get("eventId"), doc.get("eventType")
    correlation = doc.get("correlationId")
    if not (isinstance(event_id, str) and isinstance(event_type, str)):
        return None
    if not isinstance(correlation, str) or not correlation:
        return None
    causation, aggregate = doc.get("causationId"), doc.get("aggregateId")
    return correlation, TracedEvent(
        event_id,
        event_type,
        service,
        topic,
        partition,
        offset,
        epoch_ms(doc.get("timestamp"), record_ms),
        causation if isinstance(causation, str) else None,
        aggregate if isinstance(aggregate, str) else None,
    )


@dataclass(frozen=True)
class Trace:
    """A correlation id's events as stored (arrival order) and its saga's end, if any."""

    correlation_id: str
    events: tuple[TracedEvent, ...]
    terminal: str | None = None  # COMPLETED or FAILED once a terminal event arrived
    dropped: int = 0  # events beyond MAX_EVENTS

    @property
    def started_ms(self) -> int:
        return min(e.at_ms for e in self.events)

    @property
    def last_ms(self) -> int:
        return max(e.at_ms for e in self.events)

    @property
    def expects_saga(self) -> bool:
        return any(e.event_type == SAGA_START or e.service == SAGA for e in self.events)

    @property
    def initiating_event(self) -> str:
        return self.ordered()[0].event_type

    def has(self, event_id: str) -> bool:
        return any(e.event_id == event_id for e in self.events)

    def add(self, event: TracedEvent) -> Trace:
        """This trace with `event` (the caller has checked it is new)."""
        terminal = self.terminal or TERMINAL.get(event.event_type)
        if len(self.events) >= MAX_EVENTS:
            return Trace(self.correlation_id, self.events, terminal, self.dropped + 1)
        return Trace(self.correlation_id, (*self.events, event), terminal, self.dropped)

    def status(self, now_ms: int, stall_ms: int) -> str:
        if self.terminal is not None:
            return self.terminal
        if not self.expects_saga:
            return COMPLETED
        return STALLED if now_ms - self.last_ms >= stall_ms else ACTIVE

    def services(self) -> list[str]:
        """The services that wrote its events, in order of first appearance."""
        return list(dict.fromkeys(e.service for e in self.ordered()))

    def ordered(self) -> list[TracedEvent]:
        """Causal order: by time, but never before the event that caused it."""
        by_time = sorted(self.events, key=lambda e: (e.at_ms, e.topic, e.partition, e.offset or -1))
        ids = {e.event_id for e in by_time}
        placed: set[str] = set()
        out: list[TracedEvent] = []
        waiting: dict[str, list[TracedEvent]] = {}

        def place(event: TracedEvent) -> None:
            out.append(event)
            placed.add(event.event_id)
            for child in waiting.pop(event.event_id, []):
                place(child)

        for event in by_time:
            cause = event.causation_id
            pending = cause is not None and cause in ids and cause not in placed
            if pending and cause != event.event_id:
                waiting.setdefault(str(cause), []).append(event)
            else:
                place(event)
        for children in waiting.values():  # a causation cycle (hostile input): keep them
            out.extend(e for e in children if e.event_id not in placed)
        return out

    def caller(self, event: TracedEvent, services: Mapping[str, str]) -> str:
        """The service whose message caused `event` (the hop's origin)."""
        if event.causation_id is not None and event.causation_id in services:
            return services[event.causation_id]
        if event.service == ORDERS:
            first = event.event_type == SAGA_START or event.causation_id == self.correlation_id
            return CLIENT if first or event.causation_id is None else SAGA
        return SAGA  # participants answer the orchestrator's commands; a timeout is its own

    def view(self, now_ms: int, stall_ms: int) -> dict[str, Any]:
        """The contract's trace JSON: events in causal order, nodes (lanes), edges (hops)."""
        ordered = self.ordered()
        services = {e.event_id: e.service for e in ordered}
        start = self.started_ms
        events: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        lanes: dict[str, None] = {}
        for event in ordered:
            origin = self.caller(event, services)
            lanes.setdefault(origin, None)
            lanes.setdefault(event.service, None)
            kind = kind_of(event.event_type)
            at = event.at_ms - start
            events.append(
                {
                    "eventId": event.event_id,
                    "eventType": event.event_type,
                    "service": event.service,
                    "from": origin,
                    "topic": event.topic,
                    "partition": event.partition,
                    "offset": event.offset,
                    "timestamp": iso_ms(event.at_ms),
                    "atMs": at,
                    "causationId": event.causation_id,
                    "aggregateId": event.aggregate_id,
                    "kind": kind,
                }
            )
            edges.append(
                {
                    "from": origin,
                    "to": event.service,
                    "eventId": event.event_id,
                    "eventType": event.event_type,
                    "atMs": at,
                    "kind": kind,
                }
            )
        return {
            "correlationId": self.correlation_id,
            "status": self.status(now_ms, stall_ms),
            "startedAt": iso_ms(start),
            "endedAt": iso_ms(self.last_ms),
            "durationMs": self.last_ms - start,
            "initiatingEvent": ordered[0].event_type,
            "aggregateIds": list(dict.fromkeys(e.aggregate_id for e in ordered if e.aggregate_id)),
            "services": list(dict.fromkeys(e.service for e in ordered)),
            "hops": len(edges),
            "droppedEvents": self.dropped,
            "events": events,
            "nodes": [{"id": lane, "label": lane} for lane in lanes],
            "edges": edges,
        }

    def summary(self, now_ms: int, stall_ms: int) -> dict[str, Any]:
        """A line of GET /traces."""
        return {
            "correlationId": self.correlation_id,
            "status": self.status(now_ms, stall_ms),
            "startedAt": iso_ms(self.started_ms),
            "durationMs": self.last_ms - self.started_ms,
            "services": self.services(),
            "initiatingEvent": self.initiating_event,
            "events": len(self.events),
            "startedMs": self.started_ms,
        }

    # -- storage (the traces table's value) ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "c": self.correlation_id,
            "e": [e.to_list() for e in self.events],
            "t": self.terminal,
            "d": self.dropped,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Trace:
        return cls(
            doc["c"],
            tuple(TracedEvent.from_list(row) for row in doc["e"]),
            doc.get("t"),
            int(doc.get("d", 0)),
        )

    @classmethod
    def first(cls, correlation_id: str, event: TracedEvent) -> Trace:
        return cls(correlation_id, ()).add(event)

    @classmethod
    def of(cls, correlation_id: str, events: Iterable[TracedEvent]) -> Trace | None:
        """The trace of stored events (repeats of an eventId, from redeliveries, once;
        the earliest MAX_EVENTS kept); None without any."""
        unique = {e.event_id: e for e in events}
        if not unique:
            return None
        ordered = sorted(unique.values(), key=lambda e: (e.at_ms, e.topic, e.partition))
        trace = cls(correlation_id, ())
        for event in ordered:
            trace = trace.add(event)
        return trace
