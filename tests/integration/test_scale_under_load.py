"""Scaling and broker faults while orders flow, on a real 3-node KRaft cluster.

One cluster for the module (`streamapp kafka up --nodes 3` on its own ports:
STREAMAPP_TEST_SCALE_CLUSTER_PORT, default 29972, clients on 29972/29974/29976), and a
deployment per test with replication factor 3 (min.insync.replicas 2). While
`streamapp loadgen` sends orders with the usual outcome mix:

- workers join and leave: orders 1 -> 2 -> 3 -> 1, inventory 1 -> 3;
- one broker is kill -9'ed and started again.

Afterwards every order has its outcome, no worker crashed, and `streamapp verify`
passes: every saga ended once, stock and money conserved, no command applied twice,
every command answered.

Marked ``scale``: ~5 minutes with the 2-core box at load ~12, so `make test` (CI) leaves
it out and `make test-scale` runs it. It found two defects: faust's livelock detector
crashing a worker (streamapp.kafka.faust_patches) and verify's reader skipping
partitions on a cluster (streamapp.tools.records).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import Worker, processes_matching, run_cli, wait_for
from tests.integration.system import System

pytestmark = [pytest.mark.integration, pytest.mark.scale]

CLUSTER_PORT = int(os.environ.get("STREAMAPP_TEST_SCALE_CLUSTER_PORT", "29972"))
RATE = 10


class Cluster:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
        self.env.update(
            {
                "STREAMAPP_LOCAL_KAFKA_PORT": str(CLUSTER_PORT),
                "STREAMAPP_LOCAL_KAFKA_CONTROLLER_PORT": str(CLUSTER_PORT + 1),
                "STREAMAPP_LOCAL_KAFKA_STATE_DIR": str(state_dir),
                "STREAMAPP_LOCAL_KAFKA_HEAP": "320m",
                "STREAMAPP_LOCAL_KAFKA_NODES": "3",
            }
        )
        self.bootstrap = ",".join(f"127.0.0.1:{CLUSTER_PORT + d}" for d in (0, 2, 4))

    def up(self) -> None:
        result = run_cli(["kafka", "up", "--nodes", "3"], self.env)
        assert result.returncode == 0, result.stdout + result.stderr

    def kill9(self, node: int) -> None:
        config = self.state_dir / "cluster" / f"node-{node}" / "server.properties"
        [victim] = processes_matching(str(config))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not processes_matching(str(config)), 10, f"node {node} to die")

    def down(self) -> None:
        run_cli(["kafka", "down", "--nodes", "3"], self.env)
        assert processes_matching(str(self.state_dir)) == []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("scale") / "kafka")
    try:
        running.up()
        yield running
    finally:
        running.down()


@pytest.fixture
def system(cluster: Cluster, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        cluster.bootstrap,
        tmp_path,
        partitions="6",
        replication_factor="3",
        # 6 s, not the 3 s default: a broker kill here also moves group coordinators, and
        # this test has not been run with the shorter session on the 3-node cluster.
        consumer_session_timeout_ms="6000",
    )
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.kill()


def alive(workers: dict[str, Worker], *names: str) -> None:
    for name in names:
        proc = workers[name].proc
        assert proc is not None and proc.poll() is None, f"{name} exited:\n{workers[name].log()}"


def test_workers_join_and_leave_while_orders_flow(system: System, tmp_path: Path) -> None:
    orders = 400
    log = tmp_path / "loadgen.log"
    loadgen = system.start_load(orders, RATE, 11, log)

    steps: list[tuple[float, str, str, str]] = [
        (4, "add", "orders", "orders-2"),
        (6, "add", "orders", "orders-3"),
        (3, "add", "inventory", "inventory-2"),
        (0, "add", "inventory", "inventory-3"),
        (8, "stop", "", "orders-2"),  # SIGTERM: it leaves the group
        (5, "stop", "", "orders-3"),
    ]
    try:
        for after_s, action, service, name in steps:
            time.sleep(after_s)
            assert loadgen.poll() is None, "the load ended before the scaling did"
            if action == "add":
                system.add_worker(service, name)
            else:
                system.workers[name].stop()
    except BaseException:
        loadgen.kill()
        raise
    system.finish_load(loadgen, orders, log)
    alive(
        system.workers,
        "orders",
        "inventory",
        "inventory-2",
        "inventory-3",
        "payments",
        "shipping",
    )
    for name in ("orders-2", "orders-3"):  # they left cleanly, on SIGTERM
        proc = system.workers[name].proc
        assert proc is not None and proc.returncode == 0, system.workers[name].log()


def test_a_broker_killed_and_restarted_while_orders_flow(
    cluster: Cluster, system: System, tmp_path: Path
) -> None:
    orders = 300
    log = tmp_path / "loadgen.log"
    loadgen = system.start_load(orders, RATE, 11, log)
    try:
        time.sleep(8)
        assert loadgen.poll() is None, "the load ended before the broker was killed"
        cluster.kill9(2)
        time.sleep(10)
        cluster.up()  # starts only the dead node; it catches up and rejoins
    except BaseException:
        loadgen.kill()
        raise
    system.finish_load(loadgen, orders, log)
    alive(system.workers, "orders", "inventory", "payments", "shipping")
