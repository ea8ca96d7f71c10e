"""The contract's retry and dead-letter headers (pure).

A record moved to ``<topic>.retry.<n>`` or ``<topic>.dlq`` keeps its key, value and
original headers byte for byte; streamapp's headers are replaced, never duplicated, so a
record can travel retry.1 -> retry.2 -> dlq and still say where it first failed.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from streamapp.messages import iso_utc

Headers = Sequence[tuple[str, bytes]]

RETRY_COUNT = "retry-count"
ORIGINAL_TOPIC = "original-topic"
ORIGINAL_PARTITION = "original-partition"
ORIGINAL_OFFSET = "original-offset"
RETRY_AFTER = "retry-after"
ERROR_TYPE = "error-type"
ERROR_MESSAGE = "error-message"
ERROR_STACK = "error-stack"
FAILED_AT = "failed-at"
OURS = frozenset(
    {
        RETRY_COUNT,
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        RETRY_AFTER,
        ERROR_TYPE,
        ERROR_MESSAGE,
        ERROR_STACK,
        FAILED_AT,
    }
)

MAX_MESSAGE_BYTES = 1_024
MAX_STACK_BYTES = 8_192


@dataclass(frozen=True)
class Origin:
    """Where a record first failed (kept across retries)."""

    topic: str
    partition: int
    offset: int


def header(headers: Headers, name: str) -> bytes | None:
    """The last value of a header, or None."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def retry_count(headers: Headers) -> int:
    """Attempts already made (0 for a record that never failed)."""
    raw = header(headers, RETRY_COUNT)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def retry_after(headers: Headers) -> int | None:
    """The retry-after header (epoch ms), or None if absent or unreadable."""
    raw = header(headers, RETRY_AFTER)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def origin(headers: Headers, topic: str, partition: int, offset: int) -> Origin:
    """The first failure's coordinates: from the headers if present, else this record."""
    first_topic = header(headers, ORIGINAL_TOPIC)
    if first_topic is None:
        return Origin(topic, partition, offset)
    try:
        return Origin(
            first_topic.decode(),
            int(header(headers, ORIGINAL_PARTITION) or b"0"),
            int(header(headers, ORIGINAL_OFFSET) or b"0"),
        )
    except (UnicodeDecodeError, ValueError):  # not ours (a client's header): this record
        return Origin(topic, partition, offset)


def original_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The record's own headers, without streamapp's retry/dlq headers."""
    return [(k, v) for k, v in headers if k not in OURS]


def _truncate(text: str, limit: int) -> bytes:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return data
    return data[: limit - 3].decode("utf-8", errors="ignore").encode() + b"..."


def _common(where: Origin, attempts: int, error_type: str, error: str) -> list[tuple[str, bytes]]:
    return [
        (RETRY_COUNT, str(attempts).encode()),
        (ORIGINAL_TOPIC, where.topic.encode()),
        (ORIGINAL_PARTITION, str(where.partition).encode()),
        (ORIGINAL_OFFSET, str(where.offset).encode()),
        (ERROR_TYPE, error_type.encode()),
        (ERROR_MESSAGE, _truncate(error, MAX_MESSAGE_BYTES)),
    ]


def retry_headers(
    headers: Headers,
    where: Origin,
    attempt: int,
    retry_after_ms: int,
    error_type: str,
    error: str,
) -> list[tuple[str, bytes]]:
    """Headers for ``<topic>.retry.<attempt>``: the original ones plus the contract's."""
    return [
        *original_headers(headers),
        *_common(where, attempt, error_type, error),
        (RETRY_AFTER, str(retry_after_ms).encode()),
    ]


def dlq_headers(
    headers: Headers,
    where: Origin,
    attempts: int,
    error_type: str,
    error: str,
    stack: str,
    failed_at: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """Headers for ``<topic>.dlq``: the original ones plus the contract's."""
    return [
        *original_headers(headers),
        *_common(where, attempts, error_type, error),
        (ERROR_STACK, _truncate(stack, MAX_STACK_BYTES)),
        (FAILED_AT, iso_utc(failed_at).encode()),
    ]


def stack_of(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))
