from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamapp.cli import build_parser
from streamapp.messages import Command
from streamapp.orders.aggregate import decide
from streamapp.seeds import Seeds, load_seeds
from streamapp.tools.loadgen import (
    CANCEL,
    COUNTRY,
    CREDIT,
    DEFAULT_MIX,
    HAPPY,
    KINDS,
    STOCKOUT,
    LoadgenError,
    PlannedOrder,
    allocate,
    format_summary,
    parse_mix,
    percentile,
    plan_orders,
    schedule,
    summarize,
    terminal_outcome,
)

SEEDS = Seeds(
    stock={"AMPLE-1": 5000, "AMPLE-2": 1000, "FEW": 999, "NONE": 0},
    credit_limits={"rich": Decimal(1000), "richer": Decimal(10**6), "poor": Decimal("20")},
    countries=("NL", "DE"),
)
EVEN = parse_mix("stockout=0.2,credit=0.2,country=0.2,cancel=0.2")


def total(data: dict[str, Any]) -> Decimal:
    return sum((Decimal(i["unitPrice"]) * i["quantity"] for i in data["items"]), start=Decimal(0))


# -- mix --------------------------------------------------------------------------------
def test_mix_names_the_failing_kinds_and_the_rest_is_happy() -> None:
    assert parse_mix(DEFAULT_MIX) == pytest.approx(
        {HAPPY: 0.6, STOCKOUT: 0.1, CREDIT: 0.1, COUNTRY: 0.1, CANCEL: 0.1}
    )
    assert parse_mix(" cancel = 0.5 ,") == {
        HAPPY: 0.5,
        STOCKOUT: 0.0,
        CREDIT: 0.0,
        COUNTRY: 0.0,
        CANCEL: 0.5,
    }
    assert parse_mix("")[HAPPY] == 1.0
    assert parse_mix("stockout=0.7,credit=0.1,country=0.1,cancel=0.1")[HAPPY] == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refund=0.1", "unknown kind 'refund' (known: stockout, credit, country, cancel)"),
        ("happy=0.5", "happy is whatever the other kinds leave; do not name it"),
        ("stockout", "stockout needs a fraction, e.g. stockout=0.1"),
        ("stockout=lots", "stockout=lots is not a number"),
        ("stockout=-0.1", "stockout=-0.1 must be a fraction between 0 and 1"),
        ("stockout=nan", "stockout=nan must be a fraction between 0 and 1"),
        ("credit=1.5", "credit=1.5 must be a fraction between 0 and 1"),
        ("cancel=0.1,cancel=0.2", "cancel is given twice"),
        ("stockout=0.6,credit=0.6", "the fractions sum to 1.2, more than 1"),
    ],
)
def test_bad_mixes_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LoadgenError) as error:
        parse_mix(text)
    assert str(error.value) == f"mix: {message}"


def test_allocation_is_exact_for_small_runs() -> None:
    assert allocate(10, parse_mix(DEFAULT_MIX)) == {
        HAPPY: 6,
        STOCKOUT: 1,
        CREDIT: 1,
        COUNTRY: 1,
        CANCEL: 1,
    }
    assert allocate(2, parse_mix(DEFAULT_MIX))[HAPPY] == 2  # ties (0.2 each) go to happy
    assert allocate(1, parse_mix("")) == {HAPPY: 1, STOCKOUT: 0, CREDIT: 0, COUNTRY: 0, CANCEL: 0}


@given(
    st.integers(1, 500),
    st.lists(st.floats(0, 0.25), min_size=4, max_size=4),
)
def test_allocation_sums_to_n_and_follows_the_mix(n: int, fractions: list[float]) -> None:
    mix = parse_mix(",".join(f"{k}={f!r}" for k, f in zip(KINDS[1:], fractions, strict=True)))
    counts = allocate(n, mix)
    assert sum(counts.values()) == n
    assert all(abs(counts[k] - n * mix[k]) < 1 for k in KINDS)


# -- plan -------------------------------------------------------------------------------
def untimed(plan: list[PlannedOrder]) -> list[PlannedOrder]:
    """The plan without command timestamps (they are stamped again when sent)."""
    return [
        replace(
            o,
            create=replace(o.create, timestamp=""),
            cancel=o.cancel and replace(o.cancel, timestamp=""),
        )
        for o in plan
    ]


def test_the_plan_is_determined_by_the_seed_and_ids_by_the_run() -> None:
    first = plan_orders(50, EVEN, SEEDS, seed=7, run_id="run1")
    assert untimed(plan_orders(50, EVEN, SEEDS, seed=7, run_id="run1")) == untimed(first)
    other_seed = plan_orders(50, EVEN, SEEDS, seed=8, run_id="run1")
    assert [o.kind for o in other_seed] != [o.kind for o in first]
    rerun = plan_orders(50, EVEN, SEEDS, seed=7, run_id="run2")
    assert [(o.kind, o.create.data) for o in rerun] == [(o.kind, o.create.data) for o in first]
    ids = {o.order_id for o in first} | {o.create.command_id for o in first}
    rerun_ids = {o.order_id for o in rerun} | {o.create.command_id for o in rerun}
    assert len(ids) == 100 and not ids & rerun_ids
    assert all("run1" in o.order_id for o in first)


