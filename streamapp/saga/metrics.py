"""What the saga metrics are computed from (pure): step latencies, sagas by state.

A step's latency runs from its command's first send (``StepState.sent_ms``; re-sends and
compensation retries included) to the transition that settles it: an answer, a timeout,
or the order's cancel. Late answers, after a step timed out or was abandoned, are not
observed again: the step's wait was already counted when it timed out.

A fan-out step that ends while some branches succeeded goes from RUNNING straight to
compensating them; its outcome is then read from the transition: a failed branch
(failed), its deadline passed (timed_out), else the order's cancel (abandoned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streamapp.saga.machine import (
    ABANDONED,
    COMPENSATED,
    COMPENSATING,
    COMPENSATION_FAILED,
    COMPLETED,
    EXECUTING,
    FAILED,
    RUNNING,
    STARTED,
    STEP_COMPENSATED,
    STEP_COMPENSATING,
    STEP_FAILED,
    SUCCEEDED,
    TIMED_OUT,
    SagaState,
    StepState,
)

#: The status a step's awaited command leaves -> statuses that settle it -> outcome label.
SETTLED = {
    RUNNING: {
        SUCCEEDED: "succeeded",
        STEP_FAILED: "failed",
        TIMED_OUT: "timed_out",
        ABANDONED: "abandoned",
    },
    STEP_COMPENSATING: {
        STEP_COMPENSATED: "compensated",
        COMPENSATION_FAILED: "compensation_failed",
    },
}

#: Every saga state, so that each has a sample (0 included) on every scrape.
STATES = (STARTED, EXECUTING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)


def step_latencies(
    before: SagaState | None, after: SagaState | None, now_ms: int
) -> list[tuple[str, str, float]]:
    """(step, outcome, seconds) of every step that one transition settled."""
    if before is None or after is None:
        return []
    settled = []
    old_steps = {s.name: s for s in before.steps}
    for new in after.steps:
        old = old_steps.get(new.name)
        if old is None or old.sent_ms is None or old.status == new.status:
            continue
        outcome = SETTLED.get(old.status, {}).get(new.status)
        if old.status == RUNNING and new.status == STEP_COMPENSATING:
            outcome = _fan_out_outcome(old, new, now_ms)
        if outcome is not None:
            settled.append((new.name, outcome, max(0, now_ms - old.sent_ms) / 1000))
    return settled


def _fan_out_outcome(old: StepState, new: StepState, now_ms: int) -> str:
    if any(branch.status == STEP_FAILED for branch in new.branches):
        return "failed"
    if old.deadline_ms is not None and old.deadline_ms <= now_ms:
        return "timed_out"
    return "abandoned"


def in_flight_by_state(
    keys: Iterable[bytes], load: Callable[[bytes], Mapping[str, Any] | None]
) -> dict[str, int]:
    """How many of the sagas `keys` (the in-flight deadlines table) are in each state;
    `load` reads a saga's stored record (orchestration.SagaRecord.to_dict), None if gone."""
    counts = dict.fromkeys(STATES, 0)
    for key in keys:
        record = load(key)
        if record is not None:
            state = str(record["saga"]["state"])
            counts[state] = counts.get(state, 0) + 1
    return counts
