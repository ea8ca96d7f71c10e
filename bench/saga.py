"""Saga figures: sustained completed sagas/s, and saga latency at about half that rate.

All four services run as real worker processes (one each) on the local broker, on this
machine, next to the broker and the load generator.

(A) Throughput: a backlog of happy orders is sent at once (streamapp.tools.loadgen); the
    sustained rate is the drain rate, completed sagas / (last SagaCompleted - first
    send). (Completions come in a burst near the end, because every stage works
    through the whole backlog before the next one's input is complete, so a rate over
    the completion times alone would overstate what the system sustains.)
(B) Latency: happy orders at about half of (A)'s rate for --latency-seconds; latency =
    CreateOrder sent -> SagaCompleted record time, p50/p95/p99.

(R) The raw saga ceiling (bench/saga_ceiling.py): the records per saga of (A)'s backlog
    moved by plain aiokafka with no logic, in sagas/s; (A) is given as a share of it.

The backlog of (A) also gives the capacity model (docs/scaling.md): each worker's CPU
time per completed saga (/proc), the records each topic gained per saga, and each
worker's resident memory after it.

(L) ``--compare-linger 0,5,20``: the producer linger of every service, alternating
    --runs times in one run (all workers restarted for each): backlog drain rate, the
    orders worker's CPU per saga, and latency at --rate for --latency-seconds.
(C) ``--compare-tracing N``: the cost of the tracer. The backlog of (A) (smaller) with
    tracing on and off, alternating N times each in one run, the orders worker restarted
    with ``STREAMAPP_TRACING_ENABLED`` between them; ratio of the medians on/off.

    make bench        # or: .venv/bin/python -m bench.saga
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import delete_topics_starting, kafka, save
from bench.saga_ceiling import measure as ceiling_measure
from streamapp.kafka.topics import describe_topics
from streamapp.seeds import load_seeds
from streamapp.settings import load_settings
from streamapp.tools.loadgen import await_outcomes, parse_mix, percentile, plan_orders, send_orders
from tests.integration.system import System

#: Skus per happy order: 1..MAX_LINES (STREAMAPP_BENCH_MAX_LINES; 3 before loadgen's
#: orders grew to 4 lines, for comparisons with earlier runs).
MAX_LINES = int(os.environ.get("STREAMAPP_BENCH_MAX_LINES", "4"))
#: Partitions of every topic (tests.integration.system's deployment).
PARTITIONS = 4


def run_orders(system: System, n: int, rate: float, seed: int) -> dict[str, Any]:
    """Send n happy orders at `rate`; (send ms, completion ms) per completed order."""
    settings = load_settings(environ=system.env)
    seeds = load_seeds(settings.seeds_file)
    run_id = f"{seed}-{int(time.time())}"
    plan = plan_orders(n, parse_mix(""), seeds, seed, run_id, MAX_LINES)  # all happy

    async def go() -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
        sent = await send_orders(settings, plan, rate, progress=False)
        done = await await_outcomes(settings, list(sent), within_s=600)
        return sent, done

    sent, done = asyncio.run(go())
    completed = {o: ms for o, (state, ms) in done.items() if state == "COMPLETED"}
    return {
        "sent": sent,
        "completed": completed,
        "not_completed": sorted(set(sent) - set(completed)),
    }


def drain_rate(result: dict[str, Any]) -> float:
    """Completed sagas / (last completion - first send)."""
    last = max(result["completed"].values())
    return len(result["completed"]) / max((last - min(result["sent"].values())) / 1000.0, 1e-3)


def latencies(result: dict[str, Any]) -> dict[str, float]:
    values = [result["completed"][o] - result["sent"][o] for o in result["completed"]]
    return {f"p{p}": float(percentile(values, p) or 0.0) for p in (50, 95, 99)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def topic_records(bootstrap: str, prefix: str) -> dict[str, int]:
    """Records in every topic whose name starts with `prefix` (sum of end offsets),
    by topic name without the prefix."""
    infos = [i for i in await describe_topics(bootstrap) if i.name.startswith(prefix)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(i.name, p) for i in infos for p in range(i.partitions)]
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    totals = dict.fromkeys((i.name[len(prefix) :] for i in infos), 0)
    for tp, end in ends.items():
        totals[tp.topic[len(prefix) :]] += end
    return totals


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, MB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_rss(system: System) -> dict[str, float]:
    """Resident memory of every worker process, MB, by service."""
    return {
        name: rss_mb(worker.proc.pid)
        for name, worker in system.workers.items()
        if worker.proc is not None
    }


def worker_cpu(system: System) -> dict[str, float]:
    """CPU seconds so far of every worker process, by service."""
    used = {}
    for name, worker in system.workers.items():
        assert worker.proc is not None
        used[name] = cpu_seconds(worker.proc.pid)
    return used


def capacity(
    system: System, cpu_before: dict[str, float], records_before: dict[str, int], sagas: int
) -> dict[str, Any]:
    """(A)'s cost per completed saga: CPU ms per service, records per topic."""
    cpu_after = worker_cpu(system)
    run = system.env["STREAMAPP_APP_ID"]  # the prefix of its topics and changelogs
    records_after = asyncio.run(topic_records(system.bootstrap, run))
    cpu = {k: round(1000 * (cpu_after[k] - cpu_before[k]) / sagas, 2) for k in cpu_after}
    records = {
        topic: round((n - records_before.get(topic, 0)) / sagas, 2)
        for topic, n in records_after.items()
        if n > records_before.get(topic, 0)
    }
    rss = worker_rss(system)
    print(f"(A) CPU ms per saga by service: {cpu}")
    print(f"(A) records per saga by topic: {records}")
    print(f"(A) worker RSS after the backlog, MB: {rss}")
    return {"cpu_ms_per_saga": cpu, "records_per_saga": records, "rss_mb": rss}


