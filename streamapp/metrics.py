"""The app's own Prometheus registry; faust's sensor metrics are registered into it too.

One registry per app instance (not prometheus_client's global one) so that every
metric a worker exposes on ``/metrics`` is in one place, and tests can build several
apps in one process without duplicate-metric errors.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector


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

    def processed(self, agent: str, started: float, *, replayed: bool = False) -> None:
        """Count one record an agent finished (started = time.perf_counter() at its start)."""
        if replayed:
            self.records_replayed.labels(agent).inc()
        self.records_processed.labels(agent).inc()
        self.processing_seconds.labels(agent).observe(time.perf_counter() - started)
