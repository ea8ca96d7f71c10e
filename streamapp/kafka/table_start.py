"""A worker starts 1 s sooner: no fixed pause before faust's tables start.

faust-streaming's ``TableManager.on_start`` sleeps one second before it finalises the
tables' channels and starts recovery — room for tables declared late, while agents
start. A streamapp service declares every table when its modules are imported, before
the worker starts (``SERVICE_MODULES``; a table added later is refused by faust with
"Too late to add tables"), so the pause only delays every start: the consumer
subscribes, and the worker becomes ready, a second later than it could. That second is
on the path of every restart after a crash or a deploy, and of every worker a test
starts.

The patch runs faust's ``on_start`` without the pause. It checks that faust's method
still does what is replaced (a sleep, then ``_update_channels`` and
``recovery.start``) and refuses to patch otherwise.
"""

from __future__ import annotations

from typing import Any

from faust.tables.manager import TableManager

_PATCHED = "_streamapp_start_without_pause"
#: Names faust's on_start uses: the pause and the two steps the patch keeps.
_EXPECTED = {"sleep", "should_stop", "_update_channels", "recovery", "start"}


async def start_tables(manager: Any) -> None:
    """faust's ``TableManager.on_start`` minus its one-second sleep."""
    if not manager.should_stop:
        await manager._update_channels()
        await manager.recovery.start()


def apply() -> None:
    """Patch faust's TableManager once per process (idempotent)."""
    on_start = TableManager.on_start
    if getattr(on_start, _PATCHED, False):
        return
    if set(on_start.__code__.co_names) != _EXPECTED:  # faust changed: review before porting
        raise RuntimeError(f"faust's TableManager.on_start changed: review {__name__}")

    async def patched(self: Any) -> None:
        await start_tables(self)

    setattr(patched, _PATCHED, True)
    patched.__wrapped__ = on_start  # type: ignore[attr-defined]
    TableManager.on_start = patched  # type: ignore[method-assign]