def backlog_after_restart(system: System, orders: int, seed: int) -> tuple[dict[str, Any], float]:
    """After a restart: a 30-order warm-up, then a backlog of `orders`; the backlog's
    result and the orders worker's CPU ms per completed saga."""
    run_orders(system, 30, 20, seed=seed)  # warm-up after the restart
    proc = system.workers["orders"].proc
    assert proc is not None
    before = cpu_seconds(proc.pid)
    result = run_orders(system, orders, 100_000, seed=seed + 100)
    used = cpu_seconds(proc.pid) - before
    return result, 1000 * used / max(len(result["completed"]), 1)


def compare_tracing(system: System, runs: int, orders: int) -> dict[str, Any]:
    """(C): backlog drain rates with the tracer on and off, alternating in one run, and
    the orders worker's CPU time per saga (less sensitive to a busy machine)."""
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpu_ms: dict[str, list[float]] = {"on": [], "off": []}
    for n in range(runs):
        for mode in ("on", "off"):
            system.configure(tracing_enabled="true" if mode == "on" else "false")
            system.restart("orders")
            result, cpu = backlog_after_restart(system, orders, seed=100 + n)
            rate = drain_rate(result)
            rates[mode].append(round(rate, 1))
            cpu_ms[mode].append(round(cpu, 2))
            print(
                f"(C) run {n + 1}, tracing {mode}: {rate:.1f} sagas/s, "
                f"orders worker {cpu_ms[mode][-1]:.2f} ms CPU/saga"
            )
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    cpu_on, cpu_off = statistics.median(cpu_ms["on"]), statistics.median(cpu_ms["off"])
    print(f"(C) tracing on/off: {on:.1f} / {off:.1f} sagas/s = {on / off:.2f}")
    print(f"(C) orders CPU/saga off/on: {cpu_off:.2f} / {cpu_on:.2f} ms = {cpu_off / cpu_on:.2f}")
    return {
        "tracing_rates": rates,
        "tracing_on_off": round(on / off, 3),
        "tracing_cpu_ms_per_saga": cpu_ms,
        "tracing_cpu_off_on": round(cpu_off / cpu_on, 3),
    }


def compare_linger(
    system: System, lingers: list[int], runs: int, orders: int, rate: float, seconds: float
) -> dict[str, Any]:
    """(L): every service's producer linger, alternating in one run: per linger the
    backlog drain rate, the orders worker's CPU per saga, and the latency at `rate`."""
    found: dict[str, dict[str, list[float]]] = {
        str(ms): {"rate": [], "cpu_ms": [], "p50": [], "p99": []} for ms in lingers
    }
    for n in range(runs):
        for ms in lingers:
            system.configure(producer_linger_ms=str(ms))
            system.restart(*system.workers)
            backlog, cpu = backlog_after_restart(system, orders, seed=300 + n)
            paced = latencies(run_orders(system, int(rate * seconds), rate, seed=500 + n))
            row = found[str(ms)]
            row["rate"].append(round(drain_rate(backlog), 1))
            row["cpu_ms"].append(round(cpu, 2))
            row["p50"].append(round(paced["p50"], 1))
            row["p99"].append(round(paced["p99"], 1))
            print(
                f"(L) run {n + 1}, linger {ms} ms: {row['rate'][-1]} sagas/s, orders "
                f"{row['cpu_ms'][-1]} ms CPU/saga; at {rate:g}/s p50 {row['p50'][-1]} ms, "
                f"p99 {row['p99'][-1]} ms"
            )
    medians = {ms: {k: statistics.median(v) for k, v in row.items()} for ms, row in found.items()}
    for ms, row in medians.items():
        print(f"(L) linger {ms} ms, medians: {row}")
    return {"linger_runs": found, "linger_medians": medians, "linger_latency_rate": rate}


