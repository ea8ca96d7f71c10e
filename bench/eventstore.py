"""Event store figures: appends/s through the order agent, aggregate load latency.

(A) A real streamapp worker (`faust -A streamapp.app worker` subprocess) on the local
    broker works through a backlog of order commands (1,000 orders x 10 commands):
    appends/s = replies/s, from the first to the last reply's timestamp (as bench/relay).
(B) Streams of 10, 100, 1,000 and 10,000 events are built through the same agent, then
    `GET /orders/{id}` (which loads snapshot + tail from RocksDB) is timed over HTTP.
(C) The same load code in-process on a real RocksDB (rocksdict) without HTTP, with
    snapshots every 100 events and with snapshots off, at the same lengths and at
    worst-case tails (length + 99).
(D) Schema validation on vs off through real workers (issue 12): the backlog of (A), each
    run on a fresh worker with ``STREAMAPP_SCHEMA_VALIDATION`` true or false, alternated
    on, off, off, on, on, off, ... on the same broker; medians (min-max) and on/off.

    make bench        # or: .venv/bin/python -m bench.eventstore
    .venv/bin/python -m bench.eventstore --only-validation --validation-runs 3

The broker is the settings' embedded one; on a shared machine give the benchmark its
own (``STREAMAPP_LOCAL_KAFKA_PORT``, ``_CONTROLLER_PORT``, ``_STATE_DIR``): its workers
are told its address, so nothing else is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Rdict

from bench.common import (
    OUT_DIR,
    ROOT,
    delete_topics_starting,
    kafka,
    output_rate,
    save,
    wait_for_records,
)
from streamapp.eventstore.store import EventStore
from streamapp.messages import Command, new_id
from streamapp.orders.aggregate import replay
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.tools.loadgen import percentile
from tests.integration.kafka_io import send_records
from tests.integration.support import free_port

LENGTHS = (10, 100, 1_000, 10_000)
ORDER = {
    "customerId": "cust-7",
    "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"}],
    "paymentMethod": "card",
    "shippingAddress": {"country": "NL", "city": "Delft"},
}


def commands_for(order_id: str, length: int) -> Iterator[Command]:
    yield Command(new_id(), "CreateOrder", order_id, ORDER, expected_version=0)
    for n in range(2, length + 1):
        yield Command(new_id(), "AddOrderNote", order_id, {"note": f"note {n}"})


def interleaved(orders: int, per_order: int) -> list[Command]:
    streams = [list(commands_for(f"order-{n:05d}", per_order)) for n in range(orders)]
    return [stream[i] for i in range(per_order) for stream in streams]


def get_latency_ms(url: str, samples: int) -> tuple[float, float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), percentile(timings, 95) or 0.0


class RdictKV(MutableMapping[bytes, Any]):
    """A RocksDB mapping with JSON values: what a faust rocksdb table does per key."""

    def __init__(self, path: str) -> None:
        self.db = Rdict(path)

    def __getitem__(self, key: bytes) -> Any:
        value = self.db.get(key)
        if value is None:
            raise KeyError(key)
        return orjson.loads(value)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.db[key] = orjson.dumps(value)

    def __delitem__(self, key: bytes) -> None:
        del self.db[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.db.keys())

    def __len__(self) -> int:
        return sum(1 for _ in self.db.keys())  # noqa: SIM118 (Rdict iterates items)


def in_process(lengths: list[int], loads: int) -> dict[str, dict[int, float]]:
    """Median ms to load an order from real RocksDB, per stream length: with snapshots
    (Repository.load: latest snapshot + tail) and without (replaying every event)."""
    path = tempfile.mkdtemp(prefix="bench-eventstore-")
    kv = RdictKV(path)
    try:
        handler = OrderCommandHandler(order_repository(EventStore(kv), 100))
        store, repository = handler.store, handler.repository
        timings: dict[str, dict[int, float]] = {"snapshots": {}, "replay": {}}
        for length in lengths:
            order_id = f"order-{length}"
            for n, command in enumerate(commands_for(order_id, length)):
                handler.handle(command, SourceRecord(0, n, 1_795_000_000_000))
            loaders = {
                "snapshots": lambda o=order_id: repository.load(o)[0],
                "replay": lambda o=order_id: replay(store.read_events(o)),
            }
            for name, load in loaders.items():
                samples = []
                for _ in range(loads):
                    started = time.perf_counter()
                    state = load()
                    samples.append((time.perf_counter() - started) * 1000)
                    assert state is not None and state.version == length
                timings[name][length] = statistics.median(samples)
        return timings
    finally:
        kv.db.close()
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def worker(
    bootstrap: str, run: str, partitions: int, env_extra: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real orders worker (`streamapp worker`) of a fresh app `run`, ready; its base URL.
    Its tables are removed afterwards (its topics by the caller)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMAPP_APP_ID": run,
            "STREAMAPP_TOPIC_PREFIX": f"{run}.",
            "STREAMAPP_WEB_PORT": str(port),
            "STREAMAPP_DATA_DIR": str(OUT_DIR / run / "tables"),
            "STREAMAPP_PARTITIONS": str(partitions),
            **(env_extra or {}),
        }
    )
    log_path = OUT_DIR / f"{run}-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamapp.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not become ready, see {log_path}")
            time.sleep(0.5)
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:  # a stop stuck in faust's wait_empty: not measured
            print(f"worker {run} did not stop in 15 s: killed (see its log)")
            process.kill()
            process.wait(30)
        shutil.rmtree(OUT_DIR / run, ignore_errors=True)


def send_commands(bootstrap: str, run: str, commands: list[Command]) -> None:
    send_records(
        bootstrap,
        f"{run}.orders.commands",
        ((c.aggregate_id.encode(), c.to_json()) for c in commands),
        linger_ms=20,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(
    bootstrap: str,
    run: str,
    process: subprocess.Popen[bytes],
    commands: list[Command],
    args: argparse.Namespace,
    before: int = 0,
) -> tuple[float, float]:
    """Send `commands` as a backlog; once all `before` + them are answered: replies/s
    and the worker's CPU ms per command (a rate also counts time spent waiting for a core)."""
    cpu = cpu_seconds(process.pid)
    send_commands(bootstrap, run, commands)
    replies = f"{run}.orders.replies"
    total = before + len(commands)
    wait_for_records(
        bootstrap,
        replies,
        args.partitions,
        total,
        args.timeout,
        alive=lambda: process.poll() is None,
    )
    cpu_ms = (cpu_seconds(process.pid) - cpu) * 1000 / len(commands)
    return asyncio.run(output_rate(bootstrap, replies, total)), cpu_ms


