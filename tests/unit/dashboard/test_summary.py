"""The dashboard's figures from the workers' answers (streamapp.dashboard.summary)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from streamapp.dashboard.summary import (
    DOWN,
    READY,
    WAITING,
    Sample,
    ThroughputMeter,
    WorkerState,
    dashboard_data,
    parse_metrics,
    processed_totals,
)


def exposition(
    processed: dict[str, int],
    retries: dict[tuple[str, str], int] | None = None,
    dead: dict[tuple[str, str], int] | None = None,
    lag: dict[tuple[str, str], int] | None = None,
    in_flight: dict[str, int] | None = None,
    ended: dict[str, int] | None = None,
) -> str:
    """A /metrics text as prometheus_client writes it for the metrics streamapp has."""
    registry = CollectorRegistry()
    counter = Counter("streamapp_records_processed", "", ["agent"], registry=registry)
    for agent, value in processed.items():
        counter.labels(agent).inc(value)
    retry = Counter("streamapp_retries", "", ["topic", "attempt"], registry=registry)
    for labels, value in (retries or {}).items():
        retry.labels(*labels).inc(value)
    dlq = Counter("streamapp_dead_letters", "", ["topic", "error_type"], registry=registry)
    for labels, value in (dead or {}).items():
        dlq.labels(*labels).inc(value)
    gauge = Gauge("streamapp_consumer_lag", "", ["topic", "partition"], registry=registry)
    for labels, value in (lag or {}).items():
        gauge.labels(*labels).set(value)
    flight = Gauge("streamapp_sagas_in_flight", "", ["state"], registry=registry)
    for state, value in (in_flight or {}).items():
        flight.labels(state).set(value)
    end = Counter("streamapp_sagas_ended", "", ["outcome"], registry=registry)
    for outcome, value in (ended or {}).items():
        end.labels(outcome).inc(value)
    Gauge("streamapp_ready", "", registry=registry).set(1)
    return generate_latest(registry).decode()


def worker(url: str, service: str, text: str, state: str = READY) -> WorkerState:
    return WorkerState(url, service, state, samples=tuple(parse_metrics(text)))


def test_parse_keeps_the_samples_the_dashboard_uses() -> None:
    samples = parse_metrics(exposition({"orders": 3}, lag={("t", "0"): 4}))
    assert Sample("streamapp_records_processed_total", {"agent": "orders"}, 3.0) in samples
    assert Sample("streamapp_consumer_lag", {"topic": "t", "partition": "0"}, 4.0) in samples
    assert {s.name for s in samples} <= {
        "streamapp_records_processed_total",
        "streamapp_consumer_lag",
        "streamapp_retries_total",
        "streamapp_dead_letters_total",
        "streamapp_sagas_in_flight",
        "streamapp_sagas_ended_total",
    }


def test_parse_leaves_out_values_that_cannot_be_summed() -> None:
    text = 'streamapp_consumer_lag{topic="t",partition="0"} NaN\n'
    assert parse_metrics(text) == []


def test_parse_refuses_what_is_not_the_exposition_format() -> None:
    with pytest.raises(ValueError):
        parse_metrics("this is { not metrics")


def test_throughput_is_the_counter_delta_over_the_time_between_polls() -> None:
    meter = ThroughputMeter(min_interval_s=1.0)
    assert meter.update(100.0, {("w1", "a"): 10.0}) == {}  # no baseline yet
    assert meter.update(102.0, {("w1", "a"): 30.0, ("w2", "a"): 5.0}) == {("w1", "a"): 10.0}
    # a poll within the minimum interval repeats the last rates, the baseline stays
    assert meter.update(102.5, {("w1", "a"): 31.0, ("w2", "a"): 6.0}) == {("w1", "a"): 10.0}
    # w1 restarted: its counter went down; what it counted since is its delta
    assert meter.update(104.0, {("w1", "a"): 4.0, ("w2", "a"): 9.0}) == {
        ("w1", "a"): 2.0,
        ("w2", "a"): 2.0,
    }


def test_the_dashboard_sums_workers_by_topic_state_and_agent() -> None:
    orders1 = exposition(
        {"orders": 10, "saga": 20},
        retries={("p.payments.commands", "1"): 2},
        lag={("p.orders.commands", "0"): 3, ("p.orders.commands", "1"): 1},
        in_flight={"EXECUTING": 2, "COMPENSATING": 1},
        ended={"SagaCompleted": 5, "SagaCompensated": 1},
    )
    orders2 = exposition(
        {"orders": 1},
        lag={("p.orders.commands", "1"): 4, ("p.orders.commands", "2"): 0},
        in_flight={"EXECUTING": 1},
        ended={"SagaCompleted": 2},
    )
    payments = exposition(
        {"payments": 7},
        retries={("p.payments.commands", "1"): 1, ("p.payments.commands", "2"): 1},
        dead={("p.payments.commands", "PermanentError"): 1},
        lag={("p.payments.commands", "0"): 2},
    )
    workers = [
        worker("http://o1", "orders", orders1),
        worker("http://o2", "orders", orders2),
        worker("http://p", "payments", payments),
        WorkerState("http://s", "shipping", DOWN, error="connection refused"),
        WorkerState("http://i", "inventory", WAITING, waiting_for=("recovery",)),
    ]
    totals = processed_totals(workers)
    assert totals[("http://o1", "saga")] == 20
    rates = {
        ("http://o1", "orders"): 2.0,
        ("http://o1", "saga"): 4.0,
        ("http://p", "payments"): 1.5,
    }
    data = dashboard_data(workers, rates, [], None, "2026-12-02T12:00:00Z")
    assert data["throughput"] == {
        "total": 7.5,
        "agents": [
            {"agent": "orders", "perSecond": 2.0},
            {"agent": "payments", "perSecond": 1.5},
            {"agent": "saga", "perSecond": 4.0},
        ],
    }
    assert [(w["url"], w["state"], w["recordsPerSecond"]) for w in data["workers"]] == [
        ("http://o1", READY, 6.0),
        ("http://o2", READY, None),
        ("http://p", READY, 1.5),
        ("http://s", DOWN, None),
        ("http://i", WAITING, None),
    ]
    assert data["workers"][3]["error"] == "connection refused"
    assert data["workers"][4]["waitingFor"] == ["recovery"]
    assert data["sagas"] == {
        "inFlight": [
            {"state": "STARTED", "count": 0},
            {"state": "EXECUTING", "count": 3},
            {"state": "COMPENSATING", "count": 1},
            {"state": "COMPLETED", "count": 0},
            {"state": "COMPENSATED", "count": 0},
            {"state": "FAILED", "count": 0},
        ],
        "ended": [
            {"outcome": "SagaCompleted", "count": 7},
            {"outcome": "SagaCompensated", "count": 1},
            {"outcome": "SagaFailed", "count": 0},
        ],
    }
    assert data["retries"] == [{"topic": "p.payments.commands", "count": 4, "by": {"1": 3, "2": 1}}]
    assert data["deadLetters"] == [
        {"topic": "p.payments.commands", "count": 1, "by": {"PermanentError": 1}}
    ]
    # partition 1 reported by both orders workers (a rebalance): counted once, the larger
    assert data["lag"] == [
        {"service": "orders", "topic": "p.orders.commands", "lag": 7, "partitions": 3},
        {"service": "payments", "topic": "p.payments.commands", "lag": 2, "partitions": 1},
    ]


def test_without_rates_yet_throughput_is_unknown_and_traces_pass_through() -> None:
    line = {
        "correlationId": "c-1",
        "status": "COMPLETED",
        "startedAt": "t",
        "durationMs": 42,
        "services": ["orders", "saga"],
        "initiatingEvent": "OrderCreated",
        "events": 11,
        "startedMs": 1,
    }
    data = dashboard_data([], {}, [line], "peer down", "now")
    assert data["throughput"] == {"total": None, "agents": []}
    assert data["traces"] == [{k: v for k, v in line.items() if k != "startedMs"}]
    assert data["tracesError"] == "peer down"
    assert data["retries"] == data["deadLetters"] == data["lag"] == []
