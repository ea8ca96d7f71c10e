"""The registry: scrape-time gauges, faust's sensor metrics, lag and recovery sources,
the event store's observer, and promtool's verdict on a fully populated exposition."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from streamapp.eventstore.store import EventStore
from streamapp.kafka.lag import consumer_lag, lag, lag_samples
from streamapp.kafka.recovery import recovery_active, recovery_remaining, remaining_by_table
from streamapp.metrics import AppMetrics, ScrapeGauge, faust_sensor_metrics
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from tests.unit.orders.factories import command, create


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


# -- ScrapeGauge -------------------------------------------------------------------------
def test_a_scrape_gauge_reads_its_source_at_each_scrape() -> None:
    registry = CollectorRegistry()
    gauge = ScrapeGauge("g", "doc", ["k"], registry=registry)
    assert samples(registry, "g") == {}  # no source yet: the family, no samples
    values = {"a": 1.0}
    gauge.read_from(lambda: [((k,), v) for k, v in values.items()])
    assert samples(registry, "g") == {(("k", "a"),): 1.0}
    values["b"] = 2.0
    assert samples(registry, "g") == {(("k", "a"),): 1.0, (("k", "b"),): 2.0}


def test_a_failing_source_yields_no_samples_and_never_fails_the_scrape() -> None:
    registry = CollectorRegistry()
    gauge = ScrapeGauge("g", "doc", ["k"], registry=registry)

    def broken() -> list[Any]:
        raise RuntimeError("consumer gone")

    gauge.read_from(broken)
    assert b"# TYPE g gauge" in generate_latest(registry)
    assert samples(registry, "g") == {}


# -- faust's sensor ----------------------------------------------------------------------
def test_faust_metrics_are_named_faust_and_the_runtime_is_in_seconds() -> None:
    registry = CollectorRegistry()
    metrics = faust_sensor_metrics(registry)
    metrics.events_runtime_latency.observe(250.0)  # faust observes milliseconds
    assert samples(registry, "faust_events_runtime_seconds_sum") == {(): 0.25}
    assert samples(registry, "faust_events_runtime_seconds_bucket")[(("le", "0.25"),)] == 1.0
    names = {family.name for family in registry.collect()}
    assert all(name.startswith("faust_") for name in names)
    assert not any(name.endswith("_ms") for name in names)


# -- consumer lag ------------------------------------------------------------------------
def test_lag_is_end_offset_minus_committed_and_unknown_without_a_highwater() -> None:
    assert lag(120, 100) == 20
    assert lag(100, 100) == 0
    assert lag(5, None) == 5  # never committed: read from the beginning
    assert lag(None, 100) is None  # not fetched yet
    assert lag(-1, None) is None  # read_committed without a stable offset
    assert lag(90, 100) == 0  # a commit ahead of a stale highwater


def test_lag_samples_per_topic_partition_leave_out_unknown_highwaters() -> None:
    a0, a1, b0 = TP("a", 0), TP("a", 1), TP("b", 0)
    highwaters = {a0: 10, a1: None, b0: 7}
    committed = {a0: 4}
    assert lag_samples([b0, a1, a0], highwaters.get, committed.get) == [
        (("a", "0"), 6.0),
        (("b", "0"), 7.0),
    ]


class FakeConsumer:
    """The part of faust's consumer the lag source reads."""

    def __init__(self, assigned: set[TP], highwaters: dict[TP, int], committed: dict[TP, int]):
        self.assigned = assigned
        self.highwaters = highwaters
        self._committed_offset = committed
        self.started = True

    def assignment(self) -> set[TP]:
        if not self.started:
            raise RuntimeError("ConsumerNotStarted")
        return set(self.assigned)

    def highwater(self, tp: TP) -> int:
        assert tp in self.highwaters, "Partition is not assigned"
        return self.highwaters[tp]


