"""faust's tables start without its fixed one-second pause (streamapp/kafka/table_start.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.manager import TableManager

from streamapp.kafka import table_start


class Manager:
    """What TableManager.on_start touches, recording the calls."""

    def __init__(self, *, stopping: bool = False) -> None:
        self.should_stop = stopping
        self.calls: list[str] = []
        outer = self

        class Recovery:
            async def start(self) -> None:
                outer.calls.append("recovery.start")

        self.recovery = Recovery()

    async def sleep(self, seconds: float) -> None:
        self.calls.append(f"sleep {seconds:g}")

    async def _update_channels(self) -> None:
        self.calls.append("update_channels")


def run(on_start: Any, manager: Manager) -> list[str]:
    asyncio.run(on_start(manager))
    return manager.calls


def test_the_tables_start_at_once_with_the_same_steps() -> None:
    table_start.apply()
    patched = TableManager.on_start
    original = patched.__wrapped__  # type: ignore[attr-defined]
    assert run(original, Manager()) == ["sleep 1", "update_channels", "recovery.start"]
    assert run(patched, Manager()) == ["update_channels", "recovery.start"]
    assert run(patched, Manager(stopping=True)) == []
    table_start.apply()  # idempotent
    assert TableManager.on_start is patched
