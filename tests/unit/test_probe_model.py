from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamapp.probe.model import (
    MAX_PROBE_BYTES,
    InvalidProbe,
    encode_probe,
    parse_probe,
    record_probe,
)


def test_round_trip() -> None:
    probe = parse_probe(b"k", encode_probe("p1", "2026-11-26T12:00:00.000Z"))
    assert probe == {"probeId": "p1", "sentAt": "2026-11-26T12:00:00.000Z"}


@pytest.mark.parametrize(
    ("key", "raw", "reason"),
    [
        (None, encode_probe("p"), "no_key"),
        (b"k", None, "empty"),
        (b"k", b"\xff\xfe", "undecodable"),
        (b"k", b"[]", "invalid"),
        (b"k", b'{"probeId": "", "sentAt": "x"}', "invalid"),
        (b"k", b'{"probeId": "p"}', "invalid"),
        (b"k", b"{" + b" " * MAX_PROBE_BYTES + b"}", "too_large"),
    ],
)
def test_invalid_records_have_a_reason(key: bytes | None, raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidProbe) as error:
        parse_probe(key, raw)
    assert error.value.reason == reason


def test_counts_and_keeps_the_last_probe() -> None:
    first = record_probe(None, {"probeId": "a", "sentAt": "t1"}, 2, 10, "s1")
    second = record_probe(first, {"probeId": "b", "sentAt": "t2"}, 2, 11, "s2")
    assert first is not None and second is not None
    assert second["count"] == 2 and second["lastProbeId"] == "b" and second["offset"] == 11


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_replays_are_applied_once(redeliveries: list[int]) -> None:
    """Any at-least-once delivery (prefixes re-read after crashes) counts each offset once."""
    state = None
    delivered = 0
    for upto in redeliveries:  # a crash before commit replays offsets 0..upto-1 again
        for offset in range(upto):
            updated = record_probe(state, {"probeId": f"p{offset}", "sentAt": "t"}, 0, offset, "s")
            state = updated or state
        delivered = max(delivered, upto)
    assert state is not None and state["count"] == delivered


def test_probe_is_json_with_a_utc_timestamp() -> None:
    value = orjson.loads(encode_probe("x"))
    assert value["probeId"] == "x" and value["sentAt"].endswith("Z")
