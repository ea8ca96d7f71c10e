"""Prometheus against a real deployment: two orders workers and the three participants.

Every worker's ``/metrics`` passes ``promtool check metrics``; then a real Prometheus
server (Debian package ``prometheus``) scrapes them every second for 30 s while orders
flow, with config/prometheus/alerts.yml loaded, and its HTTP API must hold samples of
the consumer lag (from every worker), the saga metrics and the flow metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamapp.messages import new_id
from tests.integration.support import (
    ROOT,
    free_port,
    http_get,
    http_json,
    http_post_json,
    settle,
    wait_for,
)
from tests.integration.system import System

pytestmark = pytest.mark.integration

SCRAPE_S = 30
#: Service of each worker the test starts (System names workers by service, the second
#: orders worker "orders-2").
WORKERS = {
    "orders": "orders",
    "orders-2": "orders",
    "inventory": "inventory",
    "payments": "payments",
    "shipping": "shipping",
}


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(bootstrap, tmp_path_factory.mktemp("prometheus"))
    try:
        deployment.start(wait=False)  # all five workers start at once
        deployment.add_worker("orders", "orders-2")
        deployment.wait_ready()
        settle(deployment.workers["orders"], deployment.workers["orders-2"])
        yield deployment
    finally:
        deployment.kill()


def place(system: System, worker: str, n: int) -> str:
    """POST /orders to one worker; customers and skus cust-1..8 / SKU-1..8 never run out."""
    order_id = f"order-{new_id()[:12]}"
    status, body = http_post_json(
        f"{system.url(worker)}/orders",
        {
            "orderId": order_id,
            "customerId": f"cust-{n % 8 + 1}",
            "items": [{"sku": f"SKU-{n % 8 + 1}", "quantity": 1, "unitPrice": "10.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
        },
    )
    assert status == 201, body
    return order_id


def place_round(system: System, count: int, start: int = 0) -> list[str]:
    """`count` orders, alternating between the two orders workers."""
    return [place(system, ("orders", "orders-2")[n % 2], start + n) for n in range(count)]


def promtool_check_metrics(text: bytes) -> subprocess.CompletedProcess[bytes]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make system-deps` (Debian package prometheus)"
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
    )


def test_every_workers_metrics_pass_promtool_check_metrics(system: System) -> None:
    for order_id in place_round(system, 4):
        system.wait_saga(order_id, "COMPLETED")
    for name in WORKERS:
        status, text = http_get(f"{system.url(name)}/metrics", timeout=10)
        assert status == 200
        result = promtool_check_metrics(text)
        problems = (result.stdout + result.stderr).decode()
        assert result.returncode == 0 and not problems.strip(), f"{name}:\n{problems}"
        assert b"streamapp_consumer_lag{" in text, name
        assert b"streamapp_recovery_active 0.0" in text, name
    # Four orders may all hash to one worker's partitions: look at both orders workers.
    orders = "".join(
        http_get(f"{system.url(name)}/metrics")[1].decode() for name in ("orders", "orders-2")
    )
    assert "streamapp_sagas_in_flight{" in orders
    assert "streamapp_saga_step_seconds_count{" in orders
    assert "streamapp_eventstore_append_seconds_count" in orders


# -- a real Prometheus server -------------------------------------------------------------
def scrape_config(system: System) -> dict[str, Any]:
    """config/prometheus/prometheus.yml's job for this deployment's workers, at 1 s."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "config" / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "streamapp",
                "scrape_timeout": "1s",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{system.ports[name]}"],
                        "labels": {"service": service, "worker": name},
                    }
                    for name, service in WORKERS.items()
                ],
            }
        ],
    }


class Prometheus:
    """A prometheus server process with its own config, storage and port."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: `make system-deps` (Debian package prometheus)"
        root.mkdir(parents=True, exist_ok=True)
        config_file = root / "prometheus.yml"
        config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = root / "prometheus.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log()}"
            return http_get(f"{self.url}/-/ready", timeout=2)[0] == 200

        wait_for(ready, timeout, "prometheus to be ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of a query (/api/v1/query)."""
        status, body = http_json(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=10
        )
        assert status == 200 and body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def by_worker(self, promql: str) -> dict[str, float]:
        """worker label -> value of a query aggregated `by (worker)`."""
        return {r["metric"]["worker"]: float(r["value"][1]) for r in self.query(promql)}

    def api(self, path: str) -> Any:
        status, body = http_json(f"{self.url}/api/v1/{path}", timeout=10)
        assert status == 200 and body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # our own process only (its own session)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def prometheus(system: System, tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path / "prometheus", scrape_config(system))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_prometheus_scraping_the_deployment_stores_lag_saga_and_flow_samples(
    system: System, prometheus: Prometheus
) -> None:
    every = set(WORKERS)
    wait_for(
        lambda: set(prometheus.by_worker("max by (worker) (up)")) == every,
        30,
        "a first scrape of every worker",
    )
    # Orders flow for the whole window, a couple a second, on both orders workers.
    placed: list[str] = []
    deadline = time.monotonic() + SCRAPE_S
    while time.monotonic() < deadline:
        placed += place_round(system, 2, start=len(placed))
        time.sleep(0.5)
    for order_id in placed:
        system.wait_saga(order_id, "COMPLETED")

    def stored(promql: str, expected: set[str] = every) -> dict[str, float] | None:
        found = prometheus.by_worker(promql)
        return found if set(found) >= expected else None

    try:
        # a scrape of every worker each second through the window (up: 1 or 0 each time)
        scrapes = wait_for(
            lambda: stored("count_over_time(up[2m])"), 10, "up samples of every worker"
        )
        assert min(scrapes.values()) >= SCRAPE_S * 2 / 3, scrapes
        # consumer lag: a sample per assigned partition, from every worker
        lag = wait_for(
            lambda: stored("count by (worker) (streamapp_consumer_lag)"), 10, "lag samples"
        )
        assert all(count >= 1 for count in lag.values()), lag
        # sagas: by state on both orders workers, and the steps both of them timed
        orders = {"orders", "orders-2"}
        in_flight = wait_for(
            lambda: stored("count by (worker) (streamapp_sagas_in_flight)", orders),
            10,
            "sagas in flight",
        )
        assert all(count == 6 for count in in_flight.values()), in_flight  # one per state
        steps = wait_for(
            lambda: stored(
                'sum by (worker) (streamapp_saga_step_seconds_count{outcome="succeeded"})',
                orders,
            ),
            20,
            "saga step latencies",
        )
        assert sum(steps.values()) >= 4 * len(placed), steps  # four steps per saga
        # flows: the tracer observes each flow that ends
        flows = wait_for(
            lambda: stored("sum by (worker) (streamapp_flow_duration_seconds_count)", orders),
            30,
            "flow durations (the tracer's histogram)",
        )
        assert sum(flows.values()) >= len(placed), flows
        # alerts.yml evaluates cleanly on real data, and nothing fires on a healthy run
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        assert len(rules) >= 6 and {r["health"] for r in rules} == {"ok"}, rules
        firing = [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
        assert firing == [], firing
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- prometheus\n{prometheus.log()}") from None
