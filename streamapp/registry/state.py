"""The schema registry's state: a fold over the ``_schemas`` topic (pure).

Every orders worker reads ``_schemas`` from its start and applies each record with
:meth:`RegistryState.apply`, so every worker holds the same state, and a worker that
lost its disk rebuilds it from Kafka alone.

A record is a *request* (register a schema, set a level, delete or deprecate a version),
not a decision: the fold decides, in log order, the same way on every worker. So any
worker accepts a registration, and two workers registering different schemas at once
get distinct ids and versions — whichever request Kafka ordered first gets the lower
version; ids come from the schema's content and are probed on a collision. Each record
has its own key (a request id): compaction never removes a request whose effect a
later one depends on, so a rebuild decides everything exactly as the first fold did.
The topic holds one small record per request, which is all a registry ever sees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

#: Compatibility levels (Confluent's names); BACKWARD is the default.
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"

SCHEMA, CONFIG, DELETE, DEPRECATE = "SCHEMA", "CONFIG", "DELETE_VERSION", "DEPRECATE"

#: (level, new schema, existing schemas oldest first) -> every reason it is incompatible.
Checker = Callable[[str, Mapping[str, Any], Sequence[Mapping[str, Any]]], list[str]]


def canonical(schema: Mapping[str, Any]) -> str:
    """One text per schema: key order and whitespace do not make a new schema."""
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()


def content_id(text: str) -> int:
    """A schema's preferred id: from its content, so that workers agree without asking
    each other (1 .. 2^31-1, like Confluent's int ids)."""
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
    return digest or 1


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    schema_id: int
    schema: str  # canonical text
    deleted: bool = False
    deprecated: bool = False

    def to_view(self) -> dict[str, Any]:
        """Confluent's answer for GET /subjects/{s}/versions/{v}."""
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema_id,
            "schemaType": "JSON",
            "schema": self.schema,
            **({"deprecated": True} if self.deprecated else {}),
        }


@dataclass(frozen=True)
class Outcome:
    """What a request did, for the worker that sent it (found by its request id)."""

    ok: bool
    version: Version | None = None
    reasons: tuple[str, ...] = ()
    error_code: int = 0


