"""The bulk restore's ranges and read loop (streamapp.kafka.bulk_restore), without Kafka:
the loop is driven by a consumer stand-in that serves a log of offsets."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP

from streamapp.kafka.bulk_restore import drain, ranges

A, B, C, D = (TP("t-changelog", p) for p in range(4))


def test_ranges_run_from_after_the_last_applied_offset_through_faust_s_highwater() -> None:
    """faust's highwater is the last offset in the log (log end - 1), -1 when empty."""
    offsets = {A: -1, B: -1, C: 41, D: 99}
    highwaters = {A: 9, B: -1, C: 99, D: 99}
    assert ranges([A, B, C, D], offsets, highwaters) == {A: (0, 10), C: (42, 100)}


def test_partitions_without_a_known_highwater_are_left_to_faust() -> None:
    assert ranges([A, B], {A: None, B: 5}, {A: None}) == {}


class Record:
    def __init__(self, offset: int) -> None:
        self.offset, self.key, self.value = offset, b"k%d" % offset, b"v"


class Log:
    """A consumer of logs whose offsets are given per partition (gaps: compaction)."""

    def __init__(self, offsets: dict[int, list[int]], end: dict[int, int], per_fetch: int):
        self.offsets, self.end, self.per_fetch = offsets, end, per_fetch
        self.pos = {p: 0 for p in offsets}
        self.paused: set[int] = set()

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Any]]:
        out = {}
        for ktp in partitions:
            p = ktp.partition
            if p in self.paused:
                continue
            ahead = [o for o in self.offsets[p] if o >= self.pos[p]][: self.per_fetch]
            if ahead:
                out[ktp] = [Record(o) for o in ahead]
                self.pos[p] = ahead[-1] + 1
            else:
                self.pos[p] = self.end[p]
        return out

    async def position(self, partition: TopicPartition) -> int:
        return self.pos[partition.partition]

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= {ktp.partition for ktp in partitions}


def run_drain(log: Log, todo: dict[TP, tuple[int, int]], wanted: Any = None) -> Any:
    applied_batches: list[tuple[TP, list[int]]] = []
    offsets: dict[TP, int] = {}

    def apply(tp: TP, batch: list[Any]) -> None:
        applied_batches.append((tp, [r.offset for r in batch]))

    kwargs = {"wanted": wanted} if wanted else {}
    total = asyncio.run(drain(log, todo, apply, offsets, **kwargs))
    return total, applied_batches, offsets


def test_every_record_through_the_last_is_applied_in_order_with_its_offset() -> None:
    log = Log({0: list(range(10)), 1: [0, 3, 7]}, {0: 10, 1: 8}, per_fetch=4)
    todo = ranges([A, B], {A: -1, B: -1}, {A: 9, B: 7})
    total, batches, offsets = run_drain(log, todo)
    assert total == 13
    assert [o for tp, b in batches if tp == A for o in b] == list(range(10))
    assert [o for tp, b in batches if tp == B for o in b] == [0, 3, 7]
    assert offsets == {A: 9, B: 7}
    assert log.paused == {0, 1}  # no further fetches once a range is done


def test_records_past_the_range_are_left_to_faust_and_a_compacted_tail_ends_the_read() -> None:
    log = Log({0: list(range(20)), 1: [0, 1]}, {0: 20, 1: 6}, per_fetch=8)
    log.pos[0] = 5  # sought to the range's start (restore() does)
    # partition 0: faust's range ends at 11 (records 12.. arrived later);
    # partition 1: offsets 2..5 compacted away, the read ends on the position
    total, batches, offsets = run_drain(log, {A: (5, 12), B: (0, 6)})
    assert [o for tp, b in batches if tp == A for o in b] == list(range(5, 12))
    assert offsets == {A: 11, B: 1} and total == 9


def test_a_partition_revoked_meanwhile_gets_nothing_more() -> None:
    log = Log({0: list(range(10)), 1: list(range(10))}, {0: 10, 1: 10}, per_fetch=3)
    gone: set[TP] = set()
    batches: list[tuple[TP, list[int]]] = []
    offsets: dict[TP, int] = {}

    def apply(tp: TP, batch: list[Any]) -> None:
        batches.append((tp, [r.offset for r in batch]))
        if tp == B:  # a rebalance revokes B after its first batch
            gone.add(B)

    asyncio.run(drain(log, {A: (0, 10), B: (0, 10)}, apply, offsets, lambda tp: tp not in gone))
    assert [o for tp, b in batches if tp == B for o in b] == [0, 1, 2]
    assert offsets[B] == 2 and 1 in log.paused
    assert [o for tp, b in batches if tp == A for o in b] == list(range(10))
