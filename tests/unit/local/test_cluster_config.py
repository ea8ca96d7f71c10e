from __future__ import annotations

from pathlib import Path

import pytest

from streamapp.local.broker import LocalBroker
from streamapp.local.cluster import (
    ClusterNode,
    LocalCluster,
    local_kafka,
    other_cluster_running,
    replication,
)
from streamapp.settings import Settings, SettingsError, load_settings


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def cluster_settings(tmp_path: Path) -> Settings:
    return Settings(
        local_kafka_port=29992,
        local_kafka_controller_port=29993,
        local_kafka_state_dir=tmp_path.resolve(),
        local_kafka_nodes=3,
    )


def test_node_k_shifts_both_ports_by_two_per_node(tmp_path: Path) -> None:
    settings = cluster_settings(tmp_path)
    assert [settings.local_kafka_ports(k) for k in (1, 2, 3)] == [
        (29992, 29993),
        (29994, 29995),
        (29996, 29997),
    ]
    assert settings.bootstrap == "127.0.0.1:29992,127.0.0.1:29994,127.0.0.1:29996"
    assert Settings().bootstrap == "127.0.0.1:19092"  # one node: exactly as before


def test_every_node_is_broker_and_controller_of_one_static_quorum(tmp_path: Path) -> None:
    cluster = LocalCluster(cluster_settings(tmp_path))
    voters = "1@127.0.0.1:29993,2@127.0.0.1:29995,3@127.0.0.1:29997"
    for k, node in enumerate(cluster.nodes, start=1):
        p = props(node.server_properties())
        client, controller = 29990 + 2 * k, 29991 + 2 * k
        assert p["node.id"] == str(k)
        assert p["process.roles"] == "broker,controller"
        assert p["controller.quorum.voters"] == voters
        assert p["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"
        )
        assert p["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{client}"
        assert p["log.dirs"] == str(tmp_path.resolve() / "cluster" / f"node-{k}" / "data")
        assert (
            node.config_file == tmp_path.resolve() / "cluster" / f"node-{k}" / "server.properties"
        )
        assert node.pid_file.parent != LocalBroker(cluster.settings).state_dir
        # One cluster id for all, outside the node dirs.
        assert node.cluster_id_file == tmp_path.resolve() / "cluster" / "cluster.id"
    assert cluster.bootstrap == cluster.settings.bootstrap


def test_cluster_replicates_three_ways_with_two_in_sync(tmp_path: Path) -> None:
    p = props(LocalCluster(cluster_settings(tmp_path)).nodes[0].server_properties())
    assert p["default.replication.factor"] == "3"
    assert p["min.insync.replicas"] == "2"
    for topic in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert p[f"{topic}.replication.factor"] == "3"
    assert p["transaction.state.log.min.isr"] == "2"
    assert p["share.coordinator.state.topic.min.isr"] == "2"
    # A dead node is fenced (its leaderships moved, ISRs shrunk) within seconds.
    assert int(p["broker.session.timeout.ms"]) <= 3000


@pytest.mark.parametrize(
    ("nodes", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))]
)
def test_replication_for_n_nodes(nodes: int, expected: tuple[int, int]) -> None:
    assert replication(nodes) == expected


def test_workers_may_use_a_short_session_timeout(tmp_path: Path) -> None:
    single = props(LocalBroker(Settings(local_kafka_state_dir=tmp_path)).server_properties())
    node = props(ClusterNode(cluster_settings(tmp_path), 1).server_properties())
    assert single["group.min.session.timeout.ms"] == node["group.min.session.timeout.ms"] == "1000"


def test_topic_replication_is_automatic_unless_set(tmp_path: Path) -> None:
    assert Settings().topic_replication_factor == 1
    assert cluster_settings(tmp_path).topic_replication_factor == 3
    assert cluster_settings(tmp_path).replace(replication_factor=2).topic_replication_factor == 2
    assert cluster_settings(tmp_path).replace(replication_factor=1).topic_replication_factor == 1
    external = Settings(bootstrap_servers="kafka:9092", local_kafka_nodes=3)
    assert external.topic_replication_factor == 1
    assert external.bootstrap == "kafka:9092"
    env = {"STREAMAPP_LOCAL_KAFKA_NODES": "3"}
    assert load_settings(None, env).topic_replication_factor == 3


def test_overlapping_node_ports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="overlapping ports"):
        Settings(local_kafka_port=19092, local_kafka_controller_port=19094, local_kafka_nodes=3)
    Settings(local_kafka_port=19092, local_kafka_controller_port=19094)  # one node: fine
    with pytest.raises(SettingsError, match="local_kafka_nodes must be >= 1"):
        Settings(local_kafka_nodes=0)


def test_one_node_is_the_single_broker_as_before(tmp_path: Path) -> None:
    single = local_kafka(Settings(local_kafka_state_dir=tmp_path))
    assert type(single) is LocalBroker
    assert single.config_file == tmp_path.resolve() / "server.properties"
    assert isinstance(local_kafka(cluster_settings(tmp_path)), LocalCluster)


def test_cluster_status_names_every_node(tmp_path: Path) -> None:
    cluster = LocalCluster(
        cluster_settings(tmp_path).replace(local_kafka_port=1, local_kafka_controller_port=2)
    )
    status = cluster.status()
    assert status.state == "stopped" and not status.running
    lines = status.describe().splitlines()
    assert lines[0].startswith("kafka 4.1.1 cluster stopped (0/3 nodes) at 127.0.0.1:1,")
    assert [line.split()[2] for line in lines[1:]] == ["1", "2", "3"]


def test_no_cluster_hint_without_a_running_cluster(tmp_path: Path) -> None:
    settings = Settings(
        local_kafka_state_dir=tmp_path, local_kafka_port=1, local_kafka_controller_port=2
    )
    assert other_cluster_running(settings) == 0
    for k in (1, 2, 3):  # node dirs left by a cluster that is stopped
        (tmp_path / "cluster" / f"node-{k}").mkdir(parents=True)
    assert other_cluster_running(settings) == 0
