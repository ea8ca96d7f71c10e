"""``streamapp loadgen``: send a planned mix of orders and report how their sagas ended.

Pure part: parse the mix, plan the orders (deterministic for a random seed, from the
seeded stock, credit limits and countries, so each kind fails where it is meant to),
schedule the sends, summarise the outcomes. I/O part: :func:`send_orders` paces
CreateOrder (and CancelOrder) commands onto orders.commands; :func:`await_outcomes`
reads sagas.events until each order's saga is terminal. Both are reusable by
benchmarks and integration tests.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from streamapp import topics
from streamapp.messages import Command, derived_id, iso_from_millis, new_id
from streamapp.orders.aggregate import MAX_QUANTITY
from streamapp.saga.machine import COMPENSATED, COMPLETED, FAILED, TERMINAL_EVENTS
from streamapp.seeds import Seeds, load_seeds
from streamapp.settings import Settings

HAPPY, STOCKOUT, CREDIT, COUNTRY, CANCEL = "happy", "stockout", "credit", "country", "cancel"
KINDS = (HAPPY, STOCKOUT, CREDIT, COUNTRY, CANCEL)
#: The kinds a mix names; whatever fraction is left is HAPPY.
MIX_KINDS = KINDS[1:]
DEFAULT_MIX = "stockout=0.1,credit=0.1,country=0.1,cancel=0.1"

NOT_TERMINAL = "not terminal"
STATES = (COMPLETED, COMPENSATED, FAILED, NOT_TERMINAL)
#: A cancel that reaches the order after completion is rejected: both ends are valid.
EXPECTED = {
    HAPPY: frozenset({COMPLETED}),
    STOCKOUT: frozenset({COMPENSATED}),
    CREDIT: frozenset({COMPENSATED}),
    COUNTRY: frozenset({COMPENSATED}),
    CANCEL: frozenset({COMPLETED, COMPENSATED}),
}

#: Happy orders use only skus and customers with this much headroom, so that one run
#: does not turn them into stock-outs or declined payments.
AMPLE_STOCK = 1000
AMPLE_CREDIT = Decimal(1000)
#: Unit prices of happy lines: at most 4 lines x 3 units x 49.99 < AMPLE_CREDIT.
PRICES = ("4.99", "9.99", "19.99", "49.99")
CREDIT_PRICE = "9.99"
#: Happy orders have 1..MAX_LINES skus (one inventory command each).
MAX_LINES = 4
MAX_CANCEL_DELAY_MS = 300
UNSHIPPABLE = ("XX", "ZZ", "QQ", "XY")
#: Floating-point slack when fractions like 0.1 x 10 are summed.
MIX_SLACK = 1e-9


class LoadgenError(ValueError):
    """Bad loadgen input (mix, counts, seeds); the message says what to change."""


# -- the plan (pure) --------------------------------------------------------------------
def parse_mix(text: str) -> dict[str, float]:
    """``"stockout=0.1,cancel=0.2"`` -> a fraction for every kind, the rest HAPPY."""
    mix = dict.fromkeys(MIX_KINDS, 0.0)
    given: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, raw = (s.strip() for s in part.partition("="))
        if name == HAPPY:
            raise LoadgenError("mix: happy is whatever the other kinds leave; do not name it")
        if name not in mix:
            raise LoadgenError(f"mix: unknown kind {name!r} (known: {', '.join(MIX_KINDS)})")
        if not sep:
            raise LoadgenError(f"mix: {name} needs a fraction, e.g. {name}=0.1")
        if name in given:
            raise LoadgenError(f"mix: {name} is given twice")
        try:
            fraction = float(raw)
        except ValueError:
            raise LoadgenError(f"mix: {name}={raw} is not a number") from None
        if not 0.0 <= fraction <= 1.0:  # also refuses nan and inf
            raise LoadgenError(f"mix: {name}={raw} must be a fraction between 0 and 1")
        given.add(name)
        mix[name] = fraction
    total = sum(mix.values())
    if total > 1.0 + MIX_SLACK:
        raise LoadgenError(f"mix: the fractions sum to {total:g}, more than 1")
    happy = 1.0 - total
    return {HAPPY: happy if happy > MIX_SLACK else 0.0, **mix}


def allocate(n: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Order counts per kind that sum to n and follow the mix as closely as whole
    numbers allow (largest remainder), so 10 orders at 0.1 give exactly one."""
    quotas = {kind: n * mix.get(kind, 0.0) for kind in KINDS}
    counts = {kind: math.floor(q) for kind, q in quotas.items()}
    left = n - sum(counts.values())
    # rounded so that float noise (1.2 - 1 < 0.2) does not break ties: they go in KINDS order
    by_remainder = sorted(KINDS, key=lambda k: (-round(quotas[k] - counts[k], 9), KINDS.index(k)))
    for kind in by_remainder[:left]:
        counts[kind] += 1
    return counts


