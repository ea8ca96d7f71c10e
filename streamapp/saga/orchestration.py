"""What the orchestrator does with one incoming record (pure; the agent does the I/O).

A saga's table record holds the machine state, the saga events emitted so far (the
history the view shows) and, per source topic, the offset of the last record that
changed the saga. A record at or below that offset is a redelivery after a crash: the
state already reflects it, but the commands and events it caused may have been lost
with the process, so every command still awaited and every saga event is sent again
(same ids: participants and the order service deduplicate by command id).

A settled saga's record is deleted when it expires (``Reaction.delete``); its events stay
on ``sagas.events``. A record that arrives for it afterwards finds no saga: a late
OrderCreated would start a new one, which the retention window (days, against retries
that last seconds) rules out in practice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streamapp.messages import Command, Event, derived_id, iso_from_millis
from streamapp.saga.machine import SagaMachine, SagaState, Transition, branch_id

ORDERS, TIMEOUTS = "orders", "timeouts"


@dataclass(frozen=True)
class SagaRecord:
    state: SagaState
    history: tuple[Mapping[str, Any], ...] = ()  # saga event envelopes, in order
    seen: Mapping[str, int] = field(default_factory=dict)  # topic -> last offset applied

    def to_dict(self) -> dict[str, Any]:
        return {
            "saga": self.state.to_dict(),
            "history": list(self.history),
            "seen": dict(self.seen),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SagaRecord:
        return cls(SagaState.from_dict(doc["saga"]), tuple(doc["history"]), doc["seen"])


@dataclass(frozen=True)
class Incoming:
    """One record the orchestrator consumed, reduced to what the saga needs."""

    source: str  # "orders", a participant service name, or "timeouts"
    topic: str
    offset: int
    event_type: str
    event_id: str
    causation_id: str | None
    correlation_id: str | None
    data: Mapping[str, Any]


class Outgoing(NamedTuple):
    """A command to send: its topic (unprefixed), record key (UTF-8) and envelope. The key
    is the step's (a payment by its customer, see saga.definition), else the saga id."""

    topic: str
    key: bytes
    command: Command


@dataclass(frozen=True)
class Reaction:
    record: SagaRecord | None  # None: no saga (a stray event); else write it back
    commands: tuple[Outgoing, ...] = ()
    events: tuple[Event, ...] = ()
    changed: bool = False
    redelivered: bool = False
    delete: bool = False  # remove the saga and its deadline (expired, or no saga left)


def cancel_command_id(saga_id: str, machine: SagaMachine) -> str | None:
    """The id of the CancelOrder the saga itself sends when it has compensated."""
    end = machine.definition.on_compensated
    return derived_id(saga_id, end.command) if end else None


def react(
    machine: SagaMachine,
    saga_id: str,
    record: SagaRecord | None,
    incoming: Incoming,
    now_ms: int,
) -> Reaction:
    if record is not None and incoming.offset <= record.seen.get(incoming.topic, -1):
        return _resend(machine, record, incoming, now_ms)
    if record is None and incoming.source == TIMEOUTS:
        # A deadline without a saga (it expired; a crash lost one of the two deletes):
        # delete again, so the timer stops ticking it.
        return Reaction(None, delete=True)
    transition = _transition(machine, saga_id, record, incoming, now_ms)
    if transition is None:
        return Reaction(record)
    if transition.expired:
        return Reaction(None, changed=True, delete=True)
    before = record.state if record is not None else None
    if transition.state == before and not transition.commands and not transition.events:
        return Reaction(record)
    history = list(record.history) if record is not None else []
    events = []
    for saga_event in transition.events:
        event = Event(
            event_id=derived_id(saga_id, "saga-event", str(len(history) + 1)),
            event_type=saga_event.event_type,
            aggregate_id=saga_id,
            aggregate_type=transition.state.saga_type,
            version=len(history) + 1,
            timestamp=iso_from_millis(now_ms),
            correlation_id=transition.state.correlation_id,
            causation_id=incoming.event_id,
            source="orchestrator",
            data=dict(saga_event.data),
        )
        history.append(event.to_dict())
        events.append(event)
    seen = {**(record.seen if record is not None else {}), incoming.topic: incoming.offset}
    updated = SagaRecord(transition.state, tuple(history), seen)
    commands = _envelopes(transition, incoming.event_id, now_ms)
    return Reaction(updated, commands, tuple(events), changed=True)


