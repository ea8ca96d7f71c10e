"""The saga orchestrator agent: order and participant events -> saga table -> commands.

Every input is keyed by the order id (= saga id) and has the same partition count, so
one agent consumes them all and each saga's records arrive in one partition, in order,
next to its table entry. Step deadlines live in a second table (only sagas in flight);
a timer on each worker turns due deadlines of its own partitions into records on
``sagas.timeouts``, which the agent processes like any other input. Deadlines thus
survive restarts and rebalances, and timeouts are serialised with the saga's events.

A settled saga's expiry is in a third table, ``saga-expiries``: it holds every saga ended
within the retention window (days of them), so it is scanned on a slower timer than the
in-flight deadlines, whose table stays small. An expiry tick goes the same way; the
agent then deletes the saga from all three tables (its events stay on sagas.events).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streamapp import topics
from streamapp.app import app
from streamapp.errors import SchemaError
from streamapp.messages import new_id
from streamapp.orders.agents import commands_topic as orders_commands
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import TERMINAL_EVENTS, SagaMachine
from streamapp.saga.orchestration import ORDERS, TIMEOUTS, Incoming, SagaRecord, react

log = logging.getLogger(__name__)

AGENT = "saga"
TICK_INTERVAL_S = 0.5

settings = app.settings
machine = SagaMachine(
    order_fulfillment(
        step_timeout_ms=settings.saga_step_timeout_ms,
        compensation_timeout_ms=settings.saga_compensation_timeout_ms,
        max_compensation_attempts=settings.saga_max_compensation_attempts,
        retention_ms=settings.state_retention_ms,
    )
)

orders_events = app.contract_topic(topics.ORDERS_EVENTS, key_type=bytes, value_type=bytes)
participant_events = {
    s: app.contract_topic(topics.participant_events(s), key_type=bytes, value_type=bytes)
    for s in topics.PARTICIPANTS
}
timeouts_topic = app.contract_topic(topics.SAGAS_TIMEOUTS, key_type=bytes, value_type=bytes)
sagas_events = app.contract_topic(topics.SAGAS_EVENTS, key_type=bytes, value_type=bytes)
command_topics = {
    settings.topic(topics.participant_commands(s).name): app.contract_topic(
        topics.participant_commands(s), key_type=bytes, value_type=bytes
    )
    for s in topics.PARTICIPANTS
}
command_topics[settings.topic(topics.ORDERS_COMMANDS.name)] = orders_commands

#: topic name -> source kind (what react() needs to know about an input).
SOURCES = {
    settings.topic(topics.ORDERS_EVENTS.name): ORDERS,
    settings.topic(topics.SAGAS_TIMEOUTS.name): TIMEOUTS,
}
SOURCES |= {settings.topic(topics.participant_events(s).name): s for s in topics.PARTICIPANTS}

sagas = app.keyed_table("sagas")
deadlines = app.keyed_table("saga-deadlines")
expiries = app.keyed_table("saga-expiries")


def expiry_scan_interval_s(retention_ms: int) -> float:
    """A tenth of the window, within 0.5 s .. 60 s: a saga is deleted at most this long
    after it expired, and the scan of days of settled sagas runs rarely."""
    return min(60.0, max(0.5, retention_ms / 10_000))


def parse(raw: bytes | None, source: str, topic: str, offset: int) -> Incoming:
    """An event envelope (or a timeout tick) reduced to what the saga needs."""
    try:
        doc = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SchemaError("an event must be a JSON object")
    if source == TIMEOUTS:
        tick_id, deadline = doc.get("tickId"), doc.get("deadlineMs")
        if not isinstance(tick_id, str) or not tick_id or type(deadline) is not int:
            # Not one of our ticks: dead-lettered, never taken for a deadline.
            raise SchemaError("a timeout tick needs a tickId string and a deadlineMs integer")
        return Incoming(source, topic, offset, "Timeout", tick_id, None, None, {})
    event_type, event_id = doc.get("eventType"), doc.get("eventId")
    if not isinstance(event_type, str) or not isinstance(event_id, str):
        raise SchemaError("an event needs eventType and eventId strings")
    data = doc.get("data")
    return Incoming(
        source,
        topic,
        offset,
        event_type,
        event_id,
        doc.get("causationId"),
        doc.get("correlationId"),
        data if isinstance(data, dict) else {},
    )


consumer = ResilientConsumer(
    app, AGENT, [orders_events, *participant_events.values(), timeouts_topic]
)


@consumer.agent
async def orchestrate(delivery: Delivery) -> bool:
    """Read the saga, react, write it, then send what it implies; True for a redelivery.

    A retried record counts as its first arrival (origin topic and offset), so the
    saga's applied-offset check recognises it if its first attempt got that far."""
    if not delivery.key:
        raise SchemaError("the record key must be the saga (order) id")
    first = delivery.origin
    incoming = parse(delivery.value, SOURCES[first.topic], first.topic, first.offset)
    stored = sagas.get(delivery.key)
    record = SagaRecord.from_dict(stored) if stored is not None else None
    reaction = react(machine, delivery.key.decode(), record, incoming, int(time.time() * 1000))
    if reaction.delete:
        # Expired (or a deadline left without its saga): the saga's events stay on
        # sagas.events. Deleted here, while processing a record of the saga's
        # partition, so the tombstones go to that partition of the changelogs.
        sagas.pop(delivery.key, None)
        deadlines.pop(delivery.key, None)
        expiries.pop(delivery.key, None)
        _ticked.pop(delivery.key, None)
        await app.hand_over_table_writes()
    elif reaction.record is not None and (reaction.changed or reaction.redelivered):
        # State first (a redelivery writes it again: the local store may be ahead of
        # the changelog after a crash), then what it implies.
        sagas[delivery.key] = reaction.record.to_dict()
        state = reaction.record.state
        for table, due in ((deadlines, state.next_deadline()), (expiries, state.expires_ms)):
            if due is None:
                table.pop(delivery.key, None)
            else:
                table[delivery.key] = due
        await app.hand_over_table_writes()
    for topic, command in reaction.commands:
        await command_topics[settings.topic(topic)].send(
            key=command.aggregate_id.encode(), value=command.to_json()
        )
    for saga_event in reaction.events:
        await sagas_events.send(key=delivery.key, value=saga_event.to_json())
        if saga_event.event_type in TERMINAL_EVENTS and not reaction.redelivered:
            app.metrics.sagas_ended.labels(saga_event.event_type).inc()
    return reaction.redelivered


