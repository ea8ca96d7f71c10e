"""The Confluent-compatible REST subset of the schema registry (orders workers).

Answers use Confluent's content type and error body ``{"error_code", "message"}`` so
that Confluent's clients understand them; the HTTP status is the code's first three
digits. Every worker answers every route from its own fold of ``_schemas``.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import Request, View

from streamapp.app import app
from streamapp.registry.agents import registry, schema_problems
from streamapp.registry.log import RegistryUnavailable
from streamapp.registry.state import CONFIG, DELETE, DEPRECATE, LEVELS, SCHEMA, Version

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_SUBJECT_CHARS = 200


class RegistryError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _answer(view: View, body: Any, status: int = 200) -> Any:
    return view.bytes(orjson.dumps(body), content_type=CONTENT_TYPE, status=status)


def _error(view: View, error: RegistryError) -> Any:
    status = int(str(error.code)[:3])
    return _answer(view, {"error_code": error.code, "message": error.message}, status)


def _subject(raw: str) -> str:
    if not raw or len(raw) > MAX_SUBJECT_CHARS or any(ord(c) < 32 for c in raw):
        raise RegistryError(42201, f"invalid subject name {raw[:MAX_SUBJECT_CHARS]!r}")
    return raw


def _known(subject: str) -> list[Version]:
    versions = registry.folded.live(subject)
    if not versions:
        raise RegistryError(40401, f"Subject '{subject}' not found.")
    return versions


def _version(subject: str, raw: str) -> Version:
    _known(subject)
    if raw == "latest" or raw == "-1":
        number: int | str = "latest"
    elif raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31:
        number = int(raw)
    else:
        raise RegistryError(
            42202, "The specified version is not a valid version id: 1 to 2^31-1 or latest."
        )
    found = registry.folded.version(subject, number)
    if found is None:
        raise RegistryError(40402, f"Version {raw} not found.")
    return found


async def _schema_body(request: Request) -> dict[str, Any]:
    """The schema of a POST body ``{"schema": "<JSON text>", "schemaType": "JSON"}``."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise RegistryError(42201, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(42201, "the body must be an object with a 'schema' string")
    schema_type = body.get("schemaType", "JSON")
    if schema_type != "JSON":
        raise RegistryError(42201, f"only JSON schemas are supported, not {schema_type!r}")
    if body.get("references"):
        raise RegistryError(42201, "schema references are not supported")
    try:
        schema = orjson.loads(body["schema"])
    except orjson.JSONDecodeError as exc:
        raise RegistryError(42201, f"Invalid schema: not JSON: {exc}") from None
    problems = schema_problems(schema)
    if problems:
        raise RegistryError(42201, "Invalid schema: " + "; ".join(problems))
    return dict(schema)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise RegistryError(42203, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RegistryError(42203, "the body must be a JSON object")
    return body


async def _send(kind: str, **fields: Any) -> Any:
    try:
        return await registry.send(kind, **fields)
    except RegistryUnavailable as exc:
        raise RegistryError(50302, str(exc)) from None


class RegistryView(View):
    """Turns RegistryError into Confluent's error answer."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except RegistryError as exc:
            return _error(self, exc)


@app.page("/subjects")
class Subjects(RegistryView):
    async def get(self, request: Request) -> Any:
        return _answer(self, sorted(s for s in registry.folded.subjects if registry.folded.live(s)))


@app.page("/subjects/{subject}")
class Subject(RegistryView):
    async def post(self, request: Request, subject: str) -> Any:
        """Look a schema up: the version of the subject that holds it."""
        name = _subject(subject)
        _known(name)
        schema = await _schema_body(request)
        found = registry.folded.find(name, schema)
        if found is None:
            raise RegistryError(40403, "Schema not found")
        return _answer(self, found.to_view())


@app.page("/subjects/{subject}/versions")
class SubjectVersions(RegistryView):
    async def get(self, request: Request, subject: str) -> Any:
        return _answer(self, [v.version for v in _known(_subject(subject))])

    async def post(self, request: Request, subject: str) -> Any:
        """Register (idempotent: the same schema returns its existing id)."""
        name = _subject(subject)
        schema = await _schema_body(request)
        existing = registry.folded.find(name, schema)
        if existing is not None:
            return _answer(self, {"id": existing.schema_id, "version": existing.version})
        outcome = await _send(SCHEMA, subject=name, schema=schema)
        if not outcome.ok or outcome.version is None:
            raise RegistryError(
                outcome.error_code or 50001,
                "Schema being registered is incompatible with an earlier schema for subject "
                f"'{name}': " + "; ".join(outcome.reasons),
            )
        # Confluent answers the id; newer servers add the version, which clients ignore.
        return _answer(self, {"id": outcome.version.schema_id, "version": outcome.version.version})


@app.page("/subjects/{subject}/versions/{version}")
class SubjectVersion(RegistryView):
    async def get(self, request: Request, subject: str, version: str) -> Any:
        return _answer(self, _version(_subject(subject), version).to_view())

    async def delete(self, request: Request, subject: str, version: str) -> Any:
        """Soft delete: the version is no longer listed; its id still resolves."""
        found = _version(_subject(subject), version)
        outcome = await _send(DELETE, subject=found.subject, version=found.version)
        if not outcome.ok:
            raise RegistryError(outcome.error_code or 50001, "; ".join(outcome.reasons))
        return _answer(self, found.version)


@app.page("/subjects/{subject}/versions/{version}/deprecate")
class DeprecateVersion(RegistryView):
    async def post(self, request: Request, subject: str, version: str) -> Any:
        """Deprecate a version: workers writing with it refuse new events of its subject;
        events already written with it are still read and replayed (not Confluent's: an
        extension, under the subject's own path)."""
        found = _version(_subject(subject), version)
        if not found.deprecated:
            outcome = await _send(DEPRECATE, subject=found.subject, version=found.version)
            if not outcome.ok:
                raise RegistryError(outcome.error_code or 50001, "; ".join(outcome.reasons))
        return _answer(
            self, {"subject": found.subject, "version": found.version, "deprecated": True}
        )


@app.page("/schemas/ids/{schema_id}")
class SchemaById(RegistryView):
    async def get(self, request: Request, schema_id: str) -> Any:
        numeric = schema_id.isascii() and schema_id.isdigit()  # "¹".isdigit() too
        text = registry.folded.schemas.get(int(schema_id)) if numeric else None
        if text is None:
            raise RegistryError(40403, "Schema not found")
        return _answer(self, {"schema": text, "schemaType": "JSON"})


@app.page("/compatibility/subjects/{subject}/versions/{version}")
class Compatibility(RegistryView):
    async def post(self, request: Request, subject: str, version: str) -> Any:
        """Would this schema be accepted? ``?verbose=true`` lists every reason."""
        name = _subject(subject)
        schema = await _schema_body(request)
        if version in ("latest", "-1") and not registry.folded.live(name):
            reasons: list[str] = []  # nothing registered yet: anything is compatible
        else:
            target = _version(name, version)
            against = registry.folded.live(name)
            if version not in ("latest", "-1"):
                against = [v for v in against if v.version <= target.version]
            reasons = registry.folded.incompatibilities(name, schema, against)
        body: dict[str, Any] = {"is_compatible": not reasons}
        if request.query.get("verbose") == "true":
            body["messages"] = reasons
        return _answer(self, body)


def _level_body(body: dict[str, Any]) -> str:
    level = body.get("compatibility", body.get("compatibilityLevel"))
    if level not in LEVELS:
        raise RegistryError(42203, f"Invalid compatibility level {level!r}: one of {LEVELS}")
    return str(level)


@app.page("/config")
class GlobalConfig(RegistryView):
    async def get(self, request: Request) -> Any:
        return _answer(self, {"compatibilityLevel": registry.folded.level(None)})

    async def put(self, request: Request) -> Any:
        level = _level_body(await _json_body(request))
        await _send(CONFIG, level=level)
        return _answer(self, {"compatibility": level})


@app.page("/config/{subject}")
class SubjectConfig(RegistryView):
    async def get(self, request: Request, subject: str) -> Any:
        name = _subject(subject)
        if name not in registry.folded.levels and request.query.get("defaultToGlobal") != "true":
            raise RegistryError(
                40408, f"Subject '{name}' does not have subject-level compatibility configured"
            )
        return _answer(self, {"compatibilityLevel": registry.folded.level(name)})

    async def put(self, request: Request, subject: str) -> Any:
        name = _subject(subject)
        level = _level_body(await _json_body(request))
        await _send(CONFIG, subject=name, level=level)
        return _answer(self, {"compatibility": level})

    async def delete(self, request: Request, subject: str) -> Any:
        name = _subject(subject)
        level = registry.folded.level(name)
        await _send(CONFIG, subject=name, level=None)
        return _answer(self, {"compatibilityLevel": level})
