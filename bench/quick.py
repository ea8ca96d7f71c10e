"""A smoke run of the benchmarks: each one end to end at a tiny size, for CI.

Not a measurement (the figures of so few records mean nothing): it proves that every
benchmark listed here still runs against the current code and broker, so `make bench`
does not break unnoticed. Each runs as `make bench` runs it, in a subprocess, with small
sizes; the first failure stops the run with its output.

    .venv/bin/python -m bench.quick      # make bench-quick

Not here, because they have no small size yet: bench/eventstore (fixed stream lengths up
to 10,000 events), bench/retry (fixed idle and 3,000-record phases), bench/failover
(five kills per configuration), bench/state_retention, bench/compression (restarts every
service per codec: three minutes even at 30 orders).
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common import ROOT

#: (module, arguments): each finishes in well under a minute on the development machine.
QUICK = [
    ("bench.relay", ["--records", "2000", "--partitions", "4"]),
    ("bench.saga", ["--orders", "40", "--latency-seconds", "4", "--ceiling-sagas", "40"]),
    ("bench.restore", ["--keys", "3000", "--runs", "1", "--faust-runs", "1"]),
    ("bench.validators", ["--quick"]),
]


def main() -> int:
    for module, args in QUICK:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        took = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
            print(f"{module} failed (exit {done.returncode}) after {took:.0f} s")
            return 1
        print(f"{module} {' '.join(args)}: ok in {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
