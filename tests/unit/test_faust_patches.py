"""The faust fixes: the flow stays stopped from the seek until the caller resumes it; the
livelock detector skips a partition with no position yet.

A stand-in consumer records the order of calls; the behaviour against a real broker is
tests/integration/test_restart_backlog.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streamapp.kafka import faust_patches
from streamapp.kafka.faust_patches import counted_fetch, has_position, seek_with_flow_stopped

CHANGELOG = "app-table-changelog"


class StandIn:
    """Just what the fix touches; faust's own seek is `seek` below."""

    def __init__(self, committed: dict[TP, int | None], reset: str = "earliest") -> None:
        self.calls: list[Any] = []
        self.flow_active = True
        self.committed = committed
        self._committed_offset: dict[TP, int | None] = {}
        self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))
        self._thread = SimpleNamespace(seek_to_beginning=self._seek_to_beginning)

    def stop_flow(self) -> None:
        self.flow_active = False
        self.calls.append("stop_flow")

    def assignment(self) -> set[TP]:
        return set(self.committed)

    def _is_changelog_tp(self, tp: TP) -> bool:
        return bool(tp.topic == CHANGELOG)

    async def seek(self, consumer: Any) -> None:
        """faust's seek: committed offsets of the partitions that have one (not 0)."""
        self.calls.append(("seek", self.flow_active))
        self._committed_offset.update({tp: o for tp, o in self.committed.items() if o})

    async def _seek_to_beginning(self, *tps: TopicPartition) -> None:
        assert all(isinstance(tp, TopicPartition) for tp in tps)  # aiokafka insists
        self.calls.append(("seek_to_beginning", sorted(tps)))


def test_the_flow_is_stopped_before_the_seek_and_left_stopped() -> None:
    consumer = StandIn({TP("orders", 0): 17})
    asyncio.run(seek_with_flow_stopped(consumer, consumer.seek))
    assert consumer.calls == ["stop_flow", ("seek", False)]
    assert not consumer.flow_active  # faust's caller resumes it after emptying the queues


def test_the_seek_waits_for_the_fetch_in_flight() -> None:
    consumer = StandIn({TP("orders", 0): 17})

    async def fetch() -> str:
        await asyncio.sleep(0.05)
        consumer.calls.append("fetch returned")
        return "records"

    async def both() -> None:
        fetching = asyncio.ensure_future(counted_fetch(consumer, fetch()))
        await asyncio.sleep(0)  # the fetch is in flight
        await seek_with_flow_stopped(consumer, consumer.seek)
        assert await fetching == "records"

    asyncio.run(both())
    assert consumer.calls == ["stop_flow", "fetch returned", ("seek", False)]


def test_a_seek_while_one_is_running_returns_at_once() -> None:
    consumer = StandIn({TP("orders", 0): 17})

    async def slow_seek(c: Any) -> None:
        await asyncio.sleep(0.01)
        await consumer.seek(c)

    async def both() -> None:
        await asyncio.gather(
            seek_with_flow_stopped(consumer, slow_seek),
            seek_with_flow_stopped(consumer, consumer.seek),
        )

    asyncio.run(both())
    assert [c for c in consumer.calls if c[0] == "seek"] == [("seek", False)]
    asyncio.run(seek_with_flow_stopped(consumer, consumer.seek))  # and the next one runs
    assert [c for c in consumer.calls if c[0] == "seek"] == [("seek", False)] * 2


def test_never_committed_stream_partitions_go_back_to_the_beginning() -> None:
    consumer = StandIn(
        {
            TP("orders", 0): None,
            TP("orders", 1): 0,
            TP("orders", 2): 5,
            TP(CHANGELOG, 0): None,  # changelogs are positioned by the recovery
        }
    )
    asyncio.run(seek_with_flow_stopped(consumer, consumer.seek))
    assert consumer.calls[-1] == (
        "seek_to_beginning",
        [TopicPartition("orders", 0), TopicPartition("orders", 1)],
    )


def test_latest_reset_leaves_never_committed_partitions_alone() -> None:
    consumer = StandIn({TP("orders", 0): None}, reset="latest")
    asyncio.run(seek_with_flow_stopped(consumer, consumer.seek))
    assert consumer.calls == ["stop_flow", ("seek", False)]


def test_a_failed_seek_can_be_retried() -> None:
    consumer = StandIn({TP("orders", 0): 3})

    async def broken(c: Any) -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        asyncio.run(seek_with_flow_stopped(consumer, broken))
    asyncio.run(seek_with_flow_stopped(consumer, consumer.seek))
    assert ("seek", False) in consumer.calls


def test_apply_wraps_faust_perform_seek_once() -> None:
    faust_patches.apply()
    patched = Consumer.perform_seek
    faust_patches.apply()
    assert Consumer.perform_seek is patched
    assert getattr(patched, "_streamapp_seek_with_flow_stopped", False)


class _Fetcher:
    def __init__(self, subscriptions: SubscriptionState) -> None:
        self._subscriptions = subscriptions


class _Thread:
    """What the livelock patch reads of faust's AIOKafkaConsumerThread: aiokafka's real
    subscription state, behind ``_ensure_consumer()._fetcher``."""

    def __init__(self, subscriptions: SubscriptionState) -> None:
        self._fetcher = _Fetcher(subscriptions)

    def _ensure_consumer(self) -> _Thread:
        return self


async def test_the_livelock_check_skips_a_partition_aiokafka_has_no_position_for() -> None:
    subscriptions = SubscriptionState()
    thread = _Thread(subscriptions)
    orders0 = TP("orders", 0)
    assert not has_position(thread, orders0)  # nothing subscribed
    subscriptions.subscribe({"orders"})
    subscriptions.assign_from_subscribed({TopicPartition("orders", 0)})
    state = subscriptions.subscription.assignment.state_value(TopicPartition("orders", 0))
    with pytest.raises(AssertionError):
        _ = state.position  # what crashed faust's verify_event_path
    assert not has_position(thread, orders0)
    assert not has_position(thread, TP("orders", 1))  # not assigned
    state.seek(7)
    assert has_position(thread, orders0)


async def test_apply_guards_faust_verify_event_path() -> None:
    faust_patches.apply()
    faust_patches.apply()  # idempotent: one guard, not two
    patched = AIOKafkaConsumerThread.verify_event_path
    assert patched.__module__ == faust_patches.__name__
    subscriptions = SubscriptionState()
    subscriptions.subscribe({"orders"})
    subscriptions.assign_from_subscribed({TopicPartition("orders", 0)})
    thread = _Thread(subscriptions)
    # No position yet: faust's check is not run (on this stand-in it would fail at once).
    assert patched(thread, 0.0, TP("orders", 0)) is None
    # With a position, faust's own check runs (and finds none of faust's attributes here).
    subscriptions.subscription.assignment.state_value(TopicPartition("orders", 0)).seek(3)
    with pytest.raises(AttributeError, match="_verify_aiokafka_event_path"):
        patched(thread, 0.0, TP("orders", 0))
