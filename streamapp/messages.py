"""Command, event and reply envelopes of the contract, ids and clocks (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from streamapp.errors import CommandRejected, SchemaError

#: Bigger command records are rejected before they are decoded.
MAX_COMMAND_BYTES = 256 * 1024

#: Namespace of the deterministic event ids (uuid5 of commandId and position).
EVENT_ID_NAMESPACE = uuid.UUID("6b1f3c55-2f0e-4f5c-9a57-3c0f0e4b8a11")


def new_id() -> str:
    return str(uuid.uuid4())


def derived_id(*parts: str) -> str:
    """A UUID that is the same every time for the same parts (replays give equal events)."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))


def iso_utc(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as the contract writes timestamps."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decimal_string(value: Any) -> Decimal:
    """Money as the contract writes it: a decimal string, never a float. ValueError (the
    reason, to follow the field's name) otherwise; the caller decides about NaN, infinity
    and the sign."""
    if not isinstance(value, str):
        raise ValueError("must be a decimal string (money is never a float)")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"is not a decimal: {value!r}") from None


def iso_from_millis(epoch_ms: int) -> str:
    return iso_utc(datetime.fromtimestamp(epoch_ms / 1000.0, UTC))


MAX_ID_CHARS = 200


def _text(doc: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"{name} must be a non-empty string")
    return value


def check_id(name: str, value: str) -> str:
    """Ids become parts of table keys (``c/<aggregateId>/<commandId>``): no '/' or
    control characters, bounded length."""
    if len(value) > MAX_ID_CHARS or "/" in value or any(ord(c) < 32 for c in value):
        raise SchemaError(
            f"{name} must be at most {MAX_ID_CHARS} characters without '/' or control characters"
        )
    return value


@dataclass(frozen=True)
class Command:
    """A command envelope (``orders.commands``, ``*.commands``)."""

    command_id: str
    command_type: str
    aggregate_id: str
    data: Mapping[str, Any]
    expected_version: int | None = None
    correlation_id: str = ""
    causation_id: str | None = None
    timestamp: str = field(default_factory=iso_utc)

    def __post_init__(self) -> None:
        if not self.correlation_id:  # absent means: this command starts the conversation
            object.__setattr__(self, "correlation_id", self.command_id)

    @classmethod
    def parse(cls, raw: bytes | None) -> Command:
        """Decode and check the envelope; raise SchemaError (with commandId if known)."""
        return cls.from_dict(cls.decode(raw))

    @staticmethod
    def decode(raw: bytes | None) -> dict[str, Any]:
        """The record as a JSON object (bounded size); SchemaError otherwise."""
        if raw is None:
            raise SchemaError("empty record")
        if len(raw) > MAX_COMMAND_BYTES:
            raise SchemaError(f"command of {len(raw)} bytes exceeds {MAX_COMMAND_BYTES}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SchemaError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise SchemaError("a command must be a JSON object")
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Command:
        expected = doc.get("expectedVersion")
        if expected is not None and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
        ):
            raise SchemaError("expectedVersion must be a non-negative integer")
        data = doc.get("data", {})
        if not isinstance(data, dict):
            raise SchemaError("data must be a JSON object")
        return cls(
            command_id=check_id("commandId", _text(doc, "commandId") or ""),
            command_type=_text(doc, "commandType") or "",
            aggregate_id=check_id("aggregateId", _text(doc, "aggregateId") or ""),
            data=data,
            expected_version=expected,
            correlation_id=_text(doc, "correlationId", required=False) or "",
            causation_id=_text(doc, "causationId", required=False),
            timestamp=_text(doc, "timestamp", required=False) or iso_utc(),
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "commandId": self.command_id,
            "commandType": self.command_type,
            "aggregateId": self.aggregate_id,
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
            "timestamp": self.timestamp,
            "data": dict(self.data),
        }
        if self.expected_version is not None:
            doc["expectedVersion"] = self.expected_version
        return doc

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


@dataclass(frozen=True)
class Event:
    """An event envelope (``orders.events``, ``*.events``, ``sagas.events``)."""

    event_id: str
    event_type: str
    aggregate_id: str
    aggregate_type: str
    version: int
    timestamp: str
    correlation_id: str
    causation_id: str | None
    source: str
    data: Mapping[str, Any]
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "aggregateId": self.aggregate_id,
            "aggregateType": self.aggregate_type,
            "version": self.version,
            "schemaVersion": self.schema_version,
            "timestamp": self.timestamp,
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
            "source": self.source,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Event:
        return cls(
            event_id=doc["eventId"],
            event_type=doc["eventType"],
            aggregate_id=doc["aggregateId"],
            aggregate_type=doc["aggregateType"],
            version=int(doc["version"]),
            schema_version=int(doc.get("schemaVersion", 1)),
            timestamp=doc["timestamp"],
            correlation_id=doc["correlationId"],
            causation_id=doc.get("causationId"),
            source=doc["source"],
            data=doc.get("data", {}),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


@dataclass(frozen=True)
class Reply:
    """The one reply per command (``orders.replies``, keyed by commandId)."""

    command_id: str
    aggregate_id: str
    status: str  # accepted | rejected | duplicate
    version: int
    event_ids: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = None

    @classmethod
    def accepted(cls, command: Command, version: int, event_ids: tuple[str, ...]) -> Reply:
        return cls(command.command_id, command.aggregate_id, "accepted", version, event_ids)

    @classmethod
    def rejected(cls, command_id: str, aggregate_id: str, error: CommandRejected) -> Reply:
        version = error.current_version or 0
        return cls(command_id, aggregate_id, "rejected", version, (), error.to_error())

    def as_duplicate(self) -> Reply:
        """The reply to a command id seen before: the first outcome, marked duplicate."""
        return Reply(
            self.command_id,
            self.aggregate_id,
            "duplicate",
            self.version,
            self.event_ids,
            self.error,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "commandId": self.command_id,
            "aggregateId": self.aggregate_id,
            "status": self.status,
            "version": self.version,
            "eventIds": list(self.event_ids),
            "error": dict(self.error) if self.error else None,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Reply:
        return cls(
            command_id=doc["commandId"],
            aggregate_id=doc["aggregateId"],
            status=doc["status"],
            version=int(doc["version"]),
            event_ids=tuple(doc.get("eventIds") or ()),
            error=doc.get("error"),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())
