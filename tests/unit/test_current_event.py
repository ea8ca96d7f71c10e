"""Writes made for one record of a batch (streamapp.kafka.current)."""

from __future__ import annotations

from typing import Any, cast

from faust.streams import current_event

from streamapp.kafka.current import processing


class Event:  # weak-referenceable, as faust's events are
    def __init__(self, message: str) -> None:
        self.message = message


def test_processing_makes_the_event_faust_current_for_the_block_only() -> None:
    first, second = Event("a"), Event("b")
    assert current_event() is None
    with processing(cast(Any, first)):
        assert current_event() is first
        with processing(cast(Any, second)):
            assert current_event() is second
        assert current_event() is first
    assert current_event() is None
