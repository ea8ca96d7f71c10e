"""W3C trace context (``traceparent``) for every record streamapp produces (pure).

A record is processed in a *span*: the trace of the record that caused it (its
``traceparent`` header, or an HTTP request's), a new span id, and the caller's span id
as parent. Every record sent while that span is current carries
``traceparent = 00-<trace id>-<this span id>-<flags>``, so a downstream consumer continues
the same trace with this span as its parent. A record without a (valid) header starts a
new trace. The current span lives in a context variable: each faust agent and each HTTP
request runs in its own task, so spans never leak between records.

Format: https://www.w3.org/TR/trace-context/#traceparent-header (version 00; a higher
version is read by its first four fields, as the spec asks).
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

TRACEPARENT = "traceparent"

_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = "01"


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


@dataclass(frozen=True, slots=True)
class Span:
    """The span a record (or request) is processed in."""

    trace_id: str
    span_id: str
    parent_id: str | None  # the caller's span (None: this span started the trace)
    flags: str = SAMPLED

    @property
    def traceparent(self) -> str:
        """The header every record sent in this span carries (this span as parent)."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def header(self) -> list[tuple[str, bytes]]:
        return [(TRACEPARENT, self.traceparent.encode())]


def parse(value: bytes | str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a traceparent value, or None if invalid."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    found = _FORMAT.match(value.strip())
    if found is None:
        return None
    version, trace_id, parent_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):  # ff is invalid; 00 has four fields
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


def continued(value: bytes | str | None) -> Span:
    """A new span continuing the caller's trace, or starting a new one."""
    caller = parse(value)
    if caller is None:
        return Span(new_trace_id(), new_span_id(), None)
    trace_id, parent_id, flags = caller
    return Span(trace_id, new_span_id(), parent_id, flags)


def traceparent_of(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    """The (last) traceparent header of a record."""
    found = None
    for key, value in headers or ():
        if key == TRACEPARENT:
            found = value
    return found


_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "streamapp_span", default=None
)
#: The value of the record being processed: a log line about it names its correlationId,
#: read from it only when a line is written (nothing is parsed on the hot path).
_record: contextvars.ContextVar[bytes | None] = contextvars.ContextVar(
    "streamapp_record", default=None
)
_CORRELATION = re.compile(rb'"correlationId"\s*:\s*"([^"\\]{1,200})"')


def current() -> Span | None:
    return _current.get()


def outgoing() -> list[tuple[str, bytes]]:
    """Headers for a record sent now: the current span's traceparent, or a new trace's
    (a timer's tick, a seed: nothing caused them)."""
    span = _current.get()
    if span is None:
        span = Span(new_trace_id(), new_span_id(), None)
    return span.header()


@contextmanager
def span_of(span: Span) -> Iterator[Span]:
    """Make `span` current for the block (records sent in it carry its traceparent)."""
    token = _current.set(span)
    try:
        yield span
    finally:
        _current.reset(token)


Tokens = tuple[contextvars.Token[Span | None], contextvars.Token[bytes | None]]


def enter(span: Span, record: bytes | None = None) -> Tokens:
    """Make `span` (and the record processed in it) current until :func:`leave`."""
    return _current.set(span), _record.set(record)


def leave(tokens: Tokens) -> None:
    _current.reset(tokens[0])
    _record.reset(tokens[1])


def correlation_id() -> str | None:
    """The correlationId of the record being processed, if it names one."""
    return correlation_id_in(_record.get())


def correlation_id_in(value: bytes | None) -> str | None:
    """The correlationId a record value names, found without decoding it."""
    if not value:
        return None
    found = _CORRELATION.search(value)
    return found.group(1).decode("utf-8", errors="replace") if found else None
