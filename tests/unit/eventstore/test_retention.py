"""Retention of command outcomes: the expiry index and the order handler's window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict

from streamapp.eventstore.retention import (
    INDEX_PREFIX,
    due_entries,
    due_stop,
    expiry_key,
    expiry_target,
    expiry_time,
    partition_keys,
    tombstone,
)
from streamapp.eventstore.store import EventStore, head_key, outcome_key
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from tests.unit.orders.factories import command, create

WINDOW = 3_000
T0 = 1_795_000_000_000


def handler(kv: dict[bytes, Any]) -> OrderCommandHandler:
    return OrderCommandHandler(order_repository(EventStore(kv), 100), WINDOW)


def expire(h: OrderCommandHandler, kv: dict[bytes, Any], now: int) -> int:
    return h.expire(due_entries(kv, 0, now, 1000))


def test_index_entries_sort_by_expiry_and_are_due_from_their_time_on() -> None:
    entries = [expiry_key(t, b"c/o/" + str(t).encode()) for t in (10_000, 9, 123_456)]
    assert sorted(entries) == [entries[1], entries[0], entries[2]]
    entry = expiry_key(T0, b"c/o/x")
    assert expiry_target(entry) == b"c/o/x" and expiry_time(entry) == T0
    assert entry >= due_stop(T0 - 1)  # not due a millisecond before
    assert entry < due_stop(T0)  # due at its time
    huge = expiry_key(10**15, b"c/o/x")  # a window of millennia: clamped, still parseable
    assert expiry_target(huge) == b"c/o/x" and expiry_time(huge) == 10**13 - 1


def test_partition_keys_of_a_mapping_are_sorted_bounded_and_limited() -> None:
    kv = {b"x/2": 1, b"c/a": 1, b"x/1": 1, b"x/3": 1, b"y": 1}
    assert partition_keys(kv, 0, b"x/", b"x/3", 10) == [b"x/1", b"x/2"]
    assert partition_keys(kv, 0, b"x/", b"x/9", 2) == [b"x/1", b"x/2"]


class FakeRocksStore:
    """faust's rocksdb store as partition_keys sees it: one raw-mode Rdict per partition."""

    use_rocksdict = True
    offset_key = b"__faust\0offset__"

    def __init__(self, root: Path, partitions: int) -> None:
        self._dbs = {}
        for p in range(partitions):
            self._dbs[p] = rocksdict.Rdict(str(root / f"p{p}"), rocksdict.Options(raw_mode=True))

    @staticmethod
    def _decode_key(key: bytes) -> bytes:
        return key


class FakeTable:
    def __init__(self, store: FakeRocksStore) -> None:
        self.data = store


def test_partition_keys_reads_one_rocksdb_partition_from_a_seek(tmp_path: Path) -> None:
    store = FakeRocksStore(tmp_path, 2)
    try:
        for p, db in store._dbs.items():
            db[b"__faust\0offset__"] = b"1"
            db[b"c/o/1"] = b"{}"
            for t in (30, 10, 20, 99):
                db[INDEX_PREFIX + expiry_key(t, b"p%d" % p)] = b"1"
        table = FakeTable(store)
        assert due_entries(table, 1, 25, 10) == [expiry_key(10, b"p1"), expiry_key(20, b"p1")]
        assert due_entries(table, 0, 1000, 3) == [expiry_key(t, b"p0") for t in (10, 20, 30)]
        assert due_entries(table, 0, 9, 10) == []
        assert due_entries(table, 7, 1000, 10) == []  # a partition not opened here
        # A scan of a whole partition never yields faust's offset key (its value is not
        # the table's: the in-flight sagas' scan read it as a saga once).
        assert partition_keys(table, 0, b"", b"\xff", 100) == [
            b"c/o/1",
            *(INDEX_PREFIX + expiry_key(t, b"p0") for t in (10, 20, 30, 99)),
        ]
    finally:
        for db in store._dbs.values():
            db.close()


