"""Log lines (streamapp.logs): JSON objects or faust's text, both naming their record."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest
from mode.utils.logging import setup_logging

from streamapp.logs import JsonFormatter, TextFormatter, logging_config
from streamapp.settings import Settings
from streamapp.tracing import context

SPAN = context.Span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331")
RECORD = b'{"commandId":"c-1","commandType":"CreateOrder","correlationId":"corr-42"}'


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("streamapp.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_outside_a_record_has_the_standard_fields() -> None:
    line = orjson.loads(JsonFormatter().format(record("hello %s", "world")))
    assert line.keys() == {"time", "level", "logger", "message"}
    assert line["level"] == "WARNING" and line["logger"] == "streamapp.test"
    assert line["message"] == "hello world"
    when = datetime.fromisoformat(line["time"])
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0


def test_a_json_line_about_a_record_names_its_correlation_id_and_trace() -> None:
    tokens = context.enter(SPAN, RECORD)
    try:
        line = orjson.loads(JsonFormatter().format(record()))
    finally:
        context.leave(tokens)
    assert line["correlationId"] == "corr-42"
    assert line["traceId"] == SPAN.trace_id and line["spanId"] == SPAN.span_id


def test_a_json_line_in_a_request_span_names_its_trace_without_a_correlation_id() -> None:
    with context.span_of(SPAN):
        line = orjson.loads(JsonFormatter().format(record()))
    assert "correlationId" not in line and line["traceId"] == SPAN.trace_id


def test_a_json_line_carries_the_exception_and_is_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    text = JsonFormatter().format(failed)
    assert "\n" not in text
    line = orjson.loads(text)
    assert line["exc"].startswith("Traceback") and "ValueError: bad\nvalue" in line["exc"]


def test_a_text_line_about_a_record_ends_with_its_ids() -> None:
    formatter = TextFormatter("%(message)s %(extra)s%(about)s")
    assert formatter.format(record("plain")) == "plain "
    tokens = context.enter(SPAN, RECORD)
    try:
        text = formatter.format(record("about"))
    finally:
        context.leave(tokens)
    assert text == f"about [corr=corr-42 trace={SPAN.trace_id} span={SPAN.span_id}]"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Let a test configure the root logger as faust's worker does; put it back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_faust_workers_logging_setup_takes_our_formatters_and_keeps_the_level(
    root_logging: None, log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mode's setup_logging (what faust's worker calls with -l and our logging_config)."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)  # mode's handler writes to sys.stderr
    setup_logging(
        loglevel="WARNING", logging_config=logging_config(Settings(log_format=log_format))
    )
    log = logging.getLogger("streamapp.test.setup")
    log.info("below the level")
    tokens = context.enter(SPAN, RECORD)
    try:
        log.warning("about a record")
    finally:
        context.leave(tokens)
    [written] = out.getvalue().splitlines()
    if log_format == "json":
        line = orjson.loads(written)
        assert line["message"] == "about a record" and line["correlationId"] == "corr-42"
    else:
        assert "[WARNING]" in written and "about a record" in written
        assert written.endswith(f"[corr=corr-42 trace={SPAN.trace_id} span={SPAN.span_id}]")