def test_each_kind_gets_data_that_fails_where_it_should() -> None:
    plan = plan_orders(200, EVEN, SEEDS, seed=1, run_id="r")
    by_kind: dict[str, list[PlannedOrder]] = {k: [] for k in KINDS}
    for order in plan:
        by_kind[order.kind].append(order)
    assert {k: len(v) for k, v in by_kind.items()} == dict.fromkeys(KINDS, 40)
    for order in by_kind[HAPPY] + by_kind[CANCEL]:
        data = order.create.data
        assert 1 <= len(data["items"]) <= 4
        assert all(SEEDS.stock[i["sku"]] >= 1000 and 1 <= i["quantity"] <= 3 for i in data["items"])
        assert SEEDS.credit_limits[data["customerId"]] >= 1000 > total(data)
        assert data["shippingAddress"]["country"] in SEEDS.countries
    served = []
    for order in by_kind[STOCKOUT]:
        *lines, short = order.create.data["items"]
        assert short["sku"] == "NONE" and len(lines) <= 2  # the last line cannot be served
        assert all(SEEDS.stock[i["sku"]] >= 1000 for i in lines)
        served.append(len(lines))
    assert set(served) == {0, 1, 2}  # some stock-outs reserve other skus first
    for order in by_kind[CREDIT]:
        data = order.create.data
        assert total(data) > SEEDS.credit_limits[data["customerId"]]
        assert all(SEEDS.stock[i["sku"]] >= i["quantity"] for i in data["items"])
        assert data["shippingAddress"]["country"] in SEEDS.countries
    for order in by_kind[COUNTRY]:
        assert order.create.data["shippingAddress"]["country"] == "XX"
    for order in plan:
        assert (order.cancel is not None) == (order.kind == CANCEL)
    for order in by_kind[CANCEL]:
        assert order.cancel is not None
        assert order.cancel.command_type == "CancelOrder"
        assert order.cancel.aggregate_id == order.order_id
        assert order.cancel.command_id != order.create.command_id
        assert order.cancel.data == {"reason": "loadgen cancel"}
        assert 0 <= order.cancel_delay_ms <= 300
    assert len({o.cancel_delay_ms for o in by_kind[CANCEL]}) > 1


def test_planned_commands_are_contract_envelopes_the_order_accepts() -> None:
    for order in plan_orders(40, EVEN, SEEDS, seed=3, run_id="r"):
        doc = orjson.loads(order.create.to_json())
        assert doc["commandType"] == "CreateOrder"
        assert doc["aggregateId"] == order.order_id
        assert doc["correlationId"] == doc["commandId"]
        assert doc["timestamp"].endswith("Z")
        assert doc["data"]["paymentMethod"] == "card"
        assert set(doc["data"]["shippingAddress"]) == {"country", "city", "line1"}
        assert all(isinstance(i["unitPrice"], str) for i in doc["data"]["items"])
        [created] = decide(None, Command.parse(order.create.to_json()))
        assert created.event_type == "OrderCreated"


def test_without_a_sold_out_sku_a_stockout_asks_for_more_than_the_scarcest_holds() -> None:
    seeds = Seeds({"BIG": 5000, "SMALL": 5}, SEEDS.credit_limits, SEEDS.countries)
    plan = plan_orders(5, parse_mix("stockout=1"), seeds, seed=0, run_id="r")
    assert {
        (o.create.data["items"][-1]["sku"], o.create.data["items"][-1]["quantity"]) for o in plan
    } == {("SMALL", 6)}


def test_an_unshippable_country_is_one_not_seeded() -> None:
    seeds = Seeds(SEEDS.stock, SEEDS.credit_limits, ("XX", "NL"))
    [order] = plan_orders(1, parse_mix("country=1"), seeds, seed=0, run_id="r")
    assert order.create.data["shippingAddress"]["country"] == "ZZ"


@pytest.mark.parametrize(
    ("seeds", "mix", "message"),
    [
        (Seeds({"FEW": 10}, SEEDS.credit_limits, ("NL",)), "", "no sku has at least 1000"),
        (Seeds(SEEDS.stock, {"poor": Decimal(1)}, ("NL",)), "", "no customer has a credit"),
        (Seeds(SEEDS.stock, SEEDS.credit_limits, ()), "", "no shipping country"),
        (
            Seeds({"AMPLE": 1000}, {"rich": Decimal(10**6)}, ("NL",)),
            "credit=1",
            "credit limit 1000000 is too high to exceed",
        ),
    ],
)
def test_seeds_that_cannot_serve_the_plan_are_refused(seeds: Seeds, mix: str, message: str) -> None:
    with pytest.raises(LoadgenError, match=message):
        plan_orders(10, parse_mix(mix), seeds, seed=0, run_id="r")


def test_the_configured_seeds_serve_every_kind() -> None:
    seeds = load_seeds(Path(__file__).parents[3] / "config" / "seeds.toml")
    plan = plan_orders(100, EVEN, seeds, seed=0, run_id="r")
    assert {o.kind for o in plan} == set(KINDS)


