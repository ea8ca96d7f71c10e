"""JSON Schema compatibility, decided the way Confluent Schema Registry does, with every reason.

The model is Confluent's ``JsonSchemaDiff``: a *writer* schema (whose data exists) is compared with
a *reader* schema (that must read it), every difference found is named with Confluent's
``Difference.Type`` and a JSON pointer, and the pair is compatible when every difference is one of
the compatible kinds. BACKWARD reads old data with the new schema (writer = an existing schema,
reader = the new one); FORWARD is the reverse; FULL is both. Content models follow Confluent's
documentation: an *open* object (``additionalProperties`` absent or true, no ``patternProperties``)
may have held any value under any name, so a reader may not add a property to it unless the
property's schema is empty; a *closed* one (``false``) held only its declared properties, so a
property may be added but not removed; a *partially open* one (a schema in ``additionalProperties``
or ``patternProperties``) may gain or lose a property when the covering schema is compatible with
it.

Pure: no Faust, no I/O. ``$ref`` is resolved within the schema's own document only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

__all__ = [
    "COMPATIBLE_CHANGES",
    "Difference",
    "Incompatibility",
    "InvalidSchemaError",
    "Level",
    "check",
    "check_detailed",
    "diff",
    "is_valid_schema",
]

Schema = Any
"""A JSON Schema as parsed JSON: a ``dict`` or a ``bool``."""


class Level(StrEnum):
    """Confluent's compatibility levels; the value is the wire name used by ``/config``."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


COMPATIBLE_CHANGES: frozenset[str] = frozenset(
    {
        # annotations never change what validates
        "ID_CHANGED",
        "DESCRIPTION_CHANGED",
        "TITLE_CHANGED",
        "DEFAULT_CHANGED",
        "SCHEMA_REMOVED",
        "TYPE_EXTENDED",
        # a reader that is more lenient than the writer
        "MAX_LENGTH_INCREASED",
        "MAX_LENGTH_REMOVED",
        "MIN_LENGTH_DECREASED",
        "MIN_LENGTH_REMOVED",
        "PATTERN_REMOVED",
        "MAXIMUM_INCREASED",
        "MAXIMUM_REMOVED",
        "MINIMUM_DECREASED",
        "MINIMUM_REMOVED",
        "EXCLUSIVE_MAXIMUM_INCREASED",
        "EXCLUSIVE_MAXIMUM_REMOVED",
        "EXCLUSIVE_MINIMUM_DECREASED",
        "EXCLUSIVE_MINIMUM_REMOVED",
        "MULTIPLE_OF_REDUCED",
        "MULTIPLE_OF_REMOVED",
        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
        "REQUIRED_ATTRIBUTE_REMOVED",
        "MAX_PROPERTIES_INCREASED",
        "MAX_PROPERTIES_REMOVED",
        "MIN_PROPERTIES_DECREASED",
        "MIN_PROPERTIES_REMOVED",
        "ADDITIONAL_PROPERTIES_ADDED",
        "ADDITIONAL_PROPERTIES_EXTENDED",
        # content models
        "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        # arrays
        "MAX_ITEMS_INCREASED",
        "MAX_ITEMS_REMOVED",
        "MIN_ITEMS_DECREASED",
        "MIN_ITEMS_REMOVED",
        "UNIQUE_ITEMS_REMOVED",
        "ADDITIONAL_ITEMS_ADDED",
        "ADDITIONAL_ITEMS_EXTENDED",
        "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
        "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        # enums and combinations
        "ENUM_ARRAY_EXTENDED",
        "COMBINED_TYPE_EXTENDED",
        "PRODUCT_TYPE_NARROWED",
        "SUM_TYPE_EXTENDED",
        "NOT_TYPE_NARROWED",
    }
)
"""Difference kinds a reader tolerates (Confluent's ``SchemaDiff.COMPATIBLE_CHANGES``)."""


@dataclass(frozen=True)
class Difference:
    """One difference between a writer and a reader schema, at a JSON pointer of the pair."""

    path: str
    type: str
    detail: str = ""

    @property
    def compatible(self) -> bool:
        return self.type in COMPATIBLE_CHANGES

    def __str__(self) -> str:
        return f"{self.path}: {self.type}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Incompatibility:
    """An incompatible difference, with the comparison it came from (for verbose answers)."""

    difference: Difference
    direction: Level  # Level.BACKWARD (new reads existing) or Level.FORWARD (existing reads new)
    existing_index: int  # index into ``existing`` (oldest first)
    existing_count: int
    qualified: bool  # the level compares more than one pair, so the reason names its pair

    def __str__(self) -> str:
        if not self.qualified:
            return str(self.difference)
        return (
            f"{self.difference} [{self.direction.value.lower()}, against existing schema "
            f"{self.existing_index + 1} of {self.existing_count}]"
        )