@dataclass
class RegistryState:
    """Subjects, versions, ids, levels and deprecations, folded from ``_schemas``."""

    check: Checker
    subjects: dict[str, list[Version]] = field(default_factory=dict)
    schemas: dict[int, str] = field(default_factory=dict)  # id -> canonical text
    levels: dict[str | None, str] = field(default_factory=dict)  # None: the global level
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # request id -> outcome
    position: int = -1  # offset of the last record applied

    # -- reading -----------------------------------------------------------------------
    def level(self, subject: str | None) -> str:
        if subject is not None and subject in self.levels:
            return self.levels[subject]
        return self.levels.get(None, DEFAULT_LEVEL)

    def live(self, subject: str) -> list[Version]:
        """A subject's versions that are not soft-deleted, oldest first."""
        return [v for v in self.subjects.get(subject, []) if not v.deleted]

    def version(self, subject: str, version: int | str) -> Version | None:
        live = self.live(subject)
        if version in ("latest", -1):
            return live[-1] if live else None
        return next((v for v in live if v.version == version), None)

    def find(self, subject: str, schema: Mapping[str, Any]) -> Version | None:
        """The live version of a subject holding exactly this schema."""
        text = canonical(schema)
        return next((v for v in self.live(subject) if v.schema == text), None)

    def incompatibilities(
        self, subject: str, schema: Mapping[str, Any], against: Sequence[Version] | None = None
    ) -> list[str]:
        """Every reason `schema` breaks the subject's level (none: compatible)."""
        level = self.level(subject)
        existing = list(against if against is not None else self.live(subject))
        if level == "NONE" or not existing:
            return []
        if not level.endswith("_TRANSITIVE"):
            existing = existing[-1:]
        return self.check(level, schema, [orjson.loads(v.schema) for v in existing])

    # -- the fold ----------------------------------------------------------------------
    def apply(self, offset: int, key: Mapping[str, Any], value: Mapping[str, Any] | None) -> None:
        """Apply one ``_schemas`` record (keys and values as produced by `request`)."""
        self.position = max(self.position, offset)
        request_id = str(key.get("request", offset))
        kind = key.get("keytype")
        try:
            if kind == SCHEMA and value is not None:
                outcome = self._register(str(key["subject"]), value)
            elif kind == CONFIG:
                outcome = self._configure(key.get("subject"), value)
            elif kind in (DELETE, DEPRECATE):
                outcome = self._mark(kind, str(key["subject"]), int(key["version"]))
            else:
                outcome = Outcome(False, reasons=(f"unknown record {kind!r}",), error_code=50001)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed record changes nothing
            outcome = Outcome(False, reasons=(f"malformed record: {exc}",), error_code=50001)
        self.outcomes[request_id] = outcome

    def _register(self, subject: str, value: Mapping[str, Any]) -> Outcome:
        schema = orjson.loads(value["schema"])
        existing = self.find(subject, schema)
        if existing is not None:  # the same schema again: its version, nothing new
            return Outcome(True, existing)
        reasons = self.incompatibilities(subject, schema)
        if reasons:
            return Outcome(False, reasons=tuple(reasons), error_code=409)
        text = canonical(schema)
        versions = self.subjects.setdefault(subject, [])
        number = max((v.version for v in versions), default=0) + 1
        added = Version(subject, number, self._id_for(text), text)
        versions.append(added)
        return Outcome(True, added)

    def _id_for(self, text: str) -> int:
        """The schema's id: the one it already has under any subject, else its content
        id, probed upwards past ids that other schemas hold."""
        candidate = content_id(text)
        while candidate in self.schemas and self.schemas[candidate] != text:
            candidate = candidate % 0x7FFFFFFF + 1
        self.schemas[candidate] = text
        return candidate

    def _configure(self, subject: Any, value: Mapping[str, Any] | None) -> Outcome:
        if value is None or value.get("compatibilityLevel") is None:
            self.levels.pop(subject, None)  # DELETE /config/{s}: back to the global level
            return Outcome(True)
        level = str(value["compatibilityLevel"])
        if level not in LEVELS:
            return Outcome(False, reasons=(f"unknown level {level!r}",), error_code=42203)
        self.levels[None if subject is None else str(subject)] = level
        return Outcome(True)

    def _mark(self, kind: str, subject: str, number: int) -> Outcome:
        versions = self.subjects.get(subject)
        if not versions:
            return Outcome(False, reasons=(f"subject {subject!r} not found",), error_code=40401)
        for n, version in enumerate(versions):
            if version.version == number and not version.deleted:
                changed = (
                    replace(version, deleted=True)
                    if kind == DELETE
                    else replace(version, deprecated=True)
                )
                versions[n] = changed
                return Outcome(True, changed)
        return Outcome(False, reasons=(f"version {number} not found",), error_code=40402)


def request(kind: str, request_id: str, **fields: Any) -> tuple[bytes, bytes]:
    """The (key, value) of a ``_schemas`` record for a request. Fields: subject, version,
    schema, level (None: back to the global level). Values are never null: a tombstone
    would vanish from the compacted topic and a rebuild would miss its effect."""
    key: dict[str, Any] = {"keytype": kind, "request": request_id}
    for name in ("subject", "version"):
        if name in fields:
            key[name] = fields[name]
    if kind == SCHEMA:
        value: dict[str, Any] = {
            "schema": canonical(fields["schema"]),
            "schemaType": "JSON",
        }
    elif kind == CONFIG:
        value = {"compatibilityLevel": fields.get("level")}
    else:
        value = {}
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS), orjson.dumps(value)