# -- schedule, outcomes, summary ---------------------------------------------------------
def test_schedule_sends_orders_at_the_rate_and_cancels_after_their_order() -> None:
    plan = plan_orders(20, parse_mix("cancel=0.5"), SEEDS, seed=2, run_id="r")
    timeline = schedule(plan, rate=10.0)
    creates = [(at, c.aggregate_id) for at, c in timeline if c.command_type == "CreateOrder"]
    assert creates == [(i / 10.0, o.order_id) for i, o in enumerate(plan)]
    assert [at for at, _ in timeline] == sorted(at for at, _ in timeline)
    sent_at = dict((c.aggregate_id, at) for at, c in timeline if c.command_type == "CreateOrder")
    for at, command in timeline:
        if command.command_type == "CancelOrder":
            order = next(o for o in plan if o.order_id == command.aggregate_id)
            assert at == pytest.approx(sent_at[order.order_id] + order.cancel_delay_ms / 1000)
    for rate in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(LoadgenError, match="rate must be a positive number"):
            schedule(plan, rate)


def saga_event(kind: str, saga: str, timestamp: str = "2026-01-01T00:00:01.500Z") -> bytes:
    return orjson.dumps({"eventType": kind, "aggregateId": saga, "timestamp": timestamp})


def test_terminal_outcomes_are_read_from_saga_events() -> None:
    assert terminal_outcome(saga_event("SagaCompleted", "o1"), 0) == (
        "o1",
        "COMPLETED",
        1767225601500,
    )
    assert terminal_outcome(saga_event("SagaFailed", "o2"), 0) == ("o2", "FAILED", 1767225601500)
    assert terminal_outcome(saga_event("SagaCompensated", "o1", "yesterday"), 42) == (
        "o1",
        "COMPENSATED",
        42,
    )
    assert terminal_outcome(saga_event("SagaStepCompleted", "o1"), 0) is None
    assert terminal_outcome(b"\xff", 0) is None
    assert terminal_outcome(None, 0) is None


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(100, 0, -1))  # 1..100, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([], 50) is None


def test_summary_counts_outcomes_per_kind_against_what_each_kind_expects() -> None:
    plan = plan_orders(10, parse_mix(DEFAULT_MIX), SEEDS, seed=4, run_id="r")
    kind_of = {o.order_id: o.kind for o in plan}
    [stockout] = [o for o, k in kind_of.items() if k == STOCKOUT]
    [cancel] = [o for o, k in kind_of.items() if k == CANCEL]
    happy = [o for o, k in kind_of.items() if k == HAPPY]
    sent = {o.order_id: 1000 for o in plan}
    outcomes = {o: ("COMPLETED", 1000 + 10 * (n + 1)) for n, o in enumerate(happy[:5])}
    outcomes[stockout] = ("COMPLETED", 2000)  # not what a stock-out should do
    outcomes[cancel] = ("COMPENSATED", 1500)
    summary = summarize(plan, sent, outcomes)
    assert summary[HAPPY].sent == 6
    assert summary[HAPPY].states == {"COMPLETED": 5, "not terminal": 1}
    assert summary[HAPPY].as_expected == 5
    assert summary[HAPPY].latencies_ms == [10, 20, 30, 40, 50]
    assert summary[STOCKOUT].as_expected == 0
    assert summary[CANCEL].as_expected == 1
    assert summary["all"].sent == 10
    assert summary["all"].states["not terminal"] == 3  # 1 happy, credit, country
    assert summary["all"].as_expected == 6
    table = format_summary(summary).splitlines()
    assert table[0].split() == [
        "kind",
        "sent",
        "COMPLETED",
        "COMPENSATED",
        "FAILED",
        "not",
        "terminal",
        "as",
        "expected",
        "p50",
        "ms",
        "p95",
        "ms",
        "p99",
        "ms",
    ]
    assert table[1].split() == ["happy", "6", "5", "0", "0", "1", "5", "30", "50", "50"]
    assert table[-1].split() == ["all", "10", "6", "1", "0", "3", "6", "30", "1000", "1000"]


def test_orders_not_sent_are_not_summarised() -> None:
    plan = plan_orders(3, parse_mix(""), SEEDS, seed=0, run_id="r")
    summary = summarize(plan, {plan[0].order_id: 0}, {})
    assert summary["all"].sent == 1
    assert len(format_summary(summary).splitlines()) == 3  # head, happy, all


def test_cli_parses_loadgen_and_verify_options() -> None:
    args = build_parser().parse_args(
        ["loadgen", "--orders", "5", "--rate", "2.5", "--seed", "9", "--no-wait"]
    )
    assert (args.orders, args.rate, args.seed, args.no_wait, args.mix) == (
        5,
        2.5,
        9,
        True,
        DEFAULT_MIX,
    )
    args = build_parser().parse_args(
        ["verify", "--invariant", "2", "--invariant", "3", "--inventory-url", "http://i:1"]
    )
    assert (args.invariant, args.inventory_url, args.payments_url) == ([2, 3], "http://i:1", None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--invariant", "5"])
