"""Ablation of streamapp's relay pattern: a bare faust agent vs the ResilientConsumer,
both on the same StreamApp worker (bench/streamapp_relay_app.py, RELAY_PATTERN).

One input topic filled once; each run relays all of it to a fresh output topic with a
fresh consumer group, alternating the two patterns (the first pattern swaps between
runs). Rates as in bench/relay.py: from the output records' timestamps, so start-up is
excluded. Saves bench/out/<run>.json.

    .venv/bin/python -m bench.relay_ablation [--records 60000] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import uuid

from bench.common import OUT_DIR, delete_topics_starting, kafka, output_rate, save
from bench.relay import fill, streamapp_relay
from streamapp.kafka.topics import TopicSpec, ensure_topics

PATTERNS = ("plain", "resilient")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    run = f"relay-ablation-{uuid.uuid4().hex[:8]}"
    rates: dict[str, list[float]] = {p: [] for p in PATTERNS}
    with kafka() as bootstrap:
        try:
            source = f"{run}.in"
            asyncio.run(ensure_topics(bootstrap, [TopicSpec(source, args.partitions, 1)]))
            asyncio.run(fill(bootstrap, source, args.records, 300))
            for n in range(args.runs):
                for pattern in PATTERNS if n % 2 == 0 else PATTERNS[::-1]:
                    name = f"{run}-{pattern}-{n}"
                    sink = f"{name}.out"
                    asyncio.run(ensure_topics(bootstrap, [TopicSpec(sink, args.partitions, 1)]))
                    os.environ["RELAY_PATTERN"] = pattern  # passed on to the worker
                    streamapp_relay(
                        bootstrap,
                        name,
                        source,
                        sink,
                        args.partitions,
                        args.records,
                        600.0,
                        OUT_DIR / f"{name}.log",
                    )
                    rate = asyncio.run(output_rate(bootstrap, sink, args.records))
                    rates[pattern].append(round(rate))
                    print(f"run {n + 1} {pattern}: {rate:,.0f} records/s", flush=True)
        finally:
            asyncio.run(delete_topics_starting(bootstrap, run))
    plain, resilient = (statistics.median(rates[p]) for p in PATTERNS)
    print(f"resilient / plain: {resilient / plain:.2f}")
    save(run, {"records": args.records, "rates": rates, "ratio": round(resilient / plain, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
