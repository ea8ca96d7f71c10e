"""The app's own Prometheus registry; faust's sensor metrics are registered into it too.

One registry per app instance (not prometheus_client's global one) so that every
metric a worker exposes on ``/metrics`` is in one place, and tests can build several
apps in one process without duplicate-metric errors. README.md's "Metrics" table lists
every ``streamapp_*`` metric; tests/unit/test_metrics_readme.py keeps the two in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import faust
from faust.sensors.prometheus import MS_LATENCY_BUCKETS, FaustMetrics
from faust.web import Request, View
from faust.web import Response as WebResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from streamapp.kafka.monitor import CachedPrometheusMonitor

log = logging.getLogger(__name__)

#: faust's sensor metrics are named ``faust_*`` in every service (faust's default prefix
#: is the app id: per-deployment names, and the orders service's would be streamapp_*).
FAUST_PREFIX = "faust"

#: One gauge sample: its label values (in the family's label order) and its value.
Sample = tuple[Sequence[str], float]


class ScrapeGauge:
    """A gauge family read at scrape time from a source (a callable returning samples).

    For values that live in faust's consumer, recovery or tables: reading them when
    Prometheus asks costs nothing on the hot path and is never stale. Without a source
    (a worker that has not started, a service without the table) the family has no
    samples; a source that raises is logged and yields none: a scrape never fails.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._source: Callable[[], Iterable[Sample]] | None = None
        registry.register(self)

    def read_from(self, source: Callable[[], Iterable[Sample]]) -> None:
        self._source = source

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        if self._source is not None:
            try:
                samples = list(self._source())
            except Exception:
                log.warning("metric %s: its source failed", self.name, exc_info=True)
                samples = []
            for labels, value in samples:
                family.add_metric(labels, value)
        return [family]


