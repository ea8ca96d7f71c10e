"""ResilientConsumer's decisions (timeout, classify, retry topic or DLQ) with an
in-memory stand-in for the app's topics: what would be produced, and where."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from streamapp.errors import SchemaError
from streamapp.metrics import AppMetrics
from streamapp.resilience.consumer import Delivery, ResilientConsumer, TransientFailure
from streamapp.resilience.headers import header
from streamapp.settings import Settings
from streamapp.tracing import context


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None


@dataclass
class FakeApp:
    settings: Settings = field(
        default_factory=lambda: Settings(processing_timeout_ms=50, retry_max_attempts=2)
    )
    metrics: AppMetrics = field(default_factory=AppMetrics)
    sent: list[Sent] = field(default_factory=list)
    declared: list[str] = field(default_factory=list)
    span_sink: Any = None

    def declare_retry_topics(self, name: str, attempts: int) -> None:
        self.declared.append(name)

    def topic(self, *names: str, **kwargs: Any) -> Any:
        app = self

        class Topic:
            async def send(
                self, key: Any = None, value: Any = None, headers: Any = None, partition: Any = None
            ) -> None:
                app.sent.append(Sent(names[0], key, value, list(headers or []), partition))

        return Topic()

    def dead_letter_topic(self, name: str) -> Any:
        return self.topic(f"{name}.dlq")

    async def hand_over_table_writes(self) -> None:
        return None

    def agent(self, *args: Any, **kwargs: Any) -> Any:
        return lambda fn: fn


def named(name: str) -> Any:
    return SimpleNamespace(get_topic_name=lambda: name)


def event(topic: str = "t", headers: list[tuple[str, bytes]] | None = None) -> Any:
    message = SimpleNamespace(
        topic=topic,
        partition=3,
        offset=41,
        timestamp=1.0,
        headers=headers or [("h", b"v")],
        key=b"k",
        value=b"{}",
    )
    return SimpleNamespace(key=b"k", value=b"{}", message=message)


def run(consumer: ResilientConsumer, handler: Any, record: Any) -> None:
    asyncio.run(consumer.process(record, handler))


def test_success_sends_nothing_and_declares_the_retry_topics() -> None:
    app = FakeApp()
    consumer = ResilientConsumer(app, "a", [named("t")])
    seen: list[Delivery] = []

    async def ok(delivery: Delivery) -> bool:
        seen.append(delivery)
        return False

    run(consumer, ok, event())
    assert app.sent == [] and app.declared == ["t"]
    assert seen[0].origin.offset == 41 and seen[0].attempt == 0


def test_a_timeout_is_a_retryable_failure() -> None:
    app = FakeApp()
    consumer = ResilientConsumer(app, "a", [named("t")])

    async def slow(delivery: Delivery) -> None:
        await asyncio.sleep(1)

    run(consumer, slow, event())
    [retry] = app.sent
    assert retry.topic == "t.retry.1" and retry.partition == 3
    assert (retry.key, retry.value) == (b"k", b"{}") and retry.headers[0] == ("h", b"v")
    assert header(retry.headers, "error-type") == b"ProcessingTimeout"
    assert header(retry.headers, "retry-count") == b"1"
    assert header(retry.headers, "original-offset") == b"41"
    assert header(retry.headers, "retry-after") is not None


@pytest.mark.parametrize(
    ("error", "headers", "topic"),
    [
        (SchemaError("bad"), None, "t.dlq"),  # never retryable
        (TransientFailure("again"), [("retry-count", b"1")], "t.retry.2"),
        (TransientFailure("again"), [("retry-count", b"2")], "t.dlq"),  # exhausted (max 2)
    ],
)
def test_failures_go_to_the_next_retry_topic_or_the_dlq(
    error: Exception, headers: list[tuple[str, bytes]] | None, topic: str
) -> None:
    app = FakeApp()
    consumer = ResilientConsumer(app, "a", [named("t")])

    async def failing(delivery: Delivery) -> None:
        raise error

    retried = [
        *(headers or []),
        ("original-topic", b"t"),
        ("original-partition", b"3"),
        ("original-offset", b"7"),
    ]
    run(consumer, failing, event("t.retry.due" if headers else "t", retried if headers else None))
    [sent] = app.sent
    assert sent.topic == topic
    assert header(sent.headers, "original-offset") == (b"7" if headers else b"41")


def test_retry_headers_on_a_main_topic_record_are_not_trusted() -> None:
    app = FakeApp()
    consumer = ResilientConsumer(app, "a", [named("t")])

    async def failing(delivery: Delivery) -> None:
        raise TransientFailure("again")

    forged = [("retry-count", b"99"), ("original-topic", b"elsewhere"), ("x", None)]
    run(consumer, failing, event("t", forged))  # type: ignore[arg-type]
    [sent] = app.sent
    assert sent.topic == "t.retry.1"  # the first retry, not a dead letter elsewhere
    assert header(sent.headers, "original-topic") == b"t"
    assert ("x", b"") in sent.headers  # a null header value is kept as empty bytes


PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_handler_runs_in_a_span_continuing_the_records_traceparent() -> None:
    spans: list[tuple[Any, str, BaseException | None]] = []
    app = FakeApp(
        span_sink=SimpleNamespace(record=lambda s, a, d, t0, t1, e: spans.append((s, a, e)))
    )
    consumer = ResilientConsumer(app, "a", [named("t")])
    inside: list[Any] = []

    async def ok(delivery: Delivery) -> bool:
        inside.append((context.current(), context.outgoing(), context.correlation_id()))
        return False

    record = event(headers=[("traceparent", PARENT.encode())])
    record.value = record.message.value = b'{"correlationId": "corr-1"}'
    run(consumer, ok, record)
    [(span, outgoing, correlation)] = inside
    assert span.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent_id == "b7ad6b7169203331" and span.span_id != span.parent_id
    assert outgoing == [("traceparent", f"00-{span.trace_id}-{span.span_id}-01".encode())]
    assert correlation == "corr-1"
    assert spans == [(span, "a", None)]
    assert context.current() is None  # left when the record is done


def test_a_record_without_traceparent_starts_a_trace_and_its_retry_keeps_the_header() -> None:
    app = FakeApp()
    consumer = ResilientConsumer(app, "a", [named("t")])
    inside: list[Any] = []

    async def failing(delivery: Delivery) -> None:
        inside.append(context.current())
        raise TransientFailure("again")

    run(consumer, failing, event(headers=[("traceparent", PARENT.encode())]))
    [retry] = app.sent
    assert header(retry.headers, "traceparent") == PARENT.encode()  # the record's own
    run(consumer, failing, event(headers=[]))
    assert inside[1].parent_id is None and inside[1].trace_id != inside[0].trace_id
