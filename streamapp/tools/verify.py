"""``streamapp verify``: check the contract's invariants from outside.

Reads only the contract's surfaces, as any client could: the topics (from the beginning,
outside any consumer group) and the services' HTTP views. The checks are pure functions
of decoded events and views (unit-testable without a broker); :func:`verify` does the I/O.

- 1 sagas: every created order has exactly one terminal saga outcome, and the order's
  own stream agrees with it (COMPLETED: confirmed; COMPENSATED: cancelled).
- 2 stock: the inventory view conserves the seeded units, and the reservations on
  inventory.events explain its reserved and committed units.
- 3 money: one charge per saga, one refund per compensated charge, and the payments
  view's balances are exactly what the payment events say.
- 4 event store: streams gapless, one event per version, no command applied twice; and
  every command on orders.commands got a reply (nothing silently dropped).

Participant and saga events are deduplicated by eventId: a re-published copy (same
eventId) is one event; two different eventIds are two events. Run it when the system
is idle: views read while orders are in flight do not match the topics read before.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from streamapp import topics
from streamapp.kafka.topics import TopicError
from streamapp.messages import decimal_string
from streamapp.saga.machine import COMPENSATED, COMPLETED, FAILED, TERMINAL_EVENTS
from streamapp.seeds import load_seeds
from streamapp.settings import Settings
from streamapp.tools.records import read_all
from streamapp.web import client

INVARIANTS = (1, 2, 3, 4)
#: How long one HTTP view may take to answer.
VIEW_TIMEOUT_S = 10.0
#: Offending ids shown per violation.
SHOWN_IDS = 10


Event = Mapping[str, Any]


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # visible but allowed (FAILED sagas)

    @property
    def ok(self) -> bool:
        return not self.violations

    def flag(self, ids: Collection[str], what: str) -> None:
        """One violation for all offending ids of one kind: the count and the first few."""
        if ids:
            self.violations.append(f"{len(ids)} {what}: {sorted(ids)[:SHOWN_IDS]}")


class ViewError(Exception):
    """An HTTP view could not be read or did not have the contract's shape."""


def distinct(events: Iterable[Event]) -> list[Event]:
    """The events once each: re-published copies share their eventId."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(str(event["eventId"]), event)
    return list(seen.values())


def _by_saga(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in distinct(events):
        grouped[str(event["aggregateId"])].append(event)
    return grouped


def _amount(value: Any) -> Decimal:
    """A money value as the contract writes it: a finite decimal string."""
    amount = decimal_string(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return amount


def _units(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"units must be a whole number, got {value!r}")
    return value


# -- invariant 4 ------------------------------------------------------------------------
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


# -- invariant 1 ------------------------------------------------------------------------
def check_sagas(
    order_events: Iterable[Event], saga_events: Iterable[Event], report: Report
) -> dict[str, str]:
    """Invariant 1: each created order ends in exactly one terminal saga state, which
    its order stream agrees with. Returns saga id -> the single terminal state (sagas
    with none or several are left out), which invariants 2 and 3 build on."""
    created: set[str] = set()
    order_types: dict[str, set[str]] = defaultdict(set)
    for event in order_events:
        order = str(event["aggregateId"])
        order_types[order].add(str(event["eventType"]))
        if event["eventType"] == "OrderCreated":
            created.add(order)
    ends: dict[str, set[str]] = defaultdict(set)
    sagas: set[str] = set()
    for saga, events in _by_saga(saga_events).items():
        sagas.add(saga)
        for event in events:
            if event["eventType"] in TERMINAL_EVENTS:
                ends[saga].add(TERMINAL_EVENTS[event["eventType"]])
    # A saga that had compensated turns FAILED when a late success's compensation then
    # fails for good (the machine's one allowed change of terminal state): FAILED counts.
    for states in ends.values():
        if states == {COMPENSATED, FAILED}:
            states.discard(COMPENSATED)
    outcomes = {saga: next(iter(states)) for saga, states in ends.items() if len(states) == 1}

    report.flag(
        created - set(ends), "created order(s) whose saga is not terminal (or never started)"
    )
    report.flag(
        [f"{saga} {sorted(states)}" for saga, states in ends.items() if len(states) > 1],
        "saga(s) with more than one terminal outcome",
    )
    completed = {saga for saga, state in outcomes.items() if state == COMPLETED}
    compensated = {saga for saga, state in outcomes.items() if state == COMPENSATED}
    failed = {saga for saga, state in outcomes.items() if state == FAILED}
    report.flag(
        [s for s in completed if "OrderConfirmed" not in order_types[s]],
        "COMPLETED saga(s) whose order has no OrderConfirmed",
    )
    report.flag(
        [s for s in completed if "OrderCancelled" in order_types[s]],
        "COMPLETED saga(s) whose order was cancelled",
    )
    report.flag(
        [s for s in compensated if "OrderCancelled" not in order_types[s]],
        "COMPENSATED saga(s) whose order has no OrderCancelled",
    )
    report.flag(
        [s for s in compensated if "OrderConfirmed" in order_types[s]],
        "COMPENSATED saga(s) whose order was confirmed",
    )
    if failed:
        report.notes.append(
            f"{len(failed)} saga(s) FAILED (a compensation failed permanently): "
            f"{sorted(failed)[:SHOWN_IDS]}"
        )
    report.checked["orders"] = len(created)
    report.checked["sagas"] = len(sagas)
    report.checked["completed"] = len(completed)
    report.checked["compensated"] = len(compensated)
    report.checked["failed"] = len(failed)
    return outcomes


# -- invariant 2 ------------------------------------------------------------------------
def _lines(event: Event) -> Counter[str]:
    """An inventory event's lines merged per sku (units per sku)."""
    lines = event["data"]["lines"]
    if not isinstance(lines, list):
        raise ValueError("lines must be a list")
    units: Counter[str] = Counter()
    for line in lines:
        units[str(line["sku"])] += _units(line["quantity"])
    return units


