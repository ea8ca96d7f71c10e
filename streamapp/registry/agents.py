"""The schema registry in an orders worker: ``_schemas``, its follower, the repo's schemas.

At start-up, once the log is read to its end, every schema under ``config/schemas/`` is
registered under its type name (a no-op when unchanged). One that breaks its subject's
compatibility level stops the worker with the reasons: a deployment must not write
events its readers cannot read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streamapp import topics
from streamapp.app import app
from streamapp.registry import compatibility
from streamapp.registry.log import RegistryLog
from streamapp.registry.state import SCHEMA
from streamapp.registry.validation import Validators

log = logging.getLogger(__name__)

#: Registered schemas, versions, ids and levels: one partition, so one order for all.
schemas_topic = app.contract_topic(topics.SCHEMAS)


def check(level: str, new: Mapping[str, Any], existing: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every reason `new` breaks `level` (an invalid schema is a reason too)."""
    try:
        return compatibility.check(level, dict(new), [dict(e) for e in existing])
    except compatibility.InvalidSchemaError as exc:
        return [f"invalid schema: {reason}" for reason in exc.reasons]


def schema_problems(schema: Any) -> list[str]:
    """Why a document is not a usable JSON Schema (none: it is one)."""
    if not isinstance(schema, dict | bool):
        return ["a schema must be a JSON object or a boolean"]
    return compatibility.is_valid_schema(schema)


registry = RegistryLog(
    app.settings.bootstrap,
    schemas_topic.get_topic_name(),
    check,
    app.topics_ensured,
)
app.service(registry)  # type: ignore[arg-type]  # faust starts instances too
#: Set once the repo's schemas are registered (or found unchanged).
repo_registered = asyncio.Event()


def is_deprecated(subject: str, version: int) -> bool:
    """Deprecated in the registry's fold now (not a snapshot: the fold moves on)."""
    found = registry.folded.version(subject, version)
    return found is not None and found.deprecated


#: The deployed versions' validators (ready with repo_registered); with the setting
#: ``schema_validation`` off they pass everything (only to measure what validation costs).
validators = Validators(is_deprecated, enabled=app.settings.schema_validation)
app.require_for_readiness("schema registry log", registry.caught_up.is_set)
app.require_for_readiness("repo schemas registered", repo_registered.is_set)


class IncompatibleSchemas(SystemExit):
    """A repo schema breaks its subject's level: the worker must not start."""


def repo_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """``config/schemas/<Type>.json`` by subject (the type name)."""
    found = {}
    for path in sorted(directory.glob("*.json")):
        found[path.stem] = json.loads(path.read_text())
    return found


async def register_repo_schemas() -> None:
    await registry.caught_up.wait()
    directory = app.settings.schemas_dir
    schemas = repo_schemas(directory)
    problems: list[str] = []
    for subject, schema in schemas.items():
        if registry.folded.find(subject, schema) is not None:
            continue  # unchanged: nothing to do
        reasons = registry.folded.incompatibilities(subject, schema)
        if not reasons:
            outcome = await registry.send(SCHEMA, subject=subject, schema=schema)
            reasons = [] if outcome.ok else list(outcome.reasons)
        problems += [f"{subject}: {reason}" for reason in reasons]
    if problems:
        message = f"schemas in {directory} break their subjects' compatibility:\n  " + (
            "\n  ".join(problems)
        )
        log.critical(message)
        await app.crash(IncompatibleSchemas(message))
        return
    for subject, schema in schemas.items():
        found = registry.folded.find(subject, schema)
        assert found is not None  # registered above, or found unchanged
        validators.load(subject, found.version, schema)
    if not validators.enabled:
        log.warning("schema validation is off (schema_validation = false): only to measure")
    repo_registered.set()


async def deployed_validators() -> Validators:
    """The validators, once the repo's schemas are registered (agents wait for it)."""
    await repo_registered.wait()
    return validators


app.task(register_repo_schemas)
