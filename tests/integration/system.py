"""A whole streamapp deployment for a test: the four services as real worker processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamapp.settings import SERVICES
from tests.integration.support import (
    BIN,
    EMBEDDED_SESSION,
    ROOT,
    Worker,
    free_port,
    http_json,
    kill_all,
    stop_all,
    unique_id,
    wait_for,
)

#: Seeds for saga tests: every test uses its own skus and customers.
TEST_SEEDS = """
[inventory]
"SKU-HAPPY" = 10
"SKU-SOLDOUT" = 0
"SKU-PAY" = 10
"SKU-SHIP" = 10
"SKU-LATE" = 10
"SKU-CANCEL" = 10
"SKU-1" = 100000
"SKU-2" = 100000
"SKU-3" = 100000
"SKU-4" = 100000
"SKU-5" = 100000
"SKU-6" = 100000
"SKU-7" = 100000
"SKU-8" = 100000
"SKU-LIMITED" = 5

[payments]
"cust-happy" = "100.00"
"cust-inv" = "100.00"
"cust-broke" = "0.00"
"cust-ship" = "100.00"
"cust-late" = "100.00"
"cust-cancel" = "100.00"
"cust-1" = "1000000.00"
"cust-2" = "1000000.00"
"cust-3" = "1000000.00"
"cust-4" = "1000000.00"
"cust-5" = "1000000.00"
"cust-6" = "1000000.00"
"cust-7" = "1000000.00"
"cust-8" = "1000000.00"
"cust-small" = "50.00"

