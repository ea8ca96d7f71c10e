"""The command handler every participant service shares (pure: tables are mappings).

A participant answers each saga command with one event. The answer is stored under the
command id, so a command delivered again (a re-send by the orchestrator after its crash,
or our own redelivery after ours) gets the very same event back and changes nothing:
participants are idempotent by command id.

Redelivery after a crash also covers the RocksDB-ahead-of-changelog case: the local
store may hold writes whose changelog records were lost with the process. A duplicate
therefore writes the keys its command touched again (same values), which puts them
into the changelog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamapp.messages import Command, Event, derived_id, iso_utc

#: The participant's tables, by role: ``entities`` holds what views list (stock levels,
#: accounts), ``records`` the per-saga records, answers and event counters.
Tables = Mapping[str, MutableMapping[bytes, Any]]


@dataclass(frozen=True)
class Reaction:
    """What a command does: the event to answer with (None: no answer, e.g. seeding)
    and the table writes, as (table role, key, value)."""

    event_type: str | None
    data: Mapping[str, Any] = field(default_factory=dict)
    writes: tuple[tuple[str, bytes, Any], ...] = ()


class Rules(Protocol):
    """A participant's business rules over its tables."""

    service: str
    aggregate_type: str

    def decide(self, tables: Tables, command: Command) -> Reaction:
        """The reaction to a command; UnknownCommand/SchemaError for bad input."""

    def touched(self, tables: Tables, command: Command) -> Iterable[tuple[str, bytes]]:
        """The (table role, key) pairs a command writes (to rewrite on redelivery)."""


@dataclass(frozen=True)
class Outcome:
    event: Event | None
    duplicate: bool


def answer_key(command_id: str) -> bytes:
    return b"answer/" + command_id.encode()


def _sequence_key(saga_id: str) -> bytes:
    return b"seq/" + saga_id.encode()


class ParticipantHandler:
    """Dedupe by command id, apply the rules, store and return the answer event."""

    def __init__(self, rules: Rules, tables: Tables) -> None:
        self.rules = rules
        self.tables = tables
        self.records = tables["records"]

    def handle(self, command: Command) -> Outcome:
        key = answer_key(command.command_id)
        stored = self.records.get(key)
        if stored is not None:
            self._rewrite([*self.rules.touched(self.tables, command), ("records", key)])
            event = Event.from_dict(stored["event"]) if stored.get("event") else None
            return Outcome(event, duplicate=True)
        reaction = self.rules.decide(self.tables, command)
        for role, table_key, value in reaction.writes:
            self.tables[role][table_key] = value
        event = None
        if reaction.event_type is not None:
            event = self._event(command, reaction)
        self.records[key] = {"event": event.to_dict() if event else None}
        return Outcome(event, duplicate=False)

    def _event(self, command: Command, reaction: Reaction) -> Event:
        assert reaction.event_type is not None
        # Events of one saga at this participant are numbered 1, 2, ... (version).
        sequence_key = _sequence_key(command.aggregate_id)
        version = int(self.records.get(sequence_key) or 0) + 1
        self.records[sequence_key] = version
        return Event(
            event_id=derived_id(command.command_id, "answer"),
            event_type=reaction.event_type,
            aggregate_id=command.aggregate_id,
            aggregate_type=self.rules.aggregate_type,
            version=version,
            timestamp=iso_utc(),
            correlation_id=command.correlation_id,
            causation_id=command.command_id,
            source=self.rules.service,
            data=reaction.data,
        )

    def _rewrite(self, keys: Iterable[tuple[str, bytes]]) -> None:
        for role, table_key in keys:
            value = self.tables[role].get(table_key)
            if value is not None:
                self.tables[role][table_key] = value
