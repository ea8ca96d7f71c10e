"""The tracer: the saga orchestrator records each conversation's trace as it works.

Every event a conversation produces passes the orchestrator: it reads orders.events and
the participants' event topics and writes sagas.events itself. So the trace is recorded
while it processes each record — the event it read and the saga events it sent in answer
— in the changelog-backed ``traces`` table (layout: streamapp.tracing.store), with no
consumer of its own. (A separate tracer agent reading the same topics plus sagas.events
cost the orders worker ~40 % more CPU per saga: bench/RESULTS.md.) A saga event is
recorded as it is sent, so its offset is not known (null); its partition is the saga's.

A trace's keys are deleted ``trace_retention_ms`` after its first event, per partition,
when the orchestrator processes a sweep tick on that partition of sagas.timeouts (the
tombstones go to that changelog partition); a timer sends one to each partition this
worker owns. Tracing is an observer: what it cannot read is counted and skipped, and an
error while recording is logged, never a reason to retry the orchestrator's record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from streamapp.app import app
from streamapp.eventstore.retention import partition_keys
from streamapp.kafka.source_key import not_a_routing_key
from streamapp.messages import Event
from streamapp.tracing import store
from streamapp.tracing.store import KeysIn, correlation_key
from streamapp.tracing.trace import SAGA, Trace, TracedEvent, read_event

log = logging.getLogger(__name__)

settings = app.settings
traces = app.keyed_table("traces")
#: The value of a sweep tick on sagas.timeouts (told apart from a saga's deadline tick).
SWEEP_TICK = b'{"tick":"trace-expiry"}'
SWEEP_KEY = not_a_routing_key(b"trace-expiry")  # sent to each partition


def owned_partitions() -> list[int]:
    """The traces partitions this worker actively owns (standby copies excluded)."""
    return app.owned_partitions(traces.changelog_topic.get_topic_name())


def _keys_in(partition: int) -> KeysIn:
    return lambda start, stop, limit: partition_keys(traces, partition, start, stop, limit)


def load(correlation_id: str, partitions: Iterable[int] | None = None) -> Trace | None:
    """The trace of a correlation id from this worker's partitions (or those given)."""
    cid = correlation_key(correlation_id)
    if cid is None:
        return None
    for partition in owned_partitions() if partitions is None else partitions:
        found = store.load(traces, cid, _keys_in(partition))
        if found is not None:
            return found
    return None


def record(
    read: tuple[str, TracedEvent] | None,
    sent: Sequence[Event],
    partition: int,
    sagas_topic: str,
    *,
    redelivered: bool,
    stray: bool,
) -> None:
    """Record what the orchestrator read (None: not an event, e.g. a deadline tick) and
    the saga events it sent in answer (`stray`: no saga owns the event read). Called
    while processing that record."""
    now = int(time.time() * 1000)
    rows = [read] if read is not None else []
    for saga_event in sent:
        found = read_event(saga_event.to_dict(), SAGA, sagas_topic, partition, None, now)
        if found is not None:
            rows.append(found)
    metrics = app.metrics
    for correlation, events in store.group(rows).items():
        cid = correlation_key(correlation)
        if cid is None:
            metrics.traces_skipped.labels(events[0].topic).inc(len(events))
            continue
        ended = store.record(traces, cid, events, settings.trace_retention_ms, stray=stray)
        if redelivered:
            continue
        for traced in events:
            metrics.traces_recorded.labels(traced.topic).inc()
        if ended:
            _observe_end(cid, partition)


def _observe_end(cid: bytes, partition: int) -> None:
    trace = store.load(traces, cid, _keys_in(partition))
    if trace is None or trace.terminal is None:
        return
    metrics, labels = app.metrics, (trace.initiating_event, trace.terminal)
    metrics.flow_duration_seconds.labels(*labels).observe((trace.last_ms - trace.started_ms) / 1000)
    metrics.flow_hops.labels(*labels).observe(len(trace.events))
    metrics.flow_services.labels(*labels).observe(len(trace.services()))


def sweep(partition: int) -> bool:
    """Delete this partition's expired traces; True when more are due at once."""
    return store.sweep(traces, partition, int(time.time() * 1000)) >= store.SWEEP_LIMIT


#: The correlation ids of the sagas in flight in one partition (the orchestrator's).
InFlight = Callable[[int], Iterable[bytes]]


def open_traces(in_flight: InFlight) -> Iterable[Trace]:
    """The traces of the sagas in flight in owned partitions."""
    for partition in owned_partitions():
        for cid in in_flight(partition):
            trace = store.load(traces, cid, _keys_in(partition))
            if trace is not None:
                yield trace


def count_open(in_flight: InFlight, *, stalled: bool) -> float:
    """streamapp_flows_open / _stalled: open traces (with no event for trace_stall_ms)."""
    now = int(time.time() * 1000)
    try:
        found = list(open_traces(in_flight))
    except Exception:  # not started (no assignment yet): nothing to count
        return 0.0
    if not stalled:
        return float(len(found))
    return float(sum(1 for t in found if now - t.last_ms >= settings.trace_stall_ms))
