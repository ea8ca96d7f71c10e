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
import os
import statistics
import sys
import uuid
from collections.abc import Callable

from bench.common import kafka, save
from bench.relay import relay_in_turns

PATTERNS = ("plain", "resilient")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    run = f"relay-ablation-{uuid.uuid4().hex[:8]}"

    def pattern(name: str) -> Callable[[], None]:
        def prepare() -> None:
            os.environ["RELAY_PATTERN"] = name  # passed on to the worker

        return prepare

    with kafka() as bootstrap:
        rates = relay_in_turns(
            bootstrap,
            run,
            {name: pattern(name) for name in PATTERNS},
            args.records,
            args.partitions,
            args.runs,
        )
    plain, resilient = (statistics.median(rates[p]) for p in PATTERNS)
    print(f"resilient / plain: {resilient / plain:.2f}")
    save(run, {"records": args.records, "rates": rates, "ratio": round(resilient / plain, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
