"""The tracer agent: every event topic -> one trace per correlation id in the ``traces`` table.

It reads orders.events, sagas.events and the participants' event topics. They are all
keyed by the order id with one partition count, so every event of a conversation (one
order's correlation id) arrives on the same partition number, and the trace's table
writes go to that changelog partition (faust writes to the partition of the record being
processed). The table is keyed by correlation id, which is not the record key: a lookup
asks every orders worker (streamapp.tracing.views). Key families in the table::

    t/<correlationId>   the trace (trace.Trace.to_dict)
    o/<correlationId>   present while its saga has not ended (open: the stall gauges)
    x/<expiresAtMs>/<correlationId>   expiry index (eventstore.retention), also the
                        newest-first order of GET /traces

The tracer is an observer: a record it cannot read is counted and skipped (the topic's
own consumer dead-letters it), a redelivered event is recognised by its eventId, and a
trace is deleted ``trace_retention_ms`` after its first event, swept per partition while
processing a tick on that partition (so the tombstones go to that partition): a timer
sends one to each partition this worker owns on the internal ``tracer.ticks`` topic, which
the agent reads beside the event topics (same partition count, so partition p of both is
this worker's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import orjson
from faust.types import EventT, StreamT

from streamapp import topics
from streamapp.app import app
from streamapp.eventstore.retention import (
    INDEX_PREFIX,
    due_entries,
    expiry_key,
    expiry_target,
    partition_keys,
    tombstone,
)
from streamapp.kafka.current import processing
from streamapp.resilience.housekeeping import tick_interval_s
from streamapp.tracing.trace import Trace, TracedEvent, read_event

log = logging.getLogger(__name__)

AGENT = "tracer"
TRACE, OPEN = b"t/", b"o/"
SWEEP_LIMIT = 1000
#: Events per batch, and how long a batch waits to fill: under load a conversation's
#: events arrive together and cost one trace write; when idle a trace is 50 ms late.
BATCH_MAX, BATCH_WITHIN_S = 500, 0.05

settings = app.settings

#: event topic name -> the service that writes it (the lane in the picture).
SOURCES = {settings.topic(topics.ORDERS_EVENTS.name): "orders"}
SOURCES |= {settings.topic(topics.SAGAS_EVENTS.name): "saga"}
SOURCES |= {settings.topic(topics.participant_events(s).name): s for s in topics.PARTICIPANTS}

event_topics = [
    app.contract_topic(topics.ORDERS_EVENTS, key_type=bytes, value_type=bytes),
    app.contract_topic(topics.SAGAS_EVENTS, key_type=bytes, value_type=bytes),
    *(
        app.contract_topic(topics.participant_events(s), key_type=bytes, value_type=bytes)
        for s in topics.PARTICIPANTS
    ),
]
ticks_topic = app.contract_topic(topics.TRACER_TICKS, key_type=bytes, value_type=bytes)
TICKS = ticks_topic.get_topic_name()
traces = app.keyed_table("traces")


def trace_key(correlation_id: str) -> bytes:
    return TRACE + correlation_id.encode()


def load(correlation_id: str) -> Trace | None:
    stored = traces.get(trace_key(correlation_id))
    return Trace.from_dict(stored) if stored is not None else None


def read(event: EventT[Any]) -> tuple[str, TracedEvent] | None:
    """(correlationId, event) of an event topic's record, or None (counted as skipped)."""
    message = event.message
    try:
        doc = orjson.loads(event.value or b"")
        found = read_event(
            doc,
            SOURCES[message.topic],
            message.topic,
            message.partition,
            message.offset,
            int(message.timestamp * 1000),
        )
    except (orjson.JSONDecodeError, AttributeError):
        found = None
    if found is None:
        app.metrics.traces_skipped.labels(message.topic).inc()
    return found


def update(correlation: str, events: list[TracedEvent]) -> None:
    """Add events of one conversation to its trace: one read and one write of it
    (redelivered events, known by their eventId, are left out)."""
    metrics = app.metrics
    key = trace_key(correlation)
    stored = traces.get(key)
    before = Trace.from_dict(stored) if stored is not None else None
    after = before
    for event in events:
        if after is not None and after.has(event.event_id):
            continue
        after = Trace.first(correlation, event) if after is None else after.add(event)
        metrics.traces_recorded.labels(event.topic).inc()
    if after is None or after is before:
        return
    traces[key] = after.to_dict()
    if before is None:
        expires = after.started_ms + settings.trace_retention_ms
        traces[INDEX_PREFIX + expiry_key(expires, correlation.encode())] = expires
    was_open = before is not None and before.terminal is None and before.expects_saga
    is_open = after.terminal is None and after.expects_saga
    if is_open and not was_open:
        traces[OPEN + correlation.encode()] = after.started_ms
    elif was_open and not is_open:
        tombstone(traces, OPEN + correlation.encode())
    if after.terminal is not None and (before is None or before.terminal is None):
        labels = (after.initiating_event, after.terminal)
        metrics.flow_duration_seconds.labels(*labels).observe(
            (after.last_ms - after.started_ms) / 1000.0
        )
        metrics.flow_hops.labels(*labels).observe(len(after.events))
        metrics.flow_services.labels(*labels).observe(len(after.services()))


