"""Validators of the schema versions this worker was deployed with (jsonschema-rs).

A worker validates with the version of each subject that its own ``config/schemas/``
file registered, not with whatever is latest: a newer version registered by someone
else must not change what a running deployment accepts or writes. Each version is
compiled once (jsonschema-rs: ~100x the ``jsonschema`` package, every error listed;
bench/validators.py).

Deprecation is asked live (``is_deprecated(subject, version)``, in the app a look-up in
the registry's fold): a version deprecated on any worker reaches every worker's
validators as soon as its fold has read the request, with no snapshot to refresh.

``enabled=False`` (the setting ``schema_validation``) makes every document pass, here in
the one object every agent and the order handler ask, so that a worker can be measured
with and without validation (bench/eventstore). Versions, registration and deprecation
are unaffected: they are the registry's, not validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema_rs

#: At most this many reasons in an error message (a record can break a schema 1000 ways).
MAX_REASONS = 10


class Validators:
    """Compiled validators by subject, with the registered version each stands for."""

    def __init__(
        self, is_deprecated: Callable[[str, int], bool] | None = None, *, enabled: bool = True
    ) -> None:
        self._compiled: dict[str, Any] = {}
        self._versions: dict[str, int] = {}
        self._is_deprecated = is_deprecated
        self.enabled = enabled

    def load(self, subject: str, version: int, schema: Mapping[str, Any]) -> None:
        if self._versions.get(subject) == version:
            return
        self._compiled[subject] = jsonschema_rs.validator_for(dict(schema))
        self._versions[subject] = version

    def version(self, subject: str) -> int | None:
        """The registered version this worker writes `subject` with (its schemaVersion)."""
        return self._versions.get(subject)

    def deprecated(self, subject: str) -> bool:
        """Is the version this worker writes `subject` with deprecated (new writes refuse
        it)? Asked live, so a deprecation registered on another worker counts at once."""
        version = self._versions.get(subject)
        if version is None or self._is_deprecated is None:
            return False
        return self._is_deprecated(subject, version)

    def errors(self, subject: str, document: Any) -> list[str]:
        """Why `document` breaks its subject's schema (none: it is valid, or validation
        is off)."""
        if not self.enabled:
            return []
        validator = self._compiled.get(subject)
        if validator is None:
            return [f"no schema is registered for {subject!r}"]
        if validator.is_valid(document):  # the common case, without building errors
            return []
        found = []
        for error in validator.iter_errors(document):
            path = "/".join(str(p) for p in error.instance_path)
            found.append(f"/{path}: {error.message}")
            if len(found) == MAX_REASONS:
                found.append("…")
                break
        return found
