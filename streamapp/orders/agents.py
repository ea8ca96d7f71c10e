"""The order command agent: orders.commands -> event store -> orders.events + replies.

It also expires command outcomes older than ``state_retention_ms``: housekeeping ticks
(resilience.housekeeping) reach it on each partition's ``.retry.due`` so that the
deletions are made while processing a record of the outcomes' own partition.
"""

from __future__ import annotations

import time

import orjson

from streamapp import topics
from streamapp.app import app
from streamapp.errors import SchemaError, UnknownCommand
from streamapp.eventstore.retention import due_entries
from streamapp.eventstore.store import EventStore
from streamapp.messages import Command, Reply
from streamapp.orders.aggregate import COMMAND_TYPES
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.registry.agents import deployed_validators, validators
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.resilience.housekeeping import Housekeeping

AGENT = "orders"

commands_topic = app.contract_topic(topics.ORDERS_COMMANDS, key_type=bytes, value_type=bytes)
replies_topic = app.contract_topic(topics.ORDERS_REPLIES, key_type=bytes, value_type=bytes)
events_topic = app.contract_topic(topics.ORDERS_EVENTS, key_type=bytes, value_type=bytes)

#: The event store: events, heads, snapshots and command outcomes in one table.
eventstore_table = app.keyed_table("eventstore")
event_store = EventStore(eventstore_table)
repository = order_repository(event_store, app.settings.snapshot_every)
handler = OrderCommandHandler(
    repository, app.settings.state_retention_ms, validators, app.metrics.eventstore
)


def expire_outcomes(partition: int, limit: int) -> int:
    """Remove this partition's due command outcomes (inside the agent: see above)."""
    now = int(time.time() * 1000)
    return handler.expire(due_entries(eventstore_table, partition, now, limit))


housekeeping = Housekeeping(app, commands_topic.get_topic_name(), expire_outcomes)


def _rejection_target(raw: bytes | None, key: bytes | None) -> tuple[str, str] | None:
    """(commandId, aggregateId) of a malformed command, when it says its id."""
    try:
        doc = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("commandId"), str):
        return None
    aggregate = doc.get("aggregateId")
    return doc["commandId"], aggregate if isinstance(aggregate, str) else (key or b"").decode(
        errors="replace"
    )


async def _reply(reply: Reply) -> None:
    await replies_topic.send(key=reply.command_id.encode(), value=reply.to_json())


consumer = ResilientConsumer(app, AGENT, [commands_topic])


@consumer.agent
async def handle_command(delivery: Delivery) -> bool:
    """Apply one command; True when it was a redelivery (already applied)."""
    if housekeeping.is_tick(delivery):
        await housekeeping.handle(delivery)
        return False
    schemas = await deployed_validators()
    try:
        doc = Command.decode(delivery.value)
        command = Command.from_dict(doc)
        key = delivery.key
        if key is None or key.decode(errors="replace") != command.aggregate_id:
            raise SchemaError("the record key must be the command's aggregateId")
        if command.command_type not in COMMAND_TYPES:
            raise UnknownCommand(f"unknown commandType {command.command_type!r} for orders")
        problems = schemas.errors(command.command_type, doc)
        if problems:  # the command's registered schema says no: never retryable
            raise SchemaError(f"{command.command_type} breaks its schema: " + "; ".join(problems))
    except (SchemaError, UnknownCommand) as exc:  # never retryable: reply, then DLQ
        target = _rejection_target(delivery.value, delivery.key)
        if target is not None:  # it has an id: the client gets its rejection
            await _reply(Reply.rejected(target[0], target[1], exc))
        raise
    # A retry is a redelivery of the record where it first arrived.
    first = delivery.origin
    source = SourceRecord(first.partition, first.offset, delivery.timestamp_ms)
    outcome = handler.handle(command, source)
    for stored in outcome.events:
        await events_topic.send(key=stored.aggregate_id.encode(), value=stored.to_json())
    await _reply(outcome.reply)
    return outcome.redelivered
