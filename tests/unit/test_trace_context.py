"""W3C traceparent parsing and continuation (streamapp.tracing.context)."""

from __future__ import annotations

import asyncio

import pytest

from streamapp.tracing import context

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID, ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")),
        (VALID.encode(), ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")),
        # a future version: read by its first four fields (W3C trace-context 3.2.4)
        (
            "cc-" + VALID[3:] + "-what-the-future-holds",
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01"),
        ),
        ("ff-" + VALID[3:], None),  # version ff is invalid
        (VALID + "-extra", None),  # version 00 has exactly four fields
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None),  # all-zero span
        (VALID.upper(), None),  # lower-case hex only
        ("garbage", None),
        (b"\xff\xfe", None),
        (None, None),
    ],
)
def test_parse(value: str | bytes | None, expected: tuple[str, str, str] | None) -> None:
    assert context.parse(value) == expected


def test_continued_keeps_the_trace_and_makes_the_caller_the_parent() -> None:
    span = context.continued(VALID)
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent_id == "00f067aa0ba902b7"
    assert len(span.span_id) == 16 and span.span_id != span.parent_id
    assert span.traceparent == f"00-{span.trace_id}-{span.span_id}-01"
    assert context.parse(span.traceparent) == (span.trace_id, span.span_id, "01")


def test_an_invalid_header_starts_a_new_trace() -> None:
    one, two = context.continued("nonsense"), context.continued(None)
    assert one.parent_id is None and two.parent_id is None
    assert one.trace_id != two.trace_id and len(one.trace_id) == 32


def test_outgoing_without_a_current_span_is_a_new_root_each_time() -> None:
    first, second = context.outgoing(), context.outgoing()
    assert first[0][0] == "traceparent" and first != second
    assert context.parse(first[0][1]) is not None


def test_spans_do_not_leak_between_tasks() -> None:
    async def one(span: context.Span) -> str | None:
        with context.span_of(span):
            await asyncio.sleep(0.01)
            current = context.current()
            return current.span_id if current else None

    async def main() -> list[str | None]:
        spans = [context.continued(None) for _ in range(5)]
        found = await asyncio.gather(*(one(s) for s in spans))
        assert found == [s.span_id for s in spans]
        return list(found)

    asyncio.run(main())
    assert context.current() is None


def test_correlation_id_is_read_from_the_current_record_only_when_asked() -> None:
    tokens = context.enter(context.continued(None), b'{"a": 1, "correlationId": "c-9"}')
    try:
        assert context.correlation_id() == "c-9"
    finally:
        context.leave(tokens)
    assert context.correlation_id() is None
