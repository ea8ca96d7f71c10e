"""`make bench-quick`: every benchmark it lists runs end to end against the current code.

The benchmarks are not run by the rest of the suite; a change to the code they drive
(the test deployment, loadgen, settings) could break `make bench` unnoticed. Here they
run at tiny sizes on the test broker (STREAMAPP_BOOTSTRAP_SERVERS: no broker of their
own), each in its own subprocess, as bench/quick.py runs them.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bench.quick import QUICK
from tests.integration.support import BIN, ROOT

pytestmark = pytest.mark.integration


def test_every_quick_benchmark_runs(bootstrap: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env["STREAMAPP_BOOTSTRAP_SERVERS"] = bootstrap
    done = subprocess.run(
        [str(BIN / "python"), "-m", "bench.quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    for module, args in QUICK:
        assert f"{module} {' '.join(args)}: ok in" in done.stdout, done.stdout
