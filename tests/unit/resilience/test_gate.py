"""DueFirst: one holder at a time; a waiting due record goes before waiting main ones."""

from __future__ import annotations

import asyncio

import pytest

from streamapp.resilience.gate import DueFirst


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

    holder_in = asyncio.Event()
    holder_out = asyncio.Event()

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


async def test_a_due_record_arriving_mid_backlog_waits_for_one_main_record_at_most() -> None:
    gate = DueFirst()
    handled: list[str] = []
    due_arrives = asyncio.Event()

    async def main_agent() -> None:
        for n in range(20):
            async with gate.turn(urgent=False):
                handled.append(f"main-{n}")
                if n == 5:
                    due_arrives.set()
                await asyncio.sleep(0)

    async def due_agent() -> None:
        await due_arrives.wait()
        for n in range(3):
            async with gate.turn(urgent=True):
                handled.append(f"due-{n}")
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(main_agent(), due_agent()), 5)
    assert len(handled) == 23
    first_due = handled.index("due-0")
    assert handled[first_due - 1] in {"main-5", "main-6"}, handled
    # the due agent takes the next record as soon as it is done: the three go together
    assert handled[first_due : first_due + 3] == ["due-0", "due-1", "due-2"], handled


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
    # a plain record is not held back by the cancelled urgent waiter
    await asyncio.wait_for(_enter(gate, urgent=False), 1)
    assert not gate.held


async def _enter(gate: DueFirst, *, urgent: bool) -> None:
    async with gate.turn(urgent=urgent):
        pass
