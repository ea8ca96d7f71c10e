"""OpenTelemetry export of record spans over OTLP/HTTP (``otlp_endpoint``; off by default).

Each record an agent processed becomes one CONSUMER span with exactly the ids of the
:class:`~streamapp.tracing.context.Span` it ran in: its trace id, its span id (the one
every record it sent names in its ``traceparent``) and its parent (the span of the record
that caused it). So a collector (Jaeger, Tempo) links the hops as the built-in tracer does.
The SDK's tracer would make its own ids, and our spans are finished when we hear of them,
so they are built as ``ReadableSpan`` objects and handed to the OTLP exporter.

Nothing here imports OpenTelemetry at module level: faust's autodiscovery imports every
module of ``streamapp.tracing``, and a worker that exports nothing must not load the SDK.

Export never holds up the event loop: :meth:`OtlpExport.record` only appends to a bounded
queue (a full queue drops the span, counted); one thread builds the spans and exports them
in batches. An endpoint that is down costs that thread its retries, never the worker.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import TYPE_CHECKING, Self

from prometheus_client import CollectorRegistry, Counter

from streamapp.resilience.policy import error_type
from streamapp.tracing.context import Span, correlation_id_in

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from streamapp.app import StreamApp
    from streamapp.resilience.consumer import Delivery

log = logging.getLogger(__name__)

#: Spans waiting for export at most; more are dropped (and counted) while it lags.
MAX_QUEUE = 8192
#: Spans per OTLP request, and the longest a span waits before its batch is sent.
MAX_BATCH = 512
EXPORT_DELAY_S = 1.0
#: How long a stopping worker waits for the last batch to reach the endpoint.
SHUTDOWN_WAIT_S = 5.0


#: The envelope's commandType or eventType (they come before its data).
_TYPE = re.compile(rb'"(?:command|event)Type"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True, slots=True)
class Finished:
    """One processed record as the consumer reported it (times: ns since the epoch)."""

    span: Span
    agent: str
    delivery: Delivery
    start_ns: int
    end_ns: int
    error: BaseException | None


def sampled(span: Span) -> bool:
    """The W3C sampled flag: a caller that did not record its span asks us not to either."""
    return bool(int(span.flags, 16) & 1)


def attributes(finished: Finished, group: str) -> dict[str, str | int]:
    """Messaging semantic conventions (Kafka, process) plus the contract's correlationId.

    Destination, partition and offset are where the record first arrived (its origin):
    a retry is the same record, processed again (``streamapp.attempt``).
    """
    delivery = finished.delivery
    where = delivery.origin
    found: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": where.topic,
        "messaging.destination.partition.id": str(where.partition),
        "messaging.kafka.offset": where.offset,
        "messaging.consumer.group.name": group,
        "messaging.message.body.size": len(delivery.value or b""),
        "streamapp.agent": finished.agent,
        "streamapp.attempt": delivery.attempt,
    }
    if delivery.key is not None:
        found["messaging.kafka.message.key"] = delivery.key.decode("utf-8", errors="replace")
    if delivery.topic != where.topic:
        found["streamapp.consumed_from"] = delivery.topic  # <topic>.retry.due
    message_type = _TYPE.search(delivery.value or b"")
    if message_type is not None:
        found["streamapp.message.type"] = message_type.group(1).decode("utf-8", "replace")
    correlation = correlation_id_in(delivery.value)
    if correlation is not None:
        # The semantic conventions' name for it, and the contract's (what operators search).
        found["messaging.message.conversation_id"] = correlation
        found["correlationId"] = correlation
    if finished.error is not None:
        found["error.type"] = error_type(finished.error)
    return found


def to_readable_span(
    finished: Finished, resource: Resource, scope: InstrumentationScope, group: str
) -> ReadableSpan:
    """The OTLP span of one processed record, with the ids of our span."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    span = finished.span
    flags = TraceFlags(int(span.flags, 16) & 0xFF)
    trace_id = int(span.trace_id, 16)
    parent = (
        SpanContext(trace_id, int(span.parent_id, 16), is_remote=True, trace_flags=flags)
        if span.parent_id
        else None
    )
    status = Status(StatusCode.UNSET)
    events: list[Event] = []
    if finished.error is not None:
        kind = error_type(finished.error)
        status = Status(StatusCode.ERROR, f"{kind}: {finished.error}"[:512])
        events.append(
            Event(
                "exception",
                {"exception.type": kind, "exception.message": str(finished.error)[:2048]},
                finished.end_ns,
            )
        )
    return ReadableSpan(
        name=f"{finished.agent} process {finished.delivery.origin.topic}",
        context=SpanContext(trace_id, int(span.span_id, 16), is_remote=False, trace_flags=flags),
        parent=parent,
        resource=resource,
        attributes=attributes(finished, group),
        events=events,
        kind=SpanKind.CONSUMER,
        status=status,
        start_time=finished.start_ns,
        end_time=finished.end_ns,
        instrumentation_scope=scope,
    )