def test_consumer_lag_reads_acking_topics_of_a_started_consumer_only() -> None:
    events, changelog, revoked = TP("p.orders.events", 1), TP("app-t-changelog", 1), TP("x", 0)
    consumer = FakeConsumer(
        {events, changelog, revoked}, {events: 50, changelog: 9}, {events: 45, changelog: 1}
    )
    app = SimpleNamespace(
        _consumer=consumer, topics=SimpleNamespace(acking_topics={"p.orders.events", "x"})
    )
    assert list(consumer_lag(app)) == [(("p.orders.events", "1"), 5.0)]
    consumer.started = False
    assert list(consumer_lag(app)) == []
    assert list(consumer_lag(SimpleNamespace(_consumer=None))) == []


# -- recovery ----------------------------------------------------------------------------
def test_recovery_remaining_per_table_lists_every_table() -> None:
    orders, sagas = SimpleNamespace(name="orders"), SimpleNamespace(name="sagas")
    tp0, tp1, tp2 = TP("orders-changelog", 0), TP("orders-changelog", 1), TP("sagas-cl", 0)
    remaining = Counter({tp0: 30, tp1: 12, tp2: -1})
    table_of = {tp0: orders, tp1: orders, tp2: sagas}
    assert remaining_by_table(["sagas", "orders", "idle"], remaining, table_of) == [
        (("idle",), 0.0),
        (("orders",), 42.0),
        (("sagas",), 0.0),
    ]


def test_recovery_sources_of_a_worker_that_has_not_started_yield_nothing() -> None:
    app = SimpleNamespace(_consumer=None)
    assert list(recovery_remaining(app)) == [] and list(recovery_active(app)) == []
    recovery = SimpleNamespace(in_recovery=True, active_remaining=Counter, tp_to_table={})
    started = SimpleNamespace(_consumer=object(), tables=_Tables({"t": None}, recovery=recovery))
    assert list(recovery_active(started)) == [((), 1.0)]
    assert list(recovery_remaining(started)) == [(("t",), 0.0)]


class _Tables(dict[str, Any]):
    def __init__(self, tables: dict[str, Any], recovery: Any) -> None:
        super().__init__(tables)
        self.recovery = recovery


# -- the event store's observer ----------------------------------------------------------
def test_the_handler_reports_appends_and_concurrency_conflicts() -> None:
    registry = CollectorRegistry()
    metrics = AppMetrics(registry)
    handler = OrderCommandHandler(
        order_repository(EventStore({}), 100), observer=metrics.eventstore
    )
    for n, cmd in enumerate(
        [create("o", expected=0), create("o", expected=0), command("AddOrderNote", "o", note="x")]
    ):
        handler.handle(cmd, SourceRecord(0, n, 1_795_000_000_000))
    assert samples(registry, "streamapp_eventstore_append_seconds_count") == {(): 2.0}
    assert samples(registry, "streamapp_eventstore_conflicts_total") == {(): 1.0}


# -- promtool ----------------------------------------------------------------------------
def test_a_populated_exposition_passes_promtool_check_metrics() -> None:
    """Every metric with a sample (labelled ones too), as a busy worker exposes them."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make system-deps` (Debian package prometheus)"
    metrics = AppMetrics()
    faust = faust_sensor_metrics(metrics.registry)
    for collector in list(metrics.registry._collector_to_names):
        names = getattr(collector, "_labelnames", None)
        if names is None:
            continue
        child = collector.labels(*(f"v{i}" for i in range(len(names)))) if names else collector
        for method, args in (("inc", ()), ("observe", (0.01,)), ("set", (1.0,))):
            if hasattr(child, method):
                getattr(child, method)(*args)
                break
    faust.events_runtime_latency.observe(3.0)
    for gauge in (metrics.consumer_lag, metrics.sagas_in_flight, metrics.recovery_remaining):
        gauge.read_from(lambda g=gauge: [(tuple("x" for _ in g.labels), 1.0)])
    metrics.recovery_active.read_from(lambda: [((), 0.0)])
    text = generate_latest(metrics.registry)
    assert b'streamapp_consumer_lag{partition="x",topic="x"} 1.0' in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
