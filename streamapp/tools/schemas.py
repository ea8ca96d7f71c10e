"""``streamapp schemas``: the schema registry from outside (operators and CI).

``check FILE`` asks whether a schema would be accepted under its subject's level and
lists every reason if not, without registering it (exit 0 compatible, 1 not); ``register
FILE`` registers it. A file's subject is its ``title`` (the repo's schemas are titled
with their type), else its file name without ``.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from streamapp.web.client import HttpError, request_json

TIMEOUT_S = 15.0


class RegistryError(Exception):
    """The registry answered an error (Confluent's code and message)."""


def subject_of(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    schema = json.loads(path.read_text())
    title = schema.get("title") if isinstance(schema, dict) else None
    return title if isinstance(title, str) and title else path.stem


def _call(method: str, url: str, body: Any = None) -> Any:
    try:
        status, doc = asyncio.run(request_json(method, url, TIMEOUT_S, body))
    except HttpError as exc:
        raise RegistryError(str(exc)) from None
    if status >= 400:
        code = doc.get("error_code", status) if isinstance(doc, dict) else status
        message = doc.get("message", doc) if isinstance(doc, dict) else doc
        raise RegistryError(f"{code}: {message}")
    return doc


def list_subjects(base: str) -> list[str]:
    return list(_call("GET", f"{base}/subjects"))


def show(base: str, subject: str, version: str = "latest") -> dict[str, Any]:
    return dict(_call("GET", f"{base}/subjects/{quote(subject, safe='')}/versions/{version}"))


def _body(path: Path) -> dict[str, Any]:
    return {"schema": path.read_text(), "schemaType": "JSON"}


def check(base: str, path: Path, subject: str) -> list[str]:
    """Every reason the schema would be refused (empty: compatible)."""
    url = f"{base}/compatibility/subjects/{quote(subject, safe='')}/versions/latest"
    answer = _call("POST", f"{url}?verbose=true", _body(path))
    return [] if answer.get("is_compatible") else list(answer.get("messages") or ["incompatible"])


def register(base: str, path: Path, subject: str) -> int:
    answer = _call("POST", f"{base}/subjects/{quote(subject, safe='')}/versions", _body(path))
    return int(answer["id"])
