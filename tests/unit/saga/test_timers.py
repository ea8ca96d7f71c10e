"""saga.timers: the expiry index, bounded scans, re-ticks and the tables' writes/deletes."""

from __future__ import annotations

import asyncio
from typing import Any

from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import SagaMachine
from streamapp.saga.orchestration import ORDERS, TIMEOUTS, Incoming, SagaRecord, react
from streamapp.saga.timers import (
    DEADLINES,
    EXPIRIES,
    SAGAS,
    TickLog,
    effects,
    entry_due_ms,
    entry_saga,
    index_entry,
    is_index_entry,
    retick_after_ms,
    tick_deadlines,
    tick_expiries,
)

T0 = 1_700_000_000_000
RETENTION = 5000


class Store(dict[bytes, Any]):
    """A table as faust's: a delete is sent to the changelog (recorded here) even if
    the key is not stored locally."""

    def __init__(self) -> None:
        super().__init__()
        self.tombstones: list[bytes] = []

    def __delitem__(self, key: bytes) -> None:
        self.tombstones.append(key)
        super().__delitem__(key)  # KeyError if absent, as a dict


class Sent:
    def __init__(self) -> None:
        self.ticks: list[tuple[bytes, int, bytes | None]] = []

    async def __call__(self, key: bytes, deadline: int, entry: bytes | None) -> None:
        self.ticks.append((key, deadline, entry))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- index keys ----------------------------------------------------------------------
def test_index_entries_sort_by_expiry_and_name_their_saga() -> None:
    a = index_entry(T0 + 20, b"order-a")
    b = index_entry(T0 + 3, b"order-zzz")
    c = index_entry(T0 + 20, b"order-b")
    assert a == b"x/%013d/order-a" % (T0 + 20)
    assert sorted([a, b, c]) == [b, a, c]
    assert [entry_saga(e) for e in (a, b)] == [b"order-a", b"order-zzz"]
    assert entry_due_ms(b) == T0 + 3
    assert is_index_entry(a) and not is_index_entry(b"order-a")
    assert not is_index_entry(b"x/12/order-a") and not is_index_entry(b"x/abcdefghijklm/o")
    # an entry of the format before the index is the saga key itself
    assert entry_saga(b"order-a") == b"order-a"
    # a saga id with slashes survives
    assert entry_saga(index_entry(T0, b"a/b/c")) == b"a/b/c"


# -- bounded, ordered scans -----------------------------------------------------------
def expiries_table(due: int, later: int) -> dict[bytes, Any]:
    table: dict[bytes, Any] = {}
    for n in range(due):
        table[index_entry(T0 - 10_000 + n, b"order-%05d" % n)] = T0 - 10_000 + n
    for n in range(later):
        table[index_entry(T0 + 1 + n, b"later-%05d" % n)] = T0 + 1 + n
    return table


def test_the_expiry_scan_ticks_due_entries_oldest_first_and_stops_at_the_first_not_due() -> None:
    table = expiries_table(due=230, later=50)
    sent, log = Sent(), TickLog(retick_after_ms(0))
    assert run(tick_expiries(table, [0], T0, log, sent, batch=100)) == 230
    assert [k for k, _, _ in sent.ticks] == [b"order-%05d" % n for n in range(230)]
    assert all(entry == index_entry(d, k) for k, d, entry in sent.ticks)
    assert len(log.sent) == 230


def test_the_expiry_scan_reads_a_bounded_number_per_run_and_continues_next_run() -> None:
    table = expiries_table(due=250, later=0)
    sent, log = Sent(), TickLog(retick_after_ms(0))
    assert run(tick_expiries(table, [0], T0, log, sent, batch=40, max_per_run=100)) == 100
    # the agent processed the ticks: their entries are gone; the next run goes on
    for _, _, entry in sent.ticks:
        del table[entry]  # type: ignore[arg-type]
    assert run(tick_expiries(table, [0], T0 + 1, log, sent, batch=40, max_per_run=100)) == 100
    assert [k for k, _, _ in sent.ticks] == [b"order-%05d" % n for n in range(200)]
    assert len(log.sent) == 100  # only what is still in the index


def test_the_expiry_scan_stops_when_a_rebalance_starts() -> None:
    table = expiries_table(due=300, later=0)
    sent, calls = Sent(), iter(range(100))
    stopped = lambda: next(calls) >= 2  # noqa: E731
    run(tick_expiries(table, [0], T0, TickLog(1000), sent, stopped=stopped, batch=100))
    assert len(sent.ticks) == 200


