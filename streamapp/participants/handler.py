"""The command handler every participant service shares (pure: tables are mappings).

A participant answers each saga command with one event. The answer is stored under the
command id, so a command delivered again (a re-send by the orchestrator after its crash,
or our own redelivery after ours) gets the very same event back and changes nothing:
participants are idempotent by command id.

Crash safety. All of a service's state is in ONE table (one changelog partition per
command partition), written in order with the answer last: after a crash the changelog
holds a prefix of a command's writes, and a command without its answer is processed
again. So that processing it again cannot apply it twice, every value a command writes
is stamped with the command id and keeps the value it replaced; the rules read a
value stamped by a command that has no answer (the one being processed again, or any
other that was cut short) as it was before that command (``before``). So a command cut
short leaves no effect, even when another command touches the same keys before it is
processed again (a retried command from ``.retry.due`` can come first), and is applied
once when it is. This needs answers to live as long as the values they stamp (they are
never deleted). A repeated command whose answer exists writes the keys it touched again
(same values): the local RocksDB may be ahead of the changelog after a kill -9.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamapp.messages import Command, Event, derived_id, iso_utc

#: The participant's state by role: ``entities`` (stock levels, accounts) and ``records``
#: (per-saga records, answers, event counters), two key spaces of one table.
Tables = Mapping[str, MutableMapping[bytes, Any]]

VALUE, BY, BEFORE = "value", "by", "before"


def unwrap(stored: Any) -> Any:
    """The value of a stamped table entry (None for no entry)."""
    return None if stored is None else stored[VALUE]


class Prefixed(MutableMapping[bytes, Any]):
    """One key space (``prefix`` + key) of a table."""

    def __init__(self, table: MutableMapping[bytes, Any], prefix: bytes) -> None:
        self.table, self.prefix = table, prefix

    def __getitem__(self, key: bytes) -> Any:
        return self.table[self.prefix + key]

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.table[self.prefix + key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.table[self.prefix + key]

    def __iter__(self) -> Iterator[bytes]:
        return (k[len(self.prefix) :] for k in self.table if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Reading(Mapping[bytes, Any]):
    """What the rules see of a key space: an entry stamped by `command_id` or by any
    command without an answer reads as it was before that command; others as they are."""

    def __init__(
        self,
        table: MutableMapping[bytes, Any],
        command_id: str | None,
        answered: Callable[[str], bool],
    ) -> None:
        self.table, self.command_id, self.answered = table, command_id, answered

    def __getitem__(self, key: bytes) -> Any:
        stored = self.table[key]
        by = stored[BY]
        cut_short = by == self.command_id or not self.answered(by)
        value = stored[BEFORE] if cut_short else stored[VALUE]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


def reading(tables: Tables, command_id: str | None = None) -> Tables:
    """The rules' view of the tables before `command_id` (see _Reading)."""
    records = tables["records"]

    def answered(by: str) -> bool:
        return answer_key(by) in records

    return {role: _Reading(table, command_id, answered) for role, table in tables.items()}  # type: ignore[misc]


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
            touched = self.rules.touched(reading(self.tables), command)
            self._rewrite([*touched, ("records", key)])
            event = Event.from_dict(stored["event"]) if stored.get("event") else None
            return Outcome(event, duplicate=True)
        before = reading(self.tables, command.command_id)
        reaction = self.rules.decide(before, command)
        writes = list(reaction.writes)
        event = None
        if reaction.event_type is not None:
            # Events of one saga at this participant are numbered 1, 2, ... (version).
            sequence = _sequence_key(command.aggregate_id)
            version = int(before["records"].get(sequence) or 0) + 1
            writes.append(("records", sequence, version))
            event = self._event(command, reaction, version)
        for role, table_key, value in writes:
            self.tables[role][table_key] = {
                VALUE: value,
                BY: command.command_id,
                BEFORE: before[role].get(table_key),
            }
        self.records[key] = {"event": event.to_dict() if event else None}  # last
        return Outcome(event, duplicate=False)

    def _event(self, command: Command, reaction: Reaction, version: int) -> Event:
        assert reaction.event_type is not None
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