def inventory_levels(doc: Any) -> dict[str, tuple[int, int, int]]:
    """The ``GET /inventory`` body as sku -> (available, reserved, committed)."""
    try:
        return {
            str(item["sku"]): (
                _units(item["available"]),
                _units(item["reserved"]),
                _units(item["committed"]),
            )
            for item in doc["items"]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ViewError(f"inventory view: unexpected body ({exc!r})") from None


def ordered_skus(orders: Iterable[Event]) -> dict[str, set[str]]:
    """order id -> the skus its OrderCreated lists (what a completed saga commits)."""
    skus: dict[str, set[str]] = {}
    for event in orders:
        if event["eventType"] == "OrderCreated":
            items = event["data"].get("items")
            if isinstance(items, list):
                found = {str(i["sku"]) for i in items if isinstance(i, dict) and "sku" in i}
                skus[str(event["aggregateId"])] = found
    return skus


def check_inventory(
    events: Iterable[Event],
    outcomes: Mapping[str, str],
    levels: Mapping[str, tuple[int, int, int]] | None,
    stock: Mapping[str, int],
    report: Report,
    ordered: Mapping[str, set[str]] | None = None,
) -> None:
    """Invariant 2: settled sagas hold no reservation, a completed one committed every
    sku of its order (`ordered`, from OrderCreated) and released none, a compensated one
    committed nothing; and the view's units are the seeded units, split as
    inventory.events say. A saga reserves each sku on its own (one command per sku), so
    the events are read per saga and sku. `levels` is None when the view could not be
    read (events are still checked)."""
    malformed: list[str] = []
    reserved_twice, settled_unreserved, wrong_lines, both = [], [], [], []
    open_units: Counter[str] = Counter()
    committed_units: Counter[str] = Counter()
    # saga -> sku -> [units reserved], [released], [committed] (one entry per event)
    units_of: dict[str, dict[str, tuple[list[int], list[int], list[int]]]] = {}
    column = {"InventoryReserved": 0, "InventoryReleased": 1, "InventoryCommitted": 2}
    for saga, saga_events in _by_saga(events).items():
        per_sku = units_of.setdefault(saga, {})
        for event in saga_events:
            index = column.get(event["eventType"])
            if index is None:
                continue
            try:
                lines = _lines(event)
            except (KeyError, TypeError, ValueError):
                malformed.append(str(event["eventId"]))
                continue
            # a release or commit with no lines settled nothing (nothing was held)
            for sku, units in lines.items():
                per_sku.setdefault(sku, ([], [], []))[index].append(units)
        for sku, (reservations, releases, commits) in per_sku.items():
            where = f"{saga}/{sku}"
            if len(set(reservations)) > 1:
                reserved_twice.append(where)
            reservation = reservations[0] if reservations else None
            if reservation is None and (releases or commits):
                settled_unreserved.append(where)
            if reservation is not None and any(u != reservation for u in releases + commits):
                wrong_lines.append(where)
            if releases and commits:
                both.append(where)
            if reservation is not None and not releases and not commits:
                open_units[sku] += reservation
            if commits:
                committed_units[sku] += commits[0]
    report.flag(malformed, "malformed inventory event(s)")
    report.flag(reserved_twice, "sku(s) of a saga reserved twice with different units")
    report.flag(settled_unreserved, "sku(s) of a saga released or committed, never reserved")
    report.flag(wrong_lines, "sku(s) of a saga released or committed other units than reserved")
    report.flag(both, "sku(s) of a saga both released and committed")

    def skus(saga: str, column: int) -> set[str]:
        return {sku for sku, columns in units_of.get(saga, {}).items() if columns[column]}

    def still_held(saga: str) -> set[str]:
        return {
            sku
            for sku, (reserved, released, committed) in units_of.get(saga, {}).items()
            if reserved and not released and not committed
        }

    compensated = [s for s, state in outcomes.items() if state == COMPENSATED]
    completed = [s for s, state in outcomes.items() if state == COMPLETED]
    report.flag(
        [s for s in compensated if still_held(s)],
        "COMPENSATED saga(s) still holding a reservation (no InventoryReleased)",
    )
    report.flag([s for s in compensated if skus(s, 2)], "COMPENSATED saga(s) that committed stock")
    report.flag(
        [s for s in completed if not skus(s, 0)], "COMPLETED saga(s) without InventoryReserved"
    )
    if ordered is not None:
        report.flag(
            [s for s in completed if s in ordered and skus(s, 0) != ordered[s]],
            "COMPLETED saga(s) that did not reserve every sku of the order",
        )
    report.flag(
        [s for s in completed if skus(s, 0) - skus(s, 2)],
        "COMPLETED saga(s) whose stock was not committed",
    )
    report.flag(
        [s for s in completed if skus(s, 1)], "COMPLETED saga(s) with a released reservation"
    )
    if levels is None:
        return
    report.flag(set(levels) - set(stock), "sku(s) in the inventory view that were never seeded")
    report.flag(set(stock) - set(levels), "seeded sku(s) missing from the inventory view")
    totals, negative, reserved, committed = [], [], [], []
    for sku, (available, held, taken) in levels.items():
        if sku in stock and available + held + taken != stock[sku]:
            totals.append(f"{sku}: {available}+{held}+{taken} != {stock[sku]}")
        if min(available, held, taken) < 0:
            negative.append(sku)
    for sku in set(levels) | set(open_units) | set(committed_units):
        held, taken = levels.get(sku, (0, 0, 0))[1:]
        if held != open_units[sku]:
            reserved.append(f"{sku}: view {held}, open reservations {open_units[sku]}")
        if taken != committed_units[sku]:
            committed.append(f"{sku}: view {taken}, committed {committed_units[sku]}")
    report.flag(totals, "sku(s) whose available+reserved+committed is not the seeded stock")
    report.flag(negative, "sku(s) with negative units")
    report.flag(reserved, "sku(s) whose reserved units differ from open reservations")
    report.flag(committed, "sku(s) whose committed units differ from InventoryCommitted")
    report.checked["skus"] = len(levels)


# -- invariant 3 ------------------------------------------------------------------------
def payment_accounts(doc: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """The ``GET /payments/accounts`` body as customerId -> (creditLimit, balance)."""
    try:
        return {
            str(account["customerId"]): (
                _amount(account["creditLimit"]),
                _amount(account["balance"]),
            )
            for account in doc["accounts"]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ViewError(f"payments view: unexpected body ({exc!r})") from None


def check_payments(
    events: Iterable[Event],
    outcomes: Mapping[str, str],
    accounts: Mapping[str, tuple[Decimal, Decimal]] | None,
    limits: Mapping[str, Decimal],
    report: Report,
) -> None:
    """Invariant 3: no saga charged twice, each compensated charge refunded once with its
    amount, and every balance is exactly charges minus refunds (distinct events), within
    the seeded credit limit. `accounts` is None when the view could not be read."""
    malformed: list[str] = []
    charged_twice, refunded_twice, refund_unpaid, wrong_refund = [], [], [], []
    expected: dict[str, Decimal] = defaultdict(Decimal)
    paid: dict[str, Decimal] = {}  # saga -> its one charge
    refunded: set[str] = set()
    for saga, saga_events in _by_saga(events).items():
        charges: list[Decimal] = []
        refunds: list[Decimal] = []
        for event in saga_events:
            kind = event["eventType"]
            if kind not in ("PaymentProcessed", "PaymentRefunded"):
                continue
            try:
                customer, amount = (
                    str(event["data"]["customerId"]),
                    _amount(event["data"]["amount"]),
                )
            except (KeyError, TypeError, ValueError):
                malformed.append(str(event["eventId"]))
                continue
            if kind == "PaymentProcessed":
                charges.append(amount)
                expected[customer] += amount
            elif amount:  # a refund of "0" gave back nothing (nothing had been charged)
                refunds.append(amount)
                expected[customer] -= amount
        if len(charges) > 1:
            charged_twice.append(saga)
        if len(refunds) > 1:
            refunded_twice.append(saga)
        if refunds and not charges:
            refund_unpaid.append(saga)
        if len(charges) == 1 and len(refunds) == 1 and refunds[0] != charges[0]:
            wrong_refund.append(f"{saga}: charged {charges[0]}, refunded {refunds[0]}")
        if charges:
            paid[saga] = charges[0]
        if refunds:
            refunded.add(saga)
    report.flag(malformed, "malformed payment event(s)")
    report.flag(charged_twice, "saga(s) charged more than once")
    report.flag(refunded_twice, "saga(s) refunded more than once")
    report.flag(refund_unpaid, "saga(s) refunded without a payment")
    report.flag(wrong_refund, "saga(s) refunded another amount than charged")

    compensated = [s for s, state in outcomes.items() if state == COMPENSATED]
    completed = [s for s, state in outcomes.items() if state == COMPLETED]
    report.flag(
        [s for s in compensated if s in paid and s not in refunded],
        "COMPENSATED saga(s) charged but not refunded",
    )
    report.flag([s for s in completed if s not in paid], "COMPLETED saga(s) without a payment")
    report.flag([s for s in completed if s in refunded], "COMPLETED saga(s) that were refunded")
    if accounts is None:
        return
    report.flag(
        set(accounts) - set(limits), "account(s) in the payments view that were never seeded"
    )
    report.flag(set(limits) - set(accounts), "seeded account(s) missing from the payments view")
    wrong_limit, over_limit, wrong_balance = [], [], []
    for customer, (limit, balance) in accounts.items():
        if customer in limits and limit != limits[customer]:
            wrong_limit.append(f"{customer}: {limit} != seeded {limits[customer]}")
        if balance > limit:
            over_limit.append(f"{customer}: {balance} > {limit}")
    for customer in set(accounts) | set(expected):
        shown = accounts[customer][1] if customer in accounts else None
        if shown != expected.get(customer, Decimal(0)):
            wrong_balance.append(
                f"{customer}: view {shown}, charged-refunded {expected.get(customer, 0)}"
            )
    report.flag(wrong_limit, "account(s) whose credit limit is not the seeded one")
    report.flag(over_limit, "account(s) with a balance above the credit limit")
    report.flag(wrong_balance, "account(s) whose balance is not charges minus refunds")
    report.checked["accounts"] = len(accounts)


# -- I/O --------------------------------------------------------------------------------
def fetch_json(url: str, timeout: float = VIEW_TIMEOUT_S) -> Any:
    """GET a JSON view; ViewError (never a crash) when it cannot be had."""
    try:
        return client.fetch_json(url, timeout)
    except client.HttpError as exc:
        raise ViewError(str(exc)) from None


async def _view(url: str, parse: Any, report: Report) -> Any:
    try:
        return parse(await asyncio.to_thread(fetch_json, url))
    except ViewError as exc:
        report.violations.append(f"cannot check the view: {exc}")
        return None


async def _events(settings: Settings, name: str, report: Report) -> list[dict[str, Any]] | None:
    """A topic's JSON records; None (and a violation) when the topic cannot be read."""
    raw = await _records(settings, name, report)
    if raw is None:
        return None
    events, unreadable = [], []
    for record in raw:
        try:
            doc = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and all(k in doc for k in ("eventId", "eventType", "aggregateId")):
            events.append(doc)
        else:
            unreadable.append(f"{record.partition}@{record.offset}")
    report.flag(unreadable, f"record(s) on {settings.topic(name)} that are not event envelopes")
    return events


def _replies(records: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The decodable replies (an unreadable one answers nothing: its command shows up)."""
    replies: list[Mapping[str, Any]] = []
    for record in records:
        try:
            doc = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            replies.append(doc)
    return replies


async def _records(settings: Settings, name: str, report: Report) -> list[Any] | None:
    topic = settings.topic(name)
    try:
        return await read_all(settings.bootstrap, topic)
    except (TopicError, KafkaError, OSError, TimeoutError) as exc:
        report.violations.append(f"cannot read topic {topic}: {exc or type(exc).__name__}")
        return None


async def verify(
    settings: Settings,
    invariants: Collection[int] = INVARIANTS,
    inventory_url: str | None = None,
    payments_url: str | None = None,
) -> Report:
    """Read the topics (then the views) and run the chosen checks."""
    report = Report()
    orders = await _events(settings, topics.ORDERS_EVENTS.name, report)
    if 4 in invariants:
        if orders is not None:
            check_streams(orders, report)
        commands = await _records(settings, topics.ORDERS_COMMANDS.name, report)
        replies = await _records(settings, topics.ORDERS_REPLIES.name, report)
        if commands is not None and replies is not None:
            check_replies((r.value for r in commands), _replies(replies), report)
    if not set(invariants) & {1, 2, 3}:
        return report
    seeds = load_seeds(settings.seeds_file)
    sagas = await _events(settings, topics.SAGAS_EVENTS.name, report)
    if orders is None or sagas is None:
        return report  # cannot tell outcomes; the unreadable topic is the violation
    # invariants 2 and 3 need the outcomes even when 1 itself is not reported
    outcomes = check_sagas(orders, sagas, report if 1 in invariants else Report())
    if 2 in invariants:
        inventory = await _events(settings, topics.participant_events("inventory").name, report)
        levels = await _view(
            f"{(inventory_url or settings.service_url('inventory')).rstrip('/')}/inventory",
            inventory_levels,
            report,
        )
        if inventory is not None:
            ordered = ordered_skus(orders)
            check_inventory(inventory, outcomes, levels, seeds.stock, report, ordered)
    if 3 in invariants:
        payments = await _events(settings, topics.participant_events("payments").name, report)
        accounts = await _view(
            f"{(payments_url or settings.service_url('payments')).rstrip('/')}/payments/accounts",
            payment_accounts,
            report,
        )
        if payments is not None:
            check_payments(payments, outcomes, accounts, seeds.credit_limits, report)
    return report


def run(
    settings: Settings,
    invariants: Collection[int] = INVARIANTS,
    inventory_url: str | None = None,
    payments_url: str | None = None,
) -> Report:
    """:func:`verify` for synchronous callers (the CLI)."""
    return asyncio.run(verify(settings, invariants, inventory_url, payments_url))
