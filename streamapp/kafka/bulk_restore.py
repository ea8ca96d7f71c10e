"""Restore tables from their changelogs in bulk, before faust's record-at-a-time recovery.

faust-streaming 0.15 restores a table through its stream machinery: the fetcher hands
each changelog record to the conductor (a ``wait_first`` per record), a flow-control
queue, and ``Recovery._slurp_changelogs`` (an ``asyncio.wait_for`` task per record).
bench/restore.py measured ~5,000 records/s for a table of 1,000,000 keys on this
machine, where plain aiokafka reads the same changelog at ~500,000/s: a restarted or
rebalanced worker with a large table was not ready for minutes.

After faust has found where each active changelog partition must be read from (its
persisted offset, or the earliest) and up to where (the highwater), this module reads
those ranges with a plain aiokafka consumer (no group) and writes them through the
table's own ``apply_changelog_batch`` — faust's store code, which writes a RocksDB
``WriteBatch`` per partition and then the persisted offset — a batch at a time. It moves
faust's start offsets to what it applied, so faust's recovery reads only what remains
(nothing, unless records arrived meanwhile) and keeps every other step: the seek, the
standbys, the end of recovery. The progress gauge (streamapp.kafka.recovery) follows the
batches.

Safe to stop at any point: each batch lands whole with its offset, and whatever is left
is faust's to read as before. faust bounds the step by ``broker_request_timeout`` (a
timeout there stops recovery), so the bulk read ends after half of it; a new rebalance
cancels it; transactional apps (``exactly_once``) are left to faust,
which handles aborted records. ``table_bulk_restore`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.types import TP

log = logging.getLogger(__name__)

_PATCHED = "_streamapp_bulk_restore"
#: Records per fetch and per write batch; bytes per partition per fetch.
BATCH = 10_000
FETCH_BYTES = 4 << 20
#: faust gives the step ``broker_request_timeout`` and treats a timeout as a stop (the
#: worker would never be ready): the bulk restore keeps to half of it, then leaves the
#: rest to faust's recovery (~5 M records at bench/restore.py's rate with faust's 90 s).
BUDGET_SHARE = 0.5


class _Record:
    """What ``Store.apply_changelog_batch`` reads of a changelog event: ``event.message``
    with its tp, offset, partition, key and value (one object serves as both)."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: TP, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.tp, self.offset, self.partition = tp, offset, tp.partition
        self.key, self.value = key, value

    @property
    def message(self) -> _Record:
        return self


def ranges(
    tps: Iterable[TP], offsets: MutableMapping[TP, Any], highwaters: MutableMapping[TP, Any]
) -> dict[TP, tuple[int, int]]:
    """Changelog partitions with records left: tp -> (first offset to read, highwater).

    faust's offset is the last one applied (-1 or None: none; the earliest minus one
    after compaction); its highwater the log end offset."""
    todo = {}
    for tp in tps:
        applied, end = offsets.get(tp), highwaters.get(tp)
        start = 0 if applied is None or applied < 0 else applied + 1
        if isinstance(end, int) and end > start:
            todo[tp] = (start, end)
    return todo


async def restore(
    bootstrap: str,
    todo: dict[TP, tuple[int, int]],
    apply: Callable[[TP, list[_Record]], None],
    applied: MutableMapping[TP, Any],
    budget_s: float,
) -> int:
    """Read every range of `todo` and hand it to `apply` a batch per partition at a time,
    recording each batch's last offset in `applied`, for at most `budget_s` seconds; the
    records applied."""
    deadline = asyncio.get_running_loop().time() + budget_s
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=FETCH_BYTES,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    total = 0
    try:
        by_kafka = {TopicPartition(tp.topic, tp.partition): tp for tp in todo}
        consumer.assign(list(by_kafka))
        for ktp, tp in by_kafka.items():
            consumer.seek(ktp, todo[tp][0])
        left = set(by_kafka)
        while left and asyncio.get_running_loop().time() < deadline:
            fetched = await consumer.getmany(*left, timeout_ms=1000, max_records=BATCH)
            for ktp, records in fetched.items():
                tp = by_kafka[ktp]
                end = todo[tp][1]
                batch = [_Record(tp, r.offset, r.key, r.value) for r in records if r.offset < end]
                if batch:
                    apply(tp, batch)
                    applied[tp] = batch[-1].offset
                    total += len(batch)
                if records and records[-1].offset >= end - 1:
                    left.discard(ktp)
            for ktp in list(left):  # compaction can leave the log's last offsets empty
                if await consumer.position(ktp) >= todo[by_kafka[ktp]][1]:
                    left.discard(ktp)
            await asyncio.sleep(0)  # web requests (/ready, /metrics) meanwhile
    finally:
        await consumer.stop()
    return total


async def restore_actives(recovery: Any, tps: Iterable[TP]) -> None:
    """Bulk-restore the active changelog partitions `tps` of a faust Recovery."""
    app = recovery.app
    if app.in_transaction or not app.settings.table_bulk_restore:
        return
    todo = ranges(tps, recovery.active_offsets, recovery.active_highwaters)
    if not todo:
        return
    tables = recovery.tp_to_table

    def apply(tp: TP, batch: list[_Record]) -> None:
        tables[tp].apply_changelog_batch(batch)

    loop = asyncio.get_running_loop()
    started = loop.time()
    budget = BUDGET_SHARE * float(app.conf.broker_request_timeout)
    records = await restore(app.settings.bootstrap, todo, apply, recovery.active_offsets, budget)
    seconds = loop.time() - started
    log.info(
        "bulk-restored %d changelog records of %d partitions in %.1f s",
        records,
        len(todo),
        seconds,
    )


def apply_patch() -> None:
    """Run the bulk restore after faust builds the active start offsets (idempotent)."""
    build = Recovery._build_offsets
    if getattr(build, _PATCHED, False):
        return

    async def _build_offsets(
        self: Any, consumer: Any, tps: Any, destination: Any, title: str
    ) -> None:
        await build(self, consumer, tps, destination, title)
        if title == "active" and destination is self.active_offsets:
            try:
                await restore_actives(self, set(tps))
            except asyncio.CancelledError:
                raise
            except Exception:  # faust's own recovery reads whatever is left
                log.exception("bulk restore failed; faust's recovery reads the rest")

    setattr(_build_offsets, _PATCHED, True)
    Recovery._build_offsets = _build_offsets  # type: ignore[method-assign]
