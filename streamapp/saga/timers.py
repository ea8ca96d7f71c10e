"""Saga deadlines and expiries: the expiry index, the ticks, the table effects (no Faust).

``saga-deadlines`` maps a saga in flight to its earliest deadline. Only sagas in flight
are in it, so it is bounded by the in-flight count and the timer reads it whole.

``saga-expiries`` holds every settled saga of the retention window (days of them: ~26 M
entries at 43 sagas/s over 7 days), so it is a time-ordered index instead, as the event
store's dedupe records (``eventstore.retention``)::

    x/<expiresAtMs:013d>/<sagaId>  ->  expiresAtMs

The timer reads it per locally-assigned partition, in key order (= expiry order) from
the earliest, in bounded batches, and stops at the first entry that is not due, yielding
to the event loop between batches. The tick it sends for a due entry names the entry, so
the agent deletes exactly that one. Index entries are written and deleted only by the
agent, while it processes a record of the saga's partition (so the changelog partition
is right): the entry of the expiry in the saga's state before the record is replaced by
the one after it.

Keys outside ``x/`` are entries of the format before the index (``<sagaId> ->
expiresAtMs``): the timer ticks a bounded batch of them per run, whether due or not, and
the agent replaces each by the saga's index entry.

Deletes are always written to the changelog (``retention.tombstone``): after a kill -9
the local RocksDB can be ahead of the changelog, and a ``pop`` of a key that is gone
locally would send no tombstone, so the key would come back on restore.

A tick can be lost (dead-lettered, or dropped with a crashed producer): a worker
remembers what it ticked, and ticks a still-due deadline again once the retry budget plus
a margin has passed since the last tick (``TickLog``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamapp.eventstore.retention import (
    EXPIRY_WIDTH,
    INDEX_PREFIX,
    due_stop,
    expiry_key,
    expiry_target,
    expiry_time,
    partition_keys,
    tombstone,
)
from streamapp.messages import new_id

#: Index entries read per batch, and at most per partition and timer run.
BATCH = 500
MAX_PER_RUN = 20_000
#: Added to the retry budget before a still-due deadline is ticked again.
RETICK_MARGIN_MS = 10_000

#: Key ranges of entries in the format before the index: everything but ``x/...``
#: (b"x0" follows every b"x/..." key; no UTF-8 key starts with 0xff).
LEGACY_RANGES = ((b"", INDEX_PREFIX), (b"x0", b"\xff"))
#: faust's own keys in a table's RocksDB (``__faust\0offset__``): never a saga's.
FAUST_RESERVED = b"__faust\x00"


def reserved(key: bytes) -> bool:
    """A key faust keeps in the store for itself; no record may touch it."""
    return key.startswith(FAUST_RESERVED)


# -- the index -----------------------------------------------------------------------
def index_entry(expires_ms: int, key: bytes) -> bytes:
    """The saga-expiries key of a saga that expires at expires_ms."""
    return INDEX_PREFIX + expiry_key(expires_ms, key)


def is_index_entry(key: bytes) -> bool:
    head = key[len(INDEX_PREFIX) : len(INDEX_PREFIX) + EXPIRY_WIDTH]
    return (
        key.startswith(INDEX_PREFIX)
        and len(head) == EXPIRY_WIDTH
        and head.isdigit()
        and key[len(INDEX_PREFIX) + EXPIRY_WIDTH : len(INDEX_PREFIX) + EXPIRY_WIDTH + 1] == b"/"
    )


def entry_saga(entry: bytes) -> bytes:
    """The saga an expiries key belongs to (an index entry, or an old-format key)."""
    if is_index_entry(entry):
        return expiry_target(entry[len(INDEX_PREFIX) :])
    return entry


def entry_due_ms(entry: bytes) -> int:
    return expiry_time(entry[len(INDEX_PREFIX) :])


# -- table effects of one record -----------------------------------------------------
@dataclass
class Effects:
    """What the agent writes and deletes for one record: table name -> {key: value},
    table name -> keys to delete (tombstones, whether the key is stored or not)."""

    writes: dict[str, dict[bytes, Any]] = field(default_factory=dict)
    deletes: dict[str, list[bytes]] = field(default_factory=dict)

    def write(self, table: str, key: bytes, value: Any) -> None:
        self.writes.setdefault(table, {})[key] = value

    def delete(self, table: str, key: bytes) -> None:
        keys = self.deletes.setdefault(table, [])
        if key not in keys:
            keys.append(key)

    def __bool__(self) -> bool:
        return bool(self.writes or self.deletes)

    def apply(self, tables: Mapping[str, MutableMapping[bytes, Any]]) -> None:
        """Writes first (the saga record before its deadline and index entries), then
        the deletes; a delete always reaches the changelog."""
        for name, items in self.writes.items():
            for key, value in items.items():
                tables[name][key] = value
        for name, keys in self.deletes.items():
            for key in keys:
                tombstone(tables[name], key)


SAGAS, DEADLINES, EXPIRIES = "sagas", "saga-deadlines", "saga-expiries"


def effects(
    key: bytes,
    before: Any | None,
    after: Any | None,
    *,
    stored: Any = None,
    delete: bool,
    write: bool,
    redelivered: bool,
    tick_entry: bytes | None = None,
) -> Effects:
    """The table writes and deletes for one record of saga `key`.

    before/after: the SagaState before the record (as stored here) and after it (None:
    no saga); delete: remove the saga (expired, or a tick for a saga that is gone);
    write: store `stored` (the record of `after`: it changed, or a redelivery, as the
    local store may be ahead of the changelog); tick_entry: the expiries key an expiry tick names.
    """
    out = Effects()
    old_expiry = before.expires_ms if before is not None else None
    if delete:
        out.delete(SAGAS, key)
        out.delete(DEADLINES, key)
        if old_expiry is not None:
            out.delete(EXPIRIES, index_entry(old_expiry, key))
        if tick_entry is not None:
            out.delete(EXPIRIES, tick_entry)
        return out
    if after is None:
        return out
    new_expiry = after.expires_ms
    current = index_entry(new_expiry, key) if new_expiry is not None else None
    if write:
        out.write(SAGAS, key, stored)
        due = after.next_deadline()
        if due is not None:
            out.write(DEADLINES, key, due)
        elif redelivered or (before is not None and before.next_deadline() is not None):
            out.delete(DEADLINES, key)
        if old_expiry is not None and old_expiry != new_expiry:
            out.delete(EXPIRIES, index_entry(old_expiry, key))
    stale_tick = tick_entry is not None and tick_entry != current
    if stale_tick:
        out.delete(EXPIRIES, tick_entry)  # type: ignore[arg-type]
    if current is not None and (
        (write and (new_expiry != old_expiry or redelivered)) or stale_tick
    ):
        out.write(EXPIRIES, current, new_expiry)
    return out


# -- ticks -----------------------------------------------------------------------------
def tick_value(key: bytes, deadline_ms: int, entry: bytes | None = None) -> bytes:
    """A record for sagas.timeouts (keyed by the saga id)."""
    tick: dict[str, Any] = {"tickId": new_id(), "sagaId": key.decode(), "deadlineMs": deadline_ms}
    if entry is not None:
        tick["entry"] = entry.decode()
    return orjson.dumps(tick)


@dataclass
class TickLog:
    """What this worker ticked: key -> (deadline, when). A due deadline is ticked once,
    and again when it is still due `retick_after_ms` after the last tick (the tick was
    lost or dead-lettered). `keep_only` after each full pass keeps it to what is due."""

    retick_after_ms: int
    sent: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def should_tick(self, key: bytes, deadline_ms: int, now_ms: int) -> bool:
        last = self.sent.get(key)
        return last is None or last[0] != deadline_ms or now_ms - last[1] >= self.retick_after_ms

    def ticked(self, key: bytes, deadline_ms: int, now_ms: int) -> None:
        self.sent[key] = (deadline_ms, now_ms)

    def keep_only(self, keys: Iterable[bytes]) -> None:
        wanted = set(keys)
        self.sent = {k: v for k, v in self.sent.items() if k in wanted}


def retick_after_ms(retry_budget_ms: int) -> int:
    """A tick can spend the retry budget in retry topics before it is dead-lettered."""
    return retry_budget_ms + RETICK_MARGIN_MS


#: send(saga key, deadline, expiries entry or None)
Send = Callable[[bytes, int, bytes | None], Awaitable[None]]


async def tick_deadlines(
    items: Iterable[tuple[bytes, Any]], now_ms: int, log: TickLog, send: Send
) -> int:
    """Tick every due deadline of `items` (saga key -> deadline: the whole in-flight
    table of this worker's partitions); the number of ticks sent."""
    due = [
        (key, deadline) for key, deadline in items if type(deadline) is int and deadline <= now_ms
    ]
    sent = 0
    for key, deadline in due:
        if log.should_tick(key, deadline, now_ms):
            await send(key, deadline, None)
            log.ticked(key, deadline, now_ms)
            sent += 1
    log.keep_only(key for key, _ in due)
    return sent


async def tick_expiries(
    table: Any,
    partitions: Iterable[int],
    now_ms: int,
    log: TickLog,
    send: Send,
    *,
    stopped: Callable[[], bool] = lambda: False,
    batch: int = BATCH,
    max_per_run: int = MAX_PER_RUN,
) -> int:
    """Tick the due index entries of the given partitions of `table` (saga-expiries),
    earliest first, at most max_per_run read per partition, and a batch of old-format
    entries; the number of ticks sent. Stops early (keeping the log) if `stopped()`."""
    seen: list[bytes] = []
    sent = 0

    async def tick(saga: bytes, deadline: int, entry: bytes) -> None:
        nonlocal sent
        seen.append(entry)
        if log.should_tick(entry, deadline, now_ms):
            await send(saga, deadline, entry)
            log.ticked(entry, deadline, now_ms)
            sent += 1

    stop = INDEX_PREFIX + due_stop(now_ms)
    for partition in partitions:
        start, read = INDEX_PREFIX, 0
        while read < max_per_run:
            if stopped():
                return sent
            keys = partition_keys(table, partition, start, stop, min(batch, max_per_run - read))
            for entry in keys:
                if is_index_entry(entry):
                    await tick(entry_saga(entry), entry_due_ms(entry), entry)
            read += len(keys)
            if len(keys) < batch:
                break
            start = keys[-1] + b"\x00"
            await asyncio.sleep(0)
        for low, high in LEGACY_RANGES:
            if stopped():
                return sent
            for entry in partition_keys(table, partition, low, high, batch):
                if _decodes(entry) and not reserved(entry):
                    await tick(entry, 0, entry)
        await asyncio.sleep(0)
    log.keep_only(seen)
    return sent


def _decodes(key: bytes) -> bool:
    try:
        key.decode()
    except UnicodeDecodeError:
        return False
    return bool(key)
