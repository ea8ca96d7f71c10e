"""A member whose assignment callback outlasts the session timeout stays in its group.

A plain aiokafka consumer on the test broker, with a 2 s session and a listener that
takes 3 s over its first assignment (what faust's listener does on a slow start).
Patched (streamapp/kafka/assignment_heartbeat.py), the member heartbeats meanwhile and
keeps its one assignment; unpatched — aiokafka as released, checked here too so the test
shows the defect it guards against — the coordinator drops it and it joins again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.group_coordinator import GroupCoordinator

from streamapp.kafka import assignment_heartbeat

pytestmark = pytest.mark.integration

SESSION_MS = 2000
CALLBACK_S = 3.0


class SlowFirstAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assignments = 0

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assignments += 1
        if self.assignments == 1:
            await asyncio.sleep(CALLBACK_S)


async def _assignments_after_a_slow_start(bootstrap: str) -> int:
    topic, group = f"hb-{uuid.uuid4().hex[:8]}", f"hb-group-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    listener = SlowFirstAssignment()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=500,
        enable_auto_commit=False,
    )
    consumer.subscribe([topic], listener=listener)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while listener.assignments < 1:
                await consumer.getmany(timeout_ms=100)
        # the callback ends 3 s later; a dropped member learns it at its next heartbeat
        # (0.5 s) and joins again within ~1 s: two session timeouts cover both with room
        loop = asyncio.get_running_loop()
        until = loop.time() + CALLBACK_S + 2 * SESSION_MS / 1000
        while loop.time() < until:
            await consumer.getmany(timeout_ms=100)
        return listener.assignments
    finally:
        await consumer.stop()


def _with(on_join_complete: Callable[..., Any], bootstrap: str) -> int:
    saved = GroupCoordinator._on_join_complete
    GroupCoordinator._on_join_complete = on_join_complete  # type: ignore[method-assign]
    try:
        return asyncio.run(_assignments_after_a_slow_start(bootstrap))
    finally:
        GroupCoordinator._on_join_complete = saved  # type: ignore[method-assign]


def test_a_slow_assignment_callback_keeps_its_membership(bootstrap: str) -> None:
    assignment_heartbeat.apply()
    patched = GroupCoordinator._on_join_complete
    original = patched.__wrapped__  # type: ignore[attr-defined]
    assert _with(patched, bootstrap) == 1
    assert _with(original, bootstrap) == 2  # as released: dropped once, joined again
