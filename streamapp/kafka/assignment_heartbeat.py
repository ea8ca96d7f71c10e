"""Keep heartbeating while the assignment callback runs, as Kafka's Java client does.

aiokafka 0.14 stops a member's heartbeat task before it rejoins and starts it again only
when the whole join has returned: JoinGroup, SyncGroup *and* the rebalance listener's
``on_partitions_assigned``. faust's listener is long on a worker's first assignment
(tables and their RocksDB partitions, standby and recovery set-up, agents' streams), so
a member whose callback outlasts the session timeout is dropped by the coordinator right
after it joined ("Heartbeat failed: local member_id was not recognized"), rejoins, and
every member pays one more rebalance. With a short session timeout — what makes a
``kill -9`` noticed fast — every starting worker did this (docs/scaling.md, "Failover").

Kafka's Java consumer enables its heartbeat thread when SyncGroup succeeds, before it
calls the listener; librdkafka made the same change (confluentinc/librdkafka#598). The
fix here does the same: the heartbeat task starts as the join completes, before the
listener. ``ensure_active_group`` starting it afterwards is then a no-op (it starts
only a missing task). A heartbeat during the callback that hears of a new rebalance
makes the member rejoin after the callback, as it would have after its next heartbeat.
If the join completion fails instead (the listener cancelled, the assignment not
decodable), the heartbeat stops again, so the coordinator drops the member as before.

The trade-off, as with the Java client: a callback that never returns now keeps its
partitions (the member stays alive) where before it lost them after one session
timeout; and a rebalance another member starts meanwhile waits for the callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator

_PATCHED = "_streamapp_heartbeat_during_assignment"


async def complete_join_heartbeating(
    coordinator: Any, complete: Callable[..., Awaitable[None]], *args: Any
) -> None:
    """Run aiokafka's join completion (the listener included) with heartbeats going."""
    coordinator._start_heartbeat_task()  # generation and member id are set: SyncGroup is done
    try:
        await complete(coordinator, *args)
    except BaseException:  # no member to keep alive: stop, as aiokafka would not have started
        await coordinator._stop_heartbeat_task()
        raise


def apply() -> None:
    """Patch aiokafka's group coordinator once per process (idempotent)."""
    on_join_complete = GroupCoordinator._on_join_complete
    if getattr(on_join_complete, _PATCHED, False):
        return
    for name in ("_start_heartbeat_task", "_stop_heartbeat_task"):
        if not hasattr(GroupCoordinator, name):  # aiokafka changed: re-check before porting
            raise RuntimeError(f"aiokafka's GroupCoordinator has no {name}: review {__name__}")

    async def _on_join_complete(self: Any, *args: Any) -> None:
        await complete_join_heartbeating(self, on_join_complete, *args)

    setattr(_on_join_complete, _PATCHED, True)
    _on_join_complete.__wrapped__ = on_join_complete  # type: ignore[attr-defined]
    GroupCoordinator._on_join_complete = _on_join_complete