def delete_run_topics(bootstrap: str, run: str) -> None:
    """Every topic and changelog of app `run` (prefixes ``<run>.`` and ``<run>-``)."""
    for prefix in (f"{run}.", f"{run}-"):
        asyncio.run(delete_topics_starting(bootstrap, prefix))


def through_worker(bootstrap: str, run: str, args: argparse.Namespace) -> dict[str, Any]:
    with worker(bootstrap, run, args.partitions) as (process, url):
        backlog = interleaved(args.orders, 10)
        appends, _cpu = drain(bootstrap, run, process, backlog, args)
        print(
            f"(A) appends through the agent: {appends:,.0f} commands/s "
            f"({len(backlog):,} commands, {args.orders:,} orders, 1 event each)"
        )

        long_streams = [c for n in LENGTHS for c in commands_for(f"long-{n}", n)]
        drain(bootstrap, run, process, long_streams, args, before=len(backlog))
        http = {}
        for n in LENGTHS:
            p50, p95 = get_latency_ms(f"{url}/orders/long-{n}", args.loads)
            http[n] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
            print(f"(B) GET /orders at {n:>6,} events: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
        ratio = http[10_000]["p50_ms"] / http[100]["p50_ms"]
        print(f"(B) p50 10,000 / 100 events: {ratio:.2f}x (goal <= 2x)")
        return {"appends_per_s": round(appends), "http_load": http, "http_ratio": round(ratio, 2)}


def alternation(runs: int) -> list[bool]:
    """on, off, off, on, on, off, ...: each setting as often first as second in a pair,
    so a drift of the machine over the run does not favour one of them."""
    order: list[bool] = []
    for n in range(runs):
        order += [True, False] if n % 2 == 0 else [False, True]
    return order


def spread(values: Sequence[float], digits: int = 0) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def validation_on_off(bootstrap: str, run: str, args: argparse.Namespace) -> dict[str, Any]:
    """(D): appends/s of fresh workers with validation on and off, alternated."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    backlog = interleaved(args.orders, 10)
    for n, on in enumerate(alternation(args.validation_runs)):
        name = f"{run}-v{n}"
        switch = {"STREAMAPP_SCHEMA_VALIDATION": "true" if on else "false"}
        try:
            with worker(bootstrap, name, args.partitions, switch) as (process, _url):
                rate, cpu_ms = drain(bootstrap, name, process, backlog, args)
        finally:
            delete_run_topics(bootstrap, name)
        rates[on].append(rate)
        cpu[on].append(cpu_ms)
        label = "on " if on else "off"
        print(f"(D) validation {label}: {rate:,.0f} commands/s, worker CPU {cpu_ms:.2f} ms/command")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    print(
        f"(D) validation on {spread(rates[True])}/s, off {spread(rates[False])}/s: "
        f"medians on/off = {ratio:.2f} (goal >= 0.9; {len(backlog):,} commands a run)"
    )
    print(
        f"(D) worker CPU ms/command on {spread(cpu[True], 2)}, off {spread(cpu[False], 2)}: "
        f"on/off = {cpu_ratio:.2f}"
    )
    return {
        "validation_on_per_s": [round(r) for r in rates[True]],
        "validation_off_per_s": [round(r) for r in rates[False]],
        "validation_ratio": round(ratio, 3),
        "validation_on_cpu_ms": [round(c, 3) for c in cpu[True]],
        "validation_off_cpu_ms": [round(c, 3) for c in cpu[False]],
        "validation_cpu_ratio": round(cpu_ratio, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--loads", type=int, default=200, help="timed loads per length")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--validation-runs", type=int, default=3, help="(D): runs with validation on, and off"
    )
    parser.add_argument("--only-validation", action="store_true", help="run (D) only")
    args = parser.parse_args()
    run = f"bench-es-{uuid.uuid4().hex[:8]}"
    result: dict[str, Any] = {"run": run, "orders": args.orders, "partitions": args.partitions}
    with kafka() as bootstrap:
        if not args.only_validation:
            try:
                result.update(through_worker(bootstrap, run, args))
            finally:
                delete_run_topics(bootstrap, run)
        if args.validation_runs > 0:
            result.update(validation_on_off(bootstrap, run, args))
    if not args.only_validation:
        result.update(load_in_process(args.loads))
    print(f"saved {save(run, result)}")
    return 0


def load_in_process(loads: int) -> dict[str, Any]:
    """(C), printed; its figures for the result file."""
    result: dict[str, Any] = {}
    worst = [n + 99 for n in LENGTHS]  # the longest tail after a snapshot
    timings = in_process([*LENGTHS, *worst], loads=max(loads // 10, 5))
    for name, label in (("snapshots", "snapshot + tail"), ("replay", "full replay")):
        cells = "  ".join(f"{n:,}: {ms:.3f}" for n, ms in timings[name].items())
        print(f"(C) in-process load, {label:<15} ms  {cells}")
        result[f"in_process_{name}_ms"] = {str(n): round(ms, 4) for n, ms in timings[name].items()}
    snap = timings["snapshots"]
    print(
        f"(C) snapshot + tail: 10,000/100 = {snap[10_000] / snap[100]:.2f}x; "
        f"worst tails 10,099/199 = {snap[10_099] / snap[199]:.2f}x (goal <= 2x)"
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