@contextlib.contextmanager
def deployment() -> Iterator[System]:
    """The four services, one worker each, on the local broker (started if need be);
    afterwards the workers are stopped and the run's topics deleted."""
    with kafka() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        system = System(bootstrap, Path(tmp), log_level="warning")
        try:
            system.start()
            yield system
        finally:
            system.stop()
            asyncio.run(delete_topics_starting(bootstrap, system.env["STREAMAPP_APP_ID"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=3000, help="backlog size for (A)")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--ceiling-sagas", type=int, default=1000, help="sagas moved by (R)")
    parser.add_argument(
        "--compare-tracing", type=int, default=0, metavar="N", help="(C) only: N runs each"
    )
    parser.add_argument(
        "--compare-linger",
        default="",
        metavar="MS,MS",
        help="(L) only: producer lingers to compare (e.g. 0,5,20), --runs each",
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per linger for (L)")
    parser.add_argument("--rate", type=float, default=8.0, help="latency rate for (L)")
    args = parser.parse_args()
    if args.compare_linger:
        lingers = [int(ms) for ms in args.compare_linger.split(",")]
        with deployment() as system:
            run = system.env["STREAMAPP_APP_ID"]
            found = compare_linger(
                system, lingers, args.runs, args.orders, args.rate, args.latency_seconds
            )
        print(f"saved {save(run, {'run': run, 'orders': args.orders, **found})}")
        return 0
    if args.compare_tracing:
        with deployment() as system:
            run = system.env["STREAMAPP_APP_ID"]
            found = compare_tracing(system, args.compare_tracing, args.orders)
        print(f"saved {save(run, {'run': run, 'orders': args.orders, **found})}")
        return 0
    with deployment() as system:
        bootstrap, run = system.bootstrap, system.env["STREAMAPP_APP_ID"]
        result: dict[str, Any] = {"run": run, "orders": args.orders}
        run_orders(system, 50, 20, seed=1)  # warm-up: connections, caches, JIT-free paths
        cpu_before = worker_cpu(system)
        records_before = asyncio.run(topic_records(bootstrap, run))
        backlog = run_orders(system, args.orders, 100_000, seed=2)
        sustained = drain_rate(backlog)
        time.sleep(3)  # the end commands (CommitInventory) of the last sagas
        costs = capacity(system, cpu_before, records_before, len(backlog["completed"]))
        raw = ceiling_measure(
            bootstrap, run, costs["records_per_saga"], args.ceiling_sagas, PARTITIONS
        )
        print(
            f"(A) backlog of {args.orders} orders: {len(backlog['completed'])} completed; "
            f"sustained {sustained:.1f} sagas/s = {sustained / raw['sagas_per_s']:.2f} of the "
            "raw saga ceiling"
        )
        rate = max(1.0, round(sustained / 2))
        n = int(rate * args.latency_seconds)
        paced = run_orders(system, n, rate, seed=3)
        lat = latencies(paced)  # the rate held if drain ~= offered rate
        print(
            f"(B) {n} orders at {rate:.0f}/s (half of A): {len(paced['completed'])} completed; "
            f"latency p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms"
        )
        result.update(
            {
                "completed": len(backlog["completed"]),
                "sustained_per_s": round(sustained, 1),
                "paced_drain_per_s": round(drain_rate(paced), 1),
                "latency_rate_per_s": rate,
                "latency_orders": n,
                "latency_completed": len(paced["completed"]),
                "latency_ms": {k: round(v, 1) for k, v in lat.items()},
                "not_completed": backlog["not_completed"][:10] + paced["not_completed"][:10],
                "max_lines": MAX_LINES,
                **costs,
                "raw_ceiling": raw,
                "vs_raw_ceiling": round(sustained / raw["sagas_per_s"], 3),
            }
        )
    print(f"saved {save(run, result)}")
    return 0 if not result.get("not_completed") else 1


if __name__ == "__main__":
    raise SystemExit(main())
