"""The embedded local Kafka cluster: N KRaft nodes on loopback, each broker+controller.

Every node is a ``LocalBroker`` (same jars, format, start and stop) with its own id,
ports (``Settings.local_kafka_ports``: the configured ports + 2(k-1) for node k) and state
dir ``<local_kafka_state_dir>/cluster/node-<k>``; they share one cluster id and a static
``controller.quorum.voters``. Topics get replication factor min(N, 3) and
``min.insync.replicas`` one less, so with 3 nodes acks=all survives one dead node.
``local_kafka(settings)`` picks the single broker (N = 1, exactly as before) or this.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from streamapp.local.broker import (
    STOP_TIMEOUT_S,
    BrokerError,
    BrokerStatus,
    LocalBroker,
    file_lock,
    find_java,
    new_cluster_id,
)
from streamapp.settings import Settings

#: Largest replication factor topics get, however many nodes run.
MAX_REPLICATION = 3
#: How fast a dead node is noticed: the controller fences a broker that missed its
#: heartbeats this long (Kafka: 9 s), moving its leaderships and shrinking ISRs.
BROKER_SESSION_TIMEOUT_MS = 3000
BROKER_HEARTBEAT_INTERVAL_MS = 500
#: A node restarted after kill -9 first recovers every partition's log (minutes for a
#: few hundred partitions on a busy machine) before it serves anything.
CLUSTER_READY_TIMEOUT_S = 300.0


def replication(nodes: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``nodes``."""
    factor = min(nodes, MAX_REPLICATION)
    return factor, max(factor - 1, 1)


class ClusterNode(LocalBroker):
    """Node ``node_id`` of the local cluster: a LocalBroker with its own ports and dir."""

    def __init__(self, settings: Settings, node_id: int) -> None:
        super().__init__(settings)
        self.node_id = node_id
        self.nodes = settings.local_kafka_nodes
        self.port, self.controller_port = settings.local_kafka_ports(node_id)
        self.cluster_dir = self.state_dir / "cluster"
        self.state_dir = self.cluster_dir / f"node-{node_id}"

    @property
    def cluster_id_file(self) -> Path:
        return self.cluster_dir / "cluster.id"

    def voters(self) -> str:
        """The static controller quorum: every node, ``id@host:controller_port``."""
        return ",".join(
            f"{k}@{self.host}:{self.settings.local_kafka_ports(k)[1]}"
            for k in range(1, self.nodes + 1)
        )

    def properties(self) -> dict[str, str]:
        factor, min_isr = (str(n) for n in replication(self.nodes))
        return {
            **super().properties(),
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters(),
            "default.replication.factor": factor,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": factor,
            "transaction.state.log.replication.factor": factor,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": factor,
            "share.coordinator.state.topic.min.isr": min_isr,
            "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
            "broker.heartbeat.interval.ms": str(BROKER_HEARTBEAT_INTERVAL_MS),
        }

    def status(self) -> BrokerStatus:
        found = super().status()
        return BrokerStatus(
            found.state, found.pid, found.bootstrap, f"node {self.node_id}", found.detail
        )


@dataclass(frozen=True)
class ClusterStatus:
    """Every node's status; the cluster runs when all of them do."""

    version: str
    nodes: tuple[BrokerStatus, ...]

    @property
    def state(self) -> str:  # running | stopped | degraded
        states = {n.state for n in self.nodes}
        if states == {"running"}:
            return "running"
        return "stopped" if states == {"stopped"} else "degraded"

    @property
    def running(self) -> bool:
        return self.state == "running"

    def describe(self) -> str:
        up = sum(n.running for n in self.nodes)
        bootstrap = ",".join(n.bootstrap for n in self.nodes)
        count = f"{up}/{len(self.nodes)} nodes"
        head = f"kafka {self.version} cluster {self.state} ({count}) at {bootstrap}"
        return "\n".join([head, *(f"  {n.describe()}" for n in self.nodes)])


class LocalCluster:
    """Lifecycle of the N-node cluster: up starts the nodes that are not running (so it
    also restarts a dead one), down stops them all, status reports each."""

    def __init__(self, settings: Settings) -> None:
        if settings.local_kafka_nodes < 2:
            raise BrokerError("a local cluster needs local_kafka_nodes >= 2")
        self.settings = settings
        self.version = settings.local_kafka_version
        self.nodes = [ClusterNode(settings, k) for k in range(1, settings.local_kafka_nodes + 1)]
        self.cluster_dir = self.nodes[0].cluster_dir

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def log_files(self) -> list[Path]:
        return [node.log_file for node in self.nodes]

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.cluster_dir / ".lock")

    def status(self) -> ClusterStatus:
        return ClusterStatus(self.version, tuple(node.status() for node in self.nodes))

    def up(self, timeout: float = CLUSTER_READY_TIMEOUT_S) -> ClusterStatus:
        """Start every node that is not running, then wait until each serves metadata
        (a node alone cannot: its controller needs a majority of the voters)."""
        java = find_java()
        with self._lock():
            self.nodes[0].ensure_jars()
            id_file = self.nodes[0].cluster_id_file  # one id, before the nodes format
            if not id_file.exists():
                id_file.parent.mkdir(parents=True, exist_ok=True)
                id_file.write_text(new_cluster_id())
            pids: dict[ClusterNode, int] = {}
            for node in self.nodes:
                if (pid := node.status().pid) is not None:
                    pids[node] = pid
            stopped = [node for node in self.nodes if node not in pids]
            # In parallel: formatting is a JVM run per node, seconds each.
            with ThreadPoolExecutor(max(len(stopped), 1)) as pool:
                starts = {node: pool.submit(node._start, java) for node in stopped}
            started = [node for node, start in starts.items() if start.exception() is None]
            try:
                for node, start in starts.items():
                    pids[node] = start.result()  # raises the first failure
                deadline = time.monotonic() + timeout
                for node in self.nodes:
                    node._wait_ready(pids[node], max(deadline - time.monotonic(), 1.0))
            except BaseException:  # a failed start, a timeout, Ctrl-C: leave no JVM
                self._stop(started)
                raise
            return self.status()

    def down(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop every node at once (one by one, the last ones would wait for a quorum
        that is gone). True if any was running."""
        with self._lock():
            return any(self._stop(self.nodes, timeout))

    @staticmethod
    def _stop(nodes: list[ClusterNode], timeout: float = STOP_TIMEOUT_S) -> list[bool]:
        if not nodes:
            return []
        with ThreadPoolExecutor(len(nodes)) as pool:
            return list(pool.map(lambda node: node.down(timeout), nodes))

    def tail(self, lines: int = 50) -> str:
        return "\n".join(
            f"==> node {node.node_id}: {node.log_file} <==\n{node.tail(lines)}"
            for node in self.nodes
        )


def other_cluster_running(settings: Settings) -> int:
    """The node count of a cluster running from this state dir while the settings ask
    for one broker (0: none), so that `kafka status`/`down` can point at --nodes."""
    if settings.local_kafka_nodes > 1:
        return 0
    nodes = len(list(ClusterNode(settings, 1).cluster_dir.glob("node-*")))
    if nodes < 2:
        return 0
    cluster = LocalCluster(settings.replace(local_kafka_nodes=nodes))
    return nodes if cluster.status().state != "stopped" else 0


def local_kafka(settings: Settings) -> LocalBroker | LocalCluster:
    """The embedded Kafka the settings ask for: one broker, or a cluster of N nodes."""
    if settings.local_kafka_nodes > 1:
        return LocalCluster(settings)
    return LocalBroker(settings)
