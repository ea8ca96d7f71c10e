"""The registry state folded from ``_schemas`` records (pure; a stand-in checker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streamapp.registry.state import (
    CONFIG,
    DELETE,
    DEPRECATE,
    SCHEMA,
    RegistryState,
    canonical,
    content_id,
    request,
)

Seen = list[tuple[str, Mapping[str, Any], list[Mapping[str, Any]]]]


def checker(seen: Seen | None = None) -> Any:
    """Incompatible when the new schema says {"breaks": true}; records every call."""

    def check(
        level: str, new: Mapping[str, Any], existing: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        if seen is not None:
            seen.append((level, new, list(existing)))
        return ["#/: breaks (test rule)"] if new.get("breaks") else []

    return check


def fold(records: list[tuple[bytes, bytes]], state: RegistryState | None = None) -> RegistryState:
    state = state or RegistryState(checker())
    for offset, (key, value) in enumerate(records, start=state.position + 1):
        state.apply(offset, orjson.loads(key), orjson.loads(value))
    return state


def register(request_id: str, subject: str, schema: dict[str, Any]) -> tuple[bytes, bytes]:
    return request(SCHEMA, request_id, subject=subject, schema=schema)


A = {"type": "object", "properties": {"a": {"type": "string"}}}
B = {"type": "object", "properties": {"b": {"type": "integer"}}}


def test_a_schema_gets_version_1_and_its_content_id_and_again_the_same() -> None:
    state = fold([register("r1", "OrderCreated", A), register("r2", "OrderCreated", dict(A))])
    first, again = state.outcomes["r1"], state.outcomes["r2"]
    assert first.ok and first.version is not None
    assert (first.version.version, first.version.schema_id) == (1, content_id(canonical(A)))
    assert again.version == first.version and len(state.live("OrderCreated")) == 1


def test_key_order_and_whitespace_do_not_make_a_new_schema() -> None:
    reordered = orjson.loads(b'{ "properties": {"a": {"type": "string"}}, "type": "object" }')
    state = fold([register("r1", "S", A), register("r2", "S", reordered)])
    assert state.outcomes["r2"].version == state.outcomes["r1"].version


def test_two_workers_registering_at_once_get_versions_in_log_order_and_distinct_ids() -> None:
    # Both decided "version 2" locally; the log orders them and the fold decides.
    state = fold([register("w1", "S", A), register("w2", "S", B)])
    one, two = state.outcomes["w1"].version, state.outcomes["w2"].version
    assert one is not None and two is not None
    assert (one.version, two.version) == (1, 2) and one.schema_id != two.schema_id


def test_one_schema_under_two_subjects_has_one_id() -> None:
    state = fold([register("r1", "S", A), register("r2", "T", A)])
    s, t = state.outcomes["r1"].version, state.outcomes["r2"].version
    assert s is not None and t is not None and s.schema_id == t.schema_id


def test_an_id_held_by_another_schema_is_probed_upwards() -> None:
    state = RegistryState(checker())
    taken = content_id(canonical(A))
    state.schemas[taken] = canonical(B)  # as if B had hashed to A's id
    fold([register("r1", "S", A)], state)
    version = state.outcomes["r1"].version
    assert version is not None and version.schema_id == taken + 1


def test_an_incompatible_schema_is_refused_with_every_reason_and_none_accepts_it() -> None:
    breaking = {**B, "breaks": True}
    state = fold([register("r1", "S", A), register("r2", "S", breaking)])
    refused = state.outcomes["r2"]
    assert not refused.ok and refused.error_code == 409 and refused.reasons
    assert len(state.live("S")) == 1
    fold([request(CONFIG, "c1", subject="S", level="NONE"), register("r3", "S", breaking)], state)
    assert state.outcomes["r3"].ok and len(state.live("S")) == 2


def test_a_first_version_is_never_checked_and_levels_pick_what_is_compared() -> None:
    seen: Seen = []
    state = RegistryState(checker(seen))
    fold([register("r1", "S", A)], state)
    assert seen == []
    fold([register("r2", "S", B)], state)
    assert [(level, len(existing)) for level, _, existing in seen] == [("BACKWARD", 1)]
    seen.clear()
    third = {"type": "object"}
    fold(
        [request(CONFIG, "c", subject="S", level="FULL_TRANSITIVE"), register("r3", "S", third)],
        state,
    )
    assert [(level, len(existing)) for level, _, existing in seen] == [("FULL_TRANSITIVE", 2)]


def test_levels_subject_over_global_over_default_and_an_unknown_level_is_refused() -> None:
    state = fold(
        [request(CONFIG, "g", level="FORWARD"), request(CONFIG, "s", subject="S", level="NONE")]
    )
    assert (state.level("S"), state.level("T"), state.level(None)) == ("NONE", "FORWARD", "FORWARD")
    fold(
        [request(CONFIG, "d", subject="S", level=None), request(CONFIG, "x", level="SIDEWAYS")],
        state,
    )
    assert state.level("S") == "FORWARD"
    assert state.outcomes["x"].error_code == 42203 and state.level(None) == "FORWARD"


def test_soft_delete_hides_a_version_and_numbering_goes_on() -> None:
    state = fold(
        [
            register("r1", "S", A),
            register("r2", "S", B),
            request(DELETE, "d", subject="S", version=2),
            register("r3", "S", {"type": "object"}),
        ]
    )
    assert [v.version for v in state.live("S")] == [1, 3]
    assert (
        state.version("S", 2) is None
        and state.version("S", "latest") == state.outcomes["r3"].version
    )
    assert (
        fold([request(DELETE, "e", subject="S", version=9)], state).outcomes["e"].error_code
        == 40402
    )
    assert (
        fold([request(DELETE, "f", subject="Q", version=1)], state).outcomes["f"].error_code
        == 40401
    )


def test_a_deprecated_version_stays_readable_and_says_so() -> None:
    state = fold([register("r1", "S", A), request(DEPRECATE, "p", subject="S", version=1)])
    version = state.version("S", 1)
    assert version is not None and version.deprecated and version.to_view()["deprecated"]


def test_a_rebuild_from_the_same_records_decides_everything_the_same() -> None:
    records = [
        register("r1", "S", A),
        request(CONFIG, "c", subject="S", level="NONE"),
        register("r2", "S", {**B, "breaks": True}),
        request(CONFIG, "c2", subject="S", level="BACKWARD"),
        register("r3", "S", {"breaks": True}),
        register("r4", "T", B),
        request(DEPRECATE, "p", subject="T", version=1),
    ]
    first, rebuilt = fold(records), fold(list(records))
    assert first.subjects == rebuilt.subjects and first.levels == rebuilt.levels
    assert first.outcomes == rebuilt.outcomes and not first.outcomes["r3"].ok
    # Every request has its own key: compaction keeps them all, in order.
    assert len({key for key, _ in records}) == len(records)


def test_a_malformed_record_changes_nothing() -> None:
    state = fold([register("r1", "S", A)])
    state.apply(5, {"keytype": SCHEMA, "request": "bad", "subject": "S"}, {"schema": "{not json"})
    state.apply(6, {"keytype": "NOPE", "request": "nope"}, {})
    assert not state.outcomes["bad"].ok and not state.outcomes["nope"].ok
    assert len(state.live("S")) == 1 and state.position == 6
