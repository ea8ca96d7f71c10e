"""A smoke run of the benchmarks: each one end to end at a tiny size, for CI.

Not a measurement (the figures of so few records mean nothing): it proves that every
benchmark listed here still runs against the current code and broker, so `make bench`
does not break unnoticed. Each runs as `make bench` runs it, in a subprocess, with small
sizes and one shared time limit; at the limit it gets SIGINT, so that its own clean-up
stops its workers and deletes its topics, then SIGKILL a minute later. The first failure
stops the run with its output.

    .venv/bin/python -m bench.quick      # make bench-quick

Not here, because they have no small size yet: bench/eventstore (fixed stream lengths up
to 10,000 events), bench/retry (fixed idle and 3,000-record phases), bench/failover
(five kills per configuration), bench/state_retention, bench/compression (restarts every
service per codec: three minutes even at 30 orders).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from bench.common import ROOT

#: (module, arguments): each finishes in well under a minute on the development machine.
QUICK = [
    ("bench.relay", ["--records", "2000", "--partitions", "4"]),
    ("bench.saga", ["--orders", "20", "--latency-seconds", "2", "--ceiling-sagas", "20"]),
    ("bench.restore", ["--keys", "2000", "--runs", "1", "--faust-runs", "1"]),
    ("bench.validators", ["--quick"]),
]
#: For the whole run (the test that runs it allows 900 s); ~75 s is usual.
LIMIT_S = 600.0
#: After SIGTERM at the limit: time for the benchmark's clean-up (workers, topics).
CLEANUP_S = 60.0


def run(module: str, args: list[str], timeout: float) -> tuple[int | None, str]:
    """Run one benchmark; (exit code, or None if it was stopped at `timeout`; output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=max(timeout, 1.0))
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # its finally blocks stop workers, topics
        try:
            out, _ = proc.communicate(timeout=CLEANUP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        return None, out


def main() -> int:
    deadline = time.monotonic() + LIMIT_S
    for module, args in QUICK:
        started = time.monotonic()
        code, out = run(module, args, deadline - started)
        took = time.monotonic() - started
        if code != 0:
            print(out[-6000:])
            how = "stopped at the time limit" if code is None else f"exit {code}"
            print(f"{module} failed ({how}) after {took:.0f} s")
            return 1
        print(f"{module} {' '.join(args)}: ok in {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
