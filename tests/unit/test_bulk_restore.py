"""Which changelog ranges the bulk restore reads (streamapp.kafka.bulk_restore.ranges)."""

from __future__ import annotations

from faust.types import TP

from streamapp.kafka.bulk_restore import ranges

A, B, C, D = (TP("t-changelog", p) for p in range(4))


def test_ranges_start_after_the_last_applied_offset_and_end_at_the_highwater() -> None:
    offsets = {A: None, B: -1, C: 41, D: 99}
    highwaters = {A: 10, B: 0, C: 100, D: 100}
    assert ranges([A, B, C, D], offsets, highwaters) == {A: (0, 10), C: (42, 100)}


def test_partitions_without_a_known_highwater_are_left_to_faust() -> None:
    assert ranges([A, B], {A: None, B: 5}, {A: None}) == {}
