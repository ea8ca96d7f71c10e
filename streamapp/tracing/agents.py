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
from collections.abc import Iterable
from typing import Any

import orjson
from faust.types import StreamT

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
from streamapp.resilience.housekeeping import tick_interval_s
from streamapp.tracing.trace import Trace, read_event

log = logging.getLogger(__name__)

AGENT = "tracer"
TRACE, OPEN = b"t/", b"o/"
SWEEP_LIMIT = 1000

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


def record(raw: bytes | None, topic: str, partition: int, offset: int, record_ms: int) -> None:
    """Add one event to its trace (a no-op for a redelivered event)."""
    metrics = app.metrics
    try:
        doc = orjson.loads(raw or b"")
        read = read_event(doc, SOURCES[topic], topic, partition, offset, record_ms)
    except (orjson.JSONDecodeError, AttributeError):
        read = None
    if read is None:
        metrics.traces_skipped.labels(topic).inc()
        return
    correlation, event = read
    key = trace_key(correlation)
    stored = traces.get(key)
    before = Trace.from_dict(stored) if stored is not None else None
    if before is not None and before.has(event.event_id):
        return
    after = Trace.first(correlation, event) if before is None else before.add(event)
    traces[key] = after.to_dict()
    metrics.traces_recorded.labels(topic).inc()
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
    """The agent: an observer, so nothing it reads can stop it."""
    async for event in stream.events():
        message = event.message
        try:
            if message.topic == TICKS:
                if sweep(message.partition, int(time.time() * 1000)) >= SWEEP_LIMIT:
                    await send_tick(message.partition)  # more due: go on at once
            else:
                record(
                    event.value,
                    message.topic,
                    message.partition,
                    message.offset,
                    int(message.timestamp * 1000),
                )
            await app.hand_over_table_writes()
        except Exception:  # an observer must not stop: log it, the event stays on its topic
            where = (message.topic, message.partition, message.offset)
            log.exception("tracer could not record %s[%d]@%d", *where)
            app.metrics.traces_skipped.labels(message.topic).inc()


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
    name = traces.changelog_topic.get_topic_name()
    return sorted({tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name})


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
