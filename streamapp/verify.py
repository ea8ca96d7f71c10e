"""``streamapp verify``: check the contract's invariants from outside (topics only).

Checked today (the order event store): invariant 4 — no aggregate stream has a gap or a
duplicate version, no command is applied twice — and, for orders.commands, that every
command with a readable commandId got a reply (invariant 5's "nothing silently
dropped"). Invariants 1-3 (sagas, stock, money) arrive with the saga services.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamapp.kafka.records import read_all
from streamapp.settings import Settings


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check_streams(events: Iterable[Mapping[str, Any]], report: Report) -> None:
    """Invariant 4 on an event topic: versions 1..n, one event per version, each event
    (hence each command's effect) at exactly one position."""
    at: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    positions: dict[str, set[tuple[str, int]]] = defaultdict(set)
    count = 0
    for event in events:
        count += 1
        where = (event["aggregateId"], int(event["version"]))
        at[where].add(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
        positions[event["eventId"]].add(where)
    versions: dict[str, set[int]] = defaultdict(set)
    for (aggregate, version), copies in at.items():
        versions[aggregate].add(version)
        if len(copies) > 1:
            report.violations.append(
                f"{aggregate} v{version}: {len(copies)} different events share the version"
            )
    for aggregate, seen in sorted(versions.items()):
        missing = sorted(set(range(1, max(seen) + 1)) - seen)
        if missing:
            report.violations.append(f"{aggregate}: gap, versions {missing[:10]} missing")
    for event_id, places in positions.items():
        if len(places) > 1:
            report.violations.append(
                f"event {event_id} stored at {sorted(places)}: a command applied twice"
            )
    report.checked["events"] = len(at)
    report.checked["event records"] = count  # re-published identical copies included
    report.checked["streams"] = len(versions)


def check_replies(
    commands: Iterable[bytes | None], replies: Iterable[Mapping[str, Any]], report: Report
) -> None:
    """Every command record that names a commandId has at least one reply."""
    answered = {reply.get("commandId") for reply in replies}
    asked = set()
    for raw in commands:
        try:
            doc = orjson.loads(raw or b"")
        except orjson.JSONDecodeError:
            continue  # cannot name its command: it is in the DLQ, checked there
        if isinstance(doc, dict) and isinstance(doc.get("commandId"), str):
            asked.add(doc["commandId"])
    unanswered = sorted(asked - answered)
    if unanswered:
        report.violations.append(f"{len(unanswered)} command(s) without a reply: {unanswered[:10]}")
    report.checked["commands"] = len(asked)


async def verify(settings: Settings) -> Report:
    report = Report()
    events = await read_all(settings.bootstrap, settings.topic("orders.events"))
    check_streams((orjson.loads(r.value) for r in events), report)
    commands = await read_all(settings.bootstrap, settings.topic("orders.commands"))
    replies = await read_all(settings.bootstrap, settings.topic("orders.replies"))
    check_replies((r.value for r in commands), (orjson.loads(r.value) for r in replies), report)
    return report


def run(settings: Settings) -> Report:
    return asyncio.run(verify(settings))