@dataclass(frozen=True)
class PlannedOrder:
    """One order to send: its kind, CreateOrder and, for CANCEL, the CancelOrder."""

    order_id: str
    kind: str
    create: Command
    cancel: Command | None = None
    cancel_delay_ms: int = 0

    @property
    def expected(self) -> frozenset[str]:
        return EXPECTED[self.kind]


def new_run_id() -> str:
    """Short, random: part of every order id, so that reruns never collide."""
    return new_id().replace("-", "")[:12]


@dataclass(frozen=True)
class _Catalogue:
    """What the seeds offer each kind of order (sorted, so plans are reproducible)."""

    ample_skus: list[str]
    rich_customers: list[str]
    countries: list[str]
    seeds: Seeds

    @classmethod
    def of(cls, seeds: Seeds) -> _Catalogue:
        return cls(
            sorted(s for s, units in seeds.stock.items() if units >= AMPLE_STOCK),
            sorted(c for c, limit in seeds.credit_limits.items() if limit >= AMPLE_CREDIT),
            sorted(seeds.countries),
            seeds,
        )

    def require(self, counts: Mapping[str, int]) -> None:
        """Fail before sending anything if the seeds cannot give a kind its data."""
        if not any(counts.values()):
            return
        if not self.ample_skus:
            raise LoadgenError(f"seeds: no sku has at least {AMPLE_STOCK} units")
        if not self.rich_customers:
            raise LoadgenError(f"seeds: no customer has a credit limit of {AMPLE_CREDIT}+")
        if not self.countries:
            raise LoadgenError("seeds: no shipping country")
        if counts.get(STOCKOUT) and not self.seeds.stock:
            raise LoadgenError("seeds: no sku to run out of")
        if counts.get(CREDIT) and not self.seeds.credit_limits:
            raise LoadgenError("seeds: no customer to decline")


def _address(country: str, n: int) -> dict[str, str]:
    return {"country": country, "city": "Loadville", "line1": f"{n} Generator Street"}


def _happy_data(
    rng: random.Random, cat: _Catalogue, n: int, max_lines: int = MAX_LINES
) -> dict[str, Any]:
    skus = rng.sample(cat.ample_skus, min(rng.randint(1, max_lines), len(cat.ample_skus)))
    return {
        "customerId": rng.choice(cat.rich_customers),
        "items": [
            {"sku": sku, "quantity": rng.randint(1, 3), "unitPrice": rng.choice(PRICES)}
            for sku in skus
        ],
        "paymentMethod": "card",
        "shippingAddress": _address(rng.choice(cat.countries), n),
    }


def _stockout_items(rng: random.Random, stock: Mapping[str, int]) -> list[dict[str, Any]]:
    """One line the inventory cannot serve: a sold-out sku, else more than the
    scarcest sku holds."""
    sold_out = sorted(s for s, units in stock.items() if units == 0)
    if sold_out:
        sku, quantity = rng.choice(sold_out), rng.randint(1, 3)
    else:
        sku = min(stock, key=lambda s: (stock[s], s))
        quantity = stock[sku] + 1
        if quantity > MAX_QUANTITY:
            raise LoadgenError(f"seeds: no sku has fewer than {MAX_QUANTITY} units to run out of")
    return [{"sku": sku, "quantity": quantity, "unitPrice": rng.choice(PRICES)}]


