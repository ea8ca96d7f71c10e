"""One agent shape for every participant: command -> rules -> answer event.

The pure part (dedupe, rules, answer) is :class:`~streamapp.participant.handler.
ParticipantHandler`; this module wires it to the service's topics and tables, and runs
the handler's expiry of answers older than ``state_retention_ms`` on housekeeping ticks
(resilience.housekeeping), inside the agent, per partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from streamapp import topics
from streamapp.eventstore.retention import INDEX_PREFIX, due_entries
from streamapp.kafka.source_key import writing_for
from streamapp.messages import Command, derived_id
from streamapp.participant.handler import ParticipantHandler, Prefixed, Rules, reading
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.resilience.housekeeping import Housekeeping
from streamapp.resilience.injection import FailureInjection

if TYPE_CHECKING:
    from streamapp.app import StreamApp


class ParticipantService:
    """The topics, tables, handler and agent of one participant service."""

    def __init__(self, app: StreamApp, rules: Rules) -> None:
        self.app = app
        self.name = rules.service
        self.commands = app.contract_topic(
            topics.participant_commands(self.name), key_type=bytes, value_type=bytes
        )
        self.events = app.contract_topic(
            topics.participant_events(self.name), key_type=bytes, value_type=bytes
        )
        # One table, so that a command's writes reach one changelog partition in order
        # (see participants.handler): entities and records are two key spaces of it.
        self.table = app.keyed_table(f"{self.name}-state", partitions=self.commands.partitions)
        self.tables = {
            "entities": Prefixed(self.table, b"e/"),
            "records": Prefixed(self.table, b"r/"),
        }
        self.handler = ParticipantHandler(
            rules,
            self.tables,
            retention_ms=app.settings.state_retention_ms,
            index=Prefixed(self.table, INDEX_PREFIX),
            writing_for=writing_for,
        )
        self.failures = FailureInjection(
            app.settings.inject_failure_rate,
            app.settings.inject_failures_first_attempts,
            app.settings.inject_failure_max_per_record,
        )
        only = app.settings.inject_failure_commands
        self.inject_into = frozenset(c.strip() for c in only.split(",") if c.strip())
        self.consumer = ResilientConsumer(app, self.name, [self.commands])
        self.consumer.agent(self.handle)
        self.housekeeping = Housekeeping(app, self.commands.get_topic_name(), self.expire)

    async def handle(self, delivery: Delivery) -> bool:
        """Answer one command; True when it was answered before (a repeat)."""
        if self.housekeeping.is_tick(delivery):
            await self.housekeeping.handle(delivery)
            return False
        command = Command.parse(delivery.value)  # SchemaError: never retried
        if self._injected(command.command_type):
            self.failures.check(delivery.attempt)
        outcome = self.handler.handle(command, record_key=delivery.key)
        if outcome.event is not None:
            await self.events.send(
                key=outcome.event.aggregate_id.encode(), value=outcome.event.to_json()
            )
        return outcome.duplicate

    def expire(self, partition: int, limit: int) -> int:
        """Remove this partition's due answers (inside the agent, on a tick)."""
        now = int(time.time() * 1000)
        return self.handler.expire(due_entries(self.table, partition, now, limit))

    def _injected(self, command_type: str) -> bool:
        if self.inject_into:
            return command_type in self.inject_into
        return not command_type.startswith("Seed")

    def entity(self, key: bytes) -> Any:
        """An entity (stock level, account) as commands see it, or None: a command cut
        short by a crash does not count until it is processed again."""
        return reading(self.tables)["entities"].get(key)

    def entities(self, keys: Iterable[bytes]) -> list[Any]:
        """The entities that exist among `keys`, in their order (a listing view)."""
        found = (self.entity(key) for key in keys)
        return [entity for entity in found if entity is not None]

    def record(self, key: bytes) -> Any:
        """A per-saga record (reservation, payment, shipment) as commands see it."""
        return reading(self.tables)["records"].get(key)

    async def send_seed(
        self, command_type: str, data: Mapping[str, Any], key: str | None = None
    ) -> None:
        """Seed the tables through the agent (table writes need a record being processed).

        The command id is derived from the content: every worker sends it at every start,
        and only a changed seed is applied again. `key`: the record key, the entity the
        seed writes (its writes land in that key's partition, where the commands that
        change the entity are processed); None: one key for the service's whole seed."""
        command = Command(
            derived_id(command_type, orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()),
            command_type,
            f"seed-{self.name}",
            data,
        )
        record_key = command.aggregate_id if key is None else key
        await self.commands.send(key=record_key.encode(), value=command.to_json())
