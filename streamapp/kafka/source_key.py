"""Every changelog record names the record key it was written for.

faust writes a table change to the changelog partition of the record being processed,
not to its own key's hash: a participant's ``answer/<commandId>`` lives in the
partition of the sku or customer that command was keyed by, a retention index entry in
its entity's partition. The table key alone therefore cannot say where an entry belongs
once the partition count changes. The header :data:`SOURCE_KEY` carries the source
record's key (what the producer hashed), so ``streamapp repartition``
(:mod:`streamapp.tools.repartition`) can place every entry where the same source record
lands under the new count: exactly where the new workers will look for it.

Two kinds of record are not where their key hashes: a record without a key (the header
:data:`UNKEYED` says so: any partition is as good for it), and a timer's tick sent to a
chosen partition (its key, registered with :func:`not_a_routing_key`, is left out).
A write made on a tick for an entity names the entity's record key itself
(:func:`writing_for`): e.g. a participant settling a stock level when its answer expires.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import faust
from faust.streams import current_event
from faust.types import FutureMessage
from faust.types.codecs import CodecArg

#: Header on every changelog record: the key of the record whose processing wrote it.
SOURCE_KEY = "streamapp-source-key"
#: Header instead, when that record had no key.
UNKEYED = "streamapp-source-unkeyed"

#: Keys of records sent to a chosen partition rather than by key (timer ticks).
_NOT_ROUTING: set[bytes] = set()
_writing_for: ContextVar[bytes | None] = ContextVar("streamapp_writing_for", default=None)


def not_a_routing_key(key: bytes) -> bytes:
    """Register the key of records sent to a chosen partition: writes made while
    processing one carry no source key (unless :func:`writing_for` names one)."""
    _NOT_ROUTING.add(key)
    return key


@contextmanager
def writing_for(key: bytes | None) -> Iterator[None]:
    """Table writes in the block belong to the record key `key` (None: to the record
    being processed, as outside the block)."""
    token = _writing_for.set(key)
    try:
        yield
    finally:
        _writing_for.reset(token)


def source_key_headers() -> list[tuple[str, bytes]]:
    """The header for a write made now: the key it is made for, else the key of the
    record being processed (none for a tick's key, or outside a stream: faust refuses
    such writes anyway)."""
    named = _writing_for.get()
    if named is not None:
        return [(SOURCE_KEY, named)]
    event = current_event()
    if event is None:
        return []
    key = event.message.key
    if key is None:
        return [(UNKEYED, b"")]
    if not isinstance(key, bytes) or key in _NOT_ROUTING:
        return []
    return [(SOURCE_KEY, key)]


class SourceKeyedTable(faust.Table):  # type: ignore[type-arg]  # faust.Table is generic at runtime
    """faust's table, its changelog records carrying :data:`SOURCE_KEY`."""

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
    ) -> FutureMessage:
        """faust's ``send_changelog`` with the header added (same partition, same
        serialisation, same callback)."""
        return self.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            headers=source_key_headers(),
            key_serializer=self.key_serializer if key_serializer is None else key_serializer,
            value_serializer=(
                self.value_serializer if value_serializer is None else value_serializer
            ),
            callback=self._on_changelog_sent,
            eager_partitioning=True,
        )