def _transition(
    machine: SagaMachine,
    saga_id: str,
    record: SagaRecord | None,
    incoming: Incoming,
    now_ms: int,
) -> Transition | None:
    kind = incoming.event_type
    if record is None:
        correlation = incoming.correlation_id or incoming.event_id
        if incoming.source == ORDERS and kind == "OrderCreated":
            return machine.start(saga_id, incoming.data, correlation, now_ms)
        if incoming.source == ORDERS and kind == "OrderCancelled":
            # Only possible when the OrderCreated before it is waiting in a retry topic.
            reason = str(incoming.data.get("reason") or "cancelled before the saga started")
            return machine.never_started(saga_id, reason, correlation, now_ms)
        return None  # no saga for it (a stray, or an order created before sagas)
    state = record.state
    if incoming.source == TIMEOUTS:
        return machine.on_timeout(state, now_ms)
    if incoming.source == ORDERS and kind == "OrderCancelled":
        # The client's cancel or the saga's own CancelOrder: either confirms the saga's
        # CancelOrder; a running saga compensates.
        reason = str(incoming.data.get("reason") or "cancelled by client")
        return machine.cancel(state, reason, now_ms)
    if incoming.source == ORDERS and kind != "OrderConfirmed":
        return None
    return machine.on_event(state, kind, incoming.causation_id, now_ms)


def _resend(machine: SagaMachine, record: SagaRecord, incoming: Incoming, now_ms: int) -> Reaction:
    transition = Transition(record.state, machine.outstanding(record.state))
    commands = _envelopes(transition, incoming.event_id, now_ms)
    events = tuple(Event.from_dict(doc) for doc in record.history)
    return Reaction(record, commands, events, redelivered=True)


def _envelopes(transition: Transition, causation_id: str, now_ms: int) -> tuple[Outgoing, ...]:
    state = transition.state
    return tuple(
        Outgoing(
            command.topic,
            command.key.encode(),
            Command(
                command_id=command.command_id,
                command_type=command.command_type,
                aggregate_id=command.saga_id,
                data=dict(command.data),
                correlation_id=state.correlation_id,
                causation_id=causation_id,
                timestamp=iso_from_millis(now_ms),
            ),
        )
        for command in transition.commands
    )


def view(record: SagaRecord) -> dict[str, Any]:
    """GET /sagas/{id}: the contract's fields plus the saga's event history."""
    state = record.state
    return {
        "sagaId": state.saga_id,
        "sagaType": state.saga_type,
        "state": state.state,
        "currentStep": state.current_step,
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "commandId": s.command_id,
                "compensationId": s.compensation_id,
                "compensationAttempts": s.attempts,
                "resends": s.resends,
                "deadline": iso_from_millis(s.deadline_ms) if s.deadline_ms else None,
                "branches": [
                    {
                        "key": b.key,
                        "status": b.status,
                        "commandId": branch_id(state.saga_id, s.name, "forward", b.key),
                        "compensationId": branch_id(state.saga_id, s.name, "compensate", b.key),
                    }
                    for b in s.branches
                ],
            }
            for s in state.steps
        ],
        "end": None
        if state.end is None
        else {
            "command": state.end.command,
            "status": state.end.status,
            "commandId": state.end.command_id,
            "sends": state.end.sends,
            "deadline": iso_from_millis(state.end.deadline_ms) if state.end.deadline_ms else None,
            "confirmed": list(state.end.confirmed),
        },
        "expiresAt": iso_from_millis(state.expires_ms) if state.expires_ms else None,
        "data": dict(state.data),
        "reason": state.reason,
        "correlationId": state.correlation_id,
        "updatedAt": iso_from_millis(state.updated_ms),
        "events": [
            {"eventType": e["eventType"], "timestamp": e["timestamp"], "data": e["data"]}
            for e in record.history
        ],
    }


def summary(record: SagaRecord) -> dict[str, Any]:
    """GET /sagas: one line per saga."""
    state = record.state
    return {
        "sagaId": state.saga_id,
        "state": state.state,
        "currentStep": state.current_step,
        "updatedAt": iso_from_millis(state.updated_ms),
        "updatedMs": state.updated_ms,
    }
