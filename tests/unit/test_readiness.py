from __future__ import annotations

from dataclasses import replace

from streamapp.health import ReadinessInputs, readiness

READY = ReadinessInputs(
    assignment_received=True,
    rebalancing=False,
    recovery_completed=True,
    in_recovery=False,
    assigned_partitions=4,
)


def test_ready_when_assigned_and_recovered() -> None:
    ok, body = readiness(READY)
    assert ok and body["ready"] is True and "waitingFor" not in body
    assert body["assignedPartitions"] == 4


def test_an_empty_assignment_is_still_ready() -> None:
    assert readiness(replace(READY, assigned_partitions=0))[0]


def test_not_ready_before_assignment_during_rebalance_or_recovery() -> None:
    cases = {
        "waiting for partition assignment": replace(READY, assignment_received=False),
        "rebalancing": replace(READY, rebalancing=True),
        "recovering tables from changelogs": replace(READY, in_recovery=True),
    }
    for reason, inputs in cases.items():
        ok, body = readiness(inputs)
        assert not ok and body["ready"] is False and body["waitingFor"] == [reason]
    ok, body = readiness(replace(READY, recovery_completed=False, rebalancing=True))
    assert not ok and len(body["waitingFor"]) == 2


def test_not_ready_while_a_service_waits_for_its_own_start() -> None:
    ok, body = readiness(replace(READY, pending=("reply consumer starting",)))
    assert not ok and body["waitingFor"] == ["reply consumer starting"]
