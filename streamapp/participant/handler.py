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
once when it is. When it is, stale stamps it left on keys it no longer writes (its
decision changed because others went first) are reset to their ``before``. A repeated
command whose answer exists writes the keys it touched again (same values): the local
RocksDB may be ahead of the changelog after a kill -9.

Retention. The reading rule needs an answer as long as a value carries its command's
stamp. An answer records when it was written (``at``) and the keys its command stamped
(``wrote``); with a ``retention_ms`` it gets an expiry index entry (eventstore.retention)
and `expire` removes it after the window, together with that dependency: each key still
stamped by the command is settled first, then the answer, then the entry (a crash in
between leaves the entry to be processed again). Settling keeps the value under no stamp
(``by`` None: it reads as it is); it deletes a key whose value is None, and:

- a per-saga record (role ``records``) that its service's rules call *closed*
  (``Rules.closed``: a released or committed reservation, a refunded payment, a
  cancelled shipment). An *open* one (units still reserved, money still charged) is live
  state a later command of its saga needs (a release, a refund), however late: it is
  kept, and goes when a later command that closes it has its own answer expire;
- a stream's event counter (``seq/<stream>``, ``Rules.stream``: the saga, or at a
  fan-out participant the saga's branch), once no record of its stream is open or
  stamped by another command (``Rules.saga_records``): it is settled after the stream's
  other keys and kept while one is, so the versions of a stream's events never restart
  while the saga can still get answers.

So the rule stays exact and needs no clock; a command id repeated within the window is a
duplicate, and after it is decided again. A crash between any two writes of an expiry
leaves a state that reads correctly: the answer goes last, so a key still stamped by
its command reads as applied; a settled key reads the same; a deleted one is a closed
record, or a counter no open record needs; the entry, processed again, finishes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamapp.eventstore.retention import expiry_key, expiry_target, tombstone
from streamapp.messages import Command, Event, derived_id, iso_utc

#: The participant's state by role: ``entities`` (stock levels, accounts) and ``records``
#: (per-saga records, answers, event counters), two key spaces of one table.
Tables = Mapping[str, MutableMapping[bytes, Any]]

VALUE, BY, BEFORE = "value", "by", "before"

#: The role of per-saga records: deleted when the last command that wrote them expires if
#: they are closed (Rules.closed); open ones and entities are kept, settled under no stamp.
PER_SAGA = "records"


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
        by = stored[BY]  # None: settled (its command's answer expired)
        cut_short = by is not None and (by == self.command_id or not self.answered(by))
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

    def stream(self, command: Command) -> str:
        """The stream a saga command belongs to, whose events are numbered 1, 2, ...:
        the saga id, or at a service that gets one command per branch of a saga (one
        per sku), the saga and the branch. All of a stream's commands share a record key,
        so a stream lives in one partition and its numbers never collide."""

    def saga_records(self, stream: str) -> Iterable[bytes]:
        """The keys (role ``records``) of the per-saga records this service keeps for a
        stream: its event counter stays while one of them is open."""

    def closed(self, key: bytes, value: Any) -> bool:
        """Whether a per-saga record's value is final (no command of its saga needs it any
        more), so that it may be deleted a window after its last write. Anything else,
        an unknown key included, is open: kept."""


@dataclass(frozen=True)
class Outcome:
    event: Event | None
    duplicate: bool


ANSWER = b"answer/"


def answer_key(command_id: str) -> bytes:
    return ANSWER + command_id.encode()


SEQUENCE = b"seq/"


def _sequence_key(stream: str) -> bytes:
    return SEQUENCE + stream.encode()


def _is_counter(key: bytes) -> bool:
    return key.startswith(SEQUENCE)


