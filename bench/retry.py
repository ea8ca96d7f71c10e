"""Retry figures: lateness of delayed retries, and main-topic throughput while records
wait in retry topics.

A real shipping-service worker (4 partitions) on the local broker.

(A) Lateness = time its answer was written - its retry-after, for commands that fail
    their first attempt (inject_failures_first_attempts=1, retry delay 1 s +/- 10%):
    at idle (200 commands at 20/s) and under load (3,000 commands at once, all failing:
    a backlog of due retries); and of 100 retries parked to fall due 1 s into a backlog
    of 3,000 fresh commands (the due-first case), three runs.
(B) Throughput of fresh commands on the main topic (backlogs of 3,000, no failures;
    answers/s between the first and last answer): three runs with nothing waiting, then
    three with 10,000 records waiting in shipping.commands.retry.1 (due in an hour).
    Ratio of the medians (goal >= 0.9).

    make bench        # or: .venv/bin/python -m bench.retry
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import delete_topics_starting, kafka, save
from streamapp.messages import Command, new_id
from streamapp.resilience.headers import Origin, header, retry_headers
from streamapp.tools.loadgen import percentile
from tests.integration.kafka_io import read_topic, send_records
from tests.integration.support import wait_for
from tests.integration.system import System


def ship(order_id: str) -> Command:
    return Command(new_id(), "ScheduleShipment", order_id, {"shippingAddress": {"country": "NL"}})


def answered(system: System, prefix: str) -> dict[str, int]:
    """aggregateId -> record time of its first answer, for ids starting with prefix."""
    found: dict[str, int] = {}
    for record in read_topic(system.bootstrap, system.topic("shipping.events")):
        aggregate = orjson.loads(record.value)["aggregateId"]
        if aggregate.startswith(prefix):
            found.setdefault(aggregate, record.timestamp)
    return found


def send_paced(system: System, commands: list[Command], rate: float | None) -> None:
    topic = system.topic("shipping.commands")
    if rate is None:
        send_records(
            system.bootstrap, topic, [(c.aggregate_id.encode(), c.to_json()) for c in commands]
        )
        return
    for n, command in enumerate(commands):
        send_records(system.bootstrap, topic, [(command.aggregate_id.encode(), command.to_json())])
        time.sleep(max(0.0, (n + 1) / rate - (time.monotonic() - started[0])))


started = [0.0]


def lateness(system: System, n: int, rate: float | None, label: str) -> dict[str, float]:
    prefix = f"{label}-{new_id()[:6]}-"
    commands = [ship(f"{prefix}{i:05d}") for i in range(n)]
    started[0] = time.monotonic()
    send_paced(system, commands, rate)
    wait_for(lambda: len(answered(system, prefix)) == n, 600, f"{n} answers", every=1.0)
    due = {}
    for record in read_topic(system.bootstrap, system.topic("shipping.commands.retry.1")):
        key = (record.key or b"").decode()
        if key.startswith(prefix):
            due[key] = int(header(list(record.headers), "retry-after") or 0)
    done = answered(system, prefix)
    late = [done[k] - due[k] for k in done]
    early = [v for v in late if v < 0]
    return {
        "p50_ms": float(percentile(late, 50) or 0),
        "p99_ms": float(percentile(late, 99) or 0),
        "max_ms": float(max(late)),
        "early": float(len(early)),
    }


def throughput(system: System, n: int, label: str) -> float:
    prefix = f"{label}-{new_id()[:6]}-"
    send_paced(system, [ship(f"{prefix}{i:05d}") for i in range(n)], None)
    wait_for(lambda: len(answered(system, prefix)) == n, 600, f"{n} answers", every=1.0)
    times = sorted(answered(system, prefix).values())
    return (n - 1) / max((times[-1] - times[0]) / 1000.0, 1e-3)


def behind_backlog(system: System, parked: int, backlog: int) -> dict[str, float]:
    """Lateness of `parked` retries that fall due (1 s after they are parked) while a
    backlog of `backlog` fresh commands, sent at the same moment, is being handled."""
    prefix = f"due-{new_id()[:6]}-"
    due = int(time.time() * 1000) + 1000
    park(system, parked, due, prefix, first_offset=10**12)  # no real offset: no dedupe hit
    fresh = f"fresh-{new_id()[:6]}-"
    send_paced(system, [ship(f"{fresh}{i:05d}") for i in range(backlog)], None)
    wait_for(lambda: len(answered(system, fresh)) == backlog, 600, "backlog", every=1.0)
    wait_for(lambda: len(answered(system, prefix)) == parked, 600, "retries", every=1.0)
    done, finished = answered(system, prefix), answered(system, fresh)
    late = [t - due for t in done.values()]
    relayed = {
        (r.key or b"").decode(): r.timestamp
        for r in read_topic(system.bootstrap, system.topic("shipping.commands.retry.due"))
        if (r.key or b"").decode().startswith(prefix)
    }
    relay_late = [t - due for t in relayed.values()]
    return {
        # where the lateness is: copying to .retry.due (the relay) or after it (the worker)
        "relay_p50_ms": float(percentile(relay_late, 50) or 0),
        "relay_p99_ms": float(percentile(relay_late, 99) or 0),
        "p50_ms": float(percentile(late, 50) or 0),
        "p99_ms": float(percentile(late, 99) or 0),
        "max_ms": float(max(late)),
        "early": float(sum(1 for v in late if v < 0)),
        # how long the backlog took: the retries fell due inside it only if > 1 s
        "backlog_s": (max(finished.values()) - min(finished.values())) / 1000.0,
    }


def park(system: System, n: int, due: int, prefix: str = "parked-", first_offset: int = 0) -> None:
    """n records waiting in retry.1 until `due` (epoch ms), as the agent would have put
    them; their origin offsets start at `first_offset`."""
    topic = system.topic("shipping.commands")
    records: list[Any] = []
    for i in range(n):
        command = ship(f"{prefix}{i:05d}")
        origin = Origin(topic, i % 4, first_offset + i)
        headers = retry_headers([], origin, 1, due, "TransientFailure", "bench")
        records.append((command.aggregate_id.encode(), command.to_json(), headers))
    send_records(system.bootstrap, system.topic("shipping.commands.retry.1"), records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=3000)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with kafka() as bootstrap:
        runs = []
        try:
            with tempfile.TemporaryDirectory() as tmp:
                retrying = System(
                    bootstrap, Path(tmp), log_level="warning", inject_failures_first_attempts="1"
                )
                runs.append(retrying)
                retrying.start("shipping")
                idle = lateness(retrying, 200, 20.0, "idle")
                loaded = lateness(retrying, 3000, None, "load")
                retrying.stop()
                for name, figures in (("idle, 200 at 20/s", idle), ("load, 3,000 at once", loaded)):
                    print(
                        f"(A) lateness {name}: p50 {figures['p50_ms']:.0f} ms, "
                        f"p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms, "
                        f"early {figures['early']:.0f}"
                    )
                result["lateness_idle"], result["lateness_load"] = idle, loaded
            with tempfile.TemporaryDirectory() as tmp:
                plain = System(bootstrap, Path(tmp), log_level="warning")
                runs.append(plain)
                plain.start("shipping")
                throughput(plain, 500, "warm")
                backlogged = [behind_backlog(plain, 100, args.backlog) for _ in range(3)]
                for figures in backlogged:
                    print(
                        f"(A) lateness of 100 retries due 1 s into a {args.backlog:,} backlog "
                        f"(handled in {figures['backlog_s']:.1f} s): p50 "
                        f"{figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, max "
                        f"{figures['max_ms']:.0f} ms, early {figures['early']:.0f}"
                    )
                result["lateness_behind_backlog"] = backlogged
                # Three runs each; the medians are compared (single runs vary by +-20%
                # on this machine).
                bases = [throughput(plain, args.backlog, "base") for _ in range(3)]
                park(plain, 10_000, int(time.time() * 1000) + 3_600_000)  # due in an hour
                waitings = [throughput(plain, args.backlog, "waiting") for _ in range(3)]
                print(
                    "    runs/s: nothing waiting "
                    + ", ".join(f"{r:.0f}" for r in bases)
                    + "; 10,000 waiting "
                    + ", ".join(f"{r:.0f}" for r in waitings)
                )
                base, waiting = statistics.median(bases), statistics.median(waitings)
                plain.stop()
            ratio = waiting / base
            print(
                f"(B) main topic: {base:.0f}/s with nothing waiting, {waiting:.0f}/s with 10,000 "
                f"in retry.1: ratio {ratio:.2f} (goal >= 0.9)"
            )
            result.update(
                {
                    "base_per_s": round(base, 1),
                    "waiting_per_s": round(waiting, 1),
                    "ratio": round(ratio, 3),
                }
            )
        finally:
            for system in runs:
                system.stop()
                asyncio.run(delete_topics_starting(bootstrap, system.env["STREAMAPP_APP_ID"]))
    print(f"saved {save('retry-' + new_id()[:8], result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