def _credit_data(rng: random.Random, cat: _Catalogue, n: int) -> dict[str, Any]:
    """An order whose total exceeds the poorest customer's whole credit limit (so it is
    declined whatever the balance), from stock that can serve it (so it reaches payment)."""
    limits = cat.seeds.credit_limits
    customer = min(limits, key=lambda c: (limits[c], c))
    quantity = int(limits[customer] // Decimal(CREDIT_PRICE)) + 1
    skus = [s for s in cat.ample_skus if cat.seeds.stock[s] >= quantity]
    if not skus or quantity > MAX_QUANTITY:
        raise LoadgenError(
            f"seeds: {customer}'s credit limit {limits[customer]} is too high to exceed "
            "with the seeded stock; seed a customer with a small limit (e.g. 0)"
        )
    return {
        "customerId": customer,
        "items": [{"sku": rng.choice(skus), "quantity": quantity, "unitPrice": CREDIT_PRICE}],
        "paymentMethod": "card",
        "shippingAddress": _address(rng.choice(cat.countries), n),
    }


def _unshippable(countries: Collection[str]) -> str:
    return next(c for c in UNSHIPPABLE if c not in countries)


def plan_orders(
    n: int,
    mix: Mapping[str, float],
    seeds: Seeds,
    seed: int,
    run_id: str,
    max_lines: int = MAX_LINES,
) -> list[PlannedOrder]:
    """n orders, the same for the same (mix, seeds, seed); ids unique to `run_id`; happy
    orders have 1..`max_lines` skus."""
    if n < 1:
        raise LoadgenError(f"orders must be at least 1, got {n}")
    rng = random.Random(seed)
    counts = allocate(n, mix)
    catalogue = _Catalogue.of(seeds)
    catalogue.require(counts)
    kinds = [kind for kind in KINDS for _ in range(counts[kind])]
    rng.shuffle(kinds)
    plan = []
    for i, kind in enumerate(kinds):
        order_id = f"lg-{run_id}-{i:06d}"
        if kind == CREDIT:
            data = _credit_data(rng, catalogue, i)
        else:
            data = _happy_data(rng, catalogue, i, max_lines)
        if kind == STOCKOUT:
            # the line that cannot be served, after up to two that can: the saga reserves
            # those skus (one command per sku), then releases them all
            short = _stockout_items(rng, seeds.stock)
            served = [i for i in data["items"] if i["sku"] != short[0]["sku"]]
            data["items"] = [*served[: rng.randint(0, 2)], *short]
        elif kind == COUNTRY:
            data["shippingAddress"]["country"] = _unshippable(seeds.countries)
        create = Command(derived_id("loadgen", order_id, "create"), "CreateOrder", order_id, data)
        cancel, delay = None, 0
        if kind == CANCEL:
            cancel = Command(
                derived_id("loadgen", order_id, "cancel"),
                "CancelOrder",
                order_id,
                {"reason": "loadgen cancel"},
            )
            delay = rng.randint(0, MAX_CANCEL_DELAY_MS)
        plan.append(PlannedOrder(order_id, kind, create, cancel, delay))
    return plan


def check_rate(rate: float) -> None:
    if not rate > 0 or math.isinf(rate):
        raise LoadgenError(f"rate must be a positive number of orders per second, got {rate}")


def schedule(plan: Sequence[PlannedOrder], rate: float) -> list[tuple[float, Command]]:
    """(seconds after the start, command): CreateOrder i at i/rate, a CancelOrder its
    delay after its order. Sending at these times (not after sleeps) does not drift."""
    check_rate(rate)
    timeline = []
    for i, order in enumerate(plan):
        timeline.append((i / rate, order.create))
        if order.cancel is not None:
            timeline.append((i / rate + order.cancel_delay_ms / 1000.0, order.cancel))
    return sorted(timeline, key=lambda entry: entry[0])  # stable: a create before its cancel


# -- outcomes (pure) --------------------------------------------------------------------
def terminal_outcome(raw: bytes | None, record_ms: int) -> tuple[str, str, int] | None:
    """(saga id, terminal state, event time ms) of a sagas.events record, else None.
    The event's own timestamp is its time; the record's is the fallback."""
    try:
        doc = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("eventType") not in TERMINAL_EVENTS:
        return None
    try:
        at = int(datetime.fromisoformat(str(doc["timestamp"])).timestamp() * 1000)
    except (KeyError, ValueError):
        at = record_ms
    return str(doc.get("aggregateId")), TERMINAL_EVENTS[doc["eventType"]], at


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of the values at or
    below it (always a value that occurred, no interpolation); None for no values. The
    one definition of loadgen's summary and the benchmarks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class KindSummary:
    sent: int = 0
    states: Counter[str] = field(default_factory=Counter)
    as_expected: int = 0
    latencies_ms: list[int] = field(default_factory=list)  # CreateOrder sent -> completed


def summarize(
    plan: Iterable[PlannedOrder],
    sent_ms: Mapping[str, int],
    outcomes: Mapping[str, tuple[str, int]],
) -> dict[str, KindSummary]:
    """Per kind (and "all"): orders sent, how their sagas ended, how many ended as the
    kind expects, and the latency of the completed ones."""
    summary = {kind: KindSummary() for kind in (*KINDS, "all")}
    for order in plan:
        if order.order_id not in sent_ms:
            continue
        state, at = outcomes.get(order.order_id, (NOT_TERMINAL, 0))
        for row in (summary[order.kind], summary["all"]):
            row.sent += 1
            row.states[state] += 1
            row.as_expected += state in order.expected
            if state == COMPLETED:
                row.latencies_ms.append(at - sent_ms[order.order_id])
    return summary


def format_summary(summary: Mapping[str, KindSummary]) -> str:
    """The summary table (kinds without orders are left out)."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    head = ("kind", "sent", *STATES, "as expected", "p50 ms", "p95 ms", "p99 ms")
    rows: list[tuple[str, ...]] = [head]
    for kind, row in summary.items():
        if not row.sent:
            continue
        rows.append(
            (
                kind,
                str(row.sent),
                *(str(row.states[s]) for s in STATES),
                str(row.as_expected),
                *(ms(percentile(row.latencies_ms, p)) for p in (50, 95, 99)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


# -- I/O --------------------------------------------------------------------------------
async def saga_end_offsets(settings: Settings) -> dict[int, int]:
    """sagas.events' end offset per partition: read from here to see only this run."""
    from streamapp.tools.records import end_offsets

    return await end_offsets(settings.bootstrap, settings.topic(topics.SAGAS_EVENTS.name))


async def send_orders(
    settings: Settings, plan: Sequence[PlannedOrder], rate: float, progress: bool = True
) -> dict[str, int]:
    """Send the plan's commands at `rate` orders/s (acks=all, all acknowledged before it
    returns); orderId -> epoch ms when its CreateOrder was handed to the producer."""
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    from streamapp.kafka.topics import topic_partitions

    timeline = schedule(plan, rate)
    topic = settings.topic(topics.ORDERS_COMMANDS.name)
    await topic_partitions(settings.bootstrap, topic)  # a missing topic: say so, not time out
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", linger_ms=settings.producer_linger_ms
    )
    await producer.start()
    sent: dict[str, int] = {}
    acks = []
    loop = asyncio.get_running_loop()
    try:
        with tqdm(
            total=len(plan), unit="order", desc="send", file=sys.stderr, disable=not progress
        ) as bar:
            start = loop.time()
            for at, command in timeline:
                wait = start + at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                now_ms = int(time.time() * 1000)
                command = replace(command, timestamp=iso_from_millis(now_ms))
                key = command.aggregate_id.encode()
                acks.append(await producer.send(topic, command.to_json(), key=key))
                if command.command_type == "CreateOrder":
                    sent[command.aggregate_id] = now_ms
                    bar.update()
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return sent


