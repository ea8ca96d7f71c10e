"""Readiness as a pure decision, so that its rules are unit-testable without a worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReadinessInputs:
    """The worker state /ready looks at."""

    assignment_received: bool  # the group has assigned this worker its partitions at least once
    rebalancing: bool  # a rebalance is under way: partitions may move
    recovery_completed: bool  # table recovery (changelog restore) has finished at least once
    in_recovery: bool  # a recovery is running now (after a later rebalance)
    assigned_partitions: int
    #: what a service still waits for besides the consumer (e.g. its reply consumer)
    pending: tuple[str, ...] = ()


def readiness(inputs: ReadinessInputs) -> tuple[bool, dict[str, Any]]:
    """Ready once partitions are assigned and no rebalance or recovery is in progress.

    A worker with an empty assignment (more workers than partitions) is ready: it has
    taken part in the rebalance and answers for the keys of its peers by forwarding.
    """
    reasons = []
    if not inputs.assignment_received:
        reasons.append("waiting for partition assignment")
    if inputs.rebalancing:
        reasons.append("rebalancing")
    if not inputs.recovery_completed or inputs.in_recovery:
        reasons.append("recovering tables from changelogs")
    reasons.extend(inputs.pending)
    ready = not reasons
    body: dict[str, Any] = {
        "ready": ready,
        "assignmentReceived": inputs.assignment_received,
        "rebalancing": inputs.rebalancing,
        "recoveryCompleted": inputs.recovery_completed,
        "inRecovery": inputs.in_recovery,
        "assignedPartitions": inputs.assigned_partitions,
    }
    if reasons:
        body["waitingFor"] = reasons
    return ready, body
