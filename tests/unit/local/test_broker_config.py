from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streamapp.local import broker as broker_module
from streamapp.local.broker import (
    BrokerError,
    LocalBroker,
    ToolMissing,
    find_java,
    min_heap,
    new_cluster_id,
)
from streamapp.settings import Settings


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_server_properties_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    broker = LocalBroker(
        Settings(
            local_kafka_port=1111, local_kafka_controller_port=1112, local_kafka_state_dir=tmp_path
        )
    )
    p = props(broker.server_properties())
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:1112"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:1112"
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1111"
    assert p["log.dirs"] == str(tmp_path / "data")
    assert p["auto.create.topics.enable"] == "false"
    assert p["group.initial.rebalance.delay.ms"] == "0"
    assert int(p["log.cleaner.dedupe.buffer.size"]) <= 32 * 1024 * 1024
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert p[key] == "1"
    assert broker.bootstrap == "127.0.0.1:1111"


def test_jars_are_cached_per_version_outside_the_state_dir(tmp_path: Path) -> None:
    broker = LocalBroker(
        Settings(
            local_kafka_cache_dir=tmp_path / "cache",
            local_kafka_state_dir=tmp_path / "state",
            local_kafka_version="4.0.0",
        )
    )
    assert broker.libs_dir == tmp_path / "cache" / "4.0.0" / "libs"


def test_cluster_id_is_22_chars_base64url() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(
        len(i) == 22
        and set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )


@pytest.mark.parametrize(("heap", "initial"), [("512m", "256m"), ("1g", "512m"), ("96m", "64m")])
def test_initial_heap_is_half_the_max(heap: str, initial: str) -> None:
    assert min_heap(heap) == initial


def test_bad_heap_setting() -> None:
    with pytest.raises(BrokerError, match="local_kafka_heap"):
        min_heap("lots")


def test_missing_java_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ToolMissing) as error:
        find_java()
    message = str(error.value)
    assert "\n" not in message
    assert "java not found" in message and "apt-get install openjdk-17" in message


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ToolMissing, match="Java 11; Kafka 4 needs Java 17"):
        find_java()


def test_stopped_status_when_nothing_ran(tmp_path: Path) -> None:
    broker = LocalBroker(
        Settings(local_kafka_state_dir=tmp_path, local_kafka_port=1, local_kafka_controller_port=2)
    )
    status = broker.status()
    assert not status.running and status.state == "stopped" and status.pid is None


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8... encodes to "-..." in base64url: kafka-storage would read it as an option.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x00" + bytes(15))])
    monkeypatch.setattr(broker_module.uuid, "uuid4", lambda: next(draws))
    assert new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"
