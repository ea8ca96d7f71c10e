"""The stop/rebalance wait covers records in flight only (streamapp.kafka.stop_wait)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer

from streamapp.kafka import stop_wait


def message(acked: bool = False) -> Any:
    return SimpleNamespace(acked=acked)


def app_with(*current: Any) -> Any:
    actors = [SimpleNamespace(stream=SimpleNamespace(current_event=c)) for c in current]
    return SimpleNamespace(agents={"a": SimpleNamespace(_actors=actors)})


def test_in_flight_is_what_streams_process_now_unacknowledged() -> None:
    busy, done = message(), message(acked=True)
    app = app_with(SimpleNamespace(message=busy), SimpleNamespace(message=done), None)
    assert stop_wait.in_flight(app) == [busy]


class FakeConsumer:
    def __init__(self, app: Any) -> None:
        self.app, self.should_stop, self.commits, self.final = app, False, 0, 0

    async def commit(self) -> None:
        self.commits += 1

    async def _wait_for_ack(self, timeout: float) -> None:  # noqa: ASYNC109
        # the record in flight is acknowledged meanwhile
        for agent in self.app.agents.values():
            for actor in agent._actors:
                actor.stream.current_event = None

    async def commit_and_end_transactions(self) -> None:
        self.final += 1


def test_waits_for_the_record_in_flight_then_commits() -> None:
    consumer = FakeConsumer(app_with(SimpleNamespace(message=message())))
    asyncio.run(stop_wait.wait_for_in_flight(consumer))
    assert consumer.commits == 1 and consumer.final == 1


class AckedDuringCommit(FakeConsumer):
    """The handler finishes (and its record is acknowledged) while the commit runs."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.ack_waits = 0

    async def commit(self) -> None:
        await super().commit()
        for agent in self.app.agents.values():
            for actor in agent._actors:
                actor.stream.current_event = None

    async def _wait_for_ack(self, timeout: float) -> None:  # noqa: ASYNC109
        self.ack_waits += 1  # faust's would sleep its whole timeout: no ack is coming


def test_a_record_acknowledged_during_the_commit_is_not_waited_for() -> None:
    consumer = AckedDuringCommit(app_with(SimpleNamespace(message=message())))
    asyncio.run(stop_wait.wait_for_in_flight(consumer))
    assert (consumer.commits, consumer.ack_waits, consumer.final) == (1, 0, 1)


def test_a_copy_nobody_processes_is_not_waited_for() -> None:
    consumer = FakeConsumer(app_with(None))  # the tracked message is in no stream
    asyncio.run(asyncio.wait_for(stop_wait.wait_for_in_flight(consumer), 1))
    assert consumer.commits == 0 and consumer.final == 1


def test_the_patch_is_applied_once() -> None:
    stop_wait.apply()
    patched = Consumer.wait_empty
    stop_wait.apply()
    assert Consumer.wait_empty is patched
