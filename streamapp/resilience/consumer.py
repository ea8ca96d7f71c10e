"""The one way every streamapp agent consumes: timeout, classify, retry topics, DLQ.

``ResilientConsumer`` owns an agent's input topics and their retry plumbing. An agent
supplies only ``handle(delivery)``; the consumer runs it with a timeout and on failure

- never-retryable (undecodable, schema-invalid, unknown type, or what the agent's
  classifier adds): the record goes to ``<topic>.dlq`` at once;
- retryable: to ``<topic>.retry.<n>`` (same partition, key, value and headers, plus the
  contract's retry headers with ``retry-after``), and the main partition moves on;
- after ``retry_max_attempts`` retries: ``<topic>.dlq``.

The :class:`~streamapp.resilience.relay.RetryRelay` moves a waiting record to
``<topic>.retry.due`` once its ``retry-after`` has passed; the agent consumes that
topic next to ``<topic>`` (same app, same partition count, so Faust assigns partition
p of both to the same worker and the table writes stay local), in an agent of its own
that goes first (:mod:`streamapp.resilience.gate`). A handler sees a
:class:`Delivery` whose ``origin`` is where the record first arrived, so its dedupe
treats a retry like a redelivery of the original record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import astuple, dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from faust.types import EventT, StreamT, TopicT

from streamapp.resilience.deadletter import dead_letter, record_headers
from streamapp.resilience.gate import DueFirst
from streamapp.resilience.headers import (
    Origin,
    origin,
    retry_after,
    retry_count,
    retry_headers,
)
from streamapp.resilience.policy import ErrorClassifier, RetryPolicy, error_type
from streamapp.topics import due_topic, is_due, main_topic, retry_topic
from streamapp.tracing.context import continued, enter, leave, traceparent_of

if TYPE_CHECKING:
    from streamapp.app import StreamApp
    from streamapp.settings import Settings

log = logging.getLogger(__name__)


class ProcessingTimeout(Exception):
    """The handler took longer than the processing timeout (a retryable failure)."""


class TransientFailure(Exception):
    """A failure worth retrying (e.g. injected by the participants' failure setting)."""


@dataclass(frozen=True)
class Delivery:
    """One record as a handler sees it, first attempt or retry."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    topic: str  # where it came from now (the main topic or <topic>.retry.due)
    origin: Origin  # where it first arrived: dedupe by this
    attempt: int  # retries made before this one (0: first attempt)
    timestamp_ms: int
    event: EventT[Any]  # the faust event (for senders that need it)

    @classmethod
    def of(cls, event: EventT[Any]) -> Delivery:
        """Only a record from ``<topic>.retry.due`` is a retry: retry headers on a main
        topic record come from a client (or a replay) and are not trusted."""
        message = event.message
        headers = record_headers(message.headers)
        here = Origin(message.topic, message.partition, message.offset)
        retried = is_due(message.topic)
        return cls(
            event.key,
            event.value,
            headers,
            message.topic,
            origin(headers, *astuple(here)) if retried else here,
            retry_count(headers) if retried else 0,
            int(message.timestamp * 1000),
            event,
        )


def policy_from(settings: Settings) -> RetryPolicy:
    policy: RetryPolicy = settings.retry_policy
    return policy


Handler = Callable[[Delivery], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


class ResilientConsumer:
    """An agent's inputs (main topics + their due topics) and what happens on failure."""

    def __init__(
        self,
        app: StreamApp,
        name: str,
        topics: Sequence[TopicT],
        *,
        classifier: ErrorClassifier | None = None,
        policy: RetryPolicy | None = None,
        timeout_ms: int | None = None,
        reason_of: Callable[[BaseException], str | None] = lambda error: None,
    ) -> None:
        """``reason_of`` may name a finer rejection reason (metric label) for an error."""
        self.app = app
        self.reason_of = reason_of
        self.name = name
        self.classifier = classifier or ErrorClassifier()
        self.policy = policy or policy_from(app.settings)
        self.timeout_s = (timeout_ms or app.settings.processing_timeout_ms) / 1000.0
        self.main_topics = [t.get_topic_name() for t in topics]
        self._retry: dict[str, TopicT] = {}
        due = []
        for topic in topics:
            spec_name = topic.get_topic_name()
            app.declare_retry_topics(spec_name, self.policy.max_attempts)
            due.append(due_topic(spec_name))
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.channel = app.topic(*self.main_topics, **raw)
        self.due_channel = app.topic(*due, **raw)
        self.gate = DueFirst()
        # this agent's series, looked up once (labels() per record was ~1 % of a relay)
        metrics = app.metrics
        self._processed = metrics.records_processed.labels(name)
        self._replayed = metrics.records_replayed.labels(name)
        self._seconds = metrics.processing_seconds.labels(name)
        self._timeouts = metrics.timeouts.labels(name)
        self._lateness = metrics.retry_lateness_seconds.labels(name)

    def agent(self, handler: H) -> H:
        """Register the agents: one on the main topics, one on their due-retry topics
        (own stream buffers, so a due record does not queue behind the main backlog),
        handling one record at a time per worker between them (the handler reads and
        writes tables), due records first (:class:`DueFirst`), each through `handler`
        under this consumer's rules. A decorator: put ``@consumer.agent`` on the handler
        where it is defined."""

        def consumer(urgent: bool) -> Callable[[StreamT[Any]], Awaitable[None]]:
            async def consume(stream: StreamT[Any]) -> None:
                if urgent:  # the gate holds its turn while more due records wait here
                    buffered = cast(Any, stream.channel).queue  # the clone faust fills
                    self.gate.urgent_pending = lambda: buffered.qsize() > 0
                async for event in stream.events():
                    async with self.gate.turn(urgent=urgent):
                        await self.process(event, handler)

            return consume

        for channel, name, urgent in (
            (self.channel, self.name, False),
            (self.due_channel, f"{self.name}.due", True),
        ):
            consume = consumer(urgent)
            consume.__name__ = consume.__qualname__ = name
            self.app.agent(channel, name=name)(consume)
        return handler

    async def process(self, event: EventT[Any], handler: Handler) -> None:
        started = time.perf_counter()
        delivery = Delivery.of(event)
        span = continued(traceparent_of(delivery.headers))
        tokens = enter(span, delivery.value)
        error: BaseException | None = None
        try:
            error = await self._process(delivery, handler, started)
        finally:
            leave(tokens)
            sink = self.app.span_sink
            if sink is not None:
                sink.record(span, self.name, delivery, started, time.perf_counter(), error)

    async def _process(
        self, delivery: Delivery, handler: Handler, started: float
    ) -> BaseException | None:
        """Handle one record; the failure it was retried or dead-lettered for, if any."""
        if is_due(delivery.topic):
            due = retry_after(delivery.headers)
            if due is not None:
                self._lateness.observe(max(0.0, time.time() - due / 1000.0))
        try:
            try:
                # in this task (asyncio.wait_for would start one per record)
                async with asyncio.timeout(self.timeout_s):
                    replayed = await handler(delivery)
            except TimeoutError:
                self._timeouts.inc()
                raise ProcessingTimeout(
                    f"{self.name} took longer than {self.timeout_s:g} s"
                ) from None
        except Exception as exc:  # every failure is classified; none stops the partition
            await self.app.hand_over_table_writes()
            await self.fail(delivery, exc)
            return exc
        await self.app.hand_over_table_writes()
        if replayed:
            self._replayed.inc()
        self._processed.inc()
        self._seconds.observe(time.perf_counter() - started)
        return None

    async def fail(self, delivery: Delivery, error: BaseException) -> None:
        """Retry topic or DLQ, by classification and attempts made."""
        event, kind = delivery.event, error_type(error)
        main = main_topic(delivery.origin.topic)
        if not self.classifier.retryable(error) or self.policy.exhausted(delivery.attempt):
            reason = "invalid" if not self.classifier.retryable(error) else "exhausted"
            reason = self.reason_of(error) or reason
            await dead_letter(
                self.app,
                self.name,
                event,
                reason,
                error,
                replace(delivery.origin, topic=main),
                delivery.attempt,
            )
            return
        attempt = delivery.attempt + 1
        retry_after = self.policy.retry_after_ms(attempt, int(time.time() * 1000))
        where = replace(delivery.origin, topic=main)
        headers = retry_headers(delivery.headers, where, attempt, retry_after, kind, str(error))
        try:
            await self._retry_topic(main, attempt).send(
                key=delivery.key,
                value=delivery.value,
                headers=headers,
                partition=event.message.partition,
            )
        except Exception as failure:  # could not park it: keep it in the DLQ instead
            log.error("%s could not send to %s: %r", self.name, retry_topic(main, attempt), failure)
            await dead_letter(
                self.app, self.name, event, "retry-send-failed", error, where, delivery.attempt
            )
            return
        self.app.metrics.retries.labels(main, str(attempt)).inc()

    def _retry_topic(self, main: str, attempt: int) -> TopicT:
        name = retry_topic(main, attempt)
        if name not in self._retry:
            self._retry[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
        return self._retry[name]