async def await_outcomes(
    settings: Settings,
    order_ids: Collection[str],
    within_s: float,
    since: Mapping[int, int] | None = None,
    progress: bool = False,
) -> dict[str, tuple[str, int]]:
    """Read sagas.events (from `since` offsets, else the beginning) until every order's
    saga is terminal or `within_s` seconds pass; orderId -> (state, event time ms) of the first
    terminal event. Orders missing from the answer are not terminal."""
    from tqdm import tqdm

    from streamapp.tools.records import reader

    topic = settings.topic(topics.SAGAS_EVENTS.name)
    pending = set(order_ids)
    found: dict[str, tuple[str, int]] = {}
    loop = asyncio.get_running_loop()
    async with reader(settings.bootstrap, topic, since) as (consumer, _partitions):
        deadline = loop.time() + within_s
        with tqdm(
            total=len(pending), unit="saga", desc="terminal", file=sys.stderr, disable=not progress
        ) as bar:
            while pending and (left := deadline - loop.time()) > 0:
                batches = await consumer.getmany(timeout_ms=int(min(500, left * 1000)) + 1)
                for records in batches.values():
                    for record in records:
                        outcome = terminal_outcome(record.value, record.timestamp)
                        if outcome is not None and outcome[0] in pending:
                            pending.discard(outcome[0])
                            found[outcome[0]] = outcome[1:]
                            bar.update()
    return found


def check_counts(orders: int, rate: float, wait_timeout: float) -> None:
    """Refuse bad numbers before anything is sent."""
    if orders < 1:
        raise LoadgenError(f"orders must be at least 1, got {orders}")
    check_rate(rate)
    if not wait_timeout > 0:
        raise LoadgenError(f"wait timeout must be positive, got {wait_timeout}")


async def generate(
    settings: Settings,
    orders: int,
    rate: float,
    mix_text: str = DEFAULT_MIX,
    seed: int | None = None,
    wait: bool = True,
    wait_timeout: float = 120.0,
) -> int:
    """The whole ``streamapp loadgen``: plan, send, await, print; 0 when all terminal."""
    check_counts(orders, rate, wait_timeout)
    mix = parse_mix(mix_text)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    run_id = new_run_id()
    plan = plan_orders(orders, mix, load_seeds(settings.seeds_file), seed, run_id)
    kinds = Counter(order.kind for order in plan)
    print(
        f"loadgen: run {run_id}, seed {seed}, {orders} orders at {rate:g}/s: "
        + ", ".join(f"{kinds[k]} {k}" for k in KINDS if kinds[k])
    )
    since = await saga_end_offsets(settings) if wait else None
    started = time.monotonic()
    sent = await send_orders(settings, plan, rate)
    took = time.monotonic() - started
    print(f"sent {len(sent)} orders in {took:.1f} s ({len(sent) / max(took, 1e-9):.0f}/s)")
    if not wait:
        return 0
    outcomes = await await_outcomes(settings, list(sent), wait_timeout, since, progress=True)
    print(format_summary(summarize(plan, sent, outcomes)))
    missing = len(sent) - len(outcomes)
    if missing:
        print(f"{missing} order(s) not terminal after {wait_timeout:g} s")
        return 1
    return 0
