"""One agent shape for every participant: command -> rules -> answer event.

The pure part (dedupe, rules, answer) is :class:`~streamapp.participants.handler.
ParticipantHandler`; this module wires it to the service's topics and tables.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from streamapp.errors import CommandRejected
from streamapp.messages import Command, derived_id
from streamapp.participants.handler import ParticipantHandler, Rules
from streamapp.resilience.deadletter import dead_letter
from streamapp.services.topics import commands_topic, events_topic


class ParticipantService:
    """The topics, tables, handler and agent of one participant service."""

    def __init__(self, app: Any, rules: Rules, roles: tuple[str, ...] = ("records",)) -> None:
        self.app = app
        self.name = rules.service
        self.commands = commands_topic(app, self.name)
        self.events = events_topic(app, self.name)
        partitions = self.commands.partitions
        self.tables = {
            role: app.keyed_table(f"{self.name}-{role}", partitions=partitions) for role in roles
        }
        self.handler = ParticipantHandler(rules, self.tables)
        app.agent(self.commands, name=self.name)(self.process)

    async def process(self, stream: Any) -> None:
        """One command at a time (concurrency 1: it reads and writes the tables)."""
        app = self.app
        async for event in stream.events():
            started = time.perf_counter()
            try:
                command = Command.parse(event.value)
                outcome = self.handler.handle(command)
            except CommandRejected as exc:  # undecodable, schema-invalid, unknown type
                await dead_letter(app, self.name, event, "invalid", exc)
                continue
            except Exception as exc:  # a bug must not stop the partition
                await dead_letter(app, self.name, event, "error", exc)
                continue
            if outcome.event is not None:
                await self.events.send(
                    key=outcome.event.aggregate_id.encode(), value=outcome.event.to_json()
                )
            await app.hand_over_table_writes()
            app.metrics.processed(self.name, started, replayed=outcome.duplicate)

    async def send_seed(self, command_type: str, data: Mapping[str, Any]) -> None:
        """Seed the tables through the agent (table writes need a record being processed).

        The command id is derived from the content: every worker sends it at every start,
        and only a changed seed is applied again."""
        command = Command(
            derived_id(command_type, orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()),
            command_type,
            f"seed-{self.name}",
            data,
        )
        await self.commands.send(key=command.aggregate_id.encode(), value=command.to_json())
