"""The cached faust sensor records exactly what faust's own does (streamapp.kafka.monitor)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from streamapp.kafka.monitor import CachedPrometheusMonitor
from streamapp.metrics import faust_sensor_metrics


class Owner:  # weak-referenceable, as a stream's task is
    pass


class Stream:  # what the monitor reads of a faust stream
    def __init__(self, label: str) -> None:
        self.shortlabel = f"Stream: {label}"
        self.task_owner = Owner()


def drive(monitor: Any) -> None:
    """The same calls, a rebalance's clearing of per-topic series in the middle."""
    streams = [Stream("orders.commands"), Stream("sagas.timeouts")]
    table = SimpleNamespace(name="eventstore")
    for round_ in range(2):
        for n in range(5):
            tp = TP(f"topic-{n % 2}", n % 3)
            monitor.on_message_in(tp, 10 * round_ + n, SimpleNamespace())
            monitor.on_stream_event_in(tp, n, streams[n % 2], SimpleNamespace())
            monitor.on_table_get(table, b"k")
            monitor.on_table_set(table, b"k", b"v")
            if n % 2:
                monitor.on_table_del(table, b"k")
            monitor.on_send_initiated(None, f"out-{n % 2}", None, 1, 2)
            monitor.track_tp_end_offset(tp, 100 * round_ + n)
        if round_ == 0:
            monitor._clear_partition_related_metrics()


def series(monitor_class: type[Any]) -> list[str]:
    registry = CollectorRegistry()
    monitor = monitor_class(metrics=faust_sensor_metrics(registry))
    drive(monitor)
    text = generate_latest(registry).decode()
    # time-dependent: creation stamps, latencies
    return [
        line
        for line in text.splitlines()
        if not line.startswith("#") and "_created" not in line and "latency" not in line
    ]


def test_the_cached_sensor_records_the_same_series_as_fausts() -> None:
    ours, theirs = series(CachedPrometheusMonitor), series(PrometheusMonitor)
    assert ours == theirs
    # the comparison covers the labelled series, re-created after the clear too
    assert 'faust_topic_partition_end_offset{partition="1",topic="topic-0"} 104.0' in ours
    assert (
        'faust_table_operations_total{operation="keys_deleted",table="table.eventstore"} 4.0'
        in ours
    )
    assert 'faust_total_events_per_stream_total{stream="stream.orders.commands.events"} 6.0' in ours