def test_tombstone_deletes_and_tolerates_a_missing_key() -> None:
    kv = {b"a": 1}
    tombstone(kv, b"a")
    tombstone(kv, b"a")
    assert kv == {}


def test_an_outcome_is_a_duplicate_within_the_window_and_gone_after_it() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv)
    cmd = create("o")
    first = h.handle(cmd, SourceRecord(0, 1, T0), now_ms=T0)
    assert first.reply.status == "accepted"
    assert kv[INDEX_PREFIX + expiry_key(T0 + WINDOW, outcome_key("o", cmd.command_id))] == 1

    assert expire(h, kv, T0 + WINDOW - 1) == 0  # the last millisecond of the window
    retry = h.handle(cmd, SourceRecord(0, 2, T0), now_ms=T0 + WINDOW - 1)
    assert retry.reply.status == "duplicate" and retry.events == ()

    assert expire(h, kv, T0 + WINDOW) == 1
    assert outcome_key("o", cmd.command_id) not in kv
    assert not [k for k in kv if k.startswith(INDEX_PREFIX)]
    assert kv[head_key("o")]["version"] == 1  # the stream itself is kept


def test_after_the_window_a_repeated_command_is_decided_again() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv)
    create_cmd, note = create("o"), command("AddOrderNote", "o", note="n")
    h.handle(create_cmd, SourceRecord(0, 1, T0), now_ms=T0)
    h.handle(note, SourceRecord(0, 2, T0), now_ms=T0)  # the head now names the note
    expire(h, kv, T0 + WINDOW)
    again = h.handle(create_cmd, SourceRecord(0, 3, T0), now_ms=T0 + WINDOW)
    assert again.reply.status == "rejected"  # the order exists: not applied twice
    # The head's commit record (the stream's last command) still recognises that one.
    assert h.handle(note, SourceRecord(0, 4, T0), T0 + WINDOW).reply.status == "duplicate"


def test_rejections_of_unknown_streams_expire_too() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv)
    cancel = command("CancelOrder", "nobody")
    assert h.handle(cancel, SourceRecord(0, 1, T0), now_ms=T0).reply.status == "rejected"
    assert outcome_key("nobody", cancel.command_id) in kv
    assert expire(h, kv, T0 + WINDOW) == 1
    assert kv == {}


def test_a_crash_before_the_index_entry_is_repaired_by_the_redelivery() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv)
    cmd, source = create("o"), SourceRecord(0, 1, T0)
    h.handle(cmd, source, now_ms=T0)
    entry = INDEX_PREFIX + expiry_key(T0 + WINDOW, outcome_key("o", cmd.command_id))
    del kv[entry]  # the changelog lost the last write
    again = h.handle(cmd, source, now_ms=T0 + 1_000)  # redelivered seconds later
    assert again.redelivered and entry in kv  # the window still starts at the first time
    assert expire(h, kv, T0 + WINDOW) == 1 and outcome_key("o", cmd.command_id) not in kv


def test_a_crash_between_removing_an_outcome_and_its_entry_is_finished_next_time() -> None:
    kv: dict[bytes, Any] = {}
    h = handler(kv)
    cmd = create("o")
    h.handle(cmd, SourceRecord(0, 1, T0), now_ms=T0)
    del kv[outcome_key("o", cmd.command_id)]  # the first deletion went through, then a crash
    assert expire(h, kv, T0 + WINDOW) == 1
    assert not [k for k in kv if k.startswith(INDEX_PREFIX)]


def test_without_a_retention_outcomes_are_kept() -> None:
    kv: dict[bytes, Any] = {}
    h = OrderCommandHandler(order_repository(EventStore(kv), 100))
    h.handle(create("o"), SourceRecord(0, 1, T0), now_ms=T0)
    assert not [k for k in kv if k.startswith(INDEX_PREFIX)]