class ParticipantHandler:
    """Dedupe by command id, apply the rules, store and return the answer event.

    ``retention_ms`` None keeps answers forever; otherwise their expiry entries go to
    ``index`` (the table's ``x/`` key space in the service)."""

    def __init__(
        self,
        rules: Rules,
        tables: Tables,
        *,
        retention_ms: int | None = None,
        index: MutableMapping[bytes, Any] | None = None,
        writing_for: Callable[[bytes | None], AbstractContextManager[None]] = (
            lambda key: nullcontext()
        ),
    ) -> None:
        """``writing_for(key)``: a block whose table writes belong to record key `key`
        (streamapp.kafka.source_key): an expiry settles an answer's entities on a
        housekeeping tick, on behalf of the command record that wrote them."""
        self.writing_for = writing_for
        self.rules = rules
        self.tables = tables
        self.records = tables["records"]
        self.retention_ms = retention_ms
        self.index: MutableMapping[bytes, Any] = {} if index is None else index

    def handle(
        self, command: Command, now_ms: int | None = None, record_key: bytes | None = None
    ) -> Outcome:
        """``now_ms`` (default: the wall clock) starts a new answer's retention window;
        ``record_key``, the command record's key, is kept for the answer's expiry."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        key = answer_key(command.command_id)
        stored = self.records.get(key)
        if stored is not None:
            touched = self.rules.touched(reading(self.tables), command)
            self._rewrite([*touched, ("records", key)])
            self._index(key, stored)
            event = Event.from_dict(stored["event"]) if stored.get("event") else None
            return Outcome(event, duplicate=True)
        before = reading(self.tables, command.command_id)
        reaction = self.rules.decide(before, command)
        writes = list(reaction.writes)
        event = None
        if reaction.event_type is not None:
            # Events of one stream (saga) at this participant are numbered 1, 2, ...
            sequence = _sequence_key(self.rules.stream(command))
            version = int(before["records"].get(sequence) or 0) + 1
            writes.append(("records", sequence, version))
            event = self._event(command, reaction, version)
        written = {(role, table_key) for role, table_key, _ in writes}
        for role, table_key in self.rules.touched(before, command):
            stale = self.tables[role].get(table_key)
            if (role, table_key) not in written and stale and stale[BY] == command.command_id:
                # Left by this command's cut-short attempt, not written now: undo it.
                writes.append((role, table_key, stale[BEFORE]))
                written.add((role, table_key))
        for role, table_key, value in writes:
            self.tables[role][table_key] = {
                VALUE: value,
                BY: command.command_id,
                BEFORE: before[role].get(table_key),
            }
        answer: dict[str, Any] = {
            "event": event.to_dict() if event else None,
            "at": now,
            "wrote": [[role, table_key.decode()] for role, table_key in sorted(written)],
        }
        if record_key is not None:
            with suppress(UnicodeDecodeError):  # not a contract key: no key at its expiry
                answer["recordKey"] = record_key.decode()
        self.records[key] = answer  # last (but for its expiry entry)
        self._index(key, answer)
        return Outcome(event, duplicate=False)

    def _index(self, key: bytes, answer: Mapping[str, Any]) -> None:
        """The answer's expiry entry (the same on a rewrite: its time is the answer's)."""
        at = answer.get("at")
        if self.retention_ms is not None and isinstance(at, int):
            self.index[expiry_key(at + self.retention_ms, key)] = 1

    def expire(self, entries: Iterable[bytes]) -> int:
        """Remove the answers of due index entries (eventstore.retention.due_entries),
        each after settling the keys still stamped by its command (module docstring).
        Returns the entries removed."""
        removed = 0
        for entry in entries:
            key = expiry_target(entry)
            answer = self.records.get(key)
            if answer is not None:
                command_id = key[len(ANSWER) :].decode()
                wrote = [(role, name.encode()) for role, name in answer.get("wrote", ())]
                counters = [k for role, k in wrote if role == PER_SAGA and _is_counter(k)]
                record_key = answer.get("recordKey")
                with self.writing_for(record_key.encode() if record_key is not None else None):
                    for role, table_key in wrote:
                        if not (role == PER_SAGA and _is_counter(table_key)):
                            self._settle(role, table_key, command_id)
                    for table_key in counters:  # after the saga's records: they decide
                        self._settle_counter(table_key, command_id)
            tombstone(self.records, key)
            tombstone(self.index, entry)
            removed += 1
        return removed

    def _settle(self, role: str, key: bytes, command_id: str) -> None:
        table = self.tables[role]
        stored = table.get(key)
        if stored is None or stored[BY] != command_id:
            return  # a later command stamped it: its own answer covers it
        value = stored[VALUE]
        if value is None or (role == PER_SAGA and self.rules.closed(key, value)):
            tombstone(table, key)
        else:  # an entity, or an open per-saga record: kept, read as it is
            table[key] = {VALUE: value, BY: None, BEFORE: None}

    def _settle_counter(self, key: bytes, command_id: str) -> None:
        """A stream's event counter goes with the last of the stream's records to close."""
        stored = self.records.get(key)
        if stored is None or stored[BY] != command_id:
            return
        stream = key[len(SEQUENCE) :].decode()
        kept = any(self._holds(k, command_id) for k in self.rules.saga_records(stream))
        if kept and stored[VALUE] is not None:
            self.records[key] = {VALUE: stored[VALUE], BY: None, BEFORE: None}
        else:
            tombstone(self.records, key)

    def _holds(self, key: bytes, command_id: str) -> bool:
        """Whether a per-saga record keeps its saga's counter: open, or stamped by
        another command (one cut short writes the counter when it is processed again)."""
        stored = self.records.get(key)
        if stored is None:
            return False
        if stored[BY] is not None and stored[BY] != command_id:
            return True
        return stored[VALUE] is not None and not self.rules.closed(key, stored[VALUE])

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
