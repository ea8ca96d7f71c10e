from __future__ import annotations

from datetime import UTC, datetime

from streamapp.resilience.headers import (
    MAX_STACK_BYTES,
    Origin,
    dlq_headers,
    header,
    origin,
    retry_count,
    retry_headers,
)

ORIGINAL = [("traceparent", b"00-abc-01"), ("content-type", b"application/json")]


def test_retry_headers_keep_the_originals_and_add_the_contracts() -> None:
    where = origin(ORIGINAL, "orders.commands", 3, 42)
    first = retry_headers(ORIGINAL, where, 1, 1_795_000_001_000, "TimeoutError", "slow")
    assert first[:2] == ORIGINAL
    assert header(first, "retry-count") == b"1"
    assert header(first, "original-topic") == b"orders.commands"
    assert header(first, "original-partition") == b"3"
    assert header(first, "original-offset") == b"42"
    assert header(first, "retry-after") == b"1795000001000"
    assert header(first, "error-type") == b"TimeoutError"
    assert header(first, "error-message") == b"slow"


def test_a_second_retry_keeps_the_first_origin_and_replaces_our_headers() -> None:
    first = retry_headers(ORIGINAL, Origin("orders.commands", 3, 42), 1, 5, "E", "m1")
    assert retry_count(first) == 1
    where = origin(first, "orders.commands.retry.1", 0, 7)
    assert where == Origin("orders.commands", 3, 42)
    second = retry_headers(first, where, 2, 9, "E", "m2")
    assert [k for k, _ in second].count("retry-count") == 1
    assert retry_count(second) == 2 and header(second, "error-message") == b"m2"


def test_dlq_headers_bound_the_stack_and_stamp_the_time() -> None:
    headers = dlq_headers(
        ORIGINAL,
        Origin("t", 0, 1),
        5,
        "ValueError",
        "boom",
        "x" * 100_000,
        datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    )
    assert headers[:2] == ORIGINAL
    assert len(header(headers, "error-stack") or b"") <= MAX_STACK_BYTES
    assert header(headers, "failed-at") == b"2026-11-26T12:00:00.000Z"
    assert header(headers, "retry-after") is None and header(headers, "retry-count") == b"5"


def test_missing_or_garbled_retry_count_is_zero() -> None:
    assert retry_count([]) == 0 and retry_count([("retry-count", b"x")]) == 0
