from __future__ import annotations

from typing import Any

import orjson

from streamapp.verify import Report, check_replies, check_streams


def ev(aggregate: str, version: int, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "eventId": event_id or f"{aggregate}-{version}",
        "aggregateId": aggregate,
        "version": version,
        "data": data,
    }


def test_clean_streams_with_identical_republished_copies_pass() -> None:
    report = Report()
    check_streams([ev("a", 1), ev("a", 2), ev("a", 2), ev("b", 1)], report)
    assert report.ok
    assert report.checked == {"events": 3, "event records": 4, "streams": 2}


def test_gaps_conflicts_and_double_application_are_reported_with_ids() -> None:
    report = Report()
    check_streams(
        [
            ev("a", 1),
            ev("a", 3),  # gap at 2
            ev("b", 1),
            ev("b", 1, "other"),  # two different events at b v1
            ev("c", 1, "x"),
            ev("c", 2, "x"),
        ],  # one event (command) applied twice
        report,
    )
    assert not report.ok
    joined = "\n".join(report.violations)
    assert "a: gap, versions [2] missing" in joined
    assert "b v1: 2 different events share the version" in joined
    assert "event x stored at [('c', 1), ('c', 2)]: a command applied twice" in joined


def test_every_named_command_needs_a_reply() -> None:
    report = Report()
    commands = [orjson.dumps({"commandId": "c1"}), orjson.dumps({"commandId": "c2"}), b"{bad"]
    check_replies(commands, [{"commandId": "c1"}], report)
    assert report.violations == ["1 command(s) without a reply: ['c2']"]
    assert report.checked["commands"] == 2
