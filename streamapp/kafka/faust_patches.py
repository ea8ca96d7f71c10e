"""Two fixes for faust-streaming: records lost when a recovery seeks to committed
offsets, and a worker crashed by its livelock detector during a rebalance.

**Seek.**
faust-streaming 0.15.x ends every recovery (``Recovery.on_recovery_completed``, and
``_resume_streams``) with: resume the stream partitions; ``await
consumer.perform_seek()``; ``app.flow_control.resume()``; ``consumer.resume_flow()``.
The consumer's flow is already running then (the changelog restore needed it), so the
fetch loop keeps handing records to the agents' streams while ``perform_seek`` asks the
broker for each partition's committed offset, one round trip at a time (~100 ms for
~40 partitions). Those records are lost in three ways: a stream drops what it dequeues
while flow control is suspended (without acking it); ``flow_control.resume()`` empties
every stream's queue; and once a partition has been sought, the records fetched again
are dropped as "already read". When ``perform_seek`` finally resets faust's read
offsets, the consumer's position is past the lost records, the next record looks like a
gap after them, and faust marks the gap acknowledged and commits past it. Nobody ever
processes them: seen as an orchestrator input skipped after a ``kill -9``;
``tests/integration/test_restart_backlog.py`` lost records in every run without this.

The fix, in ``perform_seek``: stop the consumer's flow, wait for the fetch in flight (if
any) to come back, then seek, and leave the flow stopped. Every caller either resumes it
right after, behind ``flow_control.resume()`` (the recovery endings: queues are emptied
first, then fetching restarts at the committed offsets), or had it stopped already (the
fetch loop, which seeks back when a fetch returns while the flow is stopped; during our
seek that fetch is the one we waited for, so our seek already covers it and the call
returns at once). Partitions of this group that never had an offset committed go to the
beginning, as ``auto_offset_reset=earliest`` would, since faust's seek leaves them
wherever the fetch loop got to. Records a stream took before the seek may be processed
and then fetched again: a repeat, which every handler absorbs, never a loss.

Upstream: faust-streaming/faust#596 (open) describes the same recovery race from the
"gaps block committing" side; #606 / PR #707 (open) the related off-by-one in
``Consumer._new_offset`` that lets a commit pass an unacked record at the committed
offset (harmless here once no record is dropped: every agent runs one record at a time).

**Livelock detector.** Every ``commit_interval`` x 2.5 faust checks each assigned
partition (``AIOKafkaConsumerThread.verify_event_path``) and reads aiokafka's
``TopicPartitionState.position``, which in aiokafka 0.14 *asserts* that a position exists.
A partition just assigned, or reset while the group coordinator moves (a broker killed,
workers joining), has none yet: the AssertionError crashed the consumer and the worker
(seen with a third orders worker joining under load,
``tests/integration/test_scale_under_load.py``). The fix skips the check for such a
partition — there is nothing to verify until it has a position — and runs faust's
check unchanged otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

log = logging.getLogger(__name__)

#: A fetch waits at most ~1 s for records (faust's fetch loop timeout); this bounds our
#: wait for it if the broker is slow to answer.
FETCH_WAIT_S = 10.0

_PATCHED = "_streamapp_seek_with_flow_stopped"


class _SeekState:
    """Per consumer: fetches in flight and whether a seek is running."""

    def __init__(self) -> None:
        self.fetches = 0
        self.no_fetch = asyncio.Event()
        self.no_fetch.set()
        self.seeking = False


def _state(consumer: Any) -> _SeekState:
    state: _SeekState | None = consumer.__dict__.get("_streamapp_seek_state")
    if state is None:
        state = consumer.__dict__["_streamapp_seek_state"] = _SeekState()
    return state


def apply() -> None:
    """Patch faust's consumer once per process (idempotent)."""
    seek, getmany = Consumer.perform_seek, ThreadDelegateConsumer._getmany
    if getattr(seek, _PATCHED, False):
        return
    for name in ("stop_flow", "assignment", "_is_changelog_tp"):
        if not hasattr(Consumer, name):  # faust changed: re-check the bug before porting
            raise RuntimeError(f"faust Consumer has no {name}: review {__name__}")

    async def perform_seek(self: Any) -> None:
        await seek_with_flow_stopped(self, seek)

    async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109 (faust passes timeout=)
        return await counted_fetch(self, getmany(self, active_partitions, timeout))

    setattr(perform_seek, _PATCHED, True)
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    ThreadDelegateConsumer._getmany = _getmany  # type: ignore[method-assign]
    _patch_verify_event_path()


def _patch_verify_event_path() -> None:
    verify = AIOKafkaConsumerThread.verify_event_path
    if getattr(verify, _PATCHED, False):
        return

    def verify_event_path(self: Any, now: float, tp: Any) -> None:
        if not has_position(self, tp):
            return None
        return verify(self, now, tp)

    setattr(verify_event_path, _PATCHED, True)
    AIOKafkaConsumerThread.verify_event_path = verify_event_path  # type: ignore[method-assign]


def has_position(thread: Any, tp: Any) -> bool:
    """Whether aiokafka knows a fetch position for an assigned partition (False while it
    is being reset, or when it is not assigned now)."""
    subscription = thread._ensure_consumer()._fetcher._subscriptions.subscription
    assignment = None if subscription is None else subscription.assignment
    if assignment is None:
        return False
    state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return state is not None and bool(state.has_valid_position)


async def counted_fetch(consumer: Any, fetch: Awaitable[Any]) -> Any:
    """Await one fetch, known to be in flight meanwhile."""
    state = _state(consumer)
    state.fetches += 1
    state.no_fetch.clear()
    try:
        return await fetch
    finally:
        state.fetches -= 1
        if not state.fetches:
            state.no_fetch.set()


async def seek_with_flow_stopped(consumer: Any, seek: Callable[[Any], Awaitable[None]]) -> None:
    """Run faust's seek once nothing can be fetched; rewind never-committed partitions."""
    state = _state(consumer)
    if state.seeking:
        return
    state.seeking = True
    consumer.stop_flow()  # resumed by the caller, after it empties the stream queues
    try:
        try:
            await asyncio.wait_for(state.no_fetch.wait(), FETCH_WAIT_S)
        except TimeoutError:
            log.warning("a fetch is still in flight after %g s: seeking anyway", FETCH_WAIT_S)
        await seek(consumer)
        await _rewind_never_committed(consumer)
    finally:
        state.seeking = False


async def _rewind_never_committed(consumer: Any) -> None:
    if consumer.app.conf.consumer_auto_offset_reset != "earliest":
        return
    never = [
        TopicPartition(tp.topic, tp.partition)  # what aiokafka's seek accepts
        for tp in consumer.assignment()
        if consumer._committed_offset.get(tp) is None and not consumer._is_changelog_tp(tp)
    ]
    if never:
        owner = getattr(consumer, "_thread", None) or consumer
        await owner.seek_to_beginning(*never)