#: Deadlines this worker already sent a tick for (saga key -> deadline), so a due saga
#: is ticked once per deadline; after a restart it is ticked again, which is harmless.
_ticked: dict[bytes, int] = {}


async def _tick_due(table: Any) -> None:
    """Send a timeout record for every saga of this worker's partitions in `table`
    (saga key -> deadline) that is due."""
    if app.rebalancing:
        return
    now = int(time.time() * 1000)
    due = [(key, deadline) for key, deadline in table.items() if deadline <= now]
    for key, deadline in due:
        if _ticked.get(key) == deadline:
            continue
        tick = {"tickId": new_id(), "sagaId": key.decode(), "deadlineMs": deadline}
        await timeouts_topic.send(key=key, value=orjson.dumps(tick))
        _ticked[key] = deadline
    if len(_ticked) > 10 * max(1, len(due)) + 10_000:
        _ticked.clear()


# (no parameters: faust passes the app to a timer function that takes one)
async def tick_due_sagas() -> None:
    await _tick_due(deadlines)


async def tick_expired_sagas() -> None:
    await _tick_due(expiries)


app.timer(TICK_INTERVAL_S, name="saga-deadlines")(tick_due_sagas)
app.timer(expiry_scan_interval_s(settings.state_retention_ms), name="saga-expiries")(
    tick_expired_sagas
)
