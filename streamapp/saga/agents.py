"""The saga orchestrator agent: order and participant events -> saga table -> commands.

Every input is keyed by the order id (= saga id) and has the same partition count, so
one agent consumes them all (its twin the due retries: streamapp.resilience.gate) and
each saga's records arrive in one partition, in order, next to its table entry. Step
deadlines live in a second table (only sagas in flight); a timer on each worker turns
due deadlines of its own partitions into records on
``sagas.timeouts``, which the agent processes like any other input. Deadlines thus
survive restarts and rebalances, and timeouts are serialised with the saga's events.

A settled saga's expiry is in a third table, ``saga-expiries``: it holds every saga ended
within the retention window (days of them), so it is a time-ordered index read per
partition in bounded batches from the earliest entry (``saga.timers``), on a slower timer
than the in-flight deadlines, whose table stays small. An expiry tick names its index
entry; the agent then deletes the saga from all three tables (its events stay on
sagas.events), always with tombstones on the changelogs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streamapp import topics
from streamapp.app import app
from streamapp.errors import SchemaError
from streamapp.eventstore.retention import partition_keys
from streamapp.messages import Event
from streamapp.metrics import Sample
from streamapp.orders.agents import commands_topic as orders_commands
from streamapp.registry.agents import deployed_validators
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.resilience.housekeeping import tick_interval_s
from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import TERMINAL_EVENTS, SagaMachine
from streamapp.saga.metrics import in_flight_by_state, step_latencies
from streamapp.saga.orchestration import ORDERS, TIMEOUTS, Incoming, SagaRecord, react
from streamapp.saga.timers import (
    DEADLINES,
    EXPIRIES,
    SAGAS,
    TickLog,
    effects,
    entry_saga,
    reserved,
    retick_after_ms,
    tick_deadlines,
    tick_expiries,
    tick_value,
)
from streamapp.tracing import recorder
from streamapp.tracing.store import correlation_key
from streamapp.tracing.trace import read_event

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

sagas = app.keyed_table(SAGAS)
deadlines = app.keyed_table(DEADLINES)
#: The expiry index: x/<expiresAtMs:013d>/<sagaId> -> expiresAtMs (see saga.timers).
expiries = app.keyed_table(EXPIRIES)
TABLES = {SAGAS: sagas, DEADLINES: deadlines, EXPIRIES: expiries}


def expiry_scan_interval_s(retention_ms: int) -> float:
    """A tenth of the window, within 0.5 s .. 60 s: a saga is deleted at most this long
    after it expired, and the scan of days of settled sagas runs rarely."""
    return min(60.0, max(0.5, retention_ms / 10_000))


def decode(raw: bytes | None) -> dict[str, Any]:
    """The record as a JSON object; SchemaError otherwise."""
    try:
        doc = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SchemaError("an event must be a JSON object")
    return doc


def parse(doc: dict[str, Any], source: str, topic: str, offset: int) -> Incoming:
    """An event envelope (or a timeout tick) reduced to what the saga needs."""
    if source == TIMEOUTS:
        tick_id, deadline = doc.get("tickId"), doc.get("deadlineMs")
        if not isinstance(tick_id, str) or not tick_id or type(deadline) is not int:
            # Not one of our ticks: dead-lettered, never taken for a deadline.
            raise SchemaError("a timeout tick needs a tickId string and a deadlineMs integer")
        entry = doc.get("entry")
        if entry is not None and (not isinstance(entry, str) or not entry):
            raise SchemaError("a timeout tick's entry must be a non-empty string")
        tick = {"entry": entry} if entry is not None else {}
        return Incoming(source, topic, offset, "Timeout", tick_id, None, None, tick)
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
    if not delivery.key or reserved(delivery.key):
        raise SchemaError("the record key must be the saga (order) id")
    first = delivery.origin
    source = SOURCES[first.topic]
    if source == TIMEOUTS and delivery.value == recorder.SWEEP_TICK:
        await _sweep_traces(delivery)
        return False
    doc = decode(delivery.value)
    incoming = parse(doc, source, first.topic, first.offset)
    if source not in (ORDERS, TIMEOUTS):  # a participant's event: check it on the way in
        schemas = await deployed_validators()
        problems = schemas.errors(incoming.event_type, doc)
        if problems:
            raise SchemaError(f"{incoming.event_type} breaks its schema: " + "; ".join(problems))
    tick_entry = _tick_entry(incoming, delivery.key)
    stored = sagas.get(delivery.key)
    record = SagaRecord.from_dict(stored) if stored is not None else None
    now_ms = int(time.time() * 1000)
    reaction = react(machine, delivery.key.decode(), record, incoming, now_ms)
    # Expired (or a deadline left without its saga): the saga is deleted from all three
    # tables, its events stay on sagas.events. Otherwise the state first (a redelivery
    # writes it again: the local store may be ahead of the changelog after a crash), its
    # deadline and expiry index entry, then what it implies. All of it here, while
    # processing a record of the saga's partition, so the changelog records (tombstones
    # too, written whether the key is still stored here or not) go to that partition.
    after = reaction.record
    write = after is not None and (reaction.changed or reaction.redelivered)
    todo = effects(
        delivery.key,
        record.state if record is not None else None,
        after.state if after is not None else None,
        stored=after.to_dict() if write and after is not None else None,
        delete=reaction.delete,
        write=write,
        redelivered=reaction.redelivered,
        tick_entry=tick_entry,
    )
    if todo:
        todo.apply(TABLES)
        await app.hand_over_table_writes()
    if reaction.changed and after is not None and record is not None:
        for step, outcome, seconds in step_latencies(record.state, after.state, now_ms):
            app.metrics.saga_step_seconds.labels(step, outcome).observe(seconds)
    for topic, key, command in reaction.commands:  # key: the step's (saga.definition)
        await command_topics[settings.topic(topic)].send(key=key, value=command.to_json())
    for saga_event in reaction.events:
        await sagas_events.send(key=delivery.key, value=saga_event.to_json())
        if saga_event.event_type in TERMINAL_EVENTS and not reaction.redelivered:
            app.metrics.sagas_ended.labels(saga_event.event_type).inc()
    if settings.tracing_enabled:
        stray = reaction.record is None
        _trace(delivery, source, doc, reaction.events, reaction.redelivered, stray)
    return reaction.redelivered


SAGAS_EVENTS = sagas_events.get_topic_name()


def _trace(
    delivery: Delivery,
    source: str,
    doc: dict[str, Any],
    sent: tuple[Event, ...],
    redelivered: bool,
    stray: bool,
) -> None:
    """Record the event read (not a deadline tick) and the saga events sent in answer in
    their trace (streamapp.tracing.recorder; `stray`: no saga owns the event); an
    observer: its failure is only logged."""
    first = delivery.origin
    read = None
    if source != TIMEOUTS:
        read = read_event(
            doc, source, first.topic, first.partition, first.offset, delivery.timestamp_ms
        )
        if read is None:
            app.metrics.traces_skipped.labels(first.topic).inc()
    try:
        recorder.record(
            read, sent, first.partition, SAGAS_EVENTS, redelivered=redelivered, stray=stray
        )
    except Exception:
        log.exception("could not trace %s[%d]@%d", first.topic, first.partition, first.offset)


async def _sweep_traces(delivery: Delivery) -> None:
    """A sweep tick: delete this partition's expired traces. Ticks repeat, so a retried
    one (its partition may not be the traces') is let go, and an error is only logged."""
    if not settings.tracing_enabled or delivery.attempt > 0:
        return
    partition = delivery.event.message.partition
    try:
        more = recorder.sweep(partition)
    except Exception:
        log.exception("could not sweep the traces of partition %d", partition)
        return
    if more:  # more are due: go on at once
        await _send_sweep(partition)


def _tick_entry(incoming: Incoming, key: bytes) -> bytes | None:
    """The saga-expiries key an expiry tick names; it must belong to the tick's saga."""
    entry = incoming.data.get("entry") if incoming.source == TIMEOUTS else None
    if entry is None:
        return None
    raw = str(entry).encode()
    if entry_saga(raw) != key:
        raise SchemaError("a timeout tick's entry must belong to the saga it is keyed by")
    return raw


def _in_flight() -> list[Sample]:
    """streamapp_sagas_in_flight: the deadlines table holds exactly the sagas in flight
    (read through the store: no faust table-read counts for a scrape)."""
    store = sagas.data
    counts = in_flight_by_state(list(deadlines.keys()), store.get)
    return [((state,), float(count)) for state, count in counts.items()]


app.metrics.sagas_in_flight.read_from(_in_flight)


def in_flight_correlations(partition: int) -> list[bytes]:
    """The correlation ids of one partition's sagas in flight (the deadlines table holds
    exactly those sagas): the conversations whose traces are open."""
    found = []
    for saga_id in partition_keys(deadlines, partition, b"", b"\xff", 100_000):
        stored = sagas.data.get(saga_id)
        cid = None if stored is None else correlation_key(str(stored["saga"]["correlationId"]))
        if cid is not None:
            found.append(cid)
    return found


if settings.tracing_enabled:
    app.metrics.flows_open.set_function(
        lambda: recorder.count_open(in_flight_correlations, stalled=False)
    )
    app.metrics.flows_stalled.set_function(
        lambda: recorder.count_open(in_flight_correlations, stalled=True)
    )


#: What this worker ticked, per table: a due deadline is ticked once, and again when it
#: is still due a retry budget (+ margin) later (the tick was lost or dead-lettered).
_retick_ms = retick_after_ms(settings.retry_policy.budget_ms())
deadline_ticks = TickLog(_retick_ms)
expiry_ticks = TickLog(_retick_ms)


async def _send_sweep(partition: int) -> None:
    await timeouts_topic.send(
        key=recorder.SWEEP_KEY, value=recorder.SWEEP_TICK, partition=partition
    )


async def tick_trace_expiry() -> None:
    """A sweep tick to every traces partition this worker owns."""
    if app.rebalancing:
        return
    for partition in recorder.owned_partitions():
        await _send_sweep(partition)


async def _send_tick(key: bytes, deadline: int, entry: bytes | None) -> None:
    await timeouts_topic.send(key=key, value=tick_value(key, deadline, entry))


# (no parameters: faust passes the app to a timer function that takes one)
async def tick_due_sagas() -> None:
    """In-flight deadlines: the table holds only sagas in flight, read whole."""
    if app.rebalancing:
        return
    now = int(time.time() * 1000)
    await tick_deadlines(deadlines.items(), now, deadline_ticks, _send_tick)


async def tick_expired_sagas() -> None:
    """Settled sagas' expiries: the due head of each owned partition's index."""
    if app.rebalancing:
        return
    now = int(time.time() * 1000)
    await tick_expiries(
        expiries,
        app.owned_partitions(expiries.changelog_topic.get_topic_name()),
        now,
        expiry_ticks,
        _send_tick,
        stopped=lambda: bool(app.rebalancing),
    )


app.timer(TICK_INTERVAL_S, name="saga-deadlines")(tick_due_sagas)
app.timer(expiry_scan_interval_s(settings.state_retention_ms), name="saga-expiries")(
    tick_expired_sagas
)
if settings.tracing_enabled:
    app.timer(tick_interval_s(settings.trace_retention_ms), name="trace-expiry")(tick_trace_expiry)
