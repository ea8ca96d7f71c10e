from __future__ import annotations

import pytest

from streamapp.resilience.headers import Origin, dlq_headers
from streamapp.tools.dlq import DeadLetter, replay_record, select

TRACE = [("traceparent", b"00-1-01")]


def letter(offset: int, kind: str = "SchemaError", partition: int = 0) -> DeadLetter:
    headers = dlq_headers(TRACE, Origin("orders.commands", 3, 40 + offset), 0, kind, "m", "s")
    return DeadLetter(partition, offset, b"order-1", b"{bad", tuple(headers))


def test_select_filters_by_partition_offsets_and_type() -> None:
    letters = [letter(0), letter(1, "UnknownCommand"), letter(2, partition=1)]
    assert select(letters) == letters
    assert select(letters, partition=1) == [letters[2]]
    assert select(letters, offsets=[0, 2]) == [letters[0], letters[2]]
    assert select(letters, error_type="UnknownCommand") == [letters[1]]


def test_replay_goes_to_the_original_topic_with_retry_headers_reset() -> None:
    topic, key, value, headers = replay_record(letter(0))
    assert (topic, key, value) == ("orders.commands", b"order-1", b"{bad")
    assert headers == TRACE
    assert letter(0).summary().split()[:2] == ["0", "0"]


def test_a_letter_without_origin_cannot_be_replayed() -> None:
    with pytest.raises(ValueError, match="no original-topic"):
        replay_record(DeadLetter(0, 5, None, b"x", ()))