[shipping]
countries = ["NL", "BE", "DE", "FR", "GB", "US"]
"""


class System:
    """orders (+ saga orchestrator), inventory, payments and shipping, one worker each."""

    def __init__(self, bootstrap: str, root: Path, **settings: str) -> None:
        self.bootstrap = bootstrap
        self.root = root
        name = unique_id("saga")
        seeds = root / "seeds.toml"
        seeds.write_text(TEST_SEEDS)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
        self.env.update(
            {
                "STREAMAPP_BOOTSTRAP_SERVERS": bootstrap,
                "STREAMAPP_APP_ID": name,
                "STREAMAPP_TOPIC_PREFIX": f"{name}.",
                "STREAMAPP_DATA_DIR": str(root / "tables"),
                "STREAMAPP_PARTITIONS": "4",
                "STREAMAPP_SEEDS_FILE": str(seeds),
                # The suite's own embedded broker allows 1 s; settings would pick 6 s.
                **EMBEDDED_SESSION,
                "PYTHONUNBUFFERED": "1",
                **{f"STREAMAPP_{k.upper()}": v for k, v in settings.items()},
            }
        )
        self.prefix = f"{name}."
        self.ports = {service: free_port() for service in SERVICES}
        self.workers: dict[str, Worker] = {}

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, *services: str, wait: bool = True) -> None:
        """Start the services' workers (all four by default) at once; wait until each is
        ready unless `wait` is False (then wait_ready() does, e.g. after add_worker)."""
        for service in services or SERVICES:
            env = {
                **self.env,
                "STREAMAPP_SERVICE": service,
                "STREAMAPP_WEB_PORT": str(self.ports[service]),
            }
            log = self.root / f"{service}.log"
            self.workers[service] = Worker(env, log).start()
        if wait:
            self.wait_ready(*(services or SERVICES))

    def wait_ready(self, *names: str) -> None:
        """Wait until the named workers (every worker by default) are ready."""
        for name in names or list(self.workers):
            self.workers[name].wait_ready()

    def add_worker(self, service: str, name: str) -> Worker:
        """One more worker of `service` (own port and tables), known as `name` to url(),
        workers and stop(); it joins the service's group (wait_ready / settle it)."""
        self.ports[name] = free_port()
        env = {
            **self.env,
            "STREAMAPP_SERVICE": service,
            "STREAMAPP_WEB_PORT": str(self.ports[name]),
        }
        self.workers[name] = Worker(env, self.root / f"{name}.log").start()
        return self.workers[name]

    def kill9(self, service: str) -> None:
        self.workers[service].kill9()

    def kill9_during_load(
        self, loadgen: subprocess.Popen[bytes], victims: Sequence[tuple[str, float]]
    ) -> None:
        """While `loadgen` runs: for each (service, seconds), wait that long, kill -9 the
        service's worker and start it again at once (same port, same table directory),
        then wait until every restarted worker is ready. The kills keep their schedule
        (a restart restores its tables from the changelogs, which may take longer than
        the gap); the load is killed if this fails (e.g. it ended before the kills)."""
        try:
            for victim, after_s in victims:
                time.sleep(after_s)
                assert loadgen.poll() is None, "the load ended before the kills"
                self.kill9(victim)
                self.start(victim, wait=False)
            self.wait_ready(*{victim for victim, _ in victims})
        except BaseException:
            loadgen.kill()
            raise

    def restart(self, *services: str, wipe_tables: bool = False) -> None:
        """Stop the services' workers (at once), optionally delete their table
        directories, and start them again (at once), waiting until they are ready."""
        assert services, "name the services to restart"
        workers = [self.workers[service] for service in services]
        stop_all(workers)
        if wipe_tables:
            for worker in workers:
                shutil.rmtree(worker.table_dir, ignore_errors=True)
        self.start(*services)

    def stop(self) -> None:
        """Stop every worker gracefully (SIGTERM, at once)."""
        stop_all(self.workers.values())

    def kill(self) -> None:
        """SIGKILL every worker: a fixture's teardown, where the stop is not under test."""
        kill_all(self.workers.values())

    def logs(self) -> str:
        return "\n".join(f"--- {s}\n{w.log(40)}" for s, w in self.workers.items())

    # -- views -----------------------------------------------------------------------
    def get(self, service: str, path: str) -> Any:
        status, body = http_json(f"{self.url(service)}{path}", timeout=10)
        assert status == 200, (path, status, body)
        return body

    def saga(self, saga_id: str) -> Any:
        status, body = http_json(f"{self.url('orders')}/sagas/{saga_id}", timeout=10)
        return body if status == 200 else None

    def wait_saga(self, saga_id: str, *states: str, timeout: float = 60) -> Any:
        def reached() -> Any:
            saga = self.saga(saga_id)
            return saga if saga is not None and saga["state"] in states else None

        try:
            return wait_for(reached, timeout, f"saga {saga_id} in {states}", 0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast: {self.saga(saga_id)}\n{self.logs()}") from None

    def stock(self, sku: str) -> dict[str, int]:
        return dict(self.get("inventory", f"/inventory/{sku}"))

    def balance(self, customer: str) -> str:
        return str(self.get("payments", f"/payments/accounts/{customer}")["balance"])

    # -- reconfiguring, checking -------------------------------------------------------
    def configure(self, **settings: str) -> None:
        """Change settings for the workers started from now on (e.g. before a restart)."""
        self.env.update({f"STREAMAPP_{k.upper()}": v for k, v in settings.items()})

    def start_load(
        self, orders: int, rate: int, seed: int, log_path: Path
    ) -> subprocess.Popen[bytes]:
        """`streamapp loadgen` against this deployment, in the background (the usual
        outcome mix), its output in `log_path`."""
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                [
                    str(BIN / "streamapp"),
                    "loadgen",
                    *("--orders", str(orders), "--rate", str(rate), "--seed", str(seed)),
                    *("--wait-timeout", "300"),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def finish_load(self, loadgen: subprocess.Popen[bytes], orders: int, log_path: Path) -> str:
        """Wait until every order of the load has its outcome, then until `streamapp
        verify` passes: every saga has ended, but effects after the end (CommitInventory,
        refunds of late successes) may still wait in retry topics, so it is retried until
        it passes or has failed for 90 s. Its output."""
        try:
            assert loadgen.wait(420) == 0, log_path.read_text()[-3000:] + self.logs()
        finally:
            if loadgen.poll() is None:
                loadgen.kill()
        summary = log_path.read_text()
        assert f"all        {orders}" in summary, summary[-2000:]
        deadline = time.monotonic() + 90
        result = self.verify()
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(5)
            result = self.verify()
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{orders} sagas" in result.stdout, result.stdout
        return result.stdout

    def verify(self) -> subprocess.CompletedProcess[str]:
        """`streamapp verify` against this deployment's topics and views."""
        return subprocess.run(
            [
                str(BIN / "streamapp"),
                "verify",
                "--inventory-url",
                self.url("inventory"),
                "--payments-url",
                self.url("payments"),
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