class InvalidSchemaError(ValueError):
    """The new schema is not a usable JSON Schema (Confluent answers 42201)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# --- public entry points -------------------------------------------------------------------------


def check(level: Level | str, new_schema: Schema, existing: Sequence[Schema]) -> list[str]:
    """Every reason ``new_schema`` may not be registered after ``existing`` (oldest first).

    Empty means compatible. Non-transitive levels compare with the latest schema only, as
    Confluent does; transitive ones with every schema. Raises ``InvalidSchemaError`` when the new
    schema is itself invalid, since that is a different answer (42201) from incompatible (409).
    """
    return [str(item) for item in check_detailed(level, new_schema, existing)]


def check_detailed(
    level: Level | str, new_schema: Schema, existing: Sequence[Schema]
) -> list[Incompatibility]:
    """Like :func:`check`, with the structured differences (for ``?verbose=true`` answers)."""
    level = Level(level)
    invalid = is_valid_schema(new_schema)
    if invalid:
        raise InvalidSchemaError(invalid)
    if level is Level.NONE or not existing:
        return []
    indexes = range(len(existing)) if level.transitive else [len(existing) - 1]
    directions = [
        d for d, on in ((Level.BACKWARD, level.backward), (Level.FORWARD, level.forward)) if on
    ]
    qualified = len(indexes) * len(directions) > 1
    found: list[Incompatibility] = []
    for index in indexes:
        for direction in directions:
            old = existing[index]
            writer, reader = (old, new_schema) if direction is Level.BACKWARD else (new_schema, old)
            found.extend(
                Incompatibility(d, direction, index, len(existing), qualified)
                for d in diff(writer, reader)
                if not d.compatible
            )
    return found


def diff(writer: Schema, reader: Schema) -> list[Difference]:
    """Every difference, compatible or not, met when ``reader`` reads data valid for ``writer``."""
    ctx = _Context(_Document(writer), _Document(reader), set())
    ctx.compare(writer, reader, "#")
    return ctx.diffs


# --- comparison ---------------------------------------------------------------------------------

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "id",
        "$comment",
        "$anchor",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
        "$vocabulary",
        "$dynamicAnchor",
    }
)
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_OBJECT_KEYWORDS = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "maxProperties",
        "minProperties",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
        "propertyNames",
    }
)
_ARRAY_KEYWORDS = frozenset(
    {"items", "prefixItems", "additionalItems", "maxItems", "minItems", "uniqueItems", "contains"}
)
_STRING_KEYWORDS = frozenset({"maxLength", "minLength", "pattern"})
_NUMBER_KEYWORDS = frozenset(
    {"maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf"}
)
_MAX_REF_CHAIN = 64


def _is_true(schema: Schema) -> bool:
    """True for a schema that accepts everything (``true``, ``{}`` or only annotations)."""
    return schema is True or (isinstance(schema, dict) and not (schema.keys() - _ANNOTATIONS))


def _shown(value: Any) -> str:
    return "absent" if value is None else str(value)


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _join(path: str, *tokens: str | int) -> str:
    return "/".join([path, *(_escape(str(t)) for t in tokens)])


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(node: Mapping[str, Any]) -> frozenset[str] | None:
    """The JSON types a node allows, or None when it does not restrict them.

    Like Confluent (everit), a schema without ``type`` takes the type its keywords imply.
    """
    declared = node.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    values = _enum_values(node)
    if values is not None:
        return frozenset(_type_of(v) for v in values)
    implied = {
        name
        for name, keywords in (
            ("object", _OBJECT_KEYWORDS),
            ("array", _ARRAY_KEYWORDS),
            ("string", _STRING_KEYWORDS),
            ("number", _NUMBER_KEYWORDS),
        )
        if keywords & node.keys()
    }
    return frozenset(implied) if len(implied) == 1 else None


def _covers(types: frozenset[str] | None, json_type: str) -> bool:
    if types is None:
        return True
    return json_type in types or (json_type == "integer" and "number" in types)


def _overlaps(types: frozenset[str] | None, json_type: str) -> bool:
    return _covers(types, json_type) or (
        types is not None and json_type == "number" and "integer" in types
    )


def _type_text(types: frozenset[str] | None) -> str:
    if types is None:
        return "any"
    return "|".join(sorted(types)) or "none"


def _enum_values(node: Mapping[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return values if isinstance(values, list) else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


class _Document:
    """Resolves in-document ``$ref`` pointers (``#``, ``#/definitions/x``, ``#/$defs/x``)."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, ref: str) -> tuple[bool, Schema]:
        if not ref.startswith("#"):
            return False, None
        node: Any = self.root
        pointer = unquote(ref[1:])
        if not pointer:
            return True, node
        if not pointer.startswith("/"):
            return False, None
        for raw in pointer[1:].split("/"):
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return False, None
        return True, node

    def deref(self, schema: Schema) -> tuple[Schema, str | None]:
        """Follow ``$ref`` chains; return the schema reached and the last reference followed.

        Keywords beside ``$ref`` (allowed since 2019-09) override the target's; an unresolvable
        reference reads as ``true`` here (``is_valid_schema`` reports it).
        """
        last: str | None = None
        for _ in range(_MAX_REF_CHAIN):
            if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
                return schema, last
            last = schema["$ref"]
            found, target = self.resolve(last)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if not found:
                target = True
            if not (siblings.keys() - _ANNOTATIONS):
                schema = target
            elif target is False:
                schema = False
            elif isinstance(target, dict):
                schema = {**target, **siblings}
            else:
                schema = siblings
        return True, last  # a chain of references that never reaches a schema accepts anything


@dataclass
class _Context:
    writer_doc: _Document
    reader_doc: _Document
    in_progress: set[tuple[object, object]]
    diffs: list[Difference] = field(default_factory=list)

    def sub(self) -> _Context:
        """A context whose differences are kept apart, to try a match before accepting it."""
        return _Context(self.writer_doc, self.reader_doc, self.in_progress)

    @property
    def compatible(self) -> bool:
        return all(d.compatible for d in self.diffs)

    def add(self, path: str, kind: str, detail: str = "") -> None:
        self.diffs.append(Difference(path, kind, detail))

    # -- dispatch ---------------------------------------------------------------------------------

    def compare(self, writer: Schema, reader: Schema, path: str) -> None:
        writer, writer_ref = self.writer_doc.deref(writer)
        reader, reader_ref = self.reader_doc.deref(reader)
        if writer_ref is None and reader_ref is None:
            self._compare(writer, reader, path)
            return
        # Recursive schemas: a pair met again while it is being compared is assumed compatible,
        # which is what Confluent's diff does (its Context keeps the pairs in progress).
        key = (writer_ref or id(writer), reader_ref or id(reader))
        if key in self.in_progress:
            return
        self.in_progress.add(key)
        try:
            self._compare(writer, reader, path)
        finally:
            self.in_progress.discard(key)

    def _compare(self, writer: Schema, reader: Schema, path: str) -> None:
        if isinstance(writer, dict) and isinstance(reader, dict):
            self._annotations(writer, reader, path)
        if _is_true(reader) or writer is False:
            return  # the reader takes anything; or the writer never wrote a value here
        if reader is False:
            self.add(path, "TYPE_CHANGED", "the reader accepts no value here")
            return
        if _is_true(writer):
            self.add(path, "TYPE_CHANGED", "any value -> a constrained schema")
            return
        if not (isinstance(writer, dict) and isinstance(reader, dict)):
            return  # invalid schemas (not objects or booleans): nothing to compare
        w_base, w_comb = _split(writer)
        r_base, r_comb = _split(reader)
        if not w_comb and not r_comb:
            self._compare_plain(writer, reader, path)
        elif _is_true(r_base) and len(r_comb) == 1 and _is_true(w_base) and len(w_comb) == 1:
            self._combined_both(w_comb, r_comb, path)
        elif _is_true(r_base) and len(r_comb) == 1 and not w_comb:
            self._combined_reader(writer, r_comb, path)
        elif _is_true(w_base) and len(w_comb) == 1 and not r_comb:
            self._combined_writer(w_comb, reader, path)
        else:
            # Keywords beside combinators: the plain parts compare as usual; a reader's
            # combinator must accept what the writer's plain part allowed; a writer's own
            # combinator only restricts the writer, so it costs a reader nothing.
            self._compare_plain(w_base, r_base, path)
            for keyword, subschemas in r_comb.items():
                if keyword in w_comb:
                    self._combined_both({keyword: w_comb[keyword]}, {keyword: subschemas}, path)
                else:
                    self._combined_reader(w_base, {keyword: subschemas}, path)

    def _annotations(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        for keyword, kind in (
            ("$id", "ID_CHANGED"),
            ("title", "TITLE_CHANGED"),
            ("description", "DESCRIPTION_CHANGED"),
            ("default", "DEFAULT_CHANGED"),
        ):
            if _json_key(writer.get(keyword)) != _json_key(reader.get(keyword)):
                self.add(path, kind)

    # -- combined schemas (allOf / anyOf / oneOf) -------------------------------------------------

    def _combined_reader(self, writer: Schema, r_comb: dict[str, list[Schema]], path: str) -> None:
        ((keyword, subschemas),) = r_comb.items()
        if keyword == "allOf":
            # The reader needs every part: each must read the writer's data (all reasons kept).
            for index, sub in enumerate(subschemas):
                self.compare(writer, sub, _join(path, keyword, index))
            return
        for sub in subschemas:
            trial = self.sub()
            trial.compare(writer, sub, path)
            if trial.compatible:
                self.diffs.extend(trial.diffs)
                if len(subschemas) > 1:
                    self.add(path, "SUM_TYPE_EXTENDED", f"the writer's schema became one {keyword}")
                return
        self.add(path, "TYPE_CHANGED", f"no subschema of the reader's {keyword} reads the data")

    def _combined_writer(self, w_comb: dict[str, list[Schema]], reader: Schema, path: str) -> None:
        ((keyword, subschemas),) = w_comb.items()
        if keyword != "allOf":
            # Data of any branch may have been written: the reader must read every branch.
            for index, sub in enumerate(subschemas):
                self.compare(sub, reader, _join(path, keyword, index))
            return
        for sub in subschemas:
            trial = self.sub()
            trial.compare(sub, reader, path)
            if trial.compatible:
                self.diffs.extend(trial.diffs)
                return
        self.add(path, "TYPE_CHANGED", "no part of the writer's allOf is read by the reader")

    def _combined_both(
        self, w_comb: dict[str, list[Schema]], r_comb: dict[str, list[Schema]], path: str
    ) -> None:
        ((w_kw, w_subs),) = w_comb.items()
        ((r_kw, r_subs),) = r_comb.items()
        if w_kw != r_kw:
            extended = (
                r_kw == "anyOf"
                or (r_kw == "oneOf" and len(w_subs) == 1)
                or (r_kw == "allOf" and len(w_subs) == 1 and len(r_subs) == 1)
            )
            if not extended:
                self.add(path, "COMBINED_TYPE_CHANGED", f"{w_kw} -> {r_kw}")
                return
            self.add(path, "COMBINED_TYPE_EXTENDED", f"{w_kw} -> {r_kw}")
        w_unique = list({_json_key(s): s for s in w_subs}.values())
        r_unique = list({_json_key(s): s for s in r_subs}.values())
        if len(w_unique) < len(r_unique):
            kind = "PRODUCT_TYPE_EXTENDED" if r_kw == "allOf" else "SUM_TYPE_EXTENDED"
            self.add(path, kind, f"{len(w_unique)} -> {len(r_unique)} subschemas")
        elif len(w_unique) > len(r_unique):
            kind = "PRODUCT_TYPE_NARROWED" if r_kw == "allOf" else "SUM_TYPE_NARROWED"
            self.add(path, kind, f"{len(w_unique)} -> {len(r_unique)} subschemas")
        # Subschemas may be reordered: pair them by a maximum matching of compatible pairs.
        edges: dict[int, dict[int, list[Difference]]] = {}
        for wi, w_sub in enumerate(w_unique):
            for ri, r_sub in enumerate(r_unique):
                trial = self.sub()
                trial.compare(w_sub, r_sub, _join(path, w_kw, wi))
                if trial.compatible:
                    edges.setdefault(wi, {})[ri] = trial.diffs
        matching = _maximum_matching(edges)
        for wi, ri in sorted(matching.items()):
            self.diffs.extend(edges[wi][ri])
        if len(matching) < min(len(w_unique), len(r_unique)):
            self.add(
                path,
                "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
                f"only {len(matching)} of {min(len(w_unique), len(r_unique))} subschemas match",
            )

    # -- plain schemas ----------------------------------------------------------------------------

    def _compare_plain(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        if _is_true(reader):
            return
        w_types, r_types = _types(writer), _types(reader)
        if r_types is not None:
            if w_types is not None and not any(_overlaps(r_types, t) for t in w_types):
                self.add(path, "TYPE_CHANGED", f"{_type_text(w_types)} -> {_type_text(r_types)}")
                return
            if w_types is None or any(not _covers(r_types, t) for t in w_types):
                self.add(path, "TYPE_NARROWED", f"{_type_text(w_types)} -> {_type_text(r_types)}")
        if w_types is not None and any(not _covers(w_types, t) for t in r_types or {"any"}):
            self.add(path, "TYPE_EXTENDED", f"{_type_text(w_types)} -> {_type_text(r_types)}")
        self._enum(writer, reader, path)
        self._not(writer, reader, path)
        both = (w_types, r_types)
        if all(_overlaps(t, "string") for t in both):
            self._string(writer, reader, path)
        if all(_overlaps(t, "number") for t in both):
            self._number(writer, reader, path)
        if all(_covers(t, "object") for t in both):
            self._object(writer, reader, path)
        if all(_covers(t, "array") for t in both):
            self._array(writer, reader, path)

    def _enum(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        w_values, r_values = _enum_values(writer), _enum_values(reader)
        if r_values is None:
            if w_values is not None:
                self.add(_join(path, "enum"), "ENUM_ARRAY_EXTENDED", "the reader has no enum")
            return
        r_keys = {_json_key(v) for v in r_values}
        if w_values is None:
            self.add(_join(path, "enum"), "ENUM_ARRAY_NARROWED", f"enum added: {sorted(r_keys)}")
            return
        w_keys = {_json_key(v) for v in w_values}
        if w_keys == r_keys:
            return
        added, removed = sorted(r_keys - w_keys), sorted(w_keys - r_keys)
        if not removed:
            self.add(_join(path, "enum"), "ENUM_ARRAY_EXTENDED", f"added {', '.join(added)}")
        elif not added:
            self.add(_join(path, "enum"), "ENUM_ARRAY_NARROWED", f"removed {', '.join(removed)}")
        else:
            self.add(
                _join(path, "enum"),
                "ENUM_ARRAY_CHANGED",
                f"added {', '.join(added)}; removed {', '.join(removed)}",
            )

    def _not(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        if "not" in reader and "not" in writer:
            # The reader refuses reader.not; that is safe when the writer refused at least as much.
            self.compare(reader["not"], writer["not"], _join(path, "not"))
        elif "not" in reader:
            self.add(_join(path, "not"), "NOT_TYPE_EXTENDED", "the reader refuses more values")
        elif "not" in writer:
            self.add(_join(path, "not"), "NOT_TYPE_NARROWED", "the reader refuses fewer values")

    def _bound(self, path: str, keyword: str, name: str, writer: Any, reader: Any) -> None:
        """Confluent's ADDED / REMOVED / INCREASED / DECREASED for a numeric keyword."""
        if writer == reader or (writer is None and reader is None):
            return
        if writer is None:
            kind = "ADDED"
        elif reader is None:
            kind = "REMOVED"
        else:
            kind = "INCREASED" if reader > writer else "DECREASED"
        self.add(_join(path, keyword), f"{name}_{kind}", f"{_shown(writer)} -> {_shown(reader)}")

    def _string(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        for keyword, name in (("maxLength", "MAX_LENGTH"), ("minLength", "MIN_LENGTH")):
            self._bound(
                path, keyword, name, _number(writer.get(keyword)), _number(reader.get(keyword))
            )
        w_pattern, r_pattern = writer.get("pattern"), reader.get("pattern")
        if w_pattern != r_pattern:
            kind = (
                "PATTERN_ADDED"
                if w_pattern is None
                else "PATTERN_REMOVED"
                if r_pattern is None
                else "PATTERN_CHANGED"
            )
            self.add(_join(path, "pattern"), kind, f"{w_pattern} -> {r_pattern}")

    def _number(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        w_limits, r_limits = _number_limits(writer), _number_limits(reader)
        for keyword, name in (
            ("maximum", "MAXIMUM"),
            ("minimum", "MINIMUM"),
            ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM"),
            ("exclusiveMinimum", "EXCLUSIVE_MINIMUM"),
        ):
            self._bound(path, keyword, name, w_limits.get(keyword), r_limits.get(keyword))
        w_multiple, r_multiple = (
            _decimal(writer.get("multipleOf")),
            _decimal(reader.get("multipleOf")),
        )
        if w_multiple == r_multiple:
            return
        if w_multiple is None:
            kind = "MULTIPLE_OF_ADDED"
        elif r_multiple is None:
            kind = "MULTIPLE_OF_REMOVED"
        elif r_multiple % w_multiple == 0:
            kind = "MULTIPLE_OF_EXPANDED"  # e.g. 2 -> 4: the reader refuses 2, 6, ...
        elif w_multiple % r_multiple == 0:
            kind = "MULTIPLE_OF_REDUCED"  # e.g. 4 -> 2: every multiple of 4 is one of 2
        else:
            kind = "MULTIPLE_OF_CHANGED"
        self.add(_join(path, "multipleOf"), kind, f"{w_multiple} -> {r_multiple}")

    # -- objects ----------------------------------------------------------------------------------

    def _object(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        w_props = _mapping(writer.get("properties"))
        r_props = _mapping(reader.get("properties"))
        w_required = set(_strings(writer.get("required")))
        r_required = set(_strings(reader.get("required")))
        for name in w_props:
            if name not in r_props:
                continue
            here = _join(path, "required", name)
            if name in w_required and name not in r_required:
                self.add(here, "REQUIRED_ATTRIBUTE_REMOVED")
            elif name in r_required and name not in w_required:
                if self._has_default(r_props[name]):
                    self.add(here, "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED")
                else:
                    self.add(here, "REQUIRED_ATTRIBUTE_ADDED", "old data may lack it")
        for name in sorted(r_required - w_required - r_props.keys()):
            self.add(
                _join(path, "required", name), "REQUIRED_ATTRIBUTE_ADDED", "old data may lack it"
            )
        for name in _union(w_props, r_props):
            here = _join(path, "properties", name)
            if name in w_props and name in r_props:
                self.compare(w_props[name], r_props[name], here)
            elif name in w_props:
                self._property_removed(w_props[name], reader, name, here)
            else:
                self._property_added(writer, r_props[name], name in r_required, name, here)
        self._pattern_properties(writer, reader, path)
        self._additional(writer, reader, path, "additionalProperties", "ADDITIONAL_PROPERTIES")
        for keyword, name in (
            ("maxProperties", "MAX_PROPERTIES"),
            ("minProperties", "MIN_PROPERTIES"),
        ):
            self._bound(
                path, keyword, name, _number(writer.get(keyword)), _number(reader.get(keyword))
            )

    def _has_default(self, schema: Schema) -> bool:
        resolved, _ = self.reader_doc.deref(schema)
        return isinstance(resolved, dict) and "default" in resolved

    def _property_removed(
        self, w_prop: Schema, reader: dict[str, Any], name: str, here: str
    ) -> None:
        # Only the reader's content model matters: where does the old property land now?
        if _object_model_open(reader):
            self.add(here, "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL")
            return
        covering = _covering_schema(reader, name)
        if covering is None:
            if self.writer_doc.deref(w_prop)[0] is False:
                self.add(here, "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
            else:
                self.add(here, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")
            return
        trial = self.sub()
        trial.compare(w_prop, covering, here)
        self.diffs.extend(trial.diffs)
        self.add(
            here,
            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if trial.compatible
            else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        )

    def _property_added(
        self, writer: dict[str, Any], r_prop: Schema, required: bool, name: str, here: str
    ) -> None:
        # Only the writer's content model matters: what could old data hold under this name?
        has_default = self._has_default(r_prop)
        if _object_model_open(writer):
            if _is_true(self.reader_doc.deref(r_prop)[0]):
                self.add(here, "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL")
            elif required and has_default:
                self.add(here, "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL")
            elif required:
                self.add(here, "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")
            else:
                self.add(here, "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")
            return
        covering = _covering_schema(writer, name)
        if covering is not None:
            trial = self.sub()
            trial.compare(covering, r_prop, here)
            self.diffs.extend(trial.diffs)
            self.add(
                here,
                "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            )
        if not required:
            self.add(here, "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL")
        elif has_default:
            self.add(here, "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL")
        else:
            self.add(here, "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "old data lacks it")

    def _pattern_properties(
        self, writer: dict[str, Any], reader: dict[str, Any], path: str
    ) -> None:
        """A pattern on one side only is compared with what the other side let through there."""
        w_patterns = _mapping(writer.get("patternProperties"))
        r_patterns = _mapping(reader.get("patternProperties"))
        for pattern in _union(w_patterns, r_patterns):
            w_side = w_patterns.get(pattern, _fallback(writer, "additionalProperties"))
            r_side = r_patterns.get(pattern, _fallback(reader, "additionalProperties"))
            self.compare(w_side, r_side, _join(path, "patternProperties", pattern))

    def _additional(
        self, writer: dict[str, Any], reader: dict[str, Any], path: str, keyword: str, name: str
    ) -> None:
        """Confluent's additionalProperties / additionalItems rules."""
        w_value, r_value = writer.get(keyword), reader.get(keyword)
        here = _join(path, keyword)
        w_permits, r_permits = w_value is not False, r_value is not False
        w_schema = None if w_value is None or _is_true(w_value) else w_value
        r_schema = None if r_value is None or _is_true(r_value) else r_value
        if w_permits != r_permits:
            if r_permits:
                self.add(here, f"{name}_ADDED", "the reader accepts other names now")
            else:
                self.add(here, f"{name}_REMOVED", "the reader refuses what it does not declare")
        elif w_permits and w_schema is None and r_schema is not None:
            self.add(here, f"{name}_NARROWED", "open -> a schema")
        elif w_permits and w_schema is not None and r_schema is None:
            self.add(here, f"{name}_EXTENDED", "a schema -> open")
        elif w_schema is not None and r_schema is not None:
            self.compare(w_schema, r_schema, here)

    # -- arrays -----------------------------------------------------------------------------------

    def _array(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        w_all, w_tuple, w_more, w_kw = _array_parts(writer)
        r_all, r_tuple, r_more, r_kw = _array_parts(reader)
        here = _join(path, "items")
        if w_all is not None and r_all is not None:
            self.compare(w_all, r_all, here)
        elif r_all is not None and not _is_true(r_all):
            self.add(here, "SCHEMA_ADDED", "the reader constrains the items")
        elif w_all is not None and r_all is None:
            self.add(here, "SCHEMA_REMOVED")
        tuple_kw = "prefixItems" if "prefixItems" in (w_kw, r_kw) else "items"
        w_items, r_items = w_tuple or [], r_tuple or []
        for index in range(max(len(w_items), len(r_items))):
            at = _join(path, tuple_kw, index)
            if index < len(w_items) and index < len(r_items):
                self.compare(w_items[index], r_items[index], at)
            elif index < len(w_items):
                self._item_removed(w_items[index], r_more, at)
            else:
                self._item_added(w_more, r_items[index], at)
        if w_tuple is not None or r_tuple is not None:
            w_wrap = {} if w_more is None else {"additionalItems": w_more}
            r_wrap = {} if r_more is None else {"additionalItems": r_more}
            self._additional(w_wrap, r_wrap, path, "additionalItems", "ADDITIONAL_ITEMS")
        for keyword, name in (("maxItems", "MAX_ITEMS"), ("minItems", "MIN_ITEMS")):
            self._bound(
                path, keyword, name, _number(writer.get(keyword)), _number(reader.get(keyword))
            )
        w_unique, r_unique = writer.get("uniqueItems") is True, reader.get("uniqueItems") is True
        if w_unique != r_unique:
            kind = "UNIQUE_ITEMS_ADDED" if r_unique else "UNIQUE_ITEMS_REMOVED"
            self.add(_join(path, "uniqueItems"), kind)

    def _item_removed(self, w_item: Schema, r_more: Schema, here: str) -> None:
        if r_more is None or _is_true(r_more):
            self.add(here, "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL")
        elif r_more is False:
            if self.writer_doc.deref(w_item)[0] is False:
                self.add(here, "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
            else:
                self.add(here, "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")
        else:
            trial = self.sub()
            trial.compare(w_item, r_more, here)
            self.diffs.extend(trial.diffs)
            self.add(
                here,
                "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            )

    def _item_added(self, w_more: Schema, r_item: Schema, here: str) -> None:
        if w_more is None or _is_true(w_more):
            if _is_true(self.reader_doc.deref(r_item)[0]):
                self.add(here, "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL")
            else:
                self.add(here, "ITEM_ADDED_TO_OPEN_CONTENT_MODEL")
        elif w_more is False:
            self.add(here, "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL")
        else:
            trial = self.sub()
            trial.compare(w_more, r_item, here)
            self.diffs.extend(trial.diffs)
            self.add(
                here,
                "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            )


def _split(node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Schema]]]:
    base = {k: v for k, v in node.items() if k not in _COMBINATORS}
    combined = {k: node[k] for k in _COMBINATORS if isinstance(node.get(k), list) and node[k]}
    return base, combined


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _union(first: Mapping[str, Any], second: Mapping[str, Any]) -> Iterator[str]:
    """Keys of both, in a stable order (first's, then second's new ones): reasons read in order."""
    yield from first
    yield from (k for k in second if k not in first)


def _object_model_open(node: Mapping[str, Any]) -> bool:
    additional = node.get("additionalProperties", True)
    return not node.get("patternProperties") and _is_true(additional)


def _fallback(node: Mapping[str, Any], keyword: str) -> Schema:
    value = node.get(keyword, True)
    return True if value is None else value


def _covering_schema(node: Mapping[str, Any], name: str) -> Schema | None:
    """The schema a partially open object applies to an undeclared name; None when closed."""
    for pattern, schema in _mapping(node.get("patternProperties")).items():
        try:
            if re.search(pattern, name):
                return schema
        except re.error:
            continue
    additional = _fallback(node, "additionalProperties")
    return None if additional is False else additional


def _array_parts(node: Mapping[str, Any]) -> tuple[Schema, list[Schema] | None, Schema, str]:
    """(schema of every item, tuple item schemas, schema of items past the tuple, tuple keyword).

    Draft 2020-12 spells a tuple ``prefixItems`` + ``items``; earlier drafts ``items`` (a list) +
    ``additionalItems``. Both read the same here.
    """
    items = node.get("items")
    prefix = node.get("prefixItems")
    if isinstance(prefix, list):
        return None, prefix, items, "prefixItems"
    if isinstance(items, list):
        return None, items, node.get("additionalItems"), "items"
    return items, None, None, "items"


def _number_limits(node: Mapping[str, Any]) -> dict[str, int | float]:
    """Numeric bounds; draft-4's boolean ``exclusiveMaximum: true`` reads as the 2020-12 form."""
    limits: dict[str, int | float] = {}
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        value, flag = _number(node.get(bound)), node.get(exclusive)
        if flag is True and value is not None:
            limits[exclusive] = value
        else:
            if value is not None:
                limits[bound] = value
            exclusive_value = _number(flag)
            if exclusive_value is not None:
                limits[exclusive] = exclusive_value
    return limits


def _decimal(value: Any) -> Decimal | None:
    number = _number(value)
    if number is None:
        return None
    try:
        return Decimal(str(number))
    except InvalidOperation:
        return None


def _maximum_matching(edges: Mapping[int, Mapping[int, object]]) -> dict[int, int]:
    """A maximum bipartite matching (Kuhn's augmenting paths): left index -> right index."""
    right_of: dict[int, int] = {}

    def augment(left: int, seen: set[int]) -> bool:
        for right in edges.get(left, {}):
            if right in seen:
                continue
            seen.add(right)
            if right not in right_of or augment(right_of[right], seen):
                right_of[right] = left
                return True
        return False

    for left in edges:
        augment(left, set())
    return {left: right for right, left in right_of.items()}


# --- validity (42201) ----------------------------------------------------------------------------

_TYPE_NAMES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
_SCHEMA_KEYWORDS = (
    "additionalProperties",
    "additionalItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_SCHEMA_MAP_KEYWORDS = (
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
)
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
_COUNT_KEYWORDS = (
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "maxContains",
    "minContains",
)


def is_valid_schema(schema: Schema) -> list[str]:
    """Every reason ``schema`` is not a JSON Schema this registry can use (empty when valid).

    Checked by hand (``jsonschema`` is not a dependency): the structure of the keywords this
    module reads, regular expressions that compile, and ``$ref`` targets that exist in the
    document (references to other documents are not supported).
    """
    reasons: list[str] = []
    document = _Document(schema)
    _validate(schema, "#", document, reasons)
    return reasons


def _validate(schema: Schema, path: str, document: _Document, reasons: list[str]) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        reasons.append(f"{path}: a schema must be a JSON object or a boolean")
        return
    _validate_type(schema, path, reasons)
    ref = schema.get("$ref")
    if "$ref" in schema:
        if not isinstance(ref, str):
            reasons.append(f"{_join(path, '$ref')}: must be a string")
        elif not document.resolve(ref)[0]:
            reasons.append(f"{_join(path, '$ref')}: unresolvable reference {ref!r}")
    for keyword in _COUNT_KEYWORDS:
        if keyword in schema:
            value = schema[keyword]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                reasons.append(f"{_join(path, keyword)}: must be a non-negative integer")
    for keyword in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        draft4_flag = keyword.startswith("exclusive") and isinstance(schema.get(keyword), bool)
        if keyword in schema and _number(schema[keyword]) is None and not draft4_flag:
            reasons.append(f"{_join(path, keyword)}: must be a number")
    if "multipleOf" in schema:
        value = _number(schema["multipleOf"])
        if value is None or value <= 0:
            reasons.append(f"{_join(path, 'multipleOf')}: must be a number greater than 0")
    if "pattern" in schema:
        _validate_regex(schema["pattern"], _join(path, "pattern"), reasons)
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            reasons.append(f"{_join(path, 'required')}: must be an array of strings")
        elif len(set(required)) != len(required):
            reasons.append(f"{_join(path, 'required')}: names must be unique")
    if "enum" in schema and not isinstance(schema["enum"], list):
        reasons.append(f"{_join(path, 'enum')}: must be an array")
    if "uniqueItems" in schema and not isinstance(schema["uniqueItems"], bool):
        reasons.append(f"{_join(path, 'uniqueItems')}: must be a boolean")
    for keyword in _SCHEMA_KEYWORDS:
        if keyword in schema:
            _validate(schema[keyword], _join(path, keyword), document, reasons)
    for keyword in _SCHEMA_MAP_KEYWORDS:
        if keyword not in schema:
            continue
        members = schema[keyword]
        if not isinstance(members, dict):
            reasons.append(f"{_join(path, keyword)}: must be an object of schemas")
            continue
        for name, sub in members.items():
            if keyword == "patternProperties":
                _validate_regex(name, _join(path, keyword, name), reasons)
            _validate(sub, _join(path, keyword, name), document, reasons)
    for keyword in _SCHEMA_LIST_KEYWORDS:
        if keyword not in schema:
            continue
        members = schema[keyword]
        if not isinstance(members, list) or (keyword != "prefixItems" and not members):
            reasons.append(f"{_join(path, keyword)}: must be a non-empty array of schemas")
            continue
        for index, sub in enumerate(members):
            _validate(sub, _join(path, keyword, index), document, reasons)
    if "items" in schema:
        items = schema["items"]
        if isinstance(items, list):
            for index, sub in enumerate(items):
                _validate(sub, _join(path, "items", index), document, reasons)
        else:
            _validate(items, _join(path, "items"), document, reasons)


def _validate_type(schema: Mapping[str, Any], path: str, reasons: list[str]) -> None:
    if "type" not in schema:
        return
    declared = schema["type"]
    names = declared if isinstance(declared, list) else [declared]
    if isinstance(declared, list) and (
        not declared or len(set(map(str, declared))) != len(declared)
    ):
        reasons.append(f"{_join(path, 'type')}: a type array must be non-empty and unique")
    for name in names:
        if not isinstance(name, str) or name not in _TYPE_NAMES:
            reasons.append(f"{_join(path, 'type')}: unknown type {name!r}")


def _validate_regex(pattern: Any, path: str, reasons: list[str]) -> None:
    if not isinstance(pattern, str):
        reasons.append(f"{path}: a pattern must be a string")
        return
    try:
        re.compile(pattern)
    except re.error as error:
        reasons.append(f"{path}: invalid regular expression ({error})")
