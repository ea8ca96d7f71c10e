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
is faust's to read as before. faust bounds the step by ``broker_request_timeout`` and a
timeout there stops its recovery for good, so the whole bulk read (connecting and
closing included) is cut off after half of it; a new rebalance stops it before the next
batch and drops revoked partitions (faust cancels the step only once the rebalance is
done). Transactional apps (``exactly_once``, aborted records) and other stores are left
to faust. ``table_bulk_restore`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol

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
#: How long closing the bulk consumer may take (it runs inside that budget too).
STOP_S = 5.0


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
    tps: Iterable[TP], offsets: Mapping[TP, Any], highwaters: Mapping[TP, Any]
) -> dict[TP, tuple[int, int]]:
    """Changelog partitions with records left: tp -> (first offset to read, end), the end
    exclusive.

    faust's offset is the last one applied (-1: none; the earliest minus one after
    compaction); its highwater is the *last* offset in the log (the log end offset minus
    one, ``Recovery._build_highwaters``; -1: empty)."""
    todo = {}
    for tp in tps:
        applied, last = offsets.get(tp), highwaters.get(tp)
        start = 0 if applied is None or applied < 0 else applied + 1
        if isinstance(last, int) and last >= start:
            todo[tp] = (start, last + 1)
    return todo


class Consumer(Protocol):
    """What the bulk read needs of an AIOKafkaConsumer (assigned, sought already)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Any]]: ...

    async def position(self, partition: TopicPartition) -> int: ...

    def pause(self, *partitions: TopicPartition) -> None: ...


async def drain(
    consumer: Consumer,
    todo: Mapping[TP, tuple[int, int]],
    apply: Callable[[TP, list[_Record]], None],
    applied: MutableMapping[TP, Any],
    wanted: Callable[[TP], bool] = lambda tp: True,
) -> int:
    """Read every range of `todo` from `consumer` and hand it to `apply` a batch per
    partition at a time, recording each batch's last offset in `applied`; a partition no
    longer `wanted` (revoked by a rebalance) is dropped. The records applied.

    ``apply`` and the offset update run without an await between them, so a cancel never
    separates a batch from its offset."""
    by_kafka = {TopicPartition(tp.topic, tp.partition): tp for tp in todo}
    left, total = set(by_kafka), 0

    def done(ktp: TopicPartition) -> None:
        left.discard(ktp)
        consumer.pause(ktp)  # no more fetches for it

    while left:
        fetched = await consumer.getmany(*left, timeout_ms=1000, max_records=BATCH)
        for ktp, records in fetched.items():
            tp = by_kafka[ktp]
            if ktp not in left:
                continue
            if not wanted(tp):
                done(ktp)
                continue
            end = todo[tp][1]
            batch = [_Record(tp, r.offset, r.key, r.value) for r in records if r.offset < end]
            if batch:
                apply(tp, batch)
                applied[tp] = batch[-1].offset
                total += len(batch)
            if records and records[-1].offset >= end - 1:
                done(ktp)
        for ktp in list(left):  # compaction can leave the log's last offsets empty
            if not wanted(by_kafka[ktp]) or await consumer.position(ktp) >= todo[by_kafka[ktp]][1]:
                done(ktp)
        await asyncio.sleep(0)  # web requests (/ready, /metrics) meanwhile
    return total


async def restore(
    bootstrap: str,
    todo: Mapping[TP, tuple[int, int]],
    apply: Callable[[TP, list[_Record]], None],
    applied: MutableMapping[TP, Any],
    wanted: Callable[[TP], bool] = lambda tp: True,
) -> int:
    """`drain` from a plain consumer of `bootstrap` (no group), sought to each range's
    start; the records applied."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=FETCH_BYTES,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        ktps = [TopicPartition(tp.topic, tp.partition) for tp in todo]
        consumer.assign(ktps)
        for ktp, (first, _) in zip(ktps, todo.values(), strict=True):
            consumer.seek(ktp, first)
        return await drain(consumer, todo, apply, applied, wanted)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), STOP_S)


def enabled(app: Any) -> bool:
    """streamapp apps with the setting on, RocksDB tables, no transactions (faust's path
    handles aborted transactional records)."""
    settings = getattr(app, "settings", None)
    return (
        settings is not None
        and bool(settings.table_bulk_restore)
        and not app.in_transaction
        and str(app.conf.store).startswith("rocksdb:")
    )


async def restore_actives(recovery: Any, tps: Iterable[TP]) -> None:
    """Bulk-restore the active changelog partitions `tps` of a faust Recovery, for at
    most its budget, stopping at the next rebalance."""
    app = recovery.app
    if not enabled(app):
        return
    todo = ranges(tps, recovery.active_offsets, recovery.active_highwaters)
    if not todo:
        return
    tables = recovery.tp_to_table
    rebalance = recovery.signal_recovery_start

    def wanted(tp: TP) -> bool:
        return not rebalance.is_set() and tp in recovery.active_tps

    records = 0

    def apply(tp: TP, batch: list[_Record]) -> None:
        nonlocal records
        tables[tp].apply_changelog_batch(batch)
        records += len(batch)

    loop = asyncio.get_running_loop()
    started = loop.time()
    budget = BUDGET_SHARE * float(app.conf.broker_request_timeout)
    try:
        async with asyncio.timeout(budget):
            await restore(app.settings.bootstrap, todo, apply, recovery.active_offsets, wanted)
    except TimeoutError:
        log.warning("bulk restore stopped after %.0f s; faust's recovery reads the rest", budget)
    log.info(
        "bulk-restored %d changelog records of %d partitions in %.3f s",
        records,
        len(todo),
        loop.time() - started,
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
