"""Table of JSON Schema compatibility cases, each citing the documented rule it encodes.

Sources: Confluent's docs ("Schema Evolution and Compatibility": BACKWARD = the new schema reads
data of the old, FORWARD = the old reads data of the new, FULL = both, *_TRANSITIVE = against every
version), Robert Yokota's "Understanding JSON Schema Compatibility" (open / closed / partially
open content models), and the ``Difference.Type`` names and compatible set of Confluent's
``json-schema-provider`` diff (``SchemaDiff.COMPATIBLE_CHANGES``). An expected list holds every
incompatible difference as ``path: TYPE``: the check must return all of them, not the first.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from streamapp.registry.compatibility import (
    InvalidSchemaError,
    Level,
    check,
    check_detailed,
    diff,
    is_valid_schema,
)

B, BT = Level.BACKWARD, Level.BACKWARD_TRANSITIVE
F, FT = Level.FORWARD, Level.FORWARD_TRANSITIVE
FULL, FULLT = Level.FULL, Level.FULL_TRANSITIVE

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}


def obj(additional: Any = None, required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    """An object schema; ``additional`` None leaves ``additionalProperties`` out (open model)."""
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if additional is not None:
        schema["additionalProperties"] = additional
    return schema


def closed(**props: Any) -> dict[str, Any]:
    return obj(False, **props)


def field(**keywords: Any) -> dict[str, Any]:
    """``{"type": "object", "properties": {"f": {...keywords}}}``: one constrained field."""
    return obj(False, f=keywords)


def array(**keywords: Any) -> dict[str, Any]:
    return obj(False, xs={"type": "array", **keywords})


TREE: dict[str, Any] = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"v": INT, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        }
    },
    "$ref": "#/$defs/node",
}
TREE_NUMBER = copy.deepcopy(TREE)
TREE_NUMBER["$defs"]["node"]["properties"]["v"] = NUM

V1_STRING_TOTAL = closed(total=STR)
V2_INTEGER_TOTAL = closed(total=INT)

# (level, existing oldest first, new schema, every expected incompatible "path: TYPE")
CASES = [
    # --- levels ------------------------------------------------------------------------------
    # NONE: no compatibility check at all (Confluent docs, compatibility types).
    pytest.param(Level.NONE, [closed(a=STR)], closed(a=INT), [], id="none-allows-any-change"),
    # A first version has nothing to be compatible with.
    pytest.param(B, [], closed(a=STR), [], id="no-existing-version-is-compatible"),
    pytest.param(FULLT, [closed(a=STR)], closed(a=STR), [], id="identical-schema-full-transitive"),
    # Annotations (title/description/default) never change validity: *_CHANGED are compatible.
    pytest.param(
        FULL,
        [closed(a={"type": "string", "description": "x", "default": "a"})],
        {**closed(a={"type": "string", "description": "y", "default": "b"}), "title": "T"},
        [],
        id="annotations-changed-are-compatible-DESCRIPTION_DEFAULT_TITLE_CHANGED",
    ),
    # --- open content model (additionalProperties absent or true) ------------------------------
    # Yokota: old data of an open model may hold any value under the new name, so BACKWARD
    # refuses a property added to an open model, optional or not.
    pytest.param(
        B,
        [obj(a=STR)],
        obj(a=STR, b=STR),
        ["#/properties/b: OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"],
        id="open-add-optional-backward-OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [obj(True, a=STR)],
        obj(True, ("b",), a=STR, b=STR),
        ["#/properties/b: REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"],
        id="open-add-required-backward-REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [obj(a=STR)],
        obj(None, ("b",), a=STR, b={"type": "string", "default": "x"}),
        ["#/properties/b: REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"],
        id="open-add-required-with-default-backward-still-incompatible",
    ),
    # The one property an open model can gain backward: one whose schema is empty (accepts all).
    pytest.param(
        B,
        [obj(a=STR)],
        obj(a=STR, b={}),
        [],
        id="open-add-empty-schema-backward-PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    ),
    # Yokota: FORWARD may add to an open model (the old open reader ignores the new property).
    pytest.param(F, [obj(a=STR)], obj(a=STR, b=STR), [], id="open-add-optional-forward-compatible"),
    # Removing from an open model is BACKWARD-safe: the new open reader accepts it as extra.
    pytest.param(
        B,
        [obj(a=STR, b=INT)],
        obj(a=STR),
        [],
        id="open-remove-backward-PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    ),
    # ... and FORWARD-unsafe: new data may hold anything under "b", the old reader wants integer.
    pytest.param(
        F,
        [obj(a=STR, b=INT)],
        obj(a=STR),
        ["#/properties/b: OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"],
        id="open-remove-forward-incompatible",
    ),
    # --- closed content model (additionalProperties false) ------------------------------------
    # Yokota: BACKWARD may add an optional property to a closed model (old data never had it).
    pytest.param(
        B,
        [closed(a=STR)],
        closed(a=STR, b=INT),
        [],
        id="closed-add-optional-backward-OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    ),
    # A required property without a default: old data lacks it.
    pytest.param(
        B,
        [closed(a=STR)],
        obj(False, ("b",), a=STR, b=INT),
        ["#/properties/b: REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"],
        id="closed-add-required-backward-REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    ),
    # ... with a default, the reader fills it in: compatible.
    pytest.param(
        B,
        [closed(a=STR)],
        obj(False, ("b",), a=STR, b={"type": "integer", "default": 0}),
        [],
        id="closed-add-required-with-default-backward-REQUIRED_PROPERTY_WITH_DEFAULT_ADDED",
    ),
    # Removing from a closed model: the new closed reader refuses old data that has it.
    pytest.param(
        B,
        [closed(a=STR, b=INT)],
        closed(a=STR),
        ["#/properties/b: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"],
        id="closed-remove-backward-PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    # Yokota: FORWARD may remove an optional property from a closed model, not add one.
    pytest.param(
        F, [closed(a=STR, b=INT)], closed(a=STR), [], id="closed-remove-optional-forward-compatible"
    ),
    pytest.param(
        F,
        [closed(a=STR)],
        closed(a=STR, b=INT),
        ["#/properties/b: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"],
        id="closed-add-forward-old-closed-reader-refuses-it",
    ),
    # A property whose schema was false never appeared in data: removing it is safe.
    pytest.param(
        B,
        [closed(a=STR, b=False)],
        closed(a=STR),
        [],
        id="closed-remove-false-property-PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    # --- partially open content model (additionalProperties or patternProperties schemas) -------
    # Yokota: a property may be added when the old model's covering schema is compatible with it.
    pytest.param(
        B,
        [obj(STR, a=STR)],
        obj(STR, a=STR, b={"type": "string", "maxLength": 10}),
        [
            "#/properties/b/maxLength: MAX_LENGTH_ADDED",
            "#/properties/b: PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ],
        id="partial-add-partly-covered-PROPERTY_ADDED_NOT_COVERED-reports-the-cause",
    ),
    pytest.param(
        B,
        [obj(STR, a=STR)],
        obj(STR, a=STR, b=STR),
        [],
        id="partial-add-covered-PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [obj(STR, a=STR)],
        obj(STR, a=STR, b=INT),
        [
            "#/properties/b: TYPE_CHANGED",
            "#/properties/b: PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ],
        id="partial-add-not-covered-PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [obj(STR, a=STR, b=STR)],
        obj(STR, a=STR),
        [],
        id="partial-remove-covered-PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [obj(STR, a=STR, b=INT)],
        obj(STR, a=STR),
        [
            "#/properties/b: TYPE_CHANGED",
            "#/properties/b: PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ],
        id="partial-remove-not-covered-PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    # Yokota's recipe for FULL: a partially open model whose schema covers the optional property.
    pytest.param(
        FULL,
        [obj(STR, a=STR)],
        obj(STR, a=STR, b=STR),
        [],
        id="partial-add-covered-optional-is-full-compatible",
    ),
    # patternProperties: the matching pattern's schema is the one that covers the name.
    pytest.param(
        B,
        [{**closed(a=STR), "patternProperties": {"^x_": STR}}],
        {**closed(a=STR, x_b=STR), "patternProperties": {"^x_": STR}},
        [],
        id="pattern-properties-add-covered-by-pattern",
    ),
    pytest.param(
        B,
        [{**closed(a=STR), "patternProperties": {"^x_": STR}}],
        {**closed(a=STR, x_b=INT), "patternProperties": {"^x_": STR}},
        [
            "#/properties/x_b: TYPE_CHANGED",
            "#/properties/x_b: PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ],
        id="pattern-properties-add-not-covered-by-pattern",
    ),
    # --- additionalProperties itself (Confluent ADDITIONAL_PROPERTIES_*) -------------------------
    pytest.param(
        B,
        [obj(True, a=STR)],
        obj(False, a=STR),
        ["#/additionalProperties: ADDITIONAL_PROPERTIES_REMOVED"],
        id="additional-properties-true-to-false-backward-ADDITIONAL_PROPERTIES_REMOVED",
    ),
    pytest.param(
        B,
        [obj(False, a=STR)],
        obj(True, a=STR),
        [],
        id="additional-properties-false-to-true-backward-ADDITIONAL_PROPERTIES_ADDED",
    ),
    pytest.param(
        B,
        [obj(None, a=STR)],
        obj(INT, a=STR),
        ["#/additionalProperties: ADDITIONAL_PROPERTIES_NARROWED"],
        id="additional-properties-open-to-schema-ADDITIONAL_PROPERTIES_NARROWED",
    ),
    # --- required on an existing property ----------------------------------------------------
    pytest.param(
        B,
        [closed(a=STR)],
        obj(False, ("a",), a=STR),
        ["#/required/a: REQUIRED_ATTRIBUTE_ADDED"],
        id="required-added-backward-REQUIRED_ATTRIBUTE_ADDED",
    ),
    pytest.param(
        B,
        [closed(a=STR)],
        obj(False, ("a",), a={"type": "string", "default": ""}),
        [],
        id="required-with-default-added-REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    ),
    pytest.param(
        B,
        [obj(False, ("a",), a=STR)],
        closed(a=STR),
        [],
        id="required-removed-backward-REQUIRED_ATTRIBUTE_REMOVED",
    ),
    pytest.param(
        F,
        [obj(False, ("a",), a=STR)],
        closed(a=STR),
        ["#/required/a: REQUIRED_ATTRIBUTE_ADDED"],
        id="required-removed-forward-old-reader-requires-it",
    ),
    # --- types -----------------------------------------------------------------------------------
    # integer -> number widens (every integer is a number): TYPE_EXTENDED is compatible.
    pytest.param(
        B, [field(type="integer")], field(type="number"), [], id="integer-to-number-TYPE_EXTENDED"
    ),
    pytest.param(
        B,
        [closed(total=NUM)],
        closed(total=INT),
        ["#/properties/total: TYPE_NARROWED"],
        id="number-to-integer-backward-TYPE_NARROWED",
    ),
    pytest.param(
        F,
        [field(type="integer")],
        field(type="number"),
        ["#/properties/f: TYPE_NARROWED"],
        id="integer-to-number-forward-TYPE_NARROWED",
    ),
    pytest.param(
        B,
        [field(type="string")],
        field(type="integer"),
        ["#/properties/f: TYPE_CHANGED"],
        id="string-to-integer-TYPE_CHANGED",
    ),
    pytest.param(
        B,
        [field(type="string")],
        field(type=["string", "null"]),
        [],
        id="type-array-member-added-TYPE_EXTENDED",
    ),
    pytest.param(
        B,
        [field(type=["string", "null"])],
        field(type="string"),
        ["#/properties/f: TYPE_NARROWED"],
        id="type-array-member-removed-TYPE_NARROWED",
    ),
    pytest.param(
        B,
        [field(type="string")],
        field(anyOf=[STR, {"type": "null"}]),
        [],
        id="type-into-anyOf-union-SUM_TYPE_EXTENDED",
    ),
    # --- enums -----------------------------------------------------------------------------------
    pytest.param(
        B,
        [field(type="string", enum=["a", "b"])],
        field(type="string", enum=["a", "b", "c"]),
        [],
        id="enum-member-added-backward-ENUM_ARRAY_EXTENDED",
    ),
    pytest.param(
        B,
        [field(type="string", enum=["a", "b"])],
        field(type="string", enum=["a"]),
        ["#/properties/f/enum: ENUM_ARRAY_NARROWED"],
        id="enum-member-removed-backward-ENUM_ARRAY_NARROWED",
    ),
    pytest.param(
        F,
        [field(type="string", enum=["a", "b"])],
        field(type="string", enum=["a", "b", "c"]),
        ["#/properties/f/enum: ENUM_ARRAY_NARROWED"],
        id="enum-member-added-forward-ENUM_ARRAY_NARROWED",
    ),
    pytest.param(
        B,
        [field(enum=["a", "b"])],
        field(enum=["a", "c"]),
        ["#/properties/f/enum: ENUM_ARRAY_CHANGED"],
        id="enum-member-replaced-ENUM_ARRAY_CHANGED",
    ),
    # --- string constraints (a stricter reader refuses old data) ----------------------------------
    pytest.param(
        B,
        [field(type="string", maxLength=10)],
        field(type="string", maxLength=5),
        ["#/properties/f/maxLength: MAX_LENGTH_DECREASED"],
        id="max-length-decreased-MAX_LENGTH_DECREASED",
    ),
    pytest.param(
        B,
        [field(type="string", maxLength=5)],
        field(type="string", maxLength=10),
        [],
        id="max-length-increased-MAX_LENGTH_INCREASED",
    ),
    pytest.param(
        B,
        [field(type="string")],
        field(type="string", minLength=1),
        ["#/properties/f/minLength: MIN_LENGTH_ADDED"],
        id="min-length-added-MIN_LENGTH_ADDED",
    ),
    pytest.param(
        F,
        [field(type="string")],
        field(type="string", minLength=1),
        [],
        id="min-length-added-forward-MIN_LENGTH_REMOVED",
    ),
    pytest.param(
        B,
        [field(type="string")],
        field(type="string", pattern="^[a-z]+$"),
        ["#/properties/f/pattern: PATTERN_ADDED"],
        id="pattern-added-PATTERN_ADDED",
    ),
    pytest.param(
        B,
        [field(type="string", pattern="^a")],
        field(type="string"),
        [],
        id="pattern-removed-PATTERN_REMOVED",
    ),
    pytest.param(
        B,
        [field(type="string", pattern="^a")],
        field(type="string", pattern="^b"),
        ["#/properties/f/pattern: PATTERN_CHANGED"],
        id="pattern-changed-PATTERN_CHANGED",
    ),
    # --- number constraints ----------------------------------------------------------------------
    pytest.param(
        B,
        [field(type="number", minimum=0, maximum=100)],
        field(type="number", minimum=10),
        ["#/properties/f/minimum: MINIMUM_INCREASED"],
        id="minimum-increased-MINIMUM_INCREASED-maximum-removed-compatible",
    ),
    pytest.param(
        B,
        [field(type="number")],
        field(type="number", exclusiveMaximum=100),
        ["#/properties/f/exclusiveMaximum: EXCLUSIVE_MAXIMUM_ADDED"],
        id="exclusive-maximum-added-EXCLUSIVE_MAXIMUM_ADDED",
    ),
    pytest.param(
        B,
        [field(type="number", exclusiveMinimum=5)],
        field(type="number", exclusiveMinimum=0),
        [],
        id="exclusive-minimum-decreased-EXCLUSIVE_MINIMUM_DECREASED",
    ),
    pytest.param(
        B,
        [field(type="integer", multipleOf=2)],
        field(type="integer", multipleOf=4),
        ["#/properties/f/multipleOf: MULTIPLE_OF_EXPANDED"],
        id="multiple-of-2-to-4-MULTIPLE_OF_EXPANDED",
    ),
    pytest.param(
        B,
        [field(type="number", multipleOf=0.5)],
        field(type="number", multipleOf=0.25),
        [],
        id="multiple-of-0.5-to-0.25-MULTIPLE_OF_REDUCED",
    ),
    # --- arrays ----------------------------------------------------------------------------------
    pytest.param(
        B,
        [array(items=STR)],
        array(items=INT),
        ["#/properties/xs/items: TYPE_CHANGED"],
        id="array-items-schema-changed-recurses-into-items",
    ),
    pytest.param(
        B,
        [array(items=STR, maxItems=10, minItems=1)],
        array(items=STR, maxItems=5),
        ["#/properties/xs/maxItems: MAX_ITEMS_DECREASED"],
        id="array-max-items-decreased-MAX_ITEMS_DECREASED-min-items-removed-compatible",
    ),
    pytest.param(
        B,
        [array(items=STR)],
        array(items=STR, uniqueItems=True),
        ["#/properties/xs/uniqueItems: UNIQUE_ITEMS_ADDED"],
        id="array-unique-items-added-UNIQUE_ITEMS_ADDED",
    ),
    # Tuples: the array's own content model, like objects (Confluent ITEM_* differences).
    pytest.param(
        B,
        [array(items=[STR], additionalItems=False)],
        array(items=[STR, INT], additionalItems=False),
        [],
        id="tuple-item-added-to-closed-ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [array(prefixItems=[STR])],
        array(prefixItems=[STR, INT]),
        ["#/properties/xs/prefixItems/1: ITEM_ADDED_TO_OPEN_CONTENT_MODEL"],
        id="tuple-item-added-to-open-ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
    ),
    pytest.param(
        B,
        [array(prefixItems=[STR, INT])],
        array(prefixItems=[STR], items=False),
        [
            "#/properties/xs/prefixItems/1: ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            "#/properties/xs/additionalItems: ADDITIONAL_ITEMS_REMOVED",
        ],
        id="tuple-closed-and-item-removed-ITEM_REMOVED_FROM_CLOSED-ADDITIONAL_ITEMS_REMOVED",
    ),
    # --- nested objects: rules apply recursively and name the nested path ----------------------
    pytest.param(
        B,
        [closed(customer=closed(email=STR, age=INT))],
        closed(customer=obj(False, ("phone",), email=INT, age=NUM, phone=STR)),
        [
            "#/properties/customer/properties/email: TYPE_CHANGED",
            "#/properties/customer/properties/phone: "
            "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        ],
        id="nested-object-every-reason-with-its-path",
    ),
    # --- $ref within the document ----------------------------------------------------------------
    pytest.param(
        B,
        [{**closed(amount={"$ref": "#/definitions/money"}), "definitions": {"money": NUM}}],
        {**closed(amount={"$ref": "#/definitions/money"}), "definitions": {"money": INT}},
        ["#/properties/amount: TYPE_NARROWED"],
        id="ref-definitions-resolved-and-compared",
    ),
    pytest.param(
        B,
        [closed(amount=NUM)],
        {**closed(amount={"$ref": "#/$defs/money"}), "$defs": {"money": NUM}},
        [],
        id="ref-defs-inlined-vs-referenced-is-identical",
    ),
    # Recursive schemas terminate (a pair met again is assumed compatible, as Confluent does).
    pytest.param(FULL, [TREE], TREE, [], id="ref-recursive-identical-terminates"),
    pytest.param(
        F,
        [TREE],
        TREE_NUMBER,
        ["#/properties/v: TYPE_NARROWED"],
        id="ref-recursive-change-found-forward",
    ),
    # --- oneOf / anyOf / allOf ----------------------------------------------------------------
    pytest.param(
        B,
        [field(anyOf=[STR, INT])],
        field(anyOf=[STR, INT, {"type": "null"}]),
        [],
        id="anyOf-branch-added-backward-SUM_TYPE_EXTENDED",
    ),
    pytest.param(
        B,
        [field(anyOf=[STR, INT])],
        field(anyOf=[INT]),
        ["#/properties/f: SUM_TYPE_NARROWED"],
        id="anyOf-branch-removed-backward-SUM_TYPE_NARROWED",
    ),
    pytest.param(
        B,
        [field(oneOf=[STR, INT])],
        field(anyOf=[INT, STR]),
        [],
        id="oneOf-to-anyOf-reordered-COMBINED_TYPE_EXTENDED",
    ),
    pytest.param(
        B,
        [field(anyOf=[{"minimum": 0}, {"maximum": 9}])],
        field(allOf=[{"minimum": 0}, {"maximum": 9}]),
        ["#/properties/f: COMBINED_TYPE_CHANGED"],
        id="anyOf-to-allOf-COMBINED_TYPE_CHANGED",
    ),
    # --- transitive levels compare with every version, others with the latest only ----------------
    pytest.param(
        B,
        [V1_STRING_TOTAL, V2_INTEGER_TOTAL],
        closed(total=NUM),
        [],
        id="backward-compares-latest-only",
    ),
    pytest.param(
        BT,
        [V1_STRING_TOTAL, V2_INTEGER_TOTAL],
        closed(total=NUM),
        ["#/properties/total: TYPE_CHANGED"],
        id="backward-transitive-compares-every-version",
    ),
    pytest.param(
        FT,
        [V1_STRING_TOTAL, V2_INTEGER_TOTAL],
        closed(total=NUM),
        ["#/properties/total: TYPE_CHANGED", "#/properties/total: TYPE_NARROWED"],
        id="forward-transitive-old-readers-of-new-data",
    ),
    # FULL = BACKWARD and FORWARD: adding an optional property to a closed model fails forward.
    pytest.param(
        FULL,
        [closed(a=STR)],
        closed(a=STR, b=INT),
        ["#/properties/b: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"],
        id="full-closed-add-optional-fails-forward",
    ),
    pytest.param(
        FULLT,
        [closed(total=INT), closed(total=NUM)],
        closed(total=NUM),
        ["#/properties/total: TYPE_NARROWED"],
        id="full-transitive-every-version-both-directions",
    ),
]


def _core(reason: str) -> str:
    """``path: TYPE`` of a reason, without its detail and its pair qualifier."""
    return reason.split(" (")[0].split(" [")[0]


@pytest.mark.parametrize(("level", "existing", "new", "expected"), CASES)
def test_compatibility_rule(
    level: Level, existing: list[dict[str, Any]], new: dict[str, Any], expected: list[str]
) -> None:
    reasons = check(level, new, existing)
    assert sorted(_core(r) for r in reasons) == sorted(expected), reasons


def test_the_table_covers_every_level_and_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert {case.values[0] for case in CASES} == set(Level)


def test_every_reason_is_returned_not_the_first() -> None:
    old = closed(a=STR, b=INT, c={"type": "string", "maxLength": 5})
    new = obj(False, ("d",), a=INT, c={"type": "string", "maxLength": 3}, d=STR)
    assert sorted(map(_core, check(B, new, [old]))) == [
        "#/properties/a: TYPE_CHANGED",
        "#/properties/b: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/properties/c/maxLength: MAX_LENGTH_DECREASED",
        "#/properties/d: REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    ]


def test_reasons_read_as_path_type_and_detail() -> None:
    assert check(B, closed(total=INT), [closed(total=NUM)]) == [
        "#/properties/total: TYPE_NARROWED (number -> integer)"
    ]


def test_a_level_comparing_several_pairs_names_the_pair_of_each_reason() -> None:
    reasons = check_detailed(FULLT, closed(total=NUM), [closed(total=INT), closed(total=NUM)])
    assert [(r.direction, r.existing_index) for r in reasons] == [(F, 0)]
    assert str(reasons[0]).endswith("[forward, against existing schema 1 of 2]")


def test_diff_lists_compatible_differences_too() -> None:
    kinds = {d.type for d in diff(closed(a=STR), closed(a=STR, b=INT))}
    assert kinds == {"OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"}


def test_an_invalid_new_schema_is_not_checked_but_refused() -> None:
    with pytest.raises(InvalidSchemaError) as raised:
        check(B, {"type": "text"}, [closed(a=STR)])
    assert raised.value.reasons == ["#/type: unknown type 'text'"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(TREE, [], id="valid-recursive-defs"),
        pytest.param(True, [], id="boolean-schema-is-valid"),
        pytest.param([], ["#: a schema must be a JSON object or a boolean"], id="not-an-object"),
        pytest.param(
            closed(a={"$ref": "#/$defs/missing"}),
            ["#/properties/a/$ref: unresolvable reference '#/$defs/missing'"],
            id="unresolvable-ref",
        ),
        pytest.param(
            closed(a={"$ref": "other.json#/x"}),
            ["#/properties/a/$ref: unresolvable reference 'other.json#/x'"],
            id="external-ref-unsupported",
        ),
        pytest.param(
            {"type": ["string", "string"]},
            ["#/type: a type array must be non-empty and unique"],
            id="duplicate-type",
        ),
        pytest.param(
            field(type="string", pattern="(", minLength=-1),
            [
                "#/properties/f/minLength: must be a non-negative integer",
                "#/properties/f/pattern: invalid regular expression (missing ), "
                "unterminated subpattern at position 0)",
            ],
            id="every-invalid-keyword-is-reported",
        ),
        pytest.param(
            {"type": "object", "required": "a", "properties": []},
            [
                "#/required: must be an array of strings",
                "#/properties: must be an object of schemas",
            ],
            id="bad-required-and-properties",
        ),
    ],
)
def test_is_valid_schema(schema: Any, expected: list[str]) -> None:
    assert is_valid_schema(schema) == expected
