"""A/B of streamapp's relay pattern (bench/relay.py (d)) between two source trees.

For a code change to the per-record path: the same input topic is relayed by a
StreamApp worker (bench/streamapp_relay_app.py) run from the ``--old`` tree and from the
``--new`` one (e.g. a ``git worktree`` of the previous commit and this checkout),
alternating which goes first. Rates as in bench/relay.py: from the output records'
timestamps, start-up excluded. Saves bench/out/<run>.json.

    git worktree add /tmp/wt-old HEAD~1
    .venv/bin/python -m bench.relay_ab --old /tmp/wt-old [--new .] [--records 40000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from bench import relay
from bench.common import ROOT, kafka, save
from bench.relay import relay_in_turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="the baseline source tree")
    parser.add_argument("--new", type=Path, default=ROOT, help="the changed tree (this one)")
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    run = f"relay-ab-{uuid.uuid4().hex[:8]}"

    def tree(name: str) -> Callable[[], None]:
        def prepare() -> None:
            relay.ROOT = trees[name]  # the worker's cwd and PYTHONPATH
            os.environ["RELAY_PATTERN"] = "resilient"

        return prepare

    with kafka() as bootstrap:
        try:
            rates = relay_in_turns(
                bootstrap,
                run,
                {name: tree(name) for name in trees},
                args.records,
                args.partitions,
                args.runs,
            )
        finally:
            relay.ROOT = ROOT
    old, new = (statistics.median(rates[name]) for name in trees)
    print(f"new / old: {new / old:.2f}")
    save(run, {"trees": {k: str(v) for k, v in trees.items()}, "rates": rates, "ratio": new / old})
    return 0


if __name__ == "__main__":
    sys.exit(main())
