"""Table writes on behalf of one record of a batch.

faust sends a table change to the changelog partition of the record being processed —
its ``current_event``, a context variable the stream sets for each record it hands to an
agent. An agent that takes records in batches (``stream.take_events``) writes for many
records at once, in its own task: it names the record each write is made for here, so
that every change lands in that record's partition, as a one-by-one agent's would.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event  # faust's own variable: see the module doc
from faust.types import EventT


@contextmanager
def processing(event: EventT[Any]) -> Iterator[None]:
    """Make `event` faust's current event for the block."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