class EventStoreMetrics:
    """What the order event store reports (orders.handler.AppendObserver)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.append_seconds = Histogram(
            "streamapp_eventstore_append_seconds",
            "Time to write one command's events, snapshots and head to the event-store "
            "table (in-process; the changelog hand-over is in streamapp_processing_seconds)",
            registry=registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )
        self.conflicts = Counter(
            "streamapp_eventstore_conflicts",
            "Commands rejected with ConcurrencyError (expectedVersion was not the "
            "stream's version)",
            registry=registry,
        )

    def appended(self, seconds: float) -> None:
        self.append_seconds.observe(seconds)

    def conflict(self) -> None:
        self.conflicts.inc()


class AppMetrics:
    """streamapp's own metrics (faust's come from its Prometheus sensor)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.ready = Gauge(
            "streamapp_ready",
            "1 when recovery is done and partitions are assigned",
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            "streamapp_assigned_partitions",
            "Partitions assigned to this worker",
            registry=self.registry,
        )
        self.rebalances = Counter(
            "streamapp_rebalances",
            "Completed consumer-group rebalances seen by this worker",
            registry=self.registry,
        )
        self.records_processed = Counter(
            "streamapp_records_processed",
            "Records an agent finished processing",
            ["agent"],
            registry=self.registry,
        )
        self.records_rejected = Counter(
            "streamapp_records_rejected",
            "Records an agent could not process (dead-lettered)",
            ["agent", "reason"],
            registry=self.registry,
        )
        self.records_replayed = Counter(
            "streamapp_records_replayed",
            "Redelivered records an agent recognised as already applied (at-least-once)",
            ["agent"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "streamapp_dead_letters",
            "Records sent to <topic>.dlq",
            ["topic", "error_type"],
            registry=self.registry,
        )
        self.dead_letter_failures = Counter(
            "streamapp_dead_letter_failures",
            "Records that could not even be dead-lettered (logged with their coordinates)",
            ["topic"],
            registry=self.registry,
        )
        self.retries = Counter(
            "streamapp_retries",
            "Records sent to <topic>.retry.<attempt> after a retryable failure",
            ["topic", "attempt"],
            registry=self.registry,
        )
        self.timeouts = Counter(
            "streamapp_processing_timeouts",
            "Records an agent did not finish within the processing timeout",
            ["agent"],
            registry=self.registry,
        )
        self.retry_lateness_seconds = Histogram(
            "streamapp_retry_lateness_seconds",
            "How long after its retry-after a retried record was processed",
            ["agent"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )
        self.sagas_ended = Counter(
            "streamapp_sagas_ended",
            "Sagas that reached a terminal state, by terminal event (SagaFailed: a "
            "compensation failed for good and needs an operator)",
            ["outcome"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "streamapp_processing_seconds",
            "Time an agent spent on one record",
            ["agent"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

        # Event flows, as the tracer sees them end (per initiating event type).
        self.flow_duration_seconds = Histogram(
            "streamapp_flow_duration_seconds",
            "Time from a flow's first to its last event, observed when it ends",
            ["initiating_event", "status"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.flow_hops = Histogram(
            "streamapp_flow_hops",
            "Hops (events, each an arrow between services) of a flow that ended",
            ["initiating_event", "status"],
            registry=self.registry,
            buckets=(1, 2, 4, 6, 8, 10, 12, 16, 20, 30, 50),
        )
        self.flow_services = Histogram(
            "streamapp_flow_services",
            "Services a flow that ended went through",
            ["initiating_event", "status"],
            registry=self.registry,
            buckets=(1, 2, 3, 4, 5, 6, 8),
        )
        self.traces_recorded = Counter(
            "streamapp_trace_events",
            "Events the tracer added to a trace (duplicates excluded)",
            ["topic"],
            registry=self.registry,
        )
        self.traces_skipped = Counter(
            "streamapp_trace_events_skipped",
            "Records on an event topic the tracer could not read (the topic's consumer "
            "dead-letters them)",
            ["topic"],
            registry=self.registry,
        )

        self.flows_open = Gauge(
            "streamapp_flows_open",
            "Traces on this worker's partitions whose saga has not ended",
            registry=self.registry,
        )
        self.flows_stalled = Gauge(
            "streamapp_flows_stalled",
            "Open traces without an event for trace_stall_ms (STALLED)",
            registry=self.registry,
        )

        # Sagas (fed by streamapp.saga.agents in the orders service).
        self.saga_step_seconds = Histogram(
            "streamapp_saga_step_seconds",
            "From a saga step's command (or its compensation) first sent to its answer, "
            "by outcome: succeeded, failed, timed_out, abandoned (order cancelled), "
            "compensated, compensation_failed",
            ["step", "outcome"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.sagas_in_flight = ScrapeGauge(
            "streamapp_sagas_in_flight",
            "Sagas on this worker's partitions awaiting a reply, a compensation or their "
            "end command, by saga state",
            ["state"],
            registry=self.registry,
        )

        self.eventstore = EventStoreMetrics(self.registry)

        # Read from faust's consumer and recovery at scrape time (streamapp.kafka).
        self.consumer_lag = ScrapeGauge(
            "streamapp_consumer_lag",
            "Records on a partition assigned to this worker that its consumer group has "
            "not committed: end offset (highwater) - committed offset",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.recovery_remaining = ScrapeGauge(
            "streamapp_recovery_remaining_records",
            "Changelog records a table still has to restore on this worker's active "
            "partitions before the worker processes records",
            ["table"],
            registry=self.registry,
        )
        self.recovery_active = ScrapeGauge(
            "streamapp_recovery_active",
            "1 while this worker restores its tables from their changelogs",
            registry=self.registry,
        )


class _SecondsHistogram:
    """A seconds histogram that faust's monitor observes in milliseconds."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def observe(self, milliseconds: float) -> None:
        self.histogram.observe(milliseconds / 1000)


def faust_sensor_metrics(registry: CollectorRegistry) -> FaustMetrics:
    """faust's sensor metrics under ``faust_*``, fixed where promtool objects to them.

    faust's event-runtime histogram is ``*_events_runtime_ms``, observed in ms, which
    ``promtool check metrics`` rejects (an abbreviated unit, and not the base unit): it
    is ``faust_events_runtime_seconds`` here, in seconds. faust's other latency
    histograms (``*_latency``) are in milliseconds as faust observes them; their names
    carry no unit, so promtool has nothing to say about them.
    """
    metrics = FaustMetrics.create(registry, FAUST_PREFIX)
    registry.unregister(metrics.events_runtime_latency)
    runtime = Histogram(
        f"{FAUST_PREFIX}_events_runtime_seconds",
        "Time a stream spent on an event",
        registry=registry,
        buckets=tuple(ms / 1000 for ms in MS_LATENCY_BUCKETS),
    )
    # faust only calls observe() on it (PrometheusMonitor.on_stream_event_out).
    return metrics._replace(events_runtime_latency=cast(Histogram, _SecondsHistogram(runtime)))


def setup_faust_sensor(app: faust.App, registry: CollectorRegistry) -> None:
    """faust's Prometheus sensor on `registry`, and ``GET /metrics`` serving it.

    What faust.sensors.prometheus.setup_prometheus_sensors does, with the metrics of
    faust_sensor_metrics and its labelled children looked up once
    (streamapp.kafka.monitor)."""
    app.monitor = CachedPrometheusMonitor(metrics=faust_sensor_metrics(registry))

    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> WebResponse:
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
