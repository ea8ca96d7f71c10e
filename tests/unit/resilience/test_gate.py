"""DueFirst: one holder at a time; due records go before main ones, in bursts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from streamapp.resilience.gate import DueFirst


async def agent(
    gate: DueFirst,
    name: str,
    urgent: bool,
    buffered: asyncio.Queue[int],
    order: list[str],
    handled: Callable[[], None] = lambda: None,
) -> None:
    """Like a faust agent: the stream yields to the loop before it takes each record;
    the handler awaits a few times."""
    if urgent:
        gate.urgent_pending = lambda: buffered.qsize() > 0
    while True:
        await asyncio.sleep(0)
        n = await buffered.get()
        async with gate.turn(urgent=urgent):
            order.append(f"{name}-{n}")
            handled()
            for _ in range(3):
                await asyncio.sleep(0)
        buffered.task_done()


async def run_agents(gate: DueFirst, main: int, due: int, *, due_after: int) -> list[str]:
    """`main` records buffered for the main agent; `due` records arrive for the due agent
    once `due_after` main records are handled."""
    order: list[str] = []
    mains: asyncio.Queue[int] = asyncio.Queue()
    dues: asyncio.Queue[int] = asyncio.Queue()
    for n in range(main):
        mains.put_nowait(n)

    def main_handled() -> None:  # the due records arrive while the main one is handled
        if sum(1 for o in order if o.startswith("main")) == due_after:
            for n in range(due):
                dues.put_nowait(n)

    tasks = [
        asyncio.create_task(agent(gate, "main", False, mains, order, main_handled)),
        asyncio.create_task(agent(gate, "due", True, dues, order)),
    ]
    try:
        await asyncio.wait_for(mains.join(), 5)  # the due records were put meanwhile
        await asyncio.wait_for(dues.join(), 5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return order


async def test_due_records_go_together_before_the_rest_of_the_main_backlog() -> None:
    order = await run_agents(DueFirst(), main=40, due=10, due_after=5)
    assert len(order) == 50
    first = order.index("due-0")
    # at most the main record being handled when they arrived goes first
    assert first <= 7, order
    assert order[first : first + 10] == [f"due-{n}" for n in range(10)], order
    assert order[first + 10 :] == [f"main-{n}" for n in range(first, 40)]


async def test_a_burst_is_capped_so_main_records_still_flow() -> None:
    order = await run_agents(DueFirst(burst=4), main=20, due=12, due_after=2)
    kinds = "".join(o[0] for o in order)  # m / d
    assert "ddddd" not in kinds, kinds
    assert "dddd" in kinds, kinds  # bursts of the cap, a main record between them
    assert kinds.count("d") == 12 and kinds.count("m") == 20


async def test_a_reservation_nobody_takes_expires() -> None:
    gate = DueFirst(hold_s=0.01)
    gate.urgent_pending = lambda: True  # records buffered, but the due agent has stopped
    async with gate.turn(urgent=True):
        pass
    assert gate.reserved
    await asyncio.wait_for(_enter(gate, urgent=False), 1)  # the main agent goes on
    assert not gate.reserved and not gate.held


async def test_one_holder_at_a_time_and_urgent_waiters_go_first() -> None:
    gate = DueFirst()
    order: list[str] = []
    inside = 0

    async def handle(name: str, urgent: bool) -> None:
        nonlocal inside
        async with gate.turn(urgent=urgent):
            inside += 1
            assert inside == 1, "two holders at once"
            order.append(name)
            await asyncio.sleep(0)
            inside -= 1

    holder_in, holder_out = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with gate.turn(urgent=False):
            order.append("main-0")
            holder_in.set()
            await holder_out.wait()

    first = asyncio.create_task(holder())
    await holder_in.wait()
    # main records queue first, due ones after them: the due ones still go first
    waiters = [asyncio.create_task(handle(f"main-{n}", False)) for n in (1, 2)]
    await asyncio.sleep(0)
    waiters += [asyncio.create_task(handle(f"due-{n}", True)) for n in (1, 2)]
    await asyncio.sleep(0)
    holder_out.set()
    await asyncio.wait_for(asyncio.gather(first, *waiters), 5)
    assert order[0] == "main-0"
    assert sorted(order[1:3]) == ["due-1", "due-2"]
    assert sorted(order[3:]) == ["main-1", "main-2"]
    assert not gate.held


async def test_a_cancelled_holder_or_waiter_does_not_block_the_gate() -> None:
    gate = DueFirst()
    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with gate.turn(urgent=False):
            entered.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold_forever())
    await entered.wait()
    waiter = asyncio.create_task(_enter(gate, urgent=True))
    await asyncio.sleep(0)
    waiter.cancel()
    holder.cancel()
    for task in (holder, waiter):
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.wait_for(_enter(gate, urgent=False), 1)
    assert not gate.held


async def test_an_urgent_waiter_cancelled_before_it_runs_does_not_strand_the_holder() -> None:
    """The holder releases and asks again at once while the waiter it would have let in
    is cancelled but has not run yet (found by review: the turn was lost)."""
    gate = DueFirst()
    entered, release = asyncio.Event(), asyncio.Event()

    async def holder() -> str:
        async with gate.turn(urgent=False):
            entered.set()
            await release.wait()
        async with gate.turn(urgent=False):  # the next record, no yield in between
            return "main got the gate again"

    main = asyncio.create_task(holder())
    await entered.wait()
    due = asyncio.create_task(_enter(gate, urgent=True))
    await asyncio.sleep(0)
    release.set()
    due.cancel()
    assert await asyncio.wait_for(main, 1) == "main got the gate again"
    with pytest.raises(asyncio.CancelledError):
        await due


async def _enter(gate: DueFirst, *, urgent: bool) -> None:
    async with gate.turn(urgent=urgent):
        pass
