"""faust's Prometheus sensor with its labelled children looked up once.

faust's ``PrometheusMonitor`` calls ``metric.labels(...)`` for every message in, event
in, send and table operation, and recomputes a stream's label (a regex over its repr)
per event: ~3.7 % of a relay worker's samples sat in ``labels`` alone (py-spy,
bench/RESULTS.md). This subclass records exactly the same series, keeping each child it
got from ``labels`` in a dict; the children of the per-topic and per-partition series
are forgotten when faust removes those series at a rebalance, so a later sample goes to
a live child. faust clears them on its consumer thread (the rebalance listener) while
the event loop records: a lock keeps a child fetched before a clear out of the cache
after it (a sample recorded on a child in that instant is lost, as with faust's own).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import PrometheusMonitor
from faust.types import TP, CollectionT, EventT, Message, PendingMessage, ProducerT, StreamT


class Children:
    """The children of one labelled metric, by label values (as keyword arguments)."""

    def __init__(self, metric: Any, lock: threading.Lock, *names: str) -> None:
        self.metric = metric
        self.lock = lock
        self.names = names
        self.found: dict[tuple[Any, ...], Any] = {}

    def __call__(self, *values: Any) -> Any:
        child = self.found.get(values)
        if child is None:
            with self.lock:  # not between a clear's removal of the series and its cache's
                labels = dict(zip(self.names, values, strict=True))
                child = self.found[values] = self.metric.labels(**labels)
        return child

    def clear(self) -> None:
        self.found.clear()


class CachedPrometheusMonitor(PrometheusMonitor):
    """faust's sensor; the same series, each labelled child looked up once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        m, lock = self._metrics, threading.Lock()
        self._lock = lock
        self._by_topic = Children(m.messages_received_per_topics, lock, "topic")
        self._by_tp = Children(m.messages_received_per_topics_partition, lock, "topic", "partition")
        self._sent_by_topic = Children(m.topic_messages_sent, lock, "topic")
        self._end_offset = Children(m.topic_partition_end_offset, lock, "topic", "partition")
        self._per_stream = Children(m.total_events_per_stream, lock, "stream")
        self._table_ops = Children(m.table_operations, lock, "table", "operation")
        # weak, as faust's own stream lookup: a stopped agent's stream is not kept
        self._stream_labels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        self._metrics.messages_received.inc()
        self._metrics.active_messages.inc()
        self._by_topic(tp.topic).inc()
        self._by_tp(tp.topic, tp.partition).set(offset)

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[Any, Any] | None:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        self._metrics.total_events.inc()
        self._metrics.total_active_events.inc()
        label = self._stream_labels.get(stream)
        if label is None:
            label = self._stream_labels[stream] = f"stream.{self._stream_label(stream)}.events"
        self._per_stream(label).inc()
        return state

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_ops(f"table.{table.name}", self.KEYS_RETRIEVED).inc()

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_ops(f"table.{table.name}", self.KEYS_UPDATED).inc()

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table_ops(f"table.{table.name}", self.KEYS_DELETED).inc()

    def on_send_initiated(
        self,
        producer: ProducerT,
        topic: str,
        message: PendingMessage,
        keysize: int,
        valsize: int,
    ) -> Any:
        self._sent_by_topic(f"topic.{topic}").inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        Monitor.track_tp_end_offset(self, tp, offset)
        self._end_offset(tp.topic, tp.partition).set(offset)

    def _clear_partition_related_metrics(self) -> None:
        """faust removes the per-topic and per-partition series: forget their children."""
        with self._lock:
            super()._clear_partition_related_metrics()
            for children in (self._by_topic, self._by_tp, self._sent_by_topic, self._end_offset):
                children.clear()
