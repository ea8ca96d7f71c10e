"""Table recovery progress, read from faust's Recovery service when Prometheus scrapes.

After a rebalance a worker restores its tables' active partitions from their changelogs
before its agents process anything (``/ready`` is 503 meanwhile). faust keeps, per
changelog partition, the highwater it must reach and the offset it has restored: their
difference is what remains. Every table is listed, with 0 when nothing remains, so a
dashboard shows a flat line instead of gaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from faust.types import TP

from streamapp.metrics import Sample


def remaining_by_table(
    tables: Iterable[str], remaining: Mapping[TP, int], table_of: Mapping[TP, Any]
) -> list[Sample]:
    """Records left to restore per table (negative counts, which faust can report
    between its own updates, count as 0)."""
    totals = dict.fromkeys(tables, 0)
    for tp, count in remaining.items():
        table = table_of.get(tp)
        if table is not None and table.name in totals:
            totals[table.name] += max(0, count)
    return [((name,), float(count)) for name, count in sorted(totals.items())]


def _recovery(app: Any) -> Any | None:
    """faust's Recovery service of a worker that has started, else None."""
    if getattr(app, "_consumer", None) is None:
        return None
    return app.tables.recovery


def recovery_remaining(app: Any) -> Iterator[Sample]:
    recovery = _recovery(app)
    if recovery is None:
        return iter(())
    return iter(remaining_by_table(app.tables, recovery.active_remaining(), recovery.tp_to_table))


def recovery_active(app: Any) -> Iterator[Sample]:
    recovery = _recovery(app)
    if recovery is None:
        return iter(())
    return iter([((), 1.0 if recovery.in_recovery else 0.0)])
