"""Every changelog record names the record key it was written for.

faust writes a table change to the changelog partition of the record being processed,
not to its own key's hash: a participant's ``answer/<commandId>`` lives in the
partition of the sku or customer that command was keyed by, a retention index entry in
its entity's partition. The table key alone therefore cannot say where an entry belongs
once the partition count changes. The header :data:`SOURCE_KEY` carries the source
record's key (what the producer hashed), so ``streamapp repartition``
(:mod:`streamapp.tools.repartition`) can place every entry where the same source record
lands under the new count: exactly where the new workers will look for it.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.streams import current_event
from faust.types import FutureMessage
from faust.types.codecs import CodecArg

#: Header on every changelog record: the key of the record whose processing wrote it.
SOURCE_KEY = "streamapp-source-key"


def source_key_headers() -> list[tuple[str, bytes]]:
    """The header for a write made while processing the current record (none when the
    record had no key, or outside a stream: faust refuses such writes anyway)."""
    event = current_event()
    key = None if event is None else event.message.key
    return [(SOURCE_KEY, key)] if isinstance(key, bytes) else []


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