def test_old_format_entries_are_ticked_a_batch_at_a_time_for_conversion() -> None:
    table = expiries_table(due=1, later=1)
    table[b"order-old"] = T0 + 99_999  # not due yet: converted all the same
    table[b"zz-old"] = T0 - 1
    table[b"__faust\x00offset__"] = 12  # faust's own key in the store: never ticked
    sent = Sent()
    run(tick_expiries(table, [0], T0, TickLog(1000), sent))
    assert sent.ticks[1:] == [(b"order-old", 0, b"order-old"), (b"zz-old", 0, b"zz-old")]


# -- re-ticks ------------------------------------------------------------------------
def test_a_due_deadline_is_ticked_once_then_again_after_the_retry_budget() -> None:
    budget = 34_100
    log, sent = TickLog(retick_after_ms(budget)), Sent()
    table = {b"order-1": T0, b"order-2": T0 + 50_000}
    assert run(tick_deadlines(table.items(), T0, log, sent)) == 1
    assert run(tick_deadlines(table.items(), T0 + 500, log, sent)) == 0
    # the tick was lost: the deadline is still due after the budget and a margin
    assert run(tick_deadlines(table.items(), T0 + budget + 9_999, log, sent)) == 0
    assert run(tick_deadlines(table.items(), T0 + budget + 10_000, log, sent)) == 1
    assert [k for k, _, _ in sent.ticks] == [b"order-1", b"order-1"]
    # a new deadline is ticked at once; what is no longer due leaves the log
    table = {b"order-1": T0 + 60_000}
    assert run(tick_deadlines(table.items(), T0 + 60_000, log, sent)) == 1
    assert set(log.sent) == {b"order-1"}
    assert run(tick_deadlines({}.items(), T0 + 60_001, log, sent)) == 0
    assert log.sent == {}


def test_expiry_ticks_are_re_sent_too_and_the_log_keeps_only_what_is_in_the_index() -> None:
    table = expiries_table(due=3, later=0)
    log, sent = TickLog(retick_after_ms(1000)), Sent()
    run(tick_expiries(table, [0], T0, log, sent))
    run(tick_expiries(table, [0], T0 + 1000, log, sent))
    assert len(sent.ticks) == 3
    del table[sent.ticks[0][2]]  # type: ignore[arg-type]
    run(tick_expiries(table, [0], T0 + 11_000, log, sent))
    assert len(sent.ticks) == 5 and len(log.sent) == 2


# -- what the agent writes and deletes ------------------------------------------------
MACHINE = SagaMachine(order_fulfillment(step_timeout_ms=1000, retention_ms=RETENTION))


class Agent:
    """orchestrate() without Kafka: react(), then effects() applied to three tables."""

    def __init__(self) -> None:
        self.tables = {SAGAS: Store(), DEADLINES: Store(), EXPIRIES: Store()}
        self.offset = 0

    def feed(
        self, source: str, kind: str, at: int, causation: str | None = None, **data: Any
    ) -> Any:
        key = b"order-1"
        stored = self.tables[SAGAS].get(key)
        record = SagaRecord.from_dict(stored) if stored is not None else None
        self.offset += 1
        incoming = Incoming(
            source, f"{source}.events", self.offset, kind, f"ev-{self.offset}", causation, "c", data
        )
        reaction = react(MACHINE, "order-1", record, incoming, at)
        entry = data.get("entry")
        after = reaction.record
        write = after is not None and (reaction.changed or reaction.redelivered)
        effects(
            key,
            record.state if record else None,
            after.state if after else None,
            stored=after.to_dict() if write and after else None,
            delete=reaction.delete,
            write=write,
            redelivered=reaction.redelivered,
            tick_entry=entry.encode() if entry else None,
        ).apply(self.tables)  # type: ignore[arg-type]
        return reaction

    def settle(self) -> None:
        order = {"customerId": "c", "items": [{"sku": "A", "quantity": 1}]}
        r = self.feed(ORDERS, "OrderCreated", T0, **order)
        r = self.feed(
            "inventory", "InventoryReservationFailed", T0 + 1, r.commands[0].command.command_id
        )
        self.feed(ORDERS, "OrderCancelled", T0 + 2, r.commands[0].command.command_id)


