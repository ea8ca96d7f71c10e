"""OTLP export of record spans (streamapp.tracing.otlp): ids, parent, attributes, batching."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from streamapp.errors import SchemaError
from streamapp.resilience.consumer import Delivery
from streamapp.resilience.headers import Origin
from streamapp.tracing.context import Span
from streamapp.tracing.otlp import (
    Finished,
    OtlpExport,
    instrumentation_scope,
    resource_for,
    to_readable_span,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
PARENT = "b7ad6b7169203331"
VALUE = b'{"eventId":"e-1","eventType":"OrderCreated","correlationId":"corr-7","data":{}}'


def delivery(
    *, topic: str = "p.orders.events", attempt: int = 0, value: bytes | None = VALUE
) -> Delivery:
    return Delivery(
        key=b"order-1",
        value=value,
        headers=[("traceparent", f"00-{TRACE}-{PARENT}-01".encode())],
        topic=topic,
        origin=Origin("p.orders.events", 3, 41),
        attempt=attempt,
        timestamp_ms=1_700_000_000_000,
        event=cast(Any, None),
    )


def finished(span: Span, error: BaseException | None = None, **kwargs: Any) -> Finished:
    return Finished(span, "saga", delivery(**kwargs), 1_000_000_000, 1_002_500_000, error)


def convert(done: Finished) -> ReadableSpan:
    resource = resource_for("orders", "127.0.0.1:6066")
    return to_readable_span(done, resource, instrumentation_scope(), "streamapp")


def test_the_span_has_our_ids_and_its_callers_span_as_parent() -> None:
    span = convert(finished(Span(TRACE, SPAN_ID, PARENT)))
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == int(TRACE, 16) and span.context.span_id == int(SPAN_ID, 16)
    assert span.parent.trace_id == int(TRACE, 16) and span.parent.span_id == int(PARENT, 16)
    assert span.parent.is_remote and span.context.trace_flags.sampled
    assert span.kind is SpanKind.CONSUMER
    assert span.name == "saga process p.orders.events"
    assert (span.start_time, span.end_time) == (1_000_000_000, 1_002_500_000)
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "streamapp-orders"

    # On the wire (OTLP protobuf) the ids are exactly ours: a downstream span links.
    [wire] = encode_spans([span]).resource_spans[0].scope_spans[0].spans
    assert wire.trace_id.hex() == TRACE and wire.span_id.hex() == SPAN_ID
    assert wire.parent_span_id.hex() == PARENT


def test_a_span_that_started_its_trace_has_no_parent() -> None:
    span = convert(finished(Span(TRACE, SPAN_ID, None)))
    assert span.parent is None
    [wire] = encode_spans([span]).resource_spans[0].scope_spans[0].spans
    assert wire.parent_span_id == b""


def test_attributes_follow_the_messaging_conventions_and_name_the_correlation_id() -> None:
    span = convert(finished(Span(TRACE, SPAN_ID, PARENT)))
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "p.orders.events",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 41,
        "messaging.kafka.message.key": "order-1",
        "messaging.consumer.group.name": "streamapp",
        "messaging.message.body.size": len(VALUE),
        "messaging.message.conversation_id": "corr-7",
        "correlationId": "corr-7",
        "streamapp.agent": "saga",
        "streamapp.attempt": 0,
        "streamapp.message.type": "OrderCreated",
    }


def test_a_retry_is_the_same_record_processed_again() -> None:
    done = finished(Span(TRACE, SPAN_ID, PARENT), topic="p.orders.events.retry.due", attempt=2)
    attributes = convert(done).attributes or {}
    assert attributes["messaging.destination.name"] == "p.orders.events"
    assert attributes["streamapp.consumed_from"] == "p.orders.events.retry.due"
    assert attributes["streamapp.attempt"] == 2


def test_a_record_without_value_or_correlation_id_still_converts() -> None:
    attributes = convert(finished(Span(TRACE, SPAN_ID, PARENT), value=None)).attributes or {}
    assert "correlationId" not in attributes and "streamapp.message.type" not in attributes


def test_a_failed_record_is_an_error_span_with_its_error_type() -> None:
    span = convert(finished(Span(TRACE, SPAN_ID, PARENT), SchemaError("no data")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "SchemaError: no data"
    assert (span.attributes or {})["error.type"] == "SchemaError"
    [event] = span.events
    assert event.name == "exception" and (event.attributes or {})["exception.type"] == (
        "SchemaError"
    )


def export(exporter: SpanExporter, **kwargs: Any) -> tuple[OtlpExport, CollectorRegistry]:
    registry = CollectorRegistry()
    sink = OtlpExport(exporter, resource_for("saga", "here"), "streamapp", registry, **kwargs)
    return sink, registry


def outcome(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value("streamapp_otlp_spans_total", {"outcome": name}) or 0.0


def record(sink: OtlpExport, span: Span) -> None:
    now = time.perf_counter()
    sink.record(span, "saga", delivery(), now - 0.002, now, None)


async def test_recorded_spans_reach_the_exporter_in_batches_and_are_flushed_at_stop() -> None:
    exporter = InMemorySpanExporter()
    sink, registry = export(exporter, max_batch=2, delay_s=60.0)
    async with sink:
        for n in range(5):
            record(sink, Span(TRACE, f"{n + 1:016x}", PARENT))
    spans = exporter.get_finished_spans()
    assert [s.context.span_id for s in spans if s.context] == [1, 2, 3, 4, 5]
    assert outcome(registry, "exported") == 5
    first = spans[0]
    assert first.end_time is not None and first.start_time is not None
    assert 1_000_000 <= first.end_time - first.start_time <= 3_000_000  # the 2 ms it took
    assert abs(first.end_time - time.time_ns()) < 60 * 10**9  # epoch time, not perf_counter


def test_a_full_queue_drops_spans_and_counts_them() -> None:
    sink, registry = export(InMemorySpanExporter(), max_queue=2)  # export thread not started
    for n in range(3):
        record(sink, Span(TRACE, f"{n + 1:016x}", PARENT))
    assert outcome(registry, "dropped") == 1


def test_an_unsampled_span_is_not_exported() -> None:
    sink, registry = export(InMemorySpanExporter(), max_queue=1)
    record(sink, Span(TRACE, SPAN_ID, PARENT, flags="00"))
    record(sink, Span(TRACE, SPAN_ID, PARENT))
    assert outcome(registry, "dropped") == 0


class Refusing(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


async def test_failed_exports_are_counted() -> None:
    sink, registry = export(Refusing(), delay_s=60.0)
    async with sink:
        record(sink, Span(TRACE, SPAN_ID, PARENT))
    assert outcome(registry, "failed") == 1


async def test_an_endpoint_that_is_down_neither_blocks_recording_nor_stopping() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}/v1/traces"
    sink, registry = export(
        OTLPSpanExporter(endpoint=nobody, timeout=30), delay_s=0.05, shutdown_wait_s=0.5
    )
    started = time.monotonic()
    async with sink:
        for n in range(200):
            record(sink, Span(TRACE, f"{n + 1:016x}", PARENT))
        recorded = time.monotonic()
        await asyncio.sleep(0.3)  # the export thread is retrying now
    assert recorded - started < 0.5
    assert time.monotonic() - started < 3  # stopping cut its retries short
    for _ in range(100):  # its last export may still be failing (5 s at most)
        if outcome(registry, "failed") >= 200:
            break
        await asyncio.sleep(0.05)
    assert outcome(registry, "failed") == 200 and outcome(registry, "exported") == 0


def test_a_worker_that_exports_nothing_never_imports_opentelemetry() -> None:
    """faust imports every module of streamapp.tracing (autodiscovery)."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import streamapp.app, streamapp.tracing\n"
        "for found in pkgutil.iter_modules(streamapp.tracing.__path__):\n"
        "    importlib.import_module('streamapp.tracing.' + found.name)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
