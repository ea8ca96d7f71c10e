"""Log lines of a worker: faust's text format or one JSON object per line (``log_format``).

Either way a line written while a record is processed names that record's correlationId
and trace (from :mod:`streamapp.tracing.context`), so an operator can go from a log line
to its trace and back. Only the formatters change: faust's worker (mode's
``setup_logging``) still builds the handler and sets the root level from ``-l``, and
merges :func:`logging_config` over its own configuration (``"merge": True``).

In JSON mode the two things faust writes past logging become JSON lines too: the banner
the ``worker`` command prints before logging is set up, and the worker's own ``say``
(the spinner's "OK" at -l warn and above), so that every line a worker writes parses.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import faust
import mode
import orjson
from faust.cli.worker import worker as faust_worker_command
from mode.utils.logging import (
    DEFAULT_COLOR_FORMAT,
    DEFAULT_COLORS,
    DEFAULT_FORMAT,
    DefaultFormatter,
    ExtensionFormatter,
)

from streamapp.tracing import context

if TYPE_CHECKING:
    from streamapp.settings import Settings


def about_record() -> dict[str, str]:
    """correlationId, traceId and spanId of the record (or request) being processed."""
    span = context.current()
    if span is None:
        return {}
    fields = {"traceId": span.trace_id, "spanId": span.span_id}
    correlation = context.correlation_id()
    if correlation is not None:
        fields = {"correlationId": correlation, **fields}
    return fields


def json_line(created: float, level: str, logger: str, message: str, **more: Any) -> str:
    """One JSON log line (no newline); `more` adds fields after the standard ones."""
    line = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
        **about_record(),
        **more,
    }
    return orjson.dumps(line, default=str).decode()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the
    record's correlationId/traceId/spanId while one is processed, exc and stack."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json_line(record.created, record.levelname, record.name, record.getMessage(), **line)


def _suffix() -> str:
    fields = about_record()
    if not fields:
        return ""
    correlation = fields.get("correlationId")
    named = f"corr={correlation} " if correlation else ""
    return f"[{named}trace={fields['traceId']} span={fields['spanId']}]"


class TextFormatter(DefaultFormatter):
    """faust's plain text line (``--logfile``) with a ``[corr=… trace=… span=…]`` suffix."""

    def format(self, record: logging.LogRecord) -> str:
        record.about = _suffix()
        return super().format(record)


class ColoredTextFormatter(ExtensionFormatter):
    """faust's terminal line (colours on a TTY) with the same suffix."""

    def format(self, record: logging.LogRecord) -> str:
        record.about = _suffix()
        return super().format(record)


class JsonWorker(faust.Worker):
    """faust's worker for JSON logs: no terminal spinner, and what it says is a JSON line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None  # it only draws on a terminal; without it, no "OK ^" line

    def _say(self, msg: str, file: IO[str] | None = None, end: str = "\n", **kwargs: Any) -> None:
        text = msg.strip()
        if self.quiet or not text:
            return
        out = file or self.stdout
        level = "WARNING" if out is self.stderr else "INFO"
        print(json_line(time.time(), level, "faust.worker", text), file=out, flush=True)


def _banner_as_json_line(command: faust_worker_command, worker: mode.Worker) -> None:
    """faust's ``worker`` command prints a table banner before logging is set up: for a
    JsonWorker it is one JSON line with the same rows."""
    if not isinstance(worker, JsonWorker):
        _print_banner(command, worker)
        return
    rows: dict[str, str] = {}
    section = last = ""
    for name, value in command._banner_data(worker):
        key = str(name).strip()
        if key == "+":  # a continuation of the row above
            rows[last] = f"{rows[last]} {value}"
            continue
        if str(name).startswith(" "):  # a row under the one above (drivers: transport)
            key = f"{section}.{key}"
        else:
            section = key
        rows[key] = str(value)
        last = key
    line = json_line(time.time(), "INFO", "faust.cli.worker", command._banner_title(), banner=rows)
    command.say(line)


_print_banner = faust_worker_command.on_worker_created


def logging_config(settings: Settings) -> dict[str, Any]:
    """faust's ``logging_config``: mode's own configuration with our formatters."""
    if settings.log_format == "json":
        formatters: dict[str, Any] = {
            "default": {"()": "streamapp.logs.JsonFormatter"},
            "colored": {"()": "streamapp.logs.JsonFormatter"},
        }
    else:
        formatters = {
            "default": {
                "()": "streamapp.logs.TextFormatter",
                "format": DEFAULT_FORMAT + "%(about)s",
            },
            "colored": {
                "()": "streamapp.logs.ColoredTextFormatter",
                "format": DEFAULT_COLOR_FORMAT + "%(about)s",
                "log_colors": DEFAULT_COLORS,
                "stream": sys.stdout,
            },
        }
    return {"merge": True, "formatters": formatters}


def faust_logging_options(settings: Settings) -> dict[str, Any]:
    """faust.App options for our log lines (``logging_config``; in JSON mode the worker
    class, whose banner the ``worker`` command then prints as a JSON line)."""
    if settings.log_format != "json":
        return {"logging_config": logging_config(settings)}
    faust_worker_command.on_worker_created = _banner_as_json_line  # type: ignore[method-assign,assignment]
    return {"logging_config": logging_config(settings), "Worker": JsonWorker}