def resource_for(service: str, instance: str) -> Resource:
    """service.name ``streamapp-<service>``; OTEL_RESOURCE_ATTRIBUTES adds to it."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {"service.name": f"streamapp-{service}", "service.instance.id": instance}
    )


def instrumentation_scope() -> InstrumentationScope:
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    try:
        ours = version("streamapp")
    except PackageNotFoundError:  # running from a source tree
        ours = None
    return InstrumentationScope("streamapp", ours)


class OtlpExport:
    """The :class:`~streamapp.tracing.export.SpanSink` that sends spans to an OTLP
    exporter from a thread of its own; an async context manager (start, flush + stop)."""

    def __init__(
        self,
        exporter: SpanExporter,
        resource: Resource,
        group: str,
        registry: CollectorRegistry,
        *,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
        delay_s: float = EXPORT_DELAY_S,
        shutdown_wait_s: float = SHUTDOWN_WAIT_S,
    ) -> None:
        self.exporter = exporter
        self.resource = resource
        self.group = group
        self.scope = instrumentation_scope()
        self.spans = Counter(
            "streamapp_otlp_spans",
            "Record spans by what became of them: exported, failed (the endpoint refused "
            "or could not be reached), dropped (export queue full or exporter stopped)",
            ["outcome"],
            registry=registry,
        )
        self._queue: collections.deque[Finished] = collections.deque()
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._delay_s = delay_s
        self._shutdown_wait_s = shutdown_wait_s
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)

    @classmethod
    def for_app(cls, app: StreamApp) -> OtlpExport:
        """The export for a worker: OTLP/HTTP (protobuf) to ``settings.otlp_endpoint``;
        the exporter's OTEL_EXPORTER_OTLP_TRACES_* variables (headers, TLS, timeout,
        compression) apply as usual."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        settings = app.settings
        return cls(
            OTLPSpanExporter(endpoint=settings.otlp_endpoint),
            resource_for(settings.service, f"{settings.web_host}:{settings.web_port}"),
            settings.service_app_id,
            app.metrics.registry,
        )

    # -- the event loop's side: cheap, never blocks ------------------------------------------
    def record(
        self,
        span: Span,
        agent: str,
        delivery: Delivery,
        started: float,
        ended: float,
        error: BaseException | None,
    ) -> None:
        if not sampled(span):
            return
        if self._stopping or len(self._queue) >= self._max_queue:
            self.spans.labels("dropped").inc()
            return
        end_ns = time.time_ns() - int((time.perf_counter() - ended) * 1e9)
        start_ns = end_ns - int((ended - started) * 1e9)
        self._queue.append(Finished(span, agent, delivery, start_ns, end_ns, error))
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    async def __aenter__(self) -> Self:
        self._thread.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.shutdown)

    # -- the export thread -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Send what is queued (for a bounded time), then stop the exporter."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self._shutdown_wait_s)
        self.exporter.shutdown()  # also cuts short the retries of an export under way
        if self._thread.is_alive():  # what it still holds now fails at once
            self._thread.join(1.0)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            self._export_queued()
        self._export_queued()

    def _export_queued(self) -> None:
        while batch := self._take():
            self._export(batch)

    def _take(self) -> list[Finished]:
        batch: list[Finished] = []
        while self._queue and len(batch) < self._max_batch:
            batch.append(self._queue.popleft())  # only this thread takes: never empty here
        return batch

    def _export(self, batch: list[Finished]) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        result = SpanExportResult.FAILURE
        try:
            spans = [to_readable_span(f, self.resource, self.scope, self.group) for f in batch]
            result = self.exporter.export(spans)
        except Exception:  # a bad span or exporter bug must not end the export thread
            log.exception("OTLP export of %d span(s) failed", len(batch))
        outcome = "exported" if result is SpanExportResult.SUCCESS else "failed"
        self.spans.labels(outcome).inc(len(batch))
