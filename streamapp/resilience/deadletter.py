"""Dead letters: a record that can never succeed goes to ``<topic>.dlq`` at once.

The key, value and original headers are copied byte for byte; the contract's headers
(retry-count, original-topic/partition/offset, error-type/message/stack, failed-at)
say why. Called by the ResilientConsumer for never-retryable failures and for records
that exhausted their retries (``<topic>.retry.<n>``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faust.types import EventT

from streamapp.resilience.headers import Origin, dlq_headers, origin, retry_count, stack_of
from streamapp.resilience.policy import error_type

if TYPE_CHECKING:
    from streamapp.app import StreamApp

log = logging.getLogger(__name__)


def record_headers(raw: Any) -> list[tuple[str, bytes]]:
    """faust gives headers as a list of pairs or a mapping; normalise to pairs."""
    if not raw:
        return []
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    # A header may have a null value (None): keep it as empty bytes.
    return [(str(k), bytes(v) if v is not None else b"") for k, v in pairs]


async def dead_letter(
    app: StreamApp,
    agent: str,
    event: EventT[Any],
    reason: str,
    error: BaseException,
    where: Origin | None = None,
    attempts: int | None = None,
) -> None:
    """Send the event's record to its topic's DLQ (``where`` it first arrived: by default
    as its headers say), count and log it."""
    message = event.message
    headers = record_headers(message.headers)
    where = where or origin(headers, message.topic, message.partition, message.offset)
    kind = error_type(error)
    try:
        await app.dead_letter_topic(where.topic).send(
            key=message.key,
            value=message.value,
            headers=dlq_headers(
                headers,
                where,
                retry_count(headers) if attempts is None else attempts,
                kind,
                str(error),
                stack_of(error),
            ),
        )
    except Exception as failure:  # never crash-loop the agent on a record it cannot keep
        app.metrics.dead_letter_failures.labels(where.topic).inc()
        log.error(
            "%s could NOT dead-letter %s[%d]@%d (%s %s: %s): %r",
            agent,
            message.topic,
            message.partition,
            message.offset,
            reason,
            kind,
            error,
            failure,
        )
        return
    app.metrics.dead_letters.labels(where.topic, kind).inc()
    app.metrics.records_rejected.labels(agent, reason).inc()
    log.warning(
        "%s dead-lettered %s[%d]@%d key=%r (%s %s): %s",
        agent,
        message.topic,
        message.partition,
        message.offset,
        (message.key or b"")[:64],
        reason,
        kind,
        error,
        exc_info=error if reason == "error" else None,
    )
