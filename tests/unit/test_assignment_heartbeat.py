"""The join completes with heartbeats going, and stops them if it fails
(streamapp/kafka/assignment_heartbeat.py; the membership itself is shown on a real broker
in tests/integration/test_assignment_heartbeat.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamapp.kafka.assignment_heartbeat import complete_join_heartbeating


class Coordinator:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def _start_heartbeat_task(self) -> None:
        self.calls.append("start heartbeat")

    async def _stop_heartbeat_task(self) -> None:
        self.calls.append("stop heartbeat")


async def listener_returns(coordinator: Any, *args: Any) -> None:
    coordinator.calls.append(f"listener {args}")


async def listener_cancelled(coordinator: Any, *args: Any) -> None:
    coordinator.calls.append("listener")
    raise asyncio.CancelledError


def test_the_heartbeat_starts_before_the_listener_runs() -> None:
    coordinator = Coordinator()
    asyncio.run(complete_join_heartbeating(coordinator, listener_returns, 7, "member"))
    assert coordinator.calls == ["start heartbeat", "listener (7, 'member')"]


def test_a_failed_join_completion_stops_the_heartbeat_again() -> None:
    coordinator = Coordinator()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(complete_join_heartbeating(coordinator, listener_cancelled))
    assert coordinator.calls == ["start heartbeat", "listener", "stop heartbeat"]
