"""What the dashboard shows, computed from what the workers answered (pure).

Each worker's ``/metrics`` is parsed with prometheus_client's own parser; the samples
streamapp exposes are summed across workers into per-topic, per-state and per-agent
figures. Counters only ever grow (until a worker restarts), so throughput is a rate
computed from two polls' totals by :class:`ThroughputMeter`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streamapp.saga.machine import COMPENSATED, COMPENSATING, COMPLETED, EXECUTING, FAILED, STARTED

#: prometheus_client exposes a counter ``x`` as ``x_total`` (and ``x_created``).
PROCESSED = "streamapp_records_processed_total"
RETRIES = "streamapp_retries_total"
DEAD_LETTERS = "streamapp_dead_letters_total"
LAG = "streamapp_consumer_lag"
SAGAS_IN_FLIGHT = "streamapp_sagas_in_flight"
SAGAS_ENDED = "streamapp_sagas_ended_total"
WANTED = frozenset({PROCESSED, RETRIES, DEAD_LETTERS, LAG, SAGAS_IN_FLIGHT, SAGAS_ENDED})

#: A saga is in flight while it awaits a reply, a compensation or its end command: in a
#: terminal state too, until its end command (e.g. CommitInventory) is confirmed.
SAGA_STATES = (STARTED, EXECUTING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)
OUTCOMES = ("SagaCompleted", "SagaCompensated", "SagaFailed")

READY, WAITING, DOWN = "ready", "waiting", "down"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """The samples of the metrics the dashboard uses (NaN and infinities left out: they
    sum to nothing useful); ValueError if the text is not the exposition format."""
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in WANTED and math.isfinite(sample.value)
    ]


@dataclass(frozen=True)
class WorkerState:
    """One worker as the dashboard saw it in one poll."""

    url: str
    service: str | None
    state: str  # READY, WAITING (answers, not ready) or DOWN (no answer)
    waiting_for: tuple[str, ...] = ()
    error: str | None = None
    samples: tuple[Sample, ...] = field(default=(), repr=False)


def processed_totals(workers: Iterable[WorkerState]) -> dict[tuple[str, str], float]:
    """Records processed so far per (worker url, agent)."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for worker in workers:
        for sample in worker.samples:
            if sample.name == PROCESSED:
                totals[(worker.url, sample.labels.get("agent", ""))] += sample.value
    return dict(totals)


class ThroughputMeter:
    """Records per second from counter totals of successive polls.

    Polls closer than ``min_interval_s`` to the last baseline reuse its rates (several
    open dashboards then do not shrink the interval to nothing). A counter that went
    down belongs to a restarted worker: its new total is what it processed since.
    """

    def __init__(self, min_interval_s: float = 1.0) -> None:
        self.min_interval_s = min_interval_s
        self._at: float | None = None
        self._totals: dict[tuple[str, str], float] = {}
        self._rates: dict[tuple[str, str], float] = {}

    def update(
        self, now_s: float, totals: Mapping[tuple[str, str], float]
    ) -> dict[tuple[str, str], float]:
        """Rates per key of `totals` (keys without a baseline yet are left out)."""
        if self._at is not None and now_s - self._at < self.min_interval_s:
            return dict(self._rates)
        rates: dict[tuple[str, str], float] = {}
        if self._at is not None:
            elapsed = now_s - self._at
            for key, total in totals.items():
                if key in self._totals:
                    before = self._totals[key]
                    delta = total - before if total >= before else total
                    rates[key] = delta / elapsed
        self._at, self._totals, self._rates = now_s, dict(totals), rates
        return dict(rates)


def _sum_by(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for sample in samples:
        if sample.name == name:
            sums[sample.labels.get(label, "")] += sample.value
    return sums


def _breakdown(samples: Iterable[Sample], name: str, detail: str) -> list[dict[str, Any]]:
    """Per topic: the total and the split by `detail` (attempt, error type)."""
    by_topic: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        if sample.name == name:
            by_topic[sample.labels.get("topic", "")][sample.labels.get(detail, "")] += sample.value
    return [
        {
            "topic": topic,
            "count": int(sum(split.values())),
            "by": {key: int(value) for key, value in sorted(split.items())},
        }
        for topic, split in sorted(by_topic.items())
    ]


def _lag(workers: Iterable[WorkerState]) -> list[dict[str, Any]]:
    """Lag per (service, topic): each partition counted once (two workers may both report
    one during a rebalance: the larger figure is kept)."""
    partitions: dict[tuple[str, str, str], float] = {}
    for worker in workers:
        for sample in worker.samples:
            if sample.name == LAG:
                key = (
                    worker.service or "?",
                    sample.labels.get("topic", ""),
                    sample.labels.get("partition", ""),
                )
                partitions[key] = max(partitions.get(key, 0.0), sample.value)
    per_topic: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (service, topic, _partition), lag in partitions.items():
        per_topic[(service, topic)].append(lag)
    return [
        {"service": service, "topic": topic, "lag": int(sum(lags)), "partitions": len(lags)}
        for (service, topic), lags in sorted(per_topic.items())
    ]


def _round(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 2)


def dashboard_data(
    workers: list[WorkerState],
    rates: Mapping[tuple[str, str], float],
    traces: list[Mapping[str, Any]],
    traces_error: str | None,
    generated_at: str,
    topic_prefix: str = "",
) -> dict[str, Any]:
    """The JSON the dashboard page renders (GET /dashboard/data); topics are shown
    without `topic_prefix`."""
    samples = [sample for worker in workers for sample in worker.samples]
    per_worker: dict[str, float] = defaultdict(float)
    per_agent: dict[str, float] = defaultdict(float)
    for (url, agent), rate in rates.items():
        per_worker[url] += rate
        per_agent[agent] += rate
    in_flight = _sum_by(samples, SAGAS_IN_FLIGHT, "state")
    ended = _sum_by(samples, SAGAS_ENDED, "outcome")
    return {
        "generatedAt": generated_at,
        "topicPrefix": topic_prefix,
        "workers": [
            {
                "url": worker.url,
                "service": worker.service,
                "state": worker.state,
                "waitingFor": list(worker.waiting_for),
                "error": worker.error,
                "recordsPerSecond": _round(per_worker.get(worker.url)),
            }
            for worker in workers
        ],
        "throughput": {
            "total": _round(sum(rates.values())) if rates else None,
            "agents": [
                {"agent": agent, "perSecond": _round(rate)}
                for agent, rate in sorted(per_agent.items())
            ],
        },
        "sagas": {
            "inFlight": [
                {"state": state, "count": int(in_flight.get(state, 0))}
                for state in (*SAGA_STATES, *sorted(set(in_flight) - set(SAGA_STATES)))
            ],
            "ended": [
                {"outcome": outcome, "count": int(ended.get(outcome, 0))}
                for outcome in (*OUTCOMES, *sorted(set(ended) - set(OUTCOMES)))
            ],
        },
        "retries": _breakdown(samples, RETRIES, "attempt"),
        "deadLetters": _breakdown(samples, DEAD_LETTERS, "error_type"),
        "lag": _lag(workers),
        "traces": [_trace_line(trace) for trace in traces],
        "tracesError": traces_error,
    }


def _trace_line(trace: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a GET /traces line the dashboard shows."""
    keys = ("correlationId", "status", "startedAt", "durationMs", "initiatingEvent", "events")
    line = {key: trace.get(key) for key in keys}
    services = trace.get("services")
    line["services"] = [str(s) for s in services] if isinstance(services, list) else []
    return line