async def record_batch(batch: Sequence[EventT[Any]]) -> None:
    """Fold a batch: one trace write per conversation, one sweep per ticked partition,
    each made as if processing a record of its partition (where the changelog record
    goes); then wait until the writes are in the producer, before the batch is acked."""
    conversations: dict[str, tuple[EventT[Any], list[TracedEvent]]] = {}
    ticked: dict[int, EventT[Any]] = {}
    for event in batch:
        if event.message.topic == TICKS:
            ticked[event.message.partition] = event
            continue
        found = read(event)
        if found is not None:
            correlation, traced = found
            conversations.setdefault(correlation, (event, []))[1].append(traced)
    for correlation, (event, traced_events) in conversations.items():
        with processing(event):
            update(correlation, traced_events)
    now = int(time.time() * 1000)
    for partition, event in ticked.items():
        with processing(event):
            if sweep(partition, now) >= SWEEP_LIMIT:
                await send_tick(partition)  # more due: go on at once
    await app.hand_over_table_writes()


def sweep(partition: int, now_ms: int) -> int:
    """Delete this partition's traces past their retention (bounded per tick)."""
    entries = due_entries(traces, partition, now_ms, SWEEP_LIMIT)
    for entry in entries:
        correlation = expiry_target(entry)
        tombstone(traces, TRACE + correlation)
        tombstone(traces, OPEN + correlation)
        tombstone(traces, INDEX_PREFIX + entry)
    return len(entries)


async def trace_events(stream: StreamT[Any]) -> None:
    """The agent: batches of events (faust acks a batch when the next one is asked
    for); an observer, so nothing it reads can stop it."""
    batches = cast(Any, stream).take_events(BATCH_MAX, BATCH_WITHIN_S)  # not in StreamT
    async for batch in batches:
        with app.in_flight(batch):
            try:
                await record_batch(batch)
            except Exception:  # an observer must not stop: log it, the events stay on their topics
                first = batch[0].message
                log.exception(
                    "tracer could not record a batch of %d from %s[%d]@%d",
                    len(batch),
                    first.topic,
                    first.partition,
                    first.offset,
                )
                app.metrics.traces_skipped.labels(first.topic).inc(len(batch))


async def send_tick(partition: int) -> None:
    await ticks_topic.send(key=b"tick", value=b"{}", partition=partition)


async def tick_owned_partitions() -> None:
    """The expiry timer: a tick to every traces partition this worker owns."""
    if app.rebalancing:
        return
    for partition in owned_partitions():
        await send_tick(partition)


def owned_partitions() -> list[int]:
    """The traces partitions this worker actively owns (standby copies excluded)."""
    return app.owned_partitions(traces.changelog_topic.get_topic_name())


def open_traces() -> Iterable[Trace]:
    """The traces of owned partitions whose saga has not ended."""
    for partition in owned_partitions():
        for key in partition_keys(traces, partition, OPEN, b"o0", 100_000):
            trace = load(key[len(OPEN) :].decode("utf-8", errors="replace"))
            if trace is not None:
                yield trace


def _count_open(stalled: bool) -> float:
    now = int(time.time() * 1000)
    try:
        found = list(open_traces())
    except Exception:  # not started (no assignment yet): nothing to count
        return 0.0
    if not stalled:
        return float(len(found))
    return float(sum(1 for t in found if now - t.last_ms >= settings.trace_stall_ms))


if settings.tracing_enabled:
    channel = app.topic(
        *(t.get_topic_name() for t in event_topics),
        TICKS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    trace_events.__name__ = trace_events.__qualname__ = AGENT
    app.agent(channel, name=AGENT)(trace_events)
    app.timer(tick_interval_s(settings.trace_retention_ms), name="tracer-expiry")(
        tick_owned_partitions
    )
    app.metrics.flows_open.set_function(lambda: _count_open(stalled=False))
    app.metrics.flows_stalled.set_function(lambda: _count_open(stalled=True))
