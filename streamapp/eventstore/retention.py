"""Retention of dedupe records: a time-ordered expiry index inside the state table.

Dedupe records (the event store's command outcomes, the participants' answers) are kept
for ``state_retention_ms`` and then removed, so state grows with the order *rate*, not
with the number of orders ever seen. Each such record gets an index entry::

    x/<expiresAtMs:013d>/<key>

in the same table, written while processing the same source record (so it lands in the
same changelog partition) and *after* the record: a crash can leave a record without
its entry only while that source record is unacknowledged, and its redelivery writes the
entry. Removal must happen inside the agent, while it processes a record of the entry's
partition (faust sends a deletion's tombstone to the partition of the record being
processed): a housekeeping tick per partition reads that partition's due entries — in
key order, which is expiry order — and deletes each record, then its entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: this module stays free of Faust at run time
    from faust.types import CollectionT

#: Prefix of the expiry index's key family (beside e/ s/ h/ c/ or e/ r/).
INDEX_PREFIX = b"x/"
EXPIRY_WIDTH = 13  # epoch milliseconds up to the year 2286
NEVER = 10**EXPIRY_WIDTH - 1


def expiry_key(expires_at_ms: int, key: bytes) -> bytes:
    """An index entry (without INDEX_PREFIX): fixed-width time first, so byte order is
    expiry order. A time beyond the width (an absurd window) is clamped to the last one."""
    return b"%0*d/" % (EXPIRY_WIDTH, min(max(expires_at_ms, 0), NEVER)) + key


def expiry_target(entry: bytes) -> bytes:
    """The key an index entry (without INDEX_PREFIX) points at."""
    return entry[EXPIRY_WIDTH + 1 :]


def expiry_time(entry: bytes) -> int:
    return int(entry[:EXPIRY_WIDTH])


def due_stop(now_ms: int) -> bytes:
    """The first entry (without INDEX_PREFIX) that is not due at now_ms: an entry is due
    once now_ms >= its expiry time."""
    return b"%0*d/" % (EXPIRY_WIDTH, now_ms + 1)


def tombstone(kv: MutableMapping[bytes, Any], key: bytes) -> None:
    """Delete a key even if this store no longer has it: a faust table still sends the
    tombstone (the local RocksDB can be ahead of the changelog after a kill -9)."""
    with contextlib.suppress(KeyError):
        del kv[key]


def partition_keys(
    table: Any, partition: int, start: bytes, stop: bytes, limit: int
) -> list[bytes]:
    """Up to ``limit`` keys k, start <= k < stop, of ONE partition of a table, in byte order.

    faust's rocksdb store keeps one RocksDB (rocksdict, raw keys, bytewise order) per
    partition in ``store._dbs``: a seek to ``start`` reads only the keys wanted, whatever
    the table's size. Anything else (faust's memory store, a dict in tests) is one key
    space, scanned and sorted: for tests, not for production state.
    """
    store = getattr(table, "data", table)
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return sorted(k for k in list(store.keys()) if start <= k < stop)[:limit]
    if not getattr(store, "use_rocksdict", False):
        raise RuntimeError("partition_keys needs faust's rocksdict store")
    db = dbs.get(partition)
    if db is None:  # not opened here: nothing of this partition is stored locally
        return []
    found: list[bytes] = []
    offset_key = getattr(store, "offset_key", None)  # faust's own key in every partition db
    for raw in db.keys(from_key=start):
        if raw >= stop or len(found) >= limit:
            break
        if raw != offset_key:
            found.append(store._decode_key(raw))
    return found


def due_entries(
    table: CollectionT | MutableMapping[bytes, Any], partition: int, now_ms: int, limit: int
) -> list[bytes]:
    """One partition's index entries (without INDEX_PREFIX) due at now_ms, oldest first."""
    stop = INDEX_PREFIX + due_stop(now_ms)
    keys = partition_keys(table, partition, INDEX_PREFIX, stop, limit)
    return [key[len(INDEX_PREFIX) :] for key in keys]