def test_a_settled_saga_gets_one_index_entry_and_its_expiry_deletes_everything() -> None:
    agent = Agent()
    agent.settle()
    entry = index_entry(T0 + 2 + RETENTION, b"order-1")
    assert dict(agent.tables[EXPIRIES]) == {entry: T0 + 2 + RETENTION}
    assert dict(agent.tables[DEADLINES]) == {}
    sent = Sent()
    run(tick_expiries(agent.tables[EXPIRIES], [0], T0 + 2 + RETENTION, TickLog(1000), sent))
    assert sent.ticks == [(b"order-1", T0 + 2 + RETENTION, entry)]
    gone = agent.feed(TIMEOUTS, "Timeout", T0 + 2 + RETENTION, entry=entry.decode())
    assert gone.delete
    assert all(len(table) == 0 for table in agent.tables.values())
    assert entry in agent.tables[EXPIRIES].tombstones


def test_deletes_reach_the_changelog_even_if_the_local_store_lost_the_keys() -> None:
    """kill -9 after the local RocksDB deleted the saga but before the changelog got the
    tombstones: the tick comes again and must send them again (a pop would not)."""
    agent = Agent()
    agent.settle()
    entry = index_entry(T0 + 2 + RETENTION, b"order-1")
    for table in agent.tables.values():
        table.clear()  # the local store is ahead of the changelog
        table.tombstones.clear()
    again = agent.feed(TIMEOUTS, "Timeout", T0 + 9 + RETENTION, entry=entry.decode())
    assert again.delete
    assert agent.tables[SAGAS].tombstones == [b"order-1"]
    assert agent.tables[DEADLINES].tombstones == [b"order-1"]
    assert agent.tables[EXPIRIES].tombstones == [entry]


def test_a_late_event_moves_the_index_entry_and_a_stale_tick_entry_is_replaced() -> None:
    agent = Agent()
    order = {"customerId": "c", "items": [{"sku": "A", "quantity": 1}]}
    r = agent.feed(ORDERS, "OrderCreated", T0, **order)
    reserve = r.commands[0].command.command_id
    r = agent.feed(TIMEOUTS, "Timeout", T0 + 1000)  # ReserveInventory timed out
    agent.feed(ORDERS, "OrderCancelled", T0 + 1100, r.commands[0].command.command_id)
    first = index_entry(T0 + 1100 + RETENTION, b"order-1")
    assert set(agent.tables[EXPIRIES]) == {first}
    late = agent.feed("inventory", "InventoryReserved", T0 + 1200, reserve)
    assert set(agent.tables[EXPIRIES]) == set() and first in agent.tables[EXPIRIES].tombstones
    agent.feed("inventory", "InventoryReleased", T0 + 1300, late.commands[0].command.command_id)
    second = index_entry(T0 + 1300 + RETENTION, b"order-1")
    assert set(agent.tables[EXPIRIES]) == {second}
    # the old entry came back (a crash lost its tombstone) and is due: its tick deletes
    # it and keeps the saga and its current entry
    agent.tables[EXPIRIES][first] = T0 + 1100 + RETENTION
    stale = agent.feed(TIMEOUTS, "Timeout", T0 + 1200 + RETENTION, entry=first.decode())
    assert not stale.delete and stale.record is not None
    assert set(agent.tables[EXPIRIES]) == {second}
    # an entry of the format before the index is converted by its tick
    agent.tables[EXPIRIES][b"order-1"] = T0 + 1300 + RETENTION
    agent.feed(TIMEOUTS, "Timeout", T0 + 1201 + RETENTION, entry="order-1")
    assert set(agent.tables[EXPIRIES]) == {second}


def test_a_redelivery_rewrites_the_index_entry() -> None:
    e = effects(b"k", _State(5), _State(5), stored={}, delete=False, write=True, redelivered=True)
    assert e.writes[EXPIRIES] == {index_entry(5, b"k"): 5}
    assert e.deletes == {DEADLINES: [b"k"]}
    unchanged = effects(
        b"k", _State(5), _State(5), stored={}, delete=False, write=True, redelivered=False
    )
    assert EXPIRIES not in unchanged.writes and unchanged.deletes == {}


class _State:
    def __init__(self, expires_ms: int | None, deadline: int | None = None) -> None:
        self.expires_ms = expires_ms
        self.deadline = deadline

    def next_deadline(self) -> int | None:
        return self.deadline
